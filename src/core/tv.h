/*
 * TinyVMI internals shared by the core, the architectures and the drivers.
 *
 * The core (src/core, src/arch) is freestanding: it includes only the
 * compiler's freestanding headers, calls no libc, keeps no global state and
 * allocates only through the instance's allocator hook.  Drivers and tools
 * are hosted code and may use libc.
 */
#ifndef TV_H
#define TV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tinyvmi/tinyvmi.h>

#define TV_HIDDEN __attribute__((visibility("hidden")))
#define TV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Shim: the only "libc" the core uses (src/core/shim.c) ------------- */

void *tv_memcpy(void *dst, const void *src, size_t n);
void *tv_memset(void *dst, int c, size_t n);
int tv_memcmp(const void *a, const void *b, size_t n);
size_t tv_strlen(const char *s);
size_t tv_strnlen(const char *s, size_t max);
int tv_strcmp(const char *a, const char *b);
/* snprintf subset: %s %c %d %i %u %x %X %p %%, with l/ll/z/j sizes, '0' and
 * '-' flags, width and precision (%.*s too).  Always NUL-terminates when
 * size > 0; returns the length the full output would have had. */
size_t tv_fmt(char *buf, size_t size, const char *fmt, ...) TV_PRINTF(3, 4);
size_t tv_vfmt(char *buf, size_t size, const char *fmt, va_list ap);

/* ---- Drivers: capability groups ------------------------------------------ */

/* A range of guest-physical RAM and where the driver keeps it (for file
 * drivers, the file offset of `start`). */
typedef struct tv_range {
    uint64_t start;
    uint64_t size;
    uint64_t offset;
} tv_range_t;

/* Physical memory: required.  The core calls read/write only for spans that
 * lie inside one range; `off` is range->offset + (pa - range->start). */
typedef struct tv_mem_ops {
    int (*read)(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len);
    int (*write)(void *ctx, uint64_t pa, uint64_t off, const void *buf,
                 size_t len); /* NULL: read-only target */
    /* Optional: the bytes themselves, for drivers that hold memory mapped
     * (a dump file, shared guest RAM); NULL if the span cannot be had. */
    const void *(*map)(void *ctx, uint64_t off, size_t len);
} tv_mem_ops_t;

/* vCPU state: optional (a raw dump has none). */
typedef struct tv_vcpu_ops {
    unsigned (*count)(void *ctx);
    int (*get_reg)(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value);
    int (*set_reg)(void *ctx, unsigned vcpu, reg_t reg,
                   uint64_t value); /* NULL: read-only */
    /* Optional: false for registers that cost a slow path (QEMU: the
     * monitor); event snapshots leave those out (0). */
    bool (*cheap)(void *ctx, reg_t reg);
} tv_vcpu_ops_t;

/* Run control: optional (dumps are never running). */
typedef struct tv_ctl_ops {
    int (*pause)(void *ctx);
    int (*resume)(void *ctx);
} tv_ctl_ops_t;

/* Why a guest stopped for the event layer. */
enum tv_stop_kind {
    TV_STOP_OTHER = 0, /* nothing registered caused it (e.g. our own stop) */
    TV_STOP_BREAK,     /* a code breakpoint at addr */
    TV_STOP_WATCH,     /* a watchpoint; addr is the watched address */
    TV_STOP_STEP,      /* a single step finished; addr: the next instruction */
    /* Stops of a hypervisor's monitor (tv_event_ops_t.monitor): */
    TV_STOP_REG,       /* a register write: reg, value, previous (and msr) */
    TV_STOP_CPUID,     /* CPUID at addr: leaf, subleaf, insn_length */
    TV_STOP_GUEST_REQUEST, /* the guest asked for the monitor's attention */
    TV_STOP_DEBUG,     /* a debug exception at addr: insn_length, type */
    TV_STOP_INT3,      /* the guest executed INT3 at addr: insn_length */
    TV_STOP_MEM,       /* an access to gfn at offset (addr: the virtual
                          address when gla_valid), access: VMI_MEMACCESS_* */
};

