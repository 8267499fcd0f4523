/*
 * x86 paging as data: one table per mode, read by the generic walker in
 * pt.c.  The modes differ only in these tables, except for PSE-36 (a 4 MiB
 * legacy page keeps physical bits 39:32 in PDE bits 20:13), which is the
 * one large_base hook.
 *
 * What the walker deliberately does not model: attribute bits (NX, U/S,
 * R/W, protection keys) play no part in translation; reserved bits are not
 * checked (a PAE PDPTE with bit 7 set is still a table pointer, as is a
 * PML4E/PML5E with bit 7 set); legacy 4 MiB pages are assumed enabled
 * (CR4.PSE), as every kernel that sets PS bits does.
 */
#include "core/tv.h"

#define BIT(n) (1ULL << (n))
#define X86_P BIT(0)
#define X86_PS BIT(7)
#define ADDR_51_12 0x000ffffffffff000ULL /* MAXPHYADDR 52 */
#define ADDR_31_12 0x00000000fffff000ULL

/* PSE-36: PDE bits 31:22 are physical bits 31:22, bits 20:13 are 39:32. */
static uint64_t pse36_base(uint64_t pde, unsigned lvl)
{
    (void)lvl;
    return (pde & 0xffc00000ULL) | ((pde >> 13) & 0xffULL) << 32;
}

static const tv_pt_format_t x86_legacy = {
    .name = "legacy", .mode = VMI_PM_LEGACY,
    .nlevels = 2, .pte_size = 4, .va_bits = 32, .addr_width = 4,
    .root_mask = ADDR_31_12, .table_mask = ADDR_31_12,
    .present = X86_P, .large = X86_PS,
    .level = {{22, 10, 1, "PDE"}, {12, 10, 0, "PTE"}},
    .large_base = pse36_base,
};

/* The PDPT is 4 entries, 32-byte aligned; its entries are never pages. */
static const tv_pt_format_t x86_pae = {
    .name = "PAE", .mode = VMI_PM_PAE,
    .nlevels = 3, .pte_size = 8, .va_bits = 32, .addr_width = 4,
    .root_mask = 0xffffffe0ULL, .table_mask = ADDR_51_12,
    .present = X86_P, .large = X86_PS,
    .level = {{30, 2, 0, "PDPTE"}, {21, 9, 1, "PDE"}, {12, 9, 0, "PTE"}},
};

static const tv_pt_format_t x86_ia32e = {
    .name = "IA-32e", .mode = VMI_PM_IA32E,
    .nlevels = 4, .pte_size = 8, .va_bits = 48, .addr_width = 8,
    .root_mask = ADDR_51_12, .table_mask = ADDR_51_12,
    .present = X86_P, .large = X86_PS,
    .level = {{39, 9, 0, "PML4E"}, {30, 9, 1, "PDPTE"}, {21, 9, 1, "PDE"},
              {12, 9, 0, "PTE"}},
};

static const tv_pt_format_t x86_la57 = {
    .name = "LA57", .mode = VMI_PM_LA57,
    .nlevels = 5, .pte_size = 8, .va_bits = 57, .addr_width = 8,
    .root_mask = ADDR_51_12, .table_mask = ADDR_51_12,
    .present = X86_P, .large = X86_PS,
    .level = {{48, 9, 0, "PML5E"}, {39, 9, 0, "PML4E"}, {30, 9, 1, "PDPTE"},
              {21, 9, 1, "PDE"}, {12, 9, 0, "PTE"}},
};

/* Windows' transition PTEs: a page trimmed from a working set stays in
 * memory (standby or modified list) while its PTE is not present, with
 * Transition (bit 11) set and Prototype (bit 10) clear; the frame bits are
 * still the page's.  Only last-level entries; prototype PTEs (bit 10) point
 * into a section's prototype table and are not followed. */
#define WIN_PROTOTYPE BIT(10)
#define WIN_TRANSITION BIT(11)

