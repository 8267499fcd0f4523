/*
 * Translation and read speed on a real dump, through the public API.
 *   bench_mem DUMP VAS_FILE DIRECTMAP_BASE
 * VAS_FILE holds mapped kernel virtual addresses (hex, one a line), e.g.
 * those QEMU translated for the lab's oracle.  Prints one JSON object per
 * measurement: the median of 5 runs, each run at least 0.5 s.
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
#define MIN_RUN_NS 500000000.0
#define MIB (1u << 20)

typedef struct bench {
    vmi_instance_t vmi;
    addr_t *va;
    size_t nva;
    addr_t dmap; /* direct map base */
    unsigned char *buf, *src;
    uint64_t memsize;
    uint64_t sink; /* keeps results alive */
} bench_t;

/* One pass of `iters` operations; returns operations done. */
typedef uint64_t (*pass_fn)(bench_t *b, uint64_t iters);

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median nanoseconds per operation over RUNS runs of >= 0.5 s each. */
static double measure(bench_t *b, pass_fn fn)
{
    uint64_t iters = 1;
    double t0 = now_ns();
    fn(b, iters); /* warm-up, and a first guess of the rate */
    while (now_ns() - t0 < 5e7) {
        iters *= 2;
        fn(b, iters);
    }
    double per[RUNS];
    for (int r = 0; r < RUNS; r++) {
        uint64_t ops = 0;
        double start = now_ns(), t;
        do {
            ops += fn(b, iters);
        } while ((t = now_ns() - start) < MIN_RUN_NS);
        per[r] = t / (double)ops;
    }
    qsort(per, RUNS, sizeof per[0], cmp_double);
    return per[RUNS / 2];
}

static uint64_t pass_translate(bench_t *b, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        addr_t pa = 0;
        vmi_translate_kv2p(b->vmi, b->va[i % b->nva], &pa);
        b->sink += pa;
    }
    return iters;
}

static uint64_t pass_read8(bench_t *b, uint64_t iters)
{
    uint64_t x = 88172645463325252ULL;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t v = 0;
        vmi_read_64_va(b->vmi, b->va[x % b->nva] & ~7ULL, 0, &v);
        b->sink += v;
    }
    return iters;
}

/* Sequential 1 MiB chunks over RAM: physical, or through the direct map
 * (the same bytes, translated). */
static uint64_t pass_seq(bench_t *b, uint64_t iters, bool virt)
{
    static uint64_t at;
    for (uint64_t i = 0; i < iters; i++) {
        if (at + MIB > b->memsize)
            at = 0;
        if (virt)
            vmi_read_va(b->vmi, b->dmap + at, 0, MIB, b->buf, NULL);
        else
            vmi_read_pa(b->vmi, at, MIB, b->buf, NULL);
        at += MIB;
    }
    b->sink += b->buf[7];
    return iters;
}

static uint64_t pass_seq_pa(bench_t *b, uint64_t iters)
{
    return pass_seq(b, iters, false);
}

static uint64_t pass_seq_va(bench_t *b, uint64_t iters)
{
    return pass_seq(b, iters, true);
}

static uint64_t pass_memcpy(bench_t *b, uint64_t iters)
{
    static uint64_t at;
    for (uint64_t i = 0; i < iters; i++) {
        if (at + MIB > b->memsize)
            at = 0;
        memcpy(b->buf, b->src + at, MIB);
        at += MIB;
    }
    b->sink += b->buf[7];
    return iters;
}

static void report(const char *name, double ns, const char *unit)
{
    if (strcmp(unit, "GB/s") == 0)
        printf("{\"name\":\"%s\",\"value\":%.2f,\"unit\":\"GB/s\","
               "\"ns_per_op\":%.1f}\n", name, (double)MIB / ns, ns);
    else
        printf("{\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\","
               "\"ops_per_s\":%.0f}\n", name, ns, unit, 1e9 / ns);
    fflush(stdout);
}

static int load_vas(bench_t *b, const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 1024;
    char line[64];
    if (!f)
        return -1;
    b->va = malloc(cap * sizeof *b->va);
    while (b->va && fgets(line, sizeof line, f)) {
        if (b->nva == cap) {
            addr_t *nv = realloc(b->va, (cap *= 2) * sizeof *b->va);
            if (!nv)
                break;
            b->va = nv;
        }
        b->va[b->nva++] = strtoull(line, NULL, 16);
    }
    fclose(f);
    return b->nva ? 0 : -1;
}

int main(int argc, char **argv)
{
    bench_t b = {0};
    if (argc != 4) {
        fprintf(stderr, "usage: bench_mem DUMP VAS_FILE DIRECTMAP_BASE\n");
        return 2;
    }
    if (load_vas(&b, argv[2])) {
        fprintf(stderr, "bench_mem: no addresses in %s\n", argv[2]);
        return 2;
    }
    b.dmap = strtoull(argv[3], NULL, 0);
    if (vmi_init_complete(&b.vmi, argv[1], VMI_INIT_DOMAINNAME, NULL,
                          VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, NULL) !=
        VMI_SUCCESS) {
        fprintf(stderr, "bench_mem: %s\n", tinyvmi_init_error());
        return 3;
    }
    tinyvmi_range_t r0;
    tinyvmi_range_get(b.vmi, 0, &r0);
    b.memsize = r0.start == 0 ? r0.size : 0; /* RAM from 0 up, contiguous */
    b.buf = malloc(MIB);
    b.src = malloc(b.memsize ? b.memsize : MIB);
    if (!b.buf || !b.src || b.memsize < MIB) {
        fprintf(stderr, "bench_mem: need RAM from address 0 and memory\n");
        return 3;
    }
    memset(b.src, 1, b.memsize);

    tinyvmi_cache_enable(b.vmi, 0);
    report("translate_uncached", measure(&b, pass_translate), "ns");
    tinyvmi_cache_enable(b.vmi, 1);
    report("translate_cached", measure(&b, pass_translate), "ns");
    report("read8_random_va", measure(&b, pass_read8), "ns");
    report("read_1mib_seq_pa", measure(&b, pass_seq_pa), "GB/s");
    report("read_1mib_seq_directmap_va", measure(&b, pass_seq_va), "GB/s");
    report("memcpy_1mib", measure(&b, pass_memcpy), "GB/s");
    tinyvmi_cache_stats_t st;
    tinyvmi_cache_stats(b.vmi, &st);
    fprintf(stderr, "cache: %" PRIu64 " hits, %" PRIu64 " misses (sink %"
            PRIu64 ")\n", st.hits, st.misses, b.sink);
    vmi_destroy(b.vmi);
    free(b.va);
    free(b.buf);
    free(b.src);
    return 0;
}
