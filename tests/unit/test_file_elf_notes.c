/* File driver: ELF notes and vCPU registers. */
#include "test_file.h"
#include "tu.h"

#define EXPECT_FAIL(b, status, needle)                                    \
    do {                                                                  \
        char msg_[TV_ERRMSG_MAX];                                         \
        TU_EQ_INT(tf_try("notes.elf", (b), msg_), (status));              \
        TU_CONTAINS(msg_, (needle));                                      \
    } while (0)

static uint8_t ram[0x2000];

/* A core with one PT_LOAD and a PT_NOTE holding notes. */
static void core_with_notes(tf_buf_t *b, int cls, uint16_t machine,
                            const tf_buf_t *notes)
{
    const tf_seg_t seg[] = {
        {TF_PT_NOTE, 0, 0, notes->p, notes->len},
        {TF_PT_LOAD, 0x0, 0, ram, sizeof ram},
    };
    tf_elf(b, cls, machine, seg, 2);
}

/* Per vCPU i: RIP 0xffffffff81000000 + i, CR3 0x1000 * (i + 1), ... */
static void x86_64_notes(tf_buf_t *notes, unsigned ncpu, bool qemu)
{
    uint8_t pr[336], st[440];
    for (unsigned i = 0; i < ncpu; i++) {
        memset(pr, 0, sizeof pr);
        tf_prstatus64(pr, 16, 0xffffffff81000000ull + i); /* rip */
        tf_prstatus64(pr, 10, 0xaa00 + i);                /* rax */
        tf_prstatus64(pr, 0, 0x1500 + i);                 /* r15 */
        tf_prstatus64(pr, 21, 0x7f0000000000ull + i);     /* fs_base */
        tf_note(notes, "CORE", 1, pr, sizeof pr);
        tf_note(notes, "CORE", 2, pr, 64); /* NT_PRFPREG: ignored */
    }
    for (unsigned i = 0; qemu && i < ncpu; i++) {
        tf_qemu_state(st);
        tf_qemu_gpr(st, 16, 0xffffffff81000000ull + i); /* rip */
        tf_qemu_gpr(st, 0, 0xaa00 + i);                 /* rax */
        tf_qemu_cr(st, 0, 0x80050033);
        tf_qemu_cr(st, 3, 0x1000ull * (i + 1));
        tf_qemu_cr(st, 4, 0x3506f0);
        /* cs: selector 0x10, flags of a 64-bit ring-0 code segment */
        memcpy(st + 152, "\x10\0\0\0\xff\xff\xff\xff\x00\x9b\xa0\x00", 12);
        st[344 + 16] = 0x42; /* gdt base */
        st[344 + 4] = 0x7f;  /* gdt limit */
        st[432] = (uint8_t)(0x50 + i); /* kernel_gs_base */
        tf_note(notes, "QEMU", 0, st, sizeof st);
    }
    tf_note(notes, "VMCOREINFO", 0, "OSRELEASE=6.1\n", 14);
}

static int reg(const tv_driver_t *d, unsigned cpu, reg_t r, uint64_t *v)
{
    return d->vcpu->get_reg(d->ctx, cpu, r, v);
}

#define EXPECT_REG(d, cpu, r, want)                                       \
    do {                                                                  \
        uint64_t v_ = 0;                                                  \
        TU_EQ_INT(reg((d), (cpu), (r), &v_), 0);                          \
        TU_EQ_U64(v_, (want));                                            \
    } while (0)

