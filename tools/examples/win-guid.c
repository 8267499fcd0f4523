/*
 * win-guid: LibVMI's example, written for TinyVMI.  Finds the Windows
 * kernel (ntoskrnl) and prints what its PE header says: the PE GUID
 * (TimeDateStamp and SizeOfImage, the key of the image on a symbol
 * server), the PDB GUID and age from its CodeView record (the key of its
 * debug symbols), the PDB name, and the header's fields.
 *
 *   win-guid name <vm>          a VM by name (VMI_FILE: a dump's path)
 *   win-guid domid <id>         a VM by domain id
 *   win-guid <vm or dump path>
 *
 * Where the kernel is looked for: in a Windows triage dump (no physical
 * memory), at the KernBase of the dump's KDBG copy (or, failing that, below
 * KdDebuggerDataBlock) by virtual address; elsewhere, as LibVMI does, page
 * by page through physical memory for an image whose export or PDB name is
 * the kernel's.  The address printed is virtual for triage dumps,
 * physical otherwise.
 *
 * Exit status: 0 kernel and PDB GUID found; 2 kernel found but its debug
 * directory could not be read (e.g. a triage dump that did not keep it);
 * 1 otherwise.  Uses only the public API.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#define PAGE 4096u
#define HDR_MAX 4096u    /* DOS + NT headers: first page */
#define SCAN_DOWN (32u << 20)
#define MAX_SECTIONS 96u /* the PE format's limit */

/* Reads guest memory at an address the mode chooses. */
typedef struct reader {
    vmi_instance_t vmi;
    int virt; /* 1: triage dump, by virtual address; 0: physical */
} reader_t;

static int rd(const reader_t *r, uint64_t addr, void *buf, size_t len)
{
    if (r->virt)
        return tinyvmi_crashdump_read_va(r->vmi, addr, buf, len, NULL) ==
                       VMI_SUCCESS ? 0 : -1;
    size_t got = 0;
    return vmi_read_pa(r->vmi, addr, len, buf, &got) == VMI_SUCCESS &&
                   got == len ? 0 : -1;
}

static uint32_t u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t u32(const uint8_t *p) { return u16(p) | u16(p + 2) << 16; }
static uint64_t u64(const uint8_t *p) { return u32(p) | (uint64_t)u32(p + 4) << 32; }

/* The headers of one image, checked just enough to follow them safely. */
typedef struct pe {
    uint64_t base;
    uint8_t hdr[HDR_MAX];
    uint32_t nt, opt;      /* offsets in hdr */
    uint32_t machine, nsections, timestamp, nsymbols, characteristics;
    uint32_t opt_size, magic, size_of_image, os_major, os_minor;
    uint32_t dir_rva[16], dir_size[16], ndirs;
} pe_t;

static int pe_read(const reader_t *r, uint64_t base, pe_t *pe)
{
    memset(pe, 0, sizeof *pe);
    pe->base = base;
    if (rd(r, base, pe->hdr, 2) || memcmp(pe->hdr, "MZ", 2) != 0 ||
        rd(r, base, pe->hdr, sizeof pe->hdr))
        return -1;
    uint32_t lf = u32(pe->hdr + 0x3c);
    if (lf < 0x40 || lf > HDR_MAX - 264 || memcmp(pe->hdr + lf, "PE\0\0", 4))
        return -1;
    const uint8_t *fh = pe->hdr + lf + 4, *oh = fh + 20;
    pe->nt = lf;
    pe->opt = lf + 24;
    pe->machine = u16(fh);
    pe->nsections = u16(fh + 2);
    pe->timestamp = u32(fh + 4);
    pe->nsymbols = u32(fh + 12);
    pe->opt_size = u16(fh + 16);
    pe->characteristics = u16(fh + 18);
    pe->magic = u16(oh);
    if (pe->magic != 0x10b && pe->magic != 0x20b)
        return -1;
    pe->os_major = u16(oh + 40);
    pe->os_minor = u16(oh + 42);
    pe->size_of_image = u32(oh + 56);
    uint32_t dd = pe->magic == 0x20b ? 112 : 96;
    uint32_t n = u32(oh + dd - 4);
    if (n > 16)
        n = 16;
    if (pe->opt_size < dd)
        n = 0;
    else if (n > (pe->opt_size - dd) / 8)
        n = (pe->opt_size - dd) / 8;
    pe->ndirs = n;
    for (uint32_t i = 0; i < n; i++) {
        pe->dir_rva[i] = u32(oh + dd + 8 * i);
        pe->dir_size[i] = u32(oh + dd + 8 * i + 4);
    }
    return pe->size_of_image >= PAGE ? 0 : -1;
}

