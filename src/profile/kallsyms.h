/*
 * The kernel's own symbol table (kallsyms), found by its content in a
 * kernel image or in guest memory.  Part of the core.
 *
 * tv_kallsyms_find searches [start, end) of a reader for the tables that
 * scripts/kallsyms emits (token table and index, markers, names, num_syms,
 * offsets or addresses, relative_base), whatever their order (Linux <= 6.3
 * puts the offsets first, 6.4+ last; 6.2+ adds seqs_of_names), and checks
 * each piece against the others before trusting it.  tv_kallsyms_load then
 * decodes every symbol into a table.  64-bit kernels only.
 */
#ifndef TV_KALLSYMS_H
#define TV_KALLSYMS_H

#include <stdbool.h>
#include <stdint.h>

#include "profile/reader.h"
#include "profile/symtab.h"

/* Where the tables are, as addresses of the reader. */
typedef struct tv_kallsyms {
    uint32_t num_syms;
    uint32_t num_markers;
    uint64_t num_syms_at;   /* kallsyms_num_syms */
    uint64_t names;         /* kallsyms_names */
    uint64_t names_len;     /* bytes of names (to the end of the last) */
    uint64_t markers;       /* kallsyms_markers (u32 each) */
    uint64_t token_table;
    uint32_t token_table_len;
    uint64_t token_index;   /* 256 u16 */
    uint64_t offsets;       /* kallsyms_offsets, or kallsyms_addresses */
    uint64_t relative_base_at; /* 0 when not base-relative */
    uint64_t relative_base;    /* its value (as the reader shows it) */
    bool base_relative;        /* offsets (s32) + relative_base */
    bool absolute_percpu;      /* offsets >= 0 are absolute (per-cpu) */
    bool offsets_first;        /* layout of Linux <= 6.3 */
} tv_kallsyms_t;

/* Searches [start, end) for the tables; fills *ks.  ENOENT if none found
 * (the reason says which piece was missing), EIO/EUNMAPPED only if the
 * reader fails where a found piece must be. */
int tv_kallsyms_find(const tv_pctx_t *ctx, const tv_reader_t *r,
                     uint64_t start, uint64_t end, tv_kallsyms_t *ks);

/* Decodes every symbol (name, type letter, address) into t.  Addresses are
 * as the reader's memory gives them: relocated by KASLR in guest memory,
 * link-time in an image file. */
int tv_kallsyms_load(const tv_pctx_t *ctx, const tv_reader_t *r,
                     const tv_kallsyms_t *ks, tv_symtab_t *t);

/* One symbol as decoded: for iteration without a table. */
typedef int (*tv_kallsyms_fn)(void *arg, const char *name, size_t len,
                              uint64_t addr, char type);
/* Calls fn for each symbol in kallsyms order; a nonzero return stops the
 * walk and is returned. */
int tv_kallsyms_each(const tv_pctx_t *ctx, const tv_reader_t *r,
                     const tv_kallsyms_t *ks, tv_kallsyms_fn fn, void *arg);

#endif
