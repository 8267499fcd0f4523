/*
 * The live QEMU driver (see qemu.h).
 *
 * Memory is the shared RAM file, mapped: reads and writes never go through
 * QEMU.  The gdbstub is the one run-control channel while we are attached:
 * QEMU stops the guest when a gdb client connects, ^C stops it, "vCont"
 * runs it, and breakpoints, watchpoints and single steps are reported as
 * stop replies.  QMP is used to find things (RAM backends, the physical
 * layout, the gdbstub's address) and to restore the run state at detach.
 *
 * Run state: `running` says a continue is outstanding on the gdb link;
 * `pauses` counts vmi_pause_vm; `held` says the guest is stopped at an
 * event the caller has not released.  The guest runs exactly when none of
 * pauses, held or a queued stop says otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvmi/events.h>

#include "driver/qemu/link.h"
#include "driver/qemu/parse.h"
#include "driver/qemu/qemu.h"
#include "profile/json.h"

#define QM_TIMEOUT 10000      /* ms for any one exchange with QEMU */
#define QM_MAX_BACKENDS 8
#define QM_MAX_RANGES 64
#define QM_MAX_VCPUS 64
#define QM_MAX_BPS 4096
#define QM_MAX_GDB_REGS 512
#define QM_BACKEND_SHIFT TV_QM_BACKEND_SHIFT

typedef struct qm_backend {
    char id[64];
    uint8_t *base;
    uint64_t size;
} qm_backend_t;

typedef struct qm_reg { /* a LibVMI register in the gdbstub's numbering */
    int16_t num;            /* -1: the stub does not have it */
    uint8_t bytes;
} qm_reg_t;

typedef struct qm_point {
    uint64_t va, len;
    uint8_t type;           /* gdb Z type: 0 sw, 1 hw, 2 write, 3 read, 4 access */
} qm_point_t;

typedef struct qemu {
    struct vmi_instance *vmi;
    tv_qmp_t qmp;
    tv_rsp_t rsp;
    char gdb[300];
    char qmp_path[TV_LINK_ERR];
    bool kvm;
    bool was_running;        /* the run state found at attach */
    bool writable;
    bool phys_writes;        /* TCG: writes go through the gdbstub */

    qm_backend_t be[QM_MAX_BACKENDS];
    size_t nbe;
    tv_range_t ranges[QM_MAX_RANGES];
    size_t nranges;

    unsigned nvcpu;
    unsigned tid[QM_MAX_VCPUS];  /* gdb thread id of each vCPU */
    qm_reg_t reg[TINYVMI_NREGS];
    uint16_t gsize[QM_MAX_GDB_REGS]; /* bytes of each gdb register */
    int ngregs;
    uint64_t *rcache;            /* [vcpu][TINYVMI_NREGS] while stopped */
    uint8_t *rvalid;
    uint8_t *gdone;              /* per vCPU: 'g' read since the last run */
    uint8_t *hdone;              /* per vCPU: `info registers` read */
    int cur_thread;              /* thread Hg selected, 0: unknown */

    bool running, held, queued;
    unsigned pauses;
    tv_stop_t queue;
    int hit_vcpu;                /* vCPU reported at a breakpoint, or -1 */
    uint64_t step_mask;

    qm_point_t *pt;
    size_t npt, cappt;

    pid_t watchdog;
    int watchdog_fd;
} qemu_t;

static int qfail(qemu_t *q, int rc, const char *what, const char *why)
{
    return tv_fail(q->vmi, rc ? rc : TINYVMI_EIO, "%s: %s", what, why);
}

/* ---- QMP: what the machine is made of ------------------------------------ */

/* A string property of a QOM object into buf. */
static int qom_get(qemu_t *q, const char *path, const char *prop,
                   tv_jval_t *v)
{
    char qp[200], args[300];
    if (!tv_json_quote(path, qp, sizeof qp))
        return TINYVMI_EINVAL;
    snprintf(args, sizeof args, "{\"path\":%s,\"property\":\"%s\"}", qp, prop);
    int rc = tv_qmp_exec(&q->qmp, "qom-get", args, QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "qom-get", q->qmp.why);
    tv_json_t j;
    tv_json_init(&j, q->qmp.ret, q->qmp.retlen);
    if (tv_json_next(&j, v))
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "qom-get %s.%s: bad reply",
                       path, prop);
    return TINYVMI_OK;
}

static int map_backend(qemu_t *q, qm_backend_t *b)
{
    char path[160];
    snprintf(path, sizeof path, "/objects/%s", b->id);
    tv_jval_t v;
    int rc = qom_get(q, path, "share", &v);
    if (rc)
        return rc;
    if (v.type != TV_J_TRUE)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                       "guest RAM (%s) is not shared with other processes: "
                       "start QEMU with share=on on its memory-backend-file "
                       "(-object memory-backend-file,id=%s,size=...,"
                       "mem-path=FILE,share=on)", b->id, b->id);
    if ((rc = qom_get(q, path, "size", &v)))
        return rc;
    if (!tv_json_u64(&v, &b->size) || !b->size)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "%s: bad size", b->id);
    if ((rc = qom_get(q, path, "mem-path", &v)))
        return rc;
    char file[4096];
    if (v.type != TV_J_STR || v.len >= sizeof file)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "%s: bad mem-path", b->id);
    file[tv_json_decode(&v, file, sizeof file - 1)] = '\0';

    int fd = open(file, O_RDWR | O_CLOEXEC);
    q->writable = fd >= 0;
    if (fd < 0)
        fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = tv_fail(q->vmi, TINYVMI_ENOENT, "guest RAM file %s: %s", file,
                     strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (S_ISDIR(sb.st_mode) || (uint64_t)sb.st_size < b->size) {
        close(fd);
        return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                       "guest RAM %s is not one file of %llu bytes (mem-path "
                       "%s): give mem-path a file name, not a directory",
                       b->id, (unsigned long long)b->size, file);
    }
    void *m = mmap(NULL, b->size, PROT_READ | (q->writable ? PROT_WRITE : 0),
                   MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return tv_fail(q->vmi, TINYVMI_EIO, "mapping %s: %s", file,
                       strerror(errno));
    b->base = m;
    return TINYVMI_OK;
}

