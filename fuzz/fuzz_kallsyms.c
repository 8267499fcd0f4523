/* libFuzzer target: the kallsyms search and decoder over an input taken
 * as kernel read-only data at 0xffffffff82000000. */
#include <stdlib.h>
#include <string.h>

#include "profile/kallsyms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE 0xffffffff82000000ull

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
    if (a < BASE || a - BASE > size || n > size - (a - BASE))
        return TINYVMI_EUNMAPPED;
    memcpy(buf, d[0] + (a - BASE), n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                                          .alloc = fz_alloc};
    char err[128];
    tv_pctx_t c = {&hooks, err, sizeof err};
    const uint8_t *range[2] = {data, data + size};
    tv_reader_t r = {fz_read, range};
    tv_kallsyms_t ks;
    if (tv_kallsyms_find(&c, &r, BASE, BASE + size, &ks))
        return 0;
    tv_symtab_t *t;
    if (tv_symtab_new(&c, &t))
        return 0;
    tv_kallsyms_load(&c, &r, &ks, t);
    tv_symtab_free(t);
    return 0;
}
