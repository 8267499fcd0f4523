/*
 * BTF: a 24-byte header (magic, version, flags, hdr_len, then offsets and
 * lengths of the type and string sections, relative to the header's end),
 * type records of 12 bytes (name offset, info = vlen | kind << 24 |
 * kind_flag << 31, size or type) each followed by kind-specific data, and
 * NUL-terminated strings.  Type ids count records from 1; 0 is void.
 *
 * tv_btf_open walks every record once, checking it fits, and indexes them;
 * everything after that follows ids only through checked accessors.
 */
#include "profile/btf.h"

#include "core/tv.h"

#define BTF_HDR_MIN 24u
#define BTF_HDR_MAX 256u
#define BTF_MAX_TYPES 4000000u
#define BTF_MAX_LEN ((uint64_t)512 << 20)
#define BTF_CHAIN_MAX 64 /* typedef/qualifier/pointer/array hops */
#define BTF_SCAN_CHUNK ((size_t)1 << 20)

/* ---- Opening ---------------------------------------------------------------------- */

/* Bytes after the 12-byte record for kind with vlen entries; -1 unknown. */
static int64_t extra_len(uint8_t kind, uint32_t vlen)
{
    switch (kind) {
    case TV_BTF_INT:
    case TV_BTF_VAR:
    case TV_BTF_DECL_TAG:
        return 4;
    case TV_BTF_ARRAY:
        return 12;
    case TV_BTF_STRUCT:
    case TV_BTF_UNION:
    case TV_BTF_DATASEC:
    case TV_BTF_ENUM64:
        return 12 * (int64_t)vlen;
    case TV_BTF_ENUM:
    case TV_BTF_FUNC_PROTO:
        return 8 * (int64_t)vlen;
    case TV_BTF_PTR:
    case TV_BTF_FWD:
    case TV_BTF_TYPEDEF:
    case TV_BTF_VOLATILE:
    case TV_BTF_CONST:
    case TV_BTF_RESTRICT:
    case TV_BTF_FUNC:
    case TV_BTF_FLOAT:
    case TV_BTF_TYPE_TAG:
        return 0;
    default:
        return -1;
    }
}

typedef struct btf_hdr {
    uint32_t hdr_len, type_off, type_len, str_off, str_len;
    uint64_t total;
} btf_hdr_t;

/* The header at p (avail bytes readable); false with a reason if bad. */
static bool hdr_parse(const uint8_t *p, size_t avail, btf_hdr_t *h,
                      const char **why)
{
    *why = "too short for a header";
    if (avail < BTF_HDR_MIN)
        return false;
    *why = "no BTF magic";
    if (tv_le16(p) != TV_BTF_MAGIC)
        return false;
    *why = "unsupported version or flags";
    if (p[2] != 1 || p[3] != 0)
        return false;
    h->hdr_len = tv_le32(p + 4);
    h->type_off = tv_le32(p + 8);
    h->type_len = tv_le32(p + 12);
    h->str_off = tv_le32(p + 16);
    h->str_len = tv_le32(p + 20);
    *why = "bad header length";
    if (h->hdr_len < BTF_HDR_MIN || h->hdr_len > BTF_HDR_MAX)
        return false;
    uint64_t te = (uint64_t)h->type_off + h->type_len;
    uint64_t se = (uint64_t)h->str_off + h->str_len;
    *why = "sections overlap or are misaligned";
    if (h->type_off & 3 || h->str_len == 0 ||
        (h->type_off < h->str_off ? te > h->str_off : se > h->type_off))
        return false;
    h->total = h->hdr_len + (te > se ? te : se);
    *why = "sections too large";
    return h->total <= BTF_MAX_LEN;
}

static void *b_alloc(const tv_pctx_t *ctx, size_t n)
{
    return ctx->hooks->alloc(ctx->hooks->alloc_ctx, NULL, 0, n ? n : 1);
}

static void b_free(const tv_pctx_t *ctx, void *p, size_t n)
{
    if (p)
        ctx->hooks->alloc(ctx->hooks->alloc_ctx, p, n ? n : 1, 0);
}

