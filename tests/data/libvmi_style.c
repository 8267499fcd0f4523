/*
 * A program written the way LibVMI programs are written, using only
 * <libvmi/libvmi.h>: it must build against TinyVMI unchanged.  It reads the
 * first 8 bytes of physical memory and translates a kernel address.  Like
 * many LibVMI programs it gets <stdio.h> through <libvmi/libvmi.h>.
 */
#include <inttypes.h>
#include <stdlib.h>

#include <libvmi/libvmi.h>

int main(int argc, char **argv)
{
    vmi_instance_t vmi = NULL;
    vmi_init_error_t error;
    vmi_mode_t mode;
    if (argc < 2)
        return 2;
    if (VMI_FAILURE ==
        vmi_get_access_mode(NULL, argv[1], VMI_INIT_DOMAINNAME, NULL, &mode))
        return 1;
    if (VMI_FAILURE == vmi_init(&vmi, mode, argv[1], VMI_INIT_DOMAINNAME,
                                NULL, &error)) {
        printf("init failed: %d\n", error);
        return 1;
    }
    uint64_t first = 0;
    if (VMI_SUCCESS == vmi_read_64_pa(vmi, 0, &first))
        printf("pa0 %" PRIx64 "\n", first);
    printf("memsize %" PRIu64 "\n", vmi_get_memsize(vmi));
    page_mode_t pm = vmi_init_paging(vmi, 0);
    printf("page mode %d width %u\n", pm, vmi_get_address_width(vmi));
    ACCESS_CONTEXT(ctx, .translate_mechanism = VMI_TM_NONE, .addr = 8);
    uint32_t word;
    if (VMI_SUCCESS == vmi_read_32(vmi, &ctx, &word))
        printf("pa8 %" PRIx32 "\n", word);
    access_context_t old_style = {.translate_mechanism = VMI_TM_PROCESS_DTB,
                                  .dtb = 0x1000, .addr = 0xffffffff81000000};
    uint8_t byte;
    (void)vmi_read_8(vmi, &old_style, &byte);
    addr_t pa;
    (void)vmi_translate_kv2p(vmi, 0xffffffff81000000ULL, &pa);
    char *s = vmi_read_str_pa(vmi, 16);
    free(s);
    vmi_destroy(vmi);
    return 0;
}
