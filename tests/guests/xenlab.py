#!/usr/bin/env python3
"""TinyVMI's Xen lab: Debian's Xen 4.17 under QEMU TCG, a PV dom0, a PV and a PVH guest.

Commands:
  fetch [--refresh]   Xen's packages (private apt state build/lab/apt-xen) -> build/lab/xen,
                      the dom0 kernel's xen-*/9p modules, the lab's 6.1 amd64 kernel
  initramfs           build dom0's initramfs (done by run when its inputs changed)
  run JOB.sh [--timeout S]
                      boot Xen + dom0; dom0 starts the guests, waits until both printed
                      their ground truth, runs JOB.sh from the 9p share and powers off.
                      Results: build/lab/xen/run/ (xen.log, console/*.log, job.out,
                      result.json).  Exit status 0 only if every stage succeeded.

How a run is wired: QEMU boots xen.gz (gunzipped: multiboot) with dom0's kernel and
initramfs as multiboot modules.  Xen and dom0 (hvc0) print on COM1 -> run/xen.log.
build/lab/xen/share is dom0's /share (QEMU -virtfs, 9p over virtio-pci): the job, the
TinyVMI binary and its libraries go in from the host; the guests' console logs
(xenconsoled), the job's output and dom0's progress come back out.  Nothing on the host
is installed or changed outside build/lab.  The guests run the guest lab's /init
(tests/guests/init.sh, adapted by guest_init()) with two more processes, tvlab-ticker
and tvlab-pong (TICKER below), which keep a PVH guest switching address spaces.

Python standard library only; host tools: apt-get, dpkg-deb, ldd, qemu-system-x86_64.
"""

import argparse
import fcntl
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # noqa: E402  (fetch helpers, cpio_newc, kernel_info, run, log)

HERE = lab.HERE
XEN = lab.LAB / "xen"
APT = lab.LAB / "apt-xen"
ROOT = XEN / "root"              # extracted Xen packages
MODS = XEN / "modules"           # dom0's kernel modules (load order in order.txt)
# Runs in different slots (XENLAB_SLOT) may go on side by side; one slot, one run.
SLOT = re.sub(r"[^a-z0-9]", "", os.environ.get("XENLAB_SLOT", ""))
SHARE = XEN / f"share{SLOT}"     # dom0's /share
RUN = XEN / "run"                # the last run's results
TINYVMI = lab.REPO / "build" / "bin" / "tinyvmi"

XEN_VER = "4.17"
XEN_APT_SOURCES = """\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-updates main
"""
# The hypervisor, the tools, and every Xen library (the driver dlopens libxenctrl,
# libxenforeignmemory... later); libyajl2 is the one non-Xen library xl needs that a
# host without Xen lacks.  The other libraries ldd lists come from the host (same
# Debian release as the packages: checked in fetch).
XEN_PKGS = ("xen-hypervisor-4.17-amd64", "xen-utils-4.17", "libxenmisc4.17",
            "libxencall1", "libxenevtchn1", "libxenforeignmemory1", "libxengnttab1",
            "libxenstore4", "libxentoollog1", "libxentoolcore1", "libxendevicemodel1",
            "libxenhypfs1", "libyajl2")
XEN_BIN = f"usr/lib/xen-{XEN_VER}/bin"
# dom0's programs (under XEN_BIN in the package)
DOM0_PROGS = ("xl", "xenstored", "xenconsoled", "xen-init-dom0", "xenconsole", "xenctx")
# dom0's modules, in load order (Xen's device modules before xenfs, as seen to work);
# their dependencies (modinfo depends=) are added before them.
DOM0_MODULES = ("xen-privcmd", "xen-evtchn", "xen-gntdev", "xen-gntalloc", "xenfs",
                "virtio_pci", "9pnet_virtio", "9p")
# Where in the kernel package those modules and their dependencies live.
MODULE_DIRS = ("kernel/drivers/xen/", "kernel/drivers/virtio/", "kernel/net/9p/",
               "kernel/fs/9p/", "kernel/fs/netfs/", "kernel/fs/fscache/")
KERNEL_LINE = "6.1"

# -avx,-avx2: QEMU 7.2's TCG emulates AVX; with it on, dom0's xl died of heap
# corruption ("malloc(): corrupted top size", "unable to XZ decompress kernel").
# Without AVX, busybox children in both guests still segfault now and then, and
# a dom0 process may die in ld.so ("Inconsistency detected by ld.so ...
# __rtld_mutex_init: Assertion `sym != NULL' failed"): user state going wrong
# across context switches.  -xsave (Xen and Linux then switch FPU state with
# FXSAVE) made that go away in the runs tried, but the PVH guest then took
# 470-584 s instead of about 100 s to boot: XENLAB_CPU=...,-xsave picks it.  By
# default the guests retry their truth commands and the jobs retry a program
# whose loader failed.
QEMU_CPU = os.environ.get("XENLAB_CPU", "max,-smap,-smep,-la57,+svm,+npt,-rdtscp,-avx,-avx2")
QEMU_MEM = "2048M"
# dom0_mem: dom0 holds its initramfs (~150 MB unpacked) and, in /tmp, a guest's
# xl dump-core (GUEST_MEM_MIB) at a time
XEN_CMDLINE = "console=com1 com1=115200 dom0_mem=768M smap=0 smep=0"
DOM0_CMDLINE = "console=hvc0 panic=-1 oops=panic loglevel=4"
GUEST_MEM_MIB = 128   # small: each job dumps a guest through dom0 RAM and the 9p share
GUEST_EXTRA = "console=hvc0 panic=-1 oops=panic"
# The lab's guests (data): name -> xl type.
GUESTS = {"tvpv": "pv", "tvpvh": "pvh"}
RUN_TIMEOUT = float(os.environ.get("XENLAB_TIMEOUT", "2100"))
# dom0's own bounds (seconds; its /etc/xenlab.conf), kept inside RUN_TIMEOUT
GUEST_WAIT = 720
JOB_TIMEOUT = 1500   # room for a guest booted again mid-job, on a slow host

