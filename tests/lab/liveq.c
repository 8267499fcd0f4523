/*
 * liveq: drives a live guest through the LibVMI-compatible API only
 * (libvmi.h, events.h, tinyvmi.h), one command per input line, so the live
 * lab tests can hold it paused, single-step it or wait for memory events
 * while they ask QEMU's own monitor the same questions.
 *
 *   liveq TARGET                 vmi_init_complete(TARGET), e.g. qemu:SOCK
 *   liveq --kvm NAME QMP_SOCKET  vmi_init(VMI_KVM, NAME) with the socket as
 *                                VMI_INIT_DATA_KVMI_SOCKET, then paging, OS
 *   liveq --bare TARGET          vmi_init(VMI_KVM, TARGET) only (no paging,
 *                                no OS: a QEMU without a kernel)
 *
 * Prints "ready" once attached.  Each answer is one line ("- REASON" on
 * failure) unless said otherwise; stdout is flushed after every answer.
 *   pause | resume           vmi_pause_vm / vmi_resume_vm -> ok
 *   pa 0xPA LEN              physical bytes -> hex
 *   va 0xVA LEN              kernel virtual bytes (pid 0) -> hex
 *   sym NAME                 -> 0xVA
 *   kv2p 0xVA                -> 0xPA
 *   reg VCPU NAME            RIP, RSP, CR3, CR4 -> 0xVALUE
 *   vcpus                    -> N
 *   ps                       one "pid ppid name" line per process, then "end"
 *   step VCPU N              single-steps the vCPU N times: one "rip 0x.."
 *                            line per step, then "paused" (the guest stays
 *                            paused after the last step: one more pause)
 *   watch 0xVA N [0xSTOP]    a write event on the page of VA (gfn from
 *                            vmi_translate_kv2p): one "hit gla=0x.. offset=0x..
 *                            gfn=0x.. vcpu=N" line per event, then "done";
 *                            ends after N events, or at one whose gla is STOP
 *   regloop                  reads vCPU 0's RIP every 50 ms forever: "ok"
 *                            after the first; exits 4 with the reason on the
 *                            first failure
 *   quit                     vmi_destroy, exit 0
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvmi/events.h>
#include <libvmi/libvmi.h>
#include <tinyvmi/tinyvmi.h>

#define EVENT_WAIT_MS 30000

static void fail(vmi_instance_t vmi)
{
    printf("- %s\n", tinyvmi_last_error(vmi));
}

static void hex(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
}

static reg_t reg_by_name(const char *n)
{
    if (!strcmp(n, "RIP"))
        return RIP;
    if (!strcmp(n, "RSP"))
        return RSP;
    if (!strcmp(n, "CR3"))
        return CR3;
    if (!strcmp(n, "CR4"))
        return CR4;
    return (reg_t)-1;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

typedef struct {
    uint64_t want, got;
    addr_t stop; /* watch: end at an event with this gla (0: none) */
} count_t;

static event_response_t on_step(vmi_instance_t vmi, vmi_event_t *ev)
{
    count_t *c = ev->data;
    if (c->got >= c->want)
        return VMI_EVENT_RESPONSE_NONE;
    c->got++;
    printf("rip 0x%" PRIx64 " gla 0x%" PRIx64 " vcpu %u\n", ev->x86_regs->rip,
           ev->ss_event.gla, ev->vcpu_id);
    if (c->got == c->want && vmi_pause_vm(vmi) != VMI_SUCCESS)
        printf("- pause at the last step: %s\n", tinyvmi_last_error(vmi));
    return VMI_EVENT_RESPONSE_NONE;
}

static event_response_t on_write(vmi_instance_t vmi, vmi_event_t *ev)
{
    (void)vmi;
    count_t *c = ev->data;
    if (c->got >= c->want)
        return VMI_EVENT_RESPONSE_NONE;
    c->got++;
    printf("hit gla=0x%" PRIx64 " offset=0x%" PRIx64 " gfn=0x%" PRIx64
           " vcpu=%u access=%u\n", ev->mem_event.gla, ev->mem_event.offset,
           ev->mem_event.gfn, ev->vcpu_id, (unsigned)ev->mem_event.out_access);
    if (c->stop && ev->mem_event.gla == c->stop)
        c->want = c->got;
    return VMI_EVENT_RESPONSE_NONE;
}