/* Every memory-backend-file under /objects. */
static int find_backends(qemu_t *q)
{
    int rc = tv_qmp_exec(&q->qmp, "qom-list", "{\"path\":\"/objects\"}",
                         QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "qom-list /objects", q->qmp.why);
    tv_json_t j;
    tv_jval_t v, k;
    bool anon = false;
    tv_json_init(&j, q->qmp.ret, q->qmp.retlen);
    if (tv_json_next(&j, &v) || v.type != TV_J_ARR)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "qom-list: bad reply");
    while ((rc = tv_json_elem(&j)) > 0) {
        char name[64] = "", type[64] = "";
        if (tv_json_next(&j, &v) || v.type != TV_J_OBJ)
            return tv_fail(q->vmi, TINYVMI_EFORMAT, "qom-list: bad entry");
        while ((rc = tv_json_key(&j, &k)) > 0) {
            char *dst = tv_json_eq(&k, "name") ? name
                      : tv_json_eq(&k, "type") ? type : NULL;
            if (tv_json_next(&j, &v))
                return TINYVMI_EFORMAT;
            if (dst && v.type == TV_J_STR && v.len < 64)
                dst[tv_json_decode(&v, dst, 63)] = '\0';
        }
        if (!strcmp(type, "child<memory-backend-file>") &&
            q->nbe < QM_MAX_BACKENDS)
            snprintf(q->be[q->nbe++].id, sizeof q->be[0].id, "%s", name);
        else if (!strncmp(type, "child<memory-backend-", 21))
            anon = true;
    }
    if (rc < 0)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "qom-list: bad reply");
    if (!q->nbe)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                       "QEMU keeps guest RAM in %s memory TinyVMI cannot map: "
                       "start it with -object memory-backend-file,id=ram0,"
                       "size=SIZE,mem-path=FILE,share=on -machine "
                       "memory-backend=ram0", anon ? "a backend's private"
                                                   : "anonymous");
    for (size_t i = 0; i < q->nbe; i++)
        if ((rc = map_backend(q, &q->be[i])))
            return rc;
    return TINYVMI_OK;
}

static int find_layout(qemu_t *q)
{
    char *text;
    int rc = tv_qmp_hmp(&q->qmp, "info mtree -f", &text, QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "info mtree", q->qmp.why);
    tv_qm_backend_id_t ids[QM_MAX_BACKENDS];
    for (size_t i = 0; i < q->nbe; i++)
        ids[i] = (tv_qm_backend_id_t){q->be[i].id, q->be[i].size};
    char why[TV_LINK_ERR];
    rc = tv_qemu_mtree(text, ids, q->nbe, q->ranges, QM_MAX_RANGES,
                       &q->nranges, why, sizeof why);
    free(text);
    return rc ? tv_fail(q->vmi, rc, "%s", why) : TINYVMI_OK;
}

/* Where the gdbstub listens, from the "gdb" chardev's description
 * ("disconnected:unix:/p,server=on", "disconnected:tcp:127.0.0.1:1234,
 * server=on"); empty if QEMU has none. */
static int find_gdbstub(qemu_t *q)
{
    int rc = tv_qmp_exec(&q->qmp, "query-chardev", NULL, QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "query-chardev", q->qmp.why);
    tv_json_t j;
    tv_jval_t v, k;
    tv_json_init(&j, q->qmp.ret, q->qmp.retlen);
    if (tv_json_next(&j, &v) || v.type != TV_J_ARR)
        return TINYVMI_EFORMAT;
    while ((rc = tv_json_elem(&j)) > 0) {
        char label[64] = "", file[300] = "";
        if (tv_json_next(&j, &v) || v.type != TV_J_OBJ)
            return TINYVMI_EFORMAT;
        while ((rc = tv_json_key(&j, &k)) > 0) {
            bool isl = tv_json_eq(&k, "label"), isf = tv_json_eq(&k, "filename");
            if (tv_json_next(&j, &v))
                return TINYVMI_EFORMAT;
            if (isl && v.type == TV_J_STR && v.len < sizeof label)
                label[tv_json_decode(&v, label, sizeof label - 1)] = '\0';
            if (isf && v.type == TV_J_STR && v.len < sizeof file)
                file[tv_json_decode(&v, file, sizeof file - 1)] = '\0';
        }
        if (strcmp(label, "gdb"))
            continue;
        const char *spec = file;
        if (strncmp(spec, "disconnected:", 13))
            return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                           "QEMU's gdbstub (%s) already has a client; TinyVMI "
                           "needs it for registers and events: detach that "
                           "debugger first", file);
        spec += 13;
        snprintf(q->gdb, sizeof q->gdb, "%.*s", (int)strcspn(spec, ","), spec);
        return TINYVMI_OK;
    }
    return TINYVMI_OK;
}

/* No gdbstub: ask QEMU for one on a private unix socket.  It stays for
 * QEMU's lifetime (QEMU 7.2 keeps the chardev even after "gdbserver
 * none"), and later attaches find it through query-chardev. */
static int open_gdbstub(qemu_t *q)
{
    const char *dir = getenv("TMPDIR");
    char line[400], *out = NULL;
    snprintf(q->gdb, sizeof q->gdb, "unix:%s/tinyvmi-gdb-%d-%p.sock",
             dir && *dir ? dir : "/tmp", (int)getpid(), (void *)q);
    snprintf(line, sizeof line, "gdbserver %s,server=on,wait=off", q->gdb);
    int rc = tv_qmp_hmp(&q->qmp, line, &out, QM_TIMEOUT);
    if (!rc && out && strstr(out, "annot"))
        rc = tv_fail(q->vmi, TINYVMI_EIO, "QEMU could not open a gdbstub: %s",
                     out);
    else if (rc)
        rc = qfail(q, rc, "opening a gdbstub", q->qmp.why);
    free(out);
    return rc;
}

/* A member of the last reply's "return" object; false if absent. */
static bool qmp_member(qemu_t *q, const char *key, tv_jval_t *v)
{
    tv_json_t j;
    tv_jval_t k;
    tv_json_init(&j, q->qmp.ret, q->qmp.retlen);
    if (tv_json_next(&j, v) || v->type != TV_J_OBJ)
        return false;
    while (tv_json_key(&j, &k) > 0) {
        if (tv_json_eq(&k, key))
            return tv_json_next(&j, v) == 0;
        if (tv_json_skip(&j))
            return false;
    }
    return false;
}

/* QEMU's run state ("running", "paused", "debug", ...) into buf. */
static int run_state(qemu_t *q, char *buf, size_t cap)
{
    tv_jval_t v;
    int rc = tv_qmp_exec(&q->qmp, "query-status", NULL, QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "query-status", q->qmp.why);
    if (!qmp_member(q, "status", &v) || v.type != TV_J_STR || v.len >= cap)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "query-status: no status");
    buf[tv_json_decode(&v, buf, cap - 1)] = '\0';
    return TINYVMI_OK;
}

static int query_state(qemu_t *q)
{
    tv_jval_t v;
    char state[32];
    int rc = tv_qmp_exec(&q->qmp, "query-kvm", NULL, QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "query-kvm", q->qmp.why);
    q->kvm = qmp_member(q, "enabled", &v) && v.type == TV_J_TRUE;
    if ((rc = run_state(q, state, sizeof state)))
        return rc;
    q->was_running = !strcmp(state, "running");
    /* "debug": stopped by a gdb client, and there is none now (the stub
     * takes one at a time and we are about to be it): a debugger that
     * went away left it so; it runs again when we detach. */
    if (!strcmp(state, "debug")) {
        tv_log(q->vmi, 1, "QEMU was stopped by a debugger that is gone: "
               "the guest runs again when TinyVMI detaches");
        q->was_running = true;
    }
    return TINYVMI_OK;
}

/* ---- The gdbstub: threads and registers ----------------------------------- */

static int gdb_fail(qemu_t *q, int rc, const char *what)
{
    return tv_fail(q->vmi, rc ? rc : TINYVMI_EIO, "gdbstub %s: %s", what,
                   q->rsp.why);
}

