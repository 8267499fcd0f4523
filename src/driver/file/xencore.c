/*
 * Xen's `xl dump-core` files (Xen's docs/misc/dump-core-format.txt): a
 * little-endian ELF64 ET_CORE with section headers and no program headers.
 *   .note.Xen        notes owned by "Xen": the header {u64 magic, nr_vcpus,
 *                    nr_pages, page_size}, Xen's version, the format version
 *   .xen_prstatus    vcpu_guest_context_x86_64_t[nr_vcpus] (elf_x86.c)
 *   .xen_shared_info the shared-info page (not used here)
 *   .xen_pages       nr_pages pages of page_size bytes
 *   .xen_p2m         PV: {u64 pfn, u64 gmfn}[nr_pages]
 *   .xen_pfn         auto-translated (HVM, PVH): u64 pfn[nr_pages]
 * Entry i of the frame table names page i; ~0 marks a page Xen could not
 * map (its bytes are filler).  A PV guest's page tables hold machine
 * frames, so a core with a p2m is presented in the machine address space
 * (page i at gmfn << 12), as the live Xen driver presents PV guests; an
 * auto-translated one in the guest's own (page i at pfn << 12).
 *
 * Sections are found by name, never by position; every section with bytes
 * must lie in the file, and the ones we use (with the headers) must not
 * share bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "driver/file/file_int.h"

#define XC_EHDR_SIZE 64u
#define XC_SHDR_SIZE 64u
#define XC_ET_CORE 4u
#define XC_EM_386 3u
#define XC_EM_X86_64 62u
#define XC_SHT_PROGBITS 1u
#define XC_SHT_STRTAB 3u
#define XC_SHT_NOTE 7u
#define XC_SHT_NOBITS 8u

#define XC_MAGIC_PV 0xF00FEBEDull
#define XC_MAGIC_HVM 0xF00FEBEEull
#define XC_NOTE_HEADER 0x2000001u         /* XEN_ELFNOTE_DUMPCORE_HEADER */
#define XC_NOTE_FORMAT_VERSION 0x2000003u /* ..._FORMAT_VERSION */
#define XC_HEADER_SIZE 32u
#define XC_PAGE_SIZE 4096u
#define XC_INVALID UINT64_MAX
/* x86 has at most 52-bit physical addresses: larger frames are garbage. */
#define XC_MAX_FRAME (1ull << 40)
/* PV EFER as the live driver gives it: SCE | LME | LMA | NXE (a 64-bit PV
 * guest always runs in long mode; its context holds no EFER). */
#define XC_PV64_EFER 0xd01ull

/* ---- Detection ---------------------------------------------------------- */

bool file_xencore_probe(const uint8_t *data, size_t size)
{
    /* ELF64, little-endian, ET_CORE, no program headers, some sections */
    return size >= XC_EHDR_SIZE && data[4] == 2 && data[5] == 1 &&
           tv_le16(data + 16) == XC_ET_CORE && tv_le16(data + 56) == 0 &&
           tv_le16(data + 60) != 0;
}

/* ---- Sections ----------------------------------------------------------- */

enum xc_sec { XC_NOTES, XC_PRSTATUS, XC_SHARED, XC_PAGES, XC_P2M, XC_PFN,
              XC_STRTAB, XC_NSEC };

static const struct xc_sec_info {
    const char *name;
    uint32_t type;
} sec_info[XC_NSEC] = {
    [XC_NOTES] = {".note.Xen", XC_SHT_NOTE},
    [XC_PRSTATUS] = {".xen_prstatus", XC_SHT_PROGBITS},
    [XC_SHARED] = {".xen_shared_info", XC_SHT_PROGBITS},
    [XC_PAGES] = {".xen_pages", XC_SHT_PROGBITS},
    [XC_P2M] = {".xen_p2m", XC_SHT_PROGBITS},
    [XC_PFN] = {".xen_pfn", XC_SHT_PROGBITS},
    [XC_STRTAB] = {".shstrtab", XC_SHT_STRTAB},
};

