/*
 * A read-only view of bytes at addresses, for the profile sources that
 * search memory (kallsyms, BTF): a kernel image file (its ELF virtual
 * addresses) or guest kernel virtual memory.  Part of the core.
 */
#ifndef TV_READER_H
#define TV_READER_H

#include <stddef.h>
#include <stdint.h>

/* read: exactly len bytes at addr into buf; returns 0 or a TINYVMI_*
 * status (EUNMAPPED for holes).  Addresses are in the reader's own space:
 * file-image virtual addresses for a vmlinux, kernel virtual addresses for
 * guest memory. */
typedef struct tv_reader {
    int (*read)(void *ctx, uint64_t addr, void *buf, size_t len);
    void *ctx;
} tv_reader_t;

#endif
