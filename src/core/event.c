/*
 * LibVMI's event API over a driver's event group (tv_event_ops_t).
 * Freestanding core code: the registry lives in the instance and grows
 * through the allocator hook.
 *
 * What maps to what, for a debugger (QEMU's gdbstub):
 *   INT3 interrupt event  <- hits of breakpoints planted with
 *                            tinyvmi_set_breakpoint (the guest never sees
 *                            them; it goes on past the instruction)
 *   single-step event     <- the driver's per-vCPU stepping
 *   memory event on a gfn <- watchpoints on every kernel virtual address
 *                            that maps the page (found by a bounded reverse
 *                            walk of the kernel's page tables)
 * and for a hypervisor's monitor (Xen's vm_event): every event type is the
 * monitor's own (register writes, CPUID, guest requests, debug exceptions,
 * INT3, single steps, memory access on gfns), each stop carrying the
 * vCPU's registers.  Everything else is refused with a reason, never
 * ignored.
 */
#include <libvmi/events.h>

#include "core/tv.h"

#define TV_API __attribute__((visibility("default")))

#define EV_MAX_ALIASES 16
#define EV_PAGE 4096u
#define EV_MAX_MSRS 8

/* LibVMI's names of control registers, in the monitor's slot order. */
static const reg_t ev_crs[4] = {CR0, CR3, CR4, XCR0};

/* MSRs by LibVMI's register names: MSR_ALL watches all of them and the
 * ones LibVMI watches for it; one name watches one. */
static const struct {
    reg_t reg;      /* 0: only part of MSR_ALL */
    uint32_t index;
} ev_msrs[] = {
    {MSR_EFER, 0xc0000080},       {MSR_STAR, 0xc0000081},
    {MSR_LSTAR, 0xc0000082},      {MSR_CSTAR, 0xc0000083},
    {MSR_SYSCALL_MASK, 0xc0000084}, {MSR_SHADOW_GS_BASE, 0xc0000102},
    {MSR_TSC_AUX, 0xc0000103},
    {0, 0x250}, {0, 0x258}, {0, 0x259}, {0, 0x268}, {0, 0x269},
    {0, 0x26a}, {0, 0x26b}, {0, 0x26c}, {0, 0x26d}, {0, 0x26e},
    {0, 0x26f}, {0, 0x2ff},                       /* MTRRs */
    {0, 0x400}, {0, 0x401}, {0, 0x402}, {0, 0x403}, {0, 0x404},
    {0, 0x280},                                   /* machine check */
    {0, 0x8b}, {0, 0xc0000104}, {0, 0x0}, {0, 0x1}, {0, 0x10},
    {0, 0x17}, {0, 0x2a}, {0, 0x2c}, {0, 0x3a},
    {0, 0x174}, {0, 0x175}, {0, 0x176},           /* SYSENTER */
    {0, 0x1a0},
    /* not LibVMI's MSR_HYPERVISOR (0x40000000): Xen 4.17 on AMD hits a BUG()
     * when asked to intercept it (outside SVM's MSR permission map) */
};

typedef struct ev_bp {
    uint64_t va;
    uint64_t dtb; /* 0: any address space */
    uint64_t pa;  /* planted by physical address: that address */
    bool by_pa;
} ev_bp_t;

typedef struct ev_watch {
    vmi_event_t *ev;
    uint64_t gfn;
    uint8_t access;
    bool mon;      /* the monitor watches the gfn itself (no aliases) */
    size_t nva;
    uint64_t va[EV_MAX_ALIASES];
    uint8_t *snap; /* the page as last seen, to locate writes */
} ev_watch_t;

typedef struct tv_events {
    vmi_event_t *int3;
    uint64_t int3_handler; /* #BP's handler, breakpointed; 0: not caught */
    vmi_event_t *ss;
    ev_bp_t *bp;
    size_t nbp, capbp;
    ev_watch_t *w;
    size_t nw, capw;
    uint64_t step_mask;
    /* vmi_step_event: one pending countdown */
    vmi_event_t *step_ev;
    event_callback_t step_cb;
    uint32_t step_vcpu;
    uint64_t step_left;
    x86_registers_t regs;
    bool dispatching;
    bool replied;            /* reply holds the callback's answer */
    /* monitor events */
    vmi_event_t *cr[4];      /* CR0, CR3, CR4, XCR0 */
    vmi_event_t *msr_all;
    struct { vmi_event_t *ev; uint32_t index; } msr[EV_MAX_MSRS];
    size_t nmsr;
    vmi_event_t *cpuid, *guest_req, *debug;
    bool int3_mon;           /* the monitor reports the guest's INT3s */
    tv_reply_t reply;        /* for the stop being delivered */
} tv_events_t;

static status_t st(int rc)
{
    return rc ? VMI_FAILURE : VMI_SUCCESS;
}

static int need_events(struct vmi_instance *vmi)
{
    if (!vmi->have_drv || !vmi->drv.ev)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "%s targets have no events",
                       vmi->have_drv ? vmi->drv.name : "unattached");
    if (!vmi->events) {
        vmi->events = tv_calloc(vmi, 1, sizeof *vmi->events);
        if (!vmi->events)
            return tv_fail(vmi, TINYVMI_ENOMEM, "out of memory");
    }
    return TINYVMI_OK;
}

static int grow(struct vmi_instance *vmi, void **arr, size_t *cap, size_t n,
                size_t elem)
{
    if (n < *cap)
        return TINYVMI_OK;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = tv_calloc(vmi, ncap, elem);
    if (!p)
        return tv_fail(vmi, TINYVMI_ENOMEM, "out of memory");
    if (*arr) {
        tv_memcpy(p, *arr, n * elem);
        tv_free(vmi, *arr, *cap * elem);
    }
    *arr = p;
    *cap = ncap;
    return TINYVMI_OK;
}

