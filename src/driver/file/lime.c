/*
 * LiME dumps: a sequence of 32-byte headers
 *   u32 magic 0x4C694D45, u32 version (1), u64 s_addr, u64 e_addr
 *   (inclusive), u8 reserved[8]
 * each followed by e_addr - s_addr + 1 bytes of memory, to the end of the
 * file.  Every header is checked; the file must end exactly after a range.
 */
#include "driver/file/file_int.h"

#define LIME_MAGIC 0x4C694D45u
#define LIME_VERSION 1u
#define LIME_HDR_SIZE 32u

typedef struct lime_hdr {
    uint32_t magic, version;
    uint64_t start, end;
} lime_hdr_t;

/* Checks header n at offset off; on success *len is its data size. */
static int lime_check(tv_file_t *f, size_t n, uint64_t off,
                      const lime_hdr_t *h, uint64_t *len)
{
    struct vmi_instance *vmi = f->vmi;
    unsigned long long o = off;
    if (h->magic != LIME_MAGIC)
        return tv_fail(vmi, TINYVMI_EFORMAT,
                       "LiME: header %zu at file offset 0x%llx: bad magic "
                       "0x%08x (want 0x%08x; trailing garbage?)", n, o,
                       h->magic, LIME_MAGIC);
    if (h->version != LIME_VERSION)
        return tv_fail(vmi, TINYVMI_ENOTSUP,
                       "LiME: header %zu at file offset 0x%llx: version %u "
                       "(only %u is known)", n, o, h->version, LIME_VERSION);
    if (h->end < h->start)
        return tv_fail(vmi, TINYVMI_EFORMAT,
                       "LiME: header %zu at file offset 0x%llx: end 0x%llx "
                       "is below start 0x%llx", n, o,
                       (unsigned long long)h->end,
                       (unsigned long long)h->start);
    if (h->end == UINT64_MAX) /* one past the end would wrap to 0 */
        return tv_fail(vmi, TINYVMI_ERANGE,
                       "LiME: header %zu at file offset 0x%llx: range ends "
                       "at the top of the 64-bit address space", n, o);
    *len = h->end - h->start + 1;
    if (!file_span_ok(f, off + LIME_HDR_SIZE, *len))
        return tv_fail(vmi, TINYVMI_ETRUNC,
                       "LiME: header %zu at file offset 0x%llx: range "
                       "[0x%llx, 0x%llx] needs 0x%llx bytes, the file has "
                       "0x%llx after the header", n, o,
                       (unsigned long long)h->start,
                       (unsigned long long)h->end, (unsigned long long)*len,
                       (unsigned long long)(f->size - off - LIME_HDR_SIZE));
    return TINYVMI_OK;
}

static lime_hdr_t lime_load(const uint8_t *p)
{
    return (lime_hdr_t){tv_le32(p), tv_le32(p + 4), tv_le64(p + 8),
                        tv_le64(p + 16)};
}

static int lime_truncated(tv_file_t *f, size_t n, uint64_t off)
{
    return tv_fail(f->vmi, TINYVMI_ETRUNC, "LiME: header %zu at file offset "
                   "0x%llx is truncated (0x%llx of %u bytes)", n,
                   (unsigned long long)off,
                   (unsigned long long)(f->size - off), LIME_HDR_SIZE);
}

int file_lime_parse(tv_file_t *f)
{
    uint64_t off = 0;
    for (size_t n = 0; off < f->size; n++) {
        uint64_t len = 0;
        if (!file_span_ok(f, off, LIME_HDR_SIZE))
            return lime_truncated(f, n, off);
        lime_hdr_t h = lime_load(f->data + off);
        int rc = lime_check(f, n, off, &h, &len);
        if (!rc)
            rc = file_range_add(f, "LiME", h.start, len, off + LIME_HDR_SIZE);
        if (rc)
            return rc;
        off += LIME_HDR_SIZE + len; /* checked: stays <= size */
    }
    return file_ranges_finish(f, "LiME");
}
