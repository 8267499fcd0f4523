/*
 * The kernel debugger data block (src/os/windows/kdbg.c).
 *
 * The real KDBG copy of the Windows 10 19041 x64 triage dump: its fields
 * against the dump header's own records (PsActiveProcessHead,
 * PsLoadedModuleList) and the ISF's symbol offsets; the encoded form made
 * by an encoder written here from the kernel's KdEncodeDataBlock (the
 * inverse of what kdbg.c decodes) with chosen keys, then decoded; the scan
 * over the dump's memory; hostile and bogus blocks.
 */
#include <stdio.h>

#include "driver/file/crashdump.h"
#include "os/windows/win.h"
#include "test_file.h"
#include "tu.h"

#define TRIAGE_DMP                                                        \
    "/work/shared/data/windows-10-19041-x64-triage/triage_x64.dmp"
/* ISF (ntkrnlmp.pdb 5278AFF8...-1) symbol offsets from the kernel base. */
#define ISF_KDDEBUGGERDATABLOCK 0xc00b20
#define ISF_PSACTIVEPROCESSHEAD 0xc1e200
#define ISF_PSLOADEDMODULELIST 0xc2a390
#define ISF_MMPFNDATABASE 0xcfc500
#define ISF_KIPROCESSORBLOCK 0xcfdc80
#define ISF_KDPDATABLOCKENCODED 0xc50ba0

static void put(uint8_t *p, size_t off, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = size; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* ---- The real KDBG copy ------------------------------------------------------ */

typedef struct dump {
    struct vmi_instance *vmi;
    tv_driver_t d;
    const tv_crashdump_t *cd;
    uint8_t kdbg[WIN_KDBG_MAX_SIZE];
    size_t kdbg_len;
} dump_t;

static int dump_read(void *arg, uint64_t va, void *buf, size_t len)
{
    dump_t *r = arg;
    return tv_crashdump_read_va(r->vmi, &r->d, va, buf, len, NULL);
}

/* Opens the dump (it must be there) and reads the KDBG copy, Size bytes
 * as its header says. */
static int dump_open(dump_t *r)
{
    r->vmi = tf_vmi();
    if (tv_file_open(r->vmi, TRIAGE_DMP, &r->d) ||
        tv_instance_attach(r->vmi, &r->d))
        return -1;
    r->cd = tv_crashdump_of(&r->d);
    if (!r->cd || dump_read(r, r->cd->kd_debugger_data_block, r->kdbg, 0x18))
        return -1;
    r->kdbg_len = (size_t)le(r->kdbg + 0x14, 4);
    if (r->kdbg_len > sizeof r->kdbg ||
        dump_read(r, r->cd->kd_debugger_data_block, r->kdbg, r->kdbg_len))
        return -1;
    return 0;
}

TU_TEST(win_kdbg_triage_real)
{
    static dump_t r;
    TU_EQ_INT(dump_open(&r), 0);
    const tv_crashdump_t *cd = r.cd;
    uint64_t base = cd->kd_debugger_data_block - ISF_KDDEBUGGERDATABLOCK;
    win_kdbg_t k;
    char err[256];
    TU_EQ_INT(win_kdbg_parse(r.kdbg, r.kdbg_len, 64,
                             cd->kd_debugger_data_block, &k, err, sizeof err),
              0);
    TU_EQ_U64(k.size, r.kdbg_len);
    TU_EQ_U64(k.size, 0x380); /* Windows 10 2004's KDDEBUGGER_DATA64 */
    TU_EQ_U64(k.kern_base, base);
    TU_EQ_U64(k.kern_base, 0xfffff8047ba00000);
    /* The dump header's own records of the same globals. */
    TU_EQ_U64(k.ps_active_process_head, cd->ps_active_process_head);
    TU_EQ_U64(k.ps_loaded_module_list, cd->ps_loaded_module_list);
    /* and the ISF's symbols */
    TU_EQ_U64(k.ps_active_process_head, base + ISF_PSACTIVEPROCESSHEAD);
    TU_EQ_U64(k.ps_loaded_module_list, base + ISF_PSLOADEDMODULELIST);
    TU_ASSERT(k.pae_enabled); /* x64 runs with PAE on */
    TU_EQ_U64(k.mm_pfn_database, base + ISF_MMPFNDATABASE);
    TU_EQ_U64(k.ki_processor_block, base + ISF_KIPROCESSORBLOCK);
    tv_instance_free(r.vmi);
}

/* KdEncodeDataBlock, as the kernel applies it to each 8-byte word:
 * w = KiWaitNever ^ ror64(&KdpDataBlockEncoded ^ bswap64(KiWaitAlways ^
 * w), KiWaitNever). */
static uint64_t ror64(uint64_t v, unsigned n)
{
    n %= 64;
    return n == 0 ? v : (v >> n) | (v << (64 - n));
}

static void encode(uint8_t *buf, size_t len, uint64_t never, uint64_t always,
                   uint64_t enc_va)
{
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w = le(buf + i, 8);
        w = never ^ ror64(enc_va ^ __builtin_bswap64(always ^ w),
                          (unsigned)(never & 0xff));
        put(buf, i, w, 8);
    }
}

