/*
 * x86 paging as data: one table per mode, read by the generic walker in
 * walk.c.  The only quirk that needs code is PSE-36, where a 4 MiB legacy
 * page keeps physical address bits 39:32 in PDE bits 20:13.
 */
#include "core/tv.h"

#define BIT(n) (1ULL << (n))
#define ADDR_12_51 0x000ffffffffff000ULL /* MAXPHYADDR 52 */
#define X86_P BIT(0)
#define X86_PS BIT(7)

static uint64_t pse36_base(uint64_t pde, unsigned lvl)
{
    (void)lvl;
    return (pde & 0xffc00000ULL) | ((pde & 0x001fe000ULL) << 19);
}

static const tv_pt_format_t x86_legacy = {
    .name = "legacy", .mode = VMI_PM_LEGACY, .nlevels = 2, .pte_size = 4,
    .va_bits = 32, .addr_width = 4,
    .root_mask = 0xfffff000ULL, .table_mask = 0xfffff000ULL,
    .present = X86_P, .large = X86_PS,
    .level = {{22, 10, 1, "PDE"}, {12, 10, 0, "PTE"}},
    .large_base = pse36_base,
};

static const tv_pt_format_t x86_pae = {
    .name = "PAE", .mode = VMI_PM_PAE, .nlevels = 3, .pte_size = 8,
    .va_bits = 32, .addr_width = 4,
    .root_mask = 0xffffffe0ULL, .table_mask = ADDR_12_51,
    .present = X86_P, .large = X86_PS,
    .level = {{30, 2, 0, "PDPTE"}, {21, 9, 1, "PDE"}, {12, 9, 0, "PTE"}},
};

static const tv_pt_format_t x86_ia32e = {
    .name = "IA-32e", .mode = VMI_PM_IA32E, .nlevels = 4, .pte_size = 8,
    .va_bits = 48, .addr_width = 8,
    .root_mask = ADDR_12_51, .table_mask = ADDR_12_51,
    .present = X86_P, .large = X86_PS,
    .level = {{39, 9, 0, "PML4E"}, {30, 9, 1, "PDPTE"}, {21, 9, 1, "PDE"},
              {12, 9, 0, "PTE"}},
};

static const tv_pt_format_t x86_la57 = {
    .name = "LA57", .mode = VMI_PM_LA57, .nlevels = 5, .pte_size = 8,
    .va_bits = 57, .addr_width = 8,
    .root_mask = ADDR_12_51, .table_mask = ADDR_12_51,
    .present = X86_P, .large = X86_PS,
    .level = {{48, 9, 0, "PML5E"}, {39, 9, 0, "PML4E"}, {30, 9, 1, "PDPTE"},
              {21, 9, 1, "PDE"}, {12, 9, 0, "PTE"}},
};

static const tv_pt_format_t *const formats[] = {&x86_legacy, &x86_pae,
                                                &x86_ia32e, &x86_la57};

const tv_pt_format_t *tv_pt_format(page_mode_t mode)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(formats); i++)
        if (formats[i]->mode == mode)
            return formats[i];
    return NULL;
}

#define CR0_PG BIT(31)
#define CR4_PAE BIT(5)
#define CR4_LA57 BIT(12)
#define EFER_LMA BIT(10)

page_mode_t tv_x86_page_mode(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
    if (!(cr0 & CR0_PG))
        return VMI_PM_NONE;
    if (!(cr4 & CR4_PAE))
        return VMI_PM_LEGACY;
    if (!(efer & EFER_LMA))
        return VMI_PM_PAE;
    return cr4 & CR4_LA57 ? VMI_PM_LA57 : VMI_PM_IA32E;
}
