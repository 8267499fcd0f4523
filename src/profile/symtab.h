/*
 * The one symbol/type table every profile source ends in: a Volatility ISF,
 * a Rekall profile, or a kernel's own BTF and kallsyms.  Part of the core:
 * freestanding, allocates only through the hooks it is given, no globals.
 *
 * A table is built by one loader (add_* calls, then tv_symtab_finish) and
 * is read-only afterwards.  Several loaders may fill one table (types from
 * BTF, symbols from kallsyms): names are unique per namespace; adding a name
 * twice keeps the first and is not an error (kallsyms has duplicates).
 *
 * Anonymous struct/union members (ISF "unnamed_field_N" with "anonymous":
 * true; BTF members with no name) are stored as members with the anonymous
 * flag, whose type is a named type (the source's name, or "unnamed_<hex>"
 * made up by the loader).  Member lookups look through them, adding offsets,
 * so "task_struct.pid" is found wherever the kernel nests it.
 */
#ifndef TV_SYMTAB_H
#define TV_SYMTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tinyvmi/tinyvmi.h>

/* What a loader needs besides its input: an allocator and a place for the
 * reason of a failure.  err may be NULL (errlen 0). */
typedef struct tv_pctx {
    const tinyvmi_hooks_t *hooks;
    char *err;
    size_t errlen;
} tv_pctx_t;

/* Records a reason in ctx->err and returns status (a TINYVMI_* code). */
int tv_pfail(const tv_pctx_t *ctx, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Type kinds, for types and for member types. */
enum tv_kind {
    TV_K_NONE = 0,
    TV_K_BASE,    /* int, char, bool, float */
    TV_K_STRUCT,
    TV_K_UNION,
    TV_K_ENUM,
    TV_K_POINTER,
    TV_K_ARRAY,
    TV_K_FUNCTION,
    TV_K_BITFIELD,
    TV_K_VOID,
};

/* A member's type, flattened: kind of the member itself, and for pointers
 * and arrays the kind and name of what they hold (innermost named type,
 * e.g. "struct module_memory mem[7]" is ARRAY, count 7, elem STRUCT
 * "module_memory"; "struct mm_struct *mm" is POINTER, elem STRUCT
 * "mm_struct").  name is "" for anonymous or unnamed types. */
typedef struct tv_mtype {
    uint8_t kind;
    uint8_t elem_kind;
    uint32_t count; /* arrays: elements (0 for flexible arrays) */
    const char *name;
} tv_mtype_t;

typedef struct tv_symtab tv_symtab_t;

/* ---- building ------------------------------------------------------------ */

int tv_symtab_new(const tv_pctx_t *ctx, tv_symtab_t **out);
void tv_symtab_free(tv_symtab_t *t);

/* Names need not be NUL-terminated: (name, len).  The table copies them. */
int tv_symtab_add_symbol(tv_symtab_t *t, const char *name, size_t len,
                         uint64_t addr, char type);
/* Starts a type; members added next belong to it until the next add_type.
 * kind is TV_K_STRUCT, TV_K_UNION, TV_K_ENUM or TV_K_BASE. */
int tv_symtab_add_type(tv_symtab_t *t, const char *name, size_t len,
                       uint8_t kind, uint64_t size);
/* A member of the type last added.  offset in bytes; bitfields also give
 * bit_pos (from the byte offset) and bit_len, others pass 0, 0. */
int tv_symtab_add_member(tv_symtab_t *t, const char *name, size_t len,
                         uint64_t offset, uint8_t bit_pos, uint8_t bit_len,
                         const tv_mtype_t *type, bool anonymous);
/* Enumerator constants (and Rekall/ISF constants that are not addresses). */
int tv_symtab_add_const(tv_symtab_t *t, const char *name, size_t len,
                        int64_t value);
/* Free-form facts: "banner" (linux_banner text), "source" ("isf", "rekall",
 * "btf+kallsyms"), "os" ("linux", "windows"), "guid"... */
int tv_symtab_set_meta(tv_symtab_t *t, const char *key, const char *value,
                       size_t len);
/* Sorts and indexes; after this the table is read-only.  Idempotent. */
int tv_symtab_finish(tv_symtab_t *t);

/* ---- queries (after finish) --------------------------------------------- */

bool tv_symtab_symbol(const tv_symtab_t *t, const char *name, uint64_t *addr);
/* The symbol at or below addr with the highest address (ties: the first
 * name in kallsyms/ISF order).  *offset = addr - symbol address.  False if
 * addr is below every symbol or more than max_off past the nearest one. */
bool tv_symtab_addr(const tv_symtab_t *t, uint64_t addr, uint64_t max_off,
                    const char **name, uint64_t *offset);

typedef struct tv_typeinfo {
    const char *name;
    uint8_t kind;
    uint64_t size;
    uint32_t nmembers;
} tv_typeinfo_t;
bool tv_symtab_type(const tv_symtab_t *t, const char *name,
                    tv_typeinfo_t *info);

typedef struct tv_member {
    const char *name;
    uint64_t offset; /* bytes from the start of the outer type */
    uint8_t bit_pos, bit_len;
    bool anonymous;
    tv_mtype_t type;
} tv_member_t;
/* A member by path: "pid", "mm", "core_layout.base", "mem[0].base" (array
 * index scaled by the element type's size).  Looks through anonymous
 * members.  Offsets are summed. */
bool tv_symtab_member(const tv_symtab_t *t, const char *type,
                      const char *path, tv_member_t *out);
/* The i-th member of a type as stored (no flattening), for writers. */
bool tv_symtab_member_at(const tv_symtab_t *t, const char *type, uint32_t i,
                         tv_member_t *out);

bool tv_symtab_const(const tv_symtab_t *t, const char *name, int64_t *value);
const char *tv_symtab_meta(const tv_symtab_t *t, const char *key);

/* Iteration: symbols in address order, types in name order. */
size_t tv_symtab_nsymbols(const tv_symtab_t *t);
bool tv_symtab_symbol_at(const tv_symtab_t *t, size_t i, const char **name,
                         uint64_t *addr, char *type);
size_t tv_symtab_ntypes(const tv_symtab_t *t);
bool tv_symtab_type_at(const tv_symtab_t *t, size_t i, tv_typeinfo_t *info);

/* Bytes the table holds (for benchmarks). */
size_t tv_symtab_bytes(const tv_symtab_t *t);

#endif
