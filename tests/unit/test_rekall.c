/* Rekall loader: LibVMI's Windows XP profile (facts checked with python's
 * json module), a hand-written Linux profile, and a profile made from the
 * 6.1 ISF by tests/data/isf2rekall.py (an independent python converter):
 * both tables must agree. */
#include <sys/wait.h>
#include <unistd.h>

#include "profile/profile.h"
#include "tu.h"

#define SKIP 77
#define XP "/work/shared/data/profiles/libvmi-ntoskrnl.pdb." \
           "32962337f0f646388b39535cd8dd70e82.rekall.json"
#define D61 "/work/shared/data/debian-6.1.0-56-amd64/" \
            "vmlinux-6.1.0-56-amd64.isf.json.xz"

static char err[512];
static const tv_pctx_t ctx = {&tu_hooks, err, sizeof err};

static void need(const char *path)
{
    if (access(path, R_OK) != 0) {
        printf("skip: %s is missing\n", path);
        exit(SKIP);
    }
}

static uint64_t off(const tv_symtab_t *t, const char *type, const char *path)
{
    tv_member_t m;
    return tv_symtab_member(t, type, path, &m) ? m.offset : UINT64_MAX;
}

TU_TEST(rekall_xp)
{
    need(XP);
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_profile_load_file(&ctx, XP, &t), 0);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "_EPROCESS", &ti));
    TU_EQ_U64(ti.size, 608);
    TU_EQ_U64(off(t, "_EPROCESS", "ActiveProcessLinks"), 136);
    TU_EQ_U64(off(t, "_EPROCESS", "UniqueProcessId"), 132);
    TU_EQ_U64(off(t, "_EPROCESS", "ImageFileName"), 372);
    TU_EQ_U64(off(t, "_EPROCESS", "Pcb.DirectoryTableBase"), 24);
    TU_EQ_U64(off(t, "_EPROCESS", "Pcb.DirectoryTableBase[1]"), 28);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "_EPROCESS", "ImageFileName", &m));
    TU_EQ_INT(m.type.kind, TV_K_ARRAY);
    TU_EQ_INT(m.type.count, 16);
    TU_EQ_STR(m.type.name, "unsigned char");
    TU_ASSERT(tv_symtab_member(t, "_EPROCESS", "UniqueProcessId", &m));
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_VOID);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "PsActiveProcessHead", &a));
    TU_EQ_U64(a, 562392);
    /* 3555 constants + 6636 functions, no name in both (python). */
    TU_EQ_U64(tv_symtab_nsymbols(t), 3555 + 6636);
    int64_t v;
    TU_ASSERT(tv_symtab_const(t, "PagedPoolSession", &v));
    TU_EQ_INT(v, 33);
    TU_EQ_STR(tv_symtab_meta(t, "source"), "rekall");
    TU_EQ_STR(tv_symtab_meta(t, "os"), "windows");
    TU_EQ_STR(tv_symtab_meta(t, "arch"), "I386");
    TU_EQ_STR(tv_symtab_meta(t, "guid"), "32962337F0F646388B39535CD8DD70E83");
    TU_ASSERT(tv_symtab_type(t, "pointer", &ti));
    TU_EQ_U64(ti.size, 4);
    tv_symtab_free(t);
}

