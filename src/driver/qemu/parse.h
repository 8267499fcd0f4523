/*
 * Parsers for what QEMU sends the live driver: the flattened memory map
 * ("info mtree -f"), gdb target descriptions (XML) and gdb stop replies.
 * QEMU is trusted no more than the guest: every parser here is bounded,
 * never reads past its input and has a fuzz target (fuzz/fuzz_qemu.c).
 */
#ifndef TV_QEMU_PARSE_H
#define TV_QEMU_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"

/* A RAM backend: its QOM id and size in bytes. */
typedef struct tv_qm_backend_id {
    const char *id;
    uint64_t size;
} tv_qm_backend_id_t;

#define TV_QM_BACKEND_SHIFT 48 /* range offsets: backend index above this */

/* Guest-physical RAM ranges from the "memory" address space of `info
 * mtree -f` (text is modified: lines are split in place).  Each range's
 * offset is (backend index << TV_QM_BACKEND_SHIFT) | file offset; adjacent
 * pieces that continue each other are merged.  0, or a negative status
 * with why filled. */
int tv_qemu_mtree(char *text, const tv_qm_backend_id_t *be, size_t nbe,
                  tv_range_t *out, size_t cap, size_t *n, char *why,
                  size_t whylen);

/* Walks a target description: reg(arg, name, regnum, bits) for each
 * register (numbered in document order, a regnum attribute restarting the
 * count from *num), inc(arg, href) for each include; comments skipped.
 * Stops early when a callback returns nonzero and returns that. */
int tv_gdb_xml(const char *xml, long *num,
               int (*reg)(void *arg, const char *name, long num, long bits),
               int (*inc)(void *arg, const char *href), void *arg);

/* Registers the gdbstub does not carry, from HMP's `info registers` of
 * one vCPU: segment selectors, bases, limits and access rights (Xen's
 * 12-bit attribute layout, as LibVMI's *_ARBYTES), GDTR, IDTR and the
 * debug registers.  out and valid are indexed by LibVMI register number
 * (TINYVMI_NREGS entries); returns how many were found. */
unsigned tv_qemu_info_regs(const char *text, uint64_t *out, uint8_t *valid);

/* Two hex digits at p as a byte, or -1 (also at a NUL). */
int tv_gdb_hex_byte(const char *p);

/* A stop reply: 'T'/'S' with signal, thread and watchpoint; 'W'/'X' are
 * exits.  Fields not present stay as initialised by the caller. */
typedef struct tv_gdb_stop {
    char kind;              /* 'T', 'S', 'W', 'X' */
    unsigned signal;
    bool have_thread;
    unsigned long thread;
    bool watch;
    uint64_t watch_addr;
    uint8_t watch_access;   /* VMI_MEMACCESS_R, _W or _RW */
} tv_gdb_stop_t;

/* 0, or TINYVMI_EFORMAT for what is not a stop reply. */
int tv_gdb_stop(const char *pkt, tv_gdb_stop_t *out);

#endif
