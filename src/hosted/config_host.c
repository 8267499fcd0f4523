/*
 * vmi_config_t forms -> one libvmi.conf entry (see config_host.h).
 * TinyVMI does not depend on glib: a program that passes a GHashTable
 * links glib itself, so its g_hash_table_foreach is found at run time.
 */
#include "hosted/config_host.h"

#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((format(printf, 4, 5))) static int
hfail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* The name LibVMI gives a domain: a path's last component. */
static const char *base_name(const char *domain)
{
    const char *slash = strrchr(domain, '/');
    return slash && slash[1] ? slash + 1 : domain;
}

/* Reads a whole file (at most one byte past the parser's limit, so that
 * the parser reports a too-large file). */
static int read_text(const char *path, char **text, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return hfail(err, errlen, errno == ENOENT ? TINYVMI_ENOENT
                                                  : TINYVMI_EIO,
                     "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            if (cap > TV_CONF_MAX_TEXT)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (!buf)
        rc = hfail(err, errlen, TINYVMI_ENOMEM, "%s: out of memory", path);
    else if (ferror(f))
        rc = hfail(err, errlen, TINYVMI_EIO, "%s: read error", path);
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *text = buf;
    *len = n;
    return 0;
}

/* The global file LibVMI would use: its path in buf, or ENOENT. */
static int find_global(char *buf, size_t size, char *err, size_t errlen)
{
    const char *env = getenv("TINYVMI_CONF");
    if (env && *env) {
        size_t n_ = strlen(env);
        if (n_ >= size)
            return hfail(err, errlen, TINYVMI_EINVAL,
                         "TINYVMI_CONF is longer than %zu bytes", size - 1);
        memcpy(buf, env, n_ + 1);
        return 0;
    }
    char cand[4][1024];
    int n = 0;
    snprintf(cand[n++], sizeof cand[0], "libvmi.conf");
    const char *sudo = getenv("SUDO_USER");
    struct passwd *pw = sudo ? getpwnam(sudo) : NULL;
    if (pw && pw->pw_dir)
        snprintf(cand[n++], sizeof cand[0], "%s/etc/libvmi.conf",
                 pw->pw_dir);
    const char *home = getenv("HOME");
    if (home && *home)
        snprintf(cand[n++], sizeof cand[0], "%s/etc/libvmi.conf", home);
    snprintf(cand[n++], sizeof cand[0], "/etc/libvmi.conf");
    for (int i = 0; i < n; i++)
        if (access(cand[i], R_OK) == 0) {
            size_t n_ = strlen(cand[i]);
            if (n_ >= size)
                break;
            memcpy(buf, cand[i], n_ + 1);
            return 0;
        }
    return hfail(err, errlen, TINYVMI_ENOENT,
                 "no libvmi.conf found (looked for ./libvmi.conf, "
                 "~/etc/libvmi.conf and /etc/libvmi.conf; TINYVMI_CONF "
                 "names another)");
}

static int global_entry(const tinyvmi_hooks_t *hooks, const char *name,
                        const char *domain, tv_conf_t **conf,
                        const tv_conf_entry_t **entry, vmi_init_error_t *why,
                        char *err, size_t errlen)
{
    char path[1024];
    int rc = find_global(path, sizeof path, err, errlen);
    if (rc)
        return rc;
    char *text = NULL;
    size_t len = 0;
    if ((rc = read_text(path, &text, &len, err, errlen)) != 0)
        return rc;
    char perr[256] = "";
    tv_pctx_t ctx = {hooks, perr, sizeof perr};
    rc = tv_conf_parse(&ctx, text, len, conf);
    free(text);
    if (rc)
        return hfail(err, errlen, rc, "%s: %s", path, perr);
    const char *want = name ? name : base_name(domain);
    *entry = tv_conf_find(*conf, want);
    if (!*entry && !name && strcmp(want, domain) != 0)
        *entry = tv_conf_find(*conf, domain);
    if (*entry)
        return 0;
    tv_conf_free(*conf);
    *conf = NULL;
    *why = VMI_INIT_ERROR_NO_CONFIG_ENTRY;
    if (!name && strcmp(want, domain) != 0)
        return hfail(err, errlen, TINYVMI_ENOENT,
                     "%s: no entry for '%s' (nor '%s')", path, want, domain);
    return hfail(err, errlen, TINYVMI_ENOENT, "%s: no entry for '%s'", path,
                 want);
}

/* ---- GHashTable ---------------------------------------------------------- */

typedef struct ghash_walk {
    tv_conf_t *conf;
    int rc;
    char *err;
    size_t errlen;
    char why[200];
} ghash_walk_t;

static void ghash_one(void *key, void *value, void *user)
{
    ghash_walk_t *w = user;
    if (w->rc)
        return;
    if (!key) {
        w->rc = TINYVMI_EINVAL;
        snprintf(w->why, sizeof w->why, "GHashTable: a NULL key");
        return;
    }
    const char *k = key;
    int type = tv_conf_key_type(k);
    if (type == TV_CONF_NONE) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "GHashTable key '%.64s' is not one LibVMI documents: its "
                 "value's type is unknown, ignored",
                 k);
        w->rc = tv_conf_add_warning(w->conf, msg);
        return;
    }
    if (!value) {
        w->rc = TINYVMI_EINVAL;
        snprintf(w->why, sizeof w->why,
                 "GHashTable: key '%.64s' has a NULL value", k);
        return;
    }
    if (type == TV_CONF_STR)
        w->rc = tv_conf_add_str(w->conf, k, value);
    else
        w->rc = tv_conf_add_u64(w->conf, k, *(const uint64_t *)value);
}

