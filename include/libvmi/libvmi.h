/*
 * TinyVMI public API: a LibVMI-compatible interface for virtual machine
 * introspection.  Programs written for LibVMI include this header as
 * <libvmi/libvmi.h> and build unchanged: the names, types and semantics below
 * follow LibVMI's public API.  TinyVMI's own additions live in
 * <tinyvmi/tinyvmi.h>.
 *
 * Conventions (as in LibVMI):
 *  - functions return VMI_SUCCESS or VMI_FAILURE; on failure TinyVMI also
 *    records why (tinyvmi_last_error());
 *  - a pid of 0 names the kernel's address space;
 *  - strings returned as `char *` are allocated with malloc and freed by the
 *    caller with free().
 */
#ifndef LIBVMI_H
#define LIBVMI_H

#include <stddef.h>
#include <stdint.h>

/* LibVMI's header brings these in, and programs written for it rely on
 * that.  TinyVMI's freestanding core builds without them. */
#ifndef TINYVMI_FREESTANDING
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ---- Initialisation flags (vmi_init's init_flags) ---------------------- */

#define VMI_INIT_DOMAINNAME (1u << 0) /**< domain is a name (or file path) */
#define VMI_INIT_DOMAINID (1u << 1)   /**< domain points to a uint64_t id */
#define VMI_INIT_EVENTS (1u << 2)     /**< initialise event delivery */
#define VMI_INIT_SHM (1u << 3)        /**< shared-memory mode (unused) */
#define VMI_INIT_XEN_EVTCHN (1u << 4) /**< use a caller-given Xen evtchn */

#define VMI_INVALID_DOMID ~0ULL

typedef enum vmi_mode {
    VMI_XEN,  /**< a live Xen domain */
    VMI_KVM,  /**< a live QEMU/KVM guest */
    VMI_FILE, /**< a memory dump in a file */
} vmi_mode_t;

typedef enum vmi_config {
    VMI_CONFIG_GLOBAL_FILE_ENTRY, /**< entry of the global libvmi.conf */
    VMI_CONFIG_STRING,            /**< a config entry given as a string */
    VMI_CONFIG_GHASHTABLE,        /**< a GHashTable of the caller's glib */
    VMI_CONFIG_JSON_PATH,         /**< path to a JSON symbol profile */
} vmi_config_t;

typedef enum status {
    VMI_SUCCESS, /**< the call succeeded */
    VMI_FAILURE  /**< the call failed; see tinyvmi_last_error() */
} status_t;

typedef enum vmi_init_error {
    VMI_INIT_ERROR_NONE,                /**< no error */
    VMI_INIT_ERROR_DRIVER_NOT_DETECTED, /**< no driver recognised the target */
    VMI_INIT_ERROR_DRIVER,              /**< the driver failed to start */
    VMI_INIT_ERROR_VM_NOT_FOUND,        /**< the VM or file does not exist */
    VMI_INIT_ERROR_PAGING,              /**< paging could not be set up */
    VMI_INIT_ERROR_OS,                  /**< the OS layer could not start */
    VMI_INIT_ERROR_EVENTS,              /**< events could not be set up */
    VMI_INIT_ERROR_SHM,                 /**< shared memory mode failed */
    VMI_INIT_ERROR_NO_CONFIG,           /**< no configuration was found */
    VMI_INIT_ERROR_NO_CONFIG_ENTRY,     /**< no config entry for this VM */
} vmi_init_error_t;

typedef enum os {
    VMI_OS_UNKNOWN,
    VMI_OS_LINUX,
    VMI_OS_WINDOWS,
    VMI_OS_FREEBSD,
} os_t;

/** Windows versions, LibVMI's values: up to Windows 8 the size of the
 *  kernel's KDBG, Windows 10 and later one value. */
typedef enum win_ver {
    VMI_OS_WINDOWS_NONE,    /**< not Windows */
    VMI_OS_WINDOWS_UNKNOWN, /**< Windows, which one unknown */
    VMI_OS_WINDOWS_2000 = 0x0208U,
    VMI_OS_WINDOWS_XP = 0x0290U,
    VMI_OS_WINDOWS_2003 = 0x0318U,
    VMI_OS_WINDOWS_VISTA = 0x0328U,
    VMI_OS_WINDOWS_2008 = 0x0330U,
    VMI_OS_WINDOWS_7 = 0x0340U,
    VMI_OS_WINDOWS_8 = 0x0360U,
    VMI_OS_WINDOWS_10,
} win_ver_t;

typedef enum page_mode {
    VMI_PM_UNKNOWN, /**< not known (yet) */
    VMI_PM_NONE,    /**< paging disabled */
    VMI_PM_LEGACY,  /**< x86 32-bit paging (4 KiB and 4 MiB pages) */
    VMI_PM_PAE,     /**< x86 PAE paging */
    VMI_PM_IA32E,   /**< x86 IA-32e 4-level paging */
    VMI_PM_AARCH32, /**< ARM short-descriptor / LPAE */
    VMI_PM_AARCH64, /**< ARM AArch64 */
    VMI_PM_EPT_4L,  /**< Intel EPT, 4 levels */
    VMI_PM_EPT_5L,  /**< Intel EPT, 5 levels */
    VMI_PM_LA57,    /**< TinyVMI: x86 IA-32e 5-level paging (CR4.LA57) */
} page_mode_t;

/** Allow Windows transition PTEs when checking presence. */
#define VMI_PM_INITFLAG_TRANSITION_PAGES (1u << 0)

typedef enum page_size {
    VMI_PS_UNKNOWN = 0ULL,
    VMI_PS_1KB = 0x400ULL,
    VMI_PS_4KB = 0x1000ULL,
    VMI_PS_16KB = 0x4000ULL,
    VMI_PS_64KB = 0x10000ULL,
    VMI_PS_1MB = 0x100000ULL,
    VMI_PS_2MB = 0x200000ULL,
    VMI_PS_4MB = 0x400000ULL,
    VMI_PS_16MB = 0x1000000ULL,
    VMI_PS_32MB = 0x2000000ULL,
    VMI_PS_512MB = 0x20000000ULL,
    VMI_PS_1GB = 0x40000000ULL,
} page_size_t;

typedef uint64_t reg_t;
typedef uint64_t addr_t;
typedef int32_t vmi_pid_t;

/* ---- Register names (LibVMI's numbering) -------------------------------- */

#define EAX 0
#define EBX 1
#define ECX 2
#define EDX 3
#define EBP 4
#define ESI 5
#define EDI 6
#define ESP 7
#define EIP 8
#define EFLAGS 9
#define RAX EAX
#define RBX EBX
#define RCX ECX
#define RDX EDX
#define RBP EBP
#define RSI ESI
#define RDI EDI
#define RSP ESP
#define RIP EIP
#define RFLAGS EFLAGS
#define R8 10
#define R9 11
#define R10 12
#define R11 13
#define R12 14
#define R13 15
#define R14 16
#define R15 17
#define CR0 18
#define CR2 19
#define CR3 20
#define CR4 21
#define XCR0 22
#define DR0 23
#define DR1 24
#define DR2 25
#define DR3 26
#define DR6 27
#define DR7 28
#define CS_SEL 29
#define DS_SEL 30
#define ES_SEL 31
#define FS_SEL 32
#define GS_SEL 33
#define SS_SEL 34
#define TR_SEL 35
#define LDTR_SEL 36
#define CS_LIMIT 37
#define DS_LIMIT 38
#define ES_LIMIT 39
#define FS_LIMIT 40
#define GS_LIMIT 41
#define SS_LIMIT 42
#define TR_LIMIT 43
#define LDTR_LIMIT 44
#define IDTR_LIMIT 45
#define GDTR_LIMIT 46
#define CS_BASE 47
#define DS_BASE 48
#define ES_BASE 49
#define FS_BASE 50
#define GS_BASE 51
#define SS_BASE 52
#define TR_BASE 53
#define LDTR_BASE 54
#define IDTR_BASE 55
#define GDTR_BASE 56
#define CS_ARBYTES 57
#define DS_ARBYTES 58
#define ES_ARBYTES 59
#define FS_ARBYTES 60
#define GS_ARBYTES 61
#define SS_ARBYTES 62
#define TR_ARBYTES 63
#define LDTR_ARBYTES 64
#define SYSENTER_CS 65
#define SYSENTER_ESP 66
#define SYSENTER_EIP 67
#define SHADOW_GS 68
#define TSC 69
#define MSR_FLAGS 70
#define MSR_LSTAR 71
#define MSR_CSTAR 72
#define MSR_SYSCALL_MASK 73
#define MSR_EFER 74
#define MSR_TSC_AUX 75
#define MSR_ALL 76
#define MSR_STAR 119
#define MSR_SHADOW_GS_BASE 120

/* ARM (AArch32 / AArch64) */
#define SCTLR 77
#define CPSR 78
#define TTBCR 79
#define TTBR0 80
#define TTBR1 81
#define R0 82
#define R1 83
#define R2 84
#define R3 85
#define R4 86
#define R5 87
#define R6 88
#define R7 89
#define SP_EL0 110
#define SP_EL1 111
#define ELR_EL1 112
#define PC 118
#define TCR_EL1 TTBCR

/** Number of register names TinyVMI knows (an array bound). */
#define TINYVMI_NREGS 160

typedef struct x86_regs {
    uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rflags, dr6, dr7, rip;
    uint64_t cr0, cr2, cr3, cr4;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t msr_efer, msr_star, msr_lstar;
    uint64_t fs_base, gs_base;
    uint32_t cs_arbytes;
    uint32_t _pad;
} x86_registers_t;

typedef struct arm_registers {
    uint64_t ttbr0, ttbr1, ttbcr, pc;
    uint32_t cpsr;
    uint32_t _pad;
} arm_registers_t;

typedef struct registers {
    union {
        x86_registers_t x86;
        arm_registers_t arm;
    };
} registers_t;

/* ---- Page lookups -------------------------------------------------------- */

/** What a page-table walk found: the physical address, the page size and
 *  each entry walked (its physical location and value), top level first in
 *  the per-mode views below. */
typedef struct page_info {
    addr_t vaddr;      /**< the virtual address looked up */
    addr_t dtb;        /**< the page-table root used */
    addr_t paddr;      /**< the physical address it maps to */
    page_size_t size;  /**< the size of the page that maps it */
    union {
        struct {
            addr_t pte_location, pte_value;
            addr_t pgd_location, pgd_value;
        } x86_legacy;
        struct {
            addr_t pte_location, pte_value;
            addr_t pgd_location, pgd_value;
            addr_t pdpe_location, pdpe_value;
        } x86_pae;
        struct {
            addr_t pte_location, pte_value;
            addr_t pgd_location, pgd_value;
            addr_t pdpte_location, pdpte_value;
            addr_t pml4e_location, pml4e_value;
            addr_t pml5e_location, pml5e_value; /**< TinyVMI: LA57 only */
        } x86_ia32e;
        struct {
            uint32_t fld_location, fld_value;
            uint32_t sld_location, sld_value;
        } arm_aarch32;
        struct {
            uint64_t zld_location, zld_value;
            uint64_t fld_location, fld_value;
            uint64_t sld_location, sld_value;
            uint64_t tld_location, tld_value;
        } arm_aarch64;
    };
} page_info_t;

typedef enum translation_mechanism {
    VMI_TM_INVALID,       /**< not set */
    VMI_TM_NONE,          /**< addr is a physical address */
    VMI_TM_PROCESS_DTB,   /**< translate addr with the page tables at dtb */
    VMI_TM_PROCESS_PID,   /**< translate addr in process pid's tables */
    VMI_TM_KERNEL_SYMBOL, /**< read at kernel symbol ksym */
} translation_mechanism_t;

typedef enum arch {
    VMI_ARCH_UNKNOWN,
    VMI_ARCH_X86,
    VMI_ARCH_X86_64,
    VMI_ARCH_ARM32,
    VMI_ARCH_ARM64,
} vmi_arch_t;

#define ACCESS_CONTEXT_VERSION 1

/** How vmi_read()/vmi_write() reach memory.  Both LibVMI spellings work:
 *  `.translate_mechanism`/`.tm` and `.dtb`/`.pt`.  Declare with
 *  ACCESS_CONTEXT(ctx, .tm = VMI_TM_PROCESS_DTB, .addr = va, .pt = cr3); a
 *  zero version (older code) is accepted too. */
typedef struct {
    uint32_t version;
    union {
        translation_mechanism_t translate_mechanism;
        translation_mechanism_t tm;
    };
    union {
        addr_t addr;
        const char *ksym;
    };
    union {
        addr_t dtb;
        addr_t pt;
    };
    vmi_pid_t pid;
    page_mode_t pm; /**< page mode for dtb; VMI_PM_UNKNOWN: the kernel's */
    addr_t npt;     /**< nested page table (not supported; must be 0) */
    page_mode_t npm;
} access_context_t;

#define ACCESS_CONTEXT(name, ...) \
    access_context_t name = {.version = ACCESS_CONTEXT_VERSION, __VA_ARGS__}

#define VMI_GET_BIT(reg, bit) (!!((reg) & (1ULL << (bit))))
#define VMI_BIT_MASK(a, b) \
    (((unsigned long long)-1 >> (63 - (b))) & ~((1ULL << (a)) - 1))

/* ---- Initialisation data ------------------------------------------------- */

enum vmi_init_data_type {
    VMI_INIT_DATA_XEN_EVTCHN,   /**< a xenevtchn handle */
    VMI_INIT_DATA_MEMMAP,       /**< a memory map (not supported) */
    VMI_INIT_DATA_KVMI_SOCKET,  /**< path of the QMP socket (VMI_KVM) */
    TINYVMI_INIT_DATA_HOOKS = 0x7400, /**< a tinyvmi_hooks_t pointer */
};

typedef struct {
    uint64_t type; /**< enum vmi_init_data_type */
    void *data;
} vmi_init_data_entry_t;

typedef struct {
    uint64_t count;
    vmi_init_data_entry_t entry[];
} vmi_init_data_t;

typedef struct vmi_instance *vmi_instance_t;

/* ---- Initialisation and teardown ---------------------------------------- */

/** Opens a VM or a dump: gives physical memory and vCPU state.  For
 *  VMI_FILE, domain is the path of the dump (VMI_INIT_DOMAINNAME); its
 *  format is detected from its content.  On failure *vmi is NULL and *error
 *  (if not NULL) says at which stage it failed. */
status_t vmi_init(vmi_instance_t *vmi, vmi_mode_t mode, const void *domain,
                  uint64_t init_flags, vmi_init_data_t *init_data,
                  vmi_init_error_t *error);

/** vmi_init, then paging, then (when a config or profile is given) the OS
 *  layer.  config_mode and config are as in LibVMI. */
status_t vmi_init_complete(vmi_instance_t *vmi, const void *domain,
                           uint64_t init_flags, vmi_init_data_t *init_data,
                           vmi_config_t config_mode, void *config,
                           vmi_init_error_t *error);

/** Sets up virtual-to-physical translation from vCPU 0's registers.  Returns
 *  the page mode, or VMI_PM_UNKNOWN.  flags: VMI_PM_INITFLAG_TRANSITION_PAGES
 *  also translates Windows' transition PTEs (not present, bit 11 set, bit 10
 *  clear: the frame still holds the page) in PAE and IA-32e modes; the
 *  Windows OS layer turns it on itself.  Prototype PTEs are not followed. */
page_mode_t vmi_init_paging(vmi_instance_t vmi, uint64_t flags);

/** Closes the instance and everything it holds.  NULL is accepted. */
status_t vmi_destroy(vmi_instance_t vmi);

/** Finds which driver would open domain (VMI_FILE for an existing file). */
status_t vmi_get_access_mode(vmi_instance_t vmi, const void *domain,
                             uint64_t init_flags, vmi_init_data_t *init_data,
                             vmi_mode_t *mode);

vmi_arch_t vmi_get_library_arch(void);

/* ---- Translation ---------------------------------------------------------- */

/** Kernel virtual address to physical, through the kernel's page tables. */
status_t vmi_translate_kv2p(vmi_instance_t vmi, addr_t vaddr, addr_t *paddr);

/** Virtual to physical through the page tables rooted at dtb. */
status_t vmi_pagetable_lookup(vmi_instance_t vmi, addr_t dtb, addr_t vaddr,
                              addr_t *paddr);

/** As vmi_pagetable_lookup, also giving the page size and entries walked. */
status_t vmi_pagetable_lookup_extended(vmi_instance_t vmi, addr_t dtb,
                                       addr_t vaddr, page_info_t *info);

/** Drops cached translations for dtb (~0ULL: all of them). */
void vmi_v2pcache_flush(vmi_instance_t vmi, addr_t dtb);

/* ---- Reads ------------------------------------------------------------------ */

/** Reads count bytes at ctx into buf.  Succeeds only if all were read;
 *  *bytes_read (optional) gets how many were. */
status_t vmi_read(vmi_instance_t vmi, const access_context_t *ctx,
                  size_t count, void *buf, size_t *bytes_read);
status_t vmi_read_8(vmi_instance_t vmi, const access_context_t *ctx,
                    uint8_t *value);
status_t vmi_read_16(vmi_instance_t vmi, const access_context_t *ctx,
                     uint16_t *value);
status_t vmi_read_32(vmi_instance_t vmi, const access_context_t *ctx,
                     uint32_t *value);
status_t vmi_read_64(vmi_instance_t vmi, const access_context_t *ctx,
                     uint64_t *value);
/** Reads a guest pointer: 4 or 8 bytes by the guest's address width. */
status_t vmi_read_addr(vmi_instance_t vmi, const access_context_t *ctx,
                       addr_t *value);
/** Reads a NUL-terminated string (at most 1 MiB); caller frees it. */
char *vmi_read_str(vmi_instance_t vmi, const access_context_t *ctx);

status_t vmi_read_pa(vmi_instance_t vmi, addr_t paddr, size_t count,
                     void *buf, size_t *bytes_read);
status_t vmi_read_8_pa(vmi_instance_t vmi, addr_t paddr, uint8_t *value);
status_t vmi_read_16_pa(vmi_instance_t vmi, addr_t paddr, uint16_t *value);
status_t vmi_read_32_pa(vmi_instance_t vmi, addr_t paddr, uint32_t *value);
status_t vmi_read_64_pa(vmi_instance_t vmi, addr_t paddr, uint64_t *value);
status_t vmi_read_addr_pa(vmi_instance_t vmi, addr_t paddr, addr_t *value);
char *vmi_read_str_pa(vmi_instance_t vmi, addr_t paddr);

/** Virtual reads in process pid's address space (0: the kernel's). */
status_t vmi_read_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                     size_t count, void *buf, size_t *bytes_read);
status_t vmi_read_8_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                       uint8_t *value);
status_t vmi_read_16_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                        uint16_t *value);
status_t vmi_read_32_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                        uint32_t *value);
status_t vmi_read_64_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                        uint64_t *value);
status_t vmi_read_addr_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                          addr_t *value);
char *vmi_read_str_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid);

