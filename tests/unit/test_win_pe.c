/*
 * Windows PE parsing and kernel discovery (src/os/windows/pe.c).
 *
 * The real Windows 10 19041 x64 triage dump (/work/shared/data, see its
 * README): the kernel found from KdDebuggerDataBlock must be the KDBG
 * copy's KernBase, with the machine the ISF records.  The dump keeps the
 * kernel's header page but not its debug or export directory, so no GUID
 * can be had from it (the test proves those bytes are absent); if a dump
 * ever holds them, the GUID/age must equal the ISF file name's.
 *
 * Synthetic images are laid out here from Microsoft's PE/COFF
 * specification (offsets written out below), GUIDs from their text form.
 */
#include <stdio.h>

#include "driver/file/crashdump.h"
#include "os/windows/win.h"
#include "test_file.h"
#include "tu.h"

#define TRIAGE_DMP                                                        \
    "/work/shared/data/windows-10-19041-x64-triage/triage_x64.dmp"
/* From the ISF beside the dump, ntkrnlmp.pdb-5278AFF8...-1.json.xz:
 * metadata.windows.pdb (GUID, age, machine_type 34404) and its symbols
 * (KdDebuggerDataBlock at +0xc00b20; the highest symbol at +0xe01a70). */
#define ISF_KEY "5278AFF86C341677D7D7835C85B7B8441"
#define ISF_MACHINE 34404
#define ISF_KDDEBUGGERDATABLOCK 0xc00b20
#define ISF_HIGHEST_SYMBOL 0xe01a70

/* ---- Memory the tests make ------------------------------------------------ */

/* Bytes at [base, base + len); [hole, hole_end) reads fail. */
typedef struct mem {
    uint64_t base;
    uint8_t *p;
    size_t len;
    uint64_t hole, hole_end;
} mem_t;

static int mem_read(void *arg, uint64_t addr, void *buf, size_t len)
{
    const mem_t *m = arg;
    if (addr < m->base || addr - m->base > m->len ||
        len > m->len - (addr - m->base))
        return -1;
    if (addr < m->hole_end && addr + len > m->hole)
        return -1;
    memcpy(buf, m->p + (addr - m->base), len);
    return 0;
}

static void put(uint8_t *p, size_t off, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        p[off + i] = (uint8_t)(v >> (8 * i));
}

/* The GUID {5278AFF8-6C34-1677-D7D7-835C85B7B844} as a GUID struct is
 * stored: Data1 (u32), Data2, Data3 (u16) little-endian, Data4 bytes. */
static void guid_bytes(uint8_t g[16])
{
    put(g, 0, 0x5278AFF8, 4);
    put(g, 4, 0x6C34, 2);
    put(g, 6, 0x1677, 2);
    static const uint8_t d4[8] = {0xD7, 0xD7, 0x83, 0x5C,
                                  0x85, 0xB7, 0xB8, 0x44};
    memcpy(g + 8, d4, 8);
}

#define LFANEW 0x80
#define OPT (LFANEW + 24) /* optional header: after "PE\0\0" + 20 */
#define IMG_SIZE 0x4000
#define DEBUG_RVA 0x1000
#define CV_RVA 0x1100
#define EXPORT_RVA 0x1200
#define EXPORT_NAME_RVA 0x1300

typedef struct img_opts {
    bool pe32;            /* PE32 (i386) instead of PE32+ (AMD64) */
    const char *pdb_path; /* NULL: no debug directory */
    const char *export;   /* NULL: no export directory */
    uint32_t age;
} img_opts_t;

