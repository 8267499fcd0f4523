/*
 * Starting the OS layer (vmi_init_os): the config entry, then the profile
 * it names (ISF, Rekall or System.map) or none at all, then the layer.
 * And the OS calls that hand malloc'd strings to the caller.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/conf.h"
#include "core/tv.h"
#include "driver/file/crashdump.h"
#include "hosted/config_host.h"
#include "os/windows/win.h"
#include "profile/profile.h"
#include "profile/symtab.h"

#define TV_API __attribute__((visibility("default")))
#define MAX_OFFSETS 32

/* Config keys that are offsets the Linux layer can take instead of a
 * profile's types. */
static const char *const linux_offset_keys[] = {
    "linux_tasks", "linux_mm", "linux_pid", "linux_name", "linux_pgd",
    "win_tasks", "win_pdbase", "win_pid", "win_pname", NULL,
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

/* ---- Windows: what is known before the layer starts ---------------------------- */

/* snprintf whose truncation is accepted (paths and reasons shown to
 * people; a cut one still says enough). */
static void win_fmt(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void win_fmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int win_dump_read(void *arg, uint64_t va, void *buf, size_t len)
{
    struct vmi_instance *vmi = arg;
    return tv_crashdump_read_va(vmi, &vmi->drv, va, buf, len, NULL);
}

static int win_paged_read(void *arg, uint64_t va, void *buf, size_t len)
{
    struct vmi_instance *vmi = arg;
    if (!vmi->pt)
        return tv_fail(vmi, TINYVMI_ESTATE, "no page tables");
    return tv_read_va(vmi, NULL, vmi->kdtb, va, buf, len, NULL);
}

/* Bytes of the dump file in place (the triage dump's copies). */
static const uint8_t *win_file_bytes(struct vmi_instance *vmi, uint64_t off,
                                     size_t *len)
{
    const tv_mem_ops_t *m = vmi->drv.mem;
    if (!off || !m || !m->map)
        return NULL;
    /* the copy's size is not recorded: as much of 16 KiB as the file has */
    for (size_t n = 0x4000; n >= 0x100; n /= 2) {
        const void *p = m->map(vmi->drv.ctx, off, n);
        if (p) {
            *len = n;
            return p;
        }
    }
    return NULL;
}

/* The dump's KDBG: its KernBase and list heads, when it reads and parses
 * (Windows 8+ x64 keeps it encoded in memory; dumps hold it decoded). */
static void win_kdbg(struct vmi_instance *vmi, tv_win_start_t *s)
{
    uint8_t buf[WIN_KDBG_READ];
    win_kdbg_t k;
    char err[256] = "";
    win_read_fn rd = s->read_va ? s->read_va : win_paged_read;
    if (!s->kdbg || rd(vmi, s->kdbg, buf, sizeof buf)) {
        tv_log(vmi, 2, "windows: no KDBG to read at 0x%" PRIx64, s->kdbg);
        return;
    }
    if (win_kdbg_parse(buf, sizeof buf, s->ptr_size * 8, s->kdbg, &k, err,
                       sizeof err)) {
        tv_log(vmi, 1, "windows: the KDBG at 0x%" PRIx64 " does not parse: "
               "%s", s->kdbg, err);
        return;
    }
    s->kernel_base = s->kernel_base ? s->kernel_base : k.kern_base;
    s->kdbg_process_head = k.ps_active_process_head;
    s->kdbg_module_list = k.ps_loaded_module_list;
}

/* The triage dump's driver list and string pool, in place (the driver
 * checked both spans against the file). */
static void win_triage_drivers(struct vmi_instance *vmi,
                               const tv_crashdump_t *cd, tv_win_start_t *s)
{
    const tv_mem_ops_t *m = vmi->drv.mem;
    const tv_cd_triage_t *t = &cd->triage;
    if (!m || !m->map || !t->driver_list.offset || !t->string_pool.offset)
        return;
    s->drivers = m->map(vmi->drv.ctx, t->driver_list.offset,
                        (size_t)t->driver_list.size);
    s->pool = m->map(vmi->drv.ctx, t->string_pool.offset,
                     (size_t)t->string_pool.size);
    if (!s->drivers || !s->pool) {
        s->drivers = s->pool = NULL;
        return;
    }
    s->ndrivers = t->driver_count;
    s->pool_len = (size_t)t->string_pool.size;
    s->pool_off = t->string_pool.offset;
}

static void win_start_dump(struct vmi_instance *vmi, tv_win_start_t *s)
{
    const tv_crashdump_t *cd = tv_crashdump_of(&vmi->drv);
    s->dtb = cd->dtb;
    s->ps_active_process_head = cd->ps_active_process_head;
    s->ps_loaded_module_list = cd->ps_loaded_module_list;
    s->kdbg = cd->kd_debugger_data_block;
    s->ptr_size = cd->is64 ? 8 : 4;
    s->build = cd->minor;
    s->pae = cd->pae;
    if (cd->kind == TV_CD_TRIAGE) {
        s->read_va = win_dump_read;
        s->read_arg = vmi;
        s->cur_process = win_file_bytes(vmi, cd->triage.process.offset,
                                        &s->cur_process_len);
        s->cur_thread = win_file_bytes(vmi, cd->triage.thread.offset,
                                       &s->cur_thread_len);
        win_triage_drivers(vmi, cd, s);
    } else if (!vmi->pt && s->dtb) {
        /* physical memory: the header's DirectoryTableBase, so that the
         * KDBG and the kernel's PE header read before the layer starts */
        page_mode_t m = cd->is64 ? VMI_PM_IA32E
                        : cd->pae ? VMI_PM_PAE
                                  : VMI_PM_LEGACY;
        if (tinyvmi_set_paging(vmi, m, s->dtb) != VMI_SUCCESS)
            tv_log(vmi, 1, "windows: paging from the dump header: %s",
                   vmi->last_error);
    }
    win_kdbg(vmi, s);
    if (s->kernel_base || !s->ps_active_process_head)
        return;
    /* no usable KDBG: the image around a recorded kernel address */
    win_kernel_t k;
    char err[256] = "";
    if (!win_find_kernel(s->read_va ? s->read_va : win_paged_read, vmi,
                         s->ps_active_process_head, &k, err, sizeof err))
        s->kernel_base = k.base;
    else
        tv_log(vmi, 1, "windows: no kernel image around 0x%" PRIx64 ": %s",
               s->ps_active_process_head, err);
}

static void win_start(struct vmi_instance *vmi, const tv_conf_entry_t *e,
                      tv_win_start_t *s)
{
    memset(s, 0, sizeof *s);
    if (e) {
        tv_conf_u64(e, "win_ntoskrnl_va", &s->kernel_base);
        tv_conf_u64(e, "win_kdvb", &s->kdvb);
    }
    if (vmi->have_drv && tv_crashdump_of(&vmi->drv))
        win_start_dump(vmi, s);
}

/* ---- Windows: choosing a profile from a symbol directory ----------------------- */

#define WIN_MAX_CANDIDATES 256

static bool win_is_profile_name(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && !strcmp(n + l - 5, ".json")) ||
           (l > 8 && !strcmp(n + l - 8, ".json.xz")) ||
           (l > 8 && !strcmp(n + l - 8, ".json.gz"));
}

/* Loads path and checks it against what start-up knows. */
static int win_try(struct vmi_instance *vmi, const char *path,
                   const tv_win_start_t *s, tv_symtab_t **out, char *why,
                   size_t whylen)
{
    char err[512] = "";
    tv_pctx_t c = {.hooks = &vmi->hooks, .err = err, .errlen = sizeof err};
    uint64_t base;
    tv_symtab_t *t = NULL;
    int rc = tv_profile_load_file(&c, path, &t);
    if (rc) {
        win_fmt(why, whylen, "%s: %s", path, err);
        return rc;
    }
    if ((rc = win_profile_check(t, s, &base, err, sizeof err))) {
        win_fmt(why, whylen, "%s: %s", path, err);
        tv_symtab_free(t);
        return rc;
    }
    *out = t;
    return TINYVMI_OK;
}

/* By the kernel's RSDS record: DIR/windows/PDB/KEY.json.xz (or without
 * "windows/", or .json). */
static int win_by_guid(struct vmi_instance *vmi, const char *dir,
                       tv_win_start_t *s, tv_symtab_t **out)
{
    win_pe_t pe;
    char err[256] = "", key[48], path[4096], why[768] = "";
    win_read_fn rd = s->read_va ? s->read_va : win_paged_read;
    if (!s->kernel_base ||
        win_pe_parse(rd, vmi, s->kernel_base, &pe, err, sizeof err) ||
        !pe.have_rsds) {
        tv_log(vmi, 2, "windows: the kernel's GUID is unreadable%s%s",
               err[0] ? ": " : "", err);
        return TINYVMI_ENOENT;
    }
    win_pe_guid_age(&pe, key);
    static const char *const sub[] = {"/windows/", "/"};
    static const char *const ext[] = {".json.xz", ".json", ".json.gz"};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++) {
            win_fmt(path, sizeof path, "%s%s%s/%s%s", dir, sub[i], pe.pdb,
                    key, ext[j]);
            if (access(path, R_OK))
                continue;
            if (win_try(vmi, path, s, out, why, sizeof why))
                return tv_fail(vmi, TINYVMI_EFORMAT, "windows: %s", why);
            win_fmt(s->choice, sizeof s->choice, "%s (by the kernel's "
                     "GUID+age %s)", path, key);
            return TINYVMI_OK;
        }
    tv_log(vmi, 1, "windows: no profile for %s %s under %s", pe.pdb, key,
           dir);
    return TINYVMI_ENOENT;
}

