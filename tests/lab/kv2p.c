/*
 * Lab helper: translates kernel virtual addresses read from stdin (one hex
 * address a line) with vmi_translate_kv2p, through the public API only.
 * Prints "VA PA" for each, or "VA - ERRNAME reason" when it is not mapped.
 *   kv2p TARGET [PAGE_MODE DTB [TCR [TTBR0]]]
 * PAGE_MODE/DTB are for dumps that carry no paging registers: x86 raw
 * images, and ARM dumps (QEMU's ARM ELF notes have no TTBRs), where TCR is
 * TCR_EL1 (aarch64) or TTBCR (aarch32), DTB TTBR1 and TTBR0 the low range's
 * root (default: DTB).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

static const struct {
    const char *name;
    page_mode_t mode;
} modes[] = {{"legacy", VMI_PM_LEGACY}, {"pae", VMI_PM_PAE},
             {"ia32e", VMI_PM_IA32E},   {"la57", VMI_PM_LA57}};

static int set_mode(vmi_instance_t vmi, const char *name, const char *dtb,
                    const char *tcr, const char *ttbr0)
{
    if (tcr && (!strcmp(name, "aarch64") || !strcmp(name, "aarch32")))
        return tinyvmi_set_paging_arm(
                   vmi, name[5] == '6' ? VMI_PM_AARCH64 : VMI_PM_AARCH32,
                   strtoull(tcr, NULL, 0), strtoull(ttbr0 ? ttbr0 : dtb,
                                                    NULL, 0),
                   strtoull(dtb, NULL, 0)) == VMI_SUCCESS
                   ? 0
                   : -1;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(modes[i].name, name) == 0)
            return tinyvmi_set_paging(vmi, modes[i].mode,
                                      strtoull(dtb, NULL, 0)) == VMI_SUCCESS
                       ? 0
                       : -1;
    return -1;
}

int main(int argc, char **argv)
{
    vmi_instance_t vmi;
    if (argc < 2 || argc == 3 || argc > 6) {
        fprintf(stderr, "usage: kv2p TARGET [PAGE_MODE DTB [TCR [TTBR0]]] "
                        "< addresses\n");
        return 2;
    }
    if (vmi_init(&vmi, VMI_FILE, argv[1], VMI_INIT_DOMAINNAME, NULL, NULL) !=
        VMI_SUCCESS) {
        fprintf(stderr, "kv2p: %s\n", tinyvmi_init_error());
        return 3;
    }
    int rc = argc >= 4 ? set_mode(vmi, argv[2], argv[3],
                                  argc >= 5 ? argv[4] : NULL,
                                  argc == 6 ? argv[5] : NULL)
                       : (vmi_init_paging(vmi, 0) == VMI_PM_UNKNOWN ? -1 : 0);
    if (rc) {
        fprintf(stderr, "kv2p: paging: %s\n", tinyvmi_last_error(vmi));
        vmi_destroy(vmi);
        return 3;
    }
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        addr_t va = strtoull(line, NULL, 16), pa;
        if (vmi_translate_kv2p(vmi, va, &pa) == VMI_SUCCESS)
            printf("0x%" PRIx64 " 0x%" PRIx64 "\n", va, pa);
        else
            printf("0x%" PRIx64 " - %s %s\n", va,
                   tinyvmi_err_name(tinyvmi_last_status(vmi)),
                   tinyvmi_last_error(vmi));
    }
    vmi_destroy(vmi);
    return 0;
}
