/*
 * tinyvmi profile from an ELF vmlinux with DWARF (a Debian -dbg package's):
 * types from .debug_info (read with elfutils' libdw), symbols from the ELF
 * symbol table, written as the same ISF as the BTF path (isf.h).
 *
 * One pass over the compilation units writes user_types, enums and
 * base_types to temporary files as it meets them, and remembers each
 * global variable's type; then the symbol table is written with those
 * types and the sections are copied out in order.  A kernel has ~2,500
 * CUs that repeat most types: a name is written once (the first complete
 * definition wins).  Anonymous structs, unions and enums are named
 * unnamed_<FNV-1a of their ISF text>, so the same anonymous type in many
 * CUs gets one name and one entry.
 *
 * The DWARF is untrusted: type chains and DIE nesting are walked to a
 * fixed depth, anonymous types that contain themselves are cut, and libdw
 * reports malformed data as errors.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isf.h"

#define TYPE_DEPTH 32 /* typedef/const/pointer/array chains */
#define DIE_DEPTH 16  /* functions and blocks walked for local types */
#define MAX_DIMS 8    /* array dimensions written */
#define BANNER_MAX 1024

/* ---- Anonymous types: DIE offset -> name hash (0 while being written) ------------- */

typedef struct amap {
    uint64_t *key, *val;
    size_t cap, n;
} amap_t;

static size_t amap_slot(const amap_t *m, uint64_t key)
{
    size_t j = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
    while (m->key[j] && m->key[j] != key)
        j = (j + 1) & (m->cap - 1);
    return j;
}

static bool amap_put(amap_t *m, uint64_t key, uint64_t val)
{
    key++; /* 0 marks a free slot */
    if ((m->n + 1) * 2 > m->cap) {
        amap_t g = {calloc(m->cap ? m->cap * 2 : 4096, 8),
                    calloc(m->cap ? m->cap * 2 : 4096, 8),
                    m->cap ? m->cap * 2 : 4096, m->n};
        if (!g.key || !g.val) {
            free(g.key);
            free(g.val);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = amap_slot(&g, m->key[i]);
                g.key[j] = m->key[i];
                g.val[j] = m->val[i];
            }
        free(m->key);
        free(m->val);
        *m = g;
    }
    size_t j = amap_slot(m, key);
    m->n += !m->key[j];
    m->key[j] = key;
    m->val[j] = val;
    return true;
}

static bool amap_get(const amap_t *m, uint64_t key, uint64_t *val)
{
    if (!m->cap)
        return false;
    size_t j = amap_slot(m, key + 1);
    if (!m->key[j])
        return false;
    *val = m->val[j];
    return true;
}

/* ---- Named entries, kept until the end: a later definition replaces an earlier one
 * of the same name (dwarf2json keeps the last; a few names have different types in
 * different CUs, e.g. struct elf_note_info in binfmt_elf.c and compat_binfmt_elf.c). */

typedef struct entries {
    isf_names_t idx; /* name -> index */
    char **name, **text;
    uint64_t *sig; /* what text was made from, to skip re-rendering */
    size_t n, cap;
} entries_t;

static bool entries_find(const entries_t *e, const char *name, size_t *i)
{
    uint32_t v;
    if (!isf_names_get(&e->idx, name, &v))
        return false;
    *i = v;
    return true;
}

/* Sets name's text (taking it) and sig; false if memory ran out. */
static bool entries_set(entries_t *e, const char *name, uint64_t sig,
                        char *text)
{
    size_t i;
    bool oom = false;
    if (entries_find(e, name, &i)) {
        free(e->text[i]);
        e->text[i] = text;
        e->sig[i] = sig;
        return true;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4096;
        char **nm = realloc(e->name, cap * sizeof *nm);
        if (nm)
            e->name = nm;
        char **tx = realloc(e->text, cap * sizeof *tx);
        if (tx)
            e->text = tx;
        uint64_t *sg = realloc(e->sig, cap * sizeof *sg);
        if (sg)
            e->sig = sg;
        if (!nm || !tx || !sg || cap > UINT32_MAX) {
            free(text);
            return false;
        }
        e->cap = cap;
    }
    if (!isf_names_add(&e->idx, name, (uint32_t)e->n, &oom) ||
        !(e->name[e->n] = strdup(name))) {
        free(text);
        return false;
    }
    e->text[e->n] = text;
    e->sig[e->n++] = sig;
    return true;
}

static void entries_free(entries_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->name[i]);
        free(e->text[i]);
    }
    free(e->name);
    free(e->text);
    free(e->sig);
    isf_names_free(&e->idx);
    memset(e, 0, sizeof *e);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#define FNV0 0xcbf29ce484222325ull

/* ---- State ------------------------------------------------------------------------ */

