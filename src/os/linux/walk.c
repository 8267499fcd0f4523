/*
 * Linux's task and module lists.  The offsets come from the symbol table
 * (or a config entry's linux_* values); the lists are guest-written, so
 * each walk is bounded, checks every pointer and stops at a cycle.
 */
#include "os/linux/linux.h"

#define MODULE_NAME_MAX 64

/* A config value named key, if the hints have one. */
static bool hint(const tv_os_hints_t *h, const char *key, uint64_t *v)
{
    if (!h || !h->offset_names)
        return false;
    for (size_t i = 0; h->offset_names[i]; i++)
        if (!tv_strcmp(h->offset_names[i], key)) {
            *v = h->offset_values[i];
            return true;
        }
    return false;
}

static bool member(struct vmi_instance *vmi, const char *type,
                   const char *path, uint64_t *off, tv_member_t *m)
{
    tv_member_t tmp;
    if (!m)
        m = &tmp;
    if (!tv_symtab_member(vmi->symtab, type, path, m))
        return false;
    *off = m->offset;
    return true;
}

/* An offset from the config, else from the table; missing is an error. */
static int need(struct vmi_instance *vmi, const tv_os_hints_t *h,
                const char *key, const char *type, const char *path,
                uint64_t *off, tv_member_t *m)
{
    if (hint(h, key, off))
        return TINYVMI_OK;
    if (member(vmi, type, path, off, m))
        return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_ENOENT, "the symbol table has no %s.%s%s%s",
                   type, path, key ? " and the config no " : "",
                   key ? key : "");
}

static int task_offsets(struct vmi_instance *vmi, lx_t *lx,
                        const tv_os_hints_t *h)
{
    lx_offsets_t *o = &lx->off;
    tv_member_t comm;
    int rc;
    comm.type.count = 0;
    if ((rc = need(vmi, h, "linux_tasks", "task_struct", "tasks", &o->tasks,
                   NULL)) ||
        (rc = need(vmi, h, "linux_pid", "task_struct", "pid", &o->pid,
                   NULL)) ||
        (rc = need(vmi, h, "linux_name", "task_struct", "comm", &o->comm,
                   &comm)) ||
        (rc = need(vmi, h, "linux_mm", "task_struct", "mm", &o->mm, NULL)) ||
        (rc = need(vmi, h, "linux_pgd", "mm_struct", "pgd", &o->pgd, NULL)))
        return rc;
    o->comm_len = comm.type.count ? comm.type.count : 16;
    if (o->comm_len > 64)
        o->comm_len = 64;
    if (!member(vmi, "task_struct", "tgid", &o->tgid, NULL))
        o->tgid = o->pid;
    if (!member(vmi, "task_struct", "real_parent", &o->real_parent, NULL))
        o->real_parent = UINT64_MAX;
    if (!member(vmi, "task_struct", "flags", &o->flags, NULL))
        o->flags = UINT64_MAX;
    if ((!member(vmi, "task_struct", "worker_private", &o->kthread_ptr,
                 NULL) &&
         !member(vmi, "task_struct", "set_child_tid", &o->kthread_ptr,
                 NULL)) ||
        !member(vmi, "kthread", "full_name", &o->kthread_full_name, NULL))
        o->kthread_ptr = o->kthread_full_name = UINT64_MAX;
    if (!member(vmi, "kthread", "threadfn", &o->kthread_threadfn, NULL))
        o->kthread_threadfn = UINT64_MAX;
    if (tv_os_ksym(vmi, "worker_thread", &o->wq_fn[0]))
        o->wq_fn[0] = 0;
    if (tv_os_ksym(vmi, "rescuer_thread", &o->wq_fn[1]))
        o->wq_fn[1] = 0;
    if (!tv_os_ksym(vmi, "init_task", &lx->init_task) ||
        !lx_search_init_task(vmi, lx))
        lx->have_tasks = true;
    return lx->have_tasks
               ? TINYVMI_OK
               : tv_fail(vmi, TINYVMI_ENOENT,
                         "the symbol table has no init_task, and %s",
                         vmi->last_error);
}

/* Where /proc/modules' base and size come from: mem[MOD_TEXT] and the sum
 * of every mem[].size since 6.4; core_layout and the *_layout sizes before. */
