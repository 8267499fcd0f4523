/*
 * The Windows OS layer: start-up (kernel base, page tables, a check that
 * the profile fits), the process list (PsActiveProcessHead over
 * EPROCESS.ActiveProcessLinks), the module list (PsLoadedModuleList over
 * KLDR_DATA_TABLE_ENTRY.InLoadOrderLinks) and LibVMI's win_* offsets.
 *
 * Profile symbols are offsets from the kernel's image base (PDB RVAs), so
 * the image base is the slide.  Everything is read from guest memory or a
 * triage dump's saved blocks, both hostile: each walk is bounded, stops at
 * cycles and ends with a reason when it leaves readable memory.
 */
#include "os/windows/win.h"

#define TV_API __attribute__((visibility("default")))

/* Upper bounds for walks over guest-written lists: far above what any
 * Windows runs (its handle table caps processes well below 2^20; drivers
 * are fewer still), low enough that the visited set stays small. */
#define WIN_MAX_PROCS (1u << 20)
#define WIN_MAX_MODULES 65536u
/* UTF-16 code units of a module name worth reading: tinyvmi_module_t's
 * name holds 63 bytes, and each unit takes at least one. */
#define WIN_NAME_UNITS 64u

typedef struct win_off {
    uint32_t ptr; /* 4 or 8 */
    /* _EPROCESS */
    uint64_t links, pid, ppid, pname, pdbase, peb, ctime;
    uint32_t pname_len;
    uint64_t eproc_size;
    /* _KLDR_DATA_TABLE_ENTRY (XP: _LDR_DATA_TABLE_ENTRY) */
    uint64_t ldr_links, ldr_base, ldr_size, ldr_name;
    /* _UNICODE_STRING */
    uint64_t us_len, us_buf;
    /* the current thread's process: _KTHREAD.ApcState.Process; the
     * current thread: _KPCR.Prcb(Data).CurrentThread; UINT64_MAX: none */
    uint64_t thread_process, pcr_thread;
} win_off_t;

typedef struct win {
    win_off_t off;
    uint64_t base;
    uint64_t ps_head, mod_head; /* live addresses; 0: unknown */
    win_read_fn read_va;        /* triage dumps: reads without paging */
    void *read_arg;
    const uint8_t *drivers;     /* a triage dump's driver list */
    size_t ndrivers;
    const uint8_t *pool;        /* ... and its string pool */
    size_t pool_len;
    uint64_t pool_off;
    const uint8_t *cur;         /* the current EPROCESS copy, or NULL */
    size_t cur_len;
    uint64_t cur_va;            /* its address (0: unknown) */
    uint32_t build;
    win_ver_t ver;
    char release[64];
    char source[224];
} win_t;

/* ---- reads ------------------------------------------------------------------ */

static win_t *W(struct vmi_instance *vmi)
{
    return vmi->osdata;
}

static int rd(struct vmi_instance *vmi, uint64_t va, void *buf, size_t n)
{
    const win_t *w = W(vmi);
    /* The current process's copy stands in for memory the dump lacks. */
    if (w->cur && w->cur_va && va >= w->cur_va &&
        va - w->cur_va <= w->cur_len && n <= w->cur_len - (va - w->cur_va)) {
        tv_memcpy(buf, w->cur + (va - w->cur_va), n);
        return TINYVMI_OK;
    }
    if (w->read_va) {
        int rc = w->read_va(w->read_arg, va, buf, n);
        return rc ? (vmi->last_status ? vmi->last_status : TINYVMI_EUNMAPPED)
                  : TINYVMI_OK;
    }
    return tv_read_va(vmi, NULL, vmi->kdtb, va, buf, n, NULL);
}

static uint64_t le_n(const uint8_t *b, uint32_t n)
{
    return n == 8 ? tv_le64(b) : n == 4 ? tv_le32(b) : n == 2 ? tv_le16(b)
                                                              : b[0];
}

/* An unsigned field of n bytes (1, 2, 4 or 8). */
static int rd_uint(struct vmi_instance *vmi, uint64_t va, uint32_t n,
                   uint64_t *v)
{
    uint8_t b[8];
    int rc = rd(vmi, va, b, n);
    *v = rc ? 0 : le_n(b, n);
    return rc;
}

static int rd_ptr(struct vmi_instance *vmi, uint64_t va, uint64_t *v)
{
    return rd_uint(vmi, va, W(vmi)->off.ptr, v);
}

/* ---- the profile --------------------------------------------------------------- */

uint32_t win_profile_ptr_size(const tv_symtab_t *t)
{
    tv_typeinfo_t ti;
    if (tv_symtab_type(t, "_LIST_ENTRY", &ti) && (ti.size == 8 ||
                                                   ti.size == 16))
        return (uint32_t)ti.size / 2;
    return 0;
}

static bool member(const tv_symtab_t *t, const char *type, const char *path,
                   uint64_t *off, tv_member_t *m)
{
    tv_member_t tmp;
    if (!tv_symtab_member(t, type, path, m ? m : &tmp))
        return false;
    *off = (m ? m : &tmp)->offset;
    return true;
}

/* A config value named key, if the hints have one. */
static bool hint(const tv_os_hints_t *h, const char *key, uint64_t *v)
{
    for (size_t i = 0; h && h->offset_names && h->offset_names[i]; i++)
        if (!tv_strcmp(h->offset_names[i], key)) {
            *v = h->offset_values[i];
            return true;
        }
    return false;
}

