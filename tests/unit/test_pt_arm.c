/*
 * The ARM formats of the one page-table walker (src/arch/pt.c + arm.c) on
 * synthetic tables in a memory buffer, checked against reference walks
 * written here from the Arm ARM.  The references derive each layout from
 * the granule and VA size (AArch64, LPAE) or spell the descriptor formats
 * out (short descriptors); they share nothing with arm.c's tables.
 */
#include "core/tv.h"
#include "tu.h"

/* ---- A RAM-backed test target, RAM at any physical base ------------------- */

#define RAM_SIZE (8u << 20)

typedef struct sim {
    uint8_t *ram;
    uint64_t base;   /* physical address of ram[0] */
    uint64_t next;   /* bump allocator offset */
    tv_range_t range;
    struct vmi_instance *vmi;
    uint64_t rng;
} sim_t;

static int sim_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                    size_t len)
{
    sim_t *s = ctx;
    (void)pa;
    memcpy(buf, s->ram + off, len);
    return 0;
}

static const tv_mem_ops_t sim_mem = {sim_read, NULL, NULL};

static bool sim_open(sim_t *s, uint64_t base, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->ram = calloc(1, RAM_SIZE);
    s->base = base;
    s->next = 1u << 16; /* the first 64 KiB stay zero */
    s->rng = seed * 0x9e3779b97f4a7c15ULL + 7;
    s->range = (tv_range_t){.start = base, .size = RAM_SIZE, .offset = 0};
    tv_driver_t d = {.name = "sim", .ctx = s, .mem = &sim_mem,
                     .ranges = &s->range, .nranges = 1};
    return s->ram && tv_instance_new(&tu_hooks, &s->vmi) == 0 &&
           tv_instance_attach(s->vmi, &d) == 0;
}

static void sim_close(sim_t *s)
{
    tv_instance_free(s->vmi);
    free(s->ram);
}

static uint64_t sim_rand(sim_t *s)
{
    return tu_rand(&s->rng);
}

/* A zeroed block of `size` bytes aligned to its size; its physical
 * address. */
static uint64_t sim_alloc(sim_t *s, uint64_t size)
{
    s->next = (s->next + size - 1) & ~(size - 1);
    if (s->next + size > RAM_SIZE)
        return 0;
    uint64_t pa = s->base + s->next;
    s->next += size;
    return pa;
}

static void poke(sim_t *s, uint64_t pa, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        s->ram[pa - s->base + i] = (uint8_t)(v >> (8 * i));
}

/* ---- The reference walks --------------------------------------------------- */

typedef struct ref {
    int rc; /* 0, TINYVMI_EUNMAPPED, _ENONCANON or _ERANGE */
    uint64_t pa, size;
    unsigned n;
    uint64_t loc[6], val[6];
} ref_t;

static uint64_t bits(uint64_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & (~0ULL >> (63 - hi + lo));
}

/* Reads an entry into r; false (EUNMAPPED) when it is outside RAM. */
static bool ref_read(const sim_t *s, ref_t *r, uint64_t loc, unsigned size,
                     uint64_t *e)
{
    r->rc = TINYVMI_EUNMAPPED;
    if (loc < s->base || loc - s->base > RAM_SIZE - size)
        return false;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)s->ram[loc - s->base + i] << (8 * i);
    *e = v;
    r->loc[r->n] = loc;
    r->val[r->n++] = v;
    return true;
}

static ref_t ref_page(ref_t r, uint64_t base, uint64_t size, uint64_t va)
{
    r.rc = 0;
    r.size = size;
    r.pa = base + (va & (size - 1));
    return r;
}

/* One VA range of a VMSAv8-64 regime (or AArch32 LPAE: granule 12, oa 40,
 * 32-bit VAs). */
typedef struct a64cfg {
    unsigned g;      /* granule: 12, 14, 16 */
    unsigned vabits; /* 64 - TnSZ (32 - TnSZ for LPAE) */
    unsigned oa;     /* 40 (LPAE), 48 or 52 */
} a64cfg_t;

/* The output address a descriptor holds (granule-aligned). */
static uint64_t a64_oa(const a64cfg_t *c, uint64_t e)
{
    if (c->oa == 40)
        return bits(e, 39, 12) << 12;
    if (c->oa == 48)
        return bits(e, 47, c->g) << c->g;
    if (c->g == 16) /* FEAT_LPA: OA[51:48] in bits 15:12 */
        return bits(e, 47, 16) << 16 | bits(e, 15, 12) << 48;
    /* FEAT_LPA2: OA[49:g] in place, OA[51:50] in bits 9:8 */
    return bits(e, 49, c->g) << c->g | bits(e, 9, 8) << 50;
}

/* Which ARM levels may hold block descriptors. */
static bool a64_block_ok(const a64cfg_t *c, int level)
{
    if (level == 2)
        return true;
    if (c->g == 12)
        return level == 1 || (level == 0 && c->oa == 52);
    return level == 1 && c->oa == 52; /* 16K LPA2, 64K LPA */
}

static ref_t ref_a64_walk(const sim_t *s, const a64cfg_t *c, uint64_t ttbr,
                          uint64_t va)
{
    ref_t r = {.rc = TINYVMI_EUNMAPPED};
    unsigned stride = c->g - 3;
    unsigned nlev = (c->vabits - c->g + stride - 1) / stride;
    unsigned topw = c->vabits - c->g - (nlev - 1) * stride;
    uint64_t topsize = 8ULL << topw;
    uint64_t table;
    if (c->oa == 52) {
        if (topsize < 64)
            topsize = 64;
        table = (bits(ttbr, 47, 1) << 1 | bits(ttbr, 5, 2) << 48) &
                ~(topsize - 1);
    } else {
        table = bits(ttbr, c->oa - 1, 1) << 1 & ~(topsize - 1);
    }
    for (unsigned i = 0; i < nlev; i++) {
        int level = 3 - (int)(nlev - 1 - i);
        unsigned shift = c->g + stride * (nlev - 1 - i);
        unsigned w = i == 0 ? topw : stride;
        uint64_t e;
        if (!ref_read(s, &r, table + bits(va, shift + w - 1, shift) * 8, 8,
                      &e))
            return r;
        uint64_t oa = a64_oa(c, e);
        bool last = level == 3;
        if ((e & 3) == 3 && !last) {
            table = oa;
            continue;
        }
        if ((e & 3) == 3)
            return ref_page(r, oa, 1ULL << c->g, va);
        if ((e & 3) == 1 && !last && a64_block_ok(c, level))
            return ref_page(r, oa & ~((1ULL << shift) - 1), 1ULL << shift,
                            va);
        return r; /* invalid */
    }
    return r; /* not reached */
}

