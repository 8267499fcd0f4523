/* The tinyvmi command: errors, number parsing, paging set-up and output
 * helpers shared by the commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

int cli_fail(const cli_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* what was printed comes before the error */
    fprintf(stderr, "tinyvmi: %s: ", c && c->cmd ? c->cmd->name : "error");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* ---- Parsing ------------------------------------------------------------ */

static int digit_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Not strtoull: it takes signs, blanks and octal ("010" is 8). */
bool cli_parse_u64(const char *s, uint64_t *out)
{
    uint64_t base = 10, v = 0;
    if (!s)
        return false;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        int d = digit_value(*s);
        if (d < 0 || (uint64_t)d >= base)
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / base)
            return false; /* overflow */
        v = v * base + (uint64_t)d;
    }
    *out = v;
    return true;
}

static const struct {
    const char *name;
    page_mode_t mode;
} page_modes[] = {
    {"legacy", VMI_PM_LEGACY},
    {"pae", VMI_PM_PAE},
    {"ia32e", VMI_PM_IA32E},
    {"la57", VMI_PM_LA57},
    {"aarch64", VMI_PM_AARCH64},
    {"aarch32", VMI_PM_AARCH32},
};

bool cli_parse_page_mode(const char *s, page_mode_t *out)
{
    for (size_t i = 0; s && i < sizeof page_modes / sizeof page_modes[0];
         i++) {
        if (strcasecmp(s, page_modes[i].name) == 0) {
            *out = page_modes[i].mode;
            return true;
        }
    }
    return false;
}

/* ---- Paging ------------------------------------------------------------- */

/* --dtb and/or --page-mode: the other half comes from the dump's vCPU 0.
 * The result goes through tinyvmi_set_paging, so the kernel DTB every
 * command uses is the one asked for. */
/* ARM: TCR/TTBCR and the roots, all given (ARM dumps carry none). */
static int arm_by_hand(cli_t *c)
{
    const char *m = tinyvmi_page_mode_name(c->page_mode);
    if (!(c->given & OPT_TCR) || !(c->given & OPT_DTB))
        return cli_fail(c, CLI_USAGE, "--page-mode %s needs --tcr and --dtb "
                        "(TTBR1; TTBR0 where one range maps everything)", m);
    if (tinyvmi_set_paging_arm(c->vmi, c->page_mode, c->tcr,
                               c->given & OPT_TTBR0 ? c->ttbr0 : c->dtb,
                               c->dtb) != VMI_SUCCESS)
        return cli_fail(c, CLI_NOTARGET, "setting up %s paging: %s", m,
                        tinyvmi_last_error(c->vmi));
    return CLI_OK;
}

static int paging_by_hand(cli_t *c)
{
    page_mode_t mode = c->page_mode;
    uint64_t dtb = c->dtb;
    if (mode == VMI_PM_AARCH64 || mode == VMI_PM_AARCH32)
        return arm_by_hand(c);
    if (c->given & (OPT_TCR | OPT_TTBR0))
        return cli_fail(c, CLI_USAGE, "--tcr and --ttbr0 go with --page-mode "
                        "aarch64 or aarch32");
    if (!(c->given & OPT_PAGE_MODE)) {
        mode = vmi_init_paging(c->vmi, 0);
        if (mode == VMI_PM_UNKNOWN)
            return cli_fail(c, CLI_NOTARGET,
                            "--dtb given, but the page mode is unknown: "
                            "%s; add --page-mode",
                            tinyvmi_last_error(c->vmi));
    }
    if (!(c->given & OPT_DTB) &&
        vmi_get_vcpureg(c->vmi, &dtb, CR3, 0) != VMI_SUCCESS)
        return cli_fail(c, CLI_NOTARGET,
                        "--page-mode given, but no page-table root: %s; "
                        "add --dtb", tinyvmi_last_error(c->vmi));
    if (tinyvmi_set_paging(c->vmi, mode, dtb) != VMI_SUCCESS)
        return cli_fail(c, CLI_NOTARGET, "setting up %s paging: %s",
                        tinyvmi_page_mode_name(mode),
                        tinyvmi_last_error(c->vmi));
    return CLI_OK;
}

int cli_paging(cli_t *c, bool need)
{
    if (c->given & OPT_GLOBAL)
        return paging_by_hand(c);
    if (vmi_init_paging(c->vmi, 0) != VMI_PM_UNKNOWN || !need)
        return CLI_OK;
    /* No paging registers (a raw image, an ARM dump): the OS layer finds
     * the kernel's own page tables, with the profile given or none. */
    char why[256];
    snprintf(why, sizeof why, "%s", tinyvmi_last_error(c->vmi));
    if (!(c->profile && c->config) &&
        cli_start_os(c) != VMI_OS_UNKNOWN &&
        vmi_get_page_mode(c->vmi, 0) != VMI_PM_UNKNOWN)
        return CLI_OK;
    return cli_fail(c, CLI_NOTARGET, "cannot translate virtual addresses: %s; "
                    "and the kernel's own page tables were not found: %s "
                    "(give --page-mode/--dtb)", why,
                    tinyvmi_last_error(c->vmi));
}

/* ---- Output ------------------------------------------------------------- */

int cli_flush(const cli_t *c)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return CLI_OK;
    return cli_fail(c, CLI_FAILED, "writing output: %s",
                    errno ? strerror(errno) : "write error");
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4   ? 4
               : s[0] >= 0xe0                 ? 3
               : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Paths and reasons may hold any bytes: invalid UTF-8 becomes U+FFFD so
 * the output always parses. */
void cli_json_str(FILE *f, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    fputc('"', f);
    while (*s) {
        size_t n = *s < 0x80 ? 1 : utf8_len(s);
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s < 0x20 || *s == 0x7f)
            fprintf(f, "\\u%04x", *s);
        else if (n == 0)
            fputs("\\ufffd", f);
        else
            fwrite(s, 1, n, f);
        s += n ? n : 1;
    }
    fputc('"', f);
}

const char *cli_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    uint64_t v = bytes;
    while (v && v % 1024 == 0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%llu %s", (unsigned long long)v, units[u]);
    return buf;
}

void cli_hexdump(FILE *f, uint64_t addr, const unsigned char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i += 16) {
        char line[96], *p = line;
        size_t k = n - i < 16 ? n - i : 16;
        p += snprintf(line, sizeof line, "%016llx  ",
                      (unsigned long long)(addr + i));
        for (size_t j = 0; j < 16; j++) {
            unsigned char b = buf[i + j < n ? i + j : 0];
            *p++ = j < k ? hex[b >> 4] : ' ';
            *p++ = j < k ? hex[b & 15] : ' ';
            *p++ = ' ';
            if (j == 7)
                *p++ = ' ';
        }
        *p++ = ' ';
        *p++ = '|';
        for (size_t j = 0; j < k; j++) {
            unsigned char b = buf[i + j];
            *p++ = b >= 0x20 && b < 0x7f ? (char)b : '.';
        }
        *p++ = '|';
        *p++ = '\n';
        fwrite(line, 1, (size_t)(p - line), f);
    }
}