static int need(struct vmi_instance *vmi, const tv_os_hints_t *h,
                const char *key, const char *type, const char *path,
                uint64_t *off, tv_member_t *m)
{
    if (key && hint(h, key, off))
        return TINYVMI_OK;
    if (member(vmi->symtab, type, path, off, m))
        return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_ENOENT, "the profile has no %s.%s%s%s", type,
                   path, key ? " and the config no " : "", key ? key : "");
}

static int proc_offsets(struct vmi_instance *vmi, win_off_t *o,
                        const tv_os_hints_t *h)
{
    tv_member_t name = {0};
    tv_typeinfo_t ti;
    int rc;
    if ((rc = need(vmi, h, "win_tasks", "_EPROCESS", "ActiveProcessLinks",
                   &o->links, NULL)) ||
        (rc = need(vmi, h, "win_pid", "_EPROCESS", "UniqueProcessId",
                   &o->pid, NULL)) ||
        (rc = need(vmi, h, "win_pname", "_EPROCESS", "ImageFileName",
                   &o->pname, &name)) ||
        (rc = need(vmi, h, "win_pdbase", "_EPROCESS",
                   "Pcb.DirectoryTableBase", &o->pdbase, NULL)))
        return rc;
    /* ImageFileName is UCHAR[15] (+ PriorityClass) or [16] */
    o->pname_len = name.type.count && name.type.count <= 16 ? name.type.count
                                                            : 15;
    if (!member(vmi->symtab, "_EPROCESS", "InheritedFromUniqueProcessId",
                &o->ppid, NULL))
        o->ppid = UINT64_MAX;
    if (!hint(h, "win_peb", &o->peb) &&
        !member(vmi->symtab, "_EPROCESS", "Peb", &o->peb, NULL))
        o->peb = UINT64_MAX;
    if (!member(vmi->symtab, "_EPROCESS", "CreateTime", &o->ctime, NULL))
        o->ctime = UINT64_MAX;
    o->eproc_size = tv_symtab_type(vmi->symtab, "_EPROCESS", &ti) ? ti.size
                                                                 : 0;
    if (!member(vmi->symtab, "_KTHREAD", "ApcState.Process",
                &o->thread_process, NULL))
        o->thread_process = UINT64_MAX;
    if (!member(vmi->symtab, "_KPCR", "Prcb.CurrentThread", &o->pcr_thread,
                NULL) &&
        !member(vmi->symtab, "_KPCR", "PrcbData.CurrentThread",
                &o->pcr_thread, NULL))
        o->pcr_thread = UINT64_MAX;
    return TINYVMI_OK;
}

static bool module_offsets(const tv_symtab_t *t, win_off_t *o)
{
    const char *ldr = "_KLDR_DATA_TABLE_ENTRY";
    tv_typeinfo_t ti;
    if (!tv_symtab_type(t, ldr, &ti))
        ldr = "_LDR_DATA_TABLE_ENTRY"; /* older profiles */
    return member(t, ldr, "InLoadOrderLinks", &o->ldr_links, NULL) &&
           member(t, ldr, "DllBase", &o->ldr_base, NULL) &&
           member(t, ldr, "SizeOfImage", &o->ldr_size, NULL) &&
           member(t, ldr, "BaseDllName", &o->ldr_name, NULL) &&
           member(t, "_UNICODE_STRING", "Length", &o->us_len, NULL) &&
           member(t, "_UNICODE_STRING", "Buffer", &o->us_buf, NULL);
}

/* ---- the profile check ------------------------------------------------------------ */

typedef struct recorded {
    const char *sym, *who;
    uint64_t live;
} recorded_t;

/* Each recorded address less its symbol's offset: one base for all. */
static int check_recorded(const tv_symtab_t *t, const tv_win_start_t *s,
                          uint64_t *base, char *err, size_t errlen)
{
    const recorded_t rec[] = {
        {"PsActiveProcessHead", "the dump header", s->ps_active_process_head},
        {"PsLoadedModuleList", "the dump header", s->ps_loaded_module_list},
        {"KdDebuggerDataBlock", "the dump header", s->kdbg},
        {"PsActiveProcessHead", "the KDBG", s->kdbg_process_head},
        {"PsLoadedModuleList", "the KDBG", s->kdbg_module_list},
        {"KdVersionBlock", "the config (win_kdvb)", s->kdvb},
    };
    const recorded_t *first = NULL;
    for (size_t i = 0; i < TV_ARRAY_LEN(rec); i++) {
        uint64_t rva;
        if (!rec[i].live)
            continue;
        if (!tv_symtab_symbol(t, rec[i].sym, &rva)) {
            tv_fmt(err, errlen, "the profile has no symbol %s (%s puts it "
                   "at 0x%llx)", rec[i].sym, rec[i].who,
                   (unsigned long long)rec[i].live);
            return TINYVMI_EFORMAT;
        }
        uint64_t b = rec[i].live - rva;
        if (!first && s->kernel_base && b != s->kernel_base) {
            tv_fmt(err, errlen, "the profile disagrees at %s: %s puts it at "
                   "0x%llx, but the profile's offset 0x%llx from the kernel "
                   "base 0x%llx puts it at 0x%llx", rec[i].sym, rec[i].who,
                   (unsigned long long)rec[i].live, (unsigned long long)rva,
                   (unsigned long long)s->kernel_base,
                   (unsigned long long)(s->kernel_base + rva));
            return TINYVMI_EFORMAT;
        }
        if (first && b != *base) {
            tv_fmt(err, errlen, "the profile disagrees at %s: %s puts it at "
                   "0x%llx, but the profile's offset 0x%llx from the kernel "
                   "base 0x%llx (that %s at 0x%llx implies) puts it at "
                   "0x%llx", rec[i].sym, rec[i].who,
                   (unsigned long long)rec[i].live, (unsigned long long)rva,
                   (unsigned long long)*base, first->sym,
                   (unsigned long long)first->live,
                   (unsigned long long)(*base + rva));
            return TINYVMI_EFORMAT;
        }
        if (!first) {
            first = &rec[i];
            *base = b;
        }
    }
    if (*base & 0xfff) {
        tv_fmt(err, errlen, "the profile disagrees at %s: its offset puts "
               "the kernel base at 0x%llx, which is not page aligned",
               first->sym, (unsigned long long)*base);
        return TINYVMI_EFORMAT;
    }
    return TINYVMI_OK;
}