/* An AArch64 regime: TTBR1 for VAs whose top 64 - vabits bits are ones,
 * TTBR0 for those where they are zeros. */
static ref_t ref_a64(const sim_t *s, const a64cfg_t *lo, const a64cfg_t *hi,
                     uint64_t ttbr0, uint64_t ttbr1, uint64_t va)
{
    if (va >> hi->vabits == ~0ULL >> hi->vabits)
        return ref_a64_walk(s, hi, ttbr1, va);
    if (va >> lo->vabits == 0)
        return ref_a64_walk(s, lo, ttbr0, va);
    return (ref_t){.rc = TINYVMI_ENONCANON};
}

/* AArch32 LPAE: TTBR1 for the top 2^(32-T1SZ) bytes when T1SZ > 0 (it wins
 * over TTBR0 there), TTBR0 for VAs below 2^(32-T0SZ). */
static ref_t ref_lpae(const sim_t *s, unsigned t0sz, unsigned t1sz,
                      uint64_t ttbr0, uint64_t ttbr1, uint64_t va)
{
    if (va >> 32)
        return (ref_t){.rc = TINYVMI_ERANGE};
    a64cfg_t c = {12, 32, 40};
    if (t1sz && va >= (1ULL << 32) - (1ULL << (32 - t1sz))) {
        c.vabits = 32 - t1sz;
        return ref_a64_walk(s, &c, ttbr1, va & ((1ULL << c.vabits) - 1));
    }
    if (va >> (32 - t0sz))
        return (ref_t){.rc = TINYVMI_ENONCANON};
    c.vabits = 32 - t0sz;
    return ref_a64_walk(s, &c, ttbr0, va);
}

/* AArch32 short descriptors, TTBCR.N = 0. */
static ref_t ref_short(const sim_t *s, uint64_t ttbr, uint64_t va)
{
    ref_t r = {.rc = TINYVMI_ERANGE};
    uint64_t l1, l2;
    if (va >> 32)
        return r;
    if (!ref_read(s, &r, (ttbr & 0xffffc000) | (va >> 20) << 2, 4, &l1))
        return r;
    switch (l1 & 3) {
    case 0:
        return r;
    case 1:
        if (!ref_read(s, &r, (l1 & 0xfffffc00) | ((va >> 12) & 0xff) << 2,
                      4, &l2))
            return r;
        if ((l2 & 3) == 0)
            return r;
        if ((l2 & 3) == 1)
            return ref_page(r, l2 & 0xffff0000, 0x10000, va);
        return ref_page(r, l2 & 0xfffff000, 0x1000, va);
    default:
        if (l1 & (1u << 18)) {
            uint64_t pa = (l1 & 0xff000000) | bits(l1, 23, 20) << 32 |
                          bits(l1, 8, 5) << 36;
            return ref_page(r, pa, 16u << 20, va);
        }
        return ref_page(r, l1 & 0xfff00000, 1u << 20, va);
    }
}

/* ---- Comparing ------------------------------------------------------------- */

typedef struct tally {
    unsigned ok, unmapped, other, n;
    unsigned by_size[64]; /* mapped, by log2 of the page size */
} tally_t;

/* The walker against r for va; false (and a failure) on any difference. */
static bool same(sim_t *s, const tv_pt_format_t *f, uint64_t ttbr0,
                 uint64_t ttbr1, uint64_t va, ref_t r, tally_t *t)
{
    tv_walk_t w;
    int rc = tv_pt_walk_pair(s->vmi, f, ttbr0, ttbr1, va, &w);
    t->n++;
    if (rc != r.rc || w.nentries != r.n) {
        TU_FAIL_("%s va 0x%" PRIx64 ": walker rc %d n %u (%s), reference "
                 "rc %d n %u", f->name, va, rc, w.nentries,
                 tinyvmi_last_error(s->vmi), r.rc, r.n);
        return false;
    }
    for (unsigned i = 0; i < r.n; i++)
        if (w.entry[i].location != r.loc[i] || w.entry[i].value != r.val[i]) {
            TU_FAIL_("%s va 0x%" PRIx64 " entry %u: 0x%" PRIx64 "@0x%" PRIx64
                     ", reference 0x%" PRIx64 "@0x%" PRIx64, f->name, va, i,
                     w.entry[i].value, w.entry[i].location, r.val[i],
                     r.loc[i]);
            return false;
        }
    if (rc == 0 && (w.pa != r.pa || w.page_size != r.size)) {
        TU_FAIL_("%s va 0x%" PRIx64 ": pa 0x%" PRIx64 " size 0x%" PRIx64
                 ", reference pa 0x%" PRIx64 " size 0x%" PRIx64, f->name, va,
                 w.pa, w.page_size, r.pa, r.size);
        return false;
    }
    if (rc != 0 && tinyvmi_last_error(s->vmi)[0] == '\0') {
        TU_FAIL_("%s va 0x%" PRIx64 ": failed without a message", f->name,
                 va);
        return false;
    }
    if (rc == 0) {
        t->ok++;
        for (unsigned b = 0; b < 64; b++)
            if (r.size == 1ULL << b)
                t->by_size[b]++;
    } else if (rc == TINYVMI_EUNMAPPED) {
        t->unmapped++;
    } else {
        t->other++;
    }
    return true;
}

/* ---- Random tables --------------------------------------------------------- */

/* Descriptor encodings, written for the tests. */
static uint64_t a64_enc(const a64cfg_t *c, uint64_t pa)
{
    if (c->oa == 52 && c->g == 16)
        return bits(pa, 47, 16) << 16 | bits(pa, 51, 48) << 12;
    if (c->oa == 52)
        return bits(pa, 49, c->g) << c->g | bits(pa, 51, 50) << 8;
    return bits(pa, c->oa - 1, c->g) << c->g;
}

