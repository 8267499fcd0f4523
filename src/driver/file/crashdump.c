/*
 * Windows kernel crash dumps: a DUMP_HEADER32 ("PAGEDUMP", 0x1000 bytes) or
 * DUMP_HEADER64 ("PAGEDU64", 0x2000 bytes), then, by DumpType:
 *   1 full:     pages of the header's PhysicalMemoryBlock runs, in order;
 *   5, 6 (and the newer 2, 8, 9, 10): a bitmap header at 0x2000 ("SDMP"
 *               kernel, "FDMP" complete; "DUMP"), u64 FirstPage (file
 *               offset of the first page) at 0x20, u64 TotalPresentPages
 *               at 0x28, u64 Pages (bits) at 0x30, the bitmap at 0x38; the
 *               present pages follow in order from FirstPage;
 *   4 triage:   a TRIAGE_DUMP64 at 0x2000 whose file offsets locate copies
 *               of the KDBG, the current process and thread, the driver
 *               list and TRIAGE_DATA_BLOCKs {u64 va, u32 offset, u32 size}
 *               of kernel memory; no physical memory at all.
 * Every count is bounded by the bytes that must hold it, every offset and
 * length is checked against the file, and no sum can wrap.  Bitmap and
 * triage dumps are known for 64-bit headers only.
 */
#include <stdlib.h>
#include <string.h>

#include "driver/file/crashdump.h"
#include "driver/file/file_int.h"

#define CD_PAGE 0x1000u
#define CD_MAX_PFN (UINT64_MAX >> 12) /* page numbers whose address fits */

#define MACHINE_I386 0x014cu
#define MACHINE_ARMNT 0x01c4u
#define MACHINE_AMD64 0x8664u
#define MACHINE_ARM64 0xaa64u

#define CONTEXT_I386 0x00010000u
#define CONTEXT_AMD64 0x00100000u

/* Where the header fields sit, per class. */
typedef struct cd_layout {
    const char *name;
    uint32_t hdr_size;
    uint8_t ptr; /* pointer size: 4 or 8 */
    uint16_t dtb, pfn, loaded, active, machine, ncpu, bugcode, bugparam;
    uint16_t kdbg, pmd, pmd_runs, ctx, ctx_size, ctx_flags, dump_type;
    uint16_t time;
} cd_layout_t;

static const cd_layout_t layout32 = {
    "PAGEDUMP", 0x1000, 4, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c,
    0x60, 0x64, 8, 0x320, 1200, 0x00, 0xf88, 0xfc0};
static const cd_layout_t layout64 = {
    "PAGEDU64", 0x2000, 8, 0x10, 0x18, 0x20, 0x28, 0x30, 0x34, 0x38, 0x40,
    0x80, 0x88, 16, 0x348, 3000, 0x30, 0xf98, 0xfa8};

#define PMD_SIZE 700u /* PhysicalMemoryBlockBuffer */
#define PAE_ENABLED_32 0x5c

static uint64_t cd_ptr(const uint8_t *p, const cd_layout_t *l)
{
    return l->ptr == 8 ? tv_le64(p) : tv_le32(p);
}

/* ---- The header --------------------------------------------------------- */

static vmi_arch_t cd_arch(uint32_t machine)
{
    switch (machine) {
    case MACHINE_I386: return VMI_ARCH_X86;
    case MACHINE_AMD64: return VMI_ARCH_X86_64;
    case MACHINE_ARM64: return VMI_ARCH_ARM64;
    case MACHINE_ARMNT: return VMI_ARCH_ARM32;
    default: return VMI_ARCH_UNKNOWN;
    }
}

