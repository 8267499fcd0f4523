/*
 * Byte links to QEMU: QMP (JSON lines over a unix socket) and the gdbstub
 * (GDB's remote serial protocol over a unix or TCP socket).  Hosted code.
 *
 * Every read and write has a deadline, so a QEMU that stops answering or
 * dies gives an error, never a hang; a peer that closes gives TINYVMI_EIO
 * with "closed the connection".  Nothing here raises SIGPIPE.
 */
#ifndef TV_QEMU_LINK_H
#define TV_QEMU_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TV_LINK_ERR 256

/* "unix:PATH", "tcp:HOST:PORT", or a bare path (a unix socket).  Returns a
 * connected descriptor, or -1 with why filled. */
int tv_link_connect(const char *spec, int timeout_ms, char *why, size_t n);
struct sockaddr_storage;
/* The address spec names, for connecting later with bare system calls. */
int tv_link_resolve(const char *spec, struct sockaddr_storage *sa,
                    unsigned *salen);
/* All of buf, or a negative TINYVMI_* status with why filled. */
int tv_link_send(int fd, const void *buf, size_t len, int timeout_ms,
                 char *why, size_t n);
/* Some bytes (> 0), or a negative status: TINYVMI_ETIMEDOUT when nothing
 * came before the deadline, TINYVMI_EIO on a closed or failed link. */
long tv_link_recv(int fd, void *buf, size_t cap, int timeout_ms, char *why,
                  size_t n);
/* Whether bytes are waiting (or the peer closed). */
bool tv_link_readable(int fd, int timeout_ms);
/* Milliseconds on a monotonic clock. */
int64_t tv_link_now_ms(void);

/* ---- QMP --------------------------------------------------------------- */

typedef struct tv_qmp {
    int fd;
    char *in;              /* received bytes not yet consumed */
    size_t inlen, incap;
    size_t used;           /* bytes of the last reply, dropped next time */
    const char *ret;       /* the last reply's "return" value, raw JSON */
    size_t retlen;
    char why[TV_LINK_ERR]; /* the last failure */
} tv_qmp_t;

/* Connects, reads the greeting and enters command mode. */
int tv_qmp_open(tv_qmp_t *q, const char *path, int timeout_ms);
void tv_qmp_close(tv_qmp_t *q);
/* Runs cmd with args (a JSON object's text, or NULL); q->ret/q->retlen is
 * the "return" value until the next call.  A QMP error is TINYVMI_EIO with
 * QEMU's description in q->why.  Asynchronous events are skipped. */
int tv_qmp_exec(tv_qmp_t *q, const char *cmd, const char *args,
                int timeout_ms);
/* Reads and drops the asynchronous events QEMU has sent meanwhile (every
 * stop and resume sends two): unread, they pile up in QEMU's memory.  The
 * last reply (q->ret) is gone after it. */
void tv_qmp_drain(tv_qmp_t *q);
/* A human monitor command; *out is its output (malloc'd, NUL-terminated). */
int tv_qmp_hmp(tv_qmp_t *q, const char *line, char **out, int timeout_ms);
/* The same as vCPU cpu sees it (for `info registers`). */
int tv_qmp_hmp_cpu(tv_qmp_t *q, const char *line, int cpu, char **out,
                   int timeout_ms);
/* s as a JSON string literal (with quotes) into buf; false if too long. */
bool tv_json_quote(const char *s, char *buf, size_t cap);

/* ---- The gdbstub ------------------------------------------------------- */

typedef struct tv_rsp {
    int fd;
    bool noack;            /* QStartNoAckMode accepted */
    char *pkt;             /* the last packet's payload, decoded, NUL-ended */
    size_t len, cap;
    uint8_t in[8192];      /* bytes read but not yet parsed */
    size_t inpos, inlen;
    size_t max_pkt;        /* the stub's PacketSize */
    char why[TV_LINK_ERR];
} tv_rsp_t;

int tv_rsp_open(tv_rsp_t *r, const char *spec, int timeout_ms);
void tv_rsp_close(tv_rsp_t *r);
/* Sends one packet (payload printf-formatted). */
int tv_rsp_send(tv_rsp_t *r, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Receives one packet into r->pkt. */
int tv_rsp_recv(tv_rsp_t *r, int timeout_ms);
/* Send and receive; an "Enn" reply is TINYVMI_EIO. */
int tv_rsp_call(tv_rsp_t *r, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The interrupt byte (^C): asks a running target to stop. */
int tv_rsp_interrupt(tv_rsp_t *r, int timeout_ms);
/* Whether a packet (or its first bytes) is waiting. */
bool tv_rsp_pending(tv_rsp_t *r, int timeout_ms);

#endif