static uint64_t a64_ttbr(const a64cfg_t *c, uint64_t pa, uint64_t asid)
{
    uint64_t v = asid << 48 | 1; /* ASID and CnP are not address bits */
    if (c->oa == 52)
        return v | bits(pa, 47, 6) << 6 | bits(pa, 51, 48) << 2;
    return v | pa;
}

/* Bits a descriptor may carry besides its type and address (attributes,
 * software bits, the contiguous bit): random, outside the address. */
static uint64_t a64_attrs(sim_t *s, const a64cfg_t *c)
{
    uint64_t m = 0xfff0000000000ffcULL; /* 63:52 and 11:2 */
    if (c->oa == 52 && c->g != 16)
        m &= ~0x300ULL; /* 9:8 hold OA 51:50 */
    return sim_rand(s) & m;
}

typedef struct soup {
    uint64_t table[48];
    unsigned ntables;
} soup_t;

/* Tables of random descriptors: half point at one of the tables (any
 * level, itself included), others are blocks/pages at random addresses,
 * junk, or zero. */
static void a64_soup(sim_t *s, const a64cfg_t *c, soup_t *p, unsigned n)
{
    uint64_t gsize = 1ULL << c->g;
    p->ntables = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t = sim_alloc(s, gsize);
        if (t)
            p->table[p->ntables++] = t;
    }
    uint64_t oamask = (1ULL << c->oa) - 1;
    for (unsigned i = 0; i < p->ntables; i++)
        for (uint64_t j = 0; j < gsize / 8; j++) {
            uint64_t e, k = sim_rand(s) % 12;
            if (k < 2)
                e = 0;
            else if (k < 3)
                e = sim_rand(s); /* junk: any type, any address */
            else if (k < 9)
                e = a64_enc(c, p->table[sim_rand(s) % p->ntables]) | 3;
            else if (k < 11)
                e = a64_enc(c, sim_rand(s) & oamask) | 1;
            else
                e = a64_enc(c, sim_rand(s) & oamask) | 3;
            poke(s, p->table[i] + j * 8, e | (k >= 3 ? a64_attrs(s, c) : 0),
                 8);
        }
}

/* A VA in a range of vabits bits (hi: the top one), often on an edge: a
 * level boundary, the last byte before one, or the first after. */
static uint64_t a64_va(sim_t *s, const a64cfg_t *c, bool hi)
{
    uint64_t mask = (1ULL << c->vabits) - 1;
    uint64_t va = sim_rand(s) & mask;
    if (sim_rand(s) % 3 == 0) {
        unsigned shift = c->g + (c->g - 3) * (unsigned)(sim_rand(s) % 3);
        va &= ~((1ULL << shift) - 1);
        switch (sim_rand(s) % 3) {
        case 0: break;
        case 1: va = (va - 1) & mask; break;
        default: va = (va + (1ULL << shift) - 1) & mask; break;
        }
    }
    return hi ? va | ~mask : va;
}

static bool a64_run(sim_t *s, const tv_pt_format_t *f, const a64cfg_t *lo,
                    const a64cfg_t *hi, unsigned count, tally_t *t)
{
    soup_t p;
    a64_soup(s, lo, &p, 20);
    uint64_t r0 = p.table[0];
    if (hi->g != lo->g || hi->oa != lo->oa) {
        soup_t q;
        a64_soup(s, hi, &q, 20);
        p.table[1] = q.table[0];
    }
    uint64_t t0 = a64_ttbr(lo, r0, sim_rand(s) & 0xffff);
    uint64_t t1 = a64_ttbr(hi, p.table[1], 0);
    for (unsigned i = 0; i < count; i++) {
        uint64_t va;
        switch (i % 8) {
        case 7: va = sim_rand(s); break; /* mostly in neither range */
        case 0: case 1: case 2: va = a64_va(s, lo, false); break;
        default: va = a64_va(s, hi, true); break;
        }
        if (!same(s, f, t0, t1, va, ref_a64(s, lo, hi, t0, t1, va), t))
            return false;
    }
    return true;
}

static const struct a64case {
    tv_pt_arm_t id;
    a64cfg_t c;
} a64cases[] = {
    {TV_PT_A64_4K_39, {12, 39, 48}},  {TV_PT_A64_4K_48, {12, 48, 48}},
    {TV_PT_A64_4K_52, {12, 52, 52}},  {TV_PT_A64_16K_47, {14, 47, 48}},
    {TV_PT_A64_16K_48, {14, 48, 48}}, {TV_PT_A64_16K_52, {14, 52, 52}},
    {TV_PT_A64_64K_42, {16, 42, 48}}, {TV_PT_A64_64K_48, {16, 48, 48}},
    {TV_PT_A64_64K_52, {16, 52, 52}},
};

/* RAM for 52-bit formats sits above 2^48 (bits 51, 50 and 48 set), so
 * table addresses need the split OA fields and TTBR bits 5:2. */
#define HIGH_RAM 0x000d000000000000ULL

TU_TEST(pt_arm64_random_vs_reference)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(a64cases); k++) {
        const a64cfg_t *c = &a64cases[k].c;
        const tv_pt_format_t *f = tv_pt_arm_format(a64cases[k].id);
        sim_t s;
        TU_ASSERT(f);
        TU_ASSERT(sim_open(&s, c->oa == 52 ? HIGH_RAM : 0x40000000, k + 1));
        tally_t t = {0};
        bool ok = a64_run(&s, f, c, c, 40000, &t);
        sim_close(&s);
        TU_ASSERT(ok);
        /* Every outcome, both ranges' pages and at least one block size. */
        unsigned blocks = t.ok - t.by_size[c->g];
        if (t.by_size[c->g] < 500 || blocks < 200 || t.unmapped < 2000 ||
            t.other < 2000)
            TU_FAIL_("%s: %u mapped (%u granule pages), %u unmapped, %u "
                     "non-canonical", f->name, t.ok, t.by_size[c->g],
                     t.unmapped, t.other);
        TU_ASSERT(t.by_size[c->g] >= 500 && blocks >= 200);
    }
}

/* TTBR0 and TTBR1 with different granules and sizes (T0SZ 25 with 4K,
 * T1SZ 16 with 64K): a composed format, each half walked with its own. */