static void cd_header(const uint8_t *h, const cd_layout_t *l,
                      tv_crashdump_t *cd)
{
    cd->is64 = l->ptr == 8;
    cd->major = tv_le32(h + 8);
    cd->minor = tv_le32(h + 12);
    cd->dtb = cd_ptr(h + l->dtb, l);
    cd->pfn_database = cd_ptr(h + l->pfn, l);
    cd->ps_loaded_module_list = cd_ptr(h + l->loaded, l);
    cd->ps_active_process_head = cd_ptr(h + l->active, l);
    cd->machine = tv_le32(h + l->machine);
    cd->arch = cd_arch(cd->machine);
    cd->nprocessors = tv_le32(h + l->ncpu);
    cd->bugcheck_code = tv_le32(h + l->bugcode);
    for (unsigned i = 0; i < 4; i++)
        cd->bugcheck_param[i] = cd_ptr(h + l->bugparam + i * l->ptr, l);
    cd->kd_debugger_data_block = cd_ptr(h + l->kdbg, l);
    cd->pae = !cd->is64 && h[PAE_ENABLED_32] != 0;
    cd->dump_type = tv_le32(h + l->dump_type);
    cd->system_time = tv_le64(h + l->time);
    cd->context = (tv_cd_span_t){l->ctx, l->ctx_size};
    uint32_t flags = tv_le32(h + l->ctx + l->ctx_flags);
    cd->have_context = cd->machine == MACHINE_AMD64
                           ? cd->is64 && (flags & CONTEXT_AMD64)
                       : cd->machine == MACHINE_I386
                           ? !cd->is64 && (flags & CONTEXT_I386)
                           : false;
}

/* ---- Full dumps: the PhysicalMemoryBlock runs --------------------------- */

static int cd_full(tv_file_t *f, const cd_layout_t *l)
{
    const uint8_t *pmd = f->data + l->pmd;
    uint32_t nruns = tv_le32(pmd);
    uint64_t npages = cd_ptr(pmd + l->ptr, l);
    uint32_t max = (PMD_SIZE - l->pmd_runs) / (2u * l->ptr);
    if (nruns == 0x45474150u) /* "PAGE": the filler of absent fields */
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: full dump "
                       "without a PhysicalMemoryBlock (the field holds the "
                       "\"PAGE\" filler)");
    if (nruns > max)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: "
                       "PhysicalMemoryBlock has %u runs, at most %u fit in "
                       "the header", nruns, max);
    uint64_t off = l->hdr_size, total = 0;
    for (uint32_t i = 0; i < nruns; i++) {
        const uint8_t *r = pmd + l->pmd_runs + i * 2u * l->ptr;
        uint64_t base = cd_ptr(r, l), count = cd_ptr(r + l->ptr, l);
        if (count == 0)
            continue;
        if (base > CD_MAX_PFN || count > CD_MAX_PFN - base)
            return tv_fail(f->vmi, TINYVMI_ERANGE, "crash dump: run %u "
                           "(page 0x%llx, 0x%llx pages) goes past the top "
                           "of the 64-bit address space", i,
                           (unsigned long long)base,
                           (unsigned long long)count);
        uint64_t size = count * CD_PAGE;
        if (!file_span_ok(f, off, size))
            return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: run %u "
                           "(page 0x%llx, 0x%llx pages) needs file bytes "
                           "[0x%llx, +0x%llx), the file has 0x%zx", i,
                           (unsigned long long)base,
                           (unsigned long long)count,
                           (unsigned long long)off,
                           (unsigned long long)size, f->size);
        int rc = file_range_add(f, "crash dump", base * CD_PAGE, size, off);
        if (rc)
            return rc;
        off += size; /* checked: stays <= size of the file */
        total += count;
    }
    if (total != npages)
        tv_log(f->vmi, 1, "crash dump: the runs hold 0x%llx pages, the "
               "header says 0x%llx", (unsigned long long)total,
               (unsigned long long)npages);
    return file_ranges_finish(f, "crash dump");
}

/* ---- Bitmap dumps ------------------------------------------------------- */

#define BMP_AT 0x2000u
#define BMP_HDR 0x38u

/* Adds the run of n present pages from pfn, whose data is at *off. */
static int cd_bitmap_run(tv_file_t *f, uint64_t pfn, uint64_t n,
                         uint64_t *off)
{
    uint64_t size = n * CD_PAGE; /* n <= bits <= 8 * file size: no wrap */
    if (!file_span_ok(f, *off, size))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: bitmap pages "
                       "[0x%llx, +0x%llx) need file bytes [0x%llx, "
                       "+0x%llx), the file has 0x%zx",
                       (unsigned long long)pfn, (unsigned long long)n,
                       (unsigned long long)*off, (unsigned long long)size,
                       f->size);
    int rc = file_range_add(f, "crash dump", pfn * CD_PAGE, size, *off);
    *off += size;
    return rc;
}

