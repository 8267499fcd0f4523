/*
 * libvmi.conf: LibVMI's configuration file, parsed from a buffer.  Part of
 * the core: freestanding, no I/O (src/hosted/config_host.c finds and reads
 * the file), allocation only through the hooks in the tv_pctx_t.
 *
 * The syntax LibVMI accepts, and a little more:
 *
 *     # comment to the end of the line
 *     Fedora-HVM {
 *         ostype = "Linux";
 *         sysmap = "/boot/System.map-6.1.0-56-amd64";
 *         linux_tasks = 0x890;
 *         linux_pid   = 2416;
 *     }
 *
 * - An entry is a name (letters, digits, '.', '_', '-'; or a quoted
 *   string) and a body of `key = value;` assignments in braces.  Empty
 *   assignments (`;;`) are allowed, as in LibVMI.
 * - Values are quoted strings (no escapes, no newlines: LibVMI has none),
 *   bare paths/words, or numbers: 0x hex, decimal, and (as LibVMI reads
 *   them with strtoull base 0) octal when a decimal has a leading 0.
 * - Comments: '#' to the end of the line.  LibVMI has no C comments, so
 *   neither does this parser.
 * - Every key LibVMI knows has a type (string or number); a value of the
 *   wrong type is an error.  Unknown keys are kept (a bare value starting
 *   with a digit is a number, anything else a string) and warned about.
 *   `linux_addr` is accepted with LibVMI's "no longer used" warning.
 * - A key given twice in one entry: the last value is used (as LibVMI's
 *   hash table does), with a warning.  Several entries with one name: the
 *   last wins on lookup (LibVMI: "using most recent").
 *
 * Errors name the line and column and what was expected:
 *   "line 4, column 20: expected ';' after the value of 'linux_pid'".
 */
#ifndef TV_CONF_H
#define TV_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/symtab.h" /* tv_pctx_t */

/* Input limits: larger input is refused with a clear reason. */
#define TV_CONF_MAX_TEXT (16u << 20) /* bytes of config text */
#define TV_CONF_MAX_TOKEN 4096u      /* bytes in one name, key or value */
#define TV_CONF_MAX_WARNINGS 32u     /* kept; later ones are only counted */

enum tv_conf_type {
    TV_CONF_NONE = 0, /* unknown key (for tv_conf_key_type) */
    TV_CONF_STR = 1,
    TV_CONF_NUM = 2,
};

typedef struct tv_conf tv_conf_t;
typedef struct tv_conf_entry tv_conf_entry_t;

/* One assignment.  For numbers, str is the text as written ("0x890"). */
typedef struct tv_conf_kv {
    const char *key;
    const char *str;
    uint64_t num;  /* TV_CONF_NUM only */
    uint8_t type;  /* TV_CONF_STR or TV_CONF_NUM */
    bool known;    /* a key LibVMI documents */
    uint32_t line; /* 0 for entries built by hand */
} tv_conf_kv_t;

/* ---- parsing --------------------------------------------------------- */

/* Parses a whole libvmi.conf.  text need not be NUL-terminated.  On
 * failure *out is NULL and ctx->err says where and why. */
int tv_conf_parse(const tv_pctx_t *ctx, const char *text, size_t len,
                  tv_conf_t **out);
/* Parses one entry's body ("{ ostype = \"Linux\"; ... }", what LibVMI's
 * VMI_CONFIG_STRING takes) as an entry called name.  Nothing but
 * whitespace and comments may follow the closing brace. */
int tv_conf_parse_body(const tv_pctx_t *ctx, const char *name,
                       const char *text, size_t len, tv_conf_t **out);
void tv_conf_free(tv_conf_t *c);

/* ---- building by hand (e.g. from a caller's GHashTable) -------------- */

int tv_conf_new(const tv_pctx_t *ctx, tv_conf_t **out);
/* Starts an entry; the add_* calls below go to the last one started.
 * Values are checked against the key's type like parsed ones. */
int tv_conf_add_entry(tv_conf_t *c, const char *name);
int tv_conf_add_str(tv_conf_t *c, const char *key, const char *value);
int tv_conf_add_u64(tv_conf_t *c, const char *key, uint64_t value);
/* Records a warning (formatted by the caller). */
int tv_conf_add_warning(tv_conf_t *c, const char *msg);

/* ---- queries ------------------------------------------------------------ */
/* Pointers returned stay valid until tv_conf_free or the next add_*. */

size_t tv_conf_count(const tv_conf_t *c);
const tv_conf_entry_t *tv_conf_entry_at(const tv_conf_t *c, size_t i);
/* The entry called name (the last one of that name), or NULL. */
const tv_conf_entry_t *tv_conf_find(const tv_conf_t *c, const char *name);

const char *tv_conf_name(const tv_conf_entry_t *e);
/* Line of the entry's name in the text (0 when built by hand). */
uint32_t tv_conf_line(const tv_conf_entry_t *e);
size_t tv_conf_nkeys(const tv_conf_entry_t *e);
/* The i-th distinct key, in order of first appearance. */
bool tv_conf_kv_at(const tv_conf_entry_t *e, size_t i, tv_conf_kv_t *out);
bool tv_conf_get(const tv_conf_entry_t *e, const char *key,
                 tv_conf_kv_t *out);
/* A string value, or NULL if key is absent or a number. */
const char *tv_conf_str(const tv_conf_entry_t *e, const char *key);
/* A number value: false if key is absent or a string. */
bool tv_conf_u64(const tv_conf_entry_t *e, const char *key, uint64_t *v);
/* "ostype" (or LibVMI's alias "os_type"): "Linux", "Windows", "FreeBSD"
 * (exact, as LibVMI compares them) -> VMI_OS_*; else VMI_OS_UNKNOWN. */
os_t tv_conf_ostype(const tv_conf_entry_t *e);

/* Warnings (unknown keys, repeated keys, deprecated keys), in order. */
size_t tv_conf_nwarnings(const tv_conf_t *c); /* all, kept or not */
const char *tv_conf_warning(const tv_conf_t *c, size_t i); /* NULL past kept */

/* TV_CONF_STR or TV_CONF_NUM for a key LibVMI documents, else
 * TV_CONF_NONE. */
int tv_conf_key_type(const char *key);

#endif