int win_profile_check(const tv_symtab_t *t, const tv_win_start_t *s,
                      uint64_t *base, char *err, size_t errlen)
{
    uint32_t ptr = win_profile_ptr_size(t);
    *base = 0;
    if (!ptr) {
        tv_fmt(err, errlen, "the profile has no _LIST_ENTRY of 8 or 16 "
               "bytes: not a Windows kernel profile");
        return TINYVMI_EFORMAT;
    }
    if (!s)
        return TINYVMI_OK;
    /* symbols first: their message says where the profile goes wrong */
    int rc = check_recorded(t, s, base, err, errlen);
    if (rc)
        return rc;
    if (s->ptr_size && s->ptr_size != ptr) {
        tv_fmt(err, errlen, "the profile is for a %u-bit kernel (its "
               "_LIST_ENTRY holds %u-byte pointers), the target is %u-bit",
               ptr * 8, ptr, s->ptr_size * 8);
        return TINYVMI_EFORMAT;
    }
    return TINYVMI_OK;
}

/* In memory: PsActiveProcessHead must be a list head, its first entry's
 * Blink pointing back at it.  Unreadable memory proves nothing (a triage
 * dump may lack it); a readable contradiction rejects the profile. */
static int check_head(struct vmi_instance *vmi, const win_t *w)
{
    uint64_t flink, back;
    int rc = rd_ptr(vmi, w->ps_head, &flink);
    if (rc && !w->read_va) /* with page tables the kernel's data is there */
        return tv_fail(vmi, rc, "the profile disagrees at "
                       "PsActiveProcessHead: kernel base 0x%llx + 0x%llx "
                       "is unreadable (%s): a wrong profile or kernel base",
                       (unsigned long long)w->base,
                       (unsigned long long)(w->ps_head - w->base),
                       vmi->last_error);
    if (rc || rd_ptr(vmi, flink + w->off.ptr, &back))
        return TINYVMI_OK;
    if (back == w->ps_head)
        return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_EFORMAT, "the profile disagrees at "
                   "PsActiveProcessHead: at 0x%llx (kernel base 0x%llx + "
                   "0x%llx) there is no list head: its Flink 0x%llx points "
                   "back to 0x%llx", (unsigned long long)w->ps_head,
                   (unsigned long long)w->base,
                   (unsigned long long)(w->ps_head - w->base),
                   (unsigned long long)flink, (unsigned long long)back);
}

/* ---- processes ------------------------------------------------------------------- */

/* ImageFileName: up to NUL or len bytes, non-printing bytes as '?'. */
static void rd_name(struct vmi_instance *vmi, uint64_t va, uint32_t len,
                    char *out, size_t outlen)
{
    uint8_t b[16];
    size_t n = len < sizeof b ? len : sizeof b;
    out[0] = '\0';
    if (n >= outlen || rd(vmi, va, b, n))
        return;
    size_t i = 0;
    for (; i < n && b[i]; i++)
        out[i] = b[i] < 0x20 || b[i] >= 0x7f ? '?' : (char)b[i];
    out[i] = '\0';
}

/* DirectoryTableBase as the page walker wants it: x64 keeps PCID bits
 * and flags in the low 12 bits, PAE's is 32-byte aligned. */
static uint64_t dtb_of(const struct vmi_instance *vmi, uint64_t v)
{
    return vmi->pt ? v & vmi->pt->root_mask : v;
}

static void proc_fill(struct vmi_instance *vmi, uint64_t ep,
                      tinyvmi_process_t *p)
{
    const win_off_t *o = &W(vmi)->off;
    uint64_t v;
    *p = (tinyvmi_process_t){.task = ep, .pid = -1, .ppid = -1};
    if (!rd_ptr(vmi, ep + o->pid, &v))
        p->pid = (vmi_pid_t)v;
    if (o->ppid != UINT64_MAX && !rd_ptr(vmi, ep + o->ppid, &v))
        p->ppid = (vmi_pid_t)v;
    rd_name(vmi, ep + o->pname, o->pname_len, p->name, sizeof p->name);
    /* DirectoryTableBase is a ULONG_PTR (x86: ULONG[2], PAE's first) */
    if (!rd_ptr(vmi, ep + o->pdbase, &v))
        p->dtb = dtb_of(vmi, v);
    /* System, Idle, Registry, MemCompression: threads without user space,
     * hence without a PEB (an unreadable PEB field says nothing) */
    if (o->peb != UINT64_MAX && !rd_ptr(vmi, ep + o->peb, &v)) {
        p->peb = v;
        p->kernel_thread = v == 0;
    }
    if (o->ctime != UINT64_MAX && !rd_uint(vmi, ep + o->ctime, 8, &v))
        p->create_time = v;
}

