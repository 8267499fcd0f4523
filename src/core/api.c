/*
 * The LibVMI-compatible memory API over the core: access contexts, reads,
 * writes, translations and information getters.  Allocating calls
 * (vmi_read_str*, vmi_init*) are hosted and live in src/hosted/.
 */
#include "core/tv.h"

#define TV_API __attribute__((visibility("default")))

static status_t st(int rc)
{
    return rc ? VMI_FAILURE : VMI_SUCCESS;
}

/* ---- Access contexts ------------------------------------------------------ */

typedef struct target {
    bool physical;
    const tv_pt_format_t *fmt; /* NULL: the instance's */
    uint64_t dtb;
    uint64_t addr;
} target_t;

static int pid_dtb(struct vmi_instance *vmi, vmi_pid_t pid, uint64_t *dtb)
{
    if (pid != 0) {
        if (!vmi->osops)
            return tv_fail(vmi, TINYVMI_ESTATE,
                           "pid %d: finding a process's page tables needs "
                           "the OS layer, which is not initialised",
                           (int)pid);
        return tv_os_pid_dtb(vmi, pid, dtb);
    }
    if (!vmi->pt)
        return tv_fail(vmi, TINYVMI_ESTATE,
                       "paging is not set up: the kernel's page tables are "
                       "unknown");
    *dtb = vmi->kdtb;
    return TINYVMI_OK;
}

static int resolve(struct vmi_instance *vmi, const access_context_t *ctx,
                   target_t *t)
{
    *t = (target_t){0};
    if (!vmi)
        return TINYVMI_EINVAL;
    if (!ctx)
        return tv_fail(vmi, TINYVMI_EINVAL, "access context is NULL");
    if (ctx->version > ACCESS_CONTEXT_VERSION)
        return tv_fail(vmi, TINYVMI_EINVAL,
                       "access context version %u is newer than this "
                       "library's (%u)", ctx->version, ACCESS_CONTEXT_VERSION);
    if (ctx->npt)
        return tv_fail(vmi, TINYVMI_ENOTSUP,
                       "nested page tables (npt) are not supported");
    t->addr = ctx->addr;
    switch (ctx->tm) {
    case VMI_TM_NONE:
        t->physical = true;
        return TINYVMI_OK;
    case VMI_TM_PROCESS_DTB:
        t->dtb = ctx->dtb;
        if (ctx->pm != VMI_PM_UNKNOWN) {
            /* ARM modes name a family: the instance's format is the one
             * its registers or its OS layer chose. */
            t->fmt = vmi->pt && ctx->pm == vmi->page_mode
                         ? vmi->pt
                         : tv_pt_format(ctx->pm);
            if (!t->fmt)
                return tv_fail(vmi, TINYVMI_ENOTSUP,
                               "page mode %d is not supported", (int)ctx->pm);
        }
        return TINYVMI_OK;
    case VMI_TM_PROCESS_PID:
        return pid_dtb(vmi, ctx->pid, &t->dtb);
    case VMI_TM_KERNEL_SYMBOL: {
        uint64_t va;
        int rc = tv_os_ksym(vmi, ctx->ksym, &va);
        if (rc)
            return rc;
        t->addr = va;
        return pid_dtb(vmi, 0, &t->dtb);
    }
    default:
        return tv_fail(vmi, TINYVMI_EINVAL,
                       "access context has no translation mechanism (%d)",
                       (int)ctx->tm);
    }
}

static int access_ctx(struct vmi_instance *vmi, const access_context_t *ctx,
                      void *buf, size_t count, size_t *done, bool write)
{
    target_t t;
    size_t moved = 0;
    int rc = resolve(vmi, ctx, &t);
    if (!rc && t.physical)
        rc = write ? tv_write_pa(vmi, t.addr, buf, count, &moved)
                   : tv_read_pa(vmi, t.addr, buf, count, &moved);
    else if (!rc)
        rc = write ? tv_write_va(vmi, t.fmt, t.dtb, t.addr, buf, count,
                                 &moved)
                   : tv_read_va(vmi, t.fmt, t.dtb, t.addr, buf, count,
                                &moved);
    if (done)
        *done = moved;
    return rc;
}

/* ---- Reads ------------------------------------------------------------------ */

TV_API status_t vmi_read(vmi_instance_t vmi, const access_context_t *ctx,
                         size_t count, void *buf, size_t *bytes_read)
{
    return st(access_ctx(vmi, ctx, buf, count, bytes_read, false));
}

