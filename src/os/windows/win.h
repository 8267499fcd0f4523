/*
 * The Windows OS layer's internals, shared by its files.
 *   pe.c      PE images in guest memory: headers, the RSDS debug record
 *             (PDB name, GUID, age), finding ntoskrnl's image
 *   kdbg.c    the kernel debugger data block (KDBG): parsing, decoding
 *             the encoded block of 64-bit Windows 8 and later, finding it
 *   windows.c the layer itself: start-up, profile choice, the process and
 *             module walks, LibVMI's Windows offsets
 * Everything here reads hostile memory: lengths are checked against the
 * buffers given, walks are bounded.
 */
#ifndef TV_OS_WINDOWS_H
#define TV_OS_WINDOWS_H

#include "core/tv.h"
#include "profile/symtab.h"

/* A reader of guest memory at addresses the caller chooses (virtual
 * addresses for the layer; image offsets or file offsets for fuzzers and
 * tests).  Returns 0 when all len bytes were read, nonzero otherwise. */
typedef int (*win_read_fn)(void *arg, uint64_t addr, void *buf, size_t len);

/* ---- pe.c ------------------------------------------------------------------ */

typedef struct win_pe {
    uint16_t machine;       /* IMAGE_FILE_MACHINE_* */
    bool pe32plus;          /* 64-bit optional header */
    uint32_t size_of_image;
    uint64_t image_base;    /* the header's preferred base */
    uint32_t timestamp;
    bool have_rsds;         /* a CodeView RSDS record was found and read */
    uint8_t guid[16];       /* as stored (Data1..3 little-endian) */
    uint32_t age;
    char pdb[128];          /* the PDB's file name, NUL-terminated */
    /* The image has a debug directory (or CodeView record) whose bytes
     * could not be read (paged out, or not in the dump): no GUID. */
    bool rsds_unreadable;
    /* The export directory's name ("ntoskrnl.exe"); "" if none or
     * unreadable. */
    char export_name[64];
} win_pe_t;

/* Parses the PE image whose first byte is at base (read through rd):
 * DOS and NT headers (e_lfanew must keep them in the first page), the
 * export directory's name, then the debug directory's RSDS record (at most
 * 32 entries looked at).  Every RVA is checked against SizeOfImage.
 * Directories whose bytes cannot be read are not errors (rsds_unreadable,
 * export_name ""); their malformed contents are.  ENOENT: no MZ at base;
 * EFORMAT: a malformed image (the reason in err). */
int win_pe_parse(win_read_fn rd, void *arg, uint64_t base, win_pe_t *out,
                 char *err, size_t errlen);
/* Volatility's and symbol servers' key: GUID as 32 upper-case hex digits
 * (Data1..3 byte-swapped as the text form shows them) then the age in
 * hex, e.g. "5278AFF86C341677D7D7835C85B7B8441". */
void win_pe_guid_age(const win_pe_t *pe, char out[48]);

/* Whether name is one of ntoskrnl's image or PDB names (ntoskrnl.exe,
 * ntkrnlmp.pdb, ntkrnlpa, ntkrpamp, ntkrla57; case-insensitive). */
bool win_is_kernel_name(const char *name);

typedef struct win_kernel {
    uint64_t base;          /* where the image starts */
    win_pe_t pe;
    /* The RSDS PDB name or the export name was read and is a kernel's.
     * false: an image holding the address was found but neither name was
     * readable (e.g. a triage dump keeps only the header page). */
    bool named;
} win_kernel_t;

/* Finds ntoskrnl's image from an address known to lie inside it
 * (KdDebuggerDataBlock, PsActiveProcessHead, an IDT handler): scans down
 * page by page, at most 32 MiB, for an MZ/PE image whose SizeOfImage covers
 * the address and whose PDB or export name is a kernel's.  Unreadable
 * pages are skipped.  When no covering image has a readable kernel name,
 * the highest covering image whose names are both unreadable is returned
 * with named false; images naming something else are passed over.
 * ENOENT (with counts in err) if nothing fits. */
int win_find_kernel(win_read_fn rd, void *arg, uint64_t inside,
                    win_kernel_t *out, char *err, size_t errlen);

/* ---- kdbg.c ---------------------------------------------------------------- */

/* KDDEBUGGER_DATA64 (public, wdbgexts.h): a DBGKD_DEBUG_DATA_HEADER64
 * (LIST_ENTRY64 List, OwnerTag 'KDBG', Size) then 64-bit fields, on 32-bit
 * Windows too (pointers sign-extended there). */
#define WIN_KDBG_TAG 0x4742444bu   /* "KDBG" little-endian */
#define WIN_KDBG_HEADER 0x18u
#define WIN_KDBG_MIN_SIZE 0x60u    /* through PspCidTable */
#define WIN_KDBG_MAX_SIZE 0x1000u
#define WIN_KDBG_READ 0x270u       /* bytes of it win_kdbg_parse looks at */
/* The kernel's globals the KDBG points at lie within this of KernBase. */
#define WIN_KERNEL_SPAN (64u << 20)

