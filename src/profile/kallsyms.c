/*
 * kallsyms found by content.  scripts/kallsyms emits, each after an 8-byte
 * alignment: num_syms (u32), names (entries: a length of 1 byte, or of 2
 * when the first has bit 7 set, then that many token codes), markers (u32
 * offset into names of every 256th entry), token_table (256 NUL-terminated
 * strings), token_index (256 u16 offsets into the table), and the offsets
 * (s32, with relative_base, u64) or absolute addresses (u64).  Linux <= 6.3
 * puts offsets and relative_base before num_syms and may add
 * seqs_of_names between markers and token_table; 6.4+ puts offsets,
 * relative_base and seqs_of_names after token_index.
 *
 * The search anchors on the token index (256 increasing u16 starting at 0),
 * checks the token table behind it string by string, walks back to the
 * markers, finds num_syms and names whose walk lands on every marker and
 * ends at the markers, and accepts offsets only if they decode to sorted
 * addresses (kallsyms sorts by address).  Nothing is trusted alone.
 */
#include "profile/kallsyms.h"

#include "core/tv.h"

#define KS_MAX_SYMS 4000000u
#define KS_MAX_ENTRY 1024u /* token codes in one name */
#define KS_MAX_NAME 1024u  /* decoded characters, type letter included */
#define KS_MAX_TOKEN 128u  /* characters of one token */
#define KS_CHUNK ((size_t)1 << 20)
#define KS_MARKER_WINDOW ((uint64_t)64 << 20) /* markers behind the table */
#define KS_MAX_GROUP ((uint64_t)256 * (KS_MAX_ENTRY + 2))
#define KS_PAGE 4096u

/* ---- Helpers ------------------------------------------------------------------ */

static void *ks_alloc(const tv_pctx_t *ctx, size_t n)
{
    return ctx->hooks->alloc(ctx->hooks->alloc_ctx, NULL, 0, n ? n : 1);
}

static void ks_free(const tv_pctx_t *ctx, void *p, size_t n)
{
    if (p)
        ctx->hooks->alloc(ctx->hooks->alloc_ctx, p, n ? n : 1, 0);
}

/* Reads for searching: holes read as zeros (they can never look like a
 * table), so one unmapped page does not hide the rest of a chunk. */
static void rd_sparse(const tv_reader_t *r, uint64_t a, uint8_t *b, size_t n)
{
    if (r->read(r->ctx, a, b, n) == 0)
        return;
    size_t done = 0;
    while (done < n) {
        uint64_t at = a + done;
        size_t step = KS_PAGE - (size_t)(at & (KS_PAGE - 1));
        if (step > n - done)
            step = n - done;
        if (r->read(r->ctx, at, b + done, step) != 0)
            tv_memset(b + done, 0, step);
        done += step;
    }
}

/* A buffer of [at, at + len) read from the reader, holes as zeros. */
typedef struct ks_buf {
    uint8_t *p;
    uint64_t at;
    size_t len;
} ks_buf_t;

static int buf_read(const tv_pctx_t *ctx, const tv_reader_t *r, uint64_t at,
                    uint64_t len, ks_buf_t *b)
{
    if (len > ((uint64_t)256 << 20))
        return tv_pfail(ctx, TINYVMI_ERANGE, "kallsyms: %llu-byte read "
                        "refused", (unsigned long long)len);
    b->len = (size_t)len;
    b->at = at;
    b->p = ks_alloc(ctx, b->len);
    if (!b->p)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "kallsyms: out of memory");
    rd_sparse(r, at, b->p, b->len);
    return 0;
}

static void buf_free(const tv_pctx_t *ctx, ks_buf_t *b)
{
    ks_free(ctx, b->p, b->len);
    b->p = NULL;
}

/* Strict read of a piece that must be there. */
static int rd_exact(const tv_pctx_t *ctx, const tv_reader_t *r, uint64_t at,
                    void *buf, size_t n, const char *what)
{
    int rc = r->read(r->ctx, at, buf, n);
    if (rc)
        return tv_pfail(ctx, rc < 0 ? rc : TINYVMI_EIO, "kallsyms: cannot "
                        "read %s (%zu bytes at 0x%llx)", what, n,
                        (unsigned long long)at);
    return 0;
}

