/* The Xen driver's vm_event ring and request parsing (src/driver/xen/
 * monitor.c) on synthetic ring pages: well-formed requests become the
 * right stops and answers; hostile indices, versions and vCPUs end in an
 * error, never in a read past the page or an endless loop.  The page is
 * exactly one malloc'd page, so the sanitizer build sees any overrun.
 * The real proof is tests/xen/test_xen_events.py against Xen. */
#include <libvmi/events.h>

#include "core/tv.h"
#include "driver/xen/monitor.h"
#include "tu.h"

#define PAGE 4096u
/* Xen's ABI numbers (public/vm_event.h) */
#define R_MEM 1
#define R_CR 4
#define R_MSR 5
#define R_INT3 6
#define R_CPUID 10
#define F_PAUSED 1u
#define F_SET_REGS (1u << 8)

static uint32_t ld(const uint8_t *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, 4);
    return v;
}

static void st(uint8_t *p, size_t off, uint32_t v)
{
    memcpy(p + off, &v, 4);
}

/* Xen's side: request i of the ring at its slot, then req_prod. */
static void produce(uint8_t *page, const tv_xen_layout_t *l, uint32_t nr,
                    uint32_t i, const uint8_t *req)
{
    memcpy(page + TV_XEN_RING_HDR + (i & (nr - 1)) * l->entry, req, l->entry);
    st(page, 0, i + 1);
}

static void request(const tv_xen_layout_t *l, uint8_t *e, uint32_t reason,
                    uint32_t vcpu)
{
    memset(e, 0, l->entry);
    tv_xen_set(l, e, TV_XF_VERSION, l->version);
    tv_xen_set(l, e, TV_XF_FLAGS, F_PAUSED);
    tv_xen_set(l, e, TV_XF_REASON, reason);
    tv_xen_set(l, e, TV_XF_VCPU, vcpu);
    /* rip (register 19 of the 30) and cr3 (22) */
    uint64_t rip = 0xffffffff81001234ULL, cr3 = 0x1234000;
    memcpy(e + l->f[TV_XF_GPRS].off + 19 * 8, &rip, 8);
    memcpy(e + l->f[TV_XF_GPRS].off + 22 * 8, &cr3, 8);
}

TU_TEST(xen_layouts_describe_versions_6_and_7)
{
    const tv_xen_layout_t *l7 = tv_xen_layout(7), *l6 = tv_xen_layout(6);
    TU_ASSERT(l7 && l6 && !tv_xen_layout(5) && !tv_xen_layout(8));
    TU_EQ_INT(l7->entry, 400);
    TU_EQ_INT(l6->entry, 384);
    for (int v = 6; v <= 7; v++) {
        const tv_xen_layout_t *l = tv_xen_layout((uint32_t)v);
        for (int f = 0; f < TV_XF_COUNT; f++) {
            TU_ASSERT(l->f[f].size > 0);
            TU_ASSERT(l->f[f].off + l->f[f].size <= l->entry);
        }
        TU_ASSERT(l->entry <= TV_XEN_ENTRY_MAX);
    }
}