typedef struct xc_span {
    uint64_t off, size;
    unsigned index; /* section number; 0: absent */
} xc_span_t;

typedef struct xc_core {
    uint16_t machine;
    uint64_t shoff;
    unsigned shnum, shstrndx;
    xc_span_t sec[XC_NSEC];
    bool have_header;
    uint64_t magic, nr_vcpus, nr_pages, page_size;
} xc_core_t;

static int xc_header(tv_file_t *f, xc_core_t *c)
{
    const uint8_t *h = f->data; /* the probe saw 64 bytes */
    uint32_t version = tv_le32(h + 20);
    uint16_t shentsize = tv_le16(h + 58);
    c->machine = tv_le16(h + 18);
    c->shoff = tv_le64(h + 40);
    c->shnum = tv_le16(h + 60);
    c->shstrndx = tv_le16(h + 62);
    if (h[6] != 1 || version != 1)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: bad ELF version "
                       "%u/%u (want 1)", h[6], version);
    if (c->machine == XC_EM_386)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "Xen core: e_machine 3: "
                       "cores of 32-bit PV guests are not supported yet");
    if (c->machine != XC_EM_X86_64)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "Xen core: e_machine %u: "
                       "only x86_64 (62) cores are supported", c->machine);
    if (shentsize != XC_SHDR_SIZE)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: e_shentsize %u, "
                       "ELF64 needs %u", shentsize, XC_SHDR_SIZE);
    if (c->shstrndx == 0 || c->shstrndx >= c->shnum)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: section name "
                       "table index %u is not one of the %u sections",
                       c->shstrndx, c->shnum);
    if (!file_span_ok(f, c->shoff, (uint64_t)c->shnum * XC_SHDR_SIZE))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "Xen core: %u section "
                       "headers at 0x%llx extend past end of file (size "
                       "0x%zx)", c->shnum, (unsigned long long)c->shoff,
                       f->size);
    return TINYVMI_OK;
}

/* One section header, the fields we use. */
typedef struct xc_shdr {
    uint32_t name, type;
    uint64_t off, size;
} xc_shdr_t;

static xc_shdr_t xc_shdr(const tv_file_t *f, const xc_core_t *c, unsigned i)
{
    const uint8_t *p = f->data + c->shoff + (uint64_t)i * XC_SHDR_SIZE;
    return (xc_shdr_t){tv_le32(p), tv_le32(p + 4), tv_le64(p + 24),
                       tv_le64(p + 32)};
}

/* Checks that section i (not SHT_NOBITS) lies in the file; k names it
 * (XC_NSEC: a section we do not use). */
static int xc_in_file(tv_file_t *f, unsigned i, unsigned k,
                      const xc_shdr_t *s)
{
    if (s->type == XC_SHT_NOBITS || file_span_ok(f, s->off, s->size))
        return TINYVMI_OK;
    return tv_fail(f->vmi, TINYVMI_ETRUNC, "Xen core: section %u (%s) "
                   "[0x%llx, +0x%llx) extends past end of file (size 0x%zx; "
                   "truncated?)", i, k < XC_NSEC ? sec_info[k].name : "?",
                   (unsigned long long)s->off, (unsigned long long)s->size,
                   f->size);
}

/* The known section named at strtab offset name, or XC_NSEC. */
static int xc_sec_of(tv_file_t *f, const xc_span_t *strtab, unsigned i,
                     uint32_t name, unsigned *which)
{
    const char *s = (const char *)f->data + strtab->off;
    if (name >= strtab->size || !memchr(s + name, '\0', strtab->size - name))
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: section %u: name "
                       "at 0x%x is not a string in the 0x%llx-byte name "
                       "table", i, name, (unsigned long long)strtab->size);
    *which = XC_NSEC;
    for (unsigned k = 0; k < XC_NSEC; k++)
        if (strcmp(s + name, sec_info[k].name) == 0)
            *which = k;
    return TINYVMI_OK;
}