TV_API status_t vmi_write(vmi_instance_t vmi, const access_context_t *ctx,
                          size_t count, void *buf, size_t *bytes_written)
{
    return st(access_ctx(vmi, ctx, buf, count, bytes_written, true));
}

static status_t read_exact(vmi_instance_t vmi, const access_context_t *ctx,
                           void *out, size_t n)
{
    return st(access_ctx(vmi, ctx, out, n, NULL, false));
}

TV_API status_t vmi_read_8(vmi_instance_t vmi, const access_context_t *ctx,
                           uint8_t *value)
{
    return read_exact(vmi, ctx, value, sizeof *value);
}

TV_API status_t vmi_read_16(vmi_instance_t vmi, const access_context_t *ctx,
                            uint16_t *value)
{
    return read_exact(vmi, ctx, value, sizeof *value);
}

TV_API status_t vmi_read_32(vmi_instance_t vmi, const access_context_t *ctx,
                            uint32_t *value)
{
    return read_exact(vmi, ctx, value, sizeof *value);
}

TV_API status_t vmi_read_64(vmi_instance_t vmi, const access_context_t *ctx,
                            uint64_t *value)
{
    return read_exact(vmi, ctx, value, sizeof *value);
}

TV_API uint8_t vmi_get_address_width(vmi_instance_t vmi)
{
    return vmi && vmi->pt ? vmi->pt->addr_width : 0;
}

TV_API status_t vmi_read_addr(vmi_instance_t vmi, const access_context_t *ctx,
                              addr_t *value)
{
    uint8_t width = vmi_get_address_width(vmi);
    if (!width)
        return st(tv_fail(vmi, TINYVMI_ESTATE,
                          "guest address width unknown: paging is not set "
                          "up"));
    uint8_t raw[8];
    if (read_exact(vmi, ctx, raw, width) != VMI_SUCCESS)
        return VMI_FAILURE;
    *value = width == 8 ? tv_le64(raw) : tv_le32(raw);
    return VMI_SUCCESS;
}

#define TV_PA_CTX(name, pa) \
    access_context_t name = {.version = ACCESS_CONTEXT_VERSION, \
                             .tm = VMI_TM_NONE, .addr = (pa)}
#define TV_VA_CTX(name, va, p) \
    access_context_t name = {.version = ACCESS_CONTEXT_VERSION, \
                             .tm = VMI_TM_PROCESS_PID, .addr = (va), \
                             .pid = (p)}

TV_API status_t vmi_read_pa(vmi_instance_t vmi, addr_t paddr, size_t count,
                            void *buf, size_t *bytes_read)
{
    TV_PA_CTX(c, paddr);
    return vmi_read(vmi, &c, count, buf, bytes_read);
}

TV_API status_t vmi_read_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                            size_t count, void *buf, size_t *bytes_read)
{
    TV_VA_CTX(c, vaddr, pid);
    return vmi_read(vmi, &c, count, buf, bytes_read);
}

TV_API status_t vmi_write_pa(vmi_instance_t vmi, addr_t paddr, size_t count,
                             void *buf, size_t *bytes_written)
{
    TV_PA_CTX(c, paddr);
    return vmi_write(vmi, &c, count, buf, bytes_written);
}

TV_API status_t vmi_write_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                             size_t count, void *buf, size_t *bytes_written)
{
    TV_VA_CTX(c, vaddr, pid);
    return vmi_write(vmi, &c, count, buf, bytes_written);
}

/* vmi_read_{8,16,32,64,addr}_{pa,va} and vmi_write_N_pa: one definition
 * each, generated from the context-based calls. */
#define TV_READ_PA(suffix, type)                                          \
    TV_API status_t vmi_read_##suffix##_pa(vmi_instance_t vmi,            \
                                           addr_t paddr, type *value)     \
    {                                                                     \
        TV_PA_CTX(c, paddr);                                              \
        return vmi_read_##suffix(vmi, &c, value);                         \
    }
#define TV_READ_VA(suffix, type)                                          \
    TV_API status_t vmi_read_##suffix##_va(vmi_instance_t vmi,            \
                                           addr_t vaddr, vmi_pid_t pid,   \
                                           type *value)                   \
    {                                                                     \
        TV_VA_CTX(c, vaddr, pid);                                         \
        return vmi_read_##suffix(vmi, &c, value);                         \
    }