int tv_btf_open(const tv_pctx_t *ctx, const uint8_t *blob, size_t len,
                tv_btf_t *b)
{
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc || !b || (!blob && len))
        return TINYVMI_EINVAL;
    tv_memset(b, 0, sizeof *b);
    b->ctx = ctx;
    btf_hdr_t h;
    const char *why;
    if (!hdr_parse(blob, len, &h, &why))
        return tv_pfail(ctx, TINYVMI_EFORMAT, "BTF: %s", why);
    if (h.total > len)
        return tv_pfail(ctx, TINYVMI_ETRUNC, "BTF: needs %llu bytes, has %zu",
                        (unsigned long long)h.total, len);
    b->types = blob + h.hdr_len + h.type_off;
    b->types_len = h.type_len;
    b->strs = (const char *)blob + h.hdr_len + h.str_off;
    b->strs_len = h.str_len;
    if (b->strs[0] != 0 || b->strs[b->strs_len - 1] != 0)
        return tv_pfail(ctx, TINYVMI_EFORMAT, "BTF: string section does not "
                        "start and end with NUL");
    /* Count, then index. */
    uint32_t n = 0;
    for (size_t pos = 0; pos < b->types_len; n++) {
        if (b->types_len - pos < 12 || n >= BTF_MAX_TYPES)
            return tv_pfail(ctx, TINYVMI_EFORMAT, "BTF: type %u at offset "
                            "%zu: %s", n + 1, pos,
                            n >= BTF_MAX_TYPES ? "too many types"
                                               : "record cut short");
        uint32_t info = tv_le32(b->types + pos + 4);
        uint8_t kind = (uint8_t)((info >> 24) & 0x1f);
        int64_t x = extra_len(kind, info & 0xffff);
        if (x < 0 || (uint64_t)x > b->types_len - pos - 12)
            return tv_pfail(ctx, TINYVMI_EFORMAT, "BTF: type %u at offset "
                            "%zu: %s", n + 1, pos,
                            x < 0 ? "unknown kind" : "data past the section");
        if (tv_le32(b->types + pos) >= b->strs_len)
            return tv_pfail(ctx, TINYVMI_EFORMAT, "BTF: type %u: name "
                            "offset outside the strings", n + 1);
        pos += 12 + (size_t)x;
    }
    b->ntypes = n;
    b->off = b_alloc(ctx, ((size_t)n + 1) * sizeof *b->off);
    if (!b->off)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "BTF: out of memory");
    b->off[0] = 0;
    size_t pos = 0;
    for (uint32_t id = 1; id <= n; id++) {
        b->off[id] = (uint32_t)pos;
        uint32_t info = tv_le32(b->types + pos + 4);
        pos += 12 + (size_t)extra_len((uint8_t)((info >> 24) & 0x1f),
                                      info & 0xffff);
    }
    return 0;
}

void tv_btf_close(tv_btf_t *b)
{
    if (b && b->off)
        b_free(b->ctx, b->off, ((size_t)b->ntypes + 1) * sizeof *b->off);
    if (b)
        b->off = NULL;
}

/* ---- Accessors ---------------------------------------------------------------------- */

static const char *str_at(const tv_btf_t *b, uint32_t off)
{
    /* The section ends with NUL, so any offset inside it terminates. */
    return off < b->strs_len ? b->strs + off : "";
}

bool tv_btf_type(const tv_btf_t *b, uint32_t id, tv_btf_type_t *out)
{
    if (!b->off || id == 0 || id > b->ntypes)
        return false;
    const uint8_t *p = b->types + b->off[id];
    uint32_t info = tv_le32(p + 4);
    out->id = id;
    out->kind = (uint8_t)((info >> 24) & 0x1f);
    out->kflag = (info >> 31) != 0;
    out->vlen = (uint16_t)(info & 0xffff);
    out->size_or_type = tv_le32(p + 8);
    out->name = str_at(b, tv_le32(p));
    out->extra = p + 12;
    return true;
}

static bool is_modifier(uint8_t kind)
{
    return kind == TV_BTF_TYPEDEF || kind == TV_BTF_VOLATILE ||
           kind == TV_BTF_CONST || kind == TV_BTF_RESTRICT ||
           kind == TV_BTF_TYPE_TAG;
}

