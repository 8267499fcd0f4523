/*
 * libvmi.conf parser (see conf.h for the syntax).  A hand-written
 * recursive descent over the buffer: every loop advances through the
 * input or stops at its end, so hostile text cannot make it hang.
 *
 * Storage: all strings live in one pool (offsets until the parse ends, so
 * the pool may move while growing); entries and assignments are arrays,
 * an entry's assignments contiguous.
 */
#include "config/conf.h"

#include "core/tv.h"

typedef struct kv_rec {
    size_t key, str; /* pool offsets */
    uint64_t num;
    uint32_t line;
    uint8_t type;
    bool known;
} kv_rec_t;

struct tv_conf_entry {
    const tv_conf_t *conf;
    size_t name; /* pool offset */
    uint32_t line;
    size_t first, n; /* its assignments: kv[first .. first+n) */
};

struct tv_conf {
    const tinyvmi_hooks_t *hooks;
    char *err;
    size_t errlen;
    char *pool;
    size_t pool_len, pool_cap;
    tv_conf_entry_t *ent;
    size_t nent, ent_cap;
    kv_rec_t *kv;
    size_t nkv, kv_cap;
    size_t warn[TV_CONF_MAX_WARNINGS]; /* pool offsets */
    size_t nwarn;                      /* all, kept or not */
};

/* ---- keys LibVMI documents ------------------------------------------------ */

static const struct {
    const char *name;
    uint8_t type;
} known_keys[] = {
    {"ostype", TV_CONF_STR},          {"os_type", TV_CONF_STR},
    {"sysmap", TV_CONF_STR},          {"rekall_profile", TV_CONF_STR},
    {"volatility_ist", TV_CONF_STR},  {"kpgd", TV_CONF_NUM},
    {"linux_tasks", TV_CONF_NUM},     {"linux_mm", TV_CONF_NUM},
    {"linux_pid", TV_CONF_NUM},       {"linux_name", TV_CONF_NUM},
    {"linux_pgd", TV_CONF_NUM},       {"linux_addr", TV_CONF_NUM},
    {"linux_init_task", TV_CONF_NUM}, {"linux_kaslr", TV_CONF_NUM},
    {"win_ntoskrnl", TV_CONF_NUM},    {"win_ntoskrnl_va", TV_CONF_NUM},
    {"win_tasks", TV_CONF_NUM},       {"win_pdbase", TV_CONF_NUM},
    {"win_pid", TV_CONF_NUM},         {"win_pname", TV_CONF_NUM},
    {"win_kdvb", TV_CONF_NUM},        {"win_kdbg", TV_CONF_NUM},
    {"win_kpcr", TV_CONF_NUM},        {"win_sysproc", TV_CONF_NUM},
    {"win_symbols", TV_CONF_STR}, /* TinyVMI: a Volatility 3 symbol dir */
    {"freebsd_name", TV_CONF_NUM},    {"freebsd_pid", TV_CONF_NUM},
    {"freebsd_vmspace", TV_CONF_NUM}, {"freebsd_pmap", TV_CONF_NUM},
    {"freebsd_pgd", TV_CONF_NUM},
};

int tv_conf_key_type(const char *key)
{
    if (!key)
        return TV_CONF_NONE;
    for (size_t i = 0; i < TV_ARRAY_LEN(known_keys); i++)
        if (tv_strcmp(known_keys[i].name, key) == 0)
            return known_keys[i].type;
    return TV_CONF_NONE;
}

/* ---- errors and memory ------------------------------------------------------- */

static int cfail(char *err, size_t errlen, int status, const char *fmt, ...)
    TV_PRINTF(4, 5);
