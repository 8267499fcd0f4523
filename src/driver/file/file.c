/*
 * The file driver's common part: open and map the dump, detect its format
 * from its first bytes (a table), hand the format's ranges to the core, and
 * read memory with memcpy from the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver/file/file.h"
#include "driver/file/file_int.h"

/* ---- Detection ---------------------------------------------------------- */

/* A format is known by bytes at the start of the file, and where formats
 * share them (ELF) by a probe of the header.  parse == NULL: recognised,
 * but not supported yet (status and reason say so). */
typedef struct file_format {
    const char *name;
    const char *magic;
    size_t magic_len;
    int (*parse)(tv_file_t *f);
    const char *unsupported;
    bool (*probe)(const uint8_t *data, size_t size); /* NULL: magic only */
} file_format_t;

static const file_format_t formats[] = {
    {"xen-core", "\x7f" "ELF", 4, file_xencore_parse, NULL,
     file_xencore_probe},
    {"elf", "\x7f" "ELF", 4, file_elf_parse, NULL, NULL},
    {"lime", "EMiL", 4, file_lime_parse, NULL, NULL}, /* 0x4C694D45 LE */
    {"kdump", "KDUMP   ", 8, NULL,
     "kdump-compressed dumps are not supported yet", NULL},
    {"diskdump", "DISKDUMP", 8, NULL,
     "diskdump dumps are not supported yet", NULL},
    {"makedumpfile-flat", "makedumpfile", 12, NULL,
     "flattened makedumpfile dumps are not supported yet (rearrange them "
     "with makedumpfile -R)", NULL},
    {"windows-crashdump", "PAGEDUMP", 8, file_crashdump_parse, NULL, NULL},
    {"windows-crashdump", "PAGEDU64", 8, file_crashdump_parse, NULL, NULL},
};

static const file_format_t raw_format = {"raw", "", 0, file_raw_parse, NULL,
                                         NULL};

static const file_format_t *file_detect(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(formats); i++) {
        const file_format_t *fmt = &formats[i];
        if (size >= fmt->magic_len &&
            memcmp(data, fmt->magic, fmt->magic_len) == 0 &&
            (!fmt->probe || fmt->probe(data, size)))
            return fmt;
    }
    return &raw_format;
}

/* ---- Ranges ------------------------------------------------------------- */

int file_range_add(tv_file_t *f, const char *what, uint64_t start,
                   uint64_t size, uint64_t offset)
{
    if (f->nranges == FILE_MAX_RANGES)
        return tv_fail(f->vmi, TINYVMI_ERANGE,
                       "%s: more than %u memory ranges", what,
                       FILE_MAX_RANGES);
    if (f->nranges == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        tv_range_t *r = realloc(f->ranges, cap * sizeof *r);
        if (!r)
            return tv_fail(f->vmi, TINYVMI_ENOMEM,
                           "%s: out of memory for %zu ranges", what, cap);
        f->ranges = r;
        f->cap = cap;
    }
    f->ranges[f->nranges++] = (tv_range_t){start, size, offset};
    return TINYVMI_OK;
}

