/* The event layer (src/core/event.c) over a scripted driver: what reaches
 * the callbacks, what the driver is asked to do, and what is refused.  The
 * guest is synthetic (two vCPUs, 4-level page tables built here); the real
 * proof is tests/lab/test_live*.py against QEMU. */
#include <libvmi/events.h>

#include "core/tv.h"
#include "tu.h"

#define RAM (4u << 20)
#define KTEXT 0xffffffff81000000ULL  /* kernel image mapping */
#define DMAP 0xffff888000000000ULL   /* direct map of all RAM */
#define PML4 0x1000ULL
#define KPA 0x200000ULL              /* where the kernel page lives */

typedef struct fake {
    uint8_t *ram;
    uint64_t next_table;
    tv_range_t range;
    uint64_t regs[2][TINYVMI_NREGS];
    /* what the event layer asked for */
    uint64_t bp[16];
    int nbp;
    struct { uint64_t va, len; uint8_t acc; } wp[16];
    int nwp;
    uint64_t step_mask;
    int releases, pauses;
    /* what happens next */
    tv_stop_t script[8];
    int nscript, at;
    void (*before)(struct fake *f, int i); /* runs as stop i is taken */
} fake_t;

static uint64_t rd64(fake_t *f, uint64_t pa)
{
    uint64_t v;
    memcpy(&v, f->ram + pa, 8);
    return v;
}

static void wr64(fake_t *f, uint64_t pa, uint64_t v)
{
    memcpy(f->ram + pa, &v, 8);
}

/* Maps the 4 KiB page va -> pa under PML4, making tables as needed. */
static void map(fake_t *f, uint64_t va, uint64_t pa)
{
    uint64_t table = PML4;
    for (int shift = 39; shift >= 12; shift -= 9) {
        uint64_t slot = table + ((va >> shift) & 511) * 8;
        if (shift == 12) {
            wr64(f, slot, pa | 3);
            return;
        }
        if (!(rd64(f, slot) & 1)) {
            wr64(f, slot, f->next_table | 3);
            f->next_table += 0x1000;
        }
        table = rd64(f, slot) & 0x000ffffffffff000ULL;
    }
}

static int f_read(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len)
{
    (void)pa;
    memcpy(buf, ((fake_t *)ctx)->ram + off, len);
    return 0;
}

static const tv_mem_ops_t f_mem = {f_read, NULL, NULL};

static unsigned f_count(void *ctx)
{
    (void)ctx;
    return 2;
}

static int f_get(void *ctx, unsigned vcpu, reg_t reg, uint64_t *v)
{
    *v = ((fake_t *)ctx)->regs[vcpu][reg];
    return 0;
}

static int f_set(void *ctx, unsigned vcpu, reg_t reg, uint64_t v)
{
    ((fake_t *)ctx)->regs[vcpu][reg] = v;
    return 0;
}

static const tv_vcpu_ops_t f_vcpu = {f_count, f_get, f_set, NULL};

static int f_pause(void *ctx)
{
    ((fake_t *)ctx)->pauses++;
    return 0;
}

static int f_resume(void *ctx)
{
    ((fake_t *)ctx)->pauses--;
    return 0;
}

static const tv_ctl_ops_t f_ctl = {f_pause, f_resume};

static int f_bp(void *ctx, uint64_t va, bool on)
{
    fake_t *f = ctx;
    if (on) {
        f->bp[f->nbp++] = va;
        return 0;
    }
    for (int i = 0; i < f->nbp; i++)
        if (f->bp[i] == va) {
            f->bp[i] = f->bp[--f->nbp];
            return 0;
        }
    return TINYVMI_ENOENT;
}

static int f_wp(void *ctx, uint64_t va, uint64_t len, uint8_t acc, bool on)
{
    fake_t *f = ctx;
    if (on) {
        f->wp[f->nwp].va = va;
        f->wp[f->nwp].len = len;
        f->wp[f->nwp++].acc = acc;
        return 0;
    }
    for (int i = 0; i < f->nwp; i++)
        if (f->wp[i].va == va) {
            f->wp[i] = f->wp[--f->nwp];
            return 0;
        }
    return TINYVMI_ENOENT;
}

static int f_step(void *ctx, uint64_t mask)
{
    ((fake_t *)ctx)->step_mask = mask;
    return 0;
}