static void win_decode(const tv_pt_format_t *fmt, unsigned lvl, uint64_t e,
                       tv_pte_t *d)
{
    const tv_pt_level_t *l = &fmt->level[lvl];
    bool last = lvl + 1u == fmt->nlevels;
    *d = (tv_pte_t){.kind = TV_PTE_INVALID};
    if (e & fmt->present) {
        if (last || (l->can_large && (e & fmt->large))) {
            d->kind = TV_PTE_PAGE;
            d->size_log2 = l->shift;
            d->addr = e & fmt->table_mask & ~((1ULL << l->shift) - 1);
        } else {
            d->kind = TV_PTE_TABLE;
            d->addr = e & fmt->table_mask;
        }
    } else if (last && (e & WIN_TRANSITION) && !(e & WIN_PROTOTYPE)) {
        d->kind = TV_PTE_PAGE;
        d->size_log2 = l->shift;
        d->addr = e & fmt->table_mask;
    }
}

static const tv_pt_format_t x86_pae_win = {
    .name = "PAE (transition pages)", .mode = VMI_PM_PAE,
    .nlevels = 3, .pte_size = 8, .va_bits = 32, .addr_width = 4,
    .root_mask = 0xffffffe0ULL, .table_mask = ADDR_51_12,
    .present = X86_P, .large = X86_PS,
    .level = {{30, 2, 0, "PDPTE"}, {21, 9, 1, "PDE"}, {12, 9, 0, "PTE"}},
    .decode = win_decode,
};

static const tv_pt_format_t x86_ia32e_win = {
    .name = "IA-32e (transition pages)", .mode = VMI_PM_IA32E,
    .nlevels = 4, .pte_size = 8, .va_bits = 48, .addr_width = 8,
    .root_mask = ADDR_51_12, .table_mask = ADDR_51_12,
    .present = X86_P, .large = X86_PS,
    .level = {{39, 9, 0, "PML4E"}, {30, 9, 1, "PDPTE"}, {21, 9, 1, "PDE"},
              {12, 9, 0, "PTE"}},
    .decode = win_decode,
};

const tv_pt_format_t *tv_pt_format_transition(page_mode_t mode)
{
    return mode == VMI_PM_PAE     ? &x86_pae_win
           : mode == VMI_PM_IA32E ? &x86_ia32e_win
                                  : NULL;
}

/* Indexed by the page mode, as LibVMI picks its walker. */
static const tv_pt_format_t *const formats[] = {
    [VMI_PM_LEGACY] = &x86_legacy,
    [VMI_PM_PAE] = &x86_pae,
    [VMI_PM_IA32E] = &x86_ia32e,
    [VMI_PM_LA57] = &x86_la57,
};

const tv_pt_format_t *tv_pt_format(page_mode_t mode)
{
    if ((unsigned)mode >= TV_ARRAY_LEN(formats))
        return NULL;
    return formats[mode];
}

#define CR0_PG BIT(31)
#define CR4_PAE BIT(5)
#define CR4_LA57 BIT(12)
#define EFER_LMA BIT(10)
#define EFER_UNKNOWN (~0ULL)

/* CR4.LA57 only matters in IA-32e mode: with PAE and LMA clear it is PAE
 * paging whatever LA57 says.  EFER ~0 means "unknown" (some dumps lack it):
 * a dump with CR4.PAE set is then taken as 64-bit (IA-32e, or LA57 with
 * CR4.LA57), since 64-bit guests are the common case and a 32-bit PAE
 * guest's dump normally says so by other means (e.g. an ELF32/i386 header),
 * which callers should turn into efer = 0. */
page_mode_t tv_x86_page_mode(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
    if (!(cr0 & CR0_PG))
        return VMI_PM_NONE;
    if (!(cr4 & CR4_PAE))
        return VMI_PM_LEGACY;
    if (efer != EFER_UNKNOWN && !(efer & EFER_LMA))
        return VMI_PM_PAE;
    return cr4 & CR4_LA57 ? VMI_PM_LA57 : VMI_PM_IA32E;
}
