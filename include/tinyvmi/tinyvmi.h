/*
 * TinyVMI's additions to the LibVMI-compatible API: error reporting with a
 * reason, allocator and log hooks, and a view of the target's layout.
 * Include after (or instead of) <libvmi/libvmi.h>.
 */
#ifndef TINYVMI_H
#define TINYVMI_H

#include <libvmi/libvmi.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Status codes: 0 is success, failures are negative. */
#define TINYVMI_ERRORS(X)                                         \
    X(OK, 0, "success")                                           \
    X(ENOMEM, -1, "out of memory")                                \
    X(EINVAL, -2, "invalid argument")                             \
    X(ENOTSUP, -3, "not supported")                               \
    X(EIO, -4, "I/O error")                                       \
    X(EFORMAT, -5, "malformed input")                             \
    X(ETRUNC, -6, "truncated input")                              \
    X(EUNMAPPED, -7, "address not mapped")                        \
    X(ENONCANON, -8, "non-canonical address")                     \
    X(ERANGE, -9, "out of range")                                 \
    X(ENOENT, -10, "not found")                                   \
    X(ELOOP, -11, "cycle or runaway structure")                   \
    X(ESTATE, -12, "not ready: a required step was not done")     \
    X(ETIMEDOUT, -13, "timed out")

enum tinyvmi_status {
#define TINYVMI_ENUM_(name, value, text) TINYVMI_##name = value,
    TINYVMI_ERRORS(TINYVMI_ENUM_)
#undef TINYVMI_ENUM_
};

/** A short description of a status code. */
const char *tinyvmi_strerror(int status);
/** The status code's name, e.g. "EUNMAPPED". */
const char *tinyvmi_err_name(int status);

/** The status of the instance's last failed call (0 if none failed). */
int tinyvmi_last_status(vmi_instance_t vmi);
/** What the last failed call found wrong and where, e.g.
 *  "0xffff888000000000 not mapped (PML4E 0x1234 not present)". */
const char *tinyvmi_last_error(vmi_instance_t vmi);

/** Why the calling thread's last vmi_init/vmi_init_complete failed (the
 *  instance is gone by then, so its last error is kept here). */
const char *tinyvmi_init_error(void);

/** Allocator: Lua-style.  Called with (ctx, ptr, old_size, new_size): new
 *  size 0 frees ptr and returns NULL; otherwise (re)allocates.  Log: gets
 *  each message the library logs, with a level (0 error .. 3 debug). */
typedef void *(*tinyvmi_alloc_fn)(void *ctx, void *ptr, size_t old_size,
                                  size_t new_size);
typedef void (*tinyvmi_log_fn)(void *ctx, int level, const char *msg);

typedef struct tinyvmi_hooks {
    uint32_t version; /**< TINYVMI_HOOKS_VERSION */
    tinyvmi_alloc_fn alloc;
    void *alloc_ctx;
    tinyvmi_log_fn log;
    void *log_ctx;
    int log_level; /**< highest level passed to log */
} tinyvmi_hooks_t;

#define TINYVMI_HOOKS_VERSION 1

/** A range of guest-physical memory backed by RAM. */
typedef struct tinyvmi_range {
    uint64_t start; /**< first guest-physical address */
    uint64_t size;  /**< bytes */
} tinyvmi_range_t;

/** The target's format ("raw", "elf", "lime", ...). */
const char *tinyvmi_format(vmi_instance_t vmi);
/** Number of RAM ranges; range i is copied to *out (returns VMI_FAILURE for
 *  a bad index). */
size_t tinyvmi_range_count(vmi_instance_t vmi);
status_t tinyvmi_range_get(vmi_instance_t vmi, size_t i, tinyvmi_range_t *out);

/** Sets the page mode and kernel page-table root by hand, e.g. for a raw
 *  dump that carries no registers.  Flushes cached translations. */
