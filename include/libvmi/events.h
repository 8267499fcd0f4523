/*
 * TinyVMI: LibVMI's event API (libvmi/events.h), the same names, types and
 * layout as LibVMI's events version 5, so that event code written for
 * LibVMI builds unchanged.
 *
 * What each backend delivers:
 *   - QEMU (gdbstub): VMI_EVENT_INTERRUPT (INT3) for the guest's own INT3
 *     instructions (e.g. 0xCC a tool wrote into its memory: caught at the
 *     #BP handler, the registers shown as they were at the INT3, the trap
 *     undone unless reinject is set; insn_length 1 or 2), and for
 *     breakpoints planted with tinyvmi_set_breakpoint (the guest's memory
 *     is never modified: QEMU stops the vCPU before the instruction,
 *     TinyVMI steps it over; insn_length 0),
 *     VMI_EVENT_SINGLESTEP on any vCPUs, VMI_EVENT_MEMORY (read, write,
 *     read/write) on a guest page through watchpoints on every kernel
 *     address that maps it.  Execute-access memory events, register
 *     events and the response flags that emulate instructions are refused
 *     with TINYVMI_ENOTSUP and a reason (tinyvmi_last_error).
 *   - Xen (vm_event, PVH and HVM guests): VMI_EVENT_REGISTER on writes to
 *     CR0, CR3, CR4, XCR0, to MSR_ALL (the MSRs LibVMI watches for it;
 *     reg_event.msr says which was written) and to the named MSR_*
 *     registers (MSR_EFER, MSR_LSTAR...), with reg_event.value/previous;
 *     VMI_EVENT_CPUID (Xen has already computed the results into the
 *     registers but not moved RIP: the callback adds insn_length to
 *     x86_regs->rip and answers VMI_EVENT_RESPONSE_SET_REGISTERS, as with
 *     LibVMI), VMI_EVENT_GUEST_REQUEST, VMI_EVENT_DEBUG_EXCEPTION,
 *     VMI_EVENT_INTERRUPT (INT3), VMI_EVENT_SINGLESTEP and VMI_EVENT_MEMORY
 *     on a gfn.  Each callback gets the vCPU's registers as Xen sent them.
 *     What the host cannot deliver (Xen's monitor capabilities, or
 *     mem_access for memory events) is refused at registration with a
 *     reason naming the missing capability.
 *   - Dumps: no events.
 */
#ifndef LIBVMI_EVENTS_H
#define LIBVMI_EVENTS_H

#include <libvmi/libvmi.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define VMI_EVENTS_VERSION 0x00000005

typedef uint16_t vmi_event_type_t;
#define VMI_EVENT_INVALID 0
#define VMI_EVENT_MEMORY 1
#define VMI_EVENT_REGISTER 2
#define VMI_EVENT_SINGLESTEP 3
#define VMI_EVENT_INTERRUPT 4
#define VMI_EVENT_GUEST_REQUEST 5
#define VMI_EVENT_CPUID 6
#define VMI_EVENT_DEBUG_EXCEPTION 7
#define VMI_EVENT_PRIVILEGED_CALL 8
#define VMI_EVENT_DESCRIPTOR_ACCESS 9
#define VMI_EVENT_FAILED_EMULATION 10

#define MAX_SINGLESTEP_VCPUS 32

typedef uint8_t vmi_reg_access_t;
#define VMI_REGACCESS_INVALID 0
#define VMI_REGACCESS_N (1 << 0)
#define VMI_REGACCESS_R (1 << 1)
#define VMI_REGACCESS_W (1 << 2)
#define VMI_REGACCESS_RW (VMI_REGACCESS_R | VMI_REGACCESS_W)

typedef uint8_t vmi_mem_access_t;
#define VMI_MEMACCESS_INVALID 0
#define VMI_MEMACCESS_N (1 << 0)
#define VMI_MEMACCESS_R (1 << 1)
#define VMI_MEMACCESS_W (1 << 2)
#define VMI_MEMACCESS_X (1 << 3)
#define VMI_MEMACCESS_RW (VMI_MEMACCESS_R | VMI_MEMACCESS_W)
#define VMI_MEMACCESS_RX (VMI_MEMACCESS_R | VMI_MEMACCESS_X)
#define VMI_MEMACCESS_WX (VMI_MEMACCESS_W | VMI_MEMACCESS_X)
#define VMI_MEMACCESS_RWX (VMI_MEMACCESS_R | VMI_MEMACCESS_W | VMI_MEMACCESS_X)
#define VMI_MEMACCESS_W2X (1 << 4)
#define VMI_MEMACCESS_RWX2N (1 << 5)

typedef struct emul_read {
    uint32_t size;
    uint8_t dont_free;
    uint8_t _pad[3];
    uint8_t data[256];
} emul_read_t;

typedef struct emul_insn {
    uint8_t dont_free;
    uint8_t _pad[7];
    uint8_t data[16];
} emul_insn_t;

