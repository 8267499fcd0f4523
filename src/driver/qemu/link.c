/*
 * Sockets with deadlines, QMP and the gdb remote serial protocol (see
 * link.h).  Hosted code.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/tv.h"
#include "driver/qemu/link.h"
#include "driver/qemu/parse.h"
#include "profile/json.h"

#define QMP_LINE_MAX (64u << 20) /* `info mtree` of a big machine fits */
#define RSP_PKT_MAX (1u << 20)

int64_t tv_link_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
    int64_t left = deadline - tv_link_now_ms();
    return left < 0 ? 0 : left > 1000000000 ? 1000000000 : (int)left;
}

static int wait_fd(int fd, short ev, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int64_t deadline = tv_link_now_ms() + timeout_ms;
    for (;;) {
        int rc = poll(&p, 1, left_ms(deadline));
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static int connect_unix(const char *path, char *why, size_t n)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(why, n, "socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(why, n, "cannot connect to %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int connect_tcp(const char *hostport, int timeout_ms, char *why,
                       size_t n)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) {
        snprintf(why, n, "bad TCP address %s (want HOST:PORT)", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints,
                          &ai);
    if (gai != 0) {
        snprintf(why, n, "%s: %s", hostport, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
    int rc = fd < 0 ? -1 : connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && fd >= 0 && errno == EINPROGRESS &&
        wait_fd(fd, POLLOUT, timeout_ms) > 0) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        rc = err ? -1 : 0;
    }
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(why, n, "cannot connect to %s: %s", hostport,
                 strerror(errno ? errno : ETIMEDOUT));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int tv_link_connect(const char *spec, int timeout_ms, char *why, size_t n)
{
    if (!strncmp(spec, "tcp:", 4))
        return connect_tcp(spec + 4, timeout_ms, why, n);
    if (!strncmp(spec, "unix:", 5))
        spec += 5;
    return connect_unix(spec, why, n);
}

int tv_link_resolve(const char *spec, struct sockaddr_storage *sa,
                    unsigned *salen)
{
    memset(sa, 0, sizeof *sa);
    if (!strncmp(spec, "tcp:", 4)) {
        char host[256];
        const char *hp = spec + 4, *colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= sizeof host)
            return TINYVMI_EINVAL;
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = '\0';
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        if (getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &ai))
            return TINYVMI_ENOENT;
        memcpy(sa, ai->ai_addr, ai->ai_addrlen);
        *salen = (unsigned)ai->ai_addrlen;
        freeaddrinfo(ai);
        return TINYVMI_OK;
    }
    if (!strncmp(spec, "unix:", 5))
        spec += 5;
    struct sockaddr_un *un = (struct sockaddr_un *)sa;
    if (strlen(spec) >= sizeof un->sun_path)
        return TINYVMI_EINVAL;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, spec, strlen(spec) + 1);
    *salen = sizeof *un;
    return TINYVMI_OK;
}

int tv_link_send(int fd, const void *buf, size_t len, int timeout_ms,
                 char *why, size_t n)
{
    const char *p = buf;
    int64_t deadline = tv_link_now_ms() + timeout_ms;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, left_ms(deadline)) > 0)
                continue;
            snprintf(why, n, "QEMU does not take our request (timed out)");
            return TINYVMI_ETIMEDOUT;
        }
        snprintf(why, n, "QEMU closed the connection (%s)", strerror(errno));
        return TINYVMI_EIO;
    }
    return TINYVMI_OK;
}

long tv_link_recv(int fd, void *buf, size_t cap, int timeout_ms, char *why,
                  size_t n)
{
    int w = wait_fd(fd, POLLIN, timeout_ms);
    if (w == 0) {
        snprintf(why, n, "QEMU did not answer in %d ms", timeout_ms);
        return TINYVMI_ETIMEDOUT;
    }
    ssize_t r = w < 0 ? -1 : recv(fd, buf, cap, MSG_DONTWAIT);
    if (r > 0)
        return (long)r;
    if (r == 0)
        snprintf(why, n, "QEMU closed the connection (has it exited?)");
    else
        snprintf(why, n, "reading from QEMU: %s", strerror(errno));
    return TINYVMI_EIO;
}

bool tv_link_readable(int fd, int timeout_ms)
{
    return wait_fd(fd, POLLIN, timeout_ms) > 0;
}

/* Grows *buf to at least need bytes (doubling from first), refusing to go
 * past max: a peer cannot make us allocate without bound. */
static int grow(char **buf, size_t *cap, size_t need, size_t first,
                size_t max, char *why, size_t n, const char *what)
{
    if (need <= *cap)
        return TINYVMI_OK;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    if (ncap > max) {
        snprintf(why, n, "%s longer than %zu bytes", what, max);
        return TINYVMI_ERANGE;
    }
    char *p = realloc(*buf, ncap);
    if (!p)
        return TINYVMI_ENOMEM;
    *buf = p;
    *cap = ncap;
    return TINYVMI_OK;
}