/* ---- Token index and table --------------------------------------------------- */

/* 256 u16 offsets: 0 first, each token at least one character long. */
static bool tokidx_ok(const uint8_t *p, uint16_t *idx)
{
    if (tv_le16(p) != 0)
        return false;
    uint32_t prev = 0;
    idx[0] = 0;
    for (unsigned i = 1; i < 256; i++) {
        uint32_t v = tv_le16(p + 2 * i);
        if (v < prev + 2 || v > prev + KS_MAX_TOKEN + 1)
            return false;
        idx[i] = (uint16_t)v;
        prev = v;
    }
    return true;
}

static bool tok_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* Whether tab[0..len) holds the 256 tokens at idx, each printable and
 * ending with a NUL exactly where the next starts; *used gets the end of
 * the last one's NUL. */
static bool toktab_ok(const uint8_t *tab, size_t len, const uint16_t *idx,
                      size_t *used)
{
    for (unsigned i = 0; i < 256; i++) {
        size_t s = idx[i];
        size_t e = i < 255 ? (size_t)idx[i + 1] - 1 : s + KS_MAX_TOKEN;
        if (e >= len && i < 255)
            return false;
        size_t k = s;
        while (k < len && k < e && tab[k])
            if (!tok_char(tab[k++]))
                return false;
        if (k == s || k >= len || tab[k] != 0 || (i < 255 && k != e))
            return false;
        if (i == 255)
            *used = k + 1;
    }
    return true;
}

/* The token table ends (with at most 7 bytes of zero padding) at the index
 * at I.  Tries each start that could fit. */
static bool find_toktab(const ks_buf_t *b, uint64_t I, const uint16_t *idx,
                        uint64_t *T, uint32_t *tlen)
{
    uint64_t last = idx[255];
    for (uint64_t gap = last + 2; gap <= last + 1 + KS_MAX_TOKEN + 8; gap++) {
        if (gap > I - b->at)
            break;
        uint64_t t = I - gap;
        size_t off = (size_t)(t - b->at), used = 0;
        if (!toktab_ok(b->p + off, (size_t)gap, idx, &used))
            continue;
        if (gap - used >= 8)
            continue;
        bool pad0 = true;
        for (size_t k = used; k < gap; k++)
            pad0 = pad0 && b->p[off + k] == 0;
        if (!pad0)
            continue;
        *T = t;
        *tlen = (uint32_t)used;
        return true;
    }
    return false;
}

/* ---- Names ---------------------------------------------------------------------- */

/* One entry at names[*pos]: its token codes' length; false if it runs past
 * len or is empty. */
static bool entry_next(const uint8_t *names, size_t len, size_t *pos,
                       size_t *code_at, size_t *ncodes)
{
    size_t p = *pos;
    if (p >= len)
        return false;
    size_t n = names[p++];
    if (n & 0x80) {
        if (p >= len)
            return false;
        n = (n & 0x7f) | ((size_t)names[p++] << 7);
    }
    if (n == 0 || n > KS_MAX_ENTRY || n > len - p)
        return false;
    *code_at = p;
    *ncodes = n;
    *pos = p + n;
    return true;
}

/* Walks count entries from pos; *pos gets the end. */
static bool walk(const uint8_t *names, size_t len, size_t *pos, uint32_t count)
{
    size_t c, n;
    for (uint32_t i = 0; i < count; i++)
        if (!entry_next(names, len, pos, &c, &n))
            return false;
    return true;
}

typedef struct ks_search {
    const tv_pctx_t *ctx;
    const tv_reader_t *r;
    uint64_t start, end;
    uint64_t I, T;
    uint32_t tlen;
    uint16_t idx[256];
} ks_search_t;