typedef struct tv_stop {
    int kind;         /* enum tv_stop_kind */
    unsigned vcpu;
    uint64_t addr;
    uint8_t access;   /* TV_STOP_WATCH, TV_STOP_MEM: VMI_MEMACCESS_R, _W... */
    /* Monitor stops: */
    bool have_regs;   /* regs is the vCPU at the stop (no reads needed) */
    bool gla_valid;   /* TV_STOP_MEM: addr holds the virtual address */
    uint8_t type;     /* TV_STOP_DEBUG: the trap type (x86 event type) */
    uint32_t reg;     /* TV_STOP_REG: CR0, CR3, CR4, XCR0, or MSR_ALL for
                         any MSR (msr says which) */
    uint32_t msr;
    uint32_t insn_length;
    uint32_t leaf, subleaf;
    uint64_t value, previous; /* TV_STOP_REG: the new and the old value */
    uint64_t gfn, offset;
    x86_registers_t regs;
} tv_stop_t;

/* What a hypervisor's monitor watches (tv_event_ops_t.monitor). */
enum tv_monitor_kind {
    TV_MON_CR,            /* writes to arg: CR0, CR3, CR4 or XCR0 */
    TV_MON_MSR,           /* writes to the MSR whose index is arg */
    TV_MON_CPUID,
    TV_MON_GUEST_REQUEST,
    TV_MON_DEBUG,         /* debug exceptions (#DB: DR breakpoints...) */
    TV_MON_INT3,          /* the guest's INT3 instructions */
    TV_MON_STEP,          /* single steps of the vCPUs in arg (bit i) */
    TV_MON_MEM,           /* accesses (access) to the page arg (a gfn) */
};

typedef struct tv_monitor {
    int kind;             /* enum tv_monitor_kind */
    uint64_t arg;
    uint8_t access;       /* TV_MON_MEM: VMI_MEMACCESS_* that stop */
    bool onchange;        /* TV_MON_CR, _MSR: only writes that change it */
    bool async;           /* deliver without holding the vCPU */
} tv_monitor_t;

/* What the callbacks asked for a monitor stop (tv_event_ops_t.reply). */
typedef struct tv_reply {
    uint32_t rsp;                 /* VMI_EVENT_RESPONSE_* */
    const x86_registers_t *regs;  /* VMI_EVENT_RESPONSE_SET_REGISTERS */
    bool reinject;                /* TV_STOP_INT3, _DEBUG: the guest gets
                                     the trap */
} tv_reply_t;

/* Events: optional (live targets).  Debuggers (QEMU's gdbstub) give
 * breakpoint/watchpoint/step, hypervisors (Xen's vm_event) give monitor;
 * an op a driver lacks is NULL and what needs it is refused.  Addresses
 * are virtual, in the address space the stopped vCPU runs in (kernel
 * addresses work from every vCPU). */
typedef struct tv_event_ops {
    int (*breakpoint)(void *ctx, uint64_t va, bool on);
    /* access: VMI_MEMACCESS_R, _W or _RW; ENOTSUP for what the backend
     * cannot watch (e.g. length) */
    int (*watchpoint)(void *ctx, uint64_t va, uint64_t len, uint8_t access,
                      bool on);
    /* vCPUs (bit i: vCPU i) that single-step from the next run on. */
    int (*step)(void *ctx, uint64_t vcpus);
    /* Lets the guest run (unless paused) until something stops it or
     * timeout_ms passes (TINYVMI_ETIMEDOUT).  After a stop the guest (or
     * the stopped vCPU) is held until release. */
    int (*wait)(void *ctx, int timeout_ms, tv_stop_t *stop);
    int (*release)(void *ctx);
    /* Whether a stop is already waiting to be collected. */
    bool (*pending)(void *ctx);
    /* Starts (on) or stops watching what m says; ENOTSUP with a reason
     * naming the missing capability when the host cannot deliver it. */
    int (*monitor)(void *ctx, const tv_monitor_t *m, bool on);
    /* The answer to the stop being held, given before release (NULL: the
     * core applies responses itself through the vCPU ops). */
    int (*reply)(void *ctx, const tv_reply_t *r);
} tv_event_ops_t;

