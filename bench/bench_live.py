#!/usr/bin/env python3
"""make bench, live: TinyVMI attached to a running QEMU guest of the lab.

build/bench/bench_live measures, through the public API:
  - attach: vmi_init_complete on qemu:QMP_SOCKET until it returns ready
    (QMP, shared RAM mapped, gdbstub, the OS layer profile-less), and
    vmi_destroy;
  - breakpoint round trip: a breakpoint on a function the kernel calls all
    the time (_raw_spin_lock); per hit, the time from the callback returning
    to the next callback (guest released, breakpoint stepped over, guest
    runs to the next hit, stops, event delivered): median, p90, hits/s;
  - single-step round trip on vCPU 0, the same way;
  - vmi_read_pa of 1 MiB blocks sequentially across all guest RAM (the
    shared RAM file, while the guest runs) beside memcpy of the same size.
The guest is the lab's live guest (`lab.py live live-k61-4l-1c`; `boot
k61-4l-1c` with a lab.py that has none), attached while holding
build/lab/guests/NAME.lock, as the live tests do.
Under TCG every number includes QEMU translating guest code: KVM would be
faster.  Writes build/bench/live.json.
  --quick     short runs    --seconds S   event measurements (default 5)
"""
import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench", "bench_live")
LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
LIVE = os.environ.get("TVBENCH_LIVE_GUEST", "live-k61-4l-1c")
FALLBACK = "k61-4l-1c"


def lab(*args, timeout=900):
    return subprocess.run(LAB + list(args), capture_output=True, text=True,
                          timeout=timeout)


@contextlib.contextmanager
def locked(name):
    """build/lab/guests/NAME.lock: one client attaches at a time (the
    live tests take the same lock)."""
    locks = os.path.join(BUILD, "lab", "guests")
    os.makedirs(locks, exist_ok=True)
    fd = os.open(os.path.join(locks, f"{name}.lock"),
                 os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def running(name):
    env = lab("env", name).stdout
    return "TVLAB_RUNNING=1" in env


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    if not os.path.exists(BENCH):
        sys.exit(f"{BENCH} is missing: run make bench")
    names = lab("list").stdout.split()
    name = LIVE if LIVE in names else FALLBACK
    d = os.path.join(BUILD, "lab", "guests", name)
    was_running = running(name)
    with locked(name):
        p = lab("live" if name == LIVE else "boot", name)
        if p.returncode != 0:
            sys.exit(f"live bench: lab.py could not bring up {name}: "
                     f"{p.stderr.strip()[-2000:]}")
        if name == FALLBACK:
            lab("hmp", name, "cont")
        with open(os.path.join(d, "lab.json")) as f:
            info = json.load(f)
        time.sleep(1)  # let the guest settle after a fresh boot
        cmd = [BENCH, "qemu:" + os.path.join(d, "qmp.sock"),
               "--seconds", str(args.seconds)] + \
            (["--quick"] if args.quick else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
    if not was_running and name == FALLBACK:
        lab("stop", name)
    if p.returncode != 0:
        sys.exit(f"bench_live failed ({p.returncode}): {p.stderr.strip()}")
    res = json.loads(p.stdout)
    accel = info.get("accel", "tcg").upper()
    k = info.get("kernel", {})
    res.update(guest=name, accel=accel, kernel=k.get("kver"),
               smp=info.get("smp"), ram_mib=info.get("ram_size", 0) >> 20,
               quick=args.quick)
    what = ("TCG: QEMU translates every guest instruction, no KVM"
            if accel == "TCG" else accel)
    print(f"live guest {name} ({k.get('kver')}, {info.get('smp')} vCPU, "
          f"{res['ram_mib']} MiB) under QEMU {accel} [{what}]")
    a, b, s, r = res["attach"], res["breakpoint"], res["singlestep"], \
        res["read"]
    w = 58
    print(f"  {'attach (' + accel + '): vmi_init_complete -> ready':<{w}} "
          f"median {a['init_median_ms']:7.1f} ms  (min "
          f"{a['init_min_ms']:.1f}, max {a['init_max_ms']:.1f}, "
          f"{a['runs']} runs); vmi_destroy {a['destroy_median_ms']:.1f} ms")
    print(f"  {'breakpoint round trip (' + accel + '), ' + res['symbol']:<{w}} "
          f"median {b['median_us'] / 1e3:7.2f} ms  p90 "
          f"{b['p90_us'] / 1e3:.2f} ms; {b['hits_per_s']:.0f} hits/s "
          f"({b['hits']} hits)")
    print(f"  {'single-step round trip (' + accel + '), vCPU 0':<{w}} "
          f"median {s['median_us'] / 1e3:7.2f} ms  p90 "
          f"{s['p90_us'] / 1e3:.2f} ms; {s['hits_per_s']:.0f} steps/s")
    mib = r["bytes"] >> 20
    print(f"  {f'vmi_read_pa 1 MiB sequential, {mib} MiB of live RAM':<{w}} "
          f"{r['read_pa_us']:9.1f} us  {r['read_pa_gb_per_s']:6.2f} GB/s")
    print(f"  {'memcpy 1 MiB sequential (same size)':<{w}} "
          f"{r['memcpy_us']:9.1f} us  {r['memcpy_gb_per_s']:6.2f} GB/s  "
          f"(read_pa at {r['read_pa_gb_per_s'] / r['memcpy_gb_per_s']:.0%} "
          f"of memcpy)")
    out = os.path.join(BUILD, "bench", "live.json")
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"results: {os.path.relpath(out, ROOT)}")
    return res


if __name__ == "__main__":
    main()
