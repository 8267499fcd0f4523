/*
 * Profile loaders: JSON profiles (Volatility 3 ISF, Rekall) into a symbol/
 * type table (symtab.h).  The JSON loaders are core code (freestanding);
 * tv_profile_load_file is hosted (src/hosted/profile_file.c).
 *
 * What the JSON loaders put in the table:
 *   symbols   ISF "symbols" (address; type 'T' for functions, 'D' for other
 *             typed symbols, '?' untyped), Rekall $CONSTANTS ('D') and
 *             $FUNCTIONS ('T').  Windows addresses are RVAs, as in the file.
 *   types     ISF user_types (struct/union), base_types (TV_K_BASE with
 *             size), enums (TV_K_ENUM with size); Rekall $STRUCTS (all
 *             TV_K_STRUCT: Rekall does not tell unions apart), $ENUMS, and
 *             base types with sizes implied by $METADATA arch ("pointer"
 *             among them).
 *   members   offset, bitfields (bit_pos from the byte offset, bit_len),
 *             tv_mtype_t: kind of the member; for pointers, arrays and
 *             bitfields elem_kind is the kind of the immediate element/
 *             target (POINTER for an array of pointers) and name is the
 *             innermost named type ("" for void or function targets);
 *             "void" targets are TV_K_VOID.
 *   consts    enumerators (ISF enums' constants; Rekall $REVENUMS/$ENUMS).
 *   meta      "source" ("isf"/"rekall"), "os" ("linux"/"windows" when the
 *             file says), "producer" ("dwarf2json 0.9.0"), "format" (ISF
 *             version), "banner" (ISF linux_banner constant_data, up to its
 *             first NUL), "guid"/"pdb"/"pdb_age" (Windows), "arch" (Rekall).
 * The loaders add to t and do not finish it; on failure t may hold part of
 * the file (free it).
 */
#ifndef TV_PROFILE_H
#define TV_PROFILE_H

#include <stddef.h>

#include "profile/symtab.h"

/* ISF or Rekall, decided from the content (a Rekall profile's top-level
 * keys start with '$'). */
int tv_profile_load_json(const tv_pctx_t *ctx, const char *buf, size_t len,
                         tv_symtab_t *t);
int tv_profile_load_isf(const tv_pctx_t *ctx, const char *buf, size_t len,
                        tv_symtab_t *t);
int tv_profile_load_rekall(const tv_pctx_t *ctx, const char *buf, size_t len,
                           tv_symtab_t *t);
/* True if buf looks like a Rekall profile (first key starts with '$'). */
bool tv_profile_is_rekall(const char *buf, size_t len);

/* Hosted: reads path (.json, .json.xz, .json.gz; detected from the content,
 * not the name), loads it with tv_profile_load_json into a new table and
 * finishes it.  Errors name the file.  Limits: 1 GiB decompressed. */
int tv_profile_load_file(const tv_pctx_t *ctx, const char *path,
                         tv_symtab_t **out);

#endif