int tv_config_from_ghash(const tinyvmi_hooks_t *hooks, void *table,
                         tv_ghash_foreach_fn foreach, const char *name,
                         tv_conf_t **conf, const tv_conf_entry_t **entry,
                         vmi_init_error_t *why, char *err, size_t errlen)
{
    char perr[256] = "";
    tv_pctx_t ctx = {hooks, perr, sizeof perr};
    *conf = NULL;
    *entry = NULL;
    *why = VMI_INIT_ERROR_NO_CONFIG;
    int rc = tv_conf_new(&ctx, conf);
    if (rc == 0)
        rc = tv_conf_add_entry(*conf, name);
    if (rc)
        goto fail;
    ghash_walk_t w = {*conf, 0, err, errlen, ""};
    foreach(table, ghash_one, &w);
    if (w.rc) {
        rc = w.rc;
        if (w.why[0])
            snprintf(perr, sizeof perr, "%s", w.why);
        goto fail;
    }
    *entry = tv_conf_entry_at(*conf, 0);
    *why = VMI_INIT_ERROR_NONE;
    return 0;
fail:
    tv_conf_free(*conf);
    *conf = NULL;
    return hfail(err, errlen, rc, "%s", perr);
}

/* ---- the forms ------------------------------------------------------------- */

int tv_config_load(const tinyvmi_hooks_t *hooks, vmi_config_t mode,
                   const void *config, const char *domain, tv_conf_t **conf,
                   const tv_conf_entry_t **entry, vmi_init_error_t *why,
                   char *err, size_t errlen)
{
    vmi_init_error_t dummy;
    if (!why)
        why = &dummy;
    *why = VMI_INIT_ERROR_NO_CONFIG;
    if (!conf || !entry || !hooks)
        return hfail(err, errlen, TINYVMI_EINVAL, "tv_config_load: NULL");
    *conf = NULL;
    *entry = NULL;
    if (!domain)
        domain = "";
    const char *name = base_name(domain);
    if (!*name)
        name = "unnamed";
    char perr[256] = "";
    tv_pctx_t ctx = {hooks, perr, sizeof perr};
    int rc;
    switch (mode) {
    case VMI_CONFIG_GLOBAL_FILE_ENTRY:
        rc = global_entry(hooks, config, domain, conf, entry, why, err,
                          errlen);
        break;
    case VMI_CONFIG_STRING:
        if (!config)
            return hfail(err, errlen, TINYVMI_EINVAL,
                         "VMI_CONFIG_STRING needs a config string (got "
                         "NULL)");
        rc = tv_conf_parse_body(&ctx, name, config, strlen(config), conf);
        if (rc)
            return hfail(err, errlen, rc, "config string: %s", perr);
        *entry = tv_conf_entry_at(*conf, 0);
        break;
    case VMI_CONFIG_GHASHTABLE: {
        if (!config)
            return hfail(err, errlen, TINYVMI_EINVAL,
                         "VMI_CONFIG_GHASHTABLE needs a GHashTable (got "
                         "NULL)");
        void *sym = dlsym(RTLD_DEFAULT, "g_hash_table_foreach");
        if (!sym)
            return hfail(err, errlen, TINYVMI_ENOTSUP,
                         "VMI_CONFIG_GHASHTABLE: g_hash_table_foreach is "
                         "not in this process (the program must link "
                         "glib)");
        tv_ghash_foreach_fn fe;
        memcpy(&fe, &sym, sizeof fe);
        rc = tv_config_from_ghash(hooks, (void *)(uintptr_t)config, fe,
                                  name, conf, entry, why, err, errlen);
        break;
    }
    case VMI_CONFIG_JSON_PATH:
        if (!config)
            return hfail(err, errlen, TINYVMI_EINVAL,
                         "VMI_CONFIG_JSON_PATH needs a profile path (got "
                         "NULL)");
        rc = tv_conf_new(&ctx, conf);
        if (rc == 0 && (rc = tv_conf_add_entry(*conf, name)) == 0)
            rc = tv_conf_add_str(*conf, "volatility_ist", config);
        if (rc) {
            tv_conf_free(*conf);
            *conf = NULL;
            return hfail(err, errlen, rc, "%s", perr);
        }
        *entry = tv_conf_entry_at(*conf, 0);
        break;
    default:
        return hfail(err, errlen, TINYVMI_EINVAL, "unknown config mode %d",
                     (int)mode);
    }
    if (rc == 0)
        *why = VMI_INIT_ERROR_NONE;
    return rc;
}
