/*
 * Internals of the Xen driver, shared by its files: Xen's libraries loaded
 * at run time (TinyVMI runs without them unless a Xen target is opened) and
 * the driver's state.  Hosted code.
 */
#ifndef TV_DRIVER_XEN_INT_H
#define TV_DRIVER_XEN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "core/tv.h"

/* Every library function the driver calls, with the library it lives in.
 * The pointer types come from Xen's own headers, so a call that does not
 * match the installed API does not compile. */
#define TV_XEN_FUNCS(X)                                                       \
    X(XC, xc_interface_open)                                                  \
    X(XC, xc_interface_close)                                                 \
    X(XC, xc_version)                                                         \
    X(XC, xc_domain_getinfo)                                                  \
    X(XC, xc_domain_get_guest_width)                                          \
    X(XC, xc_domain_maximum_gpfn)                                             \
    X(XC, xc_domain_pause)                                                    \
    X(XC, xc_domain_unpause)                                                  \
    X(XC, xc_vcpu_getcontext)                                                 \
    X(XC, xc_vcpu_setcontext)                                                 \
    X(XC, xc_domain_hvm_getcontext)                                           \
    X(XC, xc_domain_hvm_getcontext_partial)                                   \
    X(XC, xc_domain_hvm_setcontext)                                           \
    X(XC, xc_monitor_enable)                                                  \
    X(XC, xc_monitor_disable)                                                 \
    X(XC, xc_monitor_resume)                                                  \
    X(XC, xc_monitor_get_capabilities)                                        \
    X(XC, xc_monitor_write_ctrlreg)                                           \
    X(XC, xc_monitor_mov_to_msr)                                              \
    X(XC, xc_monitor_cpuid)                                                   \
    X(XC, xc_monitor_guest_request)                                           \
    X(XC, xc_monitor_debug_exceptions)                                        \
    X(XC, xc_monitor_singlestep)                                              \
    X(XC, xc_monitor_software_breakpoint)                                     \
    X(XC, xc_set_mem_access)                                                  \
    X(FM, xenforeignmemory_open)                                              \
    X(FM, xenforeignmemory_close)                                             \
    X(FM, xenforeignmemory_map)                                               \
    X(FM, xenforeignmemory_unmap)                                             \
    X(XS, xs_open)                                                            \
    X(XS, xs_close)                                                           \
    X(XS, xs_directory)                                                       \
    X(XS, xs_read)                                                            \
    X(EV, xenevtchn_open)                                                     \
    X(EV, xenevtchn_close)                                                    \
    X(EV, xenevtchn_fd)                                                       \
    X(EV, xenevtchn_bind_interdomain)                                         \
    X(EV, xenevtchn_unbind)                                                   \
    X(EV, xenevtchn_notify)                                                   \
    X(EV, xenevtchn_pending)                                                  \
    X(EV, xenevtchn_unmask)

enum { TV_XEN_LIB_XC, TV_XEN_LIB_FM, TV_XEN_LIB_XS, TV_XEN_LIB_EV,
       TV_XEN_NLIBS };

typedef struct tv_xen_lib {
    void *handle[TV_XEN_NLIBS];
#define TV_XEN_PTR(lib, fn) __typeof__(fn) *fn;
    TV_XEN_FUNCS(TV_XEN_PTR)
#undef TV_XEN_PTR
} tv_xen_lib_t;

/* Loads the libraries; on failure says which library or symbol is missing
 * in why and unloads what it loaded. */
int tv_xen_lib_load(tv_xen_lib_t *lib, char *why, size_t whylen);
void tv_xen_lib_unload(tv_xen_lib_t *lib);

/* Mapped guest frames, a chunk of TV_XEN_CHUNK frames at a time. */
#define TV_XEN_CHUNK_SHIFT 4
#define TV_XEN_CHUNK (1u << TV_XEN_CHUNK_SHIFT)
#define TV_XEN_NSLOTS 256

typedef struct tv_xen_slot {
    uint64_t chunk;   /* first frame >> TV_XEN_CHUNK_SHIFT; UINT64_MAX: empty */
    uint8_t *base;    /* NULL when no frame of the chunk could be mapped */
    uint32_t ok;      /* bit i: frame i of the chunk is mapped */
} tv_xen_slot_t;

struct tv_xen_monitor; /* events (monitor.c) */

typedef struct tv_xen {
    xentoollog_logger logger; /* first: Xen's libraries log through it */
    struct vmi_instance *vmi;
    tv_xen_lib_t lib;
    xc_interface *xch;
    xenforeignmemory_handle *fmem;
    uint32_t domid;
    char name[128];
    bool pv;          /* paravirtual: page tables hold machine frames */
    bool pvh;         /* HVM container without emulated devices */
    unsigned width;   /* guest word size in bytes (PV) */
    unsigned vcpus;   /* max_vcpu_id + 1 */
    unsigned pauses;  /* our own pause depth */
    tv_range_t *ranges;
    size_t nranges;
    tv_xen_slot_t slot[TV_XEN_NSLOTS];
    struct tv_xen_monitor *mon;
} tv_xen_t;

/* A register of a vCPU: the PV context, or the HVM context's CPU record
 * (a write pauses the domain from reading the context to writing it). */
int tv_xen_get_reg(tv_xen_t *x, unsigned vcpu, reg_t reg, uint64_t *value);
int tv_xen_set_reg(tv_xen_t *x, unsigned vcpu, reg_t reg, uint64_t value);

/* The domain's current state; fails with ENOENT once the domain is gone. */
int tv_xen_dominfo(tv_xen_t *x, xc_dominfo_t *info);

#endif