/* ---- Writes ----------------------------------------------------------------- */

status_t vmi_write(vmi_instance_t vmi, const access_context_t *ctx,
                   size_t count, void *buf, size_t *bytes_written);
status_t vmi_write_pa(vmi_instance_t vmi, addr_t paddr, size_t count,
                      void *buf, size_t *bytes_written);
status_t vmi_write_va(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                      size_t count, void *buf, size_t *bytes_written);
status_t vmi_write_8_pa(vmi_instance_t vmi, addr_t paddr, uint8_t *value);
status_t vmi_write_16_pa(vmi_instance_t vmi, addr_t paddr, uint16_t *value);
status_t vmi_write_32_pa(vmi_instance_t vmi, addr_t paddr, uint32_t *value);
status_t vmi_write_64_pa(vmi_instance_t vmi, addr_t paddr, uint64_t *value);

/* ---- Information ------------------------------------------------------------- */

/** The page mode in use (vcpu is accepted for LibVMI compatibility). */
page_mode_t vmi_get_page_mode(vmi_instance_t vmi, unsigned long vcpu);
/** Bytes in a guest pointer: 4 or 8 (0 when the page mode is unknown). */
uint8_t vmi_get_address_width(vmi_instance_t vmi);
/** Bytes of RAM the guest has (the sum of its RAM ranges). */
uint64_t vmi_get_memsize(vmi_instance_t vmi);
/* Xen's domain id; VMI_INVALID_DOMID for targets without one. */
uint64_t vmi_get_vmid(vmi_instance_t vmi);
/* The domain's name (a dump's path); the caller frees it. */
char *vmi_get_name(vmi_instance_t vmi);
/** One past the highest guest-physical address backed by RAM. */
addr_t vmi_get_max_physical_address(vmi_instance_t vmi);
/** The kernel's page-table root (CR3 of vCPU 0 for dumps). */
addr_t vmi_get_kernel_dtb(vmi_instance_t vmi);
unsigned int vmi_get_num_vcpus(vmi_instance_t vmi);
status_t vmi_get_vcpureg(vmi_instance_t vmi, uint64_t *value, reg_t reg,
                         unsigned long vcpu);
