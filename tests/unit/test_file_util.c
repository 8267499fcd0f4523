/* Helpers for the file-driver tests; see test_file.h. */
#include "test_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tu.h"

struct vmi_instance *tf_vmi(void)
{
    struct vmi_instance *vmi = NULL;
    if (tv_instance_new(&tu_hooks, &vmi) != 0) {
        fprintf(stderr, "tf_vmi: cannot create an instance\n");
        exit(2);
    }
    return vmi;
}

static void tf_grow(tf_buf_t *b, size_t len)
{
    if (len <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < len)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "tf_grow: out of memory\n");
        exit(2);
    }
    memset(p + b->cap, 0, cap - b->cap);
    b->p = p;
    b->cap = cap;
}

void tf_put(tf_buf_t *b, size_t off, uint64_t v, unsigned size)
{
    tf_grow(b, off + size);
    for (unsigned i = 0; i < size; i++)
        b->p[off + i] = (uint8_t)(v >> (8 * i));
    if (off + size > b->len)
        b->len = off + size;
}

size_t tf_append(tf_buf_t *b, const void *data, size_t len)
{
    size_t off = b->len;
    tf_grow(b, off + len);
    if (data && len)
        memcpy(b->p + off, data, len);
    b->len += len;
    return off;
}

void tf_buf_free(tf_buf_t *b)
{
    free(b->p);
    *b = (tf_buf_t){0};
}

const char *tf_write(const char *name, const void *buf, size_t len)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tu_tmp_dir(), name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (len && fwrite(buf, 1, len, fp) != len) || fclose(fp)) {
        fprintf(stderr, "tf_write: cannot write %s\n", path);
        exit(2);
    }
    return path;
}

/* ---- ELF ---------------------------------------------------------------- */

typedef struct tf_layout {
    unsigned ehsize, phentsize, phoff_at, phoff_size, phent_at, phnum_at;
    unsigned p_off[4]; /* offset, paddr, filesz, memsz */
    unsigned p_size;   /* 4 or 8 */
} tf_layout_t;

static const tf_layout_t tf_layouts[3] = {
    [1] = {52, 32, 28, 4, 42, 44, {4, 12, 16, 20}, 4},
    [2] = {64, 56, 32, 8, 54, 56, {8, 24, 32, 40}, 8},
};

size_t tf_phdr_at(int cls, size_t i)
{
    const tf_layout_t *l = &tf_layouts[cls];
    return l->ehsize + i * l->phentsize;
}

void tf_phdr_set(tf_buf_t *b, int cls, size_t i, enum tf_pfield fld,
                 uint64_t v)
{
    const tf_layout_t *l = &tf_layouts[cls];
    tf_put(b, tf_phdr_at(cls, i) + l->p_off[fld], v, l->p_size);
}

void tf_elf(tf_buf_t *b, int cls, uint16_t machine, const tf_seg_t *seg,
            size_t nseg)
{
    const tf_layout_t *l = &tf_layouts[cls];
    static const uint8_t ident[] = {0x7f, 'E', 'L', 'F'};
    tf_append(b, ident, sizeof ident);
    tf_put(b, 4, (uint64_t)cls, 1);
    tf_put(b, 5, 1, 1); /* little-endian */
    tf_put(b, 6, 1, 1);
    tf_put(b, 16, 4, 2); /* ET_CORE */
    tf_put(b, 18, machine, 2);
    tf_put(b, 20, 1, 4);
    tf_put(b, l->phoff_at, l->ehsize, l->phoff_size);
    tf_put(b, l->phent_at - 2, l->ehsize, 2); /* e_ehsize */
    tf_put(b, l->phent_at, l->phentsize, 2);
    tf_put(b, l->phnum_at, nseg, 2);
    tf_grow(b, tf_phdr_at(cls, nseg));
    b->len = tf_phdr_at(cls, nseg);
    for (size_t i = 0; i < nseg; i++) {
        size_t off = tf_append(b, seg[i].data, seg[i].size);
        tf_put(b, tf_phdr_at(cls, i), seg[i].type, 4);
        tf_phdr_set(b, cls, i, TF_P_OFFSET, off);
        tf_phdr_set(b, cls, i, TF_P_PADDR, seg[i].paddr);
        tf_phdr_set(b, cls, i, TF_P_FILESZ, seg[i].size);
        tf_phdr_set(b, cls, i, TF_P_MEMSZ,
                    seg[i].memsz ? seg[i].memsz : seg[i].size);
    }
}

void tf_note(tf_buf_t *b, const char *owner, uint32_t type, const void *desc,
             uint32_t descsz)
{
    uint32_t namesz = (uint32_t)strlen(owner) + 1;
    size_t at = b->len;
    tf_put(b, at, namesz, 4);
    tf_put(b, at + 4, descsz, 4);
    tf_put(b, at + 8, type, 4);
    tf_append(b, owner, namesz);
    tf_append(b, NULL, (4 - namesz % 4) % 4);
    tf_append(b, desc, descsz);
    tf_append(b, NULL, (4 - descsz % 4) % 4);
}

static void tf_store(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void tf_prstatus64(uint8_t desc[336], unsigned slot, uint64_t v)
{
    tf_store(desc + 112 + 8 * slot, v, 8);
}

void tf_qemu_state(uint8_t desc[440])
{
    memset(desc, 0, 440);
    tf_store(desc, 1, 4);
    tf_store(desc + 4, 440, 4);
}

void tf_qemu_gpr(uint8_t desc[440], unsigned i, uint64_t v)
{
    tf_store(desc + 8 + 8 * i, v, 8);
}

void tf_qemu_cr(uint8_t desc[440], unsigned i, uint64_t v)
{
    tf_store(desc + 392 + 8 * i, v, 8);
}

/* ---- LiME --------------------------------------------------------------- */

void tf_lime(tf_buf_t *b, uint32_t magic, uint32_t version, uint64_t start,
             uint64_t end, const void *data, size_t len)
{
    size_t at = b->len;
    tf_put(b, at, magic, 4);
    tf_put(b, at + 4, version, 4);
    tf_put(b, at + 8, start, 8);
    tf_put(b, at + 16, end, 8);
    tf_put(b, at + 24, 0, 8);
    if (data)
        tf_append(b, data, len);
}

/* ---- Opening ------------------------------------------------------------ */

int tf_open(struct vmi_instance *vmi, const char *name, const tf_buf_t *b,
            tv_driver_t *out)
{
    tv_driver_t mem;
    int rc_mem = tv_file_open_mem(vmi, b->p, b->len, &mem);
    char msg_mem[TV_ERRMSG_MAX];
    snprintf(msg_mem, sizeof msg_mem, "%s", rc_mem ? vmi->last_error : "");
    if (rc_mem == 0)
        mem.close(mem.ctx);
    vmi->last_status = 0;
    vmi->last_error[0] = '\0';
    int rc = tv_file_open(vmi, tf_write(name, b->p, b->len), out);
    const char *msg = rc ? vmi->last_error : "";
    if (rc != rc_mem || strcmp(msg, msg_mem) != 0) {
        fprintf(stderr, "tf_open(%s): file says %d \"%s\", memory says %d "
                "\"%s\"\n", name, rc, msg, rc_mem, msg_mem);
        if (rc == 0)
            out->close(out->ctx);
        return -100;
    }
    return rc;
}

int tf_try(const char *name, tf_buf_t *b, char *msg)
{
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    int rc = tf_open(vmi, name, b, &d);
    snprintf(msg, TV_ERRMSG_MAX, "%s", rc ? vmi->last_error : "");
    if (rc == 0)
        d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(b);
    return rc;
}
