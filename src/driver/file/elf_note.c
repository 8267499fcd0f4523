/*
 * ELF notes: a strict walk over every PT_NOTE segment, and vCPU registers
 * from the notes a machine's table names (elf_x86.c for x86).  The i-th
 * note of a kind belongs to the i-th vCPU.  Registers are read lazily from
 * the image, so a vCPU costs a few pointers whatever its notes hold.
 */
#include <stdlib.h>
#include <string.h>

#include "driver/file/file_int.h"

#define NOTE_HDR_SIZE 12u

/* Machines whose register notes we do not decode yet still get an arch. */
static const file_elf_machine_t elf_aarch64 = {183, VMI_ARCH_ARM64,
                                               "AArch64", NULL, 0};
static const file_elf_machine_t elf_arm = {40, VMI_ARCH_ARM32, "ARM", NULL,
                                           0};

static const file_elf_machine_t *const machines[] = {
    &file_elf_x86_64,
    &file_elf_i386,
    &elf_aarch64,
    &elf_arm,
};

const file_elf_machine_t *file_elf_machine(uint16_t machine)
{
    for (size_t i = 0; i < TV_ARRAY_LEN(machines); i++)
        if (machines[i]->machine == machine)
            return machines[i];
    return NULL;
}

/* ---- The walk ----------------------------------------------------------- */

typedef struct elf_note {
    uint64_t at; /* offset of the note header in its segment */
    const uint8_t *name, *desc;
    uint32_t namesz, descsz, type;
} elf_note_t;

static uint64_t align4(uint32_t n)
{
    return ((uint64_t)n + 3) & ~(uint64_t)3;
}

/* Reads the note at *pos of seg: 1 with a note, 0 at the end, or a
 * negative status.  The descriptor of the last note may lack its padding. */
static int note_next(tv_file_t *f, const file_seg_t *seg, uint64_t *pos,
                     elf_note_t *n)
{
    uint64_t left = seg->size - *pos;
    const uint8_t *h = f->data + seg->offset + *pos;
    if (left == 0)
        return 0;
    if (left < NOTE_HDR_SIZE)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: program header %u: "
                       "%llu stray bytes at note offset 0x%llx", seg->index,
                       (unsigned long long)left, (unsigned long long)*pos);
    *n = (elf_note_t){*pos, h + NOTE_HDR_SIZE, NULL, tv_le32(h),
                      tv_le32(h + 4), tv_le32(h + 8)};
    uint64_t name_al = align4(n->namesz);
    left -= NOTE_HDR_SIZE;
    if (name_al > left || n->descsz > left - name_al)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: program header %u: "
                       "note at offset 0x%llx: namesz 0x%x and descsz 0x%x "
                       "exceed the 0x%llx bytes left in the segment",
                       seg->index, (unsigned long long)*pos, n->namesz,
                       n->descsz, (unsigned long long)left);
    n->desc = n->name + name_al;
    uint64_t desc_al = align4(n->descsz);
    *pos += NOTE_HDR_SIZE + name_al +
            (desc_al < left - name_al ? desc_al : left - name_al);
    return 1;
}

/* Owner names are NUL-terminated in the note; accept a missing NUL too. */
static bool note_owner_is(const elf_note_t *n, const char *owner)
{
    size_t len = strlen(owner);
    bool size_ok = n->namesz == len ||
                   (n->namesz == len + 1 && n->name[len] == '\0');
    return size_ok && memcmp(n->name, owner, len) == 0;
}

/* The index of n's kind in the machine's table, or -1. */
static int note_kind(const file_elf_machine_t *m, const elf_note_t *n)
{
    for (size_t k = 0; m && k < m->nkinds; k++)
        if (m->kind[k]->type == n->type && note_owner_is(n, m->kind[k]->owner))
            return (int)k;
    return -1;
}

/* Per-walk state: pass 1 counts (vcpus NULL), pass 2 assigns. */
typedef struct note_walk {
    unsigned count[FILE_MAX_KINDS];
    file_vcpu_t *vcpus;
} note_walk_t;

