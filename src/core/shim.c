/*
 * The core's whole "libc": a few memory and string helpers and a small
 * formatter for error messages.  In hosted builds __builtin_memcpy and
 * friends become the C library's optimised routines; in a freestanding
 * build they become calls to the definitions in shim_builtins.c.
 */
#include "core/tv.h"

void *tv_memcpy(void *dst, const void *src, size_t n)
{
    return __builtin_memcpy(dst, src, n);
}

void *tv_memset(void *dst, int c, size_t n)
{
    return __builtin_memset(dst, c, n);
}

int tv_memcmp(const void *a, const void *b, size_t n)
{
    return __builtin_memcmp(a, b, n);
}

size_t tv_strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

size_t tv_strlen(const char *s)
{
    return tv_strnlen(s, SIZE_MAX);
}

int tv_strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

/* ---- tv_vfmt ------------------------------------------------------------ */

typedef struct fmt_out {
    char *buf;
    size_t size;
    size_t len; /* length of the full output so far */
} fmt_out_t;

static void out_char(fmt_out_t *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void out_pad(fmt_out_t *o, char c, size_t n)
{
    while (n--)
        out_char(o, c);
}

typedef struct fmt_spec {
    bool left;     /* '-' */
    bool zero;     /* '0' */
    size_t width;
    size_t prec;   /* SIZE_MAX: none */
} fmt_spec_t;

static void out_str(fmt_out_t *o, const fmt_spec_t *sp, const char *s)
{
    if (!s)
        s = "(null)";
    size_t n = tv_strnlen(s, sp->prec);
    size_t pad = sp->width > n ? sp->width - n : 0;
    if (!sp->left)
        out_pad(o, ' ', pad);
    for (size_t i = 0; i < n; i++)
        out_char(o, s[i]);
    if (sp->left)
        out_pad(o, ' ', pad);
}

static void out_num(fmt_out_t *o, const fmt_spec_t *sp, uint64_t v,
                    unsigned base, bool neg, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    size_t len = n + (neg ? 1 : 0);
    size_t pad = sp->width > len ? sp->width - len : 0;
    if (!sp->left && !sp->zero)
        out_pad(o, ' ', pad);
    if (neg)
        out_char(o, '-');
    if (!sp->left && sp->zero)
        out_pad(o, '0', pad);
    while (n)
        out_char(o, tmp[--n]);
    if (sp->left)
        out_pad(o, ' ', pad);
}

/* Length modifiers: 0 int, 1 long, 2 long long, 3 size_t, 4 intmax_t. */
static uint64_t arg_unsigned(va_list *ap, int mod)
{
    switch (mod) {
    case 1: return va_arg(*ap, unsigned long);
    case 2: return va_arg(*ap, unsigned long long);
    case 3: return va_arg(*ap, size_t);
    case 4: return (uint64_t)va_arg(*ap, uintmax_t);
    default: return va_arg(*ap, unsigned int);
    }
}

static int64_t arg_signed(va_list *ap, int mod)
{
    switch (mod) {
    case 1: return va_arg(*ap, long);
    case 2: return va_arg(*ap, long long);
    case 3: return (int64_t)va_arg(*ap, size_t);
    case 4: return (int64_t)va_arg(*ap, intmax_t);
    default: return va_arg(*ap, int);
    }
}

static const char *parse_spec(const char *f, fmt_spec_t *sp, int *mod,
                              va_list *ap)
{
    *sp = (fmt_spec_t){.prec = SIZE_MAX};
    for (;; f++) {
        if (*f == '-')
            sp->left = true;
        else if (*f == '0')
            sp->zero = true;
        else
            break;
    }
    while (*f >= '0' && *f <= '9')
        sp->width = sp->width * 10 + (size_t)(*f++ - '0');
    if (*f == '.') {
        f++;
        if (*f == '*') {
            int p = va_arg(*ap, int);
            sp->prec = p < 0 ? SIZE_MAX : (size_t)p;
            f++;
        } else {
            sp->prec = 0;
            while (*f >= '0' && *f <= '9')
                sp->prec = sp->prec * 10 + (size_t)(*f++ - '0');
        }
    }
    *mod = 0;
    if (*f == 'l') {
        *mod = 1;
        if (*++f == 'l') {
            *mod = 2;
            f++;
        }
    } else if (*f == 'z') {
        *mod = 3;
        f++;
    } else if (*f == 'j') {
        *mod = 4;
        f++;
    }
    return f;
}

size_t tv_vfmt(char *buf, size_t size, const char *fmt, va_list ap0)
{
    fmt_out_t o = {buf, size, 0};
    va_list ap;
    va_copy(ap, ap0);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_char(&o, *f);
            continue;
        }
        fmt_spec_t sp;
        int mod;
        f = parse_spec(f + 1, &sp, &mod, &ap);
        switch (*f) {
        case 's': out_str(&o, &sp, va_arg(ap, const char *)); break;
        case 'c': out_char(&o, (char)va_arg(ap, int)); break;
        case 'd':
        case 'i': {
            int64_t v = arg_signed(&ap, mod);
            uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            out_num(&o, &sp, mag, 10, v < 0, false);
            break;
        }
        case 'u': out_num(&o, &sp, arg_unsigned(&ap, mod), 10, false, false); break;
        case 'x': out_num(&o, &sp, arg_unsigned(&ap, mod), 16, false, false); break;
        case 'X': out_num(&o, &sp, arg_unsigned(&ap, mod), 16, false, true); break;
        case 'p':
            out_char(&o, '0');
            out_char(&o, 'x');
            out_num(&o, &sp, (uint64_t)(uintptr_t)va_arg(ap, void *), 16,
                    false, false);
            break;
        case '%': out_char(&o, '%'); break;
        case '\0': f--; break; /* a lone '%' at the end */
        default: out_char(&o, '%'); out_char(&o, *f); break;
        }
    }
    va_end(ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

size_t tv_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = tv_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
