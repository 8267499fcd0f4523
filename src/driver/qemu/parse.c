/*
 * Parsers for QEMU's replies (see parse.h).  Hosted code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmi/events.h>

#include "driver/qemu/parse.h"

/* ---- info mtree -f -------------------------------------------------------- */

static int add_range(const tv_qm_backend_id_t *be, size_t b, uint64_t start,
                     uint64_t size, uint64_t off, tv_range_t *out, size_t cap,
                     size_t *n, char *why, size_t whylen)
{
    if (off > be[b].size || size > be[b].size - off) {
        snprintf(why, whylen, "QEMU maps 0x%llx+0x%llx of %s, beyond its "
                 "0x%llx bytes", (unsigned long long)off,
                 (unsigned long long)size, be[b].id,
                 (unsigned long long)be[b].size);
        return TINYVMI_EFORMAT;
    }
    uint64_t roff = ((uint64_t)b << TV_QM_BACKEND_SHIFT) | off;
    tv_range_t *last = *n ? &out[*n - 1] : NULL;
    if (last && start < last->start + last->size) {
        snprintf(why, whylen, "QEMU's memory map is not in address order "
                 "(0x%llx)", (unsigned long long)start);
        return TINYVMI_EFORMAT;
    }
    if (last && last->start + last->size == start &&
        last->offset + last->size == roff) {
        last->size += size;
        return TINYVMI_OK;
    }
    if (*n == cap) {
        snprintf(why, whylen, "more than %zu RAM ranges", cap);
        return TINYVMI_ERANGE;
    }
    out[(*n)++] = (tv_range_t){start, size, roff};
    return TINYVMI_OK;
}

/* "  START-END (prio P, KIND): NAME [@OFF] ..." */
static bool mtree_line(const char *line, uint64_t *s, uint64_t *e,
                       char *name, size_t cap, uint64_t *off)
{
    char *end;
    while (*line == ' ')
        line++;
    *s = strtoull(line, &end, 16);
    if (end == line || *end != '-')
        return false;
    line = end + 1;
    *e = strtoull(line, &end, 16);
    if (end == line || *e < *s || strncmp(end, " (", 2))
        return false;
    const char *colon = strstr(end, "): ");
    if (!colon)
        return false;
    const char *nm = colon + 3;
    size_t len = strcspn(nm, " \t\r");
    if (!len || len >= cap)
        return false;
    memcpy(name, nm, len);
    name[len] = '\0';
    const char *at = nm[len] == ' ' && nm[len + 1] == '@' ? nm + len + 2 : NULL;
    *off = at ? strtoull(at, NULL, 16) : 0;
    return true;
}

int tv_qemu_mtree(char *text, const tv_qm_backend_id_t *be, size_t nbe,
                  tv_range_t *out, size_t cap, size_t *n, char *why,
                  size_t whylen)
{
    bool in_memory = false, seen = false;
    *n = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') /* HMP ends lines with CRLF */
            line[ll - 1] = '\0';
        if (!strncmp(line, "FlatView", 8)) {
            in_memory = false;
            continue;
        }
        if (!strncmp(line, " AS \"memory\",", 13)) {
            in_memory = seen = true;
            continue;
        }
        uint64_t s, e, off;
        char name[80];
        if (!in_memory || !mtree_line(line, &s, &e, name, sizeof name, &off))
            continue;
        if (e - s == UINT64_MAX)
            continue; /* the whole address space: not RAM */
        for (size_t b = 0; b < nbe; b++) {
            if (strcmp(name, be[b].id))
                continue;
            int rc = add_range(be, b, s, e - s + 1, off, out, cap, n, why,
                               whylen);
            if (rc)
                return rc;
        }
    }
    if (!seen || !*n) {
        snprintf(why, whylen, "cannot find guest RAM in QEMU's memory map "
                 "(info mtree -f)");
        return TINYVMI_EFORMAT;
    }
    return TINYVMI_OK;
}

/* ---- Target descriptions ---------------------------------------------------- */