static int in_image(const pe_t *pe, uint32_t rva, uint32_t len)
{
    return rva < pe->size_of_image && len <= pe->size_of_image - rva;
}

/* A NUL-terminated string of at most max bytes at rva: 0, or -1 if
 * unreadable or unterminated. */
static int read_str(const reader_t *r, const pe_t *pe, uint32_t rva,
                    char *out, size_t max)
{
    for (size_t i = 0; i < max; i++) {
        if (!in_image(pe, rva, (uint32_t)i + 1) ||
            rd(r, pe->base + rva + i, out + i, 1))
            return -1;
        if (out[i] == '\0')
            return 0;
    }
    return -1;
}

static int export_name(const reader_t *r, const pe_t *pe, char *out,
                       size_t max)
{
    uint8_t ed[16];
    if (pe->ndirs < 1 || !in_image(pe, pe->dir_rva[0], sizeof ed) ||
        rd(r, pe->base + pe->dir_rva[0], ed, sizeof ed))
        return -1;
    return read_str(r, pe, u32(ed + 12), out, max);
}

/* The CodeView RSDS record: 1 found, 0 the image has none, -1 the debug
 * directory or the record is not readable. */
typedef struct rsds {
    uint8_t guid[16];
    uint32_t age;
    char pdb[128];
} rsds_t;

static int read_rsds(const reader_t *r, const pe_t *pe, rsds_t *out)
{
    if (pe->ndirs < 7 || pe->dir_rva[6] == 0 || pe->dir_size[6] == 0)
        return 0;
    uint32_t rva = pe->dir_rva[6], n = pe->dir_size[6] / 28;
    if (!in_image(pe, rva, pe->dir_size[6]))
        return 0;
    for (uint32_t i = 0; i < n && i < 32; i++) {
        uint8_t e[28], cv[24];
        if (rd(r, pe->base + rva + 28 * i, e, sizeof e))
            return -1;
        uint32_t size = u32(e + 16), at = u32(e + 20);
        if (u32(e + 12) != 2 || at == 0 || size < 25 || !in_image(pe, at, size))
            continue;
        if (rd(r, pe->base + at, cv, sizeof cv))
            return -1;
        if (memcmp(cv, "RSDS", 4) != 0)
            continue;
        char path[520];
        size_t max = size - 24 < sizeof path ? size - 24 : sizeof path;
        if (read_str(r, pe, at + 24, path, max))
            return -1;
        const char *name = path;
        for (const char *p = path; *p; p++)
            if (*p == '\\' || *p == '/')
                name = p + 1;
        size_t len = strlen(name);
        if (len == 0 || len >= sizeof out->pdb)
            continue; /* no usable name */
        memcpy(out->guid, cv + 4, 16);
        out->age = u32(cv + 20);
        memcpy(out->pdb, name, len + 1);
        return 1;
    }
    return 0;
}

