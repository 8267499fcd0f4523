/*
 * Hosted entry points: opening targets (drivers are hosted code), default
 * allocator and log hooks, and the calls that hand malloc'd memory to the
 * caller.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/tv.h"
#include "driver/file/file.h"
#include "driver/qemu/qemu.h"
#include "driver/xen/xen.h"

#define TV_API __attribute__((visibility("default")))
#define TV_STR_MAX (1u << 20)

static void *default_alloc(void *ctx, void *ptr, size_t old, size_t size)
{
    (void)ctx;
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static void default_log(void *ctx, int level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)ctx;
    fprintf(stderr, "tinyvmi %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level],
            msg);
}

/* TINYVMI_LOG=0..3 turns on logging to stderr. */
static tinyvmi_hooks_t default_hooks(void)
{
    tinyvmi_hooks_t h = {.version = TINYVMI_HOOKS_VERSION,
                         .alloc = default_alloc,
                         .log = default_log,
                         .log_level = -1};
    const char *env = getenv("TINYVMI_LOG");
    if (env && *env)
        h.log_level = atoi(env);
    return h;
}

static const tinyvmi_hooks_t *hooks_from(const vmi_init_data_t *data)
{
    for (uint64_t i = 0; data && i < data->count; i++) {
        const tinyvmi_hooks_t *h = data->entry[i].data;
        if (data->entry[i].type == TINYVMI_INIT_DATA_HOOKS && h &&
            h->version == TINYVMI_HOOKS_VERSION && h->alloc)
            return h;
    }
    return NULL;
}

/* The last failure of an instance that is being torn down is kept here for
 * the thread that called vmi_init, so tinyvmi_last_error(NULL)-style
 * reporting has something to say (see tinyvmi_init_error()). */
static _Thread_local char init_error[TV_ERRMSG_MAX];

TV_API const char *tinyvmi_init_error(void)
{
    return init_error;
}

static status_t init_fail(vmi_instance_t vmi, vmi_init_error_t why,
                          vmi_init_error_t *error)
{
    if (error)
        *error = why;
    snprintf(init_error, sizeof init_error, "%s",
             vmi && vmi->last_status ? vmi->last_error : "initialisation failed");
    tv_instance_free(vmi);
    return VMI_FAILURE;
}

static vmi_init_error_t open_file(vmi_instance_t vmi, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        tv_fail(vmi, TINYVMI_ENOENT, "%s: %s", path, strerror(errno));
        return VMI_INIT_ERROR_VM_NOT_FOUND;
    }
    tv_driver_t drv;
    if (tv_file_open(vmi, path, &drv))
        return VMI_INIT_ERROR_DRIVER;
    if (tv_instance_attach(vmi, &drv)) {
        if (drv.close)
            drv.close(drv.ctx);
        return VMI_INIT_ERROR_DRIVER;
    }
    return VMI_INIT_ERROR_NONE;
}

/* "qemu:QMP_SOCKET[,gdb=unix:PATH|tcp:HOST:PORT]", or (VMI_KVM as LibVMI
 * takes it) a domain name with the QMP socket in the init data. */
static vmi_init_error_t open_qemu(vmi_instance_t vmi, const char *domain,
                                  const vmi_init_data_t *data)
{
    char qmp[4096] = "", gdb[300] = "";
    for (uint64_t i = 0; data && i < data->count; i++)
        if (data->entry[i].type == VMI_INIT_DATA_KVMI_SOCKET &&
            data->entry[i].data)
            snprintf(qmp, sizeof qmp, "%s", (const char *)data->entry[i].data);
    if (!qmp[0] && !strncmp(domain, "qemu:", 5)) {
        const char *spec = domain + 5, *g = strstr(spec, ",gdb=");
        size_t n = g ? (size_t)(g - spec) : strlen(spec);
        snprintf(qmp, sizeof qmp, "%.*s", (int)n, spec);
        if (g)
            snprintf(gdb, sizeof gdb, "%s", g + 5);
    }
    if (!qmp[0]) {
        tv_fail(vmi, TINYVMI_EINVAL, "a QEMU target needs its QMP socket: "
                "qemu:PATH, or VMI_INIT_DATA_KVMI_SOCKET in the init data");
        return VMI_INIT_ERROR_VM_NOT_FOUND;
    }
    tv_driver_t drv;
    if (tv_qemu_open(vmi, qmp, gdb[0] ? gdb : NULL, &drv))
        return vmi->last_status == TINYVMI_ENOENT ? VMI_INIT_ERROR_VM_NOT_FOUND
                                                   : VMI_INIT_ERROR_DRIVER;
    if (tv_instance_attach(vmi, &drv)) {
        drv.close(drv.ctx);
        return VMI_INIT_ERROR_DRIVER;
    }
    return VMI_INIT_ERROR_NONE;
}

