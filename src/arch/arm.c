/*
 * ARM paging as data, read by the generic walker in pt.c (Arm ARM, VMSAv8-64
 * and the AArch32 short- and long-descriptor formats).  Two small hooks
 * carry what tables cannot: decode (descriptor types; where the output
 * address bits sit) and root (52-bit table bases in TTBR bits 5:2).  The
 * TTBR0/TTBR1 split is data too: each format points at the layout of its
 * high range (.hi), and the walker picks the range by the VA's top bits.
 *
 * What is deliberately not modelled, as on x86: attribute and permission
 * bits (AP, PXN/XN, nG, AF: an entry with AF clear still translates),
 * reserved and address-size checks (output bits above the format's width
 * are ignored, not faulted), and top-byte-ignore (a tagged pointer is out
 * of range).  The contiguous bit (bit 52; AArch32 large pages and
 * supersections, which repeat one entry 16 times) is a TLB hint: each
 * entry still maps its own address, so such entries translate as normal
 * ones.  AArch32 short descriptors with TTBCR.N > 0 have no table here
 * (Linux uses N = 0).
 */
#include "core/tv.h"

#define BIT(n) (1ULL << (n))
#define MASK(hi, lo) ((~0ULL >> (63 - (hi))) & ~(BIT(lo) - 1))

/* ---- VMSAv8-64 and AArch32 long descriptors ------------------------------ */

/* Bits 1:0 say what a descriptor is: 0b11 a table (a page at the last
 * level), 0b01 a block where the level allows blocks, anything else is
 * invalid.  The output address is the table_mask bits, plus oa_hi's. */
static void long_decode(const tv_pt_format_t *fmt, unsigned lvl,
                        uint64_t e, tv_pte_t *d)
{
    const tv_pt_level_t *l = &fmt->level[lvl];
    bool last = lvl + 1u == fmt->nlevels;
    uint64_t oa = e & fmt->table_mask;
    if (fmt->oa_hi.n)
        oa |= (e >> fmt->oa_hi.from & (BIT(fmt->oa_hi.n) - 1))
              << fmt->oa_hi.to;
    *d = (tv_pte_t){.kind = TV_PTE_INVALID};
    if ((e & 3) == 3 && !last) {
        d->kind = TV_PTE_TABLE;
        d->addr = oa;
    } else if ((e & 3) == 3 || ((e & 3) == 1 && !last && l->can_large)) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = l->shift;
        d->addr = oa & ~(BIT(l->shift) - 1);
    }
}

/* 52-bit table bases: TTBR bits 5:2 are address bits 51:48. */
static uint64_t root52(uint64_t ttbr)
{
    return (ttbr & MASK(47, 6)) | (ttbr >> 2 & 0xf) << 48;
}

#define OA48 MASK(47, 12)
#define LPA2_HI {8, 50, 2}  /* 4K/16K, FEAT_LPA2: bits 9:8 are OA 51:50 */
#define LPA_HI {12, 48, 4}  /* 64K, FEAT_LPA: bits 15:12 are OA 51:48 */

#define A64(id, nm, vb, n, rmask, tmask, hibits, rt, ...)                 \
    static const tv_pt_format_t id = {                                  \
        .name = nm, .mode = VMI_PM_AARCH64, .nlevels = n, .pte_size = 8, \
        .va_bits = vb, .addr_width = 8, .root_mask = rmask,             \
        .table_mask = tmask, .present = 1,                              \
        .level = {__VA_ARGS__}, .decode = long_decode, .root = rt,      \
        .oa_hi = hibits, .hi = &id}

/* 4 KiB granule: 9 index bits a level; blocks of 1 GiB (L1) and 2 MiB
 * (L2), and with FEAT_LPA2 512 GiB (L0). */
A64(a64_4k_39, "AArch64 4K/39", 39, 3, MASK(47, 12), OA48, {0}, NULL,
    {30, 9, 1, "L1"}, {21, 9, 1, "L2"}, {12, 9, 0, "L3"});
A64(a64_4k_48, "AArch64 4K/48", 48, 4, MASK(47, 12), OA48, {0}, NULL,
    {39, 9, 0, "L0"}, {30, 9, 1, "L1"}, {21, 9, 1, "L2"}, {12, 9, 0, "L3"});
A64(a64_4k_52, "AArch64 4K/52", 52, 5, MASK(47, 7) | MASK(5, 2),
    MASK(49, 12), LPA2_HI, root52, {48, 4, 0, "L-1"}, {39, 9, 1, "L0"},
    {30, 9, 1, "L1"}, {21, 9, 1, "L2"}, {12, 9, 0, "L3"});

