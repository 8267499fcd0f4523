/*
 * File driver: Xen's xl dump-core files, built here the way Xen writes
 * them (ELF64, sections only: .shstrtab, .note.Xen, .xen_prstatus,
 * .xen_shared_info, .xen_pages, .xen_p2m or .xen_pfn), then read back and
 * broken in every way a hostile file could be.
 */
#include "test_file.h"
#include "tu.h"

#include "driver/file/file_int.h"

/* When Xen's public headers are installed, the layout constants the
 * parser uses must agree with them (the header needs GNU C). */
#if defined(__has_include)
#if __has_include(<xen/foreign/x86_64.h>)
#undef __STRICT_ANSI__
#include <xen/foreign/x86_64.h>
_Static_assert(sizeof(vcpu_guest_context_x86_64_t) == XEN_CTX_SIZE,
               "vcpu_guest_context_x86_64_t size");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, ctrlreg) ==
                   XEN_CTX_CTRLREG,
               "ctrlreg offset");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, user_regs.rip) == 648,
               "rip offset");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, user_regs.r15) == 520,
               "r15 offset");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, fs_base) == 5144,
               "fs_base offset");
#endif
#endif

#define EXPECT_FAIL(b, status, needle)                                    \
    do {                                                                  \
        char msg_[TV_ERRMSG_MAX];                                         \
        TU_EQ_INT(tf_try("dom.core", (b), msg_), (status));               \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

#define PAGE 4096u
#define CTX 5168u
#define INVALID UINT64_MAX
#define NSEC 7

/* Section numbers, as Xen orders them. */
enum { S_STRTAB = 1, S_NOTES, S_PRSTATUS, S_SHARED, S_PAGES, S_TABLE };

/* A core to build; the builder fills in where things went. */
typedef struct xb {
    bool pv;            /* PV magic and .xen_p2m, else HVM and .xen_pfn */
    unsigned nvcpus;
    size_t npages;
    const uint64_t *frames; /* frame of page i: gmfn (PV), pfn (HVM) */
    const uint8_t *pages;   /* npages * PAGE bytes, NULL: a pattern */
    const uint64_t *cr3;    /* ctrlreg[3] of each vCPU */
    size_t note_tail;       /* stray bytes after the last note */
    bool two_headers;
    size_t shdr[NSEC];   /* out: file offset of section header i */
    size_t data[NSEC];   /* out: file offset of section i's bytes */
    size_t header_note;  /* out: offset of the header note's descsz */
    size_t format_note;  /* out: offset of the format version's value */
} xb_t;

static uint8_t pattern(size_t page, size_t byte)
{
    return (uint8_t)(page * 31 + byte * 7 + 1);
}

static const char strtab[] = "\0.shstrtab\0.note.Xen\0.xen_prstatus\0"
                             ".xen_shared_info\0.xen_pages\0.xen_p2m\0"
                             ".xen_pfn";
static const uint32_t name_at[NSEC] = {0, 1, 11, 21, 35, 52, 63};
#define NAME_PFN 72u

static void xb_note(tf_buf_t *b, uint32_t type, const void *desc,
                    uint32_t size)
{
    tf_note(b, "Xen", type, desc, size);
}

static void xb_notes(tf_buf_t *b, xb_t *x)
{
    uint8_t hdr[32] = {0}, ver[1280] = {0}, fmt[8] = {1};
    tf_buf_t t = {0};
    tf_put(&t, 0, x->pv ? 0xF00FEBEDull : 0xF00FEBEEull, 8);
    tf_put(&t, 8, x->nvcpus, 8);
    tf_put(&t, 16, x->npages, 8);
    tf_put(&t, 24, PAGE, 8);
    memcpy(hdr, t.p, sizeof hdr);
    tf_buf_free(&t);
    ver[0] = 4;
    ver[8] = 17;
    xb_note(b, 0x2000000, NULL, 0);
    x->header_note = b->len + 4;
    xb_note(b, 0x2000001, hdr, sizeof hdr);
    if (x->two_headers)
        xb_note(b, 0x2000001, hdr, sizeof hdr);
    xb_note(b, 0x2000002, ver, sizeof ver);
    x->format_note = b->len + 16;
    xb_note(b, 0x2000003, fmt, sizeof fmt);
    tf_append(b, NULL, x->note_tail);
}

/* vCPU i: rip 0xffffffff81000000 + i, rax 0xaa00 + i, ... */
static void xb_vcpu(tf_buf_t *b, const xb_t *x, unsigned i)
{
    size_t at = tf_append(b, NULL, CTX);
    tf_put(b, at + 512, 0x21, 8);                           /* flags */
    tf_put(b, at + 520, 0x1500 + i, 8);                     /* r15 */
    tf_put(b, at + 600, 0xaa00 + i, 8);                     /* rax */
    tf_put(b, at + 632, 0xd100 + i, 8);                     /* rdi */
    tf_put(b, at + 648, 0xffffffff81000000ull + i, 8);      /* rip */
    tf_put(b, at + 656, x->pv ? 0xe033 : 0x10, 2);          /* cs */
    tf_put(b, at + 660, 1, 1);                     /* saved_upcall_mask */
    tf_put(b, at + 664, 0x246, 8);                          /* rflags */
    tf_put(b, at + 672, 0xffffc90000004000ull + i, 8);      /* rsp */
    tf_put(b, at + 680, x->pv ? 0xe02b : 0x18, 2);          /* ss */
    tf_put(b, at + 4984, 0x80050033, 8);                    /* cr0 */
    tf_put(b, at + 4984 + 16, 0x5000 + i, 8);               /* cr2 */
    tf_put(b, at + 4984 + 24, x->cr3[i], 8);                /* cr3 */
    tf_put(b, at + 4984 + 32, 0x2660, 8);                   /* cr4 */
    tf_put(b, at + 5048 + 56, 0x400, 8);                    /* dr7 */
    tf_put(b, at + 5144, 0x7f0000001000ull + i, 8);         /* fs_base */
    tf_put(b, at + 5152, 0xffff888007a00000ull + i, 8);     /* gs kernel */
    tf_put(b, at + 5160, 0x7f0000002000ull + i, 8);         /* gs user */
}

static void xb_shdr(tf_buf_t *b, xb_t *x, unsigned i, uint32_t type,
                    size_t off, size_t size, size_t entsize)
{
    size_t at = 64 + 64 * (size_t)i;
    x->shdr[i] = at;
    x->data[i] = off;
    tf_put(b, at, i == S_TABLE && !x->pv ? NAME_PFN : name_at[i], 4);
    tf_put(b, at + 4, type, 4);
    tf_put(b, at + 24, off, 8);
    tf_put(b, at + 32, size, 8);
    tf_put(b, at + 48, 8, 8); /* sh_addralign */
    tf_put(b, at + 56, entsize, 8);
}

static void xb_ehdr(tf_buf_t *b)
{
    static const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    tf_append(b, ident, sizeof ident);
    tf_put(b, 16, 4, 2);  /* ET_CORE */
    tf_put(b, 18, 62, 2); /* EM_X86_64 */
    tf_put(b, 20, 1, 4);
    tf_put(b, 40, 64, 8); /* e_shoff */
    tf_put(b, 52, 64, 2); /* e_ehsize */
    tf_put(b, 54, 56, 2);
    tf_put(b, 58, 64, 2);
    tf_put(b, 60, NSEC, 2);
    tf_put(b, 62, S_STRTAB, 2);
    tf_put(b, 64 + 64 * NSEC - 1, 0, 1); /* room for the headers */
}

static void xb_build(tf_buf_t *b, xb_t *x)
{
    xb_ehdr(b);
    size_t at = b->len;
    xb_notes(b, x);
    xb_shdr(b, x, S_NOTES, 7, at, b->len - at, 0);
    at = b->len;
    for (unsigned i = 0; i < x->nvcpus; i++)
        xb_vcpu(b, x, i);
    xb_shdr(b, x, S_PRSTATUS, 1, at, b->len - at, CTX);
    at = tf_append(b, NULL, PAGE);
    b->p[at] = 0x5a;
    xb_shdr(b, x, S_SHARED, 1, at, PAGE, PAGE);
    tf_append(b, NULL, (PAGE - b->len % PAGE) % PAGE);
    at = b->len;
    for (size_t i = 0; i < x->npages; i++)
        for (size_t j = 0; j < PAGE; j++)
            tf_put(b, at + i * PAGE + j,
                   x->pages ? x->pages[i * PAGE + j] : pattern(i, j), 1);
    xb_shdr(b, x, S_PAGES, 1, at, x->npages * PAGE, PAGE);
    at = b->len;
    for (size_t i = 0; i < x->npages; i++) {
        if (x->pv) {
            tf_put(b, b->len, x->frames[i] == INVALID ? INVALID : i, 8);
            tf_put(b, b->len, x->frames[i], 8);
        } else {
            tf_put(b, b->len, x->frames[i], 8);
        }
    }
    xb_shdr(b, x, S_TABLE, 1, at, b->len - at, x->pv ? 16 : 8);
    at = tf_append(b, strtab, sizeof strtab);
    xb_shdr(b, x, S_STRTAB, 3, at, sizeof strtab, 0);
}

/* ---- A PV core: machine frames, registers, a page walk ------------------ */

/* Pages 0-2 and 5 are a 4-level table mapping 0xffffffff80001000 to frame
 * 0x50 (page 4); page 3 is a page Xen could not map. */
static const uint64_t pv_frames[] = {0x100, 0x101, 0x102, INVALID, 0x50,
                                     0x103};
static uint8_t pv_pages[6 * PAGE];

static void pv_table(size_t page, unsigned index, uint64_t entry)
{
    for (unsigned k = 0; k < 8; k++)
        pv_pages[page * PAGE + index * 8 + k] = (uint8_t)(entry >> (8 * k));
}

static void pv_core(tf_buf_t *b, xb_t *x)
{
    static const uint64_t cr3[] = {0x100000 | 0x18, 0x200000};
    for (size_t i = 0; i < sizeof pv_pages; i++)
        pv_pages[i] = i / PAGE == 4 ? pattern(4, i % PAGE) : 0;
    memset(pv_pages + 3 * PAGE, 0xee, PAGE);
    pv_table(0, 511, 0x101000 | 3); /* PML4E -> PDPT */
    pv_table(1, 510, 0x102000 | 3); /* PDPTE -> PD */
    pv_table(2, 0, 0x103000 | 3);   /* PDE -> PT (page 5) */
    pv_table(5, 1, 0x50000 | 3);    /* PTE -> frame 0x50 */
    *x = (xb_t){.pv = true, .nvcpus = 2, .npages = 6, .frames = pv_frames,
                .pages = pv_pages, .cr3 = cr3};
    xb_build(b, x);
}

static int reg(const tv_driver_t *d, unsigned cpu, reg_t r, uint64_t *v)
{
    return d->vcpu->get_reg(d->ctx, cpu, r, v);
}

#define EXPECT_REG(d, cpu, r, want)                                       \
    do {                                                                  \
        uint64_t v_ = 0;                                                  \
        TU_EQ_INT(reg((d), (cpu), (r), &v_), 0);                          \
        TU_EQ_U64(v_, (want));                                            \
    } while (0)

TU_TEST(xencore_pv_ranges)
{
    tf_buf_t b = {0};
    xb_t x;
    pv_core(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "pv.core", &b, &d), 0);
    TU_EQ_STR(d.name, "xen-core (PV, machine frames)");
    TU_EQ_INT(d.arch, VMI_ARCH_X86_64);
    /* frame 0x103 follows 0x102 but not in the file: its own range */
    TU_EQ_U64(d.nranges, 3);
    size_t pages = x.data[S_PAGES];
    TU_EQ_U64(d.ranges[0].start, 0x50000);
    TU_EQ_U64(d.ranges[0].size, PAGE);
    TU_EQ_U64(d.ranges[0].offset, pages + 4 * PAGE);
    TU_EQ_U64(d.ranges[1].start, 0x100000);
    TU_EQ_U64(d.ranges[1].size, 3 * PAGE);
    TU_EQ_U64(d.ranges[1].offset, pages);
    TU_EQ_U64(d.ranges[2].start, 0x103000);
    TU_EQ_U64(d.ranges[2].size, PAGE);
    TU_EQ_U64(d.ranges[2].offset, pages + 5 * PAGE);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    uint8_t buf[16];
    TU_EQ_INT(tv_read_pa(vmi, 0x50ff0, buf, sizeof buf, NULL), 0);
    TU_EQ_U64(buf[0], pattern(4, 0xff0));
    TU_EQ_INT(tv_read_pa(vmi, 0x101000 + 510 * 8, buf, 8, NULL), 0);
    TU_EQ_U64(tv_le64(buf), 0x102003);
    /* across two ranges: frame 0x102 (page 2) then 0x103 (page 5) */
    TU_EQ_INT(tv_read_pa(vmi, 0x102ff8, buf, 16, NULL), 0);
    TU_EQ_U64(tv_le64(buf + 8), 0);
    TU_EQ_INT(tv_read_pa(vmi, 0x103008, buf, 8, NULL), 0);
    TU_EQ_U64(tv_le64(buf), 0x50003);
    /* the page Xen could not map is nowhere */
    TU_EQ_INT(tv_read_pa(vmi, 0x3000, buf, 1, NULL), TINYVMI_EUNMAPPED);
    TU_EQ_INT(tv_read_pa(vmi, 0x104000, buf, 1, NULL), TINYVMI_EUNMAPPED);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

TU_TEST(xencore_pv_registers)
{
    tf_buf_t b = {0};
    xb_t x;
    pv_core(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "pv.core", &b, &d), 0);
    TU_ASSERT(d.vcpu && d.vcpu->set_reg == NULL);
    TU_EQ_U64(d.vcpu->count(d.ctx), 2);
    for (unsigned i = 0; i < 2; i++) {
        EXPECT_REG(&d, i, RIP, 0xffffffff81000000ull + i);
        EXPECT_REG(&d, i, RSP, 0xffffc90000004000ull + i);
        EXPECT_REG(&d, i, RAX, 0xaa00 + i);
        EXPECT_REG(&d, i, RDI, 0xd100 + i);
        EXPECT_REG(&d, i, R15, 0x1500 + i);
        EXPECT_REG(&d, i, CS_SEL, 0xe033); /* not the upcall mask */
        EXPECT_REG(&d, i, SS_SEL, 0xe02b);
        EXPECT_REG(&d, i, RFLAGS, 0x246);
        EXPECT_REG(&d, i, CR0, 0x80050033);
        EXPECT_REG(&d, i, CR2, 0x5000 + i);
        EXPECT_REG(&d, i, CR4, 0x2660);
        EXPECT_REG(&d, i, DR7, 0x400);
        EXPECT_REG(&d, i, FS_BASE, 0x7f0000001000ull + i);
        EXPECT_REG(&d, i, GS_BASE, 0xffff888007a00000ull + i);
        EXPECT_REG(&d, i, SHADOW_GS, 0x7f0000002000ull + i);
        EXPECT_REG(&d, i, MSR_EFER, 0xd01); /* PV: long mode, NX */
    }
    /* PV CR3: xen_cr3_to_pfn(ctrlreg[3]) << 12 */
    EXPECT_REG(&d, 0, CR3, 0x100000);
    EXPECT_REG(&d, 1, CR3, 0x200000);
    uint64_t v;
    TU_EQ_INT(reg(&d, 2, RIP, &v), TINYVMI_ERANGE);
    TU_EQ_INT(reg(&d, 2, MSR_EFER, &v), TINYVMI_ERANGE);
    TU_EQ_INT(reg(&d, 0, TR_BASE, &v), TINYVMI_ENOTSUP);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* vmi_init_paging from vCPU 0's registers, then a walk in machine frames. */
TU_TEST(xencore_pv_paging)
{
    tf_buf_t b = {0};
    xb_t x;
    pv_core(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "pv.core", &b, &d), 0);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    TU_EQ_INT(vmi_init_paging(vmi, 0), VMI_PM_IA32E);
    TU_EQ_U64(vmi_get_kernel_dtb(vmi), 0x100000);
    addr_t pa = 0;
    TU_EQ_INT(vmi_translate_kv2p(vmi, 0xffffffff80001234ull, &pa),
              VMI_SUCCESS);
    TU_EQ_U64(pa, 0x50234);
    uint64_t v = 0;
    TU_EQ_INT(vmi_get_vcpureg(vmi, &v, MSR_EFER, 0), VMI_SUCCESS);
    TU_EQ_U64(v, 0xd01);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* ---- An HVM/PVH core: guest frames -------------------------------------- */

static const uint64_t hvm_frames[] = {0, 1, 2, 3, INVALID, 0xfeff0, 0xfeff1};

static void hvm_core(tf_buf_t *b, xb_t *x)
{
    static const uint64_t cr3[] = {0x2008};
    *x = (xb_t){.pv = false, .nvcpus = 1, .npages = 7, .frames = hvm_frames,
                .cr3 = cr3};
    xb_build(b, x);
}

TU_TEST(xencore_hvm)
{
    tf_buf_t b = {0};
    xb_t x;
    hvm_core(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "hvm.core", &b, &d), 0);
    TU_EQ_STR(d.name, "xen-core (HVM)");
    TU_EQ_U64(d.nranges, 2);
    size_t pages = x.data[S_PAGES];
    TU_EQ_U64(d.ranges[0].start, 0);
    TU_EQ_U64(d.ranges[0].size, 4 * PAGE);
    TU_EQ_U64(d.ranges[0].offset, pages);
    TU_EQ_U64(d.ranges[1].start, 0xfeff0000);
    TU_EQ_U64(d.ranges[1].size, 2 * PAGE);
    TU_EQ_U64(d.ranges[1].offset, pages + 5 * PAGE);
    TU_EQ_U64(d.vcpu->count(d.ctx), 1);
    EXPECT_REG(&d, 0, CR3, 0x2008); /* the guest's own CR3, as it is */
    EXPECT_REG(&d, 0, CS_SEL, 0x10);
    EXPECT_REG(&d, 0, GS_BASE, 0xffff888007a00000ull);
    uint64_t v;
    TU_EQ_INT(reg(&d, 0, MSR_EFER, &v), TINYVMI_ENOTSUP);
    TU_CONTAINS(vmi->last_error, "EFER is not in an HVM vCPU's context");
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    uint8_t buf[8];
    TU_EQ_INT(tv_read_pa(vmi, 0x3ff8, buf, 8, NULL), 0);
    TU_EQ_U64(buf[7], pattern(3, 0xfff));
    TU_EQ_INT(tv_read_pa(vmi, 0xfeff1000, buf, 8, NULL), 0);
    TU_EQ_U64(buf[0], pattern(6, 0));
    TU_EQ_INT(tv_read_pa(vmi, 0x4000, buf, 1, NULL), TINYVMI_EUNMAPPED);
    /* no EFER: the x86_64 container says long mode */
    TU_EQ_INT(vmi_init_paging(vmi, 0), VMI_PM_IA32E);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* An auto-translated PV core (PV magic, .xen_pfn): guest frames. */
TU_TEST(xencore_pv_autotranslated)
{
    tf_buf_t b = {0};
    xb_t x;
    hvm_core(&b, &x);
    tf_put(&b, x.header_note + 12, 0xF00FEBEDull, 8);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "pvat.core", &b, &d), 0);
    TU_EQ_STR(d.name, "xen-core (PV, auto-translated)");
    TU_EQ_U64(d.ranges[1].start, 0xfeff0000);
    EXPECT_REG(&d, 0, CR3, 0x2000);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* A plain ELF core is still an ELF core. */