static int module_offsets(struct vmi_instance *vmi, lx_t *lx)
{
    lx_offsets_t *o = &lx->off;
    tv_member_t m;
    tv_typeinfo_t mm;
    uint64_t off;
    if (!member(vmi, "module", "list", &o->mod_list, NULL) ||
        !member(vmi, "module", "name", &o->mod_name, &m))
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "the symbol table has no module.list or module.name");
    o->mod_name_len = m.type.count && m.type.count < MODULE_NAME_MAX
                          ? m.type.count
                          : MODULE_NAME_MAX - 8;
    if (member(vmi, "module", "mem", &off, &m) &&
        m.type.kind == TV_K_ARRAY && m.type.count &&
        tv_symtab_type(vmi->symtab, "module_memory", &mm)) {
        tv_member_t base, size;
        int64_t text = 0;
        tv_symtab_const(vmi->symtab, "MOD_TEXT", &text);
        if (!tv_symtab_member(vmi->symtab, "module_memory", "base", &base) ||
            !tv_symtab_member(vmi->symtab, "module_memory", "size", &size) ||
            text < 0 || (uint64_t)text >= m.type.count)
            return tv_fail(vmi, TINYVMI_ENOENT,
                           "module_memory lacks base or size");
        o->mod_mem = true;
        o->mod_base = off + (uint64_t)text * mm.size + base.offset;
        for (uint32_t i = 0; i < m.type.count && i < 8; i++)
            o->mod_size[o->mod_nsizes++] = off + i * mm.size + size.offset;
        tv_typeinfo_t st;
        o->mod_size_width = 4;
        if (size.type.name && tv_symtab_type(vmi->symtab, size.type.name,
                                             &st) && st.size == 8)
            o->mod_size_width = 8;
        return TINYVMI_OK;
    }
    static const char *const layouts[] = {"core_layout", "init_layout",
                                          "data_layout"};
    if (!member(vmi, "module", "core_layout.base", &o->mod_base, NULL))
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "the symbol table has neither module.mem nor "
                       "module.core_layout");
    for (unsigned i = 0; i < 3; i++) {
        char path[32];
        tv_fmt(path, sizeof path, "%s.size", layouts[i]);
        if (member(vmi, "module", path, &off, &m))
            o->mod_size[o->mod_nsizes++] = off;
    }
    o->mod_size_width = 4;
    tv_typeinfo_t st;
    if (m.type.name && tv_symtab_type(vmi->symtab, m.type.name, &st) &&
        st.size == 8)
        o->mod_size_width = 8;
    return TINYVMI_OK;
}

int lx_offsets(struct vmi_instance *vmi, lx_t *lx, const tv_os_hints_t *h)
{
    int rc = task_offsets(vmi, lx, h);
    if (rc)
        return rc;
    if (!module_offsets(vmi, lx) &&
        (!tv_os_ksym(vmi, "modules", &lx->modules) ||
         !lx_search_modules(vmi, lx)))
        lx->have_modules = true;
    else
        tv_log(vmi, 1, "linux: no module list: %s", vmi->last_error);
    return TINYVMI_OK;
}

/* ---- reads ------------------------------------------------------------------ */

static int rd(struct vmi_instance *vmi, uint64_t va, void *buf, size_t n)
{
    return tv_read_va(vmi, NULL, vmi->kdtb, va, buf, n, NULL);
}

/* A kernel pointer, as wide as the paging format's addresses. */
static int rd_ptr(struct vmi_instance *vmi, uint64_t va, uint64_t *v)
{
    uint8_t b[8];
    size_t n = vmi->pt ? vmi->pt->addr_width : 8;
    int rc = rd(vmi, va, b, n);
    *v = rc ? 0 : n == 4 ? tv_le32(b) : tv_le64(b);
    return rc;
}

static int rd_u32(struct vmi_instance *vmi, uint64_t va, uint32_t *v)
{
    uint8_t b[4];
    int rc = rd(vmi, va, b, 4);
    *v = rc ? 0 : tv_le32(b);
    return rc;
}