/* A PE image of IMG_SIZE bytes (PE/COFF spec offsets). */
static void build_pe(uint8_t *img, const img_opts_t *o)
{
    memset(img, 0, IMG_SIZE);
    img[0] = 'M';
    img[1] = 'Z';
    put(img, 0x3c, LFANEW, 4);                     /* e_lfanew */
    memcpy(img + LFANEW, "PE\0\0", 4);
    put(img, LFANEW + 4, o->pe32 ? 0x14c : 0x8664, 2); /* Machine */
    put(img, LFANEW + 8, 0x5f1e2d3c, 4);           /* TimeDateStamp */
    put(img, LFANEW + 20, o->pe32 ? 224 : 240, 2); /* SizeOfOptionalHeader */
    put(img, OPT, o->pe32 ? 0x10b : 0x20b, 2);     /* Magic */
    if (o->pe32)
        put(img, OPT + 28, 0x80400000, 4);         /* ImageBase */
    else
        put(img, OPT + 24, 0xfffff80012300000, 8);
    put(img, OPT + 56, IMG_SIZE, 4);               /* SizeOfImage */
    size_t dd = OPT + (o->pe32 ? 96 : 112);        /* DataDirectory[] */
    put(img, dd - 4, 16, 4);                       /* NumberOfRvaAndSizes */
    if (o->export) {
        put(img, dd + 0, EXPORT_RVA, 4);           /* [0] export */
        put(img, dd + 4, 40, 4);
        put(img, EXPORT_RVA + 12, EXPORT_NAME_RVA, 4); /* Name */
        strcpy((char *)img + EXPORT_NAME_RVA, o->export);
    }
    if (o->pdb_path) {
        size_t plen = strlen(o->pdb_path) + 1;
        put(img, dd + 8 * 6, DEBUG_RVA, 4);        /* [6] debug */
        put(img, dd + 8 * 6 + 4, 2 * 28, 4);
        /* entry 0: type 1 (COFF), to be skipped; entry 1: CodeView */
        put(img, DEBUG_RVA + 12, 1, 4);
        put(img, DEBUG_RVA + 28 + 12, 2, 4);       /* Type */
        put(img, DEBUG_RVA + 28 + 16, 24 + plen, 4); /* SizeOfData */
        put(img, DEBUG_RVA + 28 + 20, CV_RVA, 4);  /* AddressOfRawData */
        memcpy(img + CV_RVA, "RSDS", 4);
        guid_bytes(img + CV_RVA + 4);
        put(img, CV_RVA + 20, o->age, 4);
        memcpy(img + CV_RVA + 24, o->pdb_path, plen);
    }
}

static int parse(uint8_t *img, size_t len, win_pe_t *pe, char *err)
{
    mem_t m = {.base = 0x10000, .p = img, .len = len};
    return win_pe_parse(mem_read, &m, m.base, pe, err, 256);
}

/* ---- Well-formed images ---------------------------------------------------- */

TU_TEST(win_pe_rsds_pe32plus)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pdb_path = "d:\\os\\obj\\amd64fre\\ntkrnlmp.pdb",
                    .export = "ntoskrnl.exe", .age = 1};
    build_pe(img, &o);
    win_pe_t pe;
    char err[256], key[48];
    TU_EQ_INT(parse(img, sizeof img, &pe, err), 0);
    TU_EQ_INT(pe.machine, 0x8664);
    TU_ASSERT(pe.pe32plus);
    TU_EQ_U64(pe.size_of_image, IMG_SIZE);
    TU_EQ_U64(pe.image_base, 0xfffff80012300000);
    TU_EQ_U64(pe.timestamp, 0x5f1e2d3c);
    TU_ASSERT(pe.have_rsds && !pe.rsds_unreadable);
    TU_EQ_STR(pe.pdb, "ntkrnlmp.pdb");
    TU_EQ_STR(pe.export_name, "ntoskrnl.exe");
    TU_EQ_U64(pe.age, 1);
    win_pe_guid_age(&pe, key);
    TU_EQ_STR(key, ISF_KEY); /* the ISF file name's GUID and age */
}