/* "xen:NAME" or "xen:ID", a bare domain name, or (VMI_INIT_DOMAINID) a
 * pointer to the uint64_t domain id, as LibVMI takes them. */
static vmi_init_error_t open_xen(vmi_instance_t vmi, const void *domain,
                                 uint64_t init_flags)
{
    bool by_id = (init_flags & VMI_INIT_DOMAINID) != 0;
    uint64_t id = 0;
    const char *name = by_id ? "" : domain;
    if (by_id) {
        id = *(const uint64_t *)domain;
    } else {
        if (!strncmp(name, "xen:", 4))
            name += 4;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(name, &end, 10);
        if (name[0] >= '0' && name[0] <= '9' && !*end && !errno) {
            by_id = true;
            id = n;
        }
    }
    if (by_id && id >= 0x7ff0) {
        tv_fail(vmi, TINYVMI_EINVAL, "%llu is not a Xen domain id",
                (unsigned long long)id);
        return VMI_INIT_ERROR_VM_NOT_FOUND;
    }
    if (!by_id && !name[0]) {
        tv_fail(vmi, TINYVMI_EINVAL, "a Xen target needs a domain: xen:NAME "
                "or xen:ID");
        return VMI_INIT_ERROR_VM_NOT_FOUND;
    }
    if (by_id)
        snprintf(vmi->name, sizeof vmi->name, "xen:%llu",
                 (unsigned long long)id);
    else
        snprintf(vmi->name, sizeof vmi->name, "%s", name);
    tv_driver_t drv;
    if (tv_xen_open(vmi, name, by_id, (uint32_t)id, &drv))
        return vmi->last_status == TINYVMI_ENOENT
                   ? VMI_INIT_ERROR_VM_NOT_FOUND
                   : VMI_INIT_ERROR_DRIVER_NOT_DETECTED;
    if (tv_instance_attach(vmi, &drv)) {
        drv.close(drv.ctx);
        return VMI_INIT_ERROR_DRIVER;
    }
    return VMI_INIT_ERROR_NONE;
}

TV_API status_t vmi_init(vmi_instance_t *out, vmi_mode_t mode,
                         const void *domain, uint64_t init_flags,
                         vmi_init_data_t *init_data, vmi_init_error_t *error)
{
    if (error)
        *error = VMI_INIT_ERROR_NONE;
    if (!out)
        return VMI_FAILURE;
    *out = NULL;
    tinyvmi_hooks_t defaults = default_hooks();
    const tinyvmi_hooks_t *hooks = hooks_from(init_data);
    vmi_instance_t vmi;
    if (tv_instance_new(hooks ? hooks : &defaults, &vmi))
        return init_fail(NULL, VMI_INIT_ERROR_DRIVER, error);
    vmi->mode = mode;
    vmi_init_error_t why = VMI_INIT_ERROR_NONE;
    if (!domain) {
        tv_fail(vmi, TINYVMI_EINVAL, "no domain or file given");
        why = VMI_INIT_ERROR_VM_NOT_FOUND;
    } else if (mode == VMI_FILE) {
        if (init_flags & VMI_INIT_DOMAINID) {
            tv_fail(vmi, TINYVMI_EINVAL, "file targets are named by path "
                    "(VMI_INIT_DOMAINNAME), not by id");
            why = VMI_INIT_ERROR_VM_NOT_FOUND;
        } else {
            snprintf(vmi->name, sizeof vmi->name, "%s", (const char *)domain);
            why = open_file(vmi, domain);
        }
    } else if (mode == VMI_KVM) {
        snprintf(vmi->name, sizeof vmi->name, "%s", (const char *)domain);
        why = open_qemu(vmi, domain, init_data);
    } else if (mode == VMI_XEN) {
        why = open_xen(vmi, domain, init_flags);
    } else {
        tv_fail(vmi, TINYVMI_ENOTSUP, "%s targets are not supported yet",
                "unknown");
        why = VMI_INIT_ERROR_DRIVER_NOT_DETECTED;
    }
    if (why == VMI_INIT_ERROR_NONE && (init_flags & VMI_INIT_EVENTS) &&
        !vmi->drv.ev) {
        tv_fail(vmi, TINYVMI_ENOTSUP, "%s targets have no events",
                vmi->drv.name);
        why = VMI_INIT_ERROR_EVENTS;
    }
    if (why != VMI_INIT_ERROR_NONE)
        return init_fail(vmi, why, error);
    *out = vmi;
    return VMI_SUCCESS;
}

