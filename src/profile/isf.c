/*
 * Volatility 3 ISF (Intermediate Symbol Format, format versions 4.x-6.x)
 * into a symbol/type table, in one pass with the streaming JSON reader.
 * Sections may come in any order, and so may keys inside objects: a field's
 * "type" is buffered until its "offset" is known, and a user type whose
 * "fields" come before its "kind"/"size" gets its fields read in a second,
 * local pass (the position is remembered, the value skipped).
 */
#include "profile/profile.h"

#include "core/tv.h"
#include "profile/json.h"

#define TYPE_DEPTH 32 /* pointer to array of pointer to ... */

typedef struct isf {
    const tv_pctx_t *ctx;
    tv_symtab_t *t;
    tv_json_t *j;
    const char *section; /* for messages */
    tv_jval_t item;      /* the entry being read, for messages */
    tv_jbuf_t nb, tb;    /* decoded member name, type name */
} isf_t;

typedef struct isf_ty {
    uint8_t kind, sub_kind;
    uint32_t count;
    bool has_name;
    tv_jval_t name; /* innermost name */
    uint64_t bit_pos, bit_len;
} isf_ty_t;

/* The failure, with where it is: the JSON reader's error if it has one,
 * else why at the reader's position. */
static int isf_fail(isf_t *L, int status, const char *why)
{
    if (why)
        (void)tv_json_fail(L->j, status, why);
    char where[160];
    tv_json_error(L->j, where, sizeof where);
    size_t n = L->item.len > 80 ? 80 : L->item.len;
    return tv_pfail(L->ctx, status, "ISF %s%s%.*s: %s",
                    L->section ? L->section : "file", n ? " " : "", (int)n,
                    n ? L->item.p : "", where);
}

/* A symtab failure (ENOMEM, or a name it refuses). */
static int isf_table(isf_t *L, int rc)
{
    return isf_fail(L, rc, rc == TINYVMI_ENOMEM ? "out of memory"
                                                : "name or size refused "
                                                  "by the table");
}

static int expect(isf_t *L, tv_jval_t *v, uint8_t type, const char *why)
{
    int rc = tv_json_next(L->j, v);
    if (rc)
        return isf_fail(L, rc, NULL);
    if (v->type != type)
        return isf_fail(L, TINYVMI_EFORMAT, why);
    return 0;
}

static int read_u64(isf_t *L, uint64_t *out, const char *why)
{
    tv_jval_t v;
    int rc = tv_json_next(L->j, &v);
    if (rc)
        return isf_fail(L, rc, NULL);
    if (!tv_json_u64(&v, out))
        return isf_fail(L, TINYVMI_EFORMAT, why);
    return 0;
}

static int skip(isf_t *L)
{
    int rc = tv_json_skip(L->j);
    return rc ? isf_fail(L, rc, NULL) : 0;
}

/* Loop helper: 1 key read, 0 end of object, <0 error reported. */
static int next_key(isf_t *L, tv_jval_t *k)
{
    int rc = tv_json_key(L->j, k);
    return rc < 0 ? isf_fail(L, rc, NULL) : rc;
}

static uint8_t kind_of(const tv_jval_t *k)
{
    static const struct {
        const char *name;
        uint8_t kind;
    } map[] = {
        {"base", TV_K_BASE},       {"struct", TV_K_STRUCT},
        {"class", TV_K_STRUCT},    {"union", TV_K_UNION},
        {"enum", TV_K_ENUM},       {"pointer", TV_K_POINTER},
        {"array", TV_K_ARRAY},     {"function", TV_K_FUNCTION},
        {"bitfield", TV_K_BITFIELD}, {"void", TV_K_VOID},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(map); i++)
        if (tv_json_eq(k, map[i].name))
            return map[i].kind;
    return TV_K_NONE;
}

