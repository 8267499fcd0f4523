/*
 * Finding a Linux kernel in memory: its text base, the KASLR slide of its
 * symbols, its own page tables, and (with no profile) its BTF and kallsyms.
 *
 * Two ways in.  With page tables (a vCPU's CR3), the kernel's text is the
 * first mapped 2 MiB of the kernel text mapping, and its read-only data is
 * where the non-executable, read-only pages of the image are.  Without them
 * (a raw dump), "Linux version " strings in physical memory are candidates
 * for linux_banner: the image is physically contiguous, so each implies a
 * physical _text and a physical init_top_pgt, and the one whose page
 * tables map the kernel text mapping onto that _text is the kernel.
 */
#include "os/linux/linux.h"
#include "profile/btf.h"
#include "profile/kallsyms.h"
#include "profile/reader.h"

#define MIB (1ULL << 20)
#define PAGE 4096ULL
#define BANNER "Linux version "
#define MAX_BTF (256 * MIB)

/* x86 leaf entry bits. */
#define PTE_RW (1ULL << 1)
#define PTE_NX (1ULL << 63)

static const char *const top_table_names[] = {
    "init_top_pgt", "init_level4_pgt", "swapper_pg_dir", NULL,
};

typedef struct region {
    uint64_t start, end;
} region_t;

#define MAX_REGIONS 32

typedef struct kfind {
    const tv_pt_format_t *fmt;
    uint64_t dtb;
    uint64_t text_va, text_pa;
    region_t ro[MAX_REGIONS]; /* read-only, non-executable parts */
    unsigned nro;
    region_t all[MAX_REGIONS]; /* every mapped part of the image */
    unsigned nall;
    uint64_t text_sym; /* the table's address of what text_va maps
                          (0: _text's) */
} kfind_t;

/* ---- readers for the profile decoders ---------------------------------- */

typedef struct vread {
    struct vmi_instance *vmi;
    const tv_pt_format_t *fmt;
    uint64_t dtb;
} vread_t;

static int read_kva(void *ctx, uint64_t addr, void *buf, size_t len)
{
    vread_t *r = ctx;
    return tv_read_va(r->vmi, r->fmt, r->dtb, addr, buf, len, NULL);
}

static int read_pa(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return tv_read_pa(ctx, addr, buf, len, NULL);
}

/* A BTF blob in place: the kernel image is physically contiguous, so a
 * blob inside it usually is; each page is checked.  NULL: copy it. */
static const void *map_blob(struct vmi_instance *vmi, const tv_reader_t *rd,
                            uint64_t at, uint64_t len)
{
    uint64_t pa0, pa;
    if (rd->read == read_pa)
        return tv_map_pa(vmi, at, (size_t)len);
    const vread_t *vr = rd->ctx;
    if (tv_translate(vmi, vr->fmt, vr->dtb, at, &pa0, NULL))
        return NULL;
    for (uint64_t off = PAGE - (at & (PAGE - 1)); off < len; off += PAGE)
        if (tv_translate(vmi, vr->fmt, vr->dtb, at + off, &pa, NULL) ||
            pa != pa0 + off)
            return NULL;
    return tv_map_pa(vmi, pa0, (size_t)len);
}

static tv_pctx_t pctx(struct vmi_instance *vmi, char *err, size_t errlen)
{
    err[0] = '\0';
    return (tv_pctx_t){.hooks = &vmi->hooks, .err = err, .errlen = errlen};
}

/* ---- the kernel text mapping ----------------------------------------------- */

/* Walks va; on success *leaf is the final entry and *size its page size;
 * on failure *skip is how far the missing entry's reach extends. */
static bool probe(struct vmi_instance *vmi, const tv_pt_format_t *fmt,
                  uint64_t dtb, uint64_t va, uint64_t *pa, uint64_t *leaf,
                  uint64_t *size, uint64_t *skip)
{
    tv_walk_t w;
    if (!tv_pt_walk(vmi, fmt, dtb, va, &w)) {
        *pa = w.pa;
        *leaf = w.entry[w.nentries - 1].value;
        *size = w.page_size;
        return true;
    }
    unsigned lvl = w.nentries ? w.nentries - 1 : 0;
    *skip = 1ULL << fmt->level[lvl].shift;
    return false;
}