typedef struct dw {
    const cli_t *c;
    Elf *elf;
    Dwarf *dbg;
    /* Sections as they are found; every entry starts with ",\n" and the
     * first comma of a section is dropped when it is copied out. */
    FILE *bt, *anon, *en;
    isf_names_t bt_seen, ut_seen, en_seen; /* anonymous ones by name */
    entries_t ut, enums;                   /* named ones */
    entries_t located; /* variables at fixed addresses: type, sig = address */
    isf_names_t en_decl; /* enums seen only declared, so far */
    isf_names_t vars; /* variable name -> index in vtype */
    char **vtype;     /* a variable's type, as ISF text */
    size_t nvtype, capvtype;
    amap_t anon_names;
    unsigned addr_size;
    bool oom;
    size_t nbase, ntypes, nenums, nsyms;
} dw_t;

static void void_type(FILE *f)
{
    fputs("{\"kind\": \"base\", \"name\": \"void\"}", f);
}

static bool type_of(Dwarf_Die *d, Dwarf_Die *out)
{
    Dwarf_Attribute a;
    return dwarf_attr_integrate(d, DW_AT_type, &a) &&
           dwarf_formref_die(&a, out) != NULL;
}

static bool attr_u(Dwarf_Die *d, unsigned at, Dwarf_Word *v)
{
    Dwarf_Attribute a;
    return dwarf_attr_integrate(d, at, &a) && dwarf_formudata(&a, v) == 0;
}

static bool is_qual(int tag)
{
    return tag == DW_TAG_const_type || tag == DW_TAG_volatile_type ||
           tag == DW_TAG_restrict_type || tag == DW_TAG_atomic_type;
}

static bool is_record(int tag)
{
    return tag == DW_TAG_structure_type || tag == DW_TAG_union_type ||
           tag == DW_TAG_class_type;
}

/* t past qualifiers (and typedefs too if `typedefs`); false at a void end
 * or a chain longer than TYPE_DEPTH (a cycle in hostile DWARF). */
static bool skip(Dwarf_Die *t, bool typedefs)
{
    for (int i = 0; i < TYPE_DEPTH; i++) {
        int tag = dwarf_tag(t);
        if (!is_qual(tag) && !(typedefs && tag == DW_TAG_typedef))
            return true;
        if (!type_of(t, t))
            return false;
    }
    return false;
}

static const char *name_of(Dwarf_Die *d)
{
    const char *n = dwarf_diename(d);
    return n && n[0] ? n : NULL;
}

static bool is_decl(Dwarf_Die *d)
{
    bool flag = false;
    Dwarf_Attribute a;
    if (dwarf_attr(d, DW_AT_declaration, &a))
        dwarf_formflag(&a, &flag);
    return flag;
}

static void anon_name(dw_t *w, Dwarf_Die *d, int depth, char *buf,
                      size_t len);

/* ---- Type descriptors (a field's or a variable's type) ---------------------------- */

static void desc(dw_t *w, FILE *f, Dwarf_Die *die, int depth);

static void ref(dw_t *w, FILE *f, Dwarf_Die *t, const char *as, int depth)
{
    char buf[40];
    int tag = dwarf_tag(t);
    const char *name = as ? as : name_of(t);
    if (!name) {
        anon_name(w, t, depth, buf, sizeof buf);
        name = buf;
    }
    fprintf(f, "{\"kind\": \"%s\", \"name\": ",
            tag == DW_TAG_enumeration_type ? "enum"
            : tag == DW_TAG_union_type     ? "union"
                                           : "struct");
    cli_json_str(f, name);
    fputc('}', f);
}

/* The element count of a subrange; 0 for a flexible or unknown bound. */
static uint64_t sub_count(Dwarf_Die *s)
{
    Dwarf_Word v;
    Dwarf_Attribute a;
    if (attr_u(s, DW_AT_count, &v))
        return v;
    if (!dwarf_attr(s, DW_AT_upper_bound, &a))
        return 0;
    if (dwarf_whatform(&a) == DW_FORM_sdata) {
        Dwarf_Sword sv;
        return dwarf_formsdata(&a, &sv) == 0 && sv >= 0 ? (uint64_t)sv + 1
                                                          : 0;
    }
    /* GCC writes [0] as an upper bound of -1 in a data form. */
    if (dwarf_formudata(&a, &v) != 0 || v >= 0xffffffffu)
        return 0;
    return v + 1;
}

static void array(dw_t *w, FILE *f, Dwarf_Die *t, int depth)
{
    uint64_t count[MAX_DIMS];
    int n = 0;
    Dwarf_Die s, e;
    if (dwarf_child(t, &s) == 0)
        do {
            if (dwarf_tag(&s) == DW_TAG_subrange_type && n < MAX_DIMS)
                count[n++] = sub_count(&s);
        } while (dwarf_siblingof(&s, &s) == 0);
    if (!n)
        count[n++] = 0;
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"count\": %" PRIu64 ", \"kind\": \"array\", "
                "\"subtype\": ", count[i]);
    if (type_of(t, &e))
        desc(w, f, &e, depth + 1);
    else
        void_type(f);
    for (int i = 0; i < n; i++)
        fputc('}', f);
}