/* An attribute's value inside one tag [tag, end), into out. */
static bool xml_attr(const char *tag, const char *end, const char *attr,
                     char *out, size_t cap)
{
    size_t alen = strlen(attr);
    for (const char *p = tag + 1; p + alen + 2 < end; p++) {
        char q = p[alen + 1];
        if ((p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n') ||
            strncmp(p, attr, alen) || p[alen] != '=' || (q != '"' && q != '\''))
            continue;
        const char *v = p + alen + 2;
        const char *ve = memchr(v, q, (size_t)(end - v));
        if (!ve || (size_t)(ve - v) >= cap)
            return false;
        memcpy(out, v, (size_t)(ve - v));
        out[ve - v] = '\0';
        return true;
    }
    return false;
}

int tv_gdb_xml(const char *xml, long *num,
               int (*reg)(void *arg, const char *name, long num, long bits),
               int (*inc)(void *arg, const char *href), void *arg)
{
    int rc = 0;
    for (const char *p = xml; !rc && (p = strchr(p, '<'));) {
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p + 4, "-->");
            if (!e)
                break;
            p = e + 3;
            continue;
        }
        const char *end = strchr(p, '>');
        if (!end)
            break;
        char name[64], bits[16], href[128], n[16];
        if (!strncmp(p, "<reg", 4) && (p[4] == ' ' || p[4] == '\t' ||
                                       p[4] == '\n')) {
            if (xml_attr(p + 4, end, "regnum", n, sizeof n))
                *num = strtol(n, NULL, 10);
            if (xml_attr(p + 4, end, "name", name, sizeof name) &&
                xml_attr(p + 4, end, "bitsize", bits, sizeof bits))
                rc = reg(arg, name, *num, strtol(bits, NULL, 10));
            (*num)++;
        } else if (!strncmp(p, "<xi:include", 11) &&
                   xml_attr(p + 11, end, "href", href, sizeof href)) {
            rc = inc(arg, href);
        }
        p = end + 1;
    }
    return rc;
}

/* ---- info registers ------------------------------------------------------------ */

static const struct {
    const char *name;
    reg_t sel, base, limit, ar;
} seg_names[] = {
    {"ES", ES_SEL, ES_BASE, ES_LIMIT, ES_ARBYTES},
    {"CS", CS_SEL, CS_BASE, CS_LIMIT, CS_ARBYTES},
    {"SS", SS_SEL, SS_BASE, SS_LIMIT, SS_ARBYTES},
    {"DS", DS_SEL, DS_BASE, DS_LIMIT, DS_ARBYTES},
    {"FS", FS_SEL, FS_BASE, FS_LIMIT, FS_ARBYTES},
    {"GS", GS_SEL, GS_BASE, GS_LIMIT, GS_ARBYTES},
    {"LDT", LDTR_SEL, LDTR_BASE, LDTR_LIMIT, LDTR_ARBYTES},
    {"TR", TR_SEL, TR_BASE, TR_LIMIT, TR_ARBYTES},
};

static const struct {
    const char *name;
    reg_t reg;
} plain_names[] = {
    {"DR0", DR0}, {"DR1", DR1}, {"DR2", DR2}, {"DR3", DR3},
    {"DR6", DR6}, {"DR7", DR7},
};

static void put(uint64_t *out, uint8_t *valid, reg_t r, uint64_t v,
                unsigned *n)
{
    out[r] = v;
    valid[r] = 1;
    ++*n;
}

