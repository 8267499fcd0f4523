/* tinyvmi translate: a virtual address's physical address and the page
 * table entries walked to find it. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "cli.h"

/* Where page_info_t keeps each level's entry, top level first. */
typedef struct level_view {
    const char *name;
    size_t off; /* offset of the *_location field; value follows it */
} level_view_t;

#define LV(n, view, f) {n, offsetof(page_info_t, view.f##_location)}
static const struct {
    page_mode_t mode;
    level_view_t lv[5];
} views[] = {
    {VMI_PM_LEGACY, {LV("PDE", x86_legacy, pgd), LV("PTE", x86_legacy, pte)}},
    {VMI_PM_PAE,
     {LV("PDPTE", x86_pae, pdpe), LV("PDE", x86_pae, pgd),
      LV("PTE", x86_pae, pte)}},
    {VMI_PM_IA32E,
     {LV("PML4E", x86_ia32e, pml4e), LV("PDPTE", x86_ia32e, pdpte),
      LV("PDE", x86_ia32e, pgd), LV("PTE", x86_ia32e, pte)}},
    {VMI_PM_LA57,
     {LV("PML5E", x86_ia32e, pml5e), LV("PML4E", x86_ia32e, pml4e),
      LV("PDPTE", x86_ia32e, pdpte), LV("PDE", x86_ia32e, pgd),
      LV("PTE", x86_ia32e, pte)}},
};
#undef LV

typedef struct entry {
    const char *name;
    addr_t location, value;
} entry_t;

/* The entries the walk read: it stops at the first level left empty (an
 * entry at physical 0 holding 0 is indistinguishable, and harmless). */
static size_t walked(page_mode_t pm, const page_info_t *info, entry_t *out)
{
    size_t n = 0;
    for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
        if (views[v].mode != pm)
            continue;
        for (size_t l = 0; l < 5 && views[v].lv[l].name; l++) {
            const addr_t *f = (const addr_t *)(const void *)(
                (const unsigned char *)info + views[v].lv[l].off);
            if (!f[0] && !f[1])
                break;
            out[n++] = (entry_t){views[v].lv[l].name, f[0], f[1]};
        }
    }
    return n;
}

static void print_text(addr_t va, const page_info_t *info, const entry_t *e,
                       size_t n, bool ok, const char *err)
{
    if (ok)
        printf("0x%" PRIx64 " -> 0x%" PRIx64 " (%" PRIu64 " KiB page)\n", va,
               info->paddr, (uint64_t)info->size >> 10);
    else
        printf("0x%" PRIx64 " -> not mapped: %s\n", va, err);
    for (size_t i = 0; i < n; i++)
        printf("  %-6s at 0x%012" PRIx64 " = 0x%016" PRIx64 "\n", e[i].name,
               e[i].location, e[i].value);
}

static void print_json(addr_t va, const page_info_t *info, const entry_t *e,
                       size_t n, bool ok, const char *err)
{
    printf("{\"va\":\"0x%" PRIx64 "\",\"pa\":", va);
    if (ok)
        printf("\"0x%" PRIx64 "\",\"page_size\":%" PRIu64, info->paddr,
               (uint64_t)info->size);
    else
        printf("null,\"page_size\":null");
    printf(",\"dtb\":\"0x%" PRIx64 "\",\"entries\":[", info->dtb);
    for (size_t i = 0; i < n; i++) {
        printf("%s{\"level\":\"%s\",\"location\":\"0x%" PRIx64
               "\",\"value\":\"0x%" PRIx64 "\"}", i ? "," : "", e[i].name,
               e[i].location, e[i].value);
    }
    printf("],\"error\":");
    if (ok)
        printf("null");
    else
        cli_json_str(stdout, err);
    printf("}\n");
}

int cmd_translate(cli_t *c)
{
    unsigned long long va;
    if (!cli_number(c->arg[0], &va))
        return cli_fail(c, CLI_USAGE, "VA must be a number");
    int rc = cli_paging(c, true);
    if (rc)
        return rc;
    page_info_t info;
    bool ok = vmi_pagetable_lookup_extended(c->vmi, cli_dtb(c), va, &info) ==
              VMI_SUCCESS;
    const char *err = ok ? "" : tinyvmi_last_error(c->vmi);
    entry_t e[5];
    size_t n = walked(vmi_get_page_mode(c->vmi, 0), &info, e);
    if (c->json)
        print_json(va, &info, e, n, ok, err);
    else
        print_text(va, &info, e, n, ok, err);
    if (!ok && !c->json)
        fprintf(stderr, "tinyvmi: translate: 0x%llx: %s\n", va, err);
    return ok ? CLI_OK : CLI_FAILED;
}