static int cfail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        tv_vfmt(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

static void *hrealloc(const tinyvmi_hooks_t *h, void *p, size_t old,
                      size_t size)
{
    return h->alloc(h->alloc_ctx, p, old, size);
}

/* Makes room for need elements of elem bytes in *arr (capacity *cap). */
static int grow(tv_conf_t *c, void **arr, size_t *cap, size_t need,
                size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            goto oom;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem)
        goto oom;
    void *p = hrealloc(c->hooks, *arr, *cap * elem, ncap * elem);
    if (!p)
        goto oom;
    *arr = p;
    *cap = ncap;
    return 0;
oom:
    return cfail(c->err, c->errlen, TINYVMI_ENOMEM,
                 "out of memory growing the config to %zu items", need);
}

/* Copies s[0..n) and a NUL into the pool; *off gets its offset. */
static int pool_add(tv_conf_t *c, const char *s, size_t n, size_t *off)
{
    if (n >= SIZE_MAX - c->pool_len - 1)
        return cfail(c->err, c->errlen, TINYVMI_ENOMEM, "config too large");
    void *p = c->pool;
    int rc = grow(c, &p, &c->pool_cap, c->pool_len + n + 1, 1);
    c->pool = p;
    if (rc)
        return rc;
    tv_memcpy(c->pool + c->pool_len, s, n);
    c->pool[c->pool_len + n] = '\0';
    *off = c->pool_len;
    c->pool_len += n + 1;
    return 0;
}

static const char *pstr(const tv_conf_t *c, size_t off)
{
    return c->pool + off;
}

static int warn(tv_conf_t *c, const char *fmt, ...) TV_PRINTF(2, 3);
static int warn(tv_conf_t *c, const char *fmt, ...)
{
    size_t i = c->nwarn++;
    if (i >= TV_CONF_MAX_WARNINGS)
        return 0;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    tv_vfmt(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pool_add(c, msg, tv_strlen(msg), &c->warn[i]);
}

int tv_conf_add_warning(tv_conf_t *c, const char *msg)
{
    return warn(c, "%s", msg);
}

int tv_conf_new(const tv_pctx_t *ctx, tv_conf_t **out)
{
    if (!out)
        return TINYVMI_EINVAL;
    *out = NULL;
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc)
        return cfail(ctx ? ctx->err : NULL, ctx ? ctx->errlen : 0,
                     TINYVMI_EINVAL, "no allocator given");
    tv_conf_t *c = hrealloc(ctx->hooks, NULL, 0, sizeof *c);
    if (!c)
        return cfail(ctx->err, ctx->errlen, TINYVMI_ENOMEM,
                     "out of memory allocating the config");
    tv_memset(c, 0, sizeof *c);
    c->hooks = ctx->hooks;
    c->err = ctx->err;
    c->errlen = ctx->errlen;
    *out = c;
    return 0;
}

void tv_conf_free(tv_conf_t *c)
{
    if (!c)
        return;
    const tinyvmi_hooks_t *h = c->hooks;
    if (c->pool)
        hrealloc(h, c->pool, c->pool_cap, 0);
    if (c->ent)
        hrealloc(h, c->ent, c->ent_cap * sizeof *c->ent, 0);
    if (c->kv)
        hrealloc(h, c->kv, c->kv_cap * sizeof *c->kv, 0);
    hrealloc(h, c, sizeof *c, 0);
}

/* ---- adding entries and values ---------------------------------------------- */

static int add_entry(tv_conf_t *c, const char *name, size_t n, uint32_t line)
{
    void *p = c->ent;
    int rc = grow(c, &p, &c->ent_cap, c->nent + 1, sizeof *c->ent);
    c->ent = p;
    if (rc)
        return rc;
    tv_conf_entry_t *e = &c->ent[c->nent];
    tv_memset(e, 0, sizeof *e);
    if ((rc = pool_add(c, name, n, &e->name)) != 0)
        return rc;
    e->conf = c;
    e->line = line;
    e->first = c->nkv;
    c->nent++;
    return 0;
}

