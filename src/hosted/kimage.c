/*
 * Kernel image files.  The whole (decompressed) image is kept in memory:
 * a vmlinux is 50-100 MB, and the profile sources read all of .BTF and a
 * good part of .rodata anyway.
 */
#include "hosted/kimage.h"

#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include <tinyvmi/tinyvmi.h>

#include "core/tv.h"

#define KI_MAX_SEGS 64
#define KI_MAX_SECS 512
#define KI_MAX_DEPTH 3

typedef struct ki_seg {
    uint64_t vaddr, filesz, memsz, offset;
} ki_seg_t;

typedef struct ki_sec {
    char name[32];
    uint64_t addr, size;
} ki_sec_t;

struct tv_kimage {
    uint8_t *data;
    size_t len;
    bool elf;
    char format[64];
    ki_seg_t seg[KI_MAX_SEGS];
    size_t nseg;
    ki_sec_t sec[KI_MAX_SECS];
    size_t nsec;
    tv_reader_t reader;
};

static int ki_fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ki_fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---- Decompression ----------------------------------------------------------- */

typedef struct ki_out {
    uint8_t *p;
    size_t len, cap;
} ki_out_t;

/* Room for at least `more` bytes, within the size limit. */
static bool out_grow(ki_out_t *o, size_t more)
{
    if (o->cap - o->len >= more)
        return true;
    size_t cap = o->cap ? o->cap : ((size_t)16 << 20);
    while (cap - o->len < more) {
        if (cap >= TV_KIMAGE_MAX_SIZE)
            return false;
        cap *= 2;
    }
    if (cap > TV_KIMAGE_MAX_SIZE)
        cap = TV_KIMAGE_MAX_SIZE;
    if (cap - o->len < more)
        return false;
    uint8_t *p = realloc(o->p, cap);
    if (!p)
        return false;
    o->p = p;
    o->cap = cap;
    return true;
}

#define KI_STEP ((size_t)4 << 20)

static int unxz(const uint8_t *in, size_t n, ki_out_t *o, bool alone,
                char *err, size_t errlen)
{
    lzma_stream s = LZMA_STREAM_INIT;
    lzma_ret r = alone ? lzma_alone_decoder(&s, UINT64_MAX)
                       : lzma_stream_decoder(&s, UINT64_MAX, 0);
    if (r != LZMA_OK)
        return ki_fail(err, errlen, TINYVMI_ENOMEM, "xz: cannot start");
    s.next_in = in;
    s.avail_in = n;
    int rc = 0;
    for (;;) {
        if (!out_grow(o, KI_STEP)) {
            rc = ki_fail(err, errlen, TINYVMI_ERANGE, "decompressed image "
                         "larger than %llu bytes",
                         (unsigned long long)TV_KIMAGE_MAX_SIZE);
            break;
        }
        s.next_out = o->p + o->len;
        s.avail_out = o->cap - o->len;
        r = lzma_code(&s, LZMA_FINISH);
        o->len = o->cap - s.avail_out;
        if (r == LZMA_STREAM_END)
            break;
        if (r != LZMA_OK && r != LZMA_BUF_ERROR) {
            rc = ki_fail(err, errlen, TINYVMI_EFORMAT, "xz: corrupt data "
                         "(code %d)", (int)r);
            break;
        }
        if (r == LZMA_BUF_ERROR || (s.avail_in == 0 && s.avail_out != 0)) {
            rc = ki_fail(err, errlen, TINYVMI_ETRUNC, "xz: truncated data");
            break;
        }
    }
    lzma_end(&s);
    return rc;
}

