/* kallsyms: synthetic tables in both layouts (Linux <= 6.3 and 6.4+), with
 * and without absolute per-cpu symbols, hostile variants, and the real
 * Debian 6.1 image against dwarf2json's ISF (ground truth from DWARF). */
#include "tu.h"

#include <time.h>
#include <unistd.h>

#include "hosted/kimage.h"
#include "profile/kallsyms.h"
#include "profile/profile.h"

#define KS61 "/work/shared/data/debian-6.1.0-56-amd64/vmlinuz-6.1.0-56-amd64"
#define ISF61 \
    "/work/shared/data/debian-6.1.0-56-amd64/vmlinux-6.1.0-56-amd64.isf.json.xz"
#define KS612 \
    "build/lab/kernels/6.12.95+deb12-amd64/vmlinuz-6.12.95+deb12-amd64"

/* ---- A memory reader -------------------------------------------------------- */

typedef struct mem {
    uint8_t *p;
    size_t len;
    uint64_t base;
} mem_t;

static int mem_read(void *ctx, uint64_t a, void *buf, size_t n)
{
    mem_t *m = ctx;
    if (a < m->base || a - m->base > m->len || n > m->len - (a - m->base))
        return TINYVMI_EUNMAPPED;
    memcpy(buf, m->p + (a - m->base), n);
    return 0;
}

/* ---- Building tables as scripts/kallsyms does (written from the format
 * description: uncompressed tokens, one per character) ------------------ */

#define NSYM 700
#define BASE 0xffffffff81000000ull

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static size_t align8(size_t v)
{
    return (v + 7) & ~(size_t)7;
}

/* Symbol i: name "sym_<i>" with type 'T' (or 'D' every third), address
 * BASE + 16*i, or per-cpu 8*i for the first 5 when percpu. */
static void sym(int i, char *name, uint64_t *addr, bool percpu)
{
    snprintf(name, 32, "%csym_%d", i % 3 ? 'T' : 'D', i);
    *addr = percpu && i < 5 ? (uint64_t)i * 8 : BASE + 16 * (uint64_t)i;
}

/* Token code c (1..127) stands for the character c itself; code 0 and
 * 128..255 stand for "xx" (never used). */
static size_t build(uint8_t *out, bool newer, bool percpu)
{
    uint8_t tab[1024];
    uint16_t idx[256];
    size_t tl = 0;
    for (int c = 0; c < 256; c++) {
        idx[c] = (uint16_t)tl;
        if (c > 32 && c < 127)
            tab[tl++] = (uint8_t)c;
        else
            tab[tl++] = 'x', tab[tl++] = 'x';
        tab[tl++] = 0;
    }
    uint8_t names[NSYM * 16];
    uint32_t markers[(NSYM + 255) / 256];
    int32_t offs[NSYM];
    size_t nl = 0;
    for (int i = 0; i < NSYM; i++) {
        char n[32];
        uint64_t a;
        sym(i, n, &a, percpu);
        if (i % 256 == 0)
            markers[i / 256] = (uint32_t)nl;
        size_t l = strlen(n);
        names[nl++] = (uint8_t)l;
        memcpy(names + nl, n, l);
        nl += l;
        offs[i] = percpu ? (a < BASE ? (int32_t)a : (int32_t)(BASE - a - 1))
                         : (int32_t)(a - BASE);
    }
    size_t p = 64; /* some leading bytes */
    memset(out, 0xa5, 64);
    size_t nm = (NSYM + 255) / 256;
#define EMIT_OFFS()                                                     \
    do {                                                                \
        p = align8(p);                                                  \
        memcpy(out + p, offs, sizeof offs);                             \
        p = align8(p + sizeof offs);                                    \
        for (int k = 0; k < 8; k++)                                     \
            out[p + (size_t)k] = (uint8_t)(BASE >> (8 * k));            \
        p += 8;                                                         \
    } while (0)
    if (!newer)
        EMIT_OFFS();
    p = align8(p);
    put32(out + p, NSYM);
    p = align8(p + 4);
    memcpy(out + p, names, nl);
    p = align8(p + nl);
    for (size_t k = 0; k < nm; k++)
        put32(out + p + 4 * k, markers[k]);
    p = align8(p + 4 * nm);
    if (!newer) { /* seqs_of_names, 3 bytes each */
        memset(out + p, 0x01, 3 * NSYM);
        p = align8(p + 3 * NSYM);
    }
    memcpy(out + p, tab, tl);
    p = align8(p + tl);
    for (int c = 0; c < 256; c++) {
        out[p + 2 * (size_t)c] = (uint8_t)idx[c];
        out[p + 2 * (size_t)c + 1] = (uint8_t)(idx[c] >> 8);
    }
    p += 512;
    if (newer)
        EMIT_OFFS();
    memset(out + p, 0x5a, 64);
    return p + 64;
}

typedef struct seen {
    int n;
    bool ok;
    bool percpu;
    bool quiet;
} seen_t;