static int note_take(tv_file_t *f, const file_seg_t *seg, note_walk_t *w,
                     const elf_note_t *n, unsigned k)
{
    const file_note_kind_t *kd = f->mach->kind[k];
    if (n->descsz < kd->min_size)
        return tv_fail(f->vmi, TINYVMI_EFORMAT, "ELF: program header %u: "
                       "%s note type %u at offset 0x%llx: descriptor of "
                       "0x%x bytes, %s needs 0x%x", seg->index, kd->owner,
                       kd->type, (unsigned long long)n->at, n->descsz,
                       f->mach->name, kd->min_size);
    if (w->count[k] == FILE_MAX_VCPUS)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "ELF: more than %u vCPUs "
                       "(%s notes)", FILE_MAX_VCPUS, kd->owner);
    unsigned cpu = w->count[k]++;
    bool known = kd->version_off == FILE_NO_VERSION ||
                 tv_le32(n->desc + kd->version_off) == kd->version;
    if (!known && !w->vcpus)
        tv_log(f->vmi, 1, "ELF: vCPU %u: %s note version %u is unknown "
               "(want %u); its registers are ignored", cpu, kd->owner,
               tv_le32(n->desc + kd->version_off), kd->version);
    if (w->vcpus && known) {
        w->vcpus[cpu].desc[k] = n->desc;
        w->vcpus[cpu].len[k] = n->descsz;
    }
    return TINYVMI_OK;
}

static int note_walk(tv_file_t *f, const file_seg_t *seg, size_t nseg,
                     note_walk_t *w)
{
    int rc = TINYVMI_OK;
    for (size_t s = 0; !rc && s < nseg; s++) {
        uint64_t pos = 0;
        elf_note_t n = {0};
        while ((rc = note_next(f, &seg[s], &pos, &n)) > 0) {
            int k = note_kind(f->mach, &n);
            if (k >= 0 && (rc = note_take(f, &seg[s], w, &n,
                                          (unsigned)k)) != 0)
                break;
        }
    }
    return rc;
}

int file_elf_notes(tv_file_t *f, const file_seg_t *seg, size_t nseg)
{
    note_walk_t w = {{0}, NULL};
    int rc = note_walk(f, seg, nseg, &w);
    unsigned n = 0;
    for (size_t k = 0; k < FILE_MAX_KINDS; k++)
        n = w.count[k] > n ? w.count[k] : n;
    if (rc || n == 0)
        return rc;
    w = (note_walk_t){{0}, calloc(n, sizeof(file_vcpu_t))};
    if (!w.vcpus)
        return tv_fail(f->vmi, TINYVMI_ENOMEM, "ELF: out of memory for %u "
                       "vCPUs", n);
    f->vcpus = w.vcpus; /* freed with f */
    f->nvcpus = n;
    return note_walk(f, seg, nseg, &w);
}

/* ---- Registers ---------------------------------------------------------- */

static uint64_t field_value(const file_reg_field_t *fl, const uint8_t *desc)
{
    const uint8_t *p = desc + fl->off;
    uint64_t v = fl->size == 8 ? tv_le64(p)
                 : fl->size == 4 ? tv_le32(p)
                                 : tv_le16(p);
    if (fl->conv == FILE_CONV_ARBYTES) /* type/S/DPL/P, then AVL/L/DB/G */
        v = ((v >> 8) & 0xff) | ((v >> 12) & 0xf00);
    else if (fl->conv == FILE_CONV_XEN_CR3) /* a frame number << 12 */
        v = v >> 12 << 12;
    return v;
}

static unsigned elf_vcpu_count(void *ctx)
{
    const tv_file_t *f = ctx;
    return f->nvcpus;
}

static int elf_get_reg(void *ctx, unsigned vcpu, reg_t reg, uint64_t *value)
{
    tv_file_t *f = ctx;
    if (vcpu >= f->nvcpus)
        return tv_fail(f->vmi, TINYVMI_ERANGE, "ELF: no vCPU %u (the dump "
                       "has %u)", vcpu, f->nvcpus);
    const file_vcpu_t *c = &f->vcpus[vcpu];
    for (size_t k = 0; k < f->mach->nkinds; k++) {
        const file_note_kind_t *kd = f->mach->kind[k];
        for (size_t i = 0; c->desc[k] && i < kd->nfields; i++) {
            const file_reg_field_t *fl = &kd->field[i];
            if (fl->reg == reg && (uint32_t)fl->off + fl->size <= c->len[k]) {
                *value = field_value(fl, c->desc[k]);
                return TINYVMI_OK;
            }
        }
    }
    if (reg == MSR_EFER)
        return tv_fail(f->vmi, TINYVMI_ENOTSUP, "ELF: EFER is not saved in "
                       "ELF core dumps (vCPU %u)", vcpu);
    return tv_fail(f->vmi, TINYVMI_ENOTSUP, "ELF: register %llu is not in "
                   "vCPU %u's notes", (unsigned long long)reg, vcpu);
}

const tv_vcpu_ops_t file_elf_vcpu_ops = {elf_vcpu_count, elf_get_reg, NULL,
                                         NULL};
