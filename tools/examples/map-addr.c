/*
 * map-addr: LibVMI's example, written for TinyVMI.  Prints a hex dump of
 * the 4096 bytes of kernel virtual memory at an address (hex, as LibVMI's
 * example reads it: "ffffffff81000000" or "0xffffffff81000000").
 *   map-addr [options] <vm> <address>
 */
#include "example.h"

#define PAGE 4096

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    unsigned char *memory = malloc(PAGE);
    int ret = 1;

    if (!memory)
        return 1;
    if (ex_parse(argc, argv, 1, 1, "<address>",
                 "Hex-dump the 4096 bytes at a kernel virtual address.", &o))
        goto done;
    char *end;
    errno = 0;
    addr_t addr = strtoull(o.args[0], &end, 16);
    if (errno || *end || end == o.args[0]) {
        fprintf(stderr, "%s: bad address '%s'\n", argv[0], o.args[0]);
        ex_usage(argv[0], "<address>", "");
        goto done;
    }
    if (ex_init(&o, 0, &vmi) != VMI_SUCCESS)
        goto done;
    size_t got = 0;
    if (vmi_read_va(vmi, addr, 0, PAGE, memory, &got) != VMI_SUCCESS) {
        printf("failed to map memory (%zu of %d bytes read).\n", got, PAGE);
        goto done;
    }
    ex_print_hex(memory, PAGE);
    ret = 0;
done:
    vmi_destroy(vmi);
    ex_done(&o);
    free(memory);
    return ret;
}