typedef int (*visit_fn)(struct vmi_instance *vmi, uint64_t obj, void *arg);

/* Walks the ring of LIST_ENTRYs at head (not itself an entry): for each
 * link, link - link_off is the object (tv_os_walk_ring). */
static int walk_ring(struct vmi_instance *vmi, uint64_t head,
                     uint64_t link_off, uint32_t max, const char *what,
                     visit_fn fn, void *arg)
{
    tv_ring_t r = {head, link_off, false, max, "windows", what, rd_ptr, fn,
                   arg};
    return tv_os_walk_ring(vmi, &r);
}

typedef struct pcb {
    tinyvmi_process_cb cb;
    void *arg;
} pcb_t;

static int visit_proc(struct vmi_instance *vmi, uint64_t ep, void *arg)
{
    pcb_t *c = arg;
    tinyvmi_process_t p;
    if (ep == W(vmi)->cur_va && W(vmi)->cur)
        return 0; /* delivered first, from the dump's copy */
    proc_fill(vmi, ep, &p);
    return c->cb(c->arg, &p);
}

/* The Idle process is on no list: PsIdleProcess points to it.  Windows
 * tools show it as pid 0 ("System Idle Process"). */
static int idle(struct vmi_instance *vmi, pcb_t *c)
{
    uint64_t sym, ep;
    tinyvmi_process_t p;
    if (tv_os_ksym(vmi, "PsIdleProcess", &sym) || rd_ptr(vmi, sym, &ep) ||
        !ep)
        return 0;
    proc_fill(vmi, ep, &p);
    if (p.pid != 0)
        return 0; /* not what it should be: leave it out */
    p.ppid = 0;
    p.kernel_thread = 1;
    if (!p.name[0])
        tv_memcpy(p.name, "Idle", 5);
    return c->cb(c->arg, &p);
}

/* The current process from a triage dump's copy. */
static void cur_fill(struct vmi_instance *vmi, tinyvmi_process_t *p)
{
    const win_t *w = W(vmi);
    if (w->cur_va) {
        proc_fill(vmi, w->cur_va, p); /* rd() serves it from the copy */
        return;
    }
    /* address unknown: read the copy as if it were at a fake address 0
     * (no field offset of a real EPROCESS wraps) */
    *p = (tinyvmi_process_t){.pid = -1, .ppid = -1};
    const win_off_t *o = &w->off;
    if (o->pid + o->ptr <= w->cur_len)
        p->pid = (vmi_pid_t)le_n(w->cur + o->pid, o->ptr);
    if (o->pname + o->pname_len <= w->cur_len) {
        size_t i = 0;
        for (; i < o->pname_len && w->cur[o->pname + i]; i++)
            p->name[i] = (char)w->cur[o->pname + i];
        p->name[i] = '\0';
    }
}

static int win_processes(struct vmi_instance *vmi, tinyvmi_process_cb cb,
                         void *arg)
{
    win_t *w = W(vmi);
    pcb_t c = {cb, arg};
    if (w->cur) {
        tinyvmi_process_t p;
        cur_fill(vmi, &p);
        tv_log(vmi, 2, "windows: pid %d (%s) from the dump's copy of the "
               "current process", (int)p.pid, p.name);
        if (cb(arg, &p))
            return TINYVMI_OK;
    }
    if (idle(vmi, &c))
        return TINYVMI_OK;
    if (!w->ps_head)
        return tv_fail(vmi, TINYVMI_ENOENT, "no PsActiveProcessHead");
    int rc = walk_ring(vmi, w->ps_head, w->off.links, WIN_MAX_PROCS,
                       "process", visit_proc, &c);
    if (rc && w->read_va)
        return tv_fail(vmi, rc, "%s (a triage dump saves only some kernel "
                       "memory: the list leaves it there)", vmi->last_error);
    return rc;
}

/* The process a vCPU runs: the KPCR (GS base on x64, FS base on x86)
 * holds the current thread, whose ApcState.Process is its process. */
static int win_current(struct vmi_instance *vmi, unsigned vcpu,
                       tinyvmi_process_t *p)
{
    const win_t *w = W(vmi);
    const win_off_t *o = &w->off;
    uint64_t cs = 0, pcr, thread, proc;
    if (w->cur) {
        cur_fill(vmi, p);
        return TINYVMI_OK;
    }
    if (o->pcr_thread == UINT64_MAX || o->thread_process == UINT64_MAX)
        return tv_fail(vmi, TINYVMI_ENOENT, "the profile has no "
                       "_KPCR.Prcb.CurrentThread or _KTHREAD.ApcState");
    reg_t reg = o->ptr == 8 ? GS_BASE : FS_BASE;
    if (o->ptr == 8 && vmi_get_vcpureg(vmi, &cs, CS_SEL, vcpu) ==
                           VMI_SUCCESS && (cs & 3))
        reg = SHADOW_GS; /* user mode: the kernel's base is swapped out */
    if (vmi_get_vcpureg(vmi, &pcr, reg, vcpu) != VMI_SUCCESS)
        return tv_fail(vmi, vmi->last_status ? vmi->last_status
                                             : TINYVMI_ENOTSUP,
                       "vCPU %u: no KPCR base: %s", vcpu, vmi->last_error);
    int rc = rd_ptr(vmi, pcr + o->pcr_thread, &thread);
    if (!rc)
        rc = rd_ptr(vmi, thread + o->thread_process, &proc);
    if (rc)
        return tv_fail(vmi, rc, "vCPU %u: the current thread via the KPCR "
                       "at 0x%llx: %s", vcpu, (unsigned long long)pcr,
                       vmi->last_error);
    proc_fill(vmi, proc, p);
    return TINYVMI_OK;
}