#define TV_WRITE_PA(bits)                                                 \
    TV_API status_t vmi_write_##bits##_pa(vmi_instance_t vmi,             \
                                          addr_t paddr,                   \
                                          uint##bits##_t *value)          \
    {                                                                     \
        return vmi_write_pa(vmi, paddr, sizeof *value, value, NULL);      \
    }

TV_READ_PA(8, uint8_t)
TV_READ_PA(16, uint16_t)
TV_READ_PA(32, uint32_t)
TV_READ_PA(64, uint64_t)
TV_READ_PA(addr, addr_t)
TV_READ_VA(8, uint8_t)
TV_READ_VA(16, uint16_t)
TV_READ_VA(32, uint32_t)
TV_READ_VA(64, uint64_t)
TV_READ_VA(addr, addr_t)
TV_WRITE_PA(8)
TV_WRITE_PA(16)
TV_WRITE_PA(32)
TV_WRITE_PA(64)

/* ---- Translation -------------------------------------------------------------- */

TV_API status_t vmi_translate_kv2p(vmi_instance_t vmi, addr_t vaddr,
                                   addr_t *paddr)
{
    uint64_t dtb = 0;
    if (!vmi || !paddr)
        return VMI_FAILURE;
    int rc = pid_dtb(vmi, 0, &dtb);
    if (!rc)
        rc = tv_translate(vmi, NULL, dtb, vaddr, paddr, NULL);
    return st(rc);
}

TV_API status_t vmi_pagetable_lookup(vmi_instance_t vmi, addr_t dtb,
                                     addr_t vaddr, addr_t *paddr)
{
    if (!vmi || !paddr)
        return VMI_FAILURE;
    return st(tv_translate(vmi, NULL, dtb, vaddr, paddr, NULL));
}

/* Where each level's entry goes in page_info_t, top level first. */
typedef struct info_layout {
    page_mode_t mode;
    size_t loc[TV_PT_MAX_LEVELS]; /* offsetof the *_location field */
} info_layout_t;

#define PI_(view, f) offsetof(page_info_t, view.f##_location)
static const info_layout_t info_layouts[] = {
    {VMI_PM_LEGACY, {PI_(x86_legacy, pgd), PI_(x86_legacy, pte)}},
    {VMI_PM_PAE,
     {PI_(x86_pae, pdpe), PI_(x86_pae, pgd), PI_(x86_pae, pte)}},
    {VMI_PM_IA32E,
     {PI_(x86_ia32e, pml4e), PI_(x86_ia32e, pdpte), PI_(x86_ia32e, pgd),
      PI_(x86_ia32e, pte)}},
    {VMI_PM_LA57,
     {PI_(x86_ia32e, pml5e), PI_(x86_ia32e, pml4e), PI_(x86_ia32e, pdpte),
      PI_(x86_ia32e, pgd), PI_(x86_ia32e, pte)}},
};
#undef PI_

static void fill_info(page_mode_t mode, const tv_walk_t *w, page_info_t *info)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(info_layouts); i++) {
        if (info_layouts[i].mode != mode)
            continue;
        for (unsigned l = 0; l < w->nentries; l++) {
            /* location then value: adjacent addr_t fields */
            addr_t *slot = (addr_t *)(void *)((uint8_t *)info +
                                              info_layouts[i].loc[l]);
            slot[0] = w->entry[l].location;
            slot[1] = w->entry[l].value;
        }
    }
}

TV_API status_t vmi_pagetable_lookup_extended(vmi_instance_t vmi, addr_t dtb,
                                              addr_t vaddr, page_info_t *info)
{
    if (!vmi || !info)
        return VMI_FAILURE;
    tv_memset(info, 0, sizeof *info);
    info->vaddr = vaddr;
    info->dtb = dtb;
    if (!vmi->pt)
        return st(tv_fail(vmi, TINYVMI_ESTATE,
                          "paging is not set up: cannot walk 0x%llx",
                          (unsigned long long)vaddr));
    tv_walk_t w;
    int rc = tv_walk_dtb(vmi, vmi->pt, dtb, vaddr, &w);
    fill_info(vmi->page_mode, &w, info);
    if (rc)
        return VMI_FAILURE;
    info->paddr = w.pa;
    info->size = (page_size_t)w.page_size;
    return VMI_SUCCESS;
}

