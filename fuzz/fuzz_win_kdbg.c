/* libFuzzer target: the KDBG (src/os/windows/kdbg.c).  The input is parsed
 * as a KDBG for 64- and 32-bit targets, decoded with keys taken from its
 * first bytes and parsed again, and scanned for tags as memory mapped at a
 * kernel-like address (with itself as the MZ check reader).  What is
 * accepted must satisfy the documented checks. */
#include <stdlib.h>
#include <string.h>

#include "os/windows/win.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE 0xfffff80412300000ull

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

static void check(const win_kdbg_t *k, unsigned bits)
{
    if (k->size < WIN_KDBG_MIN_SIZE || k->size > WIN_KDBG_MAX_SIZE ||
        (k->size & 7) || (k->kern_base & 0xfff))
        abort();
    if (k->ps_active_process_head - k->kern_base >= WIN_KERNEL_SPAN ||
        k->ps_loaded_module_list - k->kern_base >= WIN_KERNEL_SPAN)
        abort();
    if (bits == 32 && k->kern_base > 0xffffffffu)
        abort();
}

static uint64_t word(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    win_kdbg_t k;
    char err[256];
    for (unsigned bits = 32; bits <= 64; bits += 32)
        if (win_kdbg_parse(data, size, bits, BASE, &k, err, sizeof err) == 0)
            check(&k, bits);
    if (size >= 24 && size <= 0x10000) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        win_kdbg_decode(copy + 24, size - 24, word(data), word(data + 8),
                        word(data + 16));
        if (win_kdbg_parse(copy + 24, size - 24, 64, 0, &k, err,
                           sizeof err) == 0)
            check(&k, 64);
        free(copy);
    }
    buf_t b = {data, size};
    if (win_kdbg_find(buf_read, &b, BASE, BASE + size, 64, buf_read, &b, &k,
                      err, sizeof err) == 0) {
        check(&k, 64);
        uint8_t mz[2];
        if (k.va < BASE || k.va >= BASE + size ||
            buf_read(&b, k.kern_base, mz, 2) || mz[0] != 'M' || mz[1] != 'Z')
            abort();
    }
    return 0;
}
