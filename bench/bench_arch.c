/*
 * Translation and process-list speed on one dump, whatever its
 * architecture, through the public API only.
 *   bench_arch DUMP ADDRESSES [ISF] [--quick]
 * ADDRESSES: kernel virtual addresses, one hex number a line (the lab's
 * gva2gpa oracle: text, data, modules, the linear map, vmalloc, unmapped).
 * The OS layer finds the kernel and its page tables (ISF given, or the
 * kernel's own BTF and kallsyms).  Measured, each as the median of 5 runs
 * of at least 0.5 s (0.05 s with --quick):
 *   walk  vmi_pagetable_lookup on every address: a full page-table walk
 *         each time (no translation cache), per address;
 *   kv2p  vmi_translate_kv2p on every address: through the cache;
 *   ps    one walk of the process list (tinyvmi_processes);
 * and once: start-up (vmi_init_complete, the kernel found) and the mode.
 * Prints one JSON object.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#define RUNS 5
#define MAX_ADDRS 100000u

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct bench {
    vmi_instance_t vmi;
    addr_t *va;
    size_t n;
    addr_t dtb;
    double min_s;
    unsigned mapped, procs;
} bench_t;

typedef double (*round_fn)(bench_t *b); /* returns operations done */

static double walk_round(bench_t *b)
{
    unsigned ok = 0;
    for (size_t i = 0; i < b->n; i++) {
        addr_t pa;
        ok += vmi_pagetable_lookup(b->vmi, b->dtb, b->va[i], &pa) ==
              VMI_SUCCESS;
    }
    b->mapped = ok;
    return (double)b->n;
}

static double kv2p_round(bench_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        addr_t pa;
        vmi_translate_kv2p(b->vmi, b->va[i], &pa);
    }
    return (double)b->n;
}

static int count_cb(void *arg, const tinyvmi_process_t *p)
{
    (void)p;
    ++*(unsigned *)arg;
    return 0;
}

static double ps_round(bench_t *b)
{
    unsigned n = 0;
    tinyvmi_processes(b->vmi, count_cb, &n);
    b->procs = n;
    return 1.0;
}

/* Median seconds per operation over RUNS runs of at least min_s each. */
static double measure(bench_t *b, round_fn fn)
{
    double per[RUNS];
    fn(b); /* warm-up */
    for (int r = 0; r < RUNS; r++) {
        double ops = 0, t0 = now(), t;
        do {
            ops += fn(b);
            t = now() - t0;
        } while (t < b->min_s);
        per[r] = t / ops;
    }
    qsort(per, RUNS, sizeof per[0], cmp_double);
    return per[RUNS / 2];
}

static size_t load_addrs(const char *path, addr_t **out)
{
    FILE *f = fopen(path, "r");
    char line[64];
    size_t n = 0;
    addr_t *v = f ? calloc(MAX_ADDRS, sizeof *v) : NULL;
    while (v && n < MAX_ADDRS && fgets(line, sizeof line, f))
        if (line[0] != '\n')
            v[n++] = strtoull(line, NULL, 16);
    if (f)
        fclose(f);
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    bench_t b = {.min_s = 0.5};
    const char *dump = NULL, *addrs = NULL, *isf = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            b.min_s = 0.05;
        else if (!dump)
            dump = argv[i];
        else if (!addrs)
            addrs = argv[i];
        else
            isf = argv[i];
    }
    if (!dump || !addrs) {
        fprintf(stderr, "usage: bench_arch DUMP ADDRESSES [ISF] [--quick]\n");
        return 2;
    }
    b.n = load_addrs(addrs, &b.va);
    if (!b.n) {
        fprintf(stderr, "bench_arch: no addresses in %s\n", addrs);
        return 2;
    }
    vmi_init_error_t err = VMI_INIT_ERROR_NONE;
    double t0 = now();
    if (vmi_init_complete(&b.vmi, dump, VMI_INIT_DOMAINNAME, NULL,
                          VMI_CONFIG_JSON_PATH, (void *)(uintptr_t)isf,
                          &err) != VMI_SUCCESS) {
        fprintf(stderr, "bench_arch: %s: init error %d: %s\n", dump,
                (int)err, tinyvmi_init_error());
        return 1;
    }
    double start = now() - t0;
    tinyvmi_kernel_t k = {.version = TINYVMI_KERNEL_VERSION};
    tinyvmi_kernel_info(b.vmi, &k);
    b.dtb = k.dtb;
    double walk = measure(&b, walk_round);
    double kv2p = measure(&b, kv2p_round);
    double ps = measure(&b, ps_round);
    printf("{\"dump\": \"%s\", \"page_mode\": \"%s\", \"addresses\": %zu, "
           "\"mapped\": %u, \"startup_ms\": %.1f, \"walk_ns\": %.0f, "
           "\"kv2p_ns\": %.0f, \"ps_ms\": %.3f, \"processes\": %u}\n",
           dump, tinyvmi_page_mode_name(vmi_get_page_mode(b.vmi, 0)), b.n,
           b.mapped, start * 1e3, walk * 1e9, kv2p * 1e9, ps * 1e3, b.procs);
    vmi_destroy(b.vmi);
    free(b.va);
    return 0;
}
