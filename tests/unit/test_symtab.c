/* The symbol/type table: names, paths through anonymous members and arrays,
 * first-wins duplicates, address lookups, bounds, allocation failures. */
#include "profile/symtab.h"
#include "tu.h"

static char errbuf[256];
static const tv_pctx_t ctx = {&tu_hooks, errbuf, sizeof errbuf};

#define ADD(t, n) (t), (n), strlen(n)

static tv_mtype_t mt(uint8_t kind, uint8_t elem, uint32_t count,
                     const char *name)
{
    tv_mtype_t m = {kind, elem, count, name};
    return m;
}

/* A miniature kernel: module with an array of module_memory, a task with
 * pid inside an anonymous struct inside an anonymous union. */
static tv_symtab_t *mini(void)
{
    tv_symtab_t *t = NULL;
    if (tv_symtab_new(&ctx, &t) != 0)
        return NULL;
    tv_mtype_t ty;
    int rc = 0;
    rc |= tv_symtab_add_type(ADD(t, "pointer"), TV_K_BASE, 8);
    rc |= tv_symtab_add_type(ADD(t, "int"), TV_K_BASE, 4);
    rc |= tv_symtab_add_type(ADD(t, "list_head"), TV_K_STRUCT, 16);
    ty = mt(TV_K_POINTER, TV_K_STRUCT, 0, "list_head");
    rc |= tv_symtab_add_member(ADD(t, "next"), 0, 0, 0, &ty, false);
    rc |= tv_symtab_add_member(ADD(t, "prev"), 8, 0, 0, &ty, false);
    rc |= tv_symtab_add_type(ADD(t, "module_memory"), TV_K_STRUCT, 80);
    ty = mt(TV_K_POINTER, TV_K_VOID, 0, "");
    rc |= tv_symtab_add_member(ADD(t, "base"), 0, 0, 0, &ty, false);
    ty = mt(TV_K_BASE, TV_K_NONE, 0, "int");
    rc |= tv_symtab_add_member(ADD(t, "size"), 8, 0, 0, &ty, false);
    rc |= tv_symtab_add_type(ADD(t, "module"), TV_K_STRUCT, 1024);
    ty = mt(TV_K_STRUCT, TV_K_NONE, 0, "list_head");
    rc |= tv_symtab_add_member(ADD(t, "list"), 8, 0, 0, &ty, false);
    ty = mt(TV_K_ARRAY, TV_K_STRUCT, 7, "module_memory");
    rc |= tv_symtab_add_member(ADD(t, "mem"), 320, 0, 0, &ty, false);
    ty = mt(TV_K_ARRAY, TV_K_POINTER, 3, "char");
    rc |= tv_symtab_add_member(ADD(t, "names"), 900, 0, 0, &ty, false);
    rc |= tv_symtab_add_type(ADD(t, "task_struct"), TV_K_STRUCT, 9792);
    ty = mt(TV_K_BASE, TV_K_NONE, 0, "int");
    rc |= tv_symtab_add_member(ADD(t, "state"), 24, 0, 0, &ty, false);
    ty = mt(TV_K_UNION, TV_K_NONE, 0, "unnamed_1");
    rc |= tv_symtab_add_member(ADD(t, "unnamed_field_0"), 0x900, 0, 0, &ty,
                               true);
    ty = mt(TV_K_BITFIELD, TV_K_BASE, 0, "int");
    rc |= tv_symtab_add_member(ADD(t, "flag"), 0x20, 3, 1, &ty, false);
    rc |= tv_symtab_add_type(ADD(t, "unnamed_1"), TV_K_UNION, 0x80);
    ty = mt(TV_K_STRUCT, TV_K_NONE, 0, "unnamed_2");
    rc |= tv_symtab_add_member(t, "", 0, 0x10, 0, 0, &ty, true);
    rc |= tv_symtab_add_type(ADD(t, "unnamed_2"), TV_K_STRUCT, 0x70);
    ty = mt(TV_K_BASE, TV_K_NONE, 0, "int");
    rc |= tv_symtab_add_member(ADD(t, "pid"), 0x60, 0, 0, &ty, false);
    /* Duplicates: the first wins. */
    rc |= tv_symtab_add_type(ADD(t, "list_head"), TV_K_STRUCT, 99);
    rc |= tv_symtab_add_symbol(ADD(t, "b_sym"), 0x2000, 'T');
    rc |= tv_symtab_add_symbol(ADD(t, "a_sym"), 0x1000, 'T');
    rc |= tv_symtab_add_symbol(ADD(t, "c_alias"), 0x2000, 't');
    rc |= tv_symtab_add_symbol(ADD(t, "b_sym"), 0x5000, 'D');
    rc |= tv_symtab_add_symbol(ADD(t, "top"), UINT64_MAX, 'D');
    rc |= tv_symtab_add_const(ADD(t, "PIDTYPE_PID"), 0);
    rc |= tv_symtab_add_const(ADD(t, "NEG"), -5);
    rc |= tv_symtab_add_const(ADD(t, "NEG"), 7);
    rc |= tv_symtab_set_meta(t, "os", "linux", 5);
    rc |= tv_symtab_set_meta(t, "os", "windows", 7);
    if (rc != 0 || tv_symtab_finish(t) != 0 || tv_symtab_finish(t) != 0) {
        tv_symtab_free(t);
        return NULL;
    }
    return t;
}