TU_TEST(win_pe_rsds_pe32_age_hex)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pe32 = true, .pdb_path = "ntkrpamp.pdb", .age = 0x2a};
    build_pe(img, &o);
    win_pe_t pe;
    char err[256], key[48];
    TU_EQ_INT(parse(img, sizeof img, &pe, err), 0);
    TU_EQ_INT(pe.machine, 0x14c);
    TU_ASSERT(!pe.pe32plus);
    TU_EQ_U64(pe.image_base, 0x80400000);
    TU_EQ_STR(pe.pdb, "ntkrpamp.pdb");
    TU_EQ_STR(pe.export_name, "");
    win_pe_guid_age(&pe, key);
    /* age in upper-case hex, no leading zeros */
    TU_EQ_STR(key, "5278AFF86C341677D7D7835C85B7B8442A");
}

TU_TEST(win_pe_forward_slash_and_no_debug)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pdb_path = "/build/x/ntkrla57.pdb", .age = 3};
    build_pe(img, &o);
    win_pe_t pe;
    char err[256];
    TU_EQ_INT(parse(img, sizeof img, &pe, err), 0);
    TU_EQ_STR(pe.pdb, "ntkrla57.pdb");
    img_opts_t none = {0};
    build_pe(img, &none);
    TU_EQ_INT(parse(img, sizeof img, &pe, err), 0);
    TU_ASSERT(!pe.have_rsds && !pe.rsds_unreadable);
}

TU_TEST(win_pe_debug_unreadable)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pdb_path = "ntkrnlmp.pdb", .export = "ntoskrnl.exe"};
    build_pe(img, &o);
    mem_t m = {.base = 0, .p = img, .len = sizeof img,
               .hole = DEBUG_RVA, .hole_end = CV_RVA + 0x400};
    win_pe_t pe;
    char err[256];
    TU_EQ_INT(win_pe_parse(mem_read, &m, 0, &pe, err, sizeof err), 0);
    TU_ASSERT(!pe.have_rsds && pe.rsds_unreadable);
    TU_EQ_STR(pe.export_name, ""); /* export directory in the hole too */
}

TU_TEST(win_pe_kernel_names)
{
    TU_ASSERT(win_is_kernel_name("ntoskrnl.exe"));
    TU_ASSERT(win_is_kernel_name("NTKRNLMP.PDB"));
    TU_ASSERT(win_is_kernel_name("ntkrnlpa.exe"));
    TU_ASSERT(win_is_kernel_name("ntkrpamp.pdb"));
    TU_ASSERT(!win_is_kernel_name("ntoskrnl.ex"));
    TU_ASSERT(!win_is_kernel_name("ntoskrnl.exe2"));
    TU_ASSERT(!win_is_kernel_name("hal.dll"));
    TU_ASSERT(!win_is_kernel_name("ntos"));
    TU_ASSERT(!win_is_kernel_name(""));
}

/* ---- Hostile images ----------------------------------------------------------- */

#define EXPECT(rc_, needle)                                               \
    do {                                                                  \
        win_pe_t pe_;                                                     \
        char err_[256];                                                   \
        TU_EQ_INT(parse(img, len, &pe_, err_), (rc_));                    \
        TU_CONTAINS(err_, (needle));                                      \
    } while (0)

TU_TEST(win_pe_hostile_headers)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pdb_path = "ntkrnlmp.pdb"};
    size_t len = sizeof img;
    build_pe(img, &o);
    img[0] = 'X';
    EXPECT(TINYVMI_ENOENT, "no MZ header");
    build_pe(img, &o);
    len = 0x20; /* truncated DOS header */
    EXPECT(TINYVMI_EFORMAT, "DOS header unreadable");
    len = LFANEW + 0x40; /* truncated NT headers */
    EXPECT(TINYVMI_EFORMAT, "NT headers");
    len = sizeof img;
    put(img, 0x3c, 0xfffffff0, 4);
    EXPECT(TINYVMI_EFORMAT, "e_lfanew 0xfffffff0 out of bounds");
    put(img, 0x3c, 0x10, 4); /* inside the DOS header */
    EXPECT(TINYVMI_EFORMAT, "e_lfanew 0x10 out of bounds");
    build_pe(img, &o);
    img[LFANEW + 1] = 'X';
    EXPECT(TINYVMI_EFORMAT, "no PE signature");
    build_pe(img, &o);
    put(img, OPT, 0x107, 2);
    EXPECT(TINYVMI_EFORMAT, "magic 0x107");
    build_pe(img, &o);
    put(img, LFANEW + 4, 0x14c, 2); /* i386 with a PE32+ header */
    EXPECT(TINYVMI_EFORMAT, "machine 0x14c");
    build_pe(img, &o);
    put(img, OPT + 56, 0, 4);
    EXPECT(TINYVMI_EFORMAT, "SizeOfImage 0x0 implausible");
}

