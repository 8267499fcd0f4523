/*
 * Xen's vm_event monitor ring: the events of PVH/HVM guests (register
 * writes, CPUID, guest requests, debug exceptions, INT3, single steps,
 * memory access).  Hosted code.
 *
 * The ring page is shared with the hypervisor, so everything read from it
 * is checked: indices are bounded by the ring's size, a request is copied
 * out before it is looked at, its interface version must be one of the
 * layout table's and its vCPU one the domain has.  The ring and request
 * parts below need no Xen (the unit tests drive them with synthetic
 * pages); the rest talks to Xen through tv_xen_t's libraries.
 */
#ifndef TV_DRIVER_XEN_MONITOR_H
#define TV_DRIVER_XEN_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"

/* ---- Layouts: where each vm_event interface version keeps a field ------ */

/* The fields TinyVMI reads or writes in a ring entry (request or
 * response; the two share one layout). */
enum tv_xen_field {
    TV_XF_VERSION, TV_XF_FLAGS, TV_XF_REASON, TV_XF_VCPU, TV_XF_ALTP2M,
    TV_XF_CR_INDEX, TV_XF_CR_NEW, TV_XF_CR_OLD,       /* write_ctrlreg */
    TV_XF_MSR, TV_XF_MSR_NEW, TV_XF_MSR_OLD,          /* mov_to_msr */
    TV_XF_CPUID_LEN, TV_XF_CPUID_LEAF, TV_XF_CPUID_SUB,
    TV_XF_DBG_GFN, TV_XF_DBG_LEN, TV_XF_DBG_TYPE,     /* debug, INT3 */
    TV_XF_SS_GFN,
    TV_XF_MEM_GFN, TV_XF_MEM_OFF, TV_XF_MEM_GLA, TV_XF_MEM_FLAGS,
    /* data.regs.x86: rax..msr_lstar, 30 u64 in x86_registers_t's order
     * (size: the whole run), then the ones that moved between versions */
    TV_XF_GPRS, TV_XF_FS_BASE, TV_XF_GS_BASE,
    TV_XF_CS_SEG,   /* u32: limit (20 bits), access rights (12 bits) */
    TV_XF_COUNT
};

#define TV_XEN_GPRS 30

typedef struct tv_xen_at {
    uint16_t off, size;
} tv_xen_at_t;

typedef struct tv_xen_layout {
    uint32_t version;  /* VM_EVENT_INTERFACE_VERSION */
    uint16_t entry;    /* bytes of one ring entry */
    tv_xen_at_t f[TV_XF_COUNT];
} tv_xen_layout_t;

#define TV_XEN_ENTRY_MAX 512  /* no layout's entry is larger */
#define TV_XEN_RING_HDR 64    /* the shared ring's header (io/ring.h) */

/* The layout of an interface version, or NULL if the table has none. */
const tv_xen_layout_t *tv_xen_layout(uint32_t version);
/* The versions the table knows, as text ("6, 7"). */
const char *tv_xen_layout_versions(void);
/* A field of entry e (little-endian, zero-extended). */
uint64_t tv_xen_get(const tv_xen_layout_t *l, const uint8_t *e, int field);
void tv_xen_set(const tv_xen_layout_t *l, uint8_t *e, int field, uint64_t v);

/* ---- The ring: TinyVMI is its back end (takes requests, puts responses) -- */

typedef struct tv_xen_ring {
    uint8_t *page;                /* shared with Xen */
    size_t size;
    const tv_xen_layout_t *lay;   /* from the first request's version */
    uint32_t nr;                  /* entries (a power of two) */
    uint32_t req_cons, rsp_prod_pvt;
} tv_xen_ring_t;

/* Resets the shared indices and our own (the ring must be idle). */
void tv_xen_ring_init(tv_xen_ring_t *r, void *page, size_t size);
/* Copies the next request to req (TV_XEN_ENTRY_MAX bytes).  1: one taken,
 * 0: none, TINYVMI_EFORMAT: the ring is broken (indices past its size, an
 * unknown or changed interface version), with the reason in why. */
int tv_xen_ring_take(tv_xen_ring_t *r, uint8_t *req, char *why,
                     size_t whylen);
/* Puts a response (lay->entry bytes) and publishes it. */
int tv_xen_ring_put(tv_xen_ring_t *r, const uint8_t *rsp);
/* Requests published and not taken (bounded: false on a broken ring). */
bool tv_xen_ring_pending(const tv_xen_ring_t *r);
/* Asks for a notification at the next request; true if one arrived in
 * the meantime (take it before sleeping). */
bool tv_xen_ring_arm(tv_xen_ring_t *r);

/* A request as a stop for the event layer.  TINYVMI_EFORMAT for a vCPU the
 * domain does not have (nvcpus) or a reason TinyVMI does not know (then
 * out->kind is TV_STOP_OTHER and out->vcpu 0: answer it, deliver nothing). */
int tv_xen_parse(const tv_xen_layout_t *l, const uint8_t *req,
                 unsigned nvcpus, tv_stop_t *out, char *why, size_t whylen);
/* The response to req: same vCPU, reason and altp2m view, the pause flag
 * kept so the vCPU resumes, plus flags (VM_EVENT_FLAG_*); regs (optional)
 * replace the request's registers (VM_EVENT_FLAG_SET_REGISTERS). */
void tv_xen_answer(const tv_xen_layout_t *l, const uint8_t *req,
                   uint32_t flags, const x86_registers_t *regs,
                   uint8_t *rsp);

/* ---- The driver's side ------------------------------------------------------ */

struct tv_xen;

/* The event group of Xen targets (tv_driver_t.ev).  The ring is set up at
 * the first event registered, after asking Xen for its capabilities. */
const tv_event_ops_t *tv_xen_events(void);
/* Stops every monitor, answers what is outstanding so no vCPU stays
 * paused, and releases the ring; safe to call when nothing was set up.
 * Must run before the xc handle is closed. */
void tv_xen_monitor_close(struct tv_xen *x);

#endif
