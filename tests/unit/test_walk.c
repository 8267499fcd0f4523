/*
 * The x86 walker on synthetic page tables, checked against a reference walk
 * written here separately, per mode, the way the Intel SDM describes it.
 * Plus the hostile cases (self-reference, entries past memory,
 * non-canonical addresses) and the translation cache.
 */
#include "core/tv.h"
#include "tu.h"

#define MEM_PAGES 512 /* 2 MiB of page-table memory */
#define MEM_SIZE (MEM_PAGES * 4096)

typedef struct sim {
    uint8_t *mem;
    size_t next_page; /* bump allocator for table pages */
    uint8_t level_of[MEM_PAGES]; /* 1 + level of the table made there */
    uint64_t rng;
    tv_range_t range;
    struct vmi_instance *vmi;
} sim_t;

static int sim_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                    size_t len)
{
    sim_t *s = ctx;
    (void)pa;
    memcpy(buf, s->mem + off, len);
    return 0;
}

static const tv_mem_ops_t sim_ops = {sim_read, NULL, NULL};

static int sim_init(sim_t *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->mem = calloc(1, MEM_SIZE);
    s->rng = seed;
    s->next_page = 1; /* page 0 stays empty */
    s->range = (tv_range_t){0, MEM_SIZE, 0};
    if (tv_instance_new(&tu_hooks, &s->vmi))
        return -1;
    tv_driver_t d = {.name = "sim", .ctx = s, .mem = &sim_ops,
                     .ranges = &s->range, .nranges = 1};
    return tv_instance_attach(s->vmi, &d);
}

static void sim_free(sim_t *s)
{
    tv_instance_free(s->vmi);
    free(s->mem);
}

