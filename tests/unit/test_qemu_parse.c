/* Parsers of what QEMU sends the live driver (src/driver/qemu/parse.c):
 * texts as QEMU 7.2 prints them (HMP ends lines with CRLF), and broken
 * ones.  Expected values are worked out by hand from the texts. */
#include <libvmi/events.h>

#include "driver/qemu/parse.h"
#include "tu.h"

/* `info mtree -f` of a pc guest with 256 MiB in memory-backend ram0 after
 * SeaBIOS shadowed its ROMs (the read-only pieces are RAM file too). */
static const char mtree_pc[] =
    "FlatView #0\r\n"
    " AS \"cpu-smm-0\", root: memory\r\n"
    " Root memory region: memory\r\n"
    "  0000000000000000-00000000000c2fff (prio 0, ram): ram0\r\n"
    "  0000000010000000-0000000010ffffff (prio 0, ram): ram0 @0000000000000000\r\n"
    "\r\n"
    "FlatView #4\r\n"
    " AS \"memory\", root: system\r\n"
    " AS \"cpu-memory-0\", root: system\r\n"
    " Root memory region: system\r\n"
    "  0000000000000000-00000000000c2fff (prio 0, ram): ram0\r\n"
    "  00000000000c3000-00000000000e7fff (prio 0, rom): ram0 @00000000000c3000\r\n"
    "  00000000000e8000-00000000000effff (prio 0, ram): ram0 @00000000000e8000\r\n"
    "  00000000000f0000-00000000000fffff (prio 0, rom): ram0 @00000000000f0000\r\n"
    "  0000000000100000-000000000fffffff (prio 0, ram): ram0 @0000000000100000\r\n"
    "  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic\r\n"
    "  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\r\n"
    "\r\n";

static int mtree(const char *text, const tv_qm_backend_id_t *be, size_t nbe,
                 tv_range_t *r, size_t cap, size_t *n, char *why)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", text);
    why[0] = '\0';
    return tv_qemu_mtree(buf, be, nbe, r, cap, n, why, 200);
}

TU_TEST(qemu_mtree_pc_one_range)
{
    tv_qm_backend_id_t be[] = {{"ram0", 256u << 20}};
    tv_range_t r[8];
    size_t n;
    char why[200];
    TU_EQ_INT(mtree(mtree_pc, be, 1, r, 8, &n, why), 0);
    /* Five pieces continue each other in address and file: one range; the
     * smm view before "memory" is not read. */
    TU_EQ_U64(n, 1);
    TU_EQ_U64(r[0].start, 0);
    TU_EQ_U64(r[0].size, 256u << 20);
    TU_EQ_U64(r[0].offset, 0);
}

TU_TEST(qemu_mtree_above_4g_and_two_backends)
{
    static const char text[] =
        " AS \"memory\", root: system\n"
        "  0000000000000000-000000007fffffff (prio 0, ram): mem\n"
        "  0000000080000000-00000000bfffffff (prio 0, i/o): pci\n"
        "  0000000100000000-000000017fffffff (prio 0, ram): mem @0000000080000000\n"
        "  0000000180000000-0000000180ffffff (prio 0, ram): dimm1\n";
    tv_qm_backend_id_t be[] = {{"mem", 4ULL << 30}, {"dimm1", 16u << 20}};
    tv_range_t r[8];
    size_t n;
    char why[200];
    TU_EQ_INT(mtree(text, be, 2, r, 8, &n, why), 0);
    TU_EQ_U64(n, 3);
    TU_EQ_U64(r[0].start, 0);
    TU_EQ_U64(r[0].size, 2ULL << 30);
    TU_EQ_U64(r[1].start, 4ULL << 30);
    TU_EQ_U64(r[1].offset, 2ULL << 30);
    TU_EQ_U64(r[2].start, 0x180000000ULL);
    TU_EQ_U64(r[2].offset, 1ULL << TV_QM_BACKEND_SHIFT);
}

