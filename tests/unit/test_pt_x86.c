/*
 * The x86 page-table walker (src/arch/pt.c + x86.c) on synthetic tables in
 * a memory buffer, checked against a reference walk written here from the
 * Intel SDM, one function per mode, sharing nothing with the walker.
 */
#include "core/tv.h"
#include "tu.h"

/* ---- A RAM-backed test target -------------------------------------------- */

#define RAM_SIZE (4u << 20) /* 4 MiB of guest RAM at physical 0 */
#define RAM_PAGES (RAM_SIZE / 4096)

typedef struct sim {
    uint8_t *ram;
    uint32_t next;     /* next free page (bump allocator) */
    uint64_t fail_pa;  /* reads of this page fail with EIO (0: none) */
    tv_range_t range;
    struct vmi_instance *vmi;
    uint64_t rng;
} sim_t;

static int sim_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                    size_t len)
{
    sim_t *s = ctx;
    if (s->fail_pa && (pa & ~0xfffULL) == s->fail_pa)
        return TINYVMI_EIO;
    memcpy(buf, s->ram + off, len);
    return 0;
}

static const tv_mem_ops_t sim_mem = {sim_read, NULL, NULL};

static bool sim_open(sim_t *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->ram = calloc(1, RAM_SIZE);
    s->next = 1; /* page 0 stays zero: a handy "nothing here" */
    s->rng = seed * 0x9e3779b97f4a7c15ULL + 1;
    s->range = (tv_range_t){.start = 0, .size = RAM_SIZE, .offset = 0};
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

static uint64_t sim_page(sim_t *s)
{
    if (s->next >= RAM_PAGES)
        return 0;
    return (uint64_t)s->next++ * 4096;
}

static void poke(sim_t *s, uint64_t pa, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        s->ram[pa + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t peek(const sim_t *s, uint64_t pa, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)s->ram[pa + i] << (8 * i);
    return v;
}

/* ---- The reference walk -------------------------------------------------- */

#define M52 0x000ffffffffff000ULL
#define PS 0x80ULL

typedef struct ref {
    int rc; /* 0, TINYVMI_EUNMAPPED, _ENONCANON or _ERANGE */
    uint64_t pa, size;
    unsigned n; /* entries read */
    uint64_t loc[6], val[6];
} ref_t;

/* Reads the entry at loc into r; false (and EUNMAPPED) when it is not in
 * RAM or not present. */
static bool ref_entry(const sim_t *s, ref_t *r, uint64_t loc, unsigned size,
                      uint64_t *e)
{
    r->rc = TINYVMI_EUNMAPPED;
    if (loc > RAM_SIZE - size)
        return false;
    *e = peek(s, loc, size);
    r->loc[r->n] = loc;
    r->val[r->n++] = *e;
    return (*e & 1) != 0;
}

static ref_t ref_done(ref_t r, uint64_t base, uint64_t size, uint64_t va)
{
    r.rc = 0;
    r.size = size;
    r.pa = base | (va % size);
    return r;
}

/* 32-bit paging, 4 KiB and 4 MiB (PSE-36) pages. */
static ref_t ref_legacy(const sim_t *s, uint64_t cr3, uint64_t va)
{
    ref_t r = {.rc = TINYVMI_ERANGE};
    uint64_t pde, pte;
    if (va > 0xffffffffULL)
        return r;
    if (!ref_entry(s, &r, (cr3 & 0xfffff000) | (va >> 22) << 2, 4, &pde))
        return r;
    if (pde & PS) {
        uint64_t hi = (pde >> 13) & 0xff; /* physical bits 39:32 */
        return ref_done(r, hi << 32 | (pde & 0xffc00000), 4 << 20, va);
    }
    if (!ref_entry(s, &r, (pde & 0xfffff000) | ((va >> 10) & 0xffc), 4, &pte))
        return r;
    return ref_done(r, pte & 0xfffff000, 4096, va);
}

/* PAE: 4-entry PDPT (never a page), 2 MiB pages in the PD. */
static ref_t ref_pae(const sim_t *s, uint64_t cr3, uint64_t va)
{
    ref_t r = {.rc = TINYVMI_ERANGE};
    uint64_t pdpte, pde, pte;
    if (va > 0xffffffffULL)
        return r;
    if (!ref_entry(s, &r, (cr3 & 0xffffffe0) + (va >> 30) * 8, 8, &pdpte))
        return r;
    if (!ref_entry(s, &r, (pdpte & M52) + ((va >> 21) & 511) * 8, 8, &pde))
        return r;
    if (pde & PS)
        return ref_done(r, pde & M52 & ~0x1fffffULL, 2 << 20, va);
    if (!ref_entry(s, &r, (pde & M52) + ((va >> 12) & 511) * 8, 8, &pte))
        return r;
    return ref_done(r, pte & M52, 4096, va);
}

/* IA-32e (levels 4) and LA57 (levels 5).  Level numbers as in the SDM's
 * tables: 5 PML5, 4 PML4, 3 PDPT, 2 PD, 1 PT; pages at 3 and 2 only. */
static ref_t ref_long(const sim_t *s, unsigned levels, uint64_t cr3,
                      uint64_t va)
{
    ref_t r = {.rc = TINYVMI_ENONCANON};
    unsigned vbits = levels == 5 ? 57 : 48;
    int64_t sext = (int64_t)(va << (64 - vbits)) >> (64 - vbits);
    if ((uint64_t)sext != va)
        return r;
    uint64_t table = cr3 & M52, e;
    for (unsigned lv = levels; lv >= 1; lv--) {
        unsigned shift = 12 + 9 * (lv - 1);
        if (!ref_entry(s, &r, table + ((va >> shift) & 511) * 8, 8, &e))
            return r;
        if (lv == 1 || ((lv == 2 || lv == 3) && (e & PS))) {
            uint64_t size = 1ULL << shift;
            return ref_done(r, e & M52 & ~(size - 1), size, va);
        }
        table = e & M52;
    }
    return r; /* not reached */
}

static ref_t ref_walk(const sim_t *s, page_mode_t m, uint64_t cr3,
                      uint64_t va)
{
    switch (m) {
    case VMI_PM_LEGACY: return ref_legacy(s, cr3, va);
    case VMI_PM_PAE: return ref_pae(s, cr3, va);
    case VMI_PM_IA32E: return ref_long(s, 4, cr3, va);
    case VMI_PM_LA57: return ref_long(s, 5, cr3, va);
    default: return (ref_t){.rc = TINYVMI_ENOTSUP};
    }
}

/* Walks va with the walker and the reference; reports the first
 * difference (status, entries, pa, size).  Returns the walker's status. */
static int walk_check(sim_t *s, page_mode_t m, uint64_t cr3, uint64_t va,
                      tv_walk_t *w, bool *same)
{
    ref_t r = ref_walk(s, m, cr3, va);
    int rc = tv_pt_walk(s->vmi, tv_pt_format(m), cr3, va, w);
    *same = false;
    if (rc != r.rc || w->nentries != r.n || w->va != va) {
        TU_FAIL_("mode %d va 0x%" PRIx64 ": walker rc %d n %u (%s), "
                 "reference rc %d n %u", (int)m, va, rc, w->nentries,
                 tinyvmi_last_error(s->vmi), r.rc, r.n);
        return rc;
    }
    for (unsigned i = 0; i < r.n; i++)
        if (w->entry[i].location != r.loc[i] || w->entry[i].value != r.val[i]) {
            TU_FAIL_("mode %d va 0x%" PRIx64 " entry %u: 0x%" PRIx64
                     "@0x%" PRIx64 ", reference 0x%" PRIx64 "@0x%" PRIx64,
                     (int)m, va, i, w->entry[i].value, w->entry[i].location,
                     r.val[i], r.loc[i]);
            return rc;
        }
    if (rc == 0 && (w->pa != r.pa || w->page_size != r.size)) {
        TU_FAIL_("mode %d va 0x%" PRIx64 ": pa 0x%" PRIx64 " size 0x%" PRIx64
                 ", reference pa 0x%" PRIx64 " size 0x%" PRIx64, (int)m, va,
                 w->pa, w->page_size, r.pa, r.size);
        return rc;
    }
    if (rc != 0 && tinyvmi_last_error(s->vmi)[0] == '\0') {
        TU_FAIL_("mode %d va 0x%" PRIx64 ": failed without a message", (int)m,
                 va);
        return rc;
    }
    *same = true;
    return rc;
}

/* Checks va against the reference and expects a page of `size` at pa. */
#define EXPECT_MAPPED(s, m, cr3, va, want_pa, want_size)                  \
    do {                                                                  \
        tv_walk_t w_;                                                     \
        bool same_;                                                       \
        TU_EQ_INT(walk_check(s, m, cr3, va, &w_, &same_), 0);             \
        TU_ASSERT(same_);                                                 \
        TU_EQ_U64(w_.pa, want_pa);                                        \
        TU_EQ_U64(w_.page_size, want_size);                               \
    } while (0)

/* ---- Building tables ----------------------------------------------------- */

/* What the tests know of each mode, written from the SDM independently of
 * x86.c: top level first. */
typedef struct shape {
    page_mode_t mode;
    unsigned levels, esize;
    unsigned shift[5], entries[5];
    bool can_page[5];
    const char *name[5];
} shape_t;

static const shape_t legacy = {VMI_PM_LEGACY, 2, 4, {22, 12}, {1024, 1024},
                               {true, false}, {"PDE", "PTE"}};
static const shape_t pae = {VMI_PM_PAE, 3, 8, {30, 21, 12}, {4, 512, 512},
                            {false, true, false}, {"PDPTE", "PDE", "PTE"}};
static const shape_t ia32e = {VMI_PM_IA32E, 4, 8, {39, 30, 21, 12},
                              {512, 512, 512, 512},
                              {false, true, true, false},
                              {"PML4E", "PDPTE", "PDE", "PTE"}};
static const shape_t la57 = {VMI_PM_LA57, 5, 8, {48, 39, 30, 21, 12},
                             {512, 512, 512, 512, 512},
                             {false, false, true, true, false},
                             {"PML5E", "PML4E", "PDPTE", "PDE", "PTE"}};
static const shape_t *const shapes[] = {&legacy, &pae, &ia32e, &la57};

static uint64_t entry_at(const shape_t *sh, uint64_t table, unsigned lvl,
                         uint64_t va)
{
    unsigned idx = (unsigned)(va >> sh->shift[lvl]) % sh->entries[lvl];
    return table + (uint64_t)idx * sh->esize;
}

static uint64_t table_of(const shape_t *sh, uint64_t entry)
{
    return entry & (sh->esize == 4 ? 0xfffff000ULL : M52);
}

/* A leaf entry mapping pa with a page of 1 << shift. */
static uint64_t leaf(const shape_t *sh, uint64_t pa, unsigned lvl,
                     uint64_t attrs)
{
    uint64_t e = pa | 1 | attrs;
    if (lvl + 1 < sh->levels) {
        e |= PS;
        if (sh->esize == 4) /* PSE-36: physical 39:32 in bits 20:13 */
            e = (pa & 0xffc00000) | ((pa >> 32) & 0xff) << 13 | 1 | PS |
                attrs;
    }
    return e;
}

/* Maps va to pa with a page at level lvl, making tables on the way.
 * Returns the location of the leaf entry. */
static uint64_t map(sim_t *s, const shape_t *sh, uint64_t root, uint64_t va,
                    uint64_t pa, unsigned lvl, uint64_t attrs)
{
    uint64_t table = root;
    for (unsigned l = 0; l < lvl; l++) {
        uint64_t loc = entry_at(sh, table, l, va);
        uint64_t e = peek(s, loc, sh->esize);
        if (!(e & 1)) {
            e = sim_page(s) | 0x3 | (attrs & ~PS);
            poke(s, loc, e, sh->esize);
        }
        table = table_of(sh, e);
    }
    uint64_t loc = entry_at(sh, table, lvl, va);
    poke(s, loc, leaf(sh, pa, lvl, attrs), sh->esize);
    return loc;
}

/* A root for sh: a page, or for PAE a 32-byte-aligned PDPT inside one. */
static uint64_t new_root(sim_t *s, const shape_t *sh)
{
    return sim_page(s) + (sh->mode == VMI_PM_PAE ? 0x60 : 0);
}

/* ---- Page sizes per mode ------------------------------------------------- */

TU_TEST(pt_x86_ia32e_pages)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 1));
    uint64_t root = new_root(&s, &ia32e);
    map(&s, &ia32e, root, 0x00007f1234567000ULL, 0x123456000ULL, 3, 0);
    map(&s, &ia32e, root, 0xffffffff81000000ULL, 0x1000000ULL, 2, 0);
    map(&s, &ia32e, root, 0xffff888000000000ULL, 0x40000000ULL, 1, 0);
    /* CR3 with PCID bits: the walker drops them. */
    uint64_t cr3 = root | 0x7ff;
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0x00007f1234567000ULL, 0x123456000ULL,
                  4096);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0x00007f1234567fffULL, 0x123456fffULL,
                  4096);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0xffffffff811fffffULL, 0x11fffffULL,
                  2u << 20);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0xffffffff81012345ULL, 0x1012345ULL,
                  2u << 20);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0xffff888000000000ULL, 0x40000000ULL,
                  1u << 30);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, cr3, 0xffff88803fedcba9ULL, 0x7fedcba9ULL,
                  1u << 30);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), cr3,
                         0xffff888000001000ULL, &w), 0);
    TU_EQ_INT(w.nentries, 2);
    TU_EQ_U64(w.entry[0].location, root + 273 * 8);
    sim_close(&s);
}

