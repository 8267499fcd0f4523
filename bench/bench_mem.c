/*
 * Translation and read speed on a dump, through the public API only.
 *   bench_mem DUMP [--page-mode ia32e|la57 --dtb DTB] [--json] [--quick]
 *
 * The addresses come from the dump itself: the kernel half of the address
 * space is walked with vmi_pagetable_lookup_extended, skipping whatever a
 * non-present entry leaves unmapped, and every mapped page backed by RAM is
 * a candidate.  The direct map is the mapping whose VA - PA offset covers
 * the most bytes.  Each measurement: a warm-up, then 5 runs of at least
 * 0.5 s each (0.05 s with --quick); the median is reported.  memcpy over a
 * buffer of the same size, 1 MiB at a time, is the yardstick for reads.
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
#define MIB (1u << 20)
#define NTRANSLATE 1024u     /* fits the translation cache */
#define NRANDOM 65536u       /* random reads: more pages than the cache */
#define MAX_LOOKUPS 4000000u /* bounds the walk of hostile tables */
#define X86_P 1ULL

typedef struct page {
    addr_t va, pa;
    uint64_t size;
} page_t;

typedef struct bench {
    vmi_instance_t vmi;
    const char *path;
    page_mode_t mode;
    addr_t dtb, dmap;
    bool have_dmap, json, quick;
    page_t *pages;
    size_t npages, cap;
    uint64_t lookups, nsize[3]; /* pages of 4 KiB, 2 MiB, 1 GiB */
    addr_t tva[NTRANSLATE], *rva;
    size_t ntva;
    addr_t *chunk; /* 1 MiB-aligned physical chunks readable both ways */
    size_t nchunks, at;
    unsigned char *dst, *src;
    void *map; /* src's mapping */
    size_t map_len;
    uint64_t sink;
} bench_t;

typedef uint64_t (*pass_fn)(bench_t *b, uint64_t iters);

typedef struct job {
    const char *name, *label;
    pass_fn fn;
    bool bytes; /* a 1 MiB transfer: report GB/s */
    uint64_t iters;
    double per[RUNS];
    uint64_t hits, misses; /* translation cache, while it ran */
    double ns;             /* median ns per operation */
    double hit_rate;       /* or < 0: no lookups */
} job_t;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ---- Finding kernel mappings ----------------------------------------------- */

/* How many bytes from pa on, up to len, RAM backs (0: none). */
static uint64_t backed(bench_t *b, addr_t pa, uint64_t len)
{
    for (size_t i = 0; i < tinyvmi_range_count(b->vmi); i++) {
        tinyvmi_range_t r;
        if (tinyvmi_range_get(b->vmi, i, &r) != VMI_SUCCESS ||
            pa < r.start || pa - r.start >= r.size)
            continue;
        uint64_t left = r.size - (pa - r.start);
        return left < len ? left : len;
    }
    return 0;
}

/* A mapped page; a large page only partly in RAM keeps its RAM part. */
static int add_page(bench_t *b, addr_t va, addr_t pa, uint64_t size)
{
    uint64_t len = backed(b, pa, size);
    if (!len)
        return 0;
    if (b->npages == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        page_t *p = realloc(b->pages, cap * sizeof *p);
        if (!p)
            return -1;
        b->pages = p;
        b->cap = cap;
    }
    b->pages[b->npages++] = (page_t){va, pa, len};
    b->nsize[size == 4096 ? 0 : size == (2u << 20) ? 1 : 2]++;
    return 0;
}

/* How far an unmapped va's hole reaches: the span of the first entry
 * that is not present (or that could not be read: page_info_t leaves it
 * zero). */
static uint64_t hole_span(const bench_t *b, const page_info_t *pi)
{
    const addr_t v[5] = {pi->x86_ia32e.pml5e_value, pi->x86_ia32e.pml4e_value,
                         pi->x86_ia32e.pdpte_value, pi->x86_ia32e.pgd_value,
                         pi->x86_ia32e.pte_value};
    static const unsigned shift[5] = {48, 39, 30, 21, 12};
    for (unsigned l = b->mode == VMI_PM_LA57 ? 0 : 1; l < 5; l++)
        if (!(v[l] & X86_P))
            return 1ULL << shift[l];
    return 4096;
}