/* The markers at M: how many look right (0, then steps a group can take). */
static uint32_t marker_run(const uint32_t *m, uint32_t n)
{
    if (n == 0 || m[0] != 0)
        return 0;
    uint32_t k = 1;
    while (k < n && m[k] > m[k - 1] && m[k] - m[k - 1] >= 512 &&
           m[k] - m[k - 1] <= KS_MAX_GROUP)
        k++;
    return k;
}

/* names at S (inside buffer b) with N entries: every 256th starts at its
 * marker and the last ends within 8 zero-padded bytes of M. */
static bool names_ok(const ks_buf_t *b, uint64_t S, uint32_t N,
                     const uint32_t *m, uint64_t M, uint64_t *names_len)
{
    uint32_t K = (N + 255) / 256;
    if (S < b->at || S >= M)
        return false;
    size_t base = (size_t)(S - b->at), len = (size_t)(M - S);
    const uint8_t *names = b->p + base;
    /* Cheap first: the last group alone. */
    size_t pos = m[K - 1];
    if (pos >= len || !walk(names, len, &pos, N - 256 * (K - 1)))
        return false;
    if (len - pos >= 8)
        return false;
    for (size_t k = pos; k < len; k++)
        if (names[k])
            return false;
    size_t end = pos;
    pos = 0;
    for (uint32_t g = 0; g + 1 < K; g++) {
        if (pos != m[g] || !walk(names, len, &pos, 256))
            return false;
    }
    if (pos != m[K - 1])
        return false;
    *names_len = end;
    return true;
}

/* ---- Offsets -------------------------------------------------------------------- */

/* Address of symbol i from the offsets/addresses bytes. */
static uint64_t sym_addr(const tv_kallsyms_t *ks, const uint8_t *offs,
                         uint32_t i)
{
    if (!ks->base_relative)
        return tv_le64(offs + (size_t)i * 8);
    uint32_t raw = tv_le32(offs + (size_t)i * 4);
    if (!ks->absolute_percpu)
        return ks->relative_base + raw;
    int32_t off = (int32_t)raw;
    if (off >= 0)
        return (uint64_t)off;
    return ks->relative_base - 1 + (uint64_t)(-(int64_t)off);
}

static size_t offs_bytes(const tv_kallsyms_t *ks)
{
    return (size_t)ks->num_syms * (ks->base_relative ? 4 : 8);
}

/* Whether the offsets at ks->offsets decode to sorted addresses; sets
 * absolute_percpu from the data. */
static bool offsets_ok(const ks_search_t *s, tv_kallsyms_t *ks)
{
    size_t n = offs_bytes(ks);
    if (ks->offsets < s->start || ks->offsets > s->end ||
        n > s->end - ks->offsets)
        return false;
    uint8_t rb[8];
    if (ks->base_relative) {
        if (ks->relative_base_at < s->start ||
            ks->relative_base_at > s->end - 8 ||
            s->r->read(s->r->ctx, ks->relative_base_at, rb, 8) != 0)
            return false;
        ks->relative_base = tv_le64(rb);
        if (ks->relative_base >> 48 != 0xffff)
            return false;
    }
    uint8_t *offs = ks_alloc(s->ctx, n);
    if (!offs)
        return false;
    bool ok = s->r->read(s->r->ctx, ks->offsets, offs, n) == 0;
    ks->absolute_percpu = false;
    if (ok && ks->base_relative)
        for (uint32_t i = 0; i < ks->num_syms; i++)
            if ((int32_t)tv_le32(offs + (size_t)i * 4) < 0) {
                ks->absolute_percpu = true;
                break;
            }
    uint64_t prev = 0;
    for (uint32_t i = 0; ok && i < ks->num_syms; i++) {
        uint64_t a = sym_addr(ks, offs, i);
        ok = a >= prev;
        prev = a;
    }
    /* Addresses that are all kernel addresses, at least at the end. */
    ok = ok && prev >> 48 == 0xffff;
    ks_free(s->ctx, offs, n);
    return ok;
}

static uint64_t align8(uint64_t v)
{
    return (v + 7) & ~(uint64_t)7;
}

/* The offsets (or addresses): before num_syms (<= 6.3) or after the token
 * index (6.4+); base-relative or not. */