static uint64_t rnd(sim_t *s)
{
    /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t new_page(sim_t *s)
{
    return s->next_page < MEM_PAGES ? (s->next_page++) * 4096ULL : 0;
}

static void put(sim_t *s, uint64_t pa, uint64_t v, unsigned size)
{
    memcpy(s->mem + pa, &v, size);
}

/* ---- The reference walk -------------------------------------------------- */

typedef struct ref {
    bool ok;
    uint64_t pa, size;
} ref_t;

/* Reads an entry; false when it lies outside the simulated memory. */
static bool get(const sim_t *s, uint64_t pa, unsigned size, uint64_t *v)
{
    if (pa + size > MEM_SIZE)
        return false;
    *v = 0;
    memcpy(v, s->mem + pa, size);
    return true;
}

#define A52 0x000ffffffffff000ULL

static ref_t ref_ia32e_from(const sim_t *s, uint64_t pml4, uint64_t va)
{
    uint64_t e;
    ref_t r = {0};
    if (!get(s, (pml4 & A52) + ((va >> 39) & 511) * 8, 8, &e) || !(e & 1))
        return r;
    if (!get(s, (e & A52) + ((va >> 30) & 511) * 8, 8, &e) || !(e & 1))
        return r;
    if (e & 0x80)
        return (ref_t){true, (e & 0x000fffffc0000000ULL) | (va & 0x3fffffff),
                       1ULL << 30};
    if (!get(s, (e & A52) + ((va >> 21) & 511) * 8, 8, &e) || !(e & 1))
        return r;
    if (e & 0x80)
        return (ref_t){true, (e & 0x000fffffffe00000ULL) | (va & 0x1fffff),
                       1ULL << 21};
    if (!get(s, (e & A52) + ((va >> 12) & 511) * 8, 8, &e) || !(e & 1))
        return r;
    return (ref_t){true, (e & A52) | (va & 0xfff), 4096};
}

static ref_t ref_walk(const sim_t *s, page_mode_t m, uint64_t cr3,
                      uint64_t va)
{
    uint64_t e;
    ref_t r = {0};
    switch (m) {
    case VMI_PM_LA57:
        if ((uint64_t)((int64_t)(va << 7) >> 7) != va)
            return r;
        if (!get(s, (cr3 & A52) + ((va >> 48) & 511) * 8, 8, &e) || !(e & 1))
            return r;
        return ref_ia32e_from(s, e, va);
    case VMI_PM_IA32E:
        if ((uint64_t)((int64_t)(va << 16) >> 16) != va)
            return r;
        return ref_ia32e_from(s, cr3, va);
    case VMI_PM_PAE:
        if (va >> 32 ||
            !get(s, (cr3 & 0xffffffe0) + ((va >> 30) & 3) * 8, 8, &e) ||
            !(e & 1))
            return r;
        if (!get(s, (e & A52) + ((va >> 21) & 511) * 8, 8, &e) || !(e & 1))
            return r;
        if (e & 0x80)
            return (ref_t){true, (e & 0x000fffffffe00000ULL) | (va & 0x1fffff),
                           1ULL << 21};
        if (!get(s, (e & A52) + ((va >> 12) & 511) * 8, 8, &e) || !(e & 1))
            return r;
        return (ref_t){true, (e & A52) | (va & 0xfff), 4096};
    case VMI_PM_LEGACY:
        if (va >> 32 ||
            !get(s, (cr3 & 0xfffff000) + ((va >> 22) & 1023) * 4, 4, &e) ||
            !(e & 1))
            return r;
        if (e & 0x80) /* 4 MiB page; PSE-36 keeps PA bits 39:32 in 20:13 */
            return (ref_t){true, (e & 0xffc00000) | ((e >> 13) & 0xff) << 32 |
                                     (va & 0x3fffff), 1ULL << 22};
        if (!get(s, (e & 0xfffff000) + ((va >> 12) & 1023) * 4, 4, &e) ||
            !(e & 1))
            return r;
        return (ref_t){true, (e & 0xfffff000) | (va & 0xfff), 4096};
    default:
        return r;
    }
}

/* ---- Random tables --------------------------------------------------------- */

typedef struct shape {
    page_mode_t mode;
    unsigned levels, entries, esize;
    unsigned large_from; /* first level whose entries may be pages */
} shape_t;

static const shape_t shapes[] = {
    {VMI_PM_LEGACY, 2, 1024, 4, 0},
    {VMI_PM_PAE, 3, 512, 8, 1},
    {VMI_PM_IA32E, 4, 512, 8, 1},
    {VMI_PM_LA57, 5, 512, 8, 2},
};

/* A random entry for level lvl: absent, a page, a new table, an existing
 * table (sharing, even loops), or a table past the end of memory; random
 * attribute bits (NX, accessed, dirty, user, write) on top. */
static uint64_t rand_entry(sim_t *s, const shape_t *sh, unsigned lvl,
                           bool may_create)
{
    uint64_t r = rnd(s), attrs = r & 0x8000000000000066ULL;
    if (sh->esize == 4)
        attrs &= 0xffffffffULL;
    unsigned pick = (unsigned)(r >> 8) % 100;
    bool leaf = lvl + 1 == sh->levels;
    bool can_large = !leaf && lvl >= sh->large_from &&
                     !(sh->mode == VMI_PM_PAE && lvl == 0);
    uint64_t addr_bits = sh->esize == 4 ? 0xfffff000ULL : 0x0000fffffffff000ULL;
    if (pick < 25)
        return rnd(s) & ~1ULL & (sh->esize == 4 ? 0xffffffffULL : ~0ULL);
    if (leaf || (can_large && pick < 45)) {
        uint64_t e = (rnd(s) & addr_bits) | 1 | attrs;
        return leaf ? e : e | 0x80;
    }
    if (pick < 50)
        return (MEM_SIZE + (rnd(s) & 0xfffff000ULL)) | 1 | attrs;
    uint64_t t = pick < 55 || !may_create || s->next_page >= MEM_PAGES
                     ? (rnd(s) % s->next_page) * 4096ULL
                     : new_page(s);
    return t | 1 | (attrs & ~0x80ULL);
}

static void fill_table(sim_t *s, const shape_t *sh, uint64_t table,
                       unsigned lvl, unsigned depth_budget)
{
    s->level_of[table / 4096] = (uint8_t)(lvl + 1);
    unsigned created = 0; /* at most 4 new tables each: 341 pages at most */
    for (unsigned i = 0; i < sh->entries; i++) {
        uint64_t before = s->next_page;
        uint64_t e = rand_entry(s, sh, lvl, created < 4);
        created += s->next_page != before;
        put(s, table + i * sh->esize, e, sh->esize);
        if (s->next_page != before && depth_budget)
            fill_table(s, sh, e & 0x000ffffffffff000ULL, lvl + 1,
                       depth_budget - 1);
    }
}

static uint64_t rand_va(sim_t *s, page_mode_t m)
{
    uint64_t v = rnd(s);
    switch (m) {
    case VMI_PM_LA57: return rnd(s) % 16 ? (uint64_t)((int64_t)(v << 7) >> 7) : v;
    case VMI_PM_IA32E: return rnd(s) % 16 ? (uint64_t)((int64_t)(v << 16) >> 16) : v;
    default: return rnd(s) % 16 ? v & 0xffffffffULL : v;
    }
}

/* A VA that follows present entries where it can: at each level, one of
 * the entries that is present and leads somewhere (then sign-extended). */
static uint64_t guided_va(sim_t *s, const shape_t *sh, uint64_t root)
{
    unsigned bits = sh->esize == 4 ? 10 : 9, shift = 12 + bits * (sh->levels - 1);
    uint64_t va = rnd(s) & 0xfff, table = root;
    if (sh->mode == VMI_PM_PAE)
        shift = 30;
    for (unsigned lvl = 0; lvl < sh->levels; lvl++) {
        unsigned n = sh->mode == VMI_PM_PAE && lvl == 0 ? 4 : sh->entries;
        uint64_t good[1024], ngood = 0, e = 0;
        for (uint64_t i = 0; i < n; i++) {
            if (!get(s, table + i * sh->esize, sh->esize, &e))
                continue;
            bool stops = lvl + 1 == sh->levels || (e & 0x80);
            uint64_t next = e & (sh->esize == 4 ? 0xfffff000ULL : A52);
            if ((e & 1) && (stops || (next < MEM_SIZE &&
                                      s->level_of[next / 4096] == lvl + 2)))
                good[ngood++] = i;
        }
        uint64_t idx = ngood ? good[rnd(s) % ngood] : rnd(s) % n;
        va |= idx << shift;
        get(s, table + idx * sh->esize, sh->esize, &e);
        table = e & (sh->esize == 4 ? 0xfffff000ULL : A52);
        shift -= lvl == 0 && sh->mode == VMI_PM_PAE ? 9 : bits;
    }
    if (sh->mode == VMI_PM_IA32E)
        va = (uint64_t)((int64_t)(va << 16) >> 16);
    if (sh->mode == VMI_PM_LA57)
        va = (uint64_t)((int64_t)(va << 7) >> 7);
    return va;
}

TU_TEST(walk_random_tables_match_reference)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = &shapes[k];
        sim_t s;
        TU_ASSERT(sim_init(&s, 0x1234567 + k) == 0);
        uint64_t root = new_page(&s);
        fill_table(&s, sh, root, 0, sh->levels - 1);
        if (sh->mode == VMI_PM_PAE) /* a PDPT is 4 entries, 32-byte aligned */
            memset(s.mem + root + 32, 0, 4096 - 32);
        const tv_pt_format_t *fmt = tv_pt_format(sh->mode);
        TU_ASSERT(fmt);
        unsigned mapped = 0;
        for (int i = 0; i < 10000; i++) {
            uint64_t va = i % 2 ? rand_va(&s, sh->mode)
                                : guided_va(&s, sh, root);
            ref_t want = ref_walk(&s, sh->mode, root, va);
            tv_walk_t w;
            int rc = tv_pt_walk(s.vmi, fmt, root, va, &w);
            if (want.ok != (rc == 0))
                TU_FAIL_("%s va 0x%" PRIx64 ": reference %s, walker rc %d (%s)",
                         fmt->name, va, want.ok ? "mapped" : "unmapped", rc,
                         tinyvmi_last_error(s.vmi));
            TU_ASSERT(want.ok == (rc == 0));
            if (rc == 0) {
                mapped++;
                TU_EQ_U64(w.pa, want.pa);
                TU_EQ_U64(w.page_size, want.size);
            } else {
                TU_ASSERT(rc == TINYVMI_EUNMAPPED || rc == TINYVMI_ENONCANON ||
                          rc == TINYVMI_ERANGE);
                TU_ASSERT(tinyvmi_last_error(s.vmi)[0] != '\0');
            }
        }
        if (mapped <= 500)
            TU_FAIL_("%s: only %u of 10000 mapped", fmt->name, mapped);
        TU_ASSERT(mapped > 500); /* the tables were not all holes */
        sim_free(&s);
    }
}