/* A typedef of a struct or union is referred to by the typedef's
 * name (as dwarf2json does; the type is listed under that name too); in a
 * chain of typedefs, by the last one, the one that names the type itself.
 * Other typedefs stand for what they name. */
static void typedef_desc(dw_t *w, FILE *f, Dwarf_Die *t, int depth)
{
    Dwarf_Die cur = *t, r;
    for (; depth <= TYPE_DEPTH; depth++) {
        if (!type_of(&cur, &r) || !skip(&r, false)) {
            void_type(f);
            return;
        }
        int tag = dwarf_tag(&r);
        if (tag == DW_TAG_typedef) {
            cur = r;
            continue;
        }
        if (is_record(tag) && name_of(&cur))
            ref(w, f, &r, name_of(&cur), depth);
        else
            desc(w, f, &r, depth + 1);
        return;
    }
    void_type(f);
}

static void desc(dw_t *w, FILE *f, Dwarf_Die *die, int depth)
{
    Dwarf_Die t = *die, n;
    if (depth > TYPE_DEPTH || !skip(&t, false)) {
        void_type(f);
        return;
    }
    switch (dwarf_tag(&t)) {
    case DW_TAG_base_type:
        if (!name_of(&t))
            break;
        fputs("{\"kind\": \"base\", \"name\": ", f);
        cli_json_str(f, name_of(&t));
        fputc('}', f);
        return;
    case DW_TAG_pointer_type:
    case DW_TAG_reference_type:
    case DW_TAG_rvalue_reference_type:
        fputs("{\"kind\": \"pointer\", \"subtype\": ", f);
        if (type_of(&t, &n))
            desc(w, f, &n, depth + 1);
        else
            void_type(f);
        fputc('}', f);
        return;
    case DW_TAG_typedef:
        typedef_desc(w, f, &t, depth);
        return;
    case DW_TAG_structure_type:
    case DW_TAG_union_type:
    case DW_TAG_class_type:
    case DW_TAG_enumeration_type:
        ref(w, f, &t, NULL, depth);
        return;
    case DW_TAG_array_type:
        array(w, f, &t, depth);
        return;
    case DW_TAG_subroutine_type:
        fputs("{\"kind\": \"function\"}", f);
        return;
    }
    void_type(f);
}

/* ---- Structs and unions ------------------------------------------------------------ */

static uint64_t member_location(Dwarf_Die *m)
{
    Dwarf_Attribute a;
    Dwarf_Word v;
    if (!dwarf_attr(m, DW_AT_data_member_location, &a))
        return 0;
    switch (dwarf_whatform(&a)) {
    case DW_FORM_block:
    case DW_FORM_block1:
    case DW_FORM_block2:
    case DW_FORM_block4:
    case DW_FORM_exprloc: {
        /* DWARF 2/3: DW_OP_plus_uconst N. */
        Dwarf_Op *ops;
        size_t nops;
        if (dwarf_getlocation(&a, &ops, &nops) == 0 && nops == 1 &&
            ops[0].atom == DW_OP_plus_uconst)
            return ops[0].number;
        return 0;
    }
    default:
        return dwarf_formudata(&a, &v) == 0 ? v : 0;
    }
}

/* A bitfield's first bit, counted from the start of the struct. */
static uint64_t bit_start(Dwarf_Die *m, Dwarf_Die *t, uint64_t loc,
                          uint64_t bits)
{
    Dwarf_Word v, unit;
    if (attr_u(m, DW_AT_data_bit_offset, &v)) /* DWARF 4 and 5 */
        return loc * 8 + v;
    if (!attr_u(m, DW_AT_bit_offset, &v)) /* DWARF 2/3 */
        return loc * 8;
    /* DW_AT_bit_offset counts from the storage unit's most significant
     * bit; on a little-endian target that is its last byte. */
    Dwarf_Die r = *t;
    if (!attr_u(m, DW_AT_byte_size, &unit) &&
        !(skip(&r, true) && attr_u(&r, DW_AT_byte_size, &unit)))
        return loc * 8;
    if (unit > 64 || v + bits > unit * 8)
        return loc * 8;
    return loc * 8 + unit * 8 - v - bits;
}

static void member(dw_t *w, FILE *f, Dwarf_Die *m, bool *first,
                   unsigned *anon, int depth)
{
    char fname[40];
    Dwarf_Die t, r;
    bool has_t = type_of(m, &t), is_anon = false;
    const char *name = name_of(m);
    if (!name) {
        /* Unnamed members that matter are anonymous structs/unions. */
        r = t;
        if (!has_t || !skip(&r, false) || !is_record(dwarf_tag(&r)))
            return;
        isf_anon_field(fname, sizeof fname, (*anon)++);
        name = fname;
        is_anon = true;
    }
    uint64_t loc = member_location(m), off = loc;
    Dwarf_Word bits = 0;
    unsigned pos = 0;
    if (attr_u(m, DW_AT_bit_size, &bits) && bits && bits <= 4096) {
        uint64_t b = bit_start(m, &t, loc, bits);
        off = b / 8;
        pos = (unsigned)(b & 7);
    } else {
        bits = 0;
    }
    isf_field_begin(f, first, name, (unsigned)bits, pos);
    if (has_t)
        desc(w, f, &t, depth + 1);
    else
        void_type(f);
    isf_field_end(f, off, (unsigned)bits, is_anon);
}

