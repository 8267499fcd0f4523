/*
 * Rekall JSON profiles into a symbol/type table: $METADATA, $CONSTANTS and
 * $FUNCTIONS (symbol addresses), $STRUCTS ({name: [size, {field: [offset,
 * [type, {args}]]}]}), $ENUMS ({enum: {"value": "name"}}) and $REVENUMS
 * ({enum: {"name": value}}).  Rekall gives no sizes for base types: they
 * follow from $METADATA's arch and the OS, and are added at the end.
 */
#include "profile/profile.h"

#include "core/tv.h"
#include "profile/json.h"

#define TYPE_DEPTH 32

typedef struct rk {
    const tv_pctx_t *ctx;
    tv_symtab_t *t;
    tv_json_t j;
    const char *section;
    tv_jval_t item;
    tv_jbuf_t nb, tb;
    bool is64, windows, have_arch;
} rk_t;

typedef struct rk_ty {
    uint8_t kind, sub_kind;
    uint32_t count;
    tv_jval_t name;
    bool has_name;
    uint64_t start_bit, end_bit;
} rk_ty_t;

static int rk_fail(rk_t *L, int status, const char *why)
{
    if (why)
        (void)tv_json_fail(&L->j, status, why);
    char where[160];
    tv_json_error(&L->j, where, sizeof where);
    size_t n = L->item.len > 80 ? 80 : L->item.len;
    return tv_pfail(L->ctx, status, "Rekall profile %s%s%.*s: %s",
                    L->section ? L->section : "file", n ? " " : "", (int)n,
                    n ? L->item.p : "", where);
}

static int rk_table(rk_t *L, int rc)
{
    return rk_fail(L, rc, rc == TINYVMI_ENOMEM ? "out of memory"
                                               : "name refused by the table");
}

static int expect(rk_t *L, tv_jval_t *v, uint8_t type, const char *why)
{
    int rc = tv_json_next(&L->j, v);
    if (rc)
        return rk_fail(L, rc, NULL);
    return v->type == type ? 0 : rk_fail(L, TINYVMI_EFORMAT, why);
}

static int next_key(rk_t *L, tv_jval_t *k)
{
    int rc = tv_json_key(&L->j, k);
    return rc < 0 ? rk_fail(L, rc, NULL) : rc;
}

static int next_elem(rk_t *L, const char *missing)
{
    int rc = tv_json_elem(&L->j);
    if (rc < 0)
        return rk_fail(L, rc, NULL);
    if (rc == 0)
        return rk_fail(L, TINYVMI_EFORMAT, missing);
    return 0;
}

/* The end of an array whose elements we have read. */
static int end_array(rk_t *L)
{
    int rc;
    /* Extra elements are tolerated (skipped); bounded by the input. */
    while ((rc = tv_json_elem(&L->j)) > 0)
        if ((rc = tv_json_skip(&L->j)))
            break;
    return rc < 0 ? rk_fail(L, rc, NULL) : 0;
}

static int skip(rk_t *L)
{
    int rc = tv_json_skip(&L->j);
    return rc ? rk_fail(L, rc, NULL) : 0;
}

static int read_u64(rk_t *L, uint64_t *out, const char *why)
{
    tv_jval_t v;
    int rc = tv_json_next(&L->j, &v);
    if (rc)
        return rk_fail(L, rc, NULL);
    return tv_json_u64(&v, out) ? 0 : rk_fail(L, TINYVMI_EFORMAT, why);
}

/* A C base type: only the words of C's arithmetic types. */
static bool is_base_name(const tv_jval_t *s)
{
    static const char *const words[] = {
        "unsigned", "signed", "char", "short", "int", "long", "float",
        "double", "_Bool", "bool", "__int128", "wchar_t",
    };
    if (s->escaped || s->len == 0)
        return false;
    size_t i = 0;
    while (i < s->len) {
        size_t e = i;
        while (e < s->len && s->p[e] != ' ')
            e++;
        bool ok = false;
        for (size_t w = 0; w < TV_ARRAY_LEN(words) && !ok; w++)
            ok = tv_strlen(words[w]) == e - i &&
                 tv_memcmp(words[w], s->p + i, e - i) == 0;
        if (!ok)
            return false;
        i = e + 1;
    }
    return true;
}

/* The arguments of a type descriptor, and its target resolved. */
typedef struct rk_args {
    bool has_target, has_enum;
    tv_jval_t target, enum_name;
    uint32_t count;
    uint64_t start_bit, end_bit;
    rk_ty_t tty; /* the target as a type (when has_target) */
} rk_args_t;