static int unsupported(struct vmi_instance *vmi, const char *what)
{
    return tv_fail(vmi, TINYVMI_ENOTSUP, "%s: not delivered by %s targets "
                   "(not supported by the %s driver)", what, vmi->drv.name,
                   vmi->drv.name);
}

static int mon(struct vmi_instance *vmi, int kind, uint64_t arg, bool on)
{
    const tv_event_ops_t *ops = vmi->drv.ev;
    if (!ops->monitor)
        return unsupported(vmi, "hypervisor monitor events");
    tv_monitor_t m = {.kind = kind, .arg = arg};
    return ops->monitor(vmi->drv.ctx, &m, on);
}

static int set_step(struct vmi_instance *vmi, uint64_t mask)
{
    tv_events_t *e = vmi->events;
    const tv_event_ops_t *ops = vmi->drv.ev;
    int rc;
    if (ops->step)
        rc = ops->step(vmi->drv.ctx, mask);
    else if (ops->monitor)
        rc = mon(vmi, TV_MON_STEP, mask, mask != 0 || e->ss != NULL);
    else
        rc = unsupported(vmi, "single-stepping");
    if (!rc)
        e->step_mask = mask;
    return rc;
}

/* ---- Breakpoints (TinyVMI) ------------------------------------------------------ */

typedef struct aliases {
    uint64_t va[EV_MAX_ALIASES];
    size_t n;
} aliases_t;

static int add_va(void *arg, uint64_t va, uint64_t page_size)
{
    aliases_t *a = arg;
    (void)page_size;
    a->va[a->n++] = va;
    return a->n == TV_ARRAY_LEN(a->va);
}

/* The kernel virtual addresses (up to EV_MAX_ALIASES) that map physical
 * address pa: breakpoints and watchpoints match virtual addresses, as the
 * CPU does, so an event on a physical address is one on each of them. */
static int kernel_aliases(struct vmi_instance *vmi, uint64_t pa,
                          aliases_t *a)
{
    a->n = 0;
    if (!vmi->pt)
        return tv_fail(vmi, TINYVMI_ESTATE, "paging is not set up");
    uint64_t lo = vmi->pt->addr_width == 4 ? 0
                : ~0ULL << (vmi->pt->va_bits - 1);
    int rc = tv_pt_reverse(vmi, vmi->pt, vmi->kdtb, pa, lo, add_va, a);
    if (!rc && !a->n)
        rc = tv_fail(vmi, TINYVMI_ENOENT, "no kernel virtual address maps "
                     "physical 0x%llx (%s matches virtual addresses)",
                     (unsigned long long)pa, vmi->drv.name);
    return rc;
}

static int add_bp(struct vmi_instance *vmi, const ev_bp_t *bp)
{
    tv_events_t *e = vmi->events;
    if (!vmi->drv.ev->breakpoint)
        return unsupported(vmi, "breakpoints planted by TinyVMI");
    for (size_t i = 0; i < e->nbp; i++)
        if (e->bp[i].va == bp->va)
            return tv_fail(vmi, TINYVMI_EINVAL, "a breakpoint at 0x%llx "
                           "exists", (unsigned long long)bp->va);
    int rc = grow(vmi, (void **)&e->bp, &e->capbp, e->nbp, sizeof *e->bp);
    if (!rc)
        rc = vmi->drv.ev->breakpoint(vmi->drv.ctx, bp->va, true);
    if (!rc)
        e->bp[e->nbp++] = *bp;
    return rc;
}

TV_API status_t tinyvmi_set_breakpoint(vmi_instance_t vmi, addr_t va,
                                       addr_t dtb)
{
    if (!vmi)
        return VMI_FAILURE;
    int rc = need_events(vmi);
    ev_bp_t bp = {va, vmi->pt && dtb ? dtb & vmi->pt->root_mask : 0, 0,
                  false};
    return st(rc ? rc : add_bp(vmi, &bp));
}

/* A breakpoint by physical address: one at each kernel alias. */
TV_API status_t tinyvmi_set_breakpoint_pa(vmi_instance_t vmi, addr_t pa)
{
    if (!vmi)
        return VMI_FAILURE;
    aliases_t a = {.n = 0};
    int rc = need_events(vmi);
    if (!rc)
        rc = kernel_aliases(vmi, pa, &a);
    size_t set = 0;
    for (; !rc && set < a.n; set++) {
        ev_bp_t bp = {a.va[set], 0, pa, true};
        rc = add_bp(vmi, &bp);
    }
    if (rc)
        while (set-- > 1)
            tinyvmi_clear_breakpoint(vmi, a.va[set - 1]);
    return st(rc);
}

TV_API status_t tinyvmi_clear_breakpoint(vmi_instance_t vmi, addr_t va)
{
    if (!vmi || need_events(vmi))
        return VMI_FAILURE;
    tv_events_t *e = vmi->events;
    for (size_t i = 0; i < e->nbp; i++) {
        if (e->bp[i].va != va)
            continue;
        int rc = vmi->drv.ev->breakpoint(vmi->drv.ctx, va, false);
        e->bp[i] = e->bp[--e->nbp];
        return st(rc);
    }
    return st(tv_fail(vmi, TINYVMI_ENOENT, "no breakpoint at 0x%llx",
                      (unsigned long long)va));
}

TV_API status_t tinyvmi_clear_breakpoint_pa(vmi_instance_t vmi, addr_t pa)
{
    if (!vmi || need_events(vmi))
        return VMI_FAILURE;
    tv_events_t *e = vmi->events;
    int rc = TINYVMI_OK;
    bool found = false;
    for (size_t i = e->nbp; i-- > 0;) {
        if (!e->bp[i].by_pa || e->bp[i].pa != pa)
            continue;
        int rc2 = vmi->drv.ev->breakpoint(vmi->drv.ctx, e->bp[i].va, false);
        rc = rc ? rc : rc2;
        e->bp[i] = e->bp[--e->nbp];
        found = true;
    }
    if (!found)
        rc = tv_fail(vmi, TINYVMI_ENOENT, "no breakpoint at physical 0x%llx",
                     (unsigned long long)pa);
    return st(rc);
}

