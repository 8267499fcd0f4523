/*
 * The kernel debugger data block (KDDEBUGGER_DATA64, public in the
 * Debugging Tools' wdbgexts.h): parsing, decoding the copy 64-bit Windows
 * 8 and later keep encoded, and finding it by its "KDBG" tag.
 *
 * A "KDBG" string is easy to come by in memory (this very file's strings,
 * pool tags, debugger buffers), so a tag alone proves nothing: a match
 * must also have a plausible Size, a page-aligned kernel KernBase, and
 * list heads that lie in the kernel image above KernBase.
 */
#include "os/windows/win.h"

/* Field offsets in KDDEBUGGER_DATA64. */
enum {
    KD_LIST_FLINK = 0x00,
    KD_LIST_BLINK = 0x08,
    KD_OWNER_TAG = 0x10,
    KD_SIZE = 0x14,
    KD_KERN_BASE = 0x18,
    KD_BREAKPOINT_WITH_STATUS = 0x20,
    KD_SAVED_CONTEXT = 0x28,
    KD_TH_CALLBACK_STACK = 0x30,
    KD_NEXT_CALLBACK = 0x32,
    KD_FRAME_POINTER = 0x34,
    KD_PAE_ENABLED = 0x36,
    KD_KI_CALL_USER_MODE = 0x38,
    KD_KE_USER_CALLBACK_DISPATCHER = 0x40,
    KD_PS_LOADED_MODULE_LIST = 0x48,
    KD_PS_ACTIVE_PROCESS_HEAD = 0x50,
    KD_PSP_CID_TABLE = 0x58,
    KD_OBP_ROOT_DIRECTORY_OBJECT = 0x98,
    KD_OBP_TYPE_OBJECT_TYPE = 0xa0,
    KD_MM_PFN_DATABASE = 0xc0,
    KD_NT_BUILD_LAB = 0x208,
    KD_KI_PROCESSOR_BLOCK = 0x218,
    KD_MM_UNLOADED_DRIVERS = 0x220,
    KD_CM_NT_CSD_VERSION = 0x268,
};

#define KD_PAGE 0x1000u
/* An unreadable page is read again in pieces of this size. */
#define KD_PIECE 16u
#define ERR(...) tv_fmt(err, errlen, __VA_ARGS__)

/* A field as the target sees it: 32-bit targets store their pointers
 * extended to 64 bits; *ok is cleared if the upper half is neither a sign
 * nor a zero extension. */
static uint64_t field(const uint8_t *buf, size_t off, unsigned ptr_bits,
                      bool *ok)
{
    uint64_t v = tv_le64(buf + off);
    if (ptr_bits == 64)
        return v;
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    if (hi != 0 && !(hi == 0xffffffffu && (lo & 0x80000000u)))
        *ok = false;
    return lo;
}

/* A kernel-half address: for 64-bit, canonical with the top byte all ones
 * (48-bit and LA57 kernels alike); for 32-bit, 0x80000000 and above. */
static bool kernel_addr(uint64_t v, unsigned ptr_bits)
{
    if (ptr_bits == 64)
        return (v >> 56) == 0xff;
    return v >= 0x80000000u && v <= 0xffffffffu;
}

static bool in_kernel(uint64_t v, uint64_t base)
{
    return v >= base && v - base < WIN_KERNEL_SPAN;
}

/* The header fields and the checks that tell a real KDBG from a stray
 * tag. */