typedef struct tv_driver {
    const char *name;     /* format or platform: "raw", "elf", "lime" */
    void *ctx;            /* the driver's own state */
    const tv_mem_ops_t *mem;
    const tv_vcpu_ops_t *vcpu; /* NULL: no vCPU state */
    const tv_ctl_ops_t *ctl;   /* NULL: no run control */
    const tv_event_ops_t *ev;  /* NULL: no debug events */
    void (*close)(void *ctx);
    const tv_range_t *ranges;  /* sorted by start, non-overlapping */
    size_t nranges;
    vmi_arch_t arch;           /* what the target says it is, if it does */
    uint64_t id;               /* the hypervisor's id for the guest (Xen's
                                  domid); VMI_INVALID_DOMID if none */
} tv_driver_t;

/* ---- Architectures as data (src/arch) ------------------------------------ */

#define TV_PT_MAX_LEVELS 6

typedef struct tv_pt_level {
    uint8_t shift;     /* lowest VA bit of this level's index */
    uint8_t bits;      /* index width */
    uint8_t can_large; /* an entry here may map a page (PS bit) */
    char name[7];      /* "PML4E", "PDE", ... */
} tv_pt_level_t;

struct vmi_instance;

/* One descriptor as a format's decode hook reads it. */
enum { TV_PTE_INVALID, TV_PTE_TABLE, TV_PTE_PAGE };
typedef struct tv_pte {
    uint8_t kind;      /* TV_PTE_* */
    uint8_t size_log2; /* TV_PTE_PAGE: the page is 1 << size_log2 bytes */
    uint64_t addr;     /* TABLE: the next table; PAGE: the page's base */
} tv_pte_t;

typedef struct tv_pt_format {
    const char *name;   /* "IA-32e" */
    page_mode_t mode;
    uint8_t nlevels;
    uint8_t pte_size;   /* 4 or 8 bytes */
    uint8_t va_bits;    /* 32, 48 or 57: higher VA bits must sign-extend
                           (split formats: the VA range of this half) */
    uint8_t addr_width; /* guest pointer size in bytes */
    uint64_t root_mask; /* bits of the DTB that locate the top table */
    uint64_t table_mask; /* bits of an entry that locate the next table */
    uint64_t present;   /* bit that marks an entry present */
    uint64_t large;     /* bit that marks a page at a can_large level */
    tv_pt_level_t level[TV_PT_MAX_LEVELS]; /* top level first */
    /* Physical base of a large page mapped by entry at level lvl; NULL:
     * the entry's table_mask bits above the page offset. */
    uint64_t (*large_base)(uint64_t entry, unsigned lvl);
    /* The rest is for ARM; x86 leaves it zero. */
    /* Kind, size and address of an entry at level lvl; NULL: the x86 rule
     * (present bit, large bit at can_large levels, the last level maps). */
    void (*decode)(const struct tv_pt_format *fmt, unsigned lvl,
                   uint64_t entry, tv_pte_t *out);
    /* Top table from the (root_mask'ed) DTB; NULL: the DTB itself. */
    uint64_t (*root)(uint64_t dtb);
    /* Entry bits [from+n-1:from] are output-address bits [to+n-1:to]
     * (ARM's 52-bit addresses); n 0: none. */
    struct { uint8_t from, to, n; } oa_hi;
    /* Two VA ranges (ARM's TTBR0/TTBR1): this format is the low range,
     * VAs below 2^va_bits; hi describes the high range, the top
     * 2^hi->va_bits bytes of the addr_width space, and takes precedence
     * where the two overlap (AArch32 LPAE).  hi->hi is not used.  NULL:
     * one range, canonical by sign extension (x86). */
    const struct tv_pt_format *hi;
} tv_pt_format_t;

