#!/usr/bin/env python3
"""TinyVMI guest lab: real Debian kernels under QEMU, with ground truth.

Commands (NAME is a guest of the matrix, see `list`):
  fetch [--refresh]        Debian's current amd64 kernels + busybox-static -> build/lab/kernels
  boot NAME                boot the guest, wait for ===TVLAB-READY=== on its serial console
  snapshot NAME [--cont]   pause; regs.json, dump.elf, dump.raw, truth.json (stays paused)
  oracle NAME [--count N] [--seed S] [-o FILE]   QEMU's gva2gpa for N kernel addresses
  ensure NAME [--live]     fetch + boot + snapshot + oracle, each step only if needed
  live NAME                a live-* guest booted and running (reused when current)
  send NAME LINE...        a command to the guest's heartbeat on its ttyS1 (spawn,
                           reap, ps TAG): answers appear on serial.log
  stop NAME...|all         quit QEMU (no process is left behind)
  env NAME                 shell `export` lines for tests
  hmp NAME COMMAND...      run one HMP command (debugging aid)
  status | list            what runs / the matrix

Python standard library only. Host tools: apt-get, apt-cache, dpkg-deb, qemu-system-x86_64,
xz (lzma module), zstd (only for .ko.zst modules). Artifacts live in build/lab (TVLAB_ROOT).

Other architectures (a64-2c, armmp-1c, armlpae-1c, i686-1c, i686pae-2c: Debian's arm64,
armmp, armmp-lpae, 686, 686-pae kernels; qemu-system-aarch64/-arm/-i386) use the same
commands. Their kernels come from build/lab/apt-foreign on first use. ARM virt puts RAM at
guest-physical 0x40000000 (lab.json's ram_map; dump.raw is still offset = physical
address, sparse below RAM). regs.json adds the gdbstub's TTBR0/TTBR1/TCR/SCTLR and the
ELF dump's notes; truth.json adds the guest's /proc/kcore headers, System RAM and
vmallocinfo, from which the oracle's address classes are derived.
"""

import argparse
import gzip
import hashlib
import json
import lzma
import os
import random
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LAB = Path(os.environ.get("TVLAB_ROOT", REPO / "build" / "lab"))


def _shared():
    """The project's shared reference data: $TVLAB_SHARED, else beside the
    repository, else where this project's machines keep it (a clean clone
    elsewhere still finds it)."""
    if os.environ.get("TVLAB_SHARED"):
        return Path(os.environ["TVLAB_SHARED"])
    for p in (REPO.parent / "shared", Path("/work/shared")):
        if (p / "data").is_dir():
            return p
    return REPO.parent / "shared"


SHARED = _shared()
KERNELS = LAB / "kernels"
GUESTS_DIR = LAB / "guests"

# ---------------------------------------------------------------- the matrix (data)

# Kernel lines: the apt target release whose linux-image-amd64 picks the kernel
# (None = the default candidate: bookworm plus bookworm-security).
KERNEL_LINES = {
    "6.1": None,
    "6.12": "bookworm-backports",
}
# "isf": the fixed kernel in shared/data that comes with a Volatility ISF.
GUESTS = {
    "k61-4l-1c": {"kernel": "6.1", "la57": False, "smp": 1},
    "k61-5l-2c": {"kernel": "6.1", "la57": True, "smp": 2},
    "k612-4l-2c": {"kernel": "6.12", "la57": False, "smp": 2},
    "k612-5l-1c": {"kernel": "6.12", "la57": True, "smp": 1},
    "isf-4l-1c": {"kernel": "isf", "la57": False, "smp": 1},
    # Live guests: booted and left running, never snapshotted (tests/lab/test_live.py
    # attaches to them while they run; `live NAME` brings one up).
    "live-k61-4l-1c": {"kernel": "6.1", "la57": False, "smp": 1, "live": True},
    "live-k612-5l-2c": {"kernel": "6.12", "la57": True, "smp": 2, "live": True},
    # Other architectures (tests/lab/test_arch.py): Debian bookworm's arm64, armmp,
    # armmp-lpae, 686 and 686-pae kernels; "paging" is the mode the kernel must run in.
    "a64-2c": {"kernel": "arm64-6.1", "arch": "aarch64", "la57": False, "smp": 2,
               "paging": "aarch64"},
    "armmp-1c": {"kernel": "armmp-6.1", "arch": "arm", "la57": False, "smp": 1,
                 "paging": "short"},
    "armlpae-1c": {"kernel": "armlpae-6.1", "arch": "arm", "la57": False, "smp": 1,
                   "paging": "lpae"},
    "i686-1c": {"kernel": "686-6.1", "arch": "i386", "la57": False, "smp": 1,
                "paging": "legacy"},
    "i686pae-2c": {"kernel": "686pae-6.1", "arch": "i386", "la57": False, "smp": 2,
                   "paging": "pae"},
}
# Guest architectures other than x86_64 (data): QEMU, board, CPU, console, where RAM
# starts in guest-physical space, and the system registers read from the gdbstub
# (HMP `info registers` shows no TTBRs on ARM).
FOREIGN_ARCHES = {
    "aarch64": {"deb": "arm64", "qemu": "qemu-system-aarch64", "machine": "virt",
                "cpu": "cortex-a57", "console": "ttyAMA0", "ram_base": 0x40000000,
                # QEMU names SCTLR_EL1 "SCTLR" (its AArch32 name)
                "sysregs": ("TTBR0_EL1", "TTBR1_EL1", "TCR_EL1", ("SCTLR_EL1", "SCTLR"))},
    # highmem=off: the non-LPAE kernel cannot reach devices above 4 GiB
    "arm": {"deb": "armhf", "qemu": "qemu-system-arm", "machine": "virt,highmem=off",
            "cpu": "cortex-a15", "console": "ttyAMA0", "ram_base": 0x40000000,
            "sysregs": ("TTBR0", "TTBR1", "TTBCR", "SCTLR")},
    # max: PAE and NX for 686-pae; the 686 kernel runs 2-level paging on it
    "i386": {"deb": "i386", "qemu": "qemu-system-i386", "machine": "pc", "cpu": "max",
             "console": "ttyS0", "ram_base": 0, "sysregs": ()},
}


def garch(name):
    """The guest's architecture: x86_64 for the original matrix."""
    return GUESTS[name].get("arch", "x86_64")


def foreign(name):
    """The FOREIGN_ARCHES entry of a guest, or None for x86_64."""
    return FOREIGN_ARCHES.get(garch(name))

RAM_MIB = 256
MODULES = {"loop": "drivers/block/loop.ko", "dummy": "drivers/net/dummy.ko"}
APT_SOURCES = """\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main
deb http://deb.debian.org/debian-security bookworm-security main
"""
# KASLR stays on; a panic reboots at once, which -no-reboot turns into QEMU exiting.
KERNEL_APPEND = " ".join(["console=ttyS0 panic=-1 oops=panic",
                          os.environ.get("TVLAB_APPEND", "")]).strip()
BOOT_TIMEOUT = float(os.environ.get("TVLAB_BOOT_TIMEOUT", "180"))
CR4_LA57 = 1 << 12
PF_KTHREAD = 0x00200000
PF_WQ_WORKER = 0x00000020        # procfs shows such a task as "comm-workqueue"
USER_MARKER = b"TVLAB-USER-MARKER:4242:alpha:beta\0"
ARTIFACT_FORMAT = 1              # bump when a JSON schema changes: caches are redone

T0 = time.monotonic()


class LabError(Exception):
    """An error with a message meant for the user; exit status 1."""


def log(msg):
    print(f"[lab {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run(argv, timeout=600, **kw):
    """Run a command; raise LabError with its output on failure."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout}s: {shlex.join(map(str, argv))}")
    if p.returncode != 0:
        raise LabError(f"failed ({p.returncode}): {shlex.join(map(str, argv))}\n"
                       f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p.stdout


def write_json(path, obj):
    """Write JSON atomically (readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def hx(v):
    return None if v is None else f"{v:#x}"


# ---------------------------------------------------------------- fetch: private apt

def apt_opts(state="apt", arches=()):
    """apt options for a private state under build/lab/STATE (its own
    sources.list, lists and cache; the host's dpkg status), with foreign
    architectures added."""
    a = LAB / state
    return ["-o", f"Dir::Etc::SourceList={a / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::Etc::Preferences=/dev/null",
            "-o", "Dir::Etc::PreferencesParts=/dev/null",
            "-o", f"Dir::State::Lists={a / 'lists'}",
            "-o", f"Dir::Cache={a / 'cache'}",
            "-o", "Dir::State::status=/var/lib/dpkg/status",
            "-o", "APT::Sandbox::User=root",
            *[x for d in arches for x in ("-o", f"APT::Architectures::={d}")]]


def apt_update():
    a = LAB / "apt"
    for d in ("lists/partial", "cache/archives/partial"):
        (a / d).mkdir(parents=True, exist_ok=True)
    (a / "sources.list").write_text(APT_SOURCES)
    log(f"apt-get update (private state in {a})")
    run(["apt-get", *apt_opts(), "-q", "update"], timeout=300)


def apt_cache(args, target=None):
    t = ["-t", target] if target else []
    return run(["apt-cache", *apt_opts(), *t, *args], timeout=120)


def candidate(pkg, target=None):
    """The version apt would pick for pkg (with target release preferred)."""
    m = re.search(r"^\s*Candidate:\s*(\S+)", apt_cache(["policy", pkg], target), re.M)
    if not m or m.group(1) == "(none)":
        raise LabError(f"apt knows no candidate for {pkg} (target {target})")
    return m.group(1)


def resolve_line(line):
    """(package, version) of the kernel image linux-image-amd64 depends on for a line."""
    target = KERNEL_LINES[line]
    out = apt_cache(["depends", "linux-image-amd64"], target)
    pkgs = re.findall(r"Depends:\s*(linux-image-\S+)", out)
    if len(pkgs) != 1:
        raise LabError(f"line {line}: expected one kernel in\n{out}")
    pkg = pkgs[0]
    ver = candidate(pkg, target)
    if not pkg.startswith(f"linux-image-{line}."):
        log(f"WARNING: kernel line {line} now resolves to {pkg}: the matrix name is stale")
    return pkg, ver


def apt_download(pkg, ver, dest):
    """Download pkg=ver into dest; return the .deb path."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.deb"):
        old.unlink()
    run(["apt-get", *apt_opts(), "-q", "download", f"{pkg}={ver}"], cwd=dest, timeout=600)
    debs = list(dest.glob("*.deb"))
    if len(debs) != 1:
        raise LabError(f"apt-get download {pkg}: no single .deb in {dest}")
    return debs[0]


def deb_members(deb, want):
    """Stream deb's data archive; yield (member_name, bytes) for names where want(name)."""
    p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            for m in tar:
                if m.isfile() and want(m.name):
                    yield m.name, tar.extractfile(m).read()
    finally:
        p.stdout.close()
        if p.wait(timeout=120) != 0:
            raise LabError(f"dpkg-deb --fsys-tarfile {deb} failed")


def decompress_module(name, data):
    """Plain .ko bytes from loop.ko / loop.ko.xz / loop.ko.zst."""
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True,
                              check=True).stdout
    return data


def module_depends(ko):
    """The depends= list of a .ko's modinfo (we load modules without modprobe)."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko)
    return [d for d in (m.group(1).decode() if m else "").split(",") if d]


def extract_kernel(deb, dest):
    """Keep vmlinuz, config and our modules (decompressed); return kernel.json fields."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mod_re = {k: re.compile(r"/kernel/" + re.escape(v) + r"(\.xz|\.zst)?$")
              for k, v in MODULES.items()}
    found = {}
    for name, data in deb_members(deb, lambda n: re.search(r"boot/(vmlinuz|config)-", n)
                                  or any(r.search(n) for r in mod_re.values())):
        base = name.rsplit("/", 1)[-1]
        for mod, r in mod_re.items():
            if r.search(name):
                found[mod] = {"file": f"{mod}.ko", "package_path": name.lstrip(".")}
                (tmp / f"{mod}.ko").write_bytes(decompress_module(name, data))
                break
        else:
            key = "vmlinuz" if base.startswith("vmlinuz-") else "config"
            found[key] = base
            (tmp / base).write_bytes(data)
    return tmp, found