static int xc_take(tv_file_t *f, xc_core_t *c, unsigned i, unsigned k,
                   const xc_shdr_t *s)
{
    const struct xc_sec_info *in = &sec_info[k];
    if (c->sec[k].index && c->sec[k].index != i)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: two %s sections "
                       "(%u and %u)", in->name, c->sec[k].index, i);
    if (s->type != in->type)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: section %u (%s) "
                       "has type %u, want %u", i, in->name, s->type,
                       in->type);
    c->sec[k] = (xc_span_t){s->off, s->size, i};
    return TINYVMI_OK;
}

/* Finds the sections by name and checks every one against the file. */
static int xc_sections(tv_file_t *f, xc_core_t *c)
{
    xc_shdr_t st = xc_shdr(f, c, c->shstrndx);
    int rc = xc_take(f, c, c->shstrndx, XC_STRTAB, &st);
    if (!rc)
        rc = xc_in_file(f, c->shstrndx, XC_STRTAB, &st);
    for (unsigned i = 1; !rc && i < c->shnum; i++) {
        xc_shdr_t s = xc_shdr(f, c, i);
        unsigned k = XC_NSEC;
        rc = xc_sec_of(f, &c->sec[XC_STRTAB], i, s.name, &k);
        if (!rc && k < XC_NSEC)
            rc = xc_take(f, c, i, k, &s);
        if (!rc)
            rc = xc_in_file(f, i, k, &s);
    }
    static const unsigned need[] = {XC_NOTES, XC_PRSTATUS, XC_PAGES};
    for (size_t n = 0; !rc && n < TV_ARRAY_LEN(need); n++)
        if (!c->sec[need[n]].index)
            rc = tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: no %s section",
                         sec_info[need[n]].name);
    return rc;
}

/* Regions that must not share bytes: headers and the sections we use. */
static size_t xc_regions(const xc_core_t *c, xc_span_t *r, const char **name)
{
    size_t n = 0;
    r[n] = (xc_span_t){0, XC_EHDR_SIZE, 0};
    name[n++] = "the ELF header";
    r[n] = (xc_span_t){c->shoff, (uint64_t)c->shnum * XC_SHDR_SIZE, 0};
    name[n++] = "the section headers";
    for (unsigned k = 0; k < XC_NSEC; k++) {
        if (c->sec[k].index && c->sec[k].size) {
            r[n] = c->sec[k];
            name[n++] = sec_info[k].name;
        }
    }
    return n;
}

static int xc_overlaps(tv_file_t *f, const xc_core_t *c)
{
    xc_span_t r[XC_NSEC + 2];
    const char *name[XC_NSEC + 2];
    size_t n = xc_regions(c, r, name);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            /* both lie in the file: the ends cannot wrap */
            if (r[i].off < r[j].off + r[j].size &&
                r[j].off < r[i].off + r[i].size)
                return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: %s "
                               "[0x%llx, +0x%llx) and %s [0x%llx, +0x%llx) "
                               "overlap", name[i],
                               (unsigned long long)r[i].off,
                               (unsigned long long)r[i].size, name[j],
                               (unsigned long long)r[j].off,
                               (unsigned long long)r[j].size);
        }
    return TINYVMI_OK;
}

/* ---- Notes -------------------------------------------------------------- */

static uint64_t xc_align4(uint32_t n)
{
    return ((uint64_t)n + 3) & ~(uint64_t)3;
}

static bool xc_owner_is_xen(const uint8_t *name, uint32_t namesz)
{
    return (namesz == 4 && memcmp(name, "Xen", 4) == 0) ||
           (namesz == 3 && memcmp(name, "Xen", 3) == 0);
}

/* One "Xen" note: the header and the format version are checked, the
 * others (none, Xen's version) are not needed. */
