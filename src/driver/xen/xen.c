/*
 * The Xen driver: a domain's memory through foreign mappings, its vCPUs'
 * registers and pause/resume through libxenctrl, from dom0 (or any domain
 * with the privilege).  Hosted code; Xen's libraries are loaded at open.
 *
 * Addresses: a PV guest's page tables hold machine frames, so for a PV
 * guest "physical" means machine: the ranges are the machine frames its
 * p2m lists, and frames are mapped by MFN.  PVH and HVM guests are mapped
 * by guest frame.  Either way the walker and the OS layers see one flat
 * physical space in which the guest's own tables are valid.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "driver/xen/monitor.h"
#include "driver/xen/xen.h"
#include "driver/xen/xen_int.h"

#define PAGE 4096u
#define MAX_VCPUS 512
/* 64-bit PV p2m: 512 entries a page, three levels (list of lists). */
#define P2M_PER_PAGE 512u
#define MAX_P2M_PFNS (1ull << 28)      /* 1 TiB of guest: beyond, not a guest */
#define MFN_LIMIT (1ull << 40)          /* frames beyond 4 PiB are not frames */
#define PROBE_BATCH 1024u               /* HVM gfn probing, frames per map */
#define MAX_GPFN (1ull << 28)

/* ---- errors ------------------------------------------------------------------ */

static const char *dom_desc(const tv_xen_t *x, char *buf, size_t len)
{
    snprintf(buf, len, "domain %u%s%s%s", x->domid, x->name[0] ? " (" : "",
             x->name, x->name[0] ? ")" : "");
    return buf;
}

int tv_xen_dominfo(tv_xen_t *x, xc_dominfo_t *info)
{
    memset(info, 0, sizeof *info);
    int n = x->lib.xc_domain_getinfo(x->xch, x->domid, 1, info);
    if (n != 1 || info->domid != x->domid || info->dying) {
        char d[200];
        return tv_fail(x->vmi, TINYVMI_ENOENT, "%s no longer exists",
                       dom_desc(x, d, sizeof d));
    }
    return TINYVMI_OK;
}

/* A failed hypercall: says the domain is gone when it is, else what failed. */
static int xfail(tv_xen_t *x, int err, const char *what)
{
    xc_dominfo_t info;
    char d[200];
    if (tv_xen_dominfo(x, &info))
        return x->vmi->last_status;
    return tv_fail(x->vmi, TINYVMI_EIO, "%s of %s: %s", what,
                   dom_desc(x, d, sizeof d), strerror(err));
}

/* ---- frames ------------------------------------------------------------------ */

static void slot_drop(tv_xen_t *x, tv_xen_slot_t *s)
{
    if (s->base)
        x->lib.xenforeignmemory_unmap(x->fmem, s->base, TV_XEN_CHUNK);
    s->base = NULL;
    s->ok = 0;
    s->chunk = UINT64_MAX;
}

static void cache_drop(tv_xen_t *x)
{
    for (unsigned i = 0; i < TV_XEN_NSLOTS; i++)
        slot_drop(x, &x->slot[i]);
}

/* The mapping of frame's chunk (read-only), from the cache or mapped now. */
static const tv_xen_slot_t *chunk_of(tv_xen_t *x, uint64_t frame)
{
    uint64_t chunk = frame >> TV_XEN_CHUNK_SHIFT;
    tv_xen_slot_t *s = &x->slot[(chunk * 0x9e3779b97f4a7c15ull) >> 56];
    if (s->chunk == chunk)
        return s;
    slot_drop(x, s);
    xen_pfn_t frames[TV_XEN_CHUNK];
    int err[TV_XEN_CHUNK];
    for (unsigned i = 0; i < TV_XEN_CHUNK; i++) {
        frames[i] = (xen_pfn_t)((chunk << TV_XEN_CHUNK_SHIFT) + i);
        err[i] = 0;
    }
    s->chunk = chunk;
    s->base = x->lib.xenforeignmemory_map(x->fmem, x->domid, PROT_READ,
                                          TV_XEN_CHUNK, frames, err);
    if (s->base)
        for (unsigned i = 0; i < TV_XEN_CHUNK; i++)
            if (!err[i])
                s->ok |= 1u << i;
    return s;
}

static const uint8_t *frame_ptr(tv_xen_t *x, uint64_t frame)
{
    const tv_xen_slot_t *s = chunk_of(x, frame);
    unsigned i = (unsigned)(frame & (TV_XEN_CHUNK - 1));
    return (s->ok >> i) & 1 ? s->base + (size_t)i * PAGE : NULL;
}

/* A frame of the domain's ranges that does not map.  Frames are only lost
 * when the domain goes (or balloons): a destroy in progress can fail the
 * mapping before Xen marks the domain dying, so that is asked twice, 0.2 s
 * apart (failures are rare: reads outside the ranges never get here). */
static int frame_fail(tv_xen_t *x, uint64_t frame)
{
    xc_dominfo_t info;
    char d[200];
    for (int i = 0; i < 2; i++) {
        if (tv_xen_dominfo(x, &info))
            return x->vmi->last_status;
        if (!i)
            usleep(200000);
    }
    return tv_fail(x->vmi, TINYVMI_EUNMAPPED, "%s frame 0x%llx of %s cannot "
                   "be mapped%s", x->pv ? "machine" : "guest",
                   (unsigned long long)frame, dom_desc(x, d, sizeof d),
                   info.shutdown ? " (the domain has shut down)" : "");
}