static void add_region(region_t *r, unsigned *n, uint64_t s, uint64_t e)
{
    if (*n && r[*n - 1].end == s) {
        r[*n - 1].end = e;
        return;
    }
    if (*n < MAX_REGIONS)
        r[(*n)++] = (region_t){s, e};
}

/* The kernel text mapping as dtb maps it: _text is its first mapped page
 * (everything below _text is unmapped at boot); records the image's mapped
 * regions up to the module area. */
static bool map_kernel(struct vmi_instance *vmi, kfind_t *k)
{
    uint64_t va = LX_X64_KMAP_START, pa, leaf, size, skip;
    bool found = false;
    k->nro = k->nall = 0;
    while (va < LX_X64_KMAP_END) {
        if (!probe(vmi, k->fmt, k->dtb, va, &pa, &leaf, &size, &skip)) {
            if (found && k->nall >= MAX_REGIONS)
                break;
            va = (va & ~(skip - 1)) + skip;
            continue;
        }
        uint64_t base = va & ~(size - 1);
        if (!found) {
            found = true;
            k->text_va = va;
            k->text_pa = pa;
        }
        add_region(k->all, &k->nall, base, base + size);
        if (!(leaf & PTE_RW) && (leaf & PTE_NX))
            add_region(k->ro, &k->nro, base, base + size);
        va = base + size;
    }
    return found;
}

/* ---- the table ----------------------------------------------------------------- */

static bool sym(struct vmi_instance *vmi, const char *name, uint64_t *addr)
{
    return tv_symtab_symbol(vmi->symtab, name, addr);
}

static int top_table(struct vmi_instance *vmi, uint64_t *addr)
{
    for (unsigned i = 0; top_table_names[i]; i++)
        if (sym(vmi, top_table_names[i], addr))
            return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_ENOENT,
                   "the symbol table has no kernel page-table root "
                   "(init_top_pgt, init_level4_pgt or swapper_pg_dir)");
}

/* Loads the BTF blob at [at, at + len) into t: in place when the dump is
 * mapped, else from a copy. */
static int load_btf_at(struct vmi_instance *vmi, const tv_pctx_t *c,
                       const tv_reader_t *rd, uint64_t at, uint64_t len,
                       tv_symtab_t *t)
{
    if (len > MAX_BTF)
        return TINYVMI_ERANGE;
    const uint8_t *in = map_blob(vmi, rd, at, len);
    if (in)
        return tv_btf_load(c, in, (size_t)len, t);
    uint8_t *blob = tv_alloc(vmi, (size_t)len);
    if (!blob)
        return tv_pfail(c, TINYVMI_ENOMEM, "BTF of %llu bytes: cannot "
                        "allocate", (unsigned long long)len);
    int rc = rd->read(rd->ctx, at, blob, (size_t)len);
    if (!rc)
        rc = tv_btf_load(c, blob, (size_t)len, t);
    tv_free(vmi, blob, (size_t)len);
    return rc;
}

/* The first BTF header in the regions that loads: physical memory also
 * holds modules' split BTF and stray copies, which do not load alone. */
static int load_btf(struct vmi_instance *vmi, const tv_pctx_t *c,
                    const tv_reader_t *rd, const region_t *reg,
                    unsigned nreg, tv_symtab_t *t)
{
    int rc = TINYVMI_ENOENT;
    for (unsigned i = 0; i < nreg && rc; i++) {
        uint64_t from = reg[i].start, at, len;
        for (unsigned tries = 0; rc && from < reg[i].end && tries < 64;
             tries++) {
            if ((rc = tv_btf_find(c, rd, from, reg[i].end, &at, &len)))
                break;
            from = at + 4;
            if ((rc = load_btf_at(vmi, c, rd, at, len, t)))
                tv_log(vmi, 2, "linux: BTF candidate at 0x%llx: %s",
                       (unsigned long long)at, c->err);
        }
    }
    return rc;
}

/* Searches regions for the kernel's kallsyms and BTF and loads them into a
 * new table (profile-less start). */