uint32_t tv_btf_skip(const tv_btf_t *b, uint32_t id)
{
    tv_btf_type_t t;
    for (int hop = 0; hop < BTF_CHAIN_MAX; hop++) {
        if (!tv_btf_type(b, id, &t))
            return 0;
        if (!is_modifier(t.kind))
            return id;
        id = t.size_or_type;
    }
    return 0;
}

uint64_t tv_btf_size(const tv_btf_t *b, uint32_t id)
{
    uint64_t mult = 1;
    tv_btf_type_t t;
    for (int hop = 0; hop < BTF_CHAIN_MAX; hop++) {
        if (!tv_btf_type(b, tv_btf_skip(b, id), &t))
            return 0;
        switch (t.kind) {
        case TV_BTF_PTR:
            return mult * 8;
        case TV_BTF_ARRAY: {
            uint32_t n = tv_le32(t.extra + 8);
            if (n && mult > UINT64_MAX / n)
                return 0;
            mult *= n;
            id = tv_le32(t.extra);
            continue;
        }
        case TV_BTF_INT:
        case TV_BTF_STRUCT:
        case TV_BTF_UNION:
        case TV_BTF_ENUM:
        case TV_BTF_ENUM64:
        case TV_BTF_FLOAT:
        case TV_BTF_DATASEC:
            if (t.size_or_type && mult > UINT64_MAX / t.size_or_type)
                return 0;
            return mult * t.size_or_type;
        default:
            return 0;
        }
    }
    return 0;
}

bool tv_btf_member(const tv_btf_t *b, const tv_btf_type_t *t, uint16_t i,
                   tv_btf_member_t *out)
{
    (void)b;
    if ((t->kind != TV_BTF_STRUCT && t->kind != TV_BTF_UNION) ||
        i >= t->vlen)
        return false;
    const uint8_t *m = t->extra + (size_t)i * 12;
    uint32_t off = tv_le32(m + 8);
    out->name = str_at(b, tv_le32(m));
    out->type = tv_le32(m + 4);
    out->bit_offset = t->kflag ? (off & 0xffffff) : off;
    out->bit_size = t->kflag ? (uint8_t)(off >> 24) : 0;
    if (!t->kflag) {
        /* Old-style bitfields: the int itself says how many bits. */
        tv_btf_type_t it;
        if (tv_btf_type(b, tv_btf_skip(b, out->type), &it) &&
            it.kind == TV_BTF_INT) {
            uint32_t enc = tv_le32(it.extra);
            uint32_t bits = enc & 0xff;
            out->bit_offset += (enc >> 16) & 0xff;
            if (bits && bits != it.size_or_type * 8 && bits < 256)
                out->bit_size = (uint8_t)bits;
        }
    }
    return true;
}