def fetch_kernel(line, debs):
    """Download and extract one line's kernel unless already there; return its dir."""
    pkg, ver = resolve_line(line)
    for d in KERNELS.glob("*/kernel.json"):
        k = read_json(d)
        if k and k.get("package") == pkg and k.get("version") == ver:
            log(f"line {line}: {pkg} {ver} already extracted")
            return d.parent
    log(f"line {line}: downloading {pkg} {ver}")
    deb = apt_download(pkg, ver, debs)
    kver = pkg[len("linux-image-"):]
    dest = KERNELS / kver
    tmp, found = extract_kernel(deb, dest)
    missing = {"vmlinuz", "config", *MODULES} - set(found)
    if missing:
        raise LabError(f"{deb.name} lacks {sorted(missing)}")
    meta = {"line": line, "package": pkg, "version": ver, "kver": kver,
            "vmlinuz": found["vmlinuz"], "config": found["config"],
            "modules": {m: found[m] for m in MODULES}}
    write_json(tmp / "kernel.json", meta)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    deb.unlink()
    return dest


def fetch_busybox(debs):
    dest = LAB / "busybox"
    if (dest / "busybox.json").exists():
        return
    ver = candidate("busybox-static")
    log(f"downloading busybox-static {ver}")
    deb = apt_download("busybox-static", ver, debs)
    got = dict(deb_members(deb, lambda n: n in ("./bin/busybox", "./usr/bin/busybox")))
    if not got:
        raise LabError(f"{deb.name} has no bin/busybox")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "busybox").write_bytes(next(iter(got.values())))
    (dest / "busybox").chmod(0o755)
    write_json(dest / "busybox.json", {"package": "busybox-static", "version": ver})
    deb.unlink()


def fetched():
    """True if every kernel line and busybox are extracted (no network needed)."""
    lines = read_json(KERNELS / "lines.json") or {}
    return ((LAB / "busybox" / "busybox.json").exists()
            and all((KERNELS / lines.get(ln, "-") / "kernel.json").exists()
                    for ln in KERNEL_LINES))


def cmd_fetch(refresh=False, quiet=False):
    if fetched() and not refresh:
        if not quiet:
            log("fetch: cached (use --refresh to look for newer kernels)")
        return
    t = time.monotonic()
    apt_update()
    debs = LAB / "debs"
    fetch_busybox(debs)
    lines = {line: fetch_kernel(line, debs).name for line in KERNEL_LINES}
    write_json(KERNELS / "lines.json", lines)
    log(f"fetch done in {time.monotonic() - t:.1f}s: {lines}")


# ---------------------------------------------------------------- fetch: other architectures
#
# ARM and 32-bit x86 kernels come from a second private apt state (build/lab/apt-foreign)
# that knows only those architectures, so amd64's state and artifacts stay as they are
# (tests/guests/dbgsym.py keeps its own in build/lab/apt-multi).
# They are fetched on first use of a guest that needs them, not by `fetch`.

FOREIGN_DEBS = ("arm64", "armhf", "i386")
# kernel line -> (Debian architecture, metapackage whose dependency is the kernel)
FOREIGN_LINES = {
    "arm64-6.1": ("arm64", "linux-image-arm64"),
    "armmp-6.1": ("armhf", "linux-image-armmp"),
    "armlpae-6.1": ("armhf", "linux-image-armmp-lpae"),
    "686-6.1": ("i386", "linux-image-686"),
    "686pae-6.1": ("i386", "linux-image-686-pae"),
}
MULTI_SOURCES = """\
deb [arch={a}] http://deb.debian.org/debian bookworm main
deb [arch={a}] http://deb.debian.org/debian-security bookworm-security main
""".format(a=",".join(FOREIGN_DEBS))


def multi_opts():
    return apt_opts("apt-foreign", FOREIGN_DEBS)


def multi_update():
    a = LAB / "apt-foreign"
    stamp = a / "updated"
    if stamp.exists() and (a / "sources.list").read_text() == MULTI_SOURCES:
        return
    for d in ("lists/partial", "cache/archives/partial"):
        (a / d).mkdir(parents=True, exist_ok=True)
    (a / "sources.list").write_text(MULTI_SOURCES)
    log(f"apt-get update for {', '.join(FOREIGN_DEBS)} (private state in {a})")
    run(["apt-get", *multi_opts(), "-q", "update"], timeout=600)
    stamp.write_text(time.ctime() + "\n")


def multi_cache(args):
    return run(["apt-cache", *multi_opts(), *args], timeout=120)


def multi_candidate(pkg):
    m = re.search(r"^\s*Candidate:\s*(\S+)", multi_cache(["policy", pkg]), re.M)
    if not m or m.group(1) == "(none)":
        raise LabError(f"apt (apt-foreign) knows no candidate for {pkg}")
    return m.group(1)


def multi_download(spec, dest):
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.deb"):
        old.unlink()
    run(["apt-get", *multi_opts(), "-q", "download", spec], cwd=dest, timeout=900)
    debs = list(dest.glob("*.deb"))
    if len(debs) != 1:
        raise LabError(f"apt-get download {spec}: no single .deb in {dest}")
    return debs[0]


def fetch_foreign_kernel(line):
    """Download and extract a foreign line's kernel unless already there; return its
    directory (the kernel's image, config and our modules, as for amd64)."""
    lines = read_json(KERNELS / "foreign-lines.json") or {}
    d = KERNELS / lines.get(line, "-")
    if (d / "kernel.json").exists():
        return d
    multi_update()
    deb_arch, meta_pkg = FOREIGN_LINES[line]
    out = multi_cache(["depends", f"{meta_pkg}:{deb_arch}"])
    pkgs = sorted({p.split(":")[0] for p in re.findall(r"Depends:\s*(linux-image-\S+)", out)})
    if len(pkgs) != 1:
        raise LabError(f"line {line}: expected one kernel in\n{out}")
    pkg = pkgs[0]
    ver = multi_candidate(f"{pkg}:{deb_arch}")
    log(f"line {line}: downloading {pkg}:{deb_arch} {ver}")
    deb = multi_download(f"{pkg}:{deb_arch}={ver}", LAB / "debs-multi")
    kver = pkg[len("linux-image-"):]
    dest = KERNELS / kver
    tmp, found = extract_kernel(deb, dest)
    missing = {"vmlinuz", "config", *MODULES} - set(found)
    if missing:
        raise LabError(f"{deb.name} lacks {sorted(missing)}")
    meta = {"line": line, "package": pkg, "arch": deb_arch, "version": ver, "kver": kver,
            "vmlinuz": found["vmlinuz"], "config": found["config"],
            "modules": {m: found[m] for m in MODULES}}
    write_json(tmp / "kernel.json", meta)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    deb.unlink()
    lines = read_json(KERNELS / "foreign-lines.json") or {}
    lines[line] = kver
    write_json(KERNELS / "foreign-lines.json", lines)
    return dest


def busybox_dir(deb_arch=None):
    """amd64's busybox stays in build/lab/busybox; others in busybox-<arch>."""
    return LAB / "busybox" if deb_arch in (None, "amd64") else LAB / f"busybox-{deb_arch}"


def fetch_foreign_busybox(deb_arch):
    dest = busybox_dir(deb_arch)
    if (dest / "busybox.json").exists():
        return dest
    multi_update()
    ver = multi_candidate(f"busybox-static:{deb_arch}")
    log(f"downloading busybox-static:{deb_arch} {ver}")
    deb = multi_download(f"busybox-static:{deb_arch}={ver}", LAB / "debs-multi")
    got = dict(deb_members(deb, lambda n: n in ("./bin/busybox", "./usr/bin/busybox")))
    if not got:
        raise LabError(f"{deb.name} has no bin/busybox")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "busybox").write_bytes(next(iter(got.values())))
    (dest / "busybox").chmod(0o755)
    write_json(dest / "busybox.json", {"package": f"busybox-static:{deb_arch}",
                                       "version": ver})
    deb.unlink()
    return dest


# ---------------------------------------------------------------- kernels and initramfs

def isf_kernel():
    """kernel.json-like dict for the shared ISF kernel (files used in place)."""
    dirs = [d for d in SHARED.glob("data/debian-*-amd64")
            if list(d.glob("vmlinuz-*")) and list(d.glob("*.isf.json*"))]
    if len(dirs) != 1:
        raise LabError(f"expected one ISF kernel dir under {SHARED}/data, got {dirs}")
    d = dirs[0]
    vmlinuz = next(d.glob("vmlinuz-*"))
    kver = vmlinuz.name[len("vmlinuz-"):]
    return {"line": "isf", "kver": kver, "package": f"linux-image-{kver}",
            "dir": str(d), "vmlinuz": str(vmlinuz),
            "config": str(next(d.glob("config-*"), "")),
            "isf": str(next(d.glob("*.isf.json*"))),
            "modules": {m: {"file": str(d / f"{m}.ko")} for m in MODULES},
            "build": str(KERNELS / f"isf-{kver}")}


def kernel_info(line):
    """Absolute paths of a line's kernel: vmlinuz, config, modules, build dir."""
    if line == "isf":
        return isf_kernel()
    lines = read_json(KERNELS / "lines.json") or {}
    d = KERNELS / lines.get(line, "-")
    if line in FOREIGN_LINES:
        d = fetch_foreign_kernel(line)
    k = read_json(d / "kernel.json")
    if not k:
        raise LabError(f"kernel line {line} not fetched (run: lab.py fetch)")
    k["vmlinuz"] = str(d / k["vmlinuz"])
    k["config"] = str(d / k["config"])
    for m in k["modules"].values():
        m["file"] = str(d / m["file"])
    k["build"] = str(d)
    return k


# Debian architecture -> (ELF class, e_machine, e_flags, code) of the sleeper: a loop
# around a system call that blocks until a signal.
SLEEPERS = {
    # mov eax, 29 (pause); int 0x80; jmp back to mov
    "i386": (1, 3, 0, bytes([0xB8, 29, 0, 0, 0, 0xCD, 0x80, 0xEB, 0xF7])),
    # mov r7, #29 (pause); svc #0; b back to mov.  EABI5, hard float.
    "armhf": (1, 40, 0x05000400, struct.pack("<3I", 0xE3A0701D, 0xEF000000, 0xEAFFFFFC)),
    # arm64 has no pause: ppoll(NULL, 0, NULL, NULL) with x0..x3 = 0, x8 = 73;
    # svc #0; b back to the first mov
    "arm64": (2, 183, 0, struct.pack("<7I", 0xD2800000, 0xD2800001, 0xD2800002,
                                     0xD2800003, 0xD2800928, 0xD4000001, 0x17FFFFFA)),
}


def sleeper_foreign(deb_arch):
    """The sleeper of sleeper_elf() for another architecture (same marker, same page)."""
    cls, machine, flags, code = SLEEPERS[deb_arch]
    base = 0x400000
    hdr = 64 + 56 if cls == 2 else 52 + 32
    body = code + USER_MARKER
    size = hdr + len(body)
    ident = b"\x7fELF" + bytes([cls, 1, 1, 0]) + bytes(8)
    if cls == 2:
        ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, machine, 1, base + hdr, 64, 0,
                           flags, 64, 56, 1, 0, 0, 0)
        phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    else:
        ehdr = struct.pack("<16sHHIIIIIHHHHHH", ident, 2, machine, 1, base + hdr, 52, 0,
                           flags, 52, 32, 1, 0, 0, 0)
        phdr = struct.pack("<8I", 1, 0, base, base, size, size, 5, 0x1000)
    return ehdr + phdr + body, hdr + len(code)


def sleeper_elf(deb_arch=None):
    """A 4 KiB-page-sized static ELF that pause()s forever and carries USER_MARKER.

    Hand-assembled so comm and argv are exactly what we exec (busybox applets need
    argv[0] to be an applet name). The marker sits in the mapped, executed page."""
    if deb_arch not in (None, "amd64"):
        return sleeper_foreign(deb_arch)
    base, hdr = 0x400000, 64 + 56
    code = bytes([0xB8, 34, 0, 0, 0,      # mov eax, 34 (pause)
                  0x0F, 0x05,             # syscall
                  0xEB, 0xF7])            # jmp back to mov
    body = code + USER_MARKER
    size = hdr + len(body)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, 0x3E, 1, base + hdr, 64, 0, 0,
                       64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + body, hdr + len(code)


def cpio_newc(entries):
    """cpio 'newc' archive of (name, mode, data, rdev) tuples; all owned by root."""
    out = bytearray()

    def add(ino, name, mode, data=b"", rdev=(0, 0)):
        nb = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0)
        out.extend(b"070701" + "".join(f"{v:08X}" for v in fields).encode() + nb)
        out.extend(bytes(-len(out) % 4))
        out.extend(data)
        out.extend(bytes(-len(out) % 4))

    for ino, e in enumerate(entries, 1):
        add(ino, *e)
    add(0, "TRAILER!!!", 0)
    return bytes(out)