static int f_wait(void *ctx, int ms, tv_stop_t *s)
{
    fake_t *f = ctx;
    (void)ms;
    if (f->at == f->nscript)
        return TINYVMI_ETIMEDOUT;
    if (f->before)
        f->before(f, f->at);
    *s = f->script[f->at++];
    return 0;
}

static int f_release(void *ctx)
{
    ((fake_t *)ctx)->releases++;
    return 0;
}

static bool f_pending(void *ctx)
{
    (void)ctx;
    return false; /* one stop per listen: the tests count them */
}

static const tv_event_ops_t f_ev = {f_bp, f_wp, f_step, f_wait, f_release,
                                    f_pending, NULL, NULL};

static struct vmi_instance *fake_vmi(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->ram = calloc(1, RAM);
    f->next_table = 0x2000;
    f->range = (tv_range_t){0, RAM, 0};
    map(f, KTEXT, KPA);
    map(f, DMAP + KPA, KPA); /* the same page, twice */
    map(f, KTEXT + 0x1000, KPA + 0x1000);
    for (unsigned v = 0; v < 2; v++) {
        f->regs[v][CR0] = 0x80050033;
        f->regs[v][CR4] = 0x20;       /* PAE */
        f->regs[v][MSR_EFER] = 0x500; /* LME, LMA */
        f->regs[v][CR3] = PML4;
        f->regs[v][CS_SEL] = 0x10;
    }
    struct vmi_instance *vmi;
    if (tv_instance_new(&tu_hooks, &vmi))
        return NULL;
    tv_driver_t d = {.name = "fake", .ctx = f, .mem = &f_mem, .vcpu = &f_vcpu,
                     .ctl = &f_ctl, .ev = &f_ev, .ranges = &f->range,
                     .nranges = 1};
    if (tv_instance_attach(vmi, &d) || vmi_init_paging(vmi, 0) != VMI_PM_IA32E) {
        tv_instance_free(vmi);
        return NULL;
    }
    return vmi;
}

static void done(struct vmi_instance *vmi, fake_t *f)
{
    tv_instance_free(vmi);
    free(f->ram);
}

typedef struct seen {
    int n;
    uint32_t vcpu;
    addr_t gla, gfn, offset, rip, rsp;
    uint32_t len;
    uint8_t access;
    event_response_t answer;
    int8_t reinject;
} seen_t;

static event_response_t on_int3(vmi_instance_t vmi, vmi_event_t *e)
{
    seen_t *s = e->data;
    (void)vmi;
    s->n++;
    s->vcpu = e->vcpu_id;
    s->gla = e->interrupt_event.gla;
    s->gfn = e->interrupt_event.gfn;
    s->offset = e->interrupt_event.offset;
    s->len = e->interrupt_event.insn_length;
    s->rip = e->x86_regs->rip;
    s->rsp = e->x86_regs->rsp;
    e->interrupt_event.reinject = s->reinject;
    return s->answer;
}

TU_TEST(event_breakpoint_reaches_int3_event_in_its_address_space_only)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    seen_t s = {0};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_INTERRUPT_EVENT(&ev, 0, on_int3);
    ev.data = &s;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(tinyvmi_set_breakpoint(vmi, KTEXT + 0x10, PML4), VMI_SUCCESS);
    TU_ASSERT(f.nbp >= 1 && f.bp[f.nbp - 1] == KTEXT + 0x10);
    /* vCPU 1 hits it while another address space (CR3 0x9000) runs */
    f.regs[1][CR3] = 0x9000;
    f.script[f.nscript++] =
        (tv_stop_t){.kind = TV_STOP_BREAK, .vcpu = 1, .addr = KTEXT + 0x10};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 0);
    TU_EQ_INT(f.releases, 1); /* the guest was let go all the same */
    /* now with the breakpoint's own page tables (PCID bits ignored) */
    f.regs[1][CR3] = PML4 | 0x5;
    f.script[f.nscript++] =
        (tv_stop_t){.kind = TV_STOP_BREAK, .vcpu = 1, .addr = KTEXT + 0x10};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_U64(s.vcpu, 1);
    TU_EQ_U64(s.gla, KTEXT + 0x10);
    TU_EQ_U64(s.gfn, KPA >> 12);
    TU_EQ_U64(s.offset, 0x10);
    TU_EQ_U64(s.len, 0); /* nothing to skip: the guest saw no INT3 */
    /* no stop: a timeout is a success with nothing delivered */
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_INT(tinyvmi_clear_breakpoint(vmi, KTEXT + 0x10), VMI_SUCCESS);
    TU_EQ_INT(tinyvmi_clear_breakpoint(vmi, KTEXT + 0x10), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "no breakpoint") != NULL);
    done(vmi, &f);
}

