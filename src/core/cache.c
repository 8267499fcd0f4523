/*
 * The translation cache: direct-mapped, one slot per (dtb, 4 KiB page),
 * holding the physical 4 KiB page and how many bytes from its start stay
 * contiguous (the rest of a large page).  A slot is live only while its
 * generation equals the cache's, so a flush is one increment; when the
 * counter wraps the slots are cleared, so an ancient slot cannot revive.
 */
#include "core/tv.h"

#define PAGE_SHIFT 12
#define PAGE_OFF 0xfffULL
#define TAG_VALID (1ULL << 63) /* va >> 12 never reaches bit 63 */

/* The index keeps neighbouring pages in neighbouring slots (a contiguous
 * run of up to nslots pages never evicts itself) and folds the high VA
 * bits in, so regions that differ only there (kernel direct map, vmalloc,
 * user space) land apart.  The DTB goes through a multiply so processes
 * mapping the same user addresses land apart too. */
static size_t slot_of(const tv_v2p_cache_t *c, uint64_t dtb, uint64_t page)
{
    uint64_t mix = ((dtb >> PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL) >> 40;
    uint64_t h = page ^ (page >> 16) ^ (page >> 32) ^ mix;
    return (size_t)h & (c->nslots - 1);
}

int tv_cache_init(struct vmi_instance *vmi, size_t nslots)
{
    tv_v2p_cache_t *c = &vmi->v2p;
    *c = (tv_v2p_cache_t){0};
    if (nslots == 0 || (nslots & (nslots - 1)))
        return tv_fail(vmi, TINYVMI_EINVAL,
                       "translation cache size %zu is not a power of two",
                       nslots);
    c->slot = tv_calloc(vmi, nslots, sizeof *c->slot);
    if (!c->slot)
        return TINYVMI_ENOMEM; /* tv_calloc said why */
    c->nslots = nslots;
    c->gen = 1; /* zeroed slots (gen 0) are dead */
    c->enabled = true;
    return TINYVMI_OK;
}

void tv_cache_free(struct vmi_instance *vmi)
{
    tv_v2p_cache_t *c = &vmi->v2p;
    tv_free(vmi, c->slot, c->nslots * sizeof *c->slot);
    *c = (tv_v2p_cache_t){0}; /* disabled: lookups miss, inserts do nothing */
}

bool tv_cache_lookup(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t *pa, uint64_t *span)
{
    uint64_t page = va >> PAGE_SHIFT;
    if (c->enabled) {
        const tv_v2p_slot_t *s = &c->slot[slot_of(c, dtb, page)];
        if (s->tag == (page | TAG_VALID) && s->dtb == dtb &&
            s->gen == c->gen) {
            *pa = s->pa | (va & PAGE_OFF);
            *span = s->span - (va & PAGE_OFF);
            c->stats.hits++;
            return true;
        }
    }
    c->stats.misses++;
    return false;
}

/* Slots hold whole 4 KiB pages: a translation that does not keep va's page
 * offset or does not cover the rest of its 4 KiB page is not cached. */
void tv_cache_insert(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t pa, uint64_t span)
{
    uint64_t off = va & PAGE_OFF;
    if (!c->enabled || ((pa ^ va) & PAGE_OFF) || span > UINT64_MAX - off ||
        span + off < PAGE_OFF + 1)
        return;
    uint64_t page = va >> PAGE_SHIFT;
    c->slot[slot_of(c, dtb, page)] = (tv_v2p_slot_t){
        .tag = page | TAG_VALID, .dtb = dtb, .pa = pa & ~PAGE_OFF,
        .span = span + off, .gen = c->gen};
}

void tv_cache_flush(tv_v2p_cache_t *c)
{
    c->stats.flushes++;
    if (++c->gen != 0)
        return;
    if (c->slot)
        tv_memset(c->slot, 0, c->nslots * sizeof *c->slot);
    c->gen = 1;
}
