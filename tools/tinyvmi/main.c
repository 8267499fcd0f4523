/*
 * tinyvmi: introspection from the command line.
 *   tinyvmi COMMAND TARGET [ARGS] [OPTIONS]
 * Commands are a table; options are a table too, and each command says
 * which options it accepts.  Everything the command line says is checked
 * (exit 2) before the target is opened (exit 3).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_cmd_t *const commands[] = {
    &cli_cmd_info, &cli_cmd_read, &cli_cmd_translate, &cli_cmd_dump,
    &cli_cmd_ps, &cli_cmd_modules, &cli_cmd_sym, &cli_cmd_trace,
    &cli_cmd_profile,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

typedef struct cli_opt {
    const char *name;
    unsigned bit;
    const char *value; /* its argument's name, or NULL for a flag */
    const char *help;
} cli_opt_t;

static const cli_opt_t options[] = {
    {"--page-mode", OPT_PAGE_MODE, "MODE",
     "legacy, pae, ia32e, la57, aarch64 or aarch32: the paging\n"
     "mode, for dumps without paging registers (raw images, ARM\n"
     "ELF dumps; give --dtb too, and --tcr for ARM)"},
    {"--dtb", OPT_DTB, "DTB",
     "page-table root (a CR3 value; ARM: TTBR1, or TTBR0 where\n"
     "it maps everything) to translate with; alone, on a dump\n"
     "with registers, the dump's page mode is kept"},
    {"--tcr", OPT_TCR, "TCR",
     "ARM: TCR_EL1 (aarch64) or TTBCR (aarch32), which picks the\n"
     "granule, address sizes and descriptor format"},
    {"--ttbr0", OPT_TTBR0, "TTBR0",
     "ARM: TTBR0, walked for kernel addresses in the low range\n"
     "(default: --dtb for both)"},
    {"--pa", OPT_PA, NULL, "ADDR is a physical address"},
    {"--raw", OPT_RAW, NULL, "write the bytes as they are, not a hex dump"},
    {"--json", OPT_JSON, NULL, "machine-readable output"},
    {"--count", OPT_COUNT, "N", "stop after N events"},
    {"--seconds", OPT_SECONDS, "S", "stop after S seconds"},
    {"--force", OPT_FORCE, NULL, "overwrite OUT if it exists"},
    {"--profile", OPT_PROFILE, "FILE",
     "symbols and types from a Volatility ISF (.json, .json.xz)\n"
     "or a Rekall profile, instead of the guest's BTF/kallsyms"},
    {"--symbols", OPT_SYMBOLS, "DIR",
     "Windows: a symbol directory laid out as Volatility 3's\n"
     "(DIR/windows/ntkrnlmp.pdb/GUIDAGE.json.xz); the profile\n"
     "is chosen by the kernel's GUID or by checking offsets"},
    {"--config", OPT_CONFIG, "FILE",
     "a libvmi.conf; its entry for TARGET (or its only entry)"},
    {"-o", OPT_OUTPUT, "FILE", "write to FILE instead of standard output"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static const char about[] =
    "TARGET is a memory dump: raw, ELF core (QEMU dump-guest-memory,\n"
    "libvirt), LiME or a Windows crash dump; its format is found from its\n"
    "content.  qemu:QMP_SOCKET is a live QEMU guest, xen:NAME or xen:ID a\n"
    "Xen domain (from dom0).  Numbers\n"
    "(ADDR, LEN, VA, DTB) are decimal or 0x-prefixed hexadecimal.\n";

static const char exit_codes[] =
    "Exit codes:\n"
    "  0  success\n"
    "  1  the operation failed (unmapped address, partial read, write "
    "error)\n"
    "  2  usage error\n"
    "  3  the target could not be opened or initialised (including its\n"
    "     paging: no vCPU registers and no --page-mode/--dtb)\n";

/* ---- Help ------------------------------------------------------------------ */

static void print_option(FILE *f, const cli_opt_t *o)
{
    char head[32];
    snprintf(head, sizeof head, "%s%s%s", o->name, o->value ? " " : "",
             o->value ? o->value : "");
    fprintf(f, "  %-17s ", head);
    for (const char *p = o->help; *p; p++) {
        fputc(*p, f);
        if (*p == '\n')
            fprintf(f, "  %-17s ", "");
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    fputs("usage: tinyvmi COMMAND TARGET [ARGS] [OPTIONS]\n"
          "       tinyvmi help [COMMAND] | --help | --version\n\n", f);
    fputs(about, f);
    fputs("\nCommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s %s\n      %s\n", commands[i]->name,
                commands[i]->synopsis, commands[i]->summary);
    fputs("\nOptions for every command that takes a TARGET:\n", f);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].bit & OPT_GLOBAL)
            print_option(f, &options[i]);
    fputs("  -h, --help        this help; tinyvmi COMMAND --help for a "
          "command's\n  --version         the version\n\n", f);
    fputs(exit_codes, f);
}

static void command_usage(FILE *f, const cli_cmd_t *cmd)
{
    fprintf(f, "usage: tinyvmi %s %s\n\n%s\n\n%s\nOptions:\n", cmd->name,
            cmd->synopsis, cmd->summary, cmd->help);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].bit & cmd->opts)
            print_option(f, &options[i]);
    fputs("  -h, --help        this help\n\n", f);
    fputs(about, f);
    fputc('\n', f);
    fputs(exit_codes, f);
}

