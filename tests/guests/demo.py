#!/usr/bin/env python3
"""make demo: a real introspection of a real guest.

Boots Debian's current 6.1 kernel under QEMU (tests/guests/lab.py), then,
with the tinyvmi command only:
  1. describes the guest's ELF dump (format, RAM, vCPUs, page mode);
  2. finds linux_banner (address from the guest's own /proc/kallsyms),
     walks its page tables and reads it;
  3. lists its processes and modules and looks up symbols with no profile
     at all: the kernel's own BTF and kallsyms, found in guest memory;
  4. resumes the guest and reads its RAM live, twice, a second apart:
     the kernel's jiffies counter moves while the guest runs; then lists
     the running guest's processes from its RAM file (no registers: the
     kernel's page tables are found from physical memory alone).
"""
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINYVMI = os.path.join(ROOT, "build", "bin", "tinyvmi")
LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
GUEST = os.environ.get("TVDEMO_GUEST", "k61-4l-1c")


def say(title):
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def show(*args, capture=False):
    print("$ tinyvmi " + " ".join(map(str, args)), flush=True)
    p = subprocess.run([TINYVMI, *map(str, args)], capture_output=capture)
    if p.returncode:
        sys.exit(f"demo: tinyvmi {args[0]} failed (exit {p.returncode})")
    return p.stdout


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

    say("the running guest, read live from its RAM file")
    subprocess.run(LAB + ["hmp", GUEST, "cont"], check=True,
                   capture_output=True)
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