/* ---- modules ---------------------------------------------------------------------- */

/* UTF-16LE to UTF-8, at most outlen - 1 bytes and whole characters;
 * unpaired surrogates become U+FFFD. */
static void utf16_to_utf8(const uint8_t *in, size_t units, char *out,
                          size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < units; i++) {
        uint32_t c = tv_le16(in + 2 * i);
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < units &&
            tv_le16(in + 2 * i + 2) >= 0xdc00 &&
            tv_le16(in + 2 * i + 2) < 0xe000) {
            c = 0x10000 + ((c - 0xd800) << 10) +
                (tv_le16(in + 2 * i + 2) - 0xdc00u);
            i++;
        } else if (c >= 0xd800 && c < 0xe000) {
            c = 0xfffd;
        }
        if (c == 0)
            break;
        uint8_t b[4];
        size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (n == 1) {
            b[0] = c < 0x20 ? '?' : (uint8_t)c;
        } else {
            static const uint8_t lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};
            for (size_t k = n - 1; k > 0; k--, c >>= 6)
                b[k] = (uint8_t)(0x80 | (c & 0x3f));
            b[0] = (uint8_t)(lead[n] | c);
        }
        if (o + n >= outlen)
            break;
        tv_memcpy(out + o, b, n);
        o += n;
    }
    out[o] = '\0';
}

/* A UNICODE_STRING's text.  Length is the guest's word: only what fits
 * the output is read, and an odd or oversized one is reported. */
static void rd_ustring(struct vmi_instance *vmi, uint64_t us, char *out,
                       size_t outlen)
{
    const win_off_t *o = &W(vmi)->off;
    uint64_t len, buf;
    uint8_t units[2 * WIN_NAME_UNITS];
    out[0] = '\0';
    if (rd_uint(vmi, us + o->us_len, 2, &len) ||
        rd_ptr(vmi, us + o->us_buf, &buf) || !buf || !len)
        return;
    if (len & 1)
        tv_log(vmi, 1, "windows: UNICODE_STRING at 0x%llx has an odd "
               "Length %llu", (unsigned long long)us,
               (unsigned long long)len);
    size_t n = (size_t)len / 2;
    if (n > WIN_NAME_UNITS)
        n = WIN_NAME_UNITS;
    if (rd(vmi, buf, units, 2 * n)) {
        /* a claimed length past the buffer's page: what the page holds */
        size_t in_page = (size_t)(0x1000 - (buf & 0xfff)) / 2;
        if (in_page >= n || rd(vmi, buf, units, 2 * in_page))
            return;
        n = in_page;
    }
    utf16_to_utf8(units, n, out, outlen);
}

typedef struct mcb {
    tinyvmi_module_cb cb;
    void *arg;
} mcb_t;

static int visit_module(struct vmi_instance *vmi, uint64_t e, void *arg)
{
    const win_off_t *o = &W(vmi)->off;
    mcb_t *c = arg;
    tinyvmi_module_t m = {.addr = e};
    rd_ptr(vmi, e + o->ldr_base, &m.base);
    rd_uint(vmi, e + o->ldr_size, 4, &m.size);
    rd_ustring(vmi, e + o->ldr_name, m.name, sizeof m.name);
    return c->cb(c->arg, &m);
}

/* A triage dump's DUMP_DRIVER_ENTRY64: DriverNameOffset (the file offset
 * of a DUMP_STRING: a ULONG count of UTF-16 units, then the units), then
 * at 8 the driver's KLDR_DATA_TABLE_ENTRY (its first 0x88 bytes).  The
 * name is a path; tools show its last component. */
#define DUMP_DRIVER_ENTRY 0x90u
#define DUMP_DRIVER_LDR 8u

static void triage_name(const win_t *w, uint64_t off, char *out,
                        size_t outlen)
{
    out[0] = '\0';
    if (off < w->pool_off || off - w->pool_off > w->pool_len ||
        w->pool_len - (off - w->pool_off) < 4)
        return;
    const uint8_t *s = w->pool + (off - w->pool_off);
    size_t room = (w->pool_len - (size_t)(off - w->pool_off) - 4) / 2;
    size_t n = tv_le32(s);
    if (n > room)
        n = room;
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (tv_le16(s + 4 + 2 * i) == '\\')
            from = i + 1;
    size_t units = n - from < WIN_NAME_UNITS ? n - from : WIN_NAME_UNITS;
    utf16_to_utf8(s + 4 + 2 * from, units, out, outlen);
}

static int triage_modules(struct vmi_instance *vmi, tinyvmi_module_cb cb,
                          void *arg)
{
    const win_t *w = W(vmi);
    const win_off_t *o = &w->off;
    size_t n = w->ndrivers < WIN_MAX_MODULES ? w->ndrivers : WIN_MAX_MODULES;
    bool fields = o->ldr_base + 8 <= DUMP_DRIVER_ENTRY - DUMP_DRIVER_LDR &&
                  o->ldr_size + 4 <= DUMP_DRIVER_ENTRY - DUMP_DRIVER_LDR;
    tv_log(vmi, 1, "windows: PsLoadedModuleList is not in the triage dump; "
           "its own list of %zu drivers instead", n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = w->drivers + i * DUMP_DRIVER_ENTRY;
        tinyvmi_module_t m = {.addr = 0};
        if (fields) {
            m.base = le_n(e + DUMP_DRIVER_LDR + o->ldr_base, o->ptr);
            m.size = tv_le32(e + DUMP_DRIVER_LDR + o->ldr_size);
        }
        triage_name(w, tv_le32(e), m.name, sizeof m.name);
        if (cb(arg, &m))
            break;
    }
    return TINYVMI_OK;
}