/* ---- Targeted cases --------------------------------------------------------- */

/* Four-level tables mapping: 0xffff888000000000 via a 1 GiB page,
 * 0xffffffff81000000 via a 2 MiB page and 0xffffffff81200000 + 4 KiB pages. */
typedef struct layout {
    uint64_t pml4, pdpt_dm, pdpt_k, pd_k, pt_k;
} layout_t;

static void build_ia32e(sim_t *s, layout_t *l)
{
    l->pml4 = new_page(s);
    l->pdpt_dm = new_page(s);
    l->pdpt_k = new_page(s);
    l->pd_k = new_page(s);
    l->pt_k = new_page(s);
    put(s, l->pml4 + 273 * 8, l->pdpt_dm | 3, 8);             /* 0xffff888... */
    put(s, l->pdpt_dm + 0, 0x40000000ULL | 0x83 | (1ULL << 63), 8);
    put(s, l->pml4 + 511 * 8, l->pdpt_k | 3, 8);
    put(s, l->pdpt_k + 510 * 8, l->pd_k | 3, 8);
    put(s, l->pd_k + 8 * 8, 0x1000000ULL | 0x83, 8);          /* ...81000000 */
    put(s, l->pd_k + 9 * 8, l->pt_k | 3, 8);                  /* ...81200000 */
    put(s, l->pt_k + 0, 0x7654000ULL | 3, 8);
    put(s, l->pt_k + 8, 0x1234000ULL | 0, 8);                 /* not present */
}