/* ---- Memory events ----------------------------------------------------------------- */

static void watch_off(struct vmi_instance *vmi, ev_watch_t *w)
{
    if (w->mon) {
        tv_monitor_t m = {.kind = TV_MON_MEM, .arg = w->gfn,
                          .access = w->access};
        vmi->drv.ev->monitor(vmi->drv.ctx, &m, false);
        w->mon = false;
    }
    for (size_t i = 0; i < w->nva; i++)
        vmi->drv.ev->watchpoint(vmi->drv.ctx, w->va[i], EV_PAGE, w->access,
                                false);
    if (w->snap)
        tv_free(vmi, w->snap, EV_PAGE);
    w->snap = NULL;
    w->nva = 0;
}

/* The monitor watches the page itself (Xen: the gfn's access rights). */
static int register_mem_mon(struct vmi_instance *vmi, vmi_event_t *ev)
{
    tv_events_t *e = vmi->events;
    mem_access_event_t *m = &ev->mem_event;
    uint8_t acc = m->in_access;
    if (!vmi->drv.ev->monitor)
        return unsupported(vmi, "memory events");
    if (!acc || acc & ~(uint8_t)VMI_MEMACCESS_RWX)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "memory access 0x%x: %s "
                       "watches reads, writes and execution of a page",
                       (unsigned)acc, vmi->drv.name);
    for (size_t i = 0; i < e->nw; i++)
        if (e->w[i].gfn == m->gfn)
            return tv_fail(vmi, TINYVMI_EINVAL, "a memory event on gfn "
                           "0x%llx exists", (unsigned long long)m->gfn);
    int rc = grow(vmi, (void **)&e->w, &e->capw, e->nw, sizeof *e->w);
    tv_monitor_t mm = {.kind = TV_MON_MEM, .arg = m->gfn, .access = acc};
    if (!rc)
        rc = vmi->drv.ev->monitor(vmi->drv.ctx, &mm, true);
    if (rc)
        return rc;
    e->w[e->nw++] = (ev_watch_t){.ev = ev, .gfn = m->gfn, .access = acc,
                                 .mon = true};
    return TINYVMI_OK;
}

static int register_mem(struct vmi_instance *vmi, vmi_event_t *ev)
{
    tv_events_t *e = vmi->events;
    mem_access_event_t *m = &ev->mem_event;
    uint8_t acc = m->in_access;
    if (m->generic)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "generic memory events (every "
                       "page) need the hypervisor's second-level page tables; "
                       "%s watches given pages", vmi->drv.name);
    if (!vmi->drv.ev->watchpoint)
        return register_mem_mon(vmi, ev);
    if (acc & ~(VMI_MEMACCESS_RW) || !acc)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "memory access 0x%x: %s watches "
                       "reads and writes (execution: use a breakpoint)",
                       (unsigned)acc, vmi->drv.name);
    aliases_t a;
    int rc = kernel_aliases(vmi, m->gfn << 12, &a);
    if (!rc)
        rc = grow(vmi, (void **)&e->w, &e->capw, e->nw, sizeof *e->w);
    if (rc)
        return rc;
    ev_watch_t *w = &e->w[e->nw];
    *w = (ev_watch_t){.ev = ev, .gfn = m->gfn, .access = acc, .nva = a.n};
    for (size_t i = 0; i < a.n; i++)
        w->va[i] = a.va[i] & ~(uint64_t)(EV_PAGE - 1);
    size_t set = 0;
    for (; !rc && set < w->nva; set++)
        rc = vmi->drv.ev->watchpoint(vmi->drv.ctx, w->va[set], EV_PAGE, acc,
                                     true);
    if (rc) {
        w->nva = set ? set - 1 : 0;
        watch_off(vmi, w);
        return rc;
    }
    w->snap = tv_alloc(vmi, EV_PAGE);
    if (w->snap && tv_read_pa(vmi, m->gfn << 12, w->snap, EV_PAGE, NULL)) {
        tv_free(vmi, w->snap, EV_PAGE);
        w->snap = NULL;
    }
    e->nw++;
    tv_log(vmi, 2, "watching gfn 0x%llx through %zu kernel address(es)",
           (unsigned long long)m->gfn, w->nva);
    return TINYVMI_OK;
}

/* ---- The guest's own INT3s -------------------------------------------------- */

/* LibVMI's INT3 events are the guest executing INT3 (a breakpoint a tool
 * wrote into its memory).  A debugger stops the vCPU at the first
 * instruction of the #BP handler instead: the exception frame on the stack
 * says where the INT3 was and what the registers were. */
static int arm_int3(struct vmi_instance *vmi)
{
    tv_events_t *e = vmi->events;
    uint64_t idtr = 0, limit = 0;
    uint8_t gate[16];
    int rc = vmi_get_vcpureg(vmi, &idtr, IDTR_BASE, 0) == VMI_SUCCESS &&
                     vmi_get_vcpureg(vmi, &limit, IDTR_LIMIT, 0) == VMI_SUCCESS
                 ? TINYVMI_OK
                 : vmi->last_status;
    if (!rc && limit < 3 * 16 + 15)
        rc = tv_fail(vmi, TINYVMI_EFORMAT, "the IDT (limit 0x%llx) has no "
                     "#BP gate", (unsigned long long)limit);
    if (!rc && !vmi->pt)
        rc = tv_fail(vmi, TINYVMI_ESTATE, "paging is not set up");
    if (!rc)
        rc = tv_read_va(vmi, NULL, vmi->kdtb, idtr + 3 * 16, gate, 16, NULL);
    if (!rc && !(gate[5] & 0x80))
        rc = tv_fail(vmi, TINYVMI_EFORMAT, "the IDT's #BP gate is not present");
    uint64_t handler = (uint64_t)tv_le16(gate) |
                       (uint64_t)tv_le16(gate + 6) << 16 |
                       (uint64_t)tv_le32(gate + 8) << 32;
    if (!rc)
        rc = vmi->drv.ev->breakpoint(vmi->drv.ctx, handler, true);
    if (rc) {
        tv_log(vmi, 1, "the guest's own INT3 instructions will not be "
               "reported: %s", vmi->last_error);
        return rc;
    }
    e->int3_handler = handler;
    return TINYVMI_OK;
}