TU_TEST(xen_ring_requests_become_stops_and_answers)
{
    const tv_xen_layout_t *l = tv_xen_layout(7);
    uint8_t *page = calloc(1, PAGE);
    TU_ASSERT(page);
    tv_xen_ring_t r;
    tv_xen_ring_init(&r, page, PAGE);
    TU_EQ_INT(ld(page, 4), 1); /* req_event */
    TU_EQ_INT(ld(page, 12), 1); /* rsp_event */
    char why[200] = "";
    uint8_t req[TV_XEN_ENTRY_MAX], rsp[TV_XEN_ENTRY_MAX], e[TV_XEN_ENTRY_MAX];
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 0);
    TU_ASSERT(!tv_xen_ring_pending(&r));

    request(l, e, R_CR, 1);
    tv_xen_set(l, e, TV_XF_CR_INDEX, 1); /* CR3 */
    tv_xen_set(l, e, TV_XF_CR_NEW, 0x5e7000);
    tv_xen_set(l, e, TV_XF_CR_OLD, 0x1234000);
    produce(page, l, 8, 0, e);
    request(l, e, R_MSR, 0);
    tv_xen_set(l, e, TV_XF_MSR, 0xc0000082);
    tv_xen_set(l, e, TV_XF_MSR_NEW, 0xffffffff81a00000ULL);
    produce(page, l, 8, 1, e);
    request(l, e, R_CPUID, 0);
    tv_xen_set(l, e, TV_XF_CPUID_LEN, 2);
    tv_xen_set(l, e, TV_XF_CPUID_LEAF, 0xd);
    tv_xen_set(l, e, TV_XF_CPUID_SUB, 1);
    produce(page, l, 8, 2, e);
    TU_ASSERT(tv_xen_ring_pending(&r));

    tv_stop_t s;
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
    TU_EQ_INT(r.nr, 8);
    TU_EQ_INT(tv_xen_parse(l, req, 2, &s, why, sizeof why), 0);
    TU_EQ_INT(s.kind, TV_STOP_REG);
    TU_EQ_INT(s.reg, CR3);
    TU_EQ_INT(s.vcpu, 1);
    TU_EQ_U64(s.value, 0x5e7000);
    TU_EQ_U64(s.previous, 0x1234000);
    TU_ASSERT(s.have_regs);
    TU_EQ_U64(s.regs.rip, 0xffffffff81001234ULL);
    TU_EQ_U64(s.regs.cr3, 0x1234000);
    /* the answer: same vCPU and reason, still paused, new registers */
    x86_registers_t regs = s.regs;
    regs.rip += 3;
    tv_xen_answer(l, req, 0, &regs, rsp);
    TU_EQ_INT(tv_xen_get(l, rsp, TV_XF_VCPU), 1);
    TU_EQ_INT(tv_xen_get(l, rsp, TV_XF_REASON), R_CR);
    TU_EQ_INT(tv_xen_get(l, rsp, TV_XF_VERSION), 7);
    TU_EQ_INT(tv_xen_get(l, rsp, TV_XF_FLAGS), F_PAUSED | F_SET_REGS);
    uint64_t rip;
    memcpy(&rip, rsp + l->f[TV_XF_GPRS].off + 19 * 8, 8);
    TU_EQ_U64(rip, 0xffffffff81001237ULL);
    TU_EQ_INT(tv_xen_ring_put(&r, rsp), 0);
    TU_EQ_INT(ld(page, 8), 1); /* rsp_prod */

    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
    TU_EQ_INT(tv_xen_parse(l, req, 2, &s, why, sizeof why), 0);
    TU_EQ_INT(s.kind, TV_STOP_REG);
    TU_EQ_INT(s.reg, MSR_ALL);
    TU_EQ_INT(s.msr, 0xc0000082);
    TU_EQ_U64(s.value, 0xffffffff81a00000ULL);
    tv_xen_answer(l, req, 0, NULL, rsp);
    TU_EQ_INT(tv_xen_get(l, rsp, TV_XF_FLAGS), F_PAUSED);
    TU_EQ_INT(tv_xen_ring_put(&r, rsp), 0);

    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
    TU_EQ_INT(tv_xen_parse(l, req, 2, &s, why, sizeof why), 0);
    TU_EQ_INT(s.kind, TV_STOP_CPUID);
    TU_EQ_INT(s.leaf, 0xd);
    TU_EQ_INT(s.subleaf, 1);
    TU_EQ_INT(s.insn_length, 2);
    tv_xen_answer(l, req, 0, NULL, rsp);
    TU_EQ_INT(tv_xen_ring_put(&r, rsp), 0);
    TU_EQ_INT(ld(page, 8), 3);
    /* nothing taken that awaits an answer */
    TU_EQ_INT(tv_xen_ring_put(&r, rsp), TINYVMI_ESTATE);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 0);
    TU_ASSERT(!tv_xen_ring_arm(&r));
    TU_EQ_INT(ld(page, 4), 4); /* req_event: notify at the next one */
    free(page);
}

TU_TEST(xen_ring_wraps_around)
{
    const tv_xen_layout_t *l = tv_xen_layout(6);
    uint8_t *page = calloc(1, PAGE);
    TU_ASSERT(page);
    tv_xen_ring_t r;
    tv_xen_ring_init(&r, page, PAGE);
    char why[200];
    uint8_t req[TV_XEN_ENTRY_MAX], rsp[TV_XEN_ENTRY_MAX], e[TV_XEN_ENTRY_MAX];
    tv_stop_t s;
    for (uint32_t i = 0; i < 50; i++) {
        request(l, e, R_MEM, 0);
        tv_xen_set(l, e, TV_XF_MEM_GFN, 0x100 + i);
        tv_xen_set(l, e, TV_XF_MEM_OFF, 0x10);
        tv_xen_set(l, e, TV_XF_MEM_FLAGS, 2 | 8); /* W, GLA valid */
        tv_xen_set(l, e, TV_XF_MEM_GLA, 0xffff888000100010ULL);
        produce(page, l, 8, i, e);
        TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
        TU_EQ_INT(tv_xen_parse(l, req, 1, &s, why, sizeof why), 0);
        TU_EQ_INT(s.kind, TV_STOP_MEM);
        TU_EQ_U64(s.gfn, 0x100 + i);
        TU_EQ_INT(s.access, VMI_MEMACCESS_W);
        TU_ASSERT(s.gla_valid);
        TU_EQ_U64(s.addr, 0xffff888000100010ULL);
        tv_xen_answer(l, req, 0, NULL, rsp);
        TU_EQ_INT(tv_xen_ring_put(&r, rsp), 0);
    }
    TU_EQ_INT(ld(page, 8), 50);
    free(page);
}

