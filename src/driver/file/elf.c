/*
 * ELF cores as QEMU's dump-guest-memory and libvirt's memory-only dumps
 * write them: little-endian ET_CORE, ELF32 or ELF64 (one code path, driven
 * by a per-class table of field positions).  PT_LOAD segments give RAM at
 * p_paddr (the p_filesz bytes in the file; a p_memsz tail is left
 * unmapped), PT_NOTE segments give the vCPUs' registers (elf_note.c).
 */
#include <stdlib.h>

#include "driver/file/file_int.h"

#define EI_NIDENT 16
#define EI_CLASS 4
#define EI_DATA 5
#define EI_VERSION 6
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define ELFDATA2MSB 2
#define EV_CURRENT 1
#define ET_CORE 4
#define PT_LOAD 1
#define PT_NOTE 4
#define PN_XNUM 0xffffu

typedef struct elf_field {
    uint8_t off, size;
} elf_field_t;

/* Where each field we use sits, per class. */
typedef struct elf_layout {
    const char *name;
    uint8_t ehsize, phentsize, shentsize;
    elf_field_t e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize;
    elf_field_t p_type, p_offset, p_paddr, p_filesz, p_memsz;
    elf_field_t sh_info;
} elf_layout_t;

static const elf_layout_t layouts[] = {
    [ELFCLASS32] = {"ELF32", 52, 32, 40, {28, 4}, {32, 4}, {42, 2}, {44, 2},
                    {46, 2}, {0, 4}, {4, 4}, {12, 4}, {16, 4}, {20, 4},
                    {28, 4}},
    [ELFCLASS64] = {"ELF64", 64, 56, 64, {32, 8}, {40, 8}, {54, 2}, {56, 2},
                    {58, 2}, {0, 4}, {8, 8}, {24, 8}, {32, 8}, {40, 8},
                    {44, 4}},
};

static const elf_field_t e_type = {16, 2}, e_machine = {18, 2},
                         e_version = {20, 4};

static uint64_t elf_get(const uint8_t *p, elf_field_t fl)
{
    p += fl.off;
    return fl.size == 8 ? tv_le64(p) : fl.size == 4 ? tv_le32(p) : tv_le16(p);
}

/* The parsed file header. */
typedef struct elf_hdr {
    const elf_layout_t *l;
    uint16_t machine;
    uint64_t phoff, phnum;
} elf_hdr_t;

static int elf_ident(tv_file_t *f, const elf_layout_t **l)
{
    const uint8_t *id = f->data;
    if (f->size < EI_NIDENT)
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "ELF: file is 0x%zx bytes, "
                       "shorter than the %u-byte identification", f->size,
                       EI_NIDENT);
    if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: bad class %u (1 = "
                       "ELF32, 2 = ELF64)", id[EI_CLASS]);
    if (id[EI_DATA] == ELFDATA2MSB)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP,
                       "ELF: big-endian cores are not supported");
    if (id[EI_DATA] != ELFDATA2LSB)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: bad data encoding %u",
                       id[EI_DATA]);
    if (id[EI_VERSION] != EV_CURRENT)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: bad version %u",
                       id[EI_VERSION]);
    *l = &layouts[id[EI_CLASS]];
    if (f->size < (*l)->ehsize)
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "ELF: %s header needs %u "
                       "bytes, the file has 0x%zx", (*l)->name,
                       (*l)->ehsize, f->size);
    return TINYVMI_OK;
}

/* e_phnum == PN_XNUM: the real count is section header 0's sh_info (QEMU
 * writes this for guests with 65535 or more memory blocks). */
static int elf_xnum(tv_file_t *f, elf_hdr_t *h)
{
    const elf_layout_t *l = h->l;
    uint64_t shoff = elf_get(f->data, l->e_shoff);
    uint64_t shentsize = elf_get(f->data, l->e_shentsize);
    if (shoff == 0 || shentsize != l->shentsize ||
        !file_span_ok(f, shoff, l->shentsize))
        return tv_fail(f->vmi, TINYVMI_EFORMAT,
                       "ELF: e_phnum is PN_XNUM but section header 0 (at "
                       "0x%llx, entry size %llu) is missing or outside the "
                       "file (size 0x%zx)", (unsigned long long)shoff,
                       (unsigned long long)shentsize, f->size);
    h->phnum = elf_get(f->data + shoff, l->sh_info);
    return TINYVMI_OK;
}