static int xc_note(tv_file_t *f, xc_core_t *c, uint64_t at, uint32_t type,
                   const uint8_t *desc, uint32_t descsz)
{
    unsigned long long a = at;
    if (type == XC_NOTE_HEADER) {
        if (descsz != XC_HEADER_SIZE)
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: header note "
                           "at .note.Xen+0x%llx has %u bytes, want %u", a,
                           descsz, XC_HEADER_SIZE);
        if (c->have_header)
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: a second "
                           "header note at .note.Xen+0x%llx", a);
        c->have_header = true;
        c->magic = tv_le64(desc);
        c->nr_vcpus = tv_le64(desc + 8);
        c->nr_pages = tv_le64(desc + 16);
        c->page_size = tv_le64(desc + 24);
    } else if (type == XC_NOTE_FORMAT_VERSION) {
        if (descsz != 8)
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: format "
                           "version note at .note.Xen+0x%llx has %u bytes, "
                           "want 8", a, descsz);
        uint64_t v = tv_le64(desc);
        if (v >> 32 != 0) /* major 0 is the only one defined */
            return tv_fail(f->vmi, TINYVMI_ENOTSUP, "Xen core: format "
                           "version %llu.%llu (only major version 0 is "
                           "known)", (unsigned long long)(v >> 32),
                           (unsigned long long)(v & 0xffffffffu));
    }
    return TINYVMI_OK;
}

/* Walks .note.Xen strictly; the last descriptor may lack its padding. */
static int xc_notes(tv_file_t *f, xc_core_t *c)
{
    const xc_span_t *s = &c->sec[XC_NOTES];
    uint64_t pos = 0;
    int rc = TINYVMI_OK;
    while (!rc && pos < s->size) { /* each note moves pos by >= 12 */
        uint64_t left = s->size - pos;
        const uint8_t *h = f->data + s->off + pos;
        if (left < 12)
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: %llu stray "
                           "bytes at .note.Xen+0x%llx",
                           (unsigned long long)left, (unsigned long long)pos);
        uint32_t namesz = tv_le32(h), descsz = tv_le32(h + 4);
        uint64_t name_al = xc_align4(namesz);
        if (name_al > left - 12 || descsz > left - 12 - name_al)
            return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: note at "
                           ".note.Xen+0x%llx: namesz 0x%x and descsz 0x%x "
                           "exceed the 0x%llx bytes left in the section",
                           (unsigned long long)pos, namesz, descsz,
                           (unsigned long long)(left - 12));
        if (xc_owner_is_xen(h + 12, namesz))
            rc = xc_note(f, c, pos, tv_le32(h + 8), h + 12 + name_al,
                         descsz);
        uint64_t step = 12 + name_al + xc_align4(descsz);
        pos += step < left ? step : left;
    }
    if (!rc && !c->have_header)
        rc = tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: .note.Xen has no "
                     "dump-core header note (type 0x%x)", XC_NOTE_HEADER);
    return rc;
}

/* ---- The header's counts against the sections --------------------------- */

static int xc_bad_size(tv_file_t *f, unsigned k, uint64_t have,
                       uint64_t count, const char *what)
{
    return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: %s has %llu bytes "
                   "for %llu %s", sec_info[k].name,
                   (unsigned long long)have, (unsigned long long)count,
                   what);
}

static bool xc_pv(const xc_core_t *c)
{
    return c->magic == XC_MAGIC_PV;
}