TV_API void vmi_v2pcache_flush(vmi_instance_t vmi, addr_t dtb)
{
    (void)dtb; /* entries are tagged by dtb; one flush drops them all */
    if (vmi)
        tv_cache_flush(&vmi->v2p);
}

/* ---- Paging set-up --------------------------------------------------------------- */

int tv_set_paging_fmt(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                      uint64_t dtb)
{
    vmi->page_mode = fmt->mode;
    vmi->pt = fmt;
    vmi->kdtb = dtb & fmt->root_mask;
    vmi->kdtb_lo = 0;
    tv_cache_flush(&vmi->v2p);
    return TINYVMI_OK;
}

static int set_paging(struct vmi_instance *vmi, page_mode_t mode, uint64_t dtb)
{
    const tv_pt_format_t *fmt = vmi->transition
                                    ? tv_pt_format_transition(mode)
                                    : NULL;
    if (!fmt)
        fmt = tv_pt_format(mode);
    if (!fmt)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "page mode %s is not supported",
                       tinyvmi_page_mode_name(mode));
    return tv_set_paging_fmt(vmi, fmt, dtb);
}

TV_API status_t tinyvmi_set_paging(vmi_instance_t vmi, page_mode_t mode,
                                   addr_t dtb)
{
    return vmi ? st(set_paging(vmi, mode, dtb)) : VMI_FAILURE;
}

static int set_paging_arm(struct vmi_instance *vmi, page_mode_t mode,
                          uint64_t tcr, uint64_t ttbr0, uint64_t ttbr1)
{
    tv_pt_format_t f[2];
    int rc = mode == VMI_PM_AARCH64   ? tv_pt_arm64_from_tcr(tcr, f)
             : mode == VMI_PM_AARCH32 ? tv_pt_arm32_from_ttbcr(tcr, f)
                                      : TINYVMI_EINVAL;
    if (rc == TINYVMI_EINVAL)
        return tv_fail(vmi, rc, "page mode %s is not an ARM mode",
                       tinyvmi_page_mode_name(mode));
    if (rc)
        return tv_fail(vmi, rc, "%s 0x%llx selects no translation regime "
                       "TinyVMI walks (%s)",
                       mode == VMI_PM_AARCH64 ? "TCR_EL1" : "TTBCR",
                       (unsigned long long)tcr,
                       rc == TINYVMI_EFORMAT  ? "a reserved granule"
                       : rc == TINYVMI_ERANGE ? "a TnSZ out of range"
                                              : "an AArch32 split Linux "
                                                "does not use");
    /* out[0].hi points into f: re-point it into the instance. */
    bool two = f[0].hi != &f[0];
    vmi->pt_arm[0] = f[0];
    vmi->pt_arm[1] = f[1];
    vmi->pt_arm[0].hi = two ? &vmi->pt_arm[1] : &vmi->pt_arm[0];
    vmi->pt_arm[1].hi = &vmi->pt_arm[1];
    /* One range (AArch32 TTBR0 only): TTBR0 is the kernel's root. */
    int rc2 = tv_set_paging_fmt(vmi, &vmi->pt_arm[0], two ? ttbr1 : ttbr0);
    vmi->kdtb_lo = two ? ttbr0 & vmi->pt_arm[0].root_mask : 0;
    return rc2;
}

TV_API status_t tinyvmi_set_paging_arm(vmi_instance_t vmi, page_mode_t mode,
                                       uint64_t tcr, addr_t ttbr0,
                                       addr_t ttbr1)
{
    return vmi ? st(set_paging_arm(vmi, mode, tcr, ttbr0, ttbr1))
               : VMI_FAILURE;
}

static int get_reg(struct vmi_instance *vmi, unsigned vcpu, reg_t reg,
                   uint64_t *value)
{
    if (!vmi->have_drv || !vmi->drv.vcpu || !vmi->drv.vcpu->get_reg)
        return tv_fail(vmi, TINYVMI_ENOTSUP,
                       "this %s target has no vCPU registers",
                       vmi->have_drv ? vmi->drv.name : "unattached");
    if (vcpu >= vmi->drv.vcpu->count(vmi->drv.ctx))
        return tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %u (the target has %u)",
                       vcpu, vmi->drv.vcpu->count(vmi->drv.ctx));
    return vmi->drv.vcpu->get_reg(vmi->drv.ctx, vcpu, reg, value);
}

#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