static int gdb_call(qemu_t *q, const char *what, const char *cmd)
{
    int rc = tv_rsp_call(&q->rsp, QM_TIMEOUT, "%s", cmd);
    return rc ? gdb_fail(q, rc, what) : TINYVMI_OK;
}

static int read_threads(qemu_t *q)
{
    const char *ask = "qfThreadInfo";
    for (int round = 0; round < QM_MAX_VCPUS + 1; round++) {
        int rc = gdb_call(q, "thread list", ask);
        if (rc)
            return rc;
        ask = "qsThreadInfo";
        if (q->rsp.pkt[0] == 'l')
            break;
        if (q->rsp.pkt[0] != 'm')
            return tv_fail(q->vmi, TINYVMI_EFORMAT,
                           "gdbstub thread list: unexpected %.40s", q->rsp.pkt);
        for (char *p = q->rsp.pkt + 1; *p;) {
            char *end;
            unsigned long t = strtoul(p, &end, 16);
            if (end == p || q->nvcpu == QM_MAX_VCPUS)
                return tv_fail(q->vmi, TINYVMI_EFORMAT,
                               "gdbstub thread list: bad %.40s", q->rsp.pkt);
            q->tid[q->nvcpu++] = (unsigned)t;
            p = *end == ',' ? end + 1 : end;
        }
    }
    if (!q->nvcpu)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "gdbstub lists no vCPUs");
    return TINYVMI_OK;
}

/* gdb's register names to LibVMI's (x86; 32-bit names too). */
static const struct {
    const char *name;
    reg_t reg, alias;
} gdb_names[] = {
    {"rax", RAX, RAX}, {"rbx", RBX, RBX}, {"rcx", RCX, RCX}, {"rdx", RDX, RDX},
    {"rsi", RSI, RSI}, {"rdi", RDI, RDI}, {"rbp", RBP, RBP}, {"rsp", RSP, RSP},
    {"eax", RAX, RAX}, {"ebx", RBX, RBX}, {"ecx", RCX, RCX}, {"edx", RDX, RDX},
    {"esi", RSI, RSI}, {"edi", RDI, RDI}, {"ebp", RBP, RBP}, {"esp", RSP, RSP},
    {"r8", R8, R8}, {"r9", R9, R9}, {"r10", R10, R10}, {"r11", R11, R11},
    {"r12", R12, R12}, {"r13", R13, R13}, {"r14", R14, R14},
    {"r15", R15, R15}, {"rip", RIP, RIP}, {"eip", RIP, RIP},
    {"eflags", RFLAGS, RFLAGS}, {"cs", CS_SEL, CS_SEL}, {"ss", SS_SEL, SS_SEL},
    {"ds", DS_SEL, DS_SEL}, {"es", ES_SEL, ES_SEL}, {"fs", FS_SEL, FS_SEL},
    {"gs", GS_SEL, GS_SEL}, {"fs_base", FS_BASE, FS_BASE},
    {"gs_base", GS_BASE, GS_BASE}, {"k_gs_base", SHADOW_GS, MSR_SHADOW_GS_BASE},
    {"cr0", CR0, CR0}, {"cr2", CR2, CR2}, {"cr3", CR3, CR3}, {"cr4", CR4, CR4},
    {"efer", MSR_EFER, MSR_EFER},
};

static int name_reg(void *arg, const char *name, long num, long bits)
{
    qemu_t *q = arg;
    if (num >= 0 && num < QM_MAX_GDB_REGS && bits > 0 && bits % 8 == 0 &&
        bits <= 8 * 64) {
        q->gsize[num] = (uint16_t)(bits / 8);
        if (num >= q->ngregs)
            q->ngregs = (int)num + 1;
    }
    if (num < 0 || num >= QM_MAX_GDB_REGS || bits <= 0 || bits > 64 ||
        bits % 8)
        return 0;
    for (size_t i = 0; i < TV_ARRAY_LEN(gdb_names); i++) {
        if (strcmp(name, gdb_names[i].name))
            continue;
        qm_reg_t r = {(int16_t)num, (uint8_t)(bits / 8)};
        q->reg[gdb_names[i].reg] = r;
        q->reg[gdb_names[i].alias] = r;
    }
    return 0;
}

static int read_xml(qemu_t *q, const char *annex, char **out)
{
    size_t len = 0, cap = 0;
    *out = NULL;
    for (unsigned round = 0; round < 256; round++) {
        char ask[200];
        snprintf(ask, sizeof ask, "qXfer:features:read:%s:%zx,%zx", annex, len,
                 q->rsp.max_pkt - 8);
        int rc = gdb_call(q, "target description", ask);
        if (rc)
            break;
        char kind = q->rsp.pkt[0];
        if (kind != 'm' && kind != 'l')
            return tv_fail(q->vmi, TINYVMI_EFORMAT,
                           "gdbstub target description %s: bad reply", annex);
        size_t n = q->rsp.len - 1;
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(*out, cap);
            if (!p)
                return TINYVMI_ENOMEM;
            *out = p;
        }
        memcpy(*out + len, q->rsp.pkt + 1, n);
        len += n;
        (*out)[len] = '\0';
        if (kind == 'l')
            return TINYVMI_OK;
    }
    free(*out);
    *out = NULL;
    return q->vmi->last_status ? q->vmi->last_status : TINYVMI_ERANGE;
}

typedef struct xml_walk {
    qemu_t *q;
    long num;
    int depth;
} xml_walk_t;

static int walk_xml(xml_walk_t *w, const char *annex);

static int on_reg(void *arg, const char *name, long num, long bits)
{
    return name_reg(((xml_walk_t *)arg)->q, name, num, bits);
}

static int on_include(void *arg, const char *href)
{
    return walk_xml(arg, href);
}

/* A target description and what it includes (registers are numbered
 * across them in document order). */
static int walk_xml(xml_walk_t *w, const char *annex)
{
    char *xml;
    if (w->depth > 4)
        return tv_fail(w->q->vmi, TINYVMI_ELOOP, "gdbstub target description "
                       "includes nest too deep");
    int rc = read_xml(w->q, annex, &xml);
    if (rc)
        return rc;
    w->depth++;
    rc = tv_gdb_xml(xml, &w->num, on_reg, on_include, w);
    w->depth--;
    free(xml);
    return rc;
}

/* Connecting stopped the guest, and QEMU told us so with a stop reply
 * nobody asked for: wait for the stop (QMP), then drop that reply. */
static int settle(qemu_t *q)
{
    for (int i = 0; q->was_running && i < 200; i++) {
        char state[32];
        int rc = run_state(q, state, sizeof state);
        if (rc)
            return rc;
        if (strcmp(state, "running"))
            break;
        usleep(10000);
    }
    while (tv_rsp_pending(&q->rsp, 50)) {
        int rc = tv_rsp_recv(&q->rsp, QM_TIMEOUT);
        if (rc)
            return gdb_fail(q, rc, "connecting");
        if (q->rsp.pkt[0] != 'T' && q->rsp.pkt[0] != 'S')
            return tv_fail(q->vmi, TINYVMI_EFORMAT, "gdbstub: unexpected "
                           "%.40s at connect", q->rsp.pkt);
    }
    return TINYVMI_OK;
}

