/*
 * The Windows OS layer through the public API, in-process (so that the
 * sanitizer build runs the walks too): memory laid out from the real
 * profiles by tests/data/win_mem.py (its ground truth: the counts and
 * fields the generator was told to write), its hostile variants, and the
 * real Windows 10 triage dump; the profile check on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "os/windows/win.h"
#include "profile/profile.h"
#include "tu.h"

#define SHARED "/work/shared/data/"
#define TRIAGE SHARED "windows-10-19041-x64-triage/triage_x64.dmp"
#define ISF                                                               \
    SHARED "windows-10-19041-x64-triage/"                                 \
           "ntkrnlmp.pdb-5278AFF86C341677D7D7835C85B7B844-1.json.xz"
#define XP                                                                \
    SHARED "profiles/"                                                    \
           "libvmi-ntoskrnl.pdb.32962337f0f646388b39535cd8dd70e82.rekall" \
           ".json"
#define NPROCS 120
/* The generator's kernel bases (tests/data/win_mem.py, LAYOUT). */
#define BASE64 0xfffff80312a00000ULL
#define BASE32 0x804d7000ULL

typedef struct seen {
    unsigned n;
    tinyvmi_process_t p[NPROCS + 8];
} seen_t;

static int collect(void *arg, const tinyvmi_process_t *p)
{
    seen_t *s = arg;
    if (s->n < sizeof s->p / sizeof s->p[0])
        s->p[s->n] = *p;
    s->n++;
    return 0;
}