TU_TEST(rekall_small)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rekall_small.json", tu_data_dir());
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_profile_load_file(&ctx, path, &t), 0);
    TU_EQ_STR(tv_symtab_meta(t, "os"), "linux");
    TU_EQ_U64(off(t, "task_struct", "tasks.prev"), 2200);
    TU_EQ_U64(off(t, "task_struct", "mm"), 2272);
    TU_EQ_U64(off(t, "task_struct", "slots[3]"), 3008 + 24);
    tv_member_t m;
    TU_ASSERT(tv_symtab_member(t, "task_struct", "argv", &m));
    TU_EQ_INT(m.type.kind, TV_K_POINTER);
    TU_EQ_INT(m.type.elem_kind, TV_K_POINTER);
    TU_EQ_STR(m.type.name, "char");
    TU_ASSERT(tv_symtab_member(t, "task_struct", "slots", &m));
    TU_EQ_INT(m.type.elem_kind, TV_K_POINTER);
    TU_EQ_INT(m.type.count, 4);
    TU_ASSERT(tv_symtab_member(t, "task_struct", "flags", &m));
    TU_EQ_INT(m.type.kind, TV_K_BITFIELD);
    TU_EQ_INT(m.bit_pos, 3);
    TU_EQ_INT(m.bit_len, 2);
    TU_EQ_STR(m.type.name, "unsigned int");
    TU_ASSERT(tv_symtab_member(t, "task_struct", "state", &m));
    TU_EQ_INT(m.type.kind, TV_K_ENUM);
    TU_EQ_STR(m.type.name, "task_state");
    TU_ASSERT(tv_symtab_member(t, "task_struct", "fn", &m));
    TU_EQ_INT(m.type.elem_kind, TV_K_FUNCTION);
    TU_ASSERT(tv_symtab_member(t, "task_struct", "huge", &m));
    TU_EQ_INT(m.type.kind, TV_K_BASE);
    TU_ASSERT(tv_symtab_member(t, "task_struct", "comm", &m));
    TU_EQ_INT(m.type.elem_kind, TV_K_BASE);
    tv_typeinfo_t ti;
    TU_ASSERT(tv_symtab_type(t, "incomplete", &ti));
    TU_EQ_U64(ti.size, 0);
    TU_ASSERT(tv_symtab_type(t, "long", &ti));
    TU_EQ_U64(ti.size, 8); /* Linux AMD64 */
    int64_t v;
    TU_ASSERT(tv_symtab_const(t, "TASK_DEAD", &v));
    TU_EQ_INT(v, -1);
    TU_ASSERT(tv_symtab_const(t, "TASK_BIG", &v));
    TU_EQ_INT(v, -1);
    uint64_t a;
    TU_ASSERT(tv_symtab_symbol(t, "init_task", &a));
    TU_EQ_U64(a, 18446744071606217280ull);
    char ty;
    const char *n;
    TU_ASSERT(tv_symtab_symbol_at(t, 0, &n, &a, &ty));
    TU_EQ_STR(n, "start_kernel");
    TU_EQ_INT(ty, 'T');
    tv_symtab_free(t);
}

static int load_str(const char *s)
{
    tv_symtab_t *t = NULL;
    err[0] = '\0';
    if (tv_symtab_new(&ctx, &t) != 0)
        return -100;
    int rc = tv_profile_load_json(&ctx, s, strlen(s), t);
    tv_symtab_free(t);
    return rc;
}

#define BAD(doc, status, needle)                                        \
    do {                                                                \
        TU_EQ_INT(load_str(doc), status);                               \
        TU_CONTAINS(err, needle);                                       \
    } while (0)

TU_TEST(rekall_errors)
{
    BAD("{\"$STRUCTS\": {\"a\": [8, {\"f\": [0]}]}}", TINYVMI_EFORMAT,
        "Rekall profile $STRUCTS a: byte 30 (line 1, column 31): field "
        "without a type");
    BAD("{\"$STRUCTS\": {\"a\": [8, {\"f\": [0, [\"Pointer\"]]}]}}",
        TINYVMI_EFORMAT, "without a target");
    BAD("{\"$STRUCTS\": {\"a\": [8, {\"f\": [0, [\"BitField\", "
        "{\"start_bit\": 5, \"end_bit\": 5, \"target\": \"int\"}]]}]}}",
        TINYVMI_ERANGE, "bad BitField bits");
    BAD("{\"$STRUCTS\": {\"a\": [-8, {}]}}", TINYVMI_EFORMAT,
        "bad struct size");
    BAD("{\"$CONSTANTS\": {\"a\": \"0x10\"}}", TINYVMI_EFORMAT,
        "address is not an unsigned integer");
    BAD("{\"$ENUMS\": {\"e\": {\"x\": \"A\"}}}", TINYVMI_EFORMAT,
        "enum value is not a number");
    BAD("{\"$METADATA\": {}}", TINYVMI_EFORMAT, "not a Rekall profile");
    /* target_args nested past the limit */
    char deep[4096];
    size_t n = (size_t)snprintf(deep, sizeof deep,
                                "{\"$STRUCTS\": {\"a\": [8, {\"f\": [0, "
                                "[\"Pointer\", ");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n,
                              "{\"target\": \"Pointer\", \"target_args\": ");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"target\": \"int\"}");
    for (int i = 0; i < 40; i++)
        deep[n++] = '}';
    snprintf(deep + n, sizeof deep - n, "]]}]}}");
    BAD(deep, TINYVMI_EFORMAT, "nested too deeply");
}