TU_TEST(qemu_mtree_refuses_bad_maps)
{
    tv_qm_backend_id_t be[] = {{"ram0", 1u << 20}};
    tv_range_t r[2];
    size_t n;
    char why[200];
    /* beyond the file */
    TU_EQ_INT(mtree(" AS \"memory\", root: system\n"
                    "  0-1fffff (prio 0, ram): ram0\n", be, 1, r, 2, &n, why),
              TINYVMI_EFORMAT);
    TU_ASSERT(strstr(why, "beyond") != NULL);
    /* no RAM of ours at all */
    TU_EQ_INT(mtree(" AS \"memory\", root: system\n"
                    "  0-fff (prio 0, ram): other\n", be, 1, r, 2, &n, why),
              TINYVMI_EFORMAT);
    TU_ASSERT(strstr(why, "cannot find guest RAM") != NULL);
    /* out of order */
    TU_EQ_INT(mtree(" AS \"memory\", root: system\n"
                    "  1000-1fff (prio 0, ram): ram0 @1000\n"
                    "  0-fff (prio 0, ram): ram0\n", be, 1, r, 2, &n, why),
              TINYVMI_EFORMAT);
    /* more pieces than room */
    TU_EQ_INT(mtree(" AS \"memory\", root: system\n"
                    "  0-fff (prio 0, ram): ram0\n"
                    "  2000-2fff (prio 0, ram): ram0 @2000\n"
                    "  4000-4fff (prio 0, ram): ram0 @4000\n",
                    be, 1, r, 2, &n, why),
              TINYVMI_ERANGE);
}

typedef struct regs_seen {
    char names[8][16];
    long nums[8], bits[8];
    int n;
    char inc[32];
} regs_seen_t;

static int seen_reg(void *arg, const char *name, long num, long bits)
{
    regs_seen_t *s = arg;
    if (s->n < 8) {
        snprintf(s->names[s->n], 16, "%s", name);
        s->nums[s->n] = num;
        s->bits[s->n++] = bits;
    }
    return 0;
}

static int seen_inc(void *arg, const char *href)
{
    snprintf(((regs_seen_t *)arg)->inc, 32, "%s", href);
    return 0;
}

TU_TEST(qemu_xml_numbers_registers_in_order_skipping_comments)
{
    /* As QEMU's i386-64bit.xml has it: segment bases in a comment. */
    static const char xml[] =
        "<?xml version=\"1.0\"?><feature name=\"org.gnu.gdb.i386.core\">"
        "<reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>"
        "<reg name=\"rbx\" bitsize=\"64\"/>"
        "<!--reg name=\"cs_base\" bitsize=\"64\"/>\n"
        "<reg name=\"ss_base\" bitsize=\"64\"/-->"
        "<reg name='fs_base' bitsize='64'/>"
        "<reg bitsize=\"32\" name=\"eflags\"/>"
        "<reg name=\"cr0\" bitsize=\"64\" regnum=\"27\"/>"
        "<reg name=\"cr2\" bitsize=\"64\"/>"
        "<xi:include href=\"more.xml\"/></feature>";
    regs_seen_t s = {0};
    long num = 0;
    TU_EQ_INT(tv_gdb_xml(xml, &num, seen_reg, seen_inc, &s), 0);
    TU_EQ_INT(s.n, 6);
    TU_EQ_STR(s.names[2], "fs_base");
    TU_EQ_INT(s.nums[2], 2); /* the commented-out ones take no number */
    TU_EQ_STR(s.names[3], "eflags");
    TU_EQ_INT(s.bits[3], 32);
    TU_EQ_INT(s.nums[4], 27);
    TU_EQ_INT(s.nums[5], 28);
    TU_EQ_STR(s.inc, "more.xml");
    TU_EQ_INT(num, 29);
}

TU_TEST(qemu_xml_broken_input_ends)
{
    regs_seen_t s = {0};
    long num = 0;
    TU_EQ_INT(tv_gdb_xml("<reg name=\"a\" bitsize=\"8\"", &num, seen_reg,
                         seen_inc, &s), 0);
    TU_EQ_INT(s.n, 0); /* no closing '>' */
    TU_EQ_INT(tv_gdb_xml("<!-- never closed <reg name=\"a\" bitsize=\"8\"/>",
                         &num, seen_reg, seen_inc, &s), 0);
    TU_EQ_INT(s.n, 0);
    /* a quote that does not close inside its tag */
    TU_EQ_INT(tv_gdb_xml("<reg bitsize=\"8\" name=\"a/><x y=\"1\"/>", &num,
                         seen_reg, seen_inc, &s), 0);
    TU_EQ_INT(s.n, 0);
}