static int ungzip(const uint8_t *in, size_t n, ki_out_t *o, char *err,
                  size_t errlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return ki_fail(err, errlen, TINYVMI_ENOMEM, "gzip: cannot start");
    int rc = 0;
    size_t left = n;
    const uint8_t *at = in;
    for (;;) {
        if (!out_grow(o, KI_STEP)) {
            rc = ki_fail(err, errlen, TINYVMI_ERANGE, "decompressed image "
                         "too large");
            break;
        }
        uInt chunk_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
        size_t room = o->cap - o->len;
        uInt chunk_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        z.next_in = (Bytef *)(uintptr_t)at;
        z.avail_in = chunk_in;
        z.next_out = o->p + o->len;
        z.avail_out = chunk_out;
        int r = inflate(&z, Z_NO_FLUSH);
        at += chunk_in - z.avail_in;
        left -= chunk_in - z.avail_in;
        o->len += chunk_out - z.avail_out;
        if (r == Z_STREAM_END)
            break;
        if (r != Z_OK && !(r == Z_BUF_ERROR && z.avail_out == 0)) {
            rc = ki_fail(err, errlen, r == Z_BUF_ERROR ? TINYVMI_ETRUNC
                                                       : TINYVMI_EFORMAT,
                         "gzip: %s", r == Z_BUF_ERROR ? "truncated data"
                                                      : "corrupt data");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int unzstd(const uint8_t *in, size_t n, ki_out_t *o, char *err,
                  size_t errlen)
{
    ZSTD_DStream *d = ZSTD_createDStream();
    if (!d)
        return ki_fail(err, errlen, TINYVMI_ENOMEM, "zstd: cannot start");
    ZSTD_initDStream(d);
    /* The kernel compresses with a large window. */
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 31);
    ZSTD_inBuffer ib = {in, n, 0};
    int rc = 0;
    for (;;) {
        if (!out_grow(o, KI_STEP)) {
            rc = ki_fail(err, errlen, TINYVMI_ERANGE, "decompressed image "
                         "too large");
            break;
        }
        ZSTD_outBuffer ob = {o->p, o->cap, o->len};
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(r)) {
            rc = ki_fail(err, errlen, TINYVMI_EFORMAT, "zstd: %s",
                         ZSTD_getErrorName(r));
            break;
        }
        if (r == 0) /* end of the frame; the kernel appends a size */
            break;
        if (ib.pos == ib.size && ob.pos < ob.size) {
            rc = ki_fail(err, errlen, TINYVMI_ETRUNC, "zstd: truncated data");
            break;
        }
    }
    ZSTD_freeDStream(d);
    return rc;
}

/* LZ4 legacy frames (lz4 -l, as the kernel uses): a magic, then blocks of
 * (u32 size, data), each at most 8 MiB decompressed, to the end or to a
 * size that cannot be a block (the kernel's appended length). */
static int unlz4(const uint8_t *in, size_t n, ki_out_t *o, char *err,
                 size_t errlen)
{
    const size_t block = (size_t)8 << 20;
    size_t pos = 4;
    while (n - pos >= 4) {
        uint32_t c = tv_le32(in + pos);
        if (c == 0x184c2102) { /* a new frame */
            pos += 4;
            continue;
        }
        if (c == 0 || c > n - pos - 4 || c > (uint32_t)LZ4_compressBound((int)block))
            break;
        if (!out_grow(o, block))
            return ki_fail(err, errlen, TINYVMI_ERANGE, "decompressed image "
                           "too large");
        int r = LZ4_decompress_safe((const char *)in + pos + 4,
                                    (char *)o->p + o->len, (int)c,
                                    (int)block);
        if (r < 0)
            return ki_fail(err, errlen, TINYVMI_EFORMAT, "lz4: corrupt "
                           "block at %zu", pos);
        o->len += (size_t)r;
        pos += 4 + c;
    }
    if (o->len == 0)
        return ki_fail(err, errlen, TINYVMI_EFORMAT, "lz4: no data");
    return 0;
}

/* Which compressor made in[0..n), by its magic; NULL if none. */
static const char *comp_name(const uint8_t *in, size_t n)
{
    if (n >= 2 && in[0] == 0x1f && (in[1] == 0x8b || in[1] == 0x9e))
        return "gzip";
    if (n >= 6 && memcmp(in, "\xfd" "7zXZ\0", 6) == 0)
        return "xz";
    if (n >= 4 && tv_le32(in) == 0xfd2fb528)
        return "zstd";
    if (n >= 4 && tv_le32(in) == 0x184c2102)
        return "lz4";
    if (n >= 13 && in[0] == 0x5d && in[1] == 0 && in[2] == 0)
        return "lzma";
    if (n >= 3 && memcmp(in, "BZh", 3) == 0)
        return "bzip2";
    if (n >= 4 && memcmp(in, "\x89LZO", 4) == 0)
        return "lzo";
    return NULL;
}

static int decompress(const char *how, const uint8_t *in, size_t n,
                      ki_out_t *o, char *err, size_t errlen)
{
    if (strcmp(how, "gzip") == 0)
        return ungzip(in, n, o, err, errlen);
    if (strcmp(how, "xz") == 0)
        return unxz(in, n, o, false, err, errlen);
    if (strcmp(how, "lzma") == 0)
        return unxz(in, n, o, true, err, errlen);
    if (strcmp(how, "zstd") == 0)
        return unzstd(in, n, o, err, errlen);
    if (strcmp(how, "lz4") == 0)
        return unlz4(in, n, o, err, errlen);
    return ki_fail(err, errlen, TINYVMI_ENOTSUP, "%s-compressed kernels "
                   "are not supported", how);
}

/* ---- ELF ------------------------------------------------------------------------ */

static bool in_file(size_t len, uint64_t off, uint64_t n)
{
    return off <= len && n <= len - off;
}

static int parse_elf(tv_kimage_t *k, char *err, size_t errlen)
{
    const uint8_t *d = k->data;
    size_t len = k->len;
    if (len < 64 || d[4] != 2 || d[5] != 1)
        return ki_fail(err, errlen, TINYVMI_ENOTSUP, "only 64-bit "
                       "little-endian ELF kernels are supported");
    uint64_t phoff = tv_le64(d + 32), shoff = tv_le64(d + 40);
    unsigned phes = tv_le16(d + 54), phn = tv_le16(d + 56);
    unsigned shes = tv_le16(d + 58), shn = tv_le16(d + 60);
    unsigned shstr = tv_le16(d + 62);
    if (phes < 56 || !in_file(len, phoff, (uint64_t)phes * phn))
        return ki_fail(err, errlen, TINYVMI_EFORMAT, "ELF: program headers "
                       "out of the file");
    for (unsigned i = 0; i < phn && k->nseg < KI_MAX_SEGS; i++) {
        const uint8_t *p = d + phoff + (uint64_t)i * phes;
        if (tv_le32(p) != 1) /* PT_LOAD */
            continue;
        ki_seg_t s = {.offset = tv_le64(p + 8), .vaddr = tv_le64(p + 16),
                      .filesz = tv_le64(p + 32), .memsz = tv_le64(p + 40)};
        if (!in_file(len, s.offset, s.filesz) || s.memsz < s.filesz ||
            s.vaddr + s.memsz < s.vaddr)
            return ki_fail(err, errlen, TINYVMI_EFORMAT, "ELF: segment %u "
                           "out of the file", i);
        k->seg[k->nseg++] = s;
    }
    if (k->nseg == 0)
        return ki_fail(err, errlen, TINYVMI_EFORMAT, "ELF: no loadable "
                       "segment");
    /* Sections are optional (names of .BTF, .rodata). */
    if (shes < 64 || shn == 0 || shstr >= shn ||
        !in_file(len, shoff, (uint64_t)shes * shn))
        return 0;
    const uint8_t *ss = d + shoff + (uint64_t)shstr * shes;
    uint64_t stroff = tv_le64(ss + 24), strsz = tv_le64(ss + 32);
    if (!in_file(len, stroff, strsz))
        return 0;
    for (unsigned i = 0; i < shn && k->nsec < KI_MAX_SECS; i++) {
        const uint8_t *s = d + shoff + (uint64_t)i * shes;
        uint32_t name = tv_le32(s);
        if (name >= strsz)
            continue;
        ki_sec_t *sec = &k->sec[k->nsec];
        size_t max = (size_t)(strsz - name);
        size_t nl = strnlen((const char *)d + stroff + name, max);
        if (nl >= sizeof sec->name || nl == max)
            continue;
        memcpy(sec->name, d + stroff + name, nl);
        sec->name[nl] = 0;
        sec->addr = tv_le64(s + 16);
        sec->size = tv_le64(s + 32);
        k->nsec++;
    }
    return 0;
}

/* ---- Reader ------------------------------------------------------------------------ */

const uint8_t *tv_kimage_ptr(const tv_kimage_t *k, uint64_t addr,
                             uint64_t len)
{
    if (!k->elf)
        return in_file(k->len, addr, len) ? k->data + addr : NULL;
    for (size_t i = 0; i < k->nseg; i++) {
        const ki_seg_t *s = &k->seg[i];
        if (addr >= s->vaddr && addr - s->vaddr <= s->filesz &&
            len <= s->filesz - (addr - s->vaddr))
            return k->data + s->offset + (addr - s->vaddr);
    }
    return NULL;
}

/* Reads across segments; memsz beyond filesz reads as zeros. */
static int ki_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const tv_kimage_t *k = ctx;
    uint8_t *out = buf;
    while (len) {
        const ki_seg_t *hit = NULL;
        for (size_t i = 0; i < k->nseg && !hit; i++)
            if (addr >= k->seg[i].vaddr &&
                addr - k->seg[i].vaddr < k->seg[i].memsz)
                hit = &k->seg[i];
        if (!k->elf) {
            if (addr >= k->len)
                return TINYVMI_EUNMAPPED;
            size_t n = k->len - (size_t)addr < len ? k->len - (size_t)addr
                                                    : len;
            memcpy(out, k->data + addr, n);
            out += n;
            addr += n;
            len -= n;
            continue;
        }
        if (!hit)
            return TINYVMI_EUNMAPPED;
        uint64_t in = addr - hit->vaddr;
        uint64_t n = hit->memsz - in < len ? hit->memsz - in : len;
        if (in < hit->filesz) {
            uint64_t f = hit->filesz - in < n ? hit->filesz - in : n;
            memcpy(out, k->data + hit->offset + in, (size_t)f);
            memset(out + f, 0, (size_t)(n - f));
        } else {
            memset(out, 0, (size_t)n);
        }
        out += n;
        addr += n;
        len -= (size_t)n;
        if (addr == 0) /* wrapped */
            return len ? TINYVMI_EUNMAPPED : 0;
    }
    return 0;
}