TU_TEST(win_pe_hostile_debug)
{
    static uint8_t img[IMG_SIZE];
    img_opts_t o = {.pdb_path = "ntkrnlmp.pdb", .age = 1};
    size_t len = sizeof img, dd = OPT + 112;
    build_pe(img, &o);
    /* a debug directory of 2^31 entries' worth of bytes */
    put(img, dd + 8 * 6 + 4, 0x80000000u, 4);
    EXPECT(TINYVMI_EFORMAT, "debug directory");
    /* one past SizeOfImage */
    put(img, dd + 8 * 6, IMG_SIZE, 4);
    put(img, dd + 8 * 6 + 4, 28, 4);
    EXPECT(TINYVMI_EFORMAT, "outside SizeOfImage");
    /* a directory within the image, big but bounded: entries beyond the
     * first 32 are never looked at, so the record at entry 1 still is */
    build_pe(img, &o);
    put(img, dd + 8 * 6 + 4, 0x2000, 4);
    {
        win_pe_t pe;
        char err[256];
        TU_EQ_INT(parse(img, len, &pe, err), 0);
        TU_ASSERT(pe.have_rsds);
    }
    /* CodeView record pointing outside the image */
    build_pe(img, &o);
    put(img, DEBUG_RVA + 28 + 20, IMG_SIZE - 8, 4);
    EXPECT(TINYVMI_EFORMAT, "CodeView record");
    /* RSDS path without a NUL within SizeOfData */
    build_pe(img, &o);
    memset(img + CV_RVA + 24, 'A', 64);
    put(img, DEBUG_RVA + 28 + 16, 24 + 64, 4);
    EXPECT(TINYVMI_EFORMAT, "no NUL");
    /* RSDS record shorter than its fixed part */
    build_pe(img, &o);
    put(img, DEBUG_RVA + 28 + 16, 20, 4);
    EXPECT(TINYVMI_EFORMAT, "too short");
    /* a PDB name longer than win_pe_t holds */
    build_pe(img, &o);
    memset(img + CV_RVA + 24, 'n', 200);
    img[CV_RVA + 24 + 200] = 0;
    put(img, DEBUG_RVA + 28 + 16, 24 + 201, 4);
    EXPECT(TINYVMI_EFORMAT, "PDB name of 200 bytes");
    /* path ending in a separator: an empty name */
    build_pe(img, &o);
    strcpy((char *)img + CV_RVA + 24, "c:\\x\\");
    EXPECT(TINYVMI_EFORMAT, "PDB name of 0 bytes");
    /* export name RVA outside the image */
    o.export = "ntoskrnl.exe";
    build_pe(img, &o);
    put(img, EXPORT_RVA + 12, 0x7fffffff, 4);
    EXPECT(TINYVMI_EFORMAT, "export name RVA");
}

/* Counts reads, to see how much a directory of many entries costs. */
typedef struct counting {
    mem_t m;
    unsigned reads;
} counting_t;

static int count_read(void *arg, uint64_t addr, void *buf, size_t len)
{
    counting_t *c = arg;
    c->reads++;
    return mem_read(&c->m, addr, buf, len);
}