/* Walks the kernel half: one lookup per mapped page or per hole. */
static int find_pages(bench_t *b)
{
    addr_t va = b->mode == VMI_PM_LA57 ? 0xff00000000000000ULL
                                       : 0xffff800000000000ULL;
    while (b->lookups++ < MAX_LOOKUPS) {
        page_info_t pi;
        uint64_t step;
        if (vmi_pagetable_lookup_extended(b->vmi, b->dtb, va, &pi) ==
            VMI_SUCCESS) {
            step = pi.size;
            if (add_page(b, va, pi.paddr & ~(step - 1), step))
                return -1;
        } else {
            step = hole_span(b, &pi);
        }
        addr_t next = (va & ~(step - 1)) + step;
        if (next < va || next == 0)
            break; /* the top of the address space */
        va = next;
    }
    return b->npages ? 0 : -1;
}

static int cmp_delta(const void *x, const void *y)
{
    const page_t *p = x, *q = y;
    addr_t a = p->va - p->pa, c = q->va - q->pa;
    return a < c ? -1 : a > c;
}

/* The direct map: the VA - PA offset that maps the most bytes. */
static void find_direct_map(bench_t *b)
{
    page_t *p = malloc(b->npages * sizeof *p);
    uint64_t best = 0;
    if (!p)
        return;
    memcpy(p, b->pages, b->npages * sizeof *p);
    qsort(p, b->npages, sizeof *p, cmp_delta);
    for (size_t i = 0, j; i < b->npages; i = j) {
        uint64_t bytes = 0;
        addr_t d = p[i].va - p[i].pa;
        for (j = i; j < b->npages && p[j].va - p[j].pa == d; j++)
            bytes += p[j].size;
        if (bytes > best) {
            best = bytes;
            b->dmap = d;
            b->have_dmap = true;
        }
    }
    free(p);
}

/* A random address inside a random mapped page, 8-byte aligned. */
static addr_t random_va(const bench_t *b, uint64_t *x)
{
    const page_t *p = &b->pages[rng_next(x) % b->npages];
    return p->va + (rng_next(x) % p->size & ~7ULL);
}

/* memcpy's source: 2 MiB pages where the kernel gives them, so the
 * yardstick is memcpy at its best (fewer TLB misses than 4 KiB pages). */
static unsigned char *alloc_huge(bench_t *b, size_t len)
{
    size_t huge = 2u << 20;
    b->map_len = len + huge;
    b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->map == MAP_FAILED) {
        b->map = NULL;
        return NULL;
    }
    unsigned char *p = (unsigned char *)(((uintptr_t)b->map + huge - 1) &
                                         ~(uintptr_t)(huge - 1));
    madvise(p, len, MADV_HUGEPAGE); /* a hint: fine if refused */
    return p;
}

/* 1 MiB chunks that read the same physically and through the direct
 * map, and the buffers copied into and (for memcpy) from. */
static int find_chunks(bench_t *b)
{
    uint64_t max = vmi_get_max_physical_address(b->vmi) / MIB;
    b->chunk = malloc((size_t)(max + 1) * sizeof *b->chunk);
    b->dst = aligned_alloc(4096, MIB);
    if (!b->chunk || !b->dst)
        return -1;
    for (addr_t pa = 0; pa / MIB < max; pa += MIB) {
        ACCESS_CONTEXT(ctx, .tm = VMI_TM_PROCESS_DTB, .addr = b->dmap + pa,
                       .dtb = b->dtb);
        if (vmi_read_pa(b->vmi, pa, MIB, b->dst, NULL) != VMI_SUCCESS)
            continue;
        if (b->have_dmap &&
            vmi_read(b->vmi, &ctx, MIB, b->dst, NULL) != VMI_SUCCESS)
            continue;
        b->chunk[b->nchunks++] = pa;
    }
    if (!b->nchunks || !(b->src = alloc_huge(b, b->nchunks * MIB)))
        return -1;
    /* The same bytes the reads copy, so the data is no easier to copy. */
    for (size_t i = 0; i < b->nchunks; i++)
        vmi_read_pa(b->vmi, b->chunk[i], MIB, b->src + i * MIB, NULL);
    return 0;
}

