#!/usr/bin/env python3
"""make bench: TinyVMI's translation and read speed, on purpose, not in CI.

The dump is a real guest's: the guest lab's Debian 6.1 guest (`lab.py
ensure k61-4l-1c`, then its dump.elf).  When the lab is missing or cannot
give one, a 256 MiB synthetic raw image with kernel-like page tables (a
direct map of 2 MiB pages, kernel text and vmalloc-style 4 KiB pages) is
generated instead, and the output says so.  build/bench/bench_mem does the
measuring; this prints its table and the targets, and writes
build/bench/results.json.
  --synthetic   use the synthetic image even if the lab works
  --quick       short runs (0.05 s each instead of 0.5 s)
  --no-live     skip the live QEMU numbers (bench/bench_live.py: attach,
                breakpoint and single-step round trips, live RAM reads)
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
GUEST = os.environ.get("TVBENCH_GUEST", "k61-4l-1c")
BENCH = os.path.join(BUILD, "bench", "bench_mem")
SYNTH_VERSION = 1
MIB = 1 << 20


def lab_dump():
    """(dump path, [], facts) from the guest lab, or (None, reason)."""
    lab = os.path.join(ROOT, "tests", "guests", "lab.py")
    if not os.path.exists(lab):
        return None, "tests/guests/lab.py is not there yet"
    p = subprocess.run([sys.executable, lab, "ensure", GUEST],
                       capture_output=True, text=True)
    # The guest stays up after ensure; stop it so it does not share the
    # CPUs with the measurements.
    subprocess.run([sys.executable, lab, "stop", GUEST], capture_output=True)
    d = os.path.join(BUILD, "lab", "guests", GUEST)
    dump = os.path.join(d, "dump.elf")
    if p.returncode != 0 or not os.path.exists(dump):
        last = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["?"]
        return None, f"lab.py ensure {GUEST} failed: {last[0]}"
    facts = {"source": f"guest lab {GUEST} (Debian kernel, QEMU ELF dump)"}
    try:
        with open(os.path.join(d, "oracle.json")) as f:
            facts["page_offset_base"] = json.load(f)["bases"][
                "page_offset_base"]
    except (OSError, KeyError, ValueError):
        pass
    return (dump, [], facts), None


class Image:
    """256 MiB of RAM with x86-64 4-level tables, built in place."""

    def __init__(self, size):
        self.b = bytearray(size)
        self.next = 0x100000  # tables from 1 MiB up

    def page(self):
        pa, self.next = self.next, self.next + 0x1000
        return pa

    def entry(self, table, index, make):
        at = table + index * 8
        v = struct.unpack_from("<Q", self.b, at)[0]
        if not v & 1:
            v = make() | 3
            struct.pack_into("<Q", self.b, at, v)
        return v & 0x000ffffffffff000

    def map(self, root, va, pa, size):
        table = root
        for shift in (39, 30, 21, 12):
            index = (va >> shift) & 511
            if 1 << shift == size:
                flags = 0x63 | (0x80 if shift > 12 else 0)
                struct.pack_into("<Q", self.b, table + index * 8, pa | flags)
                return
            table = self.entry(table, index, self.page)


def synthetic_dump():
    """A 256 MiB raw image: direct map of all RAM in 2 MiB pages at
    0xffff888000000000, 16 MiB of kernel text in 4 KiB pages at
    0xffffffff81000000, 8192 scattered 4 KiB vmalloc pages."""
    path = os.path.join(BUILD, "bench", f"synthetic-v{SYNTH_VERSION}.raw")
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            root = json.load(f)["dtb"]
        return path, root
    size = 256 * MIB
    img = Image(size)
    root = img.page()
    for pa in range(0, size, 2 * MIB):
        img.map(root, 0xffff888000000000 + pa, pa, 2 * MIB)
    for i in range(4096):
        img.map(root, 0xffffffff81000000 + i * 4096, 0x1000000 + i * 4096,
                4096)
    rng = random.Random(1)
    for i in range(8192):
        img.map(root, 0xffffc90000000000 + i * 0x3000,
                rng.randrange(0x2000000, size, 4096), 4096)
    # Content: not all zero, so nothing is special-cased by the kernel.
    chunk = rng.randbytes(MIB)
    for at in range(0x2000000, size, MIB):
        img.b[at:at + MIB] = chunk
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(img.b)
    with open(meta, "w") as f:
        json.dump({"dtb": root}, f)
    return path, root


def pick_dump(force_synthetic):
    why = "--synthetic given"
    if not force_synthetic:
        got, why = lab_dump()
        if got:
            return got
    path, root = synthetic_dump()
    return path, ["--page-mode", "ia32e", "--dtb", hex(root)], {
        "source": f"SYNTHETIC 256 MiB raw image ({why})",
        "page_offset_base": "0xffff888000000000"}


def table(res, facts):
    print(f"dump: {res['dump']} [{facts['source']}]")
    print(f"  {res['format']}, {res['page_mode']}, DTB {res['dtb']}; "
          f"{res['pages']} kernel pages found by walking (4 KiB "
          f"{res['pages_4k']}, 2 MiB {res['pages_2m']}, 1 GiB "
          f"{res['pages_1g']}) in {res['lookups']} lookups")
    dm, want = res["direct_map"], facts.get("page_offset_base")
    if dm:
        verdict = "" if not want else (
            " = page_offset_base" if int(dm, 16) == int(want, 16)
            else f" (page_offset_base is {want}!)")
        print(f"  direct map {dm}{verdict}; sequential reads over "
              f"{res['seq_bytes'] >> 20} MiB; {res['translate_vas']} "
              f"translation VAs, {res['random_vas']} random-read VAs")
    print(f"  {'measurement':<40} {'median':>12} {'rate':>14}  cache hits")
    for r in res["results"]:
        hits = f"{r['cache_hit_rate']:.1%}" if "cache_hit_rate" in r else ""
        if "gb_per_s" in r:
            print(f"  {r['label']:<40} {r['ns_per_op'] / 1e3:>9.1f} us "
                  f"{r['gb_per_s']:>9.2f} GB/s  {hits}")
        else:
            print(f"  {r['label']:<40} {r['ns_per_op']:>9.1f} ns "
                  f"{r['mops_per_s']:>10.1f} M/s  {hits}")


def targets(res):
    by = {r["name"]: r for r in res["results"]}
    out = {}
    cached = by["translate_cached"]["ns_per_op"]
    out["cached_translation_ns"] = cached
    print(f"target: cached translation under 20 ns: {cached:.1f} ns -> "
          f"{'met' if cached < 20 else 'MISSED'}")
    mem = by["memcpy_1mib"]["gb_per_s"]
    for name, what in (("read_1mib_seq_pa", "physical"),
                       ("read_1mib_seq_directmap_va", "direct-map virtual")):
        if name in by:
            ratio = by[name]["gb_per_s"] / mem
            out[f"{name}_vs_memcpy"] = ratio
            print(f"target: sequential {what} reads above half of memcpy: "
                  f"{by[name]['gb_per_s']:.2f} / {mem:.2f} GB/s = "
                  f"{ratio:.0%} -> {'met' if ratio > 0.5 else 'MISSED'}")
    return out


ISF61 = ("/work/shared/data/debian-6.1.0-56-amd64/"
         "vmlinux-6.1.0-56-amd64.isf.json.xz")
PROFILE_BENCH = os.path.join(BUILD, "bench", "bench_profile")


def isf_files():
    """The 6.1 ISF decompressed, and a ~50 MB ISF made from it by adding
    renamed copies of its user types (cached in build/bench)."""
    import lzma
    out = os.path.join(BUILD, "bench")
    plain = os.path.join(out, "isf61.json")
    big = os.path.join(out, "isf50mb.json")
    if not os.path.exists(plain):
        with lzma.open(ISF61) as f, open(plain + ".tmp", "wb") as g:
            g.write(f.read())
        os.rename(plain + ".tmp", plain)
    if not os.path.exists(big):
        with open(plain) as f:
            isf = json.load(f)
        types = isf["user_types"]
        orig = list(types.items())
        copy = 0
        size = os.path.getsize(plain)
        while size < 50 * MIB:
            copy += 1
            for name, t in orig:
                types[f"{name}__copy{copy}"] = t
            size = len(json.dumps(isf, indent=2))
        with open(big + ".tmp", "w") as g:
            json.dump(isf, g, indent=2)
        os.rename(big + ".tmp", big)
    return plain, big


def profile_bench(quick):
    """Profile loading: wall time and peak RSS, one process per measure."""
    if not os.path.exists(PROFILE_BENCH) or not os.path.exists(ISF61):
        print("profile loading: skipped (bench_profile or the 6.1 ISF "
              "missing)")
        return []
    plain, big = isf_files()
    runs = "2" if quick else "5"
    jobs = [(plain, []), (big, []), (ISF61, ["--file"])]
    res = []
    for path, opts in jobs:
        p = subprocess.run([PROFILE_BENCH, path, "--json", "--runs", runs,
                            *opts], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"bench_profile {path} failed: {p.stderr.strip()}")
            continue
        r = json.loads(p.stdout)
        res.append(r)
        mb = (r["input_bytes"] or os.path.getsize(path)) / MIB
        print(f"  profile {os.path.basename(path):<40} {mb:6.1f} MiB "
              f"{r['mode']:<6} {r['median_s'] * 1e3:7.1f} ms  peak RSS "
              f"{r['peak_rss_kib'] / 1024:6.1f} MiB (+"
              f"{r['load_rss_growth_kib'] / 1024:.1f} loading)")
    for r in res:
        if r["file"] == big:
            ok = r["median_s"] < 0.5 and r["peak_rss_kib"] < 100 * 1024
            print(f"target: 50 MB ISF in under 0.5 s and 100 MB: "
                  f"{r['median_s']:.3f} s, {r['peak_rss_kib'] / 1024:.1f} "
                  f"MiB -> {'met' if ok else 'MISSED'}")
    return res


LIVE_BENCH = os.path.join(ROOT, "bench", "bench_live.py")


def live_bench(quick):
    """The live QEMU numbers (bench/bench_live.py prints its own table):
    attach, breakpoint and single-step round trips, live RAM reads."""
    print("live (QEMU, TCG):", flush=True)
    p = subprocess.run([sys.executable, LIVE_BENCH] +
                       (["--quick"] if quick else []))
    if p.returncode != 0:
        print("live bench: failed (above)")
        return None
    with open(os.path.join(BUILD, "bench", "live.json")) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-live", action="store_true",
                    help="skip the live QEMU benchmark")
    args = ap.parse_args()
    if not os.path.exists(BENCH):
        sys.exit(f"{BENCH} is missing: run make bench")
    dump, opts, facts = pick_dump(args.synthetic)
    cmd = [BENCH, dump, *opts, "--json"] + (["--quick"] if args.quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_mem failed ({p.returncode}): {p.stderr.strip()}")
    res = json.loads(p.stdout)
    table(res, facts)
    verdicts = targets(res)
    res["profile"] = profile_bench(args.quick)
    # Last: the live guest shares the CPUs with QEMU while it runs.
    res["live"] = None if args.no_live else live_bench(args.quick)
    out = os.path.join(BUILD, "bench", "results.json")
    with open(out, "w") as f:
        json.dump({"source": facts["source"], **res, "targets": verdicts,
                   "quick": args.quick}, f, indent=1)
    print(f"results: {os.path.relpath(out, ROOT)}")


if __name__ == "__main__":
    main()