typedef struct tv_walk_entry {
    uint64_t location; /* physical address of the entry */
    uint64_t value;
} tv_walk_entry_t;

typedef struct tv_walk {
    uint64_t va;
    uint64_t pa;        /* valid when the walk succeeded */
    uint64_t page_size; /* bytes mapped by the final entry */
    unsigned nentries;  /* entries read, top level first */
    tv_walk_entry_t entry[TV_PT_MAX_LEVELS];
} tv_walk_t;

/* The format for a page mode, or NULL. */
const tv_pt_format_t *tv_pt_format(page_mode_t mode);
/* The same that also maps Windows' transition PTEs (PAE and IA-32e; NULL
 * for other modes): LibVMI's VMI_PM_INITFLAG_TRANSITION_PAGES. */
const tv_pt_format_t *tv_pt_format_transition(page_mode_t mode);
/* Walks fmt's tables rooted at dtb for va.  Fills *w as far as it got, even
 * on failure; failures set the instance's last error. */
int tv_pt_walk(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
               uint64_t dtb, uint64_t va, tv_walk_t *w);
/* The same with the two roots of a split format (ARM's TTBR0 and TTBR1):
 * the VA's range picks the root.  tv_pt_walk uses its one dtb for both, as
 * LibVMI does (the caller passes the root of the half it asks about). */
int tv_pt_walk_pair(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                    uint64_t ttbr0, uint64_t ttbr1, uint64_t va,
                    tv_walk_t *w);
/* Calls cb with each virtual address at or above lo that fmt's tables at
 * dtb map onto physical address pa (cb returns nonzero to stop).  Reads at
 * most 4M entries: hostile tables end in TINYVMI_ERANGE, not a hang. */
int tv_pt_reverse(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                  uint64_t dtb, uint64_t pa, uint64_t lo,
                  int (*cb)(void *arg, uint64_t va, uint64_t page_size),
                  void *arg);
/* ARM formats (src/arch/arm.c).  AArch64 ones are named by granule and VA
 * bits (T0SZ = T1SZ = 64 - VA bits; the 52-bit ones also take 52-bit
 * output addresses: FEAT_LPA2 for 4K/16K, FEAT_LPA for 64K); both ranges
 * use the same layout.  A caller with different TTBR0/TTBR1 layouts copies
 * one and points .hi at another. */
typedef enum tv_pt_arm {
    TV_PT_A64_4K_39, TV_PT_A64_4K_48, TV_PT_A64_4K_52,
    TV_PT_A64_16K_47, TV_PT_A64_16K_48, TV_PT_A64_16K_52,
    TV_PT_A64_64K_42, TV_PT_A64_64K_48, TV_PT_A64_64K_52,
    TV_PT_A32_SHORT,     /* short descriptors, TTBCR.N = 0 */
    TV_PT_A32_LPAE,      /* long descriptors, T0SZ = T1SZ = 0: TTBR0 only */
    TV_PT_A32_LPAE_3G1G, /* T0SZ = 0, T1SZ = 2: TTBR1 maps the top 1 GiB */
    TV_PT_ARM_COUNT
} tv_pt_arm_t;
const tv_pt_format_t *tv_pt_arm_format(tv_pt_arm_t which);
/* The AArch64 format for a granule (12, 14 or 16) and VA size, or NULL. */
const tv_pt_format_t *tv_pt_arm64_format(unsigned granule_shift,
                                         unsigned va_bits);
/* The formats a TCR_EL1 (AArch64) or TTBCR (AArch32) value selects:
 * out[0] the TTBR0 range, out[1] the TTBR1 range (out[0].hi points to
 * out[1]; AArch32 with one range: out[0].hi to itself).  EFORMAT: a
 * reserved granule; ERANGE: a TnSZ the granule cannot map; ENOTSUP:
 * AArch32 splits Linux does not use (TTBCR.N > 0, T0SZ > 0 = T1SZ). */
