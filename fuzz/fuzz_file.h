/*
 * Shared by the file-driver fuzz targets: parse a buffer as a dump and, if
 * it opens, touch everything it claims to have (every range's ends through
 * the core's physical reads, every register of every vCPU).
 */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H

#include <stdlib.h>
#include <string.h>

#include "core/tv.h"
#include "driver/file/file.h"

static void *fuzz_alloc(void *ctx, void *ptr, size_t old, size_t size)
{
    (void)ctx;
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

/* One instance for the whole run: creating one per input would dominate. */
static struct vmi_instance *fuzz_vmi(void)
{
    static struct vmi_instance *vmi;
    tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                             .alloc = fuzz_alloc,
                             .log_level = -1};
    if (!vmi && tv_instance_new(&hooks, &vmi) != 0)
        abort();
    vmi->last_status = 0;
    vmi->last_error[0] = '\0';
    return vmi;
}

static void fuzz_touch(struct vmi_instance *vmi, const tv_driver_t *d)
{
    uint8_t buf[64];
    for (size_t i = 0; i < d->nranges; i++) {
        const tv_range_t *r = &d->ranges[i];
        size_t n = r->size < sizeof buf ? (size_t)r->size : sizeof buf;
        if (tv_read_pa(vmi, r->start, buf, n, NULL) ||
            tv_read_pa(vmi, r->start + r->size - n, buf, n, NULL))
            abort(); /* a range the driver gave must be readable */
        (void)tv_read_pa(vmi, r->start + r->size - 1, buf, 2, NULL);
    }
    unsigned ncpu = d->vcpu ? d->vcpu->count(d->ctx) : 0;
    for (unsigned c = 0; c < ncpu && c < 64; c++)
        for (reg_t reg = 0; reg < TINYVMI_NREGS; reg++) {
            uint64_t v;
            (void)d->vcpu->get_reg(d->ctx, c, reg, &v);
        }
}

/* Parses data (with magic, if not NULL, over its first bytes). */
static int fuzz_file(const uint8_t *data, size_t size, const char *magic)
{
    uint8_t *copy = malloc(size ? size : 1); /* exact size for ASan */
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    size_t mlen = magic ? strlen(magic) : 0;
    if (mlen && size >= mlen)
        memcpy(copy, magic, mlen);
    struct vmi_instance *vmi = fuzz_vmi();
    tv_driver_t d;
    if (tv_file_open_mem(vmi, copy, size, &d) == 0) {
        if (tv_instance_attach(vmi, &d) == 0) {
            fuzz_touch(vmi, &d);
            vmi->have_drv = false;
        }
        d.close(d.ctx);
    } else if (!vmi->last_error[0]) {
        abort(); /* every failure must say why */
    }
    free(copy);
    return 0;
}

#endif