/* Generates a variant; *dtb from the truth file's "dtb". */
static int generate(const char *profile, const char *paging,
                    const char *hostile, char *image, size_t len,
                    uint64_t *dtb)
{
    char truth[512], cmd[2048], line[4096];
    snprintf(image, len, "%s/%s-%s.raw", tu_tmp_dir(), paging, hostile);
    snprintf(truth, sizeof truth, "%s/%s-%s.json", tu_tmp_dir(), paging,
             hostile);
    snprintf(cmd, sizeof cmd, "python3 %s/win_mem.py '%s' '%s' '%s' "
             "--paging %s --hostile %s --procs %d --modules 12",
             tu_data_dir(), profile, image, truth, paging, hostile, NPROCS);
    if (system(cmd) != 0)
        return -1;
    FILE *f = fopen(truth, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *d = strstr(line, "\"dtb\": ");
    return d && sscanf(d + 7, "%lu", (unsigned long *)dtb) == 1 ? 0 : -1;
}

/* Opens the image, sets paging, starts the OS layer from a config entry. */
static vmi_instance_t start(const char *profile, const char *paging,
                            const char *hostile, page_mode_t mode,
                            uint64_t base)
{
    char image[512], conf[600];
    uint64_t dtb;
    vmi_instance_t vmi = NULL;
    if (generate(profile, paging, hostile, image, sizeof image, &dtb))
        return NULL;
    snprintf(conf, sizeof conf, "%s.conf", image);
    FILE *f = fopen(conf, "w");
    if (!f)
        return NULL;
    fprintf(f, "%s { ostype = \"Windows\"; %s = \"%s\"; "
            "win_ntoskrnl_va = 0x%llx; }\n", strrchr(image, '/') + 1,
            strstr(profile, ".xz") ? "volatility_ist" : "rekall_profile",
            profile, (unsigned long long)base);
    fclose(f);
    setenv("TINYVMI_CONF", conf, 1);
    bool ok = vmi_init(&vmi, VMI_FILE, image, VMI_INIT_DOMAINNAME, NULL,
                       NULL) == VMI_SUCCESS &&
              tinyvmi_set_paging(vmi, mode, dtb) == VMI_SUCCESS &&
              vmi_init_os(vmi, VMI_CONFIG_GLOBAL_FILE_ENTRY, NULL, NULL) ==
                  VMI_OS_WINDOWS;
    /* the image stays mapped; the files need not stay (16 MiB each) */
    unlink(image);
    unlink(conf);
    snprintf(conf, sizeof conf, "%.*s.json", (int)(strlen(image) - 4),
             image);
    unlink(conf);
    if (!ok) {
        if (vmi)
            fprintf(stderr, "start: %s\n", tinyvmi_last_error(vmi));
        vmi_destroy(vmi);
        return NULL;
    }
    return vmi;
}

static void check_list(vmi_instance_t vmi, unsigned want)
{
    seen_t s = {0};
    TU_EQ_INT(tinyvmi_processes(vmi, collect, &s), VMI_SUCCESS);
    TU_EQ_INT(s.n, want + 1); /* + Idle */
    TU_EQ_INT(s.p[0].pid, 0);
    TU_EQ_STR(s.p[0].name, "Idle");
    TU_EQ_INT(s.p[1].pid, 4);
    TU_EQ_STR(s.p[1].name, "System");
    TU_ASSERT(s.p[1].kernel_thread && s.p[1].peb == 0);
    TU_EQ_U64(s.p[1].dtb, vmi_get_kernel_dtb(vmi));
    TU_EQ_STR(s.p[4].name, "smss.exe");
    TU_ASSERT(!s.p[4].kernel_thread && s.p[4].peb != 0);
    for (unsigned i = 2; i < s.n && i < NPROCS; i++)
        TU_ASSERT(strcmp(s.p[i].name, "exited.exe") != 0);
}

TU_TEST(win_layer_x64_generated)
{
    vmi_instance_t vmi = start(ISF, "ia32e", "none", VMI_PM_IA32E, BASE64);
    TU_ASSERT(vmi);
    if (!vmi)
        return;
    check_list(vmi, NPROCS);
    TU_EQ_INT(vmi_get_winver(vmi), VMI_OS_WINDOWS_10);
    TU_EQ_INT(vmi_get_win_buildnumber(vmi), 19041);
    addr_t off;
    TU_EQ_INT(vmi_get_offset(vmi, "win_tasks", &off), VMI_SUCCESS);
    TU_EQ_U64(off, 0x448); /* the ISF's _EPROCESS.ActiveProcessLinks */
    seen_t s = {0};
    vmi_pid_t pid = -1;
    tinyvmi_processes(vmi, collect, &s);
    TU_EQ_INT(vmi_dtb_to_pid(vmi, s.p[4].dtb, &pid), VMI_SUCCESS);
    TU_EQ_INT(pid, s.p[4].pid);
    vmi_destroy(vmi);
}

TU_TEST(win_layer_xp_pae_and_legacy_generated)
{
    static const struct {
        const char *paging;
        page_mode_t mode;
    } v[] = {{"pae", VMI_PM_PAE}, {"legacy", VMI_PM_LEGACY}};
    for (size_t i = 0; i < 2; i++) {
        vmi_instance_t vmi = start(XP, v[i].paging, "none", v[i].mode,
                                   BASE32);
        TU_ASSERT(vmi);
        if (!vmi)
            continue;
        check_list(vmi, NPROCS);
        TU_EQ_INT(vmi_get_winver(vmi), VMI_OS_WINDOWS_XP);
        vmi_destroy(vmi);
    }
}

TU_TEST(win_layer_hostile_lists)
{
    static const struct {
        const char *hostile;
        int status;
        const char *needle;
    } v[] = {{"loop", TINYVMI_ELOOP, "process list loops"},
             {"unmapped", TINYVMI_EUNMAPPED, "broken after 120 entries"}};
    for (size_t i = 0; i < 2; i++) {
        vmi_instance_t vmi = start(ISF, "ia32e", v[i].hostile, VMI_PM_IA32E,
                                   BASE64);
        TU_ASSERT(vmi);
        if (!vmi)
            continue;
        seen_t s = {0};
        TU_EQ_INT(tinyvmi_processes(vmi, collect, &s), VMI_FAILURE);
        TU_EQ_INT(tinyvmi_last_status(vmi), v[i].status);
        TU_CONTAINS(tinyvmi_last_error(vmi), v[i].needle);
        /* NPROCS 120: the generator breaks entry min(150, 119) */
        TU_EQ_INT(s.n, 1 + NPROCS);
        vmi_destroy(vmi);
    }
}

static int mod_collect(void *arg, const tinyvmi_module_t *m)
{
    tinyvmi_module_t *out = arg;
    if (!strncmp(m->name, "AAAA", 4))
        *out = *m;
    return 0;
}

TU_TEST(win_layer_module_name_bounded)
{
    vmi_instance_t vmi = start(ISF, "ia32e", "bigname", VMI_PM_IA32E,
                               BASE64);
    TU_ASSERT(vmi);
    if (!vmi)
        return;
    tinyvmi_module_t m;
    memset(&m, 0, sizeof m);
    TU_EQ_INT(tinyvmi_modules(vmi, mod_collect, &m), VMI_SUCCESS);
    TU_EQ_INT(strlen(m.name), 63); /* 0xfffe bytes claimed, 63 shown */
    vmi_destroy(vmi);
}

TU_TEST(win_layer_triage_dump)
{
    vmi_instance_t vmi = NULL;
    TU_EQ_INT(vmi_init(&vmi, VMI_FILE, TRIAGE, VMI_INIT_DOMAINNAME, NULL,
                       NULL), VMI_SUCCESS);
    if (!vmi)
        return;
    TU_EQ_INT(vmi_init_os(vmi, VMI_CONFIG_JSON_PATH, (void *)ISF, NULL),
              VMI_OS_WINDOWS);
    tinyvmi_process_t p;
    TU_EQ_INT(tinyvmi_current_process(vmi, 0, &p), VMI_SUCCESS);
    TU_EQ_INT(p.pid, 4);
    TU_EQ_STR(p.name, "System");
    TU_EQ_U64(p.dtb, 0x1ad000); /* the header's DirectoryTableBase */
    seen_t s = {0};
    tinyvmi_processes(vmi, collect, &s);
    TU_ASSERT(s.n >= 1);
    TU_EQ_STR(s.p[0].name, "System");
    addr_t va;
    TU_EQ_INT(vmi_translate_ksym2v(vmi, "PsActiveProcessHead", &va),
              VMI_SUCCESS);
    TU_EQ_U64(va, 0xfffff8047c61e200ULL); /* as the dump header records */
    vmi_destroy(vmi);

    vmi = NULL;
    TU_EQ_INT(vmi_init(&vmi, VMI_FILE, TRIAGE, VMI_INIT_DOMAINNAME, NULL,
                       NULL), VMI_SUCCESS);
    TU_EQ_INT(vmi_init_os(vmi, VMI_CONFIG_JSON_PATH, (void *)XP, NULL),
              VMI_OS_UNKNOWN);
    TU_CONTAINS(tinyvmi_last_error(vmi), "disagrees at PsActiveProcessHead");
    vmi_destroy(vmi);
}

TU_TEST(win_profile_check_names_the_symbol)
{
    char err[512] = "";
    tv_pctx_t c = {.hooks = &tu_hooks, .err = err, .errlen = sizeof err};
    tv_symtab_t *t = NULL;
    TU_EQ_INT(tv_profile_load_file(&c, ISF, &t), 0);
    if (!t)
        return;
    /* the triage dump's header facts: consistent */
    tv_win_start_t s = {.ps_active_process_head = 0xfffff8047c61e200ULL,
                        .ps_loaded_module_list = 0xfffff8047c62a390ULL,
                        .kdbg = 0xfffff8047c600b20ULL, .ptr_size = 8};
    uint64_t base = 0;
    TU_EQ_INT(win_profile_check(t, &s, &base, err, sizeof err), 0);
    TU_EQ_U64(base, 0xfffff8047ba00000ULL);
    /* one address off by a page: named */
    s.ps_loaded_module_list += 0x1000;
    TU_EQ_INT(win_profile_check(t, &s, &base, err, sizeof err),
              TINYVMI_EFORMAT);
    TU_CONTAINS(err, "disagrees at PsLoadedModuleList");
    s.ps_loaded_module_list -= 0x1000;
    s.ptr_size = 4;
    TU_EQ_INT(win_profile_check(t, &s, &base, err, sizeof err),
              TINYVMI_EFORMAT);
    TU_CONTAINS(err, "64-bit kernel");
    tv_symtab_free(t);
}

/* A raw image with a KDBG header (DBGKD_DEBUG_DATA_HEADER64: List, then
 * OwnerTag "KDBG" at 0x10 and Size at 0x14) at a physical address. */
static win_ver_t manual(uint32_t size, const char *tag)
{
    char path[512];
    uint8_t img[0x4000] = {0};
    snprintf(path, sizeof path, "%s/kdbg-%x.raw", tu_tmp_dir(), size);
    memcpy(img + 0x2010, tag, 4);
    memcpy(img + 0x2014, &size, 4); /* little-endian host */
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(img, 1, sizeof img, f) != sizeof img) {
        if (f)
            fclose(f);
        return (win_ver_t)-1;
    }
    fclose(f);
    vmi_instance_t vmi = NULL;
    if (vmi_init(&vmi, VMI_FILE, path, VMI_INIT_DOMAINNAME, NULL, NULL) !=
        VMI_SUCCESS)
        return (win_ver_t)-1;
    unlink(path);
    win_ver_t v = vmi_get_winver_manual(vmi, 0x2000);
    if (vmi_get_winver(vmi) != VMI_OS_WINDOWS_NONE) /* no OS layer yet */
        v = (win_ver_t)-2;
    vmi_destroy(vmi);
    return v;
}

TU_TEST(win_winver_manual_by_kdbg_size)
{
    TU_EQ_INT(manual(0x290, "KDBG"), VMI_OS_WINDOWS_XP);
    TU_EQ_INT(manual(0x340, "KDBG"), VMI_OS_WINDOWS_7);
    TU_EQ_INT(manual(0x380, "KDBG"), VMI_OS_WINDOWS_10); /* 19041's */
    TU_EQ_INT(manual(0x290, "GBDK"), VMI_OS_WINDOWS_UNKNOWN);
    TU_EQ_INT(manual(0x100, "KDBG"), VMI_OS_WINDOWS_UNKNOWN);
}
