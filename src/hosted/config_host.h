/*
 * The forms of LibVMI's vmi_init_os/vmi_init_complete configuration
 * (vmi_config_t), turned into one parsed libvmi.conf entry.  Hosted code:
 * reads files, looks at the environment, finds glib at run time.
 */
#ifndef TV_CONFIG_HOST_H
#define TV_CONFIG_HOST_H

#include <stddef.h>

#include "config/conf.h"

/* The entry for (mode, config, domain):
 *  VMI_CONFIG_GLOBAL_FILE_ENTRY  the global libvmi.conf: $TINYVMI_CONF if
 *      set (only that file), else the first of ./libvmi.conf,
 *      ~$SUDO_USER/etc/libvmi.conf, $HOME/etc/libvmi.conf, /etc/libvmi.conf
 *      (LibVMI's order).  The entry is config (a name) if not NULL, else
 *      the domain's name: for a path, its last component (as LibVMI names
 *      file-mode domains), then the whole path.
 *  VMI_CONFIG_STRING  config is an entry body "{ key = value; ... }".
 *  VMI_CONFIG_GHASHTABLE  config is the caller's GHashTable (string keys;
 *      string values for ostype/sysmap/rekall_profile/volatility_ist,
 *      uint64_t * for the offsets), read with the caller's glib found by
 *      dlsym.
 *  VMI_CONFIG_JSON_PATH  config is a profile path: an entry with
 *      volatility_ist = that path and no ostype.
 * domain: what was given to vmi_init (a dump's path for VMI_FILE).
 * On success *conf owns everything and *entry points into it (free with
 * tv_conf_free); the conf's warnings are worth logging.  On failure both
 * are NULL, err says why and *why is VMI_INIT_ERROR_NO_CONFIG (nothing
 * usable: no file, unreadable, malformed, bad argument) or
 * VMI_INIT_ERROR_NO_CONFIG_ENTRY (the file has no entry for the domain).
 * Status: TINYVMI_ENOENT when no config file exists or it has no such
 * entry (the caller may then go on without a config), EFORMAT/ERANGE/
 * ETRUNC for malformed text, EINVAL for a NULL config where one is
 * needed, ENOTSUP for a GHashTable without glib, EIO, ENOMEM. */
int tv_config_load(const tinyvmi_hooks_t *hooks, vmi_config_t mode,
                   const void *config, const char *domain, tv_conf_t **conf,
                   const tv_conf_entry_t **entry, vmi_init_error_t *why,
                   char *err, size_t errlen);

/* glib's g_hash_table_foreach, as a plain function type. */
typedef void (*tv_ghash_fn)(void *key, void *value, void *user);
typedef void (*tv_ghash_foreach_fn)(void *table, tv_ghash_fn fn, void *user);

/* The GHashTable form with an explicit foreach (tests; tv_config_load
 * passes glib's). */
int tv_config_from_ghash(const tinyvmi_hooks_t *hooks, void *table,
                         tv_ghash_foreach_fn foreach, const char *name,
                         tv_conf_t **conf, const tv_conf_entry_t **entry,
                         vmi_init_error_t *why, char *err, size_t errlen);

#endif