TU_TEST(xencore_probe)
{
    tf_buf_t b = {0};
    xb_t x;
    hvm_core(&b, &x);
    TU_ASSERT(file_xencore_probe(b.p, b.len));
    TU_ASSERT(!file_xencore_probe(b.p, 63));
    tf_put(&b, 56, 1, 2); /* a program header: the ELF parser's */
    TU_ASSERT(!file_xencore_probe(b.p, b.len));
    tf_put(&b, 56, 0, 2);
    tf_put(&b, 4, 1, 1); /* ELF32 */
    TU_ASSERT(!file_xencore_probe(b.p, b.len));
    tf_buf_free(&b);
}

/* ---- Hostile cores ------------------------------------------------------ */

static void pv(tf_buf_t *b, xb_t *x)
{
    pv_core(b, x);
}

TU_TEST(xencore_truncated)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x);
    b.len = x.data[S_PAGES] + 2 * PAGE; /* as a dump cut short */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "Xen core: section 1 (.shstrtab) "
                "[0x");
    pv(&b, &x);
    b.len = 100; /* inside the section headers */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "Xen core: 7 section headers at 0x40 "
                "extend past end of file (size 0x64)");
    /* a table cut short with the name table moved before it */
    pv(&b, &x);
    tf_put(&b, x.shdr[S_STRTAB] + 24, x.data[S_SHARED] + 8, 8);
    memcpy(b.p + x.data[S_SHARED] + 8, strtab, sizeof strtab);
    b.len = x.data[S_TABLE] + 16;
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "section 6 (.xen_p2m) [0x");
}

