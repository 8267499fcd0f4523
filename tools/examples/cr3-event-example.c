/*
 * cr3-event-example: LibVMI's CR3 event example, written for TinyVMI.
 * Registers a write event on CR3 (VMI_EVENT_REGISTER, VMI_REGACCESS_W)
 * and prints each new value until Ctrl-C: on x86 a CR3 write is a switch
 * of address space, and the value is the page-table root (DTB) of the
 * process that runs next (`tinyvmi ps` lists each process's DTB).  Then
 * the event is cleared and the guest goes on running.
 *
 *   cr3-event-example <vm>
 *
 * Like LibVMI's, it initialises the driver only (vmi_init), so it can
 * attach to a guest that has not booted yet.  Register events come from a
 * hypervisor's monitor (Xen PVH/HVM guests); other targets refuse them.
 * LibVMI's API only, except tinyvmi_last_error (<tinyvmi/tinyvmi.h>) to
 * say why a step failed.
 */
#include "example.h"

#include <libvmi/events.h>
#include <tinyvmi/tinyvmi.h>

static event_response_t cr3_callback(vmi_instance_t vmi, vmi_event_t *event)
{
    uint64_t *n = event->data;
    (void)vmi;
    (*n)++;
    printf("CR3 write happened: Value=0x%" PRIx64 " Previous=0x%" PRIx64
           " vCPU=%u\n",
           event->reg_event.value, event->reg_event.previous,
           event->vcpu_id);
    return VMI_EVENT_RESPONSE_NONE;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    vmi_event_t cr3_event;
    uint64_t n = 0;
    int ret = 1, registered = 0;

    if (ex_parse(argc, argv, 0, 0, "",
                 "Prints every new CR3 value (a process switch) until "
                 "Ctrl-C.",
                 &o))
        return 1;
    ex_catch_signals();
    if (ex_init_events(&o, &vmi) != VMI_SUCCESS)
        goto done;

    /* the guest stands still while the event is set up */
    if (vmi_pause_vm(vmi) != VMI_SUCCESS) {
        printf("Failed to pause VM: %s\n", tinyvmi_last_error(vmi));
        goto out;
    }
    memset(&cr3_event, 0, sizeof cr3_event);
    cr3_event.version = VMI_EVENTS_VERSION;
    cr3_event.type = VMI_EVENT_REGISTER;
    cr3_event.callback = cr3_callback;
    cr3_event.data = &n;
    cr3_event.reg_event.reg = CR3;
    cr3_event.reg_event.in_access = VMI_REGACCESS_W;
    if (vmi_register_event(vmi, &cr3_event) != VMI_SUCCESS)
        printf("Failed to register the CR3 event: %s\n",
               tinyvmi_last_error(vmi));
    else
        registered = 1;
    if (vmi_resume_vm(vmi) != VMI_SUCCESS) {
        printf("Failed to resume VM: %s\n", tinyvmi_last_error(vmi));
        goto out;
    }
    if (!registered)
        goto out;

    printf("Waiting for events...\n");
    fflush(stdout);
    ret = ex_listen(vmi);
    printf("Finished: %" PRIu64 " CR3 write(s)\n", n);
out:
    if (registered)
        vmi_clear_event(vmi, &cr3_event, NULL);
    vmi_destroy(vmi);
done:
    ex_done(&o);
    return ret;
}
