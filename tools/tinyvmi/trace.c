/*
 * tinyvmi trace TARGET SYMBOL: a breakpoint on a kernel function; one line
 * (or, with --json, one JSON object per line) for each hit: time, vCPU, pid
 * and name of the process that called it, and for the functions that take
 * a file name, the name.  The guest's memory is never written: on QEMU the
 * gdbstub holds the breakpoint, on Xen (PVH and HVM guests) a debug
 * register of each vCPU does.  Ctrl-C, --count or --seconds end the trace
 * and detach, leaving the guest running.
 */
#include <inttypes.h>
#include <libvmi/events.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Kernel functions whose arguments include a file name in user memory,
 * and the register that holds it at entry (x86-64 calling convention). */
static const struct {
    const char *fn;
    reg_t reg;
} path_args[] = {
    {"do_sys_openat2", RSI}, {"do_sys_open", RSI},
    {"getname", RDI}, {"getname_flags", RDI},
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct trace {
    const cli_t *c;
    const char *sym;
    addr_t va;
    int path_reg; /* index into x86_registers_t fields, -1: none */
    uint64_t hits;
} trace_t;

static uint64_t reg_value(const x86_registers_t *r, reg_t reg)
{
    return reg == RSI ? r->rsi : reg == RDI ? r->rdi : r->rdx;
}

/* A user string through the vCPU's own page tables; "" if unreadable. */
static void user_str(vmi_instance_t vmi, addr_t dtb, addr_t va, char *out,
                     size_t cap)
{
    access_context_t ctx = {.version = ACCESS_CONTEXT_VERSION,
                            .tm = VMI_TM_PROCESS_DTB, .dtb = dtb, .addr = va};
    size_t got = 0;
    out[0] = '\0';
    vmi_read(vmi, &ctx, cap - 1, out, &got);
    out[got < cap ? got : cap - 1] = '\0';
}

static event_response_t on_hit(vmi_instance_t vmi, vmi_event_t *ev)
{
    trace_t *t = ev->data;
    if (ev->interrupt_event.gla != t->va) {
        /* the guest's own INT3 (a kernel patching its text uses them) */
        ev->interrupt_event.reinject = 1;
        return VMI_EVENT_RESPONSE_NONE;
    }
    const x86_registers_t *r = ev->x86_regs;
    tinyvmi_process_t p;
    if (tinyvmi_current_process(vmi, ev->vcpu_id, &p) != VMI_SUCCESS) {
        p = (tinyvmi_process_t){.pid = -1};
        snprintf(p.name, sizeof p.name, "?");
    }
    char path[256] = "";
    if (t->path_reg >= 0)
        user_str(vmi, r->cr3, reg_value(r, path_args[t->path_reg].reg), path,
                 sizeof path);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (t->c->given & OPT_JSON) {
        printf("{\"time\": %lld.%06ld, \"vcpu\": %u, \"pid\": %d, \"name\": ",
               (long long)now.tv_sec, now.tv_nsec / 1000, ev->vcpu_id, p.pid);
        cli_json_str(stdout, p.name);
        printf(", \"symbol\": ");
        cli_json_str(stdout, t->sym);
        printf(", \"address\": \"0x%" PRIx64 "\"", t->va);
        if (t->path_reg >= 0) {
            printf(", \"file\": ");
            cli_json_str(stdout, path);
        }
        printf("}\n");
    } else {
        struct tm tm;
        localtime_r(&now.tv_sec, &tm);
        printf("%02d:%02d:%02d.%06ld  vcpu %u  pid %6d  %-16s  %s%s%s\n",
               tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000,
               ev->vcpu_id, p.pid, p.name, t->sym, path[0] ? "  " : "", path);
    }
    fflush(stdout);
    if (++t->hits >= t->c->count && t->c->count)
        stop_flag = 1;
    return VMI_EVENT_RESPONSE_NONE;
}

static int run_trace(cli_t *c)
{
    int rc = cli_os(c);
    if (rc)
        return rc;
    trace_t t = {.c = c, .sym = c->arg[0], .path_reg = -1};
    if (!cli_parse_u64(t.sym, &t.va) &&
        vmi_translate_ksym2v(c->vmi, t.sym, &t.va) != VMI_SUCCESS)
        return cli_fail(c, CLI_FAILED, "no kernel symbol %s: %s", t.sym,
                        tinyvmi_last_error(c->vmi));
    for (size_t i = 0; i < sizeof path_args / sizeof path_args[0]; i++)
        if (!strcmp(t.sym, path_args[i].fn))
            t.path_reg = (int)i;
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_INTERRUPT_EVENT(&ev, 0, on_hit);
    ev.data = &t;
    if (vmi_register_event(c->vmi, &ev) != VMI_SUCCESS ||
        tinyvmi_set_breakpoint(c->vmi, t.va, 0) != VMI_SUCCESS)
        return cli_fail(c, CLI_FAILED, "cannot trace %s: %s", t.sym,
                        tinyvmi_last_error(c->vmi));
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = CLI_OK;
    while (!stop_flag) {
        if (vmi_events_listen(c->vmi, 200) != VMI_SUCCESS) {
            rc = cli_fail(c, CLI_FAILED, "%s", tinyvmi_last_error(c->vmi));
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (c->seconds && (uint64_t)(now.tv_sec - t0.tv_sec) >= c->seconds)
            break;
    }
    if (rc == CLI_OK) {
        tinyvmi_clear_breakpoint(c->vmi, t.va);
        vmi_clear_event(c->vmi, &ev, NULL);
    }
    fprintf(stderr, "tinyvmi trace: %" PRIu64 " hit(s) of %s\n", t.hits,
            t.sym);
    return rc;
}

const cli_cmd_t cli_cmd_trace = {
    .name = "trace",
    .synopsis = "qemu:QMP_SOCKET|xen:NAME SYMBOL [--count N] [--seconds S] "
                "[--json] [--profile FILE | --config FILE]",
    .summary = "breakpoint on a kernel function: who calls it, live",
    .help = "Plants a breakpoint the guest cannot see on SYMBOL (or 0xADDR)\n"
            "and prints one line per hit: time, vCPU, pid and name of the\n"
            "calling process; for file-name functions (do_sys_openat2,\n"
            "do_sys_open, getname) also the file name.  --json prints one\n"
            "JSON object per line.  Ends at --count hits, after --seconds, or\n"
            "at Ctrl-C; the guest keeps running, without the breakpoint.",
    .opts = OPT_GLOBAL | OPT_JSON | OPT_PROFILE | OPT_CONFIG | OPT_COUNT |
            OPT_SECONDS,
    .pos = {{"SYMBOL", false}},
    .npos = 1,
    .run = run_trace,
};