TU_TEST(win_kdbg_encoded_round_trip)
{
    static dump_t r;
    TU_EQ_INT(dump_open(&r), 0);
    static const struct {
        uint64_t never, always, enc_va;
    } keys[] = {
        /* this kernel's &KdpDataBlockEncoded (ISF) */
        {0x8642097531fedcbaull, 0x0f1e2d3c4b5a6978ull,
         0xfffff8047ba00000ull + ISF_KDPDATABLOCKENCODED},
        {0x00000000000000c0ull, 0xffffffffffffffffull, 0xfffff8047c600000ull},
        {0x123456789abcdef0ull, 0, 0}, /* rotate by 0xf0 (= 48) */
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint8_t buf[WIN_KDBG_MAX_SIZE];
        memcpy(buf, r.kdbg, r.kdbg_len);
        encode(buf, r.kdbg_len, keys[i].never, keys[i].always,
               keys[i].enc_va);
        TU_ASSERT(memcmp(buf, r.kdbg, r.kdbg_len) != 0);
        win_kdbg_t k;
        char err[256];
        /* encoded, the block has no tag */
        TU_EQ_INT(win_kdbg_parse(buf, r.kdbg_len, 64, 0, &k, err, sizeof err),
                  TINYVMI_ENOENT);
        TU_CONTAINS(err, "no KDBG tag");
        /* a wrong key gives no KDBG either */
        uint8_t wrong[WIN_KDBG_MAX_SIZE];
        memcpy(wrong, buf, r.kdbg_len);
        win_kdbg_decode(wrong, r.kdbg_len, keys[i].never ^ 1, keys[i].always,
                        keys[i].enc_va);
        TU_ASSERT(memcmp(wrong, r.kdbg, r.kdbg_len) != 0);
        win_kdbg_decode(buf, r.kdbg_len, keys[i].never, keys[i].always,
                        keys[i].enc_va);
        TU_ASSERT(memcmp(buf, r.kdbg, r.kdbg_len) == 0);
        TU_EQ_INT(win_kdbg_parse(buf, r.kdbg_len, 64,
                                 r.cd->kd_debugger_data_block, &k, err,
                                 sizeof err), 0);
        TU_EQ_U64(k.ps_active_process_head, r.cd->ps_active_process_head);
    }
    /* A trailing partial word is left alone. */
    uint8_t odd[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    win_kdbg_decode(odd, sizeof odd, 5, 6, 7);
    TU_EQ_INT(odd[8], 9);
    TU_EQ_INT(odd[11], 12);
    tv_instance_free(r.vmi);
}

TU_TEST(win_kdbg_find_triage_real)
{
    static dump_t r;
    TU_EQ_INT(dump_open(&r), 0);
    uint64_t at = r.cd->kd_debugger_data_block;
    win_kdbg_t k;
    char err[256];
    /* The dump keeps the KDBG but not the rest of its page: found through
     * the small-piece rereads, KernBase checked for MZ in the dump. */
    TU_EQ_INT(win_kdbg_find(dump_read, &r, at - 0x3000, at + 0x1000, 64,
                            dump_read, &r, &k, err, sizeof err), 0);
    TU_EQ_U64(k.va, at);
    TU_EQ_U64(k.ps_loaded_module_list, r.cd->ps_loaded_module_list);
    /* a range that misses it */
    TU_EQ_INT(win_kdbg_find(dump_read, &r, at + 0x400, at + 0x2000, 64,
                            dump_read, &r, &k, err, sizeof err),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "no KDBG in");
    tv_instance_free(r.vmi);
}

/* ---- Synthetic blocks ---------------------------------------------------------- */

typedef struct mem {
    uint64_t base;
    uint8_t *p;
    size_t len;
} mem_t;

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len)
{
    const mem_t *m = arg;
    if (addr < m->base || addr - m->base > m->len ||
        len > m->len - (addr - m->base))
        return -1;
    memcpy(buf, m->p + (addr - m->base), len);
    return 0;
}

