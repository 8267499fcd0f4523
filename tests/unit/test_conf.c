/* libvmi.conf parser (src/config/conf.c) and the config forms of
 * vmi_init_os (src/hosted/config_host.c).  Expected values are written
 * here by hand from the texts, not taken from the parser. */
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf.h"
#include "hosted/config_host.h"
#include "tu.h"

static char err[256];
static const tv_pctx_t pctx = {&tu_hooks, err, sizeof err};

static int parse(const char *text, tv_conf_t **out)
{
    err[0] = '\0';
    return tv_conf_parse(&pctx, text, strlen(text), out);
}

/* Parses text, which must fail with status and exactly message msg. */
#define EXPECT_ERR(text, status, msg)                                     \
    do {                                                                  \
        tv_conf_t *c_ = (tv_conf_t *)1;                                   \
        TU_EQ_INT(parse((text), &c_), (status));                          \
        TU_ASSERT(c_ == NULL);                                            \
        TU_EQ_STR(err, (msg));                                            \
    } while (0)

#define EXPECT_U64(e, key, val)                                           \
    do {                                                                  \
        uint64_t v_ = 0xdeadbeef;                                         \
        TU_ASSERT(tv_conf_u64((e), (key), &v_));                          \
        TU_EQ_U64(v_, (val));                                             \
    } while (0)

TU_TEST(conf_basic_linux)
{
    tv_conf_t *c;
    TU_EQ_INT(parse("vm1 {\n"
                    "    ostype = \"Linux\";\n"
                    "    sysmap = \"/boot/System.map-6.1\";\n"
                    "    linux_tasks = 0x890;\n"
                    "    linux_mm = 0x8e0;\n"
                    "    linux_pid = 2416;\n"
                    "    linux_name = 0xBA0;\n"
                    "    linux_pgd = 0x48;\n"
                    "    linux_init_task = 0xffffffff82a0c940;\n"
                    "    linux_kaslr = 0x1c000000;\n"
                    "    kpgd = 0x10c000;\n"
                    "}\n",
                    &c),
              0);
    TU_EQ_U64(tv_conf_count(c), 1);
    const tv_conf_entry_t *e = tv_conf_find(c, "vm1");
    TU_ASSERT(e != NULL);
    TU_EQ_STR(tv_conf_name(e), "vm1");
    TU_EQ_U64(tv_conf_line(e), 1);
    TU_EQ_U64(tv_conf_nkeys(e), 10);
    TU_EQ_STR(tv_conf_str(e, "ostype"), "Linux");
    TU_EQ_STR(tv_conf_str(e, "sysmap"), "/boot/System.map-6.1");
    EXPECT_U64(e, "linux_tasks", 0x890);
    EXPECT_U64(e, "linux_mm", 0x8e0);
    EXPECT_U64(e, "linux_pid", 2416);
    EXPECT_U64(e, "linux_name", 0xba0);
    EXPECT_U64(e, "linux_pgd", 0x48);
    EXPECT_U64(e, "linux_init_task", 0xffffffff82a0c940ull);
    EXPECT_U64(e, "linux_kaslr", 0x1c000000);
    EXPECT_U64(e, "kpgd", 0x10c000);
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    /* Types are kept apart. */
    TU_ASSERT(tv_conf_str(e, "linux_pid") == NULL);
    TU_ASSERT(!tv_conf_u64(e, "ostype", NULL));
    TU_ASSERT(!tv_conf_u64(e, "win_pid", NULL));
    tv_conf_kv_t kv;
    TU_ASSERT(tv_conf_kv_at(e, 2, &kv));
    TU_EQ_STR(kv.key, "linux_tasks");
    TU_EQ_STR(kv.str, "0x890");
    TU_EQ_U64(kv.line, 4);
    TU_ASSERT(kv.known);
    TU_EQ_INT(kv.type, TV_CONF_NUM);
    TU_ASSERT(!tv_conf_kv_at(e, 10, &kv));
    TU_EQ_U64(tv_conf_nwarnings(c), 0);
    TU_ASSERT(tv_conf_find(c, "vm2") == NULL);
    tv_conf_free(c);
}

