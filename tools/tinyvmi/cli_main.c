/*
 * tinyvmi: introspection from the command line.
 *   tinyvmi COMMAND TARGET [ARGS] [OPTIONS]
 * Commands are a table; options are parsed once and each command says
 * which it accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define TINYVMI_VERSION "0.1.0"

static const cli_cmd_t commands[] = {
    {"info", "TARGET", "format, RAM layout, vCPUs and page mode",
     "--json --page-mode --dtb", 0, cmd_info},
    {"read", "TARGET ADDR LEN",
     "read memory (kernel virtual by default) as a hex dump",
     "--pa --dtb --page-mode --raw", 2, cmd_read},
    {"translate", "TARGET VA",
     "physical address of VA and the page-table entries walked",
     "--dtb --page-mode --json", 1, cmd_translate},
    {"dump", "TARGET OUT", "write physical memory as a raw image",
     "--force", 1, cmd_dump},
};

static const char usage_tail[] =
    "\nTARGET is a memory dump: raw, ELF core (QEMU, libvirt) or LiME; the\n"
    "format is found from its content.\n"
    "\nOptions:\n"
    "  --pa               ADDR is physical (read)\n"
    "  --dtb DTB          page-table root to translate with (default: the\n"
    "                     kernel's, from vCPU 0's CR3)\n"
    "  --page-mode MODE   legacy, pae, ia32e or la57: for raw images, which\n"
    "                     carry no registers (needs --dtb there)\n"
    "  --raw              write the bytes read as they are (read)\n"
    "  --json             machine-readable output (info, translate)\n"
    "  --force            overwrite OUT (dump)\n"
    "  -h, --help         this help; --version\n"
    "\nExit codes: 0 success; 1 the operation failed (unmapped address,\n"
    "partial read, I/O error); 2 usage error; 3 the target could not be\n"
    "opened or set up.\n";

static void usage(FILE *f, const cli_cmd_t *only)
{
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const cli_cmd_t *c = &commands[i];
        if (!only || only == c)
            fprintf(f, "  tinyvmi %-9s %-18s %s\n", c->name, c->args,
                    c->summary);
    }
    if (only)
        fprintf(f, "options: %s\n", only->options);
    fputs(usage_tail, f);
}

static const struct {
    const char *name;
    page_mode_t mode;
} page_modes[] = {{"legacy", VMI_PM_LEGACY}, {"pae", VMI_PM_PAE},
                  {"ia32e", VMI_PM_IA32E},   {"la57", VMI_PM_LA57}};

static bool parse_page_mode(const char *s, page_mode_t *out)
{
    for (size_t i = 0; i < sizeof page_modes / sizeof page_modes[0]; i++)
        if (s && strcmp(s, page_modes[i].name) == 0) {
            *out = page_modes[i].mode;
            return true;
        }
    return false;
}

/* Whether the space-separated list names option o exactly. */
static bool accepts(const char *list, const char *o)
{
    size_t n = strlen(o);
    for (const char *p = list; (p = strstr(p, o)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Options with their flag in cli_t; those taking a value are handled in
 * parse_opt. */
static int parse_opt(cli_t *c, const cli_cmd_t *cmd, char **argv, int *i)
{
    const char *o = argv[*i];
    if (!accepts(cmd->options, o))
        return cli_fail(c, CLI_USAGE, "option %s does not apply (see "
                        "tinyvmi %s --help)", o, cmd->name);
    if (strcmp(o, "--pa") == 0)
        c->pa = true;
    else if (strcmp(o, "--raw") == 0)
        c->raw = true;
    else if (strcmp(o, "--json") == 0)
        c->json = true;
    else if (strcmp(o, "--force") == 0)
        c->force = true;
    else if (strcmp(o, "--dtb") == 0) {
        unsigned long long v;
        if (!cli_number(argv[++*i], &v))
            return cli_fail(c, CLI_USAGE, "--dtb needs a number");
        c->dtb = v;
        c->have_dtb = true;
    } else if (strcmp(o, "--page-mode") == 0) {
        if (!parse_page_mode(argv[++*i], &c->page_mode))
            return cli_fail(c, CLI_USAGE,
                            "--page-mode takes legacy, pae, ia32e or la57");
    } else {
        return cli_fail(c, CLI_USAGE, "unknown option %s", o);
    }
    return CLI_OK;
}

static int parse_args(cli_t *c, const cli_cmd_t *cmd, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, cmd);
            exit(CLI_OK);
        }
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            int rc = parse_opt(c, cmd, argv, &i);
            if (rc)
                return rc;
        } else if (!c->target) {
            c->target = argv[i];
        } else if (c->nargs < cmd->nargs) {
            c->arg[c->nargs++] = argv[i];
        } else {
            return cli_fail(c, CLI_USAGE, "unexpected argument %s", argv[i]);
        }
    }
    if (!c->target || c->nargs != cmd->nargs)
        return cli_fail(c, CLI_USAGE, "usage: tinyvmi %s %s", cmd->name,
                        cmd->args);
    if (c->pa && c->have_dtb)
        return cli_fail(c, CLI_USAGE, "--pa and --dtb exclude each other");
    return CLI_OK;
}

static int open_target(cli_t *c)
{
    vmi_init_error_t err;
    if (vmi_init(&c->vmi, VMI_FILE, c->target, VMI_INIT_DOMAINNAME, NULL,
                 &err) != VMI_SUCCESS)
        return cli_fail(c, CLI_NOTARGET, "%s", tinyvmi_init_error());
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli_t c = {.page_mode = VMI_PM_UNKNOWN};
    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout, NULL);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tinyvmi " TINYVMI_VERSION "\n");
        return CLI_OK;
    }
    const cli_cmd_t *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "tinyvmi: unknown command %s\n", argv[1]);
        usage(stderr, NULL);
        return CLI_USAGE;
    }
    c.cmd = cmd->name;
    int rc = parse_args(&c, cmd, argc, argv);
    if (!rc)
        rc = open_target(&c);
    if (!rc)
        rc = cmd->run(&c);
    vmi_destroy(c.vmi);
    return rc;
}