static int win_modules(struct vmi_instance *vmi, tinyvmi_module_cb cb,
                       void *arg)
{
    win_t *w = W(vmi);
    mcb_t c = {cb, arg};
    uint64_t first;
    /* a triage dump that did not save the list: the dump's own list */
    if (w->read_va && w->drivers && w->mod_head && w->off.ldr_name &&
        rd_ptr(vmi, w->mod_head, &first))
        return triage_modules(vmi, cb, arg);
    if (!w->mod_head || !w->off.ldr_name)
        return tv_fail(vmi, TINYVMI_ENOENT, "the module list is unknown (no "
                       "PsLoadedModuleList or _KLDR_DATA_TABLE_ENTRY in "
                       "the profile)");
    int rc = walk_ring(vmi, w->mod_head, w->off.ldr_links, WIN_MAX_MODULES,
                       "module", visit_module, &c);
    if (rc && w->read_va)
        return tv_fail(vmi, rc, "%s (a triage dump saves only some kernel "
                       "memory: the list leaves it there)", vmi->last_error);
    return rc;
}

/* ---- LibVMI's offsets ----------------------------------------------------------- */

static int win_offset(struct vmi_instance *vmi, const char *name,
                      uint64_t *value)
{
    const win_t *w = W(vmi);
    const win_off_t *o = &w->off;
    const struct {
        const char *name;
        uint64_t v;
    } fixed[] = {
        {"win_tasks", o->links},   {"win_pdbase", o->pdbase},
        {"win_pid", o->pid},       {"win_pname", o->pname},
        {"win_peb", o->peb},       {"win_ntoskrnl_va", w->base},
    };
    uint64_t a;
    for (size_t i = 0; i < TV_ARRAY_LEN(fixed); i++)
        if (!tv_strcmp(name, fixed[i].name)) {
            if (fixed[i].v == UINT64_MAX)
                return TINYVMI_ENOENT;
            *value = fixed[i].v;
            return TINYVMI_OK;
        }
    if (!tv_strcmp(name, "win_kdbg") &&
        tv_symtab_symbol(vmi->symtab, "KdDebuggerDataBlock", &a)) {
        *value = a; /* LibVMI: the KDBG's offset from the kernel base */
        return TINYVMI_OK;
    }
    if (!tv_strcmp(name, "win_kdvb") && !tv_os_ksym(vmi, "KdVersionBlock",
                                                    value))
        return TINYVMI_OK;
    if (!tv_strcmp(name, "win_sysproc") &&
        !tv_os_ksym(vmi, "PsInitialSystemProcess", &a) && !rd_ptr(vmi, a,
                                                                  value))
        return TINYVMI_OK;
    if (!tv_strcmp(name, "win_ntoskrnl") && !w->read_va &&
        !tv_translate(vmi, NULL, vmi->kdtb, w->base, value, NULL))
        return TINYVMI_OK; /* the physical base */
    return TINYVMI_ENOENT;
}

/* ---- the version ------------------------------------------------------------------- */

static win_ver_t ver_of_build(uint32_t b)
{
    static const struct {
        uint32_t from, to;
        win_ver_t v;
    } t[] = {
        {2195, 2195, VMI_OS_WINDOWS_2000}, {2600, 2600, VMI_OS_WINDOWS_XP},
        {3790, 3790, VMI_OS_WINDOWS_2003}, {6000, 6002, VMI_OS_WINDOWS_VISTA},
        {7600, 7601, VMI_OS_WINDOWS_7},    {9200, 9600, VMI_OS_WINDOWS_8},
        {10240, 0xffff, VMI_OS_WINDOWS_10},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(t); i++)
        if (b >= t[i].from && b <= t[i].to)
            return t[i].v;
    return VMI_OS_WINDOWS_UNKNOWN;
}

/* NtBuildNumber: the build in the low 16 bits, 0xF in the top nibble for
 * a free build; a dump header's MinorVersion when memory lacks it. */
static void find_version(struct vmi_instance *vmi, win_t *w, uint32_t hdr)
{
    uint64_t va, v;
    if (!tv_os_ksym(vmi, "NtBuildNumber", &va) && !rd_uint(vmi, va, 4, &v) &&
        (v & 0xffff))
        w->build = (uint32_t)(v & 0xffff);
    else
        w->build = hdr & 0xffff;
    w->ver = ver_of_build(w->build);
    if (w->build)
        tv_fmt(w->release, sizeof w->release, "build %u", w->build);
}

TV_API win_ver_t vmi_get_winver(vmi_instance_t vmi)
{
    if (!vmi || vmi->os != VMI_OS_WINDOWS || !vmi->osdata)
        return VMI_OS_WINDOWS_NONE;
    return W(vmi)->ver;
}

TV_API uint16_t vmi_get_win_buildnumber(vmi_instance_t vmi)
{
    if (!vmi || vmi->os != VMI_OS_WINDOWS || !vmi->osdata)
        return 0;
    return (uint16_t)W(vmi)->build;
}

