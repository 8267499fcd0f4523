/*
 * Profile loading speed and memory.
 *   bench_profile FILE [--file] [--runs N] [--json]
 * Default: FILE (plain JSON) is read into memory first, then loaded with
 * tv_profile_load_json and indexed with tv_symtab_finish, N times (default
 * 5); the median wall time is reported.  --file: tv_profile_load_file on
 * FILE as is (xz/gzip decompression included).  Memory: peak RSS of the
 * process (getrusage), and how much it grew during the first load (the
 * input buffer is counted before; VmHWM, else getrusage).  Run one measurement per process so the
 * peaks do not mix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "profile/profile.h"

static void *bp_alloc(void *ctx, void *ptr, size_t old, size_t size)
{
    (void)ctx;
    (void)old;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Peak RSS: VmHWM (getrusage's ru_maxrss survives exec, so a big parent
 * would show through). */
static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int runs = 5;
    int json = 0, file_mode = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--file"))
            file_mode = 1;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else
            path = argv[i];
    }
    if (!path || runs < 1 || runs > 100) {
        fprintf(stderr, "usage: bench_profile FILE [--file] [--runs N] "
                        "[--json]\n");
        return 2;
    }
    static const tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                                          .alloc = bp_alloc};
    char err[512] = "";
    tv_pctx_t ctx = {&hooks, err, sizeof err};
    char *buf = NULL;
    size_t len = 0;
    if (!file_mode) {
        FILE *f = fopen(path, "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0) {
            perror(path);
            return 1;
        }
        long l = ftell(f);
        rewind(f);
        len = (size_t)l;
        buf = malloc(len ? len : 1);
        if (!buf || fread(buf, 1, len, f) != len) {
            perror(path);
            return 1;
        }
        fclose(f);
    }
    long rss0 = peak_kib();
    double t[100];
    size_t nsym = 0, ntypes = 0, bytes = 0;
    long rss1 = 0;
    for (int r = 0; r < runs; r++) {
        tv_symtab_t *tab = NULL;
        double a = now();
        int rc;
        if (file_mode) {
            rc = tv_profile_load_file(&ctx, path, &tab);
        } else {
            rc = tv_symtab_new(&ctx, &tab);
            if (rc == 0)
                rc = tv_profile_load_json(&ctx, buf, len, tab);
            if (rc == 0)
                rc = tv_symtab_finish(tab);
        }
        t[r] = now() - a;
        if (rc != 0) {
            fprintf(stderr, "load failed (%d): %s\n", rc, err);
            return 1;
        }
        if (r == 0) {
            rss1 = peak_kib();
            nsym = tv_symtab_nsymbols(tab);
            ntypes = tv_symtab_ntypes(tab);
            bytes = tv_symtab_bytes(tab);
        }
        tv_symtab_free(tab);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    double med = t[runs / 2];
    if (json)
        printf("{\"file\": \"%s\", \"mode\": \"%s\", \"input_bytes\": %zu, "
               "\"runs\": %d, \"median_s\": %.4f, \"min_s\": %.4f, "
               "\"peak_rss_kib\": %ld, \"load_rss_growth_kib\": %ld, "
               "\"table_bytes\": %zu, \"symbols\": %zu, \"types\": %zu}\n",
               path, file_mode ? "file" : "buffer", len, runs, med, t[0],
               rss1, rss1 - rss0, bytes, nsym, ntypes);
    else
        printf("%s (%s): median %.3f s, peak RSS %ld KiB (+%ld KiB while "
               "loading), table %zu bytes, %zu symbols, %zu types\n",
               path, file_mode ? "file" : "buffer", med, rss1, rss1 - rss0,
               bytes, nsym, ntypes);
    free(buf);
    return 0;
}