/* IN: set before registering; OUT: filled when the event is delivered. */
typedef struct {
    reg_t reg;                  /* IN */
    reg_t equal;                /* IN */
    uint8_t async;              /* IN */
    uint8_t onchange;           /* IN */
    vmi_reg_access_t in_access; /* IN */
    vmi_reg_access_t out_access;/* OUT */
    uint32_t _pad;
    reg_t value;                /* OUT */
    reg_t previous;             /* OUT */
    uint32_t msr;               /* IN/OUT */
} reg_event_t;

typedef struct {
    addr_t gfn;                 /* IN: the page; OUT: where it happened */
    uint8_t generic;            /* IN: every page (gfn ~0) */
    vmi_mem_access_t in_access; /* IN */
    vmi_mem_access_t out_access;/* OUT */
    uint8_t gptw;               /* OUT */
    uint8_t gla_valid;          /* OUT */
    uint8_t _pad[3];
    addr_t gla;                 /* OUT: the virtual address accessed */
    addr_t offset;              /* OUT: its offset in the page */
} mem_access_event_t;

typedef uint8_t interrupts_t;
#define INT_INVALID 0
#define INT3 1
#define INT_NEXT 2

typedef struct {
    interrupts_t intr;          /* IN: INT3 */
    union {
        struct {
            uint32_t insn_length; /* OUT: 0 for a hypervisor breakpoint */
            int8_t reinject;      /* RESPONSE */
            uint16_t _pad1;
        };
        struct {
            uint32_t vector;
            uint32_t type;
            uint32_t error_code;
            uint32_t _pad2;
            uint64_t cr2;
        };
    };
    addr_t gla;                 /* OUT: the breakpoint's address */
    addr_t gfn;                 /* OUT: its page */
    addr_t offset;              /* OUT: its offset in the page */
} interrupt_event_t;

typedef struct {
    uint32_t vcpus;             /* IN: bit i: vCPU i */
    uint8_t enable;             /* IN: start stepping at once */
    uint8_t _pad[3];
    addr_t gla;                 /* OUT: the next instruction */
    addr_t gfn;
    addr_t offset;
} single_step_event_t;

typedef struct {
    addr_t gla;
    addr_t gfn;
    addr_t offset;
    uint32_t insn_length;
    uint8_t type;
    int8_t reinject;
    uint16_t _pad;
} debug_event_t;

typedef struct {
    uint32_t insn_length;
    uint32_t leaf;
    uint32_t subleaf;
    uint32_t _pad;
} cpuid_event_t;

#define VMI_DESCRIPTOR_IDTR 1
#define VMI_DESCRITPOR_GDTR 2
#define VMI_DESCRIPTOR_LDTR 3
#define VMI_DESCRIPTOR_TR 4

typedef struct desriptor_event {
    union {
        struct {
            uint32_t instr_info;
            uint32_t _pad;
            uint64_t exit_qualification;
        };
        uint64_t exit_info;
    };
    uint8_t descriptor;
    uint8_t is_write;
    uint8_t _pad2[6];
} descriptor_event_t;

struct vmi_event;
typedef struct vmi_event vmi_event_t;

typedef uint32_t event_response_flags_t;
#define VMI_EVENT_RESPONSE_NONE 0
#define VMI_EVENT_RESPONSE_EMULATE (1u << 1)
#define VMI_EVENT_RESPONSE_EMULATE_NOWRITE (1u << 2)
#define VMI_EVENT_RESPONSE_SET_EMUL_READ_DATA (1u << 3)
#define VMI_EVENT_RESPONSE_DENY (1u << 4)
#define VMI_EVENT_RESPONSE_TOGGLE_SINGLESTEP (1u << 5)
#define VMI_EVENT_RESPONSE_SLAT_ID (1u << 6)
#define VMI_EVENT_RESPONSE_VMM_PAGETABLE_ID VMI_EVENT_RESPONSE_SLAT_ID
#define VMI_EVENT_RESPONSE_SET_REGISTERS (1u << 7)
#define VMI_EVENT_RESPONSE_SET_EMUL_INSN (1u << 8)
#define VMI_EVENT_RESPONSE_GET_NEXT_INTERRUPT (1u << 9)
#define __VMI_EVENT_RESPONSE_MAX 9

typedef uint32_t event_response_t;

typedef event_response_t (*event_callback_t)(vmi_instance_t vmi,
                                             vmi_event_t *event);
typedef void (*vmi_event_free_t)(vmi_event_t *event, status_t rc);