/* Walks the bitmap: each run of set bits is a range. */
static int cd_bitmap_walk(tv_file_t *f, const uint8_t *bits, uint64_t nbits,
                          uint64_t off, uint64_t *present)
{
    uint64_t run = 0, start = 0;
    int rc = TINYVMI_OK;
    for (uint64_t i = 0; !rc && i <= nbits; i++) {
        if (i < nbits && (i & 7) == 0 && bits[i >> 3] == 0 && !run &&
            nbits - i >= 8) {
            i += 7; /* a byte of absent pages */
            continue;
        }
        bool set = i < nbits && (bits[i >> 3] >> (i & 7)) & 1;
        if (set && run++ == 0)
            start = i;
        if (!set && run) {
            rc = cd_bitmap_run(f, start, run, &off);
            *present += run;
            run = 0;
        }
    }
    return rc;
}

static int cd_bitmap(tv_file_t *f, tv_crashdump_t *cd)
{
    if (!file_span_ok(f, BMP_AT, BMP_HDR))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: the bitmap "
                       "header at 0x%x is past the end of the file (0x%zx)",
                       BMP_AT, f->size);
    const uint8_t *b = f->data + BMP_AT;
    bool kernel = memcmp(b, "SDMP", 4) == 0;
    if ((!kernel && memcmp(b, "FDMP", 4) != 0) || memcmp(b + 4, "DUMP", 4))
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: DumpType %u "
                       "but no bitmap header (\"SDMP\" or \"FDMP\", then "
                       "\"DUMP\") at 0x%x", cd->dump_type, BMP_AT);
    cd->kind = kernel ? TV_CD_BITMAP_KERNEL : TV_CD_BITMAP_COMPLETE;
    cd->kind_name = kernel ? "bitmap (kernel)" : "bitmap (complete)";
    cd->first_page = tv_le64(b + 0x20);
    cd->bitmap_pages = tv_le64(b + 0x30);
    uint64_t total = tv_le64(b + 0x28);
    uint64_t nbytes = cd->bitmap_pages / 8 + (cd->bitmap_pages % 8 != 0);
    if (!file_span_ok(f, BMP_AT + BMP_HDR, nbytes))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: a bitmap of "
                       "0x%llx pages needs 0x%llx bytes at 0x%x, the file "
                       "has 0x%zx", (unsigned long long)cd->bitmap_pages,
                       (unsigned long long)nbytes, BMP_AT + BMP_HDR,
                       f->size);
    if (cd->first_page < BMP_AT + BMP_HDR + nbytes)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: the first page "
                       "(file offset 0x%llx) lies inside the header or "
                       "the bitmap (which ends at 0x%llx)",
                       (unsigned long long)cd->first_page,
                       (unsigned long long)(BMP_AT + BMP_HDR + nbytes));
    int rc = cd_bitmap_walk(f, b + BMP_HDR, cd->bitmap_pages, cd->first_page,
                            &cd->present_pages);
    if (rc)
        return rc;
    if (cd->present_pages != total)
        tv_log(f->vmi, 1, "crash dump: the bitmap has 0x%llx pages, the "
               "header says 0x%llx", (unsigned long long)cd->present_pages,
               (unsigned long long)total);
    return file_ranges_finish(f, "crash dump");
}

/* ---- Triage dumps ------------------------------------------------------- */

#define TRIAGE_AT 0x2000u
#define TRIAGE_HDR 0x80u
#define TRIAGE_BLOCK 16u
#define DRIVER_ENTRY64 0x90u /* DUMP_DRIVER_ENTRY64 */

/* A piece at a u32 file offset in the triage header: offset 0 is absent;
 * else [offset, offset + size) must lie in the file. */
static int cd_piece(tv_file_t *f, const char *what, uint64_t off,
                    uint64_t size, tv_cd_span_t *out)
{
    if (off == 0)
        return TINYVMI_OK;
    if (!file_span_ok(f, off, size ? size : 1))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: triage %s at "
                       "file offset 0x%llx (0x%llx bytes) is past the end "
                       "of the file (0x%zx)", what, (unsigned long long)off,
                       (unsigned long long)size, f->size);
    *out = (tv_cd_span_t){off, size};
    return TINYVMI_OK;
}