TU_TEST(pt_arm64_split_mixed_granules)
{
    tv_pt_format_t f = *tv_pt_arm_format(TV_PT_A64_4K_39);
    f.hi = tv_pt_arm_format(TV_PT_A64_64K_48);
    a64cfg_t lo = {12, 39, 48}, hi = {16, 48, 48};
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x80000000, 99));
    tally_t t = {0};
    bool ok = a64_run(&s, &f, &lo, &hi, 40000, &t);
    sim_close(&s);
    TU_ASSERT(ok);
    TU_ASSERT(t.by_size[12] > 200 && t.by_size[16] > 200);
    TU_ASSERT(t.by_size[21] + t.by_size[30] > 100 && t.by_size[29] > 50);
}

TU_TEST(pt_arm32_lpae_random_vs_reference)
{
    static const struct {
        tv_pt_arm_t id;
        unsigned t1sz;
    } cases[] = {{TV_PT_A32_LPAE, 0}, {TV_PT_A32_LPAE_3G1G, 2}};
    for (size_t k = 0; k < TV_ARRAY_LEN(cases); k++) {
        const tv_pt_format_t *f = tv_pt_arm_format(cases[k].id);
        a64cfg_t c = {12, 32, 40};
        sim_t s;
        TU_ASSERT(sim_open(&s, 0x8a00000000ULL, 50 + k)); /* above 4 GiB */
        soup_t p;
        a64_soup(&s, &c, &p, 40);
        /* The root's 4 entries are too few to leave a 1 GiB block to
         * chance: 0x80000000 is one (bits 11:2 attributes). */
        poke(&s, p.table[0] + 2 * 8, 0x3c0000000ULL | 0x701, 8);
        uint64_t t0 = p.table[0] | 0x00ab000000000000ULL; /* ASID 0xab */
        uint64_t t1 = p.table[1];
        tally_t t = {0};
        for (unsigned i = 0; i < 40000; i++) {
            uint64_t va = sim_rand(&s) & 0xffffffff;
            if (i % 16 == 0)
                va = sim_rand(&s); /* mostly beyond 4 GiB */
            else if (i % 4 == 0)
                va |= 0xc0000000;
            else if (i % 4 == 1)
                va = (va & ~0x1fffffULL) - (i & 8 ? 1 : 0);
            va &= i % 16 ? 0xffffffff : ~0ULL;
            ref_t r = ref_lpae(&s, 0, cases[k].t1sz, t0, t1, va);
            if (!same(&s, f, t0, t1, va, r, &t))
                break;
        }
        sim_close(&s);
        TU_ASSERT(t.n == 40000);
        TU_ASSERT(t.by_size[12] > 500 && t.by_size[21] > 100 &&
                  t.by_size[30] > 10 && t.unmapped > 1000 && t.other > 1000);
    }
}

/* Short descriptors: a 16 KiB first level, 1 KiB second-level tables. */
static void short_soup(sim_t *s, uint64_t l1, const uint64_t *l2, unsigned n)
{
    for (unsigned i = 0; i < 4096; i++) {
        uint64_t k = sim_rand(s) % 10, e, r = sim_rand(s) & 0xffffffff;
        if (k < 1)
            e = 0;
        else if (k < 2)
            e = r; /* junk */
        else if (k < 6) /* page table: bits 9:2 PXN, NS, domain, ... */
            e = l2[sim_rand(s) % n] | (r & 0x3fc) | 1;
        else if (k < 8) /* section, PXN or not */
            e = (r & ~(1ULL << 18)) | 2;
        else /* supersection: extended base bits 23:20 and 8:5 */
            e = r | 1u << 18 | 2;
        poke(s, l1 + i * 4, e, 4);
    }
    for (unsigned t = 0; t < n; t++)
        for (unsigned i = 0; i < 256; i++) {
            uint64_t r = sim_rand(s) & 0xffffffff;
            poke(s, l2[t] + i * 4, r % 7 == 0 ? 0 : r, 4);
        }
}

TU_TEST(pt_arm32_short_random_vs_reference)
{
    const tv_pt_format_t *f = tv_pt_arm_format(TV_PT_A32_SHORT);
    sim_t s;
    TU_ASSERT(f);
    TU_ASSERT(sim_open(&s, 0x60000000, 3));
    uint64_t l1 = sim_alloc(&s, 16384), l2[64];
    for (unsigned i = 0; i < 64; i++)
        l2[i] = sim_alloc(&s, 1024);
    short_soup(&s, l1, l2, 64);
    uint64_t ttbr = l1 | 0x5b; /* walk attributes in TTBR bits 6:0 */
    tally_t t = {0};
    for (unsigned i = 0; i < 60000; i++) {
        uint64_t va = sim_rand(&s) & 0xffffffff;
        if (i % 32 == 0)
            va = sim_rand(&s);
        else if (i % 4 == 0) /* edges of sections, large pages */
            va = (va & ~0xffffULL) - (i & 8 ? 1 : 0);
        va &= i % 32 ? 0xffffffff : ~0ULL;
        if (!same(&s, f, ttbr, ttbr, va, ref_short(&s, ttbr, va), &t))
            break;
    }
    sim_close(&s);
    TU_ASSERT(t.n == 60000);
    TU_ASSERT(t.by_size[12] > 1000 && t.by_size[16] > 500 &&
              t.by_size[20] > 1000 && t.by_size[24] > 1000 &&
              t.unmapped > 1000 && t.other > 500);
}

/* ---- Hand-built cases with known answers ---------------------------------- */

/* 4K/48: a block at a 2 MiB boundary, the last entry of each table, the
 * TTBR1 half's last page, and descriptor types that are invalid where they
 * stand. */
