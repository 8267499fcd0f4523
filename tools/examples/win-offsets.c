/*
 * win-offsets: LibVMI's example, written for TinyVMI.  Starts the Windows
 * OS layer with a profile and prints the win_* values a libvmi.conf entry
 * takes, as an entry for the VM, so that tools without the profile can use
 * the offsets.
 *
 *   win-offsets [-j <profile>] <vm> [<page mode> <dtb>]
 *
 * <vm> is a VM name or a dump's path; the profile comes from -j or from the
 * VM's libvmi.conf entry (TINYVMI_CONF names the file), which also gives
 * what start-up needs (win_ntoskrnl_va, win_symbols).  A raw dump without
 * vCPU registers takes its paging by hand: legacy, pae or ia32e and the
 * kernel's DTB.  Uses only the public API.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

/* The values in the order a libvmi.conf entry usually lists them. */
static const char *const keys[] = {
    "win_ntoskrnl", "win_ntoskrnl_va", "win_tasks", "win_pdbase",
    "win_pid", "win_pname", "win_peb", "win_kdvb", "win_sysproc",
    "win_kdbg",
};

static int parse_mode(const char *s, page_mode_t *m)
{
    static const struct {
        const char *name;
        page_mode_t mode;
    } modes[] = {{"legacy", VMI_PM_LEGACY}, {"pae", VMI_PM_PAE},
                 {"ia32e", VMI_PM_IA32E}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (!strcmp(s, modes[i].name)) {
            *m = modes[i].mode;
            return 0;
        }
    return 1;
}

static void usage(const char *prog)
{
    fprintf(stderr, "Usage: %s [-j <profile>] <vm> [<page mode> <dtb>]\n"
            "Prints the libvmi.conf entry (win_* offsets) of a Windows VM.\n"
            "  <page mode>  legacy, pae or ia32e (dumps without registers)\n",
            prog);
}

int main(int argc, char **argv)
{
    const char *json = NULL;
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "-j")) {
        json = argv[i + 1];
        i += 2;
    }
    if (argc - i != 1 && argc - i != 3) {
        usage(argv[0]);
        return 1;
    }
    const char *name = argv[i];
    vmi_instance_t vmi = NULL;
    vmi_init_error_t err = VMI_INIT_ERROR_NONE;
    if (vmi_init(&vmi, VMI_FILE, name, VMI_INIT_DOMAINNAME, NULL, &err) !=
        VMI_SUCCESS) {
        fprintf(stderr, "Failed to open %s: %s\n", name, tinyvmi_init_error());
        return 1;
    }
    int ret = 1;
    if (argc - i == 3) {
        page_mode_t mode;
        char *end;
        addr_t dtb = strtoull(argv[i + 2], &end, 0);
        if (parse_mode(argv[i + 1], &mode) || *end) {
            usage(argv[0]);
            goto out;
        }
        if (tinyvmi_set_paging(vmi, mode, dtb) != VMI_SUCCESS)
            goto fail;
    } else if (vmi_init_paging(vmi, 0) == VMI_PM_UNKNOWN) {
        fprintf(stderr, "note: no paging from registers (%s)\n",
                tinyvmi_last_error(vmi));
    }
    os_t os = json ? vmi_init_os(vmi, VMI_CONFIG_JSON_PATH, (void *)json,
                                 &err)
                   : vmi_init_os(vmi, VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL,
                                 &err);
    if (os != VMI_OS_WINDOWS) {
        if (os == VMI_OS_UNKNOWN)
            goto fail;
        fprintf(stderr, "%s is not a Windows guest\n", name);
        goto out;
    }
    /* the entry's name: the file's base name, as the config is searched */
    const char *base = strrchr(name, '/');
    printf("%s {\n    ostype = \"Windows\";\n", base ? base + 1 : name);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        addr_t v;
        if (vmi_get_offset(vmi, keys[k], &v) == VMI_SUCCESS)
            printf("    %s = 0x%" PRIx64 ";\n", keys[k], v);
        else
            printf("    # %s: unknown\n", keys[k]);
    }
    printf("}\n# %s, build %u\n", vmi_get_winver_str(vmi),
           (unsigned)vmi_get_win_buildnumber(vmi));
    ret = 0;
    goto out;
fail:
    fprintf(stderr, "%s: %s\n", name, tinyvmi_last_error(vmi));
out:
    vmi_destroy(vmi);
    return ret;
}