static int cd_triage_pieces(tv_file_t *f, tv_cd_triage_t *t)
{
    const uint8_t *h = f->data + TRIAGE_AT;
    uint32_t ndrv = tv_le32(h + 0x34);
    struct {
        const char *what;
        uint64_t off, size;
        tv_cd_span_t *out;
    } p[] = {
        {"context", tv_le32(h + 0x0c), 0, &t->context},
        {"exception record", tv_le32(h + 0x10), 0, &t->exception},
        {"memory-manager data", tv_le32(h + 0x14), 0, &t->mm},
        {"unloaded-driver list", tv_le32(h + 0x18), 0, &t->unloaded_drivers},
        {"PRCB copy", tv_le32(h + 0x1c), 0, &t->prcb},
        {"process copy", tv_le32(h + 0x20), 0, &t->process},
        {"thread copy", tv_le32(h + 0x24), 0, &t->thread},
        {"call stack", tv_le32(h + 0x28), tv_le32(h + 0x2c), &t->call_stack},
        {"driver list", tv_le32(h + 0x30), (uint64_t)ndrv * DRIVER_ENTRY64,
         &t->driver_list},
        {"string pool", tv_le32(h + 0x38), tv_le32(h + 0x3c),
         &t->string_pool},
        {"broken-driver entry", tv_le32(h + 0x40), 0, &t->broken_driver},
        {"data page", tv_le32(h + 0x68), tv_le32(h + 0x6c), &t->data_page},
        {"KDBG copy", tv_le32(h + 0x70), tv_le32(h + 0x74), &t->kdbg},
        {"data-block array", tv_le32(h + 0x78),
         (uint64_t)tv_le32(h + 0x7c) * TRIAGE_BLOCK, &t->data_blocks},
    };
    t->service_pack_build = tv_le32(h);
    t->size_of_dump = tv_le32(h + 0x04);
    t->triage_options = tv_le32(h + 0x44);
    t->top_of_stack = tv_le64(h + 0x48);
    t->data_page_va = tv_le64(h + 0x60);
    t->driver_count = ndrv;
    t->data_block_count = tv_le32(h + 0x7c);
    for (size_t i = 0; i < TV_ARRAY_LEN(p); i++) {
        int rc = cd_piece(f, p[i].what, p[i].off, p[i].size, p[i].out);
        if (rc)
            return rc;
    }
    if (!t->data_blocks.offset)
        t->data_block_count = 0;
    if (!t->driver_list.offset)
        t->driver_count = 0;
    return TINYVMI_OK;
}

static int block_cmp(const void *a, const void *b)
{
    const tv_cd_block_t *x = a, *y = b;
    return x->va < y->va ? -1 : x->va > y->va;
}

/* Checks and appends a block (size 0: ignored). */
static int cd_block_add(tv_file_t *f, tv_crashdump_t *cd, const char *what,
                        uint64_t va, uint64_t off, uint64_t size)
{
    if (size == 0)
        return TINYVMI_OK;
    if (!file_span_ok(f, off, size))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: triage %s (va "
                       "0x%llx) at file offset 0x%llx (0x%llx bytes) is "
                       "past the end of the file (0x%zx)", what,
                       (unsigned long long)va, (unsigned long long)off,
                       (unsigned long long)size, f->size);
    if (va != 0 && size > (UINT64_MAX - va) + 1)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "crash dump: triage %s at va "
                       "0x%llx (0x%llx bytes) wraps past 2^64", what,
                       (unsigned long long)va, (unsigned long long)size);
    cd->blocks[cd->nblocks++] = (tv_cd_block_t){va, size, off};
    return TINYVMI_OK;
}

/* True when blocks i and i + 1 (sorted) overlap. */
static bool cd_overlap(const tv_crashdump_t *cd, size_t i)
{
    const tv_cd_block_t *a = &cd->blocks[i], *b = &cd->blocks[i + 1];
    return b->va - a->va < a->size;
}

/* The saved blocks, sorted; the KDBG copy and the data page are blocks too
 * unless a saved block already covers their addresses. */
