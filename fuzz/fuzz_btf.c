/* libFuzzer target: the BTF decoder and loader (input = a BTF blob), and
 * the search over the same bytes. */
#include <stdlib.h>
#include <string.h>

#include "profile/btf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *fz_alloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    (void)old;
    if (!n) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static int fz_read(void *ctx, uint64_t a, void *buf, size_t n)
{
    const uint8_t *const *d = ctx;
    size_t size = (size_t)(d[1] - d[0]);
    if (a < 0x1000 || a - 0x1000 > size || n > size - (a - 0x1000))
        return TINYVMI_EUNMAPPED;
    memcpy(buf, d[0] + (a - 0x1000), n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                                          .alloc = fz_alloc};
    char err[128];
    tv_pctx_t c = {&hooks, err, sizeof err};
    tv_symtab_t *t;
    if (tv_symtab_new(&c, &t))
        return 0;
    if (tv_btf_load(&c, data, size, t) == 0)
        tv_symtab_finish(t);
    tv_symtab_free(t);
    const uint8_t *range[2] = {data, data + size};
    tv_reader_t r = {fz_read, range};
    uint64_t at, len;
    tv_btf_find(&c, &r, 0x1000, 0x1000 + size, &at, &len);
    return 0;
}