/* Page mode and kernel page-table root from vCPU 0's registers.  ELF dumps
 * lack EFER; there the container's machine says it: QEMU writes an x86-64
 * ELF exactly when vCPU 0 runs in long mode. */
static int paging_from_vcpu(struct vmi_instance *vmi)
{
    uint64_t cr0, cr3, cr4, efer;
    if (vmi->drv.arch == VMI_ARCH_ARM64 || vmi->drv.arch == VMI_ARCH_ARM32) {
        uint64_t tcr, ttbr0, ttbr1;
        bool a64 = vmi->drv.arch == VMI_ARCH_ARM64;
        int rc = get_reg(vmi, 0, TCR_EL1, &tcr);
        if (!rc)
            rc = get_reg(vmi, 0, TTBR0, &ttbr0);
        if (!rc)
            rc = get_reg(vmi, 0, TTBR1, &ttbr1);
        if (rc)
            return tv_fail(vmi, rc, "no paging: vCPU 0's translation "
                           "registers: %s", vmi->last_error);
        return set_paging_arm(vmi, a64 ? VMI_PM_AARCH64 : VMI_PM_AARCH32,
                              tcr, ttbr0, ttbr1);
    }
    int rc = get_reg(vmi, 0, CR0, &cr0);
    if (!rc)
        rc = get_reg(vmi, 0, CR4, &cr4);
    if (!rc)
        rc = get_reg(vmi, 0, CR3, &cr3);
    if (rc)
        return tv_fail(vmi, rc,
                       "cannot find the page mode: %s; give it by hand "
                       "(tinyvmi_set_paging, or --page-mode/--dtb)",
                       vmi->last_error);
    if (get_reg(vmi, 0, MSR_EFER, &efer))
        efer = vmi->drv.arch == VMI_ARCH_X86_64 ? EFER_LME | EFER_LMA : 0;
    page_mode_t mode = tv_x86_page_mode(cr0, cr4, efer);
    if (mode == VMI_PM_NONE)
        return tv_fail(vmi, TINYVMI_ENOTSUP,
                       "vCPU 0 runs with paging disabled (CR0 0x%llx)",
                       (unsigned long long)cr0);
    return set_paging(vmi, mode, cr3);
}

void tv_paging_transition(struct vmi_instance *vmi)
{
    vmi->transition = true;
    /* Paging already set (by hand, or by an OS layer) changes format only
     * where the mode has a transition variant. */
    const tv_pt_format_t *t = tv_pt_format_transition(vmi->page_mode);
    if (vmi->pt && t && vmi->pt == tv_pt_format(vmi->page_mode))
        tv_set_paging_fmt(vmi, t, vmi->kdtb);
}

TV_API page_mode_t vmi_init_paging(vmi_instance_t vmi, uint64_t flags)
{
    if (!vmi)
        return VMI_PM_UNKNOWN;
    if (flags & VMI_PM_INITFLAG_TRANSITION_PAGES)
        tv_paging_transition(vmi);
    if (vmi->pt)
        return vmi->page_mode;
    return paging_from_vcpu(vmi) ? VMI_PM_UNKNOWN : vmi->page_mode;
}

/* ---- Information ------------------------------------------------------------------ */

TV_API page_mode_t vmi_get_page_mode(vmi_instance_t vmi, unsigned long vcpu)
{
    (void)vcpu;
    return vmi ? vmi->page_mode : VMI_PM_UNKNOWN;
}

TV_API uint64_t vmi_get_vmid(vmi_instance_t vmi)
{
    return vmi && vmi->drv.mem ? vmi->drv.id : VMI_INVALID_DOMID;
}

TV_API uint64_t vmi_get_memsize(vmi_instance_t vmi)
{
    return vmi ? vmi->memsize : 0;
}

TV_API addr_t vmi_get_max_physical_address(vmi_instance_t vmi)
{
    return vmi ? vmi->max_pa : 0;
}

TV_API addr_t vmi_get_kernel_dtb(vmi_instance_t vmi)
{
    return vmi && vmi->pt ? vmi->kdtb : 0;
}

TV_API unsigned int vmi_get_num_vcpus(vmi_instance_t vmi)
{
    if (!vmi || !vmi->have_drv || !vmi->drv.vcpu)
        return 0;
    return vmi->drv.vcpu->count(vmi->drv.ctx);
}

