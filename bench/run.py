#!/usr/bin/env python3
"""make bench: TinyVMI's benchmarks on a real lab guest's dump.

Uses the guest lab (tests/guests/lab.py) for a Debian 6.1 guest's ELF dump
and the kernel addresses QEMU translated for its oracle; prints a table and
writes build/bench/results.json.  Run on purpose, not by CI."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
GUEST = os.environ.get("TVBENCH_GUEST", "k61-4l-1c")


def main():
    lab = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
    subprocess.run(lab + ["ensure", GUEST], check=True)
    subprocess.run(lab + ["stop", GUEST], check=False)
    d = os.path.join(BUILD, "lab", "guests", GUEST)
    with open(os.path.join(d, "oracle.json")) as f:
        oracle = json.load(f)
    vas = os.path.join(BUILD, "bench", "vas.txt")
    os.makedirs(os.path.dirname(vas), exist_ok=True)
    with open(vas, "w") as f:
        for e in oracle["entries"]:
            if e["pa"] is not None:
                f.write(e["va"] + "\n")
    p = subprocess.run([os.path.join(BUILD, "bench", "bench_mem"),
                        os.path.join(d, "dump.elf"), vas,
                        oracle["bases"]["page_offset_base"]],
                       capture_output=True, text=True, check=True)
    results = [json.loads(ln) for ln in p.stdout.splitlines()]
    by = {r["name"]: r for r in results}
    print(f"guest {GUEST}: {os.path.join(d, 'dump.elf')} "
          f"({len(open(vas).read().split())} mapped kernel addresses)")
    for r in results:
        print(f"  {r['name']:<28} {r['value']:>10} {r['unit']}")
    ratio = by["read_1mib_seq_pa"]["value"] / by["memcpy_1mib"]["value"]
    print(f"  sequential physical reads at {ratio:.0%} of memcpy bandwidth "
          f"(target > 50%)")
    print(f"  cached translation {by['translate_cached']['value']} ns "
          f"(target < 20 ns)")
    print(p.stderr.strip())
    with open(os.path.join(BUILD, "bench", "results.json"), "w") as f:
        json.dump({"guest": GUEST, "results": results,
                   "seq_read_vs_memcpy": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