int tv_conf_add_entry(tv_conf_t *c, const char *name)
{
    if (!c || !name)
        return TINYVMI_EINVAL;
    size_t n = tv_strnlen(name, TV_CONF_MAX_TOKEN + 1);
    if (n == 0 || n > TV_CONF_MAX_TOKEN)
        return cfail(c->err, c->errlen, TINYVMI_EINVAL,
                     "entry name is empty or longer than %u bytes",
                     TV_CONF_MAX_TOKEN);
    return add_entry(c, name, n, 0);
}

/* Where the message of a warning or error about line `line` starts. */
static size_t at_line(char *buf, size_t size, uint32_t line)
{
    if (!line) {
        buf[0] = '\0';
        return 0;
    }
    return tv_fmt(buf, size, "line %u: ", (unsigned)line);
}

/* Adds key = value to the last entry.  The caller has checked the type
 * against the key.  A repeated key replaces the earlier value. */
static int add_kv(tv_conf_t *c, const char *key, size_t klen,
                  const char *str, size_t slen, uint8_t type, uint64_t num,
                  uint32_t line)
{
    if (c->nent == 0)
        return cfail(c->err, c->errlen, TINYVMI_ESTATE,
                     "a value was added before any entry");
    tv_conf_entry_t *e = &c->ent[c->nent - 1];
    char pre[32];
    size_t off;
    int rc = pool_add(c, key, klen, &off);
    if (rc)
        return rc;
    const char *k = pstr(c, off);
    int ktype = tv_conf_key_type(k);
    kv_rec_t *slot = NULL;
    for (size_t i = 0; i < e->n; i++)
        if (tv_strcmp(pstr(c, c->kv[e->first + i].key), k) == 0)
            slot = &c->kv[e->first + i];
    at_line(pre, sizeof pre, line);
    if (slot) {
        if (slot->line)
            rc = warn(c, "%s'%s' set again (first at line %u); the last "
                      "value is used", pre, k, (unsigned)slot->line);
        else
            rc = warn(c, "%s'%s' set again; the last value is used", pre,
                      k);
    } else {
        void *p = c->kv;
        rc = grow(c, &p, &c->kv_cap, c->nkv + 1, sizeof *c->kv);
        c->kv = p;
        if (rc)
            return rc;
        slot = &c->kv[c->nkv++];
        e->n++;
        slot->key = off;
        if (ktype == TV_CONF_NONE)
            rc = warn(c, "%sunknown key '%s' in entry '%s' (kept)", pre, k,
                      pstr(c, e->name));
        else if (tv_strcmp(k, "linux_addr") == 0)
            rc = warn(c, "%s'linux_addr' is no longer used by LibVMI", pre);
    }
    if (rc)
        return rc;
    size_t soff;
    if ((rc = pool_add(c, str, slen, &soff)) != 0)
        return rc;
    slot->str = soff;
    slot->num = num;
    slot->type = type;
    slot->known = ktype != TV_CONF_NONE;
    slot->line = line;
    return 0;
}

static int type_error(tv_conf_t *c, const char *key, int want)
{
    return cfail(c->err, c->errlen, TINYVMI_EINVAL,
                 "'%s' takes a %s", key,
                 want == TV_CONF_NUM ? "number" : "string");
}

int tv_conf_add_str(tv_conf_t *c, const char *key, const char *value)
{
    if (!c || !key || !value)
        return TINYVMI_EINVAL;
    size_t kl = tv_strnlen(key, TV_CONF_MAX_TOKEN + 1);
    size_t vl = tv_strnlen(value, TV_CONF_MAX_TOKEN + 1);
    if (kl == 0 || kl > TV_CONF_MAX_TOKEN || vl > TV_CONF_MAX_TOKEN)
        return cfail(c->err, c->errlen, TINYVMI_EINVAL,
                     "key or value empty or longer than %u bytes",
                     TV_CONF_MAX_TOKEN);
    if (tv_conf_key_type(key) == TV_CONF_NUM)
        return type_error(c, key, TV_CONF_NUM);
    return add_kv(c, key, kl, value, vl, TV_CONF_STR, 0, 0);
}