static bool hits(bench_t *b, addr_t va)
{
    tinyvmi_cache_stats_t s0, s1;
    addr_t pa;
    tinyvmi_cache_stats(b->vmi, &s0);
    vmi_translate_kv2p(b->vmi, va, &pa);
    tinyvmi_cache_stats(b->vmi, &s1);
    return s1.hits > s0.hits;
}

/* Random VAs that stay in the translation cache together: after all are
 * looked up once, those that hit on a second round are kept; two that
 * share a slot cannot both hit, so the kept ones never evict each other. */
static void pick_translations(bench_t *b, uint64_t *x)
{
    addr_t cand[NTRANSLATE];
    for (size_t i = 0; i < NTRANSLATE; i++) {
        cand[i] = random_va(b, x);
        hits(b, cand[i]);
    }
    for (size_t i = 0; i < NTRANSLATE; i++)
        if (hits(b, cand[i]))
            b->tva[b->ntva++] = cand[i];
}

static int prepare(bench_t *b)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    if (find_pages(b))
        return -1;
    find_direct_map(b);
    b->rva = malloc(NRANDOM * sizeof *b->rva);
    if (!b->rva)
        return -1;
    pick_translations(b, &x);
    if (!b->ntva)
        return -1;
    for (size_t i = 0; i < NRANDOM; i++)
        b->rva[i] = random_va(b, &x);
    return find_chunks(b);
}

/* ---- Measuring ----------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return a < c ? -1 : a > c;
}

/* Doubles a pass's length until it takes a tenth of a run; this is the
 * warm-up too. */
static void calibrate(bench_t *b, job_t *j)
{
    double min_ns = b->quick ? 5e7 : 5e8, t0;
    j->iters = 1;
    j->fn(b, 1);
    do {
        j->iters *= 2;
        t0 = now_ns();
        j->fn(b, j->iters);
    } while (now_ns() - t0 < min_ns / 10);
}

/* Run r of job j: at least min_ns of passes; counts cache hits too. */
static void run_once(bench_t *b, job_t *j, int r)
{
    double min_ns = b->quick ? 5e7 : 5e8, start = now_ns(), t;
    uint64_t ops = 0;
    tinyvmi_cache_stats_t s0, s1;
    tinyvmi_cache_stats(b->vmi, &s0);
    do
        ops += j->fn(b, j->iters);
    while ((t = now_ns() - start) < min_ns);
    tinyvmi_cache_stats(b->vmi, &s1);
    j->per[r] = t / (double)ops;
    j->hits += s1.hits - s0.hits;
    j->misses += s1.misses - s0.misses;
}

/* The jobs' runs interleaved (run 1 of each, run 2 of each, ...), so a
 * change in the machine's load hits all of them alike; then medians. */
static void measure(bench_t *b, job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        calibrate(b, &jobs[i]);
    for (int r = 0; r < RUNS; r++)
        for (size_t i = 0; i < n; i++)
            run_once(b, &jobs[i], r);
    for (size_t i = 0; i < n; i++) {
        job_t *j = &jobs[i];
        qsort(j->per, RUNS, sizeof j->per[0], cmp_double);
        j->ns = j->per[RUNS / 2];
        j->hit_rate = j->hits + j->misses
                          ? (double)j->hits / (double)(j->hits + j->misses)
                          : -1.0;
    }
}

static uint64_t pass_translate(bench_t *b, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        addr_t pa = 0;
        vmi_translate_kv2p(b->vmi, b->tva[i % b->ntva], &pa);
        b->sink += pa;
    }
    return iters;
}

static uint64_t pass_read8(bench_t *b, uint64_t iters)
{
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t v = 0;
        vmi_read_64_va(b->vmi, b->rva[(b->at + i) % NRANDOM], 0, &v);
        b->sink += v;
    }
    b->at += iters;
    return iters;
}

