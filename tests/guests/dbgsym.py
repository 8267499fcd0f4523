#!/usr/bin/env python3
"""Debian -dbg kernels: fetch the vmlinux (DWARF) and make an ISF from it.

  dbgsym.py fetch PKG[:ARCH]       e.g. linux-image-6.1.0-56-amd64-dbg,
                                   linux-image-686-pae-dbg:i386 (a metapackage
                                   is followed to the versioned package)
  dbgsym.py profile RELEASE:ARCH   e.g. 6.1.0-57-686-pae:i386
  dbgsym.py releases               the current bookworm 6.1 -dbg packages

A -dbg .deb is 600-860 MB, but its data.tar.xz stores usr/lib/debug/boot/
(System.map and vmlinux) first, so the .deb is streamed: the ar header is
parsed, data.tar.xz decompressed incrementally, the two members extracted and
the connection closed. Cache: build/lab/dbg/<release>/{vmlinux,System.map,
<release>.isf.json}; a second run downloads nothing.

The apt state is private (build/lab/apt-dbg, with the foreign architectures
enabled) so the lab's own state (build/lab/apt) is left alone. Python stdlib only.
"""
import argparse
import contextlib
import fcntl
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # noqa: E402  (apt options, sources, run(), log())

# Not build/lab/apt-multi: another part of the lab writes its own sources there.
APT = lab.LAB / "apt-dbg"
DBG = lab.LAB / "dbg"
BIN = lab.REPO / "build" / "bin" / "tinyvmi"
ARCHES = ("amd64", "i386", "armhf", "arm64")
# Debian kernel flavours (for the 6.1 line) and their architecture.
FLAVOURS = {"amd64": "amd64", "686": "i386", "686-pae": "i386", "armmp": "armhf",
            "armmp-lpae": "armhf", "arm64": "arm64"}
PINNED = "linux-image-6.1.0-56-amd64-dbg"
# Streaming stops after this many compressed bytes even if a member is missing:
# the members sit in the first ~100 MB; a .deb that does not is not what we expect.
MAX_STREAM = 400 << 20


class DbgError(Exception):
    pass


def apt_opts():
    """The lab's options with our own state dir and architectures."""
    return lab.apt_opts(APT.name, ARCHES)


def apt_update(force=False):
    stamp = APT / "updated"
    if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < 86400:
        return
    for d in ("lists/partial", "cache/archives/partial"):
        (APT / d).mkdir(parents=True, exist_ok=True)
    (APT / "sources.list").write_text(lab.APT_SOURCES)
    lab.log(f"apt-get update (multi-arch, private state in {APT})")
    lab.run(["apt-get", *apt_opts(), "-q", "update"], timeout=600)
    stamp.touch()


def resolve(pkg):
    """A metapackage (linux-image-686-pae-dbg) -> the versioned package it depends on."""
    name, _, arch = pkg.partition(":")
    if re.match(r"linux-image-\d+\.\d+", name):
        return pkg
    # Follow the image metapackage (linux-image-amd64-dbg is not in every
    # suite, linux-image-amd64 is) and name its -dbg twin.
    meta = re.sub(r"-dbg$", "", name) + (f":{arch}" if arch else "")
    out = lab.run(["apt-cache", *apt_opts(), "depends", meta], timeout=120)
    m = re.findall(r"Depends:\s*(linux-image-\d+\.\d+[^\s:]*)", out)
    if len(m) != 1:
        raise DbgError(f"{meta}: expected one versioned kernel dependency in\n{out}")
    return m[0] + "-dbg" + (f":{arch}" if arch else "")


def print_uri(pkg):
    """(url, size, sha256) apt would download for pkg."""
    out = lab.run(["apt-get", *apt_opts(), "-q", "--print-uris", "download", pkg],
                  timeout=120, cwd=str(APT))
    m = re.search(r"^'(\S+)'\s+(\S+)\s+(\d+)\s+SHA256:([0-9a-f]{64})", out, re.M)
    if not m:
        raise DbgError(f"apt-get --print-uris download {pkg}: no URI in\n{out}")
    return m.group(1), int(m.group(3)), m.group(4)


def release_of(pkg):
    m = re.match(r"linux-image-(\d\S*)-dbg(?::\S+)?$", pkg)
    if not m:
        raise DbgError(f"{pkg}: not a linux-image-<release>-dbg package")
    return m.group(1)


class Counted:
    """The HTTP body, counting bytes and refusing to run past a limit."""

    def __init__(self, resp, limit):
        self.resp, self.limit, self.n = resp, limit, 0

    def read(self, n):
        if self.n + n > self.limit:
            raise DbgError(f"read more than {self.limit} bytes without finding the members")
        b = self.resp.read(n)
        self.n += len(b)
        return b

    def exact(self, n):
        b = bytearray()
        while len(b) < n:
            c = self.read(n - len(b))
            if not c:
                raise DbgError(f"unexpected end of the .deb after {self.n} bytes")
            b += c
        return bytes(b)


