/*
 * Starting the OS layer (vmi_init_os): the config entry, then the profile
 * it names (ISF, Rekall or System.map) or none at all, then the layer.
 * And the OS calls that hand malloc'd strings to the caller.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "core/tv.h"
#include "hosted/config_host.h"
#include "profile/profile.h"
#include "profile/symtab.h"

#define TV_API __attribute__((visibility("default")))
#define MAX_OFFSETS 32

/* Config keys that are offsets the Linux layer can take instead of a
 * profile's types. */
static const char *const linux_offset_keys[] = {
    "linux_tasks", "linux_mm", "linux_pid", "linux_name", "linux_pgd", NULL,
};

/* A System.map: "ADDRESS TYPE NAME" lines. */
static int load_sysmap(struct vmi_instance *vmi, const char *path,
                       tv_symtab_t **out)
{
    char err[256] = "";
    tv_pctx_t c = {.hooks = &vmi->hooks, .err = err, .errlen = sizeof err};
    FILE *f = fopen(path, "r");
    if (!f)
        return tv_fail(vmi, TINYVMI_ENOENT, "sysmap %s: %s", path,
                       strerror(errno));
    tv_symtab_t *t = NULL;
    int rc = tv_symtab_new(&c, &t);
    char line[1024];
    unsigned long lineno = 0, n = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char type, name[512];
        uint64_t addr;
        if (sscanf(line, "%" SCNx64 " %c %511s", &addr, &type, name) != 3) {
            rc = tv_fail(vmi, TINYVMI_EFORMAT,
                         "sysmap %s, line %lu: expected 'ADDRESS TYPE NAME'",
                         path, lineno);
            break;
        }
        rc = tv_symtab_add_symbol(t, name, strlen(name), addr, type);
        n++;
    }
    fclose(f);
    if (!rc && n == 0)
        rc = tv_fail(vmi, TINYVMI_EFORMAT, "sysmap %s has no symbols", path);
    if (!rc) {
        tv_symtab_set_meta(t, "source", "sysmap", 6);
        rc = tv_symtab_finish(t);
    }
    if (rc) {
        tv_symtab_free(t);
        return vmi->last_status == rc ? rc : tv_fail(vmi, rc, "sysmap %s: %s",
                                                     path, err);
    }
    *out = t;
    return TINYVMI_OK;
}

static int load_profile(struct vmi_instance *vmi, const char *path,
                        tv_symtab_t **out)
{
    char err[512] = "";
    tv_pctx_t c = {.hooks = &vmi->hooks, .err = err, .errlen = sizeof err};
    int rc = tv_profile_load_file(&c, path, out);
    if (rc)
        return tv_fail(vmi, rc, "%s", err[0] ? err : "profile load failed");
    return TINYVMI_OK;
}

/* Offsets the entry gives, as hints for the OS layer. */
static void entry_hints(const tv_conf_entry_t *e, tv_os_hints_t *h,
                        const char **names, uint64_t *values)
{
    size_t n = 0;
    for (size_t i = 0; e && linux_offset_keys[i]; i++)
        if (tv_conf_u64(e, linux_offset_keys[i], &values[n]))
            names[n++] = linux_offset_keys[i];
    names[n] = NULL;
    h->offset_names = names;
    h->offset_values = values;
    h->os = e ? tv_conf_ostype(e) : VMI_OS_UNKNOWN;
}

static os_t os_fail(vmi_init_error_t why, vmi_init_error_t *error)
{
    if (error)
        *error = why;
    return VMI_OS_UNKNOWN;
}