status_t vmi_get_vcpuregs(vmi_instance_t vmi, registers_t *regs,
                          unsigned long vcpu);
/** Writes one register of a vCPU (live targets; a running guest is held
 *  still for the write). */
status_t vmi_set_vcpureg(vmi_instance_t vmi, uint64_t value, reg_t reg,
                         unsigned long vcpu);
/** Writes the registers in regs that differ from the vCPU's. */
status_t vmi_set_vcpuregs(vmi_instance_t vmi, registers_t *regs,
                          unsigned long vcpu);
os_t vmi_get_ostype(vmi_instance_t vmi);

/* ---- The OS layer ------------------------------------------------------------ */

/** json_object is opaque here: TinyVMI does not use json-c.  The handle
 *  vmi_get_kernel_json returns is TinyVMI's symbol table, accepted by the
 *  *_from_json calls below (a json-c object is not). */
typedef struct json_object json_object;

/** Starts the OS layer on an initialised instance.  config is as in
 *  vmi_init_complete: a libvmi.conf entry name (GLOBAL_FILE_ENTRY: the
 *  domain's name when NULL), an entry body (STRING), a GHashTable
 *  (GHASHTABLE) or a profile path (JSON_PATH).  With no config and no
 *  profile, TinyVMI reads the kernel's own BTF and kallsyms from guest
 *  memory.  Returns the OS found, VMI_OS_UNKNOWN on failure. */