static int table_from_memory(struct vmi_instance *vmi, const tv_reader_t *rd,
                             const region_t *reg, unsigned nreg)
{
    char err[256];
    tv_pctx_t c = pctx(vmi, err, sizeof err);
    tv_symtab_t *t = NULL;
    tv_kallsyms_t ks;
    int rc = tv_symtab_new(&c, &t);
    if (rc)
        return tv_fail(vmi, rc, "symbol table: %s", err);

    if ((rc = load_btf(vmi, &c, rd, reg, nreg, t))) {
        rc = tv_fail(vmi, rc, "no usable BTF found in the kernel's read-only "
                     "data (%s); give a profile (ISF or Rekall)",
                     err[0] ? err : "no BTF header");
        goto out;
    }

    rc = TINYVMI_ENOENT;
    for (unsigned i = 0; i < nreg && rc; i++)
        rc = tv_kallsyms_find(&c, rd, reg[i].start, reg[i].end, &ks);
    if (!rc)
        rc = tv_kallsyms_load(&c, rd, &ks, t);
    if (rc) {
        rc = tv_fail(vmi, rc, "kallsyms: %s", err);
        goto out;
    }
    tv_symtab_set_meta(t, "source", "btf+kallsyms", 12);
    rc = tv_symtab_finish(t);
    if (rc) {
        rc = tv_fail(vmi, rc, "symbol table: %s", err);
        goto out;
    }
    vmi->symtab = t;
    t = NULL;
out:
    tv_symtab_free(t);
    return rc;
}

/* ---- the way in with page tables -------------------------------------------- */

static int find_by_paging(struct vmi_instance *vmi, kfind_t *k)
{
    k->fmt = vmi->pt;
    k->dtb = vmi->kdtb;
    if (!k->fmt || (k->fmt->mode != VMI_PM_IA32E &&
                    k->fmt->mode != VMI_PM_LA57))
        return tv_fail(vmi, TINYVMI_ENOTSUP,
                       "the Linux layer needs x86-64 paging (IA-32e or "
                       "LA57), not %s",
                       k->fmt ? k->fmt->name : "none");
    tv_quiet(vmi, true);
    bool mapped = map_kernel(vmi, k);
    tv_quiet(vmi, false);
    if (!mapped)
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "nothing is mapped in the kernel text mapping "
                       "0x%llx-0x%llx under DTB 0x%llx",
                       LX_X64_KMAP_START, LX_X64_KMAP_END,
                       (unsigned long long)k->dtb);
    if (vmi->symtab)
        return TINYVMI_OK;
    vread_t vr = {vmi, k->fmt, k->dtb};
    tv_reader_t rd = {read_kva, &vr};
    if (k->nro)
        return table_from_memory(vmi, &rd, k->ro, k->nro);
    return table_from_memory(vmi, &rd, k->all, k->nall);
}

/* ---- the way in without page tables ---------------------------------------------- */

/* Paging formats a Linux kernel of this target may use, likeliest first:
 * by the target's architecture when it says, else by the width of the
 * table's own addresses (a 32-bit kernel has none above 4 GiB). */
#define MAX_FORMATS 16

static unsigned candidate_formats(const struct vmi_instance *vmi,
                                  uint64_t text, const tv_pt_format_t **out)
{
    static const tv_pt_arm_t a64[] = {
        TV_PT_A64_4K_48, TV_PT_A64_4K_39, TV_PT_A64_64K_48,
        TV_PT_A64_64K_42, TV_PT_A64_16K_47, TV_PT_A64_16K_48,
        TV_PT_A64_4K_52, TV_PT_A64_16K_52, TV_PT_A64_64K_52,
    };
    static const tv_pt_arm_t a32[] = {TV_PT_A32_SHORT, TV_PT_A32_LPAE};
    vmi_arch_t arch = vmi->drv.arch;
    bool wide = text >> 32 != 0;
    unsigned n = 0;
    if (arch == VMI_ARCH_X86_64 || (arch == VMI_ARCH_UNKNOWN && wide)) {
        out[n++] = tv_pt_format(VMI_PM_LA57);
        out[n++] = tv_pt_format(VMI_PM_IA32E);
    }
    if (arch == VMI_ARCH_ARM64 || (arch == VMI_ARCH_UNKNOWN && wide))
        for (unsigned i = 0; i < TV_ARRAY_LEN(a64); i++)
            out[n++] = tv_pt_arm_format(a64[i]);
    /* QEMU writes i386 guests' dumps in ELF64 containers with the i386
     * machine, so the architecture, not the container, decides. */
    if (arch == VMI_ARCH_X86 || (arch == VMI_ARCH_UNKNOWN && !wide)) {
        out[n++] = tv_pt_format(VMI_PM_PAE);
        out[n++] = tv_pt_format(VMI_PM_LEGACY);
    }
    if (arch == VMI_ARCH_ARM32 || (arch == VMI_ARCH_UNKNOWN && !wide))
        for (unsigned i = 0; i < TV_ARRAY_LEN(a32); i++)
            out[n++] = tv_pt_arm_format(a32[i]);
    return n;
}