static int is_kernel_name(const char *s)
{
    static const char *const names[] = {
        "ntoskrnl.exe", "ntkrnlmp.exe", "ntkrnlpa.exe", "ntkrpamp.exe",
        "ntkrla57.exe", "ntoskrnl.pdb", "ntkrnlmp.pdb", "ntkrnlpa.pdb",
        "ntkrpamp.pdb", "ntkrla57.pdb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

/* ---- Finding the kernel -------------------------------------------------- */

/* Triage dump: the KDBG copy's KernBase, else the image below the KDBG. */
static int find_triage(const reader_t *r, const tinyvmi_crashdump_t *cd,
                       pe_t *pe)
{
    uint8_t kdbg[0x20];
    if (rd(r, cd->kd_debugger_data_block, kdbg, sizeof kdbg) == 0 &&
        memcmp(kdbg + 0x10, "KDBG", 4) == 0 &&
        pe_read(r, u64(kdbg + 0x18), pe) == 0)
        return 0;
    uint64_t at = cd->kd_debugger_data_block;
    for (uint64_t off = 0; off < SCAN_DOWN && off <= at; off += PAGE) {
        uint64_t base = (at & ~(uint64_t)(PAGE - 1)) - off;
        if (pe_read(r, base, pe) == 0 && at - base < pe->size_of_image)
            return 0;
    }
    return -1;
}

/* Physical memory: the first page-aligned image named as the kernel. */
static int find_physical(const reader_t *r, pe_t *pe)
{
    addr_t max = vmi_get_max_physical_address(r->vmi);
    for (addr_t pa = 0; pa < max; pa += PAGE) {
        uint8_t mz[2];
        if (rd(r, pa, mz, 2) || memcmp(mz, "MZ", 2) || pe_read(r, pa, pe))
            continue;
        char name[64];
        rsds_t cv;
        if ((export_name(r, pe, name, sizeof name) == 0 &&
             is_kernel_name(name)) ||
            (read_rsds(r, pe, &cv) == 1 && is_kernel_name(cv.pdb)))
            return 0;
    }
    return -1;
}

/* ---- Printing -------------------------------------------------------------- */

static const char *windows_version(const pe_t *pe)
{
    static const struct {
        uint32_t major, minor;
        const char *name;
    } v[] = {{5, 0, "2000"}, {5, 1, "XP"},  {5, 2, "XP or 2003"},
             {6, 0, "Vista"}, {6, 1, "7"},  {6, 2, "8"},
             {6, 3, "8.1"},   {10, 0, "10 or 11"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i].major == pe->os_major && v[i].minor == pe->os_minor)
            return v[i].name;
    return NULL;
}

static const char *kernel_kind(const char *name)
{
    if (!strncasecmp(name, "ntoskrnl", 8))
        return "Uniprocessor without PAE";
    if (!strncasecmp(name, "ntkrnlmp", 8))
        return "Multi-processor without PAE";
    if (!strncasecmp(name, "ntkrnlpa", 8))
        return "Uniprocessor with PAE (version 5.0 and higher)";
    if (!strncasecmp(name, "ntkrpamp", 8))
        return "Multi-processor with PAE (version 5.0 and higher)";
    if (!strncasecmp(name, "ntkrla57", 8))
        return "Multi-processor with 5-level paging";
    return "Unknown kernel kind";
}

static void print_sections(const reader_t *r, const pe_t *pe)
{
    uint64_t at = pe->base + pe->opt + pe->opt_size;
    uint32_t n = pe->nsections < MAX_SECTIONS ? pe->nsections : MAX_SECTIONS;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t sh[8];
        if (rd(r, at + 40u * i, sh, sizeof sh)) {
            printf("\tSection %u: (not readable)\n", i + 1);
            continue;
        }
        char name[9];
        for (int j = 0; j < 8; j++)
            name[j] = isprint(sh[j]) ? (char)sh[j] : sh[j] ? '?' : '\0';
        name[8] = '\0';
        printf("\tSection %u: %s\n", i + 1, name);
    }
}

static int report(const reader_t *r, const pe_t *pe)
{
    rsds_t cv;
    int have = read_rsds(r, pe, &cv);
    char exp[64] = "";
    int have_exp = export_name(r, pe, exp, sizeof exp) == 0;
    const char *ver = windows_version(pe);
    printf("Windows Kernel found @ 0x%" PRIx64 "%s\n", pe->base,
           r->virt ? " (virtual address)" : "");
    printf("\tVersion: %s-bit Windows %s\n", pe->magic == 0x20b ? "64" : "32",
           ver ? ver : "(unknown)");
    printf("\tPE GUID: %.8x%x\n", pe->timestamp, pe->size_of_image);
    if (have == 1) {
        const uint8_t *g = cv.guid;
        printf("\tPDB GUID: %08" PRIx32 "%04" PRIx32 "%04" PRIx32, u32(g),
               u16(g + 4), u16(g + 6));
        for (int i = 8; i < 16; i++)
            printf("%02x", g[i]);
        printf("%x\n", cv.age);
        printf("\tKernel filename: %s\n", cv.pdb);
        printf("\tSymbol key: %s/", cv.pdb);
        printf("%08" PRIX32 "%04" PRIX32 "%04" PRIX32, u32(g), u16(g + 4),
               u16(g + 6));
        for (int i = 8; i < 16; i++)
            printf("%02X", g[i]);
        printf("%X\n", cv.age);
        printf("\t%s\n", kernel_kind(cv.pdb));
    } else {
        if (have < 0)
            printf("\tPDB GUID: unavailable: the kernel's debug directory "
                   "(RVA 0x%x) is not in the %s\n", pe->dir_rva[6],
                   r->virt ? "dump" : "readable memory");
        else
            printf("\tPDB GUID: unavailable: the image has no CodeView "
                   "RSDS record\n");
        if (have_exp)
            printf("\tKernel filename: %s\n", exp);
    }
    printf("\tSignature: %u.\n", u32(pe->hdr + pe->nt));
    printf("\tMachine: %u.\n", pe->machine);
    printf("\t# of sections: %u.\n", pe->nsections);
    printf("\t# of symbols: %u.\n", pe->nsymbols);
    printf("\tTimestamp: %u.\n", pe->timestamp);
    printf("\tCharacteristics: %u.\n", pe->characteristics);
    printf("\tOptional header size: %u.\n", pe->opt_size);
    printf("\tOptional header type: 0x%x\n", pe->magic);
    print_sections(r, pe);
    return have == 1 ? 0 : 2;
}

int main(int argc, char **argv)
{
    const char *domain = NULL;
    uint64_t domid = 0;
    uint64_t flags = VMI_INIT_DOMAINNAME;
    if (argc == 3 && strcmp(argv[1], "name") == 0) {
        domain = argv[2];
    } else if (argc == 3 && strcmp(argv[1], "domid") == 0) {
        domid = strtoull(argv[2], NULL, 0);
        flags = VMI_INIT_DOMAINID;
    } else if (argc == 2 && argv[1][0] != '-' &&
               strcmp(argv[1], "name") != 0 && strcmp(argv[1], "domid") != 0) {
        domain = argv[1];
    } else {
        fprintf(stderr, "Usage: %s name <vm> | domid <id> | <vm or dump>\n"
                "Find the Windows kernel and print its PE and PDB GUIDs.\n",
                argv[0]);
        return 1;
    }
    const void *dom = flags == VMI_INIT_DOMAINID ? (const void *)&domid
                                                  : (const void *)domain;
    vmi_mode_t mode;
    vmi_instance_t vmi = NULL;
    if (vmi_get_access_mode(NULL, dom, flags, NULL, &mode) != VMI_SUCCESS ||
        vmi_init(&vmi, mode, dom, flags, NULL, NULL) != VMI_SUCCESS) {
        printf("Failed to init LibVMI library: %s\n", tinyvmi_init_error());
        return 1;
    }
    reader_t r = {vmi, 0};
    tinyvmi_crashdump_t cd = {.version = TINYVMI_CRASHDUMP_VERSION};
    int triage = tinyvmi_crashdump_info(vmi, &cd) == VMI_SUCCESS &&
                 strcmp(cd.kind, "triage") == 0;
    pe_t *pe = malloc(sizeof *pe);
    int ret = 1;
    if (!pe)
        goto out;
    r.virt = triage;
    if ((triage ? find_triage(&r, &cd, pe) : find_physical(&r, pe)) != 0) {
        printf("No Windows kernel found%s.\n",
               triage ? " at the triage dump's KDBG or below it" : "");
        goto out;
    }
    ret = report(&r, pe);
out:
    free(pe);
    vmi_destroy(vmi);
    return ret;
}