TU_TEST(pt_x86_la57_pages)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 2));
    uint64_t root = new_root(&s, &la57);
    map(&s, &la57, root, 0x00ff001234567000ULL, 0xabcdef000ULL, 4, 0);
    map(&s, &la57, root, 0xffffffff81000000ULL, 0x1000000ULL, 3, 0);
    map(&s, &la57, root, 0xff11000000000000ULL, 0xc0000000ULL, 2, 0);
    EXPECT_MAPPED(&s, VMI_PM_LA57, root, 0x00ff001234567abcULL,
                  0xabcdefabcULL, 4096);
    EXPECT_MAPPED(&s, VMI_PM_LA57, root, 0xffffffff81123456ULL, 0x1123456ULL,
                  2u << 20);
    EXPECT_MAPPED(&s, VMI_PM_LA57, root, 0xff1100003fffffffULL, 0xffffffffULL,
                  1u << 30);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_LA57), root,
                         0xff11000000000000ULL, &w), 0);
    TU_EQ_INT(w.nentries, 3);
    TU_EQ_U64(w.entry[0].location, root + 0x111 * 8);
    sim_close(&s);
}

TU_TEST(pt_x86_pae_pages)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 3));
    uint64_t root = new_root(&s, &pae); /* 32-byte aligned, not 4 KiB */
    map(&s, &pae, root, 0xc0001000, 0x234567000ULL, 2, 0); /* above 4 GiB */
    map(&s, &pae, root, 0xc1000000, 0x1fe00000ULL, 1, 0);
    map(&s, &pae, root, 0x08048000, 0x5000, 2, 0);
    uint64_t cr3 = root | 0x18; /* PWT, PCD */
    EXPECT_MAPPED(&s, VMI_PM_PAE, cr3, 0xc0001234, 0x234567234ULL, 4096);
    EXPECT_MAPPED(&s, VMI_PM_PAE, cr3, 0xc11fffff, 0x1fffffffULL, 2u << 20);
    EXPECT_MAPPED(&s, VMI_PM_PAE, cr3, 0x08048010, 0x5010, 4096);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_PAE), cr3, 0xc0001000,
                         &w), 0);
    TU_EQ_INT(w.nentries, 3);
    TU_EQ_U64(w.entry[0].location, root + 3 * 8);
    sim_close(&s);
}