/* A bounded string: bytes up to NUL or n, non-printing bytes as '?'. */
static void rd_name(struct vmi_instance *vmi, uint64_t va, char *out,
                    size_t n)
{
    if (rd(vmi, va, out, n)) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    for (size_t i = 0; i < n && out[i]; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            out[i] = '?';
}

/* ---- processes ---------------------------------------------------------------- */

static int task_dtb(struct vmi_instance *vmi, const lx_offsets_t *o,
                    uint64_t mm, uint64_t *dtb)
{
    uint64_t pgd;
    if (!mm) {
        *dtb = vmi->kdtb;
        return TINYVMI_OK;
    }
    int rc = rd_ptr(vmi, mm + o->pgd, &pgd);
    if (!rc)
        rc = tv_translate(vmi, NULL, vmi->kdtb, pgd, dtb, NULL);
    return rc;
}

/* What procfs shows for a kernel thread whose name did not fit in comm:
 * its struct kthread's full_name, if that begins with comm. */
static void kthread_name(struct vmi_instance *vmi, const lx_offsets_t *o,
                         uint64_t task, tinyvmi_process_t *p)
{
    uint64_t kt, full;
    char name[sizeof p->name];
    size_t n = tv_strlen(p->name);
    if (o->kthread_ptr == UINT64_MAX || n + 1 < o->comm_len ||
        rd_ptr(vmi, task + o->kthread_ptr, &kt) || !kt ||
        rd_ptr(vmi, kt + o->kthread_full_name, &full) || !full)
        return;
    uint64_t fn;
    if (o->kthread_threadfn != UINT64_MAX &&
        !rd_ptr(vmi, kt + o->kthread_threadfn, &fn) && fn &&
        (fn == o->wq_fn[0] || fn == o->wq_fn[1]))
        return;
    /* byte by byte up to a page end: the name may end just before one */
    size_t i = 0;
    for (; i < sizeof name - 1; i++)
        if (rd(vmi, full + i, &name[i], 1) || !name[i])
            break;
    name[i] = '\0';
    if (i > n && !tv_memcmp(name, p->name, n)) {
        rd_name(vmi, full, p->name, i);
    }
}

static void task_fill(struct vmi_instance *vmi, const lx_offsets_t *o,
                      uint64_t task, tinyvmi_process_t *p)
{
    uint32_t u;
    uint64_t mm = 0, parent;
    *p = (tinyvmi_process_t){.task = task, .ppid = -1};
    if (!rd_u32(vmi, task + o->tgid, &u))
        p->pid = (vmi_pid_t)u;
    rd_name(vmi, task + o->comm, p->name,
            o->comm_len < sizeof p->name ? o->comm_len : sizeof p->name - 1);
    rd_ptr(vmi, task + o->mm, &mm);
    p->kernel_thread = mm == 0;
    if (p->kernel_thread)
        kthread_name(vmi, o, task, p);
    if (task_dtb(vmi, o, mm, &p->dtb))
        p->dtb = 0;
    if (o->real_parent != UINT64_MAX &&
        !rd_ptr(vmi, task + o->real_parent, &parent) &&
        !rd_u32(vmi, parent + o->tgid, &u))
        p->ppid = (vmi_pid_t)u;
    if (o->flags != UINT64_MAX && !rd_u32(vmi, task + o->flags, &u))
        p->flags = u;
    if (task == ((lx_t *)vmi->osdata)->init_task)
        p->ppid = 0;
}

/* Walks a list_head ring (tv_os_walk_ring). */
typedef int (*visit_fn)(struct vmi_instance *vmi, uint64_t obj, void *arg);

static int walk_ring(struct vmi_instance *vmi, uint64_t head, uint64_t link,
                     bool include_head, uint32_t max, const char *what,
                     visit_fn fn, void *arg)
{
    tv_ring_t r = {head, link, include_head, max, "linux", what, rd_ptr, fn,
                   arg};
    return tv_os_walk_ring(vmi, &r);
}

typedef struct pcb {
    tinyvmi_process_cb cb;
    void *arg;
} pcb_t;

static int visit_task(struct vmi_instance *vmi, uint64_t task, void *arg)
{
    pcb_t *c = arg;
    tinyvmi_process_t p;
    task_fill(vmi, &((lx_t *)vmi->osdata)->off, task, &p);
    return c->cb(c->arg, &p);
}

int lx_processes(struct vmi_instance *vmi, tinyvmi_process_cb cb, void *arg)
{
    lx_t *lx = vmi->osdata;
    pcb_t c = {cb, arg};
    if (!lx->have_tasks)
        return tv_fail(vmi, TINYVMI_ENOENT, "no task list");
    return walk_ring(vmi, lx->init_task + lx->off.tasks, lx->off.tasks, true,
                     LX_MAX_TASKS, "task", visit_task, &c);
}

/* The running task is the per-CPU variable current_task (pcpu_hot's
 * member since 6.2), at the CPU's per-CPU base: GS's base in the kernel,
 * the swapped-out one while the vCPU runs user code. */
int lx_current(struct vmi_instance *vmi, unsigned vcpu, tinyvmi_process_t *p)
{
    lx_t *lx = vmi->osdata;
    uint64_t cs, base, off, moff, task;
    if (!lx->have_tasks)
        return tv_fail(vmi, TINYVMI_ENOENT, "no task offsets");
    int rc = vmi_get_vcpureg(vmi, &cs, CS_SEL, vcpu) == VMI_SUCCESS &&
                     vmi_get_vcpureg(vmi, &base, (cs & 3) ? SHADOW_GS : GS_BASE,
                                     vcpu) == VMI_SUCCESS
                 ? TINYVMI_OK
                 : vmi->last_status;
    if (rc)
        return tv_fail(vmi, rc, "vCPU %u: no per-CPU base: %s", vcpu,
                       vmi->last_error);
    if (tv_os_ksym(vmi, "current_task", &off) == 0) {
        /* 6.1 and before */
    } else if (tv_os_ksym(vmi, "pcpu_hot", &off) == 0 &&
               member(vmi, "pcpu_hot", "current_task", &moff, NULL)) {
        off += moff;
    } else {
        return tv_fail(vmi, TINYVMI_ENOENT, "the kernel has neither "
                       "current_task nor pcpu_hot.current_task");
    }
    if ((rc = rd_ptr(vmi, base + off, &task)))
        return tv_fail(vmi, rc, "vCPU %u: current task at 0x%llx: %s", vcpu,
                       (unsigned long long)(base + off), vmi->last_error);
    if (!task)
        return tv_fail(vmi, TINYVMI_ENOENT, "vCPU %u runs no task", vcpu);
    task_fill(vmi, &lx->off, task, p);
    return TINYVMI_OK;
}

/* ---- modules ------------------------------------------------------------------ */

typedef struct mcb {
    tinyvmi_module_cb cb;
    void *arg;
} mcb_t;

static int visit_module(struct vmi_instance *vmi, uint64_t mod, void *arg)
{
    const lx_offsets_t *o = &((lx_t *)vmi->osdata)->off;
    mcb_t *c = arg;
    tinyvmi_module_t m = {.addr = mod};
    rd_name(vmi, mod + o->mod_name, m.name, o->mod_name_len);
    rd_ptr(vmi, mod + o->mod_base, &m.base);
    for (uint32_t i = 0; i < o->mod_nsizes; i++) {
        uint64_t v = 0;
        uint32_t u = 0;
        if (o->mod_size_width == 8)
            rd_ptr(vmi, mod + o->mod_size[i], &v);
        else if (!rd_u32(vmi, mod + o->mod_size[i], &u))
            v = u;
        m.size += v;
    }
    return c->cb(c->arg, &m);
}

int lx_modules(struct vmi_instance *vmi, tinyvmi_module_cb cb, void *arg)
{
    lx_t *lx = vmi->osdata;
    mcb_t c = {cb, arg};
    if (!lx->have_modules)
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "the module list is unknown (no 'modules' symbol or "
                       "struct module in the symbol table)");
    return walk_ring(vmi, lx->modules, lx->off.mod_list, false,
                     LX_MAX_MODULES, "module", visit_module, &c);
}

