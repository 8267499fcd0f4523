/* The core without a guest: the formatter, errors, RAM ranges and holes,
 * access contexts, allocation failure. */
#include "core/tv.h"
#include "tu.h"

/* ---- A memory-backed test driver with two RAM ranges and a hole ---------- */

typedef struct memdrv {
    uint8_t *bytes;     /* backing store, indexed by range offset */
    size_t size;
    tv_range_t ranges[2];
    unsigned reads;
} memdrv_t;

static int md_read(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len)
{
    memdrv_t *m = ctx;
    (void)pa;
    if (off + len > m->size)
        return TINYVMI_EIO;
    memcpy(buf, m->bytes + off, len);
    m->reads++;
    return 0;
}

static int md_write(void *ctx, uint64_t pa, uint64_t off, const void *buf,
                    size_t len)
{
    memdrv_t *m = ctx;
    (void)pa;
    memcpy(m->bytes + off, buf, len);
    return 0;
}

static const tv_mem_ops_t md_ops = {md_read, md_write, NULL};

/* RAM at [0, 64 KiB) and [1 MiB, +64 KiB); the second range lives at file
 * offset 64 KiB.  Byte i of the store holds (uint8_t)(i * 7). */
static struct vmi_instance *two_ranges(memdrv_t *m)
{
    m->size = 128 * 1024;
    m->bytes = malloc(m->size);
    for (size_t i = 0; i < m->size; i++)
        m->bytes[i] = (uint8_t)(i * 7);
    m->ranges[0] = (tv_range_t){0, 0x10000, 0};
    m->ranges[1] = (tv_range_t){0x100000, 0x10000, 0x10000};
    struct vmi_instance *vmi;
    if (tv_instance_new(&tu_hooks, &vmi))
        return NULL;
    tv_driver_t d = {.name = "mem", .ctx = m, .mem = &md_ops,
                     .ranges = m->ranges, .nranges = 2};
    if (tv_instance_attach(vmi, &d)) {
        tv_instance_free(vmi);
        return NULL;
    }
    return vmi;
}

TU_TEST(core_fmt)
{
    char b[64];
    TU_EQ_INT(tv_fmt(b, sizeof b, "%s=%d %u 0x%llx %5s|%-4d|%04x", "a", -12,
                     7u, 0xffff888000000000ULL, "ab", 3, 0xbeu), 42);
    TU_EQ_STR(b, "a=-12 7 0xffff888000000000    ab|3   |00be");
    TU_EQ_INT(tv_fmt(b, 5, "%s", "truncated"), 9);
    TU_EQ_STR(b, "trun");
    tv_fmt(b, sizeof b, "%.*s|%zu|%lld|%%|%c", 3, "abcdef", (size_t)42,
           -9223372036854775807LL - 1, 'z');
    TU_EQ_STR(b, "abc|42|-9223372036854775808|%|z");
    const char *volatile none = NULL; /* hidden from the format checker */
    tv_fmt(b, sizeof b, "%s", none);
    TU_EQ_STR(b, "(null)");
}

TU_TEST(core_strerror)
{
    TU_EQ_STR(tinyvmi_err_name(TINYVMI_EUNMAPPED), "EUNMAPPED");
    TU_EQ_STR(tinyvmi_strerror(TINYVMI_ENOMEM), "out of memory");
    TU_EQ_STR(tinyvmi_strerror(12345), "unknown error");
}