/* ---- QMP ---------------------------------------------------------------- */

/* The next line, NUL-terminated in place (CR and LF dropped); *line points
 * into q->in and stays valid until the next read. */
static int qmp_line(tv_qmp_t *q, char **line, size_t *len,
                    int64_t deadline, size_t *consumed)
{
    for (;;) {
        char *nl = q->inlen ? memchr(q->in, '\n', q->inlen) : NULL;
        if (nl) {
            *nl = '\0';
            *line = q->in;
            *len = (size_t)(nl - q->in);
            *consumed = *len + 1;
            if (*len && q->in[*len - 1] == '\r')
                q->in[--*len] = '\0';
            return TINYVMI_OK;
        }
        int rc = grow(&q->in, &q->incap, q->inlen + 4096, 65536,
                      QMP_LINE_MAX, q->why, sizeof q->why, "a QMP reply");
        if (rc)
            return rc;
        long r = tv_link_recv(q->fd, q->in + q->inlen, q->incap - q->inlen - 1,
                              left_ms(deadline), q->why, sizeof q->why);
        if (r < 0)
            return (int)r;
        q->inlen += (size_t)r;
    }
}

static void qmp_consume(tv_qmp_t *q, size_t n)
{
    memmove(q->in, q->in + n, q->inlen - n);
    q->inlen -= n;
}

/* What kind of message a line is: 'r' return (value located), 'e' error
 * (description in q->why), 'v' event, 'g' greeting; -1 malformed. */
static int qmp_classify(tv_qmp_t *q, const char *line, size_t len)
{
    tv_json_t j;
    tv_jval_t v, k;
    int kind = -1, rc;
    tv_json_init(&j, line, len);
    if (tv_json_next(&j, &v) || v.type != TV_J_OBJ)
        return -1;
    while ((rc = tv_json_key(&j, &k)) > 0) {
        if (tv_json_eq(&k, "return")) {
            size_t start = j.pos;
            if (tv_json_skip(&j))
                return -1;
            while (start < j.pos && (line[start] == ' ' || line[start] == ':'))
                start++;
            q->ret = line + start;
            q->retlen = j.pos - start;
            kind = 'r';
        } else if (tv_json_eq(&k, "error")) {
            kind = 'e';
            snprintf(q->why, sizeof q->why, "QEMU refused the command");
            if (tv_json_next(&j, &v) || v.type != TV_J_OBJ)
                return -1;
            while ((rc = tv_json_key(&j, &k)) > 0) {
                if (tv_json_eq(&k, "desc") && !tv_json_next(&j, &v) &&
                    v.type == TV_J_STR) {
                    char desc[200];
                    size_t n = tv_json_decode(&v, desc, sizeof desc - 1);
                    desc[n < sizeof desc ? n : sizeof desc - 1] = '\0';
                    snprintf(q->why, sizeof q->why, "QEMU: %s", desc);
                } else if (tv_json_skip(&j)) {
                    return -1;
                }
            }
            if (rc < 0)
                return -1;
        } else if (tv_json_eq(&k, "event")) {
            kind = 'v';
            if (tv_json_skip(&j))
                return -1;
        } else if (tv_json_eq(&k, "QMP")) {
            kind = 'g';
            if (tv_json_skip(&j))
                return -1;
        } else if (tv_json_skip(&j)) {
            return -1;
        }
    }
    return rc < 0 ? -1 : kind;
}

/* Reads messages until one of the wanted kinds. */
static int qmp_wait(tv_qmp_t *q, const char *want, int timeout_ms)
{
    int64_t deadline = tv_link_now_ms() + timeout_ms;
    qmp_consume(q, q->used); /* the reply the caller was reading */
    q->used = 0;
    q->ret = NULL;
    q->retlen = 0;
    for (unsigned n = 0; n < 100000; n++) {
        char *line = NULL;
        size_t len = 0, used = 0;
        int rc = qmp_line(q, &line, &len, deadline, &used);
        if (rc)
            return rc;
        int kind = qmp_classify(q, line, len);
        if (kind < 0) {
            snprintf(q->why, sizeof q->why, "QMP sent something that is "
                     "not a QMP message: %.60s", line);
            return TINYVMI_EFORMAT;
        }
        q->used = used;
        if (strchr(want, kind))
            return kind == 'e' ? TINYVMI_EIO : TINYVMI_OK;
        qmp_consume(q, used);
        q->used = 0;
    }
    snprintf(q->why, sizeof q->why, "QMP sent only events");
    return TINYVMI_EFORMAT;
}

