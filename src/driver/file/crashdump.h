/*
 * Windows kernel crash dumps (PAGEDUMP, PAGEDU64) as the file driver opens
 * them: what the header records, and for triage dumps, which carry no
 * physical memory, the pieces they hold and a reader by virtual address.
 * Hosted code; the OS layer is meant to use it for Windows.
 */
#ifndef TV_DRIVER_FILE_CRASHDUMP_H
#define TV_DRIVER_FILE_CRASHDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"

enum tv_cd_kind {
    TV_CD_FULL = 1,       /* PhysicalMemoryBlock runs, pages in order */
    TV_CD_BITMAP_KERNEL,  /* "SDMP" bitmap of the pages present */
    TV_CD_BITMAP_COMPLETE, /* "FDMP" bitmap of the pages present */
    TV_CD_TRIAGE,         /* no physical memory: blocks by virtual address */
};

/* Bytes of the file: [offset, offset + size); offset 0: absent. */
typedef struct tv_cd_span {
    uint64_t offset;
    uint64_t size;
} tv_cd_span_t;

/* Kernel memory a triage dump saved, by virtual address. */
typedef struct tv_cd_block {
    uint64_t va;
    uint64_t size;
    uint64_t offset; /* in the file */
} tv_cd_block_t;

/* What a triage dump's TRIAGE_DUMP header says (64-bit dumps).  Offsets
 * are file offsets, 0 when the dump does not have the piece; pieces whose
 * size the header does not give have size 0. */
typedef struct tv_cd_triage {
    uint32_t service_pack_build;
    uint32_t size_of_dump;
    uint32_t triage_options;
    tv_cd_span_t context, exception, mm, unloaded_drivers, prcb;
    tv_cd_span_t process; /* a copy of the current EPROCESS */
    tv_cd_span_t thread;  /* a copy of the current ETHREAD */
    tv_cd_span_t call_stack;
    uint64_t top_of_stack; /* virtual address of call_stack's first byte */
    tv_cd_span_t driver_list; /* driver_count DUMP_DRIVER_ENTRY records */
    uint32_t driver_count;
    tv_cd_span_t string_pool; /* the drivers' names (DUMP_STRING) */
    tv_cd_span_t broken_driver;
    uint64_t data_page_va;
    tv_cd_span_t data_page;
    tv_cd_span_t kdbg;    /* the KDBG copy (KdDebuggerDataBlock) */
    tv_cd_span_t data_blocks; /* the TRIAGE_DATA_BLOCK array */
    uint32_t data_block_count;
} tv_cd_triage_t;

typedef struct tv_crashdump {
    bool is64;              /* PAGEDU64 */
    unsigned kind;          /* enum tv_cd_kind */
    const char *kind_name;  /* "full", "bitmap (kernel)", ... */
    uint32_t dump_type;     /* DumpType as stored */
    uint32_t major, minor;  /* MajorVersion (0xf: free build), build */
    uint32_t machine;       /* IMAGE_FILE_MACHINE_* */
    vmi_arch_t arch;
    uint32_t nprocessors;
    bool pae;               /* 32-bit: PaeEnabled */
    uint64_t dtb;           /* DirectoryTableBase */
    uint64_t pfn_database;
    uint64_t ps_loaded_module_list;
    uint64_t ps_active_process_head;
    uint64_t kd_debugger_data_block;
    uint32_t bugcheck_code;
    uint64_t bugcheck_param[4];
    uint64_t system_time;   /* FILETIME */
    tv_cd_span_t context;   /* CONTEXT of the processor that crashed */
    bool have_context;      /* its ContextFlags name this machine */
    /* Bitmap dumps. */
    uint64_t first_page;    /* file offset of the first present page */
    uint64_t present_pages; /* pages present, as the bitmap counts them */
    uint64_t bitmap_pages;  /* bits in the bitmap */
    /* Triage dumps. */
    tv_cd_triage_t triage;
    tv_cd_block_t *blocks;  /* sorted by va, disjoint */
    size_t nblocks;
} tv_crashdump_t;

/* The crash dump behind a driver the file driver opened, or NULL. */
const tv_crashdump_t *tv_crashdump_of(const tv_driver_t *d);

/* Reads exactly len bytes at virtual address va from a triage dump's saved
 * blocks (and its KDBG copy).  A byte no block holds: TINYVMI_EUNMAPPED,
 * *done (if not NULL) says how many bytes were read before it. */
int tv_crashdump_read_va(struct vmi_instance *vmi, const tv_driver_t *d,
                         uint64_t va, void *buf, size_t len, size_t *done);

#endif /* TV_DRIVER_FILE_CRASHDUMP_H */
