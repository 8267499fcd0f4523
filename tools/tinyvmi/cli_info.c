/* tinyvmi info: what the target is. */
#include <inttypes.h>

#include "cli.h"

static void info_text(cli_t *c, page_mode_t pm)
{
    vmi_instance_t vmi = c->vmi;
    printf("format:     %s\n", tinyvmi_format(vmi));
    printf("memory:     %" PRIu64 " bytes (%" PRIu64 " MiB) in %zu ranges, "
           "highest address 0x%" PRIx64 "\n", vmi_get_memsize(vmi),
           vmi_get_memsize(vmi) >> 20, tinyvmi_range_count(vmi),
           vmi_get_max_physical_address(vmi));
    for (size_t i = 0; i < tinyvmi_range_count(vmi); i++) {
        tinyvmi_range_t r;
        tinyvmi_range_get(vmi, i, &r);
        printf("  0x%012" PRIx64 "-0x%012" PRIx64 "  %8" PRIu64 " KiB\n",
               r.start, r.start + r.size, r.size >> 10);
    }
    unsigned n = vmi_get_num_vcpus(vmi);
    printf("vcpus:      %u%s\n", n, n ? "" : " (the target has no registers)");
    for (unsigned i = 0; i < n; i++) {
        uint64_t cr3 = 0, rip = 0;
        vmi_get_vcpureg(vmi, &cr3, CR3, i);
        vmi_get_vcpureg(vmi, &rip, RIP, i);
        printf("  vcpu %u: cr3 0x%" PRIx64 " rip 0x%" PRIx64 "\n", i, cr3, rip);
    }
    if (pm == VMI_PM_UNKNOWN)
        printf("page mode:  unknown (%s)\n", tinyvmi_last_error(vmi));
    else
        printf("page mode:  %s, kernel DTB 0x%" PRIx64 "\n",
               tinyvmi_page_mode_name(pm), vmi_get_kernel_dtb(vmi));
}

static void info_json(cli_t *c, page_mode_t pm)
{
    vmi_instance_t vmi = c->vmi;
    printf("{\"format\":");
    cli_json_str(stdout, tinyvmi_format(vmi));
    printf(",\"memsize\":%" PRIu64 ",\"max_pa\":\"0x%" PRIx64 "\",\"ranges\":[",
           vmi_get_memsize(vmi), vmi_get_max_physical_address(vmi));
    for (size_t i = 0; i < tinyvmi_range_count(vmi); i++) {
        tinyvmi_range_t r;
        tinyvmi_range_get(vmi, i, &r);
        printf("%s{\"start\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 "}",
               i ? "," : "", r.start, r.size);
    }
    printf("],\"vcpus\":[");
    for (unsigned i = 0; i < vmi_get_num_vcpus(vmi); i++) {
        uint64_t cr3 = 0, rip = 0;
        vmi_get_vcpureg(vmi, &cr3, CR3, i);
        vmi_get_vcpureg(vmi, &rip, RIP, i);
        printf("%s{\"index\":%u,\"cr3\":\"0x%" PRIx64 "\",\"rip\":\"0x%" PRIx64
               "\"}", i ? "," : "", i, cr3, rip);
    }
    printf("],\"page_mode\":");
    cli_json_str(stdout, tinyvmi_page_mode_name(pm));
    if (pm != VMI_PM_UNKNOWN)
        printf(",\"kernel_dtb\":\"0x%" PRIx64 "\"", vmi_get_kernel_dtb(vmi));
    printf("}\n");
}

int cmd_info(cli_t *c)
{
    int rc = cli_paging(c, false);
    if (rc)
        return rc;
    page_mode_t pm = vmi_get_page_mode(c->vmi, 0);
    if (c->json)
        info_json(c, pm);
    else
        info_text(c, pm);
    return CLI_OK;
}
