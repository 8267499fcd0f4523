/*
 * x86 register notes in ELF cores, as data.
 *
 * NT_PRSTATUS ("CORE", type 1) holds the kernel's struct elf_prstatus:
 *   x86_64: pr_reg (struct user_regs_struct, 27 x u64) at offset 112 of a
 *           336-byte descriptor (elf_siginfo 12, cursig 2 + pad 2,
 *           sigpend 8, sighold 8, pid/ppid/pgrp/sid 16, 4 timevals 64);
 *   i386:   pr_reg (17 x u32) at offset 72 of a 144-byte descriptor.
 * QEMU's "QEMU" note (type 0) holds QEMUCPUState for both: u32 version (1),
 * u32 size, 18 x u64 (rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags),
 * 10 segments {u32 selector, limit, flags, pad; u64 base} (cs ds es fs gs
 * ss ldt tr gdt idt), u64 cr[5], and in newer versions u64 kernel_gs_base.
 * The QEMU note comes first: it has everything NT_PRSTATUS has but
 * orig_rax, plus control registers, segment limits and descriptor tables.
 * QEMU writes the i386 NT_PRSTATUS layout (EM_386) also inside ELF64
 * containers, so the layout follows e_machine, not the ELF class.
 *
 * Xen's dump-core files (xencore.c) are not notes but the same kind of
 * data: .xen_prstatus holds one vcpu_guest_context_x86_64_t per vCPU.
 */
#include "driver/file/file_int.h"

#define F(r, o, s) {(r), (o), (s), FILE_CONV_RAW}

/* ---- NT_PRSTATUS, x86_64 ------------------------------------------------ */

#define PR64(r, i) F(r, 112 + 8 * (i), 8)

static const file_reg_field_t prstatus64[] = {
    PR64(R15, 0),     PR64(R14, 1),     PR64(R13, 2),     PR64(R12, 3),
    PR64(RBP, 4),     PR64(RBX, 5),     PR64(R11, 6),     PR64(R10, 7),
    PR64(R9, 8),      PR64(R8, 9),      PR64(RAX, 10),    PR64(RCX, 11),
    PR64(RDX, 12),    PR64(RSI, 13),    PR64(RDI, 14),    /* orig_rax 15 */
    PR64(RIP, 16),    PR64(CS_SEL, 17), PR64(RFLAGS, 18), PR64(RSP, 19),
    PR64(SS_SEL, 20), PR64(FS_BASE, 21), PR64(GS_BASE, 22),
    PR64(DS_SEL, 23), PR64(ES_SEL, 24), PR64(FS_SEL, 25), PR64(GS_SEL, 26),
};

static const file_note_kind_t prstatus_x86_64 = {
    "CORE", 1, 336, FILE_NO_VERSION, 0, prstatus64,
    TV_ARRAY_LEN(prstatus64)};

/* ---- NT_PRSTATUS, i386 -------------------------------------------------- */

#define PR32(r, i) F(r, 72 + 4 * (i), 4)

static const file_reg_field_t prstatus32[] = {
    PR32(EBX, 0),    PR32(ECX, 1),     PR32(EDX, 2),    PR32(ESI, 3),
    PR32(EDI, 4),    PR32(EBP, 5),     PR32(EAX, 6),    PR32(DS_SEL, 7),
    PR32(ES_SEL, 8), PR32(FS_SEL, 9),  PR32(GS_SEL, 10), /* orig_eax 11 */
    PR32(EIP, 12),   PR32(CS_SEL, 13), PR32(EFLAGS, 14), PR32(ESP, 15),
    PR32(SS_SEL, 16),
};

static const file_note_kind_t prstatus_i386 = {
    "CORE", 1, 144, FILE_NO_VERSION, 0, prstatus32,
    TV_ARRAY_LEN(prstatus32)};

/* ---- QEMUCPUState ------------------------------------------------------- */