static int check_sym(void *arg, const char *name, size_t len, uint64_t addr,
                     char type)
{
    seen_t *s = arg;
    char want[32];
    uint64_t a;
    sym(s->n, want, &a, s->percpu);
    if (len != strlen(want + 1) || memcmp(name, want + 1, len) != 0 ||
        type != want[0] || addr != a) {
        if (!s->quiet)
            fprintf(stderr, "symbol %d: %.*s %c 0x%" PRIx64 ", want %s 0x%"
                PRIx64 "\n", s->n, (int)len, name, type, addr, want, a);
        s->ok = false;
    }
    s->n++;
    return 0;
}

static void run_layout(bool newer, bool percpu)
{
    static uint8_t buf[1 << 16];
    memset(buf, 0, sizeof buf);
    size_t len = build(buf, newer, percpu);
    mem_t m = {buf, len, 0xffffffff82000000ull};
    tv_reader_t r = {mem_read, &m};
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_kallsyms_t ks;
    TU_EQ_INT(tv_kallsyms_find(&c, &r, m.base, m.base + len, &ks), 0);
    TU_EQ_INT(ks.num_syms, NSYM);
    TU_ASSERT(ks.offsets_first == !newer);
    TU_ASSERT(ks.absolute_percpu == percpu);
    TU_EQ_U64(ks.relative_base, BASE);
    seen_t s = {0, true, percpu, false};
    TU_EQ_INT(tv_kallsyms_each(&c, &r, &ks, check_sym, &s), 0);
    TU_EQ_INT(s.n, NSYM);
    TU_ASSERT(s.ok);
    tv_symtab_t *t;
    TU_EQ_INT(tv_symtab_new(&c, &t), 0);
    TU_EQ_INT(tv_kallsyms_load(&c, &r, &ks, t), 0);
    TU_EQ_INT(tv_symtab_finish(t), 0);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "sym_699", &a));
    TU_EQ_U64(a, BASE + 16 * 699);
    tv_symtab_free(t);
}

TU_TEST(kallsyms_layout_old)
{
    run_layout(false, false);
}
TU_TEST(kallsyms_layout_old_percpu)
{
    run_layout(false, true);
}
TU_TEST(kallsyms_layout_new)
{
    run_layout(true, false);
}
TU_TEST(kallsyms_layout_new_percpu)
{
    run_layout(true, true);
}

/* Each piece broken in turn: the search must refuse, say why, not crash. */
TU_TEST(kallsyms_hostile)
{
    static uint8_t good[1 << 16], buf[1 << 16];
    size_t len = build(good, true, true);
    char err[256];
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_kallsyms_t ks;
    mem_t m = {buf, len, 0x1000};
    tv_reader_t r = {mem_read, &m};
    /* Flip bytes all over the image: never a crash; either found with the
     * right count or refused with a reason. */
    for (size_t at = 0; at < len; at += 37) {
        memcpy(buf, good, len);
        buf[at] ^= 0xff;
        err[0] = 0;
        int rc = tv_kallsyms_find(&c, &r, m.base, m.base + len, &ks);
        if (rc == 0) {
            TU_EQ_INT(ks.num_syms, NSYM);
            seen_t s = {0, true, true, true};
            rc = tv_kallsyms_each(&c, &r, &ks, check_sym, &s);
            (void)rc; /* a flipped name byte may decode differently */
        } else {
            TU_EQ_INT(rc, TINYVMI_ENOENT);
            TU_CONTAINS(err, "kallsyms");
        }
    }
    /* Nothing at all. */
    memset(buf, 0, len);
    TU_EQ_INT(tv_kallsyms_find(&c, &r, m.base, m.base + len, &ks),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "no token index");
    /* A description that lies: load refuses. */
    memcpy(buf, good, len);
    TU_EQ_INT(tv_kallsyms_find(&c, &r, m.base, m.base + len, &ks), 0);
    tv_kallsyms_t bad = ks;
    bad.names_len = 3;
    TU_EQ_INT(tv_kallsyms_each(&c, &r, &bad, check_sym, &(seen_t){0, 1, 1, 1}),
              TINYVMI_EFORMAT);
    TU_CONTAINS(err, "runs past");
    bad = ks;
    bad.num_syms = 0;
    TU_EQ_INT(tv_kallsyms_load(&c, &r, &bad, NULL), TINYVMI_EINVAL);
    bad.token_table += 1;
    bad.num_syms = ks.num_syms;
    tv_symtab_t *t;
    TU_EQ_INT(tv_symtab_new(&c, &t), 0);
    TU_EQ_INT(tv_kallsyms_load(&c, &r, &bad, t), TINYVMI_EFORMAT);
    tv_symtab_free(t);
}

