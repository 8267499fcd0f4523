/*
 * tinyvmi profile: a Volatility 3 ISF (dwarf2json's format 6.x) from a
 * kernel image alone: types from its BTF, symbols from its kallsyms; or,
 * for an ELF vmlinux with DWARF (a -dbg package's), from its DWARF and
 * symbol table (dwarf.c).  Both write through isf.c.
 *
 * This command reads kernel images, not dumps, so it uses the library's
 * internal image, BTF and kallsyms code (src/hosted/kimage.h,
 * src/profile/btf.h, src/profile/kallsyms.h) rather than the public API.
 * The output is streamed; it is written beside its final name and renamed
 * into place.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "isf.h"
#include "core/tv.h"
#include "hosted/kimage.h"
#include "profile/btf.h"
#include "profile/kallsyms.h"

#define TYPE_DEPTH 32

/* ---- Writing ------------------------------------------------------------------------ */

typedef struct pw {
    FILE *f;
    const tv_btf_t *btf;
    const tv_kimage_t *img;
    isf_names_t vars;  /* BTF variables: name -> type id */
    isf_names_t seen;  /* names written in the current section */
    bool oom;
    bool first;
    size_t nsyms, ntypes, nenums, nbase;
} pw_t;

static void sep(pw_t *w)
{
    isf_sep(w->f, &w->first);
}

/* A member or symbol type, nested as dwarf2json writes it. */
static void write_type(pw_t *w, uint32_t id, int depth)
{
    tv_btf_type_t t;
    char buf[40];
    uint32_t s = tv_btf_skip(w->btf, id);
    if (depth > TYPE_DEPTH || !tv_btf_type(w->btf, s, &t)) {
        fputs("{\"kind\": \"base\", \"name\": \"void\"}", w->f);
        return;
    }
    switch (t.kind) {
    case TV_BTF_INT:
    case TV_BTF_FLOAT:
        fputs("{\"kind\": \"base\", \"name\": ", w->f);
        cli_json_str(w->f, t.name);
        fputc('}', w->f);
        return;
    case TV_BTF_PTR:
        fputs("{\"kind\": \"pointer\", \"subtype\": ", w->f);
        write_type(w, t.size_or_type, depth + 1);
        fputc('}', w->f);
        return;
    case TV_BTF_ARRAY:
        fprintf(w->f, "{\"count\": %" PRIu32 ", \"kind\": \"array\", "
                "\"subtype\": ", tv_le32(t.extra + 8));
        write_type(w, tv_le32(t.extra), depth + 1);
        fputc('}', w->f);
        return;
    case TV_BTF_STRUCT:
    case TV_BTF_UNION:
    case TV_BTF_ENUM:
    case TV_BTF_ENUM64:
    case TV_BTF_FWD:
        fprintf(w->f, "{\"kind\": \"%s\", \"name\": ",
                t.kind == TV_BTF_UNION || (t.kind == TV_BTF_FWD && t.kflag)
                    ? "union"
                : t.kind == TV_BTF_STRUCT || t.kind == TV_BTF_FWD ? "struct"
                                                                  : "enum");
        cli_json_str(w->f, tv_btf_ref_name(w->btf, id, buf, sizeof buf, NULL));
        fputc('}', w->f);
        return;
    case TV_BTF_FUNC:
    case TV_BTF_FUNC_PROTO:
        fputs("{\"kind\": \"function\"}", w->f);
        return;
    default:
        fputs("{\"kind\": \"base\", \"name\": \"void\"}", w->f);
    }
}

static void write_base(pw_t *w, const char *name, uint64_t size, bool sign,
                       const char *kind)
{
    bool oom = false;
    if (!isf_names_add(&w->seen, name, 0, &oom)) {
        w->oom |= oom;
        return;
    }
    sep(w);
    isf_base(w->f, name, size, sign, kind);
    w->nbase++;
}

static void base_types(pw_t *w)
{
    fputs("  \"base_types\": {", w->f);
    w->first = true;
    for (uint32_t id = 1; id <= w->btf->ntypes; id++) {
        tv_btf_type_t t;
        tv_btf_type(w->btf, id, &t);
        if ((t.kind != TV_BTF_INT && t.kind != TV_BTF_FLOAT) || !t.name[0])
            continue;
        uint32_t enc = t.kind == TV_BTF_INT ? tv_le32(t.extra) >> 24 : 1;
        const char *kind = t.kind == TV_BTF_FLOAT ? "float"
                           : enc & 4          ? "bool"
                           : enc & 2          ? "char"
                                              : "int";
        write_base(w, t.name, t.size_or_type, (enc & 1) != 0, kind);
    }
    write_base(w, "void", 0, false, "void");
    write_base(w, "pointer", 8, false, "int");
    fputs("\n  },\n", w->f);
    isf_names_free(&w->seen);
}

