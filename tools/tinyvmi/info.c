/* tinyvmi info: what the target is: format, RAM layout, vCPUs, paging. */
#include <inttypes.h>
#include <string.h>

#include "cli.h"

#define REASON_MAX 512

/* What info reports, gathered once for both output forms. */
typedef struct info {
    page_mode_t mode;
    char why[REASON_MAX]; /* why the page mode is unknown */
} info_t;

static void find_paging(cli_t *c, info_t *in)
{
    in->mode = vmi_get_page_mode(c->vmi, 0);
    if (in->mode != VMI_PM_UNKNOWN)
        return;
    if (vmi_get_num_vcpus(c->vmi) == 0)
        snprintf(in->why, sizeof in->why,
                 "no vCPU registers; use --page-mode/--dtb");
    else
        snprintf(in->why, sizeof in->why, "%s", tinyvmi_last_error(c->vmi));
}

/* A vCPU register, or false if the dump does not have it. */
static bool reg(const cli_t *c, unsigned vcpu, reg_t r, uint64_t *v)
{
    return vmi_get_vcpureg(c->vmi, v, r, vcpu) == VMI_SUCCESS;
}

/* ---- Text ------------------------------------------------------------------- */

static void text_ranges(const cli_t *c)
{
    size_t n = tinyvmi_range_count(c->vmi);
    char sz[32];
    uint64_t total = vmi_get_memsize(c->vmi);
    printf("memory:      %" PRIu64 " bytes (%s) in %zu range%s, highest "
           "address 0x%" PRIx64 "\n", total, cli_size(total, sz, sizeof sz),
           n, n == 1 ? "" : "s", vmi_get_max_physical_address(c->vmi));
    for (size_t i = 0; i < n; i++) {
        tinyvmi_range_t r;
        if (tinyvmi_range_get(c->vmi, i, &r) != VMI_SUCCESS)
            continue;
        printf("  0x%016" PRIx64 "-0x%016" PRIx64 " (%s)\n", r.start,
               r.start + r.size - 1, cli_size(r.size, sz, sizeof sz));
    }
}

static void text_vcpus(const cli_t *c)
{
    unsigned n = vmi_get_num_vcpus(c->vmi);
    printf("vcpus:       %u%s\n", n, n ? "" : " (the dump has no registers)");
    for (unsigned i = 0; i < n; i++) {
        uint64_t v;
        printf("  vcpu %u:", i);
        if (reg(c, i, CR3, &v))
            printf(" cr3 0x%" PRIx64, v);
        if (reg(c, i, RIP, &v))
            printf(" rip 0x%" PRIx64, v);
        putchar('\n');
    }
}

/* What a Windows crash dump's header records. */
static void text_crashdump(const cli_t *c)
{
    tinyvmi_crashdump_t d;
    if (tinyvmi_crashdump_info(c->vmi, &d) != VMI_SUCCESS)
        return;
    printf("crash dump:  %s (DumpType %u), machine 0x%x, build %u, %u "
           "processors\n", d.kind, d.dump_type, d.machine, d.minor,
           d.nprocessors);
    printf("  DirectoryTableBase   0x%" PRIx64 "\n", d.dtb);
    printf("  PsActiveProcessHead  0x%" PRIx64 "\n", d.ps_active_process_head);
    printf("  PsLoadedModuleList   0x%" PRIx64 "\n", d.ps_loaded_module_list);
    printf("  KdDebuggerDataBlock  0x%" PRIx64 "\n", d.kd_debugger_data_block);
    printf("  bugcheck             0x%08x (0x%" PRIx64 ", 0x%" PRIx64
           ", 0x%" PRIx64 ", 0x%" PRIx64 ")\n", d.bugcheck_code,
           d.bugcheck_param[0], d.bugcheck_param[1], d.bugcheck_param[2],
           d.bugcheck_param[3]);
    if (!strcmp(d.kind, "triage"))
        printf("  triage               %zu kernel memory blocks by virtual "
               "address, %u drivers listed, no physical memory\n",
               d.triage_blocks, d.triage_drivers);
}

static void info_text(const cli_t *c, const info_t *in)
{
    printf("target:      %s\n", c->target);
    printf("format:      %s\n", tinyvmi_format(c->vmi));
    text_ranges(c);
    text_crashdump(c);
    text_vcpus(c);
    if (in->mode == VMI_PM_UNKNOWN) {
        printf("page mode:   unknown (%s)\n", in->why);
        return;
    }
    printf("page mode:   %s\n", tinyvmi_page_mode_name(in->mode));
    printf("kernel dtb:  0x%" PRIx64 "\n", vmi_get_kernel_dtb(c->vmi));
}

/* ---- JSON -------------------------------------------------------------------- */