static uint64_t pass_seq(bench_t *b, uint64_t iters, int how)
{
    for (uint64_t i = 0; i < iters; i++) {
        addr_t pa = b->chunk[b->at++ % b->nchunks];
        ACCESS_CONTEXT(ctx, .tm = VMI_TM_PROCESS_DTB, .addr = b->dmap + pa,
                       .dtb = b->dtb);
        if (how == 0)
            vmi_read_pa(b->vmi, pa, MIB, b->dst, NULL);
        else if (how == 1)
            vmi_read(b->vmi, &ctx, MIB, b->dst, NULL);
        else
            memcpy(b->dst, b->src + (b->at - 1) % b->nchunks * MIB, MIB);
        b->sink += b->dst[pa / MIB % MIB];
    }
    return iters;
}

static uint64_t pass_seq_pa(bench_t *b, uint64_t iters)
{
    return pass_seq(b, iters, 0);
}

static uint64_t pass_seq_va(bench_t *b, uint64_t iters)
{
    return pass_seq(b, iters, 1);
}

static uint64_t pass_memcpy(bench_t *b, uint64_t iters)
{
    return pass_seq(b, iters, 2);
}

/* ---- Reporting ------------------------------------------------------------------ */

static double rate(const job_t *r)
{
    return r->bytes ? (double)MIB / r->ns : 1e3 / r->ns; /* GB/s, M/s */
}

static void print_table(const bench_t *b, const job_t *r, size_t n)
{
    printf("%s: %s, %s, DTB 0x%" PRIx64 "\n", b->path,
           tinyvmi_format(b->vmi), tinyvmi_page_mode_name(b->mode), b->dtb);
    printf("kernel pages found: %zu (4 KiB %" PRIu64 ", 2 MiB %" PRIu64
           ", 1 GiB %" PRIu64 ") in %" PRIu64 " lookups; direct map ",
           b->npages, b->nsize[0], b->nsize[1], b->nsize[2], b->lookups);
    if (b->have_dmap)
        printf("0x%" PRIx64 ", %zu MiB read both ways\n", b->dmap,
               b->nchunks);
    else
        printf("not found\n");
    printf("translations: %zu random kernel VAs (of %u) that share no cache "
           "slot; random reads: %u VAs\n", b->ntva, NTRANSLATE, NRANDOM);
    printf("%-40s %12s %14s %s\n", "measurement", "median", "rate",
           "cache hits");
    for (size_t i = 0; i < n; i++) {
        char hits[16] = "";
        if (r[i].hit_rate >= 0)
            snprintf(hits, sizeof hits, "%.1f%%", r[i].hit_rate * 100);
        if (r[i].bytes)
            printf("%-40s %9.1f us %9.2f GB/s %s\n", r[i].label, r[i].ns / 1e3,
                   rate(&r[i]), hits);
        else
            printf("%-40s %9.1f ns %10.1f M/s %s\n", r[i].label, r[i].ns,
                   rate(&r[i]), hits);
    }
}

static void print_json(const bench_t *b, const job_t *r, size_t n)
{
    printf("{\"dump\":\"%s\",\"format\":\"%s\",\"page_mode\":\"%s\","
           "\"dtb\":\"0x%" PRIx64 "\",\"pages\":%zu,\"pages_4k\":%" PRIu64
           ",\"pages_2m\":%" PRIu64 ",\"pages_1g\":%" PRIu64 ",\"lookups\":%"
           PRIu64 ",\"translate_vas\":%zu,\"random_vas\":%u,"
           "\"direct_map\":", b->path, tinyvmi_format(b->vmi),
           tinyvmi_page_mode_name(b->mode), b->dtb, b->npages, b->nsize[0],
           b->nsize[1], b->nsize[2], b->lookups, b->ntva, NRANDOM);
    if (b->have_dmap)
        printf("\"0x%" PRIx64 "\"", b->dmap);
    else
        printf("null");
    printf(",\"seq_bytes\":%zu,\"results\":[", b->nchunks * MIB);
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"name\":\"%s\",\"label\":\"%s\",\"ns_per_op\":%.2f,\"%s\":"
               "%.3f", i ? "," : "", r[i].name, r[i].label, r[i].ns,
               r[i].bytes ? "gb_per_s" : "mops_per_s", rate(&r[i]));
        if (r[i].hit_rate >= 0)
            printf(",\"cache_hit_rate\":%.4f", r[i].hit_rate);
        printf("}");
    }
    printf("]}\n");
}

/* ---- Set-up ---------------------------------------------------------------------- */