static int setup_gdb(qemu_t *q)
{
    int rc0 = settle(q);
    if (rc0)
        return rc0;
    int rc = gdb_call(q, "hello", "qSupported:xmlRegisters=i386;vContSupported+");
    if (rc)
        return rc;
    const char *ps = strstr(q->rsp.pkt, "PacketSize=");
    if (ps) {
        unsigned long n = strtoul(ps + 11, NULL, 16);
        q->rsp.max_pkt = n >= 256 && n <= 4096 ? n : 4096;
    }
    if (!strstr(q->rsp.pkt, "qXfer:features:read"))
        return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                       "this gdbstub gives no register description (%.80s)", q->rsp.pkt);
    if (tv_rsp_call(&q->rsp, QM_TIMEOUT, "QStartNoAckMode") == 0 &&
        !strcmp(q->rsp.pkt, "OK"))
        q->rsp.noack = true;
    for (size_t i = 0; i < TINYVMI_NREGS; i++)
        q->reg[i].num = -1;
    xml_walk_t w = {q, 0, 0};
    if ((rc = walk_xml(&w, "target.xml")))
        return rc;
    if (q->reg[RIP].num < 0 || q->reg[CR3].num < 0)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP,
                       "the gdbstub has no x86 registers (RIP, CR3): TinyVMI "
                       "drives x86 guests through QEMU so far");
    if ((rc = read_threads(q)))
        return rc;
    /* QEMU's maintenance packet: m/M take physical addresses from now on. */
    if (!q->kvm && tv_rsp_call(&q->rsp, QM_TIMEOUT, "Qqemu.PhyMemMode:1") == 0 &&
        !strcmp(q->rsp.pkt, "OK"))
        q->phys_writes = true;
    else if (!q->kvm)
        tv_log(q->vmi, 1, "this QEMU has no physical-memory mode on its "
               "gdbstub: writes to guest code may not be seen by TCG");
    q->rcache = calloc(q->nvcpu, TINYVMI_NREGS * sizeof *q->rcache);
    q->rvalid = calloc(q->nvcpu, TINYVMI_NREGS);
    q->gdone = calloc(q->nvcpu, 1);
    q->hdone = calloc(q->nvcpu, 1);
    return q->rcache && q->rvalid && q->gdone && q->hdone ? TINYVMI_OK
                                                          : TINYVMI_ENOMEM;
}

static void invalidate_regs(qemu_t *q)
{
    memset(q->rvalid, 0, q->nvcpu * (size_t)TINYVMI_NREGS);
    memset(q->gdone, 0, q->nvcpu);
    memset(q->hdone, 0, q->nvcpu);
}

static int select_thread(qemu_t *q, unsigned vcpu)
{
    if (q->cur_thread == (int)q->tid[vcpu])
        return TINYVMI_OK;
    char ask[32];
    snprintf(ask, sizeof ask, "Hg%x", q->tid[vcpu]);
    int rc = gdb_call(q, "selecting a vCPU", ask);
    q->cur_thread = rc ? 0 : (int)q->tid[vcpu];
    return rc;
}

static uint64_t hex_le(const char *p, size_t bytes, bool *ok)
{
    uint64_t v = 0;
    *ok = strlen(p) >= bytes * 2;
    for (size_t i = 0; *ok && i < bytes; i++) {
        int b = tv_gdb_hex_byte(p + 2 * i);
        *ok = b >= 0;
        v |= (uint64_t)(b < 0 ? 0 : b) << (8 * i);
    }
    return v;
}

/* What only the monitor's `info registers` shows (segment bases, limits
 * and rights, GDTR, IDTR, debug registers), into the stopped vCPU's cache. */
static int monitor_regs(qemu_t *q, unsigned vcpu)
{
    char *text;
    q->hdone[vcpu] = 1;
    int rc = tv_qmp_hmp_cpu(&q->qmp, "info registers", (int)vcpu, &text,
                            QM_TIMEOUT);
    if (rc)
        return qfail(q, rc, "info registers", q->qmp.why);
    uint64_t vals[TINYVMI_NREGS];
    uint8_t valid[TINYVMI_NREGS] = {0};
    tv_qemu_info_regs(text, vals, valid);
    free(text);
    for (size_t r = 0; r < TINYVMI_NREGS; r++) {
        size_t slot = (size_t)vcpu * TINYVMI_NREGS + r;
        if (valid[r] && q->reg[r].num < 0) {
            q->rcache[slot] = vals[r];
            q->rvalid[slot] = 1;
        }
    }
    return TINYVMI_OK;
}

static bool monitor_has(reg_t reg)
{
    return (reg >= DR0 && reg <= DR7) ||
           (reg >= CS_SEL && reg <= LDTR_ARBYTES);
}

/* All registers the 'g' packet carries, into the vCPU's cache: one round
 * trip instead of one per register. */
static int fetch_all(qemu_t *q, unsigned vcpu)
{
    q->gdone[vcpu] = 1;
    int rc = select_thread(q, vcpu);
    if (!rc)
        rc = gdb_call(q, "reading registers", "g");
    if (rc)
        return rc;
    size_t have = q->rsp.len / 2, off[QM_MAX_GDB_REGS + 1];
    off[0] = 0;
    for (int n = 0; n < q->ngregs; n++)
        off[n + 1] = off[n] + q->gsize[n];
    for (size_t r = 0; r < TINYVMI_NREGS; r++) {
        int n = q->reg[r].num;
        if (n < 0 || n >= q->ngregs || off[n] + q->reg[r].bytes > have)
            continue;
        bool ok;
        uint64_t v = hex_le(q->rsp.pkt + 2 * off[n], q->reg[r].bytes, &ok);
        if (ok && q->rsp.pkt[2 * off[n]] != 'x') { /* "xx": unavailable */
            q->rcache[(size_t)vcpu * TINYVMI_NREGS + r] = v;
            q->rvalid[(size_t)vcpu * TINYVMI_NREGS + r] = 1;
        }
    }
    return TINYVMI_OK;
}

/* Reads one register of a stopped vCPU (cached until the guest runs). */
static int stopped_reg(qemu_t *q, unsigned vcpu, reg_t reg, uint64_t *out)
{
    size_t slot = (size_t)vcpu * TINYVMI_NREGS + reg;
    if (!q->rvalid[slot] && !q->gdone[vcpu]) {
        int rc = fetch_all(q, vcpu);
        if (rc)
            return rc;
    }
    if (!q->rvalid[slot] && q->reg[reg].num < 0 && !q->hdone[vcpu]) {
        int rc = monitor_regs(q, vcpu);
        if (rc)
            return rc;
    }
    if (q->rvalid[slot]) {
        *out = q->rcache[slot];
        return TINYVMI_OK;
    }
    if (q->reg[reg].num < 0)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "QEMU's monitor shows no "
                       "register %llu for vCPU %u", (unsigned long long)reg,
                       vcpu);
    int rc = select_thread(q, vcpu);
    char ask[16];
    snprintf(ask, sizeof ask, "p%x", (unsigned)q->reg[reg].num);
    if (!rc)
        rc = gdb_call(q, "reading a register", ask);
    if (rc)
        return rc;
    bool ok;
    uint64_t v = hex_le(q->rsp.pkt, q->reg[reg].bytes, &ok);
    if (!ok)
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "gdbstub: register %u of "
                       "vCPU %u unreadable (%.20s)", (unsigned)reg, vcpu,
                       q->rsp.pkt);
    q->rcache[slot] = v;
    q->rvalid[slot] = 1;
    *out = v;
    return TINYVMI_OK;
}