static bool find_offsets(const ks_search_t *s, tv_kallsyms_t *ks)
{
    uint64_t N = ks->num_syms, q = ks->num_syms_at;
    for (int rel = 1; rel >= 0; rel--) {
        ks->base_relative = rel != 0;
        /* <= 6.3 */
        ks->offsets_first = true;
        if (rel && q >= 8 + align8(4 * N)) {
            ks->relative_base_at = q - 8;
            ks->offsets = ks->relative_base_at - align8(4 * N);
            if (offsets_ok(s, ks))
                return true;
        }
        if (!rel && q >= 8 * N) {
            ks->relative_base_at = 0;
            ks->offsets = q - 8 * N;
            if (offsets_ok(s, ks))
                return true;
        }
        /* 6.4+ */
        ks->offsets_first = false;
        ks->offsets = align8(s->I + 512);
        ks->relative_base_at = rel ? align8(ks->offsets + 4 * N) : 0;
        if (offsets_ok(s, ks))
            return true;
    }
    ks->relative_base_at = 0;
    return false;
}

/* ---- Markers, num_syms, names ------------------------------------------------ */

/* Given plausible markers at M: num_syms and names behind them, then the
 * offsets.  Returns true when every piece checks. */
static bool try_markers(ks_search_t *s, uint64_t M, tv_kallsyms_t *ks)
{
    uint32_t cap = (uint32_t)((s->T - M) / 4);
    if (cap > 65536)
        cap = 65536;
    bool found = false;
    uint32_t *m = ks_alloc(s->ctx, (size_t)cap * 4);
    if (!m)
        return false;
    uint8_t *raw = (uint8_t *)m;
    rd_sparse(s->r, M, raw, (size_t)cap * 4);
    for (uint32_t i = 0; i < cap; i++)
        m[i] = tv_le32(raw + (size_t)i * 4);
    uint32_t kmax = marker_run(m, cap);
    if (kmax < 2 || M - s->start < 16)
        goto out;
    uint64_t back = m[kmax - 1] + KS_MAX_GROUP + 16;
    uint64_t lo = M - s->start < back ? s->start : M - back;
    ks_buf_t b;
    if (buf_read(s->ctx, s->r, lo, M - lo, &b))
        goto out;
    for (uint64_t q = (M - 8) & ~(uint64_t)3; q >= lo && !found; q -= 4) {
        uint32_t N = tv_le32(b.p + (q - lo));
        uint32_t K = (N + 255) / 256;
        if (N == 0 || N > KS_MAX_SYMS || K > kmax)
            goto next;
        for (uint64_t S = q + 4; S <= q + 8 && !found; S += 4) {
            if (S == q + 8 && tv_le32(b.p + (q + 4 - lo)) != 0)
                continue;
            if (S + m[K - 1] >= M)
                continue;
            uint64_t nl;
            if (names_ok(&b, S, N, m, M, &nl)) {
                ks->num_syms = N;
                ks->num_markers = K;
                ks->num_syms_at = q;
                ks->names = S;
                ks->names_len = nl;
                ks->markers = M;
                found = find_offsets(s, ks);
            }
        }
    next:
        if (q < lo + 4)
            break;
    }
    buf_free(s->ctx, &b);
out:
    ks_free(s->ctx, m, (size_t)cap * 4);
    return found;
}

