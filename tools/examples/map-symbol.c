/*
 * map-symbol: LibVMI's example, written for TinyVMI.  Prints a hex dump of
 * the page of kernel memory that starts at a symbol.
 *   map-symbol [options] <vm> <symbol>
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
    if (ex_parse(argc, argv, 1, 1, "<symbol>",
                 "Hex-dump the 4096 bytes at a kernel symbol.", &o))
        goto done;
    if (ex_init(&o, 0, &vmi) != VMI_SUCCESS)
        goto done;
    const char *symbol = o.args[0];
    size_t got = 0;
    if (vmi_read_ksym(vmi, symbol, PAGE, memory, &got) != VMI_SUCCESS) {
        printf("failed to get symbol's memory (%zu of %d bytes read).\n",
               got, PAGE);
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
