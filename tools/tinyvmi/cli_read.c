/* tinyvmi read: bytes at a virtual or physical address. */
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

#define READ_MAX (64ULL << 20)

int cmd_read(cli_t *c)
{
    unsigned long long addr, len;
    if (!cli_number(c->arg[0], &addr) || !cli_number(c->arg[1], &len))
        return cli_fail(c, CLI_USAGE, "ADDR and LEN must be numbers");
    if (len == 0 || len > READ_MAX)
        return cli_fail(c, CLI_USAGE, "LEN must be 1 to %llu bytes", READ_MAX);
    if (!c->pa) {
        int rc = cli_paging(c, true);
        if (rc)
            return rc;
    }
    ACCESS_CONTEXT(ctx, .addr = addr);
    ctx.tm = c->pa ? VMI_TM_NONE : VMI_TM_PROCESS_DTB;
    ctx.dtb = c->pa ? 0 : cli_dtb(c);
    unsigned char *buf = malloc(len);
    if (!buf)
        return cli_fail(c, CLI_FAILED, "out of memory for %llu bytes", len);
    size_t got = 0;
    status_t st = vmi_read(c->vmi, &ctx, len, buf, &got);
    if (c->raw)
        fwrite(buf, 1, got, stdout);
    else
        cli_hexdump(stdout, addr, buf, got);
    free(buf);
    if (fflush(stdout) != 0)
        return cli_fail(c, CLI_FAILED, "writing output failed");
    if (st != VMI_SUCCESS)
        return cli_fail(c, CLI_FAILED, "read %zu of %llu bytes at 0x%llx: %s",
                        got, len, addr, tinyvmi_last_error(c->vmi));
    return CLI_OK;
}
