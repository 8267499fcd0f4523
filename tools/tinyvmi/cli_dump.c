/* tinyvmi dump: physical memory as a raw image; holes stay sparse. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CHUNK (4u << 20)

static void progress(uint64_t done, uint64_t total)
{
    int pct = total ? (int)(done * 100 / total) : 100;
    int bar = pct / 4;
    fprintf(stderr, "\r[%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " MiB", bar,
            "#########################", 25 - bar, "", pct, done >> 20,
            total >> 20);
}

static int copy_range(cli_t *c, int fd, const tinyvmi_range_t *r,
                      unsigned char *buf, uint64_t *done, bool tty)
{
    for (uint64_t off = 0; off < r->size; off += CHUNK) {
        size_t n = r->size - off < CHUNK ? (size_t)(r->size - off) : CHUNK;
        if (vmi_read_pa(c->vmi, r->start + off, n, buf, NULL) != VMI_SUCCESS)
            return cli_fail(c, CLI_FAILED, "reading 0x%" PRIx64 ": %s",
                            r->start + off, tinyvmi_last_error(c->vmi));
        for (size_t w = 0; w < n;) {
            ssize_t k = pwrite(fd, buf + w, n - w,
                               (off_t)(r->start + off + w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return cli_fail(c, CLI_FAILED, "writing %s: %s", c->arg[0],
                                strerror(errno));
            w += (size_t)k;
        }
        *done += n;
        if (tty)
            progress(*done, vmi_get_memsize(c->vmi));
    }
    return CLI_OK;
}

int cmd_dump(cli_t *c)
{
    const char *out = c->arg[0];
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (c->force ? O_TRUNC : O_EXCL);
    int fd = open(out, flags, 0644);
    if (fd < 0)
        return cli_fail(c, errno == EEXIST ? CLI_USAGE : CLI_FAILED,
                        "%s: %s%s", out, strerror(errno),
                        errno == EEXIST ? " (use --force to overwrite)" : "");
    unsigned char *buf = malloc(CHUNK);
    bool tty = isatty(STDERR_FILENO);
    uint64_t done = 0;
    int rc = buf ? CLI_OK : cli_fail(c, CLI_FAILED, "out of memory");
    for (size_t i = 0; !rc && i < tinyvmi_range_count(c->vmi); i++) {
        tinyvmi_range_t r;
        tinyvmi_range_get(c->vmi, i, &r);
        rc = copy_range(c, fd, &r, buf, &done, tty);
    }
    /* The image ends at the last RAM byte; holes before it stay sparse. */
    if (!rc && ftruncate(fd, (off_t)vmi_get_max_physical_address(c->vmi)))
        rc = cli_fail(c, CLI_FAILED, "%s: %s", out, strerror(errno));
    if (close(fd) && !rc)
        rc = cli_fail(c, CLI_FAILED, "%s: %s", out, strerror(errno));
    if (tty)
        fputc('\n', stderr);
    free(buf);
    if (rc)
        unlink(out);
    else
        fprintf(stderr, "tinyvmi: dump: wrote %" PRIu64 " bytes of RAM to %s\n",
                done, out);
    return rc;
}