#define KBASE 0xfffff80012000000ull

/* A 64-bit KDBG of Size 0x340 with a kernel at KBASE. */
static void kdbg64(uint8_t *b)
{
    memset(b, 0, 0x340);
    put(b, 0x00, KBASE + 0x500000, 8);
    put(b, 0x08, KBASE + 0x500000, 8);
    memcpy(b + 0x10, "KDBG", 4);
    put(b, 0x14, 0x340, 4);
    put(b, 0x18, KBASE, 8);
    put(b, 0x36, 1, 2);
    put(b, 0x48, KBASE + 0x400010, 8); /* PsLoadedModuleList */
    put(b, 0x50, KBASE + 0x400020, 8); /* PsActiveProcessHead */
    put(b, 0x58, 0xffffc00000001000ull, 8); /* PspCidTable */
    put(b, 0x218, KBASE + 0x400100, 8); /* KiProcessorBlock */
}

#define EXPECT(b, len, va, rc_, needle)                                   \
    do {                                                                  \
        win_kdbg_t k_;                                                    \
        char e_[256];                                                     \
        TU_EQ_INT(win_kdbg_parse((b), (len), 64, (va), &k_, e_,           \
                                 sizeof e_), (rc_));                      \
        TU_CONTAINS(e_, (needle));                                        \
    } while (0)

TU_TEST(win_kdbg_hostile)
{
    uint8_t b[0x400];
    win_kdbg_t k;
    char err[256];
    kdbg64(b);
    TU_EQ_INT(win_kdbg_parse(b, 0x340, 64, KBASE + 0x300000, &k, err,
                             sizeof err), 0);
    TU_EQ_U64(k.ki_processor_block, KBASE + 0x400100);
    /* Size covering less: later fields stay 0 */
    put(b, 0x14, 0x200, 4);
    TU_EQ_INT(win_kdbg_parse(b, 0x340, 64, 0, &k, err, sizeof err), 0);
    TU_EQ_U64(k.ki_processor_block, 0);
    kdbg64(b);
    EXPECT(b, 0x10, 0, TINYVMI_ENOENT, "no KDBG tag");
    EXPECT(b, 0x40, 0, TINYVMI_ETRUNC, "0x60 needed");
    put(b, 0x14, 0x10, 4);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "Size 0x10 implausible");
    put(b, 0x14, 0x7fffffff, 4);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "Size 0x7fffffff implausible");
    put(b, 0x14, 0x341, 4);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "Size 0x341 implausible");
    kdbg64(b);
    put(b, 0x18, 0x0000123400000000ull, 8); /* a user address */
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "KernBase 0x123400000000");
    put(b, 0x18, KBASE + 0x10, 8); /* not page aligned */
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "page-aligned");
    put(b, 0x18, 0x7ffff80012000000ull, 8); /* non-canonical */
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "KernBase");
    kdbg64(b);
    put(b, 0x50, KBASE + (64u << 20), 8); /* 64 MiB past KernBase */
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "PsActiveProcessHead");
    put(b, 0x50, KBASE - 8, 8); /* below it */
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "PsActiveProcessHead");
    kdbg64(b);
    put(b, 0x48, 0, 8);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "PsLoadedModuleList 0x0");
    kdbg64(b);
    put(b, 0x00, 0x4141414141414141ull, 8);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "List");
    kdbg64(b);
    put(b, 0x58, 0x1234, 8);
    EXPECT(b, 0x340, 0, TINYVMI_EFORMAT, "PspCidTable");
    kdbg64(b);
    EXPECT(b, 0x340, 0xfffff90000000000ull, TINYVMI_EFORMAT,
           "not within 64 MiB above its KernBase");
    TU_EQ_INT(win_kdbg_parse(b, 0x340, 48, 0, &k, err, sizeof err),
              TINYVMI_EINVAL);
}