TU_TEST(xencore_counts_past_file)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x);
    tf_put(&b, x.header_note + 28, 1ull << 40, 8); /* nr_pages */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .xen_pages has 24576 bytes "
                "for 1099511627776 pages of 4096 bytes");
    pv(&b, &x);
    tf_put(&b, x.header_note + 28, 7, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, ".xen_pages has 24576 bytes for 7 "
                "pages");
    pv(&b, &x);
    tf_put(&b, x.header_note + 20, 3, 8); /* nr_vcpus */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .xen_prstatus has 10336 "
                "bytes for 3 vCPUs of 5168 bytes");
    pv(&b, &x);
    tf_put(&b, x.header_note + 20, 1ull << 62, 8);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "Xen core: 4611686018427387904 vCPUs, "
                "more than 8192");
    pv(&b, &x); /* a p2m for fewer pages than .xen_pages holds */
    tf_put(&b, x.shdr[S_TABLE] + 32, 5 * 16, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .xen_p2m has 80 bytes for "
                "6 pages");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_TABLE] + 24, 1ull << 63, 8);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "section 6 (.xen_p2m) "
                "[0x8000000000000000, +0x60) extends past end of file");
    pv(&b, &x); /* offset + size wraps */
    tf_put(&b, x.shdr[S_PAGES] + 32, UINT64_MAX - 0x100, 8);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "section 5 (.xen_pages)");
    pv(&b, &x);
    tf_put(&b, 40, UINT64_MAX - 63, 8); /* e_shoff */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "7 section headers at "
                "0xffffffffffffffc0 extend past end of file");
    pv(&b, &x);
    tf_put(&b, 60, 0xffff, 2); /* e_shnum */
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "65535 section headers at 0x40");
}