static int xen_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                    size_t len)
{
    tv_xen_t *x = ctx;
    uint8_t *out = buf;
    (void)off;
    while (len) {
        size_t in = pa & (PAGE - 1), n = PAGE - in;
        if (n > len)
            n = len;
        const uint8_t *p = frame_ptr(x, pa / PAGE);
        if (!p)
            return frame_fail(x, pa / PAGE);
        memcpy(out, p + in, n);
        out += n;
        pa += n;
        len -= n;
    }
    return TINYVMI_OK;
}

/* Writes map the one page writable for the write only: a PV guest's page
 * tables cannot be mapped writable, and reads never need it. */
static int xen_write(void *ctx, uint64_t pa, uint64_t off, const void *buf,
                     size_t len)
{
    tv_xen_t *x = ctx;
    const uint8_t *in = buf;
    (void)off;
    while (len) {
        size_t at = pa & (PAGE - 1), n = PAGE - at;
        if (n > len)
            n = len;
        xen_pfn_t frame = (xen_pfn_t)(pa / PAGE);
        int err = 0;
        uint8_t *p = x->lib.xenforeignmemory_map(
            x->fmem, x->domid, PROT_READ | PROT_WRITE, 1, &frame, &err);
        if (!p || err) {
            if (p)
                x->lib.xenforeignmemory_unmap(x->fmem, p, 1);
            return frame_fail(x, frame);
        }
        memcpy(p + at, in, n);
        x->lib.xenforeignmemory_unmap(x->fmem, p, 1);
        in += n;
        pa += n;
        len -= n;
    }
    return TINYVMI_OK;
}

/* ---- ranges ------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted frames (duplicates allowed) -> merged ranges. */
static int ranges_from_frames(tv_xen_t *x, uint64_t *frames, size_t n)
{
    qsort(frames, n, sizeof *frames, cmp_u64);
    size_t nr = 0;
    for (size_t i = 0; i < n; i++)
        if (!i || frames[i] > frames[i - 1] + 1)
            nr++;
    if (!nr)
        return tv_fail(x->vmi, TINYVMI_ENOENT, "domain %u has no memory",
                       x->domid);
    tv_range_t *r = calloc(nr, sizeof *r);
    if (!r)
        return tv_fail(x->vmi, TINYVMI_ENOMEM, "no memory for %zu ranges", nr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && frames[i] <= frames[i - 1] + 1) {
            if (frames[i] == frames[i - 1] + 1)
                r[k - 1].size += PAGE;
            continue;
        }
        r[k].start = r[k].offset = frames[i] * PAGE;
        r[k].size = PAGE;
        k++;
    }
    x->ranges = r;
    x->nranges = nr;
    return TINYVMI_OK;
}

/* libxenctrl's page-type query (XEN_DOMCTL_getpageframeinfo3): exported by
 * every libxenctrl since 4.1 but declared only in its private header, so
 * looked up by name and typed here.  arr: frame numbers in, each with its
 * type in bits 28-31 out (XEN_DOMCTL_PFINFO_XTAB: no page there). */
typedef int tv_xc_pfn_types_t(xc_interface *xch, uint32_t dom,
                              unsigned int num, xen_pfn_t *arr);

/* Frames found populated so far (PVH/HVM probing). */
typedef struct probe {
    tv_xen_t *x;
    tv_xc_pfn_types_t *types; /* NULL: probe by mapping */
    uint64_t *frames;
    size_t n, cap;
} probe_t;

static int probe_add(probe_t *p, uint64_t frame)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 65536;
        uint64_t *g = realloc(p->frames, nc * sizeof *g);
        if (!g)
            return tv_fail(p->x->vmi, TINYVMI_ENOMEM, "no memory for the "
                           "frame list");
        p->frames = g;
        p->cap = nc;
    }
    p->frames[p->n++] = frame;
    return TINYVMI_OK;
}

/* Probes [f, f + cnt): Xen says which frames hold a page (one hypercall,
 * nothing mapped), or, where that query fails, one foreign mapping of the
 * batch does.  Returns how many frames are populated, or -1 (out of
 * memory: reason recorded). */
static long probe_batch(probe_t *p, uint64_t f, unsigned cnt)
{
    tv_xen_t *x = p->x;
    xen_pfn_t batch[PROBE_BATCH] = {0};
    int err[PROBE_BATCH] = {0};
    for (unsigned i = 0; i < cnt; i++)
        batch[i] = (xen_pfn_t)(f + i);
    bool typed = p->types && p->types(x->xch, x->domid, cnt, batch) == 0;
    void *m = NULL;
    if (!typed) {
        for (unsigned i = 0; i < cnt; i++)
            batch[i] = (xen_pfn_t)(f + i);
        m = x->lib.xenforeignmemory_map(x->fmem, x->domid, PROT_READ, cnt,
                                        batch, err);
        if (!m)
            return 0;
    }
    long got = 0;
    for (unsigned i = 0; i < cnt && got >= 0; i++) {
        uint32_t t = (uint32_t)batch[i] & XEN_DOMCTL_PFINFO_LTAB_MASK;
        bool here = typed ? t != XEN_DOMCTL_PFINFO_XTAB &&
                                t != XEN_DOMCTL_PFINFO_XALLOC &&
                                t != XEN_DOMCTL_PFINFO_BROKEN
                          : !err[i];
        if (here)
            got = probe_add(p, f + i) ? -1 : got + 1;
    }
    if (m)
        x->lib.xenforeignmemory_unmap(x->fmem, m, cnt);
    return got;
}

