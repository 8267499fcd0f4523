/*
 * The symbol/type table (symtab.h).  Memory layout: one string arena (names
 * are 32-bit offsets into it, offset 0 is ""), arrays of fixed records, and
 * at finish open-addressing hash indexes (uint32 slots holding index + 1)
 * plus sorted index arrays for address and name order.  Duplicates are
 * resolved at finish: the first record with a name wins, later ones are
 * marked dead and skipped by every query and iteration.
 */
#include "profile/symtab.h"

#include "core/tv.h"

#define NAME_MAX_LEN (1u << 20)  /* no identifier is longer than 1 MiB */
#define ARENA_MAX 0xfff00000u    /* name offsets are 32-bit */
#define REC_MAX 0x7fffffffu      /* records per array */
#define ANON_DEPTH 16            /* nesting of anonymous members */
#define PATH_PARTS 32            /* components in a member path */

typedef struct sym {
    uint64_t addr;
    uint32_t name;
    uint32_t seq;   /* insertion order, breaks address ties */
    char type;
    uint8_t dead;
} sym_t;

typedef struct typ {
    uint64_t size;
    uint32_t name;
    uint32_t first; /* first member */
    uint32_t nmem;
    uint8_t kind;
    uint8_t dead;
} typ_t;

typedef struct mem {
    uint64_t offset;
    uint32_t name;
    uint32_t tname; /* member type's (innermost) name */
    uint32_t count;
    uint8_t kind, elem_kind, bit_pos, bit_len, anon;
} mem_t;

typedef struct cst {
    int64_t value;
    uint32_t name;
    uint8_t dead;
} cst_t;

typedef struct meta {
    uint32_t key, val;
} meta_t;

/* A growable array of fixed records. */
typedef struct vec {
    void *p;
    size_t n, cap; /* records */
} vec_t;

typedef struct hidx {
    uint32_t *slot;
    size_t mask; /* slots - 1; 0 with slot NULL: empty index */
} hidx_t;

struct tv_symtab {
    tinyvmi_hooks_t hooks;
    char *arena;
    size_t alen, acap;
    vec_t sym, typ, mem, cst, meta;
    bool finished;
    bool have_type; /* a type was added: members may follow */
    hidx_t hsym, htyp, hcst;
    uint32_t *by_addr; /* live symbols sorted by (addr, seq) */
    size_t nby_addr, cap_addr;
    uint32_t *by_name; /* live types sorted by name */
    size_t nby_name, cap_name;
};

/* ---- allocation ---------------------------------------------------------- */

static void *st_realloc(const tinyvmi_hooks_t *h, void *p, size_t old,
                        size_t size)
{
    return h->alloc(h->alloc_ctx, p, old, size);
}

static void st_free(const tinyvmi_hooks_t *h, void *p, size_t size)
{
    if (p)
        (void)h->alloc(h->alloc_ctx, p, size, 0);
}

/* Room for one more record of rsize bytes in v. */
static int vec_grow(tv_symtab_t *t, vec_t *v, size_t rsize)
{
    if (v->n < v->cap)
        return 0;
    if (v->cap >= REC_MAX)
        return TINYVMI_ERANGE;
    size_t ncap = v->cap ? v->cap * 2 : 64;
    if (ncap > REC_MAX)
        ncap = REC_MAX;
    void *np = st_realloc(&t->hooks, v->p, v->cap * rsize, ncap * rsize);
    if (!np)
        return TINYVMI_ENOMEM;
    v->p = np;
    v->cap = ncap;
    return 0;
}