/* Listens until c->got reaches c->want or EVENT_WAIT_MS pass. */
static int listen_for(vmi_instance_t vmi, count_t *c)
{
    int64_t end = now_ms() + EVENT_WAIT_MS;
    while (c->got < c->want && now_ms() < end)
        if (vmi_events_listen(vmi, 200) != VMI_SUCCESS) {
            fail(vmi);
            return -1;
        }
    if (c->got < c->want) {
        printf("- only %" PRIu64 " of %" PRIu64 " events in %d ms\n", c->got,
               c->want, EVENT_WAIT_MS);
        return -1;
    }
    return 0;
}

static int print_proc(void *arg, const tinyvmi_process_t *p)
{
    (void)arg;
    printf("%d %d %s\n", p->pid, p->ppid, p->name);
    return 0;
}

static void step(vmi_instance_t vmi, unsigned vcpu, uint64_t n)
{
    count_t c = {n, 0, 0};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_SINGLESTEP_EVENT(&ev, 1u << vcpu, on_step, 1);
    ev.data = &c;
    if (vmi_register_event(vmi, &ev) != VMI_SUCCESS) {
        fail(vmi);
        return;
    }
    int rc = listen_for(vmi, &c);
    if (vmi_clear_event(vmi, &ev, NULL) != VMI_SUCCESS && !rc) {
        fail(vmi);
        return;
    }
    if (!rc)
        printf("paused\n");
}

static void watch(vmi_instance_t vmi, addr_t va, uint64_t n, addr_t stop)
{
    addr_t pa;
    if (vmi_translate_kv2p(vmi, va, &pa) != VMI_SUCCESS) {
        fail(vmi);
        return;
    }
    count_t c = {n, 0, stop};
    vmi_event_t ev;
    memset(&ev, 0, sizeof ev);
    SETUP_MEM_EVENT(&ev, pa >> 12, VMI_MEMACCESS_W, on_write, 0);
    ev.data = &c;
    if (vmi_register_event(vmi, &ev) != VMI_SUCCESS) {
        fail(vmi);
        return;
    }
    int rc = listen_for(vmi, &c);
    if (vmi_clear_event(vmi, &ev, NULL) != VMI_SUCCESS && !rc) {
        fail(vmi);
        return;
    }
    if (!rc)
        printf("done\n");
}

static void regloop(vmi_instance_t vmi)
{
    for (int i = 0;; i++) {
        uint64_t v;
        if (vmi_get_vcpureg(vmi, &v, RIP, 0) != VMI_SUCCESS) {
            fprintf(stderr, "liveq: reading RIP: %s\n",
                    tinyvmi_last_error(vmi));
            exit(4);
        }
        if (!i) {
            printf("ok\n");
            fflush(stdout);
        }
        usleep(50000);
    }
}

