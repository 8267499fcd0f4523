/* What the profile fuzz targets share: load one input with a loader, then
 * finish and query whatever loaded. */
#ifndef FUZZ_PROFILE_H
#define FUZZ_PROFILE_H

#include <stdlib.h>

#include "core/tv.h"
#include "profile/profile.h"

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

typedef int (*fuzz_loader_fn)(const tv_pctx_t *ctx, const char *buf,
                               size_t len, tv_symtab_t *t);

static int fuzz_profile(const uint8_t *data, size_t size, fuzz_loader_fn load)
{
    static const tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                                          .alloc = fuzz_alloc,
                                          .log_level = -1};
    char err[256];
    tv_pctx_t ctx = {&hooks, err, sizeof err};
    tv_symtab_t *t = NULL;
    if (tv_symtab_new(&ctx, &t) != 0)
        abort();
    if (load(&ctx, (const char *)data, size, t) == 0 &&
        tv_symtab_finish(t) == 0) {
        tv_member_t m;
        tv_typeinfo_t ti;
        const char *n;
        uint64_t a, o;
        for (size_t i = 0; i < tv_symtab_ntypes(t) && i < 64; i++) {
            if (!tv_symtab_type_at(t, i, &ti))
                abort();
            for (uint32_t k = 0; k < ti.nmembers && k < 64; k++)
                if (tv_symtab_member_at(t, ti.name, k, &m))
                    (void)tv_symtab_member(t, ti.name, m.name, &m);
            (void)tv_symtab_member(t, ti.name, "a.b[1].c", &m);
        }
        if (tv_symtab_symbol_at(t, 0, &n, &a, NULL))
            (void)tv_symtab_addr(t, a + 1, 16, &n, &o);
        (void)tv_symtab_meta(t, "banner");
    }
    tv_symtab_free(t);
    return 0;
}

#endif