#define Q_GPR(r, i) F(r, 8 + 8 * (i), 8)
#define Q_SEG_AT(j) (152 + 24 * (j))
#define Q_SEG(j, sel, lim, ar, base)                                        \
    F(sel, Q_SEG_AT(j), 4), F(lim, Q_SEG_AT(j) + 4, 4),                     \
        {(ar), Q_SEG_AT(j) + 8, 4, FILE_CONV_ARBYTES},                      \
        F(base, Q_SEG_AT(j) + 16, 8)
#define Q_CR(r, i) F(r, 392 + 8 * (i), 8)

static const file_reg_field_t qemu_state[] = {
    Q_GPR(RAX, 0),   Q_GPR(RBX, 1),   Q_GPR(RCX, 2),   Q_GPR(RDX, 3),
    Q_GPR(RSI, 4),   Q_GPR(RDI, 5),   Q_GPR(RSP, 6),   Q_GPR(RBP, 7),
    Q_GPR(R8, 8),    Q_GPR(R9, 9),    Q_GPR(R10, 10),  Q_GPR(R11, 11),
    Q_GPR(R12, 12),  Q_GPR(R13, 13),  Q_GPR(R14, 14),  Q_GPR(R15, 15),
    Q_GPR(RIP, 16),  Q_GPR(RFLAGS, 17),
    Q_SEG(0, CS_SEL, CS_LIMIT, CS_ARBYTES, CS_BASE),
    Q_SEG(1, DS_SEL, DS_LIMIT, DS_ARBYTES, DS_BASE),
    Q_SEG(2, ES_SEL, ES_LIMIT, ES_ARBYTES, ES_BASE),
    Q_SEG(3, FS_SEL, FS_LIMIT, FS_ARBYTES, FS_BASE),
    Q_SEG(4, GS_SEL, GS_LIMIT, GS_ARBYTES, GS_BASE),
    Q_SEG(5, SS_SEL, SS_LIMIT, SS_ARBYTES, SS_BASE),
    Q_SEG(6, LDTR_SEL, LDTR_LIMIT, LDTR_ARBYTES, LDTR_BASE),
    Q_SEG(7, TR_SEL, TR_LIMIT, TR_ARBYTES, TR_BASE),
    F(GDTR_LIMIT, Q_SEG_AT(8) + 4, 4), F(GDTR_BASE, Q_SEG_AT(8) + 16, 8),
    F(IDTR_LIMIT, Q_SEG_AT(9) + 4, 4), F(IDTR_BASE, Q_SEG_AT(9) + 16, 8),
    Q_CR(CR0, 0),    Q_CR(CR2, 2),    Q_CR(CR3, 3),    Q_CR(CR4, 4),
    /* Optional tail (size 440): present when the descriptor holds it. */
    F(MSR_SHADOW_GS_BASE, 432, 8), F(SHADOW_GS, 432, 8),
};

static const file_note_kind_t qemu_cpu_state = {
    "QEMU", 0, 432, 0, 1, qemu_state, TV_ARRAY_LEN(qemu_state)};

/* ---- Xen's vcpu_guest_context_x86_64_t ------------------------------------
 *
 * 5168 bytes (Xen's public/arch-x86/xen.h, xen/foreign/x86_64.h):
 *   0    fpu_ctxt[512]
 *   512  u64 flags
 *   520  cpu_user_regs (200 bytes): r15 r14 r13 r12 rbp rbx r11 r10 r9 r8
 *        rax rcx rdx rsi rdi (u64 each), u32 error_code, u32 entry_vector,
 *        rip @648, u16 cs @656 (+ pad, saved_upcall_mask), rflags @664,
 *        rsp @672, then u16 ss es ds fs gs @680 + 8 * i
 *   720  trap_ctxt[256] (16 bytes each)
 *   4816 ldt_base, ldt_ents, gdt_frames[16], gdt_ents, kernel_ss, kernel_sp
 *   4984 ctrlreg[8]
 *   5048 debugreg[8]
 *   5112 event/failsafe/syscall callbacks, vm_assist
 *   5144 fs_base, gs_base_kernel, gs_base_user
 * A PV vCPU's ctrlreg[3] is Xen's folded CR3 (xen_pfn_to_cr3 of a machine
 * frame: on x86_64 the frame shifted by 12, any low bits are not part of
 * the address); an HVM vCPU's is the guest's own CR3. */