/* 16 KiB granule: 11 index bits a level; blocks of 32 MiB (L2), and with
 * FEAT_LPA2 64 GiB (L1). */
A64(a64_16k_47, "AArch64 16K/47", 47, 3, MASK(47, 14), MASK(47, 14), {0},
    NULL, {36, 11, 0, "L1"}, {25, 11, 1, "L2"}, {14, 11, 0, "L3"});
A64(a64_16k_48, "AArch64 16K/48", 48, 4, MASK(47, 4), MASK(47, 14), {0},
    NULL, {47, 1, 0, "L0"}, {36, 11, 0, "L1"}, {25, 11, 1, "L2"},
    {14, 11, 0, "L3"});
A64(a64_16k_52, "AArch64 16K/52", 52, 4, MASK(47, 8) | MASK(5, 2),
    MASK(49, 14), LPA2_HI, root52, {47, 5, 0, "L0"}, {36, 11, 1, "L1"},
    {25, 11, 1, "L2"}, {14, 11, 0, "L3"});

/* 64 KiB granule: 13 index bits a level; blocks of 512 MiB (L2), and with
 * FEAT_LPA 4 TiB (L1). */
A64(a64_64k_42, "AArch64 64K/42", 42, 2, MASK(47, 16), MASK(47, 16), {0},
    NULL, {29, 13, 1, "L2"}, {16, 13, 0, "L3"});
A64(a64_64k_48, "AArch64 64K/48", 48, 3, MASK(47, 9), MASK(47, 16), {0},
    NULL, {42, 6, 0, "L1"}, {29, 13, 1, "L2"}, {16, 13, 0, "L3"});
A64(a64_64k_52, "AArch64 64K/52", 52, 3, MASK(47, 13) | MASK(5, 2),
    MASK(47, 16), LPA_HI, root52, {42, 10, 1, "L1"}, {29, 13, 1, "L2"},
    {16, 13, 0, "L3"});

/* AArch32 long descriptors (LPAE): the same descriptor types, 40-bit output
 * addresses, 4 KiB granule.  With T0SZ = T1SZ = 0 TTBR0 maps all 4 GiB
 * (4-entry first level); Linux's 3G/1G split (T1SZ = 2) gives TTBR1 the
 * top 1 GiB, from its second level down. */
static const tv_pt_format_t a32_lpae = {
    .name = "AArch32 LPAE", .mode = VMI_PM_AARCH32,
    .nlevels = 3, .pte_size = 8, .va_bits = 32, .addr_width = 4,
    .root_mask = MASK(39, 5), .table_mask = MASK(39, 12), .present = 1,
    .level = {{30, 2, 1, "L1"}, {21, 9, 1, "L2"}, {12, 9, 0, "L3"}},
    .decode = long_decode, .hi = &a32_lpae,
};

static const tv_pt_format_t a32_lpae_top1g = {
    .name = "AArch32 LPAE TTBR1 1G", .mode = VMI_PM_AARCH32,
    .nlevels = 2, .pte_size = 8, .va_bits = 30, .addr_width = 4,
    .root_mask = MASK(39, 12), .table_mask = MASK(39, 12), .present = 1,
    .level = {{21, 9, 1, "L2"}, {12, 9, 0, "L3"}},
    .decode = long_decode, .hi = &a32_lpae_top1g,
};

static const tv_pt_format_t a32_lpae_3g1g = {
    .name = "AArch32 LPAE 3G/1G", .mode = VMI_PM_AARCH32,
    .nlevels = 3, .pte_size = 8, .va_bits = 32, .addr_width = 4,
    .root_mask = MASK(39, 5), .table_mask = MASK(39, 12), .present = 1,
    .level = {{30, 2, 1, "L1"}, {21, 9, 1, "L2"}, {12, 9, 0, "L3"}},
    .decode = long_decode, .hi = &a32_lpae_top1g,
};

/* ---- AArch32 short descriptors ------------------------------------------- */

/* First level (1 MiB an entry): bits 1:0 0b01 a second-level table (1 KiB,
 * bits 31:10), 0b1x a section (bit 18 clear: 1 MiB at bits 31:20) or a
 * supersection (16 MiB: bits 31:24, and address bits 35:32 in 23:20 and
 * 39:36 in 8:5); bit 0 of a section is PXN.  Second level: 0b01 a 64 KiB
 * large page (bits 31:16), 0b1x a 4 KiB small page (bits 31:12; bit 0 is
 * XN). */