void tv_qmp_drain(tv_qmp_t *q)
{
    if (q->fd < 0)
        return;
    qmp_consume(q, q->used); /* the last reply is read by now */
    q->used = 0;
    q->ret = NULL;
    q->retlen = 0;
    for (int round = 0; round < 64 && tv_link_readable(q->fd, 0); round++) {
        char *line = NULL;
        size_t len = 0, used = 0;
        if (qmp_line(q, &line, &len, tv_link_now_ms(), &used))
            return;
        qmp_consume(q, used); /* an event nobody waits for */
    }
}

int tv_qmp_open(tv_qmp_t *q, const char *path, int timeout_ms)
{
    *q = (tv_qmp_t){.fd = -1};
    q->fd = tv_link_connect(path, timeout_ms, q->why, sizeof q->why);
    if (q->fd < 0)
        return TINYVMI_ENOENT;
    int rc = qmp_wait(q, "g", timeout_ms);
    if (rc == TINYVMI_ETIMEDOUT)
        snprintf(q->why, sizeof q->why,
                 "%s sends no QMP greeting: is another client connected? "
                 "(a QMP socket serves one client at a time)", path);
    if (!rc)
        rc = tv_qmp_exec(q, "qmp_capabilities", NULL, timeout_ms);
    if (rc) {
        char why[TV_LINK_ERR];
        snprintf(why, sizeof why, "%s", q->why);
        tv_qmp_close(q);
        snprintf(q->why, sizeof q->why, "%s", why);
    }
    return rc;
}

void tv_qmp_close(tv_qmp_t *q)
{
    if (q->fd >= 0)
        close(q->fd);
    free(q->in);
    q->fd = -1;
    q->in = NULL;
    q->inlen = q->incap = q->used = 0;
    q->ret = NULL;
}

bool tv_json_quote(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap < 3)
        return false;
    buf[o++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t n;
        if (c == '"' || c == '\\')
            n = (size_t)snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20)
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        else
            n = (size_t)snprintf(esc, sizeof esc, "%c", c);
        if (o + n + 2 > cap)
            return false;
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return true;
}

int tv_qmp_exec(tv_qmp_t *q, const char *cmd, const char *args,
                int timeout_ms)
{
    char *msg = NULL;
    int len = asprintf(&msg, "{\"execute\":\"%s\"%s%s}\n", cmd,
                       args ? ",\"arguments\":" : "", args ? args : "");
    if (len < 0)
        return TINYVMI_ENOMEM;
    int rc = tv_link_send(q->fd, msg, (size_t)len, timeout_ms, q->why,
                          sizeof q->why);
    free(msg);
    if (!rc)
        rc = qmp_wait(q, "re", timeout_ms);
    return rc;
}

int tv_qmp_hmp(tv_qmp_t *q, const char *line, char **out, int timeout_ms)
{
    return tv_qmp_hmp_cpu(q, line, -1, out, timeout_ms);
}

int tv_qmp_hmp_cpu(tv_qmp_t *q, const char *line, int cpu, char **out,
                   int timeout_ms)
{
    char quoted[512], args[640];
    *out = NULL;
    if (!tv_json_quote(line, quoted, sizeof quoted))
        return TINYVMI_EINVAL;
    if (cpu >= 0)
        snprintf(args, sizeof args, "{\"command-line\":%s,\"cpu-index\":%d}",
                 quoted, cpu);
    else
        snprintf(args, sizeof args, "{\"command-line\":%s}", quoted);
    int rc = tv_qmp_exec(q, "human-monitor-command", args, timeout_ms);
    if (rc)
        return rc;
    tv_json_t j;
    tv_jval_t v;
    tv_json_init(&j, q->ret, q->retlen);
    if (tv_json_next(&j, &v) || v.type != TV_J_STR) {
        snprintf(q->why, sizeof q->why, "HMP %s: the reply is not text", line);
        return TINYVMI_EFORMAT;
    }
    *out = malloc(v.len + 1);
    if (!*out)
        return TINYVMI_ENOMEM;
    size_t n = tv_json_decode(&v, *out, v.len);
    (*out)[n] = '\0';
    return TINYVMI_OK;
}

/* ---- The gdb remote serial protocol ------------------------------------- */

int tv_rsp_open(tv_rsp_t *r, const char *spec, int timeout_ms)
{
    *r = (tv_rsp_t){.fd = -1, .max_pkt = 4096};
    r->fd = tv_link_connect(spec, timeout_ms, r->why, sizeof r->why);
    return r->fd < 0 ? TINYVMI_ENOENT : TINYVMI_OK;
}

void tv_rsp_close(tv_rsp_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->pkt);
    r->fd = -1;
    r->pkt = NULL;
    r->len = r->cap = 0;
}