TU_TEST(core_ranges_and_holes)
{
    memdrv_t m;
    struct vmi_instance *vmi = two_ranges(&m);
    TU_ASSERT(vmi);
    TU_EQ_U64(vmi_get_memsize(vmi), 0x20000);
    TU_EQ_U64(vmi_get_max_physical_address(vmi), 0x110000);

    uint8_t b[16];
    size_t got = 99;
    TU_EQ_INT(vmi_read_pa(vmi, 0x100004, 4, b, &got), VMI_SUCCESS);
    TU_EQ_U64(got, 4);
    TU_EQ_U64(b[0], (uint8_t)((0x10000 + 4) * 7)); /* offset, not pa */

    /* A read running off the first range into the hole: partial, then
     * EUNMAPPED naming the first unbacked byte. */
    TU_EQ_INT(vmi_read_pa(vmi, 0xfff8, 16, b, &got), VMI_FAILURE);
    TU_EQ_U64(got, 8);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_EUNMAPPED);
    TU_CONTAINS(tinyvmi_last_error(vmi), "0x10000 is not backed by RAM");

    /* Holes read as failures, never zeros; so does the end of memory and
     * a range that wraps 2^64. */
    uint64_t v;
    TU_EQ_INT(vmi_read_64_pa(vmi, 0x80000, &v), VMI_FAILURE);
    TU_EQ_INT(vmi_read_64_pa(vmi, 0x110000, &v), VMI_FAILURE);
    TU_EQ_INT(vmi_read_pa(vmi, ~0ULL - 2, 8, b, &got), VMI_FAILURE);
    TU_EQ_U64(got, 0);
    tv_instance_free(vmi);
    free(m.bytes);
}

TU_TEST(core_write_pa)
{
    memdrv_t m;
    struct vmi_instance *vmi = two_ranges(&m);
    TU_ASSERT(vmi);
    uint32_t v = 0xdeadbeef, back = 0;
    TU_EQ_INT(vmi_write_32_pa(vmi, 0x100010, &v), VMI_SUCCESS);
    TU_EQ_INT(vmi_read_32_pa(vmi, 0x100010, &back), VMI_SUCCESS);
    TU_EQ_U64(back, 0xdeadbeef);
    TU_EQ_INT(vmi_write_32_pa(vmi, 0x20000, &v), VMI_FAILURE);
    tv_instance_free(vmi);
    free(m.bytes);
}

TU_TEST(core_attach_rejects_bad_ranges)
{
    struct vmi_instance *vmi;
    TU_ASSERT(tv_instance_new(&tu_hooks, &vmi) == 0);
    memdrv_t m = {0};
    tv_range_t overlap[2] = {{0, 0x2000, 0}, {0x1000, 0x1000, 0}};
    tv_driver_t d = {.name = "mem", .ctx = &m, .mem = &md_ops,
                     .ranges = overlap, .nranges = 2};
    TU_EQ_INT(tv_instance_attach(vmi, &d), TINYVMI_EFORMAT);
    TU_CONTAINS(tinyvmi_last_error(vmi), "overlaps");
    tv_range_t wrap[1] = {{~0ULL - 0xfff, 0x2000, 0}};
    d.ranges = wrap;
    d.nranges = 1;
    TU_EQ_INT(tv_instance_attach(vmi, &d), TINYVMI_EFORMAT);
    TU_CONTAINS(tinyvmi_last_error(vmi), "wraps");
    tv_instance_free(vmi);
}

TU_TEST(core_contexts_need_paging)
{
    memdrv_t m;
    struct vmi_instance *vmi = two_ranges(&m);
    TU_ASSERT(vmi);
    uint64_t v;
    /* No registers, no paging: virtual access says why. */
    TU_EQ_INT(vmi_init_paging(vmi, 0), VMI_PM_UNKNOWN);
    TU_CONTAINS(tinyvmi_last_error(vmi), "no vCPU registers");
    TU_EQ_INT(vmi_read_64_va(vmi, 0xffffffff81000000ULL, 0, &v), VMI_FAILURE);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_ESTATE);
    TU_EQ_INT(vmi_get_address_width(vmi), 0);
    addr_t a;
    TU_EQ_INT(vmi_read_addr_pa(vmi, 0, &a), VMI_FAILURE);

    /* Contexts: bad mechanism, future version, nested tables, symbols. */
    access_context_t c = {.version = ACCESS_CONTEXT_VERSION};
    TU_EQ_INT(vmi_read_64(vmi, &c, &v), VMI_FAILURE);
    TU_CONTAINS(tinyvmi_last_error(vmi), "no translation mechanism");
    c = (access_context_t){.version = 99, .tm = VMI_TM_NONE};
    TU_EQ_INT(vmi_read_64(vmi, &c, &v), VMI_FAILURE);
    c = (access_context_t){.tm = VMI_TM_NONE, .npt = 0x1000};
    TU_EQ_INT(vmi_read_64(vmi, &c, &v), VMI_FAILURE);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_ENOTSUP);
    c = (access_context_t){.tm = VMI_TM_KERNEL_SYMBOL, .ksym = "init_task"};
    TU_EQ_INT(vmi_read_64(vmi, &c, &v), VMI_FAILURE);
    TU_CONTAINS(tinyvmi_last_error(vmi), "init_task");
    /* A version-0 context (older LibVMI code) still works. */
    c = (access_context_t){.tm = VMI_TM_NONE, .addr = 8};
    TU_EQ_INT(vmi_read_64(vmi, &c, &v), VMI_SUCCESS);
    tv_instance_free(vmi);
    free(m.bytes);
}