def initramfs_entries(k):
    arch = k.get("arch")                       # None: amd64 (kernel.json has no arch)
    if arch:
        fetch_foreign_busybox(arch)
    busybox = (busybox_dir(arch) / "busybox").read_bytes()
    elf, _ = sleeper_elf(arch)
    d, r, x = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
    ents = [(n, d, b"") for n in ("bin", "dev", "proc", "sys", "run", "tmp", "tvlab",
                                  "lib", "lib/modules")]
    ents += [("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
             ("bin/busybox", x, busybox),
             ("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
             ("init", x, init_script(arch)),
             ("tvlab/tvlab-heartbeat", x, (HERE / "tvlab-heartbeat.sh").read_bytes()),
             ("tvlab/tvlab-sleeper", x, elf),
             ("tvlab/tvlab-idle", stat.S_IFLNK | 0o777, b"tvlab-sleeper"),
             ("tvlab/tvlab-late", stat.S_IFLNK | 0o777, b"tvlab-sleeper")]
    for m, info in k["modules"].items():
        ko = Path(info["file"]).read_bytes()
        if module_depends(ko):
            raise LabError(f"{m}.ko depends on {module_depends(ko)}: load those too")
        ents.append((f"lib/modules/{m}.ko", r, ko))
    return ents


# Printed by the init of the other architectures only (amd64's init stays byte for byte
# init.sh, so its artifacts stay as they are): the kernel's memory layout as the guest
# sees it, for the oracle's classes (linear map, vmalloc) -- derived, never assumed.
#   kcore       the first 4 KiB of /proc/kcore in hex: its program headers give each
#               RAM range's linear-map address and physical address, and the text
#   iomem       /proc/iomem's System RAM lines (physical RAM as the kernel sees it)
#   vmallocinfo the first lines of /proc/vmallocinfo (live vmalloc areas)
#   kallsyms_arch kallsyms entries that matter on these architectures
ARCH_TRUTH_SH = r"""
begin kcore; od -An -v -tx1 -N 4096 /proc/kcore | tr -d ' \n'; echo; end kcore
begin iomem; grep 'System RAM' /proc/iomem; end iomem
# %pK prints hashed pointers when kptr_restrict is 0, real ones to root when it is 1
echo 1 > /proc/sys/kernel/kptr_restrict
begin vmallocinfo; head -n 300 /proc/vmallocinfo; end vmallocinfo
echo 0 > /proc/sys/kernel/kptr_restrict
begin kallsyms_arch
grep -E ' (_text|_stext|stext|_etext|_sinittext|_einittext|__init_begin|__init_end|_end|primary_entry|start_kernel|secondary_startup|startup_32|linux_banner|init_task|init_mm|swapper_pg_dir|schedule|do_sys_openat2|vectors)$' /proc/kallsyms
end kallsyms_arch
"""


def init_script(deb_arch):
    """/init: init.sh, plus ARCH_TRUTH_SH before READY on the other architectures."""
    text = (HERE / "init.sh").read_bytes()
    if deb_arch in (None, "amd64"):
        return text
    mark = b"touch /run/tvlab-ready\n"
    if text.count(mark) != 1:
        raise LabError("init.sh: no single 'touch /run/tvlab-ready' to insert before")
    return text.replace(mark, ARCH_TRUTH_SH.lstrip("\n").encode() + mark)


def ensure_initramfs(k):
    """Build (or reuse) the kernel's initrd.img; return (path, sha256 of its inputs)."""
    ents = initramfs_entries(k)
    digest = hashlib.sha256(repr(ents).encode()).hexdigest()
    build = Path(k["build"])
    build.mkdir(parents=True, exist_ok=True)
    img, stamp = build / "initrd.img", build / "initrd.sha256"
    if img.exists() and stamp.exists() and stamp.read_text() == digest:
        return img, digest
    log(f"building initramfs for {k['kver']}")
    tmp = img.with_name("initrd.img.tmp")
    with gzip.GzipFile(tmp, "wb", mtime=0) as f:
        f.write(cpio_newc(ents))
    tmp.replace(img)
    stamp.write_text(digest)
    return img, digest


# ---------------------------------------------------------------- QMP client

class QMP:
    """A minimal QMP client on a unix socket; events are skipped."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as e:
            self.sock.close()
            raise LabError(f"cannot connect to QMP {path}: {e}")
        self.rf = self.sock.makefile("rb")
        self._read()                                   # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        try:
            line = self.rf.readline()
        except OSError as e:                           # includes socket timeouts
            raise LabError(f"QMP {self.path}: {e or 'timed out'}")
        if not line:
            raise LabError("QMP connection closed by QEMU")
        return json.loads(line)

    def execute(self, cmd, args=None, timeout=30):
        self.sock.settimeout(timeout)
        msg = {"execute": cmd, **({"arguments": args} if args else {})}
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise LabError(f"QMP {self.path}: {cmd}: {e}")
        while True:
            r = self._read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise LabError(f"QMP {cmd}: {r['error'].get('desc')}")

    def hmp(self, line, cpu=0, timeout=30):
        args = {"command-line": line}
        if cpu is not None:
            args["cpu-index"] = cpu
        return self.execute("human-monitor-command", args, timeout)

    def close(self):
        try:
            self.rf.close()
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- guests: processes

def gdir(name):
    if name not in GUESTS:
        raise LabError(f"unknown guest {name!r}; guests: {', '.join(GUESTS)}")
    return GUESTS_DIR / name


def qemu_pid(name):
    """pid of this guest's live QEMU, or None (checks the pid really is ours)."""
    d = gdir(name)
    try:
        pid = int((d / "qemu.pid").read_text())
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    if st[0] == "Z" or str(d / "serial.log").encode() not in cmd:
        return None
    return pid


def lab_qmp(name, timeout=10):
    return QMP(gdir(name) / "lab-qmp.sock", timeout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def gdb_endpoint(d):
    """Unix socket by default; TVLAB_GDB_TCP=1 for a free TCP port on 127.0.0.1."""
    if os.environ.get("TVLAB_GDB_TCP") == "1":
        port = free_port()
        return {"type": "tcp", "host": "127.0.0.1", "port": port}, f"tcp:127.0.0.1:{port}"
    p = d / "gdb.sock"
    return {"type": "unix", "path": str(p)}, f"unix:{p},server=on,wait=off"


def foreign_argv(name, k, initrd, gdb_spec):
    """QEMU for an ARM or i386 guest: TCG, RAM in a shared file as for amd64."""
    g, d, a = GUESTS[name], gdir(name), foreign(name)
    argv = [a["qemu"], "-name", f"tvlab-{name}", "-accel", "tcg", "-cpu", a["cpu"],
            "-smp", str(g["smp"]), "-m", f"{RAM_MIB}M",
            "-object", f"memory-backend-file,id=ram0,size={RAM_MIB}M,"
                       f"mem-path={d / 'ram'},share=on",
            "-machine", f"{a['machine']},memory-backend=ram0",
            "-kernel", k["vmlinuz"], "-initrd", str(initrd),
            "-append", foreign_append(name),
            "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", f"file:{d / 'serial.log'}"]
    if a["console"] == "ttyS0":                # the heartbeat's ttyS1, as on amd64
        argv += ["-serial", f"unix:{d / 'input.sock'},server=on,wait=off"]
    return argv + ["-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
                   "-qmp", f"unix:{d / 'lab-qmp.sock'},server=on,wait=off",
                   "-gdb", gdb_spec]


def foreign_append(name):
    return KERNEL_APPEND.replace("console=ttyS0", f"console={foreign(name)['console']}", 1)


def qemu_argv(name, k, initrd, gdb_spec):
    if foreign(name):
        return foreign_argv(name, k, initrd, gdb_spec)
    g, d = GUESTS[name], gdir(name)
    kvm = os.environ.get("TVLAB_KVM") == "1"
    return ["qemu-system-x86_64", "-name", f"tvlab-{name}",
            "-accel", "kvm" if kvm else "tcg",
            "-cpu", "max" if g["la57"] else "max,-la57",
            "-smp", str(g["smp"]), "-m", f"{RAM_MIB}M",
            "-object", f"memory-backend-file,id=ram0,size={RAM_MIB}M,"
                       f"mem-path={d / 'ram'},share=on",
            "-machine", "pc,memory-backend=ram0",
            "-kernel", k["vmlinuz"], "-initrd", str(initrd), "-append", KERNEL_APPEND,
            "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", f"file:{d / 'serial.log'}",
            # ttyS1: commands for the guest's heartbeat (spawn, reap, ps)
            "-serial", f"unix:{d / 'input.sock'},server=on,wait=off",
            "-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
            "-qmp", f"unix:{d / 'lab-qmp.sock'},server=on,wait=off",
            "-gdb", gdb_spec]


def tail(path, n=40):
    try:
        lines = Path(path).read_bytes().decode(errors="replace").splitlines()
    except OSError:
        return "(none)"
    return "\n".join(lines[-n:])


class BootDied(Exception):
    """The guest's kernel died before READY (QEMU exits on a panic)."""


BOOT_TRIES = 3


def wait_ready(name, proc, timeout):
    """Wait for READY on the serial log; raise (with its tail) on error or timeout."""
    d = gdir(name)
    serial = d / "serial.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = serial.read_bytes() if serial.exists() else b""
        if b"===TVLAB-READY===" in text:
            return
        if b"===TVLAB-ERROR" in text:
            raise LabError(f"{name}: guest init failed; serial tail:\n{tail(serial)}")
        if proc.poll() is not None:
            raise BootDied(f"{name}: QEMU exited ({proc.returncode}) during boot; "
                           f"serial tail:\n"
                           f"{tail(serial)}\nqemu.log:\n{tail(d / 'qemu.log')}")
        time.sleep(0.1)
    raise LabError(f"{name}: no ===TVLAB-READY=== within {timeout:.0f}s; "
                   f"serial tail:\n{tail(serial)}")


def kill_qemu(name, pid):
    """SIGTERM, then SIGKILL; wait until the pid is gone."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(pid, wait):
            return
    raise LabError(f"{name}: QEMU pid {pid} survives SIGKILL")


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)               # reap if it is our child
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            return True
        st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
        if st and st[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def cleanup_files(d):
    for f in ("qemu.pid", "qmp.sock", "lab-qmp.sock", "gdb.sock", "input.sock", "ram"):
        try:
            (d / f).unlink()
        except FileNotFoundError:
            pass


def start_qemu(name, k, initrd):
    """Start QEMU detached (own session); return (Popen, lab.json dict)."""
    d = gdir(name)
    d.mkdir(parents=True, exist_ok=True)
    cleanup_files(d)
    for f in ("serial.log", "qemu.log"):
        (d / f).unlink(missing_ok=True)
    gdb, gdb_spec = gdb_endpoint(d)
    argv = qemu_argv(name, k, initrd, gdb_spec)
    with open(d / "qemu.log", "wb") as qlog:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog,
                             start_new_session=True, cwd=d)
    (d / "qemu.pid").write_text(f"{p.pid}\n")
    info = {"name": name, "boot_id": uuid.uuid4().hex, "pid": p.pid,
            **{key: GUESTS[name][key] for key in ("la57", "smp")},
            "accel": "kvm" if os.environ.get("TVLAB_KVM") == "1" else "tcg",
            "kernel": {key: k.get(key) for key in ("line", "package", "version", "kver",
                                                   "vmlinuz", "config", "isf")},
            "initrd": str(initrd), "append": KERNEL_APPEND,
            "ram_size": RAM_MIB << 20, "ram_file": str(d / "ram"),
            "ram_map": [{"gpa": 0, "file_offset": 0, "size": RAM_MIB << 20}],
            "qmp": str(d / "qmp.sock"), "lab_qmp": str(d / "lab-qmp.sock"),
            "input": str(d / "input.sock"),
            "gdb": gdb, "serial": str(d / "serial.log"), "qemu_argv": argv}
    if foreign(name):
        base = foreign(name)["ram_base"]
        info.update(arch=garch(name), paging=GUESTS[name]["paging"],
                    append=foreign_append(name),
                    ram_map=[{"gpa": base, "file_offset": 0, "size": RAM_MIB << 20}])
    return p, info


def check_paging(name, q):
    """Every vCPU must run in the paging mode the matrix asks for; return regs text."""
    if foreign(name):
        return check_foreign_paging(name, q)
    text = q.hmp("info registers -a", cpu=None)
    cpus = parse_regs(text)
    want = GUESTS[name]["la57"]
    if len(cpus) != GUESTS[name]["smp"]:
        raise LabError(f"{name}: {len(cpus)} vCPUs in info registers, want "
                       f"{GUESTS[name]['smp']}")
    for c in cpus:
        cr4 = int(c["cr4"], 16)
        if bool(cr4 & CR4_LA57) != want:
            raise LabError(f"{name}: vCPU {c['index']} CR4={cr4:#x}: LA57 is "
                           f"{'on' if cr4 & CR4_LA57 else 'off'}, want {want}")
    return text


def cmd_boot(name):
    """Boot NAME unless its QEMU already runs; return lab.json's dict."""
    d = gdir(name)
    pid, lab = qemu_pid(name), read_json(d / "lab.json") or {}
    if pid and lab.get("pid") == pid:
        log(f"{name}: already running (pid {pid})")
        return lab
    if pid:                                  # a boot that never reached READY
        log(f"{name}: QEMU pid {pid} never finished booting: restarting it")
        cmd_stop(name)
    cmd_fetch(quiet=True)
    k = kernel_info(GUESTS[name]["kernel"])
    initrd, digest = ensure_initramfs(k)
    # Under TCG with two vCPUs a Debian kernel now and then dies early in
    # boot ("Oops: int3" while it patches its own code on one vCPU and runs
    # it on the other); a guest that dies before READY is booted again,
    # and the dead boot's console is kept beside the new one.
    for attempt in range(1, BOOT_TRIES + 1):
        t = time.monotonic()
        proc, info = start_qemu(name, k, initrd)
        info["initrd_sha256"] = digest
        pid = proc.pid
        log(f"{name}: booting {k['kver']} (pid {pid}, smp {info['smp']}, "
            f"la57 {info['la57']})")
        try:
            wait_ready(name, proc, BOOT_TIMEOUT)
            info["boot_seconds"] = round(time.monotonic() - t, 2)
            q = lab_qmp(name)
            try:
                check_paging(name, q)
            finally:
                q.close()
            break
        except BootDied as e:
            kill_qemu(name, pid)
            kept = d / f"serial.died-{attempt}.log"
            shutil.copyfile(d / "serial.log", kept)
            cleanup_files(d)
            if attempt == BOOT_TRIES:
                raise LabError(f"{e}\n(died in all {BOOT_TRIES} boots)")
            oops = [ln for ln in tail(kept, 400).splitlines()
                    if "Oops" in ln or "panic" in ln][:2]
            log(f"{name}: the kernel died during boot {attempt} "
                f"({'; '.join(oops) or 'no Oops line'}; console in "
                f"{kept.name}): booting again")
        except BaseException:
            kill_qemu(name, pid)
            cleanup_files(d)
            raise
    write_json(d / "lab.json", info)
    log(f"{name}: READY after {info['boot_seconds']}s")
    return info


def cmd_stop(name):
    d = gdir(name)
    pid = qemu_pid(name)
    if pid:
        try:
            q = lab_qmp(name, timeout=5)
            q.execute("quit", timeout=5)
            q.close()
        except (OSError, LabError):
            pass
        if not wait_gone(pid, 10):
            kill_qemu(name, pid)
        log(f"{name}: stopped (pid {pid})")
    cleanup_files(d)


# ---------------------------------------------------------------- registers

SEG_RE = re.compile(r"^(ES|CS|SS|DS|FS|GS|LDT|TR)\s*=(\w+) (\w+) (\w+) (\w+)")
TABLE_RE = re.compile(r"^(GDT|IDT)=\s+(\w+) (\w+)")
PAIR_RE = re.compile(r"\b([A-Z][A-Z0-9]*)\s*=\s*([0-9a-fA-F]+)\b")
GPRS = ("RAX RBX RCX RDX RSI RDI RBP RSP R8 R9 R10 R11 R12 R13 R14 R15 RIP RFL "
        "CR0 CR2 CR3 CR4 DR0 DR1 DR2 DR3 DR6 DR7 EFER").split()


def parse_cpu_regs(index, lines):
    """One vCPU of HMP `info registers`: hex strings, segments and tables."""
    c = {"index": index, "segments": {}}
    for ln in lines:
        if m := SEG_RE.match(ln):
            c["segments"][m.group(1).lower()] = {
                "selector": hx(int(m.group(2), 16)), "base": hx(int(m.group(3), 16)),
                "limit": hx(int(m.group(4), 16)), "flags": hx(int(m.group(5), 16))}
        elif m := TABLE_RE.match(ln):
            c[m.group(1).lower() + "_base"] = hx(int(m.group(2), 16))
            c[m.group(1).lower() + "_limit"] = hx(int(m.group(3), 16))
        elif not ln.startswith(("FPR", "XMM", "YMM", "ZMM", "FCW", "Code")):
            for key, val in PAIR_RE.findall(ln):
                if key in GPRS:
                    c["rflags" if key == "RFL" else key.lower()] = hx(int(val, 16))
                elif key in ("CPL", "HLT"):
                    c[key.lower()] = int(val, 16)
    for seg in ("fs", "gs"):
        if seg in c["segments"]:
            c[f"{seg}_base"] = c["segments"][seg]["base"]
    missing = {"rip", "rsp", "cr0", "cr3", "cr4", "efer"} - set(c)
    if missing:
        raise LabError(f"info registers: CPU {index} lacks {sorted(missing)}")
    return c


def parse_regs(text):
    """All vCPUs of `info registers -a` (or one CPU without a CPU# header)."""
    blocks, cur, idx = [], [], 0
    for ln in text.replace("\r", "").split("\n"):
        if m := re.match(r"^CPU#(\d+)", ln):
            if cur:
                blocks.append((idx, cur))
            idx, cur = int(m.group(1)), []
        elif ln.strip():
            cur.append(ln)
    if cur:
        blocks.append((idx, cur))
    return [parse_cpu_regs(i, b) for i, b in blocks]


def elf_qemu_notes(path):
    """Per vCPU {rip, cr3, kernel_gs_base} from the "QEMU" notes of an ELF dump."""
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, phentsize, phnum = struct.unpack_from("<Q", eh, 32)[0], *struct.unpack_from(
            "<HH", eh, 54)
        out = []
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ptype, _, off, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if ptype == 4:                                   # PT_NOTE
                f.seek(off)
                out += qemu_states(f.read(filesz))
        return out


def qemu_states(notes):
    """Walk an ELF note blob; decode what we use of each "QEMU" note (QEMUCPUState:
    u32 version, size; u64 rax..r15, rip, rflags; 10 segments of 24 bytes; cr[5];
    kernel_gs_base)."""
    res, pos = [], 0
    while pos + 12 <= len(notes):
        namesz, descsz, _ = struct.unpack_from("<III", notes, pos)
        name = notes[pos + 12:pos + 12 + namesz].rstrip(b"\0")
        desc = pos + 12 + (namesz + 3) // 4 * 4
        if name == b"QEMU" and descsz >= 440:
            at = lambda off: struct.unpack_from("<Q", notes, desc + off)[0]
            res.append({"rip": at(8 + 16 * 8), "cr3": at(8 + 18 * 8 + 240 + 3 * 8),
                        "kernel_gs_base": at(8 + 18 * 8 + 240 + 5 * 8)})
        pos = desc + (descsz + 3) // 4 * 4
    return res


def add_kernel_gs_base(cpus, elf):
    """info registers lacks KERNEL_GS_BASE: take it from the ELF dump's QEMU notes,
    after checking that the notes agree with info registers on rip and cr3."""
    notes = elf_qemu_notes(elf)
    if len(notes) != len(cpus):
        raise LabError(f"{elf}: {len(notes)} QEMU notes for {len(cpus)} vCPUs")
    for c, n in zip(cpus, notes):
        if (int(c["rip"], 16), int(c["cr3"], 16)) != (n["rip"], n["cr3"]):
            raise LabError(f"{elf}: QEMU note of vCPU {c['index']} disagrees with "
                           f"info registers (rip {n['rip']:#x}, cr3 {n['cr3']:#x})")
        c["kernel_gs_base"] = hx(n["kernel_gs_base"])


# ---------------------------------------------------------------- ground truth

BLOCK_RE = re.compile(r"^===TVLAB-BEGIN (\w+)===$(.*?)^===TVLAB-END \1===$", re.M | re.S)
PRINTK_RE = re.compile(r"^\[\s*\d+\.\d+\]")


def serial_blocks(path):
    """{block: [lines]} from the serial log up to READY (CRLF, kernel lines dropped)."""
    text = Path(path).read_bytes().decode(errors="replace").replace("\r", "")
    end = text.find("===TVLAB-READY===")
    if end < 0:
        raise LabError(f"{path}: no ===TVLAB-READY===")
    blocks = {}
    for m in BLOCK_RE.finditer(text[:end]):
        blocks[m.group(1)] = [ln for ln in m.group(2).split("\n")
                              if ln.strip() and not PRINTK_RE.match(ln)]
    return blocks


def parse_ps(lines):
    out = []
    for ln in lines:
        pid, ppid, flags, name = ln.split(" ", 3)
        out.append({"pid": int(pid), "ppid": int(ppid), "name": name,
                    "flags": hx(int(flags)), "kthread": bool(int(flags) & PF_KTHREAD),
                    "wq_worker": bool(int(flags) & PF_WQ_WORKER)})
    return sorted(out, key=lambda p: p["pid"])


def parse_modules(lines, sections):
    """/proc/modules: name size refcount deps state base [taint]."""
    out = []
    for ln in lines:
        f = ln.split()
        out.append({"name": f[0], "size": int(f[1]), "refcount": int(f[2]),
                    "deps": [x for x in f[3].split(",") if x not in ("-", "")],
                    "state": f[4], "base": hx(int(f[5], 16)),
                    "taint": f[6].strip("()") if len(f) > 6 else "",
                    "sections": sections.get(f[0], {})})
    return out


def parse_sections(lines):
    out = {}
    for ln in lines:
        mod, sec, addr = ln.split()
        out.setdefault(mod, {})[sec] = hx(int(addr, 16))
    return out


def parse_kallsyms(lines):
    """{name: "0x..."}; a name seen twice keeps its first address (all in _dups)."""
    syms, dups = {}, {}
    for ln in lines:
        addr, typ, name = ln.split()[:3]
        if name in syms:
            dups.setdefault(name, [syms[name]]).append(hx(int(addr, 16)))
        else:
            syms[name] = hx(int(addr, 16))
    return syms, dups


def parse_userprocs(cmd_lines, stat_lines, map_lines):
    """cmdline (argv) plus arg/env ranges and maps of the known user processes."""
    stats = {}
    for s in stat_lines:
        f = s[s.rindex(")") + 2:].split()         # f[0] is field 3 (state)
        stats[int(s.split()[0])] = {k: hx(int(f[i - 3])) for k, i in
                                    (("arg_start", 48), ("arg_end", 49),
                                     ("env_start", 50), ("env_end", 51))}
    maps = {}
    for ln in map_lines:
        pid, rest = ln.split(" ", 1)
        maps.setdefault(int(pid), []).append(rest)
    out = []
    for ln in cmd_lines:
        pid, hexargs = (ln.split() + [""])[:2]
        argv = bytes.fromhex(hexargs).decode(errors="replace").split("\0")[:-1]
        out.append({"pid": int(pid), "argv": argv, **stats.get(int(pid), {}),
                    "maps": maps.get(int(pid), [])})
    return out


def user_markers(procs, deb_arch=None):
    """Where USER_MARKER sits in each sleeper: first mapping of its executable + offset."""
    _, off = sleeper_elf(deb_arch)
    out = []
    for p in procs:
        first = next((m for m in p["maps"] if m.rstrip().endswith("/tvlab/tvlab-sleeper")),
                     None)
        if first:
            f = first.split()                     # "start-end perms offset ..."
            va = int(f[0].split("-")[0], 16) - int(f[2], 16) + off
            out.append({"pid": p["pid"], "va": hx(va), "bytes": USER_MARKER.hex(),
                        "text": USER_MARKER.rstrip(b"\0").decode()})
    return out


def parse_truth(serial, deb_arch=None):
    b = serial_blocks(serial)
    need = {"uname", "version", "ps", "modules", "modsections", "kallsyms", "cmdline",
            "userstat", "maps"}
    if need - set(b):
        raise LabError(f"{serial}: missing truth blocks {sorted(need - set(b))}")
    syms, dups = parse_kallsyms(b["kallsyms"])
    procs = parse_userprocs(b["cmdline"], b["userstat"], b["maps"])
    return {"uname": b["uname"][0].strip(), "version": b["version"][0].strip(),
            "ps": parse_ps(b["ps"]),
            "modules": parse_modules(b["modules"], parse_sections(b["modsections"])),
            "kallsyms": syms, "kallsyms_duplicates": dups,
            "kallsyms_sample": sorted([hx(int(a, 16)), t, n, int(c)] for a, t, n, c in
                                      (ln.split()[:4] for ln in b.get("kallsyms_sample", []))),
            "kallsyms_count": int(b["kallsyms_count"][0]) if b.get("kallsyms_count") else 0,
            "cmdline": procs, "user_markers": user_markers(procs, deb_arch)}


# ---------------------------------------------------------------- snapshot

def require_running(name):
    pid = qemu_pid(name)
    info = read_json(gdir(name) / "lab.json")
    if not pid or not info or info.get("pid") != pid:
        raise LabError(f"{name}: not running (run: lab.py boot {name})")
    return info


def pause(q):
    q.execute("stop")
    st = q.execute("query-status")
    if st.get("status") != "paused":
        raise LabError(f"guest did not pause: {st}")


def dig_holes(path):
    """Give the pages of zeros in path back to the file system: a guest's dump is
    mostly free memory (two thirds or more of it zeros), and the lab keeps
    two dumps of each of a dozen guests. Best effort: a file system that cannot
    punch holes keeps the file as it is."""
    subprocess.run(["fallocate", "--dig-holes", str(path)], capture_output=True)


def dump_files(name, q, size):
    """dump.elf (paging=false) and dump.raw (pmemsave 0..size), made readable
    and sparse."""
    d = gdir(name)
    for f, cmd, args in (
            ("dump.elf", "dump-guest-memory", lambda p: {"paging": False,
                                                         "protocol": f"file:{p}"}),
            ("dump.raw", "pmemsave", lambda p: {"val": 0, "size": size, "filename": str(p)})):
        tmp = d / (f + ".tmp")
        tmp.unlink(missing_ok=True)
        q.execute(cmd, args(tmp), timeout=300)
        tmp.chmod(0o644)
        dig_holes(tmp)
        tmp.replace(d / f)


def cmd_snapshot(name, cont=False):
    if foreign(name):
        return snapshot_foreign(name, cont)
    info = require_running(name)
    d = gdir(name)
    for f in ("snapshot.json", "oracle.json"):
        (d / f).unlink(missing_ok=True)
    t = time.monotonic()
    q = lab_qmp(name)
    try:
        pause(q)
        text = q.hmp("info registers -a", cpu=None)
        (d / "regs.txt").write_text(text)
        dump_files(name, q, info["ram_size"])
        cpus = parse_regs(text)
        add_kernel_gs_base(cpus, d / "dump.elf")
        la57 = all(int(c["cr4"], 16) & CR4_LA57 for c in cpus)
        write_json(d / "regs.json", {"boot_id": info["boot_id"], "la57": la57,
                                     "paging": "la57" if la57 else "ia32e", "cpus": cpus})
        write_json(d / "truth.json", {"boot_id": info["boot_id"],
                                      **parse_truth(d / "serial.log")})
        write_json(d / "snapshot.json", {"boot_id": info["boot_id"], "time": time.time(),
                                         "ram_size": info["ram_size"],
                                         "format": ARTIFACT_FORMAT,
                                         "initrd_sha256": info.get("initrd_sha256")})
        if cont:
            q.execute("cont")
    finally:
        q.close()
    log(f"{name}: snapshot in {time.monotonic() - t:.1f}s"
        f"{' (resumed)' if cont else ' (guest left paused)'}")


# ---------------------------------------------------------------- oracle

def read_u64(q, va):
    """A guest-virtual u64 through QEMU (HMP x /gx on vCPU 0)."""
    out = q.hmp(f"x /gx {va:#x}")
    m = re.search(r":\s*(0x[0-9a-fA-F]+)", out)
    if not m:
        raise LabError(f"x /gx {va:#x}: {out.strip()}")
    return int(m.group(1), 16)


def merge_ranges(pairs):
    """Sorted (start, end) pairs -> merged kernel-half ranges."""
    rngs = []
    for s, e in pairs:
        if s < 1 << 63:
            continue
        if rngs and rngs[-1][1] == s:
            rngs[-1] = (rngs[-1][0], e)
        else:
            rngs.append((s, e))
    return rngs


def info_mem(q):
    """Mapped kernel ranges from HMP `info mem` ("start-end size prot" lines)."""
    out = q.hmp("info mem", timeout=120)
    return merge_ranges((int(m.group(1), 16), int(m.group(2), 16)) for m in re.finditer(
        r"^([0-9a-f]{16})-([0-9a-f]{16}) [0-9a-f]+ \S+", out, re.M)), out


def info_tlb(q):
    """Mapped kernel ranges from HMP `info tlb` ("va: pa XGPDACTUW" per leaf page).

    Used under LA57: QEMU 7.2's `info mem` there prints nothing (its mem_info_la57
    tests the present bit the wrong way round; fixed upstream later) and takes ~25 s.
    info tlb gives no page size: flag P (PSE) marks 2M/1G pages; a PSE page is taken
    as 1G when 1G-aligned and the next leaf is at least 1G further, else as 2M."""
    out = q.hmp("info tlb", timeout=120)
    leaves = [(int(m.group(1), 16), m.group(2)[2] == "P") for m in re.finditer(
        r"^([0-9a-f]{16}): [0-9a-f]+ (\S{9})", out, re.M)]
    pairs = []
    for i, (va, pse) in enumerate(leaves):
        nxt = leaves[i + 1][0] if i + 1 < len(leaves) else 1 << 64
        size = 1 << 12
        if pse:
            size = 1 << 30 if va % (1 << 30) == 0 and nxt - va >= 1 << 30 else 1 << 21
        pairs.append((va, va + size))
    return merge_ranges(pairs), out


def mapped_ranges(q, la57):
    """Mapped kernel-half ranges of vCPU 0's page tables, and the HMP command used."""
    cmd = "info tlb" if la57 else "info mem"
    rngs, out = (info_tlb if la57 else info_mem)(q)
    if not rngs:
        raise LabError(f"{cmd} shows no kernel mappings:\n{out[:2000]}")
    return rngs, cmd


def clip(rngs, lo, hi):
    """The parts of rngs inside [lo, hi)."""
    return [(max(s, lo), min(e, hi)) for s, e in rngs if s < hi and e > lo]


def gaps(rngs, lo, hi):
    """The unmapped parts of [lo, hi)."""
    out, cur = [], lo
    for s, e in clip(rngs, lo, hi):
        if s > cur:
            out.append((cur, s))
        cur = max(cur, e)
    if cur < hi:
        out.append((cur, hi))
    return out


def pick(rng, rngs):
    """A random address in rngs, ranges weighted by size."""
    total = sum(e - s for s, e in rngs)
    x = rng.randrange(total)
    for s, e in rngs:
        if x < e - s:
            return s + x
        x -= e - s
    raise AssertionError


def regions(truth, bases, mapped):
    """Kind -> mapped (or unmapped) ranges, from kallsyms and the KASLR bases."""
    ks = {k: int(v, 16) for k, v in truth["kallsyms"].items()}
    pob, vmb, vmm = bases["page_offset_base"], bases["vmalloc_base"], bases["vmemmap_base"]
    vmemmap_run = next(((s, e) for s, e in mapped if s == vmm), None)
    mods = [r for m in truth["modules"] for r in
            clip(mapped, int(m["base"], 16), int(m["base"], 16) + m["size"])]
    near = [(e, min(e + 0x4000, n)) for (s, e), (n, _) in zip(mapped, mapped[1:])
            if vmb <= e < vmm and n > e]                    # guard pages after areas
    kinds = {"text": clip(mapped, ks["_text"], ks["_etext"]),
             "data": clip(mapped, ks["_sdata"], ks["_edata"]),
             "directmap": clip(mapped, pob, vmb),
             "vmalloc": clip(mapped, vmb, vmm),
             "vmemmap": [vmemmap_run] if vmemmap_run else [],
             "module": mods}
    return {k: v for k, v in kinds.items() if v}, gaps(mapped, pob, vmm), near


def noncanonical(rng, la57):
    """An address whose bits above the VA width are not a sign extension."""
    bits = 57 if la57 else 48
    hi = rng.randrange(1, (1 << (64 - bits + 1)) - 1)        # not all 0s nor all 1s
    return (hi << (bits - 1)) | rng.randrange(1 << (bits - 1))


def sample(rng, count, kinds, far, near, la57):
    """[(va, kind)]: ~1% non-canonical, ~10% unmapped, the rest spread over kinds."""
    n_nc = max(1, count // 100)
    n_un = count // 10
    out = [(noncanonical(rng, la57), "noncanonical") for _ in range(n_nc)]
    for i in range(n_un):
        out.append((pick(rng, near if near and i % 2 else far), "unmapped"))
    names = sorted(kinds)
    rest = count - len(out)
    for i in range(rest):
        k = names[i % len(names)]
        out.append((pick(rng, kinds[k]), k))
    rng.shuffle(out)
    return out


def gva2gpa(q, va):
    out = q.hmp(f"gva2gpa {va:#x}").strip()
    if m := re.match(r"gpa:\s*(0x[0-9a-fA-F]+)", out):
        return int(m.group(1), 16)
    if "Unmapped" in out:
        return None
    raise LabError(f"gva2gpa {va:#x}: {out}")


def oracle_stats(entries, bases):
    st = {}
    for e in entries:
        s = st.setdefault(e["kind"], {"n": 0, "mapped": 0})
        s["n"] += 1
        s["mapped"] += e["pa"] is not None
    pob = int(bases["page_offset_base"], 16)
    st["directmap_linear"] = all(int(e["pa"], 16) == int(e["va"], 16) - pob
                                 for e in entries
                                 if e["kind"] == "directmap" and e["pa"])
    return st


def cmd_oracle(name, count=1000, seed=1, out=None):
    if foreign(name):
        return oracle_foreign(name, count, seed, out)
    info = require_running(name)
    d = gdir(name)
    truth = read_json(d / "truth.json") or parse_truth(d / "serial.log")
    t = time.monotonic()
    q = lab_qmp(name)
    try:
        was_running = q.execute("query-status").get("running")
        if was_running:
            pause(q)
        ks = truth["kallsyms"]
        bases = {b: read_u64(q, int(ks[b], 16))
                 for b in ("page_offset_base", "vmalloc_base", "vmemmap_base")}
        cr3 = parse_regs(q.hmp("info registers"))[0]["cr3"]
        mapped, ranges_from = mapped_ranges(q, info["la57"])
        kinds, far, near = regions(truth, bases, mapped)
        rng = random.Random(seed)
        entries = [{"va": hx(va), "pa": hx(gva2gpa(q, va)), "kind": kind}
                   for va, kind in sample(rng, count, kinds, far, near, info["la57"])]
        if was_running:
            q.execute("cont")
    finally:
        q.close()
    hbases = {k: hx(v) for k, v in bases.items()}
    res = {"boot_id": info["boot_id"], "name": name, "cpu": 0, "cr3": cr3,
           "la57": info["la57"], "seed": seed, "count": count, "bases": hbases,
           "ranges_from": ranges_from,
           "stats": oracle_stats(entries, hbases), "entries": entries}
    write_json(Path(out) if out else d / "oracle.json", res)
    log(f"{name}: oracle of {count} addresses in {time.monotonic() - t:.1f}s: "
        f"{res['stats']}")


# ---------------------------------------------------------------- other architectures
#
# ARM and i386 guests share boot, truth and caching with amd64; what differs is here:
# their registers (ARM's TTBRs come from the gdbstub), their dump layout (RAM at
# 0x40000000 on ARM virt), and an oracle whose address classes come from what the
# guest printed about its own memory layout (HMP `info mem` is x86-only).

CR4_PAE = 1 << 5
ARM_EAE = 1 << 31                  # TTBCR.EAE: the long-descriptor (LPAE) format
NT_NAMES = {1: "NT_PRSTATUS", 2: "NT_PRFPREG", 0x400: "NT_ARM_VFP", 0x405: "NT_ARM_SVE",
            0x202: "NT_386_TLS", 0: "QEMU"}
PAGE = 0x1000
MAX_GDB_REPLY = 4 << 20


def check_foreign_paging(name, q):
    """vCPU count as the matrix says; on i386 also PAE on or off as it says (the
    ARM modes need the gdbstub's system registers: checked at snapshot)."""
    text = q.hmp("info registers -a", cpu=None)
    cpus = parse_foreign_regs(garch(name), text)
    if len(cpus) != GUESTS[name]["smp"]:
        raise LabError(f"{name}: {len(cpus)} vCPUs in info registers, want "
                       f"{GUESTS[name]['smp']}")
    if garch(name) == "i386":
        for c in cpus:
            mode = x86_32_paging(c)
            if mode != GUESTS[name]["paging"]:
                raise LabError(f"{name}: vCPU {c['index']} runs {mode} paging "
                               f"(CR0={c['cr0']}, CR4={c['cr4']}), want "
                               f"{GUESTS[name]['paging']}")
    return text


REG_KEEP = {
    "i386": re.compile(r"^(E[A-Z]{2}|EFL|CR[0-4]|DR[0-7]|EFER|CPL|HLT)$"),
    "aarch64": re.compile(r"^(PC|SP|PSTATE|X\d\d)$"),
    "arm": re.compile(r"^(R\d\d|PSR)$"),
}


def parse_foreign_regs(arch, text):
    """All vCPUs of `info registers -a` on i386/ARM: {index, <reg>: hex}."""
    out, cur, idx = [], None, 0
    for ln in text.replace("\r", "").split("\n"):
        if m := re.match(r"^CPU#(\d+)", ln):
            cur = {"index": int(m.group(1))}
            out.append(cur)
            continue
        if cur is None and ln.strip():
            cur = {"index": idx}
            out.append(cur)
        for key, val in PAIR_RE.findall(ln):
            if REG_KEEP[arch].match(key):
                k = {"EFL": "eflags"}.get(key, key.lower())
                cur.setdefault(k, hx(int(val, 16)))
    need = {"i386": {"eip", "esp", "cr0", "cr3", "cr4"}, "aarch64": {"pc", "sp"},
            "arm": {"r15", "r13"}}[arch]
    for c in out:
        if need - set(c):
            raise LabError(f"info registers: CPU {c['index']} lacks {sorted(need - set(c))}"
                           f"\n{text[:1500]}")
    return out


def x86_32_paging(c):
    if not int(c["cr0"], 16) & (1 << 31):
        return "off"
    return "pae" if int(c["cr4"], 16) & CR4_PAE else "legacy"


def arm_paging(arch, c):
    """The translation regime the kernel's tables use, from the system registers."""
    sctlr = int(c["sctlr_el1" if arch == "aarch64" else "sctlr"], 16)
    if not sctlr & 1:
        return "off"
    if arch == "aarch64":
        return "aarch64"
    return "lpae" if int(c["ttbcr"], 16) & ARM_EAE else "short"


class GDB:
    """A minimal gdb remote-protocol client: enough to read registers by name."""

    def __init__(self, spec, timeout=20):
        if spec.get("type") == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            addr = spec["path"]
        else:
            self.sock = socket.socket()
            addr = (spec["host"], spec["port"])
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr)
        except OSError as e:
            self.sock.close()
            raise LabError(f"cannot connect to the gdbstub {addr}: {e}")
        self.buf = b""

    def close(self):
        self.sock.close()

    def _byte(self):
        if not self.buf:
            try:
                self.buf = self.sock.recv(65536)
            except OSError as e:
                raise LabError(f"gdbstub: {e or 'timed out'}")
            if not self.buf:
                raise LabError("gdbstub closed the connection")
        b, self.buf = self.buf[0], self.buf[1:]
        return b

    def ask(self, data):
        """Send one packet, return the reply's payload (binary escapes undone)."""
        pkt = data.encode()
        self.sock.sendall(b"$" + pkt + b"#" + f"{sum(pkt) & 0xff:02x}".encode())
        while self._byte() != ord("$"):          # acks ('+') and noise before the reply
            pass
        out, esc = bytearray(), False
        while True:
            b = self._byte()
            if b == ord("#") and not esc:
                break
            if len(out) > MAX_GDB_REPLY:
                raise LabError(f"gdbstub: reply to {data[:40]!r} longer than "
                               f"{MAX_GDB_REPLY} bytes")
            if esc:
                out.append(b ^ 0x20)
                esc = False
            elif b == ord("}"):
                esc = True
            else:
                out.append(b)
        self._byte(), self._byte()               # checksum (TCP/unix: trusted)
        self.sock.sendall(b"+")
        return out.decode(errors="replace")

    def xfer(self, annex):
        """A qXfer:features:read object, read in pieces (bounded)."""
        text, off = "", 0
        for _ in range(1024):
            r = self.ask(f"qXfer:features:read:{annex}:{off:x},ffb")
            if not r or r[0] not in "ml":
                raise LabError(f"gdbstub: qXfer {annex}: {r[:80]!r}")
            text += r[1:]
            off += len(r) - 1
            if r[0] == "l":
                return text
        raise LabError(f"gdbstub: qXfer {annex}: too many pieces")

    def reg_numbers(self):
        """{register name: [(regnum, bitsize)]} from the target description; numbers
        follow gdb's rule: in order of appearance, includes expanded in place, an
        explicit regnum resets the count."""
        regs, state, seen = {}, {"next": 0}, set()

        def walk(annex, depth):
            if depth > 4 or annex in seen:
                return
            seen.add(annex)
            xml = self.xfer(annex)
            for m in re.finditer(r'<xi:include\s+href="([^"]+)"|<reg\b([^>]*)>', xml):
                if m.group(1):
                    walk(m.group(1), depth + 1)
                    continue
                attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                if "regnum" in attrs:
                    state["next"] = int(attrs["regnum"])
                regs.setdefault(attrs.get("name", ""), []).append(
                    (state["next"], int(attrs.get("bitsize", "0"))))
                state["next"] += 1

        walk("target.xml", 0)
        return regs

    def threads(self):
        out, r = [], self.ask("qfThreadInfo")
        for _ in range(256):
            if not r.startswith("m"):
                break
            out += [t for t in r[1:].split(",") if t]
            r = self.ask("qsThreadInfo")
        return out

    def read_reg(self, num):
        r = self.ask(f"p{num:x}")
        if not r or r.startswith("E") or len(r) % 2:
            raise LabError(f"gdbstub: register {num}: {r!r}")
        return int.from_bytes(bytes.fromhex(r), "little")


def gdb_sysregs(spec, names):
    """[{name.lower(): hex}] per vCPU (gdb thread), from the gdbstub's system registers.
    A name may be a tuple (saved under its first, found under any); the widest register
    of a name wins (AArch32 TTBRs exist as 32- and 64-bit views)."""
    g = GDB(spec)
    try:
        g.ask("?")
        nums = g.reg_numbers()
        pick_ = {}
        for n in names:
            alts = n if isinstance(n, tuple) else (n,)
            found = [a for a in alts if a in nums]
            if not found:
                raise LabError(f"gdbstub's target description lacks {n} (have "
                               f"{len(nums)} registers, e.g. {sorted(nums)[:20]})")
            pick_[alts[0].lower()] = max(nums[found[0]], key=lambda x: x[1])
        out = []
        for t in g.threads():
            if g.ask(f"Hg{t}") != "OK":
                raise LabError(f"gdbstub: cannot select thread {t}")
            out.append({k: hx(g.read_reg(num)) for k, (num, _) in pick_.items()})
        return out
    finally:
        g.close()


def elf_notes(path):
    """The ELF dump's notes: class, machine and [(name, type, desc bytes)] (ELF32 or
    ELF64, little-endian; bounded by the file)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[5] != 1:
            raise LabError(f"{path}: not a little-endian ELF file")
        cls, machine = eh[4], struct.unpack_from("<H", eh, 18)[0]
        if cls == 2:
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        else:
            phoff, = struct.unpack_from("<I", eh, 28)
            phentsize, phnum = struct.unpack_from("<HH", eh, 42)
        size = os.fstat(f.fileno()).st_size
        notes = []
        for i in range(min(phnum, 4096)):
            f.seek(phoff + i * phentsize)
            ph = f.read(phentsize)
            if cls == 2:
                ptype, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", ph)
            else:
                ptype, off, _, _, filesz = struct.unpack_from("<5I", ph)
            if ptype != 4 or off + filesz > size or filesz > 16 << 20:
                continue
            f.seek(off)
            blob, pos = f.read(filesz), 0
            while pos + 12 <= len(blob):
                namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
                name = blob[pos + 12:pos + 12 + namesz].rstrip(b"\0").decode(errors="replace")
                desc = pos + 12 + (namesz + 3) // 4 * 4
                if desc + descsz > len(blob):
                    break
                notes.append((name, ntype, blob[desc:desc + descsz]))
                pos = desc + (descsz + 3) // 4 * 4
    return {"class": 64 if cls == 2 else 32, "machine": machine}, notes


def note_summary(notes):
    return [{"name": n, "type": t, "type_name": NT_NAMES.get(t if n != "QEMU" else 0, hx(t)),
             "size": len(d)} for n, t, d in notes]


def foreign_dump_files(name, q, info):
    """dump.elf as for amd64; dump.raw with offset = guest-physical address (on ARM a
    sparse file whose first ram_base bytes are a hole), from pmemsave of RAM only."""
    d = gdir(name)
    tmp = d / "dump.elf.tmp"
    tmp.unlink(missing_ok=True)
    q.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{tmp}"},
              timeout=300)
    tmp.chmod(0o644)
    dig_holes(tmp)
    tmp.replace(d / "dump.elf")
    (ram,) = info["ram_map"]
    part = d / "dump.raw.part"
    part.unlink(missing_ok=True)
    q.execute("pmemsave", {"val": ram["gpa"], "size": ram["size"], "filename": str(part)},
              timeout=300)
    part.chmod(0o644)
    if ram["gpa"]:
        tmp = d / "dump.raw.tmp"
        with open(part, "rb") as src, open(tmp, "wb") as dst:
            dst.truncate(ram["gpa"])
            dst.seek(ram["gpa"])
            shutil.copyfileobj(src, dst, 8 << 20)
        part.unlink()
        part = tmp
    dig_holes(part)
    part.replace(d / "dump.raw")
    return ram["gpa"] + ram["size"]


def check_qemu_notes(cpus, notes, elf):
    """i386: each vCPU's "QEMU" note must agree with info registers on eip and cr3."""
    states = qemu_states(b"".join(struct.pack("<III", 5, len(dd), t) + b"QEMU\0\0\0\0" + dd
                                  + bytes(-len(dd) % 4) for n, t, dd in notes if n == "QEMU"))
    if len(states) != len(cpus):
        raise LabError(f"{elf}: {len(states)} QEMU notes for {len(cpus)} vCPUs")
    for c, n in zip(cpus, states):
        if (int(c["eip"], 16), int(c["cr3"], 16)) != (n["rip"], n["cr3"]):
            raise LabError(f"{elf}: QEMU note of vCPU {c['index']} disagrees with "
                           f"info registers (eip {n['rip']:#x}, cr3 {n['cr3']:#x})")


def kernel_root(arch, c):
    """The page-table root that translates kernel addresses on this vCPU."""
    if arch == "i386":
        return c["cr3"]
    if arch == "aarch64":
        return c["ttbr1_el1"]
    ttbcr = int(c["ttbcr"], 16)
    # long descriptors: TTBR1 covers the top when T1SZ (bits 18:16) is set;
    # short descriptors: TTBR1 is used only when N (bits 2:0) is set
    uses1 = (ttbcr >> 16) & 7 if ttbcr & ARM_EAE else ttbcr & 7
    return c["ttbr1"] if uses1 else c["ttbr0"]


MODULE_PROBE_TRIES = 20


def pause_with_modules(name, q, truth):
    """Pause; on 32-bit ARM, pause at a moment when vCPU 0's tables map the modules.

    There modules live below PAGE_OFFSET, in TTBR0's half: a process's tables get
    their entries only when it touches them (LPAE) or when it was created after the
    load (short descriptors), so which process vCPU 0 last ran decides whether
    gva2gpa sees them. The guest runs on for 0.5 s until it does (bounded); returns
    the number of pauses."""
    bases = [int(m["base"], 16) for m in truth["modules"]]
    for n in range(1, MODULE_PROBE_TRIES + 1):
        pause(q)
        if garch(name) != "arm" or all(gva2gpa(q, b) is not None for b in bases):
            return n
        q.execute("cont")
        time.sleep(0.5)
    pause(q)
    log(f"{name}: vCPU 0's tables never mapped all modules in {MODULE_PROBE_TRIES} "
        f"pauses: the oracle's module addresses will be unmapped")
    return MODULE_PROBE_TRIES + 1


def snapshot_foreign(name, cont):
    info = require_running(name)
    d, a, arch = gdir(name), foreign(name), garch(name)
    for f in ("snapshot.json", "oracle.json"):
        (d / f).unlink(missing_ok=True)
    t = time.monotonic()
    truth = parse_arch_truth(d / "serial.log", a["deb"], info["kernel"]["config"])
    q = lab_qmp(name)
    try:
        pauses = pause_with_modules(name, q, truth)
        text = q.hmp("info registers -a", cpu=None)
        (d / "regs.txt").write_text(text)
        cpus = parse_foreign_regs(arch, text)
        if a["sysregs"]:
            sysregs = gdb_sysregs(info["gdb"], a["sysregs"])
            if len(sysregs) != len(cpus):
                raise LabError(f"{name}: gdbstub has {len(sysregs)} threads for "
                               f"{len(cpus)} vCPUs")
            for c, sr in zip(cpus, sysregs):
                c.update(sr)
            st = q.execute("query-status")
            if st.get("status") != "paused":
                raise LabError(f"{name}: the guest runs again after the gdbstub: {st}")
        raw_size = foreign_dump_files(name, q, info)
        elfinfo, notes = elf_notes(d / "dump.elf")
        prstatus = [n for n in notes if n[0] == "CORE" and n[1] == 1]
        if len(prstatus) != len(cpus):
            raise LabError(f"{name}: dump.elf has {len(prstatus)} NT_PRSTATUS notes for "
                           f"{len(cpus)} vCPUs")
        if arch == "i386":
            check_qemu_notes(cpus, notes, d / "dump.elf")
        modes = {x86_32_paging(c) if arch == "i386" else arm_paging(arch, c) for c in cpus}
        if modes != {GUESTS[name]["paging"]}:
            raise LabError(f"{name}: vCPUs run {sorted(modes)} paging, want "
                           f"{GUESTS[name]['paging']}")
        for c in cpus:
            c["kernel_root"] = kernel_root(arch, c)
        write_json(d / "regs.json", {
            "boot_id": info["boot_id"], "arch": arch, "la57": False,
            "paging": GUESTS[name]["paging"], "cpus": cpus,
            "sysregs_from": "gdbstub" if a["sysregs"] else None,
            "elf": {**elfinfo, "notes": note_summary(notes)},
            "ram_map": info["ram_map"]})
        write_json(d / "truth.json", {"boot_id": info["boot_id"], **truth})
        write_json(d / "snapshot.json", {"boot_id": info["boot_id"], "time": time.time(),
                                         "ram_size": info["ram_size"], "raw_size": raw_size,
                                         "arch": arch, "ram_map": info["ram_map"],
                                         "pauses": pauses,
                                         "format": ARTIFACT_FORMAT,
                                         "initrd_sha256": info.get("initrd_sha256")})
        if cont:
            q.execute("cont")
    finally:
        q.close()
    log(f"{name}: snapshot in {time.monotonic() - t:.1f}s"
        f"{' (resumed)' if cont else ' (guest left paused)'}")


# ---------------------------------------------------------------- other architectures: truth

def parse_kcore(lines):
    """PT_LOAD headers of /proc/kcore's first 4 KiB: [{vaddr, paddr|None, size}]."""
    h = "".join(lines).strip()
    if not re.fullmatch(r"[0-9a-f]*", h) or len(h) < 128:
        return []
    b = bytes.fromhex(h[:len(h) // 2 * 2])
    if b[:4] != b"\x7fELF" or b[5] != 1:
        return []
    cls = b[4]
    if cls == 2:
        phoff, = struct.unpack_from("<Q", b, 32)
        phentsize, phnum = struct.unpack_from("<HH", b, 54)
        fmt, none = "<IIQQQQQQ", (1 << 64) - 1
    else:
        phoff, = struct.unpack_from("<I", b, 28)
        phentsize, phnum = struct.unpack_from("<HH", b, 42)
        fmt, none = "<8I", (1 << 32) - 1
    out = []
    for i in range(min(phnum, 256)):
        at = phoff + i * phentsize
        if at + struct.calcsize(fmt) > len(b):
            break
        f = struct.unpack_from(fmt, b, at)
        if cls == 2:
            ptype, vaddr, paddr, memsz = f[0], f[3], f[4], f[6]
        else:
            ptype, vaddr, paddr, memsz = f[0], f[2], f[3], f[5]
        if ptype == 1:
            out.append({"vaddr": hx(vaddr), "paddr": None if paddr == none else hx(paddr),
                        "size": memsz})
    return out


def parse_iomem(lines):
    out = []
    for ln in lines:
        if m := re.match(r"^\s*([0-9a-f]+)-([0-9a-f]+) : System RAM", ln):
            out.append({"start": hx(int(m.group(1), 16)), "end": hx(int(m.group(2), 16) + 1)})
    return out


def parse_vmallocinfo(lines):
    out = []
    for ln in lines:
        f = ln.split()
        if len(f) < 2 or not (m := re.match(r"^0x([0-9a-f]+)-0x([0-9a-f]+)$", f[0])):
            continue
        s, e = int(m.group(1), 16), int(m.group(2), 16)
        # hashed pointers (kptr_restrict) would not span the size printed beside them
        if e <= s or not f[1].isdigit() or e - s != int(f[1]):
            continue
        pages = next((int(w[6:]) for w in f[3:] if re.fullmatch(r"pages=\d+", w)), None)
        out.append({"start": hx(s), "end": hx(e), "caller": f[2] if len(f) > 2 else "",
                    "pages": pages,
                    "kinds": [w for w in f[3:] if re.fullmatch(r"[a-z_]+", w)]})
    return out


def linear_layout(kcore, iomem, text_va):
    """The linear map from kcore's RAM headers: [(va, pa, size)] sharing one offset.
    Where the kernel image has its own header (arm64, x86_64: KCORE_TEXT, another
    va - pa), the group holding the kernel text is dropped; on 32-bit kernels the
    text lies inside the linear map and there is one group."""
    ram = [(int(r["start"], 16), int(r["end"], 16)) for r in iomem]
    groups = {}
    for h in kcore:
        if h["paddr"] is None:
            continue
        va, pa = int(h["vaddr"], 16), int(h["paddr"], 16)
        if any(s < pa + h["size"] and pa < e for s, e in ram):   # (i386: one header
            # spans RAM and the holes between System RAM ranges)
            groups.setdefault(va - pa, []).append((va, pa, h["size"]))
    if len(groups) > 1:
        groups = {k: v for k, v in groups.items()
                  if not any(va <= text_va < va + n for va, _, n in v)}
    if len(groups) != 1:
        raise LabError(f"cannot tell the linear map in /proc/kcore's headers {kcore} "
                       f"(System RAM {iomem}, kernel text at {hx(text_va)})")
    return sorted(next(iter(groups.values())))


def config_linear(config, iomem, vmalloc):
    """The linear map of a 32-bit kernel without /proc/kcore (armhf): CONFIG_PAGE_OFFSET
    of the kernel's own config maps the first System RAM the guest reports; it ends
    below the first vmalloc area above it (lowmem)."""
    m = re.search(r"^CONFIG_PAGE_OFFSET=(0x[0-9a-fA-F]+)$", Path(config).read_text(), re.M)
    ram = sorted((int(r["start"], 16), int(r["end"], 16)) for r in iomem)
    if not m or not ram:
        raise LabError(f"no /proc/kcore, and no CONFIG_PAGE_OFFSET in {config} or no "
                       f"System RAM in /proc/iomem: cannot derive the linear map")
    page_offset, phys_offset = int(m.group(1), 16), ram[0][0]
    top = min([int(v["start"], 16) for v in vmalloc if int(v["start"], 16) > page_offset]
              + [1 << 32])
    out = []
    for s, e in ram:
        va = page_offset + s - phys_offset
        n = min(e - s, top - va)
        if n > 0:
            out.append((va, s, n))
    return out


def parse_arch_truth(serial, deb_arch, config):
    """truth.json of a foreign guest: amd64's fields plus the layout blocks."""
    t = parse_truth(serial, deb_arch)
    b = serial_blocks(serial)
    extra, _ = parse_kallsyms(b.get("kallsyms_arch", []))
    for k, v in extra.items():
        t["kallsyms"].setdefault(k, v)
    t["kcore"] = parse_kcore(b.get("kcore", []))
    t["iomem"] = parse_iomem(b.get("iomem", []))
    t["vmallocinfo"] = parse_vmallocinfo(b.get("vmallocinfo", []))
    text = int(t["kallsyms"].get("_text") or t["kallsyms"].get("_stext") or "0x0", 16)
    if t["kcore"]:
        lin, src = linear_layout(t["kcore"], t["iomem"], text), "/proc/kcore"
    else:
        lin = config_linear(config, t["iomem"], t["vmallocinfo"])
        src = "CONFIG_PAGE_OFFSET + /proc/iomem (no /proc/kcore)"
    t["layout"] = {"linear": [{"va": hx(va), "pa": hx(pa), "size": n} for va, pa, n in lin],
                   "linear_from": src,
                   "linear_va_minus_pa": hx((lin[0][0] - lin[0][1]) % (1 << 64)),
                   "text_va": hx(text) if text else None}
    return t


# ---------------------------------------------------------------- other architectures: oracle

def foreign_classes(truth, arch):
    """Kind -> candidate ranges (mapped classes), and candidate ranges for unmapped."""
    ks = {k: int(v, 16) for k, v in truth["kallsyms"].items()}
    lin = [(int(r["va"], 16), int(r["va"], 16) + r["size"]) for r in truth["layout"]["linear"]]
    end = ks.get("_etext") or ks.get("_sinittext") or ks.get("__init_begin")
    start = ks.get("_stext") or ks.get("_text")
    if not start or not end or end <= start:
        raise LabError(f"kallsyms gives no kernel text range (_stext/_text {hx(start)}, "
                       f"_etext {hx(end)})")
    mods = [(int(m["base"], 16), int(m["base"], 16) + m["size"]) for m in truth["modules"]]
    secs = sorted({int(a, 16) for m in truth["modules"]
                   for a in m["sections"].values() if int(a, 16)})
    vm = [(int(v["start"], 16), int(v["end"], 16)) for v in truth["vmallocinfo"]]
    # fully backed vmalloc areas (pages= covers all but the guard page: per-cpu
    # chunks, for one, are populated on demand)
    vmalloc = [(s, e - PAGE) for (s, e), v in zip(vm, truth["vmallocinfo"])
               if "vmalloc" in v["kinds"] and e - PAGE > s
               and (v.get("pages") or 0) * PAGE == e - PAGE - s]
    kinds = {"text": [(start, end)], "directmap": lin, "module": mods,
             "vmalloc": vmalloc}
    # unmapped candidates: vmalloc guard pages and the holes between areas, the page
    # after each linear range, and anywhere in the kernel half
    un = [(e - PAGE, e) for s, e in vm]
    un += [(e, n) for (_, e), (n, _) in zip(sorted(vm), sorted(vm)[1:]) if n > e]
    un += [(e, e + 16 * PAGE) for _, e in lin if e + 16 * PAGE < 1 << (64 if arch == "aarch64" else 32)]
    lo = min(s for s, _ in lin)
    un.append((lo, (1 << 64) if arch == "aarch64" else (1 << 32)))
    return {k: v for k, v in kinds.items() if v}, secs, un, lo


def foreign_sample(rng, count, arch, kinds, points, unmapped_cands, kernel_lo, q):
    """[(va, kind, pa)], no address twice: ~100 addresses QEMU says are unmapped, ~1%
    user-half, (arm64) ~1% non-canonical, each module section's start (points), the
    rest spread over the mapped classes."""
    out = [(va, "module", gva2gpa(q, va)) for va in points[:count // 10]]
    seen = {va for va, _, _ in out}
    n_user = max(1, count // 100)
    for _ in range(n_user):
        va = rng.randrange(PAGE, kernel_lo)
        seen.add(va)
        out.append((va, "user", gva2gpa(q, va)))
    if arch == "aarch64":
        for _ in range(max(1, count // 100)):
            hi = rng.randrange(1, (1 << 16) - 1)            # bits 63:48 neither 0s nor 1s
            va = (hi << 48) | rng.randrange(1 << 48)
            seen.add(va)
            out.append((va, "noncanonical", gva2gpa(q, va)))
    n_un, tries = count // 10, 0
    while sum(k == "unmapped" for _, k, _ in out) < n_un:
        tries += 1
        if tries > 50 * n_un:
            raise LabError(f"found only {sum(k == 'unmapped' for _, k, _ in out)} "
                           f"unmapped kernel addresses in {tries} tries")
        # half the guesses near areas (guard pages, holes), half anywhere
        va = pick(rng, unmapped_cands[:-1] if tries % 2 and len(unmapped_cands) > 1
                  else unmapped_cands[-1:])
        if va not in seen and gva2gpa(q, va) is None:
            seen.add(va)
            out.append((va, "unmapped", None))
    names = sorted(kinds)
    rest = count - len(out)
    for i in range(rest):
        k = names[i % len(names)]
        for _ in range(100):                     # a fresh address (bounded)
            va = pick(rng, kinds[k])
            if va not in seen:
                break
        seen.add(va)
        out.append((va, k, gva2gpa(q, va)))
    rng.shuffle(out)
    return out


def oracle_foreign(name, count=1000, seed=1, out=None):
    info = require_running(name)
    d, arch = gdir(name), garch(name)
    truth = read_json(d / "truth.json")
    regs = read_json(d / "regs.json")
    if not truth or "layout" not in truth or not regs:
        raise LabError(f"{name}: no snapshot (run: lab.py snapshot {name})")
    t = time.monotonic()
    q = lab_qmp(name)
    try:
        was_running = q.execute("query-status").get("running")
        if was_running:
            pause(q)
        kinds, points, un, lo = foreign_classes(truth, arch)
        rng = random.Random(seed)
        entries = [{"va": hx(va), "pa": hx(pa), "kind": kind} for va, kind, pa in
                   foreign_sample(rng, count, arch, kinds, points, un, lo, q)]
        if was_running:
            q.execute("cont")
    finally:
        q.close()
    lay = truth["layout"]
    off = int(lay["linear_va_minus_pa"], 16)
    st = {}
    for e in entries:
        s = st.setdefault(e["kind"], {"n": 0, "mapped": 0})
        s["n"] += 1
        s["mapped"] += e["pa"] is not None
    # QEMU's walk and the guest's layout (kcore, or config + iomem) agree on the
    # linear map
    st["directmap_linear"] = all((int(e["va"], 16) - int(e["pa"], 16)) % (1 << 64) == off
                                 for e in entries if e["kind"] == "directmap" and e["pa"])
    res = {"boot_id": info["boot_id"], "name": name, "arch": arch, "cpu": 0,
           "cr3": regs["cpus"][0]["kernel_root"], "la57": False, "seed": seed,
           "count": count,
           "bases": {"linear_va_minus_pa": lay["linear_va_minus_pa"],
                     "linear_start": lay["linear"][0]["va"],
                     "text": lay["text_va"]},
           "ranges_from": "kallsyms, /proc/modules, module sections, /proc/kcore, "
                          "/proc/vmallocinfo",
           "stats": st, "entries": entries}
    write_json(Path(out) if out else d / "oracle.json", res)
    log(f"{name}: oracle of {count} addresses in {time.monotonic() - t:.1f}s: {st}")


# ---------------------------------------------------------------- ensure, env, status

def current_initrd(name):
    """sha256 of the initramfs inputs the guest would boot with now."""
    cmd_fetch(quiet=True)
    return ensure_initramfs(kernel_info(GUESTS[name]["kernel"]))[1]


def artifacts_ok(name, count, digest):
    """The boot_id the cached artifacts share, or None if any is missing, partial,
    of an older format or from another initramfs."""
    d = gdir(name)
    snap = read_json(d / "snapshot.json")
    if not snap or snap.get("format") != ARTIFACT_FORMAT or \
            snap.get("initrd_sha256") != digest:
        return None
    bid = snap["boot_id"]
    for f in ("truth.json", "regs.json", "oracle.json"):
        j = read_json(d / f)
        if not j or j.get("boot_id") != bid:
            return None
    if read_json(d / "oracle.json").get("count") != count:
        return None
    try:
        if (d / "dump.raw").stat().st_size != snap.get("raw_size", snap["ram_size"]) or \
                (d / "dump.elf").stat().st_size <= snap["ram_size"]:
            return None
    except OSError:
        return None
    return bid


def cmd_ensure(name, live=False, count=1000):
    """Artifacts from one boot; with --live, also a running QEMU that matches them.
    For a live guest: the same as `live NAME`."""
    if GUESTS[name].get("live"):
        cmd_live(name)
        return
    t = time.monotonic()
    digest = current_initrd(name)
    bid = artifacts_ok(name, count, digest)
    lab = read_json(gdir(name) / "lab.json") or {}
    running = qemu_pid(name) is not None
    if running and lab.get("initrd_sha256") != digest:
        log(f"{name}: running QEMU booted an older initramfs: restarting it")
        cmd_stop(name)
        running = False
    if bid and (not live or (running and lab.get("boot_id") == bid)):
        log(f"{name}: artifacts cached (boot {bid[:8]}), running={running}")
        return
    if running and bid and lab.get("boot_id") != bid:
        log(f"{name}: running QEMU is not the artifacts' boot: snapshotting it anew")
    cmd_boot(name)
    cmd_snapshot(name)
    cmd_oracle(name, count)
    log(f"{name}: ensure done in {time.monotonic() - t:.1f}s (guest left paused)")


def cmd_live(name):
    """A live guest up and running (booted, never snapshotted): reuses a running QEMU
    whose boot is of the current kernel and initramfs (resuming it if a test left it
    paused), else boots one. Returns lab.json's dict."""
    if not GUESTS[name].get("live"):
        raise LabError(f"{name} is a snapshot guest; live guests: "
                       f"{', '.join(n for n, g in GUESTS.items() if g.get('live'))}")
    digest = current_initrd(name)
    k = kernel_info(GUESTS[name]["kernel"])
    lab = read_json(gdir(name) / "lab.json") or {}
    pid = qemu_pid(name)
    if pid and lab.get("pid") == pid and lab.get("initrd_sha256") == digest and \
            (lab.get("kernel") or {}).get("vmlinuz") == k["vmlinuz"]:
        try:
            q = lab_qmp(name)
            try:
                st = q.execute("query-status")
                if st.get("status") == "paused":
                    log(f"{name}: was left paused: resuming it")
                    q.execute("cont")
                    st = q.execute("query-status")
            finally:
                q.close()
            if st.get("running"):
                log(f"{name}: running (pid {pid}, boot {lab['boot_id'][:8]})")
                return lab
            log(f"{name}: QEMU is {st.get('status')}: rebooting it")
        except LabError as e:
            log(f"{name}: {e}: rebooting it")
    if pid:
        cmd_stop(name)
    return cmd_boot(name)


def send_input(name, line, timeout=20):
    """One command line to the guest's heartbeat (its ttyS1, QEMU's input.sock).

    QEMU hands the bytes to the guest's UART only as fast as it takes them and drops
    what is left when the client goes, so this waits for the guest's tty to echo the
    whole line back before closing."""
    data = line.encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(gdir(name) / "input.sock"))
        s.sendall(data + b"\n")
        got, deadline = b"", time.monotonic() + timeout
        while data + b"\r\n" not in got and data + b"\n" not in got:
            if time.monotonic() > deadline:
                raise LabError(f"{name}: the guest did not take {line!r} "
                               f"(echoed {got[-200:]!r})")
            chunk = s.recv(4096)
            if not chunk:
                raise LabError(f"{name}: input.sock closed (echoed {got[-200:]!r})")
            got += chunk
    except OSError as e:
        raise LabError(f"{name}: input.sock: {e}")
    finally:
        s.close()


def cmd_env(name):
    d = gdir(name)
    lab = read_json(d / "lab.json") or {}
    g = GUESTS[name]
    k = lab.get("kernel") or {}
    gdb = lab.get("gdb") or {}
    gdb_s = (f"unix:{gdb['path']}" if gdb.get("type") == "unix"
             else f"tcp:{gdb['host']}:{gdb['port']}" if gdb else "")
    live = qemu_pid(name) is not None and lab.get("pid") == qemu_pid(name)
    env = {"TVLAB_NAME": name, "TVLAB_DIR": d, "TVLAB_RUNNING": int(live),
           "TVLAB_BOOT_ID": lab.get("boot_id", ""),
           "TVLAB_QMP": d / "qmp.sock", "TVLAB_GDB": gdb_s,
           "TVLAB_RAM": d / "ram", "TVLAB_RAM_SIZE": RAM_MIB << 20,
           "TVLAB_SERIAL": d / "serial.log", "TVLAB_LAB_JSON": d / "lab.json",
           "TVLAB_DUMP_RAW": d / "dump.raw", "TVLAB_DUMP_ELF": d / "dump.elf",
           "TVLAB_TRUTH": d / "truth.json", "TVLAB_REGS": d / "regs.json",
           "TVLAB_ORACLE": d / "oracle.json", "TVLAB_LA57": int(g["la57"]),
           "TVLAB_SMP": g["smp"], "TVLAB_KVER": k.get("kver", ""),
           "TVLAB_VMLINUZ": k.get("vmlinuz", ""), "TVLAB_CONFIG": k.get("config", ""),
           "TVLAB_ISF": k.get("isf") or ""}
    for key, val in env.items():
        print(f"export {key}={shlex.quote(str(val))}")


def cmd_status():
    for name, g in GUESTS.items():
        pid = qemu_pid(name)
        lab = read_json(gdir(name) / "lab.json") or {}
        bid = artifacts_ok(name, 1000, lab.get("initrd_sha256"))
        print(f"{name:15} kernel={g['kernel']:5} la57={int(g['la57'])} smp={g['smp']} "
              f"{'running pid ' + str(pid) if pid else 'stopped'}"
              f"{'  artifacts ' + bid[:8] if bid else ''}")


def cmd_hmp(name, line):
    require_running(name)
    q = lab_qmp(name)
    try:
        print(q.hmp(line, timeout=120), end="")
    finally:
        q.close()


# ---------------------------------------------------------------- command line

def parse_args(argv):
    p = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch").add_argument("--refresh", action="store_true")
    for c in ("boot", "env"):
        sub.add_parser(c).add_argument("name")
    s = sub.add_parser("snapshot")
    s.add_argument("name")
    s.add_argument("--cont", action="store_true")
    o = sub.add_parser("oracle")
    o.add_argument("name")
    o.add_argument("--count", type=int, default=1000)
    o.add_argument("--seed", type=int, default=1)
    o.add_argument("-o", "--output")
    e = sub.add_parser("ensure")
    e.add_argument("name")
    e.add_argument("--live", action="store_true")
    sub.add_parser("live").add_argument("name")
    i = sub.add_parser("send")
    i.add_argument("name")
    i.add_argument("line", nargs="+")
    sub.add_parser("stop").add_argument("names", nargs="+")
    h = sub.add_parser("hmp")
    h.add_argument("name")
    h.add_argument("line", nargs="+")
    sub.add_parser("list")
    sub.add_parser("status")
    return p.parse_args(argv)


def main(argv):
    # SIGTERM (e.g. a test runner's timeout) unwinds like ^C, so a half-booted QEMU
    # is killed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a = parse_args(argv)
    if a.cmd == "fetch":
        cmd_fetch(a.refresh)
    elif a.cmd == "boot":
        cmd_boot(a.name)
    elif a.cmd == "snapshot":
        cmd_snapshot(a.name, a.cont)
    elif a.cmd == "oracle":
        cmd_oracle(a.name, a.count, a.seed, a.output)
    elif a.cmd == "ensure":
        cmd_ensure(a.name, a.live)
    elif a.cmd == "live":
        cmd_live(a.name)
    elif a.cmd == "send":
        send_input(a.name, " ".join(a.line))
    elif a.cmd == "stop":
        for n in (GUESTS if a.names == ["all"] else a.names):
            cmd_stop(n)
    elif a.cmd == "env":
        cmd_env(a.name)
    elif a.cmd == "hmp":
        cmd_hmp(a.name, " ".join(a.line))
    elif a.cmd == "list":
        print("\n".join(GUESTS))
    elif a.cmd == "status":
        cmd_status()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except LabError as e:
        print(f"lab.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