/* PVH/HVM: the populated guest frames.  Dom0 cannot read a domain's memory
 * map, so frames are probed a batch at a time, in the order guests are laid
 * out -- RAM from 0 up; then down from the top frame through what lies
 * below it (Xen's special pages, the ACPI tables libxl puts tens of MiB
 * lower, high RAM); then, only while frames are missing, everything between
 * -- until as many frames are found as Xen says the domain has.  The order
 * matters: a PVH guest's top frame lies near 4 GiB whatever its size, and
 * the scan of all between cost about 4 s of every attach to a 128 MiB PVH
 * guest in the lab (1,000 queries in a PV dom0 under TCG).  Probing by
 * mapping costs about 50 us a frame there (every mapping is page-table
 * hypercalls), which is why Xen's page-type query comes first. */
#define PROBE_GAP 64u /* empty batches (256 MiB) the way down may cross */
static int hvm_ranges(tv_xen_t *x, const xc_dominfo_t *info)
{
    xen_pfn_t max = 0;
    if (x->lib.xc_domain_maximum_gpfn(x->xch, x->domid, &max) < 0)
        return xfail(x, errno, "the highest guest frame");
    if (max >= MAX_GPFN)
        return tv_fail(x->vmi, TINYVMI_ERANGE, "domain %u claims guest "
                       "frames up to 0x%llx", x->domid,
                       (unsigned long long)max);
    uint64_t nb = ((uint64_t)max + PROBE_BATCH) / PROBE_BATCH, want = info->nr_pages;
    uint8_t *done = calloc((size_t)nb, 1);
    probe_t p = {.x = x};
    *(void **)&p.types = dlsym(x->lib.handle[TV_XEN_LIB_XC],
                               "xc_get_pfn_type_batch");
    int rc = done ? TINYVMI_OK
                  : tv_fail(x->vmi, TINYVMI_ENOMEM, "no memory for probing");
    /* pass 0: up from 0 while batches hold frames; pass 1: down from the
     * top until PROBE_GAP batches in a row are empty; pass 2: the rest */
    uint64_t probed = 0;
    for (int pass = 0; pass < 3 && !rc && p.n < want; pass++) {
        unsigned empty = 0;
        for (uint64_t k = 0; k < nb && p.n < want; k++) {
            uint64_t b = pass == 1 ? nb - 1 - k : k;
            if (done[b])
                continue;
            done[b] = 1;
            uint64_t f = b * PROBE_BATCH;
            unsigned cnt = (unsigned)(max + 1 - f < PROBE_BATCH ? max + 1 - f
                                                                 : PROBE_BATCH);
            long got = probe_batch(&p, f, cnt);
            probed++;
            if (got < 0) {
                rc = TINYVMI_ENOMEM;
                break;
            }
            empty = got ? 0 : empty + 1;
            if ((pass == 0 && empty) || (pass == 1 && empty >= PROBE_GAP))
                break;
        }
    }
    tv_log(x->vmi, 2, "xen: domain %u: %zu of %llu frames found in %llu "
           "queries of %u", x->domid, p.n, (unsigned long long)want,
           (unsigned long long)probed, PROBE_BATCH);
    if (!rc)
        rc = ranges_from_frames(x, p.frames, p.n);
    free(p.frames);
    free(done);
    return rc;
}

/* The entries of pages whose frames are listed: each page 512 frame numbers. */
static int read_frame_table(tv_xen_t *x, const uint64_t *pages, size_t npages,
                            uint64_t *out, size_t nout)
{
    for (size_t i = 0; i < npages && i * P2M_PER_PAGE < nout; i++) {
        if (pages[i] >= MFN_LIMIT)
            return tv_fail(x->vmi, TINYVMI_EFORMAT, "p2m frame list names "
                           "machine frame 0x%llx", (unsigned long long)pages[i]);
        const uint8_t *p = frame_ptr(x, pages[i]);
        if (!p)
            return frame_fail(x, pages[i]);
        size_t take = nout - i * P2M_PER_PAGE;
        if (take > P2M_PER_PAGE)
            take = P2M_PER_PAGE;
        memcpy(out + i * P2M_PER_PAGE, p, take * sizeof *out);
    }
    return TINYVMI_OK;
}

/* The p2m through the list of frame lists the guest publishes in its
 * shared_info: three levels of machine frames. */