class XzMember:
    """A file object over an ar member's xz stream, decompressed as it is read."""

    def __init__(self, src, size):
        self.src, self.left = src, size
        self.dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        self.buf = b""

    def read(self, n=-1):
        if n is None or n < 0:
            raise DbgError("unbounded read of the data stream")
        while len(self.buf) < n and not self.dec.eof:
            if self.dec.needs_input:
                if self.left == 0:
                    break
                c = self.src.read(min(1 << 20, self.left))
                if not c:
                    raise DbgError("unexpected end of data.tar.xz")
                self.left -= len(c)
            else:
                c = b""
            self.buf += self.dec.decompress(c, max_length=max(n - len(self.buf), 1 << 16))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def ar_members(src):
    """Yield (name, size) of each ar member; the caller reads or skips size bytes."""
    if src.exact(8) != b"!<arch>\n":
        raise DbgError("not a .deb (no ar magic)")
    while True:
        h = src.exact(60)
        if h[58:60] != b"`\n":
            raise DbgError(f"bad ar member header at byte {src.n - 60}")
        name = h[0:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(h[48:58].decode("ascii").strip() or "-1")
        if size < 0:
            raise DbgError(f"bad ar member size for {name}")
        yield name, size
        if size & 1:
            src.exact(1)


def stream_extract(url, wants, outdir):
    """Extract the tar members whose names match the regexes in wants (one each)
    from the .deb at url without downloading the rest. Returns {pattern: path}."""
    found = {}
    req = urllib.request.Request(url, headers={"User-Agent": "tinyvmi-dbgsym"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as resp:
        src = Counted(resp, MAX_STREAM)
        for name, size in ar_members(src):
            if not name.startswith("data.tar"):
                while size:  # control.tar.xz, debian-binary: small
                    size -= len(src.exact(min(size, 1 << 20)))
                continue
            if not name.endswith(".xz"):
                raise DbgError(f"{name}: only data.tar.xz is handled")
            tf = tarfile.open(fileobj=XzMember(src, size), mode="r|")
            for m in tf:
                for pat in wants:
                    if pat not in found and m.isfile() and re.search(pat, m.name):
                        dst = outdir / Path(m.name).name
                        tmp = dst.with_suffix(dst.suffix + ".part")
                        try:
                            with tf.extractfile(m) as f, open(tmp, "wb") as o:
                                while c := f.read(1 << 20):
                                    o.write(c)
                        except OSError as e:
                            tmp.unlink(missing_ok=True)
                            free = shutil.disk_usage(outdir).free
                            raise DbgError(f"writing {m.name} ({m.size / 1e6:.0f} MB) to "
                                           f"{outdir}: {e.strerror}; {free / 1e6:.0f} MB "
                                           f"free there") from e
                        tmp.rename(dst)
                        found[pat] = dst
                        lab.log(f"  {m.name}: {m.size} bytes")
                if len(found) == len(wants):
                    break
            break
    lab.log(f"streamed {src.n / 1e6:.1f} MB of the .deb in {time.monotonic() - t0:.1f}s")
    if len(found) != len(wants):
        raise DbgError(f"{url}: missing {sorted(set(wants) - set(found))}")
    return found


def build_id(path):
    """The GNU build-id note of an ELF file, as hex ("" if none)."""
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True)
    m = re.search(r"Build ID:\s*([0-9a-f]+)", out.stdout)
    return m.group(1) if m else ""


@contextlib.contextmanager
def locked(path):
    """An exclusive lock on path (created): tests run in parallel and may
    want the same kernel at once; the second waits for the first's files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch(pkg):
    """Cache the vmlinux and System.map of a -dbg package; returns the release dir."""
    with locked(APT / "lock"):
        apt_update()
        pkg = resolve(pkg)
    rel = release_of(pkg)
    d = DBG / rel
    with locked(DBG / f"{rel}.lock"):
        return fetch_locked(pkg, d)


def fetch_locked(pkg, d):
    vm = d / "vmlinux"
    if vm.exists() and (d / "System.map").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    url, size, sha = print_uri(pkg)
    lab.log(f"fetch {pkg}: {url} ({size / 1e6:.0f} MB, streamed: only the head is read)")
    # A partial read cannot be checked against the .deb's SHA256 (apt's signed
    # index gives the hash of the whole file only). Record it for reference.
    got = stream_extract(url, [r"boot/vmlinux-", r"boot/System\.map-"], d)
    (d / "deb.sha256").write_text(f"{sha}  {url}\n")
    got[r"boot/vmlinux-"].rename(vm)
    got[r"boot/System\.map-"].rename(d / "System.map")
    return d


def profile(spec):
    rel, _, arch = spec.partition(":")
    pkg = f"linux-image-{rel}-dbg" + (f":{arch}" if arch else "")
    d = fetch(pkg)
    with locked(DBG / f"{rel}.lock"):
        return profile_locked(d, rel)


def profile_locked(d, rel):
    out = d / f"{rel}.isf.json"
    if out.exists():
        return out
    if not BIN.exists():
        raise DbgError(f"{BIN} not built (make -j2 all)")
    lab.log(f"{BIN} profile {d / 'vmlinux'} -o {out}")
    t0 = time.monotonic()
    p = subprocess.run([str(BIN), "profile", str(d / "vmlinux"), "-o", str(out)],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise DbgError(f"tinyvmi profile failed ({p.returncode}):\n{p.stderr}")
    lab.log(f"{p.stderr.strip()} ({time.monotonic() - t0:.1f}s)")
    return out


def releases():
    """Versioned -dbg packages of the bookworm 6.1 line, one per flavour, plus the pin."""
    apt_update()
    pkgs = [resolve(f"linux-image-{fl}-dbg:{arch}") for fl, arch in FLAVOURS.items()]
    return pkgs + [PINNED + ":amd64"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch").add_argument("pkg")
    sub.add_parser("profile").add_argument("release")
    sub.add_parser("releases")
    a = ap.parse_args()
    try:
        if a.cmd == "fetch":
            print(fetch(a.pkg))
        elif a.cmd == "profile":
            print(profile(a.release))
        else:
            print("\n".join(releases()))
    except (DbgError, lab.LabError) as e:
        print(f"dbgsym: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