typedef struct win_scan {
    struct vmi_instance *vmi;
    tv_win_start_t *s;
    tv_symtab_t **out;
    unsigned tried;
    char why[768];
} win_scan_t;

/* Each profile in dir/sub (sub: a *.pdb directory); 1 when one fits. */
static int win_scan_dir(win_scan_t *w, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char path[4096];
    if (!d)
        return 0;
    while ((ent = readdir(d)) && w->tried < WIN_MAX_CANDIDATES) {
        if (!win_is_profile_name(ent->d_name))
            continue;
        win_fmt(path, sizeof path, "%s/%s", dir, ent->d_name);
        w->tried++;
        if (!win_try(w->vmi, path, w->s, w->out, w->why, sizeof w->why)) {
            win_fmt(w->s->choice, sizeof w->s->choice, "%s (its offsets "
                     "match the addresses the dump records)", path);
            closedir(d);
            return 1;
        }
        tv_log(w->vmi, 2, "windows: rejected %s", w->why);
    }
    closedir(d);
    return 0;
}

/* Every DIR/windows/X.pdb/ and DIR/X.pdb/ directory. */
static int win_scan(win_scan_t *w, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char sub[4096];
    int found = 0;
    if (!d)
        return 0;
    while (!found && (ent = readdir(d))) {
        size_t l = strlen(ent->d_name);
        if (l < 5 || strcmp(ent->d_name + l - 4, ".pdb"))
            continue;
        win_fmt(sub, sizeof sub, "%s/%s", dir, ent->d_name);
        found = win_scan_dir(w, sub);
    }
    closedir(d);
    return found;
}