TU_TEST(symtab_types_and_paths)
{
    tv_symtab_t *t = mini();
    TU_ASSERT(t);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "list_head", &ti));
    TU_EQ_U64(ti.size, 16); /* the first list_head, not the duplicate */
    TU_EQ_INT(ti.nmembers, 2);
    TU_EQ_INT(ti.kind, TV_K_STRUCT);
    TU_ASSERT(!tv_symtab_type(t, "list_hea", &ti));
    TU_ASSERT(!tv_symtab_type(t, "", &ti));
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "module", "list", &m));
    TU_EQ_U64(m.offset, 8);
    TU_EQ_STR(m.type.name, "list_head");
    TU_ASSERT(tv_symtab_member(t, "module", "list.prev", &m));
    TU_EQ_U64(m.offset, 16);
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_STRUCT);
    TU_ASSERT(tv_symtab_member(t, "module", "mem", &m));
    TU_EQ_INT(m.type.kind, TV_K_ARRAY);
    TU_EQ_INT(m.type.count, 7);
    TU_ASSERT(tv_symtab_member(t, "module", "mem[0].base", &m));
    TU_EQ_U64(m.offset, 320);
    TU_ASSERT(tv_symtab_member(t, "module", "mem[2].size", &m));
    TU_EQ_U64(m.offset, 320 + 2 * 80 + 8);
    TU_ASSERT(tv_symtab_member(t, "module", "mem[6]", &m));
    TU_EQ_U64(m.offset, 320 + 6 * 80);
    TU_EQ_INT(m.type.kind, TV_K_STRUCT);
    TU_EQ_STR(m.type.name, "module_memory");
    TU_ASSERT(tv_symtab_member(t, "module", "names[2]", &m));
    TU_EQ_U64(m.offset, 900 + 16); /* pointer elements: 8 bytes each */
    /* Bounds and malformed paths. */
    TU_ASSERT(!tv_symtab_member(t, "module", "mem[7].base", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "mem[99999999999999999999]",
                                &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "mem[]", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "mem[1", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "mem[x]", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "list[0]", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "list.", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", ".list", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "list..next", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "list.next.next", &m));
    TU_ASSERT(!tv_symtab_member(t, "module", "", &m));
    TU_ASSERT(!tv_symtab_member(t, "nope", "list", &m));
    /* Anonymous flattening: pid sits in unnamed_2 (at 0x10) inside
     * unnamed_1 (at 0x900). */
    TU_ASSERT(tv_symtab_member(t, "task_struct", "pid", &m));
    TU_EQ_U64(m.offset, 0x900 + 0x10 + 0x60);
    TU_EQ_STR(m.name, "pid");
    TU_ASSERT(!m.anonymous);
    TU_ASSERT(tv_symtab_member(t, "task_struct", "unnamed_field_0", &m));
    TU_ASSERT(m.anonymous);
    TU_EQ_U64(m.offset, 0x900);
    TU_ASSERT(tv_symtab_member(t, "task_struct", "flag", &m));
    TU_EQ_INT(m.type.kind, TV_K_BITFIELD);
    TU_EQ_INT(m.bit_pos, 3);
    TU_EQ_INT(m.bit_len, 1);
    TU_ASSERT(tv_symtab_member_at(t, "task_struct", 1, &m));
    TU_ASSERT(m.anonymous);
    TU_EQ_STR(m.type.name, "unnamed_1");
    TU_ASSERT(!tv_symtab_member_at(t, "task_struct", 3, &m));
    /* Types in name order. */
    TU_EQ_U64(tv_symtab_ntypes(t), 8);
    TU_ASSERT(tv_symtab_type_at(t, 0, &ti));
    TU_EQ_STR(ti.name, "int");
    TU_ASSERT(tv_symtab_type_at(t, 7, &ti));
    TU_EQ_STR(ti.name, "unnamed_2");
    TU_ASSERT(!tv_symtab_type_at(t, 8, &ti));
    tv_symtab_free(t);
}

TU_TEST(symtab_symbols)
{
    tv_symtab_t *t = mini();
    TU_ASSERT(t);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "b_sym", &a));
    TU_EQ_U64(a, 0x2000); /* first wins */
    TU_ASSERT(!tv_symtab_symbol(t, "b_syn", &a));
    TU_EQ_U64(tv_symtab_nsymbols(t), 4);
    const char *n;
    char ty;
    TU_ASSERT(tv_symtab_symbol_at(t, 0, &n, &a, &ty));
    TU_EQ_STR(n, "a_sym");
    TU_ASSERT(tv_symtab_symbol_at(t, 1, &n, &a, &ty));
    TU_EQ_STR(n, "b_sym");
    TU_ASSERT(tv_symtab_symbol_at(t, 2, &n, &a, &ty));
    TU_EQ_STR(n, "c_alias");
    TU_EQ_INT(ty, 't');
    TU_ASSERT(tv_symtab_symbol_at(t, 3, &n, &a, &ty));
    TU_EQ_U64(a, UINT64_MAX);
    TU_ASSERT(!tv_symtab_symbol_at(t, 4, &n, &a, &ty));
    uint64_t off;
    TU_ASSERT(!tv_symtab_addr(t, 0xfff, 0x100000, &n, &off));
    TU_ASSERT(tv_symtab_addr(t, 0x1000, 0, &n, &off));
    TU_EQ_STR(n, "a_sym");
    TU_EQ_U64(off, 0);
    TU_ASSERT(tv_symtab_addr(t, 0x2abc, 0x1000, &n, &off));
    TU_EQ_STR(n, "b_sym"); /* tie at 0x2000: the first added */
    TU_EQ_U64(off, 0xabc);
    TU_ASSERT(!tv_symtab_addr(t, 0x3001, 0x1000, &n, &off));
    TU_ASSERT(tv_symtab_addr(t, 0x3001, UINT64_MAX, &n, &off));
    TU_ASSERT(tv_symtab_addr(t, UINT64_MAX, 0, &n, &off));
    TU_EQ_STR(n, "top");
    int64_t v;
    TU_ASSERT(tv_symtab_const(t, "NEG", &v));
    TU_EQ_INT(v, -5);
    TU_ASSERT(tv_symtab_const(t, "PIDTYPE_PID", &v));
    TU_EQ_INT(v, 0);
    TU_ASSERT(!tv_symtab_const(t, "PIDTYPE", &v));
    TU_EQ_STR(tv_symtab_meta(t, "os"), "linux");
    TU_ASSERT(tv_symtab_meta(t, "guid") == NULL);
    TU_ASSERT(tv_symtab_bytes(t) > 0);
    tv_symtab_free(t);
}

