/* BTF: a hand-built blob (struct with a bitfield, an anonymous union,
 * typedef chains, pointers, arrays, enums), hostile blobs, and the real
 * Debian 6.1 BTF against dwarf2json's ISF (made from DWARF); the ISF that
 * `tinyvmi profile` writes, read back by the ISF loader, against BTF and
 * kallsyms loaded directly. */
#include "tu.h"

#include <unistd.h>

#include "hosted/kimage.h"
#include "profile/btf.h"
#include "profile/kallsyms.h"
#include "profile/profile.h"

#define KS61 "/work/shared/data/debian-6.1.0-56-amd64/vmlinuz-6.1.0-56-amd64"
#define ISF61 \
    "/work/shared/data/debian-6.1.0-56-amd64/vmlinux-6.1.0-56-amd64.isf.json.xz"
#define KS612 \
    "build/lab/kernels/6.12.95+deb12-amd64/vmlinuz-6.12.95+deb12-amd64"

/* ---- A BTF builder, from the format's description ----------------------------- */

typedef struct bb {
    uint8_t types[4096];
    size_t tl;
    char strs[1024];
    size_t sl;
} bb_t;

static void w32(bb_t *b, uint32_t v)
{
    memcpy(b->types + b->tl, &v, 4);
    b->tl += 4;
}

static uint32_t str(bb_t *b, const char *s)
{
    if (!*s)
        return 0;
    uint32_t off = (uint32_t)b->sl;
    strcpy(b->strs + b->sl, s);
    b->sl += strlen(s) + 1;
    return off;
}

static void ty(bb_t *b, const char *name, unsigned kind, unsigned vlen,
               bool kflag, uint32_t size_or_type)
{
    w32(b, str(b, name));
    w32(b, vlen | kind << 24 | (kflag ? 1u << 31 : 0));
    w32(b, size_or_type);
}

static void mem(bb_t *b, const char *name, uint32_t type, uint32_t off)
{
    w32(b, str(b, name));
    w32(b, type);
    w32(b, off);
}

static size_t blob(const bb_t *b, uint8_t *out)
{
    uint32_t h[6] = {0x0001eb9f, 24, 0, (uint32_t)b->tl, (uint32_t)b->tl,
                     (uint32_t)b->sl};
    memcpy(out, h, 24);
    memcpy(out + 24, b->types, b->tl);
    memcpy(out + 24 + b->tl, b->strs, b->sl);
    return 24 + b->tl + b->sl;
}

/* Types (ids in order):
 * 1 int "int" 4   2 int "long unsigned int" 8 (unsigned)
 * 3 typedef "u64" -> 2   4 const -> 3   5 ptr -> 6
 * 6 struct "node" 40 {next: 5 @0, val: 4 @64, flags:3 bits @128 (int),
 *   mode:5 bits @131, <anon union 7> @160, arr: 8 @256}
 * 7 union (anon) 8 {a: 1 @0, b: 1 @0}  [size 4 really, placed at byte 20]
 * 8 array of 9 x 4   9 ptr -> 10   10 typedef "node_t" -> 6
 * 11 enum "color" 4 {RED=0, BLUE=-1 (signed)}
 * 12 enum64 "big" 8 {HUGE=0x123456789}
 * 13 typedef "loop_a" -> 14, 14 typedef "loop_b" -> 13
 * 15 ptr -> 16, 16 func_proto (0 params) returning 1 */
static size_t sample(uint8_t *out)
{
    static bb_t b;
    memset(&b, 0, sizeof b);
    b.sl = 1;
    ty(&b, "int", 1, 0, false, 4);
    w32(&b, 1u << 24 | 32);
    ty(&b, "long unsigned int", 1, 0, false, 8);
    w32(&b, 64);
    ty(&b, "u64", 8, 0, false, 2);
    ty(&b, "", 10, 0, false, 3);
    ty(&b, "", 2, 0, false, 6);
    ty(&b, "node", 4, 7, true, 48);
    mem(&b, "next", 5, 0);
    mem(&b, "val", 4, 64);
    mem(&b, "flags", 1, 3u << 24 | 128);
    mem(&b, "mode", 1, 5u << 24 | 131);
    mem(&b, "", 7, 160);
    mem(&b, "arr", 8, 192);
    mem(&b, "fn", 15, 320);
    ty(&b, "", 5, 2, false, 4);
    mem(&b, "a", 1, 0);
    mem(&b, "b", 1, 0);
    ty(&b, "", 3, 0, false, 0);
    w32(&b, 9);
    w32(&b, 1);
    w32(&b, 4);
    ty(&b, "", 2, 0, false, 10);
    ty(&b, "node_t", 8, 0, false, 6);
    ty(&b, "color", 6, 2, true, 4);
    w32(&b, str(&b, "RED"));
    w32(&b, 0);
    w32(&b, str(&b, "BLUE"));
    w32(&b, 0xffffffffu);
    ty(&b, "big", 19, 1, false, 8);
    w32(&b, str(&b, "HUGE"));
    w32(&b, 0x23456789);
    w32(&b, 0x1);
    ty(&b, "loop_a", 8, 0, false, 14);
    ty(&b, "loop_b", 8, 0, false, 13);
    ty(&b, "", 2, 0, false, 16);
    ty(&b, "", 13, 0, false, 1);
    return blob(&b, out);
}

