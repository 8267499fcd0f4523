/*
 * What every OS layer shares: the symbol table's public face (LibVMI's
 * symbol and offset calls), pid lookups over the OS layer's process walk,
 * and TinyVMI's enumeration calls.
 */
#include "core/tv.h"
#include "profile/symtab.h"

#define TV_API __attribute__((visibility("default")))

static status_t st(int rc)
{
    return rc ? VMI_FAILURE : VMI_SUCCESS;
}

static int need_os(struct vmi_instance *vmi)
{
    if (!vmi)
        return TINYVMI_EINVAL;
    if (!vmi->osops || !vmi->symtab)
        return tv_fail(vmi, TINYVMI_ESTATE,
                       "the OS layer is not initialised (vmi_init_os or "
                       "vmi_init_complete)");
    return TINYVMI_OK;
}

/* ---- visited-address sets ------------------------------------------------- */

static size_t vhash(uint64_t a, size_t cap)
{
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdULL;
    a ^= a >> 33;
    return (size_t)a & (cap - 1);
}

static int visit_grow(struct vmi_instance *vmi, tv_visit_t *v)
{
    size_t cap = v->cap ? v->cap * 2 : 256;
    uint64_t *s = tv_calloc(vmi, cap, sizeof *s);
    if (!s)
        return TINYVMI_ENOMEM;
    for (size_t i = 0; i < v->cap; i++) {
        uint64_t a = v->slot[i];
        if (!a)
            continue;
        size_t j = vhash(a, cap);
        while (s[j])
            j = (j + 1) & (cap - 1);
        s[j] = a;
    }
    tv_free(vmi, v->slot, v->cap * sizeof *v->slot);
    v->slot = s;
    v->cap = cap;
    return TINYVMI_OK;
}

int tv_visit_add(struct vmi_instance *vmi, tv_visit_t *v, uint64_t addr)
{
    /* 0 marks an empty slot; the address 0 is never a valid entry. */
    if (!addr)
        return 0;
    if ((v->n + 1) * 2 > v->cap && visit_grow(vmi, v))
        return TINYVMI_ENOMEM;
    size_t j = vhash(addr, v->cap);
    while (v->slot[j]) {
        if (v->slot[j] == addr)
            return 0;
        j = (j + 1) & (v->cap - 1);
    }
    v->slot[j] = addr;
    v->n++;
    return 1;
}

void tv_visit_free(struct vmi_instance *vmi, tv_visit_t *v)
{
    if (v->slot)
        tv_free(vmi, v->slot, v->cap * sizeof *v->slot);
    *v = (tv_visit_t){0};
}

/* ---- rings of list links ------------------------------------------------------ */

int tv_os_walk_ring(struct vmi_instance *vmi, const tv_ring_t *r)
{
    tv_visit_t seen = {0};
    uint64_t cur = r->head, next, after;
    uint32_t n = 0;
    int rc, stop = 0;
    tv_visit_add(vmi, &seen, r->head);
    if ((rc = r->read_ptr(vmi, r->head, &next)))
        rc = tv_fail(vmi, rc, "%s list: its head at 0x%llx: %s", r->what,
                     (unsigned long long)r->head, vmi->last_error);
    else if (r->include_head) {
        stop = r->visit(vmi, r->head - r->link, r->arg);
        n++;
    }
    /* An entry is delivered only once its own link is readable: a list
     * that runs into unmapped memory ends before the bad entry. */
    while (!rc && !stop && next != r->head) {
        int fresh = tv_visit_add(vmi, &seen, next);
        if (fresh < 0) {
            rc = tv_fail(vmi, fresh, "%s list: out of memory", r->what);
        } else if (!fresh) {
            rc = tv_fail(vmi, TINYVMI_ELOOP,
                         "%s list loops: entry %u (0x%llx) points back to "
                         "0x%llx, not to the head 0x%llx", r->what, n,
                         (unsigned long long)cur, (unsigned long long)next,
                         (unsigned long long)r->head);
        } else if (n >= r->max) {
            rc = tv_fail(vmi, TINYVMI_ELOOP, "%s list: more than %u entries",
                         r->what, r->max);
        } else if ((rc = r->read_ptr(vmi, next, &after))) {
            rc = tv_fail(vmi, rc, "%s list broken after %u entries: entry "
                         "0x%llx (linked from 0x%llx) is unreadable: %s",
                         r->what, n, (unsigned long long)next,
                         (unsigned long long)cur, vmi->last_error);
        } else {
            stop = r->visit(vmi, next - r->link, r->arg);
            n++;
            cur = next;
            next = after;
        }
    }
    tv_visit_free(vmi, &seen);
    if (rc)
        tv_log(vmi, 1, "%s: %s (%u entries delivered)", r->layer,
               vmi->last_error, n);
    return rc;
}