static int p2m_from_lists(tv_xen_t *x, uint64_t fll, uint64_t *p2m,
                          size_t npfn)
{
    size_t np2m = (npfn + P2M_PER_PAGE - 1) / P2M_PER_PAGE;
    size_t nfl = (np2m + P2M_PER_PAGE - 1) / P2M_PER_PAGE;
    uint64_t *fl = calloc(nfl, sizeof *fl);
    uint64_t *pages = calloc(np2m, sizeof *pages);
    int rc = fl && pages ? TINYVMI_OK
                         : tv_fail(x->vmi, TINYVMI_ENOMEM, "no memory for "
                                   "the p2m lists");
    if (!rc)
        rc = read_frame_table(x, &fll, 1, fl, nfl);
    if (!rc)
        rc = read_frame_table(x, fl, nfl, pages, np2m);
    if (!rc)
        rc = read_frame_table(x, pages, np2m, p2m, npfn);
    free(fl);
    free(pages);
    return rc;
}

static void noop_close(void *ctx)
{
    (void)ctx;
}

static const tv_mem_ops_t xen_mem = {xen_read, xen_write, NULL};

/* The p2m through the virtual address the guest keeps it at (Linux with
 * SIF_VIRT_P2M_4TOOLS): read with the walker over all machine memory, in
 * a scratch instance of this driver. */
static int p2m_from_vaddr(tv_xen_t *x, uint64_t cr3, uint64_t va,
                          uint64_t *p2m, size_t npfn)
{
    struct vmi_instance *tmp;
    int rc = tv_instance_new(&x->vmi->hooks, &tmp);
    if (rc)
        return tv_fail(x->vmi, rc, "no memory for a scratch instance");
    tv_range_t all = {0, MFN_LIMIT * PAGE, 0};
    tv_driver_t d = {.name = "xen", .ctx = x, .mem = &xen_mem,
                     .close = noop_close, .ranges = &all, .nranges = 1,
                     .arch = VMI_ARCH_X86_64};
    struct vmi_instance *owner = x->vmi;
    x->vmi = tmp;
    rc = tv_instance_attach(tmp, &d);
    size_t done = 0;
    if (!rc)
        rc = tv_read_va(tmp, tv_pt_format(VMI_PM_IA32E), cr3, va, p2m,
                        npfn * sizeof *p2m, &done);
    x->vmi = owner;
    if (rc)
        rc = tv_fail(owner, rc, "the guest's p2m list at 0x%llx (cr3 0x%llx),"
                     " %zu of %zu bytes read: %s", (unsigned long long)va,
                     (unsigned long long)cr3, done, npfn * sizeof *p2m,
                     tmp->last_error);
    tv_instance_free(tmp);
    return rc;
}

/* PV: the machine frames of the guest's p2m (pfn -> mfn) table. */
static int pv_ranges(tv_xen_t *x, const xc_dominfo_t *info)
{
    if (x->width != 8)
        return tv_fail(x->vmi, TINYVMI_ENOTSUP, "domain %u is a %u-bit PV "
                       "guest; only 64-bit PV guests are supported",
                       x->domid, x->width * 8);
    const shared_info_t *si = (const void *)frame_ptr(x, info->shared_info_frame);
    if (!si)
        return frame_fail(x, info->shared_info_frame);
    uint64_t npfn = si->arch.max_pfn, fll = si->arch.pfn_to_mfn_frame_list_list;
    uint64_t cr3 = si->arch.p2m_cr3, va = si->arch.p2m_vaddr;
    if (!npfn || npfn > MAX_P2M_PFNS)
        return tv_fail(x->vmi, TINYVMI_EFORMAT, "domain %u's shared info "
                       "gives max_pfn 0x%llx (its kernel has not set up "
                       "its p2m yet?)", x->domid, (unsigned long long)npfn);
    uint64_t *p2m = calloc(npfn, sizeof *p2m);
    if (!p2m)
        return tv_fail(x->vmi, TINYVMI_ENOMEM, "no memory for a p2m of "
                       "%llu entries", (unsigned long long)npfn);
    int rc;
    if (fll && fll != ~0ull)
        rc = p2m_from_lists(x, fll, p2m, (size_t)npfn);
    else if (va && cr3)
        rc = p2m_from_vaddr(x, cr3, va, p2m, (size_t)npfn);
    else
        rc = tv_fail(x->vmi, TINYVMI_ENOENT, "domain %u publishes no p2m "
                     "(no frame list and no virtual list)", x->domid);
    size_t n = 0;
    /* Linux marks identity (1:1) and foreign frames in the top bits;
     * invalid entries are all ones. */
    for (size_t i = 0; !rc && i < npfn; i++)
        if (p2m[i] < MFN_LIMIT)
            p2m[n++] = p2m[i];
    if (!rc)
        rc = ranges_from_frames(x, p2m, n);
    free(p2m);
    return rc;
}

/* ---- vCPUs ------------------------------------------------------------------- */

static unsigned xen_count(void *ctx)
{
    return ((tv_xen_t *)ctx)->vcpus;
}

/* A PV vCPU's context and where each register lives in it. */
static int pv_ctx(tv_xen_t *x, unsigned vcpu, vcpu_guest_context_any_t *c)
{
    if (x->lib.xc_vcpu_getcontext(x->xch, x->domid, vcpu, c) < 0)
        return xfail(x, errno, "reading a vCPU context");
    return TINYVMI_OK;
}