static void record_body(dw_t *w, FILE *f, Dwarf_Die *s, int depth)
{
    Dwarf_Word size = 0;
    Dwarf_Die m;
    bool first = true;
    unsigned anon = 0;
    attr_u(s, DW_AT_byte_size, &size);
    isf_struct_begin(f, NULL, dwarf_tag(s) == DW_TAG_union_type, size);
    if (dwarf_child(s, &m) == 0)
        do {
            if (dwarf_tag(&m) == DW_TAG_member)
                member(w, f, &m, &first, &anon, depth);
        } while (dwarf_siblingof(&m, &m) == 0);
    isf_struct_end(f, !first);
}

/* ---- Enums ---------------------------------------------------------------------- */

/* The enum's underlying type (DWARF 3+ from GCC), else by size as C's
 * default int. */
static const char *enum_base(Dwarf_Die *e, uint64_t size)
{
    Dwarf_Die base;
    if (type_of(e, &base) && skip(&base, true) &&
        dwarf_tag(&base) == DW_TAG_base_type && name_of(&base))
        return name_of(&base);
    return isf_enum_base(size, true);
}

/* GCC writes negative values as sdata and the others in the smallest
 * fixed-size form (225 as data1, not -31): the form says the sign. */
static void enumerator(FILE *f, Dwarf_Die *c)
{
    Dwarf_Attribute a;
    Dwarf_Word u;
    Dwarf_Sword s;
    if (!dwarf_attr(c, DW_AT_const_value, &a))
        return;
    cli_json_str(f, name_of(c) ? name_of(c) : "");
    switch (dwarf_whatform(&a)) {
    case DW_FORM_sdata:
    case DW_FORM_implicit_const:
        fprintf(f, ": %" PRId64, dwarf_formsdata(&a, &s) == 0 ? (int64_t)s : 0);
        return;
    default:
        fprintf(f, ": %" PRIu64, dwarf_formudata(&a, &u) == 0 ? (uint64_t)u : 0);
    }
}

static void enum_body(FILE *f, Dwarf_Die *e)
{
    Dwarf_Word size = 4;
    Dwarf_Die c;
    bool first = true;
    attr_u(e, DW_AT_byte_size, &size);
    const char *bname = enum_base(e, size);
    fprintf(f, "{\"size\": %" PRIu64 ", \"base\": ", (uint64_t)size);
    cli_json_str(f, bname);
    fputs(", \"constants\": {", f);
    if (dwarf_child(e, &c) == 0)
        do {
            if (dwarf_tag(&c) != DW_TAG_enumerator)
                continue;
            fputs(first ? "" : ", ", f);
            first = false;
            enumerator(f, &c);
        } while (dwarf_siblingof(&c, &c) == 0);
    fputs("}}", f);
}

/* ---- Entries ------------------------------------------------------------------------ */

static void entry(FILE *f, const char *name, const char *body)
{
    fputs(",\n    ", f);
    cli_json_str(f, name);
    fputs(": ", f);
    fputs(body, f);
}

/* Renders an anonymous type's entry, names it by its text and writes it
 * (once per name).  A type met again inside itself (only hostile DWARF
 * does that) is named unnamed_cycle and its entry is not written. */
static void anon_name(dw_t *w, Dwarf_Die *d, int depth, char *buf,
                      size_t len)
{
    uint64_t off = dwarf_dieoffset(d), h = 0;
    if (amap_get(&w->anon_names, off, &h) || depth > TYPE_DEPTH) {
        if (h)
            snprintf(buf, len, "unnamed_%016" PRIx64, h);
        else
            snprintf(buf, len, "unnamed_cycle");
        return;
    }
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    if (!m || !amap_put(&w->anon_names, off, 0)) {
        w->oom = true;
        if (m)
            fclose(m);
        snprintf(buf, len, "unnamed_cycle");
        return;
    }
    bool is_enum = dwarf_tag(d) == DW_TAG_enumeration_type;
    if (is_enum)
        enum_body(m, d);
    else
        record_body(w, m, d, depth + 1);
    if (fclose(m) != 0 || !text) {
        w->oom = true;
        free(text);
        snprintf(buf, len, "unnamed_cycle");
        return;
    }
    h = fnv(FNV0, text, n);
    h += !h;
    w->oom |= !amap_put(&w->anon_names, off, h);
    snprintf(buf, len, "unnamed_%016" PRIx64, h);
    bool oom = false;
    if (isf_names_add(is_enum ? &w->en_seen : &w->ut_seen, buf, 0, &oom)) {
        entry(is_enum ? w->en : w->anon, buf, text);
        *(is_enum ? &w->nenums : &w->ntypes) += 1;
    }
    w->oom |= oom;
    free(text);
}

