/*
 * Hosted: a JSON profile from a file, plain (mapped, parsed in place), xz
 * (liblzma) or gzip (zlib), recognised by magic bytes.  Decompression has a
 * memory limit and an output limit: a hostile file cannot make us allocate
 * without bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "profile/profile.h"

#define OUT_LIMIT (1ull << 30)        /* decompressed bytes */
#define XZ_MEMLIMIT (256ull << 20)    /* liblzma's own memory */

typedef struct obuf {
    char *p;
    size_t len, cap;
} obuf_t;

/* Room for more output: doubling (glibc's realloc of large blocks remaps
 * rather than copies). */
static int obuf_grow(obuf_t *o, size_t hint)
{
    if (o->cap >= OUT_LIMIT)
        return TINYVMI_ERANGE;
    size_t ncap = o->cap ? o->cap * 2 : (hint > 4096 ? hint : 4096);
    if (ncap > OUT_LIMIT)
        ncap = OUT_LIMIT;
    char *np = realloc(o->p, ncap);
    if (!np)
        return TINYVMI_ENOMEM;
    o->p = np;
    o->cap = ncap;
    return 0;
}

static int unxz(const tv_pctx_t *ctx, const char *path, const uint8_t *in,
                size_t len, obuf_t *o)
{
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, XZ_MEMLIMIT, LZMA_CONCATENATED) != LZMA_OK)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "profile %s: cannot start the "
                        "xz decoder", path);
    s.next_in = in;
    s.avail_in = len;
    int rc = 0;
    for (;;) {
        if (o->len == o->cap && (rc = obuf_grow(o, len * 4)) != 0) {
            rc = tv_pfail(ctx, rc, "profile %s: %s", path,
                          rc == TINYVMI_ENOMEM ? "out of memory"
                                               : "decompresses to more than "
                                                 "1 GiB");
            break;
        }
        s.next_out = (uint8_t *)o->p + o->len;
        s.avail_out = o->cap - o->len;
        lzma_ret r = lzma_code(&s, LZMA_FINISH);
        o->len = o->cap - s.avail_out;
        if (r == LZMA_STREAM_END)
            break;
        if (r == LZMA_OK || (r == LZMA_BUF_ERROR && s.avail_out == 0))
            continue;
        const char *why = r == LZMA_MEMLIMIT_ERROR ? "needs too much memory"
                          : r == LZMA_BUF_ERROR    ? "is truncated"
                          : r == LZMA_MEM_ERROR    ? "out of memory"
                                                   : "is corrupt";
        rc = tv_pfail(ctx, r == LZMA_BUF_ERROR ? TINYVMI_ETRUNC
                                               : TINYVMI_EFORMAT,
                      "profile %s: xz data %s (after %zu bytes of output)",
                      path, why, o->len);
        break;
    }
    lzma_end(&s);
    return rc;
}

static int ungz(const tv_pctx_t *ctx, const char *path, const uint8_t *in,
                size_t len, obuf_t *o)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "profile %s: cannot start "
                        "zlib", path);
    size_t at = 0;
    int rc = 0;
    for (;;) {
        if (o->len == o->cap && (rc = obuf_grow(o, len * 4)) != 0) {
            rc = tv_pfail(ctx, rc, "profile %s: %s", path,
                          rc == TINYVMI_ENOMEM ? "out of memory"
                                               : "decompresses to more than "
                                                 "1 GiB");
            break;
        }
        size_t in_chunk = len - at > (1u << 30) ? (1u << 30) : len - at;
        size_t out_chunk = o->cap - o->len > (1u << 30) ? (1u << 30)
                                                        : o->cap - o->len;
        z.next_in = (Bytef *)(uintptr_t)(in + at);
        z.avail_in = (uInt)in_chunk;
        z.next_out = (Bytef *)o->p + o->len;
        z.avail_out = (uInt)out_chunk;
        int r = inflate(&z, Z_NO_FLUSH);
        at += in_chunk - z.avail_in;
        o->len += out_chunk - z.avail_out;
        if (r == Z_STREAM_END)
            break;
        if (r == Z_OK || (r == Z_BUF_ERROR && z.avail_out == 0))
            continue;
        rc = tv_pfail(ctx, r == Z_BUF_ERROR ? TINYVMI_ETRUNC
                                            : TINYVMI_EFORMAT,
                      "profile %s: gzip data %s (after %zu bytes of output)",
                      path, r == Z_BUF_ERROR ? "is truncated" : "is corrupt",
                      o->len);
        break;
    }
    inflateEnd(&z);
    return rc;
}

/* Prefixes the loader's reason with the file name. */
static int name_file(const tv_pctx_t *ctx, const char *path, int rc)
{
    if (!ctx->err || !ctx->errlen)
        return rc;
    char *why = strdup(ctx->err);
    if (!why)
        return rc;
    tv_pfail(ctx, rc, "profile %s: %s", path, why);
    free(why);
    return rc;
}

int tv_profile_load_file(const tv_pctx_t *ctx, const char *path,
                         tv_symtab_t **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tv_pfail(ctx, errno == ENOENT ? TINYVMI_ENOENT : TINYVMI_EIO,
                        "profile %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tv_pfail(ctx, TINYVMI_EIO, "profile %s: not a regular file",
                        path);
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        return tv_pfail(ctx, TINYVMI_ETRUNC, "profile %s: empty file", path);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return tv_pfail(ctx, TINYVMI_EIO, "profile %s: cannot map: %s", path,
                        strerror(errno));
    const uint8_t *in = map;
    static const uint8_t xz_magic[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
    obuf_t o = {0};
    const char *json = (const char *)in;
    size_t jlen = len;
    int rc = 0;
    if (len >= 6 && memcmp(in, xz_magic, 6) == 0) {
        (void)madvise(map, len, MADV_SEQUENTIAL);
        rc = unxz(ctx, path, in, len, &o);
        json = o.p;
        jlen = o.len;
        munmap(map, len);
        map = NULL;
    } else if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        rc = ungz(ctx, path, in, len, &o);
        json = o.p;
        jlen = o.len;
        munmap(map, len);
        map = NULL;
    }
    tv_symtab_t *t = NULL;
    if (rc == 0 && (rc = tv_symtab_new(ctx, &t)) == 0) {
        rc = tv_profile_load_json(ctx, json, jlen, t);
        if (rc == 0 && (rc = tv_symtab_finish(t)) != 0)
            rc = tv_pfail(ctx, rc, "out of memory indexing the table");
        if (rc != 0)
            rc = name_file(ctx, path, rc);
    }
    if (map)
        munmap(map, len);
    free(o.p);
    if (rc != 0) {
        tv_symtab_free(t);
        return rc;
    }
    *out = t;
    return 0;
}
