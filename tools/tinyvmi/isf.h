/*
 * The Volatility 3 ISF writer shared by `tinyvmi profile`'s two sources
 * (a kernel image's BTF + kallsyms in profile.c, a vmlinux's DWARF +
 * .symtab in dwarf.c): one place that knows dwarf2json's format 6.x, so
 * both paths write the same JSON.
 */
#ifndef TINYVMI_ISF_H
#define TINYVMI_ISF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

/* A set of names, each with a 32-bit value. */
typedef struct isf_names {
    char **key;
    uint32_t *val;
    size_t cap, n;
} isf_names_t;

/* Adds name (copied); false if it was there already or memory ran out
 * (then *oom is set). */
bool isf_names_add(isf_names_t *s, const char *name, uint32_t val,
                   bool *oom);
/* Sets name's value, adding it if new; false if memory ran out. */
bool isf_names_put(isf_names_t *s, const char *name, uint32_t val);
bool isf_names_get(const isf_names_t *s, const char *name, uint32_t *val);
void isf_names_free(isf_names_t *s);

/* The separator before an entry of an object: a newline, with a comma
 * unless *first (which is cleared). */
void isf_sep(FILE *f, bool *first);

/* {  "metadata": ...,  -- the file's head. */
void isf_metadata(FILE *f);

/* One base_types entry (after isf_sep). */
void isf_base(FILE *f, const char *name, uint64_t size, bool sign,
              const char *kind);

/* A user_types entry's head, "NAME": {"kind": K, "size": N, "fields": {,
 * and its tail; fields go between (isf_field_*).  Without a name, only
 * the object {"kind": ...} is written. */
void isf_struct_begin(FILE *f, const char *name, bool is_union,
                      uint64_t size);
void isf_struct_end(FILE *f, bool any_fields);

/* A field: "NAME": {"type": <type written by the caller>, "offset": N}.
 * For a bitfield, isf_field_begin's bit_length is non-zero and the
 * caller writes the bitfield's underlying type. */
void isf_field_begin(FILE *f, bool *first, const char *name,
                     unsigned bit_length, unsigned bit_position);
void isf_field_end(FILE *f, uint64_t offset, unsigned bit_length,
                   bool anon);

/* The name of a struct's n-th anonymous member: unnamed_field_<n in hex>
 * (hex as dwarf2json: the 11th is unnamed_field_a). */
void isf_anon_field(char *buf, size_t len, unsigned n);

/* The base type dwarf2json names for an enum of this size and sign. */
const char *isf_enum_base(uint64_t size, bool sign);

/* base64 of n bytes (linux_banner's constant_data). */
void isf_b64(FILE *f, const uint8_t *p, size_t n);

/* The output: stdout without -o, else a temporary file beside c->output
 * that isf_close renames into place (or removes on failure). */
typedef struct isf_out {
    FILE *f;
    char tmp[4096];
} isf_out_t;
int isf_open(const cli_t *c, isf_out_t *o);
int isf_close(const cli_t *c, isf_out_t *o, int rc);

/* dwarf.c: whether path is an ELF file with DWARF (.debug_info), and the
 * ISF from its DWARF and symbol table. */
bool dw_is_dwarf(const char *path);
int dw_profile(const cli_t *c, FILE *f);

#endif
