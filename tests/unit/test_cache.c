/*
 * The translation cache (src/core/cache.c): on its own, and under
 * tv_translate over a small IA-32e page table.
 */
#include "core/tv.h"
#include "tu.h"

#define KTEXT 0xffffffff81000000ULL

static struct vmi_instance *new_vmi(void)
{
    struct vmi_instance *vmi = NULL;
    if (tv_instance_new(&tu_hooks, &vmi) != 0)
        return NULL;
    return vmi;
}

/* A cache of nslots on a fresh instance. */
static tv_v2p_cache_t *small_cache(struct vmi_instance *vmi, size_t nslots)
{
    tv_cache_free(vmi);
    return tv_cache_init(vmi, nslots) == 0 ? &vmi->v2p : NULL;
}

TU_TEST(cache_miss_hit_accounting)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    TU_ASSERT(c->enabled);
    uint64_t pa = 0, span = 0;
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 0x123, &pa, &span));
    TU_EQ_U64(c->stats.misses, 1);
    TU_EQ_U64(c->stats.hits, 0);
    tv_cache_insert(c, 0x1000, KTEXT + 0x123, 0x5123, 0x1000 - 0x123);
    /* Anywhere in the same 4 KiB page hits, with va's own offset. */
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 0x123, &pa, &span));
    TU_EQ_U64(pa, 0x5123);
    TU_EQ_U64(span, 0x1000 - 0x123);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    TU_EQ_U64(pa, 0x5000);
    TU_EQ_U64(span, 0x1000);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 0xfff, &pa, &span));
    TU_EQ_U64(pa, 0x5fff);
    TU_EQ_U64(span, 1);
    /* The next page is another slot. */
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 0x1000, &pa, &span));
    TU_EQ_U64(c->stats.hits, 3);
    TU_EQ_U64(c->stats.misses, 2);
    TU_EQ_U64(c->stats.flushes, 0);
    tv_instance_free(vmi);
}

TU_TEST(cache_dtb_is_part_of_the_key)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    tv_cache_insert(c, 0x1000, 0x400000, 0xa000, 0x1000);
    TU_ASSERT(!tv_cache_lookup(c, 0x2000, 0x400000, &pa, &span));
    tv_cache_insert(c, 0x2000, 0x400000, 0xb000, 0x1000);
    TU_ASSERT(tv_cache_lookup(c, 0x2000, 0x400000, &pa, &span));
    TU_EQ_U64(pa, 0xb000);
    /* Many processes mapping the same user page: all distinct. */
    for (uint64_t d = 1; d <= 64; d++)
        tv_cache_insert(c, d << 12, 0x400000, d << 20, 0x1000);
    unsigned hits = 0;
    for (uint64_t d = 1; d <= 64; d++) {
        if (tv_cache_lookup(c, d << 12, 0x400000, &pa, &span)) {
            TU_EQ_U64(pa, d << 20);
            hits++;
        }
    }
    TU_ASSERT(hits >= 56); /* the dtb spreads them over the slots */
    /* In a tiny cache other dtbs share the slot: the first is evicted,
     * never answered with another process's page. */
    c = small_cache(vmi, 16);
    TU_ASSERT(c);
    unsigned shared = 0;
    for (uint64_t d = 2; d < 200; d++) {
        tv_cache_insert(c, 0x1000, 0x400000, 0xa000, 0x1000);
        tv_cache_insert(c, d << 12, 0x400000, 0xb000, 0x1000);
        if (tv_cache_lookup(c, 0x1000, 0x400000, &pa, &span))
            TU_EQ_U64(pa, 0xa000);
        else
            shared++;
    }
    TU_ASSERT(shared > 0);
    tv_instance_free(vmi);
}

TU_TEST(cache_flush_empties)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    for (uint64_t i = 0; i < 100; i++)
        tv_cache_insert(c, 0x1000, KTEXT + i * 4096, 0x100000 + i * 4096,
                        4096);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 50 * 4096, &pa, &span));
    tv_cache_flush(c);
    TU_EQ_U64(c->stats.flushes, 1);
    for (uint64_t i = 0; i < 100; i++)
        TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + i * 4096, &pa, &span));
    /* And it fills again. */
    tv_cache_insert(c, 0x1000, KTEXT, 0x7000, 4096);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    TU_EQ_U64(pa, 0x7000);
    tv_instance_free(vmi);
}

