/* ISF loader against real files.  Expected values were computed with
 * python's json module from the same files (see each test), not by this
 * code; the 6.1 offsets also match BTF read from a running guest
 * (DESIGN.md).  Tests skip when the shared data is missing. */
#include <unistd.h>

#include "profile/profile.h"
#include "tu.h"

#define SKIP 77
#define D61 "/work/shared/data/debian-6.1.0-56-amd64/" \
            "vmlinux-6.1.0-56-amd64.isf.json.xz"
#define D316 "/work/shared/data/profiles/debian-3.16.0-6-amd64_amd64.json.xz"
#define DWIN "/work/shared/data/windows-10-19041-x64-triage/" \
             "ntkrnlmp.pdb-5278AFF86C341677D7D7835C85B7B844-1.json.xz"

static char err[512];
static const tv_pctx_t ctx = {&tu_hooks, err, sizeof err};

static tv_symtab_t *load_or_skip(const char *path)
{
    if (access(path, R_OK) != 0) {
        printf("skip: %s is missing\n", path);
        exit(SKIP);
    }
    tv_symtab_t *t = NULL;
    int rc = tv_profile_load_file(&ctx, path, &t);
    if (rc != 0)
        fprintf(stderr, "load failed (%d): %s\n", rc, err);
    return t;
}

static uint64_t off(const tv_symtab_t *t, const char *type, const char *path)
{
    tv_member_t m;
    if (!tv_symtab_member(t, type, path, &m))
        return UINT64_MAX;
    return m.offset;
}

TU_TEST(isf_debian61)
{
    tv_symtab_t *t = load_or_skip(D61);
    TU_ASSERT(t);
    TU_EQ_U64(tv_symtab_nsymbols(t), 160837);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "task_struct", &ti));
    TU_EQ_U64(ti.size, 9792);
    TU_EQ_INT(ti.kind, TV_K_STRUCT);
    TU_EQ_U64(off(t, "task_struct", "tasks"), 0x890);
    TU_EQ_U64(off(t, "task_struct", "pid"), 0x970);
    TU_EQ_U64(off(t, "task_struct", "comm"), 0xba0);
    TU_EQ_U64(off(t, "task_struct", "mm"), 0x8e0);
    TU_EQ_U64(off(t, "task_struct", "tasks.prev"), 0x898);
    /* pgd sits in an anonymous struct at offset 0 (python: 72). */
    TU_EQ_U64(off(t, "mm_struct", "pgd"), 0x48);
    TU_EQ_U64(off(t, "module", "list"), 8);
    TU_EQ_U64(off(t, "module", "name"), 24);
    TU_EQ_U64(off(t, "module", "core_layout"), 320);
    TU_EQ_U64(off(t, "module", "core_layout.base"), 320);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "task_struct", "comm", &m));
    TU_EQ_INT(m.type.kind, TV_K_ARRAY);
    TU_EQ_INT(m.type.count, 16);
    TU_EQ_INT(m.type.elem_kind, TV_K_BASE);
    TU_EQ_STR(m.type.name, "char");
    TU_ASSERT(tv_symtab_member(t, "task_struct", "mm", &m));
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_STRUCT);
    TU_EQ_STR(m.type.name, "mm_struct");
    TU_ASSERT(tv_symtab_member(t, "module_layout", "base", &m));
    TU_EQ_INT(m.type.elem_kind, TV_K_VOID);
    TU_ASSERT(tv_symtab_member(t, "mm_struct", "unnamed_field_0", &m));
    TU_ASSERT(m.anonymous);
    /* _ddebug.class_id: bitfield at 34, position 2, length 6 (python). */
    TU_ASSERT(tv_symtab_member(t, "_ddebug", "class_id", &m));
    TU_EQ_INT(m.type.kind, TV_K_BITFIELD);
    TU_EQ_U64(m.offset, 34);
    TU_EQ_INT(m.bit_pos, 2);
    TU_EQ_INT(m.bit_len, 6);
    TU_EQ_STR(m.type.name, "unsigned int");
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "init_task", &a));
    TU_EQ_U64(a, 18446744071606217280ull);
    TU_ASSERT(tv_symtab_symbol(t, "modules", &a));
    TU_EQ_U64(a, 18446744071607325344ull);
    const char *name;
    uint64_t o;
    TU_ASSERT(tv_symtab_addr(t, 18446744071606217280ull + 0x10, 0x10000,
                             &name, &o));
    TU_EQ_U64(o, 0x10);
    TU_ASSERT(tv_symtab_type(t, "pointer", &ti));
    TU_EQ_INT(ti.kind, TV_K_BASE);
    TU_EQ_U64(ti.size, 8);
    TU_ASSERT(tv_symtab_type(t, "pid_type", &ti));
    TU_EQ_INT(ti.kind, TV_K_ENUM);
    int64_t v;
    TU_ASSERT(tv_symtab_const(t, "PIDTYPE_SID", &v));
    TU_EQ_INT(v, 3);
    TU_EQ_STR(tv_symtab_meta(t, "source"), "isf");
    TU_EQ_STR(tv_symtab_meta(t, "os"), "linux");
    TU_EQ_STR(tv_symtab_meta(t, "format"), "6.2.0");
    TU_EQ_STR(tv_symtab_meta(t, "producer"), "dwarf2json 0.9.0");
    TU_EQ_STR(tv_symtab_meta(t, "banner"),
              "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)"
              " (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU "
              "Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian "
              "6.1.192-2 (2026-11-16)\n");
    /* user_types + base_types + enums, less names used twice. */
    TU_ASSERT(tv_symtab_ntypes(t) >= 10318);
    tv_symtab_free(t);
}