/* Every key LibVMI documents, with its type. */
TU_TEST(conf_every_known_key)
{
    static const char *const nums[] = {
        "kpgd", "linux_tasks", "linux_mm", "linux_pid", "linux_name",
        "linux_pgd", "linux_addr", "linux_init_task", "linux_kaslr",
        "win_ntoskrnl", "win_ntoskrnl_va", "win_tasks", "win_pdbase",
        "win_pid", "win_pname", "win_kdvb", "win_kdbg", "win_kpcr",
        "win_sysproc", "freebsd_name", "freebsd_pid", "freebsd_vmspace",
        "freebsd_pmap", "freebsd_pgd"};
    static const char *const strs[] = {"ostype", "os_type", "sysmap",
                                       "rekall_profile", "volatility_ist"};
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "all {\n");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        TU_EQ_INT(tv_conf_key_type(nums[i]), TV_CONF_NUM);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s = %zu;\n",
                              nums[i], i + 100);
    }
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        TU_EQ_INT(tv_conf_key_type(strs[i]), TV_CONF_STR);
        n += (size_t)snprintf(text + n, sizeof text - n, "%s = \"s%zu\";\n",
                              strs[i], i);
    }
    snprintf(text + n, sizeof text - n, "}\n");
    tv_conf_t *c;
    TU_EQ_INT(parse(text, &c), 0);
    const tv_conf_entry_t *e = tv_conf_find(c, "all");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        EXPECT_U64(e, nums[i], i + 100);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        char want[8];
        snprintf(want, sizeof want, "s%zu", i);
        TU_EQ_STR(tv_conf_str(e, strs[i]), want);
    }
    /* The one warning: linux_addr is obsolete. */
    TU_EQ_U64(tv_conf_nwarnings(c), 1);
    TU_EQ_STR(tv_conf_warning(c, 0),
              "line 8: 'linux_addr' is no longer used by LibVMI");
    TU_EQ_INT(tv_conf_key_type("win_peb"), TV_CONF_NONE);
    tv_conf_free(c);
}

/* The sample file: Linux and Windows entries, comments, decimal. */
TU_TEST(conf_sample_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/libvmi.conf", tu_data_dir());
    FILE *f = fopen(path, "rb");
    TU_ASSERT(f != NULL);
    static char text[16384];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    tv_conf_t *c;
    err[0] = '\0';
    TU_EQ_INT(tv_conf_parse(&pctx, text, n, &c), 0);
    TU_EQ_U64(tv_conf_count(c), 5);
    TU_EQ_STR(tv_conf_name(tv_conf_entry_at(c, 0)), "debian12");
    TU_EQ_STR(tv_conf_name(tv_conf_entry_at(c, 4)), "dump.elf");
    const tv_conf_entry_t *e = tv_conf_find(c, "debian12");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    EXPECT_U64(e, "linux_tasks", 0x890);
    EXPECT_U64(e, "linux_name", 0xba0);
    EXPECT_U64(e, "linux_pgd", 0x48);
    e = tv_conf_find(c, "win7_64");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_WINDOWS);
    TU_EQ_STR(tv_conf_str(e, "rekall_profile"),
              "/var/lib/libvmi/win7sp1x64.json");
    EXPECT_U64(e, "win_ntoskrnl_va", 0xfffff80002614000ull);
    EXPECT_U64(e, "kpgd", 0x187000);
    e = tv_conf_find(c, "winxp");
    EXPECT_U64(e, "win_pname", 372);
    EXPECT_U64(e, "win_pdbase", 24);
    TU_EQ_U64(tv_conf_line(e), 38);
    e = tv_conf_find(c, "isf-guest");
    TU_EQ_STR(tv_conf_str(e, "volatility_ist"),
              "/var/lib/tinyvmi/debian-6.1.0-56-amd64.json");
    TU_EQ_U64(tv_conf_nwarnings(c), 0);
    tv_conf_free(c);
}

TU_TEST(conf_comments_and_whitespace)
{
    tv_conf_t *c;
    /* Comments anywhere a space may be, CRLF, tabs, no spaces at all,
     * empty assignments, a comment on the last line without a newline. */
    TU_EQ_INT(parse("# head\r\n"
                    "a{ostype=\"Windows\";win_pid=0x84;}#tail\r\n"
                    "\tb\t{ # open\n"
                    "  ;; win_tasks # the key\n"
                    "   = # equals\n"
                    "   0x88 # value\n"
                    "   ; # end\n"
                    "}\n"
                    "c{}# no newline",
                    &c),
              0);
    TU_EQ_U64(tv_conf_count(c), 3);
    EXPECT_U64(tv_conf_find(c, "a"), "win_pid", 0x84);
    TU_EQ_INT(tv_conf_ostype(tv_conf_find(c, "a")), VMI_OS_WINDOWS);
    EXPECT_U64(tv_conf_find(c, "b"), "win_tasks", 0x88);
    TU_EQ_U64(tv_conf_line(tv_conf_find(c, "b")), 3);
    TU_EQ_U64(tv_conf_nkeys(tv_conf_find(c, "c")), 0);
    tv_conf_free(c);
    /* Empty input and comments only: no entries, no error. */
    TU_EQ_INT(parse("", &c), 0);
    TU_EQ_U64(tv_conf_count(c), 0);
    tv_conf_free(c);
    TU_EQ_INT(parse("# nothing\n\n   # here\n", &c), 0);
    TU_EQ_U64(tv_conf_count(c), 0);
    tv_conf_free(c);
}