TV_API status_t vmi_init_complete(vmi_instance_t *out, const void *domain,
                                  uint64_t init_flags,
                                  vmi_init_data_t *init_data,
                                  vmi_config_t config_mode, void *config,
                                  vmi_init_error_t *error)
{
    vmi_mode_t mode;
    if (!out)
        return VMI_FAILURE;
    *out = NULL;
    if (vmi_get_access_mode(NULL, domain, init_flags, init_data, &mode) !=
        VMI_SUCCESS) {
        if (error)
            *error = VMI_INIT_ERROR_DRIVER_NOT_DETECTED;
        return VMI_FAILURE;
    }
    vmi_instance_t vmi;
    if (vmi_init(&vmi, mode, domain, init_flags, init_data, error) !=
        VMI_SUCCESS)
        return VMI_FAILURE;
    /* A dump without registers can still be introspected: the OS layer
     * finds the kernel's page tables itself. */
    page_mode_t pm = vmi_init_paging(vmi, 0);
    vmi_init_error_t why = VMI_INIT_ERROR_NONE;
    if (vmi_init_os(vmi, config_mode, config, &why) == VMI_OS_UNKNOWN)
        return init_fail(vmi, pm == VMI_PM_UNKNOWN && why == VMI_INIT_ERROR_OS
                                  ? VMI_INIT_ERROR_PAGING
                                  : why,
                         error);
    *out = vmi;
    return VMI_SUCCESS;
}

TV_API status_t vmi_destroy(vmi_instance_t vmi)
{
    tv_instance_free(vmi);
    return VMI_SUCCESS;
}

TV_API status_t vmi_get_access_mode(vmi_instance_t vmi, const void *domain,
                                    uint64_t init_flags,
                                    vmi_init_data_t *init_data,
                                    vmi_mode_t *mode)
{
    (void)init_data;
    if (vmi) {
        *mode = vmi->mode;
        return VMI_SUCCESS;
    }
    struct stat sb;
    if (!domain || !mode)
        return VMI_FAILURE;
    if (init_flags & VMI_INIT_DOMAINID) {
        *mode = VMI_XEN; /* only Xen names domains by id */
        return VMI_SUCCESS;
    }
    for (uint64_t i = 0; init_data && i < init_data->count; i++)
        if (init_data->entry[i].type == VMI_INIT_DATA_KVMI_SOCKET) {
            *mode = VMI_KVM;
            return VMI_SUCCESS;
        }
    if (!strncmp(domain, "qemu:", 5)) {
        *mode = VMI_KVM;
        return VMI_SUCCESS;
    }
    if (!strncmp(domain, "xen:", 4)) {
        *mode = VMI_XEN;
        return VMI_SUCCESS;
    }
    if (stat(domain, &sb) == 0) {
        *mode = VMI_FILE;
        return VMI_SUCCESS;
    }
    /* not a file: in a Xen dom0, a domain name */
    if (!strchr(domain, '/') && stat("/dev/xen/privcmd", &sb) == 0) {
        *mode = VMI_XEN;
        return VMI_SUCCESS;
    }
    snprintf(init_error, sizeof init_error, "%s: %s", (const char *)domain,
             strerror(errno));
    return VMI_FAILURE;
}

/* ---- Strings --------------------------------------------------------------- */

/* The guest's name (a dump's path), malloc'd for the caller to free. */
TV_API char *vmi_get_name(vmi_instance_t vmi)
{
    return vmi ? strdup(vmi->name) : NULL;
}


/* Reads a NUL-terminated string a page-bounded chunk at a time, up to
 * TV_STR_MAX bytes; a string that does not end by then is refused. */
TV_API char *vmi_read_str(vmi_instance_t vmi, const access_context_t *ctx)
{
    if (!vmi || !ctx)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    access_context_t c = *ctx;
    while (len < TV_STR_MAX) {
        size_t chunk = 0x1000 - (size_t)(c.addr & 0xfff);
        char *nb = realloc(buf, len + chunk + 1);
        if (!nb) {
            tv_fail(vmi, TINYVMI_ENOMEM, "out of memory reading a string");
            break;
        }
        buf = nb;
        size_t got = 0;
        status_t s = vmi_read(vmi, &c, chunk, buf + len, &got);
        char *nul = memchr(buf + len, '\0', got);
        if (nul)
            return buf;
        len += got;
        if (s != VMI_SUCCESS)
            break; /* no NUL before unreadable memory: not a whole string */
        c.addr += chunk;
    }
    if (len >= TV_STR_MAX)
        tv_fail(vmi, TINYVMI_ERANGE, "string at 0x%llx has no NUL in %u bytes",
                (unsigned long long)ctx->addr, TV_STR_MAX);
    free(buf);
    return NULL;
}

TV_API char *vmi_read_str_pa(vmi_instance_t vmi, addr_t paddr)
{
    access_context_t c = {.version = ACCESS_CONTEXT_VERSION,
                          .tm = VMI_TM_NONE, .addr = paddr};
    return vmi_read_str(vmi, &c);
}

TV_API char *vmi_read_str_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid)
{
    access_context_t c = {.version = ACCESS_CONTEXT_VERSION,
                          .tm = VMI_TM_PROCESS_PID, .addr = vaddr, .pid = pid};
    return vmi_read_str(vmi, &c);
}