/* A type descriptor: {"kind": ..., "name"/"subtype"/"type"/"count"/...}. */
static int parse_type(isf_t *L, isf_ty_t *ty, unsigned depth)
{
    tv_jval_t v, k, kindv = {0};
    tv_memset(ty, 0, sizeof *ty);
    if (depth > TYPE_DEPTH)
        return isf_fail(L, TINYVMI_EFORMAT, "type nested too deeply");
    int rc = expect(L, &v, TV_J_OBJ, "type is not an object");
    if (rc)
        return rc;
    bool own_name = false;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "kind")) {
            if ((rc = expect(L, &kindv, TV_J_STR, "kind is not a string")))
                return rc;
        } else if (tv_json_eq(&k, "name")) {
            if ((rc = expect(L, &ty->name, TV_J_STR, "name is not a string")))
                return rc;
            ty->has_name = own_name = true;
        } else if (tv_json_eq(&k, "count")) {
            uint64_t c;
            if ((rc = read_u64(L, &c, "bad array count")))
                return rc;
            if (c > UINT32_MAX)
                return isf_fail(L, TINYVMI_ERANGE, "array count too large");
            ty->count = (uint32_t)c;
        } else if (tv_json_eq(&k, "subtype") || tv_json_eq(&k, "type")) {
            isf_ty_t sub;
            if ((rc = parse_type(L, &sub, depth + 1)))
                return rc;
            ty->sub_kind = sub.kind;
            if (!own_name) {
                ty->has_name = sub.has_name;
                ty->name = sub.name;
            }
        } else if (tv_json_eq(&k, "bit_position")) {
            if ((rc = read_u64(L, &ty->bit_pos, "bad bit_position")))
                return rc;
        } else if (tv_json_eq(&k, "bit_length")) {
            if ((rc = read_u64(L, &ty->bit_len, "bad bit_length")))
                return rc;
        } else if ((rc = skip(L))) {
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (kindv.type != TV_J_STR)
        return isf_fail(L, TINYVMI_EFORMAT, "type without a kind");
    ty->kind = kind_of(&kindv);
    if (ty->kind == TV_K_NONE)
        return isf_fail(L, TINYVMI_EFORMAT, "unknown type kind");
    if (ty->kind == TV_K_BASE && ty->has_name && tv_json_eq(&ty->name, "void"))
        ty->kind = TV_K_VOID;
    if (ty->kind == TV_K_POINTER || ty->kind == TV_K_ARRAY ||
        ty->kind == TV_K_BITFIELD) {
        if (ty->sub_kind == TV_K_NONE)
            return isf_fail(L, TINYVMI_EFORMAT,
                            "pointer, array or bitfield without a subtype");
    }
    if (ty->kind == TV_K_BITFIELD && (ty->bit_pos > 255 || ty->bit_len > 64))
        return isf_fail(L, TINYVMI_ERANGE, "bitfield position out of range");
    return 0;
}

static int to_mtype(isf_t *L, const isf_ty_t *ty, tv_mtype_t *mt)
{
    mt->kind = ty->kind;
    mt->elem_kind = ty->sub_kind;
    mt->count = ty->kind == TV_K_ARRAY ? ty->count : 0;
    mt->name = "";
    if (ty->has_name) {
        int rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &ty->name, &mt->name,
                             NULL);
        if (rc)
            return isf_fail(L, rc, "bad type name");
        if (tv_strcmp(mt->name, "void") == 0)
            mt->name = ""; /* void is no name, as for Rekall and BTF */
    }
    return 0;
}

