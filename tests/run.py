#!/usr/bin/env python3
"""Runs TinyVMI's whole test suite: every test in its own process under a
timeout.  Suites:
  unit      C unit tests (build/tests/unit), one process per test
  unit-san  the same tests built with ASan+UBSan
  core      the core is freestanding (make check-core)
  cli       tests/cli/*.py: the tinyvmi command on generated inputs
  lab       tests/lab/*.py: real Linux guests under QEMU (tests/guests)
  xen       tests/xen/test_xen.py: Xen 4.17 with PV/PVH guests under QEMU,
            the Xen driver and its vm_event events
  fuzz-regress  each fuzz target on its corpus plus 20,000 seeded inputs
  fuzz      each fuzz target for a minute (make fuzz only)
Ends with the line "N passed, N failed" (", N skipped" when some skip).
  --only SUITE[,SUITE]   run only these suites
  -k SUBSTR              run only tests whose id contains SUBSTR
  -j N                   parallel jobs (default: number of CPUs)
"""
import argparse
import concurrent.futures as cf
import glob
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
SKIP = 77


def c_tests(binary, suite):
    out = subprocess.run([binary, "--list"], capture_output=True, text=True,
                         check=True).stdout.split()
    return [(f"{suite}/{n}", [binary, n], 60) for n in out]


def py_tests(pattern, suite, timeout):
    tests = []
    for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
        names = subprocess.run([sys.executable, path, "--list"],
                               capture_output=True, text=True,
                               check=True).stdout.split()
        stem = os.path.splitext(os.path.basename(path))[0]
        tests += [(f"{suite}/{stem}/{n}", [sys.executable, path, n], timeout)
                  for n in names]
    return tests


def fuzz_tests(args, keep):
    """Each fuzz target: its corpus replayed, then more inputs.  New inputs
    go to the repository's corpus only when keep is true."""
    tests = []
    scratch = os.path.join(BUILD, "fuzz", "new")
    for f in sorted(glob.glob(os.path.join(BUILD, "fuzz", "fuzz_*"))):
        if f.endswith(".d"):
            continue
        name = os.path.basename(f)
        corpus = os.path.join(ROOT, "fuzz", "corpus", name)
        dirs = [corpus] if keep else [os.path.join(scratch, name), corpus]
        os.makedirs(dirs[0], exist_ok=True)
        tests.append((f"fuzz/{name}", [f, *args, "-rss_limit_mb=2048",
                                       *dirs], 300))
    return tests


SUITES = {
    "unit": lambda: c_tests(os.path.join(BUILD, "tests", "unit"), "unit"),
    "unit-san": lambda: c_tests(os.path.join(BUILD, "tests", "unit-san"),
                                "unit-san"),
    "core": lambda: [("core/check-core", ["make", "-s", "check-core"], 300)],
    "cli": lambda: py_tests("tests/cli/test_*.py", "cli", 300),
    "lab": lambda: py_tests("tests/lab/test_*.py", "lab", 1800),
    # Xen under QEMU (tests/guests/xenlab.py): one lab run serves a file's
    # tests; the first test of a file boots it (5-18 minutes).
    "xen": lambda: py_tests("tests/xen/test_xen.py", "xen", 2400),
    # make test: the corpus and a fixed number of seeded runs (repeatable);
    # make fuzz: a longer, open-ended search.
    "fuzz-regress": lambda: fuzz_tests(["-seed=1", "-runs=20000"], False),
    "fuzz": lambda: fuzz_tests(["-max_total_time=60"], True),
}
DEFAULT = ["unit", "unit-san", "core", "fuzz-regress", "cli", "lab", "xen"]


def run_one(test):
    tid, argv, timeout = test
    start = time.monotonic()
    env = dict(os.environ, TU_DATA=os.path.join(ROOT, "tests", "data"))
    try:
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout, env=env,
                           start_new_session=True)
        code, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        code = "timeout"
        out = ((e.stdout or b"").decode(errors="replace") +
               (e.stderr or b"").decode(errors="replace") +
               f"\ntimed out after {timeout} s")
    return tid, code, out, time.monotonic() - start


LAB_GUESTS = ["k61-4l-1c", "k61-5l-2c", "k612-4l-2c", "k612-5l-1c",
              "isf-4l-1c", "a64-2c", "armmp-1c", "armlpae-1c", "i686-1c",
              "i686pae-2c"]