TU_TEST(win_pe_debug_entries_capped)
{
    /* A 1 MiB image whose debug directory claims 0xff000 bytes (37,000
     * entries), none of them CodeView: at most 32 are read. */
    size_t len = 1u << 20;
    uint8_t *img = calloc(1, len);
    TU_ASSERT(img);
    img_opts_t o = {.pdb_path = "ntkrnlmp.pdb"};
    build_pe(img, &o);
    put(img, OPT + 56, len, 4);
    put(img, OPT + 112 + 8 * 6 + 4, 0xff000, 4);
    put(img, DEBUG_RVA + 28 + 12, 4, 4); /* entry 1: not CodeView now */
    counting_t c = {.m = {.base = 0, .p = img, .len = len}};
    win_pe_t pe;
    char err[256];
    TU_EQ_INT(win_pe_parse(count_read, &c, 0, &pe, err, sizeof err), 0);
    TU_ASSERT(!pe.have_rsds);
    TU_ASSERT(c.reads <= 3 + 32); /* MZ, DOS, NT headers, 32 entries */
    TU_ASSERT(c.reads >= 32);
    free(img);
}

/* ---- win_find_kernel ------------------------------------------------------------ */

#define KVA 0xfffff80400000000ull

TU_TEST(win_find_kernel_synthetic)
{
    /* 3 MiB of memory: the kernel at +1 MiB (IMG_SIZE bytes, extended by
     * SizeOfImage to 1.5 MiB), a driver-like image naming itself hal.dll
     * at +2 MiB that also "covers" the address, an image below the kernel
     * that does not cover it, and an unreadable page between. */
    size_t len = 3u << 20;
    uint8_t *m = calloc(1, len);
    TU_ASSERT(m);
    img_opts_t k = {.pdb_path = "ntkrnlmp.pdb", .export = "ntoskrnl.exe"};
    img_opts_t h = {.pdb_path = "hal.pdb", .export = "hal.dll"};
    build_pe(m + (1u << 20), &k);
    put(m + (1u << 20), OPT + 56, 0x180000, 4);
    build_pe(m + (2u << 20), &h);
    put(m + (2u << 20), OPT + 56, 0x100000, 4);
    build_pe(m, &k); /* ends far below the address */
    mem_t mm = {.base = KVA, .p = m, .len = len,
                .hole = KVA + (1u << 20) + 0x80000,
                .hole_end = KVA + (1u << 20) + 0x81000};
    uint64_t inside = KVA + (2u << 20) + 0x1234;
    win_kernel_t kern;
    char err[256];
    TU_EQ_INT(win_find_kernel(mem_read, &mm, inside, &kern, err, sizeof err),
              0);
    TU_EQ_U64(kern.base, KVA + (1u << 20));
    TU_ASSERT(kern.named);
    TU_EQ_STR(kern.pe.pdb, "ntkrnlmp.pdb");
    /* beyond the kernel's SizeOfImage: nothing covers it */
    TU_EQ_INT(win_find_kernel(mem_read, &mm, KVA + (1u << 20) + 0x180000,
                              &kern, err, sizeof err), TINYVMI_ENOENT);
    TU_CONTAINS(err, "no ntoskrnl image within 32 MiB");
    TU_CONTAINS(err, "1 covering it with another name");
    /* only the export name readable: still found by it */
    memset(m + (1u << 20) + CV_RVA, 0, 4); /* no longer "RSDS" */
    TU_EQ_INT(win_find_kernel(mem_read, &mm, inside, &kern, err, sizeof err),
              0);
    TU_ASSERT(kern.named && !kern.pe.have_rsds);
    TU_EQ_STR(kern.pe.export_name, "ntoskrnl.exe");
    /* an address past 32 MiB above the image is not searched that far */
    TU_EQ_INT(win_find_kernel(mem_read, &mm, KVA + (1u << 20) + (33u << 20),
                              &kern, err, sizeof err), TINYVMI_ENOENT);
    /* an address below every page: no underflow, nothing found */
    TU_EQ_INT(win_find_kernel(mem_read, &mm, 0x10, &kern, err, sizeof err),
              TINYVMI_ENOENT);
    free(m);
}

/* ---- The real triage dump --------------------------------------------------------- */

typedef struct dump_rd {
    struct vmi_instance *vmi;
    tv_driver_t *d;
} dump_rd_t;

