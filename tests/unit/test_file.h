/*
 * Helpers for the file-driver tests (test_file_*.c): an instance, a byte
 * buffer with little-endian stores, builders for ELF cores, notes and LiME
 * files, and an opener that checks the file and in-memory paths agree.
 */
#ifndef TEST_FILE_H
#define TEST_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"
#include "driver/file/file.h"

/* A fresh instance with malloc hooks (freed with tv_instance_free). */
struct vmi_instance *tf_vmi(void);

typedef struct tf_buf {
    uint8_t *p;
    size_t len, cap;
} tf_buf_t;

/* Stores v (size 1, 2, 4 or 8 bytes, LE) at off, growing the buffer. */
void tf_put(tf_buf_t *b, size_t off, uint64_t v, unsigned size);
/* Appends len bytes (data NULL: zeros); returns their offset. */
size_t tf_append(tf_buf_t *b, const void *data, size_t len);
void tf_buf_free(tf_buf_t *b);

/* Writes buf to name in the test's scratch directory; returns the path
 * (valid until the next call). */
const char *tf_write(const char *name, const void *buf, size_t len);

/* ---- ELF ---------------------------------------------------------------- */

#define TF_EM_386 3
#define TF_EM_X86_64 62
#define TF_PT_LOAD 1
#define TF_PT_NOTE 4

typedef struct tf_seg {
    uint32_t type;
    uint64_t paddr;
    uint64_t memsz; /* 0: the same as the data's size */
    const void *data;
    size_t size; /* bytes of data (p_filesz) */
} tf_seg_t;

/* Builds an ET_CORE file of class 1 (ELF32) or 2 (ELF64): header, program
 * headers, then each segment's data in order. */
void tf_elf(tf_buf_t *b, int cls, uint16_t machine, const tf_seg_t *seg,
            size_t nseg);
/* File offset of program header i and of a field in it, by class. */
size_t tf_phdr_at(int cls, size_t i);
enum tf_pfield { TF_P_OFFSET, TF_P_PADDR, TF_P_FILESZ, TF_P_MEMSZ };
void tf_phdr_set(tf_buf_t *b, int cls, size_t i, enum tf_pfield fld,
                 uint64_t v);

/* Appends one note (name padded to 4, descriptor padded to 4). */
void tf_note(tf_buf_t *b, const char *owner, uint32_t type, const void *desc,
             uint32_t descsz);

/* x86_64 NT_PRSTATUS (336 bytes): pr_reg slot i (0 = r15 .. 26 = gs). */
void tf_prstatus64(uint8_t desc[336], unsigned slot, uint64_t v);
/* QEMUCPUState (440 bytes, version 1): gpr i (0 rax .. 16 rip, 17 rflags),
 * cr i, segment j base. */
void tf_qemu_state(uint8_t desc[440]);
void tf_qemu_gpr(uint8_t desc[440], unsigned i, uint64_t v);
void tf_qemu_cr(uint8_t desc[440], unsigned i, uint64_t v);

/* ---- LiME --------------------------------------------------------------- */

/* Appends a header for [start, end] (inclusive) and, if data, its bytes. */
void tf_lime(tf_buf_t *b, uint32_t magic, uint32_t version, uint64_t start,
             uint64_t end, const void *data, size_t len);
#define TF_LIME_MAGIC 0x4C694D45u

/* ---- Opening ------------------------------------------------------------ */

/* Writes buf to a file named name and opens it with tv_file_open; also
 * opens buf with tv_file_open_mem and reports (returns -100) if the two
 * disagree on the status or the message.  On success *out is open. */
int tf_open(struct vmi_instance *vmi, const char *name, const tf_buf_t *b,
            tv_driver_t *out);

/* tf_open on a fresh instance that is then freed: returns the status,
 * copies the message into msg[TV_ERRMSG_MAX] and frees b. */
int tf_try(const char *name, tf_buf_t *b, char *msg);

#endif
