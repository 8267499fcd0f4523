/* tinyvmi translate: a virtual address's physical address, its page size
 * and every page-table entry the walk read. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "cli.h"

#define MAX_LEVELS 5
#define X86_P 1ULL
#define X86_PS (1ULL << 7)
#define X86_NX (1ULL << 63)

/* Where page_info_t keeps one level's entry, and how the level indexes a
 * virtual address. */
typedef struct level {
    const char *name;
    unsigned shift, bits;
    size_t off; /* offsetof the *_location field; the value follows */
} level_t;

/* A paging mode as page_info_t shows it, top level first. */
typedef struct view {
    page_mode_t mode;
    unsigned nlevels, entry_size;
    uint64_t root_mask, addr_mask; /* table address in CR3 / an entry */
    level_t lv[MAX_LEVELS];
} view_t;

#define LV(name, shift, bits, mode, f) \
    {name, shift, bits, offsetof(page_info_t, mode.f##_location)}
#define A52 0x000ffffffffff000ULL
#define A32 0x00000000fffff000ULL

static const view_t views[] = {
    {VMI_PM_LEGACY, 2, 4, A32, A32,
     {LV("PDE", 22, 10, x86_legacy, pgd), LV("PTE", 12, 10, x86_legacy, pte)}},
    {VMI_PM_PAE, 3, 8, 0xffffffe0ULL, A52,
     {LV("PDPTE", 30, 2, x86_pae, pdpe), LV("PDE", 21, 9, x86_pae, pgd),
      LV("PTE", 12, 9, x86_pae, pte)}},
    {VMI_PM_IA32E, 4, 8, A52, A52,
     {LV("PML4E", 39, 9, x86_ia32e, pml4e), LV("PDPTE", 30, 9, x86_ia32e, pdpte),
      LV("PDE", 21, 9, x86_ia32e, pgd), LV("PTE", 12, 9, x86_ia32e, pte)}},
    {VMI_PM_LA57, 5, 8, A52, A52,
     {LV("PML5E", 48, 9, x86_ia32e, pml5e), LV("PML4E", 39, 9, x86_ia32e, pml4e),
      LV("PDPTE", 30, 9, x86_ia32e, pdpte), LV("PDE", 21, 9, x86_ia32e, pgd),
      LV("PTE", 12, 9, x86_ia32e, pte)}},
};
#undef LV

typedef struct entry {
    const char *name;
    addr_t location, value;
    bool leaf, last; /* maps the page / is the bottom level */
} entry_t;

typedef struct walk {
    const view_t *v;
    page_info_t info;
    bool ok;
    int status;
    char error[512];
    entry_t e[MAX_LEVELS];
    size_t n;
} walk_t;

static const view_t *find_view(page_mode_t mode)
{
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (views[i].mode == mode)
            return &views[i];
    return NULL;
}

static entry_t slot(const view_t *v, unsigned l, const page_info_t *pi)
{
    addr_t pair[2];
    memcpy(pair, (const unsigned char *)pi + v->lv[l].off, sizeof pair);
    return (entry_t){v->lv[l].name, pair[0], pair[1], false,
                     l + 1 == v->nlevels};
}

/* page_info_t leaves levels the walk never read zeroed.  A zero slot was
 * read only if the entry really sits at physical 0 and holds 0: its table
 * is at 0 and the index is 0, and memory there reads as 0. */
static bool zero_slot_read(cli_t *c, const walk_t *w, unsigned l)
{
    const view_t *v = w->v;
    uint64_t table = l == 0 ? w->info.dtb & v->root_mask
                            : w->e[l - 1].value & v->addr_mask;
    uint64_t index = (w->info.vaddr >> v->lv[l].shift) &
                     ((1ULL << v->lv[l].bits) - 1);
    uint64_t val = 1;
    if (table != 0 || index != 0)
        return false;
    return vmi_read_pa(c->vmi, 0, v->entry_size, &val, NULL) == VMI_SUCCESS &&
           val == 0;
}

/* The entries the walk read, top first.  A successful walk reads the
 * levels down to the one whose span is the page size; a failed one reads
 * present entries, then the non-present one that ended it (status
 * EUNMAPPED) or stops at the entry it could not read. */
static void collect(cli_t *c, walk_t *w)
{
    const view_t *v = w->v;
    for (unsigned l = 0; l < v->nlevels; l++) {
        entry_t e = slot(v, l, &w->info);
        if (w->ok && (1ULL << v->lv[l].shift) < (uint64_t)w->info.size)
            break;
        if (!w->ok && !(e.value & X86_P)) {
            bool read = e.location || e.value || zero_slot_read(c, w, l);
            if (w->status == TINYVMI_EUNMAPPED && read)
                w->e[w->n++] = e;
            break;
        }
        w->e[w->n++] = e;
    }
    if (w->ok && w->n)
        w->e[w->n - 1].leaf = true;
}

/* Entry bits worth seeing; PS is PAT in a PTE, NX exists in 8-byte
 * entries only. */
static void flags(const view_t *v, const entry_t *e, char *buf, size_t len)
{
    static const struct {
        uint64_t bit;
        const char *name;
    } names[] = {{1ULL << 1, "RW"}, {1ULL << 2, "US"}, {1ULL << 5, "A"},
                 {1ULL << 6, "D"},  {1ULL << 8, "G"}};
    size_t at = 0;
    buf[0] = '\0';
    if (!(e->value & X86_P)) {
        snprintf(buf, len, "not present");
        return;
    }
    at += (size_t)snprintf(buf, len, "P");
    for (size_t i = 0; i < sizeof names / sizeof names[0] && at < len; i++)
        if (e->value & names[i].bit)
            at += (size_t)snprintf(buf + at, len - at, " %s", names[i].name);
    if (!e->last && (e->value & X86_PS) && at < len)
        at += (size_t)snprintf(buf + at, len - at, " PS");
    if (v->entry_size == 8 && (e->value & X86_NX) && at < len)
        snprintf(buf + at, len - at, " NX");
}

/* ---- Output ------------------------------------------------------------------ */

static void print_text(const walk_t *w)
{
    char sz[32], fl[64];
    const page_info_t *pi = &w->info;
    if (w->ok)
        printf("0x%" PRIx64 " -> 0x%" PRIx64 " (%s page; %s, DTB 0x%" PRIx64
               ")\n", pi->vaddr, pi->paddr, cli_size(pi->size, sz, sizeof sz),
               tinyvmi_page_mode_name(w->v->mode), pi->dtb);
    else
        printf("0x%" PRIx64 " -> not mapped (%s, DTB 0x%" PRIx64 ")\n",
               pi->vaddr, tinyvmi_page_mode_name(w->v->mode), pi->dtb);
    if (w->n)
        printf("level  location            value               flags\n");
    for (size_t i = 0; i < w->n; i++) {
        flags(w->v, &w->e[i], fl, sizeof fl);
        printf("%-6s 0x%016" PRIx64 "  0x%016" PRIx64 "  %s\n", w->e[i].name,
               w->e[i].location, w->e[i].value, fl);
    }
}

static void print_json(const walk_t *w)
{
    char fl[64];
    const page_info_t *pi = &w->info;
    printf("{\"va\":\"0x%" PRIx64 "\",\"dtb\":\"0x%" PRIx64 "\",\"page_mode\":",
           pi->vaddr, pi->dtb);
    cli_json_str(stdout, tinyvmi_page_mode_name(w->v->mode));
    if (w->ok)
        printf(",\"pa\":\"0x%" PRIx64 "\",\"page_size\":%" PRIu64, pi->paddr,
               (uint64_t)pi->size);
    else
        printf(",\"pa\":null,\"page_size\":null");
    printf(",\"entries\":[");
    for (size_t i = 0; i < w->n; i++) {
        flags(w->v, &w->e[i], fl, sizeof fl);
        printf("%s{\"level\":\"%s\",\"location\":\"0x%" PRIx64 "\",\"value\":"
               "\"0x%" PRIx64 "\",\"flags\":\"%s\"}", i ? "," : "",
               w->e[i].name, w->e[i].location, w->e[i].value, fl);
    }
    printf("],\"error\":");
    if (w->ok)
        printf("null");
    else
        cli_json_str(stdout, w->error);
    printf("}\n");
}

static int translate_run(cli_t *c)
{
    walk_t w = {0};
    int rc = cli_paging(c, true);
    if (rc)
        return rc;
    /* ARM's layouts vary with TCR (granule, sizes): the address and page
     * size are shown, not the entries (page_info_t has no place for
     * every layout's levels). */
    view_t bare = {.mode = vmi_get_page_mode(c->vmi, 0)};
    w.v = find_view(bare.mode);
    if (!w.v)
        w.v = &bare;
    w.ok = vmi_pagetable_lookup_extended(c->vmi, vmi_get_kernel_dtb(c->vmi),
                                         c->num[0], &w.info) == VMI_SUCCESS;
    if (!w.ok) {
        w.status = tinyvmi_last_status(c->vmi);
        snprintf(w.error, sizeof w.error, "%s", tinyvmi_last_error(c->vmi));
    }
    collect(c, &w);
    if (c->given & OPT_JSON)
        print_json(&w);
    else
        print_text(&w);
    rc = cli_flush(c);
    if (!w.ok)
        rc = cli_fail(c, CLI_FAILED, "0x%" PRIx64 ": %s", c->num[0], w.error);
    return rc;
}

const cli_cmd_t cli_cmd_translate = {
    .name = "translate",
    .synopsis = "TARGET VA [--dtb DTB] [--json]",
    .summary = "physical address of VA, its page size and each page-table "
               "entry walked",
    .help = "VA is translated with the kernel's page tables (vCPU 0's CR3,\n"
            "those at --dtb DTB, or, with no paging registers, those the\n"
            "OS layer finds: --profile/--config as for ps).  Each entry\n"
            "walked is shown with its level (PML5E, PML4E, PDPTE, PDE, PTE),\n"
            "physical location and value (x86; ARM shows the address and\n"
            "page size).  An address that is not mapped shows the entries\n"
            "walked up to the one that ended the walk and exits 1.\n"
            "--json prints {va, dtb, page_mode, pa, page_size, entries\n"
            "[{level, location, value, flags}], error}; pa and page_size are\n"
            "null and error says why when VA is not mapped.\n",
    .opts = OPT_GLOBAL | OPT_JSON | OPT_PROFILE | OPT_CONFIG,
    .pos = {{"VA", true}},
    .npos = 1,
    .run = translate_run,
};