TU_TEST(xencore_overlapping_sections)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x);
    tf_put(&b, x.shdr[S_TABLE] + 24, x.data[S_PAGES] + 16, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .xen_pages [0x");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_TABLE] + 24, x.data[S_PAGES] + 16, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, ") and .xen_p2m [0x");
    pv(&b, &x); /* the notes over the section headers */
    tf_put(&b, x.shdr[S_NOTES] + 24, 256, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: the section headers [0x40, "
                "+0x1c0) and .note.Xen [0x100, +0x");
    pv(&b, &x); /* the vCPU contexts over the ELF header */
    tf_put(&b, x.shdr[S_PRSTATUS] + 24, 0, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: the ELF header [0x0, +0x40) "
                "and .xen_prstatus [0x0, +0x2860) overlap");
}

TU_TEST(xencore_bad_notes)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x);
    tf_put(&b, x.header_note, 24, 4); /* header descsz */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: header note at "
                ".note.Xen+0x10 has 24 bytes, want 32");
    pv(&b, &x);
    tf_put(&b, x.header_note, 0x7ffffff0, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "note at .note.Xen+0x10: namesz 0x4 and "
                "descsz 0x7ffffff0 exceed the 0x");
    pv(&b, &x);
    tf_put(&b, x.header_note - 4, 0xffffffff, 4); /* namesz */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "namesz 0xffffffff");
    pv(&b, &x);
    tf_put(&b, x.format_note - 12, 4, 4); /* format version descsz */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "format version note at .note.Xen+0x");
    pv(&b, &x);
    tf_put(&b, x.header_note + 4, 0x2000004, 4); /* no header any more */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .note.Xen has no dump-core "
                "header note (type 0x2000001)");
    pv(&b, &x);
    tf_put(&b, x.format_note, 1ull << 32, 8);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "Xen core: format version 1.0 (only "
                "major version 0 is known)");
    x = (xb_t){.pv = false, .nvcpus = 1, .npages = 7, .frames = hvm_frames,
               .cr3 = (const uint64_t[]){0}, .two_headers = true};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: a second header note at "
                ".note.Xen+0x40");
    x = (xb_t){.pv = false, .nvcpus = 1, .npages = 7, .frames = hvm_frames,
               .cr3 = (const uint64_t[]){0}, .note_tail = 8};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: 8 stray bytes at "
                ".note.Xen+0x");
    pv(&b, &x); /* another owner's notes are skipped, even odd ones */
    memcpy(b.p + x.header_note - 4 + 12, "Xex", 3);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "no dump-core header note");
}