TU_TEST(event_breakpoint_by_physical_address_covers_every_alias)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    TU_EQ_INT(tinyvmi_set_breakpoint_pa(vmi, KPA + 0x20), VMI_SUCCESS);
    TU_EQ_INT(f.nbp, 2);
    bool text = false, dmap = false;
    for (int i = 0; i < f.nbp; i++) {
        text |= f.bp[i] == KTEXT + 0x20;
        dmap |= f.bp[i] == DMAP + KPA + 0x20;
    }
    TU_ASSERT(text && dmap);
    TU_EQ_INT(tinyvmi_clear_breakpoint_pa(vmi, KPA + 0x20), VMI_SUCCESS);
    TU_EQ_INT(f.nbp, 0);
    /* a page nothing maps */
    TU_EQ_INT(tinyvmi_set_breakpoint_pa(vmi, 0x300000), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "no kernel virtual address") !=
              NULL);
    done(vmi, &f);
}

static int steps_cb;
static event_response_t on_step_done(vmi_instance_t vmi, vmi_event_t *e)
{
    (void)vmi;
    (void)e;
    steps_cb++;
    return 0;
}

TU_TEST(event_step_countdown_and_toggle)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    steps_cb = 0;
    TU_EQ_INT(vmi_step_event(vmi, &ev, 1, 3, on_step_done), VMI_SUCCESS);
    TU_EQ_U64(f.step_mask, 2);
    for (unsigned i = 0; i < 3; i++) {
        tv_stop_t st = {.kind = TV_STOP_STEP, .vcpu = 1, .addr = KTEXT + i};
        f.script[f.nscript++] = st;
    }
    for (int i = 0; i < 3; i++)
        TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(steps_cb, 1);    /* after the third step only */
    TU_EQ_U64(f.step_mask, 0); /* and vCPU 1 stops stepping */

    /* a breakpoint whose callback asks for one step of its vCPU */
    seen_t s = {.answer = VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP};
    vmi_event_t bp;
    memset(&bp, 0, sizeof bp);
    SETUP_INTERRUPT_EVENT(&bp, 0, on_int3);
    bp.data = &s;
    TU_EQ_INT(vmi_register_event(vmi, &bp), VMI_SUCCESS);
    TU_EQ_INT(tinyvmi_set_breakpoint(vmi, KTEXT, 0), VMI_SUCCESS);
    f.script[f.nscript++] = (tv_stop_t){.kind = TV_STOP_BREAK, .addr = KTEXT};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_U64(f.step_mask, 1);
    done(vmi, &f);
}

static void write_jiffies(fake_t *f, int i)
{
    (void)i;
    f->ram[KPA + 0x9c0] ^= 0xff; /* the guest writes byte 0x9c0 */
}

static event_response_t on_mem(vmi_instance_t vmi, vmi_event_t *e)
{
    seen_t *s = e->data;
    (void)vmi;
    s->n++;
    s->gla = e->mem_event.gla;
    s->gfn = e->mem_event.gfn;
    s->offset = e->mem_event.offset;
    s->access = e->mem_event.out_access;
    return 0;
}

TU_TEST(event_memory_watches_every_alias_and_finds_the_byte)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    seen_t s = {0};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_MEM_EVENT(&ev, KPA >> 12, VMI_MEMACCESS_W, on_mem, 0);
    ev.data = &s;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(f.nwp, 2);
    TU_EQ_U64(f.wp[0].len, 4096);
    TU_EQ_INT(f.wp[0].acc, VMI_MEMACCESS_W);
    TU_ASSERT(vmi_get_mem_event(vmi, KPA >> 12, VMI_MEMACCESS_W) == &ev);
    f.before = write_jiffies;
    /* QEMU names the watched page, through the direct-map alias */
    f.script[f.nscript++] =
        (tv_stop_t){.kind = TV_STOP_WATCH, .addr = DMAP + KPA,
                    .access = VMI_MEMACCESS_W};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_U64(s.gfn, KPA >> 12);
    TU_EQ_U64(s.offset, 0x9c0);
    TU_EQ_U64(s.gla, DMAP + KPA + 0x9c0);
    TU_EQ_INT(s.access, VMI_MEMACCESS_W);
    TU_EQ_INT(vmi_clear_event(vmi, &ev, NULL), VMI_SUCCESS);
    TU_EQ_INT(f.nwp, 0);
    done(vmi, &f);
}