TU_TEST(conf_numbers)
{
    tv_conf_t *c;
    TU_EQ_INT(parse("n {\n"
                    " linux_pid = 0;\n"
                    " linux_mm = 0xffffffffffffffff;\n"
                    " linux_name = 18446744073709551615;\n"
                    " linux_pgd = 010;\n" /* octal, as strtoull base 0 */
                    " linux_tasks = 0X1f;\n"
                    " win_pid = 00;\n"
                    "}",
                    &c),
              0);
    const tv_conf_entry_t *e = tv_conf_find(c, "n");
    EXPECT_U64(e, "linux_pid", 0);
    EXPECT_U64(e, "linux_mm", UINT64_MAX);
    EXPECT_U64(e, "linux_name", UINT64_MAX);
    EXPECT_U64(e, "linux_pgd", 8);
    EXPECT_U64(e, "linux_tasks", 0x1f);
    EXPECT_U64(e, "win_pid", 0);
    tv_conf_free(c);
    EXPECT_ERR("n {\n linux_mm = 0x10000000000000000;\n}", TINYVMI_ERANGE,
               "line 2, column 13: number '0x10000000000000000' for "
               "'linux_mm' does not fit in 64 bits");
    EXPECT_ERR("n {\n linux_mm = 18446744073709551616;\n}", TINYVMI_ERANGE,
               "line 2, column 13: number '18446744073709551616' for "
               "'linux_mm' does not fit in 64 bits");
    EXPECT_ERR("n { linux_pid = 0x; }", TINYVMI_EFORMAT,
               "line 1, column 17: 'linux_pid' takes a number, not '0x'");
    EXPECT_ERR("n { linux_pid = 12ab; }", TINYVMI_EFORMAT,
               "line 1, column 17: 'linux_pid' takes a number, not '12ab'");
    EXPECT_ERR("n { linux_pid = 09; }", TINYVMI_EFORMAT,
               "line 1, column 17: 'linux_pid' takes a number, not '09'");
    EXPECT_ERR("n { linux_pid = -1; }", TINYVMI_EFORMAT,
               "line 1, column 17: 'linux_pid' takes a number, not '-1'");
    EXPECT_ERR("n { linux_pid = \"12\"; }", TINYVMI_EFORMAT,
               "line 1, column 17: 'linux_pid' takes a number, not a quoted "
               "string");
}

TU_TEST(conf_strings)
{
    tv_conf_t *c;
    /* Bare paths and words are strings for string keys, even numeric
     * looking ones; quoted strings keep spaces and '#'. */
    TU_EQ_INT(parse("s {\n"
                    " sysmap = /boot/System.map-6.1.0-56-amd64;\n"
                    " ostype = Linux;\n"
                    " rekall_profile = \"/a b/#c;d{}.json\";\n"
                    " volatility_ist = 2024.json;\n"
                    " os_type = \"\";\n"
                    "}",
                    &c),
              0);
    const tv_conf_entry_t *e = tv_conf_find(c, "s");
    TU_EQ_STR(tv_conf_str(e, "sysmap"), "/boot/System.map-6.1.0-56-amd64");
    TU_EQ_STR(tv_conf_str(e, "ostype"), "Linux");
    TU_EQ_STR(tv_conf_str(e, "rekall_profile"), "/a b/#c;d{}.json");
    TU_EQ_STR(tv_conf_str(e, "volatility_ist"), "2024.json");
    TU_EQ_STR(tv_conf_str(e, "os_type"), "");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    tv_conf_free(c);
    /* LibVMI's os_type alias, and exact OS names. */
    TU_EQ_INT(parse("a { os_type = \"FreeBSD\"; } b { ostype = \"linux\"; }",
                    &c),
              0);
    TU_EQ_INT(tv_conf_ostype(tv_conf_find(c, "a")), VMI_OS_FREEBSD);
    TU_EQ_INT(tv_conf_ostype(tv_conf_find(c, "b")), VMI_OS_UNKNOWN);
    tv_conf_free(c);
    EXPECT_ERR("s {\n  sysmap = \"/boot/map;\n}", TINYVMI_EFORMAT,
               "line 2, column 12: unterminated string: no closing '\"' on "
               "this line");
    EXPECT_ERR("s { sysmap = \"/boot", TINYVMI_EFORMAT,
               "line 1, column 14: unterminated string: no closing '\"' on "
               "this line");
    EXPECT_ERR("s { sysmap = \"a\001b\"; }", TINYVMI_EFORMAT,
               "line 1, column 16: control character 0x01 in a string");
    EXPECT_ERR("s { ostype = ; }", TINYVMI_EFORMAT,
               "line 1, column 14: expected a value for 'ostype', found ';'");
}