TV_API const char *vmi_get_winver_str(vmi_instance_t vmi)
{
    static const struct {
        win_ver_t v;
        const char *s;
    } names[] = {
        {VMI_OS_WINDOWS_NONE, "VMI_OS_WINDOWS_NONE"},
        {VMI_OS_WINDOWS_UNKNOWN, "VMI_OS_WINDOWS_UNKNOWN"},
        {VMI_OS_WINDOWS_2000, "VMI_OS_WINDOWS_2000"},
        {VMI_OS_WINDOWS_XP, "VMI_OS_WINDOWS_XP"},
        {VMI_OS_WINDOWS_2003, "VMI_OS_WINDOWS_2003"},
        {VMI_OS_WINDOWS_VISTA, "VMI_OS_WINDOWS_VISTA"},
        {VMI_OS_WINDOWS_2008, "VMI_OS_WINDOWS_2008"},
        {VMI_OS_WINDOWS_7, "VMI_OS_WINDOWS_7"},
        {VMI_OS_WINDOWS_8, "VMI_OS_WINDOWS_8"},
        {VMI_OS_WINDOWS_10, "VMI_OS_WINDOWS_10"},
    };
    win_ver_t v = vmi_get_winver(vmi);
    for (size_t i = 0; i < TV_ARRAY_LEN(names); i++)
        if (names[i].v == v)
            return names[i].s;
    return "<Illegal value for Windows version>";
}

/* The KDBG's header: OwnerTag "KDBG" at 0x10 and its Size at 0x14 (a
 * ULONG in both the 32- and 64-bit DBGKD_DEBUG_DATA_HEADER), the size
 * being LibVMI's version value up to Windows 8. */
TV_API win_ver_t vmi_get_winver_manual(vmi_instance_t vmi, addr_t kdbg_pa)
{
    uint8_t h[0x18];
    if (!vmi || tv_read_pa(vmi, kdbg_pa, h, sizeof h, NULL) ||
        tv_memcmp(h + 0x10, "KDBG", 4))
        return VMI_OS_WINDOWS_UNKNOWN;
    uint32_t size = tv_le32(h + 0x14);
    static const win_ver_t known[] = {
        VMI_OS_WINDOWS_2000, VMI_OS_WINDOWS_XP,   VMI_OS_WINDOWS_2003,
        VMI_OS_WINDOWS_VISTA, VMI_OS_WINDOWS_2008, VMI_OS_WINDOWS_7,
        VMI_OS_WINDOWS_8,
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(known); i++)
        if ((uint32_t)known[i] == size)
            return known[i];
    return size > (uint32_t)VMI_OS_WINDOWS_8 ? VMI_OS_WINDOWS_10
                                             : VMI_OS_WINDOWS_UNKNOWN;
}

/* ---- start-up ------------------------------------------------------------------------ */

static void fini(struct vmi_instance *vmi)
{
    if (vmi->osdata)
        tv_free(vmi, vmi->osdata, sizeof(win_t));
    vmi->osdata = NULL;
}

static const tv_os_ops_t windows_ops = {
    .name = "Windows",
    .type = VMI_OS_WINDOWS,
    .fini = fini,
    .processes = win_processes,
    .modules = win_modules,
    .current = win_current,
    .offset = win_offset,
};

/* The kernel's image base: what start-up knows, else what the recorded
 * addresses imply, else KdVersionBlock's address from the config. */
static int find_base(struct vmi_instance *vmi, const tv_win_start_t *s,
                     win_t *w)
{
    char err[TV_ERRMSG_MAX];
    uint64_t base = 0, rva;
    int rc = win_profile_check(vmi->symtab, s, &base, err, sizeof err);
    if (rc)
        return tv_fail(vmi, rc, "%s", err);
    if (s && s->kernel_base)
        base = s->kernel_base;
    if (!base && s && s->kdvb &&
        tv_symtab_symbol(vmi->symtab, "KdVersionBlock", &rva))
        base = s->kdvb - rva;
    if (!base)
        return tv_fail(vmi, TINYVMI_ENOENT, "the Windows kernel's base is "
                       "unknown: give win_ntoskrnl_va (or win_kdvb) in the "
                       "config, or a crash dump that records it");
    w->base = base;
    return TINYVMI_OK;
}

/* The kernel's page tables: the triage dump needs none; else the vCPU's
 * (or --dtb's), else the dump header's DirectoryTableBase. */
static int find_paging(struct vmi_instance *vmi, const tv_win_start_t *s,
                       const win_t *w)
{
    if (w->read_va) {
        vmi->kdtb = s ? s->dtb : 0; /* reported, not walked */
        return TINYVMI_OK;
    }
    /* Windows trims pages into transition: their PTEs keep the frame, and
     * reads through them are what the kernel itself would get back. */
    tv_paging_transition(vmi);
    if (vmi->pt)
        return TINYVMI_OK;
    if (s && s->dtb && s->ptr_size) {
        page_mode_t m = s->ptr_size == 8 ? VMI_PM_IA32E
                        : s->pae         ? VMI_PM_PAE
                                         : VMI_PM_LEGACY;
        return tinyvmi_set_paging(vmi, m, s->dtb) ? vmi->last_status
                                                  : TINYVMI_OK;
    }
    return tv_fail(vmi, TINYVMI_ESTATE, "no page tables for the Windows "
                   "kernel: the target has no vCPU registers and no "
                   "DirectoryTableBase (give --page-mode and --dtb)");
}

