/* The event layer (src/core/event.c) over a scripted hypervisor monitor
 * (tv_event_ops_t.monitor/reply, what the Xen driver gives): what the
 * driver is asked to watch, what reaches the callbacks (register values,
 * MSR index, CPUID leaf, the registers carried by the stop), what goes
 * back with the answer, and what a driver without a monitor refuses.
 * The real proof is tests/xen/test_xen_events.py. */
#include <libvmi/events.h>

#include "core/tv.h"
#include "tu.h"

#define RAM (1u << 20)

typedef struct mon {
    uint8_t *ram;
    tv_range_t range;
    /* what the layer asked for */
    tv_monitor_t on[64];
    int non;
    int offs;
    uint32_t refuse_kind_mask; /* 1 << kind: ENOTSUP */
    tv_reply_t reply;
    x86_registers_t reply_regs;
    int replies, releases, reg_reads;
    /* what happens next */
    tv_stop_t script[8];
    int nscript, at;
} mon_t;

static int m_read(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len)
{
    (void)pa;
    memcpy(buf, ((mon_t *)ctx)->ram + off, len);
    return 0;
}

static const tv_mem_ops_t m_mem = {m_read, NULL, NULL};

static unsigned m_count(void *ctx)
{
    (void)ctx;
    return 2;
}

static int m_get(void *ctx, unsigned vcpu, reg_t reg, uint64_t *v)
{
    (void)vcpu;
    (void)reg;
    ((mon_t *)ctx)->reg_reads++;
    *v = 0;
    return 0;
}

static const tv_vcpu_ops_t m_vcpu = {m_count, m_get, NULL, NULL};

static int m_monitor(void *ctx, const tv_monitor_t *k, bool on)
{
    mon_t *m = ctx;
    if (on && m->refuse_kind_mask >> k->kind & 1)
        return TINYVMI_ENOTSUP;
    if (on)
        m->on[m->non++] = *k;
    else
        m->offs++;
    return 0;
}

static int m_reply(void *ctx, const tv_reply_t *r)
{
    mon_t *m = ctx;
    m->replies++;
    m->reply = *r;
    if (r->regs)
        m->reply_regs = *r->regs;
    return 0;
}

static int m_wait(void *ctx, int ms, tv_stop_t *s)
{
    mon_t *m = ctx;
    (void)ms;
    if (m->at == m->nscript)
        return TINYVMI_ETIMEDOUT;
    *s = m->script[m->at++];
    return 0;
}

static int m_release(void *ctx)
{
    ((mon_t *)ctx)->releases++;
    return 0;
}

static bool m_pending(void *ctx)
{
    mon_t *m = ctx;
    return m->at < m->nscript;
}

static const tv_event_ops_t m_ev = {
    .wait = m_wait, .release = m_release, .pending = m_pending,
    .monitor = m_monitor, .reply = m_reply,
};

/* A debugger-style driver (the QEMU driver's shape): no monitor. */
static int d_bp(void *ctx, uint64_t va, bool on)
{
    (void)ctx;
    (void)va;
    (void)on;
    return 0;
}

static const tv_event_ops_t d_ev = {.breakpoint = d_bp, .wait = m_wait,
                                    .release = m_release,
                                    .pending = m_pending};

static struct vmi_instance *mon_vmi(mon_t *m, const tv_event_ops_t *ev)
{
    memset(m, 0, sizeof *m);
    m->ram = calloc(1, RAM);
    m->range = (tv_range_t){0, RAM, 0};
    struct vmi_instance *vmi;
    if (!m->ram || tv_instance_new(&tu_hooks, &vmi))
        return NULL;
    tv_driver_t d = {.name = "fakexen", .ctx = m, .mem = &m_mem,
                     .vcpu = &m_vcpu, .ev = ev, .ranges = &m->range,
                     .nranges = 1};
    if (tv_instance_attach(vmi, &d)) {
        tv_instance_free(vmi);
        return NULL;
    }
    return vmi;
}

static void mon_done(struct vmi_instance *vmi, mon_t *m)
{
    tv_instance_free(vmi);
    free(m->ram);
}

typedef struct got {
    int n;
    uint32_t vcpu, msr, leaf, subleaf, len;
    reg_t value, previous;
    uint64_t rip, cr3;
    event_response_t answer;
} got_t;

