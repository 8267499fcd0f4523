/* tinyvmi read: bytes at a kernel virtual, page-table or physical address,
 * as a hex dump or raw.  Streams in chunks, so LEN has no limit but the
 * address space; a read that stops early shows what it got, then why. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define READ_CHUNK (256u << 10) /* a multiple of 16: hex dump lines */

typedef struct reader {
    cli_t *c;
    access_context_t ctx;
    uint64_t addr, len, done;
    bool raw;
} reader_t;

static void emit(const reader_t *r, const unsigned char *buf, size_t n)
{
    if (r->raw)
        fwrite(buf, 1, n, stdout);
    else
        cli_hexdump(stdout, r->addr + r->done, buf, n);
}

/* Reads and prints; false at the first byte that cannot be read. */
static bool read_all(reader_t *r, unsigned char *buf)
{
    while (r->done < r->len) {
        uint64_t left = r->len - r->done;
        size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK, got = 0;
        r->ctx.addr = r->addr + r->done;
        status_t st = vmi_read(r->c->vmi, &r->ctx, n, buf, &got);
        emit(r, buf, got);
        r->done += got;
        if (st != VMI_SUCCESS || got < n)
            return false;
    }
    return true;
}

static int check_span(cli_t *c, uint64_t addr, uint64_t len)
{
    if (len == 0)
        return cli_fail(c, CLI_USAGE, "LEN must be at least 1");
    if (len - 1 > UINT64_MAX - addr)
        return cli_fail(c, CLI_USAGE, "ADDR 0x%" PRIx64 " + LEN 0x%" PRIx64
                        " runs past the end of the address space", addr, len);
    return CLI_OK;
}

static int read_run(cli_t *c)
{
    reader_t r = {.c = c, .addr = c->num[0], .len = c->num[1],
                  .raw = (c->given & OPT_RAW) != 0};
    bool pa = (c->given & OPT_PA) != 0;
    int rc = check_span(c, r.addr, r.len);
    if (!rc && !pa)
        rc = cli_paging(c, true);
    if (rc)
        return rc;
    r.ctx = (access_context_t){.version = ACCESS_CONTEXT_VERSION,
                               .tm = pa ? VMI_TM_NONE : VMI_TM_PROCESS_DTB,
                               .dtb = pa ? 0 : vmi_get_kernel_dtb(c->vmi)};
    unsigned char *buf = malloc(READ_CHUNK);
    if (!buf)
        return cli_fail(c, CLI_FAILED, "out of memory");
    bool ok = read_all(&r, buf);
    free(buf);
    rc = cli_flush(c);
    if (!ok)
        rc = cli_fail(c, CLI_FAILED, "reading %s 0x%" PRIx64 ": read %" PRIu64
                      " of %" PRIu64 " bytes: %s", pa ? "physical" : "virtual",
                      r.addr, r.done, r.len, tinyvmi_last_error(c->vmi));
    return rc;
}

const cli_cmd_t cli_cmd_read = {
    .name = "read",
    .synopsis = "TARGET ADDR LEN [--pa | --dtb DTB] [--raw]",
    .summary = "read LEN bytes at ADDR: a kernel virtual address by default",
    .help = "ADDR is translated with the kernel's page tables (vCPU 0's\n"
            "CR3), with the page tables at --dtb DTB, or not at all with\n"
            "--pa.  Output is a hex dump (address, 16 bytes, ASCII) or, with\n"
            "--raw, the bytes themselves.  A read that stops early (an\n"
            "unmapped page, the end of memory) prints what it read, then the\n"
            "error, and exits 1.\n",
    .opts = OPT_GLOBAL | OPT_PA | OPT_RAW | OPT_PROFILE | OPT_CONFIG,
    .pos = {{"ADDR", true}, {"LEN", true}},
    .npos = 2,
    .run = read_run,
};