TU_TEST(walk_page_sizes_and_entries)
{
    sim_t s;
    layout_t l;
    TU_ASSERT(sim_init(&s, 1) == 0);
    build_ia32e(&s, &l);
    const tv_pt_format_t *f = tv_pt_format(VMI_PM_IA32E);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l.pml4, 0xffff888000123456ULL, &w), 0);
    TU_EQ_U64(w.pa, 0x40123456);
    TU_EQ_U64(w.page_size, 1ULL << 30);
    TU_EQ_INT(w.nentries, 2);
    TU_EQ_U64(w.entry[0].location, l.pml4 + 273 * 8);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l.pml4, 0xffffffff810abcdeULL, &w), 0);
    TU_EQ_U64(w.pa, 0x10abcde);
    TU_EQ_U64(w.page_size, 1ULL << 21);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l.pml4, 0xffffffff81200042ULL, &w), 0);
    TU_EQ_U64(w.pa, 0x7654042);
    TU_EQ_INT(w.nentries, 4);
    TU_EQ_U64(w.entry[3].value, 0x7654003);
    /* CR3 with PCID bits and bit 63 set walks the same tables. */
    TU_EQ_INT(tv_pt_walk(s.vmi, f, l.pml4 | 0x5 | (1ULL << 63),
                         0xffffffff81200042ULL, &w), 0);
    TU_EQ_U64(w.pa, 0x7654042);
    sim_free(&s);
}

TU_TEST(walk_not_present_names_the_level)
{
    static const struct {
        uint64_t va;
        const char *level;
        unsigned entries;
    } cases[] = {
        {0x00007f0000000000ULL, "PML4E", 1},
        {0xffff888040000000ULL, "PDPTE", 2},
        {0xffffffff81400000ULL, "PDE", 3},
        {0xffffffff81201000ULL, "PTE", 4},
    };
    sim_t s;
    layout_t l;
    TU_ASSERT(sim_init(&s, 2) == 0);
    build_ia32e(&s, &l);
    for (size_t i = 0; i < TV_ARRAY_LEN(cases); i++) {
        tv_walk_t w;
        TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), l.pml4,
                             cases[i].va, &w), TINYVMI_EUNMAPPED);
        TU_CONTAINS(tinyvmi_last_error(s.vmi), cases[i].level);
        TU_CONTAINS(tinyvmi_last_error(s.vmi), "not present");
        TU_EQ_INT(w.nentries, cases[i].entries);
    }
    sim_free(&s);
}