static event_response_t on_ev(vmi_instance_t vmi, vmi_event_t *e)
{
    got_t *g = e->data;
    (void)vmi;
    g->n++;
    g->vcpu = e->vcpu_id;
    g->rip = e->x86_regs->rip;
    g->cr3 = e->x86_regs->cr3;
    if (e->type == VMI_EVENT_REGISTER) {
        g->value = e->reg_event.value;
        g->previous = e->reg_event.previous;
        g->msr = e->reg_event.msr;
    } else if (e->type == VMI_EVENT_CPUID) {
        g->leaf = e->cpuid_event.leaf;
        g->subleaf = e->cpuid_event.subleaf;
        g->len = e->cpuid_event.insn_length;
        e->x86_regs->rip += e->cpuid_event.insn_length;
    }
    return g->answer;
}

static void reg_ev(vmi_event_t *e, reg_t reg, got_t *g)
{
    memset(e, 0, sizeof *e);
    SETUP_REG_EVENT(e, reg, VMI_REGACCESS_W, 0, on_ev);
    e->data = g;
}

TU_TEST(monitor_cr3_write_reaches_its_event_with_the_stops_registers)
{
    mon_t m;
    struct vmi_instance *vmi = mon_vmi(&m, &m_ev);
    TU_ASSERT(vmi);
    got_t g = {0};
    vmi_event_t ev;
    reg_ev(&ev, CR3, &g);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(m.non, 1);
    TU_EQ_INT(m.on[0].kind, TV_MON_CR);
    TU_EQ_U64(m.on[0].arg, CR3);
    TU_ASSERT(vmi_get_reg_event(vmi, CR3) == &ev);
    TU_ASSERT(vmi_get_reg_event(vmi, CR4) == NULL);
    /* a second event on the same register is refused */
    vmi_event_t ev2;
    reg_ev(&ev2, CR3, &g);
    TU_EQ_INT(vmi_register_event(vmi, &ev2), VMI_FAILURE);

    tv_stop_t s = {.kind = TV_STOP_REG, .vcpu = 1, .reg = CR3,
                   .value = 0x5e7000, .previous = 0x1000, .have_regs = true};
    s.regs.rip = 0xffffffff81000010ULL;
    s.regs.cr3 = 0x1000;
    m.script[m.nscript++] = s;
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(g.n, 1);
    TU_EQ_INT(g.vcpu, 1);
    TU_EQ_U64(g.value, 0x5e7000);
    TU_EQ_U64(g.previous, 0x1000);
    TU_EQ_U64(g.rip, 0xffffffff81000010ULL);
    TU_EQ_U64(g.cr3, 0x1000);
    TU_EQ_INT(m.reg_reads, 0); /* the stop carried them */
    TU_EQ_INT(m.releases, 1);
    TU_EQ_INT(m.replies, 1);
    TU_EQ_INT(m.reply.rsp, 0);

    TU_EQ_INT(vmi_clear_event(vmi, &ev, NULL), VMI_SUCCESS);
    TU_EQ_INT(m.offs, 1);
    TU_ASSERT(vmi_get_reg_event(vmi, CR3) == NULL);
    mon_done(vmi, &m);
}

TU_TEST(monitor_msr_all_and_a_named_msr)
{
    mon_t m;
    struct vmi_instance *vmi = mon_vmi(&m, &m_ev);
    TU_ASSERT(vmi);
    got_t all = {0}, lstar = {0};
    vmi_event_t e_all, e_lstar;
    reg_ev(&e_all, MSR_ALL, &all);
    reg_ev(&e_lstar, MSR_LSTAR, &lstar);
    TU_EQ_INT(vmi_register_event(vmi, &e_all), VMI_SUCCESS);
    int n_all = m.non;
    TU_ASSERT(n_all > 10);
    bool efer = false;
    for (int i = 0; i < n_all; i++) {
        TU_EQ_INT(m.on[i].kind, TV_MON_MSR);
        efer |= m.on[i].arg == 0xc0000080;
    }
    TU_ASSERT(efer);
    TU_EQ_INT(vmi_register_event(vmi, &e_lstar), VMI_SUCCESS);
    TU_EQ_U64(m.on[n_all].arg, 0xc0000082);

    m.script[m.nscript++] = (tv_stop_t){.kind = TV_STOP_REG, .reg = MSR_ALL,
                                        .msr = 0xc0000082, .value = 0x1234,
                                        .have_regs = true};
    m.script[m.nscript++] = (tv_stop_t){.kind = TV_STOP_REG, .reg = MSR_ALL,
                                        .msr = 0x174, .value = 0x10,
                                        .have_regs = true};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    /* the named MSR's own event first; MSR_ALL gets the others */
    TU_EQ_INT(lstar.n, 1);
    TU_EQ_U64(lstar.value, 0x1234);
    TU_EQ_INT(all.n, 1);
    TU_EQ_INT(all.msr, 0x174);
    TU_EQ_U64(all.value, 0x10);
    TU_EQ_INT(m.releases, 2);

    /* clearing MSR_ALL keeps LSTAR watched */
    int offs = m.offs;
    TU_EQ_INT(vmi_clear_event(vmi, &e_all, NULL), VMI_SUCCESS);
    TU_EQ_INT(m.offs - offs, n_all - 1);
    TU_EQ_INT(vmi_clear_event(vmi, &e_lstar, NULL), VMI_SUCCESS);
    TU_EQ_INT(m.offs - offs, n_all);
    mon_done(vmi, &m);
}