TU_TEST(btf_sample)
{
    uint8_t buf[8192];
    size_t len = sample(buf);
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_symtab_t *t;
    TU_EQ_INT(tv_symtab_new(&c, &t), 0);
    TU_EQ_INT(tv_btf_load(&c, buf, len, t), 0);
    TU_EQ_INT(tv_symtab_finish(t), 0);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "node", &ti));
    TU_EQ_INT(ti.kind, TV_K_STRUCT);
    TU_EQ_U64(ti.size, 48);
    TU_ASSERT(tv_symtab_type(t, "node_t", &ti)); /* as dwarf2json: typedef */
    TU_EQ_U64(ti.size, 48);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "node", "next", &m));
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_STRUCT);
    TU_EQ_STR(m.type.name, "node");
    TU_ASSERT(tv_symtab_member(t, "node", "val", &m));
    TU_EQ_U64(m.offset, 8);
    TU_EQ_INT(m.type.kind, TV_K_BASE);
    TU_EQ_STR(m.type.name, "long unsigned int");
    TU_ASSERT(tv_symtab_member(t, "node", "flags", &m));
    TU_EQ_INT(m.type.kind, TV_K_BITFIELD);
    TU_EQ_U64(m.offset, 16);
    TU_EQ_INT(m.bit_pos, 0);
    TU_EQ_INT(m.bit_len, 3);
    TU_ASSERT(tv_symtab_member(t, "node", "mode", &m));
    TU_EQ_U64(m.offset, 16);
    TU_EQ_INT(m.bit_pos, 3);
    TU_EQ_INT(m.bit_len, 5);
    TU_ASSERT(tv_symtab_member(t, "node", "b", &m)); /* through the union */
    TU_EQ_U64(m.offset, 20);
    TU_ASSERT(tv_symtab_member(t, "node", "unnamed_field_0", &m));
    TU_ASSERT(m.anonymous);
    TU_EQ_INT(m.type.kind, TV_K_UNION);
    TU_ASSERT(strncmp(m.type.name, "unnamed_", 8) == 0);
    TU_ASSERT(tv_symtab_member(t, "node", "arr", &m));
    TU_EQ_INT(m.type.kind, TV_K_ARRAY);
    TU_EQ_INT(m.type.count, 4);
    TU_EQ_INT(m.type.elem_kind, TV_K_POINTER);
    TU_EQ_STR(m.type.name, "node_t");
    TU_ASSERT(tv_symtab_member(t, "node", "fn", &m));
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_FUNCTION);
    TU_EQ_STR(m.type.name, "");
    int64_t v;
    TU_ASSERT(tv_symtab_const(t, "BLUE", &v));
    TU_EQ_INT(v, -1);
    TU_ASSERT(tv_symtab_const(t, "HUGE", &v));
    TU_EQ_U64(v, 0x123456789ull);
    TU_ASSERT(tv_symtab_type(t, "big", &ti) && ti.kind == TV_K_ENUM);
    TU_ASSERT(tv_symtab_type(t, "int", &ti) && ti.kind == TV_K_BASE);
    tv_symtab_free(t);

    /* The search finds it among other bytes. */
    static uint8_t img[1 << 14];
    memset(img, 0x9f, sizeof img);
    memcpy(img + 3001, buf, len);
    uint64_t at, l;
    typedef struct {
        uint8_t *p;
    } dummy_t;
    (void)sizeof(dummy_t);
    tv_btf_t bt;
    TU_EQ_INT(tv_btf_open(&c, buf, len, &bt), 0);
    TU_EQ_INT(tv_btf_skip(&bt, 13), 0); /* typedef loop: void, no hang */
    tv_btf_close(&bt);
    (void)at;
    (void)l;
}

static int arr_read(void *ctx, uint64_t a, void *buf, size_t n)
{
    const uint8_t *img = ctx;
    if (a < 0x1000 || a - 0x1000 > (1 << 14) || n > (1 << 14) - (a - 0x1000))
        return TINYVMI_EUNMAPPED;
    memcpy(buf, img + (a - 0x1000), n);
    return 0;
}