/* Type id as a user_types/enums entry: the type itself under its name, or
 * for a typedef of a struct/union/enum, that type under the typedef's
 * name (dwarf2json lists both).  t->kind is TV_BTF_UNKN for the rest. */
static const char *named(const tv_btf_t *b, uint32_t id, tv_btf_type_t *t,
                         char *buf, size_t len)
{
    tv_btf_type(b, id, t);
    if (t->kind != TV_BTF_TYPEDEF)
        return tv_btf_tname(b, t, buf, len);
    const char *name = t->name;
    uint32_t s;
    tv_btf_ref_name(b, id, buf, len, &s);
    if (!name[0] || !tv_btf_type(b, s, t) ||
        (t->kind != TV_BTF_STRUCT && t->kind != TV_BTF_UNION))
        t->kind = TV_BTF_UNKN;
    return name;
}

static void write_member(pw_t *w, const tv_btf_member_t *m, const char *name,
                         bool anon)
{
    /* As dwarf2json: a bitfield's offset is the byte holding its first bit. */
    unsigned pos = m->bit_size ? (unsigned)(m->bit_offset & 7) : 0;
    isf_field_begin(w->f, &w->first, name, m->bit_size, pos);
    write_type(w, m->type, 0);
    isf_field_end(w->f, m->bit_offset / 8, m->bit_size, anon);
}

static void user_type(pw_t *w, const tv_btf_type_t *t, const char *name)
{
    char fname[40];
    bool oom = false;
    if (!isf_names_add(&w->seen, name, t->id, &oom)) {
        w->oom |= oom;
        return;
    }
    sep(w);
    isf_struct_begin(w->f, name, t->kind == TV_BTF_UNION, t->size_or_type);
    w->first = true;
    unsigned anon = 0;
    for (uint16_t i = 0; i < t->vlen; i++) {
        tv_btf_member_t m;
        tv_btf_type_t mt;
        tv_btf_member(w->btf, t, i, &m);
        if (m.name[0]) {
            write_member(w, &m, m.name, false);
            continue;
        }
        if (!tv_btf_type(w->btf, tv_btf_skip(w->btf, m.type), &mt) ||
            (mt.kind != TV_BTF_STRUCT && mt.kind != TV_BTF_UNION))
            continue;
        isf_anon_field(fname, sizeof fname, anon++);
        write_member(w, &m, fname, true);
    }
    isf_struct_end(w->f, !w->first);
    w->first = false;
    w->ntypes++;
}

static void user_types(pw_t *w)
{
    fputs("  \"user_types\": {", w->f);
    w->first = true;
    for (uint32_t id = 1; id <= w->btf->ntypes; id++) {
        tv_btf_type_t t;
        char buf[40];
        const char *name = named(w->btf, id, &t, buf, sizeof buf);
        if (t.kind == TV_BTF_STRUCT || t.kind == TV_BTF_UNION)
            user_type(w, &t, name);
    }
    fputs("\n  },\n", w->f);
    isf_names_free(&w->seen);
}

static void enums(pw_t *w)
{
    fputs("  \"enums\": {", w->f);
    w->first = true;
    for (uint32_t id = 1; id <= w->btf->ntypes; id++) {
        tv_btf_type_t t;
        char buf[40];
        bool oom = false;
        const char *name = named(w->btf, id, &t, buf, sizeof buf);
        if (t.kind != TV_BTF_ENUM && t.kind != TV_BTF_ENUM64)
            continue;
        if (!isf_names_add(&w->seen, name, id, &oom)) {
            w->oom |= oom;
            continue;
        }
        bool wide = t.kind == TV_BTF_ENUM64;
        sep(w);
        fputs("    ", w->f);
        cli_json_str(w->f, name);
        fprintf(w->f, ": {\"size\": %" PRIu32 ", \"base\": \"%s\", "
                "\"constants\": {", t.size_or_type,
                isf_enum_base(t.size_or_type, t.kflag));
        for (uint16_t i = 0; i < t.vlen; i++) {
            const uint8_t *e = t.extra + (size_t)i * (wide ? 12 : 8);
            uint32_t noff = tv_le32(e);
            const char *en = noff < w->btf->strs_len ? w->btf->strs + noff
                                                      : "";
            fputs(i ? ", " : "", w->f);
            cli_json_str(w->f, en);
            if (wide) {
                uint64_t v = tv_le32(e + 4) | (uint64_t)tv_le32(e + 8) << 32;
                if (t.kflag)
                    fprintf(w->f, ": %" PRId64, (int64_t)v);
                else
                    fprintf(w->f, ": %" PRIu64, v);
            } else if (t.kflag) {
                fprintf(w->f, ": %" PRId32, (int32_t)tv_le32(e + 4));
            } else {
                fprintf(w->f, ": %" PRIu32, tv_le32(e + 4));
            }
        }
        fputs("}}", w->f);
        w->nenums++;
    }
    fputs("\n  },\n", w->f);
    isf_names_free(&w->seen);
}