static int check(const uint8_t *buf, unsigned ptr_bits, win_kdbg_t *k,
                 char *err, size_t errlen)
{
    bool ok = true;
    k->list_flink = field(buf, KD_LIST_FLINK, ptr_bits, &ok);
    k->list_blink = field(buf, KD_LIST_BLINK, ptr_bits, &ok);
    k->kern_base = field(buf, KD_KERN_BASE, ptr_bits, &ok);
    k->ps_loaded_module_list =
        field(buf, KD_PS_LOADED_MODULE_LIST, ptr_bits, &ok);
    k->ps_active_process_head =
        field(buf, KD_PS_ACTIVE_PROCESS_HEAD, ptr_bits, &ok);
    k->psp_cid_table = field(buf, KD_PSP_CID_TABLE, ptr_bits, &ok);
    unsigned long long at = (unsigned long long)k->va;
    if (!ok) {
        ERR("KDBG at 0x%llx: pointer fields are not %u-bit values", at,
            ptr_bits);
        return TINYVMI_EFORMAT;
    }
    if (!kernel_addr(k->kern_base, ptr_bits) ||
        (k->kern_base & (KD_PAGE - 1))) {
        ERR("KDBG at 0x%llx: KernBase 0x%llx is not a page-aligned kernel "
            "address", at, (unsigned long long)k->kern_base);
        return TINYVMI_EFORMAT;
    }
    const struct {
        const char *name;
        uint64_t v;
    } in[] = {{"PsLoadedModuleList", k->ps_loaded_module_list},
              {"PsActiveProcessHead", k->ps_active_process_head}};
    for (size_t i = 0; i < TV_ARRAY_LEN(in); i++) {
        if (!in_kernel(in[i].v, k->kern_base)) {
            ERR("KDBG at 0x%llx: %s 0x%llx is not within %u MiB above "
                "KernBase 0x%llx", at, in[i].name,
                (unsigned long long)in[i].v, WIN_KERNEL_SPAN >> 20,
                (unsigned long long)k->kern_base);
            return TINYVMI_EFORMAT;
        }
    }
    if (k->va && !in_kernel(k->va, k->kern_base)) {
        ERR("KDBG at 0x%llx: not within %u MiB above its KernBase 0x%llx",
            at, WIN_KERNEL_SPAN >> 20, (unsigned long long)k->kern_base);
        return TINYVMI_EFORMAT;
    }
    if ((k->list_flink && !kernel_addr(k->list_flink, ptr_bits)) ||
        (k->list_blink && !kernel_addr(k->list_blink, ptr_bits))) {
        ERR("KDBG at 0x%llx: List (0x%llx, 0x%llx) is not kernel "
            "addresses", at, (unsigned long long)k->list_flink,
            (unsigned long long)k->list_blink);
        return TINYVMI_EFORMAT;
    }
    if (k->psp_cid_table && !kernel_addr(k->psp_cid_table, ptr_bits)) {
        ERR("KDBG at 0x%llx: PspCidTable 0x%llx is not a kernel address",
            at, (unsigned long long)k->psp_cid_table);
        return TINYVMI_EFORMAT;
    }
    return 0;
}

/* The fields past the checked ones, as far as Size and len reach. */
static void rest(const uint8_t *buf, size_t have, unsigned ptr_bits,
                 win_kdbg_t *k)
{
    bool ok = true; /* not checked: kept as the target stored them */
    k->breakpoint_with_status =
        field(buf, KD_BREAKPOINT_WITH_STATUS, ptr_bits, &ok);
    k->saved_context = field(buf, KD_SAVED_CONTEXT, ptr_bits, &ok);
    k->th_callback_stack = tv_le16(buf + KD_TH_CALLBACK_STACK);
    k->next_callback = tv_le16(buf + KD_NEXT_CALLBACK);
    k->frame_pointer = tv_le16(buf + KD_FRAME_POINTER);
    k->pae_enabled = tv_le16(buf + KD_PAE_ENABLED) & 1; /* a 1-bit field */
    k->ki_call_user_mode = field(buf, KD_KI_CALL_USER_MODE, ptr_bits, &ok);
    k->ke_user_callback_dispatcher =
        field(buf, KD_KE_USER_CALLBACK_DISPATCHER, ptr_bits, &ok);
    const struct {
        size_t off;
        uint64_t *dst;
    } later[] = {
        {KD_OBP_ROOT_DIRECTORY_OBJECT, &k->obp_root_directory_object},
        {KD_OBP_TYPE_OBJECT_TYPE, &k->obp_type_object_type},
        {KD_MM_PFN_DATABASE, &k->mm_pfn_database},
        {KD_NT_BUILD_LAB, &k->nt_build_lab},
        {KD_KI_PROCESSOR_BLOCK, &k->ki_processor_block},
        {KD_MM_UNLOADED_DRIVERS, &k->mm_unloaded_drivers},
        {KD_CM_NT_CSD_VERSION, &k->cm_nt_csd_version},
    };
    for (size_t i = 0; i < TV_ARRAY_LEN(later); i++)
        if (later[i].off + 8 <= have)
            *later[i].dst = field(buf, later[i].off, ptr_bits, &ok);
}