static void disarm_int3(struct vmi_instance *vmi)
{
    tv_events_t *e = vmi->events;
    if (e->int3_handler)
        vmi->drv.ev->breakpoint(vmi->drv.ctx, e->int3_handler, false);
    e->int3_handler = 0;
}

/* ---- Registration -------------------------------------------------------------------- */

TV_API uint32_t vmi_events_version(void)
{
    return VMI_EVENTS_VERSION;
}

/* ---- Monitor events: registers, CPUID, guest requests, #DB -------------------- */

static int cr_slot(reg_t reg)
{
    for (int i = 0; i < 4; i++)
        if (ev_crs[i] == reg)
            return i;
    return -1;
}

static vmi_event_t *named_msr(const tv_events_t *e, uint32_t index)
{
    for (size_t i = 0; i < e->nmsr; i++)
        if (e->msr[i].index == index)
            return e->msr[i].ev;
    return NULL;
}

/* MSR_ALL: every MSR of the table the host lets us watch (LibVMI also
 * goes on past the ones it refuses); at least one must take, else the
 * first refusal is the answer. */
static int msr_all_on(struct vmi_instance *vmi, bool on)
{
    tv_events_t *e = vmi->events;
    size_t ok = 0;
    int rc = TINYVMI_OK;
    for (size_t i = 0; i < TV_ARRAY_LEN(ev_msrs); i++) {
        if (!on && named_msr(e, ev_msrs[i].index))
            continue; /* still watched for its own event */
        int r = mon(vmi, TV_MON_MSR, ev_msrs[i].index, on);
        if (!r)
            ok++;
        else if (!rc)
            rc = r;
    }
    if (on && !ok)
        return rc;
    if (on && rc)
        tv_log(vmi, 2, "MSR_ALL: %zu of %zu MSRs watched", ok,
               TV_ARRAY_LEN(ev_msrs));
    return TINYVMI_OK;
}

static int register_reg(struct vmi_instance *vmi, vmi_event_t *ev)
{
    tv_events_t *e = vmi->events;
    reg_event_t *r = &ev->reg_event;
    if (!vmi->drv.ev->monitor)
        return unsupported(vmi, "register events");
    if (r->in_access != VMI_REGACCESS_W)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "register events: %s delivers "
                       "writes (VMI_REGACCESS_W), not access 0x%x",
                       vmi->drv.name, (unsigned)r->in_access);
    int slot = cr_slot(r->reg);
    if (slot >= 0) {
        if (e->cr[slot])
            return tv_fail(vmi, TINYVMI_EINVAL, "an event on register %u "
                           "is registered", (unsigned)r->reg);
        tv_monitor_t m = {.kind = TV_MON_CR, .arg = r->reg,
                          .onchange = r->onchange, .async = r->async};
        int rc = vmi->drv.ev->monitor(vmi->drv.ctx, &m, true);
        if (!rc)
            e->cr[slot] = ev;
        return rc;
    }
    if (r->reg == MSR_ALL) {
        if (e->msr_all)
            return tv_fail(vmi, TINYVMI_EINVAL, "an MSR_ALL event is "
                           "registered");
        int rc = msr_all_on(vmi, true);
        if (!rc)
            e->msr_all = ev;
        return rc;
    }
    for (size_t i = 0; i < TV_ARRAY_LEN(ev_msrs); i++) {
        if (!ev_msrs[i].reg || ev_msrs[i].reg != r->reg)
            continue;
        uint32_t index = ev_msrs[i].index;
        if (named_msr(e, index) || e->nmsr == EV_MAX_MSRS)
            return tv_fail(vmi, TINYVMI_EINVAL, "an event on MSR 0x%x is "
                           "registered", index);
        int rc = mon(vmi, TV_MON_MSR, index, true);
        if (!rc) {
            e->msr[e->nmsr].ev = ev;
            e->msr[e->nmsr++].index = index;
        }
        return rc;
    }
    return tv_fail(vmi, TINYVMI_ENOTSUP, "register events on register %u: "
                   "%s delivers CR0, CR3, CR4, XCR0, MSR_ALL and the named "
                   "MSR_* registers", (unsigned)r->reg, vmi->drv.name);
}

static int clear_reg(struct vmi_instance *vmi, vmi_event_t *ev)
{
    tv_events_t *e = vmi->events;
    for (int i = 0; i < 4; i++)
        if (e->cr[i] == ev) {
            e->cr[i] = NULL;
            return mon(vmi, TV_MON_CR, ev_crs[i], false);
        }
    if (e->msr_all == ev) {
        e->msr_all = NULL;
        return msr_all_on(vmi, false);
    }
    for (size_t i = 0; i < e->nmsr; i++) {
        if (e->msr[i].ev != ev)
            continue;
        uint32_t index = e->msr[i].index;
        e->msr[i] = e->msr[--e->nmsr];
        return e->msr_all ? TINYVMI_OK : mon(vmi, TV_MON_MSR, index, false);
    }
    return TINYVMI_ENOENT;
}

/* One event per type: CPUID, guest requests, debug exceptions. */
static int register_one(struct vmi_instance *vmi, vmi_event_t **slot,
                        vmi_event_t *ev, int kind, const char *what)
{
    if (!vmi->drv.ev->monitor)
        return unsupported(vmi, what);
    if (*slot)
        return tv_fail(vmi, TINYVMI_EINVAL, "a %s event is registered", what);
    int rc = mon(vmi, kind, 0, true);
    if (!rc)
        *slot = ev;
    return rc;
}

