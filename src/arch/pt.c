/*
 * The one page-table walker.  An architecture is a tv_pt_format_t (see
 * x86.c and arm.c): the walk reads one entry per level, top first, and
 * stops at the first leaf.  The loop runs at most fmt->nlevels times whatever the
 * entries say, so hostile tables (an entry pointing back at its own table,
 * as the Windows self-map does) end with a defined answer, never a hang.
 */
#include "core/tv.h"

#define PAGE_OFFSET(va, size) ((va) & ((size) - 1))

static uint64_t level_index(const tv_pt_level_t *l, uint64_t va)
{
    return (va >> l->shift) & ((1ULL << l->bits) - 1);
}

/* 64-bit modes: the bits above va_bits-1 must all copy bit va_bits-1.
 * 32-bit modes (addr_width 4) have no address at or above 4 GiB. */
static int check_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                    uint64_t va)
{
    if (fmt->addr_width == 4) {
        if (va >> 32)
            return tv_fail(vmi, TINYVMI_ERANGE,
                           "va 0x%llx is beyond 4 GiB: out of range for "
                           "%s paging", (unsigned long long)va, fmt->name);
        return TINYVMI_OK;
    }
    uint64_t high = va >> (fmt->va_bits - 1); /* all 0s or all 1s */
    if (high != 0 && high != (~0ULL >> (fmt->va_bits - 1)))
        return tv_fail(vmi, TINYVMI_ENONCANON,
                       "va 0x%llx non-canonical for %u-bit %s",
                       (unsigned long long)va, fmt->va_bits, fmt->name);
    return TINYVMI_OK;
}

/* One entry, little-endian, of fmt->pte_size bytes.  A failed read keeps
 * the memory layer's status and adds which entry we were after. */
static int read_entry(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                      unsigned lvl, uint64_t loc, uint64_t va, uint64_t *out)
{
    uint8_t raw[8];
    int rc = tv_read_pa(vmi, loc, raw, fmt->pte_size, NULL);
    if (rc)
        return tv_fail(vmi, rc, "va 0x%llx: reading %s at 0x%llx: %s",
                       (unsigned long long)va, fmt->level[lvl].name,
                       (unsigned long long)loc, vmi->last_error);
    *out = fmt->pte_size == 8 ? tv_le64(raw) : tv_le32(raw);
    return TINYVMI_OK;
}

/* Physical base of the page a leaf at lvl maps.  Only large pages take the
 * hook (PSE-36 scatters address bits); everything else is the entry's
 * address bits above the page offset. */
static uint64_t leaf_base(const tv_pt_format_t *fmt, unsigned lvl,
                          uint64_t entry, uint64_t size)
{
    if (fmt->large_base && lvl + 1u < fmt->nlevels)
        return fmt->large_base(entry, lvl);
    return entry & fmt->table_mask & ~(size - 1);
}

/* What an entry is: the format's hook (ARM descriptor types), or the x86
 * rule.  A table at the last level is refused here, so whatever a hook
 * says the walk ends within fmt->nlevels entries. */
static void decode(const tv_pt_format_t *fmt, unsigned lvl, uint64_t e,
                   tv_pte_t *d)
{
    const tv_pt_level_t *l = &fmt->level[lvl];
    bool last = lvl + 1u == fmt->nlevels;
    if (fmt->decode) {
        fmt->decode(fmt, lvl, e, d);
        if (d->kind == TV_PTE_TABLE && last)
            d->kind = TV_PTE_INVALID;
        return;
    }
    if (!(e & fmt->present)) {
        *d = (tv_pte_t){.kind = TV_PTE_INVALID};
    } else if (last || (l->can_large && (e & fmt->large))) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = l->shift;
        d->addr = leaf_base(fmt, lvl, e, 1ULL << l->shift);
    } else {
        *d = (tv_pte_t){.kind = TV_PTE_TABLE, .addr = e & fmt->table_mask};
    }
}

static uint64_t top_table(const tv_pt_format_t *fmt, uint64_t dtb)
{
    dtb &= fmt->root_mask; /* drops PCID, ASID and flag bits */
    return fmt->root ? fmt->root(dtb) : dtb;
}

/* Split formats (ARM): which range va lies in, 0 (TTBR0) or 1 (TTBR1).
 * The high range is tried first: where AArch32 LPAE's ranges overlap, TTBR1
 * wins. */
static int pick_half(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                     uint64_t va, unsigned *half)
{
    unsigned width = fmt->addr_width * 8u; /* 32 or 64 */
    unsigned hb = fmt->hi->va_bits;
    if (width == 32 && va >> 32)
        return tv_fail(vmi, TINYVMI_ERANGE,
                       "va 0x%llx is beyond 4 GiB: out of range for "
                       "%s paging", (unsigned long long)va, fmt->name);
    if (hb < width && va >> hb == ~0ULL >> (64 - (width - hb))) {
        *half = 1;
        return TINYVMI_OK;
    }
    if (!(va >> fmt->va_bits)) {
        *half = 0;
        return TINYVMI_OK;
    }
    return tv_fail(vmi, TINYVMI_ENONCANON,
                   "va 0x%llx is in neither the %u-bit TTBR0 range nor "
                   "the %u-bit TTBR1 range of %s", (unsigned long long)va,
                   fmt->va_bits, hb, fmt->name);
}

static int not_present(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                       unsigned lvl, const tv_walk_entry_t *e, uint64_t va)
{
    return tv_fail(vmi, TINYVMI_EUNMAPPED,
                   "va 0x%llx not mapped: %s 0x%llx (at 0x%llx) not present",
                   (unsigned long long)va, fmt->level[lvl].name,
                   (unsigned long long)e->value,
                   (unsigned long long)e->location);
}

