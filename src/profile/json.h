/*
 * A streaming (pull) JSON reader over one buffer: no DOM, no allocation.
 * Part of the core.  The caller walks the document:
 *
 *   tv_json_init(&j, buf, len);
 *   tv_json_next(&j, &v);                   v.type == TV_J_OBJ
 *   while ((rc = tv_json_key(&j, &k)) > 0)  each key, then its value:
 *       tv_json_next(&j, &v) or tv_json_skip(&j)
 *   ...rc == 0: '}' consumed; rc < 0: error
 *   while ((rc = tv_json_elem(&j)) > 0)     arrays likewise
 *   tv_json_end(&j)                         nothing but space may follow
 *
 * Strings are returned raw (pointers into the buffer, between the quotes);
 * escapes are checked when read and decoded on demand, so an unescaped
 * string costs nothing.  Numbers keep their integer value exactly when it
 * fits 64 bits (magnitude and sign).  Errors are sticky: the first one is
 * kept with its byte offset, and every later call fails with it.
 */
#ifndef TV_JSON_H
#define TV_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TV_JSON_MAX_DEPTH 128

enum tv_jtype {
    TV_J_NONE = 0,
    TV_J_OBJ,   /* '{' consumed: read members with tv_json_key */
    TV_J_ARR,   /* '[' consumed: read elements with tv_json_elem */
    TV_J_STR,
    TV_J_NUM,
    TV_J_TRUE,
    TV_J_FALSE,
    TV_J_NULL,
};

typedef struct tv_jval {
    uint8_t type;
    bool escaped;   /* strings: holds escapes (decode before use) */
    bool neg;       /* numbers: leading '-' */
    bool is_int;    /* numbers: no fraction or exponent */
    bool overflow;  /* numbers: integer magnitude above 2^64-1 */
    uint64_t mag;   /* numbers: integer magnitude (when is_int) */
    const char *p;  /* raw text: strings without quotes, numbers as is */
    size_t len;
} tv_jval_t;

typedef struct tv_json {
    const char *buf;
    size_t len, pos;
    size_t tok; /* where the last value or key read starts */
    unsigned depth, max_depth;
    bool pending;   /* a value must be read next */
    bool started;   /* the top-level value was read */
    int status;     /* 0, or the first error (TINYVMI_EFORMAT/ETRUNC) */
    size_t err_at;
    const char *why;
    uint8_t stack[TV_JSON_MAX_DEPTH]; /* per level: type | FIRST flag */
} tv_json_t;

void tv_json_init(tv_json_t *j, const char *buf, size_t len);
/* Nesting limit (1..TV_JSON_MAX_DEPTH; default TV_JSON_MAX_DEPTH). */
void tv_json_set_max_depth(tv_json_t *j, unsigned depth);

/* Reads the value due next.  0 or an error status. */
int tv_json_next(tv_json_t *j, tv_jval_t *v);
/* Skips the value due next (with everything nested in it), validating. */
int tv_json_skip(tv_json_t *j);
/* In an object: 1 with the next key (its value is due next), 0 at the end
 * of the object (consumed), or an error status. */
int tv_json_key(tv_json_t *j, tv_jval_t *key);
/* In an array: 1 when an element is due next, 0 at the end (consumed). */
int tv_json_elem(tv_json_t *j);
/* After the top-level value: only white space may follow. */
int tv_json_end(tv_json_t *j);

/* Strings.  Decoded UTF-8 is never longer than the raw text. */
bool tv_json_eq(const tv_jval_t *s, const char *lit);
/* Decodes into out (cap >= s->len suffices); returns the length. */
size_t tv_json_decode(const tv_jval_t *s, char *out, size_t cap);

/* Numbers: false when v is not an integer of that range. */
bool tv_json_u64(const tv_jval_t *v, uint64_t *out);
bool tv_json_i64(const tv_jval_t *v, int64_t *out);

/* "byte N (line L, column C): why" for the recorded error. */
size_t tv_json_error(const tv_json_t *j, char *buf, size_t size);
/* Records an error at the start of the last value or key read (for loaders that find the JSON
 * well-formed but not what they expect); returns status. */
int tv_json_fail(tv_json_t *j, int status, const char *why);


/* A growable buffer for decoded strings, for loaders (allocates through the
 * hooks; free with tv_jbuf_free). */
typedef struct tv_jbuf {
    char *p;
    size_t cap;
} tv_jbuf_t;

struct tinyvmi_hooks;
/* s decoded and NUL-terminated in b: *out (and *len without the NUL).
 * TINYVMI_ENOMEM or TINYVMI_EFORMAT (a NUL inside the string). */
int tv_jbuf_str(const struct tinyvmi_hooks *h, tv_jbuf_t *b,
                const tv_jval_t *s, const char **out, size_t *len);
void tv_jbuf_free(const struct tinyvmi_hooks *h, tv_jbuf_t *b);

#endif