struct vmi_event {
    uint32_t version;           /* VMI_EVENTS_VERSION */
    vmi_event_type_t type;
    uint16_t slat_id;
    void *data;                 /* the caller's, untouched */
    event_callback_t callback;
    uint32_t vcpu_id;           /* OUT */
    uint32_t _reserved[7];
    union {
        reg_event_t reg_event;
        mem_access_event_t mem_event;
        single_step_event_t ss_event;
        interrupt_event_t interrupt_event;
        cpuid_event_t cpuid_event;
        debug_event_t debug_event;
        descriptor_event_t descriptor_event;
    };
    union {
        union {
            x86_registers_t *x86_regs; /* OUT: the vCPU's registers */
            arm_registers_t *arm_regs;
        };
        emul_read_t *emul_read;
        emul_insn_t *emul_insn;
    };
};

#define SET_VCPU_SINGLESTEP(ss_event, x) \
    do { (ss_event).vcpus |= (1u << (x)); } while (0)
#define UNSET_VCPU_SINGLESTEP(ss_event, x) \
    do { (ss_event).vcpus &= ~(1u << (x)); } while (0)
#define CHECK_VCPU_SINGLESTEP(ss_event, x) (((ss_event).vcpus) & (1u << (x)))

#define SETUP_SINGLESTEP_EVENT(_event, _vcpu_mask, _callback, _enable) \
    do {                                                               \
        (_event)->version = VMI_EVENTS_VERSION;                        \
        (_event)->type = VMI_EVENT_SINGLESTEP;                         \
        (_event)->ss_event.vcpus = (_vcpu_mask);                       \
        (_event)->ss_event.enable = (_enable);                         \
        (_event)->callback = (_callback);                              \
    } while (0)

#define SETUP_MEM_EVENT(_event, _gfn, _access, _callback, _generic) \
    do {                                                            \
        (_event)->version = VMI_EVENTS_VERSION;                     \
        (_event)->type = VMI_EVENT_MEMORY;                          \
        (_event)->mem_event.gfn = (_generic) ? ~0ULL : (_gfn);      \
        (_event)->mem_event.in_access = (_access);                  \
        (_event)->mem_event.generic = (_generic);                   \
        (_event)->callback = (_callback);                           \
    } while (0)

#define SETUP_REG_EVENT(_event, _reg, _access, _equal, _callback) \
    do {                                                          \
        (_event)->version = VMI_EVENTS_VERSION;                   \
        (_event)->type = VMI_EVENT_REGISTER;                      \
        (_event)->reg_event.reg = (_reg);                         \
        (_event)->reg_event.in_access = (_access);                \
        (_event)->reg_event.equal = (_equal);                     \
        (_event)->callback = (_callback);                         \
    } while (0)

#define SETUP_INTERRUPT_EVENT(_event, _reinject, _callback) \
    do {                                                    \
        (_event)->version = VMI_EVENTS_VERSION;             \
        (_event)->type = VMI_EVENT_INTERRUPT;               \
        (_event)->interrupt_event.intr = INT3;              \
        (_event)->interrupt_event.reinject = (_reinject);   \
        (_event)->callback = (_callback);                   \
    } while (0)

/** The highest events version this library speaks. */
uint32_t vmi_events_version(void);
/** Registers event (the caller keeps it alive until it is cleared). */
status_t vmi_register_event(vmi_instance_t vmi, vmi_event_t *event);
/** Clears event; free_routine (optional) is called once it is safe to free. */
status_t vmi_clear_event(vmi_instance_t vmi, vmi_event_t *event,
                         vmi_event_free_t free_routine);
status_t vmi_swap_events(vmi_instance_t vmi, vmi_event_t *swap_from,
                         vmi_event_t *swap_to, vmi_event_free_t free_routine);
vmi_event_t *vmi_get_reg_event(vmi_instance_t vmi, reg_t reg);
vmi_event_t *vmi_get_mem_event(vmi_instance_t vmi, addr_t gfn,
                               vmi_mem_access_t access);
status_t vmi_set_mem_event(vmi_instance_t vmi, addr_t gfn,
                           vmi_mem_access_t access, uint16_t slat_id);
/** Single-steps vcpu_id `steps` times, then calls cb (or re-registers
 *  event when cb is NULL). */
status_t vmi_step_event(vmi_instance_t vmi, vmi_event_t *event,
                        uint32_t vcpu_id, uint64_t steps, event_callback_t cb);
/** Lets the guest run until an event is delivered or timeout ms pass (a
 *  timeout is a success); callbacks run inside. */
status_t vmi_events_listen(vmi_instance_t vmi, uint32_t timeout);
status_t vmi_event_listener_required(vmi_instance_t vmi, bool required);
/** Events waiting to be delivered (0 none, -1 error). */
int vmi_are_events_pending(vmi_instance_t vmi);
vmi_event_t *vmi_get_singlestep_event(vmi_instance_t vmi, uint32_t vcpu);
status_t vmi_stop_single_step_vcpu(vmi_instance_t vmi, vmi_event_t *event,
                                   uint32_t vcpu);
status_t vmi_shutdown_single_step(vmi_instance_t vmi);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* LIBVMI_EVENTS_H */
