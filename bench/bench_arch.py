#!/usr/bin/env python3
"""make bench, per architecture: translation and ps speed on a dump of each
of the lab's guests (x86-64, i386 legacy and PAE, AArch32 short and LPAE,
AArch64), through build/bench/bench_arch (see its header):
  walk   a full page-table walk per address (vmi_pagetable_lookup, no cache)
  kv2p   vmi_translate_kv2p per address (through the translation cache)
  ps     one walk of the process list
  start  vmi_init_complete until the kernel is found (profile load included)
The addresses are each guest's 1,000 gva2gpa oracle addresses (mapped and
unmapped).  Kernels without BTF use the ISF tests/guests/dbgsym.py makes from
Debian's -dbg vmlinux; the others their own BTF and kallsyms.  TCG guests,
but these figures are TinyVMI's alone (a dump, no QEMU involved).  Writes
build/bench/arch.json.
  --quick   short runs    --guests A,B   only these guests
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench", "bench_arch")
sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import lab  # noqa: E402  (the guest matrix and its artifacts)


def guests(only):
    names = [n for n, g in lab.GUESTS.items() if not g.get("live")
             and g.get("kernel") != "isf"]
    return [n for n in names if not only or n in only]


def prepare(name):
    p = subprocess.run([sys.executable, lab.__file__, "ensure", name],
                       capture_output=True, text=True)
    subprocess.run([sys.executable, lab.__file__, "stop", name],
                   capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"lab.py ensure {name}: {p.stderr[-800:]}")
    d = os.path.join(str(lab.GUESTS_DIR), name)
    with open(os.path.join(d, "lab.json")) as f:
        info = json.load(f)
    with open(os.path.join(d, "oracle.json")) as f:
        vas = [e["va"] for e in json.load(f)["entries"]]
    addrs = os.path.join(d, "bench-addresses.txt")
    with open(addrs, "w") as f:
        f.write("\n".join(vas) + "\n")
    kver = info["kernel"]["kver"]
    isf = os.path.join(BUILD, "lab", "dbg", kver, f"{kver}.isf.json")
    return os.path.join(d, "dump.elf"), addrs, isf if os.path.exists(isf) \
        else None, info.get("arch", "x86_64")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--guests", default="")
    a = ap.parse_args()
    only = [g for g in a.guests.split(",") if g]
    rows = []
    for name in guests(only):
        try:
            dump, addrs, isf, arch = prepare(name)
        except RuntimeError as e:
            print(f"{name}: skipped: {e}")
            continue
        argv = [BENCH, dump, addrs] + ([isf] if isf else []) + \
            (["--quick"] if a.quick else [])
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{name}: bench_arch failed: {p.stderr.strip()}")
            continue
        r = json.loads(p.stdout)
        r.update(guest=name, arch=arch,
                 profile="ISF (DWARF)" if isf else "BTF+kallsyms")
        rows.append(r)
    print(f"  {'guest':<12} {'arch':<8} {'paging':<14} {'profile':<13} "
          f"{'walk':>7} {'kv2p':>7} {'ps':>9} {'procs':>5} {'start':>8}")
    for r in rows:
        print(f"  {r['guest']:<12} {r['arch']:<8} {r['page_mode']:<14} "
              f"{r['profile']:<13} {r['walk_ns']:>5.0f}ns {r['kv2p_ns']:>5.0f}ns "
              f"{r['ps_ms']:>7.3f}ms {r['processes']:>5} "
              f"{r['startup_ms']:>6.0f}ms")
    print("  walk/kv2p: per address over the oracle's 1,000 (mapped and "
          "unmapped); ps: one process-list walk; start: init incl. profile")
    out = os.path.join(BUILD, "bench", "arch.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"results: {os.path.relpath(out, ROOT)}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