status_t tinyvmi_set_paging(vmi_instance_t vmi, page_mode_t mode, addr_t dtb);
/** ARM paging by hand: the translation regime that mode's control register
 *  selects (VMI_PM_AARCH64: TCR_EL1's granules and T0SZ/T1SZ, 52-bit
 *  addresses with DS or IPS; VMI_PM_AARCH32: TTBCR's short descriptors or
 *  LPAE split) and both roots.  The kernel's root (vmi_translate_kv2p,
 *  tinyvmi_kernel_info's dtb) is TTBR1, or TTBR0 where one range maps
 *  everything (AArch32 short descriptors, LPAE with T1SZ 0); kernel
 *  translations of low addresses walk TTBR0 (0: TTBR1's table for both,
 *  as LibVMI does).  Other dtbs given to the walk serve both ranges. */
status_t tinyvmi_set_paging_arm(vmi_instance_t vmi, page_mode_t mode,
                                uint64_t tcr, addr_t ttbr0, addr_t ttbr1);

/** The page mode's name ("IA-32e", "LA57", "PAE", ...). */
const char *tinyvmi_page_mode_name(page_mode_t mode);

/** Translation cache statistics (for benchmarks and tests). */
typedef struct tinyvmi_cache_stats {
    uint64_t hits, misses, flushes;
} tinyvmi_cache_stats_t;
void tinyvmi_cache_stats(vmi_instance_t vmi, tinyvmi_cache_stats_t *out);
/** Turns the translation cache on (default) or off. */
void tinyvmi_cache_enable(vmi_instance_t vmi, int on);

/* ---- Windows crash dumps ---------------------------------------------------- */

/** What a Windows crash dump's header records (addresses as the kernel
 *  saw them). */
typedef struct tinyvmi_crashdump {
    uint32_t version;      /**< TINYVMI_CRASHDUMP_VERSION */
    const char *kind;      /**< "full", "bitmap (kernel)", "bitmap
                                (complete)", "triage" */
    uint32_t dump_type;    /**< DumpType as stored */
    uint32_t machine;      /**< IMAGE_FILE_MACHINE_*: 0x14c x86, 0x8664
                                x64, 0xaa64 ARM64 */
    uint32_t major, minor; /**< MajorVersion, MinorVersion (the build) */
    uint32_t nprocessors;
    addr_t dtb;            /**< DirectoryTableBase */
    addr_t pfn_database;
    addr_t ps_loaded_module_list;
    addr_t ps_active_process_head;
    addr_t kd_debugger_data_block;
    uint32_t bugcheck_code;
    uint64_t bugcheck_param[4];
    uint64_t system_time;  /**< FILETIME: 100 ns since 1601 */
    int pae;               /**< 32-bit dumps: PAE paging */
    size_t triage_blocks;  /**< triage: kernel memory blocks saved */
    uint32_t triage_drivers; /**< triage: entries in the driver list */
} tinyvmi_crashdump_t;
#define TINYVMI_CRASHDUMP_VERSION 1
/** Fails unless the target is a Windows crash dump. */
status_t tinyvmi_crashdump_info(vmi_instance_t vmi, tinyvmi_crashdump_t *out);
/** A triage dump holds no physical memory, only kernel memory saved by
 *  virtual address (and a copy of the KDBG at KdDebuggerDataBlock): reads
 *  exactly len bytes of it; an address it did not save fails (the reason
 *  in tinyvmi_last_error), *bytes_read says how far it got. */
status_t tinyvmi_crashdump_read_va(vmi_instance_t vmi, addr_t va, void *buf,
                                   size_t len, size_t *bytes_read);

/* ---- Breakpoints ------------------------------------------------------------ */

/** Plants a breakpoint the guest cannot see at virtual address va (QEMU:
 *  a gdbstub breakpoint; no byte of guest memory changes).  Each hit is
 *  delivered to the registered INT3 interrupt event (VMI_EVENT_INTERRUPT)
 *  with interrupt_event.gla = va and insn_length 0, and the guest then
 *  goes on past the instruction.  dtb 0: hits in any address space; else
 *  only where CR3 is that page-table root. */