typedef struct banner_scan {
    uint64_t off_banner; /* linux_banner - _text */
    int64_t off_top;     /* top table - _text (ARM's lies below _text) */
    uint64_t text;       /* table's _text */
    const tv_pt_format_t *fmts[MAX_FORMATS];
    unsigned nfmts;
    kfind_t *k;
} banner_scan_t;

/* The mapping of physical _text that stands for the table's _text: of the
 * virtual addresses mapping it (the kernel's own mapping, the linear map's
 * alias), the one nearest the table's address. */
typedef struct near {
    uint64_t want, best;
    bool found;
} near_t;

static uint64_t dist(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

static int near_cb(void *arg, uint64_t va, uint64_t page_size)
{
    near_t *n = arg;
    (void)page_size;
    if (!n->found || dist(va, n->want) < dist(n->best, n->want)) {
        n->best = va;
        n->found = true;
    }
    return 0;
}

static bool translates_to(struct vmi_instance *vmi, const tv_pt_format_t *f,
                          uint64_t dtb, uint64_t va, uint64_t pa)
{
    uint64_t got;
    return !tv_translate(vmi, f, dtb, va, &got, NULL) && got == pa;
}

/* Any paging format but x86-64's: the page-table root the table implies
 * must map (the table's _text, or failing that some address) onto
 * physical _text, and the same slide must put linux_banner on banner_pa. */
static bool try_mapped(struct vmi_instance *vmi, banner_scan_t *b,
                       const tv_pt_format_t *f, uint64_t text_pa,
                       uint64_t banner_pa)
{
    uint64_t dtb = text_pa + (uint64_t)b->off_top;
    if ((dtb & f->root_mask) != dtb || !tv_range_find(vmi, dtb))
        return false;
    uint64_t text_va = b->text;
    if (!translates_to(vmi, f, dtb, text_va, text_pa)) {
        near_t n = {.want = b->text};
        if (tv_pt_reverse(vmi, f, dtb, text_pa, 0, near_cb, &n) || !n.found)
            return false;
        text_va = n.best;
    }
    if (!translates_to(vmi, f, dtb, text_va + b->off_banner, banner_pa))
        return false;
    kfind_t *k = b->k;
    *k = (kfind_t){.fmt = f, .dtb = dtb, .text_va = text_va,
                   .text_pa = text_pa};
    return true;
}

static bool try_candidate(struct vmi_instance *vmi, banner_scan_t *b,
                          uint64_t banner_pa)
{
    if (banner_pa < b->off_banner)
        return false;
    uint64_t text_pa = banner_pa - b->off_banner;
    if (text_pa & (PAGE - 1))
        return false;
    for (unsigned i = 0; i < b->nfmts; i++) {
        const tv_pt_format_t *f = b->fmts[i];
        if (f->mode != VMI_PM_IA32E && f->mode != VMI_PM_LA57) {
            if (try_mapped(vmi, b, f, text_pa, banner_pa))
                return true;
            continue;
        }
        kfind_t *k = b->k;
        k->fmt = f;
        k->dtb = text_pa + (uint64_t)b->off_top;
        if (map_kernel(vmi, k) && k->text_pa == text_pa)
            return true;
    }
    return false;
}

/* Scans physical memory for "Linux version " and tries each hit. */
static int find_by_banner(struct vmi_instance *vmi, kfind_t *k)
{
    uint64_t text, banner, top;
    if (!sym(vmi, "_text", &text) || !sym(vmi, "linux_banner", &banner) ||
        banner < text)
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "the symbol table lacks _text or linux_banner");
    int rc = top_table(vmi, &top);
    if (rc)
        return rc;
    if (dist(top, text) > 1ULL << 32)
        return tv_fail(vmi, TINYVMI_EFORMAT,
                       "the page-table root lies 4 GiB or more from _text");
    banner_scan_t b = {.off_banner = banner - text,
                       .off_top = (int64_t)(top - text), .text = text,
                       .k = k};
    b.nfmts = candidate_formats(vmi, text, b.fmts);

    enum { CHUNK = 1 << 20, OVER = sizeof(BANNER) - 1 };
    uint8_t *buf = tv_alloc(vmi, CHUNK + OVER);
    if (!buf)
        return tv_fail(vmi, TINYVMI_ENOMEM, "no memory for a scan buffer");
    unsigned tried = 0;
    tv_quiet(vmi, true);
    for (size_t r = 0; r < vmi->drv.nranges; r++) {
        const tv_range_t *rg = &vmi->drv.ranges[r];
        for (uint64_t off = 0; off < rg->size; off += CHUNK) {
            size_t n = (size_t)(rg->size - off < CHUNK + OVER
                                    ? rg->size - off
                                    : CHUNK + OVER);
            if (tv_read_pa(vmi, rg->start + off, buf, n, NULL))
                continue;
            for (size_t i = 0; i + OVER <= n && i < CHUNK; i++) {
                if (buf[i] != 'L' || tv_memcmp(buf + i, BANNER, OVER))
                    continue;
                tried++;
                if (try_candidate(vmi, &b, rg->start + off + i)) {
                    tv_quiet(vmi, false);
                    tv_free(vmi, buf, CHUNK + OVER);
                    return TINYVMI_OK;
                }
            }
        }
    }
    tv_quiet(vmi, false);
    tv_free(vmi, buf, CHUNK + OVER);
    return tv_fail(vmi, TINYVMI_ENOENT,
                   "no kernel found without registers: none of %u \"%s\" "
                   "strings in physical memory sits where the symbol "
                   "table puts linux_banner relative to page tables that "
                   "map the kernel", tried, BANNER);
}