/* ---- Arguments --------------------------------------------------------------- */

static const cli_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; name && i < NCOMMANDS; i++)
        if (strcmp(name, commands[i]->name) == 0)
            return commands[i];
    return NULL;
}

static const cli_opt_t *find_option(const char *arg, size_t len)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len &&
            strncmp(arg, options[i].name, len) == 0)
            return &options[i];
    return NULL;
}

static bool is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* Whether --help or -h comes before any "--". */
static bool wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (is_help(argv[i]))
            return true;
    return false;
}

static int set_option(cli_t *c, const cli_opt_t *o, const char *val)
{
    if (o->bit == OPT_DTB && !cli_parse_u64(val, &c->dtb))
        return cli_fail(c, CLI_USAGE, "--dtb: not a number: '%s' (decimal "
                        "or 0x-hex)", val);
    if (o->bit == OPT_PAGE_MODE && !cli_parse_page_mode(val, &c->page_mode))
        return cli_fail(c, CLI_USAGE, "--page-mode: unknown mode '%s' (legacy, "
                        "pae, ia32e, la57, aarch64 or aarch32)", val);
    if ((o->bit == OPT_TCR && !cli_parse_u64(val, &c->tcr)) ||
        (o->bit == OPT_TTBR0 && !cli_parse_u64(val, &c->ttbr0)))
        return cli_fail(c, CLI_USAGE, "%s: not a number: '%s' (decimal or "
                        "0x-hex)", o->name, val);
    if ((o->bit == OPT_COUNT && !cli_parse_u64(val, &c->count)) ||
        (o->bit == OPT_SECONDS && !cli_parse_u64(val, &c->seconds)))
        return cli_fail(c, CLI_USAGE, "%s: not a number: '%s'", o->name, val);
    if (o->bit == OPT_PROFILE)
        c->profile = val;
    if (o->bit == OPT_CONFIG)
        c->config = val;
    if (o->bit == OPT_SYMBOLS)
        c->symbols = val;
    if (o->bit == OPT_OUTPUT)
        c->output = val;
    c->given |= o->bit;
    return CLI_OK;
}

/* One option at argv[*i], as "--name", "--name VALUE" or "--name=VALUE". */
static int parse_option(cli_t *c, int argc, char **argv, int *i)
{
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const cli_opt_t *o = find_option(arg, len);
    if (!o)
        return cli_fail(c, CLI_USAGE, "unknown option %.*s (see tinyvmi %s "
                        "--help)", (int)len, arg, c->cmd->name);
    if (!(c->cmd->opts & o->bit))
        return cli_fail(c, CLI_USAGE, "option %s does not apply to %s (see "
                        "tinyvmi %s --help)", o->name, c->cmd->name,
                        c->cmd->name);
    if (c->given & o->bit)
        return cli_fail(c, CLI_USAGE, "option %s given twice", o->name);
    if (!o->value && eq)
        return cli_fail(c, CLI_USAGE, "option %s takes no value", o->name);
    if (!o->value)
        return set_option(c, o, NULL);
    if (!eq && *i + 1 >= argc)
        return cli_fail(c, CLI_USAGE, "option %s needs a value (%s)",
                        o->name, o->value);
    return set_option(c, o, eq ? eq + 1 : argv[++*i]);
}

/* Positional arguments: TARGET, then the command's own. */
static int add_positional(cli_t *c, int *n, const char *arg)
{
    const cli_cmd_t *cmd = c->cmd;
    if (*n > cmd->npos)
        return cli_fail(c, CLI_USAGE, "unexpected argument '%s' (usage: "
                        "tinyvmi %s %s)", arg, cmd->name, cmd->synopsis);
    if (*n == 0)
        c->target = arg;
    else
        c->arg[*n - 1] = arg;
    ++*n;
    return CLI_OK;
}