int tv_conf_add_u64(tv_conf_t *c, const char *key, uint64_t value)
{
    if (!c || !key)
        return TINYVMI_EINVAL;
    size_t kl = tv_strnlen(key, TV_CONF_MAX_TOKEN + 1);
    if (kl == 0 || kl > TV_CONF_MAX_TOKEN)
        return cfail(c->err, c->errlen, TINYVMI_EINVAL,
                     "key empty or longer than %u bytes", TV_CONF_MAX_TOKEN);
    if (tv_conf_key_type(key) == TV_CONF_STR)
        return type_error(c, key, TV_CONF_STR);
    char text[24];
    size_t n = tv_fmt(text, sizeof text, "0x%llx", (unsigned long long)value);
    return add_kv(c, key, kl, text, n, TV_CONF_NUM, value, 0);
}

/* ---- the parser ------------------------------------------------------------- */

typedef struct ps {
    tv_conf_t *c;
    const char *s;
    size_t len, pos;
    uint32_t line;
    size_t line_start; /* offset of the current line's first byte */
} ps_t;

/* A point in the text, for messages. */
typedef struct loc {
    uint32_t line;
    size_t col;
} loc_t;

static loc_t here(const ps_t *p)
{
    loc_t l = {p->line, p->pos - p->line_start + 1};
    return l;
}

static int perr(const ps_t *p, loc_t at, int status, const char *fmt, ...)
    TV_PRINTF(4, 5);
