/*
 * singlestep-event-example: LibVMI's single-step event example, written
 * for TinyVMI.  Single-steps vCPU 0 (VMI_EVENT_SINGLESTEP) and prints the
 * address of each instruction it stops before, with CR3 and whether it is
 * kernel (upper half) or user (lower half) code, for a number of steps (default 100) or until
 * Ctrl-C.  Then stepping stops and the guest goes on running.
 *
 *   singlestep-event-example <vm> [steps]
 *
 * Uses LibVMI's API only (libvmi/libvmi.h, libvmi/events.h).
 */
#include "example.h"

#include <libvmi/events.h>

typedef struct steps {
    uint64_t n, max;
} steps_t;

static event_response_t on_step(vmi_instance_t vmi, vmi_event_t *event)
{
    steps_t *s = event->data;
    const x86_registers_t *r = event->x86_regs;
    (void)vmi;
    if (s->n >= s->max)
        return VMI_EVENT_RESPONSE_NONE;
    s->n++;
    printf("Single-step event %" PRIu64 ": vCPU %u RIP 0x%016" PRIx64
           " GLA 0x%016" PRIx64 " CR3 0x%" PRIx64 " %s\n",
           s->n, event->vcpu_id, r->rip, event->ss_event.gla, r->cr3,
           (r->rip >> 63) ? "kernel" : "user");
    fflush(stdout);
    if (s->n >= s->max)
        *ex_stop_flag() = -1;
    return VMI_EVENT_RESPONSE_NONE;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    vmi_event_t event;
    steps_t s = {0, 100};
    int ret = 1, registered = 0;

    if (ex_parse(argc, argv, 0, 1, "[steps]",
                 "Single-steps vCPU 0 and prints each instruction's address "
                 "(default 100 steps; Ctrl-C ends early).",
                 &o))
        return 1;
    if (o.nargs == 1) {
        char *end;
        errno = 0;
        s.max = strtoull(o.args[0], &end, 0);
        if (errno || *end || !s.max) {
            fprintf(stderr, "%s: bad number of steps '%s'\n", argv[0],
                    o.args[0]);
            ex_done(&o);
            return 1;
        }
    }
    ex_catch_signals();
    if (ex_init(&o, VMI_INIT_EVENTS, &vmi) != VMI_SUCCESS)
        goto done;

    memset(&event, 0, sizeof event);
    /* vCPU 0, stepping from the moment the event is registered. */
    SETUP_SINGLESTEP_EVENT(&event, 1u << 0, on_step, 1);
    event.data = &s;
    if (vmi_register_event(vmi, &event) != VMI_SUCCESS) {
        printf("Failed to register the single-step event\n");
        goto out;
    }
    registered = 1;
    printf("Single-stepping vCPU 0 for %" PRIu64 " steps (Ctrl-C ends)...\n",
           s.max);
    fflush(stdout);

    ret = ex_listen(vmi);
    printf("Finished: %" PRIu64 " step(s)\n", s.n);
out:
    if (registered)
        vmi_clear_event(vmi, &event, NULL);
    vmi_destroy(vmi);
done:
    ex_done(&o);
    return ret;
}
