/*
 * tinyvmi ps / modules / sym: the guest kernel's processes, modules and
 * symbols, through the OS layer (profile-less, or with --profile/--config).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Starts the OS layer the way the options say; VMI_OS_UNKNOWN with the
 * reason in the instance's last error (nothing printed). */
os_t cli_start_os(cli_t *c)
{
    vmi_init_error_t err = VMI_INIT_ERROR_NONE;
    os_t os;
    /* a Windows symbol directory reaches vmi_init_os as the config's
     * win_symbols would */
    if (c->symbols && setenv("TINYVMI_SYMBOLS", c->symbols, 1))
        return VMI_OS_UNKNOWN;
    if (c->profile) {
        os = vmi_init_os(c->vmi, VMI_CONFIG_JSON_PATH, (void *)c->profile,
                         &err);
    } else if (c->config) {
        /* The entry is looked up by the target's name, as LibVMI looks up
         * a domain's; a file with a single entry needs no name. */
        if (setenv("TINYVMI_CONF", c->config, 1))
            return VMI_OS_UNKNOWN;
        os = vmi_init_os(c->vmi, VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, &err);
    } else {
        os = vmi_init_os(c->vmi, VMI_CONFIG_STRING, NULL, &err);
    }
    return os;
}

int cli_os(cli_t *c)
{
    int rc = cli_paging(c, false);
    if (rc)
        return rc;
    if (c->profile && c->config)
        return cli_fail(c, CLI_USAGE, "--profile and --config exclude each "
                        "other (a config entry names its own profile)");
    if (cli_start_os(c) == VMI_OS_UNKNOWN)
        return cli_fail(c, CLI_NOTARGET, "cannot find the guest's kernel: %s",
                        tinyvmi_last_error(c->vmi));
    return CLI_OK;
}

/* Windows, text output: which kernel and which profile, and why, as a
 * comment line above the table. */
static void windows_line(const cli_t *c)
{
    tinyvmi_kernel_t k;
    if ((c->given & OPT_JSON) || vmi_get_ostype(c->vmi) != VMI_OS_WINDOWS ||
        tinyvmi_kernel_info(c->vmi, &k) != VMI_SUCCESS)
        return;
    printf("# Windows %s (%s), ntoskrnl at 0x%" PRIx64 ", profile %s\n",
           k.release && k.release[0] ? k.release : "build unknown",
           vmi_get_winver_str(c->vmi), k.text_va, k.source);
}

/* ---- ps ------------------------------------------------------------------ */

typedef struct list {
    const cli_t *c;
    unsigned n;
} list_t;

static int ps_text(void *arg, const tinyvmi_process_t *p)
{
    list_t *l = arg;
    if (l->n++ == 0)
        printf("%7s %7s  %-18s  %-14s  %s\n", "PID", "PPID", "TASK", "DTB",
               "NAME");
    printf("%7d %7d  0x%016" PRIx64 "  0x%012" PRIx64 "  %s%s%s\n", p->pid,
           p->ppid, p->task, p->dtb, p->kernel_thread ? "[" : "",
           p->name[0] ? p->name : "?",
           p->kernel_thread ? "]" : "");
    return 0;
}

static int ps_json(void *arg, const tinyvmi_process_t *p)
{
    list_t *l = arg;
    printf("%s\n  {\"pid\": %d, \"ppid\": %d, \"name\": ", l->n++ ? "," : "",
           p->pid, p->ppid);
    cli_json_str(stdout, p->name);
    printf(", \"task\": \"0x%" PRIx64 "\", \"dtb\": \"0x%" PRIx64
           "\", \"kernel_thread\": %s, \"flags\": \"0x%" PRIx64 "\"",
           p->task, p->dtb, p->kernel_thread ? "true" : "false", p->flags);
    if (vmi_get_ostype(l->c->vmi) == VMI_OS_WINDOWS)
        printf(", \"peb\": \"0x%" PRIx64 "\", \"create_time\": %" PRIu64,
               p->peb, p->create_time);
    putchar('}');
    return 0;
}

/* The walk's end: a corrupt list still prints what was walked, then says
 * why it stopped (exit 1). */
static int finish(cli_t *c, status_t s, bool json, unsigned n)
{
    if (json)
        printf("%s]\n", n ? "\n" : "");
    int rc = cli_flush(c);
    if (s != VMI_SUCCESS)
        return cli_fail(c, CLI_FAILED, "%s", tinyvmi_last_error(c->vmi));
    return rc;
}

static int run_ps(cli_t *c)
{
    int rc = cli_os(c);
    if (rc)
        return rc;
    bool json = c->given & OPT_JSON;
    list_t l = {c, 0};
    windows_line(c);
    if (json)
        putchar('[');
    status_t s = tinyvmi_processes(c->vmi, json ? ps_json : ps_text, &l);
    return finish(c, s, json, l.n);
}

/* ---- modules ------------------------------------------------------------------ */

static int mod_text(void *arg, const tinyvmi_module_t *m)
{
    list_t *l = arg;
    if (l->n++ == 0)
        printf("%-24s  %-18s  %10s\n", "NAME", "BASE", "SIZE");
    printf("%-24s  0x%016" PRIx64 "  %10" PRIu64 "\n", m->name, m->base,
           m->size);
    return 0;
}

static int mod_json(void *arg, const tinyvmi_module_t *m)
{
    list_t *l = arg;
    printf("%s\n  {\"name\": ", l->n++ ? "," : "");
    cli_json_str(stdout, m->name);
    printf(", \"base\": \"0x%" PRIx64 "\", \"size\": %" PRIu64
           ", \"module\": \"0x%" PRIx64 "\"}", m->base, m->size, m->addr);
    return 0;
}