int tv_pt_arm64_from_tcr(uint64_t tcr, tv_pt_format_t out[2]);
int tv_pt_arm32_from_ttbcr(uint64_t ttbcr, tv_pt_format_t out[2]);

/* The instance's paging: fmt and the kernel's page-table root (src/core/
 * api.c).  For formats no page mode alone names (ARM's granules and
 * splits); tinyvmi_set_paging takes a mode. */
int tv_set_paging_fmt(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                      uint64_t dtb);
/* From now on follow Windows' transition PTEs (set_paging picks the
 * variant), switching the format in use if paging is already set. */
void tv_paging_transition(struct vmi_instance *vmi);
/* Paging mode from x86 control registers (VMI_PM_NONE when CR0.PG is 0). */
page_mode_t tv_x86_page_mode(uint64_t cr0, uint64_t cr4, uint64_t efer);

/* ---- Translation cache (src/core/cache.c) --------------------------------- */

typedef struct tv_v2p_slot {
    uint64_t tag;   /* va >> 12; live only when gen matches */
    uint64_t dtb;
    uint64_t pa;    /* physical address of the 4 KiB page */
    uint64_t span;  /* bytes from the page start that stay contiguous */
    uint32_t gen;
} tv_v2p_slot_t;

typedef struct tv_v2p_cache {
    tv_v2p_slot_t *slot;
    size_t nslots;  /* power of two */
    uint32_t gen;   /* bumping it empties the cache in O(1) */
    bool enabled;
    tinyvmi_cache_stats_t stats;
} tv_v2p_cache_t;

/* lookup/insert speak of va itself: *pa is va's physical address and *span
 * the bytes from va on that stay physically contiguous (to the end of the
 * page that maps va); the cache normalises to 4 KiB slots inside. */
int tv_cache_init(struct vmi_instance *vmi, size_t nslots);
void tv_cache_free(struct vmi_instance *vmi);
bool tv_cache_lookup(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t *pa, uint64_t *span);
void tv_cache_insert(tv_v2p_cache_t *c, uint64_t dtb, uint64_t va,
                     uint64_t pa, uint64_t span);
void tv_cache_flush(tv_v2p_cache_t *c);

/* ---- The instance ---------------------------------------------------------- */

#define TV_ERRMSG_MAX 256

struct vmi_instance {
    tinyvmi_hooks_t hooks;
    vmi_mode_t mode;
    char name[256]; /* the domain's name or the dump's path */
    tv_driver_t drv;
    bool have_drv;

    uint64_t memsize; /* bytes of RAM over all ranges */
    uint64_t max_pa;  /* one past the last RAM byte */

    page_mode_t page_mode;
    const tv_pt_format_t *pt; /* NULL until paging is set up */
    tv_pt_format_t pt_arm[2]; /* ARM formats built from TCR/TTBCR */
    bool transition;          /* follow Windows' transition PTEs */
    uint64_t kdtb;            /* kernel page-table root */
    /* ARM: TTBR0, walked for the low range when a split format's kernel
     * root (kdtb, TTBR1) is asked about a low address; 0: none (kdtb
     * serves both ranges, LibVMI's convention). */
    uint64_t kdtb_lo;
    tv_v2p_cache_t v2p;

    os_t os;
    const struct tv_os_ops *osops; /* NULL until an OS layer started */
    void *osdata;                  /* the OS layer's state */
    struct tv_symtab *symtab;      /* kernel symbols and types (owned) */
    int64_t slide;                 /* live address - table address */
    uint64_t slide_from;           /* table addresses below this (per-cpu
                                      offsets, absolute symbols) do not
                                      move with the kernel */
    tinyvmi_kernel_t kinfo;

    struct tv_events *events; /* registered events (src/core/event.c) */

    int last_status;
    char last_error[TV_ERRMSG_MAX];
    /* Nonzero while a scan probes addresses that mostly fail: failures
     * keep their status but skip formatting a message (tv_quiet). */
    unsigned quiet;
};

