/*
 * Xen's vm_event monitor: the event group (tv_event_ops_t) of Xen targets.
 *
 * One ring page per domain, set up by xc_monitor_enable at the first event
 * registered; Xen writes requests into it and kicks an event channel, we
 * answer each request in the same ring.  A synchronous request holds its
 * vCPU paused (VM_EVENT_FLAG_VCPU_PAUSED) until the answer, which keeps
 * that flag so Xen resumes it.  The ring's layout depends on Xen's
 * vm_event interface version: a table of offsets per version, chosen by
 * the version of the first request and checked on every one.
 */
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <libvmi/events.h>

#include "driver/xen/monitor.h"
#include "driver/xen/xen_int.h"
/* after xenctrl.h (xen_int.h), which sets the tools' view of Xen's headers */
#include <xen/vm_event.h>
#include <xendevicemodel.h>

/* ---- Layouts ------------------------------------------------------------------- */

/* Offsets of the fields we use, from Xen's public/vm_event.h of each
 * version (the header part and the union u did not move between 6 and 7;
 * version 7 added npt_base and vmtrace_pos to the x86 registers). */
#define TV_XEN_COMMON                                                         \
    [TV_XF_VERSION] = {0, 4}, [TV_XF_FLAGS] = {4, 4},                         \
    [TV_XF_REASON] = {8, 4}, [TV_XF_VCPU] = {12, 4},                          \
    [TV_XF_ALTP2M] = {16, 2},                                                 \
    [TV_XF_CR_INDEX] = {24, 4}, [TV_XF_CR_NEW] = {32, 8},                     \
    [TV_XF_CR_OLD] = {40, 8},                                                 \
    [TV_XF_MSR] = {24, 8}, [TV_XF_MSR_NEW] = {32, 8},                         \
    [TV_XF_MSR_OLD] = {40, 8},                                                \
    [TV_XF_CPUID_LEN] = {24, 4}, [TV_XF_CPUID_LEAF] = {28, 4},                \
    [TV_XF_CPUID_SUB] = {32, 4},                                              \
    [TV_XF_DBG_GFN] = {24, 8}, [TV_XF_DBG_LEN] = {40, 4},                     \
    [TV_XF_DBG_TYPE] = {44, 1},                                               \
    [TV_XF_SS_GFN] = {24, 8},                                                 \
    [TV_XF_MEM_GFN] = {24, 8}, [TV_XF_MEM_OFF] = {32, 8},                     \
    [TV_XF_MEM_GLA] = {40, 8}, [TV_XF_MEM_FLAGS] = {48, 4},                   \
    [TV_XF_GPRS] = {56, 8 * TV_XEN_GPRS}

static const tv_xen_layout_t layouts[] = {
    {6, 384, {TV_XEN_COMMON, [TV_XF_FS_BASE] = {320, 8},
              [TV_XF_GS_BASE] = {328, 8}, [TV_XF_CS_SEG] = {336, 4}}},
    {7, 400, {TV_XEN_COMMON, [TV_XF_FS_BASE] = {336, 8},
              [TV_XF_GS_BASE] = {344, 8}, [TV_XF_CS_SEG] = {352, 4}}},
};

/* The installed header is one of the table's rows: its offsets must be the
 * row's (a mismatch is a build error, not a misread ring). */
#if VM_EVENT_INTERFACE_VERSION == 7
_Static_assert(sizeof(vm_event_request_t) == 400, "vm_event v7 entry size");
_Static_assert(offsetof(vm_event_request_t, u.mov_to_msr.old_value) == 40,
               "vm_event v7 mov_to_msr");
_Static_assert(offsetof(vm_event_request_t, u.debug_exception.type) == 44,
               "vm_event v7 debug type");
_Static_assert(offsetof(vm_event_request_t, u.mem_access.flags) == 48,
               "vm_event v7 mem_access flags");
_Static_assert(offsetof(vm_event_request_t, data.regs.x86.rax) == 56 &&
                   offsetof(vm_event_request_t, data.regs.x86.msr_lstar) ==
                       56 + 8 * (TV_XEN_GPRS - 1),
               "vm_event v7 registers");
_Static_assert(offsetof(vm_event_request_t, data.regs.x86.fs_base) == 336 &&
                   offsetof(vm_event_request_t, data.regs.x86.gs_base) ==
                       344 &&
                   offsetof(vm_event_request_t, data.regs.x86.cs) == 352,
               "vm_event v7 segment registers");
_Static_assert(offsetof(struct vm_event_sring, ring) == TV_XEN_RING_HDR,
               "shared ring header");
#endif
_Static_assert(offsetof(x86_registers_t, msr_lstar) ==
                   8 * (TV_XEN_GPRS - 1),
               "x86_registers_t starts with vm_event's 30 registers");

const tv_xen_layout_t *tv_xen_layout(uint32_t version)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(layouts); i++)
        if (layouts[i].version == version)
            return &layouts[i];
    return NULL;
}

const char *tv_xen_layout_versions(void)
{
    return "6, 7";
}

uint64_t tv_xen_get(const tv_xen_layout_t *l, const uint8_t *e, int field)
{
    tv_xen_at_t at = l->f[field];
    uint64_t v = 0;
    for (unsigned i = at.size < 8 ? at.size : 8; i-- > 0;)
        v = v << 8 | e[at.off + i];
    return v;
}

void tv_xen_set(const tv_xen_layout_t *l, uint8_t *e, int field, uint64_t v)
{
    tv_xen_at_t at = l->f[field];
    for (unsigned i = 0; i < at.size && i < 8; i++, v >>= 8)
        e[at.off + i] = (uint8_t)v;
}

/* ---- The ring --------------------------------------------------------------------- */

/* The shared header: four 32-bit indices (io/ring.h). */
enum { RING_REQ_PROD = 0, RING_REQ_EVENT = 4, RING_RSP_PROD = 8,
       RING_RSP_EVENT = 12 };

static uint32_t ld32(const tv_xen_ring_t *r, size_t off)
{
    return __atomic_load_n((const uint32_t *)(r->page + off),
                           __ATOMIC_ACQUIRE);
}

static void st32(tv_xen_ring_t *r, size_t off, uint32_t v)
{
    __atomic_store_n((uint32_t *)(r->page + off), v, __ATOMIC_RELEASE);
}

void tv_xen_ring_init(tv_xen_ring_t *r, void *page, size_t size)
{
    *r = (tv_xen_ring_t){.page = page, .size = size};
    memset(page, 0, TV_XEN_RING_HDR);
    st32(r, RING_REQ_EVENT, 1);
    st32(r, RING_RSP_EVENT, 1);
}