TU_TEST(pt_arm64_4k_edges)
{
    const tv_pt_format_t *f = tv_pt_arm_format(TV_PT_A64_4K_48);
    a64cfg_t c = {12, 48, 48};
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x40000000, 4));
    uint64_t l0 = sim_alloc(&s, 4096), l1 = sim_alloc(&s, 4096),
             l2 = sim_alloc(&s, 4096), l3 = sim_alloc(&s, 4096);
    /* TTBR1: 0xffff_ffff_ffe0_0000.. through entry 511 at each level. */
    poke(&s, l0 + 511 * 8, l1 | 3, 8);
    poke(&s, l1 + 511 * 8, l2 | 3, 8);
    poke(&s, l2 + 511 * 8, l3 | 3, 8);
    poke(&s, l3 + 511 * 8, 0x0000123456789000ULL | 0x403 | 1ULL << 52, 8);
    poke(&s, l2 + 510 * 8, 0x0000abcdef600000ULL | 0x401, 8); /* block */
    poke(&s, l2 + 509 * 8, 0x0000abcdef600000ULL | 0x402, 8); /* 0b10 */
    poke(&s, l3 + 510 * 8, 0x0000000077777000ULL | 0x401, 8); /* 0b01 at L3 */
    poke(&s, l0 + 0 * 8, 0x0000008000000000ULL | 0x401, 8);   /* L0 block */
    uint64_t ttbr = l0 | 0x1234ULL << 48;
    static const struct {
        uint64_t va, pa, size;
        int rc;
    } want[] = {
        {0xfffffffffffff123ULL, 0x0000123456789123ULL, 4096, 0},
        {0xffffffffffffffffULL, 0x0000123456789fffULL, 4096, 0},
        {0xffffffffffdfffffULL, 0x0000abcdef7fffffULL, 2 << 20, 0},
        {0xffffffffffc00000ULL, 0x0000abcdef600000ULL, 2 << 20, 0},
        {0xffffffffffbfffffULL, 0, 0, TINYVMI_EUNMAPPED},
        {0xffffffffffffe000ULL, 0, 0, TINYVMI_EUNMAPPED},
        {0x0000000000001000ULL, 0, 0, TINYVMI_EUNMAPPED},
        {0xfffefffffffff000ULL, 0, 0, TINYVMI_ENONCANON},
        {0x0001000000000000ULL, 0, 0, TINYVMI_ENONCANON},
    };
    tally_t t = {0};
    for (size_t i = 0; i < TV_ARRAY_LEN(want); i++) {
        tv_walk_t w;
        TU_ASSERT(same(&s, f, ttbr, ttbr, want[i].va,
                       ref_a64(&s, &c, &c, ttbr, ttbr, want[i].va), &t));
        TU_EQ_INT(tv_pt_walk(s.vmi, f, ttbr, want[i].va, &w), want[i].rc);
        if (!want[i].rc) {
            TU_EQ_U64(w.pa, want[i].pa);
            TU_EQ_U64(w.page_size, want[i].size);
        }
    }
    sim_close(&s);
}

/* 52-bit: output addresses above 2^48 in both OA encodings, tables above
 * 2^48, a 4 TiB block (64K, FEAT_LPA) and a 512 GiB one (4K, FEAT_LPA2). */
TU_TEST(pt_arm64_52bit_known)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, HIGH_RAM, 5));
    /* 64K/52: L1 (1024 entries), L2, L3. */
    const tv_pt_format_t *f = tv_pt_arm_format(TV_PT_A64_64K_52);
    a64cfg_t c = {16, 52, 52};
    uint64_t l1 = sim_alloc(&s, 65536), l2 = sim_alloc(&s, 65536),
             l3 = sim_alloc(&s, 65536);
    uint64_t va = 0xfffff00000012345ULL; /* TTBR1, L1 index 0x3fc */
    poke(&s, l1 + 0x3fc * 8, a64_enc(&c, l2) | 3, 8);
    poke(&s, l2 + 0, a64_enc(&c, l3) | 3, 8);
    poke(&s, l3 + 8, a64_enc(&c, 0x000f123456780000ULL) | 3, 8);
    poke(&s, l1 + 0x3fd * 8, a64_enc(&c, 0x000e000000000000ULL) | 1, 8);
    uint64_t ttbr = a64_ttbr(&c, l1, 0x42);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, f, ttbr, va, &w), 0);
    TU_EQ_U64(w.pa, 0x000f123456782345ULL);
    TU_EQ_U64(w.page_size, 65536);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, ttbr, 0xfffff40000000042ULL, &w), 0);
    TU_EQ_U64(w.pa, 0x000e000000000042ULL);
    TU_EQ_U64(w.page_size, 1ULL << 42);
    tally_t t = {0};
    TU_ASSERT(same(&s, f, ttbr, ttbr, va, ref_a64(&s, &c, &c, ttbr, ttbr, va),
                   &t));

    /* 4K/52: level -1 (16 entries), a level-0 block. */
    f = tv_pt_arm_format(TV_PT_A64_4K_52);
    c = (a64cfg_t){12, 52, 52};
    uint64_t lm1 = sim_alloc(&s, 4096), l0 = sim_alloc(&s, 4096);
    poke(&s, lm1 + 15 * 8, a64_enc(&c, l0) | 3, 8);
    poke(&s, l0 + 511 * 8, a64_enc(&c, 0x000c008000000000ULL) | 1, 8);
    ttbr = a64_ttbr(&c, lm1, 0);
    va = 0xffffffffffffffffULL;
    TU_EQ_INT(tv_pt_walk(s.vmi, f, ttbr, va, &w), 0);
    TU_EQ_U64(w.pa, 0x000c00ffffffffffULL);
    TU_EQ_U64(w.page_size, 1ULL << 39);
    TU_ASSERT(same(&s, f, ttbr, ttbr, va, ref_a64(&s, &c, &c, ttbr, ttbr, va),
                   &t));
    sim_close(&s);
}

/* Short descriptors: a supersection with base bits 39:32, a 64 KiB large
 * page (its 16 copies) and a section. */