/* "fields": {name: {"type": ..., "offset": N, "anonymous": bool}}. */
static int parse_fields(isf_t *L)
{
    tv_jval_t v, k, fname;
    int rc = expect(L, &v, TV_J_OBJ, "fields is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &fname)) > 0) {
        if ((rc = expect(L, &v, TV_J_OBJ, "field is not an object")))
            return rc;
        isf_ty_t ty;
        bool have_type = false, have_off = false, anon = false;
        uint64_t off = 0;
        while ((rc = next_key(L, &k)) > 0) {
            if (tv_json_eq(&k, "type")) {
                if ((rc = parse_type(L, &ty, 0)))
                    return rc;
                have_type = true;
            } else if (tv_json_eq(&k, "offset")) {
                if ((rc = read_u64(L, &off, "bad field offset")))
                    return rc;
                have_off = true;
            } else if (tv_json_eq(&k, "anonymous")) {
                if ((rc = tv_json_next(L->j, &v)))
                    return isf_fail(L, rc, NULL);
                anon = v.type == TV_J_TRUE;
            } else if ((rc = skip(L))) {
                return rc;
            }
        }
        if (rc < 0)
            return rc;
        if (!have_type || !have_off)
            return isf_fail(L, TINYVMI_EFORMAT,
                            "field without a type or an offset");
        tv_mtype_t mt;
        const char *name;
        size_t nlen;
        if ((rc = to_mtype(L, &ty, &mt)))
            return rc;
        if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, &fname, &name, &nlen)))
            return isf_fail(L, rc, "bad field name");
        uint8_t bp = 0, bl = 0;
        if (ty.kind == TV_K_BITFIELD) {
            bp = (uint8_t)ty.bit_pos;
            bl = (uint8_t)ty.bit_len;
        }
        if ((rc = tv_symtab_add_member(L->t, name, nlen, off, bp, bl, &mt,
                                       anon)))
            return isf_table(L, rc);
    }
    return rc;
}

static int add_named_type(isf_t *L, const tv_jval_t *name, uint8_t kind,
                          uint64_t size)
{
    const char *n;
    size_t len;
    int rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &len);
    if (rc)
        return isf_fail(L, rc, "bad type name");
    if ((rc = tv_symtab_add_type(L->t, n, len, kind, size)))
        return isf_table(L, rc);
    return 0;
}

static int parse_user_type(isf_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k;
    int rc = expect(L, &v, TV_J_OBJ, "user type is not an object");
    if (rc)
        return rc;
    uint8_t kind = TV_K_NONE;
    uint64_t size = 0;
    bool have_size = false, added = false;
    size_t fields_at = SIZE_MAX;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "kind")) {
            if ((rc = expect(L, &v, TV_J_STR, "kind is not a string")))
                return rc;
            kind = kind_of(&v);
            if (kind != TV_K_STRUCT && kind != TV_K_UNION)
                return isf_fail(L, TINYVMI_EFORMAT,
                                "user type kind is not struct, class or "
                                "union");
        } else if (tv_json_eq(&k, "size")) {
            /* Older dwarf2json writes -1 for unknown sizes. */
            tv_jval_t sv;
            int64_t neg;
            if ((rc = tv_json_next(L->j, &sv)))
                return isf_fail(L, rc, NULL);
            if (tv_json_i64(&sv, &neg) && neg < 0)
                size = 0;
            else if (!tv_json_u64(&sv, &size))
                return isf_fail(L, TINYVMI_EFORMAT, "bad size");
            have_size = true;
        } else if (tv_json_eq(&k, "fields") && !added &&
                   fields_at == SIZE_MAX) {
            if (kind != TV_K_NONE && have_size) {
                if ((rc = add_named_type(L, name, kind, size)))
                    return rc;
                added = true;
                if ((rc = parse_fields(L)))
                    return rc;
            } else {
                fields_at = L->j->pos;
                if ((rc = skip(L)))
                    return rc;
            }
        } else if ((rc = skip(L))) {
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    if (added)
        return 0;
    if (kind == TV_K_NONE)
        return isf_fail(L, TINYVMI_EFORMAT, "user type without a kind");
    if ((rc = add_named_type(L, name, kind, size)))
        return rc;
    if (fields_at == SIZE_MAX)
        return 0;
    /* The fields came first: read them again now the type is added. */
    tv_json_t sub, *outer = L->j;
    tv_json_init(&sub, outer->buf, outer->len);
    sub.pos = fields_at;
    L->j = &sub;
    rc = parse_fields(L);
    L->j = outer;
    return rc;
}

