/* libFuzzer target: PE images in memory (src/os/windows/pe.c).  The input
 * is a memory image mapped at a low address; it is parsed as a PE
 * at its start, and ntoskrnl is searched for from its last byte and from
 * an address the input's first bytes choose.  What a successful parse
 * returns must be consistent, whatever the bytes. */
#include <stdlib.h>
#include <string.h>

#include "os/windows/win.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Low, so that the downward scans end at address 0 instead of walking
 * 32 MiB of unreadable pages for every input. */
#define BASE 0x10000ull

typedef struct buf {
    const uint8_t *p;
    size_t len;
} buf_t;

static int buf_read(void *arg, uint64_t addr, void *out, size_t len)
{
    const buf_t *b = arg;
    if (addr < BASE || addr - BASE > b->len || len > b->len - (addr - BASE))
        return -1;
    memcpy(out, b->p + (addr - BASE), len);
    return 0;
}

static void check_pe(const win_pe_t *pe)
{
    if (pe->size_of_image < 0x1000)
        abort();
    if (pe->have_rsds) {
        size_t n = strnlen(pe->pdb, sizeof pe->pdb);
        if (n == 0 || n == sizeof pe->pdb || strchr(pe->pdb, '\\') ||
            strchr(pe->pdb, '/'))
            abort();
        char key[48];
        win_pe_guid_age(pe, key);
        size_t k = strnlen(key, sizeof key);
        if (k < 33 || k > 40)
            abort();
    }
    if (strnlen(pe->export_name, sizeof pe->export_name) ==
        sizeof pe->export_name)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t b = {data, size};
    win_pe_t pe;
    char err[256];
    int rc = win_pe_parse(buf_read, &b, BASE, &pe, err, sizeof err);
    if (rc == 0)
        check_pe(&pe);
    else if (strnlen(err, sizeof err) == 0)
        abort(); /* every failure says why */
    win_kernel_t k;
    uint64_t inside[2] = {BASE + (size ? size - 1 : 0), BASE};
    if (size >= 4)
        inside[1] = BASE + (data[0] | (uint32_t)data[1] << 8 |
                            (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24);
    for (int i = 0; i < 2; i++) {
        if (win_find_kernel(buf_read, &b, inside[i], &k, err, sizeof err))
            continue;
        check_pe(&k.pe);
        if (k.base > inside[i] || inside[i] - k.base >= k.pe.size_of_image)
            abort(); /* the image found must hold the address */
    }
    return 0;
}