TU_TEST(pt_arm32_short_known)
{
    const tv_pt_format_t *f = tv_pt_arm_format(TV_PT_A32_SHORT);
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x80000000, 6));
    uint64_t l1 = sim_alloc(&s, 16384), l2 = sim_alloc(&s, 1024);
    /* Supersection at 0xc1000000 -> 0xab_5f00_0000: 16 copies. */
    for (unsigned i = 0; i < 16; i++)
        poke(&s, l1 + (0xc10 + i) * 4,
             0x5f000000 | 0xb << 20 | 0xa << 5 | 1 << 18 | 2, 4);
    poke(&s, l1 + 0x123 * 4, 0x87600000 | 0xc02, 4); /* section */
    poke(&s, l1 + 0x124 * 4, l2 | 1, 4);
    for (unsigned i = 0; i < 16; i++) /* large page at 0x12430000 */
        poke(&s, l2 + (0x30 + i) * 4, 0x98760000 | 0x35 | 1, 4);
    poke(&s, l2 + 0x40 * 4, 0x55555000 | 3, 4); /* small, XN */
    static const struct {
        uint64_t va, pa, size;
    } want[] = {
        {0xc1000000, 0xab5f000000ULL, 16 << 20},
        {0xc1fedcba, 0xab5ffedcbaULL, 16 << 20},
        {0x123fffff, 0x876fffff, 1 << 20},
        {0x1243fffe, 0x9876fffe, 65536},
        {0x12430001, 0x98760001, 65536},
        {0x12440abc, 0x55555abc, 4096},
    };
    tally_t t = {0};
    for (size_t i = 0; i < TV_ARRAY_LEN(want); i++) {
        tv_walk_t w;
        TU_EQ_INT(tv_pt_walk(s.vmi, f, l1, want[i].va, &w), 0);
        TU_EQ_U64(w.pa, want[i].pa);
        TU_EQ_U64(w.page_size, want[i].size);
        TU_ASSERT(same(&s, f, l1, l1, want[i].va,
                       ref_short(&s, l1, want[i].va), &t));
    }
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l1, 0x12450000, &w), TINYVMI_EUNMAPPED);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l1, 0x100000000ULL, &w), TINYVMI_ERANGE);
    sim_close(&s);
}

/* ---- Reverse lookups --------------------------------------------------------- */

typedef struct hits {
    uint64_t va[16];
    unsigned n;
} hits_t;

static int collect(void *arg, uint64_t va, uint64_t page_size)
{
    hits_t *h = arg;
    (void)page_size;
    if (h->n < 16)
        h->va[h->n] = va;
    h->n++;
    return 0;
}

TU_TEST(pt_arm_reverse)
{
    /* Short descriptors: a supersection and a large page, repeated 16
     * times as the architecture requires, are found once each. */
    const tv_pt_format_t *f = tv_pt_arm_format(TV_PT_A32_SHORT);
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x80000000, 7));
    uint64_t l1 = sim_alloc(&s, 16384), l2 = sim_alloc(&s, 1024);
    for (unsigned i = 0; i < 16; i++)
        poke(&s, l1 + (0xc10 + i) * 4, 0x5f000000 | 1 << 18 | 2, 4);
    poke(&s, l1 + 0x124 * 4, l2 | 1, 4);
    for (unsigned i = 0; i < 16; i++)
        poke(&s, l2 + (0x30 + i) * 4, 0x5f560000 | 1, 4);
    hits_t h = {0};
    TU_EQ_INT(tv_pt_reverse(s.vmi, f, l1, 0x5f567890, 0, collect, &h), 0);
    TU_EQ_INT(h.n, 2);
    TU_EQ_U64(h.va[0], 0x12437890);
    TU_EQ_U64(h.va[1], 0xc1567890);
    sim_close(&s);

    /* AArch64 4K/48 with one root for both halves (as tv_pt_walk uses
     * it): two L0 entries lead to the page, each seen in both 48-bit
     * ranges; lo skips the TTBR0 range. */
    f = tv_pt_arm_format(TV_PT_A64_4K_48);
    TU_ASSERT(sim_open(&s, 0x40000000, 8));
    uint64_t l0 = sim_alloc(&s, 4096), a1 = sim_alloc(&s, 4096),
             a2 = sim_alloc(&s, 4096), a3 = sim_alloc(&s, 4096);
    poke(&s, l0 + 256 * 8, a1 | 3, 8); /* 0xffff8000_00000000 */
    poke(&s, l0 + 1 * 8, a1 | 3, 8);   /* 0x00008000_00000000 */
    poke(&s, a1 + 2 * 8, a2 | 3, 8);
    poke(&s, a2 + 3 * 8, a3 | 3, 8);
    poke(&s, a3 + 4 * 8, 0x40404000 | 0x703, 8);
    h = (hits_t){0};
    TU_EQ_INT(tv_pt_reverse(s.vmi, f, l0, 0x40404abc, 0, collect, &h), 0);
    TU_EQ_INT(h.n, 4);
    TU_EQ_U64(h.va[0], 0x0000008080604abcULL);
    TU_EQ_U64(h.va[1], 0x0000800080604abcULL);
    TU_EQ_U64(h.va[2], 0xffff008080604abcULL);
    TU_EQ_U64(h.va[3], 0xffff800080604abcULL);
    h = (hits_t){0};
    TU_EQ_INT(tv_pt_reverse(s.vmi, f, l0, 0x40404abc, 0xffff000000000000ULL,
                            collect, &h), 0);
    TU_EQ_INT(h.n, 2);
    TU_EQ_U64(h.va[0], 0xffff008080604abcULL);
    TU_EQ_U64(h.va[1], 0xffff800080604abcULL);
    /* Forward agrees, for every hit. */
    tv_walk_t w;
    for (unsigned i = 0; i < 2; i++) {
        TU_EQ_INT(tv_pt_walk(s.vmi, f, l0, h.va[i], &w), 0);
        TU_EQ_U64(w.pa, 0x40404abc);
    }
    sim_close(&s);
}

/* ---- Hostile tables and the lookups ---------------------------------------- */

/* Every entry of every level points at the one table: the walk reads at
 * most nlevels entries and ends in "not present" at the last level (a
 * table descriptor there is a page: it maps the table itself). */
TU_TEST(pt_arm_self_reference_bounded)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(a64cases); k++) {
        const a64cfg_t *c = &a64cases[k].c;
        const tv_pt_format_t *f = tv_pt_arm_format(a64cases[k].id);
        sim_t s;
        TU_ASSERT(sim_open(&s, c->oa == 52 ? HIGH_RAM : 0, 9));
        uint64_t t = sim_alloc(&s, 1ULL << c->g);
        for (uint64_t i = 0; i < (1ULL << c->g) / 8; i++)
            poke(&s, t + i * 8, a64_enc(c, t) | 3, 8);
        uint64_t ttbr = a64_ttbr(c, t, 1);
        tv_walk_t w;
        uint64_t va = ~0ULL - 0x10;
        TU_EQ_INT(tv_pt_walk(s.vmi, f, ttbr, va, &w), 0);
        TU_EQ_INT(w.nentries, f->nlevels);
        TU_EQ_U64(w.pa, t + ((1ULL << c->g) - 0x11));
        tally_t tl = {0};
        TU_ASSERT(same(&s, f, ttbr, ttbr, va,
                       ref_a64(&s, c, c, ttbr, ttbr, va), &tl));
        sim_close(&s);
    }
}