static int perr(const ps_t *p, loc_t at, int status, const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    tv_vfmt(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cfail(p->c->err, p->c->errlen, status, "line %u, column %zu: %s",
                 (unsigned)at.line, at.col, msg);
}

/* What is at the current position, for "found ..." in messages. */
static void describe(const ps_t *p, char *buf, size_t size)
{
    if (p->pos >= p->len) {
        tv_fmt(buf, size, "the end of the input");
        return;
    }
    unsigned char ch = (unsigned char)p->s[p->pos];
    if (ch > 0x20 && ch < 0x7f)
        tv_fmt(buf, size, "'%c'", ch);
    else if (ch == '\n')
        tv_fmt(buf, size, "the end of the line");
    else
        tv_fmt(buf, size, "byte 0x%02x", ch);
}

static bool is_alnum(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9');
}

static bool is_key_start(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_key_char(int ch)
{
    return is_alnum(ch) || ch == '_';
}

/* Characters of bare names, paths and numbers. */
static bool is_bare(int ch)
{
    return is_alnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/' ||
           ch == '+' || ch == ':' || ch == '~' || ch == '@' || ch == ',';
}

static int peek(const ps_t *p)
{
    return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static void skip_space(ps_t *p)
{
    while (p->pos < p->len) {
        char ch = p->s[p->pos];
        if (ch == '\n') {
            p->pos++;
            p->line++;
            p->line_start = p->pos;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
                   ch == '\v') {
            p->pos++;
        } else if (ch == '#') {
            while (p->pos < p->len && p->s[p->pos] != '\n')
                p->pos++;
        } else {
            return;
        }
    }
}

/* A quoted string: *start and *n get its contents (no escapes). */
static int quoted(ps_t *p, const char **start, size_t *n)
{
    loc_t open = here(p);
    size_t i = p->pos + 1;
    while (i < p->len && p->s[i] != '"') {
        unsigned char ch = (unsigned char)p->s[i];
        if (ch == '\n')
            break;
        if (ch < 0x20 && ch != '\t') {
            p->pos = i;
            return perr(p, here(p), TINYVMI_EFORMAT,
                        "control character 0x%02x in a string", ch);
        }
        i++;
    }
    if (i >= p->len || p->s[i] != '"')
        return perr(p, open, TINYVMI_EFORMAT,
                    "unterminated string: no closing '\"' on this line");
    *start = p->s + p->pos + 1;
    *n = i - p->pos - 1;
    if (*n > TV_CONF_MAX_TOKEN)
        return perr(p, open, TINYVMI_ERANGE,
                    "string of %zu bytes (at most %u)", *n,
                    TV_CONF_MAX_TOKEN);
    p->pos = i + 1;
    return 0;
}

/* A run of bare characters (possibly empty). */
static int bare(ps_t *p, const char **start, size_t *n)
{
    loc_t at = here(p);
    size_t i = p->pos;
    while (i < p->len && is_bare((unsigned char)p->s[i]))
        i++;
    *start = p->s + p->pos;
    *n = i - p->pos;
    if (*n > TV_CONF_MAX_TOKEN)
        return perr(p, at, TINYVMI_ERANGE, "word of %zu bytes (at most %u)",
                    *n, TV_CONF_MAX_TOKEN);
    p->pos = i;
    return 0;
}

static int digit_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return 99;
}

/* Numbers as LibVMI reads them (strtoull base 0), but strictly: the whole
 * word must be a number.  Returns 0, EFORMAT (not a number) or ERANGE. */
static int parse_number(const char *s, size_t n, uint64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8;
        i = 1;
    }
    if (i >= n)
        return TINYVMI_EFORMAT;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)digit_value((unsigned char)s[i]);
        if (d >= base)
            return TINYVMI_EFORMAT;
        if (v > (UINT64_MAX - d) / base)
            return TINYVMI_ERANGE;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

/* key = value ; */
static int assignment(ps_t *p)
{
    tv_conf_t *c = p->c;
    loc_t kat = here(p);
    size_t k0 = p->pos;
    while (p->pos < p->len && is_key_char((unsigned char)p->s[p->pos]))
        p->pos++;
    size_t klen = p->pos - k0;
    if (klen > 64)
        return perr(p, kat, TINYVMI_ERANGE, "key of %zu bytes (at most 64)",
                    klen);
    char key[65];
    tv_memcpy(key, p->s + k0, klen);
    key[klen] = '\0';
    char found[32];
    skip_space(p);
    if (peek(p) != '=') {
        describe(p, found, sizeof found);
        return perr(p, here(p), TINYVMI_EFORMAT,
                    "expected '=' after '%s', found %s", key, found);
    }
    p->pos++;
    skip_space(p);
    loc_t vat = here(p);
    int ktype = tv_conf_key_type(key);
    const char *v;
    size_t vlen;
    int rc;
    bool was_quoted = peek(p) == '"';
    if (was_quoted)
        rc = quoted(p, &v, &vlen);
    else
        rc = bare(p, &v, &vlen);
    if (rc)
        return rc;
    if (!was_quoted && vlen == 0) {
        describe(p, found, sizeof found);
        return perr(p, vat, TINYVMI_EFORMAT,
                    "expected a value for '%s', found %s", key, found);
    }
    uint8_t type = TV_CONF_STR;
    uint64_t num = 0;
    if (ktype == TV_CONF_NUM) {
        if (was_quoted)
            return perr(p, vat, TINYVMI_EFORMAT,
                        "'%s' takes a number, not a quoted string", key);
        rc = parse_number(v, vlen, &num);
        if (rc == TINYVMI_ERANGE)
            return perr(p, vat, rc,
                        "number '%.*s' for '%s' does not fit in 64 bits",
                        (int)(vlen > 40 ? 40 : vlen), v, key);
        if (rc)
            return perr(p, vat, rc, "'%s' takes a number, not '%.*s'", key,
                        (int)(vlen > 40 ? 40 : vlen), v);
        type = TV_CONF_NUM;
    } else if (ktype == TV_CONF_NONE && !was_quoted && v[0] >= '0' &&
               v[0] <= '9' && parse_number(v, vlen, &num) == 0) {
        type = TV_CONF_NUM;
    }
    skip_space(p);
    if (peek(p) != ';') {
        describe(p, found, sizeof found);
        return perr(p, here(p), TINYVMI_EFORMAT,
                    "expected ';' after the value of '%s', found %s", key,
                    found);
    }
    p->pos++;
    return add_kv(c, key, klen, v, vlen, type, num, kat.line);
}

/* { assignments } for an entry already added; p is at the '{'. */
static int body(ps_t *p)
{
    const char *name = pstr(p->c, p->c->ent[p->c->nent - 1].name);
    loc_t open = here(p);
    char found[32];
    if (peek(p) != '{') {
        describe(p, found, sizeof found);
        return perr(p, open, TINYVMI_EFORMAT,
                    "expected '{' after the entry name '%.40s', found %s",
                    name, found);
    }
    p->pos++;
    for (;;) {
        skip_space(p);
        int ch = peek(p);
        if (ch < 0)
            return perr(p, here(p), TINYVMI_ETRUNC,
                        "entry '%.40s' (opened at line %u) has no closing "
                        "'}'", name, (unsigned)open.line);
        if (ch == '}') {
            p->pos++;
            return 0;
        }
        if (ch == ';') {
            p->pos++;
            continue;
        }
        if (!is_key_start(ch)) {
            describe(p, found, sizeof found);
            return perr(p, here(p), TINYVMI_EFORMAT,
                        "expected a key or '}' in entry '%.40s', found %s",
                        name, found);
        }
        int rc = assignment(p);
        if (rc)
            return rc;
        name = pstr(p->c, p->c->ent[p->c->nent - 1].name); /* pool moved */
    }
}

static int entry(ps_t *p)
{
    loc_t at = here(p);
    const char *name;
    size_t n;
    int rc;
    if (peek(p) == '"')
        rc = quoted(p, &name, &n);
    else
        rc = bare(p, &name, &n);
    if (rc)
        return rc;
    if (n == 0) {
        char found[32];
        describe(p, found, sizeof found);
        return perr(p, at, TINYVMI_EFORMAT,
                    "expected an entry name, found %s", found);
    }
    if ((rc = add_entry(p->c, name, n, at.line)) != 0)
        return rc;
    skip_space(p);
    return body(p);
}

static int start(const tv_pctx_t *ctx, const char *text, size_t len,
                 tv_conf_t **out, ps_t *p)
{
    int rc = tv_conf_new(ctx, out);
    if (rc)
        return rc;
    if (!text && len)
        return cfail(ctx->err, ctx->errlen, TINYVMI_EINVAL, "no text");
    if (len > TV_CONF_MAX_TEXT)
        return cfail(ctx->err, ctx->errlen, TINYVMI_ERANGE,
                     "config of %zu bytes is too large (at most %u)", len,
                     TV_CONF_MAX_TEXT);
    tv_memset(p, 0, sizeof *p);
    p->c = *out;
    p->s = text;
    p->len = len;
    p->line = 1;
    return 0;
}

static int finish(int rc, tv_conf_t **out)
{
    if (rc) {
        tv_conf_free(*out);
        *out = NULL;
    }
    return rc;
}

int tv_conf_parse(const tv_pctx_t *ctx, const char *text, size_t len,
                  tv_conf_t **out)
{
    ps_t p;
    int rc = start(ctx, text, len, out, &p);
    if (rc)
        return finish(rc, out);
    for (;;) {
        skip_space(&p);
        if (p.pos >= p.len)
            break;
        if ((rc = entry(&p)) != 0)
            break;
    }
    return finish(rc, out);
}

int tv_conf_parse_body(const tv_pctx_t *ctx, const char *name,
                       const char *text, size_t len, tv_conf_t **out)
{
    ps_t p;
    int rc = start(ctx, text, len, out, &p);
    if (rc)
        return finish(rc, out);
    if ((rc = tv_conf_add_entry(p.c, name)) != 0)
        return finish(rc, out);
    skip_space(&p);
    if ((rc = body(&p)) != 0)
        return finish(rc, out);
    skip_space(&p);
    if (p.pos < p.len) {
        char found[32];
        describe(&p, found, sizeof found);
        rc = perr(&p, here(&p), TINYVMI_EFORMAT,
                  "expected the end of the input after the entry's '}', "
                  "found %s", found);
    }
    return finish(rc, out);
}

/* ---- queries ------------------------------------------------------------------- */

size_t tv_conf_count(const tv_conf_t *c)
{
    return c ? c->nent : 0;
}

const tv_conf_entry_t *tv_conf_entry_at(const tv_conf_t *c, size_t i)
{
    return c && i < c->nent ? &c->ent[i] : NULL;
}

const tv_conf_entry_t *tv_conf_find(const tv_conf_t *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = c->nent; i-- > 0;)
        if (tv_strcmp(pstr(c, c->ent[i].name), name) == 0)
            return &c->ent[i];
    return NULL;
}