TU_TEST(conf_several_entries)
{
    tv_conf_t *c;
    TU_EQ_INT(parse("one { linux_pid = 1; }\n"
                    "two { linux_pid = 2; }\n"
                    "one { linux_pid = 3; }\n"
                    "\"with space\" { linux_pid = 4; }\n"
                    "x { }\n",
                    &c),
              0);
    TU_EQ_U64(tv_conf_count(c), 5);
    /* LibVMI keeps the most recent entry of a name. */
    EXPECT_U64(tv_conf_find(c, "one"), "linux_pid", 3);
    TU_EQ_U64(tv_conf_line(tv_conf_find(c, "one")), 3);
    EXPECT_U64(tv_conf_find(c, "two"), "linux_pid", 2);
    EXPECT_U64(tv_conf_find(c, "with space"), "linux_pid", 4);
    EXPECT_U64(tv_conf_entry_at(c, 0), "linux_pid", 1);
    TU_ASSERT(tv_conf_entry_at(c, 5) == NULL);
    TU_ASSERT(tv_conf_find(c, "on") == NULL);
    tv_conf_free(c);
}

TU_TEST(conf_unknown_and_repeated_keys)
{
    tv_conf_t *c;
    TU_EQ_INT(parse("vm {\n"
                    "  linux_pid = 1;\n"
                    "  my_offset = 0x10;\n"
                    "  my_path = /x/y;\n"
                    "  my_odd = 12ab;\n"
                    "  linux_pid = 2;\n"
                    "}\n",
                    &c),
              0);
    const tv_conf_entry_t *e = tv_conf_find(c, "vm");
    TU_EQ_U64(tv_conf_nkeys(e), 4);
    EXPECT_U64(e, "linux_pid", 2);
    EXPECT_U64(e, "my_offset", 0x10);
    TU_EQ_STR(tv_conf_str(e, "my_path"), "/x/y");
    TU_EQ_STR(tv_conf_str(e, "my_odd"), "12ab");
    tv_conf_kv_t kv;
    TU_ASSERT(tv_conf_get(e, "my_offset", &kv));
    TU_ASSERT(!kv.known);
    TU_EQ_U64(tv_conf_nwarnings(c), 4);
    TU_EQ_STR(tv_conf_warning(c, 0),
              "line 3: unknown key 'my_offset' in entry 'vm' (kept)");
    TU_EQ_STR(tv_conf_warning(c, 1),
              "line 4: unknown key 'my_path' in entry 'vm' (kept)");
    TU_EQ_STR(tv_conf_warning(c, 3),
              "line 6: 'linux_pid' set again (first at line 2); the last "
              "value is used");
    TU_ASSERT(tv_conf_warning(c, 4) == NULL);
    tv_conf_free(c);
}

