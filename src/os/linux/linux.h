/*
 * The Linux OS layer's internals, shared by its files: what was found out
 * about the kernel (kernel.c) and the offsets the walks use (walk.c).
 */
#ifndef TV_OS_LINUX_H
#define TV_OS_LINUX_H

#include "core/tv.h"
#include "profile/symtab.h"

/* x86-64's kernel text mapping: __START_KERNEL_map and the 1 GiB
 * KERNEL_IMAGE_SIZE that KASLR randomises the kernel within; modules
 * follow it.  Architecture constants, not guest facts. */
#define LX_X64_KMAP_START 0xffffffff80000000ULL
#define LX_X64_KMAP_END 0xffffffffc0000000ULL

/* Upper bounds for walks over guest-written lists. */
#define LX_MAX_TASKS (1u << 22)   /* PID_MAX_LIMIT */
#define LX_MAX_MODULES 65536u

typedef struct lx_offsets {
    /* task_struct */
    uint64_t tasks, pid, tgid, comm, mm, real_parent, flags;
    uint32_t comm_len;
    /* a kernel thread's full name: task->worker_private (or, before 5.19,
     * set_child_tid) points to its struct kthread, whose full_name procfs
     * shows instead of comm; UINT64_MAX when the kernel has none */
    uint64_t kthread_ptr, kthread_full_name, kthread_threadfn;
    /* workqueue workers' thread functions (live addresses, 0 if unknown):
     * procfs names those by comm and workqueue, not by full_name */
    uint64_t wq_fn[2];
    /* mm_struct */
    uint64_t pgd;
    /* module */
    uint64_t mod_list, mod_name;
    uint32_t mod_name_len;
    bool mod_mem;           /* 6.4+: mem[] of module_memory */
    uint64_t mod_base;      /* offset of the text base pointer */
    uint64_t mod_size[8];   /* offsets of the sizes /proc/modules adds */
    uint32_t mod_nsizes;
    uint8_t mod_size_width; /* bytes of each size field */
} lx_offsets_t;

typedef struct lx {
    lx_offsets_t off;
    bool have_tasks, have_modules;
    uint64_t init_task; /* live addresses */
    uint64_t modules;
    /* The kernel image as mapped (size 0: unknown): where its data is
     * searched when the symbol table lacks data symbols. */
    uint64_t image_va, image_pa, image_size;
    char banner[256];
    char release[65];
} lx_t;

/* walk.c */
int lx_offsets(struct vmi_instance *vmi, lx_t *lx,
               const tv_os_hints_t *hints);
int lx_processes(struct vmi_instance *vmi, tinyvmi_process_cb cb, void *arg);
int lx_modules(struct vmi_instance *vmi, tinyvmi_module_cb cb, void *arg);
int lx_current(struct vmi_instance *vmi, unsigned vcpu,
               tinyvmi_process_t *out);
int lx_offset(struct vmi_instance *vmi, const char *name, uint64_t *value);

/* search.c: data the symbol table does not name (arm64's kallsyms lists
 * text only), found in the image's own bytes and proven by its links. */
int lx_search_init_task(struct vmi_instance *vmi, lx_t *lx);
int lx_search_modules(struct vmi_instance *vmi, lx_t *lx);

#endif
