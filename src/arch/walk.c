/*
 * The one page-table walker.  Every architecture is a tv_pt_format_t; the
 * walk reads one entry per level, top first, and stops at a leaf.  Its
 * depth is fixed by the format, so hostile tables (an entry pointing at its
 * own table, as Windows' self-map does) cannot make it loop.
 */
#include "core/tv.h"

static uint64_t index_of(const tv_pt_level_t *l, uint64_t va)
{
    return (va >> l->shift) & ((1ULL << l->bits) - 1);
}

/* VA bits above va_bits-1 must copy bit va_bits-1 (64-bit modes); 32-bit
 * modes have no address above 4 GiB. */
static int check_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                    uint64_t va)
{
    if (fmt->addr_width == 4) {
        if (va >> 32)
            return tv_fail(vmi, TINYVMI_ERANGE,
                           "va 0x%llx is beyond 4 GiB in %s paging",
                           (unsigned long long)va, fmt->name);
        return TINYVMI_OK;
    }
    uint64_t top = va >> (fmt->va_bits - 1);
    uint64_t ones = (1ULL << (64 - fmt->va_bits + 1)) - 1;
    if (top != 0 && top != ones)
        return tv_fail(vmi, TINYVMI_ENONCANON,
                       "va 0x%llx is non-canonical for %u-bit %s paging",
                       (unsigned long long)va, fmt->va_bits, fmt->name);
    return TINYVMI_OK;
}

static int read_entry(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                      unsigned lvl, uint64_t loc, uint64_t va, uint64_t *out)
{
    uint8_t raw[8];
    int rc = tv_read_pa(vmi, loc, raw, fmt->pte_size, NULL);
    if (rc)
        return tv_fail(vmi, rc, "va 0x%llx: %s at 0x%llx cannot be read: %s",
                       (unsigned long long)va, fmt->level[lvl].name,
                       (unsigned long long)loc, vmi->last_error);
    *out = fmt->pte_size == 8 ? tv_le64(raw) : tv_le32(raw);
    return TINYVMI_OK;
}

/* The physical base of the page a leaf entry maps. */
static uint64_t leaf_base(const tv_pt_format_t *fmt, unsigned lvl,
                          uint64_t entry, uint64_t size)
{
    if (lvl + 1 < fmt->nlevels && fmt->large_base)
        return fmt->large_base(entry, lvl);
    return entry & fmt->table_mask & ~(size - 1);
}

int tv_pt_walk(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
               uint64_t dtb, uint64_t va, tv_walk_t *w)
{
    *w = (tv_walk_t){.va = va};
    int rc = check_va(vmi, fmt, va);
    uint64_t table = dtb & fmt->root_mask;
    for (unsigned lvl = 0; !rc && lvl < fmt->nlevels; lvl++) {
        const tv_pt_level_t *l = &fmt->level[lvl];
        uint64_t loc = table + index_of(l, va) * fmt->pte_size, entry = 0;
        rc = read_entry(vmi, fmt, lvl, loc, va, &entry);
        if (rc)
            break;
        w->entry[w->nentries++] = (tv_walk_entry_t){loc, entry};
        if (!(entry & fmt->present))
            return tv_fail(vmi, TINYVMI_EUNMAPPED,
                           "va 0x%llx not mapped: %s 0x%llx (at 0x%llx) not "
                           "present", (unsigned long long)va, l->name,
                           (unsigned long long)entry,
                           (unsigned long long)loc);
        bool last = lvl + 1 == fmt->nlevels;
        if (last || (l->can_large && (entry & fmt->large))) {
            w->page_size = 1ULL << l->shift;
            w->pa = leaf_base(fmt, lvl, entry, w->page_size) |
                    (va & (w->page_size - 1));
            return TINYVMI_OK;
        }
        table = entry & fmt->table_mask;
    }
    return rc;
}