/* ---- the way in by the kernel's own page tables ---------------------------------------- */

/* arm64 kernels whose kallsyms has text symbols only: no linux_banner, no
 * swapper_pg_dir, not even _text (and the Image header at _text is gone:
 * arm64 gives [_text, _stext) back to the page allocator).  kallsyms'
 * addresses are already the live ones (its base is relocated at boot), so
 * the kernel's root is a page of RAM that maps the table's text symbols
 * onto one physically contiguous image.  Of the pages that do (early
 * boot's tables may survive), the one with the most top-level entries
 * (the linear map, vmalloc, fixmap beside the image) is swapper_pg_dir. */
#define ROOT_MAX_CANDIDATES 4096u
#define MAX_IMAGE (512 * MIB)

/* A 4 KiB page that could be a top-level table: table or block
 * descriptors into RAM, every other entry zero.  Returns the entries. */
static unsigned table_like(struct vmi_instance *vmi, uint64_t pa)
{
    const uint8_t *p = tv_map_pa(vmi, pa, PAGE);
    uint8_t buf[PAGE];
    if (!p) {
        if (tv_read_pa(vmi, pa, buf, PAGE, NULL))
            return 0;
        p = buf;
    }
    unsigned valid = 0;
    for (unsigned i = 0; i < PAGE / 8; i++) {
        uint64_t e = tv_le64(p + i * 8);
        if (!e)
            continue;
        if ((e & 1) == 0 || !tv_range_find(vmi, e & 0x0000fffffffff000ULL))
            return 0;
        valid++;
    }
    return valid;
}

typedef struct anchors {
    uint64_t va[3]; /* text symbols: the lowest, the middle, the highest */
    unsigned n;
} anchors_t;

/* Text symbols spread over the kernel's text: between _stext and _etext
 * when the table has them (init text, listed too, is unmapped after
 * boot), else over all text symbols. */
static void pick_anchors(struct vmi_instance *vmi, anchors_t *a)
{
    uint64_t from = 0, to = UINT64_MAX, lo = UINT64_MAX, hi = 0, mid = 0;
    if (sym(vmi, "_stext", &from) && sym(vmi, "_etext", &to) && to > from)
        lo = from;
    else
        from = 0, to = UINT64_MAX;
    size_t n = tv_symtab_nsymbols(vmi->symtab);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        uint64_t addr;
        char type;
        if (!tv_symtab_symbol_at(vmi->symtab, i, &name, &addr, &type) ||
            (type != 'T' && type != 't') || addr < from || addr >= to)
            continue;
        if (addr < lo)
            lo = addr;
        if (addr > hi)
            hi = addr;
        if (!mid && i >= n / 2)
            mid = addr;
    }
    a->n = 0;
    if (hi > lo && hi - lo < MAX_IMAGE) {
        a->va[a->n++] = lo;
        if (mid > lo && mid < hi)
            a->va[a->n++] = mid;
        a->va[a->n++] = hi;
    }
}