static uint64_t *pv_reg(vcpu_guest_context_x86_64_t *c, reg_t reg)
{
    struct cpu_user_regs_x86_64 *u = &c->user_regs;
    switch (reg) {
    case RAX: return &u->rax;
    case RBX: return &u->rbx;
    case RCX: return &u->rcx;
    case RDX: return &u->rdx;
    case RBP: return &u->rbp;
    case RSI: return &u->rsi;
    case RDI: return &u->rdi;
    case RSP: return &u->rsp;
    case R8: return &u->r8;
    case R9: return &u->r9;
    case R10: return &u->r10;
    case R11: return &u->r11;
    case R12: return &u->r12;
    case R13: return &u->r13;
    case R14: return &u->r14;
    case R15: return &u->r15;
    case RIP: return &u->rip;
    case RFLAGS: return &u->rflags;
    case CR0: return &c->ctrlreg[0];
    case CR2: return &c->ctrlreg[2];
    case CR3: return &c->ctrlreg[3];
    case CR4: return &c->ctrlreg[4];
    case DR0: return &c->debugreg[0];
    case DR1: return &c->debugreg[1];
    case DR2: return &c->debugreg[2];
    case DR3: return &c->debugreg[3];
    case DR6: return &c->debugreg[6];
    case DR7: return &c->debugreg[7];
    case FS_BASE: return &c->fs_base;
    case GS_BASE: return &c->gs_base_kernel;
    case SHADOW_GS: return &c->gs_base_user;
    default: return NULL;
    }
}

static uint64_t *hvm_reg(struct hvm_hw_cpu *c, reg_t reg)
{
    switch (reg) {
    case RAX: return &c->rax;
    case RBX: return &c->rbx;
    case RCX: return &c->rcx;
    case RDX: return &c->rdx;
    case RBP: return &c->rbp;
    case RSI: return &c->rsi;
    case RDI: return &c->rdi;
    case RSP: return &c->rsp;
    case R8: return &c->r8;
    case R9: return &c->r9;
    case R10: return &c->r10;
    case R11: return &c->r11;
    case R12: return &c->r12;
    case R13: return &c->r13;
    case R14: return &c->r14;
    case R15: return &c->r15;
    case RIP: return &c->rip;
    case RFLAGS: return &c->rflags;
    case CR0: return &c->cr0;
    case CR2: return &c->cr2;
    case CR3: return &c->cr3;
    case CR4: return &c->cr4;
    case DR0: return &c->dr0;
    case DR1: return &c->dr1;
    case DR2: return &c->dr2;
    case DR3: return &c->dr3;
    case DR6: return &c->dr6;
    case DR7: return &c->dr7;
    case CS_BASE: return &c->cs_base;
    case DS_BASE: return &c->ds_base;
    case ES_BASE: return &c->es_base;
    case FS_BASE: return &c->fs_base;
    case GS_BASE: return &c->gs_base;
    case SS_BASE: return &c->ss_base;
    case TR_BASE: return &c->tr_base;
    case LDTR_BASE: return &c->ldtr_base;
    case IDTR_BASE: return &c->idtr_base;
    case GDTR_BASE: return &c->gdtr_base;
    case SYSENTER_CS: return &c->sysenter_cs;
    case SYSENTER_ESP: return &c->sysenter_esp;
    case SYSENTER_EIP: return &c->sysenter_eip;
    case SHADOW_GS: return &c->shadow_gs;
    case MSR_SHADOW_GS_BASE: return &c->shadow_gs;
    case MSR_LSTAR: return &c->msr_lstar;
    case MSR_STAR: return &c->msr_star;
    case MSR_CSTAR: return &c->msr_cstar;
    case MSR_SYSCALL_MASK: return &c->msr_syscall_mask;
    case MSR_EFER: return &c->msr_efer;
    case MSR_TSC_AUX: return &c->msr_tsc_aux;
    case TSC: return &c->tsc;
    default: return NULL;
    }
}

/* The 32-bit fields of an HVM context (selectors, limits, access rights). */
static uint32_t *hvm_reg32(struct hvm_hw_cpu *c, reg_t reg)
{
    switch (reg) {
    case CS_SEL: return &c->cs_sel;
    case DS_SEL: return &c->ds_sel;
    case ES_SEL: return &c->es_sel;
    case FS_SEL: return &c->fs_sel;
    case GS_SEL: return &c->gs_sel;
    case SS_SEL: return &c->ss_sel;
    case TR_SEL: return &c->tr_sel;
    case LDTR_SEL: return &c->ldtr_sel;
    case CS_LIMIT: return &c->cs_limit;
    case DS_LIMIT: return &c->ds_limit;
    case ES_LIMIT: return &c->es_limit;
    case FS_LIMIT: return &c->fs_limit;
    case GS_LIMIT: return &c->gs_limit;
    case SS_LIMIT: return &c->ss_limit;
    case TR_LIMIT: return &c->tr_limit;
    case LDTR_LIMIT: return &c->ldtr_limit;
    case IDTR_LIMIT: return &c->idtr_limit;
    case GDTR_LIMIT: return &c->gdtr_limit;
    case CS_ARBYTES: return &c->cs_arbytes;
    case DS_ARBYTES: return &c->ds_arbytes;
    case ES_ARBYTES: return &c->es_arbytes;
    case FS_ARBYTES: return &c->fs_arbytes;
    case GS_ARBYTES: return &c->gs_arbytes;
    case SS_ARBYTES: return &c->ss_arbytes;
    case TR_ARBYTES: return &c->tr_arbytes;
    case LDTR_ARBYTES: return &c->ldtr_arbytes;
    default: return NULL;
    }
}