os_t vmi_init_os(vmi_instance_t vmi, vmi_config_t config_mode, void *config,
                 vmi_init_error_t *error);

/** Named offsets, as LibVMI and libvmi.conf spell them: "linux_tasks",
 *  "linux_mm", "linux_pid", "linux_name", "linux_pgd", "linux_kaslr",
 *  "win_tasks", ... */
status_t vmi_get_offset(vmi_instance_t vmi, const char *offset_name,
                        addr_t *offset);
/** The Windows version the OS layer found (from the kernel's build
 *  number); VMI_OS_WINDOWS_NONE for other kernels. */
win_ver_t vmi_get_winver(vmi_instance_t vmi);
/** Its name, e.g. "VMI_OS_WINDOWS_10". */
const char *vmi_get_winver_str(vmi_instance_t vmi);
/** The version a KDBG at physical address kdbg_pa implies (by its size, up
 *  to Windows 8); VMI_OS_WINDOWS_UNKNOWN when it cannot be read. */
win_ver_t vmi_get_winver_manual(vmi_instance_t vmi, addr_t kdbg_pa);
/** The Windows kernel's build number (e.g. 19041), 0 if unknown. */
uint16_t vmi_get_win_buildnumber(vmi_instance_t vmi);
/** Offset of member in the kernel's struct_name ("task_struct", "pid"). */
status_t vmi_get_kernel_struct_offset(vmi_instance_t vmi,
                                      const char *struct_name,
                                      const char *member, addr_t *value);

