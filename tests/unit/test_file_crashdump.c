/*
 * File driver: Windows crash dumps.  A real Windows 10 x64 triage dump
 * (/work/shared/data, see its README), checked against bytes the test reads
 * itself at the documented DUMP_HEADER64/TRIAGE_DUMP64 offsets and against
 * the kernel's ISF; synthetic full and bitmap dumps read back page by page;
 * hostile variants.
 */
#include <stdio.h>

#include "driver/file/crashdump.h"
#include "test_file.h"
#include "tu.h"

#define EXPECT_FAIL(b, status, needle)                                    \
    do {                                                                  \
        char msg_[TV_ERRMSG_MAX];                                         \
        TU_EQ_INT(tf_try("crash.dmp", (b), msg_), (status));              \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

#define TRIAGE_DMP                                                        \
    "/work/shared/data/windows-10-19041-x64-triage/triage_x64.dmp"

/* The real dump, read by the test itself. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = n > 0 ? malloc((size_t)n) : NULL;
    if (p && fread(p, 1, (size_t)n, fp) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(fp);
    *len = p ? (size_t)n : 0;
    return p;
}

static uint64_t le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = size; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* From the shipped ISF (ntkrnlmp.pdb 5278AFF8...-1, 10.0.19041.804):
 * _EPROCESS.ImageFileName at 1448 (0x5a8); symbols KdDebuggerDataBlock
 * at 0xc00b20 and PsActiveProcessHead at 0xc1e200 from the kernel base. */
#define ISF_EPROCESS_IMAGEFILENAME 0x5a8
#define ISF_KDDEBUGGERDATABLOCK 0xc00b20
#define ISF_PSACTIVEPROCESSHEAD 0xc1e200

TU_TEST(crashdump_triage_real_header)
{
    size_t n = 0;
    uint8_t *raw = slurp(TRIAGE_DMP, &n);
    TU_ASSERT(raw && n > 0x2080);
    TU_ASSERT(memcmp(raw, "PAGEDU64", 8) == 0); /* README: PAGEDU64 */
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tv_file_open(vmi, TRIAGE_DMP, &d), 0);
    TU_EQ_STR(d.name, "windows-crashdump (triage)");
    TU_EQ_U64(d.nranges, 0); /* a triage dump has no physical memory */
    TU_EQ_INT(d.arch, VMI_ARCH_X86_64);
    const tv_crashdump_t *cd = tv_crashdump_of(&d);
    TU_ASSERT(cd && cd->is64 && cd->kind == TV_CD_TRIAGE);
    /* DUMP_HEADER64, read here by offset. */
    TU_EQ_U64(cd->minor, 19041); /* README: build 19041 */
    TU_EQ_U64(cd->minor, le(raw + 0x0c, 4));
    TU_EQ_U64(cd->dtb, le(raw + 0x10, 8));
    TU_EQ_U64(cd->ps_loaded_module_list, le(raw + 0x20, 8));
    TU_EQ_U64(cd->ps_active_process_head, le(raw + 0x28, 8));
    TU_EQ_U64(cd->machine, 0x8664);
    TU_EQ_U64(cd->nprocessors, le(raw + 0x34, 4));
    TU_EQ_U64(cd->bugcheck_code, le(raw + 0x38, 4));
    for (unsigned i = 0; i < 4; i++)
        TU_EQ_U64(cd->bugcheck_param[i], le(raw + 0x40 + 8 * i, 8));
    TU_EQ_U64(cd->kd_debugger_data_block, le(raw + 0x80, 8));
    TU_EQ_U64(cd->dump_type, 4);
    TU_EQ_U64(le(raw + 0xf98, 4), 4);
    /* The ISF's symbol offsets imply one kernel base for both addresses. */
    TU_EQ_U64(cd->kd_debugger_data_block - ISF_KDDEBUGGERDATABLOCK,
              cd->ps_active_process_head - ISF_PSACTIVEPROCESSHEAD);
    /* TRIAGE_DUMP64 at 0x2000. */
    const tv_cd_triage_t *t = &cd->triage;
    TU_EQ_U64(t->process.offset, le(raw + 0x2020, 4));
    TU_EQ_U64(t->thread.offset, le(raw + 0x2024, 4));
    TU_EQ_U64(t->driver_list.offset, le(raw + 0x2030, 4));
    TU_EQ_U64(t->driver_count, le(raw + 0x2034, 4));
    TU_EQ_U64(t->string_pool.offset, le(raw + 0x2038, 4));
    TU_EQ_U64(t->string_pool.size, le(raw + 0x203c, 4));
    TU_EQ_U64(t->kdbg.offset, le(raw + 0x2070, 4));
    TU_EQ_U64(t->kdbg.size, le(raw + 0x2074, 4));
    TU_EQ_U64(t->data_block_count, le(raw + 0x207c, 4));
    TU_EQ_U64(cd->nblocks, t->data_block_count + 1); /* + the KDBG copy */
    /* The current process copy: the ISF's ImageFileName offset. */
    TU_ASSERT(t->process.offset + ISF_EPROCESS_IMAGEFILENAME + 15 <= n);
    TU_EQ_STR((const char *)raw + t->process.offset +
                  ISF_EPROCESS_IMAGEFILENAME, "System");
    free(raw);
    d.close(d.ctx);
    tv_instance_free(vmi);
}