/* ---- OS layers (src/os) ---------------------------------------------------- */

typedef struct tv_os_ops {
    const char *name;
    os_t type;
    void (*fini)(struct vmi_instance *vmi);
    int (*processes)(struct vmi_instance *vmi, tinyvmi_process_cb cb,
                     void *arg);
    int (*modules)(struct vmi_instance *vmi, tinyvmi_module_cb cb, void *arg);
    /* The process a vCPU runs now (the guest must stand still). */
    int (*current)(struct vmi_instance *vmi, unsigned vcpu,
                   tinyvmi_process_t *out);
    /* LibVMI's named offsets ("linux_tasks", ...); ENOENT if unknown. */
    int (*offset)(struct vmi_instance *vmi, const char *name,
                  uint64_t *value);
} tv_os_ops_t;

/* Options from a config entry that the OS layers honour. */
typedef struct tv_os_hints {
    os_t os;                    /* VMI_OS_UNKNOWN: find out */
    const char *const *offset_names; /* NULL-terminated, with values: */
    const uint64_t *offset_values;
} tv_os_hints_t;

/* Starts the Linux layer with a finished symbol table (owned from then on,
 * also on failure), or NULL to read the kernel's BTF and kallsyms from
 * guest memory. */
int tv_linux_init(struct vmi_instance *vmi, struct tv_symtab *tab,
                  const tv_os_hints_t *hints);
/* Starts the Windows layer with a profile (owned from then on, also on
 * failure) and what start-up knows (struct tv_win_start, os/windows/win.h;
 * NULL: nothing). */
struct tv_win_start;
int tv_windows_init(struct vmi_instance *vmi, struct tv_symtab *tab,
                    const tv_os_hints_t *hints,
                    const struct tv_win_start *start);
/* Stops the OS layer and frees its table. */
void tv_os_fini(struct vmi_instance *vmi);
/* pid -> page-table root through the OS layer. */
int tv_os_pid_dtb(struct vmi_instance *vmi, vmi_pid_t pid, uint64_t *dtb);
/* Kernel symbol -> live address. */
int tv_os_ksym(struct vmi_instance *vmi, const char *name, uint64_t *va);
/* A table address to a live one and back, applying the slide where it
 * applies. */
uint64_t tv_os_live(const struct vmi_instance *vmi, uint64_t table_addr);
uint64_t tv_os_unlive(const struct vmi_instance *vmi, uint64_t live_addr);

/* A set of visited addresses: the OS layers' list walks use it to stop at
 * cycles (src/os/os.c). */
typedef struct tv_visit {
    uint64_t *slot;
    size_t cap, n;
} tv_visit_t;
/* 1: newly added, 0: seen before, <0: error (ENOMEM). */
int tv_visit_add(struct vmi_instance *vmi, tv_visit_t *v, uint64_t addr);
void tv_visit_free(struct vmi_instance *vmi, tv_visit_t *v);

/* A ring of list links in guest memory (Linux's list_head, Windows'
 * LIST_ENTRY): from head, each link's container is link - link.  Walked
 * with cycle detection and at most max entries; a loop, an unreadable link
 * or too many entries end the walk with an error after delivering what was
 * read (src/os/os.c). */
typedef struct tv_ring {
    uint64_t head, link;
    bool include_head;  /* the head is itself a container's link */
    uint32_t max;
    const char *layer;  /* "linux": the log's prefix */
    const char *what;   /* "task": the messages' subject */
    int (*read_ptr)(struct vmi_instance *vmi, uint64_t va, uint64_t *v);
    /* Nonzero stops the walk. */
    int (*visit)(struct vmi_instance *vmi, uint64_t container, void *arg);
    void *arg;
} tv_ring_t;
int tv_os_walk_ring(struct vmi_instance *vmi, const tv_ring_t *r);