TU_TEST(pt_x86_legacy_pages)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 4));
    uint64_t root = new_root(&s, &legacy);
    map(&s, &legacy, root, 0xc0000000, 0x00400000, 0, 0);     /* 4 MiB */
    map(&s, &legacy, root, 0xc0400000, 0xabc0c00000ULL, 0, 0); /* PSE-36 */
    map(&s, &legacy, root, 0x08048000, 0xfffff000, 1, 0);
    EXPECT_MAPPED(&s, VMI_PM_LEGACY, root, 0xc0123456, 0x00523456, 4u << 20);
    EXPECT_MAPPED(&s, VMI_PM_LEGACY, root, 0xc07fffff, 0xabc0ffffffULL,
                  4u << 20);
    EXPECT_MAPPED(&s, VMI_PM_LEGACY, root, 0x08048abc, 0xfffffabc, 4096);
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_LEGACY), root,
                         0xc0400000, &w), 0);
    TU_EQ_U64(w.entry[0].value & 0x1fe000, 0xabULL << 13);
    TU_EQ_U64(w.pa, 0xabc0c00000ULL);
    sim_close(&s);
}

/* ---- Attribute bits ------------------------------------------------------ */

TU_TEST(pt_x86_attributes_ignored)
{
    /* NX, the ignored/protection-key bits 62:52, G, D, A, PCD, PWT, U/S,
     * R/W: none of them changes a translation or leaks into an address. */
    const uint64_t attrs64 = 0xfff0000000000000ULL | 0x17eULL;
    sim_t s;
    TU_ASSERT(sim_open(&s, 5));
    for (size_t k = 1; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        uint64_t root = new_root(&s, sh);
        uint64_t va = sh->esize == 8 && sh->levels > 3 ? 0xffffc90000abc000ULL
                                                       : 0xd0abc000ULL;
        map(&s, sh, root, va, 0xfffff000ULL, sh->levels - 1, attrs64);
        uint64_t va2 = (va & ~0x1fffffULL) + (4u << 20);
        map(&s, sh, root, va2, 0x40000000ULL, sh->levels - 2, attrs64);
        EXPECT_MAPPED(&s, sh->mode, root, va | 0x123, 0xfffff123ULL, 4096);
        EXPECT_MAPPED(&s, sh->mode, root, va2 + 0x1234, 0x40001234ULL,
                      2u << 20);
    }
    uint64_t root = new_root(&s, &legacy);
    map(&s, &legacy, root, 0x1000, 0x7000, 1, 0x17e);
    EXPECT_MAPPED(&s, VMI_PM_LEGACY, root, 0x1004, 0x7004, 4096);
    sim_close(&s);
}