# Kernels without BTF (Debian's 32-bit ones): their ISF is made from the
# -dbg package's vmlinux (tests/guests/dbgsym.py), once.
DBG_ARCH = {"i386": "i386", "arm": "armhf"}


def dbg_profile(guest):
    """The ISF of a guest whose kernel has no BTF; why it failed, or None."""
    try:
        with open(os.path.join(BUILD, "lab", "guests", guest,
                               "lab.json")) as f:
            lab = json.load(f)
    except (OSError, ValueError) as e:
        return f"{guest}: lab.json: {e}"
    deb = DBG_ARCH.get(lab.get("arch"))
    if not deb:
        return None
    kver = lab["kernel"]["kver"]
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "guests",
                                                     "dbgsym.py"),
                        "profile", f"{kver}:{deb}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        return f"dbgsym.py profile {kver}:{deb}: {p.stderr.strip()[-2000:]}"
    return None


def prepare_lab():
    """Fetches the lab's kernels and snapshots every guest (each step only
    if needed); returns why it failed, or None."""
    lab = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
    t0 = time.time()
    failed = []
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    free = shutil.disk_usage(os.path.join(ROOT, "build")).free
    print(f"lab: {free / 1e9:.1f} GB free on build/'s disk "
          "(the lab keeps about 4 GB there)", flush=True)
    for args in [["fetch"]] + [["ensure", g] for g in LAB_GUESTS]:
        p = subprocess.run(lab + args, cwd=ROOT, capture_output=True,
                           text=True, timeout=1800)
        if args[0] == "ensure":
            subprocess.run(lab + ["stop", args[1]], cwd=ROOT,
                           capture_output=True, timeout=120)
        for line in p.stderr.splitlines():
            if "booting again" in line:
                print(f"lab: {line.strip()}", flush=True)
        if p.returncode != 0:
            # one guest's failure must not leave the others unprepared
            failed.append(f"lab.py {' '.join(args)}: "
                          f"{p.stderr.strip()[-2000:]}")
            if args[0] == "fetch":
                break
        elif args[0] == "ensure":
            why = dbg_profile(args[1])
            if why:
                failed.append(why)
    if failed:
        return "\n".join(failed)
    print(f"lab ready ({time.time() - t0:.0f}s)", flush=True)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("-k")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    suites = args.only.split(",") if args.only else DEFAULT
    tests = []
    for s in suites:
        tests += SUITES[s]()
    if args.k:
        tests = [t for t in tests if args.k in t[0]]
    # Lab and Xen tests share the machine's two cores with QEMU: run them
    # one at a time, after the rest.
    guests = ("lab/", "xen/")
    quick = [t for t in tests if not t[0].startswith(guests)]
    lab = [t for t in tests if t[0].startswith(guests)]
    passed = failed = skipped = 0
    if "lab" in suites and not args.k:
        # A whole run: the guests first, so that unit and CLI tests that
        # read the lab's kernels and dumps run instead of skipping.
        prep = prepare_lab()
        if prep:
            failed += 1
            print(f"FAIL lab/prepare\n    {prep}", flush=True)

    def report(result):
        nonlocal passed, failed, skipped
        tid, code, out, secs = result
        if code == 0:
            passed += 1
            print(f"PASS {tid} ({secs:.1f}s)", flush=True)
        elif code == SKIP:
            skipped += 1
            last = out.strip().splitlines()[-1:] or [""]
            print(f"SKIP {tid}: {last[0]}", flush=True)
        else:
            failed += 1
            print(f"FAIL {tid} (exit {code}, {secs:.1f}s)", flush=True)
            print("    " + out.strip().replace("\n", "\n    ")[-6000:],
                  flush=True)

    with cf.ThreadPoolExecutor(max_workers=max(1, args.j)) as ex:
        for r in ex.map(run_one, quick):
            report(r)
    def stop_guests():
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "guests",
                                                     "lab.py"), "stop", "all"],
                       cwd=ROOT, capture_output=True, timeout=120)
    for i, t in enumerate(lab):
        # the lab's guests stop before the Xen lab boots: it needs both cores
        if t[0].startswith("xen/") and i and lab[i - 1][0].startswith("lab/"):
            stop_guests()
        report(run_one(t))
    if lab:  # leave no QEMU behind
        stop_guests()
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