/* "NAME =SSSS BASE LIMIT FLAGS ..." or "GDT=     BASE LIMIT" */
static void seg_line(const char *line, uint64_t *out, uint8_t *valid,
                     unsigned *n)
{
    size_t nl = strcspn(line, " =");
    const char *eq = strchr(line, '=');
    if (!eq || nl == 0 || nl > 3)
        return;
    unsigned long long v[4];
    char *end;
    const char *p = eq + 1;
    int k = 0;
    for (; k < 4; k++) {
        while (*p == ' ')
            p++;
        v[k] = strtoull(p, &end, 16);
        if (end == p)
            break;
        p = end;
    }
    if ((nl == 3 && !strncmp(line, "GDT", 3)) ||
        (nl == 3 && !strncmp(line, "IDT", 3))) {
        if (k >= 2) {
            bool g = line[0] == 'G';
            put(out, valid, g ? GDTR_BASE : IDTR_BASE, v[0], n);
            put(out, valid, g ? GDTR_LIMIT : IDTR_LIMIT, v[1], n);
        }
        return;
    }
    for (size_t i = 0; k == 4 && i < sizeof seg_names / sizeof seg_names[0];
         i++) {
        if (strlen(seg_names[i].name) != nl ||
            strncmp(line, seg_names[i].name, nl))
            continue;
        put(out, valid, seg_names[i].sel, v[0], n);
        put(out, valid, seg_names[i].base, v[1], n);
        put(out, valid, seg_names[i].limit, v[2], n);
        /* descriptor flags -> type/s/dpl/p in bits 0-7, avl/l/db/g 8-11 */
        put(out, valid, seg_names[i].ar,
            ((v[3] >> 8) & 0xff) | ((v[3] >> 12) & 0xf00), n);
    }
}

unsigned tv_qemu_info_regs(const char *text, uint64_t *out, uint8_t *valid)
{
    unsigned n = 0;
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        char buf[256];
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            seg_line(buf, out, valid, &n);
            for (char *tok = buf; (tok = strstr(tok, "DR"));) {
                for (size_t i = 0;
                     i < sizeof plain_names / sizeof plain_names[0]; i++) {
                    size_t l = strlen(plain_names[i].name);
                    if (!strncmp(tok, plain_names[i].name, l) && tok[l] == '=' &&
                        (tok == buf || tok[-1] == ' '))
                        put(out, valid, plain_names[i].reg,
                            strtoull(tok + l + 1, NULL, 16), &n);
                }
                tok += 2;
            }
        }
        line = next ? next + 1 : NULL;
    }
    return n;
}

/* ---- Stop replies -------------------------------------------------------------- */

int tv_gdb_hex_byte(const char *p)
{
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

int tv_gdb_stop(const char *pkt, tv_gdb_stop_t *out)
{
    char k = pkt[0];
    if (k != 'T' && k != 'S' && k != 'W' && k != 'X')
        return TINYVMI_EFORMAT;
    out->kind = k;
    int sig = pkt[1] ? tv_gdb_hex_byte(pkt + 1) : -1;
    if (sig < 0)
        return TINYVMI_EFORMAT;
    out->signal = (unsigned)sig;
    if (k != 'T')
        return TINYVMI_OK;
    for (const char *f = pkt + 3; *f;) {
        const char *colon = strchr(f, ':'), *semi = strchr(f, ';');
        if (!colon || !semi || colon > semi)
            return TINYVMI_EFORMAT;
        size_t klen = (size_t)(colon - f);
        const char *v = colon + 1;
        if (klen == 6 && !strncmp(f, "thread", 6)) {
            if (*v == 'p' && (v = memchr(v, '.', (size_t)(semi - v))))
                v++; /* multiprocess form pPID.TID */
            if (!v)
                return TINYVMI_EFORMAT;
            out->have_thread = true;
            out->thread = strtoul(v, NULL, 16);
        } else if ((klen == 5 && !strncmp(f, "watch", 5)) ||
                   (klen == 6 && !strncmp(f, "rwatch", 6)) ||
                   (klen == 6 && !strncmp(f, "awatch", 6))) {
            out->watch = true;
            out->watch_addr = strtoull(v, NULL, 16);
            out->watch_access = f[0] == 'w' ? VMI_MEMACCESS_W
                              : f[0] == 'r' ? VMI_MEMACCESS_R
                                            : VMI_MEMACCESS_RW;
        }
        f = semi + 1;
    }
    return TINYVMI_OK;
}