TU_TEST(pt_x86_ps_bit_where_no_page)
{
    /* Bit 7 is a page only in PDPTEs (IA-32e) and PDEs: in a PML5E/PML4E,
     * a PAE PDPTE or a PTE (where it is PAT) the walk goes on. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 6));
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        uint64_t root = new_root(&s, sh);
        uint64_t va = 0x40201000ULL;
        map(&s, sh, root, va, 0x9000, sh->levels - 1, 0);
        uint64_t table = root;
        for (unsigned l = 0; l < sh->levels; l++) {
            uint64_t loc = entry_at(sh, table, l, va);
            uint64_t e = peek(&s, loc, sh->esize);
            if (!sh->can_page[l])
                poke(&s, loc, e | PS, sh->esize);
            table = table_of(sh, e);
        }
        EXPECT_MAPPED(&s, sh->mode, root, va + 0x10, 0x9010, 4096);
    }
    sim_close(&s);
}

/* ---- Failures ------------------------------------------------------------ */

TU_TEST(pt_x86_not_present_each_level)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 7));
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        uint64_t va = sh->esize == 8 && sh->levels > 3 ? 0xffff888012345678ULL
                                                       : 0xc1234678ULL;
        for (unsigned lvl = 0; lvl < sh->levels; lvl++) {
            uint64_t root = new_root(&s, sh);
            map(&s, sh, root, va, 0x5000, sh->levels - 1, 0);
            /* Clear P in the entry at lvl, keeping its other bits. */
            uint64_t table = root, loc = 0, e = 0;
            for (unsigned l = 0; l <= lvl; l++) {
                loc = entry_at(sh, table, l, va);
                e = peek(&s, loc, sh->esize);
                table = table_of(sh, e);
            }
            poke(&s, loc, e & ~1ULL, sh->esize);
            tv_walk_t w;
            bool same;
            TU_EQ_INT(walk_check(&s, sh->mode, root, va, &w, &same),
                      TINYVMI_EUNMAPPED);
            TU_ASSERT(same);
            TU_EQ_INT(w.nentries, lvl + 1);
            char want[200];
            snprintf(want, sizeof want,
                     "va 0x%" PRIx64 " not mapped: %s 0x%" PRIx64
                     " (at 0x%" PRIx64 ") not present",
                     va, sh->name[lvl], e & ~(uint64_t)1, loc);
            TU_EQ_STR(tinyvmi_last_error(s.vmi), want);
            TU_EQ_INT(tinyvmi_last_status(s.vmi), TINYVMI_EUNMAPPED);
        }
    }
    sim_close(&s);
}

