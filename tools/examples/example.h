/*
 * What TinyVMI's example programs share: LibVMI's command-line conventions
 * and its init call.  Uses only <libvmi/libvmi.h> and libc, as any program
 * written for LibVMI does.
 *
 *   PROG [options] <vm> ARGS...       the VM name (VMI_FILE: a dump path)
 *   PROG -n <vm> | -d <domid> [-j <profile.json>] [-s <socket>] ARGS...
 *
 * Without -j the global libvmi.conf entry for the VM is used (LibVMI's
 * VMI_CONFIG_GLOBAL_FILE_ENTRY); TinyVMI works profile-less when there is
 * none.
 */
#ifndef EXAMPLE_H
#define EXAMPLE_H

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/events.h>
#include <libvmi/libvmi.h>

typedef struct ex_opts {
    const char *name;
    uint64_t domid;
    int have_domid;
    const char *json;
    const char *socket;
    char **args; /* the program's own positional arguments */
    int nargs;
    vmi_init_data_t *init_data; /* for -s; freed by ex_done */
} ex_opts_t;

static inline void ex_usage(const char *prog, const char *args, const char *what)
{
    fprintf(stderr,
            "Usage: %s [-j <json profile>] [-s <socket>] <vm> %s\n"
            "       %s -n <vm name> | -d <domid> [-j <json>] [-s <socket>] "
            "%s\n"
            "%s\n"
            "  -n, --name <vm>      the VM's name (a dump file's path)\n"
            "  -d, --domid <id>     the VM's domain id\n"
            "  -j, --json <path>    the kernel's JSON profile (ISF/Rekall)\n"
            "  -s, --socket <path>  the KVMi/QMP socket (VMI_KVM)\n",
            prog, args, prog, args, what);
}

/* Parses options; nmin..nmax positional arguments after the VM.  Returns
 * 0, or 1 after printing the usage (the caller exits with 1). */
