/*
 * tinyvmi dump: physical memory as a raw image, file offset = physical
 * address.  Holes between RAM ranges (and all-zero pages) are left as
 * sparse holes, never written.  The image is written to a temporary file
 * beside OUT and renamed into place at the end, so OUT is never partial:
 * on failure or on a signal the temporary file is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CHUNK (8u << 20)
#define PAGE 4096u

/* The temporary file, for the signal handler to remove. */
static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_live;

typedef struct dumper {
    cli_t *c;
    const char *out;
    int fd;
    unsigned char *buf;
    uint64_t done, total;
    bool tty;
    int shown; /* progress shown, in percent; -1 none yet */
} dumper_t;

/* ---- The temporary file -------------------------------------------------- */

static void on_signal(int sig)
{
    if (tmp_live)
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        /* Leave ignored signals ignored (nohup). */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
    /* Past a file size limit, pwrite fails with EFBIG: an error we
     * report and clean up after, instead of dying. */
    signal(SIGXFSZ, SIG_IGN);
}

/* "DIR/.BASE.tinyvmi-XXXXXX" beside out, created 0600: images of guest
 * memory hold its secrets. */
static int make_tmp(dumper_t *d)
{
    const char *slash = strrchr(d->out, '/');
    int dirlen = slash ? (int)(slash - d->out + 1) : 0;
    const char *base = slash ? slash + 1 : d->out;
    int n = snprintf(tmp_path, sizeof tmp_path, "%.*s.%s.tinyvmi-XXXXXX",
                     dirlen, d->out, base);
    if (n < 0 || (size_t)n >= sizeof tmp_path)
        return cli_fail(d->c, CLI_FAILED, "%s: path too long", d->out);
    catch_signals();
    tmp_live = 1; /* before mkstemp: no window without clean-up */
    d->fd = mkstemp(tmp_path);
    if (d->fd >= 0)
        return CLI_OK;
    tmp_live = 0;
    return cli_fail(d->c, CLI_FAILED, "creating a file beside %s: %s",
                    d->out, strerror(errno));
}

static void drop_tmp(dumper_t *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    if (tmp_live)
        unlink(tmp_path);
    tmp_live = 0;
}

/* Into place: never over an existing OUT without --force, atomically. */
static int publish(dumper_t *d, bool force)
{
    int rc = force ? rename(tmp_path, d->out)
                   : renameat2(AT_FDCWD, tmp_path, AT_FDCWD, d->out,
                               RENAME_NOREPLACE);
    if (rc != 0 && !force && (errno == EINVAL || errno == ENOSYS)) {
        /* The file system cannot; link() refuses to replace too. */
        rc = link(tmp_path, d->out);
        if (rc == 0)
            unlink(tmp_path);
    }
    if (rc != 0)
        return cli_fail(d->c, CLI_FAILED, "%s: %s%s", d->out, strerror(errno),
                        errno == EEXIST ? " (use --force to overwrite)" : "");
    tmp_live = 0;
    return CLI_OK;
}

/* ---- Checks before writing ---------------------------------------------- */

static int check_out(cli_t *c, const char *out, bool force)
{
    struct stat so, st;
    if (lstat(out, &so) != 0)
        return errno == ENOENT ? CLI_OK
                               : cli_fail(c, CLI_FAILED, "%s: %s", out,
                                          strerror(errno));
    if (!force)
        return cli_fail(c, CLI_FAILED, "%s exists (use --force to "
                        "overwrite it)", out);
    if (!S_ISREG(so.st_mode))
        return cli_fail(c, CLI_FAILED, "%s is not a regular file: not "
                        "replacing it", out);
    if (stat(c->target, &st) == 0 && st.st_dev == so.st_dev &&
        st.st_ino == so.st_ino)
        return cli_fail(c, CLI_FAILED, "%s is the target itself", out);
    return CLI_OK;
}

/* ---- Copying -------------------------------------------------------------- */

static void progress(dumper_t *d)
{
    int pct = d->total ? (int)(d->done * 100 / d->total) : 100;
    if (!d->tty || pct == d->shown)
        return;
    d->shown = pct;
    fprintf(stderr, "\rdump: [%-40.*s] %3d%% %" PRIu64 "/%" PRIu64 " MiB",
            pct * 40 / 100, "########################################", pct,
            d->done >> 20, d->total >> 20);
}

static int write_at(dumper_t *d, const unsigned char *p, size_t n,
                    uint64_t pa)
{
    while (n) {
        ssize_t k = pwrite(d->fd, p, n, (off_t)pa);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return cli_fail(d->c, CLI_FAILED, "writing %s at 0x%" PRIx64
                            ": %s", d->out, pa,
                            k < 0 ? strerror(errno) : "no progress");
        p += k;
        n -= (size_t)k;
        pa += (uint64_t)k;
    }
    return CLI_OK;
}