/* Iterates an object of named entries, calling fn for each. */
static int each_entry(isf_t *L, const char *section,
                      int (*fn)(isf_t *L, const tv_jval_t *name))
{
    tv_jval_t v;
    L->section = section;
    L->item.len = 0;
    int rc = expect(L, &v, TV_J_OBJ, "section is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &L->item)) > 0) {
        tv_jval_t name = L->item;
        if ((rc = fn(L, &name)))
            return rc;
    }
    L->item.len = 0;
    return rc;
}

static int parse_base_type(isf_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k;
    int rc = expect(L, &v, TV_J_OBJ, "base type is not an object");
    if (rc)
        return rc;
    uint64_t size = 0;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "size"))
            rc = read_u64(L, &size, "bad size");
        else
            rc = skip(L);
        if (rc)
            return rc;
    }
    if (rc < 0)
        return rc;
    return add_named_type(L, name, TV_K_BASE, size);
}

static int parse_constants(isf_t *L)
{
    tv_jval_t v, k;
    int rc = expect(L, &v, TV_J_OBJ, "constants is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if ((rc = tv_json_next(L->j, &v)))
            return isf_fail(L, rc, NULL);
        int64_t val;
        uint64_t u;
        if (tv_json_i64(&v, &val)) {
            /* fits */
        } else if (tv_json_u64(&v, &u)) {
            val = (int64_t)u; /* two's complement, as the C enum stores */
        } else {
            return isf_fail(L, TINYVMI_EFORMAT,
                            "enum constant is not a 64-bit integer");
        }
        const char *n;
        size_t len;
        if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, &k, &n, &len)))
            return isf_fail(L, rc, "bad constant name");
        if ((rc = tv_symtab_add_const(L->t, n, len, val)))
            return isf_table(L, rc);
    }
    return rc;
}

static int parse_enum(isf_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k;
    int rc = expect(L, &v, TV_J_OBJ, "enum is not an object");
    if (rc)
        return rc;
    uint64_t size = 0;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "size"))
            rc = read_u64(L, &size, "bad size");
        else if (tv_json_eq(&k, "constants"))
            rc = parse_constants(L);
        else
            rc = skip(L);
        if (rc)
            return rc;
    }
    if (rc < 0)
        return rc;
    return add_named_type(L, name, TV_K_ENUM, size);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes base64 text s in place into b (never longer than s). */
static int base64(isf_t *L, const tv_jval_t *s, const char **out,
                  size_t *len)
{
    const char *txt;
    size_t tlen;
    int rc = tv_jbuf_str(L->ctx->hooks, &L->tb, s, &txt, &tlen);
    if (rc)
        return isf_fail(L, rc, "bad constant_data");
    char *o = L->tb.p;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < tlen; i++) {
        if (txt[i] == '=')
            break;
        int d = b64val(txt[i]);
        if (d < 0)
            return isf_fail(L, TINYVMI_EFORMAT, "constant_data is not base64");
        acc = (acc << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (char)((acc >> bits) & 0xff); /* n <= i: in place */
        }
    }
    *out = o;
    *len = n;
    return 0;
}

static int parse_symbol(isf_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k, data = {0};
    int rc = expect(L, &v, TV_J_OBJ, "symbol is not an object");
    if (rc)
        return rc;
    uint64_t addr = 0;
    bool have_addr = false;
    char type = '?';
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "address")) {
            rc = read_u64(L, &addr, "bad address");
            have_addr = true;
        } else if (tv_json_eq(&k, "type")) {
            isf_ty_t ty;
            rc = parse_type(L, &ty, 0);
            type = ty.kind == TV_K_FUNCTION ? 'T' : 'D';
        } else if (tv_json_eq(&k, "constant_data")) {
            rc = expect(L, &data, TV_J_STR, "constant_data is not a string");
        } else {
            rc = skip(L);
        }
        if (rc)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (!have_addr)
        return isf_fail(L, TINYVMI_EFORMAT, "symbol without an address");
    const char *n;
    size_t len;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &len)))
        return isf_fail(L, rc, "bad symbol name");
    if ((rc = tv_symtab_add_symbol(L->t, n, len, addr, type)))
        return isf_table(L, rc);
    if (data.type == TV_J_STR && tv_json_eq(name, "linux_banner")) {
        const char *b = NULL;
        size_t blen = 0;
        if ((rc = base64(L, &data, &b, &blen)))
            return rc;
        size_t cut = 0;
        while (cut < blen && b[cut] != '\0')
            cut++;
        if ((rc = tv_symtab_set_meta(L->t, "banner", b, cut)))
            return isf_table(L, rc);
    }
    return 0;
}