TU_TEST(walk_noncanonical_and_out_of_range)
{
    sim_t s;
    layout_t l;
    TU_ASSERT(sim_init(&s, 3) == 0);
    build_ia32e(&s, &l);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), l.pml4,
                         0x0000800000000000ULL, &w), TINYVMI_ENONCANON);
    TU_CONTAINS(tinyvmi_last_error(s.vmi), "non-canonical");
    TU_EQ_INT(w.nentries, 0);
    /* Canonical under LA57, not under 4-level. */
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), l.pml4,
                         0xff00000000000000ULL, &w), TINYVMI_ENONCANON);
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_LA57), l.pml4,
                         0x0100000000000000ULL, &w), TINYVMI_ENONCANON);
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_PAE), l.pml4,
                         0x100000000ULL, &w), TINYVMI_ERANGE);
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_LEGACY), l.pml4,
                         0x100000000ULL, &w), TINYVMI_ERANGE);
    sim_free(&s);
}

TU_TEST(walk_self_reference_terminates)
{
    /* PML4[0] points at the PML4 itself (Windows' self-map does this with
     * one slot): walking VA 0 visits the PML4 at every level and ends on
     * the PML4 page — a defined answer after exactly four reads. */
    sim_t s;
    TU_ASSERT(sim_init(&s, 4) == 0);
    uint64_t pml4 = new_page(&s);
    put(&s, pml4, pml4 | 3, 8);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), pml4, 0x18, &w),
              0);
    TU_EQ_U64(w.pa, pml4 + 0x18);
    TU_EQ_INT(w.nentries, 4);
    /* The same under LA57 (five reads), and an entry pointing at itself
     * with the large bit at a level that cannot be large is ignored. */
    put(&s, pml4, pml4 | 0x83, 8);
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_LA57), pml4, 0x18, &w),
              0);
    TU_EQ_INT(w.nentries, 3); /* PML5E, PML4E, then a 1 GiB PDPTE */
    TU_EQ_U64(w.page_size, 1ULL << 30);
    sim_free(&s);
}

TU_TEST(walk_entry_past_memory)
{
    sim_t s;
    TU_ASSERT(sim_init(&s, 5) == 0);
    uint64_t pml4 = new_page(&s);
    put(&s, pml4, 0x7fff0000000ULL | 1, 8); /* far beyond 2 MiB of RAM */
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), pml4, 0x1000, &w),
              TINYVMI_EUNMAPPED);
    TU_CONTAINS(tinyvmi_last_error(s.vmi), "PDPTE at 0x7fff0000000");
    TU_CONTAINS(tinyvmi_last_error(s.vmi), "not backed by RAM");
    /* A DTB outside memory fails on the first read. */
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), 1ULL << 40, 0, &w),
              TINYVMI_EUNMAPPED);
    TU_EQ_INT(w.nentries, 0);
    sim_free(&s);
}

TU_TEST(walk_legacy_pse36_and_pae)
{
    sim_t s;
    TU_ASSERT(sim_init(&s, 6) == 0);
    uint64_t pd = new_page(&s), pt = new_page(&s);
    put(&s, pd + 0x300 * 4, 0xc0000000ULL | (0x12ULL << 13) | 0x83, 4);
    put(&s, pd + 0x301 * 4, pt | 3, 4);
    put(&s, pt + 5 * 4, 0xabcde000ULL | 1, 4);
    tv_walk_t w;
    const tv_pt_format_t *f = tv_pt_format(VMI_PM_LEGACY);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, pd, 0xc0123456, &w), 0);
    TU_EQ_U64(w.pa, 0x12c0123456ULL);
    TU_EQ_U64(w.page_size, 4ULL << 20);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, pd, 0xc0405678, &w), 0);
    TU_EQ_U64(w.pa, 0xabcde678);
    TU_EQ_U64(w.entry[1].location, pt + 20);

    uint64_t pdpt = new_page(&s) + 0x20, pae_pd = new_page(&s);
    put(&s, pdpt + 3 * 8, pae_pd | 1, 8);
    put(&s, pae_pd + 4 * 8, 0x1ff400000ULL | 0x83 | (1ULL << 63), 8);
    f = tv_pt_format(VMI_PM_PAE);
    TU_EQ_INT(tv_pt_walk(s.vmi, f, pdpt, 0xc0812345, &w), 0);
    TU_EQ_U64(w.pa, 0x1ff412345ULL);
    TU_EQ_U64(w.page_size, 2ULL << 20);
    sim_free(&s);
}