static int dump_read(void *arg, uint64_t va, void *buf, size_t len)
{
    dump_rd_t *r = arg;
    return tv_crashdump_read_va(r->vmi, r->d, va, buf, len, NULL);
}

static uint64_t le(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = size; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

TU_TEST(win_find_kernel_triage_real)
{
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tv_file_open(vmi, TRIAGE_DMP, &d), 0); /* must be there */
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    const tv_crashdump_t *cd = tv_crashdump_of(&d);
    TU_ASSERT(cd && cd->kind == TV_CD_TRIAGE);
    dump_rd_t r = {vmi, &d};
    /* The KDBG copy's KernBase (DBGKD header, then KernBase at 0x18). */
    uint8_t kdbg[0x20];
    TU_EQ_INT(dump_read(&r, cd->kd_debugger_data_block, kdbg, sizeof kdbg),
              0);
    uint64_t kern_base = le(kdbg + 0x18, 8);
    TU_EQ_U64(kern_base, cd->kd_debugger_data_block - ISF_KDDEBUGGERDATABLOCK);

    win_kernel_t k;
    char err[256];
    TU_EQ_INT(win_find_kernel(dump_read, &r, cd->kd_debugger_data_block, &k,
                              err, sizeof err), 0);
    TU_EQ_U64(k.base, kern_base);
    TU_EQ_U64(k.base, 0xfffff8047ba00000); /* the brief's fact */
    TU_EQ_INT(k.pe.machine, ISF_MACHINE);
    TU_ASSERT(k.pe.pe32plus);
    /* every ISF symbol lies inside the image */
    TU_ASSERT(k.pe.size_of_image > ISF_HIGHEST_SYMBOL);
    /* the running kernel's header carries its load address */
    TU_EQ_U64(k.pe.image_base, kern_base);
    /* Header facts against the header page's bytes read here. */
    uint8_t hdr[0x1000];
    TU_EQ_INT(dump_read(&r, kern_base, hdr, sizeof hdr), 0);
    uint32_t lfanew = (uint32_t)le(hdr + 0x3c, 4);
    TU_ASSERT(lfanew < 0x1000 - 264);
    TU_EQ_U64(k.pe.timestamp, le(hdr + lfanew + 8, 4));
    TU_EQ_U64(k.pe.size_of_image, le(hdr + lfanew + 24 + 56, 4));
    /* The debug directory (DataDirectory[6]) and the export directory
     * ([0]) lie in pages the triage dump did not keep: no GUID or name
     * can be read from this dump, and the parser must say so. */
    uint64_t dbg_rva = le(hdr + lfanew + 24 + 112 + 48, 4);
    uint64_t exp_rva = le(hdr + lfanew + 24 + 112, 4);
    uint8_t b;
    bool dbg_there = dump_read(&r, kern_base + dbg_rva, &b, 1) == 0;
    bool exp_there = dump_read(&r, kern_base + exp_rva, &b, 1) == 0;
    if (!dbg_there && !exp_there) {
        TU_ASSERT(!k.named);
        TU_ASSERT(!k.pe.have_rsds && k.pe.rsds_unreadable);
        TU_EQ_STR(k.pe.export_name, "");
        printf("triage dump: ntoskrnl's debug directory (RVA 0x%" PRIx64
               ") is not in the dump: no GUID\n", dbg_rva);
    } else {
        char key[48];
        TU_ASSERT(k.named);
        if (k.pe.have_rsds) {
            win_pe_guid_age(&k.pe, key);
            TU_EQ_STR(key, ISF_KEY);
            TU_EQ_STR(k.pe.pdb, "ntkrnlmp.pdb");
        }
    }
    /* From PsActiveProcessHead too: the same image. */
    win_kernel_t k2;
    TU_EQ_INT(win_find_kernel(dump_read, &r, cd->ps_active_process_head, &k2,
                              err, sizeof err), 0);
    TU_EQ_U64(k2.base, kern_base);
    tv_instance_free(vmi);
}