/* Markers behind the token table: nearest first, up to 64 MiB back. */
static bool find_markers(ks_search_t *s, tv_kallsyms_t *ks)
{
    uint64_t lo = s->T - s->start < KS_MARKER_WINDOW ? s->start
                                                      : s->T - KS_MARKER_WINDOW;
    uint64_t ce = s->T & ~(uint64_t)3;
    size_t cap = s->T - lo < KS_CHUNK ? (size_t)(s->T - lo) : KS_CHUNK;
    uint8_t *buf = ks_alloc(s->ctx, cap + 16);
    if (!buf)
        return false;
    bool found = false;
    while (!found && ce > lo) {
        uint64_t cs = ce - lo > cap ? ce - cap : lo;
        cs = (cs + 3) & ~(uint64_t)3;
        if (cs >= ce)
            break;
        uint64_t rend = ce + 12 <= s->I ? ce + 12 : s->I;
        size_t n = (size_t)(rend - cs);
        rd_sparse(s->r, cs, buf, n);
        for (uint64_t p = ce - 4; p >= cs && !found; p -= 4) {
            size_t o = (size_t)(p - cs);
            if (o + 12 > n)
                goto next;
            uint32_t a = tv_le32(buf + o), b1 = tv_le32(buf + o + 4),
                     b2 = tv_le32(buf + o + 8);
            if (a != 0 || b1 < 512 || b1 > KS_MAX_GROUP || b2 <= b1 ||
                b2 - b1 < 512 || b2 - b1 > KS_MAX_GROUP)
                goto next;
            found = try_markers(s, p, ks);
        next:
            if (p < cs + 4)
                break;
        }
        ce = cs;
    }
    ks_free(s->ctx, buf, cap + 16);
    return found;
}

/* ---- Search ------------------------------------------------------------------------ */

static bool try_index(ks_search_t *s, uint64_t I, tv_kallsyms_t *ks)
{
    uint64_t need = (uint64_t)s->idx[255] + KS_MAX_TOKEN + 16;
    uint64_t lo = I - s->start < need ? s->start : I - need;
    ks_buf_t b;
    if (buf_read(s->ctx, s->r, lo, I - lo, &b))
        return false;
    bool ok = find_toktab(&b, I, s->idx, &s->T, &s->tlen);
    buf_free(s->ctx, &b);
    if (!ok)
        return false;
    s->I = I;
    tv_memset(ks, 0, sizeof *ks);
    if (!find_markers(s, ks))
        return false;
    ks->token_table = s->T;
    ks->token_table_len = s->tlen;
    ks->token_index = I;
    return true;
}

int tv_kallsyms_find(const tv_pctx_t *ctx, const tv_reader_t *r,
                     uint64_t start, uint64_t end, tv_kallsyms_t *ks)
{
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc || !r || !r->read || !ks)
        return TINYVMI_EINVAL;
    if (end <= start)
        return tv_pfail(ctx, TINYVMI_EINVAL, "kallsyms: empty range");
    ks_search_t s = {.ctx = ctx, .r = r, .start = start, .end = end};
    size_t cap = end - start < KS_CHUNK ? (size_t)(end - start) : KS_CHUNK;
    uint8_t *buf = ks_alloc(ctx, cap + 512);
    if (!buf)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "kallsyms: out of memory");
    unsigned tables = 0;
    bool found = false;
    uint64_t cs = (start + 3) & ~(uint64_t)3;
    while (!found && cs < end && end - cs >= 512) {
        uint64_t ce = end - cs > cap ? cs + cap : end;
        uint64_t rend = end - ce > 512 ? ce + 512 : end;
        size_t n = (size_t)(rend - cs);
        rd_sparse(r, cs, buf, n);
        for (size_t o = 0; !found && o + 512 <= n && cs + o < ce; o += 4) {
            /* Cheap filter: 0, then a first token of 1..KS_MAX_TOKEN. */
            if (buf[o] | buf[o + 1] || buf[o + 3] ||
                buf[o + 2] < 2 || buf[o + 2] > KS_MAX_TOKEN + 1)
                continue;
            if (!tokidx_ok(buf + o, s.idx))
                continue;
            tables++;
            found = try_index(&s, cs + o, ks);
        }
        cs = ce;
    }
    ks_free(ctx, buf, cap + 512);
    if (found)
        return 0;
    if (!tables)
        return tv_pfail(ctx, TINYVMI_ENOENT, "kallsyms: no token index in "
                        "0x%llx-0x%llx", (unsigned long long)start,
                        (unsigned long long)end);
    return tv_pfail(ctx, TINYVMI_ENOENT, "kallsyms: %u token index "
                    "candidate%s in 0x%llx-0x%llx, none with a token table, "
                    "markers, names and sorted offsets", tables,
                    tables == 1 ? "" : "s", (unsigned long long)start,
                    (unsigned long long)end);
}

