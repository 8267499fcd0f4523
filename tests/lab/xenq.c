/*
 * Lab helper for the Xen lab: run control and registers of a live domain,
 * through the public API only.
 *   xenq xen:NAME|xen:ID
 * Prints "key value" lines (values in hex where they are addresses):
 *   vmid, name, vcpus, cr3, rip     what the instance says of the domain
 *   paused-jiffies A B              jiffies read twice 1 s apart while paused
 *   running-jiffies A B             the same after resuming
 *   dr0 OLD SET BACK                DR0 read, written with a pattern and read
 *                                   back, then restored (DR7 leaves it off,
 *                                   so the guest never sees it)
 *   error MESSAGE                   and exit 1 at the first failure
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

static int fail(vmi_instance_t vmi, const char *what)
{
    printf("error %s: %s\n", what,
           vmi ? tinyvmi_last_error(vmi) : tinyvmi_init_error());
    if (vmi) {
        vmi_destroy(vmi);
    }
    return 1;
}

static int jiffies_pair(vmi_instance_t vmi, const char *key)
{
    uint64_t a, b;
    if (vmi_read_64_ksym(vmi, "jiffies", &a) != VMI_SUCCESS)
        return -1;
    sleep(1);
    if (vmi_read_64_ksym(vmi, "jiffies", &b) != VMI_SUCCESS)
        return -1;
    printf("%s %" PRIu64 " %" PRIu64 "\n", key, a, b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: xenq xen:NAME|xen:ID\n");
        return 2;
    }
    vmi_instance_t vmi = NULL;
    vmi_init_error_t err;
    if (vmi_init_complete(&vmi, argv[1], VMI_INIT_DOMAINNAME, NULL,
                          VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, &err) !=
        VMI_SUCCESS)
        return fail(NULL, "init");
    char *name = vmi_get_name(vmi);
    printf("vmid %" PRIu64 "\nname %s\nvcpus %u\n", vmi_get_vmid(vmi),
           name ? name : "?", vmi_get_num_vcpus(vmi));
    free(name);
    uint64_t cr3, rip;
    if (vmi_get_vcpureg(vmi, &cr3, CR3, 0) != VMI_SUCCESS ||
        vmi_get_vcpureg(vmi, &rip, RIP, 0) != VMI_SUCCESS)
        return fail(vmi, "registers");
    printf("cr3 0x%" PRIx64 "\nrip 0x%" PRIx64 "\n", cr3, rip);

    if (vmi_pause_vm(vmi) != VMI_SUCCESS)
        return fail(vmi, "pause");
    if (jiffies_pair(vmi, "paused-jiffies"))
        return fail(vmi, "jiffies");
    uint64_t old, set = 0x5a5a0000 | (uint64_t)getpid(), back;
    if (vmi_get_vcpureg(vmi, &old, DR0, 0) != VMI_SUCCESS ||
        vmi_set_vcpureg(vmi, set, DR0, 0) != VMI_SUCCESS ||
        vmi_get_vcpureg(vmi, &back, DR0, 0) != VMI_SUCCESS ||
        vmi_set_vcpureg(vmi, old, DR0, 0) != VMI_SUCCESS)
        return fail(vmi, "DR0");
    printf("dr0 0x%" PRIx64 " 0x%" PRIx64 " 0x%" PRIx64 "\n", old, set, back);
    if (vmi_resume_vm(vmi) != VMI_SUCCESS)
        return fail(vmi, "resume");
    if (jiffies_pair(vmi, "running-jiffies"))
        return fail(vmi, "jiffies");
    vmi_destroy(vmi);
    return 0;
}
