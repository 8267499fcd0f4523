/*
 * msr-event-example: LibVMI's MSR event example, written for TinyVMI.
 * Registers a write event on MSR_ALL (VMI_EVENT_REGISTER, VMI_REGACCESS_W:
 * the MSRs LibVMI watches for it, EFER, STAR, LSTAR, SYSENTER_*, the
 * MTRRs...) and prints each write, the MSR's index and the value written,
 * until Ctrl-C; then the event is cleared and the guest goes on running.
 *
 *   msr-event-example <vm>
 *
 * Like LibVMI's, it initialises the driver only (vmi_init).  Register
 * events come from a hypervisor's monitor (Xen PVH/HVM guests); other
 * targets refuse them.  LibVMI's API only, except tinyvmi_last_error
 * (<tinyvmi/tinyvmi.h>) to say why a step failed.
 */
#include "example.h"

#include <libvmi/events.h>
#include <tinyvmi/tinyvmi.h>

static event_response_t msr_write_cb(vmi_instance_t vmi, vmi_event_t *event)
{
    uint64_t *n = event->data;
    (void)vmi;
    (*n)++;
    printf("MSR write happened: MSR=0x%" PRIx32 " Value=0x%" PRIx64
           " vCPU=%u\n",
           event->reg_event.msr, event->reg_event.value, event->vcpu_id);
    return VMI_EVENT_RESPONSE_NONE;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    vmi_event_t msr_event;
    uint64_t n = 0;
    int ret = 1;

    if (ex_parse(argc, argv, 0, 0, "",
                 "Prints every MSR write (MSR_ALL) until Ctrl-C.", &o))
        return 1;
    ex_catch_signals();
    if (ex_init_events(&o, &vmi) != VMI_SUCCESS)
        goto done;
    printf("LibVMI init succeeded!\n");

    memset(&msr_event, 0, sizeof msr_event);
    msr_event.version = VMI_EVENTS_VERSION;
    msr_event.type = VMI_EVENT_REGISTER;
    msr_event.reg_event.reg = MSR_ALL;
    msr_event.reg_event.in_access = VMI_REGACCESS_W;
    msr_event.callback = msr_write_cb;
    msr_event.data = &n;
    if (vmi_register_event(vmi, &msr_event) != VMI_SUCCESS) {
        printf("Failed to set MSR event: %s\n", tinyvmi_last_error(vmi));
        goto out;
    }

    printf("Waiting for events...\n");
    fflush(stdout);
    ret = ex_listen(vmi);
    printf("Finished with test: %" PRIu64 " MSR write(s)\n", n);
    vmi_clear_event(vmi, &msr_event, NULL);
out:
    vmi_destroy(vmi);
done:
    ex_done(&o);
    return ret;
}