/* ---- Run control ------------------------------------------------------------ */

static int vcpu_of_thread(qemu_t *q, unsigned long tid)
{
    for (unsigned i = 0; i < q->nvcpu; i++)
        if (q->tid[i] == tid)
            return (int)i;
    return -1;
}

static bool has_point(qemu_t *q, uint8_t type, uint64_t va)
{
    for (size_t i = 0; i < q->npt; i++)
        if (q->pt[i].type == type && q->pt[i].va == va)
            return true;
    return false;
}

static uint8_t code_bp_type(const qemu_t *q)
{
    /* TCG's breakpoints live in QEMU's translator, KVM's soft ones are
     * INT3 bytes in guest memory: there use the debug registers. */
    return q->kvm ? 1 : 0;
}

/* A stop reply ("T05thread:01;watch:ffff...;") to a tv_stop_t. */
static int parse_stop(qemu_t *q, tv_stop_t *s)
{
    tv_gdb_stop_t g = {0};
    *s = (tv_stop_t){.kind = TV_STOP_OTHER};
    if (tv_gdb_stop(q->rsp.pkt, &g))
        return tv_fail(q->vmi, TINYVMI_EFORMAT, "gdbstub: unexpected stop "
                       "reply %.40s", q->rsp.pkt);
    if (g.kind == 'W' || g.kind == 'X')
        return tv_fail(q->vmi, TINYVMI_EIO, "the guest is gone (QEMU says "
                       "%.20s)", q->rsp.pkt);
    int vcpu = g.have_thread ? vcpu_of_thread(q, g.thread) : 0;
    s->vcpu = vcpu < 0 ? 0 : (unsigned)vcpu;
    if (g.watch) {
        s->kind = TV_STOP_WATCH;
        s->addr = g.watch_addr;
        s->access = g.watch_access;
    }
    return TINYVMI_OK;
}

/* Classifies a fresh stop: watchpoint, step or breakpoint (by the vCPU's
 * instruction pointer), or other. */
static int classify(qemu_t *q, tv_stop_t *s)
{
    int rc = parse_stop(q, s);
    if (rc || s->kind == TV_STOP_WATCH)
        return rc;
    uint64_t pc;
    if ((rc = stopped_reg(q, s->vcpu, RIP, &pc)))
        return rc;
    bool at_bp = has_point(q, code_bp_type(q), pc);
    if (q->step_mask >> s->vcpu & 1) {
        s->kind = TV_STOP_STEP;
        s->addr = pc;
        if (at_bp) { /* stepped onto a breakpoint: report it next */
            q->queue = (tv_stop_t){.kind = TV_STOP_BREAK, .vcpu = s->vcpu,
                                   .addr = pc};
            q->queued = true;
        }
    } else if (at_bp) {
        s->kind = TV_STOP_BREAK;
        s->addr = pc;
    }
    return TINYVMI_OK;
}

/* Stops a running guest.  A stop that races our ^C (a breakpoint hit) is
 * kept for the event layer. */
static int halt(qemu_t *q)
{
    if (!q->running)
        return TINYVMI_OK;
    int rc = tv_rsp_interrupt(&q->rsp, QM_TIMEOUT);
    if (!rc)
        rc = tv_rsp_recv(&q->rsp, QM_TIMEOUT);
    if (rc)
        return gdb_fail(q, rc, "stopping the guest");
    q->running = false;
    q->cur_thread = 0;
    tv_stop_t s;
    if ((rc = classify(q, &s)))
        return rc;
    if (s.kind != TV_STOP_OTHER && !q->queued) {
        q->queue = s;
        q->queued = true;
    }
    return TINYVMI_OK;
}

static int point(qemu_t *q, const qm_point_t *p, bool on)
{
    char ask[80];
    snprintf(ask, sizeof ask, "%c%u,%llx,%llx", on ? 'Z' : 'z', p->type,
             (unsigned long long)p->va, (unsigned long long)p->len);
    int rc = tv_rsp_call(&q->rsp, QM_TIMEOUT, "%s", ask);
    if (!rc && q->rsp.len == 0)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "this QEMU cannot set %s "
                       "(gdb Z%u)", p->type <= 1 ? "breakpoints"
                                                  : "watchpoints", p->type);
    if (rc)
        return gdb_fail(q, rc, on ? "setting a breakpoint"
                                  : "clearing a breakpoint");
    return TINYVMI_OK;
}

/* Steps vCPU v over the breakpoint it was stopped at, so the guest goes
 * on past it.  TCG checks no breakpoint while single-stepping (seen on
 * QEMU 7.2: a step from a breakpointed address executes it), and lifting
 * a breakpoint costs it retranslation: there the step alone does.  Under
 * KVM the breakpoint is lifted for that one instruction. */
static int step_over(qemu_t *q, unsigned v, uint64_t pc)
{
    qm_point_t bp = {pc, 1, code_bp_type(q)};
    int rc = q->kvm ? point(q, &bp, false) : TINYVMI_OK;
    if (!rc)
        rc = tv_rsp_send(&q->rsp, QM_TIMEOUT, "vCont;s:%x", q->tid[v]);
    if (!rc)
        rc = tv_rsp_recv(&q->rsp, QM_TIMEOUT);
    if (rc)
        return gdb_fail(q, rc, "stepping over a breakpoint");
    invalidate_regs(q);
    q->cur_thread = 0;
    tv_stop_t s;
    int rc2 = parse_stop(q, &s);
    rc = q->kvm ? point(q, &bp, true) : TINYVMI_OK;
    if (rc2)
        return rc2;
    if (rc)
        return rc;
    uint64_t npc;
    if (s.kind == TV_STOP_WATCH) {
        q->queue = s;
        q->queued = true;
    } else if (q->step_mask >> v & 1 && !stopped_reg(q, v, RIP, &npc)) {
        q->queue = (tv_stop_t){.kind = TV_STOP_STEP, .vcpu = v, .addr = npc};
        q->queued = true;
    }
    return TINYVMI_OK;
}