/** A kernel symbol's (KASLR-adjusted) virtual address. */
status_t vmi_translate_ksym2v(vmi_instance_t vmi, const char *symbol,
                              addr_t *vaddr);
/** A symbol in ctx's address space (the kernel's for pid 0). */
status_t vmi_translate_sym2v(vmi_instance_t vmi, const access_context_t *ctx,
                             const char *symbol, addr_t *vaddr);
/** The kernel symbol at exactly ctx's address (caller frees), or NULL. */
const char *vmi_translate_v2sym(vmi_instance_t vmi,
                                const access_context_t *ctx, addr_t va);
/** The kernel symbol containing va, as "name+0xoff" (caller frees). */
const char *vmi_translate_v2ksym(vmi_instance_t vmi,
                                 const access_context_t *ctx, addr_t va);
/** A user virtual address of process pid to physical. */
status_t vmi_translate_uv2p(vmi_instance_t vmi, addr_t vaddr, vmi_pid_t pid,
                            addr_t *paddr);
/** The page-table root of process pid (the kernel's for pid 0 and for
 *  kernel threads). */
status_t vmi_pid_to_dtb(vmi_instance_t vmi, vmi_pid_t pid, addr_t *dtb);
/** The pid whose page-table root is dtb. */
status_t vmi_dtb_to_pid(vmi_instance_t vmi, addr_t dtb, vmi_pid_t *pid);

