/*
 * PE images in guest memory: the DOS and NT headers, the CodeView RSDS
 * record of the debug directory (PDB name, GUID, age), the export
 * directory's name, and finding ntoskrnl's image below an address known to
 * lie inside it.  Layouts are Microsoft's published PE/COFF format.
 *
 * Everything is read from the guest: each RVA is checked against
 * SizeOfImage before it is followed, strings are read page by page and
 * must end within their bound, counts are capped.
 */
#include "os/windows/win.h"

#define PE_PAGE 0x1000u
#define DOS_HDR_SIZE 0x40u
#define DOS_LFANEW 0x3cu
/* Signature + IMAGE_FILE_HEADER + the largest optional header (PE32+ with
 * 16 data directories). */
#define NT_HDR_MAX (4u + 20u + 240u)
#define FH 4u             /* IMAGE_FILE_HEADER, after "PE\0\0" */
#define OH (FH + 20u)     /* IMAGE_OPTIONAL_HEADER */
#define DIR_EXPORT 0u
#define DIR_DEBUG 6u
#define DEBUG_ENTRY_SIZE 28u
#define DEBUG_TYPE_CODEVIEW 2u
#define RSDS_FIXED 24u    /* "RSDS", GUID, age */
/* Entries of the debug directory looked at: real images have a handful. */
#define DEBUG_MAX_ENTRIES 32u
/* The longest PDB path read (Windows' MAX_PATH, with room). */
#define RSDS_PATH_MAX 520u
#define EXPORT_NAME_MAX 64u
/* No image, and certainly no kernel, is larger than this. */
#define IMAGE_MAX (1u << 30)
#define KERNEL_SCAN_MAX (32u << 20)

#define ERR(...) tv_fmt(err, errlen, __VA_ARGS__)

static bool in_image(const win_pe_t *pe, uint32_t rva, uint32_t size)
{
    return rva < pe->size_of_image && size <= pe->size_of_image - rva;
}

/* Reads a NUL-terminated string of at most max bytes (NUL included) at
 * addr, one page-bounded piece at a time so that a string ending before an
 * unreadable page is still read.  Returns 0, TINYVMI_EIO if a byte before
 * the NUL could not be read, TINYVMI_EFORMAT if there is no NUL. */
static int read_cstr(win_read_fn rd, void *arg, uint64_t addr, char *out,
                     size_t max)
{
    size_t got = 0;
    while (got < max) {
        uint64_t a = addr + got;
        size_t n = PE_PAGE - (size_t)(a & (PE_PAGE - 1));
        if (n > max - got)
            n = max - got;
        if (rd(arg, a, out + got, n))
            return TINYVMI_EIO;
        size_t len = tv_strnlen(out + got, n);
        if (len < n)
            return 0;
        got += n;
    }
    return TINYVMI_EFORMAT;
}

/* Checks the machine against the optional header's kind. */
static bool machine_ok(uint16_t machine, bool plus)
{
    switch (machine) {
    case 0x14c:  /* i386 */
    case 0x1c4:  /* ARMNT */
        return !plus;
    case 0x8664: /* AMD64 */
    case 0xaa64: /* ARM64 */
        return plus;
    default:
        return false;
    }
}

/* The DOS and NT headers.  Fills machine, pe32plus, size_of_image,
 * image_base, timestamp; *dirs gets where the data directories start in
 * nt[] and *ndirs how many the header holds. */
