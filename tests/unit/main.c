/* The unit-test driver: `unit --list`, `unit NAME`, or `unit` for all. */
#include "tu.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TU_MAX 1024

static struct {
    const char *name;
    tu_fn fn;
} tests[TU_MAX];
static size_t ntests;
int tu_failures;

void tu_register(const char *name, tu_fn fn)
{
    if (ntests == TU_MAX) {
        fprintf(stderr, "tu: more than %d tests\n", TU_MAX);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void *tu_alloc(void *ctx, void *ptr, size_t old_size, size_t new_size)
{
    (void)ctx;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

const tinyvmi_hooks_t tu_hooks = {.version = TINYVMI_HOOKS_VERSION,
                                  .alloc = tu_alloc,
                                  .log_level = -1};

const char *tu_data_dir(void)
{
    const char *d = getenv("TU_DATA");
    return d ? d : "tests/data";
}

const char *tu_tmp_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/tu.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

static int cmp(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y);
}

int main(int argc, char **argv)
{
    qsort(tests, ntests, sizeof tests[0], cmp);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    size_t ran = 0, failed = 0;
    for (size_t i = 0; i < ntests; i++) {
        if (argc >= 2 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        int before = tu_failures;
        tests[i].fn();
        ran++;
        if (tu_failures != before) {
            failed++;
            fprintf(stderr, "FAIL %s\n", tests[i].name);
        }
    }
    if (argc >= 2 && ran == 0) {
        fprintf(stderr, "tu: no test named %s\n", argv[1]);
        return 2;
    }
    if (argc < 2)
        printf("%zu passed, %zu failed\n", ran - failed, failed);
    return failed ? 1 : 0;
}