static uint8_t classify(const tv_jval_t *n)
{
    if (tv_json_eq(n, "Pointer"))
        return TV_K_POINTER;
    if (tv_json_eq(n, "Array"))
        return TV_K_ARRAY;
    if (tv_json_eq(n, "BitField"))
        return TV_K_BITFIELD;
    if (tv_json_eq(n, "Enumeration"))
        return TV_K_ENUM;
    if (tv_json_eq(n, "Void") || tv_json_eq(n, "void"))
        return TV_K_VOID;
    if (tv_json_eq(n, "Function"))
        return TV_K_FUNCTION;
    return is_base_name(n) ? TV_K_BASE : TV_K_STRUCT;
}

/* The type named n with arguments a (NULL: none). */
static rk_ty_t resolve(const tv_jval_t *n, const rk_args_t *a)
{
    rk_ty_t ty;
    tv_memset(&ty, 0, sizeof ty);
    ty.kind = classify(n);
    switch (ty.kind) {
    case TV_K_POINTER:
    case TV_K_ARRAY:
        if (a && a->has_target) {
            ty.sub_kind = a->tty.kind;
            ty.has_name = a->tty.has_name;
            ty.name = a->tty.name;
        }
        ty.count = a ? a->count : 0;
        break;
    case TV_K_BITFIELD:
        if (a && a->has_target) {
            ty.sub_kind = a->tty.kind;
            ty.has_name = a->tty.has_name;
            ty.name = a->tty.name;
        }
        ty.start_bit = a ? a->start_bit : 0;
        ty.end_bit = a ? a->end_bit : 0;
        break;
    case TV_K_ENUM:
        if (a && a->has_enum) {
            ty.has_name = true;
            ty.name = a->enum_name;
        }
        break;
    case TV_K_BASE:
    case TV_K_STRUCT:
        ty.has_name = true;
        ty.name = *n;
        break;
    default:
        break;
    }
    return ty;
}