TU_TEST(isf_debian316)
{
    tv_symtab_t *t = load_or_skip(D316);
    TU_ASSERT(t);
    TU_EQ_U64(tv_symtab_nsymbols(t), 83549);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "task_struct", &ti));
    TU_EQ_U64(ti.size, 2400);
    TU_EQ_U64(off(t, "task_struct", "tasks"), 640);
    TU_EQ_U64(off(t, "task_struct", "pid"), 832);
    TU_EQ_U64(off(t, "task_struct", "comm"), 1280);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "init_task", &a));
    TU_EQ_U64(a, 18446744071587345664ull);
    TU_EQ_STR(tv_symtab_meta(t, "producer"), "dwarf2json 0.6.0");
    tv_symtab_free(t);
}

TU_TEST(isf_windows10)
{
    tv_symtab_t *t = load_or_skip(DWIN);
    TU_ASSERT(t);
    TU_EQ_U64(tv_symtab_nsymbols(t), 39832);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "_EPROCESS", &ti));
    TU_EQ_U64(ti.size, 2624);
    TU_EQ_U64(off(t, "_EPROCESS", "ActiveProcessLinks"), 1096);
    TU_EQ_U64(off(t, "_EPROCESS", "UniqueProcessId"), 1088);
    TU_EQ_U64(off(t, "_EPROCESS", "ImageFileName"), 1448);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "PsActiveProcessHead", &a));
    TU_EQ_U64(a, 12706304);
    TU_EQ_STR(tv_symtab_meta(t, "os"), "windows");
    TU_EQ_STR(tv_symtab_meta(t, "guid"), "5278AFF86C341677D7D7835C85B7B844");
    TU_EQ_STR(tv_symtab_meta(t, "pdb_age"), "1");
    TU_EQ_STR(tv_symtab_meta(t, "pdb"), "ntkrnlmp.pdb");
    tv_symtab_free(t);
}

/* Small hand-written ISF documents: key orders, errors with positions. */
static int load_str(const char *s, tv_symtab_t **out)
{
    tv_symtab_t *t = NULL;
    err[0] = '\0';
    if (tv_symtab_new(&ctx, &t) != 0)
        return -100;
    int rc = tv_profile_load_json(&ctx, s, strlen(s), t);
    if (rc == 0)
        rc = tv_symtab_finish(t);
    if (rc != 0 || !out) {
        tv_symtab_free(t);
        t = NULL;
    }
    if (out)
        *out = t;
    return rc;
}

TU_TEST(isf_key_order)
{
    /* fields before kind and size; type before offset; sections in any
     * order; escaped names. */
    const char *doc =
        "{\"symbols\": {\"x\\u0079\": {\"type\": {\"kind\": \"function\"},"
        " \"address\": 18446744073709551615}},"
        " \"user_types\": {\"s\": {\"fields\": {\"a\": {\"type\": {\"kind\":"
        " \"pointer\", \"subtype\": {\"name\": \"s\", \"kind\": \"struct\"}},"
        " \"offset\": 8}, \"b\": {\"offset\": 16, \"type\": {\"kind\": "
        "\"array\", \"subtype\": {\"kind\": \"pointer\", \"subtype\": "
        "{\"kind\": \"base\", \"name\": \"char\"}}, \"count\": 4}}},"
        " \"size\": 48, \"kind\": \"union\"}},"
        " \"base_types\": {\"pointer\": {\"size\": 8}},"
        " \"metadata\": {\"format\": \"4.1.0\", \"windows\": {}}}";
    tv_symtab_t *t;
    TU_EQ_INT(load_str(doc, &t), 0);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "xy", &a));
    TU_EQ_U64(a, UINT64_MAX);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "s", &ti));
    TU_EQ_INT(ti.kind, TV_K_UNION);
    TU_EQ_U64(ti.size, 48);
    TU_EQ_INT(ti.nmembers, 2);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "s", "b[3]", &m));
    TU_EQ_U64(m.offset, 16 + 24);
    TU_ASSERT(tv_symtab_member(t, "s", "b", &m));
    TU_EQ_INT(m.type.elem_kind, TV_K_POINTER);
    TU_EQ_STR(m.type.name, "char");
    TU_EQ_STR(tv_symtab_meta(t, "os"), "windows");
    tv_symtab_free(t);
}