/* Sets meta key to the string value due next. */
static int meta_string(isf_t *L, const char *key)
{
    tv_jval_t v;
    const char *s;
    size_t len;
    int rc = expect(L, &v, TV_J_STR, "metadata value is not a string");
    if (rc)
        return rc;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &v, &s, &len)))
        return isf_fail(L, rc, "bad metadata string");
    if ((rc = tv_symtab_set_meta(L->t, key, s, len)))
        return isf_table(L, rc);
    return 0;
}

static int parse_pdb(isf_t *L)
{
    tv_jval_t v, k;
    int rc = expect(L, &v, TV_J_OBJ, "pdb is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "GUID")) {
            rc = meta_string(L, "guid");
        } else if (tv_json_eq(&k, "database")) {
            rc = meta_string(L, "pdb");
        } else if (tv_json_eq(&k, "age")) {
            uint64_t age;
            if ((rc = read_u64(L, &age, "bad pdb age")))
                return rc;
            char num[24];
            size_t n = tv_fmt(num, sizeof num, "%llu",
                              (unsigned long long)age);
            if ((rc = tv_symtab_set_meta(L->t, "pdb_age", num, n)))
                return isf_table(L, rc);
        } else {
            rc = skip(L);
        }
        if (rc)
            return rc;
    }
    return rc;
}

static int parse_os_meta(isf_t *L, const char *os)
{
    tv_jval_t v, k;
    int rc = tv_symtab_set_meta(L->t, "os", os, tv_strlen(os));
    if (rc)
        return isf_table(L, rc);
    if ((rc = expect(L, &v, TV_J_OBJ, "os metadata is not an object")))
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "pdb"))
            rc = parse_pdb(L);
        else
            rc = skip(L);
        if (rc)
            return rc;
    }
    return rc;
}

static int parse_producer(isf_t *L)
{
    tv_jval_t v, k, name = {0}, version = {0};
    int rc = expect(L, &v, TV_J_OBJ, "producer is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "name"))
            rc = expect(L, &name, TV_J_STR, "producer name is not a string");
        else if (tv_json_eq(&k, "version"))
            rc = expect(L, &version, TV_J_STR,
                        "producer version is not a string");
        else
            rc = skip(L);
        if (rc)
            return rc;
    }
    if (rc < 0 || name.type != TV_J_STR)
        return rc;
    const char *n, *ver = "";
    size_t nl, vl = 0;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, &name, &n, &nl)) ||
        (version.type == TV_J_STR &&
         (rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &version, &ver, &vl))))
        return isf_fail(L, rc, "bad producer string");
    char buf[160];
    size_t len = tv_fmt(buf, sizeof buf, "%.*s%s%.*s",
                        (int)(nl > 100 ? 100 : nl), n, vl ? " " : "",
                        (int)(vl > 40 ? 40 : vl), ver);
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    if ((rc = tv_symtab_set_meta(L->t, "producer", buf, len)))
        return isf_table(L, rc);
    return 0;
}