int win_kdbg_parse(const uint8_t *buf, size_t len, unsigned ptr_bits,
                   uint64_t va, win_kdbg_t *out, char *err, size_t errlen)
{
    tv_memset(out, 0, sizeof *out);
    out->va = va;
    if (errlen)
        err[0] = '\0';
    if (ptr_bits != 32 && ptr_bits != 64) {
        ERR("KDBG: pointer size %u bits is neither 32 nor 64", ptr_bits);
        return TINYVMI_EINVAL;
    }
    if (len < WIN_KDBG_HEADER || tv_le32(buf + KD_OWNER_TAG) != WIN_KDBG_TAG) {
        ERR("KDBG at 0x%llx: no KDBG tag in %zu bytes",
            (unsigned long long)va, len);
        return TINYVMI_ENOENT;
    }
    out->size = tv_le32(buf + KD_SIZE);
    if (out->size < WIN_KDBG_MIN_SIZE || out->size > WIN_KDBG_MAX_SIZE ||
        (out->size & 7)) {
        ERR("KDBG at 0x%llx: Size 0x%x implausible (0x%x..0x%x, a multiple "
            "of 8)", (unsigned long long)va, out->size, WIN_KDBG_MIN_SIZE,
            WIN_KDBG_MAX_SIZE);
        return TINYVMI_EFORMAT;
    }
    if (len < WIN_KDBG_MIN_SIZE) {
        ERR("KDBG at 0x%llx: %zu bytes given, 0x%x needed",
            (unsigned long long)va, len, WIN_KDBG_MIN_SIZE);
        return TINYVMI_ETRUNC;
    }
    int rc = check(buf, ptr_bits, out, err, errlen);
    if (rc)
        return rc;
    rest(buf, len < out->size ? len : out->size, ptr_bits, out);
    return 0;
}

/* ---- The encoded KDBG ----------------------------------------------------- */

static uint64_t rotl64(uint64_t v, unsigned n)
{
    n &= 63;
    return n ? v << n | v >> (64 - n) : v;
}

static uint64_t bswap64(uint64_t v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 8; i++, v >>= 8)
        r = r << 8 | (v & 0xff);
    return r;
}

void win_kdbg_decode(uint8_t *buf, size_t len, uint64_t wait_never,
                     uint64_t wait_always, uint64_t block_encoded_va)
{
    /* KdCopyDataBlock's inverse of KdEncodeDataBlock; the rotate count is
     * KiWaitNever's low byte, taken mod 64 as the ROL instruction does. */
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint64_t w = tv_le64(buf + i) ^ wait_never;
        w = rotl64(w, (unsigned)(wait_never & 0xff));
        w = bswap64(w ^ block_encoded_va) ^ wait_always;
        for (unsigned b = 0; b < 8; b++)
            buf[i + b] = (uint8_t)(w >> (8 * b));
    }
}

/* ---- Finding it ----------------------------------------------------------- */

typedef struct find_state {
    unsigned rejected;
    char why[160];
} find_state_t;