TU_TEST(qemu_stop_replies)
{
    tv_gdb_stop_t g = {0};
    TU_EQ_INT(tv_gdb_stop("T05thread:02;", &g), 0);
    TU_EQ_INT(g.kind, 'T');
    TU_EQ_INT(g.signal, 5);
    TU_ASSERT(g.have_thread && g.thread == 2 && !g.watch);
    g = (tv_gdb_stop_t){0};
    TU_EQ_INT(tv_gdb_stop("T05thread:p01.0a;watch:ffffffff82a0b000;", &g), 0);
    TU_EQ_U64(g.thread, 10);
    TU_ASSERT(g.watch);
    TU_EQ_U64(g.watch_addr, 0xffffffff82a0b000ULL);
    TU_EQ_INT(g.watch_access, VMI_MEMACCESS_W);
    g = (tv_gdb_stop_t){0};
    TU_EQ_INT(tv_gdb_stop("T05thread:01;awatch:1000;", &g), 0);
    TU_EQ_INT(g.watch_access, VMI_MEMACCESS_RW);
    TU_EQ_INT(tv_gdb_stop("T05thread:01;rwatch:1000;", &g), 0);
    TU_EQ_INT(g.watch_access, VMI_MEMACCESS_R);
    TU_EQ_INT(tv_gdb_stop("W00", &g), 0);
    TU_EQ_INT(g.kind, 'W');
    TU_EQ_INT(tv_gdb_stop("OK", &g), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_gdb_stop("T", &g), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_gdb_stop("T05thread", &g), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_gdb_stop("Tzz", &g), TINYVMI_EFORMAT);
    TU_EQ_INT(tv_gdb_stop("T05thread:p01;", &g), TINYVMI_EFORMAT);
}

TU_TEST(qemu_info_registers)
{
    /* QEMU 7.2's `info registers` of a 6.1 guest's vCPU (CRLF lines). */
    static const char text[] =
        "\r\nCPU#0\r\n"
        "RAX=000000000001ad40 RBX=0000000000000000 RCX=0000000000000000 RDX=4000000000000000\r\n"
        "R8 =0000000000000004 R9 =0000000040000431 R10=00000000fffffffb R11=0000000000000000\r\n"
        "RIP=ffffffff880592eb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
        "ES =0000 0000000000000000 00000000 00000000\r\n"
        "CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\r\n"
        "SS =0018 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]\r\n"
        "GS =0000 ffff8e568f800000 00000000 00000000\r\n"
        "LDT=0000 0000000000000000 00000000 00008200 DPL=0 LDT\r\n"
        "TR =0040 fffffe0000003000 00004087 00008900 DPL=0 TSS64-avl\r\n"
        "GDT=     fffffe0000001000 0000007f\r\n"
        "IDT=     fffffe0000000000 00000fff\r\n"
        "CR0=80050033 CR2=000000002f88eb50 CR3=0000000001062000 CR4=00750ef0\r\n"
        "DR0=0000000000000000 DR1=0000000000000001 DR2=0000000000000000 DR3=0000000000000000 \r\n"
        "DR6=00000000ffff0ff0 DR7=0000000000000400\r\n"
        "EFER=0000000000000d01\r\n";
    uint64_t v[TINYVMI_NREGS];
    uint8_t ok[TINYVMI_NREGS] = {0};
    TU_ASSERT(tv_qemu_info_regs(text, v, ok) > 20);
    TU_ASSERT(ok[CS_SEL] && ok[CS_ARBYTES] && ok[TR_BASE] && ok[IDTR_BASE]);
    TU_EQ_U64(v[CS_SEL], 0x10);
    TU_EQ_U64(v[CS_LIMIT], 0xffffffff);
    /* 00af9b00: type b, S, DPL 0, P (0x9b); L and G (0xa) */
    TU_EQ_U64(v[CS_ARBYTES], 0xa9b);
    TU_EQ_U64(v[GS_BASE], 0xffff8e568f800000ULL);
    TU_EQ_U64(v[TR_SEL], 0x40);
    TU_EQ_U64(v[TR_BASE], 0xfffffe0000003000ULL);
    TU_EQ_U64(v[TR_LIMIT], 0x4087);
    TU_EQ_U64(v[GDTR_BASE], 0xfffffe0000001000ULL);
    TU_EQ_U64(v[GDTR_LIMIT], 0x7f);
    TU_EQ_U64(v[IDTR_BASE], 0xfffffe0000000000ULL);
    TU_EQ_U64(v[IDTR_LIMIT], 0xfff);
    TU_EQ_U64(v[DR1], 1);
    TU_EQ_U64(v[DR6], 0xffff0ff0);
    TU_EQ_U64(v[DR7], 0x400);
    TU_ASSERT(!ok[RAX] && !ok[CR0]); /* those come from the gdbstub */
}
