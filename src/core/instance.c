/*
 * The instance: hooks, the attached driver, errors.  All state lives here;
 * the core has no globals.
 */
#include "core/tv.h"

#define TV_CACHE_SLOTS 8192

/* ---- Status codes ------------------------------------------------------ */

typedef struct err_desc {
    int code;
    const char *name;
    const char *text;
} err_desc_t;

static const err_desc_t errors[] = {
#define TV_ERR_ROW_(name, value, text) {value, #name, text},
    TINYVMI_ERRORS(TV_ERR_ROW_)
#undef TV_ERR_ROW_
};

static const err_desc_t *err_lookup(int status)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(errors); i++)
        if (errors[i].code == status)
            return &errors[i];
    return NULL;
}

const char *tinyvmi_strerror(int status)
{
    const err_desc_t *e = err_lookup(status);
    return e ? e->text : "unknown error";
}

const char *tinyvmi_err_name(int status)
{
    const err_desc_t *e = err_lookup(status);
    return e ? e->name : "EUNKNOWN";
}

int tinyvmi_last_status(vmi_instance_t vmi)
{
    return vmi ? vmi->last_status : TINYVMI_EINVAL;
}

const char *tinyvmi_last_error(vmi_instance_t vmi)
{
    if (!vmi)
        return "no instance";
    return vmi->last_status ? vmi->last_error : "";
}

/* ---- Errors and logging -------------------------------------------------- */

int tv_fail(struct vmi_instance *vmi, int status, const char *fmt, ...)
{
    if (!vmi)
        return status;
    vmi->last_status = status;
    if (vmi->quiet) /* a scan that expects most tries to fail */
        return status;
    /* Format aside first: callers may wrap the previous reason by passing
     * vmi->last_error itself as an argument. */
    char msg[TV_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    tv_vfmt(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tv_memcpy(vmi->last_error, msg, sizeof msg);
    vmi->last_status = status;
    if (vmi->hooks.log && vmi->hooks.log_level >= 3)
        vmi->hooks.log(vmi->hooks.log_ctx, 3, vmi->last_error);
    return status;
}

void tv_log(struct vmi_instance *vmi, int level, const char *fmt, ...)
{
    if (!vmi || !vmi->hooks.log || level > vmi->hooks.log_level)
        return;
    char msg[TV_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    tv_vfmt(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vmi->hooks.log(vmi->hooks.log_ctx, level, msg);
}

/* ---- Allocation ---------------------------------------------------------- */

void *tv_alloc(struct vmi_instance *vmi, size_t size)
{
    void *p = vmi->hooks.alloc(vmi->hooks.alloc_ctx, NULL, 0, size);
    if (!p)
        tv_fail(vmi, TINYVMI_ENOMEM, "out of memory allocating %zu bytes",
                size);
    return p;
}

void *tv_calloc(struct vmi_instance *vmi, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        tv_fail(vmi, TINYVMI_ENOMEM, "allocation of %zu x %zu overflows", n,
                size);
        return NULL;
    }
    void *p = tv_alloc(vmi, n * size);
    if (p)
        tv_memset(p, 0, n * size);
    return p;
}

void tv_free(struct vmi_instance *vmi, void *p, size_t size)
{
    if (p)
        vmi->hooks.alloc(vmi->hooks.alloc_ctx, p, size, 0);
}

/* ---- Lifecycle ------------------------------------------------------------- */

int tv_instance_new(const tinyvmi_hooks_t *hooks, struct vmi_instance **out)
{
    *out = NULL;
    if (!hooks || !hooks->alloc)
        return TINYVMI_EINVAL;
    struct vmi_instance *vmi =
        hooks->alloc(hooks->alloc_ctx, NULL, 0, sizeof *vmi);
    if (!vmi)
        return TINYVMI_ENOMEM;
    tv_memset(vmi, 0, sizeof *vmi);
    vmi->hooks = *hooks;
    vmi->page_mode = VMI_PM_UNKNOWN;
    int rc = tv_cache_init(vmi, TV_CACHE_SLOTS);
    if (rc) {
        hooks->alloc(hooks->alloc_ctx, vmi, sizeof *vmi, 0);
        return rc;
    }
    *out = vmi;
    return TINYVMI_OK;
}

int tv_instance_attach(struct vmi_instance *vmi, const tv_driver_t *drv)
{
    if (!drv->mem || !drv->mem->read)
        return tv_fail(vmi, TINYVMI_EINVAL,
                       "driver %s has no physical memory access", drv->name);
    uint64_t total = 0, end = 0;
    for (size_t i = 0; i < drv->nranges; i++) {
        const tv_range_t *r = &drv->ranges[i];
        if (r->size == 0 || r->start + r->size < r->start)
            return tv_fail(vmi, TINYVMI_EFORMAT,
                           "%s: RAM range %zu [0x%llx, +0x%llx) is empty or "
                           "wraps", drv->name, i,
                           (unsigned long long)r->start,
                           (unsigned long long)r->size);
        if (i && r->start < end)
            return tv_fail(vmi, TINYVMI_EFORMAT,
                           "%s: RAM range %zu at 0x%llx overlaps or is out "
                           "of order", drv->name, i,
                           (unsigned long long)r->start);
        end = r->start + r->size;
        total += r->size;
    }
    vmi->drv = *drv;
    vmi->have_drv = true;
    vmi->memsize = total;
    vmi->max_pa = end;
    return TINYVMI_OK;
}

void tv_instance_free(struct vmi_instance *vmi)
{
    if (!vmi)
        return;
    tv_os_fini(vmi);
    tv_events_free(vmi);
    if (vmi->have_drv && vmi->drv.close)
        vmi->drv.close(vmi->drv.ctx);
    tv_cache_free(vmi);
    tinyvmi_alloc_fn alloc = vmi->hooks.alloc;
    void *ctx = vmi->hooks.alloc_ctx;
    alloc(ctx, vmi, sizeof *vmi, 0);
}