static int parse(bench_t *b, int argc, char **argv, page_mode_t *pm,
                 bool *have_dtb)
{
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--json") == 0)
            b->json = true;
        else if (strcmp(argv[i], "--quick") == 0)
            b->quick = true;
        else if (strcmp(argv[i], "--page-mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            if (strcmp(m, "ia32e") != 0 && strcmp(m, "la57") != 0)
                return -1;
            *pm = m[0] == 'l' ? VMI_PM_LA57 : VMI_PM_IA32E;
        } else if (strcmp(argv[i], "--dtb") == 0 && i + 1 < argc) {
            b->dtb = strtoull(argv[++i], &end, 0);
            *have_dtb = true;
            if (!*argv[i] || *end)
                return -1;
        } else if (argv[i][0] != '-' && !b->path)
            b->path = argv[i];
        else
            return -1;
    }
    return b->path ? 0 : -1;
}

static int open_dump(bench_t *b, page_mode_t pm, bool have_dtb)
{
    vmi_init_error_t err;
    if (vmi_init(&b->vmi, VMI_FILE, b->path, VMI_INIT_DOMAINNAME, NULL,
                 &err) != VMI_SUCCESS) {
        fprintf(stderr, "bench_mem: %s: %s\n", b->path, tinyvmi_init_error());
        return -1;
    }
    if (pm != VMI_PM_UNKNOWN || have_dtb) {
        if (pm == VMI_PM_UNKNOWN)
            pm = vmi_init_paging(b->vmi, 0);
        if (!have_dtb)
            vmi_get_vcpureg(b->vmi, &b->dtb, CR3, 0);
        tinyvmi_set_paging(b->vmi, pm, b->dtb);
    }
    b->mode = vmi_init_paging(b->vmi, 0);
    b->dtb = vmi_get_kernel_dtb(b->vmi);
    if (b->mode != VMI_PM_IA32E && b->mode != VMI_PM_LA57) {
        fprintf(stderr, "bench_mem: %s: need IA-32e or LA57 paging: %s\n",
                b->path, tinyvmi_last_error(b->vmi));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_t b = {0};
    page_mode_t pm = VMI_PM_UNKNOWN;
    bool have_dtb = false;
    if (parse(&b, argc, argv, &pm, &have_dtb)) {
        fprintf(stderr, "usage: bench_mem DUMP [--page-mode ia32e|la57] "
                "[--dtb DTB] [--json] [--quick]\n");
        return 2;
    }
    if (open_dump(&b, pm, have_dtb))
        return 3;
    if (prepare(&b)) {
        fprintf(stderr, "bench_mem: %s: no readable kernel mappings found\n",
                b.path);
        return 1;
    }
#define JOB(n, l, f, gb) {.name = n, .label = l, .fn = f, .bytes = gb}
    job_t r[] = {
        JOB("translate_uncached", "translate, cache off", pass_translate,
            false),
        JOB("translate_cached", "translate, cache on (all hits)",
            pass_translate, false),
        JOB("read8_random_va", "read 8 bytes, random kernel VA", pass_read8,
            false),
        JOB("read_1mib_seq_pa", "read 1 MiB sequential, physical",
            pass_seq_pa, true),
        JOB("memcpy_1mib", "memcpy 1 MiB sequential (same size)",
            pass_memcpy, true),
        JOB("read_1mib_seq_directmap_va",
            "read 1 MiB sequential, direct-map VA", pass_seq_va, true),
    };
#undef JOB
    size_t n = sizeof r / sizeof r[0] - !b.have_dmap;
    tinyvmi_cache_enable(b.vmi, 0);
    measure(&b, r, 1);
    r[0].hit_rate = -1.0; /* no cache to hit */
    tinyvmi_cache_enable(b.vmi, 1);
    measure(&b, r + 1, 2);
    measure(&b, r + 3, n - 3);
    if (b.json)
        print_json(&b, r, n);
    else
        print_table(&b, r, n);
    fprintf(stderr, "(sink %" PRIu64 ")\n", b.sink);
    vmi_destroy(b.vmi);
    free(b.pages);
    free(b.rva);
    free(b.chunk);
    free(b.dst);
    if (b.map)
        munmap(b.map, b.map_len);
    return 0;
}