static int run_modules(cli_t *c)
{
    int rc = cli_os(c);
    if (rc)
        return rc;
    bool json = c->given & OPT_JSON;
    list_t l = {c, 0};
    windows_line(c);
    if (json)
        putchar('[');
    status_t s = tinyvmi_modules(c->vmi, json ? mod_json : mod_text, &l);
    return finish(c, s, json, l.n);
}

/* ---- sym ------------------------------------------------------------------------ */

static int sym_name(cli_t *c, const char *name, bool json)
{
    addr_t va;
    if (vmi_translate_ksym2v(c->vmi, name, &va) != VMI_SUCCESS)
        return cli_fail(c, CLI_FAILED, "%s", tinyvmi_last_error(c->vmi));
    if (json) {
        printf("[{\"name\": ");
        cli_json_str(stdout, name);
        printf(", \"address\": \"0x%" PRIx64 "\"}]\n", va);
    } else {
        printf("0x%" PRIx64 "\n", va);
    }
    return cli_flush(c);
}

static int sym_addr(cli_t *c, uint64_t va, bool json)
{
    ACCESS_CONTEXT(ctx, .tm = VMI_TM_PROCESS_PID, .pid = 0);
    const char *s = vmi_translate_v2ksym(c->vmi, &ctx, va);
    if (!s)
        return cli_fail(c, CLI_FAILED, "%s", tinyvmi_last_error(c->vmi));
    if (json) {
        const char *plus = strrchr(s, '+');
        size_t n = plus ? (size_t)(plus - s) : strlen(s);
        char name[512];
        snprintf(name, sizeof name, "%.*s", (int)n, s);
        printf("[{\"address\": \"0x%" PRIx64 "\", \"name\": ", va);
        cli_json_str(stdout, name);
        printf(", \"offset\": \"%s\"}]\n", plus ? plus + 1 : "0x0");
    } else {
        printf("%s\n", s);
    }
    free((void *)s);
    return cli_flush(c);
}

static int run_sym(cli_t *c)
{
    int rc = cli_os(c);
    if (rc)
        return rc;
    bool json = c->given & OPT_JSON;
    uint64_t va;
    if (strncmp(c->arg[0], "0x", 2) == 0 || strncmp(c->arg[0], "0X", 2) == 0) {
        if (!cli_parse_u64(c->arg[0], &va))
            return cli_fail(c, CLI_USAGE, "ADDR: not a number: '%s'",
                            c->arg[0]);
        return sym_addr(c, va, json);
    }
    return sym_name(c, c->arg[0], json);
}

#define OS_OPTS \
    (OPT_GLOBAL | OPT_JSON | OPT_PROFILE | OPT_CONFIG | OPT_SYMBOLS)
#define OS_HELP                                                             \
    "With neither --profile nor --config, the kernel's own BTF (types)\n"   \
    "and kallsyms (symbols) are read from guest memory: no profile is\n"    \
    "needed for kernels built with CONFIG_DEBUG_INFO_BTF and\n"             \
    "CONFIG_KALLSYMS_ALL.  --profile takes a Volatility ISF (.json,\n"      \
    ".json.xz) or a Rekall profile; --config a libvmi.conf whose entry\n"   \
    "for TARGET (or its only entry) names the profile or offsets.\n"     \
    "Windows (a crash dump, ostype Windows or a Windows profile) needs a\n"\
    "profile: --profile FILE, or --symbols DIR (config: win_symbols), a\n" \
    "Volatility 3 symbol directory (DIR/windows/ntkrnlmp.pdb/GUIDAGE.json\n"\
    ".xz): chosen by the kernel's GUID+age, else by checking each one's\n" \
    "offsets against the addresses the dump records.\n"

const cli_cmd_t cli_cmd_ps = {
    .name = "ps",
    .synopsis = "TARGET [--json] [--profile FILE | --config FILE] [--symbols DIR]",
    .summary = "list the guest's processes (pid, ppid, task, dtb, name)",
    .help = "Walks the kernel's task list from init_task.  Kernel threads\n"
            "(no address space) are shown in [brackets]; their DTB is the\n"
            "kernel's.  --json: one array of {pid, ppid, name, task, dtb,\n"
            "kernel_thread, flags}.\n\n" OS_HELP,
    .opts = OS_OPTS,
    .run = run_ps,
};

const cli_cmd_t cli_cmd_modules = {
    .name = "modules",
    .synopsis = "TARGET [--json] [--profile FILE | --config FILE] [--symbols DIR]",
    .summary = "list the guest kernel's loaded modules (name, base, size)",
    .help = "Walks the kernel's module list; base and size as\n"
            "/proc/modules gives them.  --json: one array of {name, base,\n"
            "size, module}.\n\n" OS_HELP,
    .opts = OS_OPTS,
    .run = run_modules,
};

const cli_cmd_t cli_cmd_sym = {
    .name = "sym",
    .synopsis = "TARGET NAME|ADDR [--json] [--profile FILE | --config FILE] [--symbols DIR]",
    .summary = "kernel symbol to address, or address to symbol+offset",
    .help = "NAME prints its (KASLR-adjusted) address as 0x...; ADDR (0x...)\n"
            "prints the symbol containing it as name+0xoff.\n\n" OS_HELP,
    .opts = OS_OPTS,
    .pos = {{"NAME|ADDR", false}},
    .npos = 1,
    .run = run_sym,
};