/* ---- the layer's life ------------------------------------------------------------- */

void tv_os_fini(struct vmi_instance *vmi)
{
    if (vmi->osops && vmi->osops->fini)
        vmi->osops->fini(vmi);
    vmi->osops = NULL;
    vmi->osdata = NULL;
    vmi->os = VMI_OS_UNKNOWN;
    tv_symtab_free(vmi->symtab);
    vmi->symtab = NULL;
    vmi->slide = 0;
    vmi->slide_from = 0;
    vmi->kinfo = (tinyvmi_kernel_t){0};
}

int tv_os_ksym(struct vmi_instance *vmi, const char *name, uint64_t *va)
{
    uint64_t a;
    if (!vmi->symtab)
        return tv_fail(vmi, TINYVMI_ESTATE, "symbol %s: no symbol table",
                       name ? name : "(null)");
    if (!name || !tv_symtab_symbol(vmi->symtab, name, &a))
        return tv_fail(vmi, TINYVMI_ENOENT, "no kernel symbol %s",
                       name ? name : "(null)");
    *va = tv_os_live(vmi, a);
    return TINYVMI_OK;
}

uint64_t tv_os_live(const struct vmi_instance *vmi, uint64_t a)
{
    return a >= vmi->slide_from ? a + (uint64_t)vmi->slide : a;
}

uint64_t tv_os_unlive(const struct vmi_instance *vmi, uint64_t va)
{
    uint64_t from = vmi->slide_from + (uint64_t)vmi->slide;
    return va >= from ? va - (uint64_t)vmi->slide : va;
}

/* ---- pid lookups -------------------------------------------------------------------- */

typedef struct find {
    vmi_pid_t pid;
    uint64_t dtb;
    bool by_dtb, found;
} find_t;

static int find_cb(void *arg, const tinyvmi_process_t *p)
{
    find_t *f = arg;
    if (f->by_dtb ? (p->dtb == f->dtb && !p->kernel_thread)
                  : p->pid == f->pid) {
        f->pid = p->pid;
        f->dtb = p->dtb;
        f->found = true;
        return 1;
    }
    return 0;
}

int tv_os_pid_dtb(struct vmi_instance *vmi, vmi_pid_t pid, uint64_t *dtb)
{
    int rc = need_os(vmi);
    if (rc)
        return rc;
    if (pid == 0) {
        *dtb = vmi->kdtb;
        return TINYVMI_OK;
    }
    find_t f = {.pid = pid};
    vmi->osops->processes(vmi, find_cb, &f);
    if (!f.found)
        return tv_fail(vmi, TINYVMI_ENOENT, "no process with pid %d",
                       (int)pid);
    if (!f.dtb)
        return tv_fail(vmi, TINYVMI_EUNMAPPED,
                       "pid %d: its page-table root is unreadable", (int)pid);
    *dtb = f.dtb;
    return TINYVMI_OK;
}

TV_API status_t vmi_pid_to_dtb(vmi_instance_t vmi, vmi_pid_t pid, addr_t *dtb)
{
    return dtb ? st(tv_os_pid_dtb(vmi, pid, dtb)) : VMI_FAILURE;
}

TV_API status_t vmi_dtb_to_pid(vmi_instance_t vmi, addr_t dtb, vmi_pid_t *pid)
{
    int rc = need_os(vmi);
    if (rc || !pid)
        return VMI_FAILURE;
    find_t f = {.dtb = dtb & (vmi->pt ? vmi->pt->root_mask : ~0ULL),
                .by_dtb = true};
    vmi->osops->processes(vmi, find_cb, &f);
    if (!f.found && f.dtb == vmi->kdtb) {
        *pid = 0;
        return VMI_SUCCESS;
    }
    if (!f.found)
        return st(tv_fail(vmi, TINYVMI_ENOENT,
                          "no process has page-table root 0x%llx",
                          (unsigned long long)dtb));
    *pid = f.pid;
    return VMI_SUCCESS;
}

TV_API status_t vmi_translate_uv2p(vmi_instance_t vmi, addr_t vaddr,
                                   vmi_pid_t pid, addr_t *paddr)
{
    uint64_t dtb;
    if (!paddr || tv_os_pid_dtb(vmi, pid, &dtb))
        return VMI_FAILURE;
    return st(tv_translate(vmi, NULL, dtb, vaddr, paddr, NULL));
}