/* Once the kernel is readable, its own page tables: System's
 * DirectoryTableBase, when the one in use does not map user space of
 * another process (a vCPU may have been in one). */
static void system_dtb(struct vmi_instance *vmi, win_t *w)
{
    uint64_t sym, ep, dtb, pa;
    if (w->read_va || !vmi->pt ||
        tv_os_ksym(vmi, "PsInitialSystemProcess", &sym) ||
        rd_ptr(vmi, sym, &ep) || !ep ||
        rd_ptr(vmi, ep + w->off.pdbase, &dtb))
        return;
    dtb &= vmi->pt->root_mask;
    if (!dtb || dtb == vmi->kdtb ||
        tv_translate(vmi, NULL, dtb, w->ps_head, &pa, NULL))
        return;
    tv_log(vmi, 2, "windows: switching to System's page tables at 0x%llx",
           (unsigned long long)dtb);
    tinyvmi_set_paging(vmi, vmi->page_mode, dtb);
}

static void copy_current(const tv_win_start_t *s, win_t *w)
{
    const win_off_t *o = &w->off;
    if (!s || !s->cur_process || !s->cur_process_len)
        return;
    w->cur = s->cur_process;
    /* the copy may be longer than an EPROCESS (trailing pool data) */
    w->cur_len = o->eproc_size && o->eproc_size < s->cur_process_len
                     ? (size_t)o->eproc_size
                     : s->cur_process_len;
    if (s->cur_thread && o->thread_process != UINT64_MAX &&
        o->thread_process + o->ptr <= s->cur_thread_len)
        w->cur_va = le_n(s->cur_thread + o->thread_process, o->ptr);
}

static int start(struct vmi_instance *vmi, const tv_os_hints_t *hints,
                 const tv_win_start_t *s, win_t *w)
{
    uint64_t a;
    int rc;
    w->off.ptr = win_profile_ptr_size(vmi->symtab);
    if (s) {
        w->read_va = s->read_va;
        w->read_arg = s->read_arg;
        w->drivers = s->drivers;
        w->ndrivers = s->drivers ? s->ndrivers : 0;
        w->pool = s->pool;
        w->pool_len = s->pool_len;
        w->pool_off = s->pool_off;
    }
    if ((rc = find_base(vmi, s, w)) || (rc = find_paging(vmi, s, w)))
        return rc;
    if (!w->read_va && vmi->pt && vmi->pt->addr_width != w->off.ptr)
        return tv_fail(vmi, TINYVMI_EFORMAT, "the profile is for a %u-bit "
                       "kernel, the target pages with %s (%u-bit)",
                       w->off.ptr * 8, vmi->pt->name,
                       vmi->pt->addr_width * 8u);
    vmi->slide = (int64_t)w->base;
    vmi->slide_from = 0; /* every symbol is an offset from the base */
    if ((rc = proc_offsets(vmi, &w->off, hints)))
        return rc;
    if (!module_offsets(vmi->symtab, &w->off))
        w->off.ldr_name = 0;
    copy_current(s, w);
    if ((rc = tv_os_ksym(vmi, "PsActiveProcessHead", &w->ps_head)))
        return rc;
    if (!tv_os_ksym(vmi, "PsLoadedModuleList", &a))
        w->mod_head = a;
    if ((rc = check_head(vmi, w)))
        return rc;
    system_dtb(vmi, w);
    find_version(vmi, w, s ? s->build : 0);
    const char *src = tv_symtab_meta(vmi->symtab, "source");
    tv_fmt(w->source, sizeof w->source, "%s",
           s && s->choice[0] ? s->choice : src ? src : "profile");
    return TINYVMI_OK;
}

int tv_windows_init(struct vmi_instance *vmi, struct tv_symtab *tab,
                    const tv_os_hints_t *hints,
                    const struct tv_win_start *s)
{
    tv_os_fini(vmi);
    vmi->symtab = tab;
    if (!tab)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "the Windows layer needs a "
                       "profile (ISF or Rekall; --profile, --symbols or a "
                       "config entry)");
    win_t *w = tv_calloc(vmi, 1, sizeof *w);
    if (!w) {
        tv_os_fini(vmi);
        return tv_fail(vmi, TINYVMI_ENOMEM, "no memory for the Windows "
                       "layer");
    }
    vmi->osdata = w;
    vmi->osops = &windows_ops;
    vmi->os = VMI_OS_WINDOWS;
    int rc = start(vmi, hints, s, w);
    if (rc) {
        tv_os_fini(vmi);
        return rc;
    }
    vmi->kinfo = (tinyvmi_kernel_t){
        .version = TINYVMI_KERNEL_VERSION,
        .os = VMI_OS_WINDOWS,
        .text_va = w->base,
        .slide = vmi->slide,
        .dtb = vmi->kdtb,
        .page_mode = vmi->page_mode,
        .source = w->source,
        .release = w->release,
        .banner = "",
        .nsymbols = tv_symtab_nsymbols(vmi->symtab),
        .ntypes = tv_symtab_ntypes(vmi->symtab),
    };
    if (!w->read_va)
        tv_translate(vmi, NULL, vmi->kdtb, w->base, &vmi->kinfo.text_pa,
                     NULL);
    tv_log(vmi, 2, "windows: ntoskrnl at 0x%llx, %s, dtb 0x%llx, profile: "
           "%s", (unsigned long long)w->base,
           w->release[0] ? w->release : "build unknown",
           (unsigned long long)vmi->kdtb, w->source);
    return TINYVMI_OK;
}