TU_TEST(conf_syntax_errors)
{
    EXPECT_ERR("vm {\n  ostype = \"Linux\";\n  linux_tasks = 0x890;\n"
               "  linux_pid = 0x970\n  linux_name = 0xba0;\n}\n",
               TINYVMI_EFORMAT,
               "line 5, column 3: expected ';' after the value of "
               "'linux_pid', found 'l'");
    EXPECT_ERR("vm { linux_pid = 1 }", TINYVMI_EFORMAT,
               "line 1, column 20: expected ';' after the value of "
               "'linux_pid', found '}'");
    EXPECT_ERR("vm { linux_pid 1; }", TINYVMI_EFORMAT,
               "line 1, column 16: expected '=' after 'linux_pid', found "
               "'1'");
    EXPECT_ERR("vm {\n  linux_pid = 1;\n", TINYVMI_ETRUNC,
               "line 3, column 1: entry 'vm' (opened at line 1) has no "
               "closing '}'");
    EXPECT_ERR("vm { linux_pid = 1", TINYVMI_EFORMAT,
               "line 1, column 19: expected ';' after the value of "
               "'linux_pid', found the end of the input");
    EXPECT_ERR("vm\n\n  linux_pid = 1;", TINYVMI_EFORMAT,
               "line 3, column 3: expected '{' after the entry name 'vm', "
               "found 'l'");
    EXPECT_ERR("{ ostype = \"Linux\"; }", TINYVMI_EFORMAT,
               "line 1, column 1: expected an entry name, found '{'");
    EXPECT_ERR("vm { = 1; }", TINYVMI_EFORMAT,
               "line 1, column 6: expected a key or '}' in entry 'vm', found "
               "'='");
    EXPECT_ERR("vm { 5 = 1; }", TINYVMI_EFORMAT,
               "line 1, column 6: expected a key or '}' in entry 'vm', found "
               "'5'");
    /* LibVMI has no C comments. */
    EXPECT_ERR("/* c */ vm { }", TINYVMI_EFORMAT,
               "line 1, column 2: expected '{' after the entry name '/', "
               "found '*'");
    EXPECT_ERR("vm { ostype = \"Linux\"; } }", TINYVMI_EFORMAT,
               "line 1, column 26: expected an entry name, found '}'");
    EXPECT_ERR("vm { linux_pid = 0x1;\x01 }", TINYVMI_EFORMAT,
               "line 1, column 22: expected a key or '}' in entry 'vm', "
               "found byte 0x01");
    EXPECT_ERR("vm { linux_pid = 0x1; \n", TINYVMI_ETRUNC,
               "line 2, column 1: entry 'vm' (opened at line 1) has no "
               "closing '}'");
    /* A NUL byte inside the given length is just a bad byte. */
    tv_conf_t *c;
    TU_EQ_INT(tv_conf_parse(&pctx, "vm {\0}", 6, &c), TINYVMI_EFORMAT);
    TU_EQ_STR(err, "line 1, column 5: expected a key or '}' in entry 'vm', "
                   "found byte 0x00");
    /* Text without a NUL at the end: the parser stays inside len. */
    TU_EQ_INT(tv_conf_parse(&pctx, "vm { linux_pid = 7; }XYZ", 21, &c), 0);
    EXPECT_U64(tv_conf_find(c, "vm"), "linux_pid", 7);
    tv_conf_free(c);
}

TU_TEST(conf_limits)
{
    /* Too large, refused before parsing. */
    tv_conf_t *c;
    TU_EQ_INT(tv_conf_parse(&pctx, "", TV_CONF_MAX_TEXT + 1u, &c),
              TINYVMI_ERANGE);
    TU_EQ_STR(err, "config of 16777217 bytes is too large (at most "
                   "16777216)");
    /* A long key, a long value, a long name. */
    static char text[3 * 8192];
    memset(text, 0, sizeof text);
    strcpy(text, "vm { ");
    memset(text + 5, 'k', 100);
    strcpy(text + 105, " = 1; }");
    EXPECT_ERR(text, TINYVMI_ERANGE,
               "line 1, column 6: key of 100 bytes (at most 64)");
    memset(text, 0, sizeof text);
    strcpy(text, "vm { sysmap = \"");
    memset(text + 15, 'p', 5000);
    strcpy(text + 5015, "\"; }");
    EXPECT_ERR(text, TINYVMI_ERANGE,
               "line 1, column 15: string of 5000 bytes (at most 4096)");
    memset(text, 0, sizeof text);
    memset(text, 'n', 5000);
    strcpy(text + 5000, " { }");
    EXPECT_ERR(text, TINYVMI_ERANGE,
               "line 1, column 1: word of 5000 bytes (at most 4096)");
    /* Many entries and keys: a large valid input (about 4 MB). */
    size_t cap = 4u << 20, n = 0;
    char *big = malloc(cap);
    TU_ASSERT(big != NULL);
    unsigned i = 0;
    while (n + 200 < cap) {
        n += (size_t)snprintf(big + n, cap - n,
                              "vm%u { linux_pid = %u; sysmap = \"/m/%u\"; "
                              "# c\n }\n",
                              i, i, i);
        i++;
    }
    err[0] = '\0';
    TU_EQ_INT(tv_conf_parse(&pctx, big, n, &c), 0);
    TU_EQ_U64(tv_conf_count(c), i);
    char name[32];
    snprintf(name, sizeof name, "vm%u", i - 1);
    EXPECT_U64(tv_conf_find(c, name), "linux_pid", i - 1);
    tv_conf_free(c);
    /* Unterminated at the very end of a huge input: still a clean error. */
    memset(big, ' ', cap);
    memcpy(big, "vm {", 4);
    TU_EQ_INT(tv_conf_parse(&pctx, big, cap, &c), TINYVMI_ETRUNC);
    TU_CONTAINS(err, "entry 'vm' (opened at line 1) has no closing '}'");
    free(big);
    /* Many warnings: only the first ones kept, all counted. */
    char *w = malloc(65536);
    TU_ASSERT(w != NULL);
    n = (size_t)snprintf(w, 65536, "vm {\n");
    for (unsigned k = 0; k < 100; k++)
        n += (size_t)snprintf(w + n, 65536 - n, "u%u = %u;\n", k, k);
    snprintf(w + n, 65536 - n, "}\n");
    TU_EQ_INT(parse(w, &c), 0);
    TU_EQ_U64(tv_conf_nwarnings(c), 100);
    TU_EQ_STR(tv_conf_warning(c, TV_CONF_MAX_WARNINGS - 1),
              "line 33: unknown key 'u31' in entry 'vm' (kept)");
    TU_ASSERT(tv_conf_warning(c, TV_CONF_MAX_WARNINGS) == NULL);
    EXPECT_U64(tv_conf_find(c, "vm"), "u99", 99);
    tv_conf_free(c);
    free(w);
}

