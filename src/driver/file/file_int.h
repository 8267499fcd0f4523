/*
 * Internals of the file driver, shared by file.c (open, map, detect), raw.c,
 * elf.c, elf_note.c, elf_x86.c, lime.c, crashdump.c and xencore.c.
 */
#ifndef TV_DRIVER_FILE_INT_H
#define TV_DRIVER_FILE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"

/* Bounds on what a hostile header can make us allocate. */
#define FILE_MAX_RANGES (1u << 20)
#define FILE_MAX_VCPUS 8192u
/* Register sources (note kinds) per vCPU, e.g. "QEMU" and NT_PRSTATUS. */
#define FILE_MAX_KINDS 4

/* Where one vCPU's register notes are, one slot per note kind of its
 * machine (NULL: no such note for this vCPU).  Points into the image. */
typedef struct file_vcpu {
    const uint8_t *desc[FILE_MAX_KINDS];
    uint32_t len[FILE_MAX_KINDS];
} file_vcpu_t;

struct file_elf_machine;

/* The driver's context: the image, its ranges and (ELF) its vCPUs. */
typedef struct tv_file {
    struct vmi_instance *vmi; /* for error messages */
    const uint8_t *data;      /* the whole image */
    size_t size;
    void *map; /* our own mapping (tv_file_open), else NULL */
    size_t map_len;
    tv_range_t *ranges;
    size_t nranges, cap;
    vmi_arch_t arch;
    const struct file_elf_machine *mach; /* ELF: note layouts, or NULL */
    file_vcpu_t *vcpus;
    unsigned nvcpus;
    const char *name;                /* overrides the format's, or NULL */
    const tv_vcpu_ops_t *vcpu_ops;   /* non-ELF registers, or NULL */
    struct tv_crashdump *cd;         /* Windows crash dumps, else NULL */
} tv_file_t;

/* ---- Common helpers (file.c) -------------------------------------------- */

/* True when [off, off + len) lies inside the image (overflow-safe). */
static inline bool file_span_ok(const tv_file_t *f, uint64_t off,
                                uint64_t len)
{
    return off <= f->size && len <= f->size - off;
}

/* Appends a range (at most FILE_MAX_RANGES); the caller has checked that
 * the file holds [offset, offset + size) and that start + size does not
 * wrap.  what names the format in messages. */
int file_range_add(tv_file_t *f, const char *what, uint64_t start,
                   uint64_t size, uint64_t offset);
/* Sorts the ranges by start, fails on overlap, merges neighbours that are
 * contiguous in the file too. */
int file_ranges_finish(tv_file_t *f, const char *what);

/* ---- Formats: each fills f->ranges, f->arch and (ELF) the vCPUs --------- */

int file_raw_parse(tv_file_t *f);
int file_elf_parse(tv_file_t *f);
int file_lime_parse(tv_file_t *f);
int file_crashdump_parse(tv_file_t *f);
/* Xen's xl dump-core (xencore.c): an ELF64 core with sections and no
 * program headers; probe says whether the first bytes look like one. */
bool file_xencore_probe(const uint8_t *data, size_t size);
int file_xencore_parse(tv_file_t *f);
void file_crashdump_free(struct tv_crashdump *cd);

/* The file driver's context behind d, or NULL for another driver. */
tv_file_t *file_from_driver(const tv_driver_t *d);

/* ---- ELF notes and registers (elf_note.c, elf_<arch>.c) ----------------- */

enum file_conv {
    FILE_CONV_RAW,     /* the value as stored */
    FILE_CONV_ARBYTES, /* descriptor flags (bits 8..23) -> Xen/LibVMI
                          12-bit access rights */
    FILE_CONV_XEN_CR3, /* a PV vCPU's folded CR3 -> the address of its
                          root table (x86_64: xen_cr3_to_pfn(v) << 12) */
};

/* One register in a note descriptor. */
typedef struct file_reg_field {
    uint16_t reg;  /* LibVMI register number */
    uint16_t off;  /* byte offset in the descriptor */
    uint8_t size;  /* 2, 4 or 8 bytes, little-endian */
    uint8_t conv;  /* enum file_conv */
} file_reg_field_t;

#define FILE_NO_VERSION UINT32_MAX

/* A note that carries registers of one vCPU; the i-th such note belongs to
 * the i-th vCPU. */
typedef struct file_note_kind {
    const char *owner;    /* note name, e.g. "CORE" */
    uint32_t type;        /* note type, e.g. NT_PRSTATUS */
    uint32_t min_size;    /* smaller descriptors are malformed */
    uint32_t version_off; /* u32 version field, or FILE_NO_VERSION */
    uint32_t version;     /* the one layout we know */
    const file_reg_field_t *field;
    size_t nfields;
} file_note_kind_t;

/* Note layouts of one ELF machine, by priority: a register is taken from
 * the first kind that has it. */
typedef struct file_elf_machine {
    uint16_t machine; /* e_machine */
    vmi_arch_t arch;
    const char *name;
    const file_note_kind_t *const *kind;
    size_t nkinds; /* <= FILE_MAX_KINDS */
} file_elf_machine_t;

extern const file_elf_machine_t file_elf_x86_64;
extern const file_elf_machine_t file_elf_i386;

/* Xen's vcpu_guest_context_x86_64_t, as .xen_prstatus holds it (elf_x86.c):
 * its size and where ctrlreg[] starts. */
#define XEN_CTX_SIZE 5168u
#define XEN_CTX_CTRLREG 4984u
/* Its registers, one "kind" each: PV (CR3 folded) and HVM (CR3 as is). */
extern const file_elf_machine_t file_xen_x86_64_pv;
extern const file_elf_machine_t file_xen_x86_64_hvm;

/* The machine's description (e_machine), or NULL when unknown. */
const file_elf_machine_t *file_elf_machine(uint16_t machine);

/* A PT_NOTE segment already checked to lie inside the image. */
typedef struct file_seg {
    unsigned index; /* program header number, for messages */
    uint64_t offset;
    uint64_t size;
} file_seg_t;

/* Walks the notes of all segments strictly and assigns register notes to
 * vCPUs (f->mach must be set; without note layouts it only validates). */
int file_elf_notes(tv_file_t *f, const file_seg_t *seg, size_t nseg);

extern const tv_vcpu_ops_t file_elf_vcpu_ops;

#endif /* TV_DRIVER_FILE_INT_H */