TV_API os_t vmi_init_os(vmi_instance_t vmi, vmi_config_t config_mode,
                        void *config, vmi_init_error_t *error)
{
    tv_conf_t *conf = NULL;
    const tv_conf_entry_t *e = NULL;
    tv_symtab_t *tab = NULL;
    const char *names[MAX_OFFSETS + 1];
    uint64_t values[MAX_OFFSETS];
    tv_os_hints_t hints = {0};
    const char *profile = NULL;
    vmi_init_error_t why = VMI_INIT_ERROR_NONE;
    int rc;

    if (error)
        *error = VMI_INIT_ERROR_NONE;
    if (!vmi)
        return os_fail(VMI_INIT_ERROR_OS, error);

    if (config_mode == VMI_CONFIG_JSON_PATH) {
        profile = config;
    } else if (config || config_mode == VMI_CONFIG_GLOBAL_FILE_ENTRY) {
        char err[512] = "";
        rc = tv_config_load(&vmi->hooks, config_mode, config, vmi->name,
                            &conf, &e, &why, err, sizeof err);
        if (rc == TINYVMI_ENOENT && config_mode == VMI_CONFIG_GLOBAL_FILE_ENTRY) {
            /* No libvmi.conf, or no entry for this domain: TinyVMI goes on
             * without one (LibVMI would stop here). */
            tv_log(vmi, 2, "no config: %s; reading the kernel's own BTF "
                   "and kallsyms", err);
        } else if (rc) {
            tv_fail(vmi, rc, "config: %s", err);
            return os_fail(why ? why : VMI_INIT_ERROR_NO_CONFIG, error);
        }
        for (size_t i = 0; conf && i < tv_conf_nwarnings(conf); i++)
            if (tv_conf_warning(conf, i))
                tv_log(vmi, 1, "config: %s", tv_conf_warning(conf, i));
        if (e) {
            profile = tv_conf_str(e, "volatility_ist");
            if (!profile)
                profile = tv_conf_str(e, "rekall_profile");
        }
    }
    entry_hints(e, &hints, names, values);
    if (hints.os != VMI_OS_UNKNOWN && hints.os != VMI_OS_LINUX) {
        tv_fail(vmi, TINYVMI_ENOTSUP, "ostype %s is not supported yet",
                hints.os == VMI_OS_WINDOWS ? "Windows" : "FreeBSD");
        tv_conf_free(conf);
        return os_fail(VMI_INIT_ERROR_OS, error);
    }

    rc = TINYVMI_OK;
    if (profile && *profile)
        rc = load_profile(vmi, profile, &tab);
    else if (e && tv_conf_str(e, "sysmap"))
        rc = load_sysmap(vmi, tv_conf_str(e, "sysmap"), &tab);
    tv_conf_free(conf);
    if (rc)
        return os_fail(VMI_INIT_ERROR_OS, error);

    if (tv_linux_init(vmi, tab, &hints))
        return os_fail(VMI_INIT_ERROR_OS, error);
    return vmi->os;
}

/* ---- strings for the caller --------------------------------------------------- */

TV_API const char *vmi_translate_v2ksym(vmi_instance_t vmi,
                                        const access_context_t *ctx,
                                        addr_t va)
{
    const char *name;
    uint64_t off;
    (void)ctx;
    if (!vmi || !vmi->symtab) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ESTATE, "no symbol table");
        return NULL;
    }
    /* A symbol covers at most 16 MiB past its start: beyond that the
     * address is in no symbol's reach (e.g. the direct map). */
    if (!tv_symtab_addr(vmi->symtab, tv_os_unlive(vmi, va), 16u << 20,
                        &name, &off)) {
        tv_fail(vmi, TINYVMI_ENOENT, "no kernel symbol at or below 0x%" PRIx64
                " within 16 MiB", va);
        return NULL;
    }
    char *s = NULL;
    if (asprintf(&s, "%s+0x%" PRIx64, name, off) < 0) {
        tv_fail(vmi, TINYVMI_ENOMEM, "out of memory");
        return NULL;
    }
    return s;
}

TV_API const char *vmi_translate_v2sym(vmi_instance_t vmi,
                                       const access_context_t *ctx, addr_t va)
{
    const char *name;
    uint64_t off;
    (void)ctx;
    if (!vmi || !vmi->symtab ||
        !tv_symtab_addr(vmi->symtab, tv_os_unlive(vmi, va), 0, &name,
                        &off) ||
        off) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ENOENT, "no kernel symbol at 0x%" PRIx64, va);
        return NULL;
    }
    return strdup(name);
}

TV_API char *vmi_read_str_ksym(vmi_instance_t vmi, const char *sym)
{
    addr_t va;
    if (vmi_translate_ksym2v(vmi, sym, &va) != VMI_SUCCESS)
        return NULL;
    return vmi_read_str_va(vmi, va, 0);
}