static int hvm_ctx(tv_xen_t *x, unsigned vcpu, struct hvm_hw_cpu *c)
{
    if (x->lib.xc_domain_hvm_getcontext_partial(x->xch, x->domid,
                                                HVM_SAVE_CODE(CPU),
                                                (uint16_t)vcpu, c,
                                                sizeof *c) < 0)
        return xfail(x, errno, "reading a vCPU's HVM context");
    return TINYVMI_OK;
}

static int bad_reg(tv_xen_t *x, reg_t reg)
{
    return tv_fail(x->vmi, TINYVMI_ENOTSUP, "register %llu is not in a %s "
                   "vCPU context", (unsigned long long)reg,
                   x->pv ? "PV" : "HVM");
}

static int check_vcpu(tv_xen_t *x, unsigned vcpu)
{
    if (vcpu >= x->vcpus)
        return tv_fail(x->vmi, TINYVMI_EINVAL, "vCPU %u: domain %u has %u",
                       vcpu, x->domid, x->vcpus);
    return TINYVMI_OK;
}

/* EFER as a 64-bit PV guest runs: long mode on (the PV context has no
 * EFER; Xen runs such guests in long mode, with NX). */
#define PV64_EFER 0xd01ull /* SCE | LME | LMA | NXE */

int tv_xen_get_reg(tv_xen_t *x, unsigned vcpu, reg_t reg, uint64_t *value)
{
    int rc = check_vcpu(x, vcpu);
    if (rc)
        return rc;
    if (x->pv) {
        vcpu_guest_context_any_t c;
        if ((rc = pv_ctx(x, vcpu, &c)))
            return rc;
        if (reg == MSR_EFER) {
            *value = PV64_EFER;
            return TINYVMI_OK;
        }
        uint64_t *p = pv_reg(&c.x64, reg);
        if (!p)
            return bad_reg(x, reg);
        /* PV CR3 holds a machine frame number shifted into place */
        *value = reg == CR3 ? (uint64_t)xen_cr3_to_pfn_x86_64(*p) << 12 : *p;
        return TINYVMI_OK;
    }
    struct hvm_hw_cpu c;
    if ((rc = hvm_ctx(x, vcpu, &c)))
        return rc;
    uint64_t *p = hvm_reg(&c, reg);
    uint32_t *q = p ? NULL : hvm_reg32(&c, reg);
    if (!p && !q)
        return bad_reg(x, reg);
    *value = p ? *p : *q;
    return TINYVMI_OK;
}

/* Writes go through the whole context: Xen has no partial setter.  The
 * domain is paused from the read to the write, or registers the guest
 * changed in between would be put back to what they were. */
static int hvm_set_paused(tv_xen_t *x, unsigned vcpu, reg_t reg,
                          uint64_t value);

static int hvm_set(tv_xen_t *x, unsigned vcpu, reg_t reg, uint64_t value)
{
    if (x->lib.xc_domain_pause(x->xch, x->domid) < 0)
        return xfail(x, errno, "pausing the domain to write a register");
    int rc = hvm_set_paused(x, vcpu, reg, value);
    if (x->lib.xc_domain_unpause(x->xch, x->domid) < 0 && !rc)
        rc = xfail(x, errno, "unpausing the domain after writing a register");
    return rc;
}

static int hvm_set_paused(tv_xen_t *x, unsigned vcpu, reg_t reg,
                          uint64_t value)
{
    int size = x->lib.xc_domain_hvm_getcontext(x->xch, x->domid, NULL, 0);
    if (size <= 0)
        return xfail(x, errno, "sizing the HVM context");
    uint8_t *buf = malloc((size_t)size);
    if (!buf)
        return tv_fail(x->vmi, TINYVMI_ENOMEM, "no memory for the HVM "
                       "context");
    int rc = TINYVMI_ENOENT;
    int got = x->lib.xc_domain_hvm_getcontext(x->xch, x->domid, buf,
                                              (uint32_t)size);
    if (got < 0) {
        rc = xfail(x, errno, "reading the HVM context");
        goto out;
    }
    /* records: a descriptor (typecode, instance, length), then the body */
    for (size_t off = 0; off + sizeof(struct hvm_save_descriptor) <= (size_t)got;) {
        struct hvm_save_descriptor d;
        memcpy(&d, buf + off, sizeof d);
        off += sizeof d;
        if (d.length > (size_t)got - off)
            break;
        if (d.typecode == HVM_SAVE_CODE(END))
            break;
        if (d.typecode == HVM_SAVE_CODE(CPU) && d.instance == vcpu &&
            d.length >= sizeof(struct hvm_hw_cpu)) {
            struct hvm_hw_cpu c;
            memcpy(&c, buf + off, sizeof c);
            uint64_t *p = hvm_reg(&c, reg);
            uint32_t *q = p ? NULL : hvm_reg32(&c, reg);
            if (!p && !q) {
                rc = bad_reg(x, reg);
                goto out;
            }
            if (p)
                *p = value;
            else
                *q = (uint32_t)value;
            memcpy(buf + off, &c, sizeof c);
            rc = x->lib.xc_domain_hvm_setcontext(x->xch, x->domid, buf,
                                                 (uint32_t)got) < 0
                     ? xfail(x, errno, "writing the HVM context")
                     : TINYVMI_OK;
            goto out;
        }
        off += d.length;
    }
    rc = tv_fail(x->vmi, TINYVMI_ENOENT, "domain %u's HVM context has no "
                 "CPU record for vCPU %u", x->domid, vcpu);
out:
    free(buf);
    return rc;
}

