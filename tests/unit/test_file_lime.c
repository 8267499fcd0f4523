/* File driver: LiME dumps. */
#include "test_file.h"
#include "tu.h"

#define EXPECT_FAIL(b, status, needle)                                    \
    do {                                                                  \
        char msg_[TV_ERRMSG_MAX];                                         \
        TU_EQ_INT(tf_try("dump.lime", (b), msg_), (status));              \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

static uint8_t lo[0x1000], hi[0x3000];

/* [0, 0xfff] and [0x100000, 0x102fff]. */
static void two_ranges(tf_buf_t *b)
{
    for (size_t i = 0; i < sizeof lo; i++)
        lo[i] = (uint8_t)(i * 3);
    for (size_t i = 0; i < sizeof hi; i++)
        hi[i] = (uint8_t)(i * 5 + 1);
    tf_lime(b, TF_LIME_MAGIC, 1, 0, 0xfff, lo, sizeof lo);
    tf_lime(b, TF_LIME_MAGIC, 1, 0x100000, 0x102fff, hi, sizeof hi);
}

TU_TEST(lime_two_ranges_hole)
{
    tf_buf_t b = {0};
    two_ranges(&b);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "dump.lime", &b, &d), 0);
    TU_EQ_STR(d.name, "lime");
    TU_ASSERT(d.vcpu == NULL);
    TU_EQ_U64(d.nranges, 2);
    TU_EQ_U64(d.ranges[0].offset, 32);
    TU_EQ_U64(d.ranges[1].start, 0x100000);
    TU_EQ_U64(d.ranges[1].size, 0x3000);
    TU_EQ_U64(d.ranges[1].offset, 32 + 0x1000 + 32);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    uint8_t buf[8];
    TU_EQ_INT(tv_read_pa(vmi, 0x101000, buf, sizeof buf, NULL), 0);
    TU_EQ_U64(buf[0], (uint8_t)(0x1000 * 5 + 1));
    TU_EQ_INT(tv_read_pa(vmi, 0xffc, buf, 4, NULL), 0);
    TU_EQ_U64(buf[3], (uint8_t)(0xfff * 3));
    size_t done = 0;
    TU_EQ_INT(tv_read_pa(vmi, 0xffc, buf, 8, &done), TINYVMI_EUNMAPPED);
    TU_EQ_U64(done, 4);
    TU_EQ_INT(tv_read_pa(vmi, 0x103000, buf, 1, NULL), TINYVMI_EUNMAPPED);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

TU_TEST(lime_truncated_header)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0, 0xfff, NULL, 0);
    b.len = 20;
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "header 0 at file offset 0x0 is "
                "truncated (0x14 of 32 bytes)");
}

/* A few bytes after the last range. */
TU_TEST(lime_trailing_garbage)
{
    tf_buf_t b = {0};
    two_ranges(&b);
    tf_append(&b, "\0\0\0\0\0", 5);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "header 2 at file offset 0x4040 is "
                "truncated");
    two_ranges(&b);
    tf_append(&b, NULL, 64);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "header 2 at file offset 0x4040: bad "
                "magic 0x00000000");
}

TU_TEST(lime_bad_magic)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0, 0xfff, lo, sizeof lo);
    tf_lime(&b, 0x454d694c, 1, 0x2000, 0x2fff, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "header 1 at file offset 0x1020: bad "
                "magic 0x454d694c");
}

TU_TEST(lime_bad_version)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 2, 0, 0xfff, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "header 0 at file offset 0x0: version "
                "2");
}

TU_TEST(lime_end_below_start)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0x2000, 0x1fff, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "end 0x1fff is below start 0x2000");
}

TU_TEST(lime_length_past_end)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0, 0x1000, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "range [0x0, 0x1000] needs 0x1001 "
                "bytes, the file has 0x1000");
    tf_lime(&b, TF_LIME_MAGIC, 1, 0, 0xfffffffffffffffeull, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "needs 0xffffffffffffffff bytes");
}

TU_TEST(lime_top_of_address_space)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0xfffffffffffff000ull,
            0xffffffffffffffffull, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "top of the 64-bit address space");
    tf_lime(&b, TF_LIME_MAGIC, 1, 0, 0xffffffffffffffffull, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "top of the 64-bit address space");
}

TU_TEST(lime_overlapping_ranges)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0x1000, 0x1fff, lo, sizeof lo);
    tf_lime(&b, TF_LIME_MAGIC, 1, 0x1800, 0x27ff, lo, sizeof lo);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "LiME: memory ranges [0x1000, +0x1000) "
                "and [0x1800, +0x1000) overlap");
}

/* Ranges out of order are sorted; adjacent ones merge only when the file
 * keeps them together, which LiME's headers never do. */
TU_TEST(lime_unsorted_adjacent)
{
    tf_buf_t b = {0};
    tf_lime(&b, TF_LIME_MAGIC, 1, 0x1000, 0x1fff, lo, sizeof lo);
    tf_lime(&b, TF_LIME_MAGIC, 1, 0x0, 0xfff, lo, sizeof lo);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "unsorted.lime", &b, &d), 0);
    TU_EQ_U64(d.nranges, 2);
    TU_EQ_U64(d.ranges[0].start, 0);
    TU_EQ_U64(d.ranges[0].offset, 0x1000 + 64);
    TU_EQ_U64(d.ranges[1].start, 0x1000);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}