TU_TEST(pt_x86_noncanonical)
{
    static const struct {
        page_mode_t mode;
        uint64_t va;
        bool canonical;
    } cases[] = {
        {VMI_PM_IA32E, 0x0000800000000000ULL, false},
        {VMI_PM_IA32E, 0xffff7fffffffffffULL, false},
        {VMI_PM_IA32E, 0x8000000000000000ULL, false},
        {VMI_PM_IA32E, 0x0001000000000000ULL, false},
        {VMI_PM_IA32E, 0xff11000000000000ULL, false}, /* LA57's direct map */
        {VMI_PM_IA32E, 0x00007fffffffffffULL, true},
        {VMI_PM_IA32E, 0xffff800000000000ULL, true},
        {VMI_PM_LA57, 0x0100000000000000ULL, false},
        {VMI_PM_LA57, 0xfeffffffffffffffULL, false},
        {VMI_PM_LA57, 0x00ffffffffffffffULL, true},
        {VMI_PM_LA57, 0xff00000000000000ULL, true},
        {VMI_PM_LA57, 0x0000800000000000ULL, true},
    };
    sim_t s;
    TU_ASSERT(sim_open(&s, 8));
    uint64_t root = sim_page(&s);
    for (size_t i = 0; i < TV_ARRAY_LEN(cases); i++) {
        tv_walk_t w;
        bool same;
        int rc = walk_check(&s, cases[i].mode, root, cases[i].va, &w, &same);
        TU_ASSERT(same);
        if (cases[i].canonical) {
            TU_EQ_INT(rc, TINYVMI_EUNMAPPED); /* empty tables */
            continue;
        }
        TU_EQ_INT(rc, TINYVMI_ENONCANON);
        TU_EQ_INT(w.nentries, 0);
        char want[100];
        snprintf(want, sizeof want, "va 0x%" PRIx64 " non-canonical for %s",
                 cases[i].va,
                 cases[i].mode == VMI_PM_LA57 ? "57-bit LA57"
                                              : "48-bit IA-32e");
        TU_EQ_STR(tinyvmi_last_error(s.vmi), want);
    }
    sim_close(&s);
}

TU_TEST(pt_x86_32bit_out_of_range)
{
    static const uint64_t bad[] = {0x100000000ULL, 0xffffffff00000000ULL,
                                   0xffffffffc0000000ULL, ~0ULL};
    sim_t s;
    TU_ASSERT(sim_open(&s, 9));
    for (size_t k = 0; k < 2; k++) {
        const shape_t *sh = shapes[k];
        uint64_t root = new_root(&s, sh);
        map(&s, sh, root, 0xfffff000, 0x3000, sh->levels - 1, 0);
        EXPECT_MAPPED(&s, sh->mode, root, 0xffffffff, 0x3fff, 4096);
        for (size_t i = 0; i < TV_ARRAY_LEN(bad); i++) {
            tv_walk_t w;
            bool same;
            TU_EQ_INT(walk_check(&s, sh->mode, root, bad[i], &w, &same),
                      TINYVMI_ERANGE);
            TU_ASSERT(same);
            TU_CONTAINS(tinyvmi_last_error(s.vmi), "beyond 4 GiB");
        }
    }
    sim_close(&s);
}

