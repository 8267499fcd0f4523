"""The foundation against real Debian kernels under QEMU (tests/guests).

Oracles come from outside TinyVMI: QEMU's own `gva2gpa` on the stopped guest
(oracle.json) and what the guest printed on its serial console (truth.json).
Nothing here hard-codes a kernel version or an address.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, check, main, run, tinyvmi  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
KV2P = os.path.join(BUILD, "tests", "lab", "kv2p")
# The foundation's matrix: both kernel lines, 4- and 5-level, 1 and 2 vCPUs.
GUESTS = ["k61-4l-1c", "k61-5l-2c", "k612-4l-2c", "k612-5l-1c"]


def ensure(name, live=False):
    """Boots (or reuses) the guest; returns its artifact directory.  live:
    also a running QEMU of the same boot, with its RAM file."""
    p = run(LAB + ["ensure", name] + (["--live"] if live else []),
            timeout=1500)
    check(p.returncode == 0, f"lab.py ensure {name} failed:\n{p.stderr[-4000:]}")
    return os.path.join(BUILD, "lab", "guests", name)


def load(d, f):
    with open(os.path.join(d, f)) as fh:
        return json.load(fh)


def paging_args(d):
    """Page mode and CR3 for raw images (which carry no registers), taken
    from QEMU's `info registers` of vCPU 0."""
    regs = load(d, "regs.json")
    return regs["paging"], regs["cpus"][0]["cr3"]


def compare(oracle, lines, source):
    """Each translation must equal QEMU's; unmapped must fail, and
    non-canonical addresses must fail as such."""
    got = {}
    for ln in lines:
        parts = ln.split(None, 3)
        got[int(parts[0], 16)] = parts[1:]
    bad = []
    mapped = 0
    for e in oracle["entries"]:
        va = int(e["va"], 16)
        r = got.get(va)
        if r is None:
            bad.append(f"{e['va']}: no answer")
        elif e["pa"] is None:
            if r[0] != "-":
                bad.append(f"{e['va']} ({e['kind']}): QEMU says unmapped, "
                           f"{source} says {r[0]}")
            elif e["kind"] == "noncanonical" and r[1] != "ENONCANON":
                bad.append(f"{e['va']}: expected ENONCANON, got {r[1:]}")
        else:
            mapped += 1
            if r[0] == "-" or int(r[0], 16) != int(e["pa"], 16):
                bad.append(f"{e['va']} ({e['kind']}): QEMU {e['pa']}, "
                           f"{source} {' '.join(r)}")
    check(not bad, f"{len(bad)} of {len(oracle['entries'])} disagree with "
          f"QEMU:\n" + "\n".join(bad[:20]))
    check(mapped >= len(oracle["entries"]) * 8 // 10,
          f"only {mapped} mapped addresses in the oracle")


def kv2p(target, vas, extra=()):
    p = run([KV2P, target, *extra], input="\n".join(vas) + "\n",
            timeout=300)
    check(p.returncode == 0, p.stderr)
    return p.stdout.splitlines()


def api_elf(name):
    d = ensure(name)
    oracle = load(d, "oracle.json")
    vas = [e["va"] for e in oracle["entries"]]
    compare(oracle, kv2p(os.path.join(d, "dump.elf"), vas), "vmi_translate_kv2p")


def api_raw(name):
    d = ensure(name)
    oracle = load(d, "oracle.json")
    vas = [e["va"] for e in oracle["entries"]]
    mode, cr3 = paging_args(d)
    compare(oracle, kv2p(os.path.join(d, "dump.raw"), vas, (mode, cr3)),
            "vmi_translate_kv2p (raw)")


def cli_translate(name):
    """`tinyvmi translate` for every oracle address, one process each."""
    d = ensure(name)
    oracle = load(d, "oracle.json")
    lines = []
    for e in oracle["entries"]:
        p = tinyvmi("translate", os.path.join(d, "dump.elf"), e["va"],
                    "--json", timeout=60)
        check(p.returncode in (0, 1), f"translate {e['va']}: exit "
              f"{p.returncode}\n{p.stderr}")
        j = json.loads(p.stdout)
        check((p.returncode == 0) == (j["pa"] is not None),
              f"exit code and JSON disagree for {e['va']}")
        if j["pa"] is not None:
            check(j["entries"], f"{e['va']}: no entries walked reported")
            lines.append(f"{e['va']} {j['pa']}")
        else:
            kind = "ENONCANON" if "canonical" in (j.get("error") or "") \
                else "EUNMAPPED"
            lines.append(f"{e['va']} - {kind}")
    compare(oracle, lines, "tinyvmi translate")


def banner(name):
    """linux_banner (address from the guest's kallsyms) read three ways
    equals the banner the guest printed (/proc/version): from the raw and
    ELF dumps, and from the RAM file of the guest while it runs."""
    d = ensure(name, live=True)
    p = run(LAB + ["hmp", name, "cont"])
    check(p.returncode == 0, f"resuming {name}: {p.stderr}")
    truth = load(d, "truth.json")
    va = truth["kallsyms"]["linux_banner"]
    want = truth["version"].strip()
    mode, cr3 = paging_args(d)
    n = str(len(want.encode()) + 1)
    for target, extra in (("dump.elf", ()),
                          ("dump.raw", ("--page-mode", mode, "--dtb", cr3)),
                          ("ram", ("--page-mode", mode, "--dtb", cr3))):
        p = subprocess.run([os.path.join(BUILD, "bin", "tinyvmi"), "read",
                            os.path.join(d, target), va, n, "--raw", *extra],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, f"{target}: {p.stderr.decode()}")
        got = p.stdout.decode(errors="replace")
        check(got.rstrip("\n\0").strip() == want,
              f"{target}: banner {got!r} != guest's {want!r}")


def info_matches_guest(name):
    """`tinyvmi info --json` on the ELF dump: vCPU count and CR3s as QEMU
    reported them, the page mode the guest runs."""
    d = ensure(name)
    regs = load(d, "regs.json")
    p = tinyvmi("info", os.path.join(d, "dump.elf"), "--json")
    check(p.returncode == 0, p.stderr)
    j = json.loads(p.stdout)
    check(j["format"] == "elf", j)
    check(len(j["vcpus"]) == len(regs["cpus"]), j)
    for mine, qemu in zip(j["vcpus"], regs["cpus"]):
        check(int(mine["cr3"], 16) == int(qemu["cr3"], 16), (mine, qemu))
    want = "LA57" if regs["la57"] else "IA-32e"
    check(j["page_mode"] == want, f"page mode {j['page_mode']} != {want}")
    # Every RAM region QEMU was given is covered by the ELF's ranges (QEMU
    # also dumps ROM, e.g. the BIOS below 4 GiB, so there may be more).
    ranges = [(int(r["start"], 16), r["size"]) for r in j["ranges"]]
    for ram in load(d, "lab.json")["ram_map"]:
        check(any(s <= ram["gpa"] and ram["gpa"] + ram["size"] <= s + n
                  for s, n in ranges), f"RAM {ram} not in {j['ranges']}")
    check(j["memsize"] == sum(n for _, n in ranges), j)


for _g in GUESTS:
    _k = _g.replace("-", "_")
    for _fn in (api_elf, api_raw, cli_translate, banner, info_matches_guest):
        globals()[f"test_{_fn.__name__}_{_k}"] = \
            (lambda f, g: lambda: f(g))(_fn, _g)

if __name__ == "__main__":
    main(globals())