static int parse_headers(win_read_fn rd, void *arg, uint64_t base,
                         win_pe_t *pe, uint8_t nt[NT_HDR_MAX], uint32_t *dirs,
                         uint32_t *ndirs, char *err, size_t errlen)
{
    uint8_t dos[DOS_HDR_SIZE];
    if (rd(arg, base, dos, 2) || dos[0] != 'M' || dos[1] != 'Z') {
        ERR("no MZ header at 0x%llx", (unsigned long long)base);
        return TINYVMI_ENOENT;
    }
    if (rd(arg, base, dos, sizeof dos)) {
        ERR("PE at 0x%llx: DOS header unreadable", (unsigned long long)base);
        return TINYVMI_EFORMAT;
    }
    /* The NT headers must sit in the first page, after the DOS header:
     * every image Windows maps has them there, and it bounds the read. */
    uint32_t lfanew = tv_le32(dos + DOS_LFANEW);
    if (lfanew < DOS_HDR_SIZE || lfanew > PE_PAGE - NT_HDR_MAX) {
        ERR("PE at 0x%llx: e_lfanew 0x%x out of bounds [0x%x, 0x%x]",
            (unsigned long long)base, lfanew, DOS_HDR_SIZE,
            PE_PAGE - NT_HDR_MAX);
        return TINYVMI_EFORMAT;
    }
    if (rd(arg, base + lfanew, nt, NT_HDR_MAX)) {
        ERR("PE at 0x%llx: NT headers at +0x%x unreadable",
            (unsigned long long)base, lfanew);
        return TINYVMI_EFORMAT;
    }
    if (tv_memcmp(nt, "PE\0\0", 4) != 0) {
        ERR("PE at 0x%llx: no PE signature at +0x%x",
            (unsigned long long)base, lfanew);
        return TINYVMI_EFORMAT;
    }
    uint16_t magic = tv_le16(nt + OH);
    if (magic != 0x10b && magic != 0x20b) {
        ERR("PE at 0x%llx: optional header magic 0x%x is neither 0x10b "
            "nor 0x20b", (unsigned long long)base, magic);
        return TINYVMI_EFORMAT;
    }
    pe->pe32plus = magic == 0x20b;
    pe->machine = tv_le16(nt + FH);
    if (!machine_ok(pe->machine, pe->pe32plus)) {
        ERR("PE at 0x%llx: machine 0x%x unknown or not a %s image",
            (unsigned long long)base, pe->machine,
            pe->pe32plus ? "PE32+" : "PE32");
        return TINYVMI_EFORMAT;
    }
    pe->timestamp = tv_le32(nt + FH + 4);
    pe->image_base = pe->pe32plus ? tv_le64(nt + OH + 24)
                                  : tv_le32(nt + OH + 28);
    pe->size_of_image = tv_le32(nt + OH + 56);
    if (pe->size_of_image < PE_PAGE || pe->size_of_image > IMAGE_MAX) {
        ERR("PE at 0x%llx: SizeOfImage 0x%x implausible",
            (unsigned long long)base, pe->size_of_image);
        return TINYVMI_EFORMAT;
    }
    uint32_t dd = pe->pe32plus ? 112u : 96u;
    uint32_t n = tv_le32(nt + OH + dd - 4);
    uint32_t opt_size = tv_le16(nt + FH + 16);
    /* Directories count only as far as both fields say they exist. */
    if (n > 16)
        n = 16;
    if (opt_size < dd)
        n = 0;
    else if (n > (opt_size - dd) / 8)
        n = (opt_size - dd) / 8;
    *dirs = OH + dd;
    *ndirs = n;
    return 0;
}

/* One CodeView record at rva: RSDS, GUID, age, path.  Returns 0 (have_rsds
 * set if it is an RSDS record), TINYVMI_EIO if unreadable, or EFORMAT. */
static int parse_rsds(win_read_fn rd, void *arg, uint64_t base,
                      uint32_t rva, uint32_t size, win_pe_t *pe, char *err,
                      size_t errlen)
{
    if (!in_image(pe, rva, size)) {
        ERR("PE at 0x%llx: CodeView record [0x%x, +0x%x) outside "
            "SizeOfImage 0x%x", (unsigned long long)base, rva, size,
            pe->size_of_image);
        return TINYVMI_EFORMAT;
    }
    uint8_t fixed[RSDS_FIXED];
    if (size < 4)
        return 0;
    if (rd(arg, base + rva, fixed, 4))
        return TINYVMI_EIO;
    if (tv_memcmp(fixed, "RSDS", 4) != 0)
        return 0; /* NB10 and others: no GUID to give */
    if (size < RSDS_FIXED + 1) {
        ERR("PE at 0x%llx: RSDS record of %u bytes is too short",
            (unsigned long long)base, size);
        return TINYVMI_EFORMAT;
    }
    if (rd(arg, base + rva, fixed, sizeof fixed))
        return TINYVMI_EIO;
    char path[RSDS_PATH_MAX];
    size_t max = size - RSDS_FIXED;
    if (max > sizeof path)
        max = sizeof path;
    int rc = read_cstr(rd, arg, base + rva + RSDS_FIXED, path, max);
    if (rc == TINYVMI_EFORMAT) {
        ERR("PE at 0x%llx: RSDS PDB path has no NUL within %zu bytes",
            (unsigned long long)base, max);
        return rc;
    }
    if (rc)
        return rc;
    /* The PDB's file name: what follows the last path separator. */
    const char *name = path;
    for (const char *p = path; *p; p++)
        if (*p == '\\' || *p == '/')
            name = p + 1;
    size_t len = tv_strlen(name);
    if (len == 0 || len >= sizeof pe->pdb) {
        ERR("PE at 0x%llx: RSDS PDB name of %zu bytes (1..%zu allowed)",
            (unsigned long long)base, len, sizeof pe->pdb - 1);
        return TINYVMI_EFORMAT;
    }
    tv_memcpy(pe->guid, fixed + 4, 16);
    pe->age = tv_le32(fixed + 20);
    tv_memcpy(pe->pdb, name, len + 1);
    pe->have_rsds = true;
    return 0;
}