/* One candidate whose tag is at tag_va: reads the block and judges it. */
static int try_at(win_read_fn rd, void *arg, uint64_t va, unsigned ptr_bits,
                  win_read_fn check_rd, void *check_arg, win_kdbg_t *out,
                  find_state_t *st)
{
    uint8_t blk[WIN_KDBG_READ];
    if (rd(arg, va, blk, WIN_KDBG_HEADER))
        return TINYVMI_ENOENT;
    size_t n = tv_le32(blk + KD_SIZE);
    if (n > sizeof blk)
        n = sizeof blk;
    if (n < WIN_KDBG_MIN_SIZE)
        n = WIN_KDBG_MIN_SIZE; /* parse says why it is too small */
    if (rd(arg, va, blk, n)) {
        st->rejected++;
        tv_fmt(st->why, sizeof st->why, "KDBG at 0x%llx: %zu bytes "
               "unreadable", (unsigned long long)va, n);
        return TINYVMI_ENOENT;
    }
    int rc = win_kdbg_parse(blk, n, ptr_bits, va, out, st->why,
                            sizeof st->why);
    if (rc == 0 && check_rd) {
        uint8_t mz[2];
        if (check_rd(check_arg, out->kern_base, mz, 2) || mz[0] != 'M' ||
            mz[1] != 'Z') {
            tv_fmt(st->why, sizeof st->why, "KDBG at 0x%llx: KernBase "
                   "0x%llx holds no MZ header", (unsigned long long)va,
                   (unsigned long long)out->kern_base);
            rc = TINYVMI_EFORMAT;
        }
    }
    if (rc)
        st->rejected++;
    return rc;
}

/* Candidates whose tag lies in [p, p + n), bytes already read into buf. */
static int scan_piece(win_read_fn rd, void *arg, uint64_t p,
                      const uint8_t *buf, size_t n, unsigned ptr_bits,
                      win_read_fn check_rd, void *check_arg, win_kdbg_t *out,
                      find_state_t *st)
{
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint64_t tag_va = p + i;
        if (tv_le32(buf + i) != WIN_KDBG_TAG || tag_va < KD_OWNER_TAG)
            continue;
        if (try_at(rd, arg, tag_va - KD_OWNER_TAG, ptr_bits, check_rd,
                   check_arg, out, st) == 0)
            return 0;
    }
    return TINYVMI_ENOENT;
}

int win_kdbg_find(win_read_fn rd, void *arg, uint64_t start, uint64_t end,
                  unsigned ptr_bits, win_read_fn check_rd, void *check_arg,
                  win_kdbg_t *out, char *err, size_t errlen)
{
    find_state_t st = {0};
    uint8_t page[KD_PAGE];
    tv_memset(out, 0, sizeof *out);
    start &= ~(uint64_t)3;
    for (uint64_t p = start; p < end;) {
        /* Pieces end at page boundaries so one unreadable page costs only
         * itself. */
        uint64_t next = (p | (KD_PAGE - 1)) + 1;
        if (next == 0 || next > end)
            next = end;
        size_t n = (size_t)(next - p);
        if (rd(arg, p, page, n) == 0) {
            if (scan_piece(rd, arg, p, page, n, ptr_bits, check_rd,
                           check_arg, out, &st) == 0)
                return 0;
        } else {
            /* Sparse memory (a triage dump keeps the KDBG but not the
             * rest of its page): the page again in small pieces. */
            for (size_t o = 0; o < n; o += KD_PIECE) {
                size_t m = n - o < KD_PIECE ? n - o : KD_PIECE;
                if (rd(arg, p + o, page, m) == 0 &&
                    scan_piece(rd, arg, p + o, page, m, ptr_bits, check_rd,
                               check_arg, out, &st) == 0)
                    return 0;
            }
        }
        if (next == end)
            break;
        p = next;
    }
    tv_memset(out, 0, sizeof *out);
    tv_fmt(err, errlen, "no KDBG in [0x%llx, 0x%llx): %u tagged candidates "
           "rejected%s%s", (unsigned long long)start, (unsigned long long)end,
           st.rejected, st.rejected ? "; last: " : "", st.why);
    return TINYVMI_ENOENT;
}