TU_TEST(pt_x86_table_past_memory)
{
    /* An entry that points past RAM fails on the next read, naming the
     * entry it was after and where; so does a DTB past RAM. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 10));
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        uint64_t root = new_root(&s, sh), va = 0x00403000;
        uint64_t far = sh->esize == 4 ? 0xfff00000ULL : 0x7f0000000ULL;
        uint64_t loc = entry_at(sh, root, 0, va);
        poke(&s, loc, far | 1, sh->esize);
        uint64_t next = entry_at(sh, far, 1, va);
        tv_walk_t w;
        bool same;
        TU_EQ_INT(walk_check(&s, sh->mode, root, va, &w, &same),
                  TINYVMI_EUNMAPPED);
        TU_ASSERT(same);
        TU_EQ_INT(w.nentries, 1);
        char want[120];
        snprintf(want, sizeof want, "va 0x%" PRIx64 ": reading %s at 0x%" PRIx64
                 ": ", va, sh->name[1], next);
        TU_CONTAINS(tinyvmi_last_error(s.vmi), want);
        TU_CONTAINS(tinyvmi_last_error(s.vmi), "not backed by RAM");

        TU_EQ_INT(walk_check(&s, sh->mode, far, va, &w, &same),
                  TINYVMI_EUNMAPPED);
        TU_ASSERT(same);
        TU_EQ_INT(w.nentries, 0);
        snprintf(want, sizeof want, "reading %s at 0x", sh->name[0]);
        TU_CONTAINS(tinyvmi_last_error(s.vmi), want);
    }
    sim_close(&s);
}

TU_TEST(pt_x86_leaf_past_memory_translates)
{
    /* A page outside RAM (MMIO, or RAM the dump left out) is still a
     * translation: reading it is what fails, later. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 11));
    uint64_t root = new_root(&s, &ia32e);
    map(&s, &ia32e, root, 0xffffc90000000000ULL, 0xffffffff000ULL, 3, 0);
    EXPECT_MAPPED(&s, VMI_PM_IA32E, root, 0xffffc90000000008ULL,
                  0xffffffff008ULL, 4096);
    sim_close(&s);
}

TU_TEST(pt_x86_read_error_keeps_status)
{
    /* A driver I/O error on a table read comes back as that status, with
     * the entry named before the memory layer's reason. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 12));
    uint64_t root = new_root(&s, &ia32e), va = 0xffffffff81000000ULL;
    map(&s, &ia32e, root, va, 0x200000, 3, 0);
    uint64_t pdpt =
        table_of(&ia32e, peek(&s, entry_at(&ia32e, root, 0, va), 8));
    uint64_t pd = table_of(&ia32e, peek(&s, entry_at(&ia32e, pdpt, 1, va), 8));
    s.fail_pa = pd;
    tv_walk_t w;
    TU_EQ_INT(tv_pt_walk(s.vmi, tv_pt_format(VMI_PM_IA32E), root, va, &w),
              TINYVMI_EIO);
    TU_EQ_INT(w.nentries, 2);
    char want[120];
    snprintf(want, sizeof want, "va 0x%" PRIx64 ": reading PDE at 0x%" PRIx64
             ": ", va, entry_at(&ia32e, pd, 2, va));
    TU_CONTAINS(tinyvmi_last_error(s.vmi), want);
    TU_CONTAINS(tinyvmi_last_error(s.vmi), "I/O error");
    sim_close(&s);
}

/* ---- Hostile tables ------------------------------------------------------ */

TU_TEST(pt_x86_self_reference)
{
    /* Windows' self-map: PML4[0x1ed] points at the PML4.  Walking through
     * it reaches page tables as data, and walking it at every level reads
     * the PML4 four times and ends on the PML4 page: defined, bounded. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 13));
    uint64_t root = new_root(&s, &ia32e);
    poke(&s, root + 0x1ed * 8, root | 0x63 | (1ULL << 63), 8);
    uint64_t va = 0x00007ff612345000ULL;
    uint64_t pte_loc = map(&s, &ia32e, root, va, 0x9000, 3, 0);
    /* The PTE for va, seen through the self-map, sits at: */
    uint64_t self = 0xffff000000000000ULL | 0x1edULL << 39 |
                    ((va >> 12) & 0xfffffffffULL) << 3;
    EXPECT_MAPPED(&s, VMI_PM_IA32E, root, self, pte_loc, 4096);
    TU_EQ_U64(peek(&s, pte_loc, 8), 0x9001);
    uint64_t all = 0xfffff6fb7dbed000ULL; /* 0x1ed at every level */
    EXPECT_MAPPED(&s, VMI_PM_IA32E, root, all | 0x18, root + 0x18, 4096);

    /* PML4[0] -> PML4 with PS set (ignored there), then a PDPTE with PS:
     * the same bytes read as a 1 GiB page one level down. */
    poke(&s, root, root | 0x83, 8);
    tv_walk_t w;
    bool same;
    TU_EQ_INT(walk_check(&s, VMI_PM_IA32E, root, 0x1234, &w, &same), 0);
    TU_ASSERT(same);
    TU_EQ_INT(w.nentries, 2);
    TU_EQ_U64(w.page_size, 1u << 30);

    /* LA57: PML5[0] -> PML5 -> ... five reads of one entry. */
    uint64_t r5 = new_root(&s, &la57);
    poke(&s, r5, r5 | 3, 8);
    TU_EQ_INT(walk_check(&s, VMI_PM_LA57, r5, 0x777, &w, &same), 0);
    TU_ASSERT(same);
    TU_EQ_INT(w.nentries, 5);
    TU_EQ_U64(w.pa, r5 + 0x777);

    /* Legacy: Windows x86's PDE 0x300 self-map. */
    uint64_t pd = new_root(&s, &legacy);
    poke(&s, pd + 0x300 * 4, pd | 3, 4);
    EXPECT_MAPPED(&s, VMI_PM_LEGACY, pd, 0xc0300c00, pd + 0xc00, 4096);

    /* PAE: a PDPTE pointing at the page holding the PDPT; PDE 0xc of
     * that "PD" (and PTE 0xc of the same page) is PDPTE 0, 0x60 into it. */
    uint64_t pdpt = new_root(&s, &pae), page = pdpt & ~0xfffULL;
    poke(&s, pdpt + 3 * 8, page | 1, 8);
    poke(&s, pdpt, page | 1, 8);
    TU_EQ_INT(walk_check(&s, VMI_PM_PAE, pdpt, 0xc180cff8, &w, &same), 0);
    TU_ASSERT(same);
    TU_EQ_INT(w.nentries, 3);
    TU_EQ_U64(w.pa, page + 0xff8);
    sim_close(&s);
}

TU_TEST(pt_x86_every_entry_loops)
{
    /* Every entry of every table points at the root: any va ends, for any
     * mode, with a defined answer that matches the reference. */
    sim_t s;
    TU_ASSERT(sim_open(&s, 14));
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        uint64_t root = sim_page(&s);
        for (unsigned i = 0; i < 4096 / sh->esize; i++)
            poke(&s, root + i * sh->esize, root | 0x3, sh->esize);
        for (int i = 0; i < 200; i++) {
            uint64_t va = sim_rand(&s);
            if (sh->esize == 4 || sh->levels == 3)
                va &= 0xffffffffULL;
            else
                va = (uint64_t)((int64_t)(va << 7) >> 7);
            tv_walk_t w;
            bool same;
            walk_check(&s, sh->mode, root, va, &w, &same);
            TU_ASSERT(same);
        }
    }
    sim_close(&s);
}

/* ---- Random tables against the reference --------------------------------- */

/* Tables made so far, with the va prefix and level each was made for, so
 * that guided vas can aim at what exists. */
typedef struct made {
    uint64_t table, prefix;
    unsigned lvl;
} made_t;

typedef struct forest {
    sim_t *s;
    const shape_t *sh;
    made_t made[RAM_PAGES];
    size_t nmade;
} forest_t;