/* A content hash for anonymous types: kind, size, and each member's or
 * enumerator's name, offset or value, and type size. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t anon_hash(const tv_btf_t *b, const tv_btf_type_t *t)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t k = t->kind;
    h = fnv(h, &k, 1);
    h = fnv(h, &t->size_or_type, 4);
    for (uint16_t i = 0; i < t->vlen; i++) {
        const uint8_t *e;
        uint64_t v[2] = {0, 0};
        if (t->kind == TV_BTF_STRUCT || t->kind == TV_BTF_UNION) {
            tv_btf_member_t m;
            tv_btf_member(b, t, i, &m);
            h = fnv(h, m.name, tv_strlen(m.name) + 1);
            v[0] = m.bit_offset | (uint64_t)m.bit_size << 56;
            v[1] = tv_btf_size(b, m.type);
        } else if (t->kind == TV_BTF_ENUM) {
            e = t->extra + (size_t)i * 8;
            h = fnv(h, str_at(b, tv_le32(e)), tv_strlen(str_at(b, tv_le32(e))) + 1);
            v[0] = tv_le32(e + 4);
        } else if (t->kind == TV_BTF_ENUM64) {
            e = t->extra + (size_t)i * 12;
            h = fnv(h, str_at(b, tv_le32(e)), tv_strlen(str_at(b, tv_le32(e))) + 1);
            v[0] = tv_le32(e + 4) | (uint64_t)tv_le32(e + 8) << 32;
        }
        h = fnv(h, v, sizeof v);
    }
    return h;
}

const char *tv_btf_tname(const tv_btf_t *b, const tv_btf_type_t *t, char *buf,
                         size_t len)
{
    if (t->name[0] || (t->kind != TV_BTF_STRUCT && t->kind != TV_BTF_UNION &&
                       t->kind != TV_BTF_ENUM && t->kind != TV_BTF_ENUM64))
        return t->name;
    tv_fmt(buf, len, "unnamed_%016llx",
           (unsigned long long)anon_hash(b, t));
    return buf;
}

bool tv_btf_is_named_kind(uint8_t kind)
{
    return kind == TV_BTF_STRUCT || kind == TV_BTF_UNION ||
           kind == TV_BTF_ENUM || kind == TV_BTF_ENUM64;
}

const char *tv_btf_ref_name(const tv_btf_t *b, uint32_t id, char *buf,
                            size_t len, uint32_t *target)
{
    const char *tdname = NULL;
    tv_btf_type_t t;
    uint32_t s = 0;
    for (int hop = 0; hop < BTF_CHAIN_MAX; hop++) {
        if (!tv_btf_type(b, id, &t))
            break;
        if (!is_modifier(t.kind)) {
            s = id;
            break;
        }
        if (t.kind == TV_BTF_TYPEDEF && t.name[0])
            tdname = t.name;
        id = t.size_or_type;
    }
    if (target)
        *target = s;
    if (!s || !tv_btf_type(b, s, &t))
        return "";
    /* dwarf2json names anonymous enums by hash even under a typedef. */
    if (tdname && (t.kind == TV_BTF_STRUCT || t.kind == TV_BTF_UNION))
        return tdname;
    return tv_btf_tname(b, &t, buf, len);
}

/* ---- Member types --------------------------------------------------------------- */

static uint8_t tv_kind(const tv_btf_t *b, uint32_t id)
{
    tv_btf_type_t t;
    if (id == 0)
        return TV_K_VOID;
    if (!tv_btf_type(b, id, &t))
        return TV_K_NONE;
    switch (t.kind) {
    case TV_BTF_INT:
    case TV_BTF_FLOAT:
        return TV_K_BASE;
    case TV_BTF_PTR:
        return TV_K_POINTER;
    case TV_BTF_ARRAY:
        return TV_K_ARRAY;
    case TV_BTF_STRUCT:
        return TV_K_STRUCT;
    case TV_BTF_UNION:
        return TV_K_UNION;
    case TV_BTF_ENUM:
    case TV_BTF_ENUM64:
        return TV_K_ENUM;
    case TV_BTF_FWD:
        return t.kflag ? TV_K_UNION : TV_K_STRUCT;
    case TV_BTF_FUNC:
    case TV_BTF_FUNC_PROTO:
        return TV_K_FUNCTION;
    default:
        return TV_K_NONE;
    }
}

/* The next type inside a pointer or array (after modifiers), or 0. */
static uint32_t inner(const tv_btf_t *b, uint32_t id)
{
    tv_btf_type_t t;
    if (!tv_btf_type(b, id, &t))
        return 0;
    if (t.kind == TV_BTF_PTR)
        return t.size_or_type;
    if (t.kind == TV_BTF_ARRAY)
        return tv_le32(t.extra);
    return 0;
}

/* The innermost named type's name through pointers and arrays; "" for
 * void and functions. */
static const char *inner_name(const tv_btf_t *b, uint32_t id, char *buf,
                              size_t len)
{
    tv_btf_type_t t;
    for (int hop = 0; hop < BTF_CHAIN_MAX; hop++) {
        if (!tv_btf_type(b, tv_btf_skip(b, id), &t))
            return "";
        if (t.kind != TV_BTF_PTR && t.kind != TV_BTF_ARRAY)
            break;
        id = inner(b, t.id);
    }
    if (t.kind == TV_BTF_FUNC_PROTO || t.kind == TV_BTF_FUNC ||
        t.kind == TV_BTF_PTR || t.kind == TV_BTF_ARRAY)
        return "";
    return tv_btf_ref_name(b, id, buf, len, NULL);
}