TU_TEST(pt_arm_formats)
{
    static const struct {
        unsigned g, vb;
        tv_pt_arm_t id;
        unsigned levels;
    } want[] = {
        {12, 39, TV_PT_A64_4K_39, 3},  {12, 48, TV_PT_A64_4K_48, 4},
        {12, 52, TV_PT_A64_4K_52, 5},  {14, 47, TV_PT_A64_16K_47, 3},
        {14, 48, TV_PT_A64_16K_48, 4}, {14, 52, TV_PT_A64_16K_52, 4},
        {16, 42, TV_PT_A64_64K_42, 2}, {16, 48, TV_PT_A64_64K_48, 3},
        {16, 52, TV_PT_A64_64K_52, 3},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(want); i++) {
        const tv_pt_format_t *f = tv_pt_arm64_format(want[i].g, want[i].vb);
        TU_ASSERT(f && f == tv_pt_arm_format(want[i].id));
        TU_EQ_INT(f->nlevels, want[i].levels);
        TU_EQ_INT(f->va_bits, want[i].vb);
        TU_EQ_INT(f->mode, VMI_PM_AARCH64);
        TU_ASSERT(f->hi == f);
    }
    TU_ASSERT(!tv_pt_arm64_format(12, 47));
    TU_ASSERT(!tv_pt_arm64_format(13, 48));
    TU_ASSERT(!tv_pt_arm_format(TV_PT_ARM_COUNT));
    TU_ASSERT(!tv_pt_arm_format((tv_pt_arm_t)-1));
    for (int i = 0; i < TV_PT_ARM_COUNT; i++)
        TU_ASSERT(tv_pt_arm_format((tv_pt_arm_t)i));
    TU_EQ_INT(tv_pt_arm_format(TV_PT_A32_SHORT)->mode, VMI_PM_AARCH32);
}

/* ---- formats from TCR_EL1 / TTBCR ----------------------------------------- */

static uint64_t tcr_for(unsigned g0, unsigned vb0, unsigned g1, unsigned vb1,
                        bool oa52)
{
    /* TG0: 4K 0, 64K 1, 16K 2; TG1: 16K 1, 4K 2, 64K 3 */
    uint64_t tg0 = g0 == 12 ? 0 : g0 == 16 ? 1 : 2;
    uint64_t tg1 = g1 == 14 ? 1 : g1 == 12 ? 2 : 3;
    uint64_t t = (64 - vb0) | (uint64_t)(64 - vb1) << 16 | tg0 << 14 |
                 tg1 << 30;
    if (oa52)
        t |= (g0 == 16 ? 6ULL << 32 : 1ULL << 59); /* IPS 52 bits / DS */
    return t;
}

/* What TCR_EL1 selects is, field for field, the tabled format of that
 * granule and size. */
TU_TEST(pt_arm64_tcr_matches_tables)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(a64cases); k++) {
        const a64cfg_t *c = &a64cases[k].c;
        const tv_pt_format_t *want = tv_pt_arm_format(a64cases[k].id);
        tv_pt_format_t f[2];
        TU_EQ_INT(tv_pt_arm64_from_tcr(tcr_for(c->g, c->vabits, c->g,
                                               c->vabits, c->oa == 52), f),
                  TINYVMI_OK);
        for (int h = 0; h < 2; h++) {
            TU_EQ_INT(f[h].nlevels, want->nlevels);
            TU_EQ_INT(f[h].va_bits, want->va_bits);
            TU_ASSERT(f[h].root_mask == want->root_mask);
            TU_ASSERT(f[h].table_mask == want->table_mask);
            TU_ASSERT(f[h].root == want->root);
            TU_EQ_INT(f[h].oa_hi.n, want->oa_hi.n);
            TU_EQ_INT(f[h].oa_hi.from, want->oa_hi.from);
            TU_EQ_INT(f[h].oa_hi.to, want->oa_hi.to);
            for (unsigned l = 0; l < want->nlevels; l++) {
                TU_EQ_INT(f[h].level[l].shift, want->level[l].shift);
                TU_EQ_INT(f[h].level[l].bits, want->level[l].bits);
                TU_EQ_INT(f[h].level[l].can_large, want->level[l].can_large);
                TU_ASSERT(!tv_strcmp(f[h].level[l].name,
                                     want->level[l].name));
            }
        }
        TU_ASSERT(f[0].hi == &f[1]);
    }
}

/* Sizes no table has (any TnSZ is legal), and two granules at once,
 * checked against the reference walk. */
TU_TEST(pt_arm64_tcr_random_vs_reference)
{
    static const struct {
        a64cfg_t lo, hi;
    } cases[] = {
        {{12, 36, 48}, {12, 42, 48}}, {{14, 40, 48}, {14, 44, 48}},
        {{16, 36, 48}, {16, 46, 48}}, {{12, 39, 48}, {16, 48, 48}},
        {{16, 33, 48}, {12, 25, 48}}, {{12, 51, 52}, {12, 50, 52}},
    };
    for (size_t k = 0; k < TV_ARRAY_LEN(cases); k++) {
        const a64cfg_t *lo = &cases[k].lo, *hi = &cases[k].hi;
        tv_pt_format_t f[2];
        TU_EQ_INT(tv_pt_arm64_from_tcr(tcr_for(lo->g, lo->vabits, hi->g,
                                               hi->vabits, lo->oa == 52),
                                       f),
                  TINYVMI_OK);
        sim_t s;
        TU_ASSERT(sim_open(&s, lo->oa == 52 ? HIGH_RAM : 0x40000000,
                           200 + k));
        tally_t t = {0};
        bool ok = a64_run(&s, &f[0], lo, hi, 20000, &t);
        sim_close(&s);
        TU_ASSERT(ok);
        TU_ASSERT(t.by_size[lo->g] + t.by_size[hi->g] > 300 &&
                  t.unmapped > 500);
    }
}