TU_TEST(win_kdbg_32bit)
{
    uint8_t b[0x300];
    memset(b, 0, sizeof b);
    /* 32-bit Windows: the same 64-bit fields, pointers sign-extended */
    put(b, 0x00, 0xffffffff82b6a0b8ull, 8);
    put(b, 0x08, 0xffffffff82b6a0b8ull, 8);
    memcpy(b + 0x10, "KDBG", 4);
    put(b, 0x14, 0x290, 4);
    put(b, 0x18, 0xffffffff82800000ull, 8);
    put(b, 0x48, 0xffffffff8294c850ull, 8);
    put(b, 0x50, 0xffffffff82944f18ull, 8);
    put(b, 0x58, 0xffffffff82941a34ull, 8);
    win_kdbg_t k;
    char err[256];
    TU_EQ_INT(win_kdbg_parse(b, sizeof b, 32, 0x82b6a0c8, &k, err, sizeof err),
              0);
    TU_EQ_U64(k.kern_base, 0x82800000);
    TU_EQ_U64(k.ps_loaded_module_list, 0x8294c850);
    TU_EQ_U64(k.ps_active_process_head, 0x82944f18);
    TU_EQ_U64(k.list_flink, 0x82b6a0b8);
    /* zero-extended is accepted too */
    put(b, 0x18, 0x82800000ull, 8);
    TU_EQ_INT(win_kdbg_parse(b, sizeof b, 32, 0, &k, err, sizeof err), 0);
    TU_EQ_U64(k.kern_base, 0x82800000);
    /* garbage above the low 32 bits */
    put(b, 0x50, 0x1234567882944f18ull, 8);
    EXPECT(b, sizeof b, 0, TINYVMI_EFORMAT, "KernBase"); /* as 64-bit */
    TU_EQ_INT(win_kdbg_parse(b, sizeof b, 32, 0, &k, err, sizeof err),
              TINYVMI_EFORMAT);
    TU_CONTAINS(err, "not 32-bit values");
    /* a user-half KernBase */
    put(b, 0x50, 0xffffffff82944f18ull, 8);
    put(b, 0x18, 0x00400000ull, 8);
    TU_EQ_INT(win_kdbg_parse(b, sizeof b, 32, 0, &k, err, sizeof err),
              TINYVMI_EFORMAT);
    TU_CONTAINS(err, "KernBase 0x400000");
}

TU_TEST(win_kdbg_find_bogus)
{
    /* Two pages at KBASE + 0x300000: a bogus "KDBG" string with garbage
     * after it, one whose fields look right but whose KernBase holds no
     * MZ, then (in the second pass) a real-looking one. */
    static uint8_t region[0x2000];
    memset(region, 0x41, sizeof region);
    memcpy(region + 0x110, "KDBG", 4); /* garbage Size etc. */
    mem_t m = {KBASE + 0x300000, region, sizeof region};
    static uint8_t kimg[0x1000];
    mem_t km = {KBASE, kimg, sizeof kimg}; /* the kernel's first page */
    memset(kimg, 0, sizeof kimg);
    win_kdbg_t k;
    char err[512];
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base, m.base + sizeof region, 64,
                            NULL, NULL, &k, err, sizeof err),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "1 tagged candidates rejected");
    TU_CONTAINS(err, "Size 0x41414141 implausible");
    /* a plausible block at +0x1800, but KernBase is not an image */
    kdbg64(region + 0x1800);
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base, m.base + sizeof region, 64,
                            mem_read, &km, &k, err, sizeof err),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "2 tagged candidates rejected");
    TU_CONTAINS(err, "holds no MZ header");
    /* now it is */
    kimg[0] = 'M';
    kimg[1] = 'Z';
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base, m.base + sizeof region, 64,
                            mem_read, &km, &k, err, sizeof err), 0);
    TU_EQ_U64(k.va, m.base + 0x1800);
    TU_EQ_U64(k.kern_base, KBASE);
    /* without a check reader the same block is accepted */
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base, m.base + sizeof region, 64,
                            NULL, NULL, &k, err, sizeof err), 0);
    /* bounds that end inside the block's tag: not found, nothing read
     * past end (the reader would allow it) */
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base + 0x1000,
                            m.base + 0x1812, 64, NULL, NULL, &k, err,
                            sizeof err), TINYVMI_ENOENT);
    /* an empty or reversed range */
    TU_EQ_INT(win_kdbg_find(mem_read, &m, m.base + 8, m.base, 64, NULL, NULL,
                            &k, err, sizeof err), TINYVMI_ENOENT);
    /* a range at the very top of the address space ends without wrapping */
    TU_EQ_INT(win_kdbg_find(mem_read, &m, UINT64_MAX - 0x1800, UINT64_MAX,
                            64, NULL, NULL, &k, err, sizeof err),
              TINYVMI_ENOENT);
}