TU_TEST(xencore_bad_header)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x);
    tf_put(&b, x.header_note + 12, 0xF00FEBEF, 8);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: header magic 0xf00febef is "
                "neither");
    pv(&b, &x);
    tf_put(&b, x.header_note + 12, 0xF00FEBEE, 8); /* HVM with a p2m */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: an HVM core (magic "
                "0xf00febee) with a .xen_p2m section");
    pv(&b, &x);
    tf_put(&b, x.header_note + 36, 8192, 8);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "Xen core: page size 8192");
    pv(&b, &x);
    tf_put(&b, 18, 3, 2);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "32-bit PV guests are not supported");
    pv(&b, &x);
    tf_put(&b, 18, 183, 2);
    EXPECT_FAIL(&b, TINYVMI_ENOTSUP, "Xen core: e_machine 183: only x86_64");
    pv(&b, &x);
    tf_put(&b, 58, 40, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: e_shentsize 40");
    pv(&b, &x);
    tf_put(&b, 62, 7, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: section name table index 7 "
                "is not one of the 7 sections");
    pv(&b, &x);
    tf_put(&b, 62, 0, 2);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "section name table index 0");
}

TU_TEST(xencore_bad_sections)
{
    tf_buf_t b = {0};
    xb_t x;
    pv(&b, &x); /* .xen_shared_info renamed .xen_pages */
    tf_put(&b, x.shdr[S_SHARED], name_at[S_PAGES], 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: two .xen_pages sections (4 "
                "and 5)");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_PAGES] + 4, 8, 4); /* SHT_NOBITS */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: section 5 (.xen_pages) has "
                "type 8, want 1");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_STRTAB] + 4, 1, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "section 1 (.shstrtab) has type 1, "
                "want 3");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_PAGES], sizeof strtab, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: section 5: name at 0x51 is "
                "not a string in the 0x51-byte name table");
    hvm_core(&b, &x); /* the table's last byte is no longer a NUL */
    b.p[x.data[S_STRTAB] + sizeof strtab - 1] = 'x';
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "section 6: name at 0x48 is not a "
                "string");
    pv(&b, &x);
    tf_put(&b, x.shdr[S_PRSTATUS], 0, 4); /* no name */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: no .xen_prstatus section");
    pv(&b, &x);
    b.p[x.data[S_STRTAB] + name_at[S_TABLE] + 7] = 'X'; /* .xen_p2X */
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: neither .xen_p2m nor "
                ".xen_pfn");
    pv(&b, &x); /* .xen_shared_info renamed .xen_pfn */
    tf_put(&b, x.shdr[S_SHARED], NAME_PFN, 4);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: both .xen_p2m and .xen_pfn");
}

