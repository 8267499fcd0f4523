/* xenev: the Xen lab's event probe (tests/xen/test_xen_events.py).
 *
 *   xenev <domain> <seconds> KIND...
 *
 * Attaches with vmi_init (the guest may not have booted yet), registers one
 * event per KIND: cr3, msr (MSR_ALL), cpuid, guest-request, debug,
 * singlestep, mem:GFN (writes to the page), dr:VA (a hardware breakpoint:
 * DR0 = VA, enabled in DR7 on every vCPU, and debug-exception events),
 * listens for <seconds> (or until SIGINT/SIGTERM), clears them, restores DR0
 * and DR7, and detaches.  One line per thing seen:
 *   REGISTER kind OK | REGISTER kind FAILED: reason
 *   CR3 vcpu value previous     (each value the first time it is seen)
 *   MSR vcpu index value
 *   CPUID vcpu leaf subleaf insn_length rip   (the first 200)
 *   DEBUG vcpu rip cr3 type insn_length       (the first 50)
 *   ARMED|RESTORED|SAVED vcpu dr0 dr7   (read back after arming, after
 *                               restoring; the values saved before)
 *   DISARMED reason             (the breakpoint went off too often: a loop)
 *   COUNT kind n
 * CPUID is emulated the way a LibVMI tool must on Xen: the request carries
 * the results in the registers, the callback moves RIP past the
 * instruction (VMI_EVENT_RESPONSE_SET_REGISTERS).  A debug exception at VA
 * is answered with RFLAGS.RF set, so the instruction runs once without
 * faulting again; any other is given back to the guest (reinject). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvmi/events.h>
#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#define MAX_CR3 4096
#define MAX_BP_HITS 300 /* more in one run: RF did not hold, disarm */
#define RFLAGS_RF (1ull << 16)

static volatile sig_atomic_t stop;
static uint64_t seen[MAX_CR3];
static size_t nseen;
static uint64_t n_cr3, n_msr, n_cpuid, n_other, n_debug, n_bp;
static addr_t bp_va;

static void on_signal(int sig)
{
    stop = sig;
}

static event_response_t on_cr3(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    n_cr3++;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i] == ev->reg_event.value)
            return VMI_EVENT_RESPONSE_NONE;
    if (nseen < MAX_CR3)
        seen[nseen++] = ev->reg_event.value;
    printf("CR3 %u 0x%" PRIx64 " 0x%" PRIx64 "\n", ev->vcpu_id,
           ev->reg_event.value, ev->reg_event.previous);
    return VMI_EVENT_RESPONSE_NONE;
}

static event_response_t on_msr(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    n_msr++;
    printf("MSR %u 0x%" PRIx32 " 0x%" PRIx64 "\n", ev->vcpu_id,
           ev->reg_event.msr, ev->reg_event.value);
    return VMI_EVENT_RESPONSE_NONE;
}

static event_response_t on_cpuid(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    if (n_cpuid++ < 200)
        printf("CPUID %u 0x%" PRIx32 " 0x%" PRIx32 " %" PRIu32
               " 0x%" PRIx64 "\n",
               ev->vcpu_id, ev->cpuid_event.leaf, ev->cpuid_event.subleaf,
               ev->cpuid_event.insn_length, ev->x86_regs->rip);
    ev->x86_regs->rip += ev->cpuid_event.insn_length;
    return VMI_EVENT_RESPONSE_SET_REGISTERS;
}

static event_response_t on_debug(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    x86_registers_t *r = ev->x86_regs;
    if (n_debug++ < 50)
        printf("DEBUG %u 0x%" PRIx64 " 0x%" PRIx64 " %u %" PRIu32 "\n",
               ev->vcpu_id, r->rip, r->cr3, ev->debug_event.type,
               ev->debug_event.insn_length);
    if (r->rip != bp_va) {
        ev->debug_event.reinject = 1; /* not ours: the guest's own */
        return VMI_EVENT_RESPONSE_NONE;
    }
    n_bp++;
    r->rflags |= RFLAGS_RF;
    return VMI_EVENT_RESPONSE_SET_REGISTERS;
}

/* DR0 and DR7 of every vCPU: armed with va (execute, local enable 0), or
 * put back as saved. */
static int set_dr(vmi_instance_t vmi, unsigned n, uint64_t *dr0, uint64_t *dr7,
                  bool arm)
{
    for (unsigned v = 0; v < n; v++) {
        if (arm && (vmi_get_vcpureg(vmi, &dr0[v], DR0, v) != VMI_SUCCESS ||
                    vmi_get_vcpureg(vmi, &dr7[v], DR7, v) != VMI_SUCCESS))
            return -1;
        /* slot 0: L0 on, R/W0 = 00 (execute), LEN0 = 00 */
        uint64_t d7 = arm ? (dr7[v] & ~0xf0003ull) | 1 : dr7[v];
        if (vmi_set_vcpureg(vmi, arm ? bp_va : dr0[v], DR0, v) != VMI_SUCCESS ||
            vmi_set_vcpureg(vmi, d7, DR7, v) != VMI_SUCCESS)
            return -1;
    }
    return 0;
}

/* "WHAT vcpu dr0 dr7" for every vCPU, as read back. */
static void show_dr(vmi_instance_t vmi, unsigned n, const char *what)
{
    for (unsigned v = 0; v < n; v++) {
        uint64_t d0 = 0, d7 = 0;
        vmi_get_vcpureg(vmi, &d0, DR0, v);
        vmi_get_vcpureg(vmi, &d7, DR7, v);
        printf("%s %u 0x%" PRIx64 " 0x%" PRIx64 "\n", what, v, d0, d7);
    }
}

