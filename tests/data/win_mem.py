#!/usr/bin/env python3
"""Builds a raw physical memory image of a Windows kernel's process and
module lists, laid out by a real profile's offsets and sizes, and writes
what it put there as ground truth (JSON).  Python stdlib only.

It is the independent oracle for TinyVMI's Windows layer: it reads the
profile (a Volatility 3 ISF, .json or .json.xz, or a Rekall profile) with
its own code and writes every field by the profile's offsets; TinyVMI reads
them back with its own.

    win_mem.py PROFILE OUT.raw OUT.json [--paging ia32e|pae|legacy]
               [--procs N] [--modules N] [--seed S]
               [--hostile none|loop|unmapped|bigname]

What the image holds:
  - page tables of the chosen paging mode (x64 4-level for 64-bit
    profiles; PAE or legacy 32-bit for 32-bit ones), physical pages in a
    shuffled order so that virtually contiguous objects are not physically;
  - the kernel image region: a PE header page at the kernel base (its
    debug directory's RSDS record names the profile's PDB, GUID and age)
    and the pages
    of PsActiveProcessHead, PsLoadedModuleList, PsIdleProcess,
    PsInitialSystemProcess and NtBuildNumber;
  - EPROCESS objects on ActiveProcessLinks: System (pid 4) and other
    kernel-only processes (no PEB), user processes with PEBs, names of the
    full ImageFileName width and with a non-printing byte; the Idle process
    (pid 0, only PsIdleProcess points to it); an exited process unlinked
    from the list (it must not be listed);
  - KLDR_DATA_TABLE_ENTRY objects on PsLoadedModuleList with UTF-16 names
    (non-ASCII and astral characters among them).
Hostile variants: "loop" (an entry's Flink points back into the list),
"unmapped" (an entry's Flink points to unmapped memory), "bigname" (a
module name whose UNICODE_STRING claims 0xfffe bytes over a long buffer).
"""
import argparse
import json
import lzma
import random
import struct
import sys

PAGE = 4096


# ---- profiles ----------------------------------------------------------------

class Profile:
    """Offsets, sizes and symbol RVAs from an ISF or a Rekall profile."""

    def __init__(self, path):
        opener = lzma.open if path.endswith(".xz") else open
        with opener(path, "rt") as f:
            doc = json.load(f)
        self.rekall = "$STRUCTS" in doc
        if self.rekall:
            self.syms = dict(doc["$CONSTANTS"])
            self.types = {n: (v[0], {m: (f[0], f[1]) for m, f in
                                     v[1].items()})
                          for n, v in doc["$STRUCTS"].items()}
        else:
            self.syms = {n: v["address"] for n, v in doc["symbols"].items()
                         if "address" in v}
            self.types = {n: (v["size"], {m: (f["offset"], f["type"]) for m, f
                                          in v["fields"].items()})
                          for n, v in doc["user_types"].items()}
        self.ptr = self.size("_LIST_ENTRY") // 2
        if self.rekall:
            ga = doc["$METADATA"]["GUID_AGE"]
            self.guid, self.age = ga[:32], int(ga[32:], 16)
            self.pdb = doc["$METADATA"]["PDBFile"]
        else:
            pdb = doc["metadata"]["windows"]["pdb"]
            self.guid, self.age = pdb["GUID"], pdb["age"]
            self.pdb = pdb["database"]

    def size(self, t):
        return self.types[t][0]

    def _field(self, t, m):
        return self.types[t][1][m]

    def _type_name(self, ftype):
        if self.rekall:
            return ftype[0]
        return ftype.get("name")

    def off(self, t, path):
        """Offset of a dotted member path ("Pcb.DirectoryTableBase")."""
        total = 0
        for part in path.split("."):
            o, ftype = self._field(t, part)
            total += o
            t = self._type_name(ftype)
        return total

    def count(self, t, m):
        """Element count of an array member."""
        ftype = self._field(t, m)[1]
        return ftype[1]["count"] if self.rekall else ftype["count"]

    def has(self, t):
        return t in self.types

    def sym(self, name):
        return self.syms[name]


# ---- memory and page tables ----------------------------------------------------------