/* Symbols whose type BTF does not carry (it has per-cpu variables only). */
static const struct {
    const char *sym, *kind, *type;
} known[] = {
    {"init_task", "struct", "task_struct"},
    {"modules", "struct", "list_head"},
    {"init_mm", "struct", "mm_struct"},
    {"init_nsproxy", "struct", "nsproxy"},
    {"init_pid_ns", "struct", "pid_namespace"},
    {"init_uts_ns", "struct", "uts_namespace"},
    {"super_blocks", "struct", "list_head"},
};

static int one_symbol(void *arg, const char *name, size_t len, uint64_t addr,
                      char type)
{
    pw_t *w = arg;
    (void)len;
    (void)type;
    bool oom = false;
    if (!isf_names_add(&w->seen, name, 0, &oom)) {
        w->oom |= oom;
        return oom ? TINYVMI_ENOMEM : 0;
    }
    sep(w);
    fputs("    ", w->f);
    cli_json_str(w->f, name);
    fputs(": {", w->f);
    uint32_t tid;
    if (strcmp(name, "linux_banner") == 0) {
        uint8_t banner[1024];
        size_t n = 0;
        const tv_reader_t *r = tv_kimage_reader(w->img);
        while (n < sizeof banner &&
               r->read(r->ctx, addr + n, banner + n, 1) == 0 && banner[n])
            n++;
        fputs("\"type\": {\"count\": 0, \"kind\": \"array\", \"subtype\": "
              "{\"kind\": \"base\", \"name\": \"char\"}}", w->f);
        if (n < sizeof banner && n > 0) {
            fputs(", \"constant_data\": \"", w->f);
            isf_b64(w->f, banner, n + 1);
            fputc('"', w->f);
        }
        fputs(", ", w->f);
    } else if (isf_names_get(&w->vars, name, &tid)) {
        fputs("\"type\": ", w->f);
        write_type(w, tid, 0);
        fputs(", ", w->f);
    } else {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(known[i].sym, name) == 0) {
                fprintf(w->f, "\"type\": {\"kind\": \"%s\", \"name\": "
                        "\"%s\"}, ", known[i].kind, known[i].type);
                break;
            }
    }
    fprintf(w->f, "\"address\": %" PRIu64 "}", addr);
    w->nsyms++;
    return 0;
}

/* ---- The command ------------------------------------------------------------------ */