/* Entries of lay in the page: the largest power of two that fits. */
static uint32_t ring_entries(size_t size, unsigned entry)
{
    size_t n = (size - TV_XEN_RING_HDR) / entry;
    uint32_t p = 1;
    while ((size_t)p * 2 <= n)
        p *= 2;
    return n ? p : 0;
}

/* A broken ring or request: the reason in why, TINYVMI_EFORMAT. */
#define broken(why, whylen, ...)                                              \
    (snprintf(why, whylen, __VA_ARGS__), TINYVMI_EFORMAT)

int tv_xen_ring_take(tv_xen_ring_t *r, uint8_t *req, char *why,
                     size_t whylen)
{
    uint32_t prod = ld32(r, RING_REQ_PROD);
    uint32_t avail = prod - r->req_cons;
    if (!avail)
        return 0;
    if (!r->lay && r->size < TV_XEN_RING_HDR + 4)
        return broken(why, whylen, "vm_event ring of %u bytes (%u announced)",
                      (uint32_t)r->size, avail);
    if (!r->lay) {
        /* The first request is entry 0 whatever the layout: its version
         * says the layout of the rest. */
        uint32_t ver;
        memcpy(&ver, r->page + TV_XEN_RING_HDR, 4);
        const tv_xen_layout_t *l = tv_xen_layout(ver);
        if (!l)
            return snprintf(why, whylen, "vm_event interface version %u is "
                            "not in TinyVMI's layout table (versions %s)",
                            ver, tv_xen_layout_versions()),
                   TINYVMI_EFORMAT;
        uint32_t nr = ring_entries(r->size, l->entry);
        if (!nr || l->entry > TV_XEN_ENTRY_MAX)
            return broken(why, whylen, "vm_event version %u: a %u-byte "
                          "page holds no entry", ver, (uint32_t)r->size);
        r->lay = l;
        r->nr = nr;
    }
    /* Xen can have at most nr requests out, and only in slots we answered. */
    if (avail > r->nr || r->req_cons - r->rsp_prod_pvt >= r->nr)
        return broken(why, whylen, "vm_event ring: %u requests announced, "
                      "the ring holds %u", avail, r->nr);
    size_t at = TV_XEN_RING_HDR +
                (size_t)(r->req_cons & (r->nr - 1)) * r->lay->entry;
    memcpy(req, r->page + at, r->lay->entry); /* a private copy */
    r->req_cons++;
    uint32_t ver = (uint32_t)tv_xen_get(r->lay, req, TV_XF_VERSION);
    if (ver != r->lay->version)
        return broken(why, whylen, "vm_event request of interface version "
                      "%u in a ring of version %u", ver, r->lay->version);
    return 1;
}

int tv_xen_ring_put(tv_xen_ring_t *r, const uint8_t *rsp)
{
    if (!r->lay || r->rsp_prod_pvt == r->req_cons)
        return TINYVMI_ESTATE; /* nothing taken that awaits an answer */
    size_t at = TV_XEN_RING_HDR +
                (size_t)(r->rsp_prod_pvt & (r->nr - 1)) * r->lay->entry;
    memcpy(r->page + at, rsp, r->lay->entry);
    r->rsp_prod_pvt++;
    st32(r, RING_RSP_PROD, r->rsp_prod_pvt);
    return TINYVMI_OK;
}

bool tv_xen_ring_pending(const tv_xen_ring_t *r)
{
    if (!r->page)
        return false;
    uint32_t avail = ld32(r, RING_REQ_PROD) - r->req_cons;
    return avail && (!r->nr || avail <= r->nr);
}

