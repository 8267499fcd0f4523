/* The tinyvmi command: parsing, errors, paging set-up, output helpers. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_fail(const cli_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tinyvmi: %s: ", c->cmd ? c->cmd : "error");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

bool cli_number(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno == 0 && *end == '\0';
}

/* Paging: --page-mode (with --dtb, or vCPU 0's CR3) for dumps without
 * registers; otherwise what vCPU 0's registers say. */
int cli_paging(cli_t *c, bool required)
{
    if (c->page_mode != VMI_PM_UNKNOWN) {
        addr_t dtb = c->dtb;
        uint64_t cr3;
        if (!c->have_dtb) {
            if (vmi_get_vcpureg(c->vmi, &cr3, CR3, 0) != VMI_SUCCESS)
                return cli_fail(c, CLI_USAGE, "--page-mode needs --dtb: %s",
                                tinyvmi_last_error(c->vmi));
            dtb = cr3;
        }
        if (tinyvmi_set_paging(c->vmi, c->page_mode, dtb) != VMI_SUCCESS)
            return cli_fail(c, CLI_NOTARGET, "paging: %s",
                            tinyvmi_last_error(c->vmi));
        return CLI_OK;
    }
    if (vmi_init_paging(c->vmi, 0) != VMI_PM_UNKNOWN || !required)
        return CLI_OK;
    return cli_fail(c, CLI_NOTARGET,
                    "cannot translate: %s", tinyvmi_last_error(c->vmi));
}

addr_t cli_dtb(const cli_t *c)
{
    return c->have_dtb ? c->dtb : vmi_get_kernel_dtb(c->vmi);
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void cli_hexdump(FILE *f, addr_t base, const unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 16) {
        fprintf(f, "%016llx  ", (unsigned long long)(base + i));
        for (size_t j = 0; j < 16; j++) {
            if (i + j < n)
                fprintf(f, "%02x ", buf[i + j]);
            else
                fputs("   ", f);
            if (j == 7)
                fputc(' ', f);
        }
        fputs(" |", f);
        for (size_t j = 0; j < 16 && i + j < n; j++)
            fputc(isprint(buf[i + j]) ? buf[i + j] : '.', f);
        fputs("|\n", f);
    }
}