/* VMI_CONFIG_STRING's form: a body only. */
TU_TEST(conf_body)
{
    tv_conf_t *c;
    const char *s = "{ ostype = \"Linux\"; linux_pid = 0x970; } # end\n";
    err[0] = '\0';
    TU_EQ_INT(tv_conf_parse_body(&pctx, "/dumps/dump.elf", s, strlen(s), &c),
              0);
    TU_EQ_U64(tv_conf_count(c), 1);
    const tv_conf_entry_t *e = tv_conf_find(c, "/dumps/dump.elf");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    EXPECT_U64(e, "linux_pid", 0x970);
    tv_conf_free(c);
    s = "{ ostype = \"Linux\"; } extra { }";
    TU_EQ_INT(tv_conf_parse_body(&pctx, "x", s, strlen(s), &c),
              TINYVMI_EFORMAT);
    TU_ASSERT(c == NULL);
    TU_EQ_STR(err, "line 1, column 23: expected the end of the input after "
                   "the entry's '}', found 'e'");
    s = "ostype = \"Linux\";";
    TU_EQ_INT(tv_conf_parse_body(&pctx, "x", s, strlen(s), &c),
              TINYVMI_EFORMAT);
    TU_EQ_STR(err, "line 1, column 1: expected '{' after the entry name 'x', "
                   "found 'o'");
}

/* Building by hand, as the GHashTable form does. */
TU_TEST(conf_build)
{
    tv_conf_t *c;
    err[0] = '\0';
    TU_EQ_INT(tv_conf_new(&pctx, &c), 0);
    TU_EQ_INT(tv_conf_add_str(c, "ostype", "Linux"), TINYVMI_ESTATE);
    TU_EQ_INT(tv_conf_add_entry(c, "vm"), 0);
    TU_EQ_INT(tv_conf_add_str(c, "ostype", "Windows"), 0);
    TU_EQ_INT(tv_conf_add_u64(c, "win_pid", 0x180), 0);
    TU_EQ_INT(tv_conf_add_u64(c, "win_pid", 0x184), 0);
    TU_EQ_INT(tv_conf_add_u64(c, "ostype", 1), TINYVMI_EINVAL);
    TU_EQ_STR(err, "'ostype' takes a string");
    TU_EQ_INT(tv_conf_add_str(c, "win_pid", "x"), TINYVMI_EINVAL);
    TU_EQ_STR(err, "'win_pid' takes a number");
    TU_EQ_INT(tv_conf_add_str(c, "extra", "x"), 0);
    const tv_conf_entry_t *e = tv_conf_find(c, "vm");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_WINDOWS);
    EXPECT_U64(e, "win_pid", 0x184);
    tv_conf_kv_t kv;
    TU_ASSERT(tv_conf_get(e, "win_pid", &kv));
    TU_EQ_STR(kv.str, "0x184");
    TU_EQ_U64(kv.line, 0);
    TU_EQ_U64(tv_conf_nwarnings(c), 2);
    TU_EQ_STR(tv_conf_warning(c, 0),
              "'win_pid' set again; the last value is used");
    TU_EQ_STR(tv_conf_warning(c, 1), "unknown key 'extra' in entry 'vm' "
                                     "(kept)");
    tv_conf_free(c);
}

/* Every allocation failing in turn: a clean error, no leak (ASan). */
static int fail_after;
static void *failing_alloc(void *ctx, void *p, size_t old, size_t size)
{
    if (size && fail_after-- <= 0)
        return NULL;
    return tu_alloc(ctx, p, old, size);
}