static int range_cmp(const void *a, const void *b)
{
    const tv_range_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Folds range b into a when b continues a in memory and in the file. */
static bool range_merge(tv_range_t *a, const tv_range_t *b)
{
    if (a->start + a->size != b->start || a->offset + a->size != b->offset)
        return false;
    a->size += b->size;
    return true;
}

int file_ranges_finish(tv_file_t *f, const char *what)
{
    if (f->nranges == 0)
        return tv_fail(f->vmi, TINYVMI_EFORMAT,
                       "%s: no memory ranges with data in the file", what);
    qsort(f->ranges, f->nranges, sizeof f->ranges[0], range_cmp);
    size_t n = 1;
    for (size_t i = 1; i < f->nranges; i++) {
        tv_range_t *prev = &f->ranges[n - 1];
        const tv_range_t *cur = &f->ranges[i];
        if (cur->start - prev->start < prev->size)
            return tv_fail(f->vmi, TINYVMI_EFORMAT,
                           "%s: memory ranges [0x%llx, +0x%llx) and "
                           "[0x%llx, +0x%llx) overlap", what,
                           (unsigned long long)prev->start,
                           (unsigned long long)prev->size,
                           (unsigned long long)cur->start,
                           (unsigned long long)cur->size);
        if (!range_merge(prev, cur))
            f->ranges[n++] = *cur;
    }
    f->nranges = n;
    return TINYVMI_OK;
}

/* ---- Driver operations -------------------------------------------------- */

static int file_read(void *ctx, uint64_t pa, uint64_t off, void *buf,
                     size_t len)
{
    tv_file_t *f = ctx;
    if (!file_span_ok(f, off, len))
        return tv_fail(f->vmi, TINYVMI_EIO,
                       "file: read of 0x%zx bytes at file offset 0x%llx "
                       "(physical 0x%llx) is past the end (0x%zx)",
                       len, (unsigned long long)off,
                       (unsigned long long)pa, f->size);
    memcpy(buf, f->data + off, len);
    return TINYVMI_OK;
}

static const void *file_span(void *ctx, uint64_t off, size_t len)
{
    tv_file_t *f = ctx;
    return file_span_ok(f, off, len) ? f->data + off : NULL;
}

static const tv_mem_ops_t file_mem_ops = {file_read, NULL, file_span};

tv_file_t *file_from_driver(const tv_driver_t *d)
{
    return d && d->mem == &file_mem_ops ? d->ctx : NULL;
}

static void file_close(void *ctx)
{
    tv_file_t *f = ctx;
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    free(f->ranges);
    free(f->vcpus);
    file_crashdump_free(f->cd);
    free(f);
}

/* ---- Opening ------------------------------------------------------------ */

/* Parses the image; on success f belongs to *out, on failure it is freed
 * (with its mapping). */
static int file_parse(tv_file_t *f, tv_driver_t *out)
{
    const file_format_t *fmt = file_detect(f->data, f->size);
    int rc = fmt->parse ? fmt->parse(f)
                        : tv_fail(f->vmi, TINYVMI_ENOTSUP, "%s (format %s)",
                                  fmt->unsupported, fmt->name);
    if (rc) {
        file_close(f);
        return rc;
    }
    *out = (tv_driver_t){
        .name = f->name ? f->name : fmt->name,
        .ctx = f,
        .mem = &file_mem_ops,
        .vcpu = f->vcpu_ops  ? f->vcpu_ops
                : f->nvcpus ? &file_elf_vcpu_ops
                            : NULL,
        .close = file_close,
        .ranges = f->ranges,
        .nranges = f->nranges,
        .arch = f->arch,
        .id = VMI_INVALID_DOMID,
    };
    return TINYVMI_OK;
}

static tv_file_t *file_new(struct vmi_instance *vmi, const void *data,
                           size_t size)
{
    tv_file_t *f = calloc(1, sizeof *f);
    if (!f) {
        tv_fail(vmi, TINYVMI_ENOMEM, "file: out of memory");
        return NULL;
    }
    f->vmi = vmi;
    f->data = data;
    f->size = size;
    return f;
}

int tv_file_open_mem(struct vmi_instance *vmi, const void *buf, size_t size,
                     tv_driver_t *out)
{
    if (!out)
        return tv_fail(vmi, TINYVMI_EINVAL, "file: no driver to fill");
    *out = (tv_driver_t){0};
    if (!buf || size == 0)
        return tv_fail(vmi, TINYVMI_EFORMAT, "file: empty image");
    tv_file_t *f = file_new(vmi, buf, size);
    return f ? file_parse(f, out) : TINYVMI_ENOMEM;
}

static int errno_status(int err)
{
    return err == ENOENT || err == ENOTDIR ? TINYVMI_ENOENT
           : err == ENOMEM                 ? TINYVMI_ENOMEM
                                           : TINYVMI_EIO;
}

/* Checks what fd is and maps it; *map is MAP_FAILED on failure. */
static int file_map(struct vmi_instance *vmi, const char *path, int fd,
                    void **map, size_t *len)
{
    struct stat st;
    *map = MAP_FAILED;
    if (fstat(fd, &st) != 0)
        return tv_fail(vmi, errno_status(errno), "file: fstat(%s): %s", path,
                       strerror(errno));
    if (S_ISDIR(st.st_mode))
        return tv_fail(vmi, TINYVMI_EINVAL, "file: %s is a directory, not a "
                       "memory dump", path);
    if (!S_ISREG(st.st_mode))
        return tv_fail(vmi, TINYVMI_EINVAL, "file: %s is not a regular file "
                       "(device, FIFO or socket)", path);
    if (st.st_size <= 0)
        return tv_fail(vmi, TINYVMI_EFORMAT, "file: %s is empty", path);
    if ((uint64_t)st.st_size > SIZE_MAX)
        return tv_fail(vmi, TINYVMI_ERANGE, "file: %s is too large to map "
                       "(%lld bytes)", path, (long long)st.st_size);
    *len = (size_t)st.st_size;
    *map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (*map == MAP_FAILED)
        return tv_fail(vmi, errno_status(errno), "file: mmap(%s, %zu bytes): "
                       "%s", path, *len, strerror(errno));
    /* Keep guest RAM out of our own core dumps.  No MADV_RANDOM: scans
     * (e.g. for the kernel banner) want the kernel's readahead. */
    (void)madvise(*map, *len, MADV_DONTDUMP);
    return TINYVMI_OK;
}

int tv_file_open(struct vmi_instance *vmi, const char *path,
                 tv_driver_t *out)
{
    if (!out || !path)
        return tv_fail(vmi, TINYVMI_EINVAL, "file: no %s given",
                       out ? "path" : "driver to fill");
    *out = (tv_driver_t){0};
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return tv_fail(vmi, errno_status(errno), "file: open(%s): %s", path,
                       strerror(errno));
    void *map;
    size_t len = 0;
    int rc = file_map(vmi, path, fd, &map, &len);
    close(fd); /* the mapping stays */
    if (rc)
        return rc;
    tv_file_t *f = file_new(vmi, map, len);
    if (!f) {
        munmap(map, len);
        return TINYVMI_ENOMEM;
    }
    f->map = map;
    f->map_len = len;
    return file_parse(f, out);
}
