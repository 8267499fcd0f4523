/* libFuzzer target: the libvmi.conf parser, whole files and (with the
 * first byte odd) VMI_CONFIG_STRING bodies.  Every entry and value found
 * is read back; every failure must say why. */
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                                          .alloc = fuzz_alloc,
                                          .log_level = -1};
    char err[256] = "";
    tv_pctx_t ctx = {&hooks, err, sizeof err};
    char *copy = malloc(size ? size : 1); /* exact size for ASan */
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    tv_conf_t *c = NULL;
    int rc = (size && (data[0] & 1))
                 ? tv_conf_parse_body(&ctx, "fuzz", copy + 1, size - 1, &c)
                 : tv_conf_parse(&ctx, copy, size, &c);
    if (rc == 0) {
        for (size_t i = 0; i < tv_conf_count(c); i++) {
            const tv_conf_entry_t *e = tv_conf_entry_at(c, i);
            const char *name = tv_conf_name(e);
            if (!name || tv_conf_find(c, name) == NULL)
                abort();
            for (size_t k = 0; k < tv_conf_nkeys(e); k++) {
                tv_conf_kv_t kv;
                uint64_t v;
                if (!tv_conf_kv_at(e, k, &kv) || !kv.key || !kv.str)
                    abort();
                if ((kv.type == TV_CONF_NUM) != tv_conf_u64(e, kv.key, &v))
                    abort();
                (void)strlen(kv.str);
            }
            (void)tv_conf_ostype(e);
        }
        for (size_t i = 0; i < tv_conf_nwarnings(c); i++) {
            const char *w = tv_conf_warning(c, i);
            if (w)
                (void)strlen(w);
        }
        tv_conf_free(c);
    } else if (!err[0] || c) {
        abort();
    }
    free(copy);
    return 0;
}