static int do_register(struct vmi_instance *vmi, vmi_event_t *ev)
{
    int rc = need_events(vmi);
    if (rc)
        return rc;
    tv_events_t *e = vmi->events;
    if (ev->version != VMI_EVENTS_VERSION)
        return tv_fail(vmi, TINYVMI_EINVAL, "event version 0x%x, this "
                       "library speaks 0x%x", ev->version, VMI_EVENTS_VERSION);
    if (!ev->callback)
        return tv_fail(vmi, TINYVMI_EINVAL, "an event needs a callback");
    switch (ev->type) {
    case VMI_EVENT_INTERRUPT:
        if (ev->interrupt_event.intr != INT3)
            return tv_fail(vmi, TINYVMI_ENOTSUP, "%s delivers INT3 interrupt "
                           "events only", vmi->drv.name);
        if (e->int3)
            return tv_fail(vmi, TINYVMI_EINVAL, "an INT3 event is registered");
        if (!vmi->drv.ev->breakpoint) {
            if ((rc = mon(vmi, TV_MON_INT3, 0, true)))
                return rc;
            e->int3_mon = true;
            e->int3 = ev;
            return TINYVMI_OK;
        }
        e->int3 = ev;
        arm_int3(vmi); /* without it, tinyvmi_set_breakpoint still works */
        return TINYVMI_OK;
    case VMI_EVENT_SINGLESTEP:
        if (e->ss)
            return tv_fail(vmi, TINYVMI_EINVAL, "a single-step event is "
                           "registered");
        if (!vmi->drv.ev->step) {
            /* a monitor is asked at registration, stepping or not, so a
             * host without single steps says so now */
            uint64_t mask = e->step_mask |
                            (ev->ss_event.enable ? ev->ss_event.vcpus : 0);
            if ((rc = mon(vmi, TV_MON_STEP, mask, true)))
                return rc;
            e->step_mask = mask;
        } else if (ev->ss_event.enable &&
                   (rc = set_step(vmi, e->step_mask | ev->ss_event.vcpus))) {
            return rc;
        }
        e->ss = ev;
        return TINYVMI_OK;
    case VMI_EVENT_MEMORY:
        return register_mem(vmi, ev);
    case VMI_EVENT_REGISTER:
        return register_reg(vmi, ev);
    case VMI_EVENT_CPUID:
        return register_one(vmi, &e->cpuid, ev, TV_MON_CPUID, "CPUID");
    case VMI_EVENT_GUEST_REQUEST:
        return register_one(vmi, &e->guest_req, ev, TV_MON_GUEST_REQUEST,
                            "guest request");
    case VMI_EVENT_DEBUG_EXCEPTION:
        return register_one(vmi, &e->debug, ev, TV_MON_DEBUG,
                            "debug exception");
    default:
        return tv_fail(vmi, TINYVMI_ENOTSUP, "event type %u is not delivered "
                       "by %s targets", (unsigned)ev->type, vmi->drv.name);
    }
}

TV_API status_t vmi_register_event(vmi_instance_t vmi, vmi_event_t *event)
{
    if (!vmi || !event)
        return VMI_FAILURE;
    return st(do_register(vmi, event));
}

static int do_clear(struct vmi_instance *vmi, vmi_event_t *ev)
{
    tv_events_t *e = vmi->events;
    if (!e)
        return tv_fail(vmi, TINYVMI_ENOENT, "no events registered");
    if (ev == e->int3) {
        e->int3 = NULL;
        if (e->int3_mon) {
            e->int3_mon = false;
            return mon(vmi, TV_MON_INT3, 0, false);
        }
        disarm_int3(vmi);
        return TINYVMI_OK;
    }
    if (ev == e->cpuid || ev == e->guest_req || ev == e->debug) {
        vmi_event_t **slot = ev == e->cpuid ? &e->cpuid
                           : ev == e->guest_req ? &e->guest_req : &e->debug;
        int kind = ev == e->cpuid ? TV_MON_CPUID
                 : ev == e->guest_req ? TV_MON_GUEST_REQUEST : TV_MON_DEBUG;
        *slot = NULL;
        return mon(vmi, kind, 0, false);
    }
    if (ev->type == VMI_EVENT_REGISTER) {
        int rc = clear_reg(vmi, ev);
        if (rc != TINYVMI_ENOENT)
            return rc;
    }
    if (ev == e->ss) {
        e->ss = NULL;
        return set_step(vmi, 0);
    }
    for (size_t i = 0; i < e->nw; i++) {
        if (e->w[i].ev != ev)
            continue;
        watch_off(vmi, &e->w[i]);
        e->w[i] = e->w[--e->nw];
        return TINYVMI_OK;
    }
    return tv_fail(vmi, TINYVMI_ENOENT, "that event is not registered");
}

TV_API status_t vmi_clear_event(vmi_instance_t vmi, vmi_event_t *event,
                                vmi_event_free_t free_routine)
{
    if (!vmi || !event)
        return VMI_FAILURE;
    int rc = do_clear(vmi, event);
    if (free_routine)
        free_routine(event, st(rc));
    return st(rc);
}

TV_API status_t vmi_swap_events(vmi_instance_t vmi, vmi_event_t *swap_from,
                                vmi_event_t *swap_to,
                                vmi_event_free_t free_routine)
{
    if (!vmi || !swap_from || !swap_to)
        return VMI_FAILURE;
    int rc = do_clear(vmi, swap_from);
    if (!rc)
        rc = do_register(vmi, swap_to);
    if (free_routine)
        free_routine(swap_from, st(rc));
    return st(rc);
}