TU_TEST(crashdump_triage_real_reads)
{
    size_t n = 0;
    uint8_t *raw = slurp(TRIAGE_DMP, &n);
    TU_ASSERT(raw && n > 0x2080);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tv_file_open(vmi, TRIAGE_DMP, &d), 0);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0); /* no RAM ranges needed */
    const tv_crashdump_t *cd = tv_crashdump_of(&d);
    TU_ASSERT(cd);
    /* KDBG by its virtual address: DBGKD_DEBUG_DATA_HEADER64.OwnerTag at
     * 0x10, KernBase at 0x18 (the base the ISF implied above). */
    uint8_t kdbg[0x20];
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, cd->kd_debugger_data_block, kdbg,
                                   sizeof kdbg, NULL), 0);
    TU_ASSERT(memcmp(kdbg + 0x10, "KDBG", 4) == 0);
    TU_EQ_U64(le(kdbg + 0x18, 8),
              cd->kd_debugger_data_block - ISF_KDDEBUGGERDATABLOCK);
    /* The first TRIAGE_DATA_BLOCK, by the test's own reading. */
    uint64_t arr = le(raw + 0x2078, 4);
    uint64_t va = le(raw + arr, 8), off = le(raw + arr + 8, 4);
    uint64_t size = le(raw + arr + 12, 4);
    uint8_t *buf = malloc(size);
    TU_ASSERT(buf);
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, va, buf, size, NULL), 0);
    TU_ASSERT(memcmp(buf, raw + off, size) == 0);
    /* One byte past it: unless another block starts there, unmapped. */
    size_t done = 99;
    int rc = tv_crashdump_read_va(vmi, &d, va + size - 1, buf, 2, &done);
    TU_ASSERT(rc == 0 || (rc == TINYVMI_EUNMAPPED && done == 1));
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, 0x1000, buf, 1, &done),
              TINYVMI_EUNMAPPED);
    TU_EQ_U64(done, 0);
    TU_CONTAINS(vmi->last_error, "not in the triage dump");
    free(buf);
    /* Registers: the CONTEXT at 0x348 (Rip at 0xf8, Rsp at 0x98). */
    uint64_t v = 0;
    TU_EQ_INT(d.vcpu->count(d.ctx), 1);
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, RIP, &v), 0);
    TU_EQ_U64(v, le(raw + 0x348 + 0xf8, 8));
    TU_EQ_U64(v, cd->bugcheck_param[1]); /* 0x7e: the faulting address */
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, RSP, &v), 0);
    TU_EQ_U64(v, le(raw + 0x348 + 0x98, 8));
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, CR3, &v), 0);
    TU_EQ_U64(v, le(raw + 0x10, 8));
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, CR0, &v), TINYVMI_ENOTSUP);
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 1, RIP, &v), TINYVMI_ERANGE);
    free(raw);
    tv_instance_free(vmi); /* closes the driver */
}

/* ---- Synthetic dumps ---------------------------------------------------- */

#define PG 0x1000u

static void page_fill(uint8_t *p, unsigned tag)
{
    for (unsigned i = 0; i < PG; i++)
        p[i] = (uint8_t)(tag * 31 + i * 7);
}