/* ---- Opening ------------------------------------------------------------------------ */

/* Decides what data[0..len) is; may replace k->data by its decompressed
 * payload and look again. */
static int identify(tv_kimage_t *k, int depth, char *err, size_t errlen)
{
    const uint8_t *d = k->data;
    size_t len = k->len;
    if (depth > KI_MAX_DEPTH)
        return ki_fail(err, errlen, TINYVMI_EFORMAT, "image nested too "
                       "deeply");
    if (len >= 4 && memcmp(d, "\x7f" "ELF", 4) == 0) {
        k->elf = true;
        strncat(k->format, "ELF", sizeof k->format - strlen(k->format) - 1);
        return parse_elf(k, err, errlen);
    }
    if (len >= 0x40 && memcmp(d + 0x38, "ARM\x64", 4) == 0) {
        strncat(k->format, "arm64 Image", sizeof k->format -
                strlen(k->format) - 1);
        return 0;
    }
    const uint8_t *payload = d;
    size_t plen = len;
    const char *kind = NULL;
    if (len >= 0x250 && memcmp(d + 0x202, "HdrS", 4) == 0) {
        unsigned ver = tv_le16(d + 0x206);
        if (ver < 0x208)
            return ki_fail(err, errlen, TINYVMI_ENOTSUP, "bzImage boot "
                           "protocol %u.%u has no payload fields",
                           ver >> 8, ver & 0xff);
        uint64_t sects = d[0x1f1] ? d[0x1f1] : 4;
        uint64_t off = (sects + 1) * 512 + tv_le32(d + 0x248);
        uint64_t n = tv_le32(d + 0x24c);
        if (!in_file(len, off, n) || n == 0)
            return ki_fail(err, errlen, TINYVMI_EFORMAT, "bzImage: payload "
                           "(%llu bytes at %llu) outside the file",
                           (unsigned long long)n, (unsigned long long)off);
        payload = d + off;
        plen = (size_t)n;
        kind = "bzImage/";
    }
    const char *how = comp_name(payload, plen);
    if (!how)
        return ki_fail(err, errlen, TINYVMI_EFORMAT, "not a kernel image: "
                       "no ELF, bzImage, arm64 Image or compressed data");
    ki_out_t o = {0};
    int rc = decompress(how, payload, plen, &o, err, errlen);
    if (rc) {
        free(o.p);
        return rc;
    }
    if (kind)
        strncat(k->format, kind, sizeof k->format - strlen(k->format) - 1);
    strncat(k->format, how, sizeof k->format - strlen(k->format) - 1);
    strncat(k->format, " ", sizeof k->format - strlen(k->format) - 1);
    free(k->data);
    k->data = o.p;
    k->len = o.len;
    return identify(k, depth + 1, err, errlen);
}