TU_TEST(conf_out_of_memory)
{
    tinyvmi_hooks_t h = tu_hooks;
    h.alloc = failing_alloc;
    tv_pctx_t ctx = {&h, err, sizeof err};
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "vm%d { linux_pid = %d; odd%d = x; }\n", i, i,
                              i);
    int ok = 0;
    for (int k = 0; k < 400 && !ok; k++) {
        fail_after = k;
        tv_conf_t *c = NULL;
        int rc = tv_conf_parse(&ctx, text, n, &c);
        if (rc == 0) {
            ok = 1;
            TU_EQ_U64(tv_conf_count(c), 40);
            tv_conf_free(c);
        } else {
            TU_EQ_INT(rc, TINYVMI_ENOMEM);
            TU_ASSERT(c == NULL);
            TU_CONTAINS(err, "out of memory");
        }
    }
    TU_ASSERT(ok);
}

/* ---- config_host: the forms of vmi_init_os's config ----------------------- */

static char herr[256];

static int load(vmi_config_t mode, const void *config, const char *domain,
                tv_conf_t **c, const tv_conf_entry_t **e,
                vmi_init_error_t *why)
{
    herr[0] = '\0';
    *why = VMI_INIT_ERROR_NONE;
    return tv_config_load(&tu_hooks, mode, config, domain, c, e, why, herr,
                          sizeof herr);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

TU_TEST(config_string)
{
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why;
    TU_EQ_INT(load(VMI_CONFIG_STRING,
                   "{ ostype = \"Linux\"; linux_tasks = 0x890; }",
                   "/tmp/x/dump.elf", &c, &e, &why),
              0);
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    EXPECT_U64(e, "linux_tasks", 0x890);
    TU_EQ_STR(tv_conf_name(e), "dump.elf");
    tv_conf_free(c);
    TU_EQ_INT(load(VMI_CONFIG_STRING, "{ linux_tasks = ; }", "vm", &c, &e,
                   &why),
              TINYVMI_EFORMAT);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
    TU_EQ_STR(herr, "config string: line 1, column 17: expected a value for "
                    "'linux_tasks', found ';'");
    TU_EQ_INT(load(VMI_CONFIG_STRING, NULL, "vm", &c, &e, &why),
              TINYVMI_EINVAL);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
    TU_EQ_STR(herr, "VMI_CONFIG_STRING needs a config string (got NULL)");
}

TU_TEST(config_global_file)
{
    char path[600];
    snprintf(path, sizeof path, "%s/libvmi.conf", tu_tmp_dir());
    write_file(path, "# test\nother { ostype = \"Windows\"; }\n"
                     "dump.elf { ostype = \"Linux\"; linux_pid = 0x970; }\n"
                     "named { linux_pid = 5; }\n");
    setenv("TINYVMI_CONF", path, 1);
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why;
    /* config NULL: the domain's name; file mode: the dump's basename. */
    TU_EQ_INT(load(VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, "/some/dir/dump.elf",
                   &c, &e, &why),
              0);
    EXPECT_U64(e, "linux_pid", 0x970);
    TU_EQ_STR(tv_conf_name(e), "dump.elf");
    tv_conf_free(c);
    /* config: an entry name. */
    TU_EQ_INT(load(VMI_CONFIG_GLOBAL_FILE_ENTRY, "named", "/x/dump.elf", &c,
                   &e, &why),
              0);
    EXPECT_U64(e, "linux_pid", 5);
    tv_conf_free(c);
    TU_EQ_INT(load(VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, "nosuch", &c, &e,
                   &why),
              TINYVMI_ENOENT);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG_ENTRY);
    TU_ASSERT(c == NULL && e == NULL);
    char want[800];
    snprintf(want, sizeof want, "%s: no entry for 'nosuch'", path);
    TU_EQ_STR(herr, want);
    /* A parse error names the file. */
    write_file(path, "vm {\n linux_pid = 1\n}\n");
    TU_EQ_INT(load(VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, "vm", &c, &e, &why),
              TINYVMI_EFORMAT);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
    snprintf(want, sizeof want,
             "%s: line 3, column 1: expected ';' after the value of "
             "'linux_pid', found '}'",
             path);
    TU_EQ_STR(herr, want);
    /* TINYVMI_CONF names a missing file. */
    snprintf(path, sizeof path, "%s/none.conf", tu_tmp_dir());
    setenv("TINYVMI_CONF", path, 1);
    TU_EQ_INT(load(VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, "vm", &c, &e, &why),
              TINYVMI_ENOENT);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    TU_CONTAINS(herr, want);
    unsetenv("TINYVMI_CONF");
}