/* What a struct's entry depends on, cheaper than writing it: its size and
 * its members' names, places and types' names. */
static uint64_t record_sig(Dwarf_Die *d)
{
    Dwarf_Word v = 0;
    Dwarf_Die m, t;
    attr_u(d, DW_AT_byte_size, &v);
    uint64_t h = fnv(FNV0, &v, sizeof v);
    if (dwarf_child(d, &m) != 0)
        return h;
    do {
        const char *n = name_of(&m);
        uint64_t loc = member_location(&m);
        h = fnv(h, n ? n : "", n ? strlen(n) + 1 : 1);
        h = fnv(h, &loc, sizeof loc);
        v = 0;
        attr_u(&m, DW_AT_bit_size, &v);
        h = fnv(h, &v, sizeof v);
        for (int i = 0; i < 4 && type_of(i ? &t : &m, &t); i++) {
            int tag = dwarf_tag(&t);
            h = fnv(h, &tag, sizeof tag);
            if ((n = name_of(&t))) {
                h = fnv(h, n, strlen(n) + 1);
                break;
            }
        }
    } while (dwarf_siblingof(&m, &m) == 0);
    return h;
}

/* Text written by fn(w, f, d) into memory; NULL if memory ran out. */
static char *render(dw_t *w, Dwarf_Die *d, bool is_enum, size_t *len)
{
    char *text = NULL;
    FILE *m = open_memstream(&text, len);
    if (!m) {
        w->oom = true;
        return NULL;
    }
    if (is_enum)
        enum_body(m, d);
    else
        record_body(w, m, d, 0);
    if (fclose(m) != 0 || !text) {
        free(text);
        w->oom = true;
        return NULL;
    }
    return text;
}

/* A named struct/union (or one a typedef names) into user_types. */
static void on_record(dw_t *w, Dwarf_Die *d, const char *name)
{
    size_t i, n;
    if (!name || is_decl(d))
        return;
    uint64_t sig = record_sig(d);
    if (entries_find(&w->ut, name, &i) && w->ut.sig[i] == sig)
        return;
    char *text = render(w, d, false, &n);
    if (text && !entries_set(&w->ut, name, sig, text))
        w->oom = true;
}

static void on_enum(dw_t *w, Dwarf_Die *d, const char *name)
{
    bool oom = false;
    size_t i, n;
    if (name && is_decl(d)) {
        isf_names_add(&w->en_decl, name, 0, &oom);
        w->oom |= oom;
        return;
    }
    if (!name)
        return;
    char *text = render(w, d, true, &n);
    if (!text)
        return;
    uint64_t sig = fnv(FNV0, text, n);
    if (entries_find(&w->enums, name, &i) && w->enums.sig[i] == sig)
        free(text);
    else if (!entries_set(&w->enums, name, sig, text))
        w->oom = true;
}

static void on_typedef(dw_t *w, Dwarf_Die *d)
{
    Dwarf_Die r;
    const char *name = name_of(d);
    /* Only a typedef naming the type itself: dwarf2json does not list
     * typedefs of typedefs (atomic_long_t, a typedef of atomic64_t). */
    if (!name || !type_of(d, &r) || !skip(&r, false))
        return;
    /* dwarf2json lists typedefs of structs and unions under the typedef's
     * name, not typedefs of enums (those are known by the enum's name). */
    if (is_record(dwarf_tag(&r)))
        on_record(w, &r, name);
}

static void on_base(dw_t *w, Dwarf_Die *d)
{
    Dwarf_Word enc = 0, size = 0;
    bool oom = false;
    const char *name = name_of(d);
    if (!name || !isf_names_add(&w->bt_seen, name, 0, &oom)) {
        w->oom |= oom;
        return;
    }
    attr_u(d, DW_AT_encoding, &enc);
    attr_u(d, DW_AT_byte_size, &size);
    const char *kind = enc == DW_ATE_boolean ? "bool"
                       : enc == DW_ATE_float ? "float"
                       : enc == DW_ATE_signed_char || enc == DW_ATE_unsigned_char
                           ? "char"
                           : "int";
    /* As dwarf2json: everything but the unsigned encodings is signed
     * (_Bool and float included). */
    bool sign = enc != DW_ATE_unsigned && enc != DW_ATE_unsigned_char;
    fputs(",\n", w->bt);
    isf_base(w->bt, name, size, sign, kind);
    w->nbase++;
}