status_t tinyvmi_set_breakpoint(vmi_instance_t vmi, addr_t va, addr_t dtb);
status_t tinyvmi_clear_breakpoint(vmi_instance_t vmi, addr_t va);
/** The same at a physical address: planted at every kernel virtual address
 *  that maps it (up to 16); interrupt_event.gfn/offset name pa. */
status_t tinyvmi_set_breakpoint_pa(vmi_instance_t vmi, addr_t pa);
status_t tinyvmi_clear_breakpoint_pa(vmi_instance_t vmi, addr_t pa);

/* ---- The OS layer ------------------------------------------------------------ */

/** What the OS layer found out about the kernel. */
typedef struct tinyvmi_kernel {
    uint32_t version;      /**< TINYVMI_KERNEL_VERSION */
    os_t os;
    addr_t text_va;        /**< the kernel's first text address (_text) */
    addr_t text_pa;        /**< where it is in physical memory */
    int64_t slide;         /**< KASLR: live address - profile address (0
                                when symbols come from guest memory) */
    addr_t dtb;            /**< the kernel's own page-table root */
    page_mode_t page_mode;
    const char *source;    /**< "isf", "rekall", "btf+kallsyms", ... */
    const char *release;   /**< e.g. "6.1.0-56-amd64", or "" */
    const char *banner;    /**< "Linux version ..." as read from memory */
    size_t nsymbols;       /**< symbols in the table */
    size_t ntypes;         /**< types in the table */
} tinyvmi_kernel_t;
#define TINYVMI_KERNEL_VERSION 1
status_t tinyvmi_kernel_info(vmi_instance_t vmi, tinyvmi_kernel_t *out);

/** A process (a thread-group leader) as the kernel's task list has it. */
typedef struct tinyvmi_process {
    vmi_pid_t pid;
    vmi_pid_t ppid;        /**< the real parent's tgid (-1 if unreadable) */
    char name[64];         /**< comm / ImageFileName, NUL-terminated */
    addr_t task;           /**< task_struct / EPROCESS address */
    addr_t dtb;            /**< page-table root (the kernel's for threads
                                without an address space) */
    int kernel_thread;     /**< 1: no user address space */
    uint64_t flags;        /**< task_struct.flags (Linux) */
    addr_t peb;            /**< Windows: EPROCESS.Peb (0: none, as for
                                System and other kernel-only processes) */
    uint64_t create_time;  /**< Windows: EPROCESS.CreateTime (FILETIME,
                                100 ns since 1601; 0 if unknown) */
} tinyvmi_process_t;
/** Calls cb for each process in list order; cb returns nonzero to stop.
 *  A corrupt list (a loop, an unmapped entry) ends the walk with a warning
 *  in the log and tinyvmi_last_error(); what was walked is delivered. */
typedef int (*tinyvmi_process_cb)(void *arg, const tinyvmi_process_t *p);
status_t tinyvmi_processes(vmi_instance_t vmi, tinyvmi_process_cb cb,
                           void *arg);

/** The process vCPU vcpu is running now (a live guest is held still for
 *  the reads).  Threads report their thread group's pid. */
status_t tinyvmi_current_process(vmi_instance_t vmi, unsigned long vcpu,
                                 tinyvmi_process_t *out);

/** A loaded kernel module. */
typedef struct tinyvmi_module {
    char name[64];
    addr_t base;           /**< start of its core text */
    uint64_t size;         /**< bytes, as /proc/modules counts them */
    addr_t addr;           /**< struct module / LDR entry address */
} tinyvmi_module_t;
typedef int (*tinyvmi_module_cb)(void *arg, const tinyvmi_module_t *m);
status_t tinyvmi_modules(vmi_instance_t vmi, tinyvmi_module_cb cb, void *arg);

/** Kernel symbols in address order (live addresses). */
typedef int (*tinyvmi_symbol_cb)(void *arg, const char *name, addr_t addr,
                                 char type);
status_t tinyvmi_symbols(vmi_instance_t vmi, tinyvmi_symbol_cb cb, void *arg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TINYVMI_H */
