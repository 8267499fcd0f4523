/*
 * interrupt-event-example: LibVMI's INT3 event example, written for
 * TinyVMI.  A software breakpoint the LibVMI way: the program writes an
 * INT3 (0xCC) over the first byte of a kernel function (default
 * do_sys_openat2) and registers an INT3 interrupt event.  At each hit it
 * prints vCPU, RIP, CR3 and the calling process, puts the original byte
 * back, single-steps that vCPU over the instruction and writes the INT3
 * again.  INT3s that are not ours are re-injected: the guest handles them
 * as it would without us.  Ctrl-C ends it; the original byte is restored
 * and the guest goes on running.
 *
 *   interrupt-event-example <vm> [symbol|0xADDR]
 *
 * LibVMI's API only (libvmi/libvmi.h, libvmi/events.h), except
 * tinyvmi_current_process (<tinyvmi/tinyvmi.h>), which names the process:
 * LibVMI has no call for that (a LibVMI program reads the kernel's current
 * task itself).
 */
#include "example.h"

#include <libvmi/events.h>
#include <tinyvmi/tinyvmi.h>

typedef struct bp {
    addr_t va, pa;
    uint8_t orig;
    uint64_t hits;
    vmi_event_t step; /* the re-arming single step */
} bp_t;

static event_response_t on_int3(vmi_instance_t vmi, vmi_event_t *event)
{
    bp_t *b = event->data;
    interrupt_event_t *ie = &event->interrupt_event;
    addr_t pa = (ie->gfn << 12) | ie->offset;
    if (pa != b->pa || ie->insn_length != 1) {
        ie->reinject = 1; /* not ours: the guest's own */
        return VMI_EVENT_RESPONSE_NONE;
    }
    const x86_registers_t *r = event->x86_regs;
    tinyvmi_process_t p;
    if (tinyvmi_current_process(vmi, event->vcpu_id, &p) != VMI_SUCCESS) {
        memset(&p, 0, sizeof p);
        p.pid = -1;
        snprintf(p.name, sizeof p.name, "?");
    }
    b->hits++;
    printf("INT3 event %" PRIu64 ": vCPU %u RIP 0x%016" PRIx64
           " CR3 0x%" PRIx64 " GLA 0x%016" PRIx64 " GFN 0x%" PRIx64
           " pid %d (%s)\n",
           b->hits, event->vcpu_id, r->rip, r->cr3, ie->gla, ie->gfn,
           (int)p.pid, p.name);
    fflush(stdout);
    /* Run the real instruction once, then put the INT3 back. */
    vmi_write_8_pa(vmi, b->pa, &b->orig);
    ie->reinject = 0;
    return VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP;
}

static event_response_t on_step(vmi_instance_t vmi, vmi_event_t *event)
{
    bp_t *b = event->data;
    uint8_t cc = 0xcc;
    if (!*ex_stop_flag())
        vmi_write_8_pa(vmi, b->pa, &cc);
    return VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    vmi_event_t event;
    bp_t b;
    int ret = 1, registered = 0, stepping = 0, armed = 0;
    const char *sym = "do_sys_openat2";

    memset(&b, 0, sizeof b);
    if (ex_parse(argc, argv, 0, 1, "[symbol|0xADDR]",
                 "Software breakpoint (INT3) on a kernel function (default "
                 "do_sys_openat2): prints each hit until Ctrl-C.",
                 &o))
        return 1;
    if (o.nargs == 1)
        sym = o.args[0];
    ex_catch_signals();
    if (ex_init(&o, VMI_INIT_EVENTS, &vmi) != VMI_SUCCESS)
        goto done;

    char *end = NULL;
    if (!strncmp(sym, "0x", 2))
        b.va = strtoull(sym, &end, 16);
    if ((!end || *end) && vmi_translate_ksym2v(vmi, sym, &b.va) != VMI_SUCCESS) {
        printf("Failed to find kernel symbol %s\n", sym);
        goto out;
    }
    if (vmi_translate_kv2p(vmi, b.va, &b.pa) != VMI_SUCCESS ||
        vmi_read_8_pa(vmi, b.pa, &b.orig) != VMI_SUCCESS) {
        printf("Failed to read the code at 0x%" PRIx64 "\n", b.va);
        goto out;
    }

    memset(&event, 0, sizeof event);
    SETUP_INTERRUPT_EVENT(&event, 0, on_int3);
    event.data = &b;
    if (vmi_register_event(vmi, &event) != VMI_SUCCESS) {
        printf("Failed to register the INT3 event\n");
        goto out;
    }
    registered = 1;
    /* Every vCPU may step; none does until a hit toggles it on. */
    uint32_t all = (1u << vmi_get_num_vcpus(vmi)) - 1;
    SETUP_SINGLESTEP_EVENT(&b.step, all, on_step, 0);
    b.step.data = &b;
    if (vmi_register_event(vmi, &b.step) != VMI_SUCCESS) {
        printf("Failed to register the single-step event\n");
        goto out;
    }
    stepping = 1;
    uint8_t cc = 0xcc;
    if (vmi_write_8_pa(vmi, b.pa, &cc) != VMI_SUCCESS) {
        printf("Failed to write the INT3 at 0x%" PRIx64 "\n", b.pa);
        goto out;
    }
    armed = 1;
    printf("INT3 on %s at 0x%" PRIx64 " (physical 0x%" PRIx64 "); waiting "
           "for events (Ctrl-C ends)...\n",
           sym, b.va, b.pa);
    fflush(stdout);

    ret = ex_listen(vmi);
    printf("Finished: %" PRIu64 " hit(s) of %s\n", b.hits, sym);
out:
    if (armed) { /* the original byte back, with the guest standing still */
        vmi_pause_vm(vmi);
        vmi_write_8_pa(vmi, b.pa, &b.orig);
        vmi_resume_vm(vmi);
    }
    if (stepping)
        vmi_clear_event(vmi, &b.step, NULL);
    if (registered)
        vmi_clear_event(vmi, &event, NULL);
    vmi_destroy(vmi);
done:
    ex_done(&o);
    return ret;
}