/* Frees the event registry (the driver drops its breakpoints itself). */
void tv_events_free(struct vmi_instance *vmi);
/* vCPU vcpu's registers in LibVMI's x86 layout (what the target lacks is
 * 0); the guest is held still for the reads.  !all: only the registers the
 * driver reads cheaply (event snapshots). */
int tv_vcpu_x86_regs(struct vmi_instance *vmi, unsigned vcpu,
                     x86_registers_t *out, bool all);
/* Writes the registers of want that differ from now. */
int tv_vcpu_x86_set(struct vmi_instance *vmi, unsigned vcpu,
                    const x86_registers_t *now, const x86_registers_t *want);

/* Creates an instance with the given hooks (a NULL alloc is refused). */
int tv_instance_new(const tinyvmi_hooks_t *hooks, struct vmi_instance **out);
/* Adopts drv (copies it) and derives memsize/max_pa from its ranges,
 * checking they are sorted and disjoint. */
int tv_instance_attach(struct vmi_instance *vmi, const tv_driver_t *drv);
void tv_instance_free(struct vmi_instance *vmi);

/* Allocation through the hooks. */
void *tv_alloc(struct vmi_instance *vmi, size_t size);
void *tv_calloc(struct vmi_instance *vmi, size_t n, size_t size);
void tv_free(struct vmi_instance *vmi, void *p, size_t size);

/* Records a failure (status and formatted reason) and returns status.
 * vmi->last_error may be passed as an argument to wrap the last reason. */
int tv_fail(struct vmi_instance *vmi, int status, const char *fmt, ...)
    TV_PRINTF(3, 4);
/* Quiet failures on (true) or off (false), nesting; a scan's own final
 * message is formatted after it is off again. */
static inline void tv_quiet(struct vmi_instance *vmi, bool on)
{
    if (on)
        vmi->quiet++;
    else if (vmi->quiet)
        vmi->quiet--;
}
/* Logs at a level (0 error, 1 warning, 2 info, 3 debug). */
void tv_log(struct vmi_instance *vmi, int level, const char *fmt, ...)
    TV_PRINTF(3, 4);

/* ---- Memory (src/core/mem.c) ------------------------------------------------ */

/* The range holding pa, or NULL. */
const tv_range_t *tv_range_find(const struct vmi_instance *vmi, uint64_t pa);
/* Reads/writes exactly len bytes of physical memory, across ranges; fails
 * with EUNMAPPED at the first byte not backed by RAM.  *done (optional)
 * gets the bytes transferred before the failure. */
int tv_read_pa(struct vmi_instance *vmi, uint64_t pa, void *buf, size_t len,
               size_t *done);
int tv_write_pa(struct vmi_instance *vmi, uint64_t pa, const void *buf,
                size_t len, size_t *done);
/* len bytes at pa in place, when they lie in one range and the driver
 * maps its memory; NULL otherwise (then read them). */
const void *tv_map_pa(struct vmi_instance *vmi, uint64_t pa, size_t len);
/* One walk through dtb, or, when dtb is the kernel's ARM root and TTBR0 is
 * known, through the root of va's range (no cache). */
int tv_walk_dtb(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                uint64_t dtb, uint64_t va, tv_walk_t *w);
/* Virtual -> physical through dtb (fmt NULL: the instance's), with the
 * cache.  *span (optional) gets how many bytes from va on are contiguous. */
int tv_translate(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                 uint64_t dtb, uint64_t va, uint64_t *pa, uint64_t *span);
int tv_read_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
               uint64_t dtb, uint64_t va, void *buf, size_t len,
               size_t *done);
int tv_write_va(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                uint64_t dtb, uint64_t va, const void *buf, size_t len,
                size_t *done);

/* Little-endian loads (guest memory is little-endian on every target). */
static inline uint16_t tv_le16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t tv_le32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}
static inline uint64_t tv_le64(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)tv_le32(b) | ((uint64_t)tv_le32(b + 4) << 32);
}

#endif /* TV_H */