static int elf_header(tv_file_t *f, elf_hdr_t *h)
{
    int rc = elf_ident(f, &h->l);
    if (rc)
        return rc;
    const uint8_t *eh = f->data;
    const elf_layout_t *l = h->l;
    uint64_t type = elf_get(eh, e_type);
    uint64_t phentsize = elf_get(eh, l->e_phentsize);
    if (elf_get(eh, e_version) != EV_CURRENT)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: bad e_version %llu",
                       (unsigned long long)elf_get(eh, e_version));
    if (type != ET_CORE)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "ELF: e_type %llu is not "
                       "ET_CORE (4): not a memory dump",
                       (unsigned long long)type);
    if (phentsize != l->phentsize)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: e_phentsize %llu, "
                       "%s needs %u", (unsigned long long)phentsize, l->name,
                       l->phentsize);
    h->machine = (uint16_t)elf_get(eh, e_machine);
    h->phoff = elf_get(eh, l->e_phoff);
    h->phnum = elf_get(eh, l->e_phnum);
    if (h->phnum == PN_XNUM && (rc = elf_xnum(f, h)) != 0)
        return rc;
    if (h->phnum == 0)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: no program headers");
    /* phnum < 2^32 and phentsize <= 56: the product cannot overflow. */
    if (!file_span_ok(f, h->phoff, h->phnum * l->phentsize))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "ELF: %llu program headers "
                       "at 0x%llx extend past end of file (size 0x%zx)",
                       (unsigned long long)h->phnum,
                       (unsigned long long)h->phoff, f->size);
    return TINYVMI_OK;
}

/* One program header, normalised. */
typedef struct elf_phdr {
    uint64_t type, offset, paddr, filesz, memsz;
} elf_phdr_t;

static elf_phdr_t elf_phdr(const tv_file_t *f, const elf_hdr_t *h,
                           uint64_t i)
{
    const elf_layout_t *l = h->l;
    const uint8_t *p = f->data + h->phoff + i * l->phentsize;
    return (elf_phdr_t){elf_get(p, l->p_type), elf_get(p, l->p_offset),
                        elf_get(p, l->p_paddr), elf_get(p, l->p_filesz),
                        elf_get(p, l->p_memsz)};
}

static int elf_load(tv_file_t *f, uint64_t i, const elf_phdr_t *p)
{
    unsigned long long n = i, off = p->offset, pa = p->paddr,
                       filesz = p->filesz;
    if (p->filesz > p->memsz)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: program header %llu: "
                       "p_filesz 0x%llx exceeds p_memsz 0x%llx", n, filesz,
                       (unsigned long long)p->memsz);
    if (p->filesz == 0) /* nothing in the file: all of it is unmapped */
        return TINYVMI_OK;
    if (!file_span_ok(f, p->offset, p->filesz))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "ELF: program header %llu: "
                       "segment [0x%llx, +0x%llx) extends past end of file "
                       "(size 0x%zx)", n, off, filesz, f->size);
    if (p->filesz > UINT64_MAX - p->paddr)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "ELF: program header %llu: "
                       "physical range [0x%llx, +0x%llx) wraps past 2^64",
                       n, pa, filesz);
    return file_range_add(f, "ELF", p->paddr, p->filesz, p->offset);
}

static int elf_note_seg(tv_file_t *f, uint64_t i, const elf_phdr_t *p,
                        file_seg_t *seg)
{
    if (!file_span_ok(f, p->offset, p->filesz))
        return tv_fail(f->vmi, TINYVMI_ETRUNC, "ELF: program header %llu: "
                       "note segment [0x%llx, +0x%llx) extends past end of "
                       "file (size 0x%zx)", (unsigned long long)i,
                       (unsigned long long)p->offset,
                       (unsigned long long)p->filesz, f->size);
    *seg = (file_seg_t){(unsigned)i, p->offset, p->filesz};
    return TINYVMI_OK;
}

/* Adds the PT_LOADs as ranges and collects the PT_NOTEs into seg[]
 * (room for every program header that is a note). */
static int elf_segments(tv_file_t *f, const elf_hdr_t *h, file_seg_t *seg,
                        size_t *nseg)
{
    int rc = TINYVMI_OK;
    for (uint64_t i = 0; !rc && i < h->phnum; i++) {
        elf_phdr_t p = elf_phdr(f, h, i);
        if (p.type == PT_LOAD)
            rc = elf_load(f, i, &p);
        else if (p.type == PT_NOTE)
            rc = elf_note_seg(f, i, &p, &seg[(*nseg)++]);
    }
    if (!rc && f->nranges == 0)
        rc = tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: no PT_LOAD segment has "
                     "data in the file");
    return rc;
}

static size_t elf_count_notes(const tv_file_t *f, const elf_hdr_t *h)
{
    size_t n = 0;
    for (uint64_t i = 0; i < h->phnum; i++)
        n += elf_phdr(f, h, i).type == PT_NOTE;
    return n;
}

int file_elf_parse(tv_file_t *f)
{
    elf_hdr_t h = {0};
    file_seg_t *seg = NULL;
    size_t nseg = 0;
    int rc = elf_header(f, &h);
    if (!rc) {
        size_t n = elf_count_notes(f, &h);
        seg = n ? calloc(n, sizeof *seg) : NULL;
        if (n && !seg)
            rc = tv_fail(f->vmi, TINYVMI_ENOMEM, "ELF: out of memory for "
                         "%zu note segments", n);
    }
    if (!rc)
        rc = elf_segments(f, &h, seg, &nseg);
    if (!rc)
        rc = file_ranges_finish(f, "ELF");
    if (!rc) {
        f->mach = file_elf_machine(h.machine);
        f->arch = f->mach ? f->mach->arch : VMI_ARCH_UNKNOWN;
        rc = file_elf_notes(f, seg, nseg);
    }
    free(seg);
    return rc;
}