TU_TEST(xencore_bad_frames)
{
    tf_buf_t b = {0};
    xb_t x;
    static const uint64_t dup[] = {0x100, 0x101, 0x102, 0x7, 0x101, 0x9};
    x = (xb_t){.pv = true, .nvcpus = 1, .npages = 6, .frames = dup,
               .cr3 = (const uint64_t[]){0}};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: frame 0x101 is in the file "
                "twice (pages 1 and 4)");
    static const uint64_t dup2[] = {5, 6, 7, 8, 4, 5, 6};
    x = (xb_t){.pv = false, .nvcpus = 1, .npages = 7, .frames = dup2,
               .cr3 = (const uint64_t[]){0}};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: frame 0x5 is in the file "
                "twice (pages 0 and 5)");
    static const uint64_t big[] = {1, 2, 1ull << 40};
    x = (xb_t){.pv = true, .nvcpus = 1, .npages = 3, .frames = big,
               .cr3 = (const uint64_t[]){0}};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: .xen_p2m entry 2: frame "
                "0x10000000000 is beyond 52-bit physical addresses");
    static const uint64_t none[] = {INVALID, INVALID};
    x = (xb_t){.pv = false, .nvcpus = 1, .npages = 2, .frames = none,
               .cr3 = (const uint64_t[]){0}};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: no memory ranges with data");
    x = (xb_t){.pv = true, .nvcpus = 1, .npages = 0, .frames = none,
               .cr3 = (const uint64_t[]){0}};
    xb_build(&b, &x);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "Xen core: no memory ranges with data");
}

