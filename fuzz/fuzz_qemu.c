/* libFuzzer target: what a (hostile or broken) QEMU can send the live
 * driver.  The first byte picks the parser: the flattened memory map, a
 * gdb target description, a gdb stop reply, gdb packets on a link, QMP
 * messages on a link.  Results are checked for consistency; every failure
 * must say why. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver/qemu/link.h"
#include "driver/qemu/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_reg(void *arg, const char *name, long num, long bits)
{
    (void)arg;
    (void)num;
    (void)bits;
    if (strlen(name) >= 64)
        abort(); /* the walker's buffer bounds every name */
    return 0;
}

static int on_inc(void *arg, const char *href)
{
    (void)arg;
    return href[0] == '!'; /* exercise early stops */
}

static void fuzz_mtree(char *text)
{
    static const tv_qm_backend_id_t be[] = {{"ram0", 1ULL << 30},
                                            {"ram1", 1ULL << 20}};
    tv_range_t r[8];
    size_t n = 0;
    char why[128] = "";
    int rc = tv_qemu_mtree(text, be, 2, r, 8, &n, why, sizeof why);
    if (rc && !why[0])
        abort();
    for (size_t i = 0; !rc && i < n; i++) {
        size_t b = (size_t)(r[i].offset >> TV_QM_BACKEND_SHIFT);
        uint64_t off = r[i].offset & ((1ULL << TV_QM_BACKEND_SHIFT) - 1);
        if (b >= 2 || !r[i].size || off + r[i].size > be[b].size ||
            (i && r[i].start < r[i - 1].start + r[i - 1].size))
            abort();
    }
}

/* Feeds bytes to a link end and reads them back as the driver would. */
static void fuzz_link(const uint8_t *data, size_t size, bool qmp)
{
    int sv[2];
    if (size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return;
    if (size && write(sv[1], data, size) != (ssize_t)size) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    shutdown(sv[1], SHUT_WR);
    if (qmp) {
        tv_qmp_t q = {.fd = sv[0]};
        for (int i = 0; i < 64; i++) {
            int rc = tv_qmp_exec(&q, "query-status", NULL, 100);
            if (rc && !q.why[0])
                abort();
            if (rc == TINYVMI_EIO && strstr(q.why, "closed"))
                break;
            if (rc == TINYVMI_ETIMEDOUT || rc == TINYVMI_EFORMAT ||
                rc == TINYVMI_ERANGE)
                break;
        }
        free(q.in);
    } else {
        tv_rsp_t r = {.fd = sv[0], .max_pkt = 4096, .noack = size & 1};
        for (int i = 0; i < 64; i++) {
            if (tv_rsp_recv(&r, 100))
                break;
            if (strlen(r.pkt) > r.len)
                abort();
            tv_gdb_stop_t st = {0};
            tv_gdb_stop(r.pkt, &st);
        }
        free(r.pkt);
    }
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 5) {
    case 0:
        fuzz_mtree(text);
        break;
    case 1: {
        long num = 0;
        tv_gdb_xml(text, &num, on_reg, on_inc, NULL);
        break;
    }
    case 2: {
        tv_gdb_stop_t st = {0};
        tv_gdb_stop(text, &st);
        break;
    }
    case 3:
        fuzz_link(data + 1, size - 1, false);
        break;
    default:
        fuzz_link(data + 1, size - 1, true);
        break;
    }
    free(text);
    return 0;
}