TU_TEST(cache_generation_wrap_clears)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    /* A slot made in generation 1 ... */
    TU_EQ_U64(c->gen, 1);
    tv_cache_insert(c, 0x1000, KTEXT, 0x7000, 4096);
    /* ... must stay dead when the counter comes round to 1 again. */
    c->gen = UINT32_MAX - 1;
    tv_cache_insert(c, 0x1000, KTEXT + 4096, 0x8000, 4096);
    tv_cache_flush(c); /* gen UINT32_MAX */
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 4096, &pa, &span));
    tv_cache_insert(c, 0x1000, KTEXT + 8192, 0x9000, 4096);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 8192, &pa, &span));
    tv_cache_flush(c); /* wraps */
    TU_EQ_U64(c->gen, 1);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 4096, &pa, &span));
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 8192, &pa, &span));
    for (size_t i = 0; i < c->nslots; i++)
        TU_EQ_U64(c->slot[i].tag, 0);
    tv_cache_insert(c, 0x1000, KTEXT, 0x6000, 4096);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    TU_EQ_U64(pa, 0x6000);
    TU_EQ_U64(c->stats.flushes, 2);
    tv_instance_free(vmi);
}

TU_TEST(cache_span_of_large_pages)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    /* va in a 2 MiB page at 0x1000000, 0x3456 into it. */
    tv_cache_insert(c, 0x1000, KTEXT + 0x3456, 0x1003456, 0x200000 - 0x3456);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 0x3000, &pa, &span));
    TU_EQ_U64(pa, 0x1003000);
    TU_EQ_U64(span, 0x200000 - 0x3000);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, KTEXT + 0x3fff, &pa, &span));
    TU_EQ_U64(span, 0x200000 - 0x3fff);
    /* Other 4 KiB pages of the large page have slots of their own. */
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT + 0x4000, &pa, &span));
    /* 1 GiB page, last 4 KiB of it. */
    uint64_t dm = 0xffff888000000000ULL + 0x3ffff000 + 0x10;
    tv_cache_insert(c, 0x1000, dm, 0x7ffff010, 0x1000 - 0x10);
    TU_ASSERT(tv_cache_lookup(c, 0x1000, dm - 0x10, &pa, &span));
    TU_EQ_U64(span, 0x1000);
    tv_instance_free(vmi);
}

TU_TEST(cache_refuses_odd_inserts)
{
    /* Slots hold whole 4 KiB pages: a pa whose page offset differs from
     * va's, or a span that stops inside the 4 KiB page, is not cached. */
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    tv_cache_insert(c, 0x1000, KTEXT + 0x10, 0x5020, 0xff0);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_cache_insert(c, 0x1000, KTEXT + 0x10, 0x5010, 0x100);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_cache_insert(c, 0x1000, KTEXT + 0x10, 0x5010, 0);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_cache_insert(c, 0x1000, KTEXT + 0x10, 0x5010, UINT64_MAX);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_instance_free(vmi);
}

TU_TEST(cache_disabled)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    c->enabled = false;
    tv_cache_insert(c, 0x1000, KTEXT, 0x5000, 4096);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    c->enabled = true;
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    TU_EQ_U64(c->stats.hits, 0);
    TU_EQ_U64(c->stats.misses, 2);
    /* Disabled after a fill: lookups miss although the slot is there. */
    tv_cache_insert(c, 0x1000, KTEXT, 0x5000, 4096);
    c->enabled = false;
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_instance_free(vmi);
}

TU_TEST(cache_contiguous_runs_do_not_collide)
{
    /* Neighbouring pages get neighbouring slots: a run as long as the
     * cache (inside one aligned 256 MiB) stays whole, wherever it sits
     * (user, kernel text, direct map, vmalloc), and for any dtb. */
    static const uint64_t bases[] = {0x400000ULL, KTEXT,
                                     0xffff888000000000ULL + 0x12345000,
                                     0xffffc90000000000ULL};
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = small_cache(vmi, 1024);
    TU_ASSERT(c);
    uint64_t pa, span;
    for (size_t b = 0; b < TV_ARRAY_LEN(bases); b++) {
        uint64_t dtb = 0x1000 + b * 0x7000;
        for (uint64_t i = 0; i < c->nslots; i++)
            tv_cache_insert(c, dtb, bases[b] + i * 4096, i * 4096, 4096);
        for (uint64_t i = 0; i < c->nslots; i++) {
            TU_ASSERT(tv_cache_lookup(c, dtb, bases[b] + i * 4096, &pa, &span));
            TU_EQ_U64(pa, i * 4096);
        }
    }
    tv_instance_free(vmi);
}

TU_TEST(cache_hash_spreads_high_bits)
{
    /* Pages that differ only above bit 21 (one per 2 MiB region, as kernel
     * stacks, modules and direct-map pages are scattered) must not pile
     * into a few slots: with N keys in 2N slots, a fair hash keeps about
     * 79% of them. */
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_v2p_cache_t *c = small_cache(vmi, 4096);
    TU_ASSERT(c);
    uint64_t x = 0x243f6a8885a308d3ULL, va[2048], pa, span;
    for (size_t i = 0; i < TV_ARRAY_LEN(va); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        va[i] = 0xffff800000000000ULL | (x & 0x00007fffffe00000ULL);
        tv_cache_insert(c, 0x1000, va[i], (uint64_t)i << 12, 4096);
    }
    unsigned hits = 0;
    for (size_t i = 0; i < TV_ARRAY_LEN(va); i++)
        if (tv_cache_lookup(c, 0x1000, va[i], &pa, &span)) {
            TU_EQ_U64(pa, (uint64_t)i << 12);
            hits++;
        }
    if (hits < 1400)
        TU_FAIL_("only %u of 2048 scattered pages kept", hits);
    TU_ASSERT(hits >= 1400);
    tv_instance_free(vmi);
}