/* A random entry at level lvl: a new table (when `grow`), not present
 * (with junk), a page (PS where it is no page, attribute and high junk
 * bits), an existing table (sharing and loops, at any level), or a table
 * past RAM. */
static uint64_t rand_entry(forest_t *f, unsigned lvl, uint64_t prefix,
                           bool grow)
{
    sim_t *s = f->s;
    const shape_t *sh = f->sh;
    uint64_t r = sim_rand(s), e;
    uint64_t junk = r & (0xfff0000000000000ULL | 0x1fe);
    unsigned pick = (unsigned)(r >> 20) % 100;
    bool last = lvl + 1 == sh->levels;
    if (sh->can_page[lvl])
        junk &= ~PS; /* PS would make it a page */
    if (grow && !last && f->nmade < RAM_PAGES - 8) {
        uint64_t t = sim_page(s);
        f->made[f->nmade++] = (made_t){t, prefix, lvl + 1};
        e = t | 1 | junk;
    } else if (pick < 35) {
        e = sim_rand(s) & ~1ULL;
    } else if ((last || sh->can_page[lvl]) && pick < 75) {
        uint64_t size = 1ULL << sh->shift[lvl];
        e = leaf(sh, sim_rand(s) & 0xfffffff000ULL & ~(size - 1), lvl, junk);
    } else if (pick < 88) {
        e = f->made[sim_rand(s) % f->nmade].table | 1 | junk;
    } else {
        e = (RAM_SIZE + (sim_rand(s) & 0xfffff000ULL)) | 1 | junk;
    }
    return sh->esize == 4 ? (uint32_t)e : e;
}

static void rand_tables(forest_t *f, uint64_t root)
{
    f->made[0] = (made_t){root, 0, 0};
    f->nmade = 1;
    /* Fill tables in the order they are made (breadth first); 2 to 4 new
     * tables in each, so the tree reaches the bottom level. */
    for (size_t i = 0; i < f->nmade; i++) {
        made_t m = f->made[i];
        const shape_t *sh = f->sh;
        unsigned grow[4], ngrow = 2 + (unsigned)(sim_rand(f->s) % 3);
        for (unsigned g = 0; g < ngrow; g++)
            grow[g] = (unsigned)(sim_rand(f->s) % sh->entries[m.lvl]);
        for (unsigned j = 0; j < sh->entries[m.lvl]; j++) {
            uint64_t prefix = m.prefix | (uint64_t)j << sh->shift[m.lvl];
            bool g = false;
            for (unsigned k = 0; k < ngrow; k++)
                g |= grow[k] == j;
            uint64_t e = rand_entry(f, m.lvl, prefix, g);
            poke(f->s, m.table + j * sh->esize, e, sh->esize);
        }
    }
}

static uint64_t canon(const shape_t *sh, uint64_t va)
{
    if (sh->esize == 4 || sh->levels == 3)
        return va & 0xffffffffULL;
    unsigned bits = sh->levels == 5 ? 57 : 48;
    return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

/* Half aimed at a made table's prefix, a quarter canonical random, a
 * quarter anything (non-canonical or beyond 4 GiB). */
static uint64_t rand_va(forest_t *f)
{
    uint64_t r = sim_rand(f->s), low = sim_rand(f->s);
    switch (r & 3) {
    case 0:
    case 1: {
        /* below the bits that select the made table */
        const made_t *m = &f->made[(r >> 2) % f->nmade];
        unsigned top = m->lvl ? f->sh->shift[m->lvl - 1] : 64;
        uint64_t below = top == 64 ? ~0ULL : (1ULL << top) - 1;
        return canon(f->sh, m->prefix | (low & below));
    }
    case 2: return canon(f->sh, low);
    default: return low;
    }
}

TU_TEST(pt_x86_random_vs_reference)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        sim_t s;
        TU_ASSERT(sim_open(&s, 100 + k));
        static forest_t f;
        f = (forest_t){.s = &s, .sh = shapes[k]};
        uint64_t root = sim_page(&s);
        rand_tables(&f, root);
        if (shapes[k]->mode == VMI_PM_PAE) /* only 4 entries matter */
            memset(s.ram + root + 32, 0xee, 4096 - 32);
        unsigned ok = 0, small = 0, unmapped = 0, other = 0;
        for (int i = 0; i < 10000; i++) {
            uint64_t va = rand_va(&f);
            tv_walk_t w;
            bool same;
            int rc = walk_check(&s, shapes[k]->mode,
                                root | (sim_rand(&s) & 0x18), va, &w, &same);
            TU_ASSERT(same);
            ok += rc == 0;
            small += rc == 0 && w.page_size == 4096;
            unmapped += rc == TINYVMI_EUNMAPPED;
            other += rc != 0 && rc != TINYVMI_EUNMAPPED;
        }
        /* The mix must exercise all outcomes and page sizes, not just
         * holes (seen: about 35% mapped, a third of those large). */
        bool mix = ok >= 1500 && small >= 500 && ok - small >= 500 &&
                   unmapped >= 1500 && other >= 500;
        if (!mix)
            TU_FAIL_("%s: %u mapped (%u 4 KiB), %u unmapped, %u out of range",
                     tv_pt_format(shapes[k]->mode)->name, ok, small, unmapped,
                     other);
        TU_ASSERT(mix);
        sim_close(&s);
    }
}

/* ---- Formats and modes --------------------------------------------------- */