class Memory:
    """Physical pages handed out in a shuffled order, and the page tables
    of one paging mode built on demand."""

    def __init__(self, npages, paging, rng):
        self.npages = npages
        self.paging = paging
        self.pages = {}
        self.free = list(range(1, npages))
        rng.shuffle(self.free)
        if paging == "ia32e":
            self.levels, self.esize = [39, 30, 21, 12], 8
        elif paging == "pae":
            self.levels, self.esize = [30, 21, 12], 8
        else:
            self.levels, self.esize = [22, 12], 4
        self.dtb = self.alloc()

    def alloc(self):
        pfn = self.free.pop()
        self.pages[pfn] = bytearray(PAGE)
        return pfn * PAGE

    def write_pa(self, pa, data):
        while data:
            page = self.pages[pa // PAGE]
            o = pa % PAGE
            n = min(len(data), PAGE - o)
            page[o:o + n] = data[:n]
            data = data[n:]
            pa += n

    def read_pa(self, pa, n):
        return bytes(self.pages[pa // PAGE][pa % PAGE:pa % PAGE + n])

    def _index(self, va, lvl):
        shift = self.levels[lvl]
        bits = 2 if (self.paging == "pae" and lvl == 0) else \
            (10 if self.paging == "legacy" else 9)
        return (va >> shift) & ((1 << bits) - 1)

    def _entry(self, table, idx):
        raw = self.read_pa(table + idx * self.esize, self.esize)
        return int.from_bytes(raw, "little")

    def _set(self, table, idx, value):
        self.write_pa(table + idx * self.esize,
                      value.to_bytes(self.esize, "little"))

    def translate(self, va):
        table = self.dtb
        for lvl in range(len(self.levels)):
            e = self._entry(table, self._index(va, lvl))
            if not e & 1:
                return None
            table = e & 0x000ffffffffff000
        return table + (va & (PAGE - 1))

    def map(self, va):
        """Maps the page holding va to a fresh physical page (if not yet)."""
        table = self.dtb
        for lvl in range(len(self.levels)):
            idx = self._index(va, lvl)
            e = self._entry(table, idx)
            if not e & 1:
                nxt = self.alloc()
                # PAE's PDPTEs allow only the present bit
                flags = 1 if (self.paging == "pae" and lvl == 0) else 3
                self._set(table, idx, nxt | flags)
                e = nxt | flags
            table = e & 0x000ffffffffff000
        return table

    def write(self, va, data):
        while data:
            pa = self.translate(va)
            if pa is None:
                self.map(va)
                pa = self.translate(va)
            n = min(len(data), PAGE - va % PAGE)
            self.write_pa(pa, data[:n])
            data = data[n:]
            va += n

    def image(self):
        out = bytearray(self.npages * PAGE)
        for pfn, page in self.pages.items():
            out[pfn * PAGE:(pfn + 1) * PAGE] = page
        return out


# ---- the kernel's objects --------------------------------------------------------------

LAYOUT = {  # kernel base, pool for objects, an address nothing maps
    8: (0xfffff80312a00000, 0xffffa58c12340000, 0xfffff80dead00000),
    4: (0x804d7000, 0x82000000, 0xbad00000),
}


class Builder:
    def __init__(self, prof, mem, rng):
        self.p, self.m, self.rng = prof, mem, rng
        self.base, self.pool, self.hole = LAYOUT[prof.ptr]
        self.pmask = (1 << (8 * prof.ptr)) - 1

    def ptr(self, v):
        return (v & self.pmask).to_bytes(self.p.ptr, "little")

    def new(self, size, align=16):
        va = (self.pool + align - 1) & ~(align - 1)
        self.pool = va + size
        self.m.write(va, bytes(size))
        return va

    def at_sym(self, name):
        return self.base + self.p.sym(name)

    def link(self, entries, head):
        """LIST_ENTRY ring: head -> entries[0] -> ... -> head."""
        ring = [head] + entries
        for i, e in enumerate(ring):
            nxt, prv = ring[(i + 1) % len(ring)], ring[i - 1]
            self.m.write(e, self.ptr(nxt) + self.ptr(prv))


def make_processes(b, nprocs):
    p = b.p
    E = "_EPROCESS"
    links = p.off(E, "ActiveProcessLinks")
    name_len = p.count(E, "ImageFileName")
    used_pids = {0, 4}
    procs = []

    def new_proc(pid, ppid, name, peb, dtb=None):
        ep = b.new(p.size(E))
        if dtb is None:
            # a page of its own for the top table (PAE: the PDPT)
            dtb = b.m.alloc()
        ctime = 132500000000000000 + b.rng.randrange(1 << 40)
        b.m.write(ep + p.off(E, "UniqueProcessId"), b.ptr(pid))
        b.m.write(ep + p.off(E, "InheritedFromUniqueProcessId"), b.ptr(ppid))
        raw = name if isinstance(name, bytes) else name.encode()
        b.m.write(ep + p.off(E, "ImageFileName"), raw[:name_len])
        b.m.write(ep + p.off(E, "Pcb.DirectoryTableBase"), b.ptr(dtb))
        b.m.write(ep + p.off(E, "Peb"), b.ptr(peb))
        b.m.write(ep + p.off(E, "CreateTime"), struct.pack("<Q", ctime))
        shown = "".join(chr(c) if 0x20 <= c < 0x7f else "?"
                        for c in raw[:name_len].split(b"\0")[0])
        return {"pid": pid, "ppid": ppid, "name": shown, "task": ep,
                "dtb": dtb, "peb": peb, "create_time": ctime,
                "kernel_thread": peb == 0}

    def fresh_pid():
        while True:
            pid = 4 * b.rng.randrange(2, 1 << 14)
            if pid not in used_pids:
                used_pids.add(pid)
                return pid

    def user_peb():
        return (0x7ff600000000 if p.ptr == 8 else 0x7ffd0000) + \
            PAGE * b.rng.randrange(1, 1 << 12)

    procs.append(new_proc(4, 0, "System", 0, dtb=b.m.dtb))
    for name in ("Registry", "MemCompression"):
        procs.append(new_proc(fresh_pid(), 4, name, 0))
    procs.append(new_proc(fresh_pid(), 4, "smss.exe", user_peb()))
    full = "abcdefghijklmnopqrstuvwxyz"[:name_len]  # fills ImageFileName
    odd = b"bad\x01name.exe"                         # a non-printing byte
    exited = None
    while len(procs) < nprocs:
        i = len(procs)
        name = full if i == 10 else odd if i == 11 else f"proc{i}.exe"
        parent = procs[b.rng.randrange(len(procs))]["pid"]
        procs.append(new_proc(fresh_pid(), parent, name, user_peb()))
        if i == nprocs // 3 and exited is None:
            exited = new_proc(fresh_pid(), parent, "exited.exe", user_peb())
    head = b.at_sym("PsActiveProcessHead")
    b.link([q["task"] + links for q in procs], head)
    # the exited process's own links still point at its old neighbours
    if exited:
        k = nprocs // 3
        b.m.write(exited["task"] + links,
                  b.ptr(procs[k]["task"] + links) +
                  b.ptr(procs[k - 1]["task"] + links))
    idle = new_proc(0, 0, "Idle", 0, dtb=b.m.dtb)
    b.m.write(b.at_sym("PsIdleProcess"), b.ptr(idle["task"]))
    b.m.write(b.at_sym("PsInitialSystemProcess"), b.ptr(procs[0]["task"]))
    return procs, idle, exited


def pe_header(p):
    """The kernel image's first page: DOS and NT headers and a debug
    directory whose CodeView (RSDS) record carries the profile's PDB GUID,
    age and name (PE/COFF specification layouts)."""
    page = bytearray(PAGE)
    lfanew, oh = 0x80, 0x80 + 24
    page[0:2] = b"MZ"
    struct.pack_into("<I", page, 0x3c, lfanew)
    page[lfanew:lfanew + 4] = b"PE\0\0"
    plus = p.ptr == 8
    dd = 112 if plus else 96
    struct.pack_into("<HHIIIHH", page, lfanew + 4,
                     0x8664 if plus else 0x14c, 0, 0x5f000000, 0, 0,
                     dd + 16 * 8, 0x22)
    struct.pack_into("<H", page, oh, 0x20b if plus else 0x10b)
    struct.pack_into("<I", page, oh + 56, 0x1000000)      # SizeOfImage
    struct.pack_into("<I", page, oh + dd - 4, 16)         # directories
    dbg, rsds = 0x400, 0x440
    struct.pack_into("<II", page, oh + dd + 6 * 8, dbg, 28)
    g = bytes.fromhex(p.guid)
    guid = struct.pack("<IHH", int.from_bytes(g[0:4], "big"),
                       int.from_bytes(g[4:6], "big"),
                       int.from_bytes(g[6:8], "big")) + g[8:16]
    record = b"RSDS" + guid + struct.pack("<I", p.age) + \
        p.pdb.encode() + b"\0"
    struct.pack_into("<IIHHIIII", page, dbg, 0, 0, 0, 0, 2, len(record),
                     rsds, rsds)
    page[rsds:rsds + len(record)] = record
    return bytes(page)


def utf8_cut(s, limit):
    """s as UTF-8, cut to whole characters within limit bytes."""
    out = b""
    for ch in s:
        enc = ch.encode()
        if len(out) + len(enc) > limit:
            break
        out += enc
    return out.decode()


def make_modules(b, nmods, hostile):
    p = b.p
    L = "_KLDR_DATA_TABLE_ENTRY" if p.has("_KLDR_DATA_TABLE_ENTRY") \
        else "_LDR_DATA_TABLE_ENTRY"
    us = p.off(L, "BaseDllName")
    mods = []
    fixed = ["ntoskrnl.exe", "hal.dll", "kd.dll", "t\u00ebst\u20ac.sys",
             "\U0001d11e.sys"]
    for i in range(nmods):
        name = fixed[i] if i < len(fixed) else f"drv{i:03d}.sys"
        e = b.new(p.size(L))
        base = (b.base if i == 0 else b.base + (0x1000000 * i)) & b.pmask
        size = PAGE * b.rng.randrange(1, 4096)
        utf16 = name.encode("utf-16-le")
        length = len(utf16)
        shown = utf8_cut(name, 63)
        if hostile == "bigname" and i == 5:
            utf16 = ("A" * 300).encode("utf-16-le")
            length = 0xfffe
            shown = "A" * 63
        buf = b.new(len(utf16) + 2)
        b.m.write(buf, utf16 + b"\0\0")
        b.m.write(e + p.off(L, "DllBase"), b.ptr(base))
        b.m.write(e + p.off(L, "SizeOfImage"), struct.pack("<I", size))
        b.m.write(e + us + p.off("_UNICODE_STRING", "Length"),
                  struct.pack("<HH", length, min(length + 2, 0xffff)))
        b.m.write(e + us + p.off("_UNICODE_STRING", "Buffer"), b.ptr(buf))
        mods.append({"name": shown, "base": base, "size": size, "addr": e})
    links = p.off(L, "InLoadOrderLinks")
    b.link([m["addr"] + links for m in mods], b.at_sym("PsLoadedModuleList"))
    return mods


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile")
    ap.add_argument("image")
    ap.add_argument("truth")
    ap.add_argument("--paging", choices=["ia32e", "pae", "legacy"])
    ap.add_argument("--procs", type=int, default=300)
    ap.add_argument("--modules", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hostile", default="none",
                    choices=["none", "loop", "unmapped", "bigname"])
    a = ap.parse_args()
    prof = Profile(a.profile)
    paging = a.paging or ("ia32e" if prof.ptr == 8 else "pae")
    if (prof.ptr == 8) != (paging == "ia32e"):
        sys.exit(f"{paging} paging does not fit a {prof.ptr * 8}-bit profile")
    rng = random.Random(a.seed)
    mem = Memory(4096, paging, rng)
    b = Builder(prof, mem, rng)
    mem.write(b.base, pe_header(prof))  # the image's first page
    build = 19041 if prof.ptr == 8 else 2600
    mem.write(b.at_sym("NtBuildNumber"), struct.pack("<I", 0xf0000000 | build))
    procs, idle, exited = make_processes(b, a.procs)
    mods = make_modules(b, a.modules, a.hostile)
    links = prof.off("_EPROCESS", "ActiveProcessLinks")
    expect = {"processes": len(procs), "error": None}
    if a.hostile == "loop":
        # entry 150 points back to entry 100: the walk must stop there
        k = min(150, len(procs) - 1)
        mem.write(procs[k]["task"] + links,
                  b.ptr(procs[k // 3 * 2]["task"] + links))
        expect = {"processes": k + 1, "error": "loops"}
    elif a.hostile == "unmapped":
        k = min(150, len(procs) - 1)
        mem.write(procs[k]["task"] + links, b.ptr(b.hole))
        expect = {"processes": k + 1, "error": "broken after"}
    with open(a.image, "wb") as f:
        f.write(mem.image())
    truth = {
        "profile": a.profile, "paging": paging, "dtb": mem.dtb,
        "kernel_base": b.base, "kernel_pa": mem.translate(b.base),
        "ptr_size": prof.ptr, "build": build,
        "pdb": prof.pdb, "guid_age": f"{prof.guid.upper()}{prof.age:X}",
        "idle": idle, "processes": procs, "exited": exited,
        "modules": mods, "expect": expect,
        "offsets": {
            "win_tasks": links,
            "win_pid": prof.off("_EPROCESS", "UniqueProcessId"),
            "win_pname": prof.off("_EPROCESS", "ImageFileName"),
            "win_pdbase": prof.off("_EPROCESS", "Pcb.DirectoryTableBase"),
            "win_peb": prof.off("_EPROCESS", "Peb"),
        },
    }
    with open(a.truth, "w") as f:
        json.dump(truth, f, indent=1)


if __name__ == "__main__":
    main()