static void answer(vmi_instance_t vmi, char *line)
{
    char *cmd = strtok(line, " \t\n");
    char *a = strtok(NULL, " \t\n"), *b = strtok(NULL, " \t\n");
    char *c = strtok(NULL, " \t\n");
    unsigned char buf[4096];
    addr_t v;
    if (!cmd) {
        printf("- empty line\n");
    } else if (!strcmp(cmd, "pause")) {
        if (vmi_pause_vm(vmi) == VMI_SUCCESS)
            printf("ok\n");
        else
            fail(vmi);
    } else if (!strcmp(cmd, "resume")) {
        if (vmi_resume_vm(vmi) == VMI_SUCCESS)
            printf("ok\n");
        else
            fail(vmi);
    } else if ((!strcmp(cmd, "pa") || !strcmp(cmd, "va")) && a && b) {
        size_t len = strtoul(b, NULL, 0), got = 0;
        if (len > sizeof buf)
            len = sizeof buf;
        status_t st = cmd[0] == 'p'
            ? vmi_read_pa(vmi, strtoull(a, NULL, 0), len, buf, &got)
            : vmi_read_va(vmi, strtoull(a, NULL, 0), 0, len, buf, &got);
        if (st == VMI_SUCCESS && got == len)
            hex(buf, len);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "sym") && a) {
        if (vmi_translate_ksym2v(vmi, a, &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "kv2p") && a) {
        if (vmi_translate_kv2p(vmi, strtoull(a, NULL, 0), &v) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", v);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "reg") && a && b) {
        uint64_t r;
        if (reg_by_name(b) == (reg_t)-1)
            printf("- unknown register %s\n", b);
        else if (vmi_get_vcpureg(vmi, &r, reg_by_name(b),
                                 strtoul(a, NULL, 0)) == VMI_SUCCESS)
            printf("0x%" PRIx64 "\n", r);
        else
            fail(vmi);
    } else if (!strcmp(cmd, "vcpus")) {
        printf("%u\n", vmi_get_num_vcpus(vmi));
    } else if (!strcmp(cmd, "ps")) {
        if (tinyvmi_processes(vmi, print_proc, NULL) != VMI_SUCCESS)
            fail(vmi);
        printf("end\n");
    } else if (!strcmp(cmd, "step") && a && b) {
        step(vmi, (unsigned)strtoul(a, NULL, 0), strtoull(b, NULL, 0));
    } else if (!strcmp(cmd, "watch") && a && b) {
        watch(vmi, strtoull(a, NULL, 0), strtoull(b, NULL, 0),
              c ? strtoull(c, NULL, 0) : 0);
    } else if (!strcmp(cmd, "regloop")) {
        regloop(vmi);
    } else {
        printf("- unknown command %s\n", cmd);
    }
}

int main(int argc, char **argv)
{
    vmi_instance_t vmi;
    vmi_init_error_t err;
    const char *what;
    if (argc == 4 && !strcmp(argv[1], "--kvm")) {
        what = argv[3];
        vmi_init_data_t *data = calloc(1, sizeof *data +
                                          sizeof data->entry[0]);
        if (!data)
            return 1;
        data->count = 1;
        data->entry[0].type = VMI_INIT_DATA_KVMI_SOCKET;
        data->entry[0].data = argv[3];
        if (vmi_init(&vmi, VMI_KVM, argv[2], VMI_INIT_DOMAINNAME |
                     VMI_INIT_EVENTS, data, &err) != VMI_SUCCESS) {
            fprintf(stderr, "liveq: vmi_init VMI_KVM %s: %s (error %d)\n",
                    argv[2], tinyvmi_init_error(), (int)err);
            free(data);
            return 3;
        }
        free(data);
        if (vmi_init_paging(vmi, 0) == VMI_PM_UNKNOWN ||
            vmi_init_os(vmi, VMI_CONFIG_STRING, NULL, &err) == VMI_OS_UNKNOWN) {
            fprintf(stderr, "liveq: paging/OS: %s\n", tinyvmi_last_error(vmi));
            vmi_destroy(vmi);
            return 3;
        }
    } else if (argc == 3 && !strcmp(argv[1], "--bare")) {
        what = argv[2];
        if (vmi_init(&vmi, VMI_KVM, argv[2], VMI_INIT_DOMAINNAME |
                     VMI_INIT_EVENTS, NULL, &err) != VMI_SUCCESS) {
            fprintf(stderr, "liveq: %s: %s (error %d)\n", argv[2],
                    tinyvmi_init_error(), (int)err);
            return 3;
        }
    } else if (argc == 2) {
        what = argv[1];
        if (vmi_init_complete(&vmi, argv[1], VMI_INIT_DOMAINNAME |
                              VMI_INIT_EVENTS, NULL, VMI_CONFIG_STRING, NULL,
                              &err) != VMI_SUCCESS) {
            fprintf(stderr, "liveq: %s: %s (error %d)\n", argv[1],
                    tinyvmi_init_error(), (int)err);
            return 3;
        }
    } else {
        fprintf(stderr, "usage: liveq TARGET | liveq --kvm NAME QMP_SOCKET | "
                "liveq --bare TARGET\n");
        return 2;
    }
    printf("ready\n");
    fflush(stdout);
    char line[1024];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4))
            break;
        answer(vmi, line);
        fflush(stdout);
    }
    (void)what;
    vmi_destroy(vmi);
    return 0;
}