typedef struct win_kdbg {
    uint64_t va;            /* where it was read from (0: not known) */
    uint64_t list_flink, list_blink;
    uint32_t size;          /* Header.Size */
    uint64_t kern_base;
    uint64_t breakpoint_with_status, saved_context;
    uint16_t th_callback_stack, next_callback, frame_pointer;
    bool pae_enabled;
    uint64_t ki_call_user_mode, ke_user_callback_dispatcher;
    uint64_t ps_loaded_module_list, ps_active_process_head, psp_cid_table;
    /* Later fields: 0 when Size does not cover them. */
    uint64_t obp_root_directory_object, obp_type_object_type;
    uint64_t mm_pfn_database;
    uint64_t nt_build_lab, ki_processor_block, mm_unloaded_drivers;
    uint64_t cm_nt_csd_version;
} win_kdbg_t;

/* Parses a KDBG from buf (len bytes, read at va; va 0: unknown) for a
 * target with ptr_bits 32 or 64 (32: fields must be 32-bit values, sign-
 * or zero-extended; results are the 32-bit values).  Checks the tag, a
 * plausible Size (WIN_KDBG_MIN_SIZE..MAX_SIZE, 8-byte multiple), that
 * KernBase is a page-aligned kernel address and that the list heads and
 * the block itself lie within WIN_KERNEL_SPAN above it.  ENOENT: no tag;
 * EFORMAT: tag with implausible fields (the reason in err). */
int win_kdbg_parse(const uint8_t *buf, size_t len, unsigned ptr_bits,
                   uint64_t va, win_kdbg_t *out, char *err, size_t errlen);

/* Decodes in place the KDBG of 64-bit Windows 8 and later that the kernel
 * keeps encoded (KdpDataBlockEncoded nonzero), each little-endian 8-byte
 * word w of buf: w ^= KiWaitNever; w = rotl64(w, KiWaitNever & 0xff);
 * w ^= &KdpDataBlockEncoded; w = bswap64(w); w ^= KiWaitAlways.  A
 * trailing partial word is left as is. */
void win_kdbg_decode(uint8_t *buf, size_t len, uint64_t wait_never,
                     uint64_t wait_always, uint64_t block_encoded_va);

/* Scans [start, end) through rd for a KDBG tag (at 4-byte-aligned
 * addresses) whose block parses as win_kdbg_parse accepts; when check_rd
 * is given, the candidate's KernBase must also read "MZ" through it.
 * A page that cannot be read whole is read again in 16-byte pieces (sparse
 * memory such as a triage dump keeps the KDBG but not its page), so give
 * narrow bounds where much is unreadable.  ENOENT with the number of
 * rejected candidates and the last reason in err if none fits. */
int win_kdbg_find(win_read_fn rd, void *arg, uint64_t start, uint64_t end,
                  unsigned ptr_bits, win_read_fn check_rd, void *check_arg,
                  win_kdbg_t *out, char *err, size_t errlen);

/* ---- windows.c ------------------------------------------------------------- */

/* What start-up knows before the layer reads memory; zeros are unknowns.
 * Addresses are live virtual addresses. */
typedef struct tv_win_start {
    uint64_t kernel_base;   /* ntoskrnl's image base (config, KDBG) */
    uint64_t kdvb;          /* KdVersionBlock (config win_kdvb) */
    uint64_t dtb;           /* kernel page-table root (dump header) */
    /* what a crash dump's header records */
    uint64_t ps_active_process_head, ps_loaded_module_list, kdbg;
    /* what the KDBG's own fields say */
    uint64_t kdbg_process_head, kdbg_module_list;
    uint32_t ptr_size;      /* the target's pointer size, 4 or 8 */
    uint32_t build;         /* the dump header's MinorVersion */
    bool pae;               /* 32-bit dumps: PAE paging */
    /* Kernel memory by virtual address without page tables (a triage
     * dump's saved blocks); NULL: through the page tables. */
    win_read_fn read_va;
    void *read_arg;
    /* Copies of the current EPROCESS and ETHREAD (triage dumps). */
    const uint8_t *cur_process;
    size_t cur_process_len;
    const uint8_t *cur_thread;
    size_t cur_thread_len;
    /* A triage dump's driver list (DUMP_DRIVER_ENTRY64 records) and the
     * string pool their names are in (pool_off: its file offset). */
    const uint8_t *drivers;
    size_t ndrivers;
    const uint8_t *pool;
    size_t pool_len;
    uint64_t pool_off;
    /* Why this profile was chosen (kept for tinyvmi_kernel_t.source). */
    char choice[192];
} tv_win_start_t;

/* Whether profile t fits the addresses s records: each recorded address
 * less the profile's offset of its symbol must give one kernel base, the
 * pointer sizes must agree.  0 and *base when they do (base 0: nothing to
 * compare); EFORMAT with the disagreeing symbol named in err if not. */
int win_profile_check(const tv_symtab_t *t, const tv_win_start_t *s,
                      uint64_t *base, char *err, size_t errlen);
/* The pointer size a profile describes (4 or 8; 0 if it cannot say). */
uint32_t win_profile_ptr_size(const tv_symtab_t *t);

#endif