static void short_decode(const tv_pt_format_t *fmt, unsigned lvl,
                         uint64_t e, tv_pte_t *d)
{
    (void)fmt;
    unsigned type = e & 3;
    *d = (tv_pte_t){.kind = TV_PTE_INVALID};
    if (type == 0)
        return;
    if (lvl == 0 && type == 1) {
        d->kind = TV_PTE_TABLE;
        d->addr = e & MASK(31, 10);
    } else if (lvl == 0 && (e & BIT(18))) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = 24;
        d->addr = (e & MASK(31, 24)) | (e >> 20 & 0xf) << 32 |
                  (e >> 5 & 0xf) << 36;
    } else if (lvl == 0) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = 20;
        d->addr = e & MASK(31, 20);
    } else if (type == 1) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = 16;
        d->addr = e & MASK(31, 16);
    } else {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = 12;
        d->addr = e & MASK(31, 12);
    }
}

static const tv_pt_format_t a32_short = {
    .name = "AArch32", .mode = VMI_PM_AARCH32,
    .nlevels = 2, .pte_size = 4, .va_bits = 32, .addr_width = 4,
    .root_mask = MASK(31, 14), .table_mask = MASK(31, 10), .present = 3,
    .level = {{20, 12, 1, "L1"}, {12, 8, 0, "L2"}},
    .decode = short_decode, .hi = &a32_short,
};

/* ---- Selection ------------------------------------------------------------ */

static const tv_pt_format_t *const arm_formats[TV_PT_ARM_COUNT] = {
    [TV_PT_A64_4K_39] = &a64_4k_39,   [TV_PT_A64_4K_48] = &a64_4k_48,
    [TV_PT_A64_4K_52] = &a64_4k_52,   [TV_PT_A64_16K_47] = &a64_16k_47,
    [TV_PT_A64_16K_48] = &a64_16k_48, [TV_PT_A64_16K_52] = &a64_16k_52,
    [TV_PT_A64_64K_42] = &a64_64k_42, [TV_PT_A64_64K_48] = &a64_64k_48,
    [TV_PT_A64_64K_52] = &a64_64k_52, [TV_PT_A32_SHORT] = &a32_short,
    [TV_PT_A32_LPAE] = &a32_lpae,     [TV_PT_A32_LPAE_3G1G] = &a32_lpae_3g1g,
};

const tv_pt_format_t *tv_pt_arm_format(tv_pt_arm_t which)
{
    if ((unsigned)which >= TV_PT_ARM_COUNT)
        return NULL;
    return arm_formats[which];
}

const tv_pt_format_t *tv_pt_arm64_format(unsigned granule_shift,
                                         unsigned va_bits)
{
    for (unsigned i = 0; i <= TV_PT_A64_64K_52; i++) {
        const tv_pt_format_t *f = arm_formats[i];
        if (f->va_bits == va_bits &&
            f->level[f->nlevels - 1].shift == granule_shift)
            return f;
    }
    return NULL;
}

/* ---- Formats from the translation control registers ------------------------ */

/* One VMSAv8-64 range: granule 2^g, vab-bit VAs, 52-bit output addresses
 * when oa52 (FEAT_LPA2 for 4K/16K, FEAT_LPA for 64K).  Levels are counted
 * from the page up; the top level takes what is left of the VA bits. */
