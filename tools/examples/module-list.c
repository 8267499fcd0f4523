/*
 * module-list: LibVMI's example, written for TinyVMI.  Prints the name of
 * each loaded kernel module, one a line.  Linux: walks the `modules` list
 * (struct module.list; the name follows the list_head); Windows: walks
 * PsLoadedModuleList and prints each BaseDllName.
 */
#include "example.h"

#define MAX_MODULES 100000

/* A UNICODE_STRING's text, crudely narrowed to ASCII. */
static char *read_unicode(vmi_instance_t vmi, addr_t us, int wide)
{
    uint16_t len = 0;
    addr_t buf = 0;
    if (vmi_read_16_va(vmi, us, 0, &len) != VMI_SUCCESS ||
        vmi_read_addr_va(vmi, us + (wide ? 8 : 4), 0, &buf) != VMI_SUCCESS)
        return NULL;
    unsigned char *raw = malloc((size_t)len + 2);
    char *out = malloc((size_t)len / 2 + 1);
    size_t n = 0;
    if (raw && out &&
        vmi_read_va(vmi, buf, 0, len, raw, NULL) == VMI_SUCCESS) {
        for (size_t i = 0; i + 1 < len; i += 2)
            out[n++] = raw[i + 1] ? '?' : (char)raw[i];
    }
    if (out)
        out[n] = '\0';
    free(raw);
    return out;
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    addr_t head = 0, next = 0;
    int ret = 1;

    if (ex_parse(argc, argv, 0, 0, "", "List the kernel modules of a VM.",
                 &o))
        return 1;
    if (ex_init(&o, 0, &vmi) != VMI_SUCCESS)
        return 1;
    if (vmi_pause_vm(vmi) != VMI_SUCCESS) {
        printf("Failed to pause VM\n");
        goto out;
    }
    os_t os = vmi_get_ostype(vmi);
    const char *sym = os == VMI_OS_LINUX     ? "modules"
                      : os == VMI_OS_WINDOWS ? "PsLoadedModuleList"
                                             : NULL;
    if (!sym) {
        printf("Unsupported or unknown OS.\n");
        goto resume;
    }
    if (vmi_translate_ksym2v(vmi, sym, &head) != VMI_SUCCESS) {
        printf("Failed to find %s\n", sym);
        goto resume;
    }
    int wide = vmi_get_address_width(vmi) == 8;
    next = head;
    for (long n = 0;; n++) {
        if (n == MAX_MODULES) {
            printf("Module list longer than %d entries: giving up\n",
                   MAX_MODULES);
            goto resume;
        }
        if (vmi_read_addr_va(vmi, next, 0, &next) != VMI_SUCCESS) {
            printf("Failed to read next pointer at %" PRIx64 "\n", next);
            goto resume;
        }
        if (next == head)
            break;
        char *name;
        if (os == VMI_OS_LINUX)
            /* struct module: ... struct list_head list; char name[]; */
            name = vmi_read_str_va(vmi, next + 2u * (wide ? 8 : 4), 0);
        else
            /* _LDR_DATA_TABLE_ENTRY.BaseDllName (stable XP..10) */
            name = read_unicode(vmi, next + (wide ? 0x58 : 0x2c), wide);
        if (!name) {
            printf("Failed to read a module name at %" PRIx64 "\n", next);
            goto resume;
        }
        printf("%s\n", name);
        free(name);
    }
    ret = 0;
resume:
    vmi_resume_vm(vmi);
out:
    vmi_destroy(vmi);
    ex_done(&o);
    return ret;
}
