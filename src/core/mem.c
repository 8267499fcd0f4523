/*
 * Physical and virtual memory access over any driver.  Holes between RAM
 * ranges are checked here, once, for every driver: a driver only ever sees
 * spans that lie inside one of its ranges.
 */
#include "core/tv.h"

const tv_range_t *tv_range_find(const struct vmi_instance *vmi, uint64_t pa)
{
    const tv_range_t *r = vmi->drv.ranges;
    size_t lo = 0, hi = vmi->drv.nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pa < r[mid].start)
            hi = mid;
        else if (pa - r[mid].start >= r[mid].size)
            lo = mid + 1;
        else
            return &r[mid];
    }
    return NULL;
}

const void *tv_map_pa(struct vmi_instance *vmi, uint64_t pa, size_t len)
{
    if (!vmi->have_drv || !vmi->drv.mem->map || !len)
        return NULL;
    const tv_range_t *r = tv_range_find(vmi, pa);
    if (!r || len > r->size - (pa - r->start))
        return NULL;
    return vmi->drv.mem->map(vmi->drv.ctx, r->offset + (pa - r->start), len);
}

/* Transfers len bytes at pa, one range at a time; `write` picks the
 * direction.  Keeps the byte count in *done current for partial results. */
static int xfer_pa(struct vmi_instance *vmi, uint64_t pa, void *buf,
                   size_t len, size_t *done, bool write)
{
    size_t moved = 0;
    int rc = TINYVMI_OK;
    if (!vmi->have_drv)
        rc = tv_fail(vmi, TINYVMI_ESTATE, "no target attached");
    else if (write && !vmi->drv.mem->write)
        rc = tv_fail(vmi, TINYVMI_ENOTSUP, "%s targets are read-only",
                     vmi->drv.name);
    while (!rc && moved < len) {
        uint64_t at = pa + moved;
        if (at < pa) {
            rc = tv_fail(vmi, TINYVMI_ERANGE,
                         "physical range at 0x%llx wraps past 2^64",
                         (unsigned long long)pa);
            break;
        }
        const tv_range_t *r = tv_range_find(vmi, at);
        if (!r) {
            rc = tv_fail(vmi, TINYVMI_EUNMAPPED,
                         "physical address 0x%llx is not backed by RAM in "
                         "this %s target", (unsigned long long)at,
                         vmi->drv.name);
            break;
        }
        uint64_t left = r->size - (at - r->start);
        size_t chunk = len - moved < left ? len - moved : (size_t)left;
        uint64_t off = r->offset + (at - r->start);
        uint8_t *p = (uint8_t *)buf + moved;
        /* Cleared so a failure shows whether the driver said why; an
         * older failure's status comes back if this one succeeds. */
        int before = vmi->last_status;
        vmi->last_status = TINYVMI_OK;
        rc = write ? vmi->drv.mem->write(vmi->drv.ctx, at, off, p, chunk)
                   : vmi->drv.mem->read(vmi->drv.ctx, at, off, p, chunk);
        if (!rc)
            vmi->last_status = before;
        if (rc) {
            if (vmi->last_status == TINYVMI_OK)
                tv_fail(vmi, rc, "%s: %s at physical 0x%llx",
                        vmi->drv.name, tinyvmi_strerror(rc),
                        (unsigned long long)at);
            break;
        }
        moved += chunk;
    }
    if (write && moved)
        tv_cache_flush(&vmi->v2p); /* page tables may have changed */
    if (done)
        *done = moved;
    return rc;
}

int tv_read_pa(struct vmi_instance *vmi, uint64_t pa, void *buf, size_t len,
               size_t *done)
{
    return xfer_pa(vmi, pa, buf, len, done, false);
}

int tv_write_pa(struct vmi_instance *vmi, uint64_t pa, const void *buf,
                size_t len, size_t *done)
{
    return xfer_pa(vmi, pa, (void *)(uintptr_t)buf, len, done, true);
}

int tv_walk_dtb(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                uint64_t dtb, uint64_t va, tv_walk_t *w)
{
    /* The kernel's root with ARM's TTBR0 known: each range its own. */
    if (vmi->kdtb_lo && (dtb & fmt->root_mask) == vmi->kdtb && fmt->hi &&
        fmt->hi != fmt)
        return tv_pt_walk_pair(vmi, fmt, vmi->kdtb_lo, dtb, va, w);
    return tv_pt_walk(vmi, fmt, dtb, va, w);
}

int tv_translate(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                 uint64_t dtb, uint64_t va, uint64_t *pa, uint64_t *span)
{
    bool cacheable = !fmt || fmt == vmi->pt;
    if (!fmt)
        fmt = vmi->pt;
    if (!fmt)
        return tv_fail(vmi, TINYVMI_ESTATE,
                       "paging is not set up (page mode unknown): cannot "
                       "translate 0x%llx", (unsigned long long)va);
    uint64_t p, s;
    dtb &= fmt->root_mask; /* PCID and flag bits are not part of the root */
    if (cacheable && tv_cache_lookup(&vmi->v2p, dtb, va, &p, &s)) {
        *pa = p;
        if (span)
            *span = s;
        return TINYVMI_OK;
    }
    tv_walk_t w;
    int rc = tv_walk_dtb(vmi, fmt, dtb, va, &w);
    if (rc)
        return rc;
    s = w.page_size - (va & (w.page_size - 1));
    if (cacheable)
        tv_cache_insert(&vmi->v2p, dtb, va, w.pa, s);
    *pa = w.pa;
    if (span)
        *span = s;
    return TINYVMI_OK;
}

static int xfer_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                   uint64_t dtb, uint64_t va, void *buf, size_t len,
                   size_t *done, bool write)
{
    size_t moved = 0;
    int rc = TINYVMI_OK;
    while (moved < len) {
        uint64_t pa, span;
        if (va + moved < va) {
            rc = tv_fail(vmi, TINYVMI_ERANGE,
                         "virtual range at 0x%llx wraps past 2^64",
                         (unsigned long long)va);
            break;
        }
        rc = tv_translate(vmi, fmt, dtb, va + moved, &pa, &span);
        if (rc)
            break;
        size_t chunk = len - moved < span ? len - moved : (size_t)span;
        size_t got = 0;
        uint8_t *p = (uint8_t *)buf + moved;
        rc = write ? tv_write_pa(vmi, pa, p, chunk, &got)
                   : tv_read_pa(vmi, pa, p, chunk, &got);
        moved += got;
        if (rc)
            break;
    }
    if (done)
        *done = moved;
    return rc;
}

int tv_read_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
               uint64_t dtb, uint64_t va, void *buf, size_t len, size_t *done)
{
    return xfer_va(vmi, fmt, dtb, va, buf, len, done, false);
}

int tv_write_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                uint64_t dtb, uint64_t va, const void *buf, size_t len,
                size_t *done)
{
    return xfer_va(vmi, fmt, dtb, va, (void *)(uintptr_t)buf, len, done,
                   true);
}
