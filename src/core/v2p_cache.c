/*
 * The translation cache: direct-mapped, one slot per (dtb, 4 KiB page).
 * A slot is live only if its generation equals the cache's, so a flush is
 * one increment; on the (rare) wrap of the counter the slots are cleared.
 */
#include "core/tv.h"

#define PAGE_SHIFT 12
#define PAGE_MASK 0xfffULL

static size_t slot_of(const tv_v2p_cache_t *c, uint64_t dtb, uint64_t page)
{
    /* Kernel addresses share their high bits: mix them down (a 64-bit
     * multiplicative hash) so they spread over the table. */
    uint64_t h = (page ^ (dtb >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL) *
                 0xff51afd7ed558ccdULL;
    return (size_t)(h >> 32) & (c->nslots - 1);
}

int tv_cache_init(struct vmi_instance *vmi, size_t nslots)
{
    tv_v2p_cache_t *c = &vmi->v2p;
    if (nslots == 0 || (nslots & (nslots - 1)))
        return tv_fail(vmi, TINYVMI_EINVAL,
                       "cache size %zu is not a power of two", nslots);
    c->slot = tv_calloc(vmi, nslots, sizeof *c->slot);
    if (!c->slot)
        return TINYVMI_ENOMEM;
    c->nslots = nslots;
    c->gen = 1;
    c->enabled = true;
    return TINYVMI_OK;
}

void tv_cache_free(struct vmi_instance *vmi)
{
    tv_v2p_cache_t *c = &vmi->v2p;
    tv_free(vmi, c->slot, c->nslots * sizeof *c->slot);
    c->slot = NULL;
    c->nslots = 0;
}

bool tv_cache_lookup(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t *pa, uint64_t *span)
{
    uint64_t page = va >> PAGE_SHIFT;
    if (c->enabled) {
        const tv_v2p_slot_t *s = &c->slot[slot_of(c, dtb, page)];
        if (s->gen == c->gen && s->tag == page && s->dtb == dtb) {
            *pa = s->pa | (va & PAGE_MASK);
            *span = s->span - (va & PAGE_MASK);
            c->stats.hits++;
            return true;
        }
    }
    c->stats.misses++;
    return false;
}

void tv_cache_insert(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t pa, uint64_t span)
{
    if (!c->enabled || !c->slot)
        return;
    uint64_t page = va >> PAGE_SHIFT;
    tv_v2p_slot_t *s = &c->slot[slot_of(c, dtb, page)];
    *s = (tv_v2p_slot_t){.tag = page, .dtb = dtb, .pa = pa & ~PAGE_MASK,
                         .span = span + (va & PAGE_MASK), .gen = c->gen};
}

void tv_cache_flush(tv_v2p_cache_t *c)
{
    c->stats.flushes++;
    if (++c->gen == 0) {
        if (c->slot)
            tv_memset(c->slot, 0, c->nslots * sizeof *c->slot);
        c->gen = 1;
    }
}