TU_TEST(symtab_reopen_and_errors)
{
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_symtab_new(&ctx, &t), 0);
    tv_mtype_t ty = mt(TV_K_BASE, TV_K_NONE, 0, "int");
    /* A member before any type, a bad kind, a NUL inside a name. */
    TU_EQ_INT(tv_symtab_add_member(ADD(t, "x"), 0, 0, 0, &ty, false),
              TINYVMI_EINVAL);
    TU_EQ_INT(tv_symtab_add_type(ADD(t, "p"), TV_K_POINTER, 8),
              TINYVMI_EINVAL);
    TU_EQ_INT(tv_symtab_add_symbol(t, "a\0b", 3, 1, 'T'), TINYVMI_EINVAL);
    /* Queries before finish find nothing. */
    TU_EQ_INT(tv_symtab_add_symbol(ADD(t, "s1"), 10, 'T'), 0);
    TU_ASSERT(!tv_symtab_symbol(t, "s1", NULL));
    TU_EQ_INT(tv_symtab_finish(t), 0);
    TU_ASSERT(tv_symtab_symbol(t, "s1", NULL));
    /* A second loader adds more: the table is re-indexed at finish. */
    TU_EQ_INT(tv_symtab_add_symbol(ADD(t, "s2"), 5, 'T'), 0);
    TU_EQ_INT(tv_symtab_add_symbol(ADD(t, "s1"), 7, 'T'), 0);
    TU_EQ_INT(tv_symtab_finish(t), 0);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "s1", &a));
    TU_EQ_U64(a, 10);
    TU_EQ_U64(tv_symtab_nsymbols(t), 2);
    tv_symtab_free(t);
    tv_symtab_free(NULL);
    TU_EQ_INT(tv_pfail(&ctx, TINYVMI_EFORMAT, "x %d", 42), TINYVMI_EFORMAT);
    TU_EQ_STR(errbuf, "x 42");
}