/* Without TINYVMI_CONF: $HOME/etc/libvmi.conf, found as LibVMI finds it. */
TU_TEST(config_global_file_home)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/etc", tu_tmp_dir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/libvmi.conf", dir);
    write_file(path, "homevm { ostype = \"Linux\"; }\n");
    unsetenv("TINYVMI_CONF");
    unsetenv("SUDO_USER");
    setenv("HOME", tu_tmp_dir(), 1);
    char cwd[600];
    TU_ASSERT(getcwd(cwd, sizeof cwd) != NULL);
    TU_ASSERT(chdir(tu_tmp_dir()) == 0); /* no ./libvmi.conf here */
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why;
    int rc = load(VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, "homevm", &c, &e, &why);
    TU_ASSERT(chdir(cwd) == 0);
    TU_EQ_INT(rc, 0);
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    tv_conf_free(c);
}

TU_TEST(config_json_path)
{
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why;
    TU_EQ_INT(load(VMI_CONFIG_JSON_PATH, "/p/kernel.json", "vm", &c, &e,
                   &why),
              0);
    TU_EQ_STR(tv_conf_str(e, "volatility_ist"), "/p/kernel.json");
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_UNKNOWN);
    tv_conf_free(c);
    TU_EQ_INT(load(VMI_CONFIG_JSON_PATH, NULL, "vm", &c, &e, &why),
              TINYVMI_EINVAL);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
}

/* A stand-in for glib's GHashTable, enough for g_hash_table_foreach. */
struct fake_ht {
    const char *key[8];
    void *value[8];
    int n;
};
typedef void (*fake_fe_fn)(void *key, void *value, void *user);
static void fake_foreach(void *table, fake_fe_fn fn, void *user)
{
    struct fake_ht *t = table;
    for (int i = 0; i < t->n; i++)
        fn((void *)(uintptr_t)t->key[i], t->value[i], user);
}

TU_TEST(config_ghashtable)
{
    uint64_t tasks = 0x890, kpgd = 0x10c000, other = 7;
    struct fake_ht t = {
        {"ostype", "linux_tasks", "kpgd", "sysmap", "mystery"},
        {"Linux", &tasks, &kpgd, "/boot/map", &other},
        5};
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why = VMI_INIT_ERROR_NONE;
    herr[0] = '\0';
    TU_EQ_INT(tv_config_from_ghash(&tu_hooks, &t, (tv_ghash_foreach_fn)
                                   fake_foreach, "vm", &c, &e, &why, herr,
                                   sizeof herr),
              0);
    TU_EQ_INT(tv_conf_ostype(e), VMI_OS_LINUX);
    EXPECT_U64(e, "linux_tasks", 0x890);
    EXPECT_U64(e, "kpgd", 0x10c000);
    TU_EQ_STR(tv_conf_str(e, "sysmap"), "/boot/map");
    TU_ASSERT(!tv_conf_get(e, "mystery", NULL) ||
              tv_conf_nkeys(e) == 4);
    TU_EQ_U64(tv_conf_nkeys(e), 4);
    TU_EQ_U64(tv_conf_nwarnings(c), 1);
    TU_EQ_STR(tv_conf_warning(c, 0),
              "GHashTable key 'mystery' is not one LibVMI documents: its "
              "value's type is unknown, ignored");
    tv_conf_free(c);
    /* A NULL value for a key: a clear error. */
    struct fake_ht bad = {{"linux_pid"}, {NULL}, 1};
    TU_EQ_INT(tv_config_from_ghash(&tu_hooks, &bad, (tv_ghash_foreach_fn)
                                   fake_foreach, "vm", &c, &e, &why, herr,
                                   sizeof herr),
              TINYVMI_EINVAL);
    TU_EQ_STR(herr, "GHashTable: key 'linux_pid' has a NULL value");
}

/* This test program does not link glib: the GHashTable form must say so. */
TU_TEST(config_ghashtable_without_glib)
{
    tv_conf_t *c;
    const tv_conf_entry_t *e;
    vmi_init_error_t why;
    int dummy = 0;
    TU_EQ_INT(load(VMI_CONFIG_GHASHTABLE, &dummy, "vm", &c, &e, &why),
              TINYVMI_ENOTSUP);
    TU_EQ_INT(why, VMI_INIT_ERROR_NO_CONFIG);
    TU_EQ_STR(herr, "VMI_CONFIG_GHASHTABLE: g_hash_table_foreach is not in "
                    "this process (the program must link glib)");
    TU_EQ_INT(load(VMI_CONFIG_GHASHTABLE, NULL, "vm", &c, &e, &why),
              TINYVMI_EINVAL);
    TU_EQ_INT(load((vmi_config_t)99, &dummy, "vm", &c, &e, &why),
              TINYVMI_EINVAL);
    TU_EQ_STR(herr, "unknown config mode 99");
}