TU_TEST(pt_arm_tcr_refused)
{
    tv_pt_format_t f[2];
    /* TG1 0 is reserved; T0SZ 40 (24-bit VAs) is below the minimum; 52-bit
     * VAs without 52-bit descriptors. */
    TU_EQ_INT(tv_pt_arm64_from_tcr(16 | 16 << 16, f), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_pt_arm64_from_tcr(tcr_for(12, 24, 12, 48, false), f),
              TINYVMI_ERANGE);
    TU_EQ_INT(tv_pt_arm64_from_tcr(tcr_for(12, 52, 12, 52, false), f),
              TINYVMI_ERANGE);
    /* AArch32: TTBCR.N > 0 and T0SZ > 0 = T1SZ have no layout here. */
    TU_EQ_INT(tv_pt_arm32_from_ttbcr(1, f), TINYVMI_ENOTSUP);
    TU_EQ_INT(tv_pt_arm32_from_ttbcr(1u << 31 | 1, f), TINYVMI_ENOTSUP);
    TU_EQ_INT(tv_pt_arm32_from_ttbcr(0, f), TINYVMI_OK);
    TU_EQ_INT(f[0].pte_size, 4);
    TU_ASSERT(f[0].hi == &f[0]);
}

/* Linux's LPAE split (T1SZ 2) and TTBR0-only LPAE from TTBCR, against the
 * reference, with TTBR1 at its own table. */
TU_TEST(pt_arm32_ttbcr_vs_reference)
{
    static const unsigned t1s[] = {0, 1, 2, 3};
    for (size_t k = 0; k < TV_ARRAY_LEN(t1s); k++) {
        tv_pt_format_t f[2];
        uint64_t ttbcr = 1ULL << 31 | (uint64_t)t1s[k] << 16;
        TU_EQ_INT(tv_pt_arm32_from_ttbcr(ttbcr, f), TINYVMI_OK);
        a64cfg_t c = {12, 32, 40};
        sim_t s;
        TU_ASSERT(sim_open(&s, 0x8a00000000ULL, 300 + k));
        soup_t p;
        a64_soup(&s, &c, &p, 40);
        uint64_t t0 = p.table[0], t1 = p.table[1];
        tally_t t = {0};
        for (unsigned i = 0; i < 20000; i++) {
            uint64_t va = sim_rand(&s) & 0xffffffff;
            if (i % 4 == 0)
                va |= 0xc0000000;
            ref_t r = ref_lpae(&s, 0, t1s[k], t0, t1, va);
            if (!same(&s, &f[0], t0, t1, va, r, &t))
                break;
        }
        sim_close(&s);
        TU_ASSERT(t.n == 20000);
        TU_ASSERT(t.by_size[12] > 200 && t.unmapped > 500);
    }
}

/* The public way in: tinyvmi_set_paging_arm with a TCR_EL1 of two granules,
 * then LibVMI's kernel translation, against the reference through the one
 * root given (LibVMI's convention: the dtb serves both halves). */
TU_TEST(pt_arm64_set_paging_arm_public)
{
    a64cfg_t lo = {12, 39, 48}, hi = {16, 48, 48};
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x40000000, 77));
    soup_t p;
    a64_soup(&s, &hi, &p, 20);
    uint64_t ttbr = a64_ttbr(&hi, p.table[0], 0);
    TU_EQ_INT(tinyvmi_set_paging_arm(s.vmi, VMI_PM_AARCH64,
                                     tcr_for(12, 39, 16, 48, false), 0,
                                     ttbr),
              VMI_SUCCESS);
    TU_EQ_INT(vmi_get_page_mode(s.vmi, 0), VMI_PM_AARCH64);
    unsigned ok = 0, n = 0;
    for (unsigned i = 0; i < 5000; i++, n++) {
        uint64_t va = a64_va(&s, &hi, true), pa = 0;
        ref_t r = ref_a64(&s, &lo, &hi, ttbr, ttbr, va);
        status_t got = vmi_translate_kv2p(s.vmi, va, &pa);
        TU_EQ_INT(got == VMI_SUCCESS, r.rc == 0);
        if (got == VMI_SUCCESS) {
            TU_ASSERT(pa == r.pa);
            ok++;
        }
    }
    TU_ASSERT(n == 5000 && ok > 500);
    /* Refused with the reason. */
    TU_EQ_INT(tinyvmi_set_paging_arm(s.vmi, VMI_PM_AARCH64, 0, 0, ttbr),
              VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(s.vmi), "reserved granule"));
    TU_EQ_INT(tinyvmi_set_paging_arm(s.vmi, VMI_PM_IA32E, 0, 0, ttbr),
              VMI_FAILURE);
    sim_close(&s);
}

/* Linux's AArch32 LPAE split set by hand with both roots: the kernel's
 * translations of low addresses (modules below 0xc0000000) walk TTBR0's
 * three levels, high ones TTBR1's two, each as the reference says. */
TU_TEST(pt_arm32_set_paging_arm_two_roots)
{
    a64cfg_t c = {12, 32, 40};
    sim_t s;
    TU_ASSERT(sim_open(&s, 0x8a00000000ULL, 404));
    soup_t p;
    a64_soup(&s, &c, &p, 40);
    uint64_t t0 = p.table[0], t1 = p.table[1];
    uint64_t ttbcr = 1ULL << 31 | 2ULL << 16;
    TU_EQ_INT(tinyvmi_set_paging_arm(s.vmi, VMI_PM_AARCH32, ttbcr, t0, t1),
              VMI_SUCCESS);
    unsigned lo_ok = 0, hi_ok = 0;
    for (unsigned i = 0; i < 20000; i++) {
        uint64_t va = sim_rand(&s) & 0xffffffff, pa = 0;
        ref_t r = ref_lpae(&s, 0, 2, t0, t1, va);
        status_t got = vmi_translate_kv2p(s.vmi, va, &pa);
        TU_EQ_INT(got == VMI_SUCCESS, r.rc == 0);
        if (got == VMI_SUCCESS) {
            TU_ASSERT(pa == r.pa);
            va >= 0xc0000000 ? hi_ok++ : lo_ok++;
        }
    }
    TU_ASSERT(lo_ok > 100 && hi_ok > 10);
    sim_close(&s);
}
