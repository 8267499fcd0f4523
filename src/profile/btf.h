/*
 * The kernel's BTF (BPF Type Format) as a type source.  Part of the core.
 *
 * tv_btf_load puts into a table: every named struct/union (and anonymous
 * ones, named "unnamed_<16 hex>" from a hash of their content, since
 * dwarf2json's names hash DWARF that BTF does not have), their members
 * (byte offsets; bitfields as ISF gives them: offset of the storage unit,
 * bit position inside it; anonymous members as "unnamed_field_N" (N in hex, as dwarf2json) with the
 * anonymous flag), enums (TV_K_ENUM) with their enumerators as constants,
 * and int/float base types (TV_K_BASE).  Member types are resolved through
 * typedefs and qualifiers as the ISF loader does (profile.h).
 *
 * tv_btf_t is the checked index the loader and the ISF writer share.
 */
#ifndef TV_BTF_H
#define TV_BTF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/reader.h"
#include "profile/symtab.h"

#define TV_BTF_MAGIC 0xeb9f

/* BTF kinds. */
enum {
    TV_BTF_UNKN = 0,
    TV_BTF_INT,
    TV_BTF_PTR,
    TV_BTF_ARRAY,
    TV_BTF_STRUCT,
    TV_BTF_UNION,
    TV_BTF_ENUM,
    TV_BTF_FWD,
    TV_BTF_TYPEDEF,
    TV_BTF_VOLATILE,
    TV_BTF_CONST,
    TV_BTF_RESTRICT,
    TV_BTF_FUNC,
    TV_BTF_FUNC_PROTO,
    TV_BTF_VAR,
    TV_BTF_DATASEC,
    TV_BTF_FLOAT,
    TV_BTF_DECL_TAG,
    TV_BTF_TYPE_TAG,
    TV_BTF_ENUM64,
    TV_BTF_KIND_MAX = TV_BTF_ENUM64,
};

/* A checked view of a BTF blob (which must outlive it). */
typedef struct tv_btf {
    const tv_pctx_t *ctx;
    const uint8_t *types;
    size_t types_len;
    const char *strs;
    size_t strs_len;
    uint32_t ntypes;  /* ids 1..ntypes */
    uint32_t *off;    /* off[id]: the record's offset in types */
} tv_btf_t;

/* Searches [start, end) for a BTF header (magic 0xeB9F, version 1, sane
 * sections) and gives its address and total length. */
int tv_btf_find(const tv_pctx_t *ctx, const tv_reader_t *r, uint64_t start,
                uint64_t end, uint64_t *at, uint64_t *len);

/* Checks the header and every type record's bounds; indexes the types. */
int tv_btf_open(const tv_pctx_t *ctx, const uint8_t *blob, size_t len,
                tv_btf_t *b);
void tv_btf_close(tv_btf_t *b);

/* Loads the types (see above) into t. */
int tv_btf_load(const tv_pctx_t *ctx, const uint8_t *blob, size_t len,
                tv_symtab_t *t);

/* ---- Accessors (for writers); ids must be 1..ntypes --------------------- */

typedef struct tv_btf_type {
    uint32_t id;
    uint8_t kind;
    bool kflag;
    uint16_t vlen;
    uint32_t size_or_type;
    const char *name;       /* "" when anonymous */
    const uint8_t *extra;   /* the kind's trailing data (checked length) */
} tv_btf_type_t;

bool tv_btf_type(const tv_btf_t *b, uint32_t id, tv_btf_type_t *out);
/* Skips typedefs, qualifiers and type tags; 0 for void or a bad chain. */
uint32_t tv_btf_skip(const tv_btf_t *b, uint32_t id);
/* The type's size in bytes (through typedefs/qualifiers; arrays: elements
 * times count; pointers 8). */
uint64_t tv_btf_size(const tv_btf_t *b, uint32_t id);
/* The name a struct/union/enum goes by: its own, or "unnamed_<hex>" for
 * an anonymous one (buf of at least 32 bytes). */
const char *tv_btf_tname(const tv_btf_t *b, const tv_btf_type_t *t, char *buf,
                         size_t len);

/* The name type id goes by where it is used, as dwarf2json writes it: a
 * typedef of a struct/union/enum lends its name ("atomic_t", the last
 * typedef of the chain); otherwise the target's own (tv_btf_tname).
 * *target (optional) gets the id after typedefs and qualifiers. */
const char *tv_btf_ref_name(const tv_btf_t *b, uint32_t id, char *buf,
                            size_t len, uint32_t *target);
/* Whether a struct/union/enum kind (the kinds that have user_types/enums
 * entries). */
bool tv_btf_is_named_kind(uint8_t kind);

/* One member of a struct/union, decoded. */
typedef struct tv_btf_member {
    const char *name;    /* "" for an anonymous member */
    uint32_t type;
    uint64_t bit_offset;
    uint8_t bit_size;    /* 0 unless a bitfield */
} tv_btf_member_t;
bool tv_btf_member(const tv_btf_t *b, const tv_btf_type_t *t, uint16_t i,
                   tv_btf_member_t *out);

#endif
