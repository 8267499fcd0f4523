/*
 * mem-event-example: LibVMI's memory event example, written for TinyVMI.
 * Watches the guest-physical page (gfn) that holds a kernel symbol
 * (default jiffies, which the timer interrupt writes) for writes
 * (VMI_EVENT_MEMORY, VMI_MEMACCESS_W) and prints each one: vCPU, the
 * virtual address written (gla), its offset in the page, the access, the
 * RIP of the writing instruction and the kernel symbol written.  Runs until
 * Ctrl-C (or a number of events); then the event is cleared and the guest
 * goes on running.
 *
 *   mem-event-example <vm> [symbol|0xADDR] [count]
 *
 * Uses LibVMI's API only (libvmi/libvmi.h, libvmi/events.h).
 */
#include "example.h"

#include <libvmi/events.h>

typedef struct watch {
    uint64_t n, max;
} watch_t;

static const char *access_str(vmi_mem_access_t a)
{
    switch (a & VMI_MEMACCESS_RWX) {
    case VMI_MEMACCESS_R:
        return "r";
    case VMI_MEMACCESS_W:
        return "w";
    case VMI_MEMACCESS_RW:
        return "rw";
    case VMI_MEMACCESS_X:
        return "x";
    default:
        return "?";
    }
}

static event_response_t on_access(vmi_instance_t vmi, vmi_event_t *event)
{
    watch_t *w = event->data;
    const mem_access_event_t *m = &event->mem_event;
    if (w->max && w->n >= w->max)
        return VMI_EVENT_RESPONSE_NONE;
    w->n++;
    const char *what = NULL;
    if (m->gla_valid)
        what = vmi_translate_v2ksym(vmi, NULL, m->gla);
    printf("Memory event %" PRIu64 ": vCPU %u GFN 0x%" PRIx64
           " GLA 0x%016" PRIx64 " offset 0x%03" PRIx64
           " access %s RIP 0x%016" PRIx64 " (%s)\n",
           w->n, event->vcpu_id, m->gfn, m->gla_valid ? m->gla : 0, m->offset,
           access_str(m->out_access), event->x86_regs->rip,
           what ? what : "?");
    fflush(stdout);
    free((void *)(uintptr_t)what);
    if (w->max && w->n >= w->max)
        *ex_stop_flag() = -1;
    return VMI_EVENT_RESPONSE_NONE;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    vmi_event_t event;
    watch_t w = {0, 0};
    addr_t va = 0, pa = 0;
    int ret = 1, registered = 0;
    const char *sym = "jiffies";

    if (ex_parse(argc, argv, 0, 2, "[symbol|0xADDR] [count]",
                 "Prints writes to the page of a kernel symbol (default "
                 "jiffies) until Ctrl-C or count events.",
                 &o))
        return 1;
    if (o.nargs >= 1)
        sym = o.args[0];
    if (o.nargs == 2) {
        char *end;
        errno = 0;
        w.max = strtoull(o.args[1], &end, 0);
        if (errno || *end || !w.max) {
            fprintf(stderr, "%s: bad count '%s'\n", argv[0], o.args[1]);
            ex_done(&o);
            return 1;
        }
    }
    ex_catch_signals();
    if (ex_init(&o, VMI_INIT_EVENTS, &vmi) != VMI_SUCCESS)
        goto done;

    char *end = NULL;
    if (!strncmp(sym, "0x", 2))
        va = strtoull(sym, &end, 16);
    if ((!end || *end) &&
        vmi_translate_ksym2v(vmi, sym, &va) != VMI_SUCCESS) {
        printf("Failed to find kernel symbol %s\n", sym);
        goto out;
    }
    if (vmi_translate_kv2p(vmi, va, &pa) != VMI_SUCCESS) {
        printf("Failed to translate 0x%" PRIx64 " to a physical address\n",
               va);
        goto out;
    }

    memset(&event, 0, sizeof event);
    SETUP_MEM_EVENT(&event, pa >> 12, VMI_MEMACCESS_W, on_access, 0);
    event.data = &w;
    if (vmi_register_event(vmi, &event) != VMI_SUCCESS) {
        printf("Failed to register the memory event on GFN 0x%" PRIx64 "\n",
               pa >> 12);
        goto out;
    }
    registered = 1;
    printf("%s at 0x%" PRIx64 " (PA 0x%" PRIx64 "): watching writes to GFN "
           "0x%" PRIx64 " (Ctrl-C ends)...\n",
           sym, va, pa, pa >> 12);
    fflush(stdout);

    ret = ex_listen(vmi);
    printf("Finished: %" PRIu64 " event(s)\n", w.n);
out:
    if (registered)
        vmi_clear_event(vmi, &event, NULL);
    vmi_destroy(vmi);
done:
    ex_done(&o);
    return ret;
}
