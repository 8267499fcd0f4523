/*
 * Live guest speed (QEMU or Xen), through the public API only (libvmi.h,
 * events.h, and tinyvmi.h for the breakpoint and the process list).
 *   bench_live qemu:QMP_SOCKET|xen:NAME [--symbol SYM] [--seconds S]
 *              [--attach N] [--events LIST] [--quick]
 * LIST: the event measurements to make, of breakpoint, singlestep, cr3
 * (default breakpoint,singlestep; "none" for none); the others print null.
 *
 * Prints one JSON object:
 *   attach      vmi_init_complete (QMP, shared RAM, gdbstub, the OS layer
 *               profile-less) until it returns, and vmi_destroy; N times
 *   breakpoint  a breakpoint on SYM (default _raw_spin_lock, which a running
 *               kernel calls all the time): for each hit, the time from the
 *               callback returning to the next callback starting -- the
 *               guest is released, steps over the breakpoint, runs to the
 *               next hit, stops, and the event is delivered with its
 *               registers.  Median, 90th percentile, hits per second.
 *   singlestep  the same for single steps of vCPU 0 (no step-over)
 *   cr3         the same for CR3-write events (register events, as Xen's
 *               vm_event delivers them): the guest switching address spaces
 *   ps          one walk of the kernel's process list (tinyvmi_processes),
 *               median of at least 20 walks
 *   read        vmi_read_pa of 1 MiB blocks sequentially over all of guest
 *               RAM, while the guest runs; memcpy over a buffer of the same
 *               size, 1 MiB at a time, beside it.  Median of 5 runs of at
 *               least 0.5 s (0.05 s with --quick).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvmi/events.h>
#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#define MIB (1u << 20)
#define RUNS 5
#define MAX_SAMPLES 200000

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n sorted values. */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static status_t attach(const char *target, vmi_instance_t *vmi)
{
    vmi_init_error_t err = VMI_INIT_ERROR_NONE;
    status_t rc = vmi_init_complete(vmi, target,
                                    VMI_INIT_DOMAINNAME | VMI_INIT_EVENTS,
                                    NULL, VMI_CONFIG_STRING, NULL, &err);
    if (rc != VMI_SUCCESS)
        fprintf(stderr, "bench_live: cannot attach to %s: %s\n", target,
                tinyvmi_init_error());
    return rc;
}

/* ---- Events: time from the callback's return to the next callback ---------- */

typedef struct timing {
    uint64_t *gap;       /* ns: previous callback's end -> this one's start */
    size_t n, cap;
    uint64_t first, last_end, last_start, hits;
    uint64_t max_hits;
} timing_t;

static event_response_t on_event(vmi_instance_t vmi, vmi_event_t *ev)
{
    timing_t *t = ev->data;
    uint64_t start = now_ns();
    (void)vmi;
    if (t->hits == 0)
        t->first = start;
    else if (t->n < t->cap)
        t->gap[t->n++] = start - t->last_end;
    t->hits++;
    t->last_start = start;
    t->last_end = now_ns();
    return VMI_EVENT_RESPONSE_NONE;
}

static void print_timing(const char *name, timing_t *t, double seconds)
{
    qsort(t->gap, t->n, sizeof *t->gap, cmp_u64);
    double span = (double)(t->last_start - t->first) / 1e9;
    printf("\"%s\": {\"hits\": %" PRIu64 ", \"samples\": %zu, "
           "\"seconds\": %.3f, \"hits_per_s\": %.1f, \"median_us\": %.1f, "
           "\"p90_us\": %.1f, \"p10_us\": %.1f, \"min_us\": %.1f, "
           "\"max_us\": %.1f}",
           name, t->hits, t->n, seconds,
           t->hits > 1 && span > 0 ? (double)(t->hits - 1) / span : 0.0,
           (double)quantile(t->gap, t->n, 0.5) / 1e3,
           (double)quantile(t->gap, t->n, 0.9) / 1e3,
           (double)quantile(t->gap, t->n, 0.1) / 1e3,
           (double)quantile(t->gap, t->n, 0.0) / 1e3,
           (double)quantile(t->gap, t->n, 1.0) / 1e3);
}