static int rsp_byte(tv_rsp_t *r, int64_t deadline)
{
    if (r->inpos == r->inlen) {
        long n = tv_link_recv(r->fd, r->in, sizeof r->in, left_ms(deadline),
                              r->why, sizeof r->why);
        if (n < 0)
            return (int)n;
        r->inpos = 0;
        r->inlen = (size_t)n;
    }
    return r->in[r->inpos++];
}

static int rsp_put(tv_rsp_t *r, char c)
{
    int rc = grow(&r->pkt, &r->cap, r->len + 2, 4096, RSP_PKT_MAX, r->why,
                  sizeof r->why, "a gdbstub packet");
    if (rc)
        return rc;
    r->pkt[r->len++] = c;
    return TINYVMI_OK;
}

int tv_rsp_send(tv_rsp_t *r, int timeout_ms, const char *fmt, ...)
{
    char body[4096 + 8];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body + 1, sizeof body - 8, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof body - 8)
        return TINYVMI_ERANGE;
    unsigned sum = 0;
    for (int i = 1; i <= n; i++)
        sum += (unsigned char)body[i];
    body[0] = '$';
    snprintf(body + n + 1, 4, "#%02x", sum & 0xff);
    int64_t deadline = tv_link_now_ms() + timeout_ms;
    for (int tries = 0; tries < 3; tries++) {
        int rc = tv_link_send(r->fd, body, (size_t)n + 4, timeout_ms, r->why,
                              sizeof r->why);
        if (rc || r->noack)
            return rc;
        int c = rsp_byte(r, deadline);
        if (c < 0)
            return c;
        if (c == '+')
            return TINYVMI_OK;
        if (c != '-') { /* a packet while we wait for the ack: keep it */
            r->inpos--;
            return TINYVMI_OK;
        }
    }
    snprintf(r->why, sizeof r->why, "the gdbstub keeps refusing a packet");
    return TINYVMI_EIO;
}

int tv_rsp_recv(tv_rsp_t *r, int timeout_ms)
{
    int64_t deadline = tv_link_now_ms() + timeout_ms;
    for (int tries = 0; tries < 8; tries++) {
        int c;
        do { /* acks and noise before the packet */
            c = rsp_byte(r, deadline);
        } while (c >= 0 && c != '$');
        if (c < 0)
            return c;
        r->len = 0;
        unsigned sum = 0;
        int prev = -1, rc = 0;
        while ((c = rsp_byte(r, deadline)) >= 0 && c != '#') {
            sum += (unsigned)c;
            if (c == '}') { /* escape: next byte ^ 0x20 */
                int e = rsp_byte(r, deadline);
                if (e < 0)
                    return e;
                sum += (unsigned)e;
                c = e ^ 0x20;
            } else if (c == '*' && prev >= 0) { /* run length */
                int e = rsp_byte(r, deadline);
                if (e < 0)
                    return e;
                sum += (unsigned)e;
                for (int k = 0; k < e - 29 && !rc; k++)
                    rc = rsp_put(r, (char)prev);
                if (rc)
                    return rc;
                continue;
            }
            if ((rc = rsp_put(r, (char)c)))
                return rc;
            prev = c;
        }
        if (c < 0)
            return c;
        int h = rsp_byte(r, deadline), l = h < 0 ? h : rsp_byte(r, deadline);
        if (l < 0)
            return l;
        if ((rc = rsp_put(r, '\0'))) /* room for the terminator */
            return rc;
        r->len--;
        const char cs[2] = {(char)h, (char)l};
        bool ok = tv_gdb_hex_byte(cs) == (int)(sum & 0xff);
        if (r->noack)
            return TINYVMI_OK;
        int rc2 = tv_link_send(r->fd, ok ? "+" : "-", 1, left_ms(deadline),
                               r->why, sizeof r->why);
        if (rc2 || ok)
            return rc2;
    }
    snprintf(r->why, sizeof r->why, "the gdbstub keeps sending bad packets");
    return TINYVMI_EFORMAT;
}

int tv_rsp_call(tv_rsp_t *r, int timeout_ms, const char *fmt, ...)
{
    char body[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof body)
        return TINYVMI_ERANGE;
    int rc = tv_rsp_send(r, timeout_ms, "%s", body);
    if (!rc)
        rc = tv_rsp_recv(r, timeout_ms);
    if (!rc && r->len == 3 && r->pkt[0] == 'E') {
        snprintf(r->why, sizeof r->why, "the gdbstub refused %.40s (error %s)",
                 body, r->pkt + 1);
        rc = TINYVMI_EIO;
    }
    return rc;
}

int tv_rsp_interrupt(tv_rsp_t *r, int timeout_ms)
{
    return tv_link_send(r->fd, "\x03", 1, timeout_ms, r->why, sizeof r->why);
}

bool tv_rsp_pending(tv_rsp_t *r, int timeout_ms)
{
    return r->inpos < r->inlen || tv_link_readable(r->fd, timeout_ms);
}