TV_API status_t vmi_get_vcpureg(vmi_instance_t vmi, uint64_t *value,
                                reg_t reg, unsigned long vcpu)
{
    if (!vmi || !value)
        return VMI_FAILURE;
    if (vcpu > UINT32_MAX)
        return st(tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %lu", vcpu));
    return st(get_reg(vmi, (unsigned)vcpu, reg, value));
}

typedef struct reg_slot {
    reg_t reg;
    size_t off;
} reg_slot_t;

#define RS_(r, f) {r, offsetof(x86_registers_t, f)}
static const reg_slot_t x86_slots[] = {
    RS_(RAX, rax), RS_(RCX, rcx), RS_(RDX, rdx), RS_(RBX, rbx),
    RS_(RSP, rsp), RS_(RBP, rbp), RS_(RSI, rsi), RS_(RDI, rdi),
    RS_(R8, r8), RS_(R9, r9), RS_(R10, r10), RS_(R11, r11),
    RS_(R12, r12), RS_(R13, r13), RS_(R14, r14), RS_(R15, r15),
    RS_(RFLAGS, rflags), RS_(DR6, dr6), RS_(DR7, dr7), RS_(RIP, rip),
    RS_(CR0, cr0), RS_(CR2, cr2), RS_(CR3, cr3), RS_(CR4, cr4),
    RS_(SYSENTER_CS, sysenter_cs), RS_(SYSENTER_ESP, sysenter_esp),
    RS_(SYSENTER_EIP, sysenter_eip), RS_(MSR_EFER, msr_efer),
    RS_(MSR_STAR, msr_star), RS_(MSR_LSTAR, msr_lstar),
    RS_(FS_BASE, fs_base), RS_(GS_BASE, gs_base),
};
#undef RS_

int tv_vcpu_x86_regs(struct vmi_instance *vmi, unsigned vcpu,
                     x86_registers_t *out, bool all)
{
    tv_memset(out, 0, sizeof *out);
    uint64_t probe;
    int rc = get_reg(vmi, vcpu, RIP, &probe);
    if (rc)
        return rc;
    const tv_ctl_ops_t *ctl = vmi->drv.ctl;
    bool held = ctl && ctl->pause && ctl->pause(vmi->drv.ctx) == 0;
    bool (*cheap)(void *, reg_t) = vmi->drv.vcpu->cheap;
    for (size_t i = 0; i < TV_ARRAY_LEN(x86_slots); i++) {
        uint64_t v;
        if (!all && cheap && !cheap(vmi->drv.ctx, x86_slots[i].reg))
            continue;
        if (get_reg(vmi, vcpu, x86_slots[i].reg, &v) == 0)
            tv_memcpy((uint8_t *)out + x86_slots[i].off, &v, sizeof v);
    }
    if (held)
        ctl->resume(vmi->drv.ctx);
    vmi->last_status = TINYVMI_OK;
    return TINYVMI_OK;
}

int tv_vcpu_x86_set(struct vmi_instance *vmi, unsigned vcpu,
                    const x86_registers_t *now, const x86_registers_t *want)
{
    if (!vmi->drv.vcpu || !vmi->drv.vcpu->set_reg)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "this %s target's registers "
                       "cannot be written", vmi->drv.name);
    for (size_t i = 0; i < TV_ARRAY_LEN(x86_slots); i++) {
        uint64_t a, b;
        tv_memcpy(&a, (const uint8_t *)now + x86_slots[i].off, sizeof a);
        tv_memcpy(&b, (const uint8_t *)want + x86_slots[i].off, sizeof b);
        if (a == b)
            continue;
        int rc = vmi->drv.vcpu->set_reg(vmi->drv.ctx, vcpu, x86_slots[i].reg, b);
        if (rc)
            return rc;
    }
    return TINYVMI_OK;
}

/* Fills what the target has; registers it lacks stay 0.  Fails only if
 * the target has no vCPU state at all. */