/* Members of type that the ISF table has (anonymous ones flattened) must
 * be in the Rekall table at the same offset with the same type. */
static int compare_type(const tv_symtab_t *isf, const tv_symtab_t *rk,
                        const char *type)
{
    tv_typeinfo_t a, b;
    if (!tv_symtab_type(isf, type, &a))
        return 0; /* not in this kernel (module_memory before 6.4) */
    if (!tv_symtab_type(rk, type, &b) || a.size != b.size) {
        fprintf(stderr, "%s: missing or size differs\n", type);
        return 1;
    }
    int bad = 0;
    for (uint32_t i = 0; i < a.nmembers; i++) {
        tv_member_t m, r, flat;
        if (!tv_symtab_member_at(isf, type, i, &m))
            return 1;
        if (m.anonymous)
            continue; /* its members are checked through the lookups */
        if (!tv_symtab_member(isf, type, m.name, &flat) ||
            !tv_symtab_member(rk, type, m.name, &r)) {
            fprintf(stderr, "%s.%s missing\n", type, m.name);
            bad++;
            continue;
        }
        uint8_t kind = flat.type.kind == TV_K_UNION ? TV_K_STRUCT
                                                     : flat.type.kind;
        uint8_t ek = flat.type.elem_kind == TV_K_UNION ? TV_K_STRUCT
                                                        : flat.type.elem_kind;
        if (flat.offset != r.offset || kind != r.type.kind ||
            ek != r.type.elem_kind || flat.type.count != r.type.count ||
            strcmp(flat.type.name, r.type.name) != 0 ||
            flat.bit_pos != r.bit_pos || flat.bit_len != r.bit_len) {
            fprintf(stderr, "%s.%s differs: %" PRIu64 "/%" PRIu64
                    " kind %d/%d elem %d/%d %s/%s\n", type, m.name,
                    flat.offset, r.offset, kind, r.type.kind, ek,
                    r.type.elem_kind, flat.type.name, r.type.name);
            bad++;
        }
    }
    return bad;
}

TU_TEST(rekall_from_isf)
{
    need(D61);
    char out[512], cmd[2048];
    snprintf(out, sizeof out, "%s/61.rekall.json", tu_tmp_dir());
    snprintf(cmd, sizeof cmd, "python3 %s/isf2rekall.py '%s' '%s'",
             tu_data_dir(), D61, out);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127) {
        printf("skip: python3 not available\n");
        exit(SKIP);
    }
    TU_EQ_INT(WEXITSTATUS(st), 0);
    tv_symtab_t *isf = NULL, *rk = NULL;
    TU_EQ_INT(tv_profile_load_file(&ctx, D61, &isf), 0);
    TU_EQ_INT(tv_profile_load_file(&ctx, out, &rk), 0);
    TU_EQ_STR(tv_symtab_meta(rk, "source"), "rekall");
    TU_EQ_STR(tv_symtab_meta(rk, "os"), "linux");
    static const char *const types[] = {"task_struct", "mm_struct",
                                        "list_head", "module",
                                        "module_layout", "module_memory"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        TU_EQ_INT(compare_type(isf, rk, types[i]), 0);
    TU_EQ_U64(off(rk, "mm_struct", "pgd"), 0x48);
    TU_EQ_U64(off(rk, "module", "core_layout.base"), 320);
    static const char *const syms[] = {"init_task", "modules", "linux_banner"};
    for (size_t i = 0; i < 3; i++) {
        uint64_t a, b;
        TU_ASSERT(tv_symtab_symbol(isf, syms[i], &a));
        TU_ASSERT(tv_symtab_symbol(rk, syms[i], &b));
        TU_EQ_U64(a, b);
    }
    TU_EQ_U64(tv_symtab_nsymbols(rk), tv_symtab_nsymbols(isf));
    tv_symtab_free(isf);
    tv_symtab_free(rk);
}