static int xc_check(tv_file_t *f, const xc_core_t *c)
{
    const xc_span_t *sec = c->sec;
    if (c->magic != XC_MAGIC_PV && c->magic != XC_MAGIC_HVM)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: header magic "
                       "0x%llx is neither 0xf00febed (PV) nor 0xf00febee "
                       "(HVM)", (unsigned long long)c->magic);
    if (c->page_size != XC_PAGE_SIZE)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "Xen core: page size %llu "
                       "(x86 cores have %u)",
                       (unsigned long long)c->page_size, XC_PAGE_SIZE);
    if (c->nr_vcpus > FILE_MAX_VCPUS)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "Xen core: %llu vCPUs, more "
                       "than %u", (unsigned long long)c->nr_vcpus,
                       FILE_MAX_VCPUS);
    if (sec[XC_PRSTATUS].size != c->nr_vcpus * XEN_CTX_SIZE)
        return xc_bad_size(f, XC_PRSTATUS, sec[XC_PRSTATUS].size, c->nr_vcpus,
                          "vCPUs of 5168 bytes");
    /* .xen_pages lies in the file: nr_pages is bounded before multiplying */
    if (c->nr_pages > sec[XC_PAGES].size / XC_PAGE_SIZE ||
        sec[XC_PAGES].size != c->nr_pages * XC_PAGE_SIZE)
        return xc_bad_size(f, XC_PAGES, sec[XC_PAGES].size, c->nr_pages,
                          "pages of 4096 bytes");
    if (sec[XC_P2M].index && sec[XC_PFN].index)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: both .xen_p2m "
                       "and .xen_pfn: which frame is each page?");
    if (!sec[XC_P2M].index && !sec[XC_PFN].index)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: neither .xen_p2m "
                       "nor .xen_pfn: which frame is each page?");
    if (sec[XC_P2M].index && !xc_pv(c))
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: an HVM core "
                       "(magic 0xf00febee) with a .xen_p2m section");
    bool p2m = sec[XC_P2M].index != 0;
    unsigned k = p2m ? XC_P2M : XC_PFN;
    if (sec[k].size != c->nr_pages * (p2m ? 16 : 8))
        return xc_bad_size(f, k, sec[k].size, c->nr_pages, "pages");
    return TINYVMI_OK;
}

/* ---- Ranges ------------------------------------------------------------- */

typedef struct xc_run {
    uint64_t first; /* frame of the run's first page */
    uint64_t page;  /* its index in .xen_pages */
    uint64_t n;     /* pages, 0: no run open */
} xc_run_t;

static int xc_run_end(tv_file_t *f, const xc_core_t *c, xc_run_t *r)
{
    if (!r->n)
        return TINYVMI_OK;
    int rc = file_range_add(f, "Xen core", r->first * XC_PAGE_SIZE,
                            r->n * XC_PAGE_SIZE,
                            c->sec[XC_PAGES].off + r->page * XC_PAGE_SIZE);
    r->n = 0;
    return rc;
}

/* Frame of page i, or XC_INVALID; fails on frames beyond x86's reach. */
static int xc_frame(tv_file_t *f, const xc_core_t *c, uint64_t i,
                    uint64_t *frame)
{
    bool p2m = c->sec[XC_P2M].index != 0;
    const xc_span_t *t = &c->sec[p2m ? XC_P2M : XC_PFN];
    const uint8_t *e = f->data + t->off + i * (p2m ? 16 : 8);
    uint64_t pfn = tv_le64(e);
    *frame = p2m ? tv_le64(e + 8) : pfn;
    if (pfn == XC_INVALID) /* the p2m marks both fields */
        *frame = XC_INVALID;
    if (*frame == XC_INVALID || *frame < XC_MAX_FRAME)
        return TINYVMI_OK;
    return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: %s entry %llu: frame "
                   "0x%llx is beyond 52-bit physical addresses",
                   p2m ? ".xen_p2m" : ".xen_pfn", (unsigned long long)i,
                   (unsigned long long)*frame);
}

/* Pages consecutive in both the file and the frame numbers form a run. */
static int xc_runs(tv_file_t *f, const xc_core_t *c)
{
    xc_run_t run = {0, 0, 0};
    int rc = TINYVMI_OK;
    for (uint64_t i = 0; !rc && i < c->nr_pages; i++) {
        uint64_t fr;
        if ((rc = xc_frame(f, c, i, &fr)) != 0)
            break;
        if (run.n && fr == run.first + run.n) {
            run.n++;
            continue;
        }
        rc = xc_run_end(f, c, &run);
        if (fr != XC_INVALID)
            run = (xc_run_t){fr, i, 1};
    }
    return rc ? rc : xc_run_end(f, c, &run);
}