TV_API status_t vmi_get_vcpuregs(vmi_instance_t vmi, registers_t *regs,
                                 unsigned long vcpu)
{
    if (!vmi || !regs)
        return VMI_FAILURE;
    tv_memset(regs, 0, sizeof *regs);
    if (vcpu > UINT32_MAX)
        return st(tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %lu", vcpu));
    return st(tv_vcpu_x86_regs(vmi, (unsigned)vcpu, &regs->x86, true));
}

TV_API status_t vmi_set_vcpureg(vmi_instance_t vmi, uint64_t value, reg_t reg,
                                unsigned long vcpu)
{
    if (!vmi)
        return VMI_FAILURE;
    if (!vmi->have_drv || !vmi->drv.vcpu || !vmi->drv.vcpu->set_reg)
        return st(tv_fail(vmi, TINYVMI_ENOTSUP, "this %s target's registers "
                          "cannot be written",
                          vmi->have_drv ? vmi->drv.name : "unattached"));
    if (vcpu >= vmi->drv.vcpu->count(vmi->drv.ctx))
        return st(tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %lu", vcpu));
    int rc = vmi->drv.vcpu->set_reg(vmi->drv.ctx, (unsigned)vcpu, reg, value);
    if (!rc && (reg == CR3 || reg == CR0 || reg == CR4))
        tv_cache_flush(&vmi->v2p);
    return st(rc);
}

TV_API status_t vmi_set_vcpuregs(vmi_instance_t vmi, registers_t *regs,
                                 unsigned long vcpu)
{
    if (!vmi || !regs)
        return VMI_FAILURE;
    if (vcpu > UINT32_MAX)
        return st(tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %lu", vcpu));
    x86_registers_t now;
    const tv_ctl_ops_t *ctl = vmi->have_drv ? vmi->drv.ctl : NULL;
    bool held = ctl && ctl->pause && ctl->pause(vmi->drv.ctx) == 0;
    int rc = tv_vcpu_x86_regs(vmi, (unsigned)vcpu, &now, true);
    if (!rc)
        rc = tv_vcpu_x86_set(vmi, (unsigned)vcpu, &now, &regs->x86);
    if (held)
        ctl->resume(vmi->drv.ctx);
    tv_cache_flush(&vmi->v2p);
    return st(rc);
}

TV_API os_t vmi_get_ostype(vmi_instance_t vmi)
{
    return vmi ? vmi->os : VMI_OS_UNKNOWN;
}

TV_API vmi_arch_t vmi_get_library_arch(void)
{
#if defined(__x86_64__)
    return VMI_ARCH_X86_64;
#elif defined(__i386__)
    return VMI_ARCH_X86;
#elif defined(__aarch64__)
    return VMI_ARCH_ARM64;
#elif defined(__arm__)
    return VMI_ARCH_ARM32;
#else
    return VMI_ARCH_UNKNOWN;
#endif
}

/* ---- TinyVMI extensions ------------------------------------------------------------- */

TV_API const char *tinyvmi_format(vmi_instance_t vmi)
{
    return vmi && vmi->have_drv ? vmi->drv.name : "none";
}

TV_API size_t tinyvmi_range_count(vmi_instance_t vmi)
{
    return vmi && vmi->have_drv ? vmi->drv.nranges : 0;
}

TV_API status_t tinyvmi_range_get(vmi_instance_t vmi, size_t i,
                                  tinyvmi_range_t *out)
{
    if (!out || i >= tinyvmi_range_count(vmi))
        return VMI_FAILURE;
    out->start = vmi->drv.ranges[i].start;
    out->size = vmi->drv.ranges[i].size;
    return VMI_SUCCESS;
}

typedef struct mode_name {
    page_mode_t mode;
    const char *name;
} mode_name_t;

static const mode_name_t mode_names[] = {
    {VMI_PM_UNKNOWN, "unknown"}, {VMI_PM_NONE, "none"},
    {VMI_PM_LEGACY, "legacy"},   {VMI_PM_PAE, "PAE"},
    {VMI_PM_IA32E, "IA-32e"},    {VMI_PM_AARCH32, "AArch32"},
    {VMI_PM_AARCH64, "AArch64"}, {VMI_PM_EPT_4L, "EPT-4L"},
    {VMI_PM_EPT_5L, "EPT-5L"},   {VMI_PM_LA57, "LA57"},
};

TV_API const char *tinyvmi_page_mode_name(page_mode_t mode)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(mode_names); i++)
        if (mode_names[i].mode == mode)
            return mode_names[i].name;
    return "invalid";
}

TV_API void tinyvmi_cache_stats(vmi_instance_t vmi, tinyvmi_cache_stats_t *out)
{
    if (vmi && out)
        *out = vmi->v2p.stats;
}

TV_API void tinyvmi_cache_enable(vmi_instance_t vmi, int on)
{
    if (!vmi)
        return;
    vmi->v2p.enabled = on != 0 && vmi->v2p.slot != NULL;
    tv_cache_flush(&vmi->v2p);
}