/* No vCPUs: memory only, no register group. */
TU_TEST(xencore_no_vcpus)
{
    tf_buf_t b = {0};
    xb_t x = {.pv = false, .nvcpus = 0, .npages = 7, .frames = hvm_frames,
              .cr3 = NULL};
    xb_build(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "novcpu.core", &b, &d), 0);
    TU_ASSERT(d.vcpu == NULL);
    TU_EQ_U64(d.nranges, 2);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&b);
}

/* Every byte of a small core flipped: refused with a message or opened,
 * never a crash (the sanitizer build runs this too). */
TU_TEST(xencore_every_byte)
{
    tf_buf_t b = {0};
    xb_t x;
    static const uint64_t fr[] = {3, 9};
    x = (xb_t){.pv = true, .nvcpus = 1, .npages = 2, .frames = fr,
               .cr3 = (const uint64_t[]){0x3000}};
    xb_build(&b, &x);
    struct vmi_instance *vmi = tf_vmi();
    for (size_t i = 0; i < b.len; i++) {
        if (i >= x.data[S_PRSTATUS] && i < x.data[S_TABLE])
            continue; /* contexts, shared info, pages: nothing to parse */
        for (unsigned bit = 0; bit < 8; bit += 3) {
            b.p[i] ^= (uint8_t)(1u << bit);
            tv_driver_t d;
            vmi->last_error[0] = '\0';
            int rc = tv_file_open_mem(vmi, b.p, b.len, &d);
            if (rc == 0) {
                uint64_t v;
                for (reg_t r = 0; d.vcpu && r < TINYVMI_NREGS; r++)
                    (void)d.vcpu->get_reg(d.ctx, 0, r, &v);
                d.close(d.ctx);
            } else {
                TU_ASSERT(vmi->last_error[0] != '\0');
            }
            b.p[i] ^= (uint8_t)(1u << bit);
        }
    }
    tv_instance_free(vmi);
    tf_buf_free(&b);
}