static int xc_range_cmp(const void *a, const void *b)
{
    const tv_range_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Two pages for one frame: name them (file_ranges_finish would only say
 * that two ranges overlap). */
static int xc_duplicates(tv_file_t *f, const xc_core_t *c)
{
    if (f->nranges > 1)
        qsort(f->ranges, f->nranges, sizeof f->ranges[0], xc_range_cmp);
    for (size_t i = 1; i < f->nranges; i++) {
        const tv_range_t *a = &f->ranges[i - 1], *b = &f->ranges[i];
        if (b->start - a->start >= a->size)
            continue;
        uint64_t base = c->sec[XC_PAGES].off;
        uint64_t pb = (b->offset - base) / XC_PAGE_SIZE;
        uint64_t pa = (a->offset - base + b->start - a->start) / XC_PAGE_SIZE;
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "Xen core: frame 0x%llx is "
                       "in the file twice (pages %llu and %llu)",
                       (unsigned long long)(b->start / XC_PAGE_SIZE),
                       (unsigned long long)(pa < pb ? pa : pb),
                       (unsigned long long)(pa < pb ? pb : pa));
    }
    return file_ranges_finish(f, "Xen core");
}

/* ---- vCPUs -------------------------------------------------------------- */

static unsigned xc_vcpu_count(void *ctx)
{
    return file_elf_vcpu_ops.count(ctx);
}

static int xc_get_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value)
{
    tv_file_t *f = ctx;
    if (reg != MSR_EFER || vcpu >= f->nvcpus)
        return file_elf_vcpu_ops.get_reg(ctx, vcpu, reg, value);
    if (f->mach == &file_xen_x86_64_pv) {
        *value = XC_PV64_EFER;
        return TINYVMI_OK;
    }
    return tv_fail(f->vmi, TINYVMI_ENOTSUP, "Xen core: EFER is not in an "
                   "HVM vCPU's context (vCPU %u)", vcpu);
}

static const tv_vcpu_ops_t xc_vcpu_ops = {xc_vcpu_count, xc_get_reg, NULL,
                                          NULL};

static int xc_vcpus(tv_file_t *f, const xc_core_t *c)
{
    f->mach = xc_pv(c) ? &file_xen_x86_64_pv : &file_xen_x86_64_hvm;
    if (c->nr_vcpus == 0)
        return TINYVMI_OK;
    unsigned n = (unsigned)c->nr_vcpus; /* <= FILE_MAX_VCPUS */
    f->vcpus = calloc(n, sizeof *f->vcpus);
    if (!f->vcpus)
        return tv_fail(f->vmi, TINYVMI_ENOMEM, "Xen core: out of memory for "
                       "%u vCPUs", n);
    f->nvcpus = n;
    const uint8_t *ctx = f->data + c->sec[XC_PRSTATUS].off;
    for (unsigned i = 0; i < n; i++) {
        f->vcpus[i].desc[0] = ctx + (size_t)i * XEN_CTX_SIZE;
        f->vcpus[i].len[0] = XEN_CTX_SIZE;
    }
    f->vcpu_ops = &xc_vcpu_ops;
    return TINYVMI_OK;
}

/* ---- Parsing ------------------------------------------------------------ */

int file_xencore_parse(tv_file_t *f)
{
    xc_core_t c = {0};
    int rc = xc_header(f, &c);
    if (!rc)
        rc = xc_sections(f, &c);
    if (!rc)
        rc = xc_overlaps(f, &c);
    if (!rc)
        rc = xc_notes(f, &c);
    if (!rc)
        rc = xc_check(f, &c);
    if (!rc)
        rc = xc_runs(f, &c);
    if (!rc)
        rc = xc_duplicates(f, &c);
    if (!rc)
        rc = xc_vcpus(f, &c);
    if (rc)
        return rc;
    f->arch = VMI_ARCH_X86_64;
    f->name = !xc_pv(&c)               ? "xen-core (HVM)"
              : c.sec[XC_P2M].index ? "xen-core (PV, machine frames)"
                                    : "xen-core (PV, auto-translated)";
    return TINYVMI_OK;
}
