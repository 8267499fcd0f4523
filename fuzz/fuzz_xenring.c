/* libFuzzer target: the Xen driver's vm_event ring consumer and request
 * parser (src/driver/xen/monitor.c).  The input is the shared page as the
 * hypervisor (or anyone who can write it) left it, padded to a page; its
 * last bytes also drive how req_prod moves between takes.  Every take must
 * end (taken, none or refused) inside the page; the sanitizers see the
 * rest. */
#include <stdlib.h>
#include <string.h>

#include "driver/xen/monitor.h"

#define PAGE 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *page = calloc(1, PAGE);
    if (!page)
        return 0;
    memcpy(page, data, size < PAGE ? size : PAGE);
    const uint8_t *ctl = size > PAGE ? data + PAGE : NULL;
    size_t nctl = size > PAGE ? size - PAGE : 0;
    uint32_t prod0;
    memcpy(&prod0, page, 4);
    tv_xen_ring_t r;
    tv_xen_ring_init(&r, page, PAGE); /* clears the header: put prod back */
    memcpy(page, &prod0, 4);
    uint8_t req[TV_XEN_ENTRY_MAX], rsp[TV_XEN_ENTRY_MAX];
    char why[200];
    for (unsigned n = 0; n < 64; n++) {
        int got = tv_xen_ring_take(&r, req, why, sizeof why);
        if (got <= 0)
            break;
        tv_stop_t s;
        unsigned nvcpus = nctl ? ctl[n % nctl] % 9u : 1;
        if (tv_xen_parse(r.lay, req, nvcpus, &s, why, sizeof why) == 0 &&
            s.vcpu >= nvcpus)
            abort();
        tv_xen_answer(r.lay, req, 0, n & 1 ? &s.regs : NULL, rsp);
        if (tv_xen_ring_put(&r, rsp))
            abort();
        if (r.req_cons - r.rsp_prod_pvt > r.nr)
            abort();
        if (nctl) { /* the other side moves req_prod, sensibly or not */
            uint32_t p = r.req_cons + ctl[(n + 1) % nctl] % 12u;
            memcpy(page, &p, 4);
        }
        (void)tv_xen_ring_pending(&r);
    }
    free(page);
    return 0;
}