/* A global variable's type, for its symbol (the first CU's wins). */
static void on_var(dw_t *w, Dwarf_Die *d)
{
    Dwarf_Die t;
    uint32_t v;
    const char *name = name_of(d);
    if (!name || !type_of(d, &t) || isf_names_get(&w->vars, name, &v))
        return;
    char *text = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&text, &n);
    if (!m) {
        w->oom = true;
        return;
    }
    desc(w, m, &t, 0);
    if (fclose(m) != 0 || !text) {
        free(text);
        w->oom = true;
        return;
    }
    if (w->nvtype == w->capvtype) {
        size_t cap = w->capvtype ? w->capvtype * 2 : 4096;
        char **p = realloc(w->vtype, cap * sizeof *p);
        if (!p || w->nvtype > UINT32_MAX - 1) {
            free(text);
            w->oom = true;
            return;
        }
        w->vtype = p;
        w->capvtype = cap;
    }
    bool oom = false;
    if (!isf_names_add(&w->vars, name, (uint32_t)w->nvtype, &oom)) {
        free(text);
        w->oom |= oom;
        return;
    }
    w->vtype[w->nvtype++] = text;
}

/* A struct, union or enum met in the walk; anonymous ones are listed too
 * (enums of constants, types of variables), as dwarf2json lists them. */
static void on_type(dw_t *w, Dwarf_Die *d)
{
    char buf[40];
    const char *name = name_of(d);
    if (!name) {
        if (!is_decl(d))
            anon_name(w, d, 0, buf, sizeof buf);
    } else if (dwarf_tag(d) == DW_TAG_enumeration_type) {
        on_enum(w, d, name);
    } else {
        on_record(w, d, name);
    }
}

/* A variable at a fixed address (DW_OP_addr), function-local statics
 * included: listed as a symbol under its C name if the symbol table does
 * not have that name (GCC renames local statics: "__key.5").  As
 * dwarf2json does, the last variable of a name wins; if that one has no
 * fixed address (a local on the stack) the name is not listed. */
static void on_located(dw_t *w, Dwarf_Die *d)
{
    Dwarf_Attribute a;
    Dwarf_Op *ops;
    Dwarf_Die t;
    size_t nops, n;
    const char *name = name_of(d);
    if (!name)
        return;
    if (!dwarf_attr(d, DW_AT_location, &a) ||
        dwarf_getlocation(&a, &ops, &nops) != 0 || nops != 1 ||
        ops[0].atom != DW_OP_addr || !ops[0].number) {
        if (!is_decl(d) && !entries_set(&w->located, name, 0, NULL))
            w->oom = true;
        return;
    }
    char *text = NULL;
    FILE *m = open_memstream(&text, &n);
    if (!m) {
        w->oom = true;
        return;
    }
    if (type_of(d, &t))
        desc(w, m, &t, 0);
    else
        void_type(m);
    if (fclose(m) != 0 || !text || !entries_set(&w->located, name,
                                                ops[0].number, text))
        w->oom = true;
}

static void walk(dw_t *w, Dwarf_Die *parent, int depth)
{
    Dwarf_Die d;
    if (depth > DIE_DEPTH || dwarf_child(parent, &d) != 0)
        return;
    do {
        switch (dwarf_tag(&d)) {
        case DW_TAG_base_type:
            on_base(w, &d);
            break;
        case DW_TAG_structure_type:
        case DW_TAG_union_type:
        case DW_TAG_class_type:
        case DW_TAG_enumeration_type:
            on_type(w, &d);
            break;
        case DW_TAG_typedef:
            on_typedef(w, &d);
            break;
        case DW_TAG_variable:
            if (depth == 0)
                on_var(w, &d);
            on_located(w, &d);
            break;
        default:
            /* Types declared inside functions (and blocks, inlined
             * copies...) are types too. */
            if (dwarf_haschildren(&d) > 0)
                walk(w, &d, depth + 1);
            break;
        }
    } while (dwarf_siblingof(&d, &d) == 0 && !w->oom);
}

static int walk_units(dw_t *w)
{
    Dwarf_CU *cu = NULL;
    Dwarf_Die cudie, sub;
    Dwarf_Half ver;
    uint8_t type;
    size_t n = 0;
    int rc;
    while ((rc = dwarf_get_units(w->dbg, cu, &cu, &ver, &type, &cudie,
                                 &sub)) == 0) {
        uint8_t asz = 0, osz;
        if ((type == DW_UT_compile || type == DW_UT_partial) &&
            dwarf_diecu(&cudie, &cudie, &asz, &osz) && !w->addr_size)
            w->addr_size = asz;
        walk(w, &cudie, 0);
        if (w->oom)
            return cli_fail(w->c, CLI_FAILED, "out of memory");
        n++;
    }
    if (rc < 0)
        return cli_fail(w->c, CLI_FAILED, "%s: DWARF after %zu units: %s",
                        w->c->target, n, dwarf_errmsg(-1));
    if (!n)
        return cli_fail(w->c, CLI_FAILED, "%s: no DWARF compilation units",
                        w->c->target);
    return CLI_OK;
}

/* ---- Symbols ---------------------------------------------------------------------- */

/* The NUL-terminated string at vaddr in the file's allocated sections
 * (linux_banner's text), or 0 bytes. */