static int open_owned(uint8_t *data, size_t len, tv_kimage_t **out,
                      char *err, size_t errlen)
{
    tv_kimage_t *k = calloc(1, sizeof *k);
    if (!k) {
        free(data);
        return ki_fail(err, errlen, TINYVMI_ENOMEM, "out of memory");
    }
    k->data = data;
    k->len = len;
    k->reader.read = ki_read;
    k->reader.ctx = k;
    int rc = identify(k, 0, err, errlen);
    if (rc) {
        tv_kimage_close(k);
        return rc;
    }
    *out = k;
    return 0;
}

int tv_kimage_open_mem(const void *data, size_t len, tv_kimage_t **out,
                       char *err, size_t errlen)
{
    if (!out || (!data && len))
        return ki_fail(err, errlen, TINYVMI_EINVAL, "no image");
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return ki_fail(err, errlen, TINYVMI_ENOMEM, "out of memory");
    if (len)
        memcpy(copy, data, len);
    return open_owned(copy, len, out, err, errlen);
}

int tv_kimage_open(const char *path, tv_kimage_t **out, char *err,
                   size_t errlen)
{
    if (!path || !out)
        return ki_fail(err, errlen, TINYVMI_EINVAL, "no path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return ki_fail(err, errlen, TINYVMI_EIO, "%s: %s", path,
                       strerror(errno));
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - len < ((size_t)1 << 20)) {
            if (cap >= TV_KIMAGE_MAX_SIZE) {
                rc = ki_fail(err, errlen, TINYVMI_ERANGE, "%s: larger than "
                             "%llu bytes", path,
                             (unsigned long long)TV_KIMAGE_MAX_SIZE);
                break;
            }
            size_t nc = cap ? cap * 2 : ((size_t)16 << 20);
            uint8_t *p = realloc(data, nc);
            if (!p) {
                rc = ki_fail(err, errlen, TINYVMI_ENOMEM, "out of memory");
                break;
            }
            data = p;
            cap = nc;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = ki_fail(err, errlen, TINYVMI_EIO, "%s: read error",
                             path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(data);
        return rc;
    }
    return open_owned(data, len, out, err, errlen);
}

