/*
 * va-pages: LibVMI's example lists the pages of an address space (LibVMI
 * gets the address space from CR3-write events; a dump has no events, so
 * this one takes a pid).  For each mapped page of process pid (0: the
 * kernel), prints
 *     <virtual address> -> <physical address> (<page size>)
 * found by walking the page tables, then checks every page with
 * vmi_pagetable_lookup (and vmi_translate_uv2p for user pages) and reports
 * disagreements.  x86 paging modes (32-bit, PAE, IA-32e, LA57).
 *   va-pages [options] <vm> [pid]
 */
#include "example.h"

#define MAX_PAGES 50000000L

typedef struct walk {
    vmi_instance_t vmi;
    addr_t dtb;
    vmi_pid_t pid;
    int esize;      /* entry bytes */
    int levels;     /* table levels */
    int top_bits;   /* index bits of the top level */
    int va_bits;    /* canonical width */
    long pages, bad;
} walk_t;

static int level_shift(const walk_t *w, int lvl)
{
    /* lvl 0 is the leaf (4 KiB) level */
    return 12 + lvl * (w->esize == 8 ? 9 : 10);
}

static addr_t canonical(const walk_t *w, addr_t va)
{
    if (w->va_bits < 64 && (va >> (w->va_bits - 1)) & 1)
        va |= ~0ULL << w->va_bits;
    return va;
}

static void report(walk_t *w, addr_t va, addr_t pa, uint64_t size)
{
    va = canonical(w, va);
    printf("0x%016" PRIx64 " -> 0x%" PRIx64 " (0x%" PRIx64 ")\n", va, pa,
           size);
    w->pages++;
    addr_t check = 0;
    if (vmi_pagetable_lookup(w->vmi, w->dtb, va, &check) != VMI_SUCCESS ||
        check != pa) {
        printf("  vmi_pagetable_lookup disagrees: 0x%" PRIx64 "\n", check);
        w->bad++;
    }
    if (w->pid > 0 && va < (1ULL << (w->va_bits - 1)) &&
        (vmi_translate_uv2p(w->vmi, va, w->pid, &check) != VMI_SUCCESS ||
         check != pa)) {
        printf("  vmi_translate_uv2p disagrees: 0x%" PRIx64 "\n", check);
        w->bad++;
    }
}

static void walk_table(walk_t *w, addr_t table, int lvl, addr_t base,
                       unsigned first, unsigned last)
{
    for (unsigned i = first; i <= last && w->pages < MAX_PAGES; i++) {
        uint64_t e = 0;
        if (w->esize == 8) {
            if (vmi_read_64_pa(w->vmi, table + i * 8u, &e) != VMI_SUCCESS)
                continue;
        } else {
            uint32_t e32 = 0;
            if (vmi_read_32_pa(w->vmi, table + i * 4u, &e32) != VMI_SUCCESS)
                continue;
            e = e32;
        }
        if (!(e & 1))
            continue;
        int shift = level_shift(w, lvl);
        addr_t va = base | ((addr_t)i << shift);
        addr_t mask = w->esize == 8 ? 0x000ffffffffff000ULL : 0xfffff000ULL;
        /* PS maps a page below the top level, and at the top of 32-bit
         * paging (4 MiB PDEs); PAE's PDPTEs map none. */
        int large = lvl > 0 && (e & 0x80) &&
                    (lvl < w->levels - 1 || w->esize == 4);
        if (lvl == 0 || large) {
            uint64_t size = 1ULL << shift;
            addr_t pa = e & mask & ~(size - 1);
            if (w->esize == 4 && large) /* PSE-36 */
                pa = (e & 0xffc00000ULL) | ((e >> 13) & 0xffULL) << 32;
            report(w, va, pa, size);
            continue;
        }
        unsigned n = (w->esize == 8 ? 512u : 1024u) - 1;
        walk_table(w, e & mask, lvl - 1, va, 0, n);
    }
}

int main(int argc, char **argv)
{
    ex_opts_t o;
    vmi_instance_t vmi = NULL;
    int ret = 1;

    if (ex_parse(argc, argv, 0, 1, "[pid]",
                 "List the mapped pages of a process (default: pid 0, the "
                 "kernel).",
                 &o))
        return 1;
    char *end = NULL;
    long pid = o.nargs ? strtol(o.args[0], &end, 0) : 0;
    if (o.nargs && (*end || end == o.args[0] || pid < 0 || pid > INT32_MAX)) {
        fprintf(stderr, "%s: bad pid '%s'\n", argv[0], o.args[0]);
        return 1;
    }
    if (ex_init(&o, 0, &vmi) != VMI_SUCCESS)
        return 1;
    walk_t w = {vmi, 0, (vmi_pid_t)pid, 8, 4, 9, 48, 0, 0};
    switch (vmi_get_page_mode(vmi, 0)) {
    case VMI_PM_LEGACY:
        w.esize = 4, w.levels = 2, w.top_bits = 10, w.va_bits = 64;
        break;
    case VMI_PM_PAE:
        w.levels = 3, w.top_bits = 2, w.va_bits = 64;
        break;
    case VMI_PM_IA32E:
        break;
    case VMI_PM_LA57:
        w.levels = 5, w.va_bits = 57;
        break;
    default:
        printf("Unsupported page mode.\n");
        goto out;
    }
    if (vmi_pid_to_dtb(vmi, (vmi_pid_t)pid, &w.dtb) != VMI_SUCCESS) {
        printf("Failed to find the page tables of pid %ld.\n", pid);
        goto out;
    }
    printf("Pages of pid %ld (DTB 0x%" PRIx64 ")\n", pid, w.dtb);
    addr_t root = w.esize == 8 ? w.dtb & 0x000ffffffffff000ULL
                               : w.dtb & 0xfffff000ULL;
    if (w.levels == 3)
        root = w.dtb & 0xffffffe0ULL;
    unsigned top = (1u << w.top_bits) - 1;
    /* A user process: its user half only (the kernel half is shared). */
    unsigned last = pid > 0 && w.levels >= 4 ? top / 2 : top;
    walk_table(&w, root, w.levels - 1, 0, 0, last);
    printf("%ld pages, %ld disagreements\n", w.pages, w.bad);
    ret = w.bad ? 1 : 0;
out:
    vmi_destroy(vmi);
    ex_done(&o);
    return ret;
}