TU_TEST(monitor_cpuid_answer_carries_the_callbacks_registers)
{
    mon_t m;
    struct vmi_instance *vmi = mon_vmi(&m, &m_ev);
    TU_ASSERT(vmi);
    got_t g = {.answer = VMI_EVENT_RESPONSE_SET_REGISTERS};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.version = VMI_EVENTS_VERSION;
    ev.type = VMI_EVENT_CPUID;
    ev.callback = on_ev;
    ev.data = &g;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(m.on[0].kind, TV_MON_CPUID);
    tv_stop_t s = {.kind = TV_STOP_CPUID, .leaf = 0xd, .subleaf = 1,
                   .insn_length = 2, .have_regs = true};
    s.regs.rip = 0x401000;
    m.script[m.nscript++] = s;
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(g.n, 1);
    TU_EQ_INT(g.leaf, 0xd);
    TU_EQ_INT(g.subleaf, 1);
    TU_EQ_INT(g.len, 2);
    TU_EQ_INT(m.replies, 1);
    TU_EQ_INT(m.reply.rsp, VMI_EVENT_RESPONSE_SET_REGISTERS);
    TU_ASSERT(m.reply.regs);
    TU_EQ_U64(m.reply_regs.rip, 0x401002);
    mon_done(vmi, &m);
}

TU_TEST(monitor_refusals_are_errors_not_silence)
{
    mon_t m;
    struct vmi_instance *vmi = mon_vmi(&m, &m_ev);
    TU_ASSERT(vmi);
    got_t g = {0};
    vmi_event_t ev;
    /* register reads are not events a monitor gives */
    reg_ev(&ev, CR3, &g);
    ev.reg_event.in_access = VMI_REGACCESS_R;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_CONTAINS(tinyvmi_last_error(vmi), "writes");
    /* a register nobody reports */
    reg_ev(&ev, RAX, &g);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    /* the host refuses single steps: registering fails, even not stepping */
    m.refuse_kind_mask = 1u << TV_MON_STEP | 1u << TV_MON_MEM;
    memset(&ev, 0, sizeof ev);
    SETUP_SINGLESTEP_EVENT(&ev, 1, on_ev, 0);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    memset(&ev, 0, sizeof ev);
    SETUP_MEM_EVENT(&ev, 0x42, VMI_MEMACCESS_W, on_ev, 0);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(vmi_get_mem_event(vmi, 0x42, 0) == NULL);
    m.refuse_kind_mask = 0;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(m.on[m.non - 1].kind, TV_MON_MEM);
    TU_EQ_U64(m.on[m.non - 1].arg, 0x42);
    TU_EQ_INT(m.on[m.non - 1].access, VMI_MEMACCESS_W);
    TU_ASSERT(vmi_get_mem_event(vmi, 0x42, 0) == &ev);
    /* planted breakpoints are a debugger's */
    TU_EQ_INT(tinyvmi_set_breakpoint(vmi, 0xffffffff81000000ULL, 0),
              VMI_FAILURE);
    TU_CONTAINS(tinyvmi_last_error(vmi), "not supported by the fakexen");
    mon_done(vmi, &m);
}

TU_TEST(monitor_events_refused_by_a_debugger_driver)
{
    mon_t m;
    struct vmi_instance *vmi = mon_vmi(&m, &d_ev);
    TU_ASSERT(vmi);
    got_t g = {0};
    vmi_event_t ev;
    reg_ev(&ev, CR3, &g);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_CONTAINS(tinyvmi_last_error(vmi),
                "register events: not delivered by fakexen targets (not "
                "supported by the fakexen driver)");
    static const uint16_t types[] = {VMI_EVENT_CPUID, VMI_EVENT_GUEST_REQUEST,
                                     VMI_EVENT_DEBUG_EXCEPTION};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        memset(&ev, 0, sizeof ev);
        ev.version = VMI_EVENTS_VERSION;
        ev.type = types[i];
        ev.callback = on_ev;
        TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
        TU_CONTAINS(tinyvmi_last_error(vmi), "not supported by the fakexen");
    }
    mon_done(vmi, &m);
}