/* ---- symbols and offsets ---------------------------------------------------------------- */

TV_API status_t vmi_translate_ksym2v(vmi_instance_t vmi, const char *symbol,
                                     addr_t *vaddr)
{
    if (!vaddr || need_os(vmi))
        return VMI_FAILURE;
    return st(tv_os_ksym(vmi, symbol, vaddr));
}

TV_API status_t vmi_translate_sym2v(vmi_instance_t vmi,
                                    const access_context_t *ctx,
                                    const char *symbol, addr_t *vaddr)
{
    if (!ctx || (ctx->tm == VMI_TM_PROCESS_PID && ctx->pid != 0) ||
        (ctx->tm == VMI_TM_PROCESS_DTB && vmi && ctx->dtb != vmi->kdtb)) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ENOTSUP,
                    "symbols of user processes are not supported; only "
                    "the kernel's");
        return VMI_FAILURE;
    }
    return vmi_translate_ksym2v(vmi, symbol, vaddr);
}

TV_API status_t vmi_get_offset(vmi_instance_t vmi, const char *name,
                               addr_t *offset)
{
    if (!offset || !name || need_os(vmi))
        return VMI_FAILURE;
    int rc = vmi->osops->offset ? vmi->osops->offset(vmi, name, offset)
                                : TINYVMI_ENOENT;
    if (rc)
        return st(tv_fail(vmi, rc, "no offset named %s for %s", name,
                          vmi->osops->name));
    return VMI_SUCCESS;
}

static const tv_symtab_t *table_of(vmi_instance_t vmi, json_object *json)
{
    if (json)
        return (const tv_symtab_t *)json;
    return vmi ? vmi->symtab : NULL;
}

TV_API json_object *vmi_get_kernel_json(vmi_instance_t vmi)
{
    return vmi ? (json_object *)vmi->symtab : NULL;
}

TV_API status_t vmi_get_symbol_addr_from_json(vmi_instance_t vmi,
                                              json_object *json,
                                              const char *symbol,
                                              addr_t *addr)
{
    const tv_symtab_t *t = table_of(vmi, json);
    if (!t || !symbol || !addr || !tv_symtab_symbol(t, symbol, addr)) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ENOENT, "no symbol %s in the profile",
                    symbol ? symbol : "(null)");
        return VMI_FAILURE;
    }
    return VMI_SUCCESS;
}

TV_API status_t vmi_get_struct_size_from_json(vmi_instance_t vmi,
                                              json_object *json,
                                              const char *struct_name,
                                              size_t *size)
{
    const tv_symtab_t *t = table_of(vmi, json);
    tv_typeinfo_t ti;
    if (!t || !struct_name || !size ||
        !tv_symtab_type(t, struct_name, &ti)) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ENOENT, "no type %s in the profile",
                    struct_name ? struct_name : "(null)");
        return VMI_FAILURE;
    }
    *size = (size_t)ti.size;
    return VMI_SUCCESS;
}

static bool member_of(vmi_instance_t vmi, json_object *json,
                      const char *type, const char *path, tv_member_t *m)
{
    const tv_symtab_t *t = table_of(vmi, json);
    if (t && type && path && tv_symtab_member(t, type, path, m))
        return true;
    if (vmi)
        tv_fail(vmi, TINYVMI_ENOENT, "no member %s.%s in the profile",
                type ? type : "(null)", path ? path : "(null)");
    return false;
}

TV_API status_t vmi_get_struct_member_offset_from_json(
    vmi_instance_t vmi, json_object *json, const char *struct_name,
    const char *struct_member, addr_t *offset)
{
    tv_member_t m;
    if (!offset || !member_of(vmi, json, struct_name, struct_member, &m))
        return VMI_FAILURE;
    *offset = m.offset;
    return VMI_SUCCESS;
}

TV_API status_t vmi_get_bitfield_offset_and_size_from_json(
    vmi_instance_t vmi, json_object *json, const char *struct_name,
    const char *struct_member, addr_t *offset, size_t *start_bit,
    size_t *end_bit)
{
    tv_member_t m;
    if (!offset || !start_bit || !end_bit ||
        !member_of(vmi, json, struct_name, struct_member, &m))
        return VMI_FAILURE;
    *offset = m.offset;
    *start_bit = m.bit_pos;
    *end_bit = (size_t)m.bit_pos + m.bit_len;
    return VMI_SUCCESS;
}

TV_API status_t vmi_get_kernel_struct_offset(vmi_instance_t vmi,
                                             const char *struct_name,
                                             const char *member,
                                             addr_t *value)
{
    if (need_os(vmi))
        return VMI_FAILURE;
    return vmi_get_struct_member_offset_from_json(vmi, NULL, struct_name,
                                                  member, value);
}