static void vec_free(tv_symtab_t *t, vec_t *v, size_t rsize)
{
    st_free(&t->hooks, v->p, v->cap * rsize);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* Copies (s, len) into the arena with a NUL; *off gets its offset. */
static int arena_add(tv_symtab_t *t, const char *s, size_t len, uint32_t *off)
{
    if (len == 0) {
        *off = 0;
        return 0;
    }
    if (len > NAME_MAX_LEN)
        return TINYVMI_ERANGE;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0')
            return TINYVMI_EINVAL;
    if (t->alen + len + 1 > ARENA_MAX)
        return TINYVMI_ERANGE;
    if (t->alen + len + 1 > t->acap) {
        size_t ncap = t->acap * 2;
        while (ncap < t->alen + len + 1)
            ncap *= 2;
        if (ncap > ARENA_MAX)
            ncap = ARENA_MAX;
        char *na = st_realloc(&t->hooks, t->arena, t->acap, ncap);
        if (!na)
            return TINYVMI_ENOMEM;
        t->arena = na;
        t->acap = ncap;
    }
    tv_memcpy(t->arena + t->alen, s, len);
    t->arena[t->alen + len] = '\0';
    *off = (uint32_t)t->alen;
    t->alen += len + 1;
    return 0;
}

static const char *str(const tv_symtab_t *t, uint32_t off)
{
    return t->arena + off;
}

/* ---- errors ------------------------------------------------------------- */

int tv_pfail(const tv_pctx_t *ctx, int status, const char *fmt, ...)
{
    if (ctx && ctx->err && ctx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)tv_vfmt(ctx->err, ctx->errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---- building ------------------------------------------------------------ */

int tv_symtab_new(const tv_pctx_t *ctx, tv_symtab_t **out)
{
    *out = NULL;
    if (!ctx || !ctx->hooks || !ctx->hooks->alloc)
        return tv_pfail(ctx, TINYVMI_EINVAL, "symbol table: no allocator");
    const tinyvmi_hooks_t *h = ctx->hooks;
    tv_symtab_t *t = st_realloc(h, NULL, 0, sizeof *t);
    if (!t)
        return tv_pfail(ctx, TINYVMI_ENOMEM, "symbol table: out of memory");
    tv_memset(t, 0, sizeof *t);
    t->hooks = *h;
    t->acap = 4096;
    t->arena = st_realloc(h, NULL, 0, t->acap);
    if (!t->arena) {
        st_free(h, t, sizeof *t);
        return tv_pfail(ctx, TINYVMI_ENOMEM, "symbol table: out of memory");
    }
    t->arena[0] = '\0';
    t->alen = 1;
    *out = t;
    return 0;
}

static void drop_indexes(tv_symtab_t *t)
{
    hidx_t *hs[] = {&t->hsym, &t->htyp, &t->hcst};
    for (size_t i = 0; i < TV_ARRAY_LEN(hs); i++) {
        if (hs[i]->slot)
            st_free(&t->hooks, hs[i]->slot,
                    (hs[i]->mask + 1) * sizeof(uint32_t));
        hs[i]->slot = NULL;
        hs[i]->mask = 0;
    }
    st_free(&t->hooks, t->by_addr, t->cap_addr * sizeof(uint32_t));
    st_free(&t->hooks, t->by_name, t->cap_name * sizeof(uint32_t));
    t->by_addr = t->by_name = NULL;
    t->nby_addr = t->nby_name = t->cap_addr = t->cap_name = 0;
    t->finished = false;
}

void tv_symtab_free(tv_symtab_t *t)
{
    if (!t)
        return;
    drop_indexes(t);
    vec_free(t, &t->sym, sizeof(sym_t));
    vec_free(t, &t->typ, sizeof(typ_t));
    vec_free(t, &t->mem, sizeof(mem_t));
    vec_free(t, &t->cst, sizeof(cst_t));
    vec_free(t, &t->meta, sizeof(meta_t));
    st_free(&t->hooks, t->arena, t->acap);
    tinyvmi_hooks_t h = t->hooks;
    st_free(&h, t, sizeof *t);
}

/* Adding to a finished table reopens it: the next finish re-indexes. */
static void reopen(tv_symtab_t *t)
{
    if (t->finished)
        drop_indexes(t);
}

int tv_symtab_add_symbol(tv_symtab_t *t, const char *name, size_t len,
                         uint64_t addr, char type)
{
    if (!t || (!name && len))
        return TINYVMI_EINVAL;
    reopen(t);
    int rc = vec_grow(t, &t->sym, sizeof(sym_t));
    uint32_t off;
    if (rc == 0)
        rc = arena_add(t, name, len, &off);
    if (rc)
        return rc;
    sym_t *s = (sym_t *)t->sym.p + t->sym.n;
    s->addr = addr;
    s->name = off;
    s->seq = (uint32_t)t->sym.n;
    s->type = type;
    s->dead = 0;
    t->sym.n++;
    return 0;
}

int tv_symtab_add_type(tv_symtab_t *t, const char *name, size_t len,
                       uint8_t kind, uint64_t size)
{
    if (!t || (!name && len))
        return TINYVMI_EINVAL;
    if (kind != TV_K_STRUCT && kind != TV_K_UNION && kind != TV_K_ENUM &&
        kind != TV_K_BASE)
        return TINYVMI_EINVAL;
    reopen(t);
    int rc = vec_grow(t, &t->typ, sizeof(typ_t));
    uint32_t off;
    if (rc == 0)
        rc = arena_add(t, name, len, &off);
    if (rc)
        return rc;
    typ_t *y = (typ_t *)t->typ.p + t->typ.n;
    y->size = size;
    y->name = off;
    y->first = (uint32_t)t->mem.n;
    y->nmem = 0;
    y->kind = kind;
    y->dead = 0;
    t->typ.n++;
    t->have_type = true;
    return 0;
}

int tv_symtab_add_member(tv_symtab_t *t, const char *name, size_t len,
                         uint64_t offset, uint8_t bit_pos, uint8_t bit_len,
                         const tv_mtype_t *type, bool anonymous)
{
    if (!t || !type || (!name && len))
        return TINYVMI_EINVAL;
    if (!t->have_type || type->kind > TV_K_VOID || type->elem_kind > TV_K_VOID)
        return TINYVMI_EINVAL;
    reopen(t);
    typ_t *y = (typ_t *)t->typ.p + (t->typ.n - 1);
    if (y->nmem >= REC_MAX)
        return TINYVMI_ERANGE;
    int rc = vec_grow(t, &t->mem, sizeof(mem_t));
    uint32_t off, toff;
    if (rc == 0)
        rc = arena_add(t, name, len, &off);
    if (rc == 0)
        rc = arena_add(t, type->name ? type->name : "",
                       type->name ? tv_strnlen(type->name, NAME_MAX_LEN + 1)
                                  : 0,
                       &toff);
    if (rc)
        return rc;
    mem_t *m = (mem_t *)t->mem.p + t->mem.n;
    m->offset = offset;
    m->name = off;
    m->tname = toff;
    m->count = type->count;
    m->kind = type->kind;
    m->elem_kind = type->elem_kind;
    m->bit_pos = bit_pos;
    m->bit_len = bit_len;
    m->anon = anonymous ? 1 : 0;
    t->mem.n++;
    y->nmem++;
    return 0;
}

int tv_symtab_add_const(tv_symtab_t *t, const char *name, size_t len,
                        int64_t value)
{
    if (!t || (!name && len))
        return TINYVMI_EINVAL;
    reopen(t);
    int rc = vec_grow(t, &t->cst, sizeof(cst_t));
    uint32_t off;
    if (rc == 0)
        rc = arena_add(t, name, len, &off);
    if (rc)
        return rc;
    cst_t *c = (cst_t *)t->cst.p + t->cst.n;
    c->value = value;
    c->name = off;
    c->dead = 0;
    t->cst.n++;
    return 0;
}

static const meta_t *meta_find(const tv_symtab_t *t, const char *key)
{
    const meta_t *m = t->meta.p;
    for (size_t i = 0; i < t->meta.n; i++)
        if (tv_strcmp(str(t, m[i].key), key) == 0)
            return &m[i];
    return NULL;
}

int tv_symtab_set_meta(tv_symtab_t *t, const char *key, const char *value,
                       size_t len)
{
    if (!t || !key || (!value && len))
        return TINYVMI_EINVAL;
    if (meta_find(t, key))
        return 0; /* first wins, like every other name */
    int rc = vec_grow(t, &t->meta, sizeof(meta_t));
    uint32_t k, v;
    if (rc == 0)
        rc = arena_add(t, key, tv_strnlen(key, NAME_MAX_LEN + 1), &k);
    if (rc == 0)
        rc = arena_add(t, value, len, &v);
    if (rc)
        return rc;
    meta_t *m = (meta_t *)t->meta.p + t->meta.n;
    m->key = k;
    m->val = v;
    t->meta.n++;
    return 0;
}

/* ---- indexes --------------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

static int hidx_init(tv_symtab_t *t, hidx_t *h, size_t n)
{
    size_t slots = 16;
    while (slots < n * 2)
        slots *= 2;
    h->slot = st_realloc(&t->hooks, NULL, 0, slots * sizeof(uint32_t));
    if (!h->slot)
        return TINYVMI_ENOMEM;
    tv_memset(h->slot, 0, slots * sizeof(uint32_t));
    h->mask = slots - 1;
    return 0;
}

/* Inserts record i named name; false if the name is already there. */
static bool hidx_put(const tv_symtab_t *t, hidx_t *h, const char *name,
                     uint32_t i, uint32_t (*name_of)(const tv_symtab_t *,
                                                     uint32_t))
{
    size_t at = hash_str(name) & h->mask;
    for (;;) {
        uint32_t s = h->slot[at];
        if (s == 0) {
            h->slot[at] = i + 1;
            return true;
        }
        if (tv_strcmp(str(t, name_of(t, s - 1)), name) == 0)
            return false;
        at = (at + 1) & h->mask;
    }
}

/* Record index of name, or -1. */
static long hidx_get(const tv_symtab_t *t, const hidx_t *h, const char *name,
                     uint32_t (*name_of)(const tv_symtab_t *, uint32_t))
{
    if (!h->slot)
        return -1;
    size_t at = hash_str(name) & h->mask;
    for (size_t probes = 0; probes <= h->mask; probes++) {
        uint32_t s = h->slot[at];
        if (s == 0)
            return -1;
        if (tv_strcmp(str(t, name_of(t, s - 1)), name) == 0)
            return (long)(s - 1);
        at = (at + 1) & h->mask;
    }
    return -1;
}

static uint32_t sym_name(const tv_symtab_t *t, uint32_t i)
{
    return ((const sym_t *)t->sym.p)[i].name;
}
static uint32_t typ_name(const tv_symtab_t *t, uint32_t i)
{
    return ((const typ_t *)t->typ.p)[i].name;
}
static uint32_t cst_name(const tv_symtab_t *t, uint32_t i)
{
    return ((const cst_t *)t->cst.p)[i].name;
}

/* Heap sort of an index array: no recursion, no extra memory, O(n log n). */
typedef bool (*less_fn)(const tv_symtab_t *t, uint32_t a, uint32_t b);

static void sift(const tv_symtab_t *t, uint32_t *a, size_t root, size_t n,
                 less_fn less)
{
    for (;;) {
        size_t child = root * 2 + 1;
        if (child >= n)
            return;
        if (child + 1 < n && less(t, a[child], a[child + 1]))
            child++;
        if (!less(t, a[root], a[child]))
            return;
        uint32_t tmp = a[root];
        a[root] = a[child];
        a[child] = tmp;
        root = child;
    }
}

static void heap_sort(const tv_symtab_t *t, uint32_t *a, size_t n,
                      less_fn less)
{
    /* kallsyms and System.map come sorted already: check first, O(n) */
    size_t k = 1;
    while (k < n && !less(t, a[k], a[k - 1]))
        k++;
    if (k >= n)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift(t, a, i, n, less);
    for (size_t end = n - 1; end > 0; end--) {
        uint32_t tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        sift(t, a, 0, end, less);
    }
}

static bool sym_less(const tv_symtab_t *t, uint32_t a, uint32_t b)
{
    const sym_t *s = t->sym.p;
    if (s[a].addr != s[b].addr)
        return s[a].addr < s[b].addr;
    return s[a].seq < s[b].seq;
}

static bool typ_less(const tv_symtab_t *t, uint32_t a, uint32_t b)
{
    const typ_t *y = t->typ.p;
    int c = tv_strcmp(str(t, y[a].name), str(t, y[b].name));
    return c != 0 ? c < 0 : a < b;
}

static uint32_t *index_array(tv_symtab_t *t, size_t n, size_t *cap)
{
    uint32_t *p = st_realloc(&t->hooks, NULL, 0,
                             (n ? n : 1) * sizeof(uint32_t));
    *cap = p ? (n ? n : 1) : 0;
    return p;
}

int tv_symtab_finish(tv_symtab_t *t)
{
    if (!t)
        return TINYVMI_EINVAL;
    if (t->finished)
        return 0;
    int rc = hidx_init(t, &t->hsym, t->sym.n);
    if (rc == 0)
        rc = hidx_init(t, &t->htyp, t->typ.n);
    if (rc == 0)
        rc = hidx_init(t, &t->hcst, t->cst.n);
    if (rc == 0 && !(t->by_addr = index_array(t, t->sym.n, &t->cap_addr)))
        rc = TINYVMI_ENOMEM;
    if (rc == 0 && !(t->by_name = index_array(t, t->typ.n, &t->cap_name)))
        rc = TINYVMI_ENOMEM;
    if (rc) {
        drop_indexes(t);
        return rc;
    }
    sym_t *s = t->sym.p;
    size_t live = 0;
    for (uint32_t i = 0; i < t->sym.n; i++) {
        if (!s[i].dead &&
            hidx_put(t, &t->hsym, str(t, s[i].name), i, sym_name))
            t->by_addr[live++] = i;
        else
            s[i].dead = 1;
    }
    t->nby_addr = live;
    heap_sort(t, t->by_addr, live, sym_less);
    typ_t *y = t->typ.p;
    live = 0;
    /* Structs and unions first: C keeps tags apart, profiles do not, and
     * a name that is both (6.12's enum and struct `context`) means the
     * struct whichever order the source listed them in. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < t->typ.n; i++) {
            bool tag = y[i].kind == TV_K_STRUCT || y[i].kind == TV_K_UNION;
            if (tag != (pass == 0) || y[i].dead)
                continue;
            if (y[i].name != 0 &&
                hidx_put(t, &t->htyp, str(t, y[i].name), i, typ_name))
                t->by_name[live++] = i;
            else
                y[i].dead = 1;
        }
    t->nby_name = live;
    heap_sort(t, t->by_name, live, typ_less);
    cst_t *c = t->cst.p;
    for (uint32_t i = 0; i < t->cst.n; i++)
        if (c[i].dead || c[i].name == 0 ||
            !hidx_put(t, &t->hcst, str(t, c[i].name), i, cst_name))
            c[i].dead = 1;
    t->finished = true;
    return 0;
}

/* ---- queries --------------------------------------------------------------- */

bool tv_symtab_symbol(const tv_symtab_t *t, const char *name, uint64_t *addr)
{
    if (!t || !t->finished || !name)
        return false;
    long i = hidx_get(t, &t->hsym, name, sym_name);
    if (i < 0)
        return false;
    if (addr)
        *addr = ((const sym_t *)t->sym.p)[i].addr;
    return true;
}

bool tv_symtab_addr(const tv_symtab_t *t, uint64_t addr, uint64_t max_off,
                    const char **name, uint64_t *offset)
{
    if (!t || !t->finished || t->nby_addr == 0)
        return false;
    const sym_t *s = t->sym.p;
    /* First position whose address is above addr. */
    size_t lo = 0, hi = t->nby_addr;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[t->by_addr[mid]].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    uint64_t found = s[t->by_addr[lo - 1]].addr;
    if (addr - found > max_off)
        return false;
    /* The first of the symbols at that address. */
    size_t a = 0, b = lo - 1;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (s[t->by_addr[mid]].addr < found)
            a = mid + 1;
        else
            b = mid;
    }
    if (name)
        *name = str(t, s[t->by_addr[a]].name);
    if (offset)
        *offset = addr - found;
    return true;
}

static long type_index(const tv_symtab_t *t, const char *name)
{
    return hidx_get(t, &t->htyp, name, typ_name);
}

static void fill_typeinfo(const tv_symtab_t *t, const typ_t *y,
                          tv_typeinfo_t *info)
{
    if (!info)
        return;
    info->name = str(t, y->name);
    info->kind = y->kind;
    info->size = y->size;
    info->nmembers = y->nmem;
}

bool tv_symtab_type(const tv_symtab_t *t, const char *name,
                    tv_typeinfo_t *info)
{
    if (!t || !t->finished || !name)
        return false;
    long i = type_index(t, name);
    if (i < 0)
        return false;
    fill_typeinfo(t, (const typ_t *)t->typ.p + i, info);
    return true;
}

static void fill_member(const tv_symtab_t *t, const mem_t *m, uint64_t base,
                        tv_member_t *out)
{
    out->name = str(t, m->name);
    out->offset = base + m->offset;
    out->bit_pos = m->bit_pos;
    out->bit_len = m->bit_len;
    out->anonymous = m->anon != 0;
    out->type.kind = m->kind;
    out->type.elem_kind = m->elem_kind;
    out->type.count = m->count;
    out->type.name = str(t, m->tname);
}

static bool name_eq(const char *a, const char *b, size_t blen)
{
    for (size_t i = 0; i < blen; i++)
        if (a[i] != b[i])
            return false;
    return a[blen] == '\0';
}

/* Member (name, len) of type ti, looking through anonymous members; *off
 * accumulates the offsets of the anonymous members passed through. */
static const mem_t *find_member(const tv_symtab_t *t, long ti,
                                const char *name, size_t len, unsigned depth,
                                uint64_t *off)
{
    const typ_t *y = (const typ_t *)t->typ.p + ti;
    const mem_t *m = (const mem_t *)t->mem.p + y->first;
    for (uint32_t i = 0; i < y->nmem; i++) {
        if (m[i].name && name_eq(str(t, m[i].name), name, len))
            return &m[i];
        if (m[i].anon && depth < ANON_DEPTH &&
            (m[i].kind == TV_K_STRUCT || m[i].kind == TV_K_UNION) &&
            m[i].tname) {
            long inner = type_index(t, str(t, m[i].tname));
            if (inner < 0 || inner == ti)
                continue;
            uint64_t sub = 0;
            const mem_t *f = find_member(t, inner, name, len, depth + 1, &sub);
            if (f) {
                *off += m[i].offset + sub;
                return f;
            }
        }
    }
    return NULL;
}

/* Size of an array element of member m, or false. */
static bool elem_size(const tv_symtab_t *t, const mem_t *m, uint64_t *size)
{
    long ti;
    if (m->elem_kind == TV_K_POINTER)
        ti = type_index(t, "pointer");
    else if (m->tname)
        ti = type_index(t, str(t, m->tname));
    else
        return false;
    if (ti < 0)
        return false;
    *size = ((const typ_t *)t->typ.p)[ti].size;
    return true;
}

static bool parse_index(const char *p, size_t len, uint64_t *idx)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *idx = v;
    return true;
}

bool tv_symtab_member(const tv_symtab_t *t, const char *type,
                      const char *path, tv_member_t *out)
{
    if (!t || !t->finished || !type || !path || !out)
        return false;
    long ti = type_index(t, type);
    if (ti < 0)
        return false;
    uint64_t base = 0;
    const char *p = path;
    for (unsigned part = 0; part < PATH_PARTS; part++) {
        const char *end = p;
        while (*end && *end != '.' && *end != '[')
            end++;
        if (end == p)
            return false;
        uint64_t off = 0;
        const mem_t *m = find_member(t, ti, p, (size_t)(end - p), 0, &off);
        if (!m)
            return false;
        fill_member(t, m, base + off, out);
        base = out->offset;
        const char *next = end;
        bool indexed = false;
        if (*next == '[') {
            const char *close = next + 1;
            while (*close && *close != ']')
                close++;
            uint64_t idx, esz;
            if (*close != ']' || m->kind != TV_K_ARRAY ||
                !parse_index(next + 1, (size_t)(close - next - 1), &idx))
                return false;
            if (m->count && idx >= m->count)
                return false;
            if (!elem_size(t, m, &esz))
                return false;
            if (esz && idx > (UINT64_MAX - base) / esz)
                return false;
            base += idx * esz;
            out->offset = base;
            out->type.kind = m->elem_kind;
            out->type.elem_kind = TV_K_NONE;
            out->type.count = 0;
            indexed = true;
            next = close + 1;
        }
        if (*next == '\0')
            return true;
        if (*next != '.')
            return false;
        uint8_t k = indexed ? m->elem_kind : m->kind;
        if ((k != TV_K_STRUCT && k != TV_K_UNION) || !m->tname)
            return false;
        ti = type_index(t, str(t, m->tname));
        if (ti < 0)
            return false;
        p = next + 1;
    }
    return false;
}

bool tv_symtab_member_at(const tv_symtab_t *t, const char *type, uint32_t i,
                         tv_member_t *out)
{
    if (!t || !t->finished || !type || !out)
        return false;
    long ti = type_index(t, type);
    if (ti < 0)
        return false;
    const typ_t *y = (const typ_t *)t->typ.p + ti;
    if (i >= y->nmem)
        return false;
    fill_member(t, (const mem_t *)t->mem.p + y->first + i, 0, out);
    return true;
}

bool tv_symtab_const(const tv_symtab_t *t, const char *name, int64_t *value)
{
    if (!t || !t->finished || !name)
        return false;
    long i = hidx_get(t, &t->hcst, name, cst_name);
    if (i < 0)
        return false;
    if (value)
        *value = ((const cst_t *)t->cst.p)[i].value;
    return true;
}

const char *tv_symtab_meta(const tv_symtab_t *t, const char *key)
{
    if (!t || !key)
        return NULL;
    const meta_t *m = meta_find(t, key);
    return m ? str(t, m->val) : NULL;
}

size_t tv_symtab_nsymbols(const tv_symtab_t *t)
{
    return t && t->finished ? t->nby_addr : 0;
}

bool tv_symtab_symbol_at(const tv_symtab_t *t, size_t i, const char **name,
                         uint64_t *addr, char *type)
{
    if (!t || !t->finished || i >= t->nby_addr)
        return false;
    const sym_t *s = (const sym_t *)t->sym.p + t->by_addr[i];
    if (name)
        *name = str(t, s->name);
    if (addr)
        *addr = s->addr;
    if (type)
        *type = s->type;
    return true;
}

size_t tv_symtab_ntypes(const tv_symtab_t *t)
{
    return t && t->finished ? t->nby_name : 0;
}

bool tv_symtab_type_at(const tv_symtab_t *t, size_t i, tv_typeinfo_t *info)
{
    if (!t || !t->finished || i >= t->nby_name)
        return false;
    fill_typeinfo(t, (const typ_t *)t->typ.p + t->by_name[i], info);
    return true;
}

size_t tv_symtab_bytes(const tv_symtab_t *t)
{
    if (!t)
        return 0;
    size_t n = sizeof *t + t->acap;
    n += t->sym.cap * sizeof(sym_t) + t->typ.cap * sizeof(typ_t) +
         t->mem.cap * sizeof(mem_t) + t->cst.cap * sizeof(cst_t) +
         t->meta.cap * sizeof(meta_t);
    if (t->finished)
        n += ((t->hsym.mask + 1) + (t->htyp.mask + 1) + (t->hcst.mask + 1) +
              t->cap_addr + t->cap_name) *
             sizeof(uint32_t);
    return n;
}