TU_TEST(btf_find)
{
    static uint8_t img[1 << 14];
    uint8_t buf[8192];
    size_t len = sample(buf);
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    memset(img, 0x9f, sizeof img);
    img[100] = 0xeb; /* a stray magic */
    memcpy(img + 3001, buf, len);
    tv_reader_t r = {arr_read, img};
    uint64_t at, l;
    TU_EQ_INT(tv_btf_find(&c, &r, 0x1000, 0x1000 + sizeof img, &at, &l), 0);
    TU_EQ_U64(at, 0x1000 + 3001);
    TU_EQ_U64(l, len);
    memset(img, 0, sizeof img);
    TU_EQ_INT(tv_btf_find(&c, &r, 0x1000, 0x1000 + sizeof img, &at, &l),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "no valid header");
}

/* Every truncation and many corruptions: a status, never a crash. */
TU_TEST(btf_hostile)
{
    uint8_t good[8192], buf[8192];
    size_t len = sample(good);
    char err[256];
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    for (size_t n = 0; n < len; n++) {
        tv_symtab_t *t;
        TU_EQ_INT(tv_symtab_new(&c, &t), 0);
        int rc = tv_btf_load(&c, good, n, t);
        TU_ASSERT(rc == TINYVMI_ETRUNC || rc == TINYVMI_EFORMAT);
        tv_symtab_free(t);
    }
    for (size_t at = 0; at < len; at++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(buf, good, len);
            buf[at] ^= (uint8_t)(1 << bit);
            tv_symtab_t *t;
            TU_EQ_INT(tv_symtab_new(&c, &t), 0);
            (void)tv_btf_load(&c, buf, len, t);
            tv_symtab_free(t);
        }
    memcpy(buf, good, len);
    buf[24 + 4 + 3] = 0x1f; /* kind 31 */
    tv_symtab_t *t;
    TU_EQ_INT(tv_symtab_new(&c, &t), 0);
    TU_EQ_INT(tv_btf_load(&c, buf, len, t), TINYVMI_EFORMAT);
    TU_CONTAINS(err, "unknown kind");
    tv_symtab_free(t);
}

/* ---- Real kernels ------------------------------------------------------------------ */

static tv_symtab_t *image_table(const char *path, bool syms)
{
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_kimage_t *k;
    tv_symtab_t *t = NULL;
    uint64_t at, len, ro, rs;
    if (tv_kimage_open(path, &k, err, sizeof err))
        return NULL;
    const uint8_t *p;
    tv_kallsyms_t ks;
    if (!tv_kimage_section(k, ".BTF", &at, &len) ||
        !(p = tv_kimage_ptr(k, at, len)) || tv_symtab_new(&c, &t) ||
        tv_btf_load(&c, p, (size_t)len, t) ||
        (syms && (!tv_kimage_section(k, ".rodata", &ro, &rs) ||
                  tv_kallsyms_find(&c, tv_kimage_reader(k), ro, ro + rs,
                                   &ks) ||
                  tv_kallsyms_load(&c, tv_kimage_reader(k), &ks, t))) ||
        tv_symtab_finish(t)) {
        fprintf(stderr, "%s: %s\n", path, err);
        tv_symtab_free(t);
        t = NULL;
    }
    tv_kimage_close(k);
    return t;
}

static void need(const char *a, const char *b)
{
    if (access(a, R_OK) || (b && access(b, R_OK))) {
        printf("skip: %s absent\n", a);
        exit(77);
    }
}

/* Struct sizes and member offsets against the ISF, for every struct both
 * have under one name.  Explained differences: the same name defined
 * differently in different files (BTF keeps each; the ISF one). */