/* A DUMP_HEADER64 of the given DumpType, filled with "PAGE" as Windows
 * fills absent fields; x64 CONTEXT with Rip. */
static void hdr64(tf_buf_t *b, uint32_t type)
{
    for (size_t i = 0; i < 0x2000; i += 4)
        tf_append(b, "PAGE", 4);
    memcpy(b->p, "PAGEDU64", 8);
    tf_put(b, 0x08, 0xf, 4);
    tf_put(b, 0x0c, 19041, 4);
    tf_put(b, 0x10, 0x1ad000, 8);
    tf_put(b, 0x30, 0x8664, 4);
    tf_put(b, 0x34, 2, 4);
    tf_put(b, 0x348 + 0x30, 0x10001f, 4);
    tf_put(b, 0x348 + 0xf8, 0xfffff80012345678, 8);
    tf_put(b, 0xf98, type, 4);
}

/* Full: runs (pfn 0, 1 page) and (pfn 0x10, 2 pages); pages tagged 0..2. */
static void full64(tf_buf_t *b)
{
    hdr64(b, 1);
    tf_put(b, 0x88, 2, 4);
    tf_put(b, 0x8c, 0, 4);
    tf_put(b, 0x90, 3, 8);
    tf_put(b, 0x98, 0, 8);
    tf_put(b, 0xa0, 1, 8);
    tf_put(b, 0xa8, 0x10, 8);
    tf_put(b, 0xb0, 2, 8);
    uint8_t page[PG];
    for (unsigned i = 0; i < 3; i++) {
        page_fill(page, i);
        tf_append(b, page, PG);
    }
}

/* Reads page pa and compares it with the page tagged tag. */
static int page_is(struct vmi_instance *vmi, uint64_t pa, unsigned tag)
{
    uint8_t got[PG], want[PG];
    page_fill(want, tag);
    int rc = tv_read_pa(vmi, pa, got, PG, NULL);
    return rc ? rc : memcmp(got, want, PG) != 0;
}

TU_TEST(crashdump_full64_pages)
{
    tf_buf_t b = {0};
    full64(&b);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "full.dmp", &b, &d), 0);
    TU_EQ_STR(d.name, "windows-crashdump (full)");
    TU_EQ_U64(d.nranges, 2);
    TU_EQ_U64(d.ranges[1].start, 0x10000);
    TU_EQ_U64(d.ranges[1].offset, 0x3000);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    TU_EQ_INT(page_is(vmi, 0, 0), 0);
    TU_EQ_INT(page_is(vmi, 0x10000, 1), 0);
    TU_EQ_INT(page_is(vmi, 0x11000, 2), 0);
    uint8_t x;
    TU_EQ_INT(tv_read_pa(vmi, 0x1000, &x, 1, NULL), TINYVMI_EUNMAPPED);
    uint64_t v = 0;
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, RIP, &v), 0);
    TU_EQ_U64(v, 0xfffff80012345678);
    /* not a triage dump: no reads by virtual address */
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, 0, &x, 1, NULL), TINYVMI_ENOTSUP);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

TU_TEST(crashdump_full32_pages)
{
    tf_buf_t b = {0};
    for (size_t i = 0; i < 0x1000; i += 4)
        tf_append(&b, "PAGE", 4);
    memcpy(b.p, "PAGEDUMP", 8);
    tf_put(&b, 0x10, 0x39000, 4);
    tf_put(&b, 0x20, 0x14c, 4);
    tf_put(&b, 0x5c, 1, 1);          /* PaeEnabled */
    tf_put(&b, 0x64, 1, 4);          /* one run */
    tf_put(&b, 0x68, 2, 4);
    tf_put(&b, 0x6c, 0x100, 4);      /* pfn 0x100, 2 pages */
    tf_put(&b, 0x70, 2, 4);
    tf_put(&b, 0x320, 0x1001f, 4);   /* CONTEXT_i386 | ... */
    tf_put(&b, 0x320 + 0xb8, 0x80401234, 4); /* Eip */
    tf_put(&b, 0xf88, 1, 4);
    uint8_t page[PG];
    for (unsigned i = 0; i < 2; i++) {
        page_fill(page, 5 + i);
        tf_append(&b, page, PG);
    }
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "full32.dmp", &b, &d), 0);
    TU_EQ_INT(d.arch, VMI_ARCH_X86);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    TU_EQ_INT(page_is(vmi, 0x100000, 5), 0);
    TU_EQ_INT(page_is(vmi, 0x101000, 6), 0);
    const tv_crashdump_t *cd = tv_crashdump_of(&d);
    TU_ASSERT(cd && !cd->is64 && cd->pae);
    uint64_t v = 0;
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, EIP, &v), 0);
    TU_EQ_U64(v, 0x80401234);
    TU_EQ_INT(d.vcpu->get_reg(d.ctx, 0, CR3, &v), 0);
    TU_EQ_U64(v, 0x39000);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* Bitmap: pages 1, 2 and 5 of 16 present, data from 0x3000. */