/* ---- LibVMI's named offsets ------------------------------------------------------ */

int lx_offset(struct vmi_instance *vmi, const char *name, uint64_t *value)
{
    const lx_t *lx = vmi->osdata;
    const lx_offsets_t *o = &lx->off;
    static const struct {
        const char *name;
        size_t off;
    } named[] = {
        {"linux_tasks", offsetof(lx_offsets_t, tasks)},
        {"linux_mm", offsetof(lx_offsets_t, mm)},
        {"linux_pid", offsetof(lx_offsets_t, pid)},
        {"linux_name", offsetof(lx_offsets_t, comm)},
        {"linux_pgd", offsetof(lx_offsets_t, pgd)},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (!tv_strcmp(name, named[i].name)) {
            tv_memcpy(value, (const uint8_t *)o + named[i].off, 8);
            return TINYVMI_OK;
        }
    if (!tv_strcmp(name, "linux_kaslr")) {
        *value = (uint64_t)vmi->slide;
        return TINYVMI_OK;
    }
    if (!tv_strcmp(name, "linux_init_task")) {
        *value = lx->init_task;
        return TINYVMI_OK;
    }
    if (!tv_strcmp(name, "linux_addr") &&
        member(vmi, "mm_struct", "start_code", value, NULL))
        return TINYVMI_OK;
    return TINYVMI_ENOENT;
}
