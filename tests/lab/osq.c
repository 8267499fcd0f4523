/*
 * osq: answers OS-layer questions about a target, one per input line,
 * through the LibVMI-compatible API only, so lab tests can ask thousands
 * of them with one start-up.
 *
 *   osq TARGET [--profile FILE | --config FILE]
 *   stdin lines:  sym NAME          -> 0xADDR | - REASON
 *                 addr 0xVA         -> name+0xoff | - REASON
 *                 read PID 0xVA LEN -> hex bytes | - REASON
 *                 dtb PID           -> 0xDTB | - REASON
 *                 offset NAME       -> 0xOFF | - REASON
 *                 member TYPE PATH  -> 0xOFF | - REASON
 *                 size TYPE         -> N | - REASON
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

static void fail(vmi_instance_t vmi)
{
    printf("- %s\n", tinyvmi_last_error(vmi));
}

static void answer(vmi_instance_t vmi, char *line)
{
    char *cmd = strtok(line, " \t\n");
    char *a = strtok(NULL, " \t\n"), *b = strtok(NULL, " \t\n");
    char *c = strtok(NULL, " \t\n");
    addr_t v;
    if (!cmd || !a) {
        printf("- bad line\n");
    } else if (!strcmp(cmd, "sym")) {
        if (vmi_translate_ksym2v(vmi, a, &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "addr")) {
        ACCESS_CONTEXT(ctx, .tm = VMI_TM_PROCESS_PID, .pid = 0);
        const char *s = vmi_translate_v2ksym(vmi, &ctx, strtoull(a, NULL, 0));
        if (s)
            printf("%s\n", s);
        else
            fail(vmi);
        free((void *)s);
    } else if (!strcmp(cmd, "read") && b && c) {
        size_t len = strtoul(c, NULL, 0);
        unsigned char buf[4096];
        if (len > sizeof buf)
            len = sizeof buf;
        if (vmi_read_va(vmi, strtoull(b, NULL, 0), (vmi_pid_t)atoi(a), len,
                        buf, NULL) != VMI_SUCCESS) {
            fail(vmi);
            return;
        }
        for (size_t i = 0; i < len; i++)
            printf("%02x", buf[i]);
        printf("\n");
    } else if (!strcmp(cmd, "dtb")) {
        if (vmi_pid_to_dtb(vmi, (vmi_pid_t)atoi(a), &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "offset")) {
        if (vmi_get_offset(vmi, a, &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "member") && b) {
        if (vmi_get_kernel_struct_offset(vmi, a, b, &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "size")) {
        size_t n;
        if (vmi_get_struct_size_from_json(vmi, vmi_get_kernel_json(vmi), a,
                                          &n) == VMI_SUCCESS)
            printf("%zu\n", n);
        else
            fail(vmi);
    } else {
        printf("- unknown question %s\n", cmd);
    }
}

int main(int argc, char **argv)
{
    vmi_config_t mode = VMI_CONFIG_STRING;
    void *config = NULL;
    if (argc == 4 && !strcmp(argv[2], "--profile")) {
        mode = VMI_CONFIG_JSON_PATH;
        config = argv[3];
    } else if (argc == 4 && !strcmp(argv[2], "--config")) {
        setenv("TINYVMI_CONF", argv[3], 1);
        mode = VMI_CONFIG_GLOBAL_FILE_ENTRY;
    } else if (argc != 2) {
        fprintf(stderr, "usage: osq TARGET [--profile FILE | --config FILE]\n");
        return 2;
    }
    vmi_instance_t vmi;
    vmi_init_error_t err;
    if (vmi_init_complete(&vmi, argv[1], VMI_INIT_DOMAINNAME, NULL, mode,
                          config, &err) != VMI_SUCCESS) {
        fprintf(stderr, "osq: %s: %s (error %d)\n", argv[1],
                tinyvmi_init_error(), (int)err);
        return 3;
    }
    char line[1024];
    while (fgets(line, sizeof line, stdin))
        answer(vmi, line);
    vmi_destroy(vmi);
    return 0;
}