static void bitmap64(tf_buf_t *b, const char *sig)
{
    hdr64(b, 5);
    tf_append(b, NULL, 0x1000);
    memcpy(b->p + 0x2000, sig, 4);
    memcpy(b->p + 0x2004, "DUMP", 4);
    tf_put(b, 0x2020, 0x3000, 8);
    tf_put(b, 0x2028, 3, 8);
    tf_put(b, 0x2030, 16, 8);
    tf_put(b, 0x2038, 0x26, 1);
    uint8_t page[PG];
    for (unsigned i = 0; i < 3; i++) {
        page_fill(page, 10 + i);
        tf_append(b, page, PG);
    }
}

TU_TEST(crashdump_bitmap_pages)
{
    static const char *const sig[] = {"SDMP", "FDMP"};
    static const char *const name[] = {"windows-crashdump (bitmap, kernel)",
                                       "windows-crashdump (bitmap, complete)"};
    for (unsigned k = 0; k < 2; k++) {
        tf_buf_t b = {0};
        bitmap64(&b, sig[k]);
        struct vmi_instance *vmi = tf_vmi();
        tv_driver_t d;
        TU_EQ_INT(tf_open(vmi, "bitmap.dmp", &b, &d), 0);
        TU_EQ_STR(d.name, name[k]);
        TU_EQ_U64(d.nranges, 2);
        TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
        TU_EQ_INT(page_is(vmi, 0x1000, 10), 0);
        TU_EQ_INT(page_is(vmi, 0x2000, 11), 0);
        TU_EQ_INT(page_is(vmi, 0x5000, 12), 0);
        uint8_t x;
        TU_EQ_INT(tv_read_pa(vmi, 0x3000, &x, 1, NULL), TINYVMI_EUNMAPPED);
        TU_EQ_INT(tv_read_pa(vmi, 0, &x, 1, NULL), TINYVMI_EUNMAPPED);
        TU_EQ_U64(tv_crashdump_of(&d)->present_pages, 3);
        tv_instance_free(vmi);
        tf_buf_free(&b);
    }
}

/* Triage: two adjacent blocks at 0xffff800000001000 (0x10 and 0x20 bytes),
 * one at 0xffff800000002000, a KDBG copy; blocks deliberately unsorted. */
#define TVA 0xffff800000001000ull
static void triage64(tf_buf_t *b)
{
    hdr64(b, 4);
    tf_put(b, 0x80, 0xfffff80000400000, 8); /* KdDebuggerDataBlock */
    tf_append(b, NULL, 0x1000);
    for (size_t i = 0x2000; i < 0x2080; i += 4)
        tf_put(b, i, 0, 4);
    tf_put(b, 0x2020, 0x2100, 4); /* ProcessOffset */
    tf_put(b, 0x2070, 0x2200, 4); /* DebuggerDataOffset */
    tf_put(b, 0x2074, 0x20, 4);
    tf_put(b, 0x2078, 0x2300, 4); /* DataBlocksOffset */
    tf_put(b, 0x207c, 3, 4);
    tf_put(b, 0x2300, TVA + 0x10, 8);
    tf_put(b, 0x2308, 0x2410, 4);
    tf_put(b, 0x230c, 0x20, 4);
    tf_put(b, 0x2310, TVA, 8);
    tf_put(b, 0x2318, 0x2400, 4);
    tf_put(b, 0x231c, 0x10, 4);
    tf_put(b, 0x2320, TVA + 0x1000, 8);
    tf_put(b, 0x2328, 0x2500, 4);
    tf_put(b, 0x232c, 8, 4);
    memcpy(b->p + 0x2200 + 0x10, "KDBG", 4);
    for (unsigned i = 0; i < 0x30; i++)
        tf_put(b, 0x2400 + i, i, 1);
    tf_put(b, 0x2500, 0x1122334455667788, 8);
}