/* root maps every anchor at one offset from its physical address. */
static bool maps_anchors(struct vmi_instance *vmi, const tv_pt_format_t *f,
                         uint64_t root, const anchors_t *a, uint64_t *pa0)
{
    if (tv_translate(vmi, f, root, a->va[0], pa0, NULL))
        return false;
    for (unsigned i = 1; i < a->n; i++)
        if (!translates_to(vmi, f, root, a->va[i],
                           *pa0 + (a->va[i] - a->va[0])))
            return false;
    return true;
}

/* How far the image mapped at text_va (physically contiguous from
 * text_pa) goes: the kernel maps [_text, _end) at one offset, with holes
 * where it unmapped its init sections; a page mapped elsewhere, or 32 MiB
 * with nothing mapped, ends it. */
#define MAX_IMAGE_HOLE (32 * MIB)

static uint64_t image_extent(struct vmi_instance *vmi, const kfind_t *k)
{
    uint64_t off = 0, end = 0, pa, leaf, size, skip;
    while (off < MAX_IMAGE && off - end < MAX_IMAGE_HOLE) {
        uint64_t va = k->text_va + off;
        if (!probe(vmi, k->fmt, k->dtb, va, &pa, &leaf, &size, &skip)) {
            off = (va & ~(skip - 1)) + skip - k->text_va;
            continue;
        }
        if (pa != k->text_pa + off)
            break;
        off = (va & ~(size - 1)) + size - k->text_va;
        end = off;
    }
    return end;
}

static int find_by_roots(struct vmi_instance *vmi, kfind_t *k)
{
    static const tv_pt_arm_t fmts[] = {TV_PT_A64_4K_48, TV_PT_A64_4K_39,
                                       TV_PT_A64_4K_52};
    anchors_t a;
    pick_anchors(vmi, &a);
    if (a.n < 2)
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "the symbol table has no linux_banner and too few "
                       "text symbols to recognise the kernel's mapping");
    unsigned best = 0, tables = 0;
    tv_quiet(vmi, true);
    for (size_t r = 0; r < vmi->drv.nranges; r++) {
        const tv_range_t *rg = &vmi->drv.ranges[r];
        for (uint64_t off = 0; off + PAGE <= rg->size &&
                               tables < ROOT_MAX_CANDIDATES;
             off += PAGE) {
            uint64_t root = rg->start + off, pa0;
            unsigned entries = table_like(vmi, root);
            if (entries <= best)
                continue;
            tables++;
            for (unsigned i = 0; i < TV_ARRAY_LEN(fmts); i++) {
                const tv_pt_format_t *f = tv_pt_arm_format(fmts[i]);
                kfind_t c = {.fmt = f, .dtb = root, .text_va = a.va[0],
                             .text_sym = a.va[0]};
                /* Stale or stray pages can map anything anywhere; the
                 * kernel's root maps text in RAM, and lies in the image
                 * it maps (swapper_pg_dir is part of it). */
                if (!maps_anchors(vmi, f, root, &a, &pa0) ||
                    !tv_range_find(vmi, pa0) || root < pa0)
                    continue;
                c.text_pa = pa0;
                if (root - pa0 >= image_extent(vmi, &c))
                    continue;
                best = entries;
                *k = c;
                break;
            }
        }
    }
    tv_quiet(vmi, false);
    if (best)
        return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_ENOENT,
                   "no kernel found: the symbol table has no linux_banner "
                   "and none of %u page-table-like pages of RAM maps its "
                   "text symbols onto one image", tables);
}


/* Profile-less and registerless: kallsyms and BTF straight from physical
 * memory (the image is physically contiguous). */
static int table_from_physical(struct vmi_instance *vmi)
{
    region_t reg[MAX_REGIONS];
    unsigned n = 0;
    for (size_t r = 0; r < vmi->drv.nranges && n < MAX_REGIONS; r++)
        reg[n++] = (region_t){vmi->drv.ranges[r].start,
                              vmi->drv.ranges[r].start +
                                  vmi->drv.ranges[r].size};
    tv_reader_t rd = {read_pa, vmi};
    return table_from_memory(vmi, &rd, reg, n);
}