static size_t elf_string(Elf *elf, uint64_t vaddr, uint8_t *out, size_t max)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    while ((scn = elf_nextscn(elf, scn))) {
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
            !(sh.sh_flags & SHF_ALLOC) || vaddr < sh.sh_addr ||
            vaddr - sh.sh_addr >= sh.sh_size)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        uint64_t at = vaddr - sh.sh_addr;
        if (!d || !d->d_buf || at >= d->d_size)
            return 0;
        const uint8_t *p = (const uint8_t *)d->d_buf + at;
        size_t n = 0, left = (size_t)(d->d_size - at);
        while (n < max && n < left && p[n]) {
            out[n] = p[n];
            n++;
        }
        if (n >= max || n >= left)
            return 0;
        out[n] = 0;
        return n + 1;
    }
    return 0;
}

/* A symbol; its type is `type` if given, else that of the global variable
 * of its name, else void. */
static void symbol(dw_t *w, FILE *f, bool *first, const char *name,
                   uint64_t addr, const char *type)
{
    uint32_t i;
    isf_sep(f, first);
    fputs("    ", f);
    cli_json_str(f, name);
    fputs(": {\"type\": ", f);
    if (type)
        fputs(type, f);
    else if (isf_names_get(&w->vars, name, &i))
        fputs(w->vtype[i], f);
    else
        void_type(f);
    if (strcmp(name, "linux_banner") == 0) {
        uint8_t banner[BANNER_MAX];
        size_t n = elf_string(w->elf, addr, banner, sizeof banner);
        if (n > 1) {
            fputs(", \"constant_data\": \"", f);
            isf_b64(f, banner, n);
            fputc('"', f);
        }
    }
    fprintf(f, ", \"address\": %" PRIu64 "}", addr);
    w->nsyms++;
}

/* The name of symbol i worth listing (not a section or file symbol), or
 * NULL. */
static const char *sym_name(Elf *elf, Elf_Data *d, size_t link, size_t i,
                            uint64_t *addr)
{
    GElf_Sym s;
    const char *name;
    if (i > INT_MAX || !gelf_getsym(d, (int)i, &s) ||
        !(name = elf_strptr(elf, link, s.st_name)))
        return NULL;
    int type = GELF_ST_TYPE(s.st_info);
    if (type == STT_SECTION || type == STT_FILE || (!name[0] && i))
        return NULL;
    *addr = s.st_value;
    return name;
}

/* The ELF symbol table (what System.map lists, and local symbols too).
 * Of several symbols with one name (static variables such as __func__.0)
 * the last is listed, as dwarf2json does. */
static int symbols(dw_t *w, FILE *f)
{
    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    isf_names_t last = {0};
    bool oom = false, first = true;
    uint64_t addr;
    uint32_t v;
    while ((scn = elf_nextscn(w->elf, scn)))
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
            break;
    if (!scn)
        return cli_fail(w->c, CLI_FAILED, "%s: no symbol table (.symtab)",
                        w->c->target);
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || !sh.sh_entsize || sh.sh_size / sh.sh_entsize > d->d_size ||
        sh.sh_size / sh.sh_entsize > UINT32_MAX)
        return cli_fail(w->c, CLI_FAILED, "%s: unreadable symbol table",
                        w->c->target);
    size_t n = (size_t)(sh.sh_size / sh.sh_entsize), link = sh.sh_link;
    for (size_t i = 0; i < n && !oom; i++) {
        const char *name = sym_name(w->elf, d, link, i, &addr);
        if (name)
            oom = !isf_names_put(&last, name, (uint32_t)i);
    }
    for (size_t i = 0; i < n && !oom; i++) {
        const char *name = sym_name(w->elf, d, link, i, &addr);
        if (name && isf_names_get(&last, name, &v) && v == i)
            symbol(w, f, &first, name, addr, NULL);
    }
    const entries_t *l = &w->located;
    for (size_t i = 0; i < l->n; i++)
        if (l->sig[i] && !isf_names_get(&last, l->name[i], &v))
            symbol(w, f, &first, l->name[i], l->sig[i], l->text[i]);
    isf_names_free(&last);
    return oom ? cli_fail(w->c, CLI_FAILED, "out of memory") : CLI_OK;
}

/* ---- The file --------------------------------------------------------------------- */

/* Copies a section written with ",\n" before each entry, minus the first
 * comma. */
static int copy(dw_t *w, FILE *out, FILE *in, bool *first)
{
    char buf[1 << 16];
    size_t n;
    if (fflush(in) != 0 || fseek(in, 0, SEEK_SET) != 0)
        return cli_fail(w->c, CLI_FAILED, "temporary file: %s",
                        strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        size_t skip1 = *first && buf[0] == ',';
        if (n > skip1)
            *first = false;
        fwrite(buf + skip1, 1, n - skip1, out);
    }
    return ferror(in) ? cli_fail(w->c, CLI_FAILED, "temporary file: read "
                                 "error")
                      : CLI_OK;
}