TV_API vmi_event_t *vmi_get_reg_event(vmi_instance_t vmi, reg_t reg)
{
    if (!vmi || !vmi->events)
        return NULL;
    tv_events_t *e = vmi->events;
    int slot = cr_slot(reg);
    if (slot >= 0)
        return e->cr[slot];
    if (reg == MSR_ALL)
        return e->msr_all;
    for (size_t i = 0; i < TV_ARRAY_LEN(ev_msrs); i++)
        if (ev_msrs[i].reg && ev_msrs[i].reg == reg)
            return named_msr(e, ev_msrs[i].index);
    return NULL;
}

TV_API vmi_event_t *vmi_get_mem_event(vmi_instance_t vmi, addr_t gfn,
                                      vmi_mem_access_t access)
{
    if (!vmi || !vmi->events)
        return NULL;
    for (size_t i = 0; i < vmi->events->nw; i++)
        if (vmi->events->w[i].gfn == gfn &&
            (!access || vmi->events->w[i].access == access))
            return vmi->events->w[i].ev;
    return NULL;
}

TV_API status_t vmi_set_mem_event(vmi_instance_t vmi, addr_t gfn,
                                  vmi_mem_access_t access, uint16_t slat_id)
{
    (void)gfn;
    (void)access;
    (void)slat_id;
    if (!vmi)
        return VMI_FAILURE;
    return st(tv_fail(vmi, TINYVMI_ENOTSUP, "vmi_set_mem_event works with "
                      "generic memory events, which %s targets do not have",
                      vmi->have_drv ? vmi->drv.name : "unattached"));
}

TV_API vmi_event_t *vmi_get_singlestep_event(vmi_instance_t vmi,
                                             uint32_t vcpu)
{
    if (!vmi || !vmi->events || !vmi->events->ss || vcpu >= 32 ||
        !(vmi->events->ss->ss_event.vcpus >> vcpu & 1))
        return NULL;
    return vmi->events->ss;
}

TV_API status_t vmi_stop_single_step_vcpu(vmi_instance_t vmi,
                                          vmi_event_t *event, uint32_t vcpu)
{
    if (!vmi || !event || vcpu >= 64 || need_events(vmi))
        return VMI_FAILURE;
    if (vcpu < 32)
        event->ss_event.vcpus &= ~(1u << vcpu);
    return st(set_step(vmi, vmi->events->step_mask & ~(1ULL << vcpu)));
}

TV_API status_t vmi_shutdown_single_step(vmi_instance_t vmi)
{
    if (!vmi || need_events(vmi))
        return VMI_FAILURE;
    vmi->events->ss = NULL;
    vmi->events->step_ev = NULL;
    return st(set_step(vmi, 0));
}

TV_API status_t vmi_step_event(vmi_instance_t vmi, vmi_event_t *event,
                               uint32_t vcpu_id, uint64_t steps,
                               event_callback_t cb)
{
    if (!vmi || !event || !steps || vcpu_id >= 64 || need_events(vmi))
        return VMI_FAILURE;
    tv_events_t *e = vmi->events;
    if (e->step_ev)
        return st(tv_fail(vmi, TINYVMI_EINVAL, "a step countdown is running"));
    int rc = set_step(vmi, e->step_mask | 1ULL << vcpu_id);
    if (rc)
        return st(rc);
    e->step_ev = event;
    e->step_cb = cb;
    e->step_vcpu = vcpu_id;
    e->step_left = steps;
    return VMI_SUCCESS;
}

TV_API status_t vmi_event_listener_required(vmi_instance_t vmi, bool required)
{
    (void)required; /* QEMU keeps the guest running without us anyway */
    return vmi ? VMI_SUCCESS : VMI_FAILURE;
}

/* ---- Delivery ----------------------------------------------------------------------- */

static void fill_where(struct vmi_instance *vmi, uint64_t va, addr_t *gfn,
                       addr_t *offset)
{
    uint64_t pa = 0;
    uint64_t dtb = vmi->events->regs.cr3;
    if (vmi->pt && tv_translate(vmi, NULL, dtb, va, &pa, NULL) == 0) {
        *gfn = pa >> 12;
        *offset = pa & 0xfff;
    } else {
        *gfn = ~0ULL;
        *offset = va & 0xfff;
    }
}

/* Applies what the callback asked for: a monitor takes the answer with
 * the stop (tv_event_ops_t.reply), a debugger's stop is answered here. */
static void respond(struct vmi_instance *vmi, vmi_event_t *ev,
                    event_response_t rsp, unsigned vcpu)
{
    tv_events_t *e = vmi->events;
    if (vmi->drv.ev->reply) {
        e->reply.rsp = rsp;
        e->reply.regs = rsp & VMI_EVENT_RESPONSE_SET_REGISTERS ? ev->x86_regs
                                                               : NULL;
        e->replied = true;
        return;
    }
    if (rsp & VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP)
        set_step(vmi, e->step_mask ^ (1ULL << vcpu));
    if (rsp & VMI_EVENT_RESPONSE_SET_REGISTERS && ev->x86_regs) {
        x86_registers_t now;
        if (!tv_vcpu_x86_regs(vmi, vcpu, &now, false))
            tv_vcpu_x86_set(vmi, vcpu, &now, ev->x86_regs);
    }
    event_response_t unsupported =
        rsp & ~(event_response_t)(VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP |
                                  VMI_EVENT_RESPONSE_SET_REGISTERS);
    if (unsupported)
        tv_log(vmi, 1, "event responses 0x%x are not supported by %s: "
               "ignored", unsupported, vmi->drv.name);
}

static event_response_t call(struct vmi_instance *vmi, vmi_event_t *ev,
                             unsigned vcpu)
{
    ev->vcpu_id = vcpu;
    ev->x86_regs = &vmi->events->regs;
    event_response_t rsp = ev->callback(vmi, ev);
    respond(vmi, ev, rsp, vcpu);
    return rsp;
}