/* ---- putting it together ------------------------------------------------------------------- */

/* Without a linux_banner symbol: the image's first "Linux version N..."
 * (read-only data precedes the log buffer's printed copy). */
static bool find_banner(struct vmi_instance *vmi, const lx_t *lx,
                        uint64_t *va)
{
    enum { CHUNK = 1 << 20, OVER = sizeof lx->banner };
    bool found = false;
    if (!lx->image_size)
        return false;
    uint8_t *buf = tv_alloc(vmi, CHUNK + OVER);
    if (!buf)
        return false;
    for (uint64_t off = 0; off < lx->image_size && !found; off += CHUNK) {
        uint64_t left = lx->image_size - off;
        size_t n = (size_t)(left < CHUNK + OVER ? left : CHUNK + OVER);
        if (tv_read_pa(vmi, lx->image_pa + off, buf, n, NULL))
            continue;
        for (size_t i = 0; i + sizeof(BANNER) < n && i < CHUNK; i++)
            if (buf[i] == 'L' && !tv_memcmp(buf + i, BANNER,
                                            sizeof(BANNER) - 1) &&
                buf[i + sizeof(BANNER) - 1] >= '0' &&
                buf[i + sizeof(BANNER) - 1] <= '9') {
                *va = lx->image_va + off + i;
                found = true;
                break;
            }
    }
    tv_free(vmi, buf, CHUNK + OVER);
    return found;
}

static void read_banner(struct vmi_instance *vmi, lx_t *lx)
{
    uint64_t va;
    lx->banner[0] = lx->release[0] = '\0';
    if ((!tv_os_ksym(vmi, "linux_banner", &va) || find_banner(vmi, lx, &va)) &&
        !tv_read_va(vmi, NULL, vmi->kdtb, va, lx->banner,
                    sizeof lx->banner - 1, NULL)) {
        lx->banner[sizeof lx->banner - 1] = '\0';
        size_t n = tv_strnlen(lx->banner, sizeof lx->banner);
        while (n && (lx->banner[n - 1] == '\n'))
            lx->banner[--n] = '\0';
    }
    size_t pre = sizeof(BANNER) - 1;
    if (tv_memcmp(lx->banner, BANNER, pre) == 0) {
        size_t i = 0;
        while (i < sizeof lx->release - 1 && lx->banner[pre + i] &&
               lx->banner[pre + i] != ' ')
            i++;
        tv_memcpy(lx->release, lx->banner + pre, i);
        lx->release[i] = '\0';
    }
}

/* The profile's own banner, when it has one, must be the guest's. */
static int check_banner(struct vmi_instance *vmi, const lx_t *lx)
{
    const char *want = tv_symtab_meta(vmi->symtab, "banner");
    if (!want || !want[0])
        return TINYVMI_OK;
    size_t n = tv_strlen(want);
    while (n && want[n - 1] == '\n')
        n--;
    if (n == tv_strlen(lx->banner) && !tv_memcmp(want, lx->banner, n))
        return TINYVMI_OK;
    return tv_fail(vmi, TINYVMI_EFORMAT,
                   "the profile is for another kernel: it expects \"%.*s\" "
                   "but the guest has \"%s\"", (int)(n > 120 ? 120 : n),
                   want, lx->banner[0] ? lx->banner : "(no banner)");
}

static void fini(struct vmi_instance *vmi)
{
    if (vmi->osdata)
        tv_free(vmi, vmi->osdata, sizeof(lx_t));
    vmi->osdata = NULL;
}

static const tv_os_ops_t linux_ops = {
    .name = "Linux",
    .type = VMI_OS_LINUX,
    .fini = fini,
    .processes = lx_processes,
    .modules = lx_modules,
    .current = lx_current,
    .offset = lx_offset,
};

