/*
 * Kernel data the symbol table does not name.  arm64's kallsyms lists text
 * symbols only (no KALLSYMS_ALL), so a profile-less start has types (BTF)
 * but no init_task and no modules list head.  Both lie in the kernel
 * image's data, and both are proven by their links, not by their bytes:
 *   init_task: "swapper/0" at task_struct.comm, pid 0, and a tasks list
 *              whose first entry links back to it;
 *   modules:   a list head whose ring of struct module entries, each with
 *              a plausible name, closes on it.
 * The image is read physically (it is contiguous), in chunks; each chunk's
 * candidates are checked through the kernel's page tables.
 */
#include "os/linux/linux.h"

#define CHUNK (1u << 20)
#define MAX_IMAGE (1ULL << 30)
#define MAX_RING 65536u

static unsigned ptr_size(const struct vmi_instance *vmi)
{
    return vmi->pt ? vmi->pt->addr_width : 8;
}

static bool rd_ptr(struct vmi_instance *vmi, uint64_t va, uint64_t *v)
{
    uint8_t b[8];
    unsigned n = ptr_size(vmi);
    if (tv_read_va(vmi, NULL, vmi->kdtb, va, b, n, NULL))
        return false;
    *v = n == 4 ? tv_le32(b) : tv_le64(b);
    return true;
}

/* A pointer into the kernel half of the address space. */
static bool kernel_half(const struct vmi_instance *vmi, uint64_t a)
{
    return ptr_size(vmi) == 4 ? a >> 31 == 1 : a >> 63 == 1;
}

static int need_image(struct vmi_instance *vmi, const lx_t *lx,
                      const char *what)
{
    if (!lx->image_size || lx->image_size > MAX_IMAGE)
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "%s is not in the symbol table and the kernel "
                       "image's extent is unknown, so it cannot be searched",
                       what);
    return TINYVMI_OK;
}

/* Calls fn for each ptr-aligned offset of the image (from the image's
 * start) in physical chunks; fn returns true to stop. */
typedef bool (*scan_fn)(struct vmi_instance *vmi, lx_t *lx,
                        const uint8_t *chunk, size_t len, uint64_t at,
                        void *arg);

static bool scan_image(struct vmi_instance *vmi, lx_t *lx, size_t over,
                       scan_fn fn, void *arg)
{
    uint8_t *buf = tv_alloc(vmi, CHUNK + over);
    bool hit = false;
    if (!buf)
        return false;
    tv_quiet(vmi, true);
    for (uint64_t off = 0; off < lx->image_size && !hit; off += CHUNK) {
        uint64_t left = lx->image_size - off;
        size_t n = (size_t)(left < CHUNK + over ? left : CHUNK + over);
        if (tv_read_pa(vmi, lx->image_pa + off, buf, n, NULL))
            continue; /* a hole in the dump: nothing to find there */
        hit = fn(vmi, lx, buf, n < CHUNK ? n : CHUNK, off, arg);
    }
    tv_quiet(vmi, false);
    tv_free(vmi, buf, CHUNK + over);
    return hit;
}

/* ---- init_task ------------------------------------------------------------- */

static const char idle_comm[] = "swapper/0";

static bool is_init_task(struct vmi_instance *vmi, const lx_t *lx,
                         uint64_t task)
{
    const lx_offsets_t *o = &lx->off;
    uint64_t head = task + o->tasks, next, back;
    uint8_t pid[4];
    return !tv_read_va(vmi, NULL, vmi->kdtb, task + o->pid, pid, 4, NULL) &&
           tv_le32(pid) == 0 && rd_ptr(vmi, head, &next) && next != head &&
           kernel_half(vmi, next) &&
           rd_ptr(vmi, next + ptr_size(vmi), &back) && back == head;
}

static bool init_task_scan(struct vmi_instance *vmi, lx_t *lx,
                           const uint8_t *b, size_t len, uint64_t at,
                           void *arg)
{
    (void)arg;
    const uint64_t comm = lx->off.comm;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != 's' || tv_memcmp(b + i, idle_comm, sizeof idle_comm))
            continue;
        uint64_t off = at + i;
        if (off < comm || (off - comm) % ptr_size(vmi))
            continue;
        uint64_t task = lx->image_va + off - comm;
        if (is_init_task(vmi, lx, task)) {
            lx->init_task = task;
            return true;
        }
    }
    return false;
}