static int check_positionals(cli_t *c, int n)
{
    const cli_cmd_t *cmd = c->cmd;
    if (n <= cmd->npos)
        return cli_fail(c, CLI_USAGE, "missing %s (usage: tinyvmi %s %s)",
                        n == 0 ? "TARGET" : cmd->pos[n - 1].name, cmd->name,
                        cmd->synopsis);
    for (int k = 0; k < cmd->npos; k++)
        if (cmd->pos[k].number && !cli_parse_u64(c->arg[k], &c->num[k]))
            return cli_fail(c, CLI_USAGE, "%s: not a number: '%s' (decimal "
                            "or 0x-hex)", cmd->pos[k].name, c->arg[k]);
    if ((c->given & OPT_PA) && (c->given & OPT_DTB))
        return cli_fail(c, CLI_USAGE, "--pa and --dtb exclude each other "
                        "(--pa reads physical memory)");
    return CLI_OK;
}

static int parse_args(cli_t *c, int argc, char **argv)
{
    int n = 0, rc = CLI_OK;
    bool options_end = false;
    for (int i = 2; !rc && i < argc; i++) {
        const char *a = argv[i];
        if (!options_end && strcmp(a, "--") == 0)
            options_end = true;
        else if (!options_end && a[0] == '-' && a[1] != '\0' &&
                 !(a[1] >= '0' && a[1] <= '9')) /* "-1": a bad number */
            rc = parse_option(c, argc, argv, &i);
        else
            rc = add_positional(c, &n, a);
    }
    return rc ? rc : check_positionals(c, n);
}

/* ---- Running ------------------------------------------------------------------- */

/* The reason, without a leading "TARGET: " we say ourselves. */
static const char *init_reason(const char *target)
{
    const char *why = tinyvmi_init_error();
    size_t n = strlen(target);
    if (strncmp(why, target, n) == 0 && strncmp(why + n, ": ", 2) == 0)
        return why + n + 2;
    return *why ? why : "unknown error";
}

static int open_target(cli_t *c)
{
    vmi_init_error_t err;
    /* qemu:QMP_SOCKET is a live QEMU, xen:NAME or xen:ID a Xen domain;
     * anything else a dump file. */
    vmi_mode_t mode = !strncmp(c->target, "qemu:", 5)  ? VMI_KVM
                      : !strncmp(c->target, "xen:", 4) ? VMI_XEN
                                                       : VMI_FILE;
    if (vmi_init(&c->vmi, mode, c->target, VMI_INIT_DOMAINNAME, NULL,
                 &err) == VMI_SUCCESS)
        return CLI_OK;
    c->vmi = NULL;
    return cli_fail(c, CLI_NOTARGET, "cannot open %s: %s", c->target,
                    init_reason(c->target));
}

static int run_command(const cli_cmd_t *cmd, int argc, char **argv)
{
    cli_t c = {.cmd = cmd, .page_mode = VMI_PM_UNKNOWN};
    if (wants_help(argc, argv)) {
        command_usage(stdout, cmd);
        return cli_flush(&c);
    }
    int rc = parse_args(&c, argc, argv);
    if (!rc && !cmd->no_target)
        rc = open_target(&c);
    if (!rc)
        rc = cmd->run(&c);
    vmi_destroy(c.vmi);
    return rc;
}

static void list_commands(FILE *f)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "%s%s", i ? ", " : "", commands[i]->name);
}

static int no_such_command(const char *who, const char *name)
{
    fprintf(stderr, "tinyvmi: %sunknown command '%s' (commands: ", who, name);
    list_commands(stderr);
    fputs("; see tinyvmi --help)\n", stderr);
    return CLI_USAGE;
}

/* tinyvmi help [COMMAND] */
static int help_command(int argc, char **argv)
{
    if (argc > 3) {
        fputs("tinyvmi: help: too many arguments (usage: tinyvmi help "
              "[COMMAND])\n", stderr);
        return CLI_USAGE;
    }
    const cli_cmd_t *cmd = argc == 3 ? find_command(argv[2]) : NULL;
    if (argc == 3 && !cmd)
        return no_such_command("help: ", argv[2]);
    if (cmd)
        command_usage(stdout, cmd);
    else
        usage(stdout);
    return cli_flush(NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *first = argv[1];
    if (is_help(first)) {
        usage(stdout);
        return cli_flush(NULL);
    }
    if (strcmp(first, "--version") == 0) {
        printf("tinyvmi %s\n", CLI_VERSION);
        return cli_flush(NULL);
    }
    if (strcmp(first, "help") == 0)
        return help_command(argc, argv);
    const cli_cmd_t *cmd = find_command(first);
    if (!cmd)
        return no_such_command("", first);
    return run_command(cmd, argc, argv);
}