int tv_xen_set_reg(tv_xen_t *x, unsigned vcpu, reg_t reg, uint64_t value)
{
    int rc = check_vcpu(x, vcpu);
    if (rc)
        return rc;
    if (!x->pv)
        return hvm_set(x, vcpu, reg, value);
    vcpu_guest_context_any_t c;
    if ((rc = pv_ctx(x, vcpu, &c)))
        return rc;
    uint64_t *p = pv_reg(&c.x64, reg);
    if (!p || reg == CR3)
        return reg == CR3 ? tv_fail(x->vmi, TINYVMI_ENOTSUP, "a PV guest's "
                                    "CR3 is not set from outside")
                          : bad_reg(x, reg);
    *p = value;
    if (x->lib.xc_vcpu_setcontext(x->xch, x->domid, vcpu, &c) < 0)
        return xfail(x, errno, "writing a vCPU context");
    return TINYVMI_OK;
}

static int xen_get_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value)
{
    return tv_xen_get_reg(ctx, vcpu, reg, value);
}

static int xen_set_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t value)
{
    return tv_xen_set_reg(ctx, vcpu, reg, value);
}

static const tv_vcpu_ops_t xen_vcpu = {xen_count, xen_get_reg, xen_set_reg,
                                       NULL};

/* ---- run control --------------------------------------------------------------- */

static int xen_pause(void *ctx)
{
    tv_xen_t *x = ctx;
    if (x->lib.xc_domain_pause(x->xch, x->domid) < 0)
        return xfail(x, errno, "pausing");
    x->pauses++;
    return TINYVMI_OK;
}

static int xen_resume(void *ctx)
{
    tv_xen_t *x = ctx;
    if (!x->pauses)
        return tv_fail(x->vmi, TINYVMI_ESTATE, "domain %u was not paused by "
                       "this instance", x->domid);
    if (x->lib.xc_domain_unpause(x->xch, x->domid) < 0)
        return xfail(x, errno, "resuming");
    x->pauses--;
    return TINYVMI_OK;
}

static const tv_ctl_ops_t xen_ctl = {xen_pause, xen_resume};

/* ---- open and close ------------------------------------------------------------- */

static void xen_close(void *ctx)
{
    tv_xen_t *x = ctx;
    if (!x)
        return;
    tv_xen_monitor_close(x); /* every monitor off, every request answered */
    if (x->fmem)
        cache_drop(x);
    /* the guest keeps running: undo our pauses */
    while (x->xch && x->pauses &&
           x->lib.xc_domain_unpause(x->xch, x->domid) == 0)
        x->pauses--;
    if (x->fmem)
        x->lib.xenforeignmemory_close(x->fmem);
    if (x->xch)
        x->lib.xc_interface_close(x->xch);
    tv_xen_lib_unload(&x->lib);
    free(x->ranges);
    free(x);
}

/* Looks a domain up by name in xenstore (/local/domain/ID/name). */
static int find_by_name(tv_xen_t *x, const char *name)
{
    struct xs_handle *xs = x->lib.xs_open(0);
    if (!xs)
        return tv_fail(x->vmi, TINYVMI_EIO, "cannot connect to xenstore "
                       "(%s) to find domain %s; give its id (xen:ID)",
                       strerror(errno), name);
    unsigned n = 0;
    char **ids = x->lib.xs_directory(xs, XBT_NULL, "/local/domain", &n);
    char seen[512] = "";
    size_t used = 0;
    int rc = TINYVMI_ENOENT;
    for (unsigned i = 0; ids && i < n && i < 65536; i++) {
        char path[64];
        unsigned len = 0;
        snprintf(path, sizeof path, "/local/domain/%.16s/name", ids[i]);
        char *v = x->lib.xs_read(xs, XBT_NULL, path, &len);
        if (!v)
            continue;
        if (used < sizeof seen - 1)
            used += (size_t)snprintf(seen + used, sizeof seen - used, "%s%.*s",
                                     used ? ", " : "", (int)len, v);
        char *end;
        unsigned long id = strtoul(ids[i], &end, 10);
        if (rc && !*end && id < 0x7ff0 && strlen(v) == len &&
            !strcmp(v, name)) {
            x->domid = (uint32_t)id;
            rc = TINYVMI_OK;
        }
        free(v);
    }
    free(ids);
    x->lib.xs_close(xs);
    if (rc)
        return tv_fail(x->vmi, TINYVMI_ENOENT, "no Xen domain is named %s "
                       "(domains: %s)", name, used ? seen : "none listed");
    snprintf(x->name, sizeof x->name, "%s", name);
    return TINYVMI_OK;
}