/* The members of an arguments object whose '{' was read. */
static int parse_args_body(rk_t *L, rk_args_t *a, unsigned depth)
{
    tv_jval_t v, k;
    int rc;
    tv_memset(a, 0, sizeof *a);
    if (depth > TYPE_DEPTH)
        return rk_fail(L, TINYVMI_EFORMAT, "type nested too deeply");
    rk_args_t sub;
    bool have_sub = false;
    while ((rc = next_key(L, &k)) > 0) {
        if (tv_json_eq(&k, "target")) {
            rc = expect(L, &a->target, TV_J_STR, "target is not a string");
            a->has_target = true;
        } else if (tv_json_eq(&k, "target_args")) {
            tv_memset(&v, 0, sizeof v);
            rc = tv_json_next(&L->j, &v);
            if (rc)
                return rk_fail(L, rc, NULL);
            if (v.type == TV_J_NULL)
                continue;
            if (v.type != TV_J_OBJ)
                return rk_fail(L, TINYVMI_EFORMAT,
                               "target_args is not an object");
            rc = parse_args_body(L, &sub, depth + 1);
            have_sub = true;
        } else if (tv_json_eq(&k, "count")) {
            uint64_t c;
            rc = read_u64(L, &c, "bad count");
            if (rc == 0 && c > UINT32_MAX)
                rc = rk_fail(L, TINYVMI_ERANGE, "count too large");
            a->count = (uint32_t)c;
        } else if (tv_json_eq(&k, "start_bit")) {
            rc = read_u64(L, &a->start_bit, "bad start_bit");
        } else if (tv_json_eq(&k, "end_bit")) {
            rc = read_u64(L, &a->end_bit, "bad end_bit");
        } else if (tv_json_eq(&k, "enum_name")) {
            rc = expect(L, &a->enum_name, TV_J_STR,
                        "enum_name is not a string");
            a->has_enum = true;
        } else {
            rc = skip(L);
        }
        if (rc)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (a->has_target)
        a->tty = resolve(&a->target, have_sub ? &sub : NULL);
    return 0;
}

static int parse_args(rk_t *L, rk_args_t *a)
{
    tv_jval_t v;
    int rc = expect(L, &v, TV_J_OBJ, "type arguments are not an object");
    return rc ? rc : parse_args_body(L, a, 0);
}

/* [typename, {args}]: the type of a field. */
static int parse_desc(rk_t *L, rk_ty_t *ty)
{
    tv_jval_t v, tname;
    rk_args_t a;
    int rc = expect(L, &v, TV_J_ARR, "type is not an array");
    if (rc || (rc = next_elem(L, "type without a name")) ||
        (rc = expect(L, &tname, TV_J_STR, "type name is not a string")))
        return rc;
    bool have_args = false;
    rc = tv_json_elem(&L->j);
    if (rc < 0)
        return rk_fail(L, rc, NULL);
    if (rc > 0) {
        if ((rc = parse_args(L, &a)) || (rc = end_array(L)))
            return rc;
        have_args = true;
    }
    *ty = resolve(&tname, have_args ? &a : NULL);
    if (ty->kind == TV_K_BITFIELD &&
        (ty->end_bit > 255 || ty->start_bit >= ty->end_bit))
        return rk_fail(L, TINYVMI_ERANGE, "bad BitField bits");
    if ((ty->kind == TV_K_POINTER || ty->kind == TV_K_ARRAY ||
         ty->kind == TV_K_BITFIELD) &&
        ty->sub_kind == TV_K_NONE)
        return rk_fail(L, TINYVMI_EFORMAT,
                       "Pointer/Array/BitField without a target");
    return 0;
}

static int parse_fields(rk_t *L)
{
    tv_jval_t v, fname;
    int rc = expect(L, &v, TV_J_OBJ, "fields are not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &fname)) > 0) {
        uint64_t off;
        rk_ty_t ty;
        if ((rc = expect(L, &v, TV_J_ARR, "field is not [offset, type]")) ||
            (rc = next_elem(L, "field without an offset")) ||
            (rc = read_u64(L, &off, "bad field offset")) ||
            (rc = next_elem(L, "field without a type")) ||
            (rc = parse_desc(L, &ty)) || (rc = end_array(L)))
            return rc;
        tv_mtype_t mt = {ty.kind, ty.sub_kind,
                         ty.kind == TV_K_ARRAY ? ty.count : 0, ""};
        if (ty.has_name &&
            (rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &ty.name, &mt.name,
                              NULL)))
            return rk_fail(L, rc, "bad type name");
        const char *n;
        size_t nl;
        if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, &fname, &n, &nl)))
            return rk_fail(L, rc, "bad field name");
        uint8_t bp = 0, bl = 0;
        if (ty.kind == TV_K_BITFIELD) {
            bp = (uint8_t)ty.start_bit;
            bl = (uint8_t)(ty.end_bit - ty.start_bit);
        }
        if ((rc = tv_symtab_add_member(L->t, n, nl, off, bp, bl, &mt,
                                       false)))
            return rk_table(L, rc);
    }
    return rc;
}

static int parse_struct(rk_t *L)
{
    tv_jval_t v;
    uint64_t size;
    const char *n;
    size_t nl;
    int rc;
    if ((rc = expect(L, &v, TV_J_ARR, "struct is not [size, {fields}]")) ||
        (rc = next_elem(L, "struct without a size")))
        return rc;
    /* Rekall writes null for the size of some incomplete types. */
    if ((rc = tv_json_next(&L->j, &v)))
        return rk_fail(L, rc, NULL);
    if (v.type == TV_J_NULL)
        size = 0;
    else if (!tv_json_u64(&v, &size))
        return rk_fail(L, TINYVMI_EFORMAT, "bad struct size");
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, &L->item, &n, &nl)))
        return rk_fail(L, rc, "bad struct name");
    if ((rc = tv_symtab_add_type(L->t, n, nl, TV_K_STRUCT, size)))
        return rk_table(L, rc);
    if ((rc = next_elem(L, "struct without fields")) ||
        (rc = parse_fields(L)))
        return rc;
    return end_array(L);
}

static int add_sym(rk_t *L, const tv_jval_t *name, uint64_t addr, char type)
{
    const char *n;
    size_t nl;
    int rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &nl);
    if (rc)
        return rk_fail(L, rc, "bad name");
    if ((rc = tv_symtab_add_symbol(L->t, n, nl, addr, type)))
        return rk_table(L, rc);
    return 0;
}

static int add_const(rk_t *L, const tv_jval_t *name, const tv_jval_t *v)
{
    int64_t val;
    uint64_t u;
    if (!tv_json_i64(v, &val)) {
        if (!tv_json_u64(v, &u))
            return rk_fail(L, TINYVMI_EFORMAT,
                           "enum value is not a 64-bit integer");
        val = (int64_t)u;
    }
    const char *n;
    size_t nl;
    int rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &nl);
    if (rc)
        return rk_fail(L, rc, "bad name");
    if ((rc = tv_symtab_add_const(L->t, n, nl, val)))
        return rk_table(L, rc);
    return 0;
}

