/*
 * dump-memory: LibVMI's example, written for TinyVMI.  Writes the VM's
 * physical memory, from 0 to its highest address, to a file; frames that
 * cannot be read are written as zeros (or skipped with --sparse).
 *   dump-memory [options] <vm> <output file>
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvmi/libvmi.h>

#define FRAME 4096u
#define PROGRESS_STRIDE (32u << 20)

static void usage(const char *prog)
{
    fprintf(stderr,
            "Usage: %s [options] <vm> <output file>\n"
            "Write a VM's physical memory to a file.\n"
            "  -p, --progress         print progress while dumping\n"
            "  -s, --sparse           leave unreadable or zero frames as "
            "holes\n"
            "      --no-pause         do not pause the VM\n"
            "  -k, --kvmi-socket <p>  the KVMi/QMP socket (VMI_KVM)\n"
            "  -h, --help             this text\n",
            prog);
}

int main(int argc, char **argv)
{
    int progress = 0, sparse = 0, pause = 1, c;
    const char *socket = NULL;
    static const struct option longs[] = {
        {"progress", no_argument, NULL, 'p'},
        {"sparse", no_argument, NULL, 's'},
        {"no-pause", no_argument, NULL, 'P'},
        {"kvmi-socket", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    while ((c = getopt_long(argc, argv, "psk:h", longs, NULL)) != -1) {
        switch (c) {
        case 'p':
            progress = 1;
            break;
        case 's':
            sparse = 1;
            break;
        case 'P':
            pause = 0;
            break;
        case 'k':
            socket = optarg;
            break;
        default:
            usage(argv[0]);
            return 1;
        }
    }
    if (argc - optind != 2) {
        usage(argv[0]);
        return 1;
    }
    const char *name = argv[optind], *path = argv[optind + 1];
    vmi_init_data_t *init_data = NULL;
    if (socket) {
        init_data = malloc(sizeof *init_data + sizeof init_data->entry[0]);
        if (!init_data)
            return 1;
        init_data->count = 1;
        init_data->entry[0].type = VMI_INIT_DATA_KVMI_SOCKET;
        init_data->entry[0].data = (void *)(uintptr_t)socket;
    }

    vmi_mode_t mode;
    if (vmi_get_access_mode(NULL, name, VMI_INIT_DOMAINNAME, init_data,
                            &mode) != VMI_SUCCESS) {
        printf("Failed to find an access mode for %s.\n", name);
        free(init_data);
        return 1;
    }
    vmi_instance_t vmi = NULL;
    if (vmi_init(&vmi, mode, name, VMI_INIT_DOMAINNAME, init_data, NULL) !=
        VMI_SUCCESS) {
        printf("Failed to initialize LibVMI library.\n");
        free(init_data);
        return 1;
    }
    int ret = 1;
    FILE *f = fopen(path, "w+b");
    if (!f) {
        printf("Failed to open file for writing: %s\n", strerror(errno));
        goto destroy;
    }
    if (pause && vmi_pause_vm(vmi) != VMI_SUCCESS) {
        printf("Failed to pause the VM.\n");
        goto close;
    }
    static unsigned char frame[FRAME], zeros[FRAME];
    addr_t max = vmi_get_max_physical_address(vmi);
    addr_t pa;
    for (pa = 0; pa < max; pa += FRAME) {
        size_t n = max - pa < FRAME ? (size_t)(max - pa) : FRAME;
        if (progress && pa % PROGRESS_STRIDE == 0)
            printf("Progress: %" PRIu64 "%%\n", (uint64_t)(pa * 100 / max));
        int empty = 1;
        if (vmi_read_pa(vmi, pa, n, frame, NULL) == VMI_SUCCESS)
            empty = memcmp(frame, zeros, n) == 0;
        if (sparse && empty) {
            if (fseeko(f, (off_t)n, SEEK_CUR) != 0) {
                printf("Failed to seek in the output file.\n");
                goto resume;
            }
            continue;
        }
        if (fwrite(empty ? zeros : frame, 1, n, f) != n) {
            printf("Failed to write a frame: %s\n", strerror(errno));
            goto resume;
        }
    }
    /* A sparse file ending in a hole needs its size set. */
    if (sparse && (fflush(f) != 0 || ftruncate(fileno(f), (off_t)max))) {
        printf("Failed to set the output file's size.\n");
        goto resume;
    }
    ret = 0;
resume:
    if (pause)
        vmi_resume_vm(vmi);
close:
    if (fclose(f) != 0 && ret == 0) {
        printf("Failed to write the output file: %s\n", strerror(errno));
        ret = 1;
    }
destroy:
    vmi_destroy(vmi);
    free(init_data);
    return ret;
}