TU_TEST(crashdump_triage_synthetic)
{
    tf_buf_t b = {0};
    triage64(&b);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "triage.dmp", &b, &d), 0);
    TU_EQ_U64(d.nranges, 0);
    uint8_t buf[0x30];
    size_t done = 0;
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, TVA + 4, buf, 0x2c, &done), 0);
    TU_EQ_U64(done, 0x2c);
    for (unsigned i = 0; i < 0x2c; i++)
        TU_EQ_U64(buf[i], i + 4);
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, TVA + 0x28, buf, 0x10, &done),
              TINYVMI_EUNMAPPED);
    TU_EQ_U64(done, 8);
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, TVA + 0x1000, buf, 8, NULL), 0);
    TU_EQ_U64(le(buf, 8), 0x1122334455667788);
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, TVA - 1, buf, 1, NULL),
              TINYVMI_EUNMAPPED);
    TU_EQ_INT(tv_crashdump_read_va(vmi, &d, 0xfffff80000400010, buf, 4,
                                   NULL), 0);
    TU_ASSERT(memcmp(buf, "KDBG", 4) == 0);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* ---- Hostile dumps ------------------------------------------------------ */

TU_TEST(crashdump_bad_header)
{
    tf_buf_t b = {0};
    full64(&b);
    b.len = 0x1fff;
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "PAGEDU64 header needs 0x2000 bytes");
    tf_append(&b, "PAGEDUMP", 8);
    tf_append(&b, NULL, 0x100);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "PAGEDUMP header needs 0x1000 bytes");
    hdr64(&b, 3);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "DumpType 3");
    hdr64(&b, 1); /* PhysicalMemoryBlock left as "PAGE" */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "without a PhysicalMemoryBlock");
}

TU_TEST(crashdump_bad_runs)
{
    tf_buf_t b = {0};
    full64(&b);
    tf_put(&b, 0x88, 0xffffff, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "16777215 runs, at most 42 fit");
    full64(&b);
    tf_put(&b, 0xb0, 3, 8); /* one page more than the file holds */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "run 1 (page 0x10, 0x3 pages) needs");
    full64(&b);
    tf_put(&b, 0xb0, 0xffffffffffffff, 8);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "past the top of the 64-bit");
    full64(&b);
    tf_put(&b, 0xa8, 0, 8); /* both runs at page 0 */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "overlap");
}

TU_TEST(crashdump_bad_bitmap)
{
    tf_buf_t b = {0};
    bitmap64(&b, "SDMP");
    tf_put(&b, 0x2030, 0xffffffffffffffff, 8);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "a bitmap of 0xffffffffffffffff pages");
    bitmap64(&b, "SDMP");
    tf_put(&b, 0x2038, 0x27, 1); /* one page more than the file holds */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "bitmap pages [0x5, +0x1)");
    bitmap64(&b, "SDMP");
    tf_put(&b, 0x2020, 0x2038, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "lies inside the header or the bitmap");
    bitmap64(&b, "XDMP");
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "no bitmap header");
    bitmap64(&b, "SDMP");
    b.len = 0x2010;
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "bitmap header at 0x2000");
}

TU_TEST(crashdump_bad_triage)
{
    tf_buf_t b = {0};
    triage64(&b);
    tf_put(&b, 0x2020, 0x7fffffff, 4);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "triage process copy at file offset "
                "0x7fffffff");
    triage64(&b);
    tf_put(&b, 0x207c, 0xffffffff, 4);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "triage data-block array");
    triage64(&b);
    tf_put(&b, 0x2328, 0xfffffff0, 4);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "triage data block (va "
                "0xffff800000002000)");
    triage64(&b);
    tf_put(&b, 0x2300, TVA + 0x8, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "overlap");
    triage64(&b);
    tf_put(&b, 0x2320, 0xfffffffffffffffc, 8);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "wraps past 2^64");
    triage64(&b);
    tf_put(&b, 0x80, TVA + 0x8, 8); /* KDBG inside a saved block */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "KDBG copy or data page overlaps");
    triage64(&b);
    b.len = 0x2040;
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "triage header at 0x2000");
}