static event_response_t on_other(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    n_other++;
    printf("EVENT type %u vcpu %u rip 0x%" PRIx64 "\n", ev->type,
           ev->vcpu_id, ev->x86_regs ? ev->x86_regs->rip : 0);
    return VMI_EVENT_RESPONSE_NONE;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <domain> <seconds> KIND...\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    vmi_instance_t vmi = NULL;
    vmi_init_error_t err = VMI_INIT_ERROR_NONE;
    if (vmi_init(&vmi, VMI_XEN, argv[1], VMI_INIT_DOMAINNAME | VMI_INIT_EVENTS,
                 NULL, &err) != VMI_SUCCESS) {
        printf("INIT FAILED: %s\n", tinyvmi_init_error());
        return 1;
    }
    int nk = argc - 3;
    vmi_event_t *ev = calloc((size_t)nk, sizeof *ev);
    int *on = calloc((size_t)nk, sizeof *on);
    if (!ev || !on)
        return 1;
    for (int i = 0; i < nk; i++) {
        const char *k = argv[3 + i];
        vmi_event_t *e = &ev[i];
        e->version = VMI_EVENTS_VERSION;
        e->callback = on_other;
        if (!strcmp(k, "cr3") || !strcmp(k, "msr")) {
            e->type = VMI_EVENT_REGISTER;
            e->reg_event.reg = k[0] == 'c' ? CR3 : MSR_ALL;
            e->reg_event.in_access = VMI_REGACCESS_W;
            e->callback = k[0] == 'c' ? on_cr3 : on_msr;
        } else if (!strcmp(k, "cpuid")) {
            e->type = VMI_EVENT_CPUID;
            e->callback = on_cpuid;
        } else if (!strcmp(k, "guest-request")) {
            e->type = VMI_EVENT_GUEST_REQUEST;
        } else if (!strcmp(k, "debug")) {
            e->type = VMI_EVENT_DEBUG_EXCEPTION;
        } else if (!strncmp(k, "dr:", 3)) {
            bp_va = strtoull(k + 3, NULL, 0);
            e->type = VMI_EVENT_DEBUG_EXCEPTION;
            e->callback = on_debug;
        } else if (!strcmp(k, "singlestep")) {
            SETUP_SINGLESTEP_EVENT(e, 1u, on_other, 1);
        } else if (!strncmp(k, "mem:", 4)) {
            SETUP_MEM_EVENT(e, strtoull(k + 4, NULL, 0), VMI_MEMACCESS_W,
                            on_other, 0);
        } else {
            printf("REGISTER %s FAILED: unknown kind\n", k);
            continue;
        }
        if (vmi_register_event(vmi, e) == VMI_SUCCESS) {
            on[i] = 1;
            printf("REGISTER %s OK\n", k);
        } else {
            printf("REGISTER %s FAILED: %s\n", k, tinyvmi_last_error(vmi));
        }
    }
    unsigned nv = vmi_get_num_vcpus(vmi);
    uint64_t dr0[64], dr7[64];
    bool armed = false;
    if (bp_va && nv <= 64) {
        vmi_pause_vm(vmi);
        armed = set_dr(vmi, nv, dr0, dr7, true) == 0;
        vmi_resume_vm(vmi);
        printf("ARM 0x%" PRIx64 " %s%s\n", (uint64_t)bp_va,
               armed ? "OK" : "FAILED: ", armed ? "" : tinyvmi_last_error(vmi));
        show_dr(vmi, nv, "ARMED");
    }
    printf("READY\n");
    double end = now() + atof(argv[2]);
    int rc = 0;
    while (!stop && now() < end) {
        if (vmi_events_listen(vmi, 200) != VMI_SUCCESS) {
            printf("LISTEN FAILED: %s\n", tinyvmi_last_error(vmi));
            rc = 1;
            break;
        }
        if (armed && n_bp > MAX_BP_HITS) {
            vmi_pause_vm(vmi);
            set_dr(vmi, nv, dr0, dr7, false);
            vmi_resume_vm(vmi);
            armed = false;
            printf("DISARMED %" PRIu64 " hits: RF did not carry the guest "
                   "past the breakpoint\n", n_bp);
        }
    }
    if (armed) {
        vmi_pause_vm(vmi);
        if (set_dr(vmi, nv, dr0, dr7, false))
            printf("RESTORE FAILED: %s\n", tinyvmi_last_error(vmi));
        vmi_resume_vm(vmi);
        for (unsigned v = 0; v < nv; v++)
            printf("SAVED %u 0x%" PRIx64 " 0x%" PRIx64 "\n", v, dr0[v], dr7[v]);
        show_dr(vmi, nv, "RESTORED");
    }
    for (int i = 0; i < nk; i++)
        if (on[i] && vmi_clear_event(vmi, &ev[i], NULL) != VMI_SUCCESS)
            printf("CLEAR %s FAILED: %s\n", argv[3 + i],
                   tinyvmi_last_error(vmi));
    printf("COUNT cr3 %" PRIu64 "\nCOUNT cr3-distinct %zu\nCOUNT msr %" PRIu64
           "\nCOUNT cpuid %" PRIu64 "\nCOUNT debug %" PRIu64
           "\nCOUNT breakpoint %" PRIu64 "\nCOUNT other %" PRIu64 "\n",
           n_cr3, nseen, n_msr, n_cpuid, n_debug, n_bp, n_other);
    vmi_destroy(vmi);
    printf("DETACHED%s\n", stop ? " (signal)" : "");
    free(ev);
    free(on);
    return rc;
}