/* ---- reads at symbols ------------------------------------------------------------------------ */

TV_API status_t vmi_read_ksym(vmi_instance_t vmi, const char *sym,
                              size_t count, void *buf, size_t *bytes_read)
{
    access_context_t ctx = {.version = ACCESS_CONTEXT_VERSION,
                            .tm = VMI_TM_KERNEL_SYMBOL,
                            .ksym = sym};
    return vmi_read(vmi, &ctx, count, buf, bytes_read);
}

#define KSYM_READ(name, type)                                              \
    TV_API status_t vmi_read_##name##_ksym(vmi_instance_t vmi,            \
                                           const char *sym, type *value)  \
    {                                                                      \
        return vmi_read_ksym(vmi, sym, sizeof *value, value, NULL);       \
    }
KSYM_READ(8, uint8_t)
KSYM_READ(16, uint16_t)
KSYM_READ(32, uint32_t)
KSYM_READ(64, uint64_t)

TV_API status_t vmi_read_addr_ksym(vmi_instance_t vmi, const char *sym,
                                   addr_t *value)
{
    access_context_t ctx = {.version = ACCESS_CONTEXT_VERSION,
                            .tm = VMI_TM_KERNEL_SYMBOL,
                            .ksym = sym};
    return vmi_read_addr(vmi, &ctx, value);
}

/* ---- pause and resume ---------------------------------------------------------------------- */

TV_API status_t vmi_pause_vm(vmi_instance_t vmi)
{
    if (!vmi)
        return VMI_FAILURE;
    if (!vmi->drv.ctl || !vmi->drv.ctl->pause)
        return VMI_SUCCESS; /* a dump does not run */
    return st(vmi->drv.ctl->pause(vmi->drv.ctx));
}

TV_API status_t vmi_resume_vm(vmi_instance_t vmi)
{
    if (!vmi)
        return VMI_FAILURE;
    if (!vmi->drv.ctl || !vmi->drv.ctl->resume)
        return VMI_SUCCESS;
    return st(vmi->drv.ctl->resume(vmi->drv.ctx));
}

/* ---- TinyVMI's enumeration ---------------------------------------------------------------- */

TV_API status_t tinyvmi_kernel_info(vmi_instance_t vmi, tinyvmi_kernel_t *out)
{
    if (!out || need_os(vmi))
        return VMI_FAILURE;
    *out = vmi->kinfo;
    return VMI_SUCCESS;
}

TV_API status_t tinyvmi_current_process(vmi_instance_t vmi, unsigned long vcpu,
                                        tinyvmi_process_t *out)
{
    if (!vmi || !out)
        return VMI_FAILURE;
    if (!vmi->osops || !vmi->osops->current)
        return st(tv_fail(vmi, TINYVMI_ESTATE, "no OS layer (vmi_init_os)"));
    if (vcpu >= vmi_get_num_vcpus(vmi))
        return st(tv_fail(vmi, TINYVMI_ERANGE, "no vCPU %lu", vcpu));
    const tv_ctl_ops_t *ctl = vmi->drv.ctl;
    bool held = ctl && ctl->pause && ctl->pause(vmi->drv.ctx) == 0;
    int rc = vmi->osops->current(vmi, (unsigned)vcpu, out);
    if (held)
        ctl->resume(vmi->drv.ctx);
    return st(rc);
}

TV_API status_t tinyvmi_processes(vmi_instance_t vmi, tinyvmi_process_cb cb,
                                  void *arg)
{
    if (!cb || need_os(vmi))
        return VMI_FAILURE;
    return st(vmi->osops->processes(vmi, cb, arg));
}

TV_API status_t tinyvmi_modules(vmi_instance_t vmi, tinyvmi_module_cb cb,
                                void *arg)
{
    if (!cb || need_os(vmi))
        return VMI_FAILURE;
    return st(vmi->osops->modules(vmi, cb, arg));
}

TV_API status_t tinyvmi_symbols(vmi_instance_t vmi, tinyvmi_symbol_cb cb,
                                void *arg)
{
    if (!cb || need_os(vmi))
        return VMI_FAILURE;
    size_t n = tv_symtab_nsymbols(vmi->symtab);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        uint64_t a;
        char type;
        if (tv_symtab_symbol_at(vmi->symtab, i, &name, &a, &type) &&
            cb(arg, name, tv_os_live(vmi, a), type))
            break;
    }
    return VMI_SUCCESS;
}