/* Listens until max_hits events or `seconds` pass. */
static int listen_for(vmi_instance_t vmi, timing_t *t, double seconds,
                      double *took)
{
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    while (t->hits < t->max_hits && now_ns() < end) {
        if (vmi_events_listen(vmi, 100) != VMI_SUCCESS) {
            fprintf(stderr, "bench_live: listening: %s\n",
                    tinyvmi_last_error(vmi));
            return -1;
        }
    }
    *took = (double)(now_ns() - t0) / 1e9;
    return 0;
}

static int bench_breakpoint(vmi_instance_t vmi, const char *sym,
                            double seconds, timing_t *t, double *took,
                            addr_t *va)
{
    if (vmi_translate_ksym2v(vmi, sym, va) != VMI_SUCCESS) {
        fprintf(stderr, "bench_live: no kernel symbol %s\n", sym);
        return -1;
    }
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_INTERRUPT_EVENT(&ev, 0, on_event);
    ev.data = t;
    if (vmi_register_event(vmi, &ev) != VMI_SUCCESS ||
        tinyvmi_set_breakpoint(vmi, *va, 0) != VMI_SUCCESS) {
        fprintf(stderr, "bench_live: breakpoint on %s: %s\n", sym,
                tinyvmi_last_error(vmi));
        return -1;
    }
    int rc = listen_for(vmi, t, seconds, took);
    tinyvmi_clear_breakpoint(vmi, *va);
    vmi_clear_event(vmi, &ev, NULL);
    return rc;
}

static int bench_singlestep(vmi_instance_t vmi, double seconds, timing_t *t,
                            double *took)
{
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_SINGLESTEP_EVENT(&ev, 1u, on_event, 1);
    ev.data = t;
    if (vmi_register_event(vmi, &ev) != VMI_SUCCESS) {
        fprintf(stderr, "bench_live: single-step event: %s\n",
                tinyvmi_last_error(vmi));
        return -1;
    }
    int rc = listen_for(vmi, t, seconds, took);
    vmi_clear_event(vmi, &ev, NULL);
    return rc;
}

static int bench_cr3(vmi_instance_t vmi, double seconds, timing_t *t,
                     double *took)
{
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_REG_EVENT(&ev, CR3, VMI_REGACCESS_W, 0, on_event);
    ev.data = t;
    if (vmi_register_event(vmi, &ev) != VMI_SUCCESS) {
        fprintf(stderr, "bench_live: CR3 event: %s\n",
                tinyvmi_last_error(vmi));
        return -1;
    }
    int rc = listen_for(vmi, t, seconds, took);
    vmi_clear_event(vmi, &ev, NULL);
    return rc;
}

/* ---- The process list -------------------------------------------------------- */

static int count_process(void *arg, const tinyvmi_process_t *p)
{
    (void)p;
    ++*(unsigned *)arg;
    return 0;
}

/* Median ns of one process-list walk, over at least 20 walks and 0.2 s;
 * *nproc gets the processes one walk saw. */
static double time_ps(vmi_instance_t vmi, unsigned *nproc)
{
    uint64_t per[400];
    size_t n = 0;
    uint64_t t0 = now_ns();
    while (n < 400 && (n < 20 || now_ns() - t0 < 200000000u)) {
        unsigned count = 0;
        uint64_t a = now_ns();
        if (tinyvmi_processes(vmi, count_process, &count) != VMI_SUCCESS) {
            fprintf(stderr, "bench_live: process list: %s\n",
                    tinyvmi_last_error(vmi));
            return -1;
        }
        per[n++] = now_ns() - a;
        *nproc = count;
    }
    qsort(per, n, sizeof per[0], cmp_u64);
    return (double)per[n / 2];
}