/* Many names: the hash indexes and the sort on a larger scale. */
TU_TEST(symtab_many)
{
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_symtab_new(&ctx, &t), 0);
    char name[32];
    for (unsigned i = 0; i < 50000; i++) {
        int n = snprintf(name, sizeof name, "sym_%u", i);
        /* addresses in a scrambled order */
        uint64_t addr = 0xffffffff81000000ull + (uint64_t)((i * 7919u) %
                                                           50000u) * 16;
        TU_EQ_INT(tv_symtab_add_symbol(t, name, (size_t)n, addr, 'T'), 0);
    }
    TU_EQ_INT(tv_symtab_finish(t), 0);
    TU_EQ_U64(tv_symtab_nsymbols(t), 50000);
    uint64_t prev = 0, a;
    for (size_t i = 0; i < 50000; i++) {
        TU_ASSERT(tv_symtab_symbol_at(t, i, NULL, &a, NULL));
        TU_ASSERT(a >= prev);
        prev = a;
    }
    for (unsigned i = 0; i < 50000; i += 997) {
        snprintf(name, sizeof name, "sym_%u", i);
        TU_ASSERT(tv_symtab_symbol(t, name, &a));
        const char *back;
        uint64_t off;
        TU_ASSERT(tv_symtab_addr(t, a + 3, 15, &back, &off));
        TU_EQ_STR(back, name);
        TU_EQ_U64(off, 3);
    }
    tv_symtab_free(t);
}

/* Every allocation failure point: an allocator that fails after n calls. */
static size_t fail_after;
static void *failing_alloc(void *c, void *p, size_t old, size_t size)
{
    if (size != 0 && size > old) {
        if (fail_after == 0)
            return NULL;
        fail_after--;
    }
    return tu_alloc(c, p, old, size);
}

TU_TEST(symtab_alloc_failures)
{
    tinyvmi_hooks_t h = tu_hooks;
    h.alloc = failing_alloc;
    tv_pctx_t c = {&h, NULL, 0};
    for (size_t n = 0; n < 40; n++) {
        fail_after = n;
        tv_symtab_t *t = NULL;
        int rc = tv_symtab_new(&c, &t);
        if (rc == 0) {
            char name[16];
            for (unsigned i = 0; i < 300 && rc == 0; i++) {
                int len = snprintf(name, sizeof name, "n%u", i);
                rc = tv_symtab_add_symbol(t, name, (size_t)len, i, 'T');
                if (rc == 0)
                    rc = tv_symtab_add_type(t, name, (size_t)len,
                                            TV_K_STRUCT, i);
            }
            if (rc == 0)
                rc = tv_symtab_finish(t);
            if (rc == 0)
                TU_ASSERT(tv_symtab_symbol(t, "n299", NULL));
            tv_symtab_free(t);
        }
        TU_ASSERT(rc == 0 || rc == TINYVMI_ENOMEM);
    }
}