/* ---- Set-up failures ----------------------------------------------------- */

static void *no_alloc(void *ctx, void *ptr, size_t old_size, size_t new_size)
{
    return new_size ? NULL : tu_alloc(ctx, ptr, old_size, 0);
}

TU_TEST(cache_init_failures)
{
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    TU_ASSERT(!small_cache(vmi, 1000));
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_EINVAL);
    TU_CONTAINS(tinyvmi_last_error(vmi), "power of two");
    TU_ASSERT(!small_cache(vmi, 0));
    vmi->hooks.alloc = no_alloc;
    TU_ASSERT(!small_cache(vmi, 64));
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_ENOMEM);
    vmi->hooks.alloc = tu_alloc;
    /* A cache that failed to set up is off and harmless. */
    tv_v2p_cache_t *c = &vmi->v2p;
    uint64_t pa, span;
    TU_ASSERT(!c->enabled);
    tv_cache_insert(c, 0x1000, KTEXT, 0x5000, 4096);
    TU_ASSERT(!tv_cache_lookup(c, 0x1000, KTEXT, &pa, &span));
    tv_cache_flush(c);
    TU_ASSERT(small_cache(vmi, 64));
    tv_instance_free(vmi);
}

/* ---- Under tv_translate -------------------------------------------------- */

typedef struct ram {
    uint8_t bytes[64 * 4096];
    tv_range_t range;
} ram_t;

static int ram_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                    size_t len)
{
    ram_t *r = ctx;
    (void)pa;
    memcpy(buf, r->bytes + off, len);
    return 0;
}

static const tv_mem_ops_t ram_ops = {ram_read, NULL, NULL};

static void put64(ram_t *r, uint64_t pa, uint64_t v)
{
    memcpy(r->bytes + pa, &v, 8); /* the tests run on little-endian hosts */
}

TU_TEST(cache_under_translate)
{
    /* PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000: KTEXT is a 2 MiB page
     * at 0x1000000, KTEXT + 2 MiB is 4 KiB pages. */
    static ram_t r;
    memset(&r, 0, sizeof r);
    r.range = (tv_range_t){0, sizeof r.bytes, 0};
    put64(&r, 0x1000 + 511 * 8, 0x2003);
    put64(&r, 0x2000 + 510 * 8, 0x3003);
    put64(&r, 0x3000 + 8 * 8, 0x1000083);
    put64(&r, 0x3000 + 9 * 8, 0x4003);
    put64(&r, 0x4000, 0x9003);
    struct vmi_instance *vmi = new_vmi();
    TU_ASSERT(vmi);
    tv_driver_t d = {.name = "ram", .ctx = &r, .mem = &ram_ops,
                     .ranges = &r.range, .nranges = 1};
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    TU_EQ_INT(tinyvmi_set_paging(vmi, VMI_PM_IA32E, 0x1000), VMI_SUCCESS);
    uint64_t pa, span;
    tinyvmi_cache_stats_t st0 = vmi->v2p.stats;
    TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x12345, &pa, &span), 0);
    TU_EQ_U64(pa, 0x1012345);
    TU_EQ_U64(span, 0x200000 - 0x12345);
    TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x12000, &pa, &span), 0);
    TU_EQ_U64(pa, 0x1012000);
    TU_EQ_U64(span, 0x200000 - 0x12000);
    TU_EQ_U64(vmi->v2p.stats.hits - st0.hits, 1);
    TU_EQ_U64(vmi->v2p.stats.misses - st0.misses, 1);
    TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x200008, &pa, &span),
              0);
    TU_EQ_U64(pa, 0x9008);
    TU_EQ_U64(span, 0xff8);
    /* A stale entry lives until a flush. */
    put64(&r, 0x4000, 0xa003);
    TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x200008, &pa, NULL), 0);
    TU_EQ_U64(pa, 0x9008);
    tv_cache_flush(&vmi->v2p);
    TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x200008, &pa, NULL), 0);
    TU_EQ_U64(pa, 0xa008);
    /* Failures are not cached. */
    uint64_t misses = vmi->v2p.stats.misses;
    for (int i = 0; i < 2; i++)
        TU_EQ_INT(tv_translate(vmi, NULL, 0x1000, KTEXT + 0x400000, &pa, NULL),
                  TINYVMI_EUNMAPPED);
    TU_EQ_U64(vmi->v2p.stats.misses - misses, 2);
    tv_instance_free(vmi);
}