TU_TEST(walk_page_mode_from_registers)
{
    const uint64_t pg = 1ULL << 31, pae = 1 << 5, la57 = 1 << 12,
                   lma = 1 << 10;
    TU_EQ_INT(tv_x86_page_mode(0, pae, lma), VMI_PM_NONE);
    TU_EQ_INT(tv_x86_page_mode(pg, 0, 0), VMI_PM_LEGACY);
    TU_EQ_INT(tv_x86_page_mode(pg, pae, 0), VMI_PM_PAE);
    TU_EQ_INT(tv_x86_page_mode(pg, pae, lma), VMI_PM_IA32E);
    TU_EQ_INT(tv_x86_page_mode(pg, pae | la57, lma), VMI_PM_LA57);
}

/* ---- The translation cache through tv_translate --------------------------------- */

TU_TEST(cache_hits_spans_and_flush)
{
    sim_t s;
    layout_t l;
    TU_ASSERT(sim_init(&s, 7) == 0);
    build_ia32e(&s, &l);
    TU_EQ_INT(tinyvmi_set_paging(s.vmi, VMI_PM_IA32E, l.pml4), VMI_SUCCESS);
    tinyvmi_cache_stats_t st;
    uint64_t pa, span;
    TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff810ff123ULL, &pa,
                           &span), 0);
    TU_EQ_U64(span, 0x200000 - 0xff123); /* to the end of the 2 MiB page */
    TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff810ff456ULL, &pa,
                           &span), 0);
    TU_EQ_U64(pa, 0x10ff456);
    TU_EQ_U64(span, 0x200000 - 0xff456);
    tinyvmi_cache_stats(s.vmi, &st);
    TU_EQ_U64(st.hits, 1);

    /* The DTB is part of the key: another root misses (and fails here). */
    TU_ASSERT(tv_translate(s.vmi, NULL, l.pdpt_k, 0xffffffff810ff456ULL, &pa,
                           NULL) != 0);

    /* A cached translation goes stale when the tables change; a flush
     * drops it. */
    put(&s, l.pd_k + 8 * 8, 0x3000000ULL | 0x83, 8);
    TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff810ff456ULL, &pa,
                           NULL), 0);
    TU_EQ_U64(pa, 0x10ff456);
    vmi_v2pcache_flush(s.vmi, l.pml4);
    TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff810ff456ULL, &pa,
                           NULL), 0);
    TU_EQ_U64(pa, 0x30ff456);

    /* Disabled: every lookup walks. */
    tinyvmi_cache_enable(s.vmi, 0);
    tinyvmi_cache_stats(s.vmi, &st);
    uint64_t hits = st.hits;
    for (int i = 0; i < 3; i++)
        TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff810ff456ULL,
                               &pa, NULL), 0);
    tinyvmi_cache_stats(s.vmi, &st);
    TU_EQ_U64(st.hits, hits);
    sim_free(&s);
}

TU_TEST(cache_generation_wrap)
{
    sim_t s;
    layout_t l;
    TU_ASSERT(sim_init(&s, 8) == 0);
    build_ia32e(&s, &l);
    TU_EQ_INT(tinyvmi_set_paging(s.vmi, VMI_PM_IA32E, l.pml4), VMI_SUCCESS);
    uint64_t pa;
    TU_EQ_INT(tv_translate(s.vmi, NULL, l.pml4, 0xffffffff81200000ULL, &pa,
                           NULL), 0);
    /* Force the counter to wrap: a slot from an old generation must not
     * come back to life when the counter returns to its value. */
    s.vmi->v2p.gen = UINT32_MAX;
    tv_cache_flush(&s.vmi->v2p);
    TU_EQ_U64(s.vmi->v2p.gen, 1);
    uint64_t sp;
    TU_ASSERT(!tv_cache_lookup(&s.vmi->v2p, l.pml4, 0xffffffff81200000ULL, &pa,
                               &sp));
    sim_free(&s);
}