MARK = "===XENLAB-"


class XenLabError(lab.LabError):
    pass


def log(msg):
    lab.log(f"xen: {msg}")


# ---------------------------------------------------------------- fetch

def apt_opts():
    """The lab's apt options with our own state (never the host's)."""
    return lab.apt_opts(APT.name)


def apt_update():
    for d in ("lists/partial", "cache/archives/partial"):
        (APT / d).mkdir(parents=True, exist_ok=True)
    (APT / "sources.list").write_text(XEN_APT_SOURCES)
    log(f"apt-get update (private state in {APT})")
    lab.run(["apt-get", *apt_opts(), "-q", "update"], timeout=300)


def candidates(pkgs):
    """{package: version apt would download}"""
    out = lab.run(["apt-cache", *apt_opts(), "policy", *pkgs], timeout=120)
    vers = dict(re.findall(r"^(\S+):\n\s+Installed:.*\n\s+Candidate:\s*(\S+)", out, re.M))
    missing = [p for p in pkgs if vers.get(p) in (None, "(none)")]
    if missing:
        raise XenLabError(f"apt knows no candidate for {missing}")
    return vers


def fetch_xen(vers):
    debs = XEN / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    log(f"downloading {len(vers)} Xen packages ({vers['xen-utils-4.17']})")
    lab.run(["apt-get", *apt_opts(), "-q", "download",
             *(f"{p}={v}" for p, v in vers.items())], cwd=debs, timeout=600)
    tmp = ROOT.with_name("root.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        lab.run(["dpkg-deb", "-x", str(deb), str(tmp)], timeout=120)
    need = [f"boot/xen-{XEN_VER}-amd64.gz", *(f"{XEN_BIN}/{p}" for p in DOM0_PROGS)]
    missing = [n for n in need if not (tmp / n).is_file()]
    if missing:
        raise XenLabError(f"the Xen packages lack {missing}")
    # QEMU's -kernel boots the gunzipped hypervisor (a multiboot image)
    with gzip.open(tmp / f"boot/xen-{XEN_VER}-amd64.gz") as f:
        (tmp / "xen.bin").write_bytes(f.read())
    shutil.rmtree(ROOT, ignore_errors=True)
    tmp.replace(ROOT)
    shutil.rmtree(debs)


def fetch_modules(k):
    """dom0's modules and their dependencies from the lab kernel's own package."""
    debs = XEN / "debs"
    log(f"downloading {k['package']} {k['version']} for dom0's modules")
    deb = lab.apt_download(k["package"], k["version"], debs)
    pool = {}                                  # module name -> .ko bytes
    for name, data in lab.deb_members(deb, lambda n: any(f"/{d}" in n for d in MODULE_DIRS)
                                      and re.search(r"\.ko(\.xz|\.zst)?$", n)):
        base = re.sub(r"\.ko(\.xz|\.zst)?$", "", name.rsplit("/", 1)[-1])
        pool[base.replace("_", "-")] = (base, lab.decompress_module(name, data))
    order, seen = [], set()

    def add(mod, chain):
        key = mod.replace("_", "-")
        if key in seen:
            return
        if key not in pool:
            raise XenLabError(f"{deb.name}: no module {mod} (needed by {' <- '.join(chain)})"
                              f" under {MODULE_DIRS}")
        if len(chain) > 16:
            raise XenLabError(f"module dependency chain too deep: {chain}")
        seen.add(key)
        for dep in lab.module_depends(pool[key][1]):
            add(dep, chain + [dep])
        order.append(key)

    for m in DOM0_MODULES:
        add(m, [m])
    tmp = MODS.with_name("modules.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for key in order:
        base, ko = pool[key]
        (tmp / f"{base}.ko").write_bytes(ko)
    (tmp / "order.txt").write_text("".join(f"{pool[key][0]}\n" for key in order))
    lab.write_json(tmp / "modules.json", {"package": k["package"], "version": k["version"],
                                          "order": [pool[key][0] for key in order]})
    shutil.rmtree(MODS, ignore_errors=True)
    tmp.replace(MODS)
    shutil.rmtree(debs)


def fetched():
    meta = lab.read_json(XEN / "fetch.json") or {}
    try:
        k = lab.kernel_info(KERNEL_LINE)
    except lab.LabError:
        return False
    mods = lab.read_json(MODS / "modules.json") or {}
    return ((ROOT / "xen.bin").is_file() and meta.get("versions")
            and mods.get("version") == k["version"] and mods.get("package") == k["package"])


def cmd_fetch(refresh=False):
    if fetched() and not refresh:
        log("fetch: cached (use --refresh to look for newer packages)")
        return
    t = time.monotonic()
    lab.cmd_fetch(quiet=True)                  # the lab's kernels and busybox
    k = lab.kernel_info(KERNEL_LINE)
    apt_update()
    vers = candidates(XEN_PKGS)
    old = (lab.read_json(XEN / "fetch.json") or {}).get("versions")
    if refresh or old != vers or not (ROOT / "xen.bin").is_file():
        fetch_xen(vers)
    mods = lab.read_json(MODS / "modules.json") or {}
    if mods.get("version") != k["version"] or mods.get("package") != k["package"]:
        fetch_modules(k)
    lab.write_json(XEN / "fetch.json", {"versions": vers})
    log(f"fetch done in {time.monotonic() - t:.1f}s")


# ---------------------------------------------------------------- dom0's initramfs

def ldd(paths, libdirs):
    """{soname: host path} of every library the ELF files need (our package dirs first)."""
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(map(str, libdirs)))
    out = lab.run(["ldd", *map(str, paths)], env=env, timeout=60)
    libs = {}
    for ln in out.splitlines():
        m = re.match(r"\s+(\S+) => (\S+) \(", ln)
        if m:
            libs[m.group(1)] = m.group(2)
        elif "not found" in ln:
            raise XenLabError(f"ldd: a library is missing: {ln.strip()}")
        else:
            m = re.match(r"\s+(/\S+ld-linux\S*) \(", ln)
            if m:
                libs[Path(m.group(1)).name] = m.group(1)
    return libs


def lib_dirs():
    return [ROOT / "usr/lib/x86_64-linux-gnu",
            ROOT / f"usr/lib/xen-{XEN_VER}/lib/x86_64-linux-gnu"]


def host_lib(name):
    """A library glibc dlopens (so ldd does not list it)."""
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"):
        if Path(d, name).exists():
            return str(Path(d, name))
    raise XenLabError(f"the host has no {name} (package libgcc-s1)")


XZ_MAGIC = b"\xfd7zXZ\x00"
MAX_VMLINUX = 256 << 20


def vmlinux(vmlinuz):
    """The ELF kernel inside a bzImage whose payload is xz (Debian's amd64).

    A PVH guest boots it through its XEN_ELFNOTE_PHYS32_ENTRY: libxenguest's own xz
    unpacking of the bzImage failed for PVH here ("unable to XZ decompress kernel")."""
    data = Path(vmlinuz).read_bytes()
    at = data.find(XZ_MAGIC)
    while at >= 0:
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        try:
            out = d.decompress(data[at:], max_length=MAX_VMLINUX)
        except lzma.LZMAError:
            out = b""
        if out[:4] == b"\x7fELF" and d.eof:
            return out
        at = data.find(XZ_MAGIC, at + 1)
    raise XenLabError(f"{vmlinuz}: no xz-compressed ELF kernel inside")


def guest_config(name, typ, k):
    kernel = "/guest/vmlinux" if typ == "pvh" else "/guest/vmlinuz"
    return (f'name = "{name}"\ntype = "{typ}"\n'
            f'kernel = "{kernel}"\nramdisk = "/guest/initrd.img"\n'
            f'extra = "{GUEST_EXTRA}"\nmemory = {GUEST_MEM_MIB}\nvcpus = 1\n'
            # a guest that dies stays, for the job to notice (xen-dom0-lib.sh's
            # alive()): a triple fault of an HVM/PVH guest is a reboot to Xen
            f'on_crash = "preserve"\non_reboot = "preserve"\n').encode()


# Blocks of the lab's init.sh a Xen guest skips: awk over all of /proc/kallsyms takes
# minutes in a PV guest under TCG (every page-table update is a hypercall).
SKIP_BLOCKS = ("kallsyms_sample", "kallsyms_count")


# The truth blocks whose command runs in a child process, and the command: in a Xen
# guest under TCG a busybox child now and then dies of SIGSEGV (seen in 2 of 3 runs,
# printing "Segmentation fault" in place of the block), so these are retried.
RETRIED = ("uname -r", "cat /proc/modules", "grep -E ' (linux_banner")
RETRY_FN = """\
# retry CMD...: CMD's output once it exits 0 (up to 5 tries), printed by builtins
retry() {
	for t in 1 2 3 4 5; do
		if "$@" > /tmp/tvlab.retry 2> /dev/null; then
			while IFS= read -r l; do echo "$l"; done < /tmp/tvlab.retry
			return 0
		fi
	done
	echo "===TVLAB-ERROR $1 failed 5 times==="
}
"""


# Two more processes for the Xen guests, builtins only like the heartbeat.
# tvlab-ticker wakes every 0.2 s, so the guest keeps switching address spaces
# between it and the heartbeat (an idle guest with one waking process writes no
# CR3: the kernel keeps the last mm across idle).  In a PVH or HVM guest (the
# ones vm_event watches), once the guest is ready, every 5th wake it also plays
# 16 rounds of ping-pong with tvlab-pong through two fifos: on the guests' one
# vCPU each round is two address-space switches or more, back to back, a few
# guest instructions apart, whose CR3 events bench_xen times.  Not in a PV
# guest: under TCG its busy shells now and then lose a byte of a command ("ech:
# not found").  Every 10th wake it prints TVLAB-TICK N, which tells the job it
# still runs, and stops printing them if tvlab-pong stops answering.  Both
# start before the ps block, so they are in the ground truth; init checks they
# are still there before it says READY.
TICKER = b"""#!/bin/sh
# tvlab-ticker (Xen lab, tests/guests/xenlab.py): wakes every 0.2 s, never forks
exec 4<>/run/tvlab.fifo
exec 5<>/run/tvlab.ping
exec 6<>/run/tvlab.pong
type=
read -r type < /sys/hypervisor/guest_type
n=0
lost=
while :; do
	read -t 0.2 -u 4 x
	[ -e /run/tvlab-ready ] || continue
	n=$((n + 1))
	if [ "$type" != PV ] && [ -z "$lost" ] && [ $((n % 5)) -eq 0 ]; then
		i=0
		while [ $i -lt 16 ]; do
			echo p >&5
			if ! read -t 2 -u 6 x; then
				echo "TVLAB-PONG-LOST"
				lost=1
				break
			fi
			i=$((i + 1))
		done
	fi
	[ -z "$lost" ] && [ $((n % 10)) -eq 0 ] && echo "TVLAB-TICK $n"
done
"""
PONG = b"""#!/bin/sh
# tvlab-pong (Xen lab, tests/guests/xenlab.py): answers tvlab-ticker's pings
exec 5<>/run/tvlab.ping
exec 6<>/run/tvlab.pong
while read -u 5 x; do echo p >&6; done
"""
TICKER_START = "tvlab-heartbeat &\nHEART=$!\n"
TICKER_STARTED = """mkfifo /run/tvlab.ping /run/tvlab.pong
tvlab-pong &
PONG=$!
wait_comm $PONG tvlab-pong
tvlab-ticker &
TICK=$!
wait_comm $TICK tvlab-ticker
"""
READY = "touch /run/tvlab-ready\n"
# a lab process that died under TCG before READY makes init give up (the guest
# is booted again); its ground truth would lack it, and the CR3 tests its wakes
LIVE_CHECK = """for p in "$HEART tvlab-heartbeat" "$TICK tvlab-ticker" "$PONG tvlab-pong"; do
	set -- $p
	c=
	read -r c < "/proc/$1/comm"
	[ "$c" = "$2" ] || fail "$2 (pid $1) died before READY"
done
"""
KALLSYMS_LAST = "|linux_proc_banner)$'"


def guest_init():
    """The lab's init.sh without SKIP_BLOCKS (each block from its begin line to its end
    line, both of which must be found exactly once), with the RETRIED commands run
    through retry(), tvlab-pong and tvlab-ticker started beside the heartbeat, and
    the three checked before READY."""
    text = (HERE / "init.sh").read_text()
    for b in SKIP_BLOCKS:
        m = list(re.finditer(rf"^begin {b}\n(?:.*\n)*?end {b}\n", text, re.M))
        if len(m) != 1:
            raise XenLabError(f"init.sh: expected one block {b}, found {len(m)}")
        text = text[:m[0].start()] + text[m[0].end():]
    anchor = "end() { echo \"===TVLAB-END $1===\"; }\n"
    for cmd in RETRIED + (anchor, TICKER_START, KALLSYMS_LAST, READY):
        if text.count(cmd) != 1:
            raise XenLabError(f"init.sh: expected {cmd!r} once, found {text.count(cmd)}")
    for cmd in RETRIED:
        text = text.replace(cmd, "retry " + cmd)
    text = text.replace(TICKER_START, TICKER_START + TICKER_STARTED)
    text = text.replace(READY, LIVE_CHECK + READY)
    # the syscall entry, which the kernel writes to LSTAR at boot (the MSR event test)
    text = text.replace(KALLSYMS_LAST, "|linux_proc_banner|entry_SYSCALL_64)$'")
    return text.replace(anchor, anchor + RETRY_FN).encode()


def guest_initramfs(k):
    """The lab's guest initramfs with guest_init() as /init, gzipped (in memory)."""
    ents = [e if e[0] != "init" else (e[0], e[1], guest_init())
            for e in lab.initramfs_entries(k)]
    ents.append(("tvlab/tvlab-ticker", stat.S_IFREG | 0o755, TICKER))
    ents.append(("tvlab/tvlab-pong", stat.S_IFREG | 0o755, PONG))
    if sum(e[0] == "init" for e in ents) != 1:
        raise XenLabError("the lab's initramfs has no single /init")
    return gzip.compress(lab.cpio_newc(ents), mtime=0)


def dom0_entries(k):
    d, r, x = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
    dirs = ["bin", "dev", "proc", "sys", "run", "tmp", "share", "guest", "lib", "lib64",
            "lib/modules", "lib/x86_64-linux-gnu", "etc", "etc/xen", "var", "var/lib",
            "var/lib/xen", "var/lib/xenstored", "var/log", "var/log/xen",
            "usr", "usr/lib", f"usr/lib/xen-{XEN_VER}", XEN_BIN]
    ents = [(n, d, b"") for n in dirs]
    ents += [("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
             ("bin/busybox", x, (lab.LAB / "busybox" / "busybox").read_bytes()),
             ("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
             ("var/run", stat.S_IFLNK | 0o777, b"../run"),
             ("var/lock", stat.S_IFLNK | 0o777, b"../run/lock"),
             ("init", x, (HERE / "xen-dom0-init.sh").read_bytes()),
             ("etc/xenlab-lib.sh", r, (HERE / "xen-dom0-lib.sh").read_bytes()),
             ("etc/xen/xl.conf", r, b""),
             ("etc/xenlab.conf", r, f"GUEST_WAIT={GUEST_WAIT}\nJOB_TIMEOUT={JOB_TIMEOUT}\n"
              .encode()),
             ("etc/xenlab-guests", r, "".join(f"{n} {t}\n" for n, t in GUESTS.items())
              .encode()),
             ("guest/vmlinuz", r, Path(k["vmlinuz"]).read_bytes()),
             ("guest/initrd.img", r, guest_initramfs(k))]
    if "pvh" in GUESTS.values():
        ents.append(("guest/vmlinux", r, vmlinux(k["vmlinuz"])))
    ents += [(f"etc/xen/{n}.cfg", r, guest_config(n, t, k)) for n, t in GUESTS.items()]
    progs = [ROOT / XEN_BIN / p for p in DOM0_PROGS]
    ents += [(f"{XEN_BIN}/{p.name}", x, p.read_bytes()) for p in progs]
    libs = ldd(progs, lib_dirs())
    libs.setdefault("libgcc_s.so.1", host_lib("libgcc_s.so.1"))  # pthread_cancel's unwinder
    for so, path in sorted(libs.items()):
        where = "lib64" if so.startswith("ld-linux") else "lib/x86_64-linux-gnu"
        ents.append((f"{where}/{so}", x, Path(path).read_bytes()))
    for m in (MODS / "order.txt").read_text().split():
        ents.append((f"lib/modules/{m}.ko", r, (MODS / f"{m}.ko").read_bytes()))
    ents.append(("lib/modules/order.txt", r, (MODS / "order.txt").read_bytes()))
    return ents


def ensure_initramfs():
    """dom0's initramfs (rebuilt when its inputs change); returns (path, kernel info)."""
    if not fetched():
        raise XenLabError("the Xen lab is not fetched (run: xenlab.py fetch)")
    k = lab.kernel_info(KERNEL_LINE)
    ents = dom0_entries(k)
    digest = hashlib.sha256(repr(ents).encode()).hexdigest()
    img, stamp = XEN / "dom0-initrd.img", XEN / "dom0-initrd.sha256"
    if img.exists() and stamp.exists() and stamp.read_text() == digest:
        return img, k
    log("building dom0's initramfs")
    tmp = img.with_name(img.name + ".tmp")
    with gzip.GzipFile(tmp, "wb", mtime=0, compresslevel=6) as f:
        f.write(lab.cpio_newc(ents))
    tmp.replace(img)
    stamp.write_text(digest)
    return img, k


# ---------------------------------------------------------------- run

def stage_share(job, boot_watch=None):
    """The share as dom0 will see it: the job, its boot watcher if any (see
    xen-dom0-lib.sh's boot()), TinyVMI and its libraries; no old output."""
    shutil.rmtree(SHARE, ignore_errors=True)
    (SHARE / "out" / "console").mkdir(parents=True)
    for src, dst in ((job, "job.sh"), (boot_watch, "boot-watch.sh")):
        if src:
            shutil.copy(src, SHARE / dst)
            (SHARE / dst).chmod(0o755)
    if TINYVMI.is_file():
        # tinyvmi, the examples and the lab's Xen helpers (tests/lab/xen*.c)
        progs = [TINYVMI] + sorted(p for p in TINYVMI.parent.glob("*-example")) + \
            sorted(lab.REPO.glob("build/tests/lab/xen*")) + \
            sorted(lab.REPO.glob("build/bench/bench_live"))
        (SHARE / "tv" / "lib").mkdir(parents=True)
        for prog in progs:
            shutil.copy(prog, SHARE / "tv" / prog.name)
        for so, path in ldd(progs, []).items():
            if not so.startswith(("ld-linux", "libc.so")):
                shutil.copy(path, SHARE / "tv" / "lib" / so)


def qemu_argv(k, initrd, out):
    # -initrd: multiboot modules separated by commas; the first one's "path args"
    # becomes dom0's kernel and command line
    for p in (k["vmlinuz"], initrd):
        if "," in str(p) or " " in str(p):
            raise XenLabError(f"QEMU's multiboot module list cannot hold the path {p}")
    return ["nice", "-n", "10", "qemu-system-x86_64", "-accel", "tcg", "-cpu", QEMU_CPU,
            "-m", QEMU_MEM, "-smp", "2", "-no-reboot", "-nodefaults", "-display", "none",
            "-serial", f"file:{out / 'xen.log'}", "-monitor", "none",
            "-kernel", str(ROOT / "xen.bin"), "-append", XEN_CMDLINE,
            "-initrd", f"{k['vmlinuz']} {DOM0_CMDLINE},{initrd}",
            "-virtfs", f"local,path={SHARE},mount_tag=share,security_model=none,id=share"]


def markers(text):
    """[(kind, rest)] of the ===XENLAB-KIND rest=== lines dom0 printed."""
    return [(k, r.strip()) for k, r in
            re.findall(r"===XENLAB-([A-Z0-9-]+)(?: ([^\r\n]*?))?===\r*$", text, re.M)]


def tail(path, n=30):
    try:
        lines = Path(path).read_bytes().decode(errors="replace").replace("\r", "")
        return "\n".join("    " + ln for ln in lines.splitlines()[-n:])
    except OSError:
        return "    (no file)"


def dom0_trouble(out):
    """What dom0's kernel said about processes it killed or that hung, and the
    guests the job booted again: for a job that did not end well."""
    said = []
    dmesg = out / "dom0-dmesg.txt"
    if dmesg.exists():
        said = [ln for ln in dmesg.read_bytes().decode(errors="replace").splitlines()
                if re.search(r"Out of memory|oom-kill|Killed process|blocked for more "
                             r"than|segfault|BUG|Oops", ln)][-20:]
    crashed = out / "crashed.log"
    return ((f"\n  dom0's kernel ({dmesg}):\n" + "\n".join("    " + ln for ln in said)
             if said else "") +
            (f"\n  {crashed}:\n{tail(crashed, 10)}" if crashed.exists() else ""))


def verdict(res, out):
    """The first stage that failed, with the log that shows why (None: all good)."""
    m = res["markers"]
    kinds = [k for k, _ in m]
    xenlog = out / "xen.log"
    text = xenlog.read_bytes().decode(errors="replace") if xenlog.exists() else ""
    if "Xen version" not in text and "(XEN)" not in text:
        return f"Xen did not start (no (XEN) line on COM1)\n{tail(xenlog)}"
    if "DOM0-UP" not in kinds:
        return f"dom0 did not reach its /init\n{tail(xenlog)}"
    for kind, rest in m:
        if kind == "ERROR":
            where = rest.split()[0] if rest else ""
            log_ = out / "console" / f"guest-{where}.log"
            return (f"dom0 reported: {rest}\n{tail(xenlog)}" +
                    (f"\n  guest console {log_}:\n{tail(log_)}" if log_.exists() else ""))
    trace = f"\n  dom0's trace {out / 'dom0-trace.txt'}:\n{tail(out / 'dom0-trace.txt', 8)}"
    for g in GUESTS:
        if ("GUEST-READY", g) not in m:
            log_ = out / "console" / f"guest-{g}.log"
            return (f"guest {g} never printed its ground truth\n  {log_}:\n{tail(log_)}"
                    + trace)
    done = [rest for kind, rest in m if kind == "JOB-DONE"]
    if not done:
        return (f"the job did not finish\n  {out / 'job.out'}:\n{tail(out / 'job.out')}"
                + trace + dom0_trouble(out))
    if done[0].strip() != "0":
        why = (f" (SIGKILL: still running after JOB_TIMEOUT, {JOB_TIMEOUT} s)"
               if done[0].strip() == "137" else "")
        return (f"the job exited with status {done[0].strip()}{why}\n"
                f"  {out / 'job.out'}:\n{tail(out / 'job.out')}" + dom0_trouble(out))
    if res["timed_out"]:
        return f"QEMU did not exit after the job (timeout)\n{tail(xenlog)}"
    return None


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def cmd_run(job, timeout=RUN_TIMEOUT, out=None, boot_watch=None):
    """One run (one at a time: the share is shared); results in out (default RUN)."""
    XEN.mkdir(parents=True, exist_ok=True)
    with open(XEN / f"run{SLOT}.lock", "w") as lk:
        try:
            fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another Xen lab run is going on: waiting for it")
            fcntl.flock(lk, fcntl.LOCK_EX)
        return run_locked(Path(job).resolve(), timeout, Path(out) if out else RUN,
                          Path(boot_watch).resolve() if boot_watch else None)


def run_locked(job, timeout, out, boot_watch=None):
    if not job.is_file():
        raise XenLabError(f"no job script {job}")
    if not shutil.which("qemu-system-x86_64"):
        raise XenLabError("qemu-system-x86_64 is not installed")
    cmd_fetch()
    initrd, k = ensure_initramfs()
    stage_share(job, boot_watch)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = qemu_argv(k, initrd, out)
    (out / "qemu.argv").write_text(" ".join(argv) + "\n")
    log(f"booting Xen (timeout {timeout:.0f}s)")
    t0 = time.monotonic()
    stamps = {}
    # own process group: nice, QEMU and anything else go down together
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(out / "qemu.out", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                timed_out = True
                log(f"timeout after {timeout:.0f}s: killing QEMU")
                break
            try:
                text = (out / "xen.log").read_bytes().decode(errors="replace")
            except OSError:
                text = ""
            for kind, rest in markers(text):
                key = f"{kind} {rest}".strip()
                if key not in stamps:
                    stamps[key] = round(time.monotonic() - t0, 1)
                    log(f"{stamps[key]:6.1f}s {key}")
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    elapsed = time.monotonic() - t0
    # results back from the share
    # moved, not copied: a dump-core is as large as the guest, and the share is
    # staged anew for every run
    if (SHARE / "out").is_dir():
        for f in (SHARE / "out").iterdir():
            if not (out / f.name).exists():
                shutil.move(str(f), str(out / f.name))
    text = (out / "xen.log").read_bytes().decode(errors="replace") \
        if (out / "xen.log").exists() else ""
    res = {"elapsed_s": round(elapsed, 1), "timed_out": timed_out,
           "qemu_status": proc.returncode, "markers": markers(text), "stamps": stamps}
    res["error"] = verdict(res, out)
    lab.write_json(out / "result.json", res)
    if res["error"]:
        raise XenLabError(f"run failed after {elapsed:.0f}s: {res['error']}")
    log(f"run done in {elapsed:.1f}s: results in {out}")
    return res


# ---------------------------------------------------------------- cached runs for tests

HOST_TOOLS = ("qemu-system-x86_64", "apt-get", "apt-cache", "dpkg-deb", "ldd", "nice")


def cached_run(name, job, out, inputs, timeout=RUN_TIMEOUT + 120, boot_watch=None):
    """The result of running job (a shell script's text) in the lab with its output in
    out: the last run's (out/result.json) when its inputs were the same -- the job and
    its boot watcher (a script's text, see xen-dom0-lib.sh's boot()), the lab's
    scripts, the files in inputs (the programs it runs) --, else a new run, in a
    child process bounded by timeout.  A failed run is kept too (every test reports
    it; a changed input reruns).  XENLAB_REUSE=1 keeps the last run whatever changed
    (while editing a test).  Returns the result dict; its "error" says what failed."""
    missing = [t for t in HOST_TOOLS if not shutil.which(t)]
    absent = [str(f) for f in inputs if not Path(f).exists()]
    if missing or absent:
        return {"error": f"the Xen lab needs {missing} on the host"
                if missing else f"not built (make all): {absent}"}
    out = Path(out)
    res = lab.read_json(out / "result.json") or {}
    if os.environ.get("XENLAB_REUSE") and res:
        print("XENLAB_REUSE: the last run is used, whatever changed since", file=sys.stderr)
        return res
    # fetched first (quick when cached): the digest covers what it fetched
    me = [sys.executable, str(Path(__file__).resolve())]
    p = subprocess.run(me + ["fetch"], capture_output=True, text=True, timeout=900)
    if p.returncode:
        return {"error": f"xenlab.py fetch failed:\n{p.stderr[-3000:]}"}
    h = hashlib.sha256(job.encode() + (boot_watch or "").encode())
    for f in [HERE / n for n in ("xenlab.py", "xen-dom0-init.sh",
                                                "xen-dom0-lib.sh", "init.sh", "lab.py")] + \
            [Path(f) for f in inputs] + [XEN / "fetch.json"]:
        if f.exists():
            h.update(f.read_bytes())
    digest = h.hexdigest()
    if res.get("digest") == digest:
        return res
    path = XEN / f"{name}-job.sh"
    path.write_text(job)
    watch = []
    if boot_watch:
        (XEN / f"{name}-boot-watch.sh").write_text(boot_watch)
        watch = ["--boot-watch", str(XEN / f"{name}-boot-watch.sh")]
    try:
        p = subprocess.run(me + ["run", str(path), "--out", str(out)] + watch,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        # recorded like any failure, so that the next test does not start a run
        p = subprocess.CompletedProcess([], 124, "", f"no result in {timeout} s")
    res = lab.read_json(out / "result.json") or {}
    if p.returncode and not res.get("error"):
        res["error"] = f"xenlab.py run failed ({p.returncode}):\n{p.stderr[-5000:]}"
    res["digest"] = digest
    out.mkdir(parents=True, exist_ok=True)
    lab.write_json(out / "result.json", res)
    return res


def job_sections(text):
    """A job's output split at its '== title' lines: {title: [lines]}.  A title
    seen again (the steps redone on a guest that crashed) keeps its last lines."""
    secs, cur = {}, None
    for ln in text.splitlines():
        if ln.startswith("== "):
            cur = secs[ln[3:].strip()] = []
        elif cur is not None:
            cur.append(ln)
    return secs


# ---------------------------------------------------------------- xl dump-core -> raw

# Xen's dump-core format (xen/tools docs/misc/dump-core-format.txt): an ELF64 file
# with section headers only.  .xen_pages holds the pages; entry i of .xen_pfn
# (auto-translated guests: u64 pfn) or .xen_p2m (PV: u64 pfn, u64 gmfn) says which
# frame page i is.  .xen_prstatus is vcpu_guest_context_x86_64[nr_vcpus]; its
# ctrlreg[] array starts at byte 4984 (512 fpu + 8 flags + 200 user_regs + 4096
# trap_ctxt + 16 ldt + 128 gdt_frames + 8 gdt_ents + 16 kernel ss/sp), 5168 bytes each.
VCPU_CTX_SIZE = 5168
VCPU_CTX_CR = 4984
ELF_NOTE_XEN_HEADER = 0x2000001          # XEN_ELFNOTE_DUMPCORE_HEADER
MAX_SECTIONS = 64
MAX_FRAME = 1 << 40                      # frames beyond 4 PiB: not a real guest


def core_sections(f, size):
    hdr = f.read(64)
    if len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
        raise XenLabError("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", hdr, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", hdr, 0x3A)
    if shentsize != 64 or not 0 < shnum <= MAX_SECTIONS or shstrndx >= shnum or \
            shoff + shnum * 64 > size:
        raise XenLabError(f"bad section table (offset {shoff:#x}, {shnum} entries)")
    f.seek(shoff)
    raw = f.read(shnum * 64)
    secs = [struct.unpack_from("<IIQQQQIIQQ", raw, i * 64) for i in range(shnum)]
    for s in secs:
        if s[4] + s[5] > size and s[1] != 8:                 # SHT_NOBITS has no bytes
            raise XenLabError(f"section at {s[4]:#x} (+{s[5]:#x}) runs past the file")
    stro, strs = secs[shstrndx][4], secs[shstrndx][5]
    f.seek(stro)
    strtab = f.read(min(strs, 1 << 16))
    out = {}
    for s in secs:
        end = strtab.find(b"\0", s[0])
        if s[0] < len(strtab) and end > 0:
            out[strtab[s[0]:end].decode(errors="replace")] = (s[4], s[5])
    return out


def core_notes(f, off, size):
    """{type: desc} of the Xen notes."""
    f.seek(off)
    data = f.read(min(size, 1 << 16))
    notes, at = {}, 0
    while at + 12 <= len(data):
        nsz, dsz, typ = struct.unpack_from("<III", data, at)
        at += 12
        name_end = at + ((nsz + 3) & ~3)
        desc_end = name_end + ((dsz + 3) & ~3)
        if desc_end > len(data):
            raise XenLabError(f"note at {at - 12:#x} runs past .note.Xen")
        notes[typ] = data[name_end:name_end + dsz]
        at = desc_end
    return notes


def core_table(f, secs, core):
    """(pv, nr_vcpus, nr_pages, [frame of page i]) of an open dump-core."""
    for need in (".note.Xen", ".xen_prstatus", ".xen_pages"):
        if need not in secs:
            raise XenLabError(f"{core}: no {need} section ({sorted(secs)})")
    hdr = core_notes(f, *secs[".note.Xen"]).get(ELF_NOTE_XEN_HEADER)
    if not hdr or len(hdr) < 32:
        raise XenLabError(f"{core}: no dump-core header note")
    _, nr_vcpus, nr_pages, page = struct.unpack_from("<QQQQ", hdr)
    if page != 4096 or not 0 < nr_vcpus <= 512:
        raise XenLabError(f"{core}: page size {page}, {nr_vcpus} vCPUs")
    pv = ".xen_p2m" in secs
    if not pv and ".xen_pfn" not in secs:
        raise XenLabError(f"{core}: neither .xen_p2m nor .xen_pfn")
    table = secs[".xen_p2m" if pv else ".xen_pfn"]
    ent = 16 if pv else 8
    if table[1] != nr_pages * ent or secs[".xen_pages"][1] != nr_pages * page:
        raise XenLabError(f"{core}: {nr_pages} pages, but the frame table has "
                          f"{table[1]} bytes and .xen_pages {secs['.xen_pages'][1]}")
    f.seek(table[0])
    tab = f.read(table[1])
    frames = [struct.unpack_from("<Q", tab, i * ent + (8 if pv else 0))[0]
              for i in range(nr_pages)]
    return pv, nr_vcpus, nr_pages, frames


def core_frames(core):
    """The valid frames a dump-core holds (machine frames for PV, else guest frames)."""
    size = Path(core).stat().st_size
    with open(core, "rb") as f:
        frames = core_table(f, core_sections(f, size), core)[3]
    return [fr for fr in frames if fr < MAX_FRAME]


def core2raw(core, raw):
    """Write the dump-core's pages to raw (offset = frame * page size; pfn for PVH/HVM,
    machine frame for PV, whose page tables hold machine frames); returns facts."""
    size = Path(core).stat().st_size
    with open(core, "rb") as f, open(raw, "wb") as out:
        secs = core_sections(f, size)
        pv, nr_vcpus, nr_pages, frames = core_table(f, secs, core)
        page = 4096
        pst = secs[".xen_prstatus"]
        if pst[1] != nr_vcpus * VCPU_CTX_SIZE:
            raise XenLabError(f"{core}: .xen_prstatus has {pst[1]} bytes for {nr_vcpus} "
                              f"vCPUs of {VCPU_CTX_SIZE}")
        f.seek(pst[0])
        ctx = f.read(pst[1])
        cr3 = [struct.unpack_from("<Q", ctx, i * VCPU_CTX_SIZE + VCPU_CTX_CR + 3 * 8)[0]
               for i in range(nr_vcpus)]
        f.seek(secs[".xen_pages"][0])
        top = 0
        for fr in frames:
            data = f.read(page)
            if fr >= MAX_FRAME:
                continue                       # an invalid entry (~0): no page
            out.seek(fr * page)
            out.write(data)
            top = max(top, (fr + 1) * page)
        out.truncate(top)
    # PV: CR3 holds a machine frame shifted like an address (xen_pfn_to_cr3 on
    # x86_64 is the identity); HVM/PVH: the guest-physical CR3 itself.
    return {"pv": pv, "vcpus": nr_vcpus, "pages": nr_pages, "cr3": [hex(c) for c in cr3],
            "raw_size": top}


# ---------------------------------------------------------------- command line

def main(argv):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(prog="xenlab.py", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch").add_argument("--refresh", action="store_true")
    sub.add_parser("initramfs")
    r = sub.add_parser("run")
    r.add_argument("job")
    r.add_argument("--timeout", type=float, default=RUN_TIMEOUT)
    r.add_argument("--out", help=f"results directory (default {RUN})")
    r.add_argument("--boot-watch", help="a script dom0 runs beside each guest's boot, "
                   "the guest created paused (xen-dom0-lib.sh's boot())")
    c = sub.add_parser("core2raw", help="xl dump-core file -> raw image + facts (JSON)")
    c.add_argument("core")
    c.add_argument("raw")
    a = p.parse_args(argv)
    if a.cmd == "fetch":
        cmd_fetch(a.refresh)
    elif a.cmd == "initramfs":
        print(ensure_initramfs()[0])
    elif a.cmd == "run":
        cmd_run(a.job, a.timeout, a.out, a.boot_watch)
    elif a.cmd == "core2raw":
        print(json.dumps(core2raw(a.core, a.raw)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except lab.LabError as e:
        print(f"xenlab.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