/* The debug directory: the first CodeView entry with an RSDS record. */
static int parse_debug(win_read_fn rd, void *arg, uint64_t base,
                       uint32_t rva, uint32_t size, win_pe_t *pe, char *err,
                       size_t errlen)
{
    if (!in_image(pe, rva, size)) {
        ERR("PE at 0x%llx: debug directory [0x%x, +0x%x) outside "
            "SizeOfImage 0x%x", (unsigned long long)base, rva, size,
            pe->size_of_image);
        return TINYVMI_EFORMAT;
    }
    uint32_t count = size / DEBUG_ENTRY_SIZE;
    if (count > DEBUG_MAX_ENTRIES)
        count = DEBUG_MAX_ENTRIES;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t e[DEBUG_ENTRY_SIZE];
        if (rd(arg, base + rva + i * DEBUG_ENTRY_SIZE, e, sizeof e)) {
            pe->rsds_unreadable = true;
            return 0;
        }
        if (tv_le32(e + 12) != DEBUG_TYPE_CODEVIEW)
            continue;
        uint32_t data_rva = tv_le32(e + 20), data_size = tv_le32(e + 16);
        if (data_rva == 0)
            continue; /* not mapped: only in the file */
        int rc = parse_rsds(rd, arg, base, data_rva, data_size, pe, err,
                            errlen);
        if (rc == TINYVMI_EIO) {
            pe->rsds_unreadable = true;
            return 0;
        }
        if (rc || pe->have_rsds)
            return rc;
    }
    return 0;
}

/* IMAGE_EXPORT_DIRECTORY.Name (at +12): the image's own file name. */
static int parse_export(win_read_fn rd, void *arg, uint64_t base,
                        uint32_t rva, uint32_t size, win_pe_t *pe, char *err,
                        size_t errlen)
{
    uint8_t ed[16];
    if (!in_image(pe, rva, size) || size < 40) {
        ERR("PE at 0x%llx: export directory [0x%x, +0x%x) outside "
            "SizeOfImage 0x%x or too small", (unsigned long long)base, rva,
            size, pe->size_of_image);
        return TINYVMI_EFORMAT;
    }
    if (rd(arg, base + rva, ed, sizeof ed))
        return 0;
    uint32_t name = tv_le32(ed + 12);
    if (!in_image(pe, name, 1)) {
        ERR("PE at 0x%llx: export name RVA 0x%x outside SizeOfImage 0x%x",
            (unsigned long long)base, name, pe->size_of_image);
        return TINYVMI_EFORMAT;
    }
    uint32_t max = pe->size_of_image - name;
    if (max > sizeof pe->export_name)
        max = sizeof pe->export_name;
    char buf[sizeof pe->export_name];
    int rc = read_cstr(rd, arg, base + name, buf, max);
    if (rc == TINYVMI_EIO)
        return 0;
    if (rc) {
        ERR("PE at 0x%llx: export name has no NUL within %u bytes",
            (unsigned long long)base, max);
        return rc;
    }
    tv_memcpy(pe->export_name, buf, sizeof buf);
    return 0;
}