/* tv_mtype_t of type id (unskipped), as the ISF loader fills it. */
static void mtype(const tv_btf_t *b, uint32_t id, tv_mtype_t *mt, char *buf,
                  size_t len)
{
    uint32_t s = tv_btf_skip(b, id);
    tv_btf_type_t t;
    tv_memset(mt, 0, sizeof *mt);
    mt->kind = tv_kind(b, s);
    mt->name = "";
    if (mt->kind == TV_K_POINTER || mt->kind == TV_K_ARRAY) {
        uint32_t in = inner(b, s);
        mt->elem_kind = tv_kind(b, tv_btf_skip(b, in));
        if (mt->kind == TV_K_ARRAY && tv_btf_type(b, s, &t))
            mt->count = tv_le32(t.extra + 8);
        mt->name = inner_name(b, in, buf, len);
    } else if (mt->kind != TV_K_VOID && mt->kind != TV_K_FUNCTION) {
        mt->name = tv_btf_ref_name(b, id, buf, len, NULL);
    }
}

/* ---- Loading ---------------------------------------------------------------------- */

static int load_struct(const tv_btf_t *b, const tv_btf_type_t *t,
                       const char *name, tv_symtab_t *tab)
{
    char tbuf[32], fbuf[32];
    int rc = tv_symtab_add_type(tab, name, tv_strlen(name),
                                t->kind == TV_BTF_STRUCT ? TV_K_STRUCT
                                                         : TV_K_UNION,
                                t->size_or_type);
    unsigned anon = 0;
    for (uint16_t i = 0; !rc && i < t->vlen; i++) {
        tv_btf_member_t m;
        tv_mtype_t mt;
        tv_btf_member(b, t, i, &m);
        mtype(b, m.type, &mt, tbuf, sizeof tbuf);
        const char *mname = m.name;
        bool is_anon = false;
        if (!mname[0]) {
            if (mt.kind != TV_K_STRUCT && mt.kind != TV_K_UNION)
                continue; /* unnamed padding bitfield */
            tv_fmt(fbuf, sizeof fbuf, "unnamed_field_%x", anon++);
            mname = fbuf;
            is_anon = true;
        }
        uint64_t off = m.bit_offset / 8;
        uint8_t pos = 0, blen = 0;
        if (m.bit_size) {
            /* As dwarf2json: the byte holding the first bit. */
            pos = (uint8_t)(m.bit_offset & 7);
            blen = m.bit_size;
            mt.elem_kind = mt.kind;
            mt.kind = TV_K_BITFIELD;
        }
        rc = tv_symtab_add_member(tab, mname, tv_strlen(mname), off, pos,
                                  blen, &mt, is_anon);
    }
    return rc;
}

static int load_enum(const tv_btf_t *b, const tv_btf_type_t *t,
                     const char *name, tv_symtab_t *tab)
{
    int rc = tv_symtab_add_type(tab, name, tv_strlen(name), TV_K_ENUM,
                                t->size_or_type);
    bool wide = t->kind == TV_BTF_ENUM64;
    for (uint16_t i = 0; !rc && i < t->vlen; i++) {
        const uint8_t *e = t->extra + (size_t)i * (wide ? 12 : 8);
        const char *en = str_at(b, tv_le32(e));
        int64_t v;
        if (wide)
            v = (int64_t)(tv_le32(e + 4) | (uint64_t)tv_le32(e + 8) << 32);
        else if (t->kflag)
            v = (int32_t)tv_le32(e + 4);
        else
            v = (int64_t)tv_le32(e + 4);
        if (en[0])
            rc = tv_symtab_add_const(tab, en, tv_strlen(en), v);
    }
    return rc;
}