/* ---- Reads ----------------------------------------------------------------- */

typedef struct reads {
    addr_t *chunk;   /* 1 MiB blocks vmi_read_pa can read */
    size_t nchunks, at;
    unsigned char *dst, *src;
    uint64_t sink;
} reads_t;

static int find_chunks(vmi_instance_t vmi, reads_t *r)
{
    uint64_t max = vmi_get_max_physical_address(vmi) / MIB;
    r->chunk = malloc((size_t)(max + 1) * sizeof *r->chunk);
    r->dst = aligned_alloc(4096, MIB);
    if (!r->chunk || !r->dst)
        return -1;
    for (addr_t pa = 0; pa / MIB < max; pa += MIB)
        if (vmi_read_pa(vmi, pa, MIB, r->dst, NULL) == VMI_SUCCESS)
            r->chunk[r->nchunks++] = pa;
    if (!r->nchunks)
        return -1;
    r->src = aligned_alloc(4096, r->nchunks * MIB);
    if (!r->src)
        return -1;
    memset(r->src, 0x5a, r->nchunks * MIB);
    return 0;
}

/* Median ns per 1 MiB block over RUNS runs of at least min_ns each. */
static double time_reads(vmi_instance_t vmi, reads_t *r, int how,
                         uint64_t min_ns)
{
    uint64_t per[RUNS];
    for (int run = -1; run < RUNS; run++) { /* run -1: warm-up */
        uint64_t n = 0, t0 = now_ns(), t;
        do {
            for (int k = 0; k < 16; k++, n++) {
                size_t i = r->at++ % r->nchunks;
                if (how == 0)
                    vmi_read_pa(vmi, r->chunk[i], MIB, r->dst, NULL);
                else
                    memcpy(r->dst, r->src + i * MIB, MIB);
                r->sink += r->dst[i % MIB];
            }
            t = now_ns() - t0;
        } while (t < min_ns);
        if (run >= 0)
            per[run] = t / n;
    }
    qsort(per, RUNS, sizeof per[0], cmp_u64);
    return (double)per[RUNS / 2];
}

/* ---- Main -------------------------------------------------------------------- */

static const char usage[] =
    "usage: bench_live qemu:QMP_SOCKET|xen:NAME [--symbol SYM] [--seconds S] "
    "[--attach N] [--events breakpoint,singlestep,cr3|none] [--quick]\n";

