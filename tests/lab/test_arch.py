"""ARM and 32-bit x86 guests of the lab (tests/guests/lab.py): arm64, armmp,
armmp-lpae, 686 and 686-pae kernels of Debian bookworm under QEMU TCG.

Per guest:
  artifacts  the snapshot is whole and agrees with itself and with QEMU's
             command line: vCPUs, system registers (ARM: from the gdbstub),
             the ELF dump's notes, the guest's own truth, an oracle of 1,000
             addresses with every class
  translate  TinyVMI's translation of every oracle address through the ELF
             dump (and on i386 the raw dump) equals QEMU's gva2gpa, mapped
             and unmapped alike
  os         `tinyvmi ps/modules/sym` on the dump, with a profile, equal what
             the guest printed about itself

Oracles come from outside TinyVMI (QEMU's gva2gpa, the guest's console);
nothing here hard-codes a kernel version, an offset or an address.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, check, main, run, tinyvmi  # noqa: E402
from test_linux import ensure, load  # noqa: E402  (the lab's guests)

KV2P = os.path.join(BUILD, "tests", "lab", "kv2p")
DBG = os.path.join(BUILD, "lab", "dbg")
DBGSYM = os.path.join(ROOT, "tests", "guests", "dbgsym.py")
GUESTS = ["a64-2c", "armmp-1c", "armlpae-1c", "i686-1c", "i686pae-2c"]
# ELF e_machine of QEMU's dump per architecture (i386 guests may get an
# ELF64 container, which says x86-64)
ELF_MACHINE = {"aarch64": {183}, "arm": {40}, "i386": {3, 62}}
SYSREGS = {"aarch64": ("ttbr0_el1", "ttbr1_el1", "tcr_el1", "sctlr_el1"),
           "arm": ("ttbr0", "ttbr1", "ttbcr", "sctlr"), "i386": ()}
# Debian architecture of each lab architecture (for dbgsym.py)
DEB = {"aarch64": "arm64", "arm": "armhf", "i386": "i386"}


def h(x):
    return int(x, 16)


# ---------------------------------------------------------------- (a) artifacts

def artifacts(name):
    d = ensure(name)
    lab, regs, truth, oracle, snap = (load(d, f) for f in (
        "lab.json", "regs.json", "truth.json", "oracle.json", "snapshot.json"))
    arch = lab["arch"]
    bid = snap["boot_id"]
    for f, j in (("regs", regs), ("truth", truth), ("oracle", oracle)):
        check(j["boot_id"] == bid, f"{f}.json is of boot {j['boot_id']}, "
              f"snapshot of {bid}")
    # vCPUs: as many as QEMU's -smp
    smp = int(lab["qemu_argv"][lab["qemu_argv"].index("-smp") + 1])
    check(len(regs["cpus"]) == smp, f"{len(regs['cpus'])} vCPUs in regs.json, "
          f"QEMU ran -smp {smp}")
    check(regs["arch"] == arch and regs["paging"] == lab["paging"], regs["paging"])
    for c in regs["cpus"]:
        for r in SYSREGS[arch]:
            check(re.fullmatch(r"0x[0-9a-f]+", c.get(r) or ""),
                  f"vCPU {c['index']}: no {r} in regs.json: {c}")
        if arch != "i386":
            sctlr = h(c["sctlr_el1" if arch == "aarch64" else "sctlr"])
            check(sctlr & 1, f"vCPU {c['index']}: SCTLR.M clear ({hex(sctlr)})")
    # the ELF dump's notes: one NT_PRSTATUS per vCPU (x86: one QEMU note too)
    check(regs["elf"]["machine"] in ELF_MACHINE[arch], regs["elf"])
    notes = regs["elf"]["notes"]
    prs = [n for n in notes if n["name"] == "CORE" and n["type"] == 1]
    check(len(prs) == smp, f"{len(prs)} NT_PRSTATUS notes for {smp} vCPUs: {notes}")
    if arch == "i386":
        check(sum(n["name"] == "QEMU" for n in notes) == smp,
              f"want {smp} QEMU notes: {notes}")
    # RAM: where QEMU put it (lab.json) and where the guest says it is
    (ram,) = lab["ram_map"]
    lo, hi = ram["gpa"], ram["gpa"] + ram["size"]
    check(os.path.getsize(os.path.join(d, "dump.raw")) == hi,
          "dump.raw is not offset = guest-physical address up to RAM's end")
    check(truth["iomem"], "the guest printed no System RAM")
    for r in truth["iomem"]:
        check(lo <= h(r["start"]) < h(r["end"]) <= hi,
              f"guest's System RAM {r} outside QEMU's RAM {hex(lo)}-{hex(hi)}")
    for r in truth["layout"]["linear"]:
        check(lo <= h(r["pa"]) and h(r["pa"]) + r["size"] <= hi,
              f"linear map {r} outside RAM")
    # truth
    check(truth["uname"] == lab["kernel"]["kver"],
          f"guest runs {truth['uname']}, lab booted {lab['kernel']['kver']}")
    check(truth["version"].startswith(f"Linux version {truth['uname']} "),
          truth["version"])
    names = {p["name"] for p in truth["ps"]}
    for n in ("tvlab-sleeper", "tvlab-idle", "tvlab-heartbeat"):
        check(n in names, f"{n} not in the guest's ps")
    check({m["name"] for m in truth["modules"]} == {"loop", "dummy"},
          truth["modules"])
    check(all(m["sections"].get(".text") for m in truth["modules"]),
          "module sections without .text")
    check(len(truth["user_markers"]) == 2, truth["user_markers"])
    check(truth["kallsyms_count"] > 10000 and len(truth["kallsyms_sample"]) > 300,
          f"kallsyms: {truth['kallsyms_count']} symbols")
    for s in ("_stext", "_etext"):
        check(s in truth["kallsyms"], f"{s} not in the guest's kallsyms")
    # the oracle: 1,000 entries, every class, ~100 QEMU calls unmapped
    ents = oracle["entries"]
    check(len(ents) == 1000 and oracle["count"] == 1000, f"{len(ents)} entries")
    check(len({e["va"] for e in ents}) >= 990, "the oracle repeats addresses")
    want = {"text", "module", "directmap", "vmalloc", "unmapped", "user"}
    if arch == "aarch64":
        want.add("noncanonical")
    kinds = {e["kind"] for e in ents}
    check(want <= kinds, f"oracle lacks classes {sorted(want - kinds)}")
    un = [e for e in ents if e["kind"] == "unmapped"]
    check(len(un) >= 100 and all(e["pa"] is None for e in un),
          f"{len(un)} unmapped entries")
    # 32-bit ARM keeps modules in TTBR0's half, in a process's tables only once it
    # touched them (LPAE) or when it was made after the load: lab.py pauses the
    # guest when vCPU 0's tables map them, and says when it never did (LPAE, where
    # no process of the lab touches module memory); then all must be unmapped
    lazy = snap.get("pauses", 0) > 20
    if lazy:
        print(f"note: {name}: vCPU 0's tables map no module ({snap['pauses']} pauses)")
        check(oracle["stats"]["module"]["mapped"] == 0, oracle["stats"]["module"])
    for k in ("text", "directmap", "vmalloc") + (() if lazy else ("module",)):
        s = oracle["stats"][k]
        check(s["mapped"] >= s["n"] * 9 // 10, f"{k}: only {s['mapped']} of "
              f"{s['n']} mapped")
    mapped = sum(e["pa"] is not None for e in ents)
    check(mapped >= (600 if lazy else 800), f"only {mapped} mapped addresses")
    # QEMU's walk and the guest's /proc/kcore agree on the linear map
    check(oracle["stats"]["directmap_linear"],
          "gva2gpa of linear-map addresses disagrees with /proc/kcore's va - pa")
    for e in ents:
        if e["pa"] is not None:
            check(lo <= h(e["pa"]) < hi or e["kind"] == "vmalloc",
                  f"{e}: QEMU translates to a PA outside RAM")


# ---------------------------------------------------------------- (b) translation

def kv2p(target, vas, extra=()):
    check(os.path.exists(KV2P), f"{KV2P} not built (make -j2 all)")
    p = run([KV2P, target, *extra], input="\n".join(vas) + "\n", timeout=300)
    check(p.returncode == 0, f"kv2p {os.path.basename(target)} {' '.join(extra)} "
          f"failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout.splitlines()


def compare(oracle, lines, source):
    """Every address: TinyVMI's PA equals QEMU's, or both say unmapped."""
    got = {}
    for ln in lines:
        parts = ln.split(None, 3)
        got[int(parts[0], 16)] = parts[1:]
    bad, errs = [], {}
    for e in oracle["entries"]:
        r = got.get(h(e["va"]))
        if r is None:
            bad.append(f"{e['va']}: no answer")
        elif e["pa"] is None:
            if r[0] != "-":
                bad.append(f"{e['va']} ({e['kind']}): QEMU says unmapped, "
                           f"{source} says {r[0]}")
            else:
                errs[r[1]] = errs.get(r[1], 0) + 1
        elif r[0] == "-" or int(r[0], 16) != h(e["pa"]):
            bad.append(f"{e['va']} ({e['kind']}): QEMU {e['pa']}, "
                       f"{source} {' '.join(r)}")
    check(not bad, f"{len(bad)} of {len(oracle['entries'])} disagree with QEMU "
          f"({source}):\n" + "\n".join(bad[:20]))
    return errs


def arm_paging_args(regs):
    """QEMU's ARM ELF notes carry no TTBRs: kv2p's mode, root and control
    register from the gdbstub's values in regs.json (vCPU 0, the vCPU
    gva2gpa walked on)."""
    c = regs["cpus"][0]
    if regs["arch"] == "aarch64":
        return ("aarch64", c["ttbr1_el1"], c["tcr_el1"], c["ttbr0_el1"])
    return ("aarch32", c["ttbr1"], c["ttbcr"], c["ttbr0"])


def translate(name):
    d = ensure(name)
    oracle = load(d, "oracle.json")
    regs = load(d, "regs.json")
    vas = [e["va"] for e in oracle["entries"]]
    if regs["arch"] == "i386":
        compare(oracle, kv2p(os.path.join(d, "dump.elf"), vas), "kv2p dump.elf")
        # raw images carry no registers: the page mode and CR3 from QEMU's
        # info registers
        compare(oracle, kv2p(os.path.join(d, "dump.raw"), vas,
                             (regs["paging"], regs["cpus"][0]["cr3"])),
                "kv2p dump.raw")
    else:
        for dump in ("dump.elf", "dump.raw"):
            compare(oracle, kv2p(os.path.join(d, dump), vas, arm_paging_args(regs)),
                    f"kv2p {dump} {' '.join(arm_paging_args(regs))}")


def cli_translate(name):
    """`tinyvmi translate --json` on 50 oracle addresses of every class."""
    d = ensure(name)
    oracle = load(d, "oracle.json")
    regs = load(d, "regs.json")

    def run_cli(entries, dump, opts, source):
        lines = []
        for e in entries:
            p = tinyvmi("translate", os.path.join(d, dump), e["va"], "--json",
                        *opts, timeout=60)
            check(p.returncode in (0, 1), f"translate {e['va']} {' '.join(opts)}: "
                  f"exit {p.returncode}\n{p.stderr}")
            j = json.loads(p.stdout)
            lines.append(f"{e['va']} {j['pa']}" if j["pa"] is not None
                         else f"{e['va']} - EFAIL")
        compare(dict(oracle, entries=entries), lines, source)

    every = oracle["entries"][::20]
    if regs["arch"] == "i386":
        run_cli(every, "dump.elf", [], "tinyvmi translate")
        return
    # ARM dumps carry no TTBRs.  By hand, with vCPU 0's registers: exactly
    # the view QEMU's gva2gpa had, on both dumps.
    mode, ttbr1, tcr, ttbr0 = arm_paging_args(regs)
    hand = ["--page-mode", mode, "--dtb", ttbr1, "--tcr", tcr, "--ttbr0", ttbr0]
    for dump in ("dump.elf", "dump.raw"):
        run_cli(every, dump, hand, f"tinyvmi translate {dump} {' '.join(hand)}")
    # Without: the OS layer finds the kernel's own tables (init_mm's, not the
    # running process's), which agree with QEMU on the kernel's image and the
    # linear map (a process's tables may lack modules it never touched).
    kern = [e for e in oracle["entries"] if e["kind"] in ("text", "directmap")][::10]
    check(len(kern) >= 20, f"only {len(kern)} text/directmap oracle entries")
    run_cli(kern, "dump.elf", profile_args(d), "tinyvmi translate (OS layer)")


# ---------------------------------------------------------------- (c) OS layer

def profile_args(d):
    """arm64 kernels carry BTF (read from guest memory: no profile needed); the
    others need the ISF that tests/guests/dbgsym.py makes from Debian's -dbg
    vmlinux."""
    lab = load(d, "lab.json")
    if lab["arch"] == "aarch64":
        return []
    kver = lab["kernel"]["kver"]
    isf = os.path.join(DBG, kver, f"{kver}.isf.json")
    deb = DEB[lab["arch"]]
    check(os.path.exists(isf),
          f"no ISF for {kver} at {isf}: make it with\n"
          f"  python3 {os.path.relpath(DBGSYM, ROOT)} fetch "
          f"linux-image-{kver}-dbg:{deb}\n"
          f"  python3 {os.path.relpath(DBGSYM, ROOT)} profile {kver}:{deb}")
    return ["--profile", isf]


def tool_json(*args):
    p = tinyvmi(*args, "--json", timeout=300)
    check(p.returncode == 0, f"tinyvmi {' '.join(args)} failed ({p.returncode}): "
          f"{p.stderr.strip()}")
    return json.loads(p.stdout)


def names_match(ours, t):
    """procfs names a workqueue worker comm-desc; TinyVMI shows comm."""
    return ours == t["name"] or (t.get("wq_worker") and (
        t["name"].startswith(ours + "-") or (len(ours) == 15 and
                                             t["name"].startswith(ours))))


def compare_ps(ps, truth):
    ours = {p["pid"]: p for p in ps}
    bad = []
    for t in truth["ps"]:
        o = ours.get(t["pid"])
        if o is None:
            if not (t["kthread"] and t["name"].startswith("kworker")):
                bad.append(f"pid {t['pid']} {t['name']} missing")
        elif not names_match(o["name"], t) or o["ppid"] != t["ppid"]:
            bad.append(f"pid {t['pid']}: {o['name']!r} ppid {o['ppid']}, guest says "
                       f"{t['name']!r} ppid {t['ppid']}")
    pids = {t["pid"] for t in truth["ps"]}
    bad += [f"pid {p} {o['name']} not in the guest's ps" for p, o in ours.items()
            if p and p not in pids and not o["name"].startswith("kworker")]
    check(not bad, f"{len(bad)} differences from the guest's ps:\n" +
          "\n".join(bad[:30]))


def os_layer(name):
    d = ensure(name)
    truth = load(d, "truth.json")
    dump = os.path.join(d, "dump.elf")
    args = profile_args(d)
    compare_ps(tool_json("ps", dump, *args), truth)
    # the raw dump: no registers, no notes, RAM at its physical offset
    compare_ps(tool_json("ps", os.path.join(d, "dump.raw"), *args), truth)
    mods = {m["name"]: m for m in tool_json("modules", dump, *args)}
    want = {m["name"]: m for m in truth["modules"]}
    check(set(mods) == set(want), f"modules {sorted(mods)}, guest has {sorted(want)}")
    for n, t in want.items():
        check(h(mods[n]["base"]) == h(t["base"]) and mods[n]["size"] == t["size"],
              f"{n}: {mods[n]}, guest says base {t['base']} size {t['size']}")
    # symbols: 25 names the guest's kallsyms has once, spread over the sample
    uniq = [(a, n) for a, _, n, copies in truth["kallsyms_sample"] if copies == 1]
    for a, n in uniq[::max(1, len(uniq) // 25)]:
        p = tinyvmi("sym", dump, n, *args, timeout=120)
        check(p.returncode == 0 and h(p.stdout.strip()) == h(a),
              f"sym {n}: {p.stdout.strip()} {p.stderr.strip()}; guest says {a}")
    fn = h(truth["kallsyms"]["do_sys_openat2"])
    p = tinyvmi("sym", dump, hex(fn + 5), *args, timeout=120)
    check(p.returncode == 0 and p.stdout.strip() == "do_sys_openat2+0x5",
          f"sym {hex(fn + 5)}: {p.stdout.strip()} {p.stderr.strip()}")


for _g in GUESTS:
    _k = _g.replace("-", "_")
    for _fn in (artifacts, translate, cli_translate, os_layer):
        globals()[f"test_arch_{_fn.__name__}_{_k}"] = (lambda f, g: lambda: f(g))(_fn, _g)

if __name__ == "__main__":
    main(globals())