bool tv_xen_ring_arm(tv_xen_ring_t *r)
{
    st32(r, RING_REQ_EVENT, r->req_cons + 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return ld32(r, RING_REQ_PROD) != r->req_cons;
}

/* ---- Requests and responses ----------------------------------------------------------- */

static uint8_t mem_access(uint64_t flags)
{
    return (uint8_t)((flags & MEM_ACCESS_R ? VMI_MEMACCESS_R : 0) |
                     (flags & MEM_ACCESS_W ? VMI_MEMACCESS_W : 0) |
                     (flags & MEM_ACCESS_X ? VMI_MEMACCESS_X : 0));
}

/* Xen's control-register indices to LibVMI's names. */
static const reg_t cr_names[] = {
    [VM_EVENT_X86_CR0] = CR0, [VM_EVENT_X86_CR3] = CR3,
    [VM_EVENT_X86_CR4] = CR4, [VM_EVENT_X86_XCR0] = XCR0,
};

static void read_regs(const tv_xen_layout_t *l, const uint8_t *req,
                      x86_registers_t *regs)
{
    memset(regs, 0, sizeof *regs);
    memcpy(regs, req + l->f[TV_XF_GPRS].off, 8 * TV_XEN_GPRS);
    regs->fs_base = tv_xen_get(l, req, TV_XF_FS_BASE);
    regs->gs_base = tv_xen_get(l, req, TV_XF_GS_BASE);
    regs->cs_arbytes = (uint32_t)(tv_xen_get(l, req, TV_XF_CS_SEG) >> 20);
}

int tv_xen_parse(const tv_xen_layout_t *l, const uint8_t *req,
                 unsigned nvcpus, tv_stop_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    uint32_t vcpu = (uint32_t)tv_xen_get(l, req, TV_XF_VCPU);
    uint32_t reason = (uint32_t)tv_xen_get(l, req, TV_XF_REASON);
    if (vcpu >= nvcpus)
        return broken(why, whylen, "vm_event request for vCPU %u of a "
                      "domain with %u vCPUs", vcpu, nvcpus);
    out->vcpu = vcpu;
    out->have_regs = true;
    read_regs(l, req, &out->regs);
    out->addr = out->regs.rip;
    switch (reason) {
    case VM_EVENT_REASON_WRITE_CTRLREG: {
        uint64_t idx = tv_xen_get(l, req, TV_XF_CR_INDEX);
        if (idx >= TV_ARRAY_LEN(cr_names))
            break;
        out->kind = TV_STOP_REG;
        out->reg = (uint32_t)cr_names[idx];
        out->value = tv_xen_get(l, req, TV_XF_CR_NEW);
        out->previous = tv_xen_get(l, req, TV_XF_CR_OLD);
        return TINYVMI_OK;
    }
    case VM_EVENT_REASON_MOV_TO_MSR:
        out->kind = TV_STOP_REG;
        out->reg = MSR_ALL;
        out->msr = (uint32_t)tv_xen_get(l, req, TV_XF_MSR);
        out->value = tv_xen_get(l, req, TV_XF_MSR_NEW);
        out->previous = tv_xen_get(l, req, TV_XF_MSR_OLD);
        return TINYVMI_OK;
    case VM_EVENT_REASON_CPUID:
        out->kind = TV_STOP_CPUID;
        out->insn_length = (uint32_t)tv_xen_get(l, req, TV_XF_CPUID_LEN);
        out->leaf = (uint32_t)tv_xen_get(l, req, TV_XF_CPUID_LEAF);
        out->subleaf = (uint32_t)tv_xen_get(l, req, TV_XF_CPUID_SUB);
        return TINYVMI_OK;
    case VM_EVENT_REASON_GUEST_REQUEST:
        out->kind = TV_STOP_GUEST_REQUEST;
        return TINYVMI_OK;
    case VM_EVENT_REASON_SOFTWARE_BREAKPOINT:
    case VM_EVENT_REASON_DEBUG_EXCEPTION:
        out->kind = reason == VM_EVENT_REASON_DEBUG_EXCEPTION ? TV_STOP_DEBUG
                                                              : TV_STOP_INT3;
        out->gfn = tv_xen_get(l, req, TV_XF_DBG_GFN);
        out->insn_length = (uint32_t)tv_xen_get(l, req, TV_XF_DBG_LEN);
        out->type = (uint8_t)tv_xen_get(l, req, TV_XF_DBG_TYPE);
        return TINYVMI_OK;
    case VM_EVENT_REASON_SINGLESTEP:
        out->kind = TV_STOP_STEP;
        out->gfn = tv_xen_get(l, req, TV_XF_SS_GFN);
        return TINYVMI_OK;
    case VM_EVENT_REASON_MEM_ACCESS: {
        uint64_t flags = tv_xen_get(l, req, TV_XF_MEM_FLAGS);
        out->kind = TV_STOP_MEM;
        out->gfn = tv_xen_get(l, req, TV_XF_MEM_GFN);
        out->offset = tv_xen_get(l, req, TV_XF_MEM_OFF) & 0xfff;
        out->access = mem_access(flags);
        out->gla_valid = (flags & MEM_ACCESS_GLA_VALID) != 0;
        out->addr = out->gla_valid ? tv_xen_get(l, req, TV_XF_MEM_GLA) : 0;
        return TINYVMI_OK;
    }
    default:
        break;
    }
    out->kind = TV_STOP_OTHER;
    return broken(why, whylen, "vm_event request of reason %u (vCPU %u) is "
                  "not one TinyVMI asked for", reason, vcpu);
}

void tv_xen_answer(const tv_xen_layout_t *l, const uint8_t *req,
                   uint32_t flags, const x86_registers_t *regs, uint8_t *rsp)
{
    memset(rsp, 0, l->entry);
    tv_xen_set(l, rsp, TV_XF_VERSION, l->version);
    tv_xen_set(l, rsp, TV_XF_VCPU, tv_xen_get(l, req, TV_XF_VCPU));
    tv_xen_set(l, rsp, TV_XF_REASON, tv_xen_get(l, req, TV_XF_REASON));
    tv_xen_set(l, rsp, TV_XF_ALTP2M, tv_xen_get(l, req, TV_XF_ALTP2M));
    uint64_t keep = tv_xen_get(l, req, TV_XF_FLAGS) & VM_EVENT_FLAG_VCPU_PAUSED;
    /* the registers block as Xen sent it, so what the callback left alone
     * is written back unchanged */
    tv_xen_at_t gp = l->f[TV_XF_GPRS];
    size_t tail = l->entry - gp.off;
    memcpy(rsp + gp.off, req + gp.off, tail);
    if (regs) {
        memcpy(rsp + gp.off, regs, 8 * TV_XEN_GPRS);
        tv_xen_set(l, rsp, TV_XF_FS_BASE, regs->fs_base);
        tv_xen_set(l, rsp, TV_XF_GS_BASE, regs->gs_base);
        flags |= VM_EVENT_FLAG_SET_REGISTERS;
    }
    tv_xen_set(l, rsp, TV_XF_FLAGS, keep | flags);
}

/* ---- The monitor ------------------------------------------------------------------- */

#define MON_MAX_MSRS 64
#define TV_XEN_NBP 4            /* DR0-DR3 */
#define RFLAGS_RF (1ull << 16)  /* resume: no instruction breakpoint once */

typedef struct tv_xen_monitor tv_xen_monitor_t;

struct tv_xen_monitor {
    uint32_t caps;           /* 1 << XEN_DOMCTL_MONITOR_EVENT_* */
    bool have_caps;
    bool amd;                /* the host's CPUs are AMD's (SVM) */
    void *page;              /* the ring, mapped by xc_monitor_enable */
    xenevtchn_handle *xce;
    int fd;
    xenevtchn_port_or_error_t port;
    tv_xen_ring_t ring;
    bool broken;             /* the ring's indices cannot be trusted */
    /* what is on, to turn off at close */
    bool cr[4], cpuid, guest_req, debug, int3, ss;
    uint64_t ss_vcpus;
    uint32_t msr[MON_MAX_MSRS];
    size_t nmsr;
    uint64_t *gfn;           /* pages with restricted access */
    size_t ngfn, capgfn;
    /* breakpoints: debug address register i holds bp[i] when bp_on[i] */
    uint64_t bp[TV_XEN_NBP];
    bool bp_on[TV_XEN_NBP];
    bool debug_user;         /* debug exceptions asked for by the caller */
    bool bp_hit;             /* the held request is one of our breakpoints */
    /* the request being held until release */
    bool held;
    uint8_t req[TV_XEN_ENTRY_MAX];
    uint32_t rsp_flags;
    bool set_regs, reinject;
    x86_registers_t regs;
    /* xendevicemodel, loaded to give trap back to the guest (reinject) */
    void *dm_lib;
    xendevicemodel_handle *dm;
    __typeof__(xendevicemodel_open) *dm_open;
    __typeof__(xendevicemodel_close) *dm_close;
    __typeof__(xendevicemodel_inject_event) *dm_inject;
    /* single steps per vCPU (libxenctrl; not in xen_int.h's list) */
    __typeof__(xc_domain_debug_control) *debug_control;
};

/* What each monitor kind needs from Xen: the capability bit and its name. */
static const struct {
    int bit;
    const char *what, *cap;
} kinds[] = {
    [TV_MON_CR] = {XEN_DOMCTL_MONITOR_EVENT_WRITE_CTRLREG,
                   "control-register write", "WRITE_CTRLREG"},
    [TV_MON_MSR] = {XEN_DOMCTL_MONITOR_EVENT_MOV_TO_MSR, "MSR write",
                    "MOV_TO_MSR"},
    [TV_MON_CPUID] = {XEN_DOMCTL_MONITOR_EVENT_CPUID, "CPUID", "CPUID"},
    [TV_MON_GUEST_REQUEST] = {XEN_DOMCTL_MONITOR_EVENT_GUEST_REQUEST,
                              "guest request", "GUEST_REQUEST"},
    [TV_MON_DEBUG] = {XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION,
                      "debug exception", "DEBUG_EXCEPTION"},
    [TV_MON_INT3] = {XEN_DOMCTL_MONITOR_EVENT_SOFTWARE_BREAKPOINT,
                     "INT3 (software breakpoint)", "SOFTWARE_BREAKPOINT"},
    [TV_MON_STEP] = {XEN_DOMCTL_MONITOR_EVENT_SINGLESTEP, "single-step",
                     "SINGLESTEP"},
    [TV_MON_MEM] = {-1, "memory access", "mem_access"},
};

static int xfail(tv_xen_t *x, int status, const char *fmt, ...)
    TV_PRINTF(3, 4);
static int xfail(tv_xen_t *x, int status, const char *fmt, ...)
{
    char msg[TV_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tv_fail(x->vmi, status, "%s", msg);
}

static tv_xen_monitor_t *mon_of(tv_xen_t *x)
{
    if (!x->mon)
        x->mon = calloc(1, sizeof *x->mon);
    if (x->mon && !x->mon->page)
        x->mon->fd = -1;
    return x->mon;
}

/* Xen's monitor capabilities for the domain, asked once. */
static int caps(tv_xen_t *x, tv_xen_monitor_t *m)
{
    if (m->have_caps)
        return TINYVMI_OK;
    if (x->pv)
        return xfail(x, TINYVMI_ENOTSUP, "domain %u (%s) is paravirtual: "
                     "Xen's vm_event monitor works on PVH and HVM guests",
                     x->domid, x->name);
    if (x->lib.xc_monitor_get_capabilities(x->xch, x->domid, &m->caps))
        return xfail(x, TINYVMI_EIO, "xc_monitor_get_capabilities(domain "
                     "%u): %s", x->domid, strerror(errno));
    m->have_caps = true;
    unsigned a, b, c, d;
    m->amd = __get_cpuid(0, &a, &b, &c, &d) &&
             ((b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) ||
              (b == 0x6f677948 && d == 0x6e65476e && c == 0x656e6975));
    tv_log(x->vmi, 2, "xen: monitor capabilities of domain %u: 0x%x (%s host)",
           x->domid, m->caps, m->amd ? "AMD" : "Intel");
    return TINYVMI_OK;
}

/* The ring and its event channel. */
static int ring_up(tv_xen_t *x, tv_xen_monitor_t *m)
{
    if (m->page)
        return TINYVMI_OK;
    uint32_t port = 0;
    m->page = x->lib.xc_monitor_enable(x->xch, x->domid, &port);
    if (!m->page) {
        int err = errno;
        return xfail(x, TINYVMI_EIO, "xc_monitor_enable(domain %u): %s%s",
                     x->domid, strerror(err),
                     err == EBUSY ? " (another monitor, e.g. an earlier "
                                    "tool, holds the domain's ring)"
                                  : "");
    }
    m->xce = x->lib.xenevtchn_open(NULL, 0);
    if (!m->xce) {
        int err = errno;
        x->lib.xc_monitor_disable(x->xch, x->domid);
        munmap(m->page, XC_PAGE_SIZE);
        m->page = NULL;
        return xfail(x, TINYVMI_EIO, "xenevtchn_open: %s", strerror(err));
    }
    m->port = x->lib.xenevtchn_bind_interdomain(m->xce, x->domid, port);
    if (m->port < 0) {
        int err = errno;
        x->lib.xenevtchn_close(m->xce);
        x->lib.xc_monitor_disable(x->xch, x->domid);
        munmap(m->page, XC_PAGE_SIZE);
        m->page = NULL;
        m->xce = NULL;
        return xfail(x, TINYVMI_EIO, "binding the monitor's event channel "
                     "(domain %u port %u): %s", x->domid, port,
                     strerror(err));
    }
    m->fd = x->lib.xenevtchn_fd(m->xce);
    tv_xen_ring_init(&m->ring, m->page, XC_PAGE_SIZE);
    m->broken = false;
    tv_log(x->vmi, 2, "xen: vm_event ring of domain %u on port %d", x->domid,
           (int)m->port);
    return TINYVMI_OK;
}

/* The access a page keeps so that `trigger` accesses stop the guest. */
static xenmem_access_t allowed(uint8_t trigger)
{
    static const xenmem_access_t t[8] = {
        XENMEM_access_rwx, XENMEM_access_wx, XENMEM_access_rx,
        XENMEM_access_x,   XENMEM_access_rw, XENMEM_access_w,
        XENMEM_access_r,   XENMEM_access_n,
    };
    unsigned i = (trigger & VMI_MEMACCESS_R ? 1u : 0) |
                 (trigger & VMI_MEMACCESS_W ? 2u : 0) |
                 (trigger & VMI_MEMACCESS_X ? 4u : 0);
    return t[i];
}

static int mon_mem(tv_xen_t *x, tv_xen_monitor_t *m, uint64_t gfn,
                   uint8_t access, bool on)
{
    size_t i = 0;
    while (i < m->ngfn && m->gfn[i] != gfn)
        i++;
    if (on && i == m->ngfn && m->ngfn == m->capgfn) {
        size_t cap = m->capgfn ? 2 * m->capgfn : 16;
        uint64_t *g = realloc(m->gfn, cap * sizeof *g);
        if (!g)
            return xfail(x, TINYVMI_ENOMEM, "out of memory");
        m->gfn = g;
        m->capgfn = cap;
    }
    xenmem_access_t a = on ? allowed(access) : XENMEM_access_rwx;
    if (x->lib.xc_set_mem_access(x->xch, x->domid, a, gfn, 1)) {
        int err = errno;
        if (!on)
            return xfail(x, TINYVMI_EIO, "restoring access to gfn 0x%llx: "
                         "%s", (unsigned long long)gfn, strerror(err));
        return xfail(x, TINYVMI_ENOTSUP, "memory-access events: Xen refused "
                     "to restrict gfn 0x%llx of domain %u (xc_set_mem_access: "
                     "%s); this host lacks the mem_access capability (it "
                     "needs hardware-assisted paging with access bits: Intel "
                     "EPT)", (unsigned long long)gfn, x->domid,
                     strerror(err));
    }
    if (on && i == m->ngfn)
        m->gfn[m->ngfn++] = gfn;
    else if (!on && i < m->ngfn)
        m->gfn[i] = m->gfn[--m->ngfn];
    return TINYVMI_OK;
}

static int mon_msr(tv_xen_t *x, tv_xen_monitor_t *m, uint32_t msr,
                   bool onchange, bool on)
{
    size_t i = 0;
    while (i < m->nmsr && m->msr[i] != msr)
        i++;
    if (!on && i == m->nmsr)
        return TINYVMI_OK; /* never turned on (e.g. refused) */
    /* Only the two ranges every x86 host intercepts: Xen 4.17 takes a
     * request for its own range (0x40000000...) and then, on AMD, BUG()s
     * in svm_intercept_msr, which SVM's permission map does not cover. */
    if (on && msr > 0x1fff && (msr < 0xc0000000u || msr > 0xc0001fffu))
        return xfail(x, TINYVMI_ENOTSUP, "MSR 0x%x: Xen's monitor watches "
                     "writes to MSRs 0-0x1fff and 0xc0000000-0xc0001fff",
                     msr);
    /* On AMD, Xen 4.17 turns a watched MSR's interception into write-only
     * (svm_intercept_msr) and, when the watch ends, into none: the guest
     * then reads the real register.  For EFER that shows it SVME, which it
     * writes back and dies of (#GP, triple fault: seen in the lab).  Only
     * the MSRs whose reads Xen passes through anyway are safe to watch. */
    static const uint32_t svm_passthrough[] = {
        0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, /* STAR...SFMASK */
        0xc0000100, 0xc0000101, 0xc0000102,             /* FS, GS bases */
    };
    bool safe = !m->amd;
    for (size_t k = 0; !safe && k < TV_ARRAY_LEN(svm_passthrough); k++)
        safe = msr == svm_passthrough[k];
    if (on && !safe)
        return xfail(x, TINYVMI_ENOTSUP, "MSR 0x%x: on AMD hosts Xen stops "
                     "intercepting the guest's reads of an MSR it watches, "
                     "which would show the guest the real register (EFER: "
                     "it crashes); watched there: STAR, LSTAR, CSTAR, "
                     "SFMASK, FS/GS bases", msr);
    if (on && i == m->nmsr && m->nmsr == MON_MAX_MSRS)
        return xfail(x, TINYVMI_ERANGE, "more than %d MSRs watched",
                     MON_MAX_MSRS);
    if (x->lib.xc_monitor_mov_to_msr(x->xch, x->domid, msr, on, onchange))
        return xfail(x, TINYVMI_EINVAL, "xc_monitor_mov_to_msr(MSR 0x%x, "
                     "%s): %s", msr, on ? "on" : "off", strerror(errno));
    if (on && i == m->nmsr)
        m->msr[m->nmsr++] = msr;
    else if (!on && i < m->nmsr)
        m->msr[i] = m->msr[--m->nmsr];
    return TINYVMI_OK;
}

static int step_vcpus(tv_xen_t *x, tv_xen_monitor_t *m, uint64_t vcpus)
{
    if (!m->debug_control)
        *(void **)&m->debug_control =
            dlsym(x->lib.handle[TV_XEN_LIB_XC], "xc_domain_debug_control");
    if (!m->debug_control)
        return xfail(x, TINYVMI_ENOTSUP, "single-step: libxenctrl has no "
                     "xc_domain_debug_control");
    for (unsigned v = 0; v < x->vcpus && v < 64; v++) {
        bool want = vcpus >> v & 1, now = m->ss_vcpus >> v & 1;
        if (want == now)
            continue;
        if (m->debug_control(x->xch, x->domid,
                             want ? XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_ON
                                  : XEN_DOMCTL_DEBUG_OP_SINGLE_STEP_OFF,
                             v))
            return xfail(x, TINYVMI_EIO, "single-step %s on vCPU %u: %s",
                         want ? "on" : "off", v, strerror(errno));
        m->ss_vcpus ^= 1ULL << v;
    }
    return TINYVMI_OK;
}

/* Turns one kind on or off in Xen; the state flags follow success. */
static int toggle(tv_xen_t *x, tv_xen_monitor_t *m, const tv_monitor_t *k,
                  bool on)
{
    int r = 0;
    const char *call = "";
    switch (k->kind) {
    case TV_MON_CR: {
        static const reg_t crs[4] = {CR0, CR3, CR4, XCR0};
        static const uint16_t idx[4] = {VM_EVENT_X86_CR0, VM_EVENT_X86_CR3,
                                        VM_EVENT_X86_CR4, VM_EVENT_X86_XCR0};
        int s = 0;
        while (s < 4 && crs[s] != k->arg)
            s++;
        if (s == 4)
            return xfail(x, TINYVMI_ENOTSUP, "control-register events on "
                         "register %llu: Xen reports CR0, CR3, CR4 and XCR0",
                         (unsigned long long)k->arg);
        /* CR3 changes with every process switch: only changes are asked
         * for, and synchronously, so the callback sees the vCPU at it */
        bool onchange = k->onchange || k->arg == CR3;
        call = "xc_monitor_write_ctrlreg";
        r = x->lib.xc_monitor_write_ctrlreg(x->xch, x->domid, idx[s], on,
                                            !k->async, 0, onchange);
        if (!r)
            m->cr[s] = on;
        break;
    }
    case TV_MON_MSR:
        if (k->arg > UINT32_MAX)
            return xfail(x, TINYVMI_EINVAL, "MSR index 0x%llx",
                         (unsigned long long)k->arg);
        return mon_msr(x, m, (uint32_t)k->arg, k->onchange, on);
    case TV_MON_CPUID:
        call = "xc_monitor_cpuid";
        r = x->lib.xc_monitor_cpuid(x->xch, x->domid, on);
        if (!r)
            m->cpuid = on;
        break;
    case TV_MON_GUEST_REQUEST:
        call = "xc_monitor_guest_request";
        r = x->lib.xc_monitor_guest_request(x->xch, x->domid, on, true, true);
        if (!r)
            m->guest_req = on;
        break;
    case TV_MON_DEBUG:
        call = "xc_monitor_debug_exceptions";
        r = x->lib.xc_monitor_debug_exceptions(x->xch, x->domid, on, true);
        if (!r)
            m->debug = on;
        break;
    case TV_MON_INT3:
        call = "xc_monitor_software_breakpoint";
        r = x->lib.xc_monitor_software_breakpoint(x->xch, x->domid, on);
        if (!r)
            m->int3 = on;
        break;
    case TV_MON_STEP:
        if (on != m->ss) {
            call = "xc_monitor_singlestep";
            r = x->lib.xc_monitor_singlestep(x->xch, x->domid, on);
            if (r)
                break;
            m->ss = on;
        }
        return step_vcpus(x, m, on ? k->arg : 0);
    case TV_MON_MEM:
        return mon_mem(x, m, k->arg, k->access, on);
    default:
        return xfail(x, TINYVMI_EINVAL, "monitor kind %d", k->kind);
    }
    if (r)
        return xfail(x, TINYVMI_EIO, "%s(domain %u, %s): %s", call, x->domid,
                     on ? "on" : "off", strerror(errno));
    return TINYVMI_OK;
}

static int xm_monitor(void *ctx, const tv_monitor_t *k, bool on)
{
    tv_xen_t *x = ctx;
    if (k->kind < 0 || (size_t)k->kind >= TV_ARRAY_LEN(kinds))
        return xfail(x, TINYVMI_EINVAL, "monitor kind %d", k->kind);
    tv_xen_monitor_t *m = mon_of(x);
    if (!m)
        return xfail(x, TINYVMI_ENOMEM, "out of memory");
    if (!on && !m->page)
        return TINYVMI_OK; /* nothing was ever turned on */
    int rc = caps(x, m);
    if (rc)
        return rc;
    int bit = kinds[k->kind].bit;
    if (on && bit >= 0 && !(m->caps >> bit & 1))
        return xfail(x, TINYVMI_ENOTSUP, "%s events: Xen cannot deliver them "
                     "for domain %u (monitor capabilities 0x%x lack %s)",
                     kinds[k->kind].what, x->domid, m->caps,
                     kinds[k->kind].cap);
    if (on && (rc = ring_up(x, m)))
        return rc;
    if (k->kind == TV_MON_DEBUG) {
        /* shared with the breakpoints: on in Xen while either wants it */
        bool bps = false;
        for (int i = 0; i < TV_XEN_NBP; i++)
            bps |= m->bp_on[i];
        if (on == m->debug || (!on && bps))
            rc = TINYVMI_OK;
        else
            rc = toggle(x, m, k, on);
        if (!rc)
            m->debug_user = on;
        return rc;
    }
    return toggle(x, m, k, on);
}

/* ---- Breakpoints ------------------------------------------------------------------ */

/* TinyVMI's own breakpoints (tinyvmi_set_breakpoint, and so `tinyvmi
 * trace`) on Xen: an instruction breakpoint in a debug address register the
 * guest leaves unused, enabled in DR7 on every vCPU, heard through Xen's
 * debug-exception events.  No guest memory is written.  A hit is answered
 * with RFLAGS.RF set, so the instruction runs once without breaking again.
 * At most four, and a guest that loads its own debug registers meanwhile
 * (a debugger inside it) takes them back. */
static const reg_t dr_addr[TV_XEN_NBP] = {DR0, DR1, DR2, DR3};

/* DR7 with slot i's enable bits (L, G) and condition/length bits set for
 * an instruction breakpoint (both 00), or all cleared. */
static uint64_t dr7_slot(uint64_t dr7, int i, bool on)
{
    dr7 &= ~(3ull << (2 * i) | 0xfull << (16 + 4 * i));
    return on ? dr7 | 1ull << (2 * i) : dr7;
}

/* Arms or disarms slot i on every vCPU, the domain paused meanwhile. */
static int dr_slot(tv_xen_t *x, int i, uint64_t va, bool on)
{
    if (x->lib.xc_domain_pause(x->xch, x->domid) < 0)
        return xfail(x, TINYVMI_EIO, "pausing domain %u for its debug "
                     "registers: %s", x->domid, strerror(errno));
    int rc = TINYVMI_OK;
    for (unsigned v = 0; v < x->vcpus && !rc; v++) {
        uint64_t dr7 = 0;
        rc = tv_xen_get_reg(x, v, DR7, &dr7);
        if (!rc && on)
            rc = tv_xen_set_reg(x, v, dr_addr[i], va);
        if (!rc)
            rc = tv_xen_set_reg(x, v, DR7, dr7_slot(dr7, i, on));
    }
    x->lib.xc_domain_unpause(x->xch, x->domid);
    return rc;
}

/* A slot neither we nor the guest (on any vCPU) have enabled, or -1. */
static int free_slot(tv_xen_t *x, tv_xen_monitor_t *m, int *slot)
{
    uint64_t used = 0;
    for (unsigned v = 0; v < x->vcpus; v++) {
        uint64_t dr7 = 0;
        int rc = tv_xen_get_reg(x, v, DR7, &dr7);
        if (rc)
            return rc;
        used |= dr7;
    }
    *slot = -1;
    for (int i = 0; i < TV_XEN_NBP && *slot < 0; i++)
        if (!m->bp_on[i] && !(used >> (2 * i) & 3))
            *slot = i;
    return TINYVMI_OK;
}

static int xm_breakpoint(void *ctx, uint64_t va, bool on)
{
    tv_xen_t *x = ctx;
    tv_xen_monitor_t *m = mon_of(x);
    if (!m)
        return xfail(x, TINYVMI_ENOMEM, "out of memory");
    int i = 0;
    while (i < TV_XEN_NBP && !(m->bp_on[i] && m->bp[i] == va))
        i++;
    if (!on) {
        if (i == TV_XEN_NBP)
            return TINYVMI_OK;
        int rc = dr_slot(x, i, 0, false);
        m->bp_on[i] = false;
        bool bps = false;
        for (int k = 0; k < TV_XEN_NBP; k++)
            bps |= m->bp_on[k];
        if (!bps && !m->debug_user && m->debug) {
            int rc2 = toggle(x, m, &(tv_monitor_t){.kind = TV_MON_DEBUG},
                             false);
            rc = rc ? rc : rc2;
        }
        return rc;
    }
    if (i < TV_XEN_NBP)
        return TINYVMI_OK;
    int rc = caps(x, m); /* refuses PV guests, by name */
    if (rc)
        return rc;
    if (!(m->caps >> XEN_DOMCTL_MONITOR_EVENT_DEBUG_EXCEPTION & 1))
        return xfail(x, TINYVMI_ENOTSUP, "breakpoints on Xen use the debug "
                     "registers and debug-exception events, which Xen cannot "
                     "deliver for domain %u (monitor capabilities 0x%x lack "
                     "DEBUG_EXCEPTION)", x->domid, m->caps);
    int slot;
    if ((rc = free_slot(x, m, &slot)))
        return rc;
    if (slot < 0)
        return xfail(x, TINYVMI_ERANGE, "breakpoints on Xen use the four "
                     "debug registers, and none is free (ours and the "
                     "guest's own)");
    if ((rc = ring_up(x, m)))
        return rc;
    if (!m->debug &&
        (rc = toggle(x, m, &(tv_monitor_t){.kind = TV_MON_DEBUG}, true)))
        return rc;
    if ((rc = dr_slot(x, slot, va, true))) {
        dr_slot(x, slot, 0, false);
        if (!m->debug_user)
            toggle(x, m, &(tv_monitor_t){.kind = TV_MON_DEBUG}, false);
        return rc;
    }
    m->bp[slot] = va;
    m->bp_on[slot] = true;
    return TINYVMI_OK;
}

/* Whether a debug exception stopped at one of our breakpoints. */
static bool our_bp(const tv_xen_monitor_t *m, uint64_t rip)
{
    for (int i = 0; i < TV_XEN_NBP; i++)
        if (m->bp_on[i] && m->bp[i] == rip)
            return true;
    return false;
}

/* ---- Waiting and answering ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ring_broken(tv_xen_t *x, tv_xen_monitor_t *m, const char *why)
{
    m->broken = true;
    return xfail(x, TINYVMI_EFORMAT, "domain %u: %s; no more events are "
                 "read from this ring", x->domid, why);
}

/* Answers req at once (nothing delivered). */
static int answer_now(tv_xen_t *x, tv_xen_monitor_t *m, const uint8_t *req)
{
    uint8_t rsp[TV_XEN_ENTRY_MAX];
    tv_xen_answer(m->ring.lay, req, 0, NULL, rsp);
    int rc = tv_xen_ring_put(&m->ring, rsp);
    x->lib.xenevtchn_notify(m->xce, (evtchn_port_t)m->port);
    return rc;
}

/* Takes the event channel's pending notification, if any. */
static void ack_channel(tv_xen_t *x, tv_xen_monitor_t *m)
{
    xenevtchn_port_or_error_t p = x->lib.xenevtchn_pending(m->xce);
    if (p >= 0)
        x->lib.xenevtchn_unmask(m->xce, (evtchn_port_t)p);
}

static int xm_release(void *ctx);

static int xm_wait(void *ctx, int timeout_ms, tv_stop_t *stop)
{
    tv_xen_t *x = ctx;
    tv_xen_monitor_t *m = x->mon;
    if (!m || !m->page)
        return xfail(x, TINYVMI_ESTATE, "no events registered on domain %u",
                     x->domid);
    if (m->broken)
        return xfail(x, TINYVMI_EFORMAT, "domain %u: the vm_event ring is "
                     "broken (see the earlier error)", x->domid);
    if (m->held)
        return xfail(x, TINYVMI_ESTATE, "an event is held: release it first");
    int64_t end = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    char why[200];
    for (;;) {
        int got = tv_xen_ring_take(&m->ring, m->req, why, sizeof why);
        if (got < 0)
            return ring_broken(x, m, why);
        if (got) {
            int rc = tv_xen_parse(m->ring.lay, m->req, x->vcpus, stop, why,
                                  sizeof why);
            if (!rc && stop->kind == TV_STOP_DEBUG && our_bp(m, stop->addr)) {
                stop->kind = TV_STOP_BREAK;
                m->bp_hit = true;
            } else if (!rc && stop->kind == TV_STOP_DEBUG && !m->debug_user) {
                /* the guest's own (its debugger, a stale DR6 bit): its */
                m->reinject = true;
                m->held = true;
                m->set_regs = m->bp_hit = false;
                m->rsp_flags = 0;
                if ((rc = xm_release(x)))
                    return rc;
                /* a guest can raise these without end: the deadline holds */
                if (now_ms() >= end)
                    return TINYVMI_ETIMEDOUT;
                continue;
            } else {
                m->bp_hit = false;
            }
            if (!rc) {
                m->held = true;
                m->rsp_flags = 0;
                m->set_regs = m->reinject = false;
                return TINYVMI_OK;
            }
            /* not deliverable: answered so its vCPU goes on */
            tv_log(x->vmi, 1, "xen: %s: answered, not delivered", why);
            answer_now(x, m, m->req);
            if (now_ms() >= end)
                return TINYVMI_ETIMEDOUT;
        } else if (!tv_xen_ring_arm(&m->ring)) {
            int64_t left = end - now_ms();
            if (left <= 0)
                return TINYVMI_ETIMEDOUT;
            struct pollfd pfd = {.fd = m->fd, .events = POLLIN};
            int n = poll(&pfd, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
            if (n < 0 && errno != EINTR)
                return xfail(x, TINYVMI_EIO, "poll on the event channel: %s",
                             strerror(errno));
            if (n < 0)
                return TINYVMI_ETIMEDOUT; /* a signal: let the caller look */
            if (n > 0)
                ack_channel(x, m);
        }
        if (now_ms() > end && !tv_xen_ring_pending(&m->ring))
            return TINYVMI_ETIMEDOUT;
    }
}

static int xm_reply(void *ctx, const tv_reply_t *r)
{
    tv_xen_t *x = ctx;
    tv_xen_monitor_t *m = x->mon;
    if (!m || !m->held)
        return xfail(x, TINYVMI_ESTATE, "no event is held to answer");
    uint32_t f = 0;
    if (r->rsp & VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP)
        f |= VM_EVENT_FLAG_TOGGLE_SINGLESTEP;
    if (r->rsp & VMI_EVENT_RESPONSE_DENY)
        f |= VM_EVENT_FLAG_DENY;
    if (r->rsp & VMI_EVENT_RESPONSE_EMULATE)
        f |= VM_EVENT_FLAG_EMULATE;
    if (r->rsp & VMI_EVENT_RESPONSE_EMULATE_NOWRITE)
        f |= VM_EVENT_FLAG_EMULATE | VM_EVENT_FLAG_EMULATE_NOWRITE;
    event_response_t known = VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP |
                             VMI_EVENT_RESPONSE_DENY |
                             VMI_EVENT_RESPONSE_EMULATE |
                             VMI_EVENT_RESPONSE_EMULATE_NOWRITE |
                             VMI_EVENT_RESPONSE_SET_REGISTERS;
    if (r->rsp & ~known)
        tv_log(x->vmi, 1, "xen: event responses 0x%x are not supported: "
               "ignored", r->rsp & ~known);
    m->rsp_flags = f;
    m->set_regs = r->regs != NULL;
    if (r->regs)
        m->regs = *r->regs;
    m->reinject = r->reinject;
    return TINYVMI_OK;
}

/* Gives an INT3 or #DB back to the guest (libxendevicemodel, loaded the
 * first time). */
static int reinject(tv_xen_t *x, tv_xen_monitor_t *m)
{
    const tv_xen_layout_t *l = m->ring.lay;
    uint32_t reason = (uint32_t)tv_xen_get(l, m->req, TV_XF_REASON);
    int vcpu = (int)tv_xen_get(l, m->req, TV_XF_VCPU);
    uint8_t len = (uint8_t)tv_xen_get(l, m->req, TV_XF_DBG_LEN);
    uint8_t type = reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT
                       ? XEN_DMOP_EVENT_sw_exc
                       : (uint8_t)tv_xen_get(l, m->req, TV_XF_DBG_TYPE);
    uint8_t vector = reason == VM_EVENT_REASON_SOFTWARE_BREAKPOINT ? 3 : 1;
    if (!m->dm_lib) {
        m->dm_lib = dlopen("libxendevicemodel.so.1", RTLD_NOW | RTLD_LOCAL);
        if (m->dm_lib) {
            *(void **)&m->dm_open = dlsym(m->dm_lib, "xendevicemodel_open");
            *(void **)&m->dm_close = dlsym(m->dm_lib, "xendevicemodel_close");
            *(void **)&m->dm_inject =
                dlsym(m->dm_lib, "xendevicemodel_inject_event");
        }
        if (m->dm_open && m->dm_close && m->dm_inject)
            m->dm = m->dm_open(NULL, 0);
    }
    if (!m->dm)
        return xfail(x, TINYVMI_ENOTSUP, "reinjecting a trap needs "
                     "libxendevicemodel.so.1 (%s)",
                     m->dm_lib ? "no device-model handle" : "not loaded");
    if (m->dm_inject(m->dm, (domid_t)x->domid, vcpu, vector, type, ~0u, len,
                     0))
        return xfail(x, TINYVMI_EIO, "reinjecting vector %u on vCPU %d: %s",
                     vector, vcpu, strerror(errno));
    return TINYVMI_OK;
}

static int xm_release(void *ctx)
{
    tv_xen_t *x = ctx;
    tv_xen_monitor_t *m = x->mon;
    if (!m || !m->held)
        return TINYVMI_OK;
    int rc = m->reinject ? reinject(x, m) : TINYVMI_OK;
    if (m->bp_hit && !m->reinject) {
        /* past the breakpoint: RF on, where the callback left the vCPU */
        x86_registers_t at;
        read_regs(m->ring.lay, m->req, &at);
        if (!m->set_regs)
            m->regs = at;
        if (m->regs.rip == at.rip)
            m->regs.rflags |= RFLAGS_RF;
        m->set_regs = true;
    }
    m->bp_hit = false;
    uint8_t rsp[TV_XEN_ENTRY_MAX];
    tv_xen_answer(m->ring.lay, m->req, m->rsp_flags,
                  m->set_regs ? &m->regs : NULL, rsp);
    m->held = false;
    int rc2 = tv_xen_ring_put(&m->ring, rsp);
    x->lib.xenevtchn_notify(m->xce, (evtchn_port_t)m->port);
    if (rc2)
        return xfail(x, rc2, "answering a vm_event request: nothing taken");
    return rc;
}

static bool xm_pending(void *ctx)
{
    tv_xen_t *x = ctx;
    return x->mon && x->mon->page && !x->mon->broken &&
           tv_xen_ring_pending(&x->mon->ring);
}

static const tv_event_ops_t xen_ev = {
    .breakpoint = xm_breakpoint, .wait = xm_wait, .release = xm_release,
    .pending = xm_pending, .monitor = xm_monitor, .reply = xm_reply,
};

const tv_event_ops_t *tv_xen_events(void)
{
    return &xen_ev;
}

/* ---- Teardown ------------------------------------------------------------------------ */

/* Answers every request in the ring (bounded: the ring's size, a few
 * rounds), so no vCPU stays paused waiting for us. */
static void drain(tv_xen_t *x, tv_xen_monitor_t *m)
{
    char why[200];
    if (m->held)
        xm_release(x);
    for (unsigned n = 0; !m->broken && n < 4 * (m->ring.nr + 1); n++) {
        int got = tv_xen_ring_take(&m->ring, m->req, why, sizeof why);
        if (got <= 0) {
            if (got < 0)
                tv_log(x->vmi, 1, "xen: closing: %s", why);
            break;
        }
        answer_now(x, m, m->req);
    }
}

static void all_off(tv_xen_t *x, tv_xen_monitor_t *m)
{
    static const reg_t crs[4] = {CR0, CR3, CR4, XCR0};
    for (int s = 0; s < 4; s++)
        if (m->cr[s])
            toggle(x, m, &(tv_monitor_t){.kind = TV_MON_CR, .arg = crs[s]},
                   false);
    while (m->nmsr)
        if (mon_msr(x, m, m->msr[m->nmsr - 1], false, false))
            m->nmsr--; /* refused: forget it, the ring goes anyway */
    static const int simple[] = {TV_MON_CPUID, TV_MON_GUEST_REQUEST,
                                 TV_MON_DEBUG, TV_MON_INT3};
    bool *on[] = {&m->cpuid, &m->guest_req, &m->debug, &m->int3};
    for (size_t i = 0; i < TV_ARRAY_LEN(simple); i++)
        if (*on[i])
            toggle(x, m, &(tv_monitor_t){.kind = simple[i]}, false);
    if (m->ss || m->ss_vcpus)
        toggle(x, m, &(tv_monitor_t){.kind = TV_MON_STEP}, false);
    while (m->ngfn)
        if (mon_mem(x, m, m->gfn[m->ngfn - 1], 0, false))
            m->ngfn--;
}

void tv_xen_monitor_close(struct tv_xen *x)
{
    tv_xen_monitor_t *m = x ? x->mon : NULL;
    if (!m)
        return;
    /* The domain stands still while the events go: a vCPU that was putting
     * a request as its event was turned off would otherwise put it after the
     * last look at the ring, and wait for an answer that never comes (Xen
     * frees the ring, not the vCPUs paused for their requests).  Pausing
     * waits until every vCPU is out of Xen, so all requests are in the ring
     * for drain(). */
    bool paused = m->page && !x->lib.xc_domain_pause(x->xch, x->domid);
    for (int i = 0; i < TV_XEN_NBP; i++)
        if (m->bp_on[i] && dr_slot(x, i, 0, false) == TINYVMI_OK)
            m->bp_on[i] = false;
    if (m->page) {
        all_off(x, m);
        drain(x, m);
        /* Xen refuses (EBUSY) while vCPUs wait for ring space (async
         * requests): let them put what they hold, answer it and retry, a
         * bounded number of times */
        for (int tries = 0; tries < 50; tries++) {
            if (!x->lib.xc_monitor_disable(x->xch, x->domid))
                break;
            if (errno != EBUSY) {
                tv_log(x->vmi, 0, "xen: xc_monitor_disable(domain %u): %s",
                       x->domid, strerror(errno));
                break;
            }
            if (paused && !x->lib.xc_domain_unpause(x->xch, x->domid))
                paused = false;
            drain(x, m);
            nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
            if (!paused) /* one pause of ours at most: one unpause below */
                paused = !x->lib.xc_domain_pause(x->xch, x->domid);
            drain(x, m);
        }
        if (paused && x->lib.xc_domain_unpause(x->xch, x->domid))
            tv_log(x->vmi, 0, "xen: unpausing domain %u after the events: %s",
                   x->domid, strerror(errno));
        x->lib.xenevtchn_unbind(m->xce, (evtchn_port_t)m->port);
        x->lib.xenevtchn_close(m->xce);
        munmap(m->page, XC_PAGE_SIZE);
    }
    if (m->dm)
        m->dm_close(m->dm);
    if (m->dm_lib)
        dlclose(m->dm_lib);
    free(m->gfn);
    free(m);
    x->mon = NULL;
}