TU_TEST(elf_two_vcpus)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 2, true);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "vcpus.elf", &b, &d), 0);
    TU_EQ_INT(d.arch, VMI_ARCH_X86_64);
    TU_ASSERT(d.vcpu && d.vcpu->set_reg == NULL);
    TU_EQ_U64(d.vcpu->count(d.ctx), 2);
    for (unsigned i = 0; i < 2; i++) {
        EXPECT_REG(&d, i, RIP, 0xffffffff81000000ull + i);
        EXPECT_REG(&d, i, CR3, 0x1000ull * (i + 1));
        EXPECT_REG(&d, i, CR0, 0x80050033);
        EXPECT_REG(&d, i, CR4, 0x3506f0);
        EXPECT_REG(&d, i, RAX, 0xaa00 + i);
        EXPECT_REG(&d, i, R15, 0); /* the QEMU note comes first */
        EXPECT_REG(&d, i, MSR_SHADOW_GS_BASE, 0x50 + i);
    }
    EXPECT_REG(&d, 0, CS_SEL, 0x10);
    EXPECT_REG(&d, 0, CS_LIMIT, 0xffffffff);
    EXPECT_REG(&d, 0, CS_ARBYTES, 0xa9b);
    EXPECT_REG(&d, 1, GDTR_BASE, 0x42);
    EXPECT_REG(&d, 1, GDTR_LIMIT, 0x7f);
    EXPECT_REG(&d, 1, FS_BASE, 0); /* the QEMU note comes first */
    uint64_t v;
    TU_EQ_INT(reg(&d, 0, MSR_EFER, &v), TINYVMI_ENOTSUP);
    TU_CONTAINS(vmi->last_error, "EFER is not saved");
    TU_EQ_INT(reg(&d, 0, DR7, &v), TINYVMI_ENOTSUP);
    TU_CONTAINS(vmi->last_error, "register 28 is not in vCPU 0");
    TU_EQ_INT(reg(&d, 2, RIP, &v), TINYVMI_ERANGE);
    TU_EQ_INT(tv_instance_attach(vmi, &d), 0);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
}

/* Without QEMU notes: general registers only. */
TU_TEST(elf_prstatus_only)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 3, false);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "prstatus.elf", &b, &d), 0);
    TU_EQ_U64(d.vcpu->count(d.ctx), 3);
    EXPECT_REG(&d, 2, RIP, 0xffffffff81000002ull);
    EXPECT_REG(&d, 2, FS_BASE, 0x7f0000000002ull);
    uint64_t v;
    TU_EQ_INT(reg(&d, 0, CR3, &v), TINYVMI_ENOTSUP);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
}

/* i386 layouts: NT_PRSTATUS of 144 bytes, in ELF32 and in ELF64. */
TU_TEST(elf_i386_vcpu)
{
    for (int cls = 1; cls <= 2; cls++) {
        tf_buf_t notes = {0}, b = {0};
        uint8_t pr[144] = {0}, st[440];
        pr[72 + 48] = 0x78; /* eip */
        pr[72 + 49] = 0x56;
        pr[72 + 60] = 0x34; /* esp */
        tf_note(&notes, "CORE", 1, pr, sizeof pr);
        tf_qemu_state(st);
        st[4] = 0xb0; /* size 432: no kernel_gs_base */
        tf_qemu_cr(st, 3, 0x1c0000);
        tf_note(&notes, "QEMU", 0, st, 432);
        core_with_notes(&b, cls, TF_EM_386, &notes);
        struct vmi_instance *vmi = tf_vmi();
        tv_driver_t d;
        TU_EQ_INT(tf_open(vmi, "i386.elf", &b, &d), 0);
        TU_EQ_INT(d.arch, VMI_ARCH_X86);
        TU_EQ_U64(d.vcpu->count(d.ctx), 1);
        EXPECT_REG(&d, 0, CR3, 0x1c0000);
        EXPECT_REG(&d, 0, ESP, 0); /* QEMU note's rsp wins */
        EXPECT_REG(&d, 0, EBX, 0);
        uint64_t v;
        TU_EQ_INT(reg(&d, 0, SHADOW_GS, &v), TINYVMI_ENOTSUP);
        d.close(d.ctx);
        tv_instance_free(vmi);
        tf_buf_free(&notes);
        tf_buf_free(&b);
    }
}

TU_TEST(elf_i386_prstatus_layout)
{
    tf_buf_t notes = {0}, b = {0};
    uint8_t pr[144] = {0};
    pr[72 + 48] = 0x78; /* eip */
    pr[72 + 49] = 0x56;
    pr[72 + 60] = 0x34; /* esp */
    pr[72 + 52] = 0x60; /* cs */
    tf_note(&notes, "CORE", 1, pr, sizeof pr);
    core_with_notes(&b, 1, TF_EM_386, &notes);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "i386pr.elf", &b, &d), 0);
    EXPECT_REG(&d, 0, EIP, 0x5678);
    EXPECT_REG(&d, 0, ESP, 0x34);
    EXPECT_REG(&d, 0, CS_SEL, 0x60);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
}