static void *pr_alloc(void *ctx, void *p, size_t old, size_t n)
{
    (void)ctx;
    (void)old;
    if (!n) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static int write_isf(const cli_t *c, FILE *f, const tv_kimage_t *img,
                     const tv_btf_t *btf, const tv_kallsyms_t *ks,
                     const tv_pctx_t *pc)
{
    pw_t w = {.f = f, .btf = btf, .img = img};
    for (uint32_t id = 1; id <= btf->ntypes && !w.oom; id++) {
        tv_btf_type_t t;
        tv_btf_type(btf, id, &t);
        if (t.kind == TV_BTF_VAR && t.name[0])
            isf_names_add(&w.vars, t.name, t.size_or_type, &w.oom);
    }
    isf_metadata(f);
    base_types(&w);
    user_types(&w);
    enums(&w);
    fputs("  \"symbols\": {", f);
    w.first = true;
    int rc = tv_kallsyms_each(pc, tv_kimage_reader(img), ks, one_symbol, &w);
    fputs("\n  }\n}\n", f);
    isf_names_free(&w.seen);
    isf_names_free(&w.vars);
    if (w.oom)
        return cli_fail(c, CLI_FAILED, "out of memory");
    if (rc)
        return cli_fail(c, CLI_FAILED, "%s: kallsyms: %s", c->target,
                        pc->err);
    fprintf(stderr, "tinyvmi: profile: %zu base types, %zu structs/unions, "
            "%zu enums, %zu symbols\n", w.nbase, w.ntypes, w.nenums,
            w.nsyms);
    return CLI_OK;
}

/* Where to look for kallsyms and BTF: .rodata and .BTF if the image names
 * them, else all of it. */
static void ranges(const tv_kimage_t *img, uint64_t *ks_lo, uint64_t *ks_hi)
{
    uint64_t a, s;
    if (tv_kimage_section(img, ".rodata", &a, &s) && s) {
        *ks_lo = a;
        *ks_hi = a + s;
        return;
    }
    tv_kimage_span(img, ks_lo, ks_hi);
}

static int btf_profile(cli_t *c)
{
    char err[512] = "";
    tinyvmi_hooks_t hooks = {.version = TINYVMI_HOOKS_VERSION,
                             .alloc = pr_alloc};
    tv_pctx_t pc = {&hooks, err, sizeof err};
    tv_kimage_t *img = NULL;
    tv_btf_t btf = {0};
    tv_kallsyms_t ks;
    isf_out_t o = {0};
    uint64_t at = 0, len = 0, lo, hi;
    int rc = tv_kimage_open(c->target, &img, err, sizeof err);
    if (rc) {
        rc = cli_fail(c, CLI_NOTARGET, "cannot open %s: %s", c->target, err);
        goto out;
    }
    if (!tv_kimage_section(img, ".BTF", &at, &len)) {
        tv_kimage_span(img, &lo, &hi);
        if (tv_btf_find(&pc, tv_kimage_reader(img), lo, hi, &at, &len)) {
            rc = cli_fail(c, CLI_FAILED, "%s (%s): no DWARF (.debug_info) "
                          "and %s", c->target, tv_kimage_format(img), err);
            goto out;
        }
    }
    const uint8_t *blob = tv_kimage_ptr(img, at, len);
    if (!blob || tv_btf_open(&pc, blob, (size_t)len, &btf)) {
        rc = cli_fail(c, CLI_FAILED, "%s: BTF at 0x%" PRIx64 ": %s",
                      c->target, at, blob ? err : "outside the image");
        goto out;
    }
    ranges(img, &lo, &hi);
    if (tv_kallsyms_find(&pc, tv_kimage_reader(img), lo, hi, &ks)) {
        rc = cli_fail(c, CLI_FAILED, "%s: %s", c->target, err);
        goto out;
    }
    if ((rc = isf_open(c, &o)))
        goto out;
    rc = isf_close(c, &o, write_isf(c, o.f, img, &btf, &ks, &pc));
out:
    tv_btf_close(&btf);
    tv_kimage_close(img);
    return rc;
}

/* An ELF vmlinux with DWARF (a -dbg package's) goes to dwarf.c; anything
 * else is read as a kernel image with BTF and kallsyms. */
static int profile_run(cli_t *c)
{
    if (!dw_is_dwarf(c->target))
        return btf_profile(c);
    isf_out_t o = {0};
    int rc = isf_open(c, &o);
    return rc ? rc : isf_close(c, &o, dw_profile(c, o.f));
}

const cli_cmd_t cli_cmd_profile = {
    .name = "profile",
    .synopsis = "VMLINUZ|VMLINUX [-o FILE.json] [--force]",
    .summary = "write a Volatility 3 ISF from a kernel image's BTF and "
               "kallsyms, or a vmlinux's DWARF",
    .help = "VMLINUZ is a kernel image: an x86 bzImage (xz, gzip, zstd, lz4\n"
            "or lzma payload), an ELF vmlinux (also compressed as a whole) or\n"
            "an arm64 Image(.gz).  Types (structs, unions, enums, base types)\n"
            "come from its BTF (CONFIG_DEBUG_INFO_BTF), symbols and addresses\n"
            "(link-time, before KASLR) from its kallsyms (all symbols with\n"
            "CONFIG_KALLSYMS_ALL).  The ISF follows dwarf2json's format 6.x;\n"
            "anonymous structs and unions are named unnamed_<hash of their\n"
            "content> (dwarf2json hashes DWARF, which BTF does not carry).\n"
            "Symbols carry types only where BTF or a short built-in list\n"
            "knows them (init_task, modules, linux_banner with its text...).\n"
            "An ELF vmlinux with DWARF (.debug_info, e.g. from Debian's\n"
            "linux-image-*-dbg) is read instead for its DWARF types and its\n"
            "symbol table, with each variable's type: as dwarf2json, the\n"
            "last definition of a name wins, and typedefs of structs are\n"
            "listed under the typedef's name.\n"
            "FILE is written beside its final name and renamed into place;\n"
            "an existing FILE is replaced only with --force.  Without -o the\n"
            "ISF goes to standard output.\n",
    .opts = OPT_OUTPUT | OPT_FORCE,
    .npos = 0,
    .run = profile_run,
    .no_target = true,
};