int lx_search_init_task(struct vmi_instance *vmi, lx_t *lx)
{
    int rc = need_image(vmi, lx, "init_task");
    if (rc)
        return rc;
    if (!scan_image(vmi, lx, sizeof idle_comm, init_task_scan, NULL))
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "no task_struct named \"%s\" with pid 0 and a linked "
                       "tasks list in the kernel image (0x%llx, %llu bytes)",
                       idle_comm, (unsigned long long)lx->image_va,
                       (unsigned long long)lx->image_size);
    tv_log(vmi, 2, "linux: init_task at 0x%llx, found by its name in the "
           "image (the symbol table has no data symbols)",
           (unsigned long long)lx->init_task);
    return TINYVMI_OK;
}

/* ---- the modules list ------------------------------------------------------- */

/* A module's name as the kernel stores it: 1 to mod_name_len - 1 bytes of
 * [A-Za-z0-9_-], NUL-terminated. */
static bool module_named(struct vmi_instance *vmi, const lx_t *lx,
                         uint64_t mod)
{
    char name[64];
    uint32_t n = lx->off.mod_name_len < sizeof name ? lx->off.mod_name_len
                                                    : sizeof name;
    if (n < 2 || tv_read_va(vmi, NULL, vmi->kdtb, mod + lx->off.mod_name,
                            name, n, NULL))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        char c = name[i];
        if (!c)
            return i > 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return false;
}

/* head is the list head when following next from it visits only named
 * modules, each linking back to the one before, and comes back to head. */
static bool is_module_ring(struct vmi_instance *vmi, const lx_t *lx,
                           uint64_t head)
{
    uint64_t prev = head, cur, back;
    unsigned psz = ptr_size(vmi);
    if (!rd_ptr(vmi, head, &cur))
        return false;
    for (unsigned n = 0; n < MAX_RING; n++) {
        if (cur == head)
            return n > 0;
        if (!kernel_half(vmi, cur) ||
            (cur >= lx->image_va && cur < lx->image_va + lx->image_size) ||
            !rd_ptr(vmi, cur + psz, &back) || back != prev ||
            !module_named(vmi, lx, cur - lx->off.mod_list))
            return false;
        prev = cur;
        if (!rd_ptr(vmi, cur, &cur))
            return false;
    }
    return false;
}

static bool modules_scan(struct vmi_instance *vmi, lx_t *lx,
                         const uint8_t *b, size_t len, uint64_t at,
                         void *arg)
{
    (void)arg;
    unsigned psz = ptr_size(vmi);
    for (size_t i = 0; i + 2 * psz <= len; i += psz) {
        uint64_t next = psz == 4 ? tv_le32(b + i) : tv_le64(b + i);
        uint64_t prev = psz == 4 ? tv_le32(b + i + psz)
                                 : tv_le64(b + i + psz);
        uint64_t head = lx->image_va + at + i;
        /* The cheap filters first: both links leave the image for the
         * kernel half (modules live outside the image). */
        if (next == head || !kernel_half(vmi, next) ||
            !kernel_half(vmi, prev) ||
            (next >= lx->image_va &&
             next < lx->image_va + lx->image_size) ||
            (prev >= lx->image_va && prev < lx->image_va + lx->image_size))
            continue;
        if (is_module_ring(vmi, lx, head)) {
            lx->modules = head;
            return true;
        }
    }
    return false;
}

int lx_search_modules(struct vmi_instance *vmi, lx_t *lx)
{
    int rc = need_image(vmi, lx, "the modules list");
    if (rc)
        return rc;
    if (!scan_image(vmi, lx, 2 * 8, modules_scan, NULL))
        return tv_fail(vmi, TINYVMI_ENOENT,
                       "no list head in the kernel image leads to a ring of "
                       "named modules (no modules loaded, or the list is "
                       "damaged)");
    tv_log(vmi, 2, "linux: modules list head at 0x%llx, found by its ring "
           "(the symbol table has no data symbols)",
           (unsigned long long)lx->modules);
    return TINYVMI_OK;
}
