/*
 * The Linux layer without a guest: a small synthetic kernel (x86-64
 * 4-level page tables, a hand-made symbol table, tasks and modules laid out
 * by the test), then hostile edits to it.  The real kernels are in
 * tests/lab/test_linux*.py; this checks the walks' edges exactly.
 */
#include "core/tv.h"
#include "profile/symtab.h"
#include "tu.h"

#define RAM (4u << 20)
#define TEXT_VA 0xffffffff81000000ULL /* where the kernel runs */
#define TEXT_PA 0x100000ULL
#define SLIDE 0x200000ULL                /* live minus profile */
#define IMAGE (1u << 20)                 /* mapped bytes of the image */
#define PGD_OFF 0xf0000u                 /* init_top_pgt, in the image */
#define USER_PGD_OFF 0xf1000u
#define BANNER_OFF 0x8000u
#define INIT_TASK_OFF 0x10000u
#define MODULES_OFF 0x18000u
#define TASK_SIZE 0x100u
#define BANNER "Linux version 9.9.9-synthetic (tu@test) #1\n"

/* Set-up steps that must not fail (the TU_ checks return from a test). */
#define MUST(c)                                                        \
    do {                                                               \
        if (!(c)) {                                                    \
            fprintf(stderr, "%s:%d: set-up failed: %s\n", __FILE__,    \
                    __LINE__, #c);                                     \
            abort();                                                   \
        }                                                              \
    } while (0)

/* struct layouts of the synthetic kernel */
enum { T_TASKS = 0x10, T_PID = 0x20, T_TGID = 0x24, T_COMM = 0x30,
       T_MM = 0x40, T_PARENT = 0x48, T_FLAGS = 0x50 };
enum { MM_PGD = 0x8 };
enum { M_LIST = 0x8, M_NAME = 0x18, M_CORE = 0x60, M_INIT = 0x70 };

typedef struct guest {
    uint8_t *ram;
    tv_range_t range;
    uint64_t next_table;
} guest_t;

static int g_read(void *ctx, uint64_t pa, uint64_t off, void *buf, size_t len)
{
    guest_t *g = ctx;
    (void)pa;
    memcpy(buf, g->ram + off, len);
    return 0;
}

static const tv_mem_ops_t g_ops = {g_read, NULL, NULL};

static void put64(guest_t *g, uint64_t pa, uint64_t v)
{
    memcpy(g->ram + pa, &v, 8);
}

static uint64_t get64(const guest_t *g, uint64_t pa)
{
    uint64_t v;
    memcpy(&v, g->ram + pa, 8);
    return v;
}

/* Maps one 4 KiB page under the 4-level root at pgd. */
static void map4k(guest_t *g, uint64_t pgd, uint64_t va, uint64_t pa)
{
    uint64_t table = pgd;
    for (int shift = 39; shift > 12; shift -= 9) {
        uint64_t at = table + ((va >> shift) & 511) * 8;
        if (!(get64(g, at) & 1)) {
            put64(g, at, g->next_table | 0x3);
            g->next_table += 0x1000;
        }
        table = get64(g, at) & 0x000ffffffffff000ULL;
    }
    /* read-only, non-executable: the image's rodata for these tests */
    put64(g, table + ((va >> 12) & 511) * 8, pa | 0x1 | (1ULL << 63));
}

static uint64_t va_pa(uint64_t va)
{
    return TEXT_PA + (va - TEXT_VA);
}

static void task(guest_t *g, uint64_t off, uint32_t pid, const char *comm,
                 uint64_t mm, uint64_t parent_off, uint64_t next_off)
{
    uint64_t pa = TEXT_PA + off;
    memcpy(g->ram + pa + T_PID, &pid, 4);
    memcpy(g->ram + pa + T_TGID, &pid, 4);
    memcpy(g->ram + pa + T_COMM, comm, strlen(comm) + 1);
    put64(g, pa + T_MM, mm);
    put64(g, pa + T_PARENT, TEXT_VA + parent_off);
    put64(g, pa + T_TASKS, TEXT_VA + next_off + T_TASKS);
}

/* Four tasks (swapper/0, init, kthreadd, a worker) and one module. */
static guest_t *make_guest(void)
{
    guest_t *g = calloc(1, sizeof *g);
    g->ram = calloc(1, RAM);
    g->range = (tv_range_t){0, RAM, 0};
    g->next_table = 0x300000;
    uint64_t pgd = TEXT_PA + PGD_OFF, upgd = TEXT_PA + USER_PGD_OFF;
    for (uint64_t off = 0; off < IMAGE; off += 0x1000) {
        map4k(g, pgd, TEXT_VA + off, TEXT_PA + off);
        map4k(g, upgd, TEXT_VA + off, TEXT_PA + off);
    }
    memcpy(g->ram + TEXT_PA + BANNER_OFF, BANNER, sizeof BANNER);
    uint64_t t0 = INIT_TASK_OFF, t1 = t0 + TASK_SIZE, t2 = t1 + TASK_SIZE,
             t3 = t2 + TASK_SIZE, mm = t3 + TASK_SIZE;
    task(g, t0, 0, "swapper/0", 0, t0, t1);
    task(g, t1, 1, "init", TEXT_VA + mm, t0, t2);
    task(g, t2, 2, "kthreadd", 0, t0, t3);
    task(g, t3, 3, "kworker/0:0", 0, t2, t0);
    put64(g, TEXT_PA + mm + MM_PGD, TEXT_VA + USER_PGD_OFF);
    /* modules -> dummy -> modules */
    uint64_t head = TEXT_VA + MODULES_OFF, mod = head + 0x100;
    put64(g, va_pa(head), mod + M_LIST);
    put64(g, va_pa(mod + M_LIST), head);
    memcpy(g->ram + va_pa(mod + M_NAME), "dummy", 6);
    put64(g, va_pa(mod + M_CORE), 0xffffffffc0001000ULL);
    uint32_t core = 0x4000, init = 0x1000;
    memcpy(g->ram + va_pa(mod + M_CORE + 8), &core, 4);
    memcpy(g->ram + va_pa(mod + M_INIT + 8), &init, 4);
    return g;
}

static void free_guest(guest_t *g)
{
    free(g->ram);
    free(g);
}

static void member(tv_symtab_t *t, const char *name, uint64_t off,
                   uint8_t kind, uint32_t count, const char *type)
{
    tv_mtype_t mt = {.kind = kind, .count = count, .name = type,
                     .elem_kind = count ? TV_K_BASE : TV_K_NONE};
    MUST((tv_symtab_add_member(t, name, strlen(name), off, 0, 0, &mt,
                                   false)) == 0);
}

/* The profile, as a tool would have written it for an unslid kernel. */
static tv_symtab_t *make_table(const char *banner)
{
    tv_pctx_t c = {.hooks = &tu_hooks};
    tv_symtab_t *t;
    MUST((tv_symtab_new(&c, &t)) == 0);
    const struct { const char *n; uint64_t off; } syms[] = {
        {"_text", 0}, {"init_top_pgt", PGD_OFF},
        {"linux_banner", BANNER_OFF}, {"init_task", INIT_TASK_OFF},
        {"modules", MODULES_OFF},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        tv_symtab_add_symbol(t, syms[i].n, strlen(syms[i].n),
                             TEXT_VA - SLIDE + syms[i].off, 'D');
    tv_symtab_add_symbol(t, "cpu_number", 10, 0x1c000, 'D'); /* per-cpu */
    tv_symtab_add_type(t, "task_struct", 11, TV_K_STRUCT, TASK_SIZE);
    member(t, "tasks", T_TASKS, TV_K_STRUCT, 0, "list_head");
    member(t, "pid", T_PID, TV_K_BASE, 0, "int");
    member(t, "tgid", T_TGID, TV_K_BASE, 0, "int");
    member(t, "comm", T_COMM, TV_K_ARRAY, 16, "char");
    member(t, "mm", T_MM, TV_K_POINTER, 0, "mm_struct");
    member(t, "real_parent", T_PARENT, TV_K_POINTER, 0, "task_struct");
    member(t, "flags", T_FLAGS, TV_K_BASE, 0, "unsigned int");
    tv_symtab_add_type(t, "mm_struct", 9, TV_K_STRUCT, 0x40);
    member(t, "pgd", MM_PGD, TV_K_POINTER, 0, "pgd_t");
    tv_symtab_add_type(t, "module_layout", 13, TV_K_STRUCT, 0x10);
    member(t, "base", 0, TV_K_POINTER, 0, "void");
    member(t, "size", 8, TV_K_BASE, 0, "unsigned int");
    tv_symtab_add_type(t, "unsigned int", 12, TV_K_BASE, 4);
    tv_symtab_add_type(t, "module", 6, TV_K_STRUCT, 0x100);
    member(t, "list", M_LIST, TV_K_STRUCT, 0, "list_head");
    member(t, "name", M_NAME, TV_K_ARRAY, 56, "char");
    member(t, "core_layout", M_CORE, TV_K_STRUCT, 0, "module_layout");
    member(t, "init_layout", M_INIT, TV_K_STRUCT, 0, "module_layout");
    if (banner)
        tv_symtab_set_meta(t, "banner", banner, strlen(banner));
    MUST((tv_symtab_finish(t)) == 0);
    return t;
}

static struct vmi_instance *attach(guest_t *g, bool paging)
{
    struct vmi_instance *vmi;
    MUST((tv_instance_new(&tu_hooks, &vmi)) == 0);
    tv_driver_t d = {.name = "synthetic", .ctx = g, .mem = &g_ops,
                     .ranges = &g->range, .nranges = 1};
    MUST((tv_instance_attach(vmi, &d)) == 0);
    if (paging) /* a vCPU in a user process: its PGD, not the kernel's */
        MUST((tinyvmi_set_paging(vmi, VMI_PM_IA32E,
                                     TEXT_PA + USER_PGD_OFF)) == VMI_SUCCESS);
    return vmi;
}

typedef struct seen {
    tinyvmi_process_t p[8];
    int n;
} seen_t;

static int collect(void *arg, const tinyvmi_process_t *p)
{
    seen_t *s = arg;
    if (s->n < 8)
        s->p[s->n] = *p;
    s->n++;
    return 0;
}

static void check_ps(struct vmi_instance *vmi)
{
    seen_t s = {0};
    TU_EQ_INT(tinyvmi_processes(vmi, collect, &s), VMI_SUCCESS);
    TU_EQ_INT(s.n, 4);
    TU_EQ_STR(s.p[0].name, "swapper/0");
    TU_EQ_STR(s.p[1].name, "init");
    TU_EQ_STR(s.p[3].name, "kworker/0:0");
    TU_EQ_INT(s.p[1].pid, 1);
    TU_EQ_INT(s.p[3].ppid, 2);
    TU_EQ_INT(s.p[1].ppid, 0);
    TU_EQ_INT(s.p[1].kernel_thread, 0);
    TU_EQ_INT(s.p[2].kernel_thread, 1);
    TU_EQ_U64(s.p[1].dtb, TEXT_PA + USER_PGD_OFF);
    TU_EQ_U64(s.p[2].dtb, TEXT_PA + PGD_OFF); /* the kernel's */
    TU_EQ_U64(s.p[1].task, TEXT_VA + INIT_TASK_OFF + TASK_SIZE);
}

static void check_kernel(struct vmi_instance *vmi)
{
    tinyvmi_kernel_t k;
    addr_t va;
    TU_EQ_INT(tinyvmi_kernel_info(vmi, &k), VMI_SUCCESS);
    TU_EQ_U64(k.text_va, TEXT_VA);
    TU_EQ_U64(k.text_pa, TEXT_PA);
    TU_EQ_U64((uint64_t)k.slide, SLIDE);
    TU_EQ_U64(k.dtb, TEXT_PA + PGD_OFF); /* its own tables, not the vCPU's */
    TU_EQ_STR(k.release, "9.9.9-synthetic");
    TU_EQ_INT(vmi_translate_ksym2v(vmi, "init_task", &va), VMI_SUCCESS);
    TU_EQ_U64(va, TEXT_VA + INIT_TASK_OFF);
    TU_EQ_INT(vmi_translate_ksym2v(vmi, "cpu_number", &va), VMI_SUCCESS);
    TU_EQ_U64(va, 0x1c000); /* per-cpu offsets do not slide */
    TU_EQ_INT(vmi_get_offset(vmi, "linux_name", &va), VMI_SUCCESS);
    TU_EQ_U64(va, T_COMM);
}

TU_TEST(linux_with_paging)
{
    guest_t *g = make_guest();
    struct vmi_instance *vmi = attach(g, true);
    TU_EQ_INT(tv_linux_init(vmi, make_table(BANNER), NULL), 0);
    check_kernel(vmi);
    check_ps(vmi);
    vmi_pid_t pid;
    TU_EQ_INT(vmi_dtb_to_pid(vmi, TEXT_PA + USER_PGD_OFF, &pid), VMI_SUCCESS);
    TU_EQ_INT(pid, 1);
    tv_instance_free(vmi);
    free_guest(g);
}

/* No registers: the banner in physical memory leads to the tables. */
TU_TEST(linux_without_registers)
{
    guest_t *g = make_guest();
    /* a decoy banner that implies no kernel */
    memcpy(g->ram + 0x5000, BANNER, sizeof BANNER);
    struct vmi_instance *vmi = attach(g, false);
    TU_EQ_INT(tv_linux_init(vmi, make_table(NULL), NULL), 0);
    check_kernel(vmi);
    check_ps(vmi);
    tv_instance_free(vmi);
    free_guest(g);
}

TU_TEST(linux_profile_for_another_kernel)
{
    guest_t *g = make_guest();
    struct vmi_instance *vmi = attach(g, true);
    TU_ASSERT(tv_linux_init(vmi, make_table("Linux version 1.2.3\n"),
                            NULL) != 0);
    TU_CONTAINS(tinyvmi_last_error(vmi), "another kernel");
    TU_EQ_INT(vmi_get_ostype(vmi), VMI_OS_UNKNOWN);
    tv_instance_free(vmi);
    free_guest(g);
}

typedef struct mods {
    tinyvmi_module_t m[4];
    int n;
} mods_t;

static int collect_module(void *arg, const tinyvmi_module_t *m)
{
    mods_t *s = arg;
    if (s->n < 4)
        s->m[s->n] = *m;
    s->n++;
    return 0;
}

TU_TEST(linux_modules)
{
    guest_t *g = make_guest();
    struct vmi_instance *vmi = attach(g, true);
    TU_EQ_INT(tv_linux_init(vmi, make_table(BANNER), NULL), 0);
    mods_t s = {0};
    TU_EQ_INT(tinyvmi_modules(vmi, collect_module, &s), VMI_SUCCESS);
    TU_EQ_INT(s.n, 1);
    TU_EQ_STR(s.m[0].name, "dummy");
    TU_EQ_U64(s.m[0].base, 0xffffffffc0001000ULL);
    TU_EQ_U64(s.m[0].size, 0x5000); /* core + init, as /proc/modules */
    /* the module list into unmapped memory: nothing valid, a clear error */
    put64(g, va_pa(TEXT_VA + MODULES_OFF), 0xffffffffc0400000ULL);
    s = (mods_t){0};
    TU_EQ_INT(tinyvmi_modules(vmi, collect_module, &s), VMI_FAILURE);
    TU_EQ_INT(s.n, 0);
    TU_CONTAINS(tinyvmi_last_error(vmi), "module list broken after 0");
    tv_instance_free(vmi);
    free_guest(g);
}

static int walk_and_count(struct vmi_instance *vmi, seen_t *s)
{
    *s = (seen_t){0};
    return tinyvmi_processes(vmi, collect, s) == VMI_SUCCESS ? 0 : -1;
}

TU_TEST(linux_task_list_loops)
{
    guest_t *g = make_guest();
    /* kworker's next points back at init, not at swapper/0 */
    put64(g, TEXT_PA + INIT_TASK_OFF + 3 * TASK_SIZE + T_TASKS,
          TEXT_VA + INIT_TASK_OFF + TASK_SIZE + T_TASKS);
    struct vmi_instance *vmi = attach(g, true);
    TU_EQ_INT(tv_linux_init(vmi, make_table(BANNER), NULL), 0);
    seen_t s;
    TU_EQ_INT(walk_and_count(vmi, &s), -1);
    TU_EQ_INT(s.n, 4); /* every task once, then the loop is seen */
    TU_CONTAINS(tinyvmi_last_error(vmi), "loops");
    tv_instance_free(vmi);
    free_guest(g);
}

TU_TEST(linux_task_list_unmapped)
{
    guest_t *g = make_guest();
    /* kthreadd's next points past the image, into nothing */
    put64(g, TEXT_PA + INIT_TASK_OFF + 2 * TASK_SIZE + T_TASKS,
          TEXT_VA + IMAGE + 0x10000);
    struct vmi_instance *vmi = attach(g, true);
    TU_EQ_INT(tv_linux_init(vmi, make_table(BANNER), NULL), 0);
    seen_t s;
    TU_EQ_INT(walk_and_count(vmi, &s), -1);
    TU_EQ_INT(s.n, 3); /* the bad entry itself is not delivered */
    TU_CONTAINS(tinyvmi_last_error(vmi), "task list broken after 3");
    tv_instance_free(vmi);
    free_guest(g);
}

TU_TEST(linux_comm_without_nul)
{
    guest_t *g = make_guest();
    memcpy(g->ram + TEXT_PA + INIT_TASK_OFF + TASK_SIZE + T_COMM,
           "ABCDEFGHIJKLMNOP\x01\x02", 18);
    struct vmi_instance *vmi = attach(g, true);
    TU_EQ_INT(tv_linux_init(vmi, make_table(BANNER), NULL), 0);
    seen_t s;
    TU_EQ_INT(walk_and_count(vmi, &s), 0);
    TU_EQ_STR(s.p[1].name, "ABCDEFGHIJKLMNOP"); /* 16 bytes, no more */
    tv_instance_free(vmi);
    free_guest(g);
}