/* {name: value} of one section. */
static int each(rk_t *L, const char *section,
                int (*fn)(rk_t *L, const tv_jval_t *name))
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

static int one_constant(rk_t *L, const tv_jval_t *name)
{
    uint64_t a;
    int rc = read_u64(L, &a, "address is not an unsigned integer");
    return rc ? rc : add_sym(L, name, a, 'D');
}

static int one_function(rk_t *L, const tv_jval_t *name)
{
    uint64_t a;
    int rc = read_u64(L, &a, "address is not an unsigned integer");
    return rc ? rc : add_sym(L, name, a, 'T');
}

static int one_struct(rk_t *L, const tv_jval_t *name)
{
    (void)name;
    return parse_struct(L);
}

/* $REVENUMS: {enum: {"name": value}}. */
static int one_revenum(rk_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k;
    const char *n;
    size_t nl;
    int rc = expect(L, &v, TV_J_OBJ, "enum is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if ((rc = tv_json_next(&L->j, &v)))
            return rk_fail(L, rc, NULL);
        if ((rc = add_const(L, &k, &v)))
            return rc;
    }
    if (rc < 0)
        return rc;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &nl)))
        return rk_fail(L, rc, "bad enum name");
    if ((rc = tv_symtab_add_type(L->t, n, nl, TV_K_ENUM, 4)))
        return rk_table(L, rc);
    return 0;
}

/* $ENUMS: {enum: {"value": "name"}}: the values are decimal strings. */
static int one_enum(rk_t *L, const tv_jval_t *name)
{
    tv_jval_t v, k;
    const char *n;
    size_t nl;
    int rc = expect(L, &v, TV_J_OBJ, "enum is not an object");
    if (rc)
        return rc;
    while ((rc = next_key(L, &k)) > 0) {
        if ((rc = expect(L, &v, TV_J_STR, "enumerator is not a string")))
            return rc;
        /* The key as a JSON number. */
        tv_json_t nj;
        tv_jval_t num;
        tv_json_init(&nj, k.p, k.escaped ? 0 : k.len);
        if (tv_json_next(&nj, &num) != 0 || tv_json_end(&nj) != 0)
            return rk_fail(L, TINYVMI_EFORMAT, "enum value is not a number");
        if ((rc = add_const(L, &v, &num)))
            return rc;
    }
    if (rc < 0)
        return rc;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->nb, name, &n, &nl)))
        return rk_fail(L, rc, "bad enum name");
    if ((rc = tv_symtab_add_type(L->t, n, nl, TV_K_ENUM, 4)))
        return rk_table(L, rc);
    return 0;
}

static int one_meta(rk_t *L, const tv_jval_t *name)
{
    tv_jval_t v;
    int rc = tv_json_next(&L->j, &v);
    if (rc)
        return rk_fail(L, rc, NULL);
    if (v.type != TV_J_STR)
        return rk_fail(L, TINYVMI_EFORMAT, "metadata value is not a string");
    const char *s;
    size_t len;
    if ((rc = tv_jbuf_str(L->ctx->hooks, &L->tb, &v, &s, &len)))
        return rk_fail(L, rc, "bad metadata string");
    const char *key = NULL;
    if (tv_json_eq(name, "arch")) {
        key = "arch";
        L->have_arch = true;
        L->is64 = !(len == 4 && tv_memcmp(s, "I386", 4) == 0) &&
                  !(len == 3 && tv_memcmp(s, "ARM", 3) == 0);
    } else if (tv_json_eq(name, "GUID_AGE")) {
        key = "guid";
    } else if (tv_json_eq(name, "PDBFile")) {
        key = "pdb";
    } else if (tv_json_eq(name, "ProfileClass") ||
               tv_json_eq(name, "os")) {
        bool lin = len >= 5 && (tv_memcmp(s, "Linux", 5) == 0 ||
                                tv_memcmp(s, "linux", 5) == 0);
        bool win = (len >= 2 && tv_memcmp(s, "Nt", 2) == 0) ||
                   (len >= 7 && tv_memcmp(s, "windows", 7) == 0) ||
                   (len >= 3 && tv_memcmp(s, "Win", 3) == 0);
        L->windows = win;
        if (lin || win) {
            const char *os = lin ? "linux" : "windows";
            if ((rc = tv_symtab_set_meta(L->t, "os", os, tv_strlen(os))))
                return rk_table(L, rc);
        }
    }
    if (key && (rc = tv_symtab_set_meta(L->t, key, s, len)))
        return rk_table(L, rc);
    return 0;
}