#define XC_GPR(r, i) F(r, 520 + 8 * (i), 8)
#define XC_SEG(r, i) F(r, 680 + 8 * (i), 2)
#define XC_CR(r, i) F(r, XEN_CTX_CTRLREG + 8 * (i), 8)
#define XC_DR(r, i) F(r, 5048 + 8 * (i), 8)
#define XC_FIELDS(cr3_conv)                                                 \
    XC_GPR(R15, 0), XC_GPR(R14, 1), XC_GPR(R13, 2), XC_GPR(R12, 3),         \
        XC_GPR(RBP, 4), XC_GPR(RBX, 5), XC_GPR(R11, 6), XC_GPR(R10, 7),     \
        XC_GPR(R9, 8), XC_GPR(R8, 9), XC_GPR(RAX, 10), XC_GPR(RCX, 11),     \
        XC_GPR(RDX, 12), XC_GPR(RSI, 13), XC_GPR(RDI, 14),                  \
        F(RIP, 648, 8), F(CS_SEL, 656, 2), F(RFLAGS, 664, 8),              \
        F(RSP, 672, 8), XC_SEG(SS_SEL, 0), XC_SEG(ES_SEL, 1),              \
        XC_SEG(DS_SEL, 2), XC_SEG(FS_SEL, 3), XC_SEG(GS_SEL, 4),           \
        XC_CR(CR0, 0), XC_CR(CR2, 2),                                       \
        {CR3, XEN_CTX_CTRLREG + 24, 8, (cr3_conv)}, XC_CR(CR4, 4),          \
        XC_DR(DR0, 0), XC_DR(DR1, 1), XC_DR(DR2, 2), XC_DR(DR3, 3),         \
        XC_DR(DR6, 6), XC_DR(DR7, 7), F(FS_BASE, 5144, 8),                  \
        F(GS_BASE, 5152, 8), F(SHADOW_GS, 5160, 8),                         \
        F(MSR_SHADOW_GS_BASE, 5160, 8)

static const file_reg_field_t xen_pv_ctx[] = {XC_FIELDS(FILE_CONV_XEN_CR3)};
static const file_reg_field_t xen_hvm_ctx[] = {XC_FIELDS(FILE_CONV_RAW)};

/* Not notes: .xen_prstatus entries, placed by xencore.c. */
static const file_note_kind_t xen_pv_kind = {
    "Xen", 0, XEN_CTX_SIZE, FILE_NO_VERSION, 0, xen_pv_ctx,
    TV_ARRAY_LEN(xen_pv_ctx)};
static const file_note_kind_t xen_hvm_kind = {
    "Xen", 0, XEN_CTX_SIZE, FILE_NO_VERSION, 0, xen_hvm_ctx,
    TV_ARRAY_LEN(xen_hvm_ctx)};

/* ---- Machines ----------------------------------------------------------- */

static const file_note_kind_t *const kinds_x86_64[] = {&qemu_cpu_state,
                                                       &prstatus_x86_64};
static const file_note_kind_t *const kinds_i386[] = {&qemu_cpu_state,
                                                     &prstatus_i386};

const file_elf_machine_t file_elf_x86_64 = {
    62, VMI_ARCH_X86_64, "x86_64", kinds_x86_64, TV_ARRAY_LEN(kinds_x86_64)};
const file_elf_machine_t file_elf_i386 = {
    3, VMI_ARCH_X86, "i386", kinds_i386, TV_ARRAY_LEN(kinds_i386)};

static const file_note_kind_t *const kinds_xen_pv[] = {&xen_pv_kind};
static const file_note_kind_t *const kinds_xen_hvm[] = {&xen_hvm_kind};

const file_elf_machine_t file_xen_x86_64_pv = {
    62, VMI_ARCH_X86_64, "Xen x86_64 PV", kinds_xen_pv, 1};
const file_elf_machine_t file_xen_x86_64_hvm = {
    62, VMI_ARCH_X86_64, "Xen x86_64 HVM", kinds_xen_hvm, 1};