int tv_btf_load(const tv_pctx_t *ctx, const uint8_t *blob, size_t len,
                tv_symtab_t *t)
{
    if (!t)
        return TINYVMI_EINVAL;
    tv_btf_t b;
    int rc = tv_btf_open(ctx, blob, len, &b);
    if (rc)
        return rc;
    for (uint32_t id = 1; !rc && id <= b.ntypes; id++) {
        tv_btf_type_t ty;
        char nbuf[32];
        tv_btf_type(&b, id, &ty);
        const char *name = tv_btf_tname(&b, &ty, nbuf, sizeof nbuf);
        if (ty.kind == TV_BTF_TYPEDEF) {
            /* dwarf2json lists typedefs of structs under their own name */
            uint32_t s;
            tv_btf_ref_name(&b, id, nbuf, sizeof nbuf, &s);
            if (!tv_btf_type(&b, s, &ty) ||
                (ty.kind != TV_BTF_STRUCT && ty.kind != TV_BTF_UNION))
                continue;
            tv_btf_type(&b, id, &ty);
            name = ty.name;
            tv_btf_type(&b, s, &ty);
        }
        switch (ty.kind) {
        case TV_BTF_INT:
        case TV_BTF_FLOAT:
            if (ty.name[0])
                rc = tv_symtab_add_type(t, ty.name, tv_strlen(ty.name),
                                        TV_K_BASE, ty.size_or_type);
            break;
        case TV_BTF_STRUCT:
        case TV_BTF_UNION:
            rc = load_struct(&b, &ty, name, t);
            break;
        case TV_BTF_ENUM:
        case TV_BTF_ENUM64:
            rc = load_enum(&b, &ty, name, t);
            break;
        default:
            break;
        }
        if (rc && !(ctx->err && ctx->err[0]))
            rc = tv_pfail(ctx, rc, "BTF: type %u (%s): cannot add it", id,
                          ty.name);
    }
    tv_btf_close(&b);
    return rc;
}

/* ---- Search ------------------------------------------------------------------------ */

int tv_btf_find(const tv_pctx_t *ctx, const tv_reader_t *r, uint64_t start,
                uint64_t end, uint64_t *at, uint64_t *len)
{
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc || !r || !r->read || !at ||
        !len)
        return TINYVMI_EINVAL;
    if (end <= start)
        return tv_pfail(ctx, TINYVMI_EINVAL, "BTF: empty range");
    size_t cap = end - start < BTF_SCAN_CHUNK ? (size_t)(end - start)
                                               : BTF_SCAN_CHUNK;
    uint8_t *buf = b_alloc(ctx, cap + BTF_HDR_MIN);
    if (!buf)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "BTF: out of memory");
    unsigned magics = 0;
    bool found = false;
    for (uint64_t cs = start; !found && cs < end;) {
        uint64_t ce = end - cs > cap ? cs + cap : end;
        uint64_t rend = end - ce > BTF_HDR_MIN ? ce + BTF_HDR_MIN : end;
        size_t n = (size_t)(rend - cs);
        if (r->read(r->ctx, cs, buf, n) != 0) {
            /* A hole: skip to the next page. */
            cs = (cs | 4095) + 1;
            continue;
        }
        for (size_t o = 0; !found && cs + o < ce && o + BTF_HDR_MIN <= n;
             o++) {
            if (buf[o] != 0x9f || buf[o + 1] != 0xeb)
                continue;
            btf_hdr_t h;
            const char *why;
            magics++;
            if (!hdr_parse(buf + o, n - o, &h, &why) ||
                h.total > end - (cs + o) || h.type_len < 12)
                continue;
            /* The string section must begin and end with NUL. */
            uint8_t s0 = 1, s1 = 1;
            uint64_t sa = cs + o + h.hdr_len + h.str_off;
            if (r->read(r->ctx, sa, &s0, 1) ||
                r->read(r->ctx, sa + h.str_len - 1, &s1, 1) || s0 || s1)
                continue;
            *at = cs + o;
            *len = h.total;
            found = true;
        }
        cs = ce;
    }
    b_free(ctx, buf, cap + BTF_HDR_MIN);
    if (found)
        return 0;
    return tv_pfail(ctx, TINYVMI_ENOENT, "BTF: no valid header in "
                    "0x%llx-0x%llx (%u magic number%s seen)",
                    (unsigned long long)start, (unsigned long long)end,
                    magics, magics == 1 ? "" : "s");
}