static int a64_range(unsigned g, unsigned vab, bool oa52, tv_pt_format_t *f)
{
    static const char *const names[] = {"AArch64 4K", "AArch64 16K",
                                        "AArch64 64K"};
    unsigned stride = g - 3;
    unsigned max = oa52 ? 52 : 48;
    if (vab < 25 || vab > max)
        return TINYVMI_ERANGE;
    unsigned n = (vab - g + stride - 1) / stride;
    unsigned top = vab - g - (n - 1) * stride;
    *f = (tv_pt_format_t){
        .name = names[(g - 12) / 2], .mode = VMI_PM_AARCH64,
        .nlevels = (uint8_t)n, .pte_size = 8, .va_bits = (uint8_t)vab,
        .addr_width = 8, .present = 1, .decode = long_decode,
        .root_mask = MASK(47, top + 3 > 6 || !oa52 ? top + 3 : 6),
        .table_mask = OA48 & ~(BIT(g) - 1),
    };
    if (oa52) {
        f->root_mask |= MASK(5, 2);
        f->root = root52;
        if (g == 16) { /* LPA: bits 15:12 are OA 51:48 */
            f->oa_hi.from = 12, f->oa_hi.to = 48, f->oa_hi.n = 4;
        } else { /* LPA2: bits 9:8 are OA 51:50 */
            f->oa_hi.from = 8, f->oa_hi.to = 50, f->oa_hi.n = 2;
            f->table_mask = MASK(49, g);
        }
    }
    static const char *const lv[] = {"L-1", "L0", "L1", "L2", "L3"};
    for (unsigned i = 0; i < n; i++) {
        unsigned level = 5 - n + i; /* ARM's level number + 1: the last
                                        level is always level 3 */
        tv_pt_level_t *l = &f->level[i];
        l->shift = (uint8_t)(g + stride * (n - 1 - i));
        l->bits = (uint8_t)(i ? stride : top);
        /* Blocks: level 2 always, level 1 with 4K (and 52-bit 16K/64K),
         * level 0 with 52-bit 4K. */
        l->can_large = level == 3 || (level == 2 && (g == 12 || oa52)) ||
                       (level == 1 && g == 12 && oa52);
        tv_memcpy(l->name, lv[level], tv_strlen(lv[level]) + 1);
    }
    return TINYVMI_OK;
}

int tv_pt_arm64_from_tcr(uint64_t tcr, tv_pt_format_t out[2])
{
    /* TG0 (15:14): 0 4K, 1 64K, 2 16K; TG1 (31:30): 1 16K, 2 4K, 3 64K. */
    static const uint8_t tg0[4] = {12, 16, 14, 0};
    static const uint8_t tg1[4] = {0, 14, 12, 16};
    unsigned g0 = tg0[tcr >> 14 & 3], g1 = tg1[tcr >> 30 & 3];
    unsigned t0sz = tcr & 0x3f, t1sz = tcr >> 16 & 0x3f;
    bool ds = tcr >> 59 & 1;           /* FEAT_LPA2's 52-bit descriptors */
    bool ips52 = (tcr >> 32 & 7) == 6; /* 64K with FEAT_LPA */
    if (!g0 || !g1)
        return TINYVMI_EFORMAT;
    int rc = a64_range(g0, 64 - t0sz, g0 == 16 ? ips52 : ds, &out[0]);
    if (!rc)
        rc = a64_range(g1, 64 - t1sz, g1 == 16 ? ips52 : ds, &out[1]);
    if (rc)
        return rc;
    out[0].hi = &out[1];
    out[1].hi = &out[1];
    return TINYVMI_OK;
}

/* One AArch32 LPAE range of vab-bit VAs (32 - TnSZ). */
static void lpae_range(unsigned vab, tv_pt_format_t *f)
{
    *f = a32_lpae;
    f->va_bits = (uint8_t)vab;
    if (vab > 30) {
        f->level[0].bits = (uint8_t)(vab - 30);
        f->root_mask = MASK(39, vab - 30 + 3 > 5 ? vab - 30 + 3 : 5);
        return;
    }
    f->name = "AArch32 LPAE TTBR1";
    f->nlevels = 2;
    f->level[0] = a32_lpae.level[1];
    f->level[1] = a32_lpae.level[2];
    f->level[0].bits = (uint8_t)(vab - 21);
    f->root_mask = MASK(39, vab - 21 + 3 > 5 ? vab - 21 + 3 : 5);
}

int tv_pt_arm32_from_ttbcr(uint64_t ttbcr, tv_pt_format_t out[2])
{
    if (!(ttbcr >> 31 & 1)) {
        if (ttbcr & 7) /* TTBCR.N > 0: TTBR0 maps only the low 2^(32-N) */
            return TINYVMI_ENOTSUP;
        out[0] = a32_short;
        out[0].hi = &out[0];
        return TINYVMI_OK;
    }
    unsigned t0sz = ttbcr & 7, t1sz = ttbcr >> 16 & 7;
    if (!t1sz) {
        /* TTBR1 maps nothing of its own unless TTBR0's range ends below
         * 4 GiB; that layout (no range at the top) has no table here. */
        if (t0sz)
            return TINYVMI_ENOTSUP;
        out[0] = a32_lpae;
        out[0].hi = &out[0];
        return TINYVMI_OK;
    }
    lpae_range(32 - t0sz, &out[0]);
    lpae_range(32 - t1sz, &out[1]);
    out[0].hi = &out[1];
    out[1].hi = &out[1];
    return TINYVMI_OK;
}