static int cd_triage_blocks(tv_file_t *f, tv_crashdump_t *cd)
{
    const tv_cd_triage_t *t = &cd->triage;
    size_t n = t->data_block_count;
    cd->blocks = calloc(n + 2, sizeof *cd->blocks);
    if (!cd->blocks)
        return tv_fail(f->vmi, TINYVMI_ENOMEM, "crash dump: out of memory "
                       "for %zu triage data blocks", n);
    int rc = TINYVMI_OK;
    for (size_t i = 0; !rc && i < n; i++) {
        const uint8_t *b = f->data + t->data_blocks.offset + i * TRIAGE_BLOCK;
        rc = cd_block_add(f, cd, "data block", tv_le64(b), tv_le32(b + 8),
                          tv_le32(b + 12));
    }
    if (rc)
        return rc;
    qsort(cd->blocks, cd->nblocks, sizeof *cd->blocks, block_cmp);
    for (size_t i = 0; i + 1 < cd->nblocks; i++)
        if (cd_overlap(cd, i))
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: triage data "
                           "blocks at va 0x%llx (+0x%llx) and 0x%llx "
                           "overlap", (unsigned long long)cd->blocks[i].va,
                           (unsigned long long)cd->blocks[i].size,
                           (unsigned long long)cd->blocks[i + 1].va);
    size_t saved = cd->nblocks;
    rc = cd_block_add(f, cd, "KDBG copy", cd->kd_debugger_data_block,
                      t->kdbg.offset, t->kdbg.offset ? t->kdbg.size : 0);
    if (!rc)
        rc = cd_block_add(f, cd, "data page", t->data_page_va,
                          t->data_page.offset,
                          t->data_page.offset ? t->data_page.size : 0);
    if (rc || cd->nblocks == saved)
        return rc;
    qsort(cd->blocks, cd->nblocks, sizeof *cd->blocks, block_cmp);
    for (size_t i = 0; i + 1 < cd->nblocks; i++)
        if (cd_overlap(cd, i)) /* KDBG or data page within a saved block */
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "crash dump: the triage "
                           "KDBG copy or data page overlaps a saved block "
                           "at va 0x%llx", (unsigned long long)cd->blocks[i].va);
    return TINYVMI_OK;
}

static int cd_triage(tv_file_t *f, tv_crashdump_t *cd)
{
    cd->kind = TV_CD_TRIAGE;
    cd->kind_name = "triage";
    if (!cd->is64)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "crash dump: 32-bit triage "
                       "dumps are not supported yet");
    if (!file_span_ok(f, TRIAGE_AT, TRIAGE_HDR))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: the triage "
                       "header at 0x%x is past the end of the file (0x%zx)",
                       TRIAGE_AT, f->size);
    int rc = cd_triage_pieces(f, &cd->triage);
    return rc ? rc : cd_triage_blocks(f, cd);
}

/* ---- Registers: the CONTEXT of the processor that crashed --------------- */

typedef struct cd_reg {
    uint16_t reg, off;
    uint8_t size;
} cd_reg_t;

/* CONTEXT (AMD64): ContextFlags 0x30, segments 0x38.., EFlags 0x44,
 * Dr0-3, Dr6, Dr7 from 0x48, Rax Rcx Rdx Rbx Rsp Rbp Rsi Rdi R8..R15 from
 * 0x78, Rip 0xf8. */
static const cd_reg_t ctx_amd64[] = {
    {CS_SEL, 0x38, 2}, {DS_SEL, 0x3a, 2}, {ES_SEL, 0x3c, 2},
    {FS_SEL, 0x3e, 2}, {GS_SEL, 0x40, 2}, {SS_SEL, 0x42, 2},
    {RFLAGS, 0x44, 4}, {DR0, 0x48, 8},    {DR1, 0x50, 8},
    {DR2, 0x58, 8},    {DR3, 0x60, 8},    {DR6, 0x68, 8},
    {DR7, 0x70, 8},    {RAX, 0x78, 8},    {RCX, 0x80, 8},
    {RDX, 0x88, 8},    {RBX, 0x90, 8},    {RSP, 0x98, 8},
    {RBP, 0xa0, 8},    {RSI, 0xa8, 8},    {RDI, 0xb0, 8},
    {R8, 0xb8, 8},     {R9, 0xc0, 8},     {R10, 0xc8, 8},
    {R11, 0xd0, 8},    {R12, 0xd8, 8},    {R13, 0xe0, 8},
    {R14, 0xe8, 8},    {R15, 0xf0, 8},    {RIP, 0xf8, 8},
};

/* CONTEXT (i386): Dr0-3, Dr6, Dr7 from 0x04, FloatSave 0x1c, then SegGs
 * SegFs SegEs SegDs Edi Esi Ebx Edx Ecx Eax Ebp Eip SegCs EFlags Esp SegSs
 * from 0x8c. */