static inline int ex_parse(int argc, char **argv, int nmin, int nmax,
                    const char *args, const char *what, ex_opts_t *o)
{
    static const struct option longs[] = {
        {"name", required_argument, NULL, 'n'},
        {"domid", required_argument, NULL, 'd'},
        {"json", required_argument, NULL, 'j'},
        {"socket", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    char *end;
    memset(o, 0, sizeof *o);
    while ((c = getopt_long(argc, argv, "+n:d:j:s:h", longs, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->name = optarg;
            break;
        case 'd':
            errno = 0;
            o->domid = strtoull(optarg, &end, 0);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "%s: bad domain id '%s'\n", argv[0], optarg);
                ex_usage(argv[0], args, what);
                return 1;
            }
            o->have_domid = 1;
            break;
        case 'j':
            o->json = optarg;
            break;
        case 's':
            o->socket = optarg;
            break;
        default:
            ex_usage(argv[0], args, what);
            return 1;
        }
    }
    if (!o->name && !o->have_domid && optind < argc)
        o->name = argv[optind++];
    o->args = argv + optind;
    o->nargs = argc - optind;
    if ((!o->name && !o->have_domid) || (o->name && o->have_domid) ||
        o->nargs < nmin || o->nargs > nmax) {
        ex_usage(argv[0], args, what);
        return 1;
    }
    return 0;
}

/* The domain argument, its flag and the init data (the QMP socket) for
 * o, the way LibVMI's examples pass them; *data NULL when none. */
static inline status_t ex_domain(ex_opts_t *o, uint64_t *flags,
                                 const void **domain, vmi_init_data_t **data)
{
    *domain = o->name;
    *flags |= VMI_INIT_DOMAINNAME;
    *data = NULL;
    if (o->have_domid) {
        *flags = (*flags & ~(uint64_t)VMI_INIT_DOMAINNAME) | VMI_INIT_DOMAINID;
        *domain = &o->domid;
    }
    if (o->socket) {
        *data = malloc(sizeof **data + sizeof (*data)->entry[0]);
        if (!*data)
            return VMI_FAILURE;
        (*data)->count = 1;
        (*data)->entry[0].type = VMI_INIT_DATA_KVMI_SOCKET;
        (*data)->entry[0].data = (void *)(uintptr_t)o->socket;
        o->init_data = *data;
    }
    return VMI_SUCCESS;
}

/* vmi_init_complete the way LibVMI's examples call it. */
static inline status_t ex_init(ex_opts_t *o, uint64_t flags, vmi_instance_t *vmi)
{
    vmi_init_error_t error = VMI_INIT_ERROR_NONE;
    vmi_init_data_t *init_data;
    const void *domain;
    if (ex_domain(o, &flags, &domain, &init_data) != VMI_SUCCESS)
        return VMI_FAILURE;
    status_t rc = vmi_init_complete(
        vmi, domain, flags, init_data,
        o->json ? VMI_CONFIG_JSON_PATH : VMI_CONFIG_GLOBAL_FILE_ENTRY,
        (void *)(uintptr_t)o->json, &error);
    if (rc != VMI_SUCCESS)
        printf("Failed to init LibVMI library (error %d).\n", (int)error);
    return rc;
}

/* The driver alone with events (no OS layer), as LibVMI's register-event
 * examples start: vmi_get_access_mode, then vmi_init. */
static inline status_t ex_init_events(ex_opts_t *o, vmi_instance_t *vmi)
{
    uint64_t flags = VMI_INIT_EVENTS;
    const void *domain;
    vmi_init_data_t *data;
    vmi_mode_t mode;
    vmi_init_error_t error = VMI_INIT_ERROR_NONE;
    if (ex_domain(o, &flags, &domain, &data) != VMI_SUCCESS)
        return VMI_FAILURE;
    if (vmi_get_access_mode(NULL, domain, flags, data, &mode) != VMI_SUCCESS) {
        fprintf(stderr, "Failed to get access mode\n");
        return VMI_FAILURE;
    }
    if (vmi_init(vmi, mode, domain, flags, data, &error) != VMI_SUCCESS) {
        fprintf(stderr, "Failed to init LibVMI library (error %d).\n",
                (int)error);
        return VMI_FAILURE;
    }
    return VMI_SUCCESS;
}

/* Frees what ex_init allocated. */
static inline void ex_done(ex_opts_t *o)
{
    free(o->init_data);
    o->init_data = NULL;
}

/* A hex dump in the layout LibVMI's vmi_print_hex uses: offset, 16 bytes,
 * their ASCII. */
static inline void ex_print_hex(const unsigned char *data, size_t len)
{
    for (size_t i = 0; i < len; i += 16) {
        printf("%08zx:", i);
        for (size_t j = 0; j < 16; j++) {
            if (i + j < len)
                printf(" %02x", data[i + j]);
            else
                printf("   ");
            if (j == 7)
                printf(" ");
        }
        printf("  ");
        for (size_t j = 0; j < 16 && i + j < len; j++) {
            unsigned char ch = data[i + j];
            putchar(ch >= 0x20 && ch < 0x7f ? ch : '.');
        }
        putchar('\n');
    }
}

/* For the event examples: Ctrl-C (SIGINT), SIGTERM and SIGHUP set a flag
 * that the vmi_events_listen loop checks between short timeouts, so the
 * program clears its events and calls vmi_destroy, which leaves the guest
 * running.  No SA_RESTART: a blocking call returns early.  (The flag lives
 * in a function so that programs that do not use it carry no global.) */
static inline volatile sig_atomic_t *ex_stop_flag(void)
{
    static volatile sig_atomic_t flag;
    return &flag;
}

static inline void ex_on_signal(int sig)
{
    *ex_stop_flag() = sig;
}

/* Delivers events until Ctrl-C (or the flag is set otherwise); 0, or 1
 * when listening failed. */
static inline int ex_listen(vmi_instance_t vmi)
{
    while (!*ex_stop_flag()) {
        if (vmi_events_listen(vmi, 500) != VMI_SUCCESS) {
            printf("Error waiting for events\n");
            return 1;
        }
    }
    return 0;
}

static inline void ex_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ex_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

#endif