/* Lets the guest run if nothing holds it. */
static int run(qemu_t *q)
{
    if (q->running || q->pauses || q->held || q->queued)
        return TINYVMI_OK;
    if (q->hit_vcpu >= 0) {
        unsigned v = (unsigned)q->hit_vcpu;
        uint64_t pc;
        q->hit_vcpu = -1;
        int rc = stopped_reg(q, v, RIP, &pc);
        if (!rc && has_point(q, code_bp_type(q), pc))
            rc = step_over(q, v, pc);
        if (rc || q->queued)
            return rc;
    }
    char cmd[64 + 16 * QM_MAX_VCPUS] = "vCont";
    size_t n = 5;
    for (unsigned i = 0; i < q->nvcpu; i++)
        if (q->step_mask >> i & 1)
            n += (size_t)snprintf(cmd + n, sizeof cmd - n, ";s:%x", q->tid[i]);
    snprintf(cmd + n, sizeof cmd - n, ";c");
    int rc = tv_rsp_send(&q->rsp, QM_TIMEOUT, "%s", cmd);
    if (rc)
        return gdb_fail(q, rc, "resuming the guest");
    q->running = true;
    invalidate_regs(q);
    q->cur_thread = 0;
    return TINYVMI_OK;
}

/* What needs the guest standing still takes a brief stop: hold() stops a
 * running guest and says whether it ran; let_go() runs it again then and
 * returns the first failure. */
static int hold(qemu_t *q, bool *was)
{
    *was = q->running;
    return halt(q);
}

static int let_go(qemu_t *q, bool was, int rc)
{
    int rc2 = was ? run(q) : TINYVMI_OK;
    return rc ? rc : rc2;
}

/* ---- Capability groups -------------------------------------------------------- */

static int qm_read(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len)
{
    qemu_t *q = ctx;
    (void)pa;
    memcpy(buf, q->be[off >> QM_BACKEND_SHIFT].base +
                    (off & ((1ULL << QM_BACKEND_SHIFT) - 1)), len);
    return TINYVMI_OK;
}

/* Under TCG, QEMU runs translated copies of guest code and notices code
 * changes only for writes that go through it: bytes stored into the RAM
 * file behind its back could leave it running the old code.  So there,
 * writes go through the gdbstub in physical-address mode, which stores
 * them and drops the translations of the pages written. */
static int write_through_gdb(qemu_t *q, uint64_t pa, const uint8_t *buf,
                             size_t len)
{
    bool was;
    int rc = hold(q, &was);
    size_t chunk = (q->rsp.max_pkt - 64) / 2;
    char *cmd = malloc(64 + 2 * chunk);
    if (!cmd)
        rc = rc ? rc : TINYVMI_ENOMEM;
    for (size_t done = 0; !rc && done < len;) {
        size_t n = len - done < chunk ? len - done : chunk;
        int k = snprintf(cmd, 64, "M%llx,%zx:",
                         (unsigned long long)(pa + done), n);
        for (size_t i = 0; i < n; i++)
            snprintf(cmd + k + 2 * i, 3, "%02x", buf[done + i]);
        rc = gdb_call(q, "writing guest memory", cmd);
        done += n;
    }
    free(cmd);
    return let_go(q, was, rc);
}

static int qm_write(void *ctx, uint64_t pa, uint64_t off, const void *buf,
                    size_t len)
{
    qemu_t *q = ctx;
    if (q->phys_writes)
        return write_through_gdb(q, pa, buf, len);
    if (!q->writable)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "guest RAM at 0x%llx: the RAM "
                       "file is read-only to us", (unsigned long long)pa);
    memcpy(q->be[off >> QM_BACKEND_SHIFT].base +
               (off & ((1ULL << QM_BACKEND_SHIFT) - 1)), buf, len);
    return TINYVMI_OK;
}

static const void *qm_map(void *ctx, uint64_t off, size_t len)
{
    qemu_t *q = ctx;
    (void)len;
    return q->be[off >> QM_BACKEND_SHIFT].base +
           (off & ((1ULL << QM_BACKEND_SHIFT) - 1));
}

static const tv_mem_ops_t qm_mem = {qm_read, qm_write, qm_map};

static unsigned qm_count(void *ctx)
{
    return ((qemu_t *)ctx)->nvcpu;
}

static int check_reg(qemu_t *q, reg_t reg)
{
    if (reg >= TINYVMI_NREGS || (q->reg[reg].num < 0 && !monitor_has(reg)))
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "QEMU exposes no register "
                       "%llu (neither its gdbstub nor its monitor)",
                       (unsigned long long)reg);
    return TINYVMI_OK;
}

/* While the guest stands still nothing crosses the gdb link, so a QEMU
 * that died would go unnoticed behind the register cache: a closed link
 * reads as end of file at once. */
static int check_alive(qemu_t *q)
{
    char c;
    if (q->running || !tv_link_readable(q->rsp.fd, 0))
        return TINYVMI_OK;
    if (recv(q->rsp.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
        return tv_fail(q->vmi, TINYVMI_EIO, "QEMU closed the gdbstub "
                       "connection (has it exited?)");
    return TINYVMI_OK;
}

/* A register of a running guest needs a stop: take one, briefly. */
static int qm_get_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value)
{
    qemu_t *q = ctx;
    int rc = check_alive(q);
    if (!rc)
        rc = check_reg(q, reg);
    bool was = false;
    if (!rc)
        rc = hold(q, &was);
    if (!rc)
        rc = stopped_reg(q, vcpu, reg, value);
    return let_go(q, was, rc);
}

static int qm_set_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t value)
{
    qemu_t *q = ctx;
    int rc = check_reg(q, reg);
    if (!rc && q->reg[reg].num < 0)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "register %llu: QEMU's "
                       "monitor shows it, its gdbstub cannot write it",
                       (unsigned long long)reg);
    bool was = false;
    if (!rc)
        rc = hold(q, &was);
    if (!rc)
        rc = select_thread(q, vcpu);
    if (!rc) {
        char ask[64];
        int n = snprintf(ask, sizeof ask, "P%x=", (unsigned)q->reg[reg].num);
        for (unsigned i = 0; i < q->reg[reg].bytes; i++)
            n += snprintf(ask + n, sizeof ask - (size_t)n, "%02x",
                          (unsigned)(value >> (8 * i)) & 0xff);
        rc = gdb_call(q, "writing a register", ask);
    }
    if (!rc)
        q->rvalid[(size_t)vcpu * TINYVMI_NREGS + reg] = 0;
    return let_go(q, was, rc);
}

/* Registers the gdbstub carries come with the one 'g' of a stop; the rest
 * cost a monitor round trip (milliseconds). */
static bool qm_cheap(void *ctx, reg_t reg)
{
    qemu_t *q = ctx;
    return reg < TINYVMI_NREGS && q->reg[reg].num >= 0;
}

static const tv_vcpu_ops_t qm_vcpu = {qm_count, qm_get_reg, qm_set_reg,
                                      qm_cheap};

static int qm_pause(void *ctx)
{
    qemu_t *q = ctx;
    int rc = halt(q);
    if (!rc)
        q->pauses++;
    return rc;
}

static int qm_resume(void *ctx)
{
    qemu_t *q = ctx;
    if (!q->pauses)
        return tv_fail(q->vmi, TINYVMI_ESTATE, "resume without a pause: the "
                       "guest is not paused by us");
    q->pauses--;
    return run(q);
}

static const tv_ctl_ops_t qm_ctl = {qm_pause, qm_resume};

/* ---- Events ---------------------------------------------------------------- */

