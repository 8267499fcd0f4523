/*
 * The streaming JSON reader (json.h).  One pass over the buffer, a stack of
 * container kinds in the reader itself (no allocation), RFC 8259 grammar:
 * strings are checked for control characters and escape syntax (including
 * \u surrogate pairs) when read, numbers for their grammar.
 */
#include "profile/json.h"

#include "core/tv.h"

#define ST_FIRST 0x80 /* stack flag: no member/element read yet */
#define ST_TYPE 0x7f

void tv_json_init(tv_json_t *j, const char *buf, size_t len)
{
    tv_memset(j, 0, sizeof *j);
    j->buf = buf;
    j->len = buf ? len : 0;
    j->max_depth = TV_JSON_MAX_DEPTH;
    j->pending = true;
}

void tv_json_set_max_depth(tv_json_t *j, unsigned depth)
{
    if (depth >= 1 && depth <= TV_JSON_MAX_DEPTH)
        j->max_depth = depth;
}

static int fail_at(tv_json_t *j, size_t at, int status, const char *why)
{
    if (j->status == 0) {
        j->status = status;
        j->err_at = at;
        j->why = why;
    }
    return j->status;
}

int tv_json_fail(tv_json_t *j, int status, const char *why)
{
    return fail_at(j, j->tok, status, why);
}

/* Truncation: the input ended where more was needed. */
static int truncated(tv_json_t *j, const char *why)
{
    return fail_at(j, j->len, TINYVMI_ETRUNC, why);
}

