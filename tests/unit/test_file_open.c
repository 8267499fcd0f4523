/* File driver: opening, detection, raw images. */
#include <sys/stat.h>
#include <unistd.h>

#include "test_file.h"
#include "tu.h"

/* Opens path, expecting failure with status and a message containing
 * needle; the driver must stay empty. */
#define EXPECT_OPEN_FAILS(path, status, needle)                           \
    do {                                                                  \
        struct vmi_instance *vmi_ = tf_vmi();                             \
        tv_driver_t d_;                                                   \
        int rc_ = tv_file_open(vmi_, (path), &d_);                        \
        char msg_[TV_ERRMSG_MAX];                                         \
        snprintf(msg_, sizeof msg_, "%s", vmi_->last_error);              \
        tv_instance_free(vmi_);                                           \
        TU_EQ_INT(rc_, (status));                                         \
        TU_ASSERT(d_.ctx == NULL && d_.close == NULL);                    \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

TU_TEST(file_nonexistent)
{
    char path[512];
    snprintf(path, sizeof path, "%s/no-such-dump", tu_tmp_dir());
    EXPECT_OPEN_FAILS(path, TINYVMI_ENOENT, "No such file");
}

TU_TEST(file_empty)
{
    const char *path = tf_write("empty.bin", "", 0);
    EXPECT_OPEN_FAILS(path, TINYVMI_EFORMAT, "is empty");
}

TU_TEST(file_directory)
{
    EXPECT_OPEN_FAILS(tu_tmp_dir(), TINYVMI_EINVAL, "is a directory");
}

/* A FIFO must be refused at once, not block waiting for a writer. */
TU_TEST(file_fifo_no_hang)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fifo", tu_tmp_dir());
    TU_ASSERT(mkfifo(path, 0600) == 0);
    EXPECT_OPEN_FAILS(path, TINYVMI_EINVAL, "not a regular file");
}

TU_TEST(file_null_args)
{
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    int rc1 = tv_file_open(vmi, NULL, &d);
    int rc2 = tv_file_open_mem(vmi, NULL, 0, &d);
    tv_instance_free(vmi);
    TU_EQ_INT(rc1, TINYVMI_EINVAL);
    TU_EQ_INT(rc2, TINYVMI_EFORMAT);
}

TU_TEST(file_raw_detect)
{
    tf_buf_t b = {0};
    for (unsigned i = 0; i < 3 * 4096; i++)
        tf_put(&b, i, (uint8_t)(i * 7 + 1), 1);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    int rc = tf_open(vmi, "raw.bin", &b, &d);
    TU_EQ_INT(rc, 0);
    TU_EQ_STR(d.name, "raw");
    TU_EQ_U64(d.nranges, 1);
    TU_EQ_U64(d.ranges[0].start, 0);
    TU_EQ_U64(d.ranges[0].size, 3 * 4096);
    TU_ASSERT(d.vcpu == NULL && d.mem->write == NULL);
    TU_EQ_INT(d.arch, VMI_ARCH_UNKNOWN);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    uint8_t buf[16];
    TU_EQ_INT(tv_read_pa(vmi, 0x1ff8, buf, sizeof buf, NULL), 0);
    TU_ASSERT(memcmp(buf, b.p + 0x1ff8, sizeof buf) == 0);
    size_t done = 0;
    TU_EQ_INT(tv_read_pa(vmi, 3 * 4096 - 4, buf, 8, &done),
              TINYVMI_EUNMAPPED);
    TU_EQ_U64(done, 4);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* Too short for any magic, or a magic cut short: raw. */
TU_TEST(file_raw_short_magic)
{
    tf_buf_t b = {0};
    tf_append(&b, "\x7f" "EL", 3);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "short.bin", &b, &d), 0);
    TU_EQ_STR(d.name, "raw");
    TU_EQ_U64(d.ranges[0].size, 3);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* The name says ELF, the content is raw: content wins. */
TU_TEST(file_detect_ignores_name)
{
    tf_buf_t b = {0};
    tf_append(&b, "not an elf at all", 17);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "dump.elf", &b, &d), 0);
    TU_EQ_STR(d.name, "raw");
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

static const struct {
    const char *magic;
    const char *needle;
} unsupported[] = {
    {"KDUMP   ", "kdump-compressed dumps are not supported yet"},
    {"DISKDUMP", "diskdump"},
    {"makedumpfile", "makedumpfile"},
};

TU_TEST(file_unsupported_formats)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(unsupported); i++) {
        tf_buf_t b = {0};
        tf_append(&b, unsupported[i].magic, strlen(unsupported[i].magic));
        tf_append(&b, NULL, 4096);
        struct vmi_instance *vmi = tf_vmi();
        tv_driver_t d;
        int rc = tf_open(vmi, "unsupported.bin", &b, &d);
        char msg[TV_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", vmi->last_error);
        tv_instance_free(vmi);
        tf_buf_free(&b);
        TU_EQ_INT(rc, TINYVMI_ENOTSUP);
        TU_CONTAINS(msg, unsupported[i].needle);
    }
}