/* Changes breakpoints only while the guest stands still. */
static int with_guest_stopped(qemu_t *q, const qm_point_t *p, bool on)
{
    bool was;
    int rc = hold(q, &was);
    if (!rc)
        rc = point(q, p, on);
    return let_go(q, was, rc);
}

static int set_point(qemu_t *q, qm_point_t p, bool on)
{
    size_t i = 0;
    while (i < q->npt && (q->pt[i].type != p.type || q->pt[i].va != p.va ||
                          q->pt[i].len != p.len))
        i++;
    if (on && i < q->npt)
        return TINYVMI_OK; /* already there */
    if (!on && i == q->npt)
        return tv_fail(q->vmi, TINYVMI_ENOENT, "no breakpoint or watchpoint "
                       "at 0x%llx", (unsigned long long)p.va);
    if (on && q->npt == q->cappt) {
        if (q->cappt >= QM_MAX_BPS)
            return tv_fail(q->vmi, TINYVMI_ERANGE, "more than %d breakpoints "
                           "and watchpoints", QM_MAX_BPS);
        size_t cap = q->cappt ? q->cappt * 2 : 16;
        qm_point_t *np = realloc(q->pt, cap * sizeof *np);
        if (!np)
            return TINYVMI_ENOMEM;
        q->pt = np;
        q->cappt = cap;
    }
    int rc = with_guest_stopped(q, &p, on);
    if (rc)
        return rc;
    if (on)
        q->pt[q->npt++] = p;
    else
        q->pt[i] = q->pt[--q->npt];
    return TINYVMI_OK;
}

static int qm_breakpoint(void *ctx, uint64_t va, bool on)
{
    qemu_t *q = ctx;
    return set_point(q, (qm_point_t){va, 1, code_bp_type(q)}, on);
}

static int qm_watchpoint(void *ctx, uint64_t va, uint64_t len, uint8_t access,
                         bool on)
{
    qemu_t *q = ctx;
    uint8_t type = access == VMI_MEMACCESS_W ? 2
                 : access == VMI_MEMACCESS_R ? 3
                 : access == VMI_MEMACCESS_RW ? 4 : 0;
    if (!type)
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "QEMU's gdbstub watches "
                       "reads, writes or both, not access 0x%x",
                       (unsigned)access);
    if (q->kvm && (len > 8 || (len & (len - 1)) || (va & (len - 1))))
        return tv_fail(q->vmi, TINYVMI_ENOTSUP, "under KVM a watchpoint is a "
                       "debug register: 1, 2, 4 or 8 aligned bytes, not %llu "
                       "at 0x%llx", (unsigned long long)len,
                       (unsigned long long)va);
    return set_point(q, (qm_point_t){va, len, type}, on);
}

static int qm_step(void *ctx, uint64_t vcpus)
{
    qemu_t *q = ctx;
    uint64_t all = q->nvcpu >= 64 ? ~0ULL : (1ULL << q->nvcpu) - 1;
    if (vcpus & ~all)
        return tv_fail(q->vmi, TINYVMI_ERANGE, "single-step mask 0x%llx names "
                       "vCPUs the guest does not have (it has %u)",
                       (unsigned long long)vcpus, q->nvcpu);
    if (vcpus == q->step_mask)
        return TINYVMI_OK;
    /* A running guest was sent "continue": stop it so that the next run
     * carries the new stepping. */
    bool was;
    int rc = hold(q, &was);
    q->step_mask = vcpus;
    return let_go(q, was, rc);
}

static int take_queued(qemu_t *q, tv_stop_t *stop)
{
    *stop = q->queue;
    q->queued = false;
    q->held = true;
    q->hit_vcpu = stop->kind == TV_STOP_BREAK ? (int)stop->vcpu : -1;
    return TINYVMI_OK;
}

static int qm_wait(void *ctx, int timeout_ms, tv_stop_t *stop)
{
    qemu_t *q = ctx;
    int64_t deadline = tv_link_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    q->held = false; /* a stop not released is released now */
    tv_qmp_drain(&q->qmp);
    for (;;) {
        if (q->queued)
            return take_queued(q, stop);
        int left = (int)(deadline - tv_link_now_ms());
        if (left < 0)
            left = 0;
        if (q->pauses) { /* nothing can happen while we hold the guest */
            usleep((useconds_t)left * 1000);
            return TINYVMI_ETIMEDOUT;
        }
        int rc = run(q);
        if (rc)
            return rc;
        if (q->queued)
            continue;
        if (!tv_rsp_pending(&q->rsp, left))
            return TINYVMI_ETIMEDOUT;
        if ((rc = tv_rsp_recv(&q->rsp, QM_TIMEOUT)))
            return gdb_fail(q, rc, "waiting for an event");
        q->running = false;
        q->cur_thread = 0;
        invalidate_regs(q);
        tv_stop_t s;
        if ((rc = classify(q, &s)))
            return rc;
        if (s.kind != TV_STOP_OTHER) {
            q->queue = s;
            q->queued = true;
        }
    }
}

static int qm_release(void *ctx)
{
    qemu_t *q = ctx;
    q->held = false;
    return run(q);
}

static bool qm_pending(void *ctx)
{
    qemu_t *q = ctx;
    return q->queued || (q->running && tv_rsp_pending(&q->rsp, 0));
}

static const tv_event_ops_t qm_ev = {qm_breakpoint, qm_watchpoint, qm_step,
                                     qm_wait, qm_release, qm_pending,
                                     NULL, NULL};

/* ---- The watchdog ----------------------------------------------------------- */

/* If this process dies without detaching (a crash, SIGKILL), a child it
 * forked at attach connects to the gdbstub and detaches for it: QEMU then
 * drops every breakpoint and lets the guest run.  The child uses only
 * system calls.  A clean detach tells it to go by writing one byte. */
typedef struct wd_addr {
    struct sockaddr_storage sa;
    unsigned len;
} wd_addr_t;

/* Connects (retrying up to 10 s: QEMU frees a one-client socket only when
 * it has seen the old client go), sends msg and reads until `want` has
 * been seen `times` times or secs pass.  System calls only. */
static bool wd_exchange(const wd_addr_t *a, const char *msg, size_t len,
                        const char *want, int times, int secs)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd = socket(a->sa.ss_family, SOCK_STREAM, 0);
        if (fd < 0)
            return false;
        if (connect(fd, (const struct sockaddr *)&a->sa, a->len) != 0) {
            close(fd);
            usleep(100000);
            continue;
        }
        bool ok = write(fd, msg, len) == (ssize_t)len;
        struct timeval tv = {secs, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[4096];
        size_t have = 0, wl = strlen(want);
        int seen = 0;
        ssize_t r;
        while (ok && seen < times &&
               (r = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
            have += (size_t)r;
            buf[have] = '\0';
            for (char *p = buf; (p = strstr(p, want)); p += wl)
                seen++;
            if (seen < times) { /* keep a tail that may hold half a match */
                size_t keep = have < wl ? have : wl - 1;
                memmove(buf, buf + have - keep, keep);
                have = keep;
            }
        }
        close(fd);
        return ok && seen >= times;
    }
    return false;
}