static void deliver_break(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    const ev_bp_t *bp = NULL;
    for (size_t i = 0; i < e->nbp; i++)
        if (e->bp[i].va == s->addr)
            bp = &e->bp[i];
    if (!bp || !e->int3)
        return;
    if (bp->dtb && vmi->pt && (e->regs.cr3 & vmi->pt->root_mask) != bp->dtb)
        return; /* another address space runs this address */
    vmi_event_t *ev = e->int3;
    interrupt_event_t *ie = &ev->interrupt_event;
    ie->gla = s->addr;
    ie->insn_length = 0; /* nothing to skip: the guest saw no INT3 */
    ie->reinject = 0;
    if (bp->by_pa) {
        ie->gfn = bp->pa >> 12;
        ie->offset = bp->pa & 0xfff;
    } else {
        fill_where(vmi, s->addr, &ie->gfn, &ie->offset);
    }
    call(vmi, ev, s->vcpu);
}

/* A guest INT3, seen at the #BP handler's entry.  The callback sees the
 * registers as they were at the INT3; unless it reinjects, the vCPU goes
 * back to them (at the registers it left, by default the INT3's address),
 * as if the trap had never been taken. */
static void deliver_guest_int3(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    x86_registers_t entry = e->regs;
    uint64_t f[5]; /* RIP, CS, RFLAGS, RSP, SS pushed by the CPU */
    uint8_t b[2] = {0, 0};
    if (tv_read_va(vmi, NULL, entry.cr3, entry.rsp, f, sizeof f, NULL)) {
        tv_log(vmi, 1, "INT3 on vCPU %u: no exception frame at 0x%llx: %s",
               s->vcpu, (unsigned long long)entry.rsp, vmi->last_error);
        return;
    }
    unsigned len = 1;
    if (tv_read_va(vmi, NULL, entry.cr3, f[0] - 2, b, 2, NULL) == 0 &&
        b[1] != 0xcc && b[0] == 0xcd && b[1] == 0x03)
        len = 2; /* "int 3" */
    vmi_event_t *ev = e->int3;
    interrupt_event_t *ie = &ev->interrupt_event;
    ie->gla = f[0] - len;
    ie->insn_length = len;
    e->regs.rip = ie->gla;
    e->regs.rflags = f[2];
    e->regs.rsp = f[3];
    fill_where(vmi, ie->gla, &ie->gfn, &ie->offset);
    ev->vcpu_id = s->vcpu;
    ev->x86_regs = &e->regs;
    event_response_t rsp = ev->callback(vmi, ev);
    if (rsp & VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP)
        set_step(vmi, e->step_mask ^ (1ULL << s->vcpu));
    if (ie->reinject)
        return; /* the guest's handler takes it */
    uint64_t cs = 0;
    int rc = tv_vcpu_x86_set(vmi, s->vcpu, &entry, &e->regs);
    if (!rc && vmi_get_vcpureg(vmi, &cs, CS_SEL, s->vcpu) == VMI_SUCCESS &&
        (cs & 0xffff) != (f[1] & 0xffff)) /* the INT3 ran in user mode */
        rc = vmi_set_vcpureg(vmi, f[1] & 0xffff, CS_SEL, s->vcpu) ==
                         VMI_SUCCESS &&
                     vmi_set_vcpureg(vmi, f[4] & 0xffff, SS_SEL, s->vcpu) ==
                         VMI_SUCCESS
                 ? TINYVMI_OK
                 : vmi->last_status;
    if (rc)
        tv_log(vmi, 0, "vCPU %u: cannot undo the INT3 trap: %s", s->vcpu,
               vmi->last_error);
}

static void deliver_step(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    if (e->step_ev && s->vcpu == e->step_vcpu && !--e->step_left) {
        vmi_event_t *ev = e->step_ev;
        event_callback_t cb = e->step_cb;
        e->step_ev = NULL;
        if (!(e->ss && e->ss->ss_event.vcpus >> s->vcpu & 1))
            set_step(vmi, e->step_mask & ~(1ULL << s->vcpu));
        if (cb) {
            ev->vcpu_id = s->vcpu;
            ev->x86_regs = &e->regs;
            respond(vmi, ev, cb(vmi, ev), s->vcpu);
        } else {
            do_register(vmi, ev);
        }
        return;
    }
    if (!e->ss || !(e->ss->ss_event.vcpus >> s->vcpu & 1))
        return;
    single_step_event_t *ss = &e->ss->ss_event;
    ss->gla = s->addr;
    fill_where(vmi, s->addr, &ss->gfn, &ss->offset);
    call(vmi, e->ss, s->vcpu);
}

static void deliver_watch(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    for (size_t i = 0; i < e->nw; i++) {
        ev_watch_t *w = &e->w[i];
        for (size_t k = 0; k < w->nva; k++) {
            if (s->addr < w->va[k] || s->addr - w->va[k] >= EV_PAGE)
                continue;
            mem_access_event_t *m = &w->ev->mem_event;
            uint64_t off = s->addr - w->va[k];
            /* QEMU names the watched range, not the byte: for a write,
             * the first byte that changed says where. */
            uint8_t now[EV_PAGE];
            if (w->snap && tv_read_pa(vmi, w->gfn << 12, now, EV_PAGE, NULL) == 0) {
                for (size_t b = 0; b < EV_PAGE; b++)
                    if (now[b] != w->snap[b]) {
                        off = b;
                        break;
                    }
                tv_memcpy(w->snap, now, EV_PAGE);
            }
            m->gfn = w->gfn;
            m->out_access = s->access;
            m->gla = w->va[k] + off;
            m->gla_valid = 1;
            m->gptw = 0;
            m->offset = off;
            call(vmi, w->ev, s->vcpu);
            return;
        }
    }
}

/* ---- Delivery of monitor stops -------------------------------------------------- */

static void deliver_reg(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    vmi_event_t *ev;
    if (s->reg == MSR_ALL) {
        ev = named_msr(e, s->msr);
        if (!ev)
            ev = e->msr_all;
    } else {
        int slot = cr_slot(s->reg);
        ev = slot >= 0 ? e->cr[slot] : NULL;
    }
    if (!ev)
        return;
    reg_event_t *r = &ev->reg_event;
    r->value = s->value;
    r->previous = s->previous;
    r->out_access = VMI_REGACCESS_W;
    if (s->reg == MSR_ALL)
        r->msr = s->msr;
    call(vmi, ev, s->vcpu);
}