TU_TEST(xen_ring_refuses_hostile_indices_and_versions)
{
    const tv_xen_layout_t *l = tv_xen_layout(7);
    uint8_t *page = calloc(1, PAGE);
    TU_ASSERT(page);
    tv_xen_ring_t r;
    char why[200] = "";
    uint8_t req[TV_XEN_ENTRY_MAX], e[TV_XEN_ENTRY_MAX];
    tv_stop_t s;

    /* more requests announced than the ring holds */
    tv_xen_ring_init(&r, page, PAGE);
    request(l, e, R_CR, 0);
    produce(page, l, 8, 0, e);
    st(page, 0, 1000);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);
    TU_CONTAINS(why, "1000 requests announced, the ring holds 8");
    TU_ASSERT(!tv_xen_ring_pending(&r));
    st(page, 0, 0xffffffffu); /* "behind" us: a huge difference too */
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);

    /* a version the table does not know */
    tv_xen_ring_init(&r, page, PAGE);
    request(l, e, R_CR, 0);
    tv_xen_set(l, e, TV_XF_VERSION, 99);
    produce(page, l, 8, 0, e);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);
    TU_CONTAINS(why, "version 99 is not in TinyVMI's layout table (versions "
                     "6, 7)");

    /* a version that changes under way */
    tv_xen_ring_init(&r, page, PAGE);
    request(l, e, R_CR, 0);
    produce(page, l, 8, 0, e);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
    tv_xen_set(l, e, TV_XF_VERSION, 6);
    produce(page, l, 8, 1, e);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);
    TU_CONTAINS(why, "interface version 6 in a ring of version 7");

    /* requests past the answered ones: at most nr outstanding */
    tv_xen_ring_init(&r, page, PAGE);
    request(l, e, R_CR, 0);
    for (uint32_t i = 0; i < 8; i++)
        produce(page, l, 8, i, e);
    for (int i = 0; i < 8; i++)
        TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), 1);
    st(page, 0, 9);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);

    /* a vCPU the domain does not have, a reason nobody asked for */
    request(l, e, R_CR, 4);
    TU_EQ_INT(tv_xen_parse(l, e, 4, &s, why, sizeof why), TINYVMI_EFORMAT);
    TU_CONTAINS(why, "vCPU 4 of a domain with 4 vCPUs");
    request(l, e, 0xdead, 0);
    TU_EQ_INT(tv_xen_parse(l, e, 1, &s, why, sizeof why), TINYVMI_EFORMAT);
    TU_EQ_INT(s.kind, TV_STOP_OTHER);
    request(l, e, R_CR, 0);
    tv_xen_set(l, e, TV_XF_CR_INDEX, 77); /* no such control register */
    TU_EQ_INT(tv_xen_parse(l, e, 1, &s, why, sizeof why), TINYVMI_EFORMAT);

    /* a page too small for one entry */
    tv_xen_ring_init(&r, page, 100);
    request(l, e, R_CR, 0);
    memcpy(page + TV_XEN_RING_HDR, e, 36);
    st(page, 0, 1);
    TU_EQ_INT(tv_xen_ring_take(&r, req, why, sizeof why), TINYVMI_EFORMAT);
    free(page);
}

/* Random headers and entries: every take ends (taken, none or refused)
 * within the ring's bounds; what is taken parses or is refused. */
TU_TEST(xen_ring_fuzz_random_pages)
{
    uint64_t seed = 0x7e11;
    uint8_t *page = malloc(PAGE);
    TU_ASSERT(page);
    char why[200];
    uint8_t req[TV_XEN_ENTRY_MAX], rsp[TV_XEN_ENTRY_MAX];
    unsigned taken = 0, refused = 0;
    for (int round = 0; round < 3000; round++) {
        for (unsigned i = 0; i < PAGE; i += 8) {
            uint64_t v = tu_rand(&seed);
            memcpy(page + i, &v, 8);
        }
        tv_xen_ring_t r;
        tv_xen_ring_init(&r, page, PAGE);
        uint64_t v = tu_rand(&seed);
        /* a plausible first version most of the time */
        if (v & 1)
            st(page, TV_XEN_RING_HDR, (uint32_t)(6 + (v >> 1 & 1)));
        st(page, 0, (uint32_t)(v >> 8) % (v & 2 ? 12u : 0xffffffffu));
        for (int n = 0; n < 40; n++) {
            int got = tv_xen_ring_take(&r, req, why, sizeof why);
            if (got <= 0) {
                refused += got < 0;
                break;
            }
            taken++;
            TU_ASSERT(r.req_cons - r.rsp_prod_pvt <= r.nr);
            tv_stop_t s;
            int rc = tv_xen_parse(r.lay, req, (unsigned)(v >> 40) % 8, &s,
                                  why, sizeof why);
            TU_ASSERT(rc == 0 || rc == TINYVMI_EFORMAT);
            if (rc == 0)
                TU_ASSERT(s.vcpu < 8);
            tv_xen_answer(r.lay, req, 0, NULL, rsp);
            TU_EQ_INT(tv_xen_ring_put(&r, rsp), 0);
            if (n & 1) /* Xen goes on producing, maybe nonsense */
                st(page, 0, (uint32_t)tu_rand(&seed) % (r.req_cons + 9));
        }
    }
    TU_ASSERT(taken > 100 && refused > 100);
    free(page);
}