int tv_pt_walk_pair(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                    uint64_t ttbr0, uint64_t ttbr1, uint64_t va,
                    tv_walk_t *w)
{
    *w = (tv_walk_t){.va = va};
    unsigned half = 0;
    int rc = fmt->hi ? pick_half(vmi, fmt, va, &half) : check_va(vmi, fmt, va);
    if (half)
        fmt = fmt->hi;
    uint64_t table = top_table(fmt, half ? ttbr1 : ttbr0);
    for (unsigned lvl = 0; !rc && lvl < fmt->nlevels; lvl++) {
        const tv_pt_level_t *l = &fmt->level[lvl];
        tv_walk_entry_t *e = &w->entry[lvl];
        e->location = table + level_index(l, va) * fmt->pte_size;
        rc = read_entry(vmi, fmt, lvl, e->location, va, &e->value);
        if (rc)
            break;
        w->nentries = lvl + 1;
        tv_pte_t d;
        decode(fmt, lvl, e->value, &d);
        if (d.kind == TV_PTE_INVALID)
            return not_present(vmi, fmt, lvl, e, va);
        if (d.kind == TV_PTE_PAGE) {
            w->page_size = 1ULL << d.size_log2;
            w->pa = d.addr | PAGE_OFFSET(va, w->page_size);
            return TINYVMI_OK;
        }
        table = d.addr;
    }
    return rc;
}

int tv_pt_walk(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
               uint64_t dtb, uint64_t va, tv_walk_t *w)
{
    return tv_pt_walk_pair(vmi, fmt, dtb, dtb, va, w);
}

/* ---- Reverse lookups ------------------------------------------------------------ */

typedef struct rev {
    struct vmi_instance *vmi;
    const tv_pt_format_t *fmt; /* the half being searched */
    uint64_t pa, lo;
    int (*cb)(void *arg, uint64_t va, uint64_t page_size);
    void *arg;
    uint64_t budget; /* entries we may still read */
    int stop;        /* cb's nonzero answer */
    bool split;      /* fmt is one half of a split format */
    uint64_t vbase;  /* split: the half's first VA */
    uint64_t vend;   /* split: VAs from here on are the other half's */
} rev_t;

static uint64_t canonical(const tv_pt_format_t *fmt, uint64_t va)
{
    if (fmt->addr_width == 4 || !(va >> (fmt->va_bits - 1) & 1))
        return va;
    return va | ~((1ULL << fmt->va_bits) - 1);
}

static int rev_table(rev_t *r, unsigned lvl, uint64_t table, uint64_t base)
{
    const tv_pt_format_t *fmt = r->fmt;
    const tv_pt_level_t *l = &fmt->level[lvl];
    uint64_t n = 1ULL << l->bits;
    uint8_t raw[8];
    for (uint64_t i = 0; i < n && !r->stop; i++) {
        uint64_t va = r->split ? r->vbase | base | i << l->shift
                               : canonical(fmt, base | i << l->shift);
        uint64_t span = 1ULL << l->shift;
        if (va + span - 1 < r->lo)
            continue;
        if (r->split && r->vend && va >= r->vend)
            break; /* TTBR1's range: not translated through TTBR0 */
        if (!r->budget--)
            return tv_fail(r->vmi, TINYVMI_ERANGE, "page tables at 0x%llx "
                           "too large to search backwards",
                           (unsigned long long)table);
        if (tv_read_pa(r->vmi, table + i * fmt->pte_size, raw, fmt->pte_size,
                       NULL))
            continue; /* a table outside RAM: nothing maps through it */
        uint64_t e = fmt->pte_size == 8 ? tv_le64(raw) : tv_le32(raw);
        tv_pte_t d;
        decode(fmt, lvl, e, &d);
        if (d.kind == TV_PTE_INVALID)
            continue;
        if (d.kind == TV_PTE_PAGE) {
            /* A page may be larger than the entry's span (AArch32
             * supersections and large pages repeat one entry 16 times):
             * each copy reports only the VA inside its own span. */
            uint64_t size = 1ULL << d.size_log2;
            uint64_t hit = (va & ~(size - 1)) + (r->pa - d.addr);
            if (r->pa >= d.addr && r->pa - d.addr < size && hit >= va &&
                hit - va < span)
                r->stop = r->cb(r->arg, hit, 1ULL << 12);
            continue;
        }
        int rc = rev_table(r, lvl + 1, d.addr, base | i << l->shift);
        if (rc)
            return rc;
    }
    return TINYVMI_OK;
}

int tv_pt_reverse(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                  uint64_t dtb, uint64_t pa, uint64_t lo,
                  int (*cb)(void *arg, uint64_t va, uint64_t page_size),
                  void *arg)
{
    rev_t r = {vmi, fmt, pa, lo, cb, arg, 1u << 22, 0, false, 0, 0};
    if (!fmt->hi)
        return rev_table(&r, 0, top_table(fmt, dtb), 0);
    /* Split: the low range, up to where the high one starts, then the
     * high one, both through dtb (as tv_pt_walk does). */
    unsigned width = fmt->addr_width * 8u, hb = fmt->hi->va_bits;
    uint64_t all = ~0ULL >> (64 - width);
    uint64_t hi_start = hb < width ? (all << hb) & all : 0;
    r.split = true;
    r.vend = hi_start;
    int rc = rev_table(&r, 0, top_table(fmt, dtb), 0);
    if (rc || r.stop || !hi_start)
        return rc;
    r.fmt = fmt->hi;
    r.vbase = hi_start;
    r.vend = 0;
    return rev_table(&r, 0, top_table(fmt->hi, dtb), 0);
}