TU_TEST(btf_debian61_vs_dwarf2json)
{
    need(KS61, ISF61);
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_symtab_t *t = image_table(KS61, false), *isf = NULL;
    TU_ASSERT(t);
    TU_EQ_INT(tv_profile_load_file(&c, ISF61, &isf), 0);
    size_t nt = tv_symtab_ntypes(isf), structs = 0, members = 0;
    size_t other = 0;
    for (size_t i = 0; i < nt; i++) {
        tv_typeinfo_t it, bt;
        TU_ASSERT(tv_symtab_type_at(isf, i, &it));
        if ((it.kind != TV_K_STRUCT && it.kind != TV_K_UNION) ||
            strncmp(it.name, "unnamed_", 8) == 0 ||
            !tv_symtab_type(t, it.name, &bt))
            continue;
        /* Same members by name, else another definition of the name. */
        bool same = bt.size == it.size;
        for (uint32_t k = 0; same && k < it.nmembers; k++) {
            tv_member_t im, bm;
            TU_ASSERT(tv_symtab_member_at(isf, it.name, k, &im));
            if (im.anonymous)
                continue;
            same = tv_symtab_member(t, it.name, im.name, &bm);
        }
        if (!same) {
            other++;
            continue;
        }
        structs++;
        for (uint32_t k = 0; k < it.nmembers; k++) {
            tv_member_t im, bm;
            TU_ASSERT(tv_symtab_member_at(isf, it.name, k, &im));
            if (im.anonymous)
                continue;
            TU_ASSERT(tv_symtab_member(t, it.name, im.name, &bm));
            if (bm.offset != im.offset || bm.bit_pos != im.bit_pos ||
                bm.bit_len != im.bit_len || bm.type.kind != im.type.kind) {
                fprintf(stderr, "%s.%s: BTF %" PRIu64 ":%u:%u kind %u, ISF %"
                        PRIu64 ":%u:%u kind %u\n", it.name, im.name,
                        bm.offset, bm.bit_pos, bm.bit_len, bm.type.kind,
                        im.offset, im.bit_pos, im.bit_len, im.type.kind);
                TU_ASSERT(0);
            }
            members++;
        }
    }
    printf("6.1 BTF vs ISF: %zu structs/unions, %zu members agree; %zu "
           "names defined differently in different files\n", structs,
           members, other);
    TU_ASSERT(structs > 7000);
    TU_ASSERT(other < 30);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "task_struct", "pid", &m));
    TU_EQ_U64(m.offset, 0x970);
    TU_ASSERT(tv_symtab_member(t, "mm_struct", "pgd", &m));
    TU_EQ_U64(m.offset, 0x48);
    tv_symtab_free(isf);
    tv_symtab_free(t);
}

/* The ISF that `tinyvmi profile` writes, loaded by the ISF loader, gives
 * the table BTF+kallsyms give directly. */
TU_TEST(btf_profile_roundtrip)
{
    need(KS61, "build/bin/tinyvmi");
    char cmd[1024], out[512], err[256] = "";
    snprintf(out, sizeof out, "%s/p.json", tu_tmp_dir());
    snprintf(cmd, sizeof cmd, "build/bin/tinyvmi profile %s -o %s 2>/dev/null",
             KS61, out);
    TU_EQ_INT(system(cmd), 0);
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_symtab_t *t = image_table(KS61, true), *isf = NULL;
    TU_ASSERT(t);
    TU_EQ_INT(tv_profile_load_file(&c, out, &isf), 0);
    unlink(out);
    rmdir(tu_tmp_dir());
    TU_EQ_INT(tv_symtab_nsymbols(isf), tv_symtab_nsymbols(t));
    for (size_t i = 0; i < tv_symtab_nsymbols(t); i++) {
        const char *n;
        uint64_t a, b;
        char ty;
        TU_ASSERT(tv_symtab_symbol_at(t, i, &n, &a, &ty));
        TU_ASSERT(tv_symtab_symbol(isf, n, &b));
        TU_EQ_U64(a, b);
    }
    size_t n = 0;
    for (size_t i = 0; i < tv_symtab_ntypes(t); i++) {
        tv_typeinfo_t a, b;
        TU_ASSERT(tv_symtab_type_at(t, i, &a));
        if (a.kind != TV_K_STRUCT && a.kind != TV_K_UNION)
            continue;
        TU_ASSERT(tv_symtab_type(isf, a.name, &b));
        TU_EQ_U64(a.size, b.size);
        TU_EQ_INT(a.nmembers, b.nmembers);
        for (uint32_t k = 0; k < a.nmembers; k++) {
            tv_member_t x, y;
            TU_ASSERT(tv_symtab_member_at(t, a.name, k, &x));
            /* By position: a name lookup may find a nested anonymous
             * member of the same name first. */
            TU_ASSERT(tv_symtab_member_at(isf, a.name, k, &y));
            TU_EQ_STR(x.name, y.name);
            if (x.offset != y.offset || x.type.kind != y.type.kind ||
                x.type.elem_kind != y.type.elem_kind ||
                x.type.count != y.type.count || x.bit_len != y.bit_len ||
                strcmp(x.type.name, y.type.name) != 0) {
                fprintf(stderr, "%s.%s: %u/%u/%u %s vs %u/%u/%u %s\n",
                        a.name, x.name, x.type.kind, x.type.elem_kind,
                        x.type.count, x.type.name, y.type.kind,
                        y.type.elem_kind, y.type.count, y.type.name);
                TU_ASSERT(0);
            }
            n++;
        }
    }
    printf("round trip: %zu symbols, %zu members identical\n",
           tv_symtab_nsymbols(t), n);
    tv_symtab_free(isf);
    tv_symtab_free(t);
}

TU_TEST(btf_debian612)
{
    need(KS612, NULL);
    tv_symtab_t *t = image_table(KS612, true);
    TU_ASSERT(t);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "task_struct", "pid", &m));
    TU_ASSERT(tv_symtab_member(t, "task_struct", "tasks", &m));
    TU_ASSERT(tv_symtab_member(t, "module", "list", &m));
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "init_task", &a));
    tv_symtab_free(t);
}