static const cd_reg_t ctx_i386[] = {
    {DR0, 0x04, 4},    {DR1, 0x08, 4},    {DR2, 0x0c, 4},
    {DR3, 0x10, 4},    {DR6, 0x14, 4},    {DR7, 0x18, 4},
    {GS_SEL, 0x8c, 4}, {FS_SEL, 0x90, 4}, {ES_SEL, 0x94, 4},
    {DS_SEL, 0x98, 4}, {EDI, 0x9c, 4},    {ESI, 0xa0, 4},
    {EBX, 0xa4, 4},    {EDX, 0xa8, 4},    {ECX, 0xac, 4},
    {EAX, 0xb0, 4},    {EBP, 0xb4, 4},    {EIP, 0xb8, 4},
    {CS_SEL, 0xbc, 4}, {EFLAGS, 0xc0, 4}, {ESP, 0xc4, 4},
    {SS_SEL, 0xc8, 4},
};

static unsigned cd_vcpu_count(void *ctx)
{
    (void)ctx;
    return 1; /* only the processor that crashed has its context saved */
}

static int cd_get_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value)
{
    tv_file_t *f = ctx;
    const tv_crashdump_t *cd = f->cd;
    if (vcpu != 0)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "crash dump: no vCPU %u (only "
                       "the crashing processor's context is saved)", vcpu);
    if (reg == CR3) { /* the header's DirectoryTableBase */
        *value = cd->dtb;
        return TINYVMI_OK;
    }
    bool x64 = cd->machine == MACHINE_AMD64;
    const cd_reg_t *t = x64 ? ctx_amd64 : ctx_i386;
    size_t n = x64 ? TV_ARRAY_LEN(ctx_amd64) : TV_ARRAY_LEN(ctx_i386);
    const uint8_t *c = f->data + cd->context.offset; /* inside the header */
    for (size_t i = 0; i < n; i++) {
        if (t[i].reg != reg)
            continue;
        const uint8_t *p = c + t[i].off;
        *value = t[i].size == 8 ? tv_le64(p)
                 : t[i].size == 4 ? tv_le32(p)
                                  : tv_le16(p);
        return TINYVMI_OK;
    }
    return tv_fail(f->vmi, TINYVMI_ENOTSUP, "crash dump: register %llu is "
                   "not in the saved CONTEXT (of the control registers, only "
                   "CR3 is known: the header's DirectoryTableBase)", (unsigned long long)reg);
}

static const tv_vcpu_ops_t cd_vcpu_ops = {cd_vcpu_count, cd_get_reg, NULL,
                                          NULL};

/* ---- Parsing ------------------------------------------------------------ */

static const char *const kind_names[] = {
    [TV_CD_FULL] = "windows-crashdump (full)",
    [TV_CD_BITMAP_KERNEL] = "windows-crashdump (bitmap, kernel)",
    [TV_CD_BITMAP_COMPLETE] = "windows-crashdump (bitmap, complete)",
    [TV_CD_TRIAGE] = "windows-crashdump (triage)",
};

static int cd_body(tv_file_t *f, const cd_layout_t *l, tv_crashdump_t *cd)
{
    switch (cd->dump_type) {
    case 1:
        cd->kind = TV_CD_FULL;
        cd->kind_name = "full";
        return cd_full(f, l);
    case 4:
        return cd_triage(f, cd);
    case 2: case 5: case 6: case 8: case 9: case 10:
        if (!cd->is64)
            return tv_fail(f->vmi, TINYVMI_ENOTSUP, "crash dump: 32-bit "
                           "summary/bitmap dumps (DumpType %u) are not "
                           "supported yet", cd->dump_type);
        return cd_bitmap(f, cd);
    default:
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "crash dump: DumpType %u "
                       "is not a dump with memory TinyVMI reads (1 full, "
                       "4 triage, 5/6 bitmap)", cd->dump_type);
    }
}

int file_crashdump_parse(tv_file_t *f)
{
    const cd_layout_t *l = f->size >= 8 && f->data[7] == '4' ? &layout64
                                                              : &layout32;
    if (f->size < l->hdr_size)
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "crash dump: %s header needs "
                       "0x%x bytes, the file has 0x%zx", l->name,
                       l->hdr_size, f->size);
    tv_crashdump_t *cd = calloc(1, sizeof *cd);
    if (!cd)
        return tv_fail(f->vmi, TINYVMI_ENOMEM, "crash dump: out of memory");
    f->cd = cd; /* freed with f */
    cd_header(f->data, l, cd);
    f->arch = cd->arch;
    if (cd->arch == VMI_ARCH_UNKNOWN)
        tv_log(f->vmi, 1, "crash dump: unknown machine type 0x%x",
               cd->machine);
    int rc = cd_body(f, l, cd);
    if (rc)
        return rc;
    f->name = kind_names[cd->kind];
    f->vcpu_ops = cd->have_context ? &cd_vcpu_ops : NULL;
    return TINYVMI_OK;
}

