#!/usr/bin/env python3
"""make demo: a real introspection of a real guest.

Boots Debian's current 6.1 kernel under QEMU (tests/guests/lab.py), then,
with the tinyvmi command only:
  1. describes the guest's ELF dump (format, RAM, vCPUs, page mode);
  2. finds linux_banner (address from the guest's own /proc/kallsyms),
     walks its page tables and reads it;
  3. lists its processes and modules and looks up symbols with no profile
     at all: the kernel's own BTF and kallsyms, found in guest memory;
  4. the centre: resumes the guest and attaches to the running QEMU by its
     QMP socket (qemu:SOCK): lists its processes and modules live, traces
     the files it opens for a few seconds with a breakpoint the guest
     cannot see (do_sys_openat2), beside what the guest's own console says
     it opened, then detaches and shows the guest still running (QMP
     status, its heartbeat advancing);
  5. reads its RAM file with no help from QEMU, twice, a second apart: the
     kernel's jiffies counter moves; then lists the running guest's
     processes from that file (no registers: the kernel's page tables are
     found from physical memory alone).
One client may attach to a QEMU at a time: while attached the demo holds
build/lab/guests/NAME.lock, as the live tests do.
"""
import contextlib
import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINYVMI = os.path.join(ROOT, "build", "bin", "tinyvmi")
LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
GUEST = os.environ.get("TVDEMO_GUEST", "k61-4l-1c")
HEART_RE = re.compile(rb"TVLAB-HEARTBEAT (\d+) ([0-9.]+)(?: (\S+))?")


def say(title):
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def show(*args, capture=False):
    print("$ tinyvmi " + " ".join(map(str, args)), flush=True)
    p = subprocess.run([TINYVMI, *map(str, args)], capture_output=capture)
    if p.returncode:
        sys.exit(f"demo: tinyvmi {args[0]} failed (exit {p.returncode})")
    return p.stdout


@contextlib.contextmanager
def attach_lock(d):
    """The guest's lock (build/lab/guests/NAME.lock, as the live tests
    take it): one client attaches to a QEMU at a time."""
    fd = os.open(d + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def heartbeats(d, since=0):
    """[(n, uptime, path)] the guest printed after byte offset `since` of
    its serial console, and the console's size."""
    with open(os.path.join(d, "serial.log"), "rb") as f:
        data = f.read()
    return [(int(n), up.decode(), (p or b"/proc/uptime").decode())
            for n, up, p in HEART_RE.findall(data[since:])], len(data)


def qmp_status():
    """QEMU's own word on the run state (HMP `info status`)."""
    p = subprocess.run(LAB + ["hmp", GUEST, "info", "status"],
                       capture_output=True, text=True)
    return p.stdout.strip() or p.stderr.strip()


def live(d):
    """The running guest through QEMU: ps, modules, a trace, then detach."""
    target = "qemu:" + os.path.join(d, "qmp.sock")
    say(f"the running guest, live through QEMU: {target}")
    print(f"QEMU says: {qmp_status()}")
    with attach_lock(d):
        show("info", target)
        show("ps", target)
        show("modules", target)

        say("what the running guest opens: a breakpoint on do_sys_openat2 "
            "that the guest never sees, for 4 seconds")
        _, mark = heartbeats(d)
        out = show("trace", target, "do_sys_openat2", "--seconds", 4,
                   capture=True).decode(errors="replace")
    print(out, end="")
    hits = [ln for ln in out.splitlines() if "do_sys_openat2" in ln]
    # The heartbeat prints a line just after each open: wait for as many.
    deadline = time.monotonic() + 5
    beats, _ = heartbeats(d, mark)
    while len(beats) < len(hits) and time.monotonic() < deadline:
        time.sleep(0.2)
        beats, _ = heartbeats(d, mark)
    print(f"{len(hits)} opens seen from outside; the guest's own console "
          f"says (its heartbeat opens a file, then prints it):")
    for n, up, path in beats[:len(hits)]:
        print(f"  TVLAB-HEARTBEAT {n}  uptime {up}  opened {path}")

    say("detached: the guest runs on, without the breakpoint")
    print(f"QEMU says: {qmp_status()}")
    first, _ = heartbeats(d)
    time.sleep(2.5)
    last, _ = heartbeats(d)
    a = first[-1] if first else (0, "?", "")
    b = last[-1] if last else (0, "?", "")
    print(f"heartbeat {a[0]} (uptime {a[1]}) -> {b[0]} (uptime {b[1]}) "
          f"2.5 s later on the guest's console")
    if b[0] <= a[0]:
        sys.exit("demo: the guest's heartbeat stopped after detach")


def main():
    say(f"booting guest {GUEST} under QEMU (TCG) and saving its dumps")
    subprocess.run(LAB + ["ensure", GUEST, "--live"], check=True)
    d = os.path.join(ROOT, "build", "lab", "guests", GUEST)
    with open(os.path.join(d, "truth.json")) as f:
        truth = json.load(f)
    with open(os.path.join(d, "regs.json")) as f:
        regs = json.load(f)
    elf, ram = os.path.join(d, "dump.elf"), os.path.join(d, "ram")
    print(f"guest says: {truth['uname']}; {len(truth['ps'])} processes, "
          f"modules {', '.join(m['name'] for m in truth['modules'])}")

    say("the guest's ELF dump, as TinyVMI sees it")
    show("info", elf)

    banner = truth["kallsyms"]["linux_banner"]
    say(f"linux_banner at {banner} (from the guest's /proc/kallsyms)")
    show("translate", elf, banner)
    show("read", elf, banner, 96)

    say("its processes, modules and symbols: no profile, the kernel's own "
        "BTF and kallsyms")
    show("ps", elf)
    show("modules", elf)
    show("sym", elf, "init_task")
    show("sym", elf, hex(int(truth["kallsyms"]["do_sys_openat2"], 16) + 0x10))

    subprocess.run(LAB + ["hmp", GUEST, "cont"], check=True,
                   capture_output=True)
    live(d)

    say("the running guest's RAM file, read with no help from QEMU")
    paging = ["--page-mode", regs["paging"], "--dtb", regs["cpus"][0]["cr3"]]
    text = show("read", ram, banner, 96, "--raw", *paging, capture=True)
    print(text.split(b"\0")[0].decode(errors="replace").strip())
    jiffies = truth["kallsyms"]["jiffies"]
    ticks = []
    for _ in range(2):
        raw = show("read", ram, jiffies, 8, "--raw", *paging, capture=True)
        ticks.append(struct.unpack("<Q", raw)[0])
        time.sleep(1)
    print(f"jiffies {ticks[0]} -> {ticks[1]}: the guest ran "
          f"{ticks[1] - ticks[0]} ticks while we watched")

    print("$ tinyvmi ps " + ram, flush=True)
    p = subprocess.run([TINYVMI, "ps", ram], capture_output=True, text=True)
    # The guest runs while we walk its lists: a list may change under us.
    print(p.stdout + (p.stderr if p.returncode else ""), end="")

    subprocess.run(LAB + ["stop", GUEST], check=True, capture_output=True)
    say("done; the guest is stopped (artifacts cached in build/lab)")


if __name__ == "__main__":
    main()
