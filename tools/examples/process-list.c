/*
 * process-list: LibVMI's example, written for TinyVMI.  Lists the guest's
 * processes as "[  pid] name (struct addr:...)".  Linux: walks
 * init_task.tasks with the offsets vmi_get_offset gives (linux_tasks,
 * linux_pid, linux_name); Windows: PsActiveProcessHead with win_tasks,
 * win_pid, win_pname.
 */
#include "example.h"

#define MAX_TASKS 1000000 /* a list longer than this is corrupt */

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    addr_t tasks = 0, pid_off = 0, name_off = 0, head = 0, entry = 0;
    int ret = 1;

    if (ex_parse(argc, argv, 0, 0, "", "List the processes of a VM.", &o))
        return 1;
    if (ex_init(&o, 0, &vmi) != VMI_SUCCESS)
        return 1;

    os_t os = vmi_get_ostype(vmi);
    if (os == VMI_OS_LINUX) {
        if (vmi_get_offset(vmi, "linux_tasks", &tasks) != VMI_SUCCESS ||
            vmi_get_offset(vmi, "linux_name", &name_off) != VMI_SUCCESS ||
            vmi_get_offset(vmi, "linux_pid", &pid_off) != VMI_SUCCESS) {
            printf("Failed to find the task_struct offsets.\n");
            goto out;
        }
    } else if (os == VMI_OS_WINDOWS) {
        if (vmi_get_offset(vmi, "win_tasks", &tasks) != VMI_SUCCESS ||
            vmi_get_offset(vmi, "win_pname", &name_off) != VMI_SUCCESS ||
            vmi_get_offset(vmi, "win_pid", &pid_off) != VMI_SUCCESS) {
            printf("Failed to find the EPROCESS offsets.\n");
            goto out;
        }
    } else {
        printf("Unsupported or unknown OS.\n");
        goto out;
    }

    if (vmi_pause_vm(vmi) != VMI_SUCCESS) {
        printf("Failed to pause VM\n");
        goto out;
    }

    vmi_mode_t mode = VMI_FILE;
    vmi_get_access_mode(vmi, NULL, 0, NULL, &mode);
    if (mode == VMI_FILE)
        printf("Process listing for file %s\n", o.name);
    else if (o.name)
        printf("Process listing for VM %s\n", o.name);
    else
        printf("Process listing for VM (id=%" PRIu64 ")\n", o.domid);

    if (os == VMI_OS_LINUX) {
        /* The list runs through init_task (pid 0, "swapper/0"), which is
         * printed first like any other task. */
        if (vmi_translate_ksym2v(vmi, "init_task", &head) != VMI_SUCCESS) {
            printf("Failed to find init_task\n");
            goto resume;
        }
        head += tasks;
        entry = head;
    } else {
        /* The head is a bare LIST_ENTRY in the kernel, not in a process. */
        if (vmi_translate_ksym2v(vmi, "PsActiveProcessHead", &head) !=
            VMI_SUCCESS) {
            printf("Failed to find PsActiveProcessHead\n");
            goto resume;
        }
        if (vmi_read_addr_va(vmi, head, 0, &entry) != VMI_SUCCESS) {
            printf("Failed to read next pointer at %" PRIx64 "\n", head);
            goto resume;
        }
    }

    for (long n = 0;; n++) {
        if (n == MAX_TASKS) {
            printf("Task list longer than %d entries: giving up\n",
                   MAX_TASKS);
            goto resume;
        }
        if (os == VMI_OS_WINDOWS && entry == head)
            break;
        addr_t proc = entry - tasks;
        uint32_t pid = 0;
        if (vmi_read_32_va(vmi, proc + pid_off, 0, &pid) != VMI_SUCCESS) {
            printf("Failed to read the pid at %" PRIx64 "\n", proc + pid_off);
            goto resume;
        }
        char *name = vmi_read_str_va(vmi, proc + name_off, 0);
        if (!name) {
            printf("Failed to find procname\n");
            goto resume;
        }
        printf("[%5d] %s (struct addr:%" PRIx64 ")\n", (int)pid, name, proc);
        free(name);
        if (vmi_read_addr_va(vmi, entry, 0, &entry) != VMI_SUCCESS) {
            printf("Failed to read next pointer in loop at %" PRIx64 "\n",
                   entry);
            goto resume;
        }
        if (os == VMI_OS_LINUX && entry == head)
            break;
    }
    ret = 0;
resume:
    vmi_resume_vm(vmi);
out:
    vmi_destroy(vmi);
    ex_done(&o);
    return ret;
}