/* If this process dies without detaching (a crash, SIGKILL), a child it
 * forked at attach detaches for it: on the gdbstub ("D": QEMU drops every
 * breakpoint and lets the guest run), then, if the guest was running when
 * we came, QMP's "cont" in case the guest was stopped otherwise.  The child
 * uses only system calls.  A clean detach tells it to go by writing one
 * byte. */
static void watchdog_child(int rfd, const wd_addr_t *gdb, const wd_addr_t *qmp,
                           bool was_running)
{
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) { /* the caller may wait for our parent's output to end */
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2 && null != rfd)
            close(null);
    }
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* Nothing of the parent's but the pipe: above all not its gdb and QMP
     * sockets, whose closing is what frees them for us. */
    if (syscall(SYS_close_range, 3, (unsigned)rfd - 1, 0) != 0 ||
        syscall(SYS_close_range, (unsigned)rfd + 1, ~0u, 0) != 0)
        for (int fd = 3; fd < 65536; fd++)
            if (fd != rfd)
                close(fd);
    char c;
    ssize_t r;
    do
        r = read(rfd, &c, 1);
    while (r < 0 && errno == EINTR);
    if (r == 1)
        _exit(0);
    static const char detach[] = "+$D#44";
    static const char cont[] = "{\"execute\":\"qmp_capabilities\"}\n"
                               "{\"execute\":\"cont\"}\n";
    static const char status[] = "{\"execute\":\"qmp_capabilities\"}\n"
                                 "{\"execute\":\"query-status\"}\n";
    bool ok = false;
    /* Seen on a 2-vCPU guest: once in a while the guest is stopped again
     * ("debug") after the detach; so look, and detach again (bounded).
     * QEMU 7.2 prints the member as below; anything else reads as
     * stopped, which costs one more harmless round. */
    for (int round = 0; round < 3 && !ok; round++) {
        ok = wd_exchange(gdb, detach, sizeof detach - 1, "OK", 1, 10);
        if (!was_running)
            break;
        ok = wd_exchange(qmp, cont, sizeof cont - 1, "\"return\"", 2, 10) &&
             ok;
        usleep(500000);
        ok = ok && wd_exchange(qmp, status, sizeof status - 1,
                               "\"running\": true", 1, 5);
    }
    _exit(ok ? 0 : 1);
}

static void start_watchdog(qemu_t *q)
{
    wd_addr_t gdb, qmp;
    char spec[TV_LINK_ERR + 8];
    int p[2];
    snprintf(spec, sizeof spec, "unix:%s", q->qmp_path);
    if (tv_link_resolve(q->gdb, &gdb.sa, &gdb.len) ||
        tv_link_resolve(spec, &qmp.sa, &qmp.len) || pipe2(p, O_CLOEXEC) != 0) {
        tv_log(q->vmi, 1, "no watchdog: a crash would leave the guest "
               "stopped");
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        watchdog_child(p[0], &gdb, &qmp, q->was_running);
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return;
    }
    q->watchdog = pid;
    q->watchdog_fd = p[1];
}

static void stop_watchdog(qemu_t *q)
{
    if (q->watchdog_fd >= 0) {
        ssize_t w = write(q->watchdog_fd, "x", 1);
        (void)w;
        close(q->watchdog_fd);
    }
    if (q->watchdog > 0)
        waitpid(q->watchdog, NULL, 0);
    q->watchdog_fd = -1;
    q->watchdog = 0;
}

/* ---- Attach and detach ------------------------------------------------------- */

static void detach(qemu_t *q)
{
    if (q->rsp.fd >= 0) {
        int rc = halt(q);
        for (size_t i = 0; !rc && i < q->npt; i++)
            point(q, &q->pt[i], false);
        q->npt = 0;
        /* QEMU lets the guest go on at D. */
        if (tv_rsp_call(&q->rsp, 2000, "D") != 0)
            tv_log(q->vmi, 1, "detaching from the gdbstub: %s", q->rsp.why);
        tv_rsp_close(&q->rsp);
    }
    stop_watchdog(q);
    if (q->qmp.fd >= 0) {
        if (!q->was_running)
            tv_qmp_exec(&q->qmp, "stop", NULL, 2000);
    }
}

static void qm_close(void *ctx)
{
    qemu_t *q = ctx;
    detach(q);
    tv_qmp_close(&q->qmp);
    for (size_t i = 0; i < q->nbe; i++)
        if (q->be[i].base)
            munmap(q->be[i].base, q->be[i].size);
    free(q->rcache);
    free(q->rvalid);
    free(q->gdone);
    free(q->hdone);
    free(q->pt);
    free(q);
}

int tv_qemu_open(struct vmi_instance *vmi, const char *qmp_path,
                 const char *gdb, tv_driver_t *out)
{
    *out = (tv_driver_t){0};
    qemu_t *q = calloc(1, sizeof *q);
    if (!q)
        return tv_fail(vmi, TINYVMI_ENOMEM, "out of memory");
    q->vmi = vmi;
    q->qmp.fd = q->rsp.fd = q->watchdog_fd = -1;
    q->hit_vcpu = -1;
    snprintf(q->qmp_path, sizeof q->qmp_path, "%s", qmp_path);
    int rc = tv_qmp_open(&q->qmp, qmp_path, QM_TIMEOUT);
    if (rc)
        rc = tv_fail(vmi, rc, "QMP socket %s: %s", qmp_path, q->qmp.why);
    if (!rc)
        rc = query_state(q);
    if (!rc)
        rc = find_backends(q);
    if (!rc)
        rc = find_layout(q);
    if (!rc && gdb && *gdb)
        snprintf(q->gdb, sizeof q->gdb, "%s", gdb);
    else if (!rc)
        rc = find_gdbstub(q);
    if (!rc && !q->gdb[0])
        rc = open_gdbstub(q);
    if (!rc && (rc = tv_rsp_open(&q->rsp, q->gdb, QM_TIMEOUT)))
        rc = tv_fail(vmi, rc, "gdbstub %s: %s", q->gdb, q->rsp.why);
    /* Connected: QEMU has stopped the guest for us. */
    if (!rc)
        rc = setup_gdb(q);
    if (!rc) {
        start_watchdog(q);
        if (!q->was_running)
            q->pauses = 1; /* it was paused before us: keep it so */
        rc = run(q);
    }
    if (rc) {
        char why[TV_ERRMSG_MAX];
        snprintf(why, sizeof why, "%s", vmi->last_error);
        qm_close(q);
        return tv_fail(vmi, rc, "%s", why);
    }
    tv_log(vmi, 2, "qemu: %zu RAM range(s) from %s, %u vCPU(s), gdbstub %s, "
           "%s", q->nranges, q->be[0].id, q->nvcpu, q->gdb,
           q->kvm ? "KVM" : "TCG");
    *out = (tv_driver_t){.name = "qemu", .ctx = q, .mem = &qm_mem,
                         .vcpu = &qm_vcpu, .ctl = &qm_ctl, .ev = &qm_ev,
                         .close = qm_close, .ranges = q->ranges,
                         .nranges = q->nranges, .arch = VMI_ARCH_X86_64,
                         .id = VMI_INVALID_DOMID};
    return TINYVMI_OK;
}