/** Reads at a kernel symbol. */
status_t vmi_read_ksym(vmi_instance_t vmi, const char *sym, size_t count,
                       void *buf, size_t *bytes_read);
status_t vmi_read_8_ksym(vmi_instance_t vmi, const char *sym, uint8_t *value);
status_t vmi_read_16_ksym(vmi_instance_t vmi, const char *sym,
                          uint16_t *value);
status_t vmi_read_32_ksym(vmi_instance_t vmi, const char *sym,
                          uint32_t *value);
status_t vmi_read_64_ksym(vmi_instance_t vmi, const char *sym,
                          uint64_t *value);
status_t vmi_read_addr_ksym(vmi_instance_t vmi, const char *sym,
                            addr_t *value);
char *vmi_read_str_ksym(vmi_instance_t vmi, const char *sym);

/** The kernel's symbol table (owned by the instance), or NULL. */
json_object *vmi_get_kernel_json(vmi_instance_t vmi);
status_t vmi_get_symbol_addr_from_json(vmi_instance_t vmi, json_object *json,
                                       const char *symbol, addr_t *addr);
status_t vmi_get_struct_size_from_json(vmi_instance_t vmi, json_object *json,
                                       const char *struct_name,
                                       size_t *size);
status_t vmi_get_struct_member_offset_from_json(vmi_instance_t vmi,
                                                json_object *json,
                                                const char *struct_name,
                                                const char *struct_member,
                                                addr_t *offset);
status_t vmi_get_bitfield_offset_and_size_from_json(
    vmi_instance_t vmi, json_object *json, const char *struct_name,
    const char *struct_member, addr_t *offset, size_t *start_bit,
    size_t *end_bit);

/** Pause and resume the guest (no-ops that succeed on dumps). */
status_t vmi_pause_vm(vmi_instance_t vmi);
status_t vmi_resume_vm(vmi_instance_t vmi);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* LIBVMI_H */
