/*
 * The ISF writer's shared pieces (see isf.h): names, entries in
 * dwarf2json's layout, and the output file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isf.h"

/* ---- A set of names (with a value) ------------------------------------------------ */

static uint64_t nhash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 0x100000001b3ull;
    return h;
}

static bool names_grow(isf_names_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    char **key = calloc(cap, sizeof *key);
    uint32_t *val = calloc(cap, sizeof *val);
    if (!key || !val) {
        free(key);
        free(val);
        return false;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->key[i])
            continue;
        size_t j = nhash(s->key[i]) & (cap - 1);
        while (key[j])
            j = (j + 1) & (cap - 1);
        key[j] = s->key[i];
        val[j] = s->val[i];
    }
    free(s->key);
    free(s->val);
    s->key = key;
    s->val = val;
    s->cap = cap;
    return true;
}

static size_t names_slot(const isf_names_t *s, const char *name)
{
    size_t j = nhash(name) & (s->cap - 1);
    while (s->key[j] && strcmp(s->key[j], name) != 0)
        j = (j + 1) & (s->cap - 1);
    return j;
}

bool isf_names_add(isf_names_t *s, const char *name, uint32_t val, bool *oom)
{
    if ((s->n + 1) * 2 > s->cap && !names_grow(s)) {
        *oom = true;
        return false;
    }
    size_t j = names_slot(s, name);
    if (s->key[j])
        return false;
    if (!(s->key[j] = strdup(name))) {
        *oom = true;
        return false;
    }
    s->val[j] = val;
    s->n++;
    return true;
}

bool isf_names_put(isf_names_t *s, const char *name, uint32_t val)
{
    bool oom = false;
    if (isf_names_add(s, name, val, &oom) || oom)
        return !oom;
    s->val[names_slot(s, name)] = val;
    return true;
}

bool isf_names_get(const isf_names_t *s, const char *name, uint32_t *val)
{
    if (!s->cap)
        return false;
    size_t j = names_slot(s, name);
    if (!s->key[j])
        return false;
    *val = s->val[j];
    return true;
}

void isf_names_free(isf_names_t *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->key[i]);
    free(s->key);
    free(s->val);
    memset(s, 0, sizeof *s);
}

/* ---- Entries ---------------------------------------------------------------------- */

void isf_sep(FILE *f, bool *first)
{
    fputs(*first ? "\n" : ",\n", f);
    *first = false;
}

void isf_metadata(FILE *f)
{
    fprintf(f, "{\n  \"metadata\": {\"format\": \"6.2.0\", \"producer\": "
            "{\"name\": \"tinyvmi\", \"version\": \"%s\"}, \"linux\": "
            "{\"symbols\": [], \"types\": []}},\n", CLI_VERSION);
}

void isf_base(FILE *f, const char *name, uint64_t size, bool sign,
              const char *kind)
{
    fputs("    ", f);
    cli_json_str(f, name);
    fprintf(f, ": {\"endian\": \"little\", \"kind\": \"%s\", \"signed\": "
            "%s, \"size\": %" PRIu64 "}", kind, sign ? "true" : "false", size);
}

void isf_struct_begin(FILE *f, const char *name, bool is_union, uint64_t size)
{
    if (name) {
        fputs("    ", f);
        cli_json_str(f, name);
        fputs(": ", f);
    }
    fprintf(f, "{\"kind\": \"%s\", \"size\": %" PRIu64 ", \"fields\": {",
            is_union ? "union" : "struct", size);
}

void isf_struct_end(FILE *f, bool any_fields)
{
    fputs(any_fields ? "\n      }}" : "}}", f);
}

void isf_field_begin(FILE *f, bool *first, const char *name,
                     unsigned bit_length, unsigned bit_position)
{
    isf_sep(f, first);
    fputs("        ", f);
    cli_json_str(f, name);
    fputs(": {\"type\": ", f);
    if (bit_length)
        fprintf(f, "{\"bit_length\": %u, \"bit_position\": %u, \"kind\": "
                "\"bitfield\", \"type\": ", bit_length, bit_position);
}

void isf_field_end(FILE *f, uint64_t offset, unsigned bit_length, bool anon)
{
    if (bit_length)
        fputc('}', f);
    fprintf(f, ", \"offset\": %" PRIu64 "%s}", offset,
            anon ? ", \"anonymous\": true" : "");
}

void isf_anon_field(char *buf, size_t len, unsigned n)
{
    snprintf(buf, len, "unnamed_field_%x", n);
}

const char *isf_enum_base(uint64_t size, bool sign)
{
    switch (size) {
    case 1:
        return sign ? "signed char" : "unsigned char";
    case 2:
        return sign ? "short int" : "short unsigned int";
    case 8:
        return sign ? "long int" : "long unsigned int";
    default:
        return sign ? "int" : "unsigned int";
    }
}

void isf_b64(FILE *f, const uint8_t *p, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(a[(v >> 18) & 63], f);
        fputc(a[(v >> 12) & 63], f);
        fputc(i + 1 < n ? a[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? a[v & 63] : '=', f);
    }
}

/* ---- The output file -------------------------------------------------------------- */

int isf_open(const cli_t *c, isf_out_t *o)
{
    static char iobuf[1 << 20];
    o->tmp[0] = 0;
    if (!c->output) {
        o->f = stdout;
    } else {
        struct stat st;
        if (!(c->given & OPT_FORCE) && stat(c->output, &st) == 0)
            return cli_fail(c, CLI_FAILED, "%s exists (use --force to "
                            "replace it)", c->output);
        snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", c->output,
                 (long)getpid());
        if (!(o->f = fopen(o->tmp, "w")))
            return cli_fail(c, CLI_FAILED, "cannot create %s: %s", o->tmp,
                            strerror(errno));
    }
    setvbuf(o->f, iobuf, _IOFBF, sizeof iobuf);
    return CLI_OK;
}

int isf_close(const cli_t *c, isf_out_t *o, int rc)
{
    if (!o->f)
        return rc;
    if (o->f == stdout)
        return rc ? rc : cli_flush(c);
    if (fclose(o->f) != 0 && !rc)
        rc = cli_fail(c, CLI_FAILED, "writing %s: %s", o->tmp,
                      strerror(errno));
    o->f = NULL;
    if (!rc && rename(o->tmp, c->output) != 0)
        rc = cli_fail(c, CLI_FAILED, "cannot rename %s to %s: %s", o->tmp,
                      c->output, strerror(errno));
    if (rc)
        unlink(o->tmp);
    return rc;
}