static void skip_ws(tv_json_t *j)
{
    const char *b = j->buf;
    size_t p = j->pos, n = j->len;
    while (p < n && (b[p] == ' ' || b[p] == '\n' || b[p] == '\r' ||
                     b[p] == '\t'))
        p++;
    j->pos = p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (bounds checked by the caller). */
static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string starting at the opening quote at j->pos. */
static int read_string(tv_json_t *j, tv_jval_t *v)
{
    const char *b = j->buf;
    size_t n = j->len, p = j->pos + 1;
    bool esc = false;
    for (;;) {
        /* The common case: plain bytes. */
        while (p < n && b[p] != '"' && b[p] != '\\' &&
               (unsigned char)b[p] >= 0x20)
            p++;
        if (p >= n)
            return truncated(j, "unterminated string");
        char c = b[p];
        if (c == '"')
            break;
        if (c != '\\')
            return fail_at(j, p, TINYVMI_EFORMAT,
                           "control character in string");
        esc = true;
        if (p + 1 >= n)
            return truncated(j, "unterminated escape in string");
        char e = b[p + 1];
        if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
            e == 'n' || e == 'r' || e == 't') {
            p += 2;
            continue;
        }
        if (e != 'u')
            return fail_at(j, p, TINYVMI_EFORMAT, "bad escape in string");
        if (n - p < 6)
            return truncated(j, "truncated \\u escape");
        int u = hex4(b + p + 2);
        if (u < 0)
            return fail_at(j, p, TINYVMI_EFORMAT, "bad \\u escape");
        if (u >= 0xdc00 && u <= 0xdfff)
            return fail_at(j, p, TINYVMI_EFORMAT,
                           "lone low surrogate in \\u escape");
        if (u >= 0xd800 && u <= 0xdbff) {
            if (n - p < 12)
                return truncated(j, "truncated surrogate pair");
            int lo = b[p + 6] == '\\' && b[p + 7] == 'u' ? hex4(b + p + 8)
                                                          : -1;
            if (lo < 0xdc00 || lo > 0xdfff)
                return fail_at(j, p, TINYVMI_EFORMAT,
                               "high surrogate without low surrogate");
            p += 12;
        } else {
            p += 6;
        }
    }
    v->type = TV_J_STR;
    v->escaped = esc;
    v->p = b + j->pos + 1;
    v->len = p - j->pos - 1;
    j->pos = p + 1;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int read_number(tv_json_t *j, tv_jval_t *v)
{
    const char *b = j->buf;
    size_t n = j->len, p = j->pos;
    v->type = TV_J_NUM;
    v->neg = false;
    v->is_int = true;
    v->overflow = false;
    v->mag = 0;
    if (b[p] == '-') {
        v->neg = true;
        p++;
    }
    if (p >= n)
        return truncated(j, "truncated number");
    if (!is_digit(b[p]))
        return fail_at(j, p, TINYVMI_EFORMAT, "bad number");
    if (b[p] == '0') {
        p++;
        if (p < n && is_digit(b[p]))
            return fail_at(j, p, TINYVMI_EFORMAT,
                           "leading zero in number");
    } else {
        uint64_t m = 0;
        while (p < n && is_digit(b[p])) {
            uint64_t d = (uint64_t)(b[p] - '0');
            if (m > (UINT64_MAX - d) / 10)
                v->overflow = true;
            else
                m = m * 10 + d;
            p++;
        }
        v->mag = v->overflow ? 0 : m;
    }
    if (p < n && b[p] == '.') {
        v->is_int = false;
        p++;
        if (p >= n)
            return truncated(j, "truncated number");
        if (!is_digit(b[p]))
            return fail_at(j, p, TINYVMI_EFORMAT, "no digits after '.'");
        while (p < n && is_digit(b[p]))
            p++;
    }
    if (p < n && (b[p] == 'e' || b[p] == 'E')) {
        v->is_int = false;
        p++;
        if (p < n && (b[p] == '+' || b[p] == '-'))
            p++;
        if (p >= n)
            return truncated(j, "truncated number");
        if (!is_digit(b[p]))
            return fail_at(j, p, TINYVMI_EFORMAT, "no digits in exponent");
        while (p < n && is_digit(b[p]))
            p++;
    }
    v->p = b + j->pos;
    v->len = p - j->pos;
    j->pos = p;
    return 0;
}

static int read_word(tv_json_t *j, const char *w, size_t wl, uint8_t type,
                     tv_jval_t *v)
{
    size_t avail = j->len - j->pos;
    size_t cmp = avail < wl ? avail : wl;
    if (tv_memcmp(j->buf + j->pos, w, cmp) != 0)
        return fail_at(j, j->pos, TINYVMI_EFORMAT, "unexpected character");
    if (cmp < wl)
        return truncated(j, "truncated literal");
    v->type = type;
    v->p = j->buf + j->pos;
    v->len = wl;
    j->pos += wl;
    return 0;
}

static int push(tv_json_t *j, uint8_t type)
{
    if (j->depth >= j->max_depth)
        return fail_at(j, j->pos, TINYVMI_EFORMAT, "nesting too deep");
    j->stack[j->depth++] = (uint8_t)(type | ST_FIRST);
    j->pos++;
    return 0;
}

int tv_json_next(tv_json_t *j, tv_jval_t *v)
{
    if (j->status)
        return j->status;
    if (!j->pending)
        return fail_at(j, j->pos, TINYVMI_EFORMAT,
                       "reader misuse: no value due here");
    v->type = TV_J_NONE;
    v->escaped = false;
    skip_ws(j);
    if (j->pos >= j->len)
        return truncated(j, "value expected");
    j->pending = false;
    j->started = true;
    j->tok = j->pos;
    char c = j->buf[j->pos];
    v->p = j->buf + j->pos;
    v->len = 1;
    switch (c) {
    case '{':
        v->type = TV_J_OBJ;
        return push(j, TV_J_OBJ);
    case '[':
        v->type = TV_J_ARR;
        return push(j, TV_J_ARR);
    case '"':
        return read_string(j, v);
    case 't':
        return read_word(j, "true", 4, TV_J_TRUE, v);
    case 'f':
        return read_word(j, "false", 5, TV_J_FALSE, v);
    case 'n':
        return read_word(j, "null", 4, TV_J_NULL, v);
    default:
        if (c == '-' || is_digit(c))
            return read_number(j, v);
        return fail_at(j, j->pos, TINYVMI_EFORMAT, "value expected");
    }
}

/* Common to key and elem: at '}'/']' or at ',' between items. */
static int item(tv_json_t *j, uint8_t type)
{
    if (j->status)
        return j->status;
    if (j->pending || j->depth == 0 ||
        (j->stack[j->depth - 1] & ST_TYPE) != type)
        return fail_at(j, j->pos, TINYVMI_EFORMAT,
                       "reader misuse: not inside that container");
    skip_ws(j);
    if (j->pos >= j->len)
        return truncated(j, type == TV_J_OBJ ? "unterminated object"
                                         : "unterminated array");
    char c = j->buf[j->pos];
    char close = type == TV_J_OBJ ? '}' : ']';
    uint8_t *top = &j->stack[j->depth - 1];
    if (c == close) {
        j->pos++;
        j->depth--;
        return 0;
    }
    if (*top & ST_FIRST) {
        *top &= (uint8_t)~ST_FIRST;
    } else {
        if (c != ',')
            return fail_at(j, j->pos, TINYVMI_EFORMAT,
                           type == TV_J_OBJ ? "',' or '}' expected"
                                            : "',' or ']' expected");
        j->pos++;
        skip_ws(j);
        if (j->pos >= j->len)
            return truncated(j, "value expected after ','");
        if (j->buf[j->pos] == close)
            return fail_at(j, j->pos, TINYVMI_EFORMAT, "trailing ','");
    }
    return 1;
}

int tv_json_key(tv_json_t *j, tv_jval_t *key)
{
    int rc = item(j, TV_J_OBJ);
    if (rc <= 0)
        return rc;
    if (j->buf[j->pos] != '"')
        return fail_at(j, j->pos, TINYVMI_EFORMAT, "object key expected");
    j->tok = j->pos;
    if ((rc = read_string(j, key)) != 0)
        return rc;
    skip_ws(j);
    if (j->pos >= j->len)
        return truncated(j, "':' expected");
    if (j->buf[j->pos] != ':')
        return fail_at(j, j->pos, TINYVMI_EFORMAT, "':' expected");
    j->pos++;
    j->pending = true;
    return 1;
}

int tv_json_elem(tv_json_t *j)
{
    int rc = item(j, TV_J_ARR);
    if (rc == 1)
        j->pending = true;
    return rc;
}

int tv_json_skip(tv_json_t *j)
{
    tv_jval_t v;
    int rc = tv_json_next(j, &v);
    if (rc)
        return rc;
    if (v.type != TV_J_OBJ && v.type != TV_J_ARR)
        return 0;
    unsigned base = j->depth;
    /* Bounded: every step consumes input or closes a level. */
    while (j->depth >= base) {
        uint8_t top = j->stack[j->depth - 1] & ST_TYPE;
        rc = top == TV_J_OBJ ? tv_json_key(j, &v) : tv_json_elem(j);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        if ((rc = tv_json_next(j, &v)) != 0)
            return rc;
    }
    return 0;
}

int tv_json_end(tv_json_t *j)
{
    if (j->status)
        return j->status;
    if (!j->started || j->pending || j->depth)
        return truncated(j, "document incomplete");
    skip_ws(j);
    if (j->pos != j->len)
        return fail_at(j, j->pos, TINYVMI_EFORMAT,
                       "data after the top-level value");
    return 0;
}

/* ---- strings and numbers --------------------------------------------------- */

/* Decodes one escape at s[*i] (after the backslash was seen at s[*i]);
 * writes up to 4 bytes to u8, returns their count.  The reader validated
 * the escape already. */
static size_t decode_escape(const char *s, size_t len, size_t *i, char *u8)
{
    char e = s[*i + 1];
    const char *simple = "\"\\/bfnrt";
    const char *to = "\"\\/\b\f\n\r\t";
    for (int k = 0; simple[k]; k++) {
        if (e == simple[k]) {
            *i += 2;
            u8[0] = to[k];
            return 1;
        }
    }
    uint32_t cp = 0;
    if (*i + 6 <= len)
        cp = (uint32_t)hex4(s + *i + 2);
    *i += 6;
    if (cp >= 0xd800 && cp <= 0xdbff && *i + 6 <= len) {
        uint32_t lo = (uint32_t)hex4(s + *i + 2);
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        *i += 6;
    }
    if (cp < 0x80) {
        u8[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u8[0] = (char)(0xc0 | (cp >> 6));
        u8[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        u8[0] = (char)(0xe0 | (cp >> 12));
        u8[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u8[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    u8[0] = (char)(0xf0 | (cp >> 18));
    u8[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u8[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u8[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t tv_json_decode(const tv_jval_t *s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s->len;) {
        char u8[4];
        size_t k;
        if (s->p[i] == '\\' && i + 1 < s->len) {
            k = decode_escape(s->p, s->len, &i, u8);
        } else {
            u8[0] = s->p[i++];
            k = 1;
        }
        if (o + k > cap)
            break;
        tv_memcpy(out + o, u8, k);
        o += k;
    }
    return o;
}

bool tv_json_eq(const tv_jval_t *s, const char *lit)
{
    if (s->type != TV_J_STR)
        return false;
    if (!s->escaped) {
        size_t n = tv_strlen(lit);
        return n == s->len && tv_memcmp(s->p, lit, n) == 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < s->len;) {
        char u8[4];
        size_t k;
        if (s->p[i] == '\\' && i + 1 < s->len) {
            k = decode_escape(s->p, s->len, &i, u8);
        } else {
            u8[0] = s->p[i++];
            k = 1;
        }
        for (size_t m = 0; m < k; m++, o++)
            if (lit[o] == '\0' || lit[o] != u8[m])
                return false;
    }
    return lit[o] == '\0';
}

bool tv_json_u64(const tv_jval_t *v, uint64_t *out)
{
    if (v->type != TV_J_NUM || !v->is_int || v->overflow ||
        (v->neg && v->mag != 0))
        return false;
    *out = v->mag;
    return true;
}

bool tv_json_i64(const tv_jval_t *v, int64_t *out)
{
    if (v->type != TV_J_NUM || !v->is_int || v->overflow)
        return false;
    if (v->neg) {
        if (v->mag > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                  : -(int64_t)v->mag;
    } else {
        if (v->mag > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->mag;
    }
    return true;
}

size_t tv_json_error(const tv_json_t *j, char *buf, size_t size)
{
    if (!j->status)
        return tv_fmt(buf, size, "no error");
    size_t line = 1, col = 1;
    for (size_t i = 0; i < j->err_at && i < j->len; i++) {
        if (j->buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return tv_fmt(buf, size, "byte %zu (line %zu, column %zu): %s",
                  j->err_at, line, col, j->why ? j->why : "error");
}

/* ---- decoded strings for loaders ------------------------------------------- */

int tv_jbuf_str(const struct tinyvmi_hooks *h, tv_jbuf_t *b,
                const tv_jval_t *s, const char **out, size_t *len)
{
    if (s->len >= SIZE_MAX / 2)
        return TINYVMI_ERANGE;
    if (b->cap < s->len + 1) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < s->len + 1)
            ncap *= 2;
        char *np = h->alloc(h->alloc_ctx, b->p, b->cap, ncap);
        if (!np)
            return TINYVMI_ENOMEM;
        b->p = np;
        b->cap = ncap;
    }
    size_t n;
    if (s->escaped) {
        n = tv_json_decode(s, b->p, b->cap - 1);
        for (size_t i = 0; i < n; i++)
            if (b->p[i] == '\0')
                return TINYVMI_EFORMAT;
    } else {
        n = s->len;
        tv_memcpy(b->p, s->p, n);
    }
    b->p[n] = '\0';
    *out = b->p;
    if (len)
        *len = n;
    return 0;
}

void tv_jbuf_free(const struct tinyvmi_hooks *h, tv_jbuf_t *b)
{
    if (b->p)
        (void)h->alloc(h->alloc_ctx, b->p, b->cap, 0);
    b->p = NULL;
    b->cap = 0;
}
