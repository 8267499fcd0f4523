/*
 * LibVMI's event API over a driver's debug-event group (tv_event_ops_t).
 * Freestanding core code: the registry lives in the instance and grows
 * through the allocator hook.
 *
 * What maps to what:
 *   INT3 interrupt event  <- hits of breakpoints planted with
 *                            tinyvmi_set_breakpoint (the guest never sees
 *                            them; it goes on past the instruction)
 *   single-step event     <- the driver's per-vCPU stepping
 *   memory event on a gfn <- watchpoints on every kernel virtual address
 *                            that maps the page (found by a bounded reverse
 *                            walk of the kernel's page tables)
 * Everything else is refused with a reason, never ignored.
 */
#include <libvmi/events.h>

#include "core/tv.h"

#define TV_API __attribute__((visibility("default")))

#define EV_MAX_ALIASES 16
#define EV_PAGE 4096u

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

static int set_step(struct vmi_instance *vmi, uint64_t mask)
{
    tv_events_t *e = vmi->events;
    int rc = vmi->drv.ev->step(vmi->drv.ctx, mask);
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
    for (size_t i = 0; i < w->nva; i++)
        vmi->drv.ev->watchpoint(vmi->drv.ctx, w->va[i], EV_PAGE, w->access,
                                false);
    if (w->snap)
        tv_free(vmi, w->snap, EV_PAGE);
    w->snap = NULL;
    w->nva = 0;
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
        e->int3 = ev;
        arm_int3(vmi); /* without it, tinyvmi_set_breakpoint still works */
        return TINYVMI_OK;
    case VMI_EVENT_SINGLESTEP:
        if (e->ss)
            return tv_fail(vmi, TINYVMI_EINVAL, "a single-step event is "
                           "registered");
        if (ev->ss_event.enable &&
            (rc = set_step(vmi, e->step_mask | ev->ss_event.vcpus)))
            return rc;
        e->ss = ev;
        return TINYVMI_OK;
    case VMI_EVENT_MEMORY:
        return register_mem(vmi, ev);
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
        disarm_int3(vmi);
        e->int3 = NULL;
        return TINYVMI_OK;
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
    (void)vmi;
    (void)reg;
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

/* Applies what the callback asked for. */
static void respond(struct vmi_instance *vmi, vmi_event_t *ev,
                    event_response_t rsp, unsigned vcpu)
{
    tv_events_t *e = vmi->events;
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

static int deliver(struct vmi_instance *vmi, const tv_stop_t *s)
{
    tv_events_t *e = vmi->events;
    int rc = tv_vcpu_x86_regs(vmi, s->vcpu, &e->regs, false);
    if (rc)
        return rc;
    e->dispatching = true;
    if (s->kind == TV_STOP_BREAK && s->addr == e->int3_handler && e->int3)
        deliver_guest_int3(vmi, s);
    else if (s->kind == TV_STOP_BREAK)
        deliver_break(vmi, s);
    else if (s->kind == TV_STOP_STEP)
        deliver_step(vmi, s);
    else if (s->kind == TV_STOP_WATCH)
        deliver_watch(vmi, s);
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