void tv_kimage_close(tv_kimage_t *k)
{
    if (!k)
        return;
    free(k->data);
    free(k);
}

const char *tv_kimage_format(const tv_kimage_t *k)
{
    return k->format;
}

bool tv_kimage_is_elf(const tv_kimage_t *k)
{
    return k->elf;
}

const tv_reader_t *tv_kimage_reader(const tv_kimage_t *k)
{
    return &k->reader;
}

bool tv_kimage_section(const tv_kimage_t *k, const char *name,
                       uint64_t *addr, uint64_t *size)
{
    for (size_t i = 0; i < k->nsec; i++)
        if (strcmp(k->sec[i].name, name) == 0) {
            if (addr)
                *addr = k->sec[i].addr;
            if (size)
                *size = k->sec[i].size;
            return true;
        }
    return false;
}

void tv_kimage_span(const tv_kimage_t *k, uint64_t *lo, uint64_t *hi)
{
    if (!k->elf) {
        *lo = 0;
        *hi = k->len;
        return;
    }
    uint64_t l = UINT64_MAX, h = 0;
    for (size_t i = 0; i < k->nseg; i++) {
        if (k->seg[i].vaddr < l)
            l = k->seg[i].vaddr;
        if (k->seg[i].vaddr + k->seg[i].filesz > h)
            h = k->seg[i].vaddr + k->seg[i].filesz;
    }
    *lo = l;
    *hi = h;
}