static bool zero_page(const unsigned char *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Writes the runs of pages that are not all zero; the rest stays a
 * hole, which reads as zero. */
static int write_sparse(dumper_t *d, const unsigned char *buf, size_t n,
                        uint64_t pa)
{
    size_t run = 0; /* start of the current run of data pages */
    for (size_t at = 0; at < n; at += PAGE) {
        size_t len = n - at < PAGE ? n - at : PAGE;
        if (!zero_page(buf + at, len))
            continue;
        if (at > run && write_at(d, buf + run, at - run, pa + run))
            return CLI_FAILED;
        run = at + len;
    }
    return run < n ? write_at(d, buf + run, n - run, pa + run) : CLI_OK;
}

static int copy_range(dumper_t *d, const tinyvmi_range_t *r)
{
    for (uint64_t off = 0; off < r->size; off += CHUNK) {
        uint64_t left = r->size - off;
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        if (vmi_read_pa(d->c->vmi, r->start + off, n, d->buf, NULL) !=
            VMI_SUCCESS)
            return cli_fail(d->c, CLI_FAILED, "reading physical 0x%" PRIx64
                            ": %s", r->start + off,
                            tinyvmi_last_error(d->c->vmi));
        if (write_sparse(d, d->buf, n, r->start + off))
            return CLI_FAILED;
        d->done += n;
        progress(d);
    }
    return CLI_OK;
}

static int copy_all(dumper_t *d)
{
    size_t n = tinyvmi_range_count(d->c->vmi);
    for (size_t i = 0; i < n; i++) {
        tinyvmi_range_t r;
        if (tinyvmi_range_get(d->c->vmi, i, &r) != VMI_SUCCESS)
            return cli_fail(d->c, CLI_FAILED, "RAM range %zu is missing", i);
        if (copy_range(d, &r))
            return CLI_FAILED;
    }
    /* The image ends where RAM does; trailing zero pages are a hole. */
    uint64_t end = vmi_get_max_physical_address(d->c->vmi);
    if (end > (uint64_t)INT64_MAX || ftruncate(d->fd, (off_t)end) != 0)
        return cli_fail(d->c, CLI_FAILED, "%s: setting its size to 0x%" PRIx64
                        ": %s", d->out, end, strerror(errno));
    if (close(d->fd) != 0) {
        d->fd = -1;
        return cli_fail(d->c, CLI_FAILED, "writing %s: %s", d->out,
                        strerror(errno));
    }
    d->fd = -1;
    return CLI_OK;
}

static int dump_run(cli_t *c)
{
    bool force = (c->given & OPT_FORCE) != 0;
    dumper_t d = {.c = c, .out = c->arg[0], .fd = -1,
                  .total = vmi_get_memsize(c->vmi),
                  .tty = isatty(STDERR_FILENO) == 1, .shown = -1};
    int rc = c->given & OPT_GLOBAL ? cli_paging(c, false) : CLI_OK;
    if (!rc)
        rc = check_out(c, d.out, force);
    if (!rc && !(d.buf = malloc(CHUNK)))
        rc = cli_fail(c, CLI_FAILED, "out of memory");
    if (!rc)
        rc = make_tmp(&d);
    if (!rc)
        rc = copy_all(&d);
    if (d.tty && d.shown >= 0)
        fputc('\n', stderr);
    if (!rc)
        rc = publish(&d, force);
    drop_tmp(&d);
    free(d.buf);
    if (!rc)
        printf("wrote %s: %" PRIu64 " bytes of RAM in %zu range(s), image "
               "size 0x%" PRIx64 "\n", d.out, d.done,
               tinyvmi_range_count(c->vmi),
               vmi_get_max_physical_address(c->vmi));
    return rc ? rc : cli_flush(c);
}

const cli_cmd_t cli_cmd_dump = {
    .name = "dump",
    .synopsis = "TARGET OUT [--force]",
    .summary = "write physical memory as a raw image (offset = physical "
               "address)",
    .help = "Any dump TinyVMI reads becomes a raw image: each RAM range at\n"
            "its physical address; holes between ranges (and all-zero pages)\n"
            "are left sparse and read as zero.  OUT is created with mode\n"
            "0600 (guest memory holds secrets), written beside its final\n"
            "name and renamed into place, so it is never left half-written;\n"
            "an existing OUT is replaced only with --force.  A progress bar\n"
            "is shown on stderr when it is a terminal.\n",
    .opts = OPT_GLOBAL | OPT_FORCE,
    .pos = {{"OUT", false}},
    .npos = 1,
    .run = dump_run,
};
