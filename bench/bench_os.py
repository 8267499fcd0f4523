#!/usr/bin/env python3
"""make bench, OS layer: `tinyvmi ps` wall time and peak memory on a lab
dump, profile-less (the guest's own BTF and kallsyms) and with an ISF that
`tinyvmi profile` wrote, plus profile-less start-up alone (`tinyvmi sym
TARGET init_task`).  Each figure is the median of several runs of the whole
program, start-up included; peak memory is the child's maximum resident
set size (getrusage), which counts the pages of the dump it touched.
Targets (issue 3): ps under 150 ms and 32 MB; profile-less start-up on a
256 MiB guest under 100 ms.  Writes build/bench/os.json.
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
TINYVMI = os.path.join(BUILD, "bin", "tinyvmi")
LAB = os.path.join(ROOT, "tests", "guests", "lab.py")
GUEST = os.environ.get("TVBENCH_GUEST", "k61-4l-1c")
RUNS = int(os.environ.get("TVBENCH_RUNS", "9"))


def measure(args):
    """(median seconds, median peak RSS MiB) over RUNS runs."""
    secs, rss = [], []
    for _ in range(RUNS):
        t = time.perf_counter()
        p = subprocess.Popen([TINYVMI, *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        secs.append(time.perf_counter() - t)
        err = p.stderr.read().decode()
        p.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"tinyvmi {' '.join(args)} failed: {err}")
        rss.append(ru.ru_maxrss / 1024)
    return statistics.median(secs), statistics.median(rss)


def main():
    p = subprocess.run([sys.executable, LAB, "ensure", GUEST],
                       capture_output=True, text=True)
    subprocess.run([sys.executable, LAB, "stop", GUEST], capture_output=True)
    if p.returncode != 0:
        sys.exit(f"lab.py ensure {GUEST} failed: {p.stderr[-2000:]}")
    d = os.path.join(BUILD, "lab", "guests", GUEST)
    with open(os.path.join(d, "lab.json")) as f:
        lab = json.load(f)
    dump, raw = os.path.join(d, "dump.elf"), os.path.join(d, "dump.raw")
    isf = os.path.join(BUILD, "lab", "profiles", lab["kernel"]["kver"] +
                       ".json")
    if not os.path.exists(isf):
        os.makedirs(os.path.dirname(isf), exist_ok=True)
        subprocess.run([TINYVMI, "profile", lab["kernel"]["vmlinuz"], "-o",
                        isf], check=True)
    ram = lab["ram_size"] >> 20
    cases = [
        ("ps, profile-less (BTF+kallsyms from memory)", ["ps", dump]),
        ("ps, with the ISF from tinyvmi profile", ["ps", dump, "--profile",
                                                   isf]),
        ("ps, raw dump (no registers), profile-less", ["ps", raw]),
        ("start-up alone, profile-less (sym init_task)", ["sym", dump,
                                                         "init_task"]),
    ]
    print(f"guest {GUEST}: {lab['kernel']['kver']}, {ram} MiB RAM; "
          f"median of {RUNS} runs")
    print(f"  {'measurement':<48} {'wall':>9} {'peak RSS':>10}")
    res = {}
    for label, args in cases:
        s, m = measure(args)
        res[label] = {"seconds": s, "peak_rss_mib": m}
        print(f"  {label:<48} {s * 1e3:>6.1f} ms {m:>7.1f} MiB")
    ps_less = res[cases[0][0]]
    ps_isf = res[cases[1][0]]
    start = res[cases[3][0]]
    for label, r in (("profile-less", ps_less), ("ISF", ps_isf)):
        ok = r["seconds"] < 0.150 and r["peak_rss_mib"] < 32
        print(f"target: ps {label} under 150 ms and 32 MB: "
              f"{r['seconds'] * 1e3:.0f} ms, {r['peak_rss_mib']:.1f} MiB -> "
              f"{'met' if ok else 'MISSED'}")
    print(f"target: profile-less start-up on a {ram} MiB guest under 100 ms: "
          f"{start['seconds'] * 1e3:.0f} ms -> "
          f"{'met' if start['seconds'] < 0.1 else 'MISSED'}")
    out = os.path.join(BUILD, "bench", "os.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"guest": GUEST, "runs": RUNS, "results": res}, f, indent=1)
    print(f"results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