const char *tv_conf_name(const tv_conf_entry_t *e)
{
    return e ? pstr(e->conf, e->name) : NULL;
}

uint32_t tv_conf_line(const tv_conf_entry_t *e)
{
    return e ? e->line : 0;
}

size_t tv_conf_nkeys(const tv_conf_entry_t *e)
{
    return e ? e->n : 0;
}

bool tv_conf_kv_at(const tv_conf_entry_t *e, size_t i, tv_conf_kv_t *out)
{
    if (!e || i >= e->n || !out)
        return false;
    const tv_conf_t *c = e->conf;
    const kv_rec_t *r = &c->kv[e->first + i];
    out->key = pstr(c, r->key);
    out->str = pstr(c, r->str);
    out->num = r->num;
    out->type = r->type;
    out->known = r->known;
    out->line = r->line;
    return true;
}

bool tv_conf_get(const tv_conf_entry_t *e, const char *key,
                 tv_conf_kv_t *out)
{
    if (!e || !key)
        return false;
    for (size_t i = 0; i < e->n; i++)
        if (tv_strcmp(pstr(e->conf, e->conf->kv[e->first + i].key), key) ==
            0)
            return tv_conf_kv_at(e, i, out);
    return false;
}

const char *tv_conf_str(const tv_conf_entry_t *e, const char *key)
{
    tv_conf_kv_t kv;
    if (!tv_conf_get(e, key, &kv) || kv.type != TV_CONF_STR)
        return NULL;
    return kv.str;
}

bool tv_conf_u64(const tv_conf_entry_t *e, const char *key, uint64_t *v)
{
    tv_conf_kv_t kv;
    if (!tv_conf_get(e, key, &kv) || kv.type != TV_CONF_NUM)
        return false;
    if (v)
        *v = kv.num;
    return true;
}

os_t tv_conf_ostype(const tv_conf_entry_t *e)
{
    const char *s = tv_conf_str(e, "ostype");
    if (!s)
        s = tv_conf_str(e, "os_type");
    if (!s)
        return VMI_OS_UNKNOWN;
    if (tv_strcmp(s, "Linux") == 0)
        return VMI_OS_LINUX;
    if (tv_strcmp(s, "Windows") == 0)
        return VMI_OS_WINDOWS;
    if (tv_strcmp(s, "FreeBSD") == 0)
        return VMI_OS_FREEBSD;
    return VMI_OS_UNKNOWN;
}

size_t tv_conf_nwarnings(const tv_conf_t *c)
{
    return c ? c->nwarn : 0;
}

const char *tv_conf_warning(const tv_conf_t *c, size_t i)
{
    if (!c || i >= c->nwarn || i >= TV_CONF_MAX_WARNINGS)
        return NULL;
    return pstr(c, c->warn[i]);
}