TU_TEST(pt_x86_formats)
{
    for (size_t k = 0; k < TV_ARRAY_LEN(shapes); k++) {
        const shape_t *sh = shapes[k];
        const tv_pt_format_t *f = tv_pt_format(sh->mode);
        TU_ASSERT(f);
        TU_EQ_INT(f->mode, sh->mode);
        TU_EQ_INT(f->nlevels, sh->levels);
        TU_EQ_INT(f->pte_size, sh->esize);
        TU_EQ_INT(f->addr_width, sh->levels >= 4 ? 8 : 4);
        TU_EQ_STR(f->name, tinyvmi_page_mode_name(sh->mode));
        for (unsigned l = 0; l < sh->levels; l++) {
            TU_EQ_STR(f->level[l].name, sh->name[l]);
            TU_EQ_INT(f->level[l].shift, sh->shift[l]);
            TU_EQ_INT(!!f->level[l].can_large, sh->can_page[l]);
        }
    }
    TU_ASSERT(!tv_pt_format(VMI_PM_UNKNOWN));
    TU_ASSERT(!tv_pt_format(VMI_PM_NONE));
    TU_ASSERT(!tv_pt_format(VMI_PM_EPT_4L));
    TU_ASSERT(!tv_pt_format((page_mode_t)1000));
    TU_ASSERT(!tv_pt_format((page_mode_t)-1));
}

TU_TEST(pt_x86_page_mode)
{
    const uint64_t pg = 1ULL << 31, pe = 1, pae_ = 1 << 5, la57_ = 1 << 12,
                   lme = 1 << 8, lma = 1 << 10, unknown = ~0ULL;
    TU_EQ_INT(tv_x86_page_mode(pe, pae_, lma), VMI_PM_NONE);
    TU_EQ_INT(tv_x86_page_mode(0, 0, unknown), VMI_PM_NONE);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, 0, 0), VMI_PM_LEGACY);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, 1 << 4, unknown), VMI_PM_LEGACY);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_, 0), VMI_PM_PAE);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_, lme), VMI_PM_PAE); /* not yet */
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_ | la57_, 0), VMI_PM_PAE);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_, lme | lma | 1), VMI_PM_IA32E);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_ | la57_, lme | lma),
              VMI_PM_LA57);
    /* EFER unknown (~0): a PAE dump is taken as 64-bit. */
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_, unknown), VMI_PM_IA32E);
    TU_EQ_INT(tv_x86_page_mode(pg | pe, pae_ | la57_, unknown), VMI_PM_LA57);
}

/* ---- Windows' transition PTEs ---------------------------------------------- */

/* Four last-level PTEs: present, transition (bit 11, frame kept), prototype
 * (bits 10 and 11: a pointer into a section, never a frame) and demand-zero
 * (nothing).  Without the flag only the present one maps; with
 * VMI_PM_INITFLAG_TRANSITION_PAGES the transition one maps to its frame
 * too, and the others stay unmapped. */
static void transition_case(page_mode_t mode)
{
    sim_t s;
    TU_ASSERT(sim_open(&s, 7));
    bool is_pae = mode == VMI_PM_PAE;
    uint64_t root = sim_page(&s), l1 = sim_page(&s), l2 = sim_page(&s),
             pt = sim_page(&s);
    uint64_t va = is_pae ? 0xc0400000ULL : 0xfffff80000400000ULL;
    if (is_pae) { /* PDPTE[3] -> PD; PDE[2] -> PT */
        poke(&s, root + 3 * 8, l1 | 1, 8);
        poke(&s, l1 + 2 * 8, pt | 3, 8);
    } else { /* PML4E[496] -> PDPT[0] -> PD[2] -> PT */
        poke(&s, root + 496 * 8, l1 | 3, 8);
        poke(&s, l1 + 0 * 8, l2 | 3, 8);
        poke(&s, l2 + 2 * 8, pt | 3, 8);
    }
    uint64_t frames[4] = {sim_page(&s), sim_page(&s), sim_page(&s), 0};
    poke(&s, pt + 0 * 8, frames[0] | 0x63, 8);           /* present */
    poke(&s, pt + 1 * 8, frames[1] | 0x800 | 0x80, 8);   /* transition */
    poke(&s, pt + 2 * 8, frames[2] | 0xc00, 8);          /* prototype */
    poke(&s, pt + 3 * 8, 0x80, 8);                       /* demand zero */
    TU_EQ_INT(tinyvmi_set_paging(s.vmi, mode, root), VMI_SUCCESS);
    uint64_t pa;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < 4; i++) {
            bool want = i == 0 || (pass == 1 && i == 1);
            status_t got = vmi_translate_kv2p(s.vmi, va + i * 4096 + 0x123,
                                              &pa);
            TU_EQ_INT(got == VMI_SUCCESS, want);
            if (want)
                TU_ASSERT(pa == frames[i] + 0x123);
        }
        TU_EQ_INT(vmi_init_paging(s.vmi, VMI_PM_INITFLAG_TRANSITION_PAGES),
                  mode);
    }
    /* Set by hand after the flag: the transition variant stays chosen. */
    TU_EQ_INT(tinyvmi_set_paging(s.vmi, mode, root), VMI_SUCCESS);
    TU_EQ_INT(vmi_translate_kv2p(s.vmi, va + 4096, &pa), VMI_SUCCESS);
    sim_close(&s);
}

TU_TEST(pt_x86_windows_transition_ia32e)
{
    transition_case(VMI_PM_IA32E);
}

TU_TEST(pt_x86_windows_transition_pae)
{
    transition_case(VMI_PM_PAE);
}