/* Metadata values that are not strings: skipped. */
static int meta_entry(rk_t *L, const tv_jval_t *name)
{
    /* Peek: strings go to one_meta, the rest is skipped. */
    size_t save = L->j.pos;
    tv_json_t probe = L->j;
    tv_jval_t v;
    if (tv_json_next(&probe, &v) == 0 && v.type == TV_J_STR)
        return one_meta(L, name);
    L->j.pos = save;
    return skip(L);
}

/* Base types with the sizes the architecture gives them. */
static int add_base_types(rk_t *L)
{
    uint64_t ptr = L->is64 ? 8 : 4;
    uint64_t lng = L->is64 && !L->windows ? 8 : 4;
    static const struct {
        const char *name;
        uint8_t size; /* 0: pointer size, 1..: fixed, 0xff: long */
    } base[] = {
        {"pointer", 0},
        {"char", 1},
        {"signed char", 1},
        {"unsigned char", 1},
        {"_Bool", 1},
        {"bool", 1},
        {"short", 2},
        {"short int", 2},
        {"unsigned short", 2},
        {"short unsigned int", 2},
        {"wchar_t", 2},
        {"int", 4},
        {"unsigned int", 4},
        {"float", 4},
        {"long", 0xff},
        {"long int", 0xff},
        {"unsigned long", 0xff},
        {"long unsigned int", 0xff},
        {"long long", 8},
        {"long long int", 8},
        {"unsigned long long", 8},
        {"long long unsigned int", 8},
        {"double", 8},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(base); i++) {
        uint64_t size = base[i].size == 0      ? ptr
                        : base[i].size == 0xff ? lng
                                               : base[i].size;
        int rc = tv_symtab_add_type(L->t, base[i].name,
                                    tv_strlen(base[i].name), TV_K_BASE, size);
        if (rc)
            return rk_table(L, rc);
    }
    return 0;
}

int tv_profile_load_rekall(const tv_pctx_t *ctx, const char *buf, size_t len,
                           tv_symtab_t *t)
{
    if (!ctx || !ctx->hooks || !t || (!buf && len))
        return tv_pfail(ctx, TINYVMI_EINVAL, "Rekall profile: bad arguments");
    rk_t L = {.ctx = ctx, .t = t, .is64 = true};
    tv_json_init(&L.j, buf, len);
    tv_jval_t v, k;
    bool have = false;
    int rc = tv_symtab_set_meta(t, "source", "rekall", 6);
    if (rc) {
        rc = rk_table(&L, rc);
        goto out;
    }
    if ((rc = expect(&L, &v, TV_J_OBJ, "the file is not a JSON object")))
        goto out;
    while ((rc = next_key(&L, &k)) > 0) {
        L.section = NULL;
        if (tv_json_eq(&k, "$METADATA")) {
            rc = each(&L, "$METADATA", meta_entry);
        } else if (tv_json_eq(&k, "$CONSTANTS")) {
            rc = each(&L, "$CONSTANTS", one_constant);
            have = true;
        } else if (tv_json_eq(&k, "$FUNCTIONS")) {
            rc = each(&L, "$FUNCTIONS", one_function);
        } else if (tv_json_eq(&k, "$STRUCTS")) {
            rc = each(&L, "$STRUCTS", one_struct);
            have = true;
        } else if (tv_json_eq(&k, "$REVENUMS")) {
            rc = each(&L, "$REVENUMS", one_revenum);
        } else if (tv_json_eq(&k, "$ENUMS")) {
            rc = each(&L, "$ENUMS", one_enum);
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
    if ((rc = tv_json_end(&L.j))) {
        rc = rk_fail(&L, rc, NULL);
        goto out;
    }
    if (!have) {
        rc = rk_fail(&L, TINYVMI_EFORMAT,
                     "not a Rekall profile: no $CONSTANTS or $STRUCTS");
        goto out;
    }
    rc = add_base_types(&L);
out:
    tv_jbuf_free(ctx->hooks, &L.nb);
    tv_jbuf_free(ctx->hooks, &L.tb);
    return rc;
}