static int win_pick(struct vmi_instance *vmi, const char *dir,
                    tv_win_start_t *s, tv_symtab_t **out)
{
    char sub[4096];
    if (!dir || !*dir)
        return tv_fail(vmi, TINYVMI_ENOENT, "Windows needs a profile: give "
                       "--profile FILE or --symbols DIR (config: "
                       "volatility_ist or win_symbols)");
    int rc = win_by_guid(vmi, dir, s, out);
    if (rc != TINYVMI_ENOENT)
        return rc;
    if (!s->ps_active_process_head && !s->kdbg && !s->kdvb &&
        !s->kdbg_process_head)
        return tv_fail(vmi, TINYVMI_ENOENT, "windows: cannot choose a "
                       "profile under %s: the kernel's GUID is unreadable "
                       "and the target records no kernel address to check "
                       "offsets against", dir);
    win_scan_t w = {.vmi = vmi, .s = s, .out = out};
    win_fmt(sub, sizeof sub, "%s/windows", dir);
    if (win_scan(&w, sub) || win_scan(&w, dir))
        return TINYVMI_OK;
    if (!w.tried)
        return tv_fail(vmi, TINYVMI_ENOENT, "windows: no profiles under %s "
                       "(expected DIR/windows/ntkrnlmp.pdb/GUIDAGE.json.xz)",
                       dir);
    return tv_fail(vmi, TINYVMI_ENOENT, "windows: none of the %u profiles "
                   "under %s fits the target; the last: %s", w.tried, dir,
                   w.why);
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
    if (hints.os == VMI_OS_FREEBSD) {
        tv_fail(vmi, TINYVMI_ENOTSUP, "ostype FreeBSD is not supported yet");
        tv_conf_free(conf);
        return os_fail(VMI_INIT_ERROR_OS, error);
    }

    /* Windows: said by the config, implied by a crash dump, a symbol
     * directory or a Windows profile. */
    /* copies: the entry's strings go with the config, freed below */
    char symdir_buf[4096] = "";
    const char *symdir = e ? tv_conf_str(e, "win_symbols") : NULL;
    if (!symdir)
        symdir = getenv("TINYVMI_SYMBOLS");
    if (symdir) {
        win_fmt(symdir_buf, sizeof symdir_buf, "%s", symdir);
        symdir = symdir_buf;
    }
    bool windows = hints.os == VMI_OS_WINDOWS ||
                   (vmi->have_drv && tv_crashdump_of(&vmi->drv)) ||
                   (symdir && *symdir && !(profile && *profile));
    tv_win_start_t start;
    win_start(vmi, e, &start);

    if (profile && *profile)
        win_fmt(start.choice, sizeof start.choice, "%s (given)", profile);
    rc = TINYVMI_OK;
    if (profile && *profile)
        rc = load_profile(vmi, profile, &tab);
    else if (e && tv_conf_str(e, "sysmap") && !windows)
        rc = load_sysmap(vmi, tv_conf_str(e, "sysmap"), &tab);
    tv_conf_free(conf);
    if (rc)
        return os_fail(VMI_INIT_ERROR_OS, error);
    const char *os = tab ? tv_symtab_meta(tab, "os") : NULL;
    if (os && !strcmp(os, "windows"))
        windows = true;

    if (windows) {
        if (!tab && win_pick(vmi, symdir, &start, &tab))
            return os_fail(VMI_INIT_ERROR_OS, error);
        if (tv_windows_init(vmi, tab, &hints, &start))
            return os_fail(VMI_INIT_ERROR_OS, error);
        return vmi->os;
    }
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
