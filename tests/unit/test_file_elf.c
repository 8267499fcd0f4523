/* File driver: ELF cores, headers and PT_LOAD segments. */
#include <glob.h>

#include "test_file.h"
#include "tu.h"

/* Two PT_LOADs out of order with a hole: [0x100000, +0x2000) first in the
 * file, then [0, +0x1000). */
static void two_loads(tf_buf_t *b, int cls)
{
    static uint8_t hi[0x2000], lo[0x1000];
    for (size_t i = 0; i < sizeof hi; i++)
        hi[i] = (uint8_t)(0xa0 ^ i);
    for (size_t i = 0; i < sizeof lo; i++)
        lo[i] = (uint8_t)(0x50 ^ (i >> 3));
    const tf_seg_t seg[] = {
        {TF_PT_LOAD, 0x100000, 0, hi, sizeof hi},
        {TF_PT_LOAD, 0, 0, lo, sizeof lo},
    };
    tf_elf(b, cls, TF_EM_X86_64, seg, 2);
}

#define EXPECT_FAIL(b, status, needle)                                    \
    do {                                                                  \
        char msg_[TV_ERRMSG_MAX];                                         \
        TU_EQ_INT(tf_try("core.elf", (b), msg_), (status));               \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

TU_TEST(elf_two_loads_hole)
{
    for (int cls = 1; cls <= 2; cls++) {
        tf_buf_t b = {0};
        two_loads(&b, cls);
        struct vmi_instance *vmi = tf_vmi();
        tv_driver_t d;
        TU_EQ_INT(tf_open(vmi, "core.elf", &b, &d), 0);
        TU_EQ_STR(d.name, "elf");
        TU_EQ_INT(d.arch, VMI_ARCH_X86_64);
        TU_ASSERT(d.vcpu == NULL); /* no notes */
        TU_EQ_U64(d.nranges, 2);
        TU_EQ_U64(d.ranges[0].start, 0);
        TU_EQ_U64(d.ranges[0].size, 0x1000);
        TU_EQ_U64(d.ranges[1].start, 0x100000);
        TU_EQ_U64(d.ranges[1].size, 0x2000);
        TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
        uint8_t buf[32];
        TU_EQ_INT(tv_read_pa(vmi, 0x100ff0, buf, sizeof buf, NULL), 0);
        TU_EQ_U64(buf[0], (uint8_t)(0xa0 ^ 0xff0));
        TU_EQ_U64(buf[31], (uint8_t)(0xa0 ^ 0x100f));
        TU_EQ_INT(tv_read_pa(vmi, 0x8, buf, 1, NULL), 0);
        TU_EQ_U64(buf[0], 0x51);
        size_t done = 0;
        TU_EQ_INT(tv_read_pa(vmi, 0xff8, buf, 16, &done), TINYVMI_EUNMAPPED);
        TU_EQ_U64(done, 8);
        TU_EQ_INT(tv_read_pa(vmi, 0x80000, buf, 1, NULL), TINYVMI_EUNMAPPED);
        tv_instance_free(vmi);
        tf_buf_free(&b);
    }
}

/* Neighbours in memory and in the file become one range. */
TU_TEST(elf_adjacent_loads_merge)
{
    static uint8_t data[0x3000];
    tf_buf_t b = {0};
    const tf_seg_t seg[] = {
        {TF_PT_LOAD, 0x1000, 0, data, 0x1000},
        {TF_PT_LOAD, 0x2000, 0, data + 0x1000, 0x2000},
    };
    tf_elf(&b, 2, TF_EM_X86_64, seg, 2);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "merge.elf", &b, &d), 0);
    TU_EQ_U64(d.nranges, 1);
    TU_EQ_U64(d.ranges[0].start, 0x1000);
    TU_EQ_U64(d.ranges[0].size, 0x3000);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

TU_TEST(elf_truncated_ident)
{
    tf_buf_t b = {0};
    tf_append(&b, "\x7f" "ELF\x02\x01\x01", 7);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "shorter than the 16-byte");
}

TU_TEST(elf_truncated_header)
{
    for (int cls = 1; cls <= 2; cls++) {
        tf_buf_t b = {0};
        two_loads(&b, cls);
        b.len = cls == 1 ? 40 : 60;
        EXPECT_FAIL(&b, TINYVMI_ETRUNC, cls == 1 ? "ELF32 header needs 52"
                                                 : "ELF64 header needs 64");
    }
}

TU_TEST(elf_bad_class)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    b.p[4] = 3;
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "bad class 3");
}

TU_TEST(elf_bad_endianness)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    b.p[5] = 2;
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "big-endian");
    two_loads(&b, 2);
    b.p[5] = 0;
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "bad data encoding 0");
}

TU_TEST(elf_bad_version)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    b.p[6] = 9;
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "bad version 9");
    two_loads(&b, 2);
    tf_put(&b, 20, 2, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "bad e_version 2");
}

TU_TEST(elf_not_core)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_put(&b, 16, 2, 2); /* ET_EXEC */
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "not ET_CORE");
}

TU_TEST(elf_bad_phentsize)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_put(&b, 54, 55, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "e_phentsize 55, ELF64 needs 56");
    two_loads(&b, 1);
    tf_put(&b, 42, 56, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "e_phentsize 56, ELF32 needs 32");
}