/* Whether name is one of LIST's comma-separated words. */
static bool wants(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

int main(int argc, char **argv)
{
    const char *target = NULL, *sym = "_raw_spin_lock";
    const char *events = "breakpoint,singlestep";
    double seconds = 5;
    int nattach = 5, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--symbol") && i + 1 < argc)
            sym = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--attach") && i + 1 < argc)
            nattach = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!target && argv[i][0] != '-')
            target = argv[i];
        else {
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (!target || nattach < 1 || nattach > 100 || !(seconds > 0)) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    if (quick) {
        seconds = seconds < 1 ? seconds : 1;
        nattach = nattach < 2 ? nattach : 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* Attach: vmi_init_complete until it returns (OS layer ready), and
     * vmi_destroy (the guest let go, running). */
    uint64_t init_ns[100], done_ns[100];
    for (int i = 0; i < nattach; i++) {
        vmi_instance_t vmi = NULL;
        uint64_t t0 = now_ns();
        if (attach(target, &vmi) != VMI_SUCCESS)
            return 1;
        uint64_t t1 = now_ns();
        vmi_destroy(vmi);
        init_ns[i] = t1 - t0;
        done_ns[i] = now_ns() - t1;
    }
    qsort(init_ns, (size_t)nattach, sizeof init_ns[0], cmp_u64);
    qsort(done_ns, (size_t)nattach, sizeof done_ns[0], cmp_u64);

    vmi_instance_t vmi = NULL;
    if (attach(target, &vmi) != VMI_SUCCESS)
        return 1;
    timing_t bp = {.cap = MAX_SAMPLES, .max_hits = MAX_SAMPLES};
    timing_t ss = {.cap = MAX_SAMPLES, .max_hits = MAX_SAMPLES};
    timing_t cr = {.cap = MAX_SAMPLES, .max_hits = MAX_SAMPLES};
    bp.gap = malloc(MAX_SAMPLES * sizeof *bp.gap);
    ss.gap = malloc(MAX_SAMPLES * sizeof *ss.gap);
    cr.gap = malloc(MAX_SAMPLES * sizeof *cr.gap);
    reads_t r;
    memset(&r, 0, sizeof r);
    double bp_s = 0, ss_s = 0, cr_s = 0;
    addr_t va = 0;
    int rc = 1;
    bool do_bp = wants(events, "breakpoint"), do_ss = wants(events, "singlestep");
    bool do_cr = wants(events, "cr3");
    if (!bp.gap || !ss.gap || !cr.gap)
        goto out;
    if ((do_bp && bench_breakpoint(vmi, sym, seconds, &bp, &bp_s, &va)) ||
        (do_ss && bench_singlestep(vmi, seconds, &ss, &ss_s)) ||
        (do_cr && bench_cr3(vmi, seconds, &cr, &cr_s)))
        goto out;
    unsigned nproc = 0;
    double ps_ns = time_ps(vmi, &nproc);
    if (ps_ns < 0)
        goto out;
    if (find_chunks(vmi, &r)) {
        fprintf(stderr, "bench_live: no 1 MiB block of RAM readable\n");
        goto out;
    }
    uint64_t min_ns = quick ? 50000000u : 500000000u;
    double read_ns = time_reads(vmi, &r, 0, min_ns);
    double copy_ns = time_reads(vmi, &r, 1, min_ns);

    printf("{\"target\": \"%s\", \"attach\": {\"runs\": %d, "
           "\"init_median_ms\": %.1f, \"init_min_ms\": %.1f, "
           "\"init_max_ms\": %.1f, \"destroy_median_ms\": %.1f}, ",
           target, nattach, (double)init_ns[nattach / 2] / 1e6,
           (double)init_ns[0] / 1e6, (double)init_ns[nattach - 1] / 1e6,
           (double)done_ns[nattach / 2] / 1e6);
    printf("\"symbol\": \"%s\", \"symbol_va\": \"0x%" PRIx64 "\", ", sym, va);
    const struct {
        const char *name;
        bool on;
        timing_t *t;
        double s;
    } ev[] = {{"breakpoint", do_bp, &bp, bp_s},
              {"singlestep", do_ss, &ss, ss_s},
              {"cr3", do_cr, &cr, cr_s}};
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++) {
        if (ev[i].on)
            print_timing(ev[i].name, ev[i].t, ev[i].s);
        else
            printf("\"%s\": null", ev[i].name);
        printf(", ");
    }
    printf("\"ps\": {\"processes\": %u, \"median_ms\": %.3f}", nproc,
           ps_ns / 1e6);
    printf(", \"read\": {\"blocks\": %zu, \"bytes\": %zu, "
           "\"read_pa_us\": %.1f, \"read_pa_gb_per_s\": %.2f, "
           "\"memcpy_us\": %.1f, \"memcpy_gb_per_s\": %.2f}, "
           "\"sink\": %" PRIu64 "}\n",
           r.nchunks, r.nchunks * MIB, read_ns / 1e3, (double)MIB / read_ns,
           copy_ns / 1e3, (double)MIB / copy_ns, r.sink & 1);
    rc = 0;
out:
    vmi_destroy(vmi);
    free(bp.gap);
    free(ss.gap);
    free(cr.gap);
    free(r.chunk);
    free(r.dst);
    free(r.src);
    return rc;
}