/* Enums only declared in this kernel (defined in modules), listed empty
 * as dwarf2json lists them. */
static void declared_enums(dw_t *w)
{
    size_t j;
    for (size_t i = 0; i < w->en_decl.cap; i++) {
        const char *name = w->en_decl.key[i];
        if (!name || entries_find(&w->enums, name, &j))
            continue;
        entry(w->en, name, "{\"size\": 0, \"base\": \"void\", "
              "\"constants\": {}}");
        w->nenums++;
    }
}

static void entries_out(FILE *f, const entries_t *e, bool *first)
{
    for (size_t i = 0; i < e->n; i++) {
        isf_sep(f, first);
        fputs("    ", f);
        cli_json_str(f, e->name[i]);
        fputs(": ", f);
        fputs(e->text[i], f);
    }
}

static int write_all(dw_t *w, FILE *f)
{
    bool first = true;
    int rc;
    fputs(",\n", w->bt);
    isf_base(w->bt, "void", 0, false, "void");
    fputs(",\n", w->bt);
    isf_base(w->bt, "pointer", w->addr_size ? w->addr_size : 8, false,
             "int");
    isf_metadata(f);
    fputs("  \"base_types\": {", f);
    if ((rc = copy(w, f, w->bt, &first)))
        return rc;
    fputs("\n  },\n  \"user_types\": {", f);
    first = true;
    entries_out(f, &w->ut, &first);
    w->ntypes += w->ut.n;
    if ((rc = copy(w, f, w->anon, &first)))
        return rc;
    fputs("\n  },\n  \"enums\": {", f);
    first = true;
    declared_enums(w);
    entries_out(f, &w->enums, &first);
    w->nenums += w->enums.n;
    if ((rc = copy(w, f, w->en, &first)))
        return rc;
    fputs("\n  },\n  \"symbols\": {", f);
    return symbols(w, f);
}

static void dw_free(dw_t *w)
{
    FILE *fs[] = {w->bt, w->anon, w->en};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        if (fs[i])
            fclose(fs[i]);
    isf_names_free(&w->bt_seen);
    isf_names_free(&w->ut_seen);
    isf_names_free(&w->en_seen);
    entries_free(&w->ut);
    entries_free(&w->enums);
    entries_free(&w->located);
    isf_names_free(&w->en_decl);
    isf_names_free(&w->vars);
    for (size_t i = 0; i < w->nvtype; i++)
        free(w->vtype[i]);
    free(w->vtype);
    free(w->anon_names.key);
    free(w->anon_names.val);
}

bool dw_is_dwarf(const char *path)
{
    bool yes = false;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    size_t shstr;
    if (elf && elf_kind(elf) == ELF_K_ELF &&
        elf_getshdrstrndx(elf, &shstr) == 0) {
        Elf_Scn *scn = NULL;
        GElf_Shdr sh;
        while (!yes && (scn = elf_nextscn(elf, scn))) {
            const char *n = gelf_getshdr(scn, &sh)
                                ? elf_strptr(elf, shstr, sh.sh_name)
                                : NULL;
            yes = n && sh.sh_type != SHT_NOBITS &&
                  strcmp(n, ".debug_info") == 0;
        }
    }
    elf_end(elf);
    close(fd);
    return yes;
}

int dw_profile(const cli_t *c, FILE *f)
{
    dw_t w = {.c = c};
    int rc = CLI_FAILED;
    int fd = open(c->target, O_RDONLY);
    if (fd < 0)
        return cli_fail(c, CLI_NOTARGET, "cannot open %s: %s", c->target,
                        strerror(errno));
    elf_version(EV_CURRENT);
    if (!(w.elf = elf_begin(fd, ELF_C_READ_MMAP, NULL)) ||
        !(w.dbg = dwarf_begin_elf(w.elf, DWARF_C_READ, NULL))) {
        rc = cli_fail(c, CLI_FAILED, "%s: %s: %s", c->target,
                      w.elf ? "DWARF" : "ELF",
                      w.elf ? dwarf_errmsg(-1) : elf_errmsg(-1));
        goto out;
    }
    if (!(w.bt = tmpfile()) || !(w.anon = tmpfile()) || !(w.en = tmpfile())) {
        rc = cli_fail(c, CLI_FAILED, "temporary file: %s", strerror(errno));
        goto out;
    }
    if ((rc = walk_units(&w)))
        goto out;
    if ((rc = write_all(&w, f)))
        goto out;
    fputs("\n  }\n}\n", f);
    fprintf(stderr, "tinyvmi: profile: DWARF: %zu base types, %zu "
            "structs/unions, %zu enums, %zu symbols\n", w.nbase + 2,
            w.ntypes, w.nenums, w.nsyms);
out:
    dw_free(&w);
    if (w.dbg)
        dwarf_end(w.dbg);
    if (w.elf)
        elf_end(w.elf);
    close(fd);
    return rc;
}