/* The name of a domain given by id, when xenstore says it (cosmetic). */
static void name_of(tv_xen_t *x)
{
    struct xs_handle *xs = x->lib.xs_open(0);
    if (!xs)
        return;
    char path[64];
    unsigned len = 0;
    snprintf(path, sizeof path, "/local/domain/%u/name", x->domid);
    char *v = x->lib.xs_read(xs, XBT_NULL, path, &len);
    if (v && len < sizeof x->name && strlen(v) == len)
        memcpy(x->name, v, (size_t)len + 1);
    free(v);
    x->lib.xs_close(xs);
}

/* Xen's libraries' own messages go to the instance's log (debug level):
 * the failures they report come back as statuses with our own reasons. */
static void xen_vlog(xentoollog_logger *lg, xentoollog_level level,
                     int errnoval, const char *context, const char *format,
                     va_list al) __attribute__((format(printf, 5, 0)));
static void xen_vlog(xentoollog_logger *lg, xentoollog_level level,
                     int errnoval, const char *context, const char *format,
                     va_list al)
{
    tv_xen_t *x = (tv_xen_t *)lg;
    char msg[400];
    (void)level;
    vsnprintf(msg, sizeof msg, format, al);
    tv_log(x->vmi, 3, "xen %s: %s%s%s", context ? context : "lib", msg,
           errnoval >= 0 ? ": " : "", errnoval >= 0 ? strerror(errnoval) : "");
}

static void xen_nodestroy(xentoollog_logger *lg)
{
    (void)lg;
}

int tv_xen_open(struct vmi_instance *vmi, const char *name, bool by_id,
                uint32_t domid, tv_driver_t *out)
{
    memset(out, 0, sizeof *out);
    tv_xen_t *x = calloc(1, sizeof *x);
    if (!x)
        return tv_fail(vmi, TINYVMI_ENOMEM, "no memory for the Xen driver");
    x->vmi = vmi;
    x->logger.vmessage = xen_vlog;
    x->logger.destroy = xen_nodestroy;
    for (unsigned i = 0; i < TV_XEN_NSLOTS; i++)
        x->slot[i].chunk = UINT64_MAX;
    char why[512];
    int rc;
    if (tv_xen_lib_load(&x->lib, why, sizeof why)) {
        free(x);
        return tv_fail(vmi, TINYVMI_ENOTSUP, "%s", why);
    }
    x->xch = x->lib.xc_interface_open(&x->logger, &x->logger, 0);
    if (!x->xch) {
        rc = tv_fail(vmi, TINYVMI_ENOTSUP, "cannot open Xen's control "
                     "interface (%s): TinyVMI must run as root in dom0 or a "
                     "domain with that privilege", strerror(errno));
        goto fail;
    }
    x->fmem = x->lib.xenforeignmemory_open(&x->logger, 0);
    if (!x->fmem) {
        rc = tv_fail(vmi, TINYVMI_ENOTSUP, "cannot open Xen's foreign "
                     "memory interface (%s)", strerror(errno));
        goto fail;
    }
    x->domid = domid;
    if (!by_id && (rc = find_by_name(x, name)))
        goto fail;
    xc_dominfo_t info;
    memset(&info, 0, sizeof info);
    if (x->lib.xc_domain_getinfo(x->xch, x->domid, 1, &info) != 1 ||
        info.domid != x->domid) {
        rc = tv_fail(vmi, TINYVMI_ENOENT, "no Xen domain has id %u",
                     x->domid);
        goto fail;
    }
    if (info.dying) {
        rc = tv_fail(vmi, TINYVMI_ENOENT, "Xen domain %u is being destroyed",
                     x->domid);
        goto fail;
    }
    if (by_id)
        name_of(x);
    x->pv = !info.hvm;
    x->pvh = info.hvm &&
             !(info.arch_config.emulation_flags & ~XEN_X86_EMU_LAPIC);
    if (info.max_vcpu_id >= MAX_VCPUS) {
        rc = tv_fail(vmi, TINYVMI_ERANGE, "domain %u claims %u vCPUs",
                     x->domid, info.max_vcpu_id + 1);
        goto fail;
    }
    x->vcpus = info.max_vcpu_id + 1;
    if (x->pv) {
        unsigned w = 0;
        if (x->lib.xc_domain_get_guest_width(x->xch, x->domid, &w) < 0) {
            rc = xfail(x, errno, "the guest width");
            goto fail;
        }
        x->width = w;
        rc = pv_ranges(x, &info);
    } else {
        x->width = 8;
        rc = hvm_ranges(x, &info);
    }
    if (rc)
        goto fail;
    tv_log(vmi, 2, "xen: domain %u (%s), %s, %u vCPUs, %zu ranges", x->domid,
           x->name, x->pv ? "PV" : x->pvh ? "PVH" : "HVM", x->vcpus,
           x->nranges);
    *out = (tv_driver_t){.name = "xen",
                         .ctx = x,
                         .mem = &xen_mem,
                         .vcpu = &xen_vcpu,
                         .ctl = &xen_ctl,
                         .ev = tv_xen_events(),
                         .close = xen_close,
                         .ranges = x->ranges,
                         .nranges = x->nranges,
                         .arch = VMI_ARCH_X86_64,
                         .id = x->domid};
    return TINYVMI_OK;
fail:
    xen_close(x);
    return rc;
}