int win_pe_parse(win_read_fn rd, void *arg, uint64_t base, win_pe_t *out,
                 char *err, size_t errlen)
{
    uint8_t nt[NT_HDR_MAX];
    uint32_t dirs = 0, ndirs = 0;
    tv_memset(out, 0, sizeof *out);
    if (errlen)
        err[0] = '\0';
    int rc = parse_headers(rd, arg, base, out, nt, &dirs, &ndirs, err,
                           errlen);
    if (rc)
        return rc;
    if (ndirs > DIR_EXPORT) {
        uint32_t rva = tv_le32(nt + dirs), size = tv_le32(nt + dirs + 4);
        if (rva && size)
            rc = parse_export(rd, arg, base, rva, size, out, err, errlen);
    }
    if (!rc && ndirs > DIR_DEBUG) {
        uint32_t rva = tv_le32(nt + dirs + 8 * DIR_DEBUG);
        uint32_t size = tv_le32(nt + dirs + 8 * DIR_DEBUG + 4);
        if (rva && size)
            rc = parse_debug(rd, arg, base, rva, size, out, err, errlen);
    }
    return rc;
}

void win_pe_guid_age(const win_pe_t *pe, char out[48])
{
    const uint8_t *g = pe->guid;
    tv_fmt(out, 48, "%08X%04X%04X%02X%02X%02X%02X%02X%02X%02X%02X%X",
           tv_le32(g), tv_le16(g + 4), tv_le16(g + 6), g[8], g[9], g[10],
           g[11], g[12], g[13], g[14], g[15], pe->age);
}

/* ---- Finding ntoskrnl ---------------------------------------------------- */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool same_nocase(const char *a, const char *b)
{
    for (;; a++, b++) {
        if (lower(*a) != lower(*b))
            return false;
        if (!*a)
            return true;
    }
}

bool win_is_kernel_name(const char *name)
{
    /* The kernel's image names across versions (uni/multi-processor, PAE,
     * LA57) and the PDB names they are built with. */
    static const char *const stems[] = {"ntoskrnl", "ntkrnlmp", "ntkrnlpa",
                                        "ntkrpamp", "ntkrla57"};
    static const char *const exts[] = {".exe", ".pdb"};
    for (size_t i = 0; i < TV_ARRAY_LEN(stems); i++) {
        size_t n = tv_strlen(stems[i]);
        bool stem = true;
        for (size_t j = 0; j < n && stem; j++)
            stem = lower(name[j]) == stems[i][j];
        if (!stem)
            continue;
        for (size_t j = 0; j < TV_ARRAY_LEN(exts); j++)
            if (same_nocase(name + n, exts[j]))
                return true;
    }
    return false;
}

/* 1: a kernel's name; 0: no name could be read; -1: another image's. */
static int kernel_named(const win_pe_t *pe)
{
    bool any = false;
    if (pe->have_rsds) {
        if (win_is_kernel_name(pe->pdb))
            return 1;
        any = true;
    }
    if (pe->export_name[0]) {
        if (win_is_kernel_name(pe->export_name))
            return 1;
        any = true;
    }
    return any ? -1 : 0;
}

int win_find_kernel(win_read_fn rd, void *arg, uint64_t inside,
                    win_kernel_t *out, char *err, size_t errlen)
{
    uint64_t page = inside & ~(uint64_t)(PE_PAGE - 1);
    unsigned images = 0, others = 0;
    bool have_unnamed = false;
    tv_memset(out, 0, sizeof *out);
    for (uint64_t off = 0; off < KERNEL_SCAN_MAX && off <= page;
         off += PE_PAGE) {
        uint64_t base = page - off;
        uint8_t mz[2];
        if (rd(arg, base, mz, 2) || mz[0] != 'M' || mz[1] != 'Z')
            continue; /* unreadable pages are skipped, not fatal */
        win_pe_t pe;
        char why[1];
        if (win_pe_parse(rd, arg, base, &pe, why, sizeof why) != 0)
            continue;
        images++;
        if (inside - base >= pe.size_of_image)
            continue; /* an image below, not the one holding inside */
        int named = kernel_named(&pe);
        if (named > 0) {
            out->base = base;
            out->pe = pe;
            out->named = true;
            return 0;
        }
        if (named < 0) {
            others++;
            continue;
        }
        /* Neither name readable (e.g. a dump that kept only the header
         * page): the highest such image is the candidate. */
        if (!have_unnamed) {
            out->base = base;
            out->pe = pe;
            have_unnamed = true;
        }
    }
    if (have_unnamed)
        return 0;
    ERR("no ntoskrnl image within %u MiB below 0x%llx (%u PE images seen, "
        "%u covering it with another name)", KERNEL_SCAN_MAX >> 20,
        (unsigned long long)inside, images, others);
    return TINYVMI_ENOENT;
}