static void deliver_cpuid(struct vmi_instance *vmi, const tv_stop_t *s)
{
    vmi_event_t *ev = vmi->events->cpuid;
    if (!ev)
        return;
    ev->cpuid_event.insn_length = s->insn_length;
    ev->cpuid_event.leaf = s->leaf;
    ev->cpuid_event.subleaf = s->subleaf;
    call(vmi, ev, s->vcpu);
}

/* INT3 and debug exceptions: the callback's reinject says whether the
 * guest gets the trap after all. */
static void deliver_trap(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    if (s->kind == TV_STOP_INT3 && e->int3 && e->int3_mon) {
        interrupt_event_t *ie = &e->int3->interrupt_event;
        ie->gla = s->addr;
        ie->gfn = s->gfn;
        ie->offset = s->addr & 0xfff;
        ie->insn_length = s->insn_length;
        call(vmi, e->int3, s->vcpu);
        e->reply.reinject = ie->reinject > 0;
        e->replied = true;
    } else if (s->kind == TV_STOP_DEBUG && e->debug) {
        debug_event_t *d = &e->debug->debug_event;
        d->gla = s->addr;
        d->gfn = s->gfn;
        d->offset = s->addr & 0xfff;
        d->insn_length = s->insn_length;
        d->type = s->type;
        call(vmi, e->debug, s->vcpu);
        e->reply.reinject = d->reinject > 0;
        e->replied = true;
    } else if (s->kind == TV_STOP_INT3) {
        /* nobody asked: the guest's own INT3 goes to the guest */
        e->reply.reinject = true;
        e->replied = true;
    }
}

static void deliver_mem(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    for (size_t i = 0; i < e->nw; i++) {
        ev_watch_t *w = &e->w[i];
        if (!w->mon || w->gfn != s->gfn)
            continue;
        mem_access_event_t *m = &w->ev->mem_event;
        m->out_access = s->access;
        m->offset = s->offset;
        m->gla = s->gla_valid ? s->addr : 0;
        m->gla_valid = s->gla_valid;
        m->gptw = 0;
        call(vmi, w->ev, s->vcpu);
        return;
    }
}

static int deliver(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    int rc = TINYVMI_OK;
    if (s->have_regs)
        e->regs = s->regs;
    else
        rc = tv_vcpu_x86_regs(vmi, s->vcpu, &e->regs, false);
    if (rc)
        return rc;
    e->replied = false;
    e->reply = (tv_reply_t){0, NULL, false};
    e->dispatching = true;
    if (s->kind == TV_STOP_BREAK && s->addr == e->int3_handler && e->int3)
        deliver_guest_int3(vmi, s);
    else if (s->kind == TV_STOP_BREAK)
        deliver_break(vmi, s);
    else if (s->kind == TV_STOP_STEP)
        deliver_step(vmi, s);
    else if (s->kind == TV_STOP_WATCH)
        deliver_watch(vmi, s);
    else if (s->kind == TV_STOP_REG)
        deliver_reg(vmi, s);
    else if (s->kind == TV_STOP_CPUID)
        deliver_cpuid(vmi, s);
    else if (s->kind == TV_STOP_GUEST_REQUEST && e->guest_req)
        call(vmi, e->guest_req, s->vcpu);
    else if (s->kind == TV_STOP_INT3 || s->kind == TV_STOP_DEBUG)
        deliver_trap(vmi, s);
    else if (s->kind == TV_STOP_MEM)
        deliver_mem(vmi, s);
    e->dispatching = false;
    return TINYVMI_OK;
}

TV_API status_t vmi_events_listen(vmi_instance_t vmi, uint32_t timeout)
{
    if (!vmi || need_events(vmi))
        return VMI_FAILURE;
    if (vmi->events->dispatching)
        return st(tv_fail(vmi, TINYVMI_ESTATE, "vmi_events_listen called "
                          "from an event callback"));
    const tv_event_ops_t *ops = vmi->drv.ev;
    int wait = timeout > 0x7fffffffu ? 0x7fffffff : (int)timeout;
    /* One event, then whatever else is already waiting (bounded). */
    for (unsigned n = 0; n < 64; n++) {
        tv_stop_t s;
        int rc = ops->wait(vmi->drv.ctx, wait, &s);
        if (rc == TINYVMI_ETIMEDOUT)
            return VMI_SUCCESS;
        if (!rc)
            rc = deliver(vmi, &s);
        if (!rc && ops->reply && vmi->events->replied)
            rc = ops->reply(vmi->drv.ctx, &vmi->events->reply);
        int rc2 = ops->release(vmi->drv.ctx);
        if (rc || rc2)
            return st(rc ? rc : rc2);
        if (!ops->pending(vmi->drv.ctx))
            break;
        wait = 0;
    }
    return VMI_SUCCESS;
}

TV_API int vmi_are_events_pending(vmi_instance_t vmi)
{
    if (!vmi || !vmi->have_drv || !vmi->drv.ev)
        return -1;
    return vmi->drv.ev->pending(vmi->drv.ctx) ? 1 : 0;
}

void tv_events_free(struct vmi_instance *vmi)
{
    tv_events_t *e = vmi->events;
    if (!e)
        return;
    for (size_t i = 0; i < e->nw; i++)
        if (e->w[i].snap)
            tv_free(vmi, e->w[i].snap, EV_PAGE);
    if (e->bp)
        tv_free(vmi, e->bp, e->capbp * sizeof *e->bp);
    if (e->w)
        tv_free(vmi, e->w, e->capw * sizeof *e->w);
    tv_free(vmi, e, sizeof *e);
    vmi->events = NULL;
}