/* An allocator that fails after a budget of calls: creation must fail
 * cleanly at every point. */
static int budget;
static void *failing_alloc(void *ctx, void *p, size_t old, size_t size)
{
    if (size && budget-- <= 0)
        return NULL;
    return tu_alloc(ctx, p, old, size);
}

TU_TEST(core_out_of_memory)
{
    tinyvmi_hooks_t h = tu_hooks;
    h.alloc = failing_alloc;
    int ok = 0;
    for (int b = 0; b < 4; b++) {
        budget = b;
        struct vmi_instance *vmi = NULL;
        int rc = tv_instance_new(&h, &vmi);
        if (rc == 0) {
            ok++;
            tv_instance_free(vmi);
        } else {
            TU_EQ_INT(rc, TINYVMI_ENOMEM);
            TU_ASSERT(vmi == NULL);
        }
    }
    TU_ASSERT(ok > 0);
}

TU_TEST(core_read_str)
{
    memdrv_t m;
    struct vmi_instance *vmi = two_ranges(&m);
    TU_ASSERT(vmi);
    /* Across a page boundary, inside the first range. */
    memcpy(m.bytes + 0x1ffa, "hello, pages", 13);
    char *s = vmi_read_str_pa(vmi, 0x1ffa);
    TU_EQ_STR(s, "hello, pages");
    free(s);
    /* Running into the hole before a NUL: not a whole string. */
    memset(m.bytes + 0xfff0, 'x', 0x10);
    TU_ASSERT(vmi_read_str_pa(vmi, 0xfff0) == NULL);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_EUNMAPPED);
    /* No NUL before the end of RAM: refused. */
    memset(m.bytes, 'y', m.size);
    TU_ASSERT(vmi_read_str_pa(vmi, 0) == NULL);
    /* Virtual reads need paging. */
    TU_ASSERT(vmi_read_str_va(vmi, 0xffffffff81000000ULL, 0) == NULL);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_ESTATE);
    tv_instance_free(vmi);
    free(m.bytes);
}

/* A driver failure must be reported with its own reason, even when an
 * earlier failure left the same status behind. */
static int failing_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                        size_t len)
{
    (void)ctx, (void)pa, (void)off, (void)buf, (void)len;
    return TINYVMI_EIO; /* says nothing itself */
}

static const tv_mem_ops_t failing_ops = {failing_read, NULL, NULL};

TU_TEST(core_driver_error_is_fresh)
{
    struct vmi_instance *vmi;
    TU_ASSERT(tv_instance_new(&tu_hooks, &vmi) == 0);
    tv_range_t r = {0x1000, 0x1000, 0};
    tv_driver_t d = {.name = "broken", .mem = &failing_ops, .ranges = &r,
                     .nranges = 1};
    TU_ASSERT(tv_instance_attach(vmi, &d) == 0);
    tv_fail(vmi, TINYVMI_EIO, "an old, unrelated I/O error");
    uint8_t b;
    TU_EQ_INT(vmi_read_8_pa(vmi, 0x1800, &b), VMI_FAILURE);
    TU_EQ_INT(tinyvmi_last_status(vmi), TINYVMI_EIO);
    TU_CONTAINS(tinyvmi_last_error(vmi), "broken: I/O error at physical 0x1800");
    tv_instance_free(vmi);
}