#define BAD(doc, status, needle)                                        \
    do {                                                                \
        TU_EQ_INT(load_str(doc, NULL), status);                         \
        TU_CONTAINS(err, needle);                                       \
    } while (0)

TU_TEST(isf_errors)
{
    BAD("{\"user_types\": {\"s\": {\"kind\": \"struct\", \"size\": 8, "
        "\"fields\": {\"a\": {\"offset\": -1, \"type\": {\"kind\": \"base\","
        " \"name\": \"int\"}}}}}}",
        TINYVMI_EFORMAT, "ISF user_types s: byte 78 (line 1, column 79): "
                         "bad field offset");
    BAD("{\"user_types\": {\"s\": {\"kind\": \"struct\", \"size\": 8, "
        "\"fields\": {\"a\": {\"offset\": 0}}}}}",
        TINYVMI_EFORMAT, "field without a type or an offset");
    BAD("{\"user_types\": {\"s\": {\"kind\": \"enum\"}}}", TINYVMI_EFORMAT,
        "not struct, class or union");
    BAD("{\"symbols\": {\"a\": {\"address\": 1e3}}}", TINYVMI_EFORMAT,
        "bad address");
    BAD("{\"symbols\": {\"a\": {\"address\": 18446744073709551616}}}",
        TINYVMI_EFORMAT, "bad address");
    BAD("{\"symbols\": {\"a\": {}}}", TINYVMI_EFORMAT,
        "symbol without an address");
    BAD("{\"symbols\": {\"a\": {\"address\": 1}}", TINYVMI_ETRUNC,
        "unterminated object");
    BAD("{\"symbols\": {}} x", TINYVMI_EFORMAT,
        "data after the top-level value");
    BAD("{\"metadata\": {\"format\": \"7.0.0\"}, \"symbols\": {}}",
        TINYVMI_ENOTSUP, "format version not supported");
    BAD("{\"metadata\": {}}", TINYVMI_EFORMAT, "no user_types or symbols");
    BAD("[1]", TINYVMI_EFORMAT, "not a JSON object");
    BAD("{\"user_types\": {\"s\": {\"kind\": \"struct\", \"size\": 8, "
        "\"fields\": {\"a\": {\"offset\": 0, \"type\": {\"kind\": "
        "\"pointer\"}}}}}}",
        TINYVMI_EFORMAT, "without a subtype");
    BAD("{\"user_types\": {\"s\": {\"kind\": \"struct\", \"size\": 8, "
        "\"fields\": {\"a\": {\"offset\": 0, \"type\": {\"kind\": "
        "\"quux\"}}}}}}",
        TINYVMI_EFORMAT, "unknown type kind");
    /* Types nested deeper than the loader allows. */
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n,
                          "{\"symbols\": {\"a\": {\"address\": 0, \"type\": ");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n,
                              "{\"kind\": \"pointer\", \"subtype\": ");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"kind\": \"void\"}");
    for (int i = 0; i < 40; i++)
        deep[n++] = '}';
    snprintf(deep + n, sizeof deep - n, "}}}");
    BAD(deep, TINYVMI_EFORMAT, "nested too deeply");
}

TU_TEST(isf_load_file_errors)
{
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_profile_load_file(&ctx, "/nonexistent/x.json", &t),
              TINYVMI_ENOENT);
    TU_CONTAINS(err, "profile /nonexistent/x.json: ");
    char path[512];
    snprintf(path, sizeof path, "%s/bad.json.xz", tu_tmp_dir());
    FILE *f = fopen(path, "wb");
    TU_ASSERT(f);
    fwrite("\xfd" "7zXZ\0garbage", 1, 13, f);
    fclose(f);
    TU_ASSERT(tv_profile_load_file(&ctx, path, &t) != 0);
    TU_CONTAINS(err, "bad.json.xz: xz data");
    snprintf(path, sizeof path, "%s/bad.json", tu_tmp_dir());
    f = fopen(path, "wb");
    TU_ASSERT(f);
    fputs("{\"symbols\": {\"a\": {\"address\": \"x\"}}}", f);
    fclose(f);
    TU_EQ_INT(tv_profile_load_file(&ctx, path, &t), TINYVMI_EFORMAT);
    TU_CONTAINS(err, "bad.json: ISF symbols a: byte 30 (line 1, column 31): bad address");
    TU_ASSERT(t == NULL);
}