TU_TEST(elf_phnum_huge)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_put(&b, 56, 0xfffe, 2);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "65534 program headers at 0x40");
}

TU_TEST(elf_phnum_zero)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_put(&b, 56, 0, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "no program headers");
}

TU_TEST(elf_phoff_past_end)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_put(&b, 32, 0xffffffffffffff00ull, 8);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "extend past end of file");
    two_loads(&b, 1);
    tf_put(&b, 28, 0xfffffff0u, 4);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "extend past end of file");
}

/* PN_XNUM: the count lives in section header 0's sh_info. */
static void xnum_core(tf_buf_t *b, uint32_t sh_info, uint16_t shentsize)
{
    two_loads(b, 2);
    size_t sh = tf_append(b, NULL, 64);
    tf_put(b, sh + 44, sh_info, 4);
    tf_put(b, 40, sh, 8);     /* e_shoff */
    tf_put(b, 58, shentsize, 2);
    tf_put(b, 60, 1, 2);      /* e_shnum */
    tf_put(b, 56, 0xffff, 2); /* e_phnum = PN_XNUM */
}

TU_TEST(elf_pn_xnum)
{
    tf_buf_t b = {0};
    xnum_core(&b, 2, 64);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "xnum.elf", &b, &d), 0);
    TU_EQ_U64(d.nranges, 2);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
    xnum_core(&b, 2, 40);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "PN_XNUM");
    xnum_core(&b, 0x40000000, 64);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "1073741824 program headers");
}

TU_TEST(elf_load_past_end)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    size_t len = b.len;
    tf_phdr_set(&b, 2, 1, TF_P_FILESZ, 0x1001);
    tf_phdr_set(&b, 2, 1, TF_P_MEMSZ, 0x1001);
    char want[160];
    snprintf(want, sizeof want, "ELF: program header 1: segment [0x%zx, "
             "+0x1001) extends past end of file (size 0x%zx)", len - 0x1000,
             len);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, want);
    two_loads(&b, 1);
    tf_phdr_set(&b, 1, 0, TF_P_OFFSET, 0xfffff000u);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "program header 0: segment [0xfffff000");
}

TU_TEST(elf_overlapping_loads)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_phdr_set(&b, 2, 1, TF_P_PADDR, 0x101800);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "[0x100000, +0x2000) and [0x101800, "
                "+0x1000) overlap");
    two_loads(&b, 2);
    tf_phdr_set(&b, 2, 1, TF_P_PADDR, 0x100000); /* same start */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "overlap");
}

/* p_memsz > p_filesz: the tail is not in the file and reads fail there. */
TU_TEST(elf_memsz_tail_unmapped)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_phdr_set(&b, 2, 1, TF_P_MEMSZ, 0x4000);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "tail.elf", &b, &d), 0);
    TU_EQ_U64(d.ranges[0].size, 0x1000);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    uint8_t x;
    TU_EQ_INT(tv_read_pa(vmi, 0xfff, &x, 1, NULL), 0);
    TU_EQ_INT(tv_read_pa(vmi, 0x1000, &x, 1, NULL), TINYVMI_EUNMAPPED);
    TU_EQ_INT(tv_read_pa(vmi, 0x3fff, &x, 1, NULL), TINYVMI_EUNMAPPED);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

TU_TEST(elf_filesz_over_memsz)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_phdr_set(&b, 2, 0, TF_P_MEMSZ, 0x1000);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT,
                "program header 0: p_filesz 0x2000 exceeds p_memsz 0x1000");
}

TU_TEST(elf_paddr_wraps)
{
    tf_buf_t b = {0};
    two_loads(&b, 2);
    tf_phdr_set(&b, 2, 1, TF_P_PADDR, 0xfffffffffffff800ull);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "wraps past 2^64");
}

TU_TEST(elf_no_loads)
{
    tf_buf_t b = {0};
    uint8_t page[16] = {0};
    const tf_seg_t seg[] = {{TF_PT_LOAD, 0x1000, 0x1000, page, 0}};
    tf_elf(&b, 2, TF_EM_X86_64, seg, 1);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "no PT_LOAD segment has data");
}

/* Real data from the guest lab, when it has been built (optional). */
TU_TEST(elf_lab_dump)
{
    glob_t g;
    if (glob("build/lab/guests/*/dump.elf", 0, NULL, &g) != 0)
        return; /* no lab yet: nothing to check */
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct vmi_instance *vmi = tf_vmi();
        tv_driver_t d;
        int rc = tv_file_open(vmi, g.gl_pathv[i], &d);
        if (rc)
            fprintf(stderr, "%s: %s\n", g.gl_pathv[i], vmi->last_error);
        TU_EQ_INT(rc, 0);
        TU_EQ_STR(d.name, "elf");
        TU_ASSERT(d.nranges >= 1 && d.arch != VMI_ARCH_UNKNOWN);
        TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
        if (d.arch == VMI_ARCH_X86_64 || d.arch == VMI_ARCH_X86) {
            uint64_t cr3 = 0;
            TU_ASSERT(d.vcpu && d.vcpu->count(d.ctx) >= 1);
            TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, CR3, &cr3), 0);
            TU_ASSERT(cr3 != 0);
        }
        tv_instance_free(vmi);
    }
    globfree(&g);
}