/* ---- Decoding ------------------------------------------------------------------ */

int tv_kallsyms_each(const tv_pctx_t *ctx, const tv_reader_t *r,
                     const tv_kallsyms_t *ks, tv_kallsyms_fn fn, void *arg)
{
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc || !r || !r->read || !ks ||
        !fn)
        return TINYVMI_EINVAL;
    if (ks->num_syms == 0 || ks->num_syms > KS_MAX_SYMS ||
        ks->names_len > ((uint64_t)256 << 20) ||
        ks->token_table_len == 0 || ks->token_table_len > 65536)
        return tv_pfail(ctx, TINYVMI_EFORMAT, "kallsyms: implausible table "
                        "sizes (%u symbols, %llu bytes of names)",
                        ks->num_syms, (unsigned long long)ks->names_len);
    size_t nlen = (size_t)ks->names_len, tlen = ks->token_table_len;
    size_t olen = offs_bytes(ks);
    uint8_t *names = ks_alloc(ctx, nlen), *tab = ks_alloc(ctx, tlen),
            *offs = ks_alloc(ctx, olen);
    uint8_t rawidx[512];
    uint16_t idx[256];
    char name[KS_MAX_NAME + KS_MAX_TOKEN + 2];
    int rc = 0;
    if (!names || !tab || !offs) {
        rc = tv_pfail(ctx, TINYVMI_ENOMEM, "kallsyms: out of memory");
        goto out;
    }
    if ((rc = rd_exact(ctx, r, ks->names, names, nlen, "names")) ||
        (rc = rd_exact(ctx, r, ks->token_table, tab, tlen, "token table")) ||
        (rc = rd_exact(ctx, r, ks->token_index, rawidx, 512, "token index")) ||
        (rc = rd_exact(ctx, r, ks->offsets, offs, olen, "offsets")))
        goto out;
    size_t used = 0;
    /* Memory may have changed since the search: check again. */
    if (!tokidx_ok(rawidx, idx) || !toktab_ok(tab, tlen, idx, &used)) {
        rc = tv_pfail(ctx, TINYVMI_EFORMAT, "kallsyms: token table at "
                      "0x%llx no longer valid",
                      (unsigned long long)ks->token_table);
        goto out;
    }
    size_t pos = 0;
    for (uint32_t i = 0; i < ks->num_syms; i++) {
        size_t at, n, len = 0;
        if (!entry_next(names, nlen, &pos, &at, &n)) {
            rc = tv_pfail(ctx, TINYVMI_EFORMAT, "kallsyms: name %u at "
                          "offset %zu runs past the names (%zu bytes)", i,
                          pos, nlen);
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            const char *tok = (const char *)tab + idx[names[at + k]];
            while (*tok && len < KS_MAX_NAME)
                name[len++] = *tok++;
            if (*tok) {
                rc = tv_pfail(ctx, TINYVMI_EFORMAT, "kallsyms: name %u "
                              "longer than %u characters", i, KS_MAX_NAME);
                goto out;
            }
        }
        if (len < 2) {
            rc = tv_pfail(ctx, TINYVMI_EFORMAT, "kallsyms: name %u is empty",
                          i);
            goto out;
        }
        name[len] = 0;
        rc = fn(arg, name + 1, len - 1, sym_addr(ks, offs, i), name[0]);
        if (rc)
            goto out;
    }
out:
    ks_free(ctx, names, nlen);
    ks_free(ctx, tab, tlen);
    ks_free(ctx, offs, olen);
    return rc;
}

static int add_one(void *arg, const char *name, size_t len, uint64_t addr,
                   char type)
{
    return tv_symtab_add_symbol(arg, name, len, addr, type);
}

int tv_kallsyms_load(const tv_pctx_t *ctx, const tv_reader_t *r,
                     const tv_kallsyms_t *ks, tv_symtab_t *t)
{
    if (!t)
        return TINYVMI_EINVAL;
    int rc = tv_kallsyms_each(ctx, r, ks, add_one, t);
    if (rc > 0)
        rc = TINYVMI_EFORMAT;
    return rc;
}
