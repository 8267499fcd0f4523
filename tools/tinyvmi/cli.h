/*
 * The tinyvmi command: what its files share.  The tool is an outside
 * program: it uses only the public headers.
 */
#ifndef TINYVMI_CLI_H
#define TINYVMI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#ifndef CLI_VERSION /* the Makefile passes its VERSION */
#define CLI_VERSION "unknown"
#endif

/* Exit codes, as --help documents them. */
enum {
    CLI_OK = 0,       /* success */
    CLI_FAILED = 1,   /* the operation failed: unmapped, partial, I/O */
    CLI_USAGE = 2,    /* bad command line */
    CLI_NOTARGET = 3, /* the target could not be opened or initialised */
};

/* Options, as bits: each command says which it accepts. */
enum {
    OPT_PA = 1u << 0,
    OPT_DTB = 1u << 1,
    OPT_PAGE_MODE = 1u << 2,
    OPT_RAW = 1u << 3,
    OPT_JSON = 1u << 4,
    OPT_FORCE = 1u << 5,
    OPT_PROFILE = 1u << 6,
    OPT_CONFIG = 1u << 7,
    OPT_OUTPUT = 1u << 8,
    OPT_COUNT = 1u << 9,
    OPT_SECONDS = 1u << 10,
    OPT_SYMBOLS = 1u << 11,
    OPT_TCR = 1u << 12,
    OPT_TTBR0 = 1u << 13,
};
/* Every command that takes a TARGET accepts these. */
#define OPT_GLOBAL (OPT_DTB | OPT_PAGE_MODE | OPT_TCR | OPT_TTBR0)

#define CLI_MAX_POS 2

/* A positional argument after TARGET: a number or a path. */
typedef struct cli_pos {
    const char *name; /* "ADDR", "LEN", "VA", "OUT" */
    bool number;
} cli_pos_t;

struct cli;

typedef struct cli_cmd {
    const char *name;
    const char *synopsis; /* arguments and options, for usage lines */
    const char *summary;  /* one line */
    const char *help;     /* its --help text, after the usage line */
    unsigned opts;        /* OPT_* it accepts */
    cli_pos_t pos[CLI_MAX_POS];
    int npos;
    int (*run)(struct cli *c);
    bool no_target; /* TARGET is not a dump: run opens it itself */
} cli_cmd_t;

typedef struct cli {
    const cli_cmd_t *cmd;
    const char *target;
    const char *arg[CLI_MAX_POS]; /* positional arguments after TARGET */
    uint64_t num[CLI_MAX_POS];    /* their values, for numbers */
    unsigned given;               /* OPT_* seen */
    page_mode_t page_mode;        /* --page-mode */
    addr_t dtb;                   /* --dtb */
    uint64_t tcr;                 /* --tcr (ARM) */
    addr_t ttbr0;                 /* --ttbr0 (ARM) */
    const char *profile;          /* --profile */
    const char *symbols;          /* --symbols */
    const char *config;           /* --config */
    const char *output;           /* -o */
    uint64_t count;               /* --count */
    uint64_t seconds;             /* --seconds */
    vmi_instance_t vmi;
} cli_t;

/* The commands (info.c, read.c, translate.c, dump.c). */
extern const cli_cmd_t cli_cmd_info, cli_cmd_read, cli_cmd_translate,
    cli_cmd_dump;
/* os.c: the OS layer's commands, and starting the OS layer. */
extern const cli_cmd_t cli_cmd_ps, cli_cmd_modules, cli_cmd_sym;
int cli_os(cli_t *c);
/* The same without printing: VMI_OS_UNKNOWN, the reason in the last error. */
os_t cli_start_os(cli_t *c);
extern const cli_cmd_t cli_cmd_trace;
/* profile.c: an ISF from a kernel image's BTF and kallsyms. */
extern const cli_cmd_t cli_cmd_profile;

/* ---- util.c ---------------------------------------------------------- */

/* Prints "tinyvmi: CMD: " and the message to stderr; returns code. */
int cli_fail(const cli_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Strict numbers: 0x-hex or decimal, all of s, no sign, no overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
/* legacy, pae, ia32e, la57 (any case). */
bool cli_parse_page_mode(const char *s, page_mode_t *out);
/* Sets up translation: the dump's registers, or --page-mode/--dtb.  With
 * `need` false a target without paging is fine (info).  Returns an exit
 * code, having said why on failure. */
int cli_paging(cli_t *c, bool need);
/* Whether stdout took everything written to it; says so if not. */
int cli_flush(const cli_t *c);
/* A JSON string literal, escaped. */
void cli_json_str(FILE *f, const char *s);
/* A size for people: "4 KiB", "2 MiB", "1 GiB", "1536 bytes". */
const char *cli_size(uint64_t bytes, char *buf, size_t len);

/* Hex dump: 16 bytes a line, address, hex, ASCII.  Feed it in pieces that
 * are multiples of 16 bytes (the last may be shorter). */
void cli_hexdump(FILE *f, uint64_t addr, const unsigned char *buf, size_t n);

#endif