static int parse_format(isf_t *L)
{
    tv_jval_t v;
    int rc = expect(L, &v, TV_J_STR, "format is not a string");
    if (rc)
        return rc;
    unsigned major = 0;
    size_t i = 0;
    while (i < v.len && i < 4 && v.p[i] >= '0' && v.p[i] <= '9')
        major = major * 10 + (unsigned)(v.p[i++] - '0');
    if (i == 0 || major < 4 || major > 6)
        return isf_fail(L, TINYVMI_ENOTSUP,
                        "ISF format version not supported (4.x to 6.x are)");
    const char *s;
    size_t len;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &v, &s, &len)))
        return isf_fail(L, rc, "bad format string");
    if ((rc = tv_symtab_set_meta(L->t, "format", s, len)))
        return isf_table(L, rc);
    return 0;
}

static int parse_metadata(isf_t *L)
{
    tv_jval_t v, k;
    L->section = "metadata";
    L->item.len = 0;
    int rc = expect(L, &v, TV_J_OBJ, "metadata is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "format"))
            rc = parse_format(L);
        else if (tv_json_eq(&k, "producer"))
            rc = parse_producer(L);
        else if (tv_json_eq(&k, "linux"))
            rc = parse_os_meta(L, "linux");
        else if (tv_json_eq(&k, "windows"))
            rc = parse_os_meta(L, "windows");
        else if (tv_json_eq(&k, "mac"))
            rc = parse_os_meta(L, "mac");
        else
            rc = skip(L);
        if (rc)
            return rc;
    }
    return rc;
}

int tv_profile_load_isf(const tv_pctx_t *ctx, const char *buf, size_t len,
                        tv_symtab_t *t)
{
    if (!ctx || !ctx->hooks || !t || (!buf && len))
        return tv_pfail(ctx, TINYVMI_EINVAL, "ISF: bad arguments");
    tv_json_t j;
    tv_json_init(&j, buf, len);
    isf_t L = {.ctx = ctx, .t = t, .j = &j};
    tv_jval_t v, k;
    bool have_content = false;
    int rc = tv_symtab_set_meta(t, "source", "isf", 3);
    if (rc) {
        rc = isf_table(&L, rc);
        goto out;
    }
    if ((rc = expect(&L, &v, TV_J_OBJ, "the file is not a JSON object")))
        goto out;
    while ((rc = next_key(&L, &k)) > 0) {
        L.section = NULL;
        if (tv_json_eq(&k, "metadata")) {
            rc = parse_metadata(&L);
        } else if (tv_json_eq(&k, "base_types")) {
            rc = each_entry(&L, "base_types", parse_base_type);
        } else if (tv_json_eq(&k, "user_types")) {
            rc = each_entry(&L, "user_types", parse_user_type);
            have_content = true;
        } else if (tv_json_eq(&k, "enums")) {
            rc = each_entry(&L, "enums", parse_enum);
        } else if (tv_json_eq(&k, "symbols")) {
            rc = each_entry(&L, "symbols", parse_symbol);
            have_content = true;
        } else {
            rc = skip(&L);
        }
        if (rc)
            goto out;
    }
    L.section = NULL;
    L.item.len = 0;
    if (rc < 0)
        goto out;
    if ((rc = tv_json_end(&j))) {
        rc = isf_fail(&L, rc, NULL);
        goto out;
    }
    if (!have_content)
        rc = isf_fail(&L, TINYVMI_EFORMAT,
                      "not an ISF file: no user_types or symbols");
out:
    tv_jbuf_free(ctx->hooks, &L.nb);
    tv_jbuf_free(ctx->hooks, &L.tb);
    return rc;
}

bool tv_profile_is_rekall(const char *buf, size_t len)
{
    tv_json_t j;
    tv_jval_t v, k;
    tv_json_init(&j, buf, len);
    return tv_json_next(&j, &v) == 0 && v.type == TV_J_OBJ &&
           tv_json_key(&j, &k) > 0 && k.len > 0 && k.p[0] == '$';
}

int tv_profile_load_json(const tv_pctx_t *ctx, const char *buf, size_t len,
                         tv_symtab_t *t)
{
    if (tv_profile_is_rekall(buf, len))
        return tv_profile_load_rekall(ctx, buf, len, t);
    return tv_profile_load_isf(ctx, buf, len, t);
}
