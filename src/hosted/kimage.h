/*
 * Kernel image files (hosted): an x86 bzImage (its payload decompressed as
 * the setup header and the payload's magic say: xz, gzip, zstd, lz4, lzma),
 * an ELF vmlinux (possibly compressed as a whole), or an arm64 Image or
 * Image.gz (raw).  Gives a tv_reader_t over the ELF's virtual addresses (a
 * raw image's file offsets) and the places of .BTF and .rodata.
 */
#ifndef TV_KIMAGE_H
#define TV_KIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/reader.h"

/* Decompressed images larger than this are refused. */
#define TV_KIMAGE_MAX_SIZE ((uint64_t)1 << 30)

typedef struct tv_kimage tv_kimage_t;

/* Opens path; on failure returns a TINYVMI_* status and writes the reason
 * into err (errlen bytes). */
int tv_kimage_open(const char *path, tv_kimage_t **out, char *err,
                   size_t errlen);
/* The same, for an image already in memory (copied). */
int tv_kimage_open_mem(const void *data, size_t len, tv_kimage_t **out,
                       char *err, size_t errlen);
void tv_kimage_close(tv_kimage_t *k);

/* "bzImage/xz ELF", "ELF", "Image.gz raw", ... */
const char *tv_kimage_format(const tv_kimage_t *k);
/* Whether addresses are ELF virtual addresses (false: raw file offsets). */
bool tv_kimage_is_elf(const tv_kimage_t *k);
/* A reader over the image's addresses (valid while k is open). */
const tv_reader_t *tv_kimage_reader(const tv_kimage_t *k);
/* The bytes of [addr, addr + len) if they lie in one piece of the image,
 * else NULL. */
const uint8_t *tv_kimage_ptr(const tv_kimage_t *k, uint64_t addr,
                             uint64_t len);
/* A section by name (ELF only): its address and size. */
bool tv_kimage_section(const tv_kimage_t *k, const char *name,
                       uint64_t *addr, uint64_t *size);
/* The whole address range with file-backed bytes: [*lo, *hi). */
void tv_kimage_span(const tv_kimage_t *k, uint64_t *lo, uint64_t *hi);

#endif
