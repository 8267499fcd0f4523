/* The tinyvmi command: shared declarations.  Public API only. */
#ifndef TINYVMI_CLI_H
#define TINYVMI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

/* Exit codes scripts can rely on. */
enum {
    CLI_OK = 0,        /* success */
    CLI_FAILED = 1,    /* the operation failed (unmapped, partial, I/O) */
    CLI_USAGE = 2,     /* bad command line */
    CLI_NOTARGET = 3,  /* the target could not be opened or set up */
};

#define CLI_MAX_ARGS 4

typedef struct cli {
    const char *cmd;                 /* subcommand name */
    const char *arg[CLI_MAX_ARGS];   /* positional arguments after TARGET */
    int nargs;
    const char *target;
    page_mode_t page_mode;           /* --page-mode, or VMI_PM_UNKNOWN */
    addr_t dtb;
    bool have_dtb;                   /* --dtb */
    bool pa, raw, json, force;       /* --pa --raw --json --force */
    vmi_instance_t vmi;
} cli_t;

typedef struct cli_cmd {
    const char *name;
    const char *args;      /* usage of the positional arguments */
    const char *summary;
    const char *options;   /* the options it accepts, for its --help */
    int nargs;             /* positional arguments after TARGET */
    int (*run)(cli_t *c);
} cli_cmd_t;

int cmd_info(cli_t *c);
int cmd_read(cli_t *c);
int cmd_translate(cli_t *c);
int cmd_dump(cli_t *c);

/* Errors as "tinyvmi: CMD: what: why"; return the exit code given. */
int cli_fail(const cli_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Strict number parsing: 0x-hex or decimal, whole string. */
bool cli_number(const char *s, unsigned long long *out);
/* Sets up translation as the options ask; fails with a message. */
int cli_paging(cli_t *c, bool required);
/* The page-table root lookups use: --dtb, else the kernel's. */
addr_t cli_dtb(const cli_t *c);
/* Prints a JSON string literal. */
void cli_json_str(FILE *f, const char *s);
/* Classic hex dump lines, addresses starting at base. */
void cli_hexdump(FILE *f, addr_t base, const unsigned char *buf, size_t n);

#endif