/* ---- Real kernels ------------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opens an image and loads its kallsyms into a finished table. */
static tv_symtab_t *image_syms(const char *path, tv_kallsyms_t *ks,
                               double *ms)
{
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_kimage_t *k;
    if (tv_kimage_open(path, &k, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return NULL;
    }
    uint64_t a, s;
    tv_symtab_t *t = NULL;
    if (!tv_kimage_section(k, ".rodata", &a, &s) || tv_symtab_new(&c, &t))
        goto out;
    double t0 = now();
    int rc = tv_kallsyms_find(&c, tv_kimage_reader(k), a, a + s, ks);
    if (!rc)
        rc = tv_kallsyms_load(&c, tv_kimage_reader(k), ks, t);
    *ms = (now() - t0) * 1e3;
    if (rc || tv_symtab_finish(t)) {
        fprintf(stderr, "%s: %s\n", path, err);
        tv_symtab_free(t);
        t = NULL;
    }
out:
    tv_kimage_close(k);
    return t;
}

/* Every kallsyms symbol the ISF also has must have the ISF's address; a
 * name kallsyms lists more than once (static symbols of one name in several
 * files) must have the ISF's address among its copies. */
typedef struct cmp61 {
    const tv_symtab_t *isf;
    tv_symtab_t *ok;   /* names with an entry at the ISF's address */
    size_t entries, compared, dups;
    int pass;
    bool bad;
} cmp61_t;

static int cmp61(void *arg, const char *name, size_t len, uint64_t addr,
                 char type)
{
    cmp61_t *c = arg;
    char n[1100];
    uint64_t ia, x;
    (void)type;
    snprintf(n, sizeof n, "%.*s", (int)len, name);
    if (!tv_symtab_symbol(c->isf, n, &ia))
        return 0;
    if (c->pass == 0) {
        if (ia == addr)
            tv_symtab_add_symbol(c->ok, name, len, addr, type);
        return 0;
    }
    c->entries++;
    if (ia == addr)
        return 0;
    if (!tv_symtab_symbol(c->ok, n, &x)) {
        fprintf(stderr, "%s: kallsyms 0x%" PRIx64 ", ISF 0x%" PRIx64 "\n", n,
                addr, ia);
        c->bad = true;
    }
    c->dups++;
    return 0;
}

TU_TEST(kallsyms_debian61_vs_dwarf2json)
{
    if (access(KS61, R_OK) || access(ISF61, R_OK)) {
        printf("skip: shared 6.1 data absent\n");
        exit(77);
    }
    char err[256] = "";
    tv_pctx_t c = {&tu_hooks, err, sizeof err};
    tv_kallsyms_t ks;
    double ms;
    tv_symtab_t *t = image_syms(KS61, &ks, &ms), *isf = NULL;
    TU_ASSERT(t);
    printf("6.1: %u symbols, find+load %.1f ms\n", ks.num_syms, ms);
    TU_ASSERT(ks.offsets_first && ks.absolute_percpu);
    TU_EQ_INT(tv_profile_load_file(&c, ISF61, &isf), 0);
    tv_kimage_t *k;
    TU_EQ_INT(tv_kimage_open(KS61, &k, err, sizeof err), 0);
    cmp61_t cm = {.isf = isf};
    TU_EQ_INT(tv_symtab_new(&c, &cm.ok), 0);
    TU_EQ_INT(tv_kallsyms_each(&c, tv_kimage_reader(k), &ks, cmp61, &cm), 0);
    TU_EQ_INT(tv_symtab_finish(cm.ok), 0);
    cm.pass = 1;
    TU_EQ_INT(tv_kallsyms_each(&c, tv_kimage_reader(k), &ks, cmp61, &cm), 0);
    tv_kimage_close(k);
    tv_symtab_free(cm.ok);
    printf("6.1: %zu kallsyms entries compared with the ISF; %zu are other "
           "copies of a duplicated name (the ISF's address is among the "
           "copies); 0 unexplained\n", cm.entries, cm.dups);
    TU_ASSERT(!cm.bad);
    TU_ASSERT(cm.entries > 80000);
    const char *must[] = {"init_task", "linux_banner", "modules", "_text"};
    for (size_t i = 0; i < 4; i++) {
        uint64_t a, ia;
        TU_ASSERT(tv_symtab_symbol(t, must[i], &a));
        TU_ASSERT(tv_symtab_symbol(isf, must[i], &ia));
        TU_EQ_U64(a, ia);
    }
    tv_symtab_free(isf);
    tv_symtab_free(t);
}

/* 6.12: the 6.4+ layout.  No ISF: check the layout and known facts. */
TU_TEST(kallsyms_debian612)
{
    if (access(KS612, R_OK)) {
        printf("skip: %s absent\n", KS612);
        exit(77);
    }
    tv_kallsyms_t ks;
    double ms;
    tv_symtab_t *t = image_syms(KS612, &ks, &ms);
    TU_ASSERT(t);
    printf("6.12: %u symbols, find+load %.1f ms\n", ks.num_syms, ms);
    TU_ASSERT(!ks.offsets_first);
    TU_ASSERT(ks.num_syms > 100000);
    uint64_t a, text;
    TU_ASSERT(tv_symtab_symbol(t, "_text", &text));
    TU_EQ_U64(text, 0xffffffff81000000ull);
    TU_ASSERT(tv_symtab_symbol(t, "init_task", &a) && a > text);
    TU_ASSERT(tv_symtab_symbol(t, "modules", &a) && a > text);
    TU_ASSERT(tv_symtab_symbol(t, "linux_banner", &a) && a > text);
    TU_ASSERT(tv_symtab_symbol(t, "fixed_percpu_data", &a) && a == 0);
    tv_symtab_free(t);
}