void file_crashdump_free(tv_crashdump_t *cd)
{
    if (cd)
        free(cd->blocks);
    free(cd);
}

/* ---- The hosted API ----------------------------------------------------- */

const tv_crashdump_t *tv_crashdump_of(const tv_driver_t *d)
{
    const tv_file_t *f = file_from_driver(d);
    return f ? f->cd : NULL;
}

/* The first block that ends above va, or nblocks. */
static size_t cd_block_find(const tv_crashdump_t *cd, uint64_t va)
{
    size_t lo = 0, hi = cd->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tv_cd_block_t *b = &cd->blocks[mid];
        if (va - b->va < b->size || va < b->va)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int tv_crashdump_read_va(struct vmi_instance *vmi, const tv_driver_t *d,
                         uint64_t va, void *buf, size_t len, size_t *done)
{
    const tv_file_t *f = file_from_driver(d);
    const tv_crashdump_t *cd = f ? f->cd : NULL;
    size_t got = 0;
    if (done)
        *done = 0;
    if (!cd || cd->kind != TV_CD_TRIAGE)
        return tv_fail(vmi, TINYVMI_ENOTSUP, "reads by virtual address from "
                       "the dump itself need a Windows triage dump");
    size_t i = cd_block_find(cd, va);
    while (got < len) {
        uint64_t at = va + got;
        const tv_cd_block_t *b = i < cd->nblocks ? &cd->blocks[i] : NULL;
        if (!b || at < b->va || at - b->va >= b->size)
            return tv_fail(vmi, TINYVMI_EUNMAPPED, "va 0x%llx is not in the "
                           "triage dump (it saved %zu blocks of kernel "
                           "memory; 0x%zx of 0x%zx bytes read)",
                           (unsigned long long)at, cd->nblocks, got, len);
        uint64_t in = b->size - (at - b->va);
        size_t n = in < len - got ? (size_t)in : len - got;
        memcpy((uint8_t *)buf + got, f->data + b->offset + (at - b->va), n);
        got += n;
        if (done)
            *done = got;
        i++;
    }
    return TINYVMI_OK;
}

#define TV_API __attribute__((visibility("default")))

TV_API status_t tinyvmi_crashdump_info(vmi_instance_t vmi,
                                       tinyvmi_crashdump_t *out)
{
    const tv_crashdump_t *cd =
        vmi && vmi->have_drv ? tv_crashdump_of(&vmi->drv) : NULL;
    if (!out || !cd) {
        if (vmi)
            tv_fail(vmi, TINYVMI_ENOTSUP, "the target is not a Windows "
                    "crash dump");
        return VMI_FAILURE;
    }
    *out = (tinyvmi_crashdump_t){
        .version = TINYVMI_CRASHDUMP_VERSION,
        .kind = cd->kind_name,
        .dump_type = cd->dump_type,
        .machine = cd->machine,
        .major = cd->major,
        .minor = cd->minor,
        .nprocessors = cd->nprocessors,
        .dtb = cd->dtb,
        .pfn_database = cd->pfn_database,
        .ps_loaded_module_list = cd->ps_loaded_module_list,
        .ps_active_process_head = cd->ps_active_process_head,
        .kd_debugger_data_block = cd->kd_debugger_data_block,
        .bugcheck_code = cd->bugcheck_code,
        .system_time = cd->system_time,
        .pae = cd->pae,
        .triage_blocks = cd->nblocks,
        .triage_drivers = cd->triage.driver_count,
    };
    for (unsigned i = 0; i < 4; i++)
        out->bugcheck_param[i] = cd->bugcheck_param[i];
    return VMI_SUCCESS;
}

TV_API status_t tinyvmi_crashdump_read_va(vmi_instance_t vmi, addr_t va,
                                          void *buf, size_t len,
                                          size_t *bytes_read)
{
    if (!vmi || !vmi->have_drv || (!buf && len))
        return VMI_FAILURE;
    return tv_crashdump_read_va(vmi, &vmi->drv, va, buf, len, bytes_read)
               ? VMI_FAILURE
               : VMI_SUCCESS;
}