static void json_ranges(const cli_t *c)
{
    printf("\"memsize\":%" PRIu64 ",\"max_physical_address\":\"0x%" PRIx64
           "\",\"ranges\":[", vmi_get_memsize(c->vmi),
           vmi_get_max_physical_address(c->vmi));
    for (size_t i = 0; i < tinyvmi_range_count(c->vmi); i++) {
        tinyvmi_range_t r;
        if (tinyvmi_range_get(c->vmi, i, &r) != VMI_SUCCESS)
            continue;
        printf("%s{\"start\":\"0x%" PRIx64 "\",\"last\":\"0x%" PRIx64
               "\",\"size\":%" PRIu64 "}", i ? "," : "", r.start,
               r.start + r.size - 1, r.size);
    }
    printf("]");
}

static void json_vcpus(const cli_t *c)
{
    printf(",\"vcpus\":[");
    for (unsigned i = 0; i < vmi_get_num_vcpus(c->vmi); i++) {
        uint64_t v;
        printf("%s{\"index\":%u", i ? "," : "", i);
        if (reg(c, i, CR3, &v))
            printf(",\"cr3\":\"0x%" PRIx64 "\"", v);
        if (reg(c, i, RIP, &v))
            printf(",\"rip\":\"0x%" PRIx64 "\"", v);
        printf("}");
    }
    printf("]");
}

static void json_crashdump(const cli_t *c)
{
    tinyvmi_crashdump_t d;
    if (tinyvmi_crashdump_info(c->vmi, &d) != VMI_SUCCESS)
        return;
    printf(",\"crashdump\":{\"kind\":");
    cli_json_str(stdout, d.kind);
    printf(",\"dump_type\":%u,\"machine\":%u,\"build\":%u,"
           "\"processors\":%u,\"dtb\":\"0x%" PRIx64 "\","
           "\"ps_active_process_head\":\"0x%" PRIx64 "\","
           "\"ps_loaded_module_list\":\"0x%" PRIx64 "\","
           "\"kd_debugger_data_block\":\"0x%" PRIx64 "\","
           "\"bugcheck_code\":\"0x%x\",\"bugcheck_params\":[",
           d.dump_type, d.machine, d.minor, d.nprocessors, d.dtb,
           d.ps_active_process_head, d.ps_loaded_module_list,
           d.kd_debugger_data_block, d.bugcheck_code);
    for (unsigned i = 0; i < 4; i++)
        printf("%s\"0x%" PRIx64 "\"", i ? "," : "", d.bugcheck_param[i]);
    printf("],\"triage_blocks\":%zu}", d.triage_blocks);
}

static void info_json(const cli_t *c, const info_t *in)
{
    printf("{\"target\":");
    cli_json_str(stdout, c->target);
    printf(",\"format\":");
    cli_json_str(stdout, tinyvmi_format(c->vmi));
    printf(",");
    json_ranges(c);
    json_crashdump(c);
    json_vcpus(c);
    if (in->mode == VMI_PM_UNKNOWN) {
        printf(",\"page_mode\":null,\"kernel_dtb\":null,"
               "\"page_mode_error\":");
        cli_json_str(stdout, in->why);
    } else {
        printf(",\"page_mode\":");
        cli_json_str(stdout, tinyvmi_page_mode_name(in->mode));
        printf(",\"kernel_dtb\":\"0x%" PRIx64 "\",\"page_mode_error\":null",
               vmi_get_kernel_dtb(c->vmi));
    }
    printf("}\n");
}

static int info_run(cli_t *c)
{
    info_t in = {0};
    int rc = cli_paging(c, false);
    if (rc)
        return rc;
    find_paging(c, &in);
    if (c->given & OPT_JSON)
        info_json(c, &in);
    else
        info_text(c, &in);
    return cli_flush(c);
}

const cli_cmd_t cli_cmd_info = {
    .name = "info",
    .synopsis = "TARGET [--json]",
    .summary = "format, memory size and RAM ranges, vCPUs, page mode, "
               "kernel DTB",
    .help = "RAM ranges are shown as first-last address (inclusive) with\n"
            "their size; gaps between them are not backed by the dump.  For\n"
            "each vCPU: its CR3 and RIP where the dump has them.  The page\n"
            "mode and kernel DTB come from vCPU 0's registers, or from\n"
            "--page-mode/--dtb.\n"
            "--json prints one object: target, format, memsize,\n"
            "max_physical_address, ranges [{start, last, size}], vcpus\n"
            "[{index, cr3, rip}], page_mode, kernel_dtb, page_mode_error\n"
            "(addresses as \"0x...\" strings).\n",
    .opts = OPT_GLOBAL | OPT_JSON,
    .npos = 0,
    .run = info_run,
};