/* A machine without note layouts: memory works, no vCPUs. */
TU_TEST(elf_unknown_machine)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 1, true);
    core_with_notes(&b, 2, 21 /* EM_PPC64 */, &notes);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "ppc.elf", &b, &d), 0);
    TU_EQ_INT(d.arch, VMI_ARCH_UNKNOWN);
    TU_ASSERT(d.vcpu == NULL);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
    x86_64_notes(&notes, 1, true);
    core_with_notes(&b, 2, 183 /* EM_AARCH64 */, &notes);
    vmi = tf_vmi();
    TU_EQ_INT(tf_open(vmi, "arm64.elf", &b, &d), 0);
    TU_EQ_INT(d.arch, VMI_ARCH_ARM64);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
}

/* A QEMU note of another version is ignored, not misread. */
TU_TEST(elf_qemu_note_unknown_version)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 1, true);
    /* The QEMU note's version field: after the two CORE notes. */
    size_t at = 2 * 12 + 8 + 336 + 8 + 64 + 12 + 8;
    TU_EQ_U64(notes.p[at], 1);
    notes.p[at] = 2;
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    struct vmi_instance *vmi = tf_vmi();
    tv_driver_t d;
    TU_EQ_INT(tf_open(vmi, "qemuv2.elf", &b, &d), 0);
    EXPECT_REG(&d, 0, RIP, 0xffffffff81000000ull);
    uint64_t v;
    TU_EQ_INT(reg(&d, 0, CR3, &v), TINYVMI_ENOTSUP);
    d.close(d.ctx);
    tv_instance_free(vmi);
    tf_buf_free(&notes);
    tf_buf_free(&b);
}

static void one_note_hdr(tf_buf_t *notes, uint32_t namesz, uint32_t descsz)
{
    tf_put(notes, notes->len, namesz, 4);
    tf_put(notes, notes->len, descsz, 4);
    tf_put(notes, notes->len, 1, 4);
    tf_append(notes, "CORE\0\0\0\0", 8);
}

TU_TEST(elf_notes_hostile_sizes)
{
    static const uint32_t sizes[][2] = {
        {0xffffffff, 0}, {0xfffffffd, 0}, {5, 0xffffffff},
        {5, 0xfffffffd}, {5, 9}, {0x7ffffffc, 0x7ffffffc},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(sizes); i++) {
        tf_buf_t notes = {0}, b = {0};
        one_note_hdr(&notes, sizes[i][0], sizes[i][1]);
        core_with_notes(&b, 2, TF_EM_X86_64, &notes);
        tf_buf_free(&notes);
        EXPECT_FAIL(&b, TINYVMI_EFORMAT, "exceed the");
    }
}

TU_TEST(elf_notes_stray_bytes)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 1, false);
    tf_append(&notes, "junk!", 5);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    tf_buf_free(&notes);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "program header 0: 5 stray bytes");
}

/* The last descriptor may end without its padding. */
TU_TEST(elf_notes_unpadded_tail)
{
    tf_buf_t notes = {0}, b = {0};
    tf_note(&notes, "VMCOREINFO", 0, "X=1\nY", 5);
    notes.len -= 3;
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    tf_buf_free(&notes);
    char msg[TV_ERRMSG_MAX];
    TU_EQ_INT(tf_try("tail.elf", &b, msg), 0);
}

TU_TEST(elf_prstatus_too_short)
{
    tf_buf_t notes = {0}, b = {0};
    uint8_t pr[100] = {0};
    tf_note(&notes, "CORE", 1, pr, sizeof pr);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    tf_buf_free(&notes);
    EXPECT_FAIL(&b, TINYVMI_EFORMAT, "descriptor of 0x64 bytes, x86_64 "
                "needs 0x150");
}

TU_TEST(elf_note_segment_past_end)
{
    tf_buf_t notes = {0}, b = {0};
    x86_64_notes(&notes, 1, true);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    tf_phdr_set(&b, 2, 0, TF_P_FILESZ, 0x100000);
    tf_buf_free(&notes);
    EXPECT_FAIL(&b, TINYVMI_ETRUNC, "note segment");
}

TU_TEST(elf_too_many_vcpus)
{
    tf_buf_t notes = {0}, b = {0};
    uint8_t pr[336] = {0};
    for (unsigned i = 0; i < 8193; i++)
        tf_note(&notes, "CORE", 1, pr, sizeof pr);
    core_with_notes(&b, 2, TF_EM_X86_64, &notes);
    tf_buf_free(&notes);
    EXPECT_FAIL(&b, TINYVMI_ERANGE, "more than 8192 vCPUs");
}