TU_TEST(event_refusals_say_why)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_MEM_EVENT(&ev, KPA >> 12, VMI_MEMACCESS_X, on_mem, 0);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "use a breakpoint") != NULL);
    SETUP_MEM_EVENT(&ev, 0, VMI_MEMACCESS_W, on_mem, 1);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "generic") != NULL);
    SETUP_MEM_EVENT(&ev, 0x300, VMI_MEMACCESS_W, on_mem, 0);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "no kernel virtual address") !=
              NULL);
    SETUP_REG_EVENT(&ev, CR3, VMI_REGACCESS_W, 0, on_mem);
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "not delivered") != NULL);
    SETUP_INTERRUPT_EVENT(&ev, 0, on_int3);
    ev.version = 1;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_FAILURE);
    TU_ASSERT(strstr(tinyvmi_last_error(vmi), "version") != NULL);
    done(vmi, &f);
}

static void int3_frame(fake_t *f, int i)
{
    (void)i;
    /* INT3 (0xcc) at KTEXT+0x40 ran in the kernel; the CPU pushed RIP
     * after it, CS, RFLAGS, RSP, SS on the stack at KTEXT+0x1f00 */
    f->ram[KPA + 0x40] = 0xcc;
    uint64_t frame[5] = {KTEXT + 0x41, 0x10, 0x246, KTEXT + 0x1fc0, 0x18};
    memcpy(f->ram + KPA + 0x1000 + 0xf00, frame, sizeof frame);
    f->regs[0][RSP] = KTEXT + 0x1f00;
    f->regs[0][RIP] = KTEXT + 0x800; /* the #BP handler */
    f->regs[0][RFLAGS] = 0x46;
}

TU_TEST(event_guest_int3_is_caught_at_the_handler_and_undone)
{
    fake_t f;
    struct vmi_instance *vmi = fake_vmi(&f);
    TU_ASSERT(vmi);
    /* IDT at KTEXT+0x100: gate 3 points to KTEXT+0x800 */
    uint8_t gate[16] = {0};
    uint64_t h = KTEXT + 0x800;
    gate[0] = (uint8_t)h;
    gate[1] = (uint8_t)(h >> 8);
    gate[5] = 0x8e;
    gate[6] = (uint8_t)(h >> 16);
    gate[7] = (uint8_t)(h >> 24);
    uint32_t hi = (uint32_t)(h >> 32);
    memcpy(gate + 8, &hi, 4);
    memcpy(f.ram + KPA + 0x100 + 3 * 16, gate, 16);
    f.regs[0][IDTR_BASE] = KTEXT + 0x100;
    f.regs[0][IDTR_LIMIT] = 0xfff;
    seen_t s = {.reinject = 0};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_INTERRUPT_EVENT(&ev, 0, on_int3);
    ev.data = &s;
    TU_EQ_INT(vmi_register_event(vmi, &ev), VMI_SUCCESS);
    TU_EQ_INT(f.nbp, 1);
    TU_EQ_U64(f.bp[0], h);
    f.before = int3_frame;
    f.script[f.nscript++] = (tv_stop_t){.kind = TV_STOP_BREAK, .addr = h};
    TU_EQ_INT(vmi_events_listen(vmi, 10), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_U64(s.gla, KTEXT + 0x40);
    TU_EQ_U64(s.len, 1);
    TU_EQ_U64(s.rip, KTEXT + 0x40);   /* as at the INT3 */
    TU_EQ_U64(s.rsp, KTEXT + 0x1fc0);
    TU_EQ_U64(s.gfn, KPA >> 12);
    /* not reinjected: the vCPU is back where the INT3 was */
    TU_EQ_U64(f.regs[0][RIP], KTEXT + 0x40);
    TU_EQ_U64(f.regs[0][RSP], KTEXT + 0x1fc0);
    TU_EQ_U64(f.regs[0][RFLAGS], 0x246);
    TU_EQ_INT(vmi_clear_event(vmi, &ev, NULL), VMI_SUCCESS);
    TU_EQ_INT(f.nbp, 0);
    done(vmi, &f);
}
