/*
 * Xen's libraries, loaded when a Xen target is opened.  libxenctrl's ABI
 * changes with every Xen release (its soname carries the version), so the
 * one the driver was built against is loaded; the others keep their soname.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "driver/xen/xen_int.h"

#ifndef TV_XENCTRL_SONAME
#error "TV_XENCTRL_SONAME (the soname of the libxenctrl built against) is not set"
#endif

static const char *const sonames[TV_XEN_NLIBS] = {
    [TV_XEN_LIB_XC] = TV_XENCTRL_SONAME,
    [TV_XEN_LIB_FM] = "libxenforeignmemory.so.1",
    [TV_XEN_LIB_XS] = "libxenstore.so.4",
    [TV_XEN_LIB_EV] = "libxenevtchn.so.1",
};

int tv_xen_lib_load(tv_xen_lib_t *lib, char *why, size_t whylen)
{
    memset(lib, 0, sizeof *lib);
    for (int i = 0; i < TV_XEN_NLIBS; i++) {
        lib->handle[i] = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib->handle[i]) {
            const char *e = dlerror();
            snprintf(why, whylen, "Xen's library %s cannot be loaded (%s); "
                     "TinyVMI opens Xen targets from a dom0 with Xen's "
                     "tools installed", sonames[i], e ? e : "not found");
            tv_xen_lib_unload(lib);
            return -1;
        }
    }
#define TV_XEN_SYM(l, fn)                                                     \
    *(void **)&lib->fn = dlsym(lib->handle[TV_XEN_LIB_##l], #fn);             \
    if (!lib->fn) {                                                           \
        snprintf(why, whylen, "%s has no %s", sonames[TV_XEN_LIB_##l], #fn);  \
        tv_xen_lib_unload(lib);                                               \
        return -1;                                                            \
    }
    TV_XEN_FUNCS(TV_XEN_SYM)
#undef TV_XEN_SYM
    return 0;
}

void tv_xen_lib_unload(tv_xen_lib_t *lib)
{
    for (int i = 0; i < TV_XEN_NLIBS; i++)
        if (lib->handle[i])
            dlclose(lib->handle[i]);
    memset(lib, 0, sizeof *lib);
}