static int locate(struct vmi_instance *vmi, kfind_t *k, uint64_t *image_size)
{
    int rc = TINYVMI_ESTATE;
    char why[TV_ERRMSG_MAX];
    why[0] = '\0';
    if (vmi->pt) {
        rc = find_by_paging(vmi, k);
        if (!rc)
            return rc;
        tv_memcpy(why, vmi->last_error, sizeof why);
        tv_log(vmi, 2, "linux: with vCPU paging: %s; trying physical "
               "memory", why);
    }
    if (!vmi->symtab) {
        rc = table_from_physical(vmi);
        if (rc)
            return why[0] ? tv_fail(vmi, rc, "%s; and from physical "
                                    "memory: %s", why, vmi->last_error)
                          : rc;
    }
    uint64_t banner;
    if (!sym(vmi, "linux_banner", &banner) &&
        (vmi->drv.arch == VMI_ARCH_ARM64 ||
         vmi->drv.arch == VMI_ARCH_UNKNOWN)) {
        if ((rc = find_by_roots(vmi, k)))
            return rc;
        tv_quiet(vmi, true);
        *image_size = image_extent(vmi, k);
        tv_quiet(vmi, false);
        tv_log(vmi, 2, "linux: kernel root 0x%llx (%s), text 0x%llx at pa "
               "0x%llx, image %llu bytes", (unsigned long long)k->dtb,
               k->fmt->name, (unsigned long long)k->text_va,
               (unsigned long long)k->text_pa,
               (unsigned long long)*image_size);
        return TINYVMI_OK;
    }
    return find_by_banner(vmi, k);
}

int tv_linux_init(struct vmi_instance *vmi, struct tv_symtab *tab,
                  const tv_os_hints_t *hints)
{
    kfind_t k = {0};
    uint64_t text, top, top_pa;
    lx_t *lx = NULL;
    int rc;

    uint64_t image_size = 0, end;
    tv_os_fini(vmi);
    vmi->symtab = tab;
    rc = locate(vmi, &k, &image_size);
    if (rc)
        goto fail;
    if (k.text_sym) {
        text = k.text_sym;
    } else if (!sym(vmi, "_text", &text)) {
        rc = tv_fail(vmi, TINYVMI_ENOENT, "the symbol table has no _text");
        goto fail;
    }
    vmi->slide = (int64_t)(k.text_va - text);
    /* KASLR moves the image; per-cpu offsets and absolute symbols, which
     * kallsyms and profiles list below _text, stay. */
    vmi->slide_from = text;
    /* The kernel's own page tables from here on: a vCPU may have been in
     * a process with page-table isolation's user tables. */
    if (!(rc = top_table(vmi, &top))) {
        if ((rc = tv_translate(vmi, k.fmt, k.dtb, top + (uint64_t)vmi->slide,
                               &top_pa, NULL)))
            goto fail;
    } else if (image_size) {
        top_pa = k.dtb; /* found as one of the image's pages */
    } else {
        goto fail;
    }
    if ((rc = tv_set_paging_fmt(vmi, k.fmt, top_pa)))
        goto fail;

    if (!(lx = tv_calloc(vmi, 1, sizeof *lx))) {
        rc = tv_fail(vmi, TINYVMI_ENOMEM, "no memory for the Linux layer");
        goto fail;
    }
    vmi->osdata = lx;
    vmi->osops = &linux_ops;
    vmi->os = VMI_OS_LINUX;
    if (!image_size && sym(vmi, "_end", &end) && end > text)
        image_size = end - text;
    lx->image_va = k.text_va;
    lx->image_pa = k.text_pa;
    lx->image_size = image_size;
    read_banner(vmi, lx);
    if ((rc = check_banner(vmi, lx)) || (rc = lx_offsets(vmi, lx, hints)))
        goto fail;

    const char *src = tv_symtab_meta(vmi->symtab, "source");
    vmi->kinfo = (tinyvmi_kernel_t){
        .version = TINYVMI_KERNEL_VERSION,
        .os = VMI_OS_LINUX,
        .text_va = k.text_va,
        .text_pa = k.text_pa,
        .slide = vmi->slide,
        .dtb = vmi->kdtb,
        .page_mode = vmi->page_mode,
        .source = src ? src : "profile",
        .release = lx->release,
        .banner = lx->banner,
        .nsymbols = tv_symtab_nsymbols(vmi->symtab),
        .ntypes = tv_symtab_ntypes(vmi->symtab),
    };
    tv_log(vmi, 2, "linux: %s at 0x%llx (pa 0x%llx), slide 0x%llx, dtb "
           "0x%llx, %s", lx->release, (unsigned long long)k.text_va,
           (unsigned long long)k.text_pa, (unsigned long long)vmi->slide,
           (unsigned long long)vmi->kdtb, vmi->kinfo.source);
    return TINYVMI_OK;
fail:
    tv_os_fini(vmi);
    return rc;
}
