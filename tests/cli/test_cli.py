"""The tinyvmi command on dumps generated here, in a temporary directory:
raw images with hand-built page tables (4-level, 5-level, PAE and legacy),
ELF cores laid out as QEMU's dump-guest-memory writes them (PT_LOADs, one
NT_PRSTATUS "CORE" note and one QEMUCPUState "QEMU" note per vCPU) and LiME
files.  Translations and reads are checked against a page walk written
here, independently of TinyVMI's.  The builders are shared with
test_cli_bad.py (bad input, one test each)."""
import atexit
import json
import os
import pty
import random
import resource
import shutil
import signal
import subprocess
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pyt import TINYVMI, Skip, check, main, tinyvmi  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tvcli.")
atexit.register(shutil.rmtree, TMP, True)
MIB = 1 << 20

# ---- Page tables --------------------------------------------------------------

# Per mode: entry size, levels top first as (name, shift, index bits), the
# levels whose entries may map a page (PS), and the --page-mode name.
MODES = {
    "ia32e": (8, [("PML4E", 39, 9), ("PDPTE", 30, 9), ("PDE", 21, 9),
                  ("PTE", 12, 9)], {"PDPTE", "PDE"}),
    "la57": (8, [("PML5E", 48, 9), ("PML4E", 39, 9), ("PDPTE", 30, 9),
                 ("PDE", 21, 9), ("PTE", 12, 9)], {"PDPTE", "PDE"}),
    "pae": (8, [("PDPTE", 30, 2), ("PDE", 21, 9), ("PTE", 12, 9)], {"PDE"}),
    "legacy": (4, [("PDE", 22, 10), ("PTE", 12, 10)], {"PDE"}),
}
P, RW, PS, NX = 1, 2, 0x80, 1 << 63


class Memory:
    """Guest RAM from physical 0 with a bump allocator for table pages."""

    def __init__(self, size, first_table=0x1000):
        self.b = bytearray(size)
        self.next = first_table

    def page(self):
        pa, self.next = self.next, self.next + 0x1000
        return pa

    def get(self, pa, size):
        if pa + size > len(self.b):
            return None
        return int.from_bytes(self.b[pa:pa + size], "little")

    def put(self, pa, value, size=8):
        self.b[pa:pa + size] = value.to_bytes(size, "little")


class PageTables:
    """x86 page tables in a Memory, and a reference walk of them."""

    def __init__(self, mem, mode="ia32e", root=None):
        self.mem, self.mode = mem, mode
        self.esize, self.levels, self.large = MODES[mode]
        self.root = mem.page() if root is None else root
        self.amask = 0xfffff000 if self.esize == 4 else 0x000ffffffffff000

    def index(self, va, lvl):
        _, shift, bits = self.levels[lvl]
        return (va >> shift) & ((1 << bits) - 1)

    def slot(self, table, va, lvl):
        return table + self.index(va, lvl) * self.esize

    def map(self, va, pa, size=0x1000, flags=P | RW):
        """Maps [va, va+size) to pa with one page of that size."""
        table = self.root
        for lvl, (name, shift, _) in enumerate(self.levels):
            loc = self.slot(table, va, lvl)
            if 1 << shift == size:
                leaf = flags | (PS if lvl + 1 < len(self.levels) else 0)
                self.mem.put(loc, pa | leaf, self.esize)
                return
            entry = self.mem.get(loc, self.esize)
            if not entry & P:
                entry = self.mem.page() | P | RW
                self.mem.put(loc, entry, self.esize)
            table = entry & self.amask
        raise ValueError(f"no level maps {size:#x} pages")

    def walk(self, va, root=None):
        """What TinyVMI must answer: (pa, page size, entries walked as
        [(level, location, value)], why it failed or None)."""
        table = (self.root if root is None else root) & (
            0xffffffe0 if self.mode == "pae" else self.amask)
        entries = []
        for lvl, (name, shift, _) in enumerate(self.levels):
            loc = self.slot(table, va, lvl)
            value = self.mem.get(loc, self.esize)
            if value is None:
                return None, None, entries, "not backed"
            entries.append((name, loc, value))
            if not value & P:
                return None, None, entries, "not present"
            last = lvl + 1 == len(self.levels)
            if last or (name in self.large and value & PS):
                size = 1 << shift
                base = value & self.amask & ~(size - 1)
                if self.mode == "legacy" and not last:
                    base = (value & 0xffc00000) | ((value >> 13) & 0xff) << 32
                return base | (va & (size - 1)), size, entries, None
            table = value & self.amask
        raise AssertionError("unreachable")


def kernel_image(mode="ia32e", size=4 * MIB):
    """A small kernel-like layout: text in 4 KiB pages, a 2 MiB page, a
    1 GiB direct map of physical 0, a banner; returns (mem, tables, facts)."""
    mem = Memory(size)
    pt = PageTables(mem, mode)
    f = {"banner": b"Linux version 9.9.9-tinyvmi (test) #1\n\0"}
    if mode in ("ia32e", "la57"):
        f.update(text=0xffffffff81000000, big=0xffffffff81200000,
                 dmap=0xffff888000000000)
        pt.map(f["dmap"], 0, 1 << 30)
    else:
        f.update(text=0xc1000000, big=0xc1400000, dmap=0xc0000000)
    pt.map(f["text"], 0x200000)            # banner page
    pt.map(f["text"] + 0x1000, 0x300000)   # not contiguous: reads must walk
    pt.map(f["text"] + 0x2000, 0x201000)
    if mode == "legacy":  # 4 MiB pages, 4 MiB aligned
        pt.map(f["big"], 0, 4 * MIB)
    else:
        pt.map(f["big"], 0x200000, 2 * MIB)
    mem.b[0x200000:0x200000 + len(f["banner"])] = f["banner"]
    mem.b[0x300000:0x300000 + 256] = bytes(range(256))
    return mem, pt, f


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def paging_opts(pt):
    return ["--page-mode", pt.mode, "--dtb", hex(pt.root)]


# ---- ELF cores, QEMU style ----------------------------------------------------


def note(name, ntype, desc):
    name += b"\0"

    def pad(b):
        return b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + \
        pad(desc)


def prstatus(pid, rip, rsp=0):
    """NT_PRSTATUS for x86_64: 336 bytes, pr_pid at 32, pr_reg (27 x u64,
    user_regs_struct order) at 112."""
    regs = [0] * 27
    regs[16], regs[19] = rip, rsp  # rip, rsp
    d = bytearray(336)
    struct.pack_into("<I", d, 32, pid)
    struct.pack_into("<27Q", d, 112, *regs)
    return note(b"CORE", 1, bytes(d))


def qemu_cpu_state(cr3, rip, cr0=0x80050033, cr4=0x3506f0):
    """QEMUCPUState: u32 version, u32 size, rax rbx rcx rdx rsi rdi rsp rbp
    r8-r15 rip rflags, 10 segments {u32 sel, limit, flags, pad; u64 base},
    cr[5], kernel_gs_base."""
    gprs = [0] * 16 + [rip, 0x2]
    segs = b"".join(struct.pack("<IIIIQ", 0x10, 0xffffffff, 0xa09b00, 0, 0)
                    for _ in range(10))
    body = struct.pack("<18Q", *gprs) + segs + \
        struct.pack("<5Q", cr0, 0, 0, cr3, cr4) + struct.pack("<Q", 0)
    return note(b"QEMU", 0, struct.pack("<II", 1, 8 + len(body)) + body)


def cpu_notes(cpus):
    """QEMU writes every vCPU's NT_PRSTATUS, then every QEMU note; cpus is
    [(cr3, rip, cr4)]."""
    out = b"".join(prstatus(i + 1, rip) for i, (_, rip, _) in enumerate(cpus))
    return out + b"".join(qemu_cpu_state(cr3, rip, cr4=cr4)
                          for cr3, rip, cr4 in cpus)


def elf_core(loads, notes=b"", machine=62, **hdr):
    """ELF64 ET_CORE: a PT_NOTE, then PT_LOADs of (paddr, data).  hdr
    overrides header fields (phentsize, phoff, phnum) or appends raw
    program headers (extra: [(type, offset, paddr, filesz, memsz)])."""
    extra = hdr.get("extra", [])
    nph = 1 + len(loads) + len(extra)
    off = 64 + nph * 56
    table = struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(notes), len(notes),
                        4)
    blobs = notes
    off += len(notes)
    for pa, data in loads:
        table += struct.pack("<IIQQQQQQ", 1, 7, off, pa, pa, len(data),
                             len(data), 0x1000)
        blobs += data
        off += len(data)
    for ptype, poff, pa, filesz, memsz in extra:
        table += struct.pack("<IIQQQQQQ", ptype, 7, poff, pa, pa, filesz,
                             memsz, 0x1000)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0,
                             hdr.get("phoff", 64), 0, 0, 64,
                             hdr.get("phentsize", 56), hdr.get("phnum", nph),
                             0, 0, 0)
    return eh + table + blobs


def lime(ranges, version=1):
    """LiME: per range a 32-byte header (magic, version, start, inclusive
    end, reserved) and its bytes."""
    return b"".join(struct.pack("<IIQQ8x", 0x4C694D45, version, start,
                                start + len(data) - 1) + data
                    for start, data in ranges)


# ---- Checks ----------------------------------------------------------------------


def ok(p):
    text = (p.stdout + p.stderr) if isinstance(p.stdout, str) else ""
    check(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    check("Sanitizer" not in text, text)
    return p


def fails(p, code, cmd, *words):
    """A clean failure: the exit code wanted, "tinyvmi: CMD: " and the words
    on stderr, and no sign of a crash."""
    def text(s):
        return s if isinstance(s, str) else (s or b"").decode("latin1")
    err, out = text(p.stderr), text(p.stdout)
    check(0 <= p.returncode < 128, f"crashed: exit {p.returncode}: {err}")
    check(p.returncode == code,
          f"exit {p.returncode}, wanted {code}: {out}{err}")
    check(f"tinyvmi: {cmd}:" in err if cmd else err.startswith("tinyvmi"),
          f"no 'tinyvmi: {cmd}:' in: {err}")
    for w in words:
        check(w.lower() in err.lower(), f"{w!r} not in: {err}")
    for bad in ("Sanitizer", "Segmentation", "core dumped", "Aborted"):
        check(bad not in out + err, out + err)
    return p


def translate_json(img, va, *opts):
    p = tinyvmi("translate", img, hex(va), "--json", *opts)
    check(p.returncode in (0, 1), f"exit {p.returncode}: {p.stderr}")
    return p.returncode, json.loads(p.stdout)


def agree(img, pt, va, opts, root=None):
    """TinyVMI's translation of va is the reference walk's, entry by
    entry."""
    pa, size, entries, why = pt.walk(va, root)
    code, j = translate_json(img, va, *opts)
    want = [{"level": n, "location": hex(loc), "value": hex(v)}
            for n, loc, v in entries]
    got = [{k: e[k] for k in ("level", "location", "value")}
           for e in j["entries"]]
    check(got == want, f"{va:#x}: entries {got}, want {want}")
    if why:
        check(code == 1 and j["pa"] is None and j["error"], (va, j))
    else:
        check(code == 0 and j["pa"] == hex(pa) and j["page_size"] == size
              and j["error"] is None, (hex(va), hex(pa), size, j))
    return j


# ---- info --------------------------------------------------------------------------


def test_info_raw_without_registers():
    mem, _, _ = kernel_image()
    img = write("info.raw", mem.b)
    p = ok(tinyvmi("info", img))
    check("format:      raw" in p.stdout, p.stdout)
    check("0x0000000000000000-0x00000000003fffff (4 MiB)" in p.stdout,
          p.stdout)
    check("vcpus:       0" in p.stdout, p.stdout)
    check("page mode:   unknown (no vCPU registers; use --page-mode/--dtb)"
          in p.stdout, p.stdout)
    j = json.loads(ok(tinyvmi("info", img, "--json")).stdout)
    check(j["format"] == "raw" and j["vcpus"] == [] and
          j["page_mode"] is None and j["kernel_dtb"] is None, j)
    check(j["ranges"] == [{"start": "0x0", "last": "0x3fffff",
                           "size": 4 * MIB}], j)
    check(j["memsize"] == 4 * MIB and
          j["max_physical_address"] == "0x400000", j)


def test_info_raw_with_paging_options():
    mem, pt, _ = kernel_image("la57")
    img = write("info57.raw", mem.b)
    j = json.loads(ok(tinyvmi("info", img, "--json", *paging_opts(pt))).stdout)
    check(j["page_mode"] == "LA57" and j["kernel_dtb"] == hex(pt.root), j)
    p = ok(tinyvmi("info", img, *paging_opts(pt)))
    check("page mode:   LA57" in p.stdout and
          f"kernel dtb:  {pt.root:#x}" in p.stdout, p.stdout)


def two_cpu_elf(name, mem, pt, f, cr4=0x3506f0):
    """mem's first MiB and everything from 2 MiB: a hole at [1, 2) MiB."""
    loads = [(0, bytes(mem.b[:MIB])), (2 * MIB, bytes(mem.b[2 * MIB:]))]
    notes = cpu_notes([(pt.root, f["text"], cr4), (pt.root | 0x5, 0, cr4)])
    return write(name, elf_core(loads, notes))


def test_info_elf_registers_and_hole():
    mem, pt, f = kernel_image()
    img = two_cpu_elf("info.elf", mem, pt, f)
    j = json.loads(ok(tinyvmi("info", img, "--json")).stdout)
    check(j["format"] == "elf", j)
    check(j["ranges"] == [
        {"start": "0x0", "last": "0xfffff", "size": MIB},
        {"start": "0x200000", "last": "0x3fffff", "size": 2 * MIB}], j)
    check(j["memsize"] == 3 * MIB, j)
    check(j["vcpus"] == [
        {"index": 0, "cr3": hex(pt.root), "rip": hex(f["text"])},
        {"index": 1, "cr3": hex(pt.root | 5), "rip": "0x0"}], j)
    check(j["page_mode"] == "IA-32e" and j["kernel_dtb"] == hex(pt.root), j)
    p = ok(tinyvmi("info", img))
    for line in ["0x0000000000000000-0x00000000000fffff (1 MiB)",
                 "0x0000000000200000-0x00000000003fffff (2 MiB)",
                 f"vcpu 0: cr3 {pt.root:#x} rip {f['text']:#x}",
                 "page mode:   IA-32e", f"kernel dtb:  {pt.root:#x}"]:
        check(line in p.stdout, f"{line!r} not in {p.stdout}")


def test_info_elf_la57_from_cr4():
    mem, pt, f = kernel_image("la57")
    img = two_cpu_elf("la57.elf", mem, pt, f, cr4=0x3506f0 | 1 << 12)
    j = json.loads(ok(tinyvmi("info", img, "--json")).stdout)
    check(j["page_mode"] == "LA57", j)
    agree(img, pt, f["text"], [])


def test_info_lime():
    mem, _, _ = kernel_image()
    img = write("info.lime", lime([(0, bytes(mem.b[:0x10000])),
                                   (0x200000, bytes(mem.b[0x200000:0x300000]))]))
    j = json.loads(ok(tinyvmi("info", img, "--json")).stdout)
    check(j["format"] == "lime", j)
    check([(r["start"], r["size"]) for r in j["ranges"]] ==
          [("0x0", 0x10000), ("0x200000", MIB)], j)
    p = ok(tinyvmi("read", img, "0x200000", "5", "--pa", "--raw", text=False))
    check(p.stdout == b"Linux", p.stdout)


# ---- translate ---------------------------------------------------------------------


def sample_vas(pt, f, rng):
    """Mapped addresses of every page size, unmapped ones ending at each
    level, and random ones."""
    vas = [f["text"], f["text"] + 0x1abc, f["text"] + 0x2fff, f["big"],
           f["big"] + 0x1234, f["dmap"] + 0x3000, f["text"] + 0x3000,
           f["text"] - 0x1000, 0, 0x1000]
    if pt.esize == 8 and pt.mode != "pae":
        vas += [f["dmap"] + 0x3fffffff, f["dmap"] + (1 << 30),
                0xffff800000000000, 0x00007fffffffe000]
    top = 1 << (32 if pt.mode in ("pae", "legacy") else 47)
    for _ in range(40):
        base = rng.choice([f["text"], f["big"], f["dmap"]])
        vas.append((base + rng.randrange(-(8 << 20), 8 << 20)) %
                   (1 << 64 if top > 1 << 32 else top))
    canon = []
    for va in vas:
        if pt.mode == "ia32e" and va >> 47 not in (0, (1 << 17) - 1):
            continue
        canon.append(va)
    return canon


def reference_check(mode):
    mem, pt, f = kernel_image(mode)
    img = write(f"ref-{mode}.raw", mem.b)
    rng = random.Random(mode)
    sizes = set()
    for va in sample_vas(pt, f, rng):
        j = agree(img, pt, va, paging_opts(pt))
        sizes.add(j["page_size"])
    return sizes


def test_translate_ia32e_matches_reference_walk():
    check(reference_check("ia32e") >= {4096, 2 * MIB, 1 << 30, None})


def test_translate_la57_matches_reference_walk():
    check(reference_check("la57") >= {4096, 2 * MIB, 1 << 30, None})


def test_translate_pae_matches_reference_walk():
    check(reference_check("pae") >= {4096, 2 * MIB, None})


def test_translate_legacy_matches_reference_walk():
    check(reference_check("legacy") >= {4096, 4 * MIB, None})


def test_translate_text_output():
    mem, pt, f = kernel_image()
    img = write("text.raw", mem.b)
    p = ok(tinyvmi("translate", img, hex(f["text"] + 0x123), *paging_opts(pt)))
    lines = p.stdout.splitlines()
    check(lines[0] == f"{f['text'] + 0x123:#x} -> 0x200123 (4 KiB page; "
          f"IA-32e, DTB {pt.root:#x})", lines)
    _, _, entries, _ = pt.walk(f["text"])
    check([ln.split()[:3] for ln in lines[2:]] ==
          [[n, f"0x{loc:016x}", f"0x{v:016x}"] for n, loc, v in entries],
          lines)
    check(lines[5].split()[3:] == ["P", "RW"], lines)
    p = ok(tinyvmi("translate", img, hex(f["big"]), *paging_opts(pt)))
    check("(2 MiB page;" in p.stdout and "PS" in p.stdout.splitlines()[-1],
          p.stdout)


def test_translate_decimal_and_hex_agree():
    mem, pt, f = kernel_image()
    img = write("dec.raw", mem.b)
    a = ok(tinyvmi("translate", img, str(f["text"] + 5), *paging_opts(pt)))
    b = ok(tinyvmi("translate", img, hex(f["text"] + 5).upper().replace(
        "0X", "0x"), "--dtb", str(pt.root), "--page-mode", "IA32E"))
    check(a.stdout == b.stdout, (a.stdout, b.stdout))


def test_translate_elf_registers_and_dtb_option():
    """An ELF's own CR3 by default; --dtb alone picks other tables with the
    dump's page mode; --dtb=VALUE works too."""
    mem, pt, f = kernel_image()
    other = PageTables(mem, "ia32e", root=mem.page())
    other.map(f["text"], 0x300000)
    img = two_cpu_elf("dtb.elf", mem, pt, f)
    agree(img, pt, f["text"], [])
    j = agree(img, other, f["text"] + 8, ["--dtb", hex(other.root)])
    check(j["pa"] == "0x300008" and j["dtb"] == hex(other.root), j)
    agree(img, other, f["text"], [f"--dtb={other.root:#x}"])
    # --page-mode alone keeps the dump's CR3.
    agree(img, pt, f["big"], ["--page-mode", "ia32e"])


def test_translate_pcid_bits_in_cr3_ignored():
    mem, pt, f = kernel_image()
    img = write("pcid.raw", mem.b)
    agree(img, pt, f["text"], ["--page-mode", "ia32e", "--dtb",
                               hex(pt.root | 0x801)], root=pt.root)


# ---- read ----------------------------------------------------------------------------


def hexdump(addr, data):
    """The classic format: address, 16 bytes (a gap after 8), ASCII."""
    out = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        cells = [f"{b:02x} " for b in chunk] + ["   "] * (16 - len(chunk))
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{addr + i:016x}  {''.join(cells[:8])} "
                   f"{''.join(cells[8:])} |{asc}|")
    return "\n".join(out) + "\n"


def expected_virtual(mem, pt, va, n):
    out = b""
    while len(out) < n:
        pa, _, _, why = pt.walk(va + len(out))
        check(why is None, why)
        step = min(n - len(out), 0x1000 - ((va + len(out)) & 0xfff))
        out += bytes(mem.b[pa:pa + step])
    return out


def test_read_hexdump_across_pages():
    mem, pt, f = kernel_image()
    img = write("hex.raw", mem.b)
    va = f["text"] + 0xff8  # 8 bytes of the banner page, then 0x300000
    want = expected_virtual(mem, pt, va, 45)
    check(want[8:] == bytes(range(37)), want)
    p = ok(tinyvmi("read", img, hex(va), "45", *paging_opts(pt)))
    check(p.stdout == hexdump(va, want), p.stdout + "\n" + hexdump(va, want))


def test_read_raw_bytes():
    mem, pt, f = kernel_image()
    img = write("rawout.raw", mem.b)
    n = len(f["banner"])
    p = ok(tinyvmi("read", img, hex(f["text"]), n, "--raw", *paging_opts(pt),
                   text=False))
    check(p.stdout == f["banner"], p.stdout)
    p = ok(tinyvmi("read", img, hex(f["big"] + 0x10), "0x20", "--raw",
                   *paging_opts(pt), text=False))
    check(p.stdout == bytes(mem.b[0x200010:0x200030]), p.stdout)


def test_read_large_physical_in_chunks():
    """More than one internal chunk, raw and as a hex dump."""
    mem, _, _ = kernel_image()
    rng = random.Random(7)
    mem.b[0x100000:0x1a0000] = rng.randbytes(0xa0000)
    img = write("big.raw", mem.b)
    p = ok(tinyvmi("read", img, "0x100003", 0x90000, "--pa", "--raw",
                   text=False))
    check(p.stdout == bytes(mem.b[0x100003:0x190003]), len(p.stdout))
    p = ok(tinyvmi("read", img, "0x100003", 0x50001, "--pa"))
    check(p.stdout == hexdump(0x100003, bytes(mem.b[0x100003:0x150004])),
          "hex dump differs")


def test_read_elf_uses_dump_registers():
    mem, pt, f = kernel_image()
    img = two_cpu_elf("read.elf", mem, pt, f)
    p = ok(tinyvmi("read", img, hex(f["text"]), len(f["banner"]), "--raw",
                   text=False))
    check(p.stdout == f["banner"], p.stdout)
    p = ok(tinyvmi("read", img, hex(f["dmap"] + 0x200000), 5, "--raw",
                   text=False))
    check(p.stdout == b"Linux", p.stdout)


def test_read_with_explicit_dtb():
    mem, pt, f = kernel_image()
    other = PageTables(mem, "ia32e", root=mem.page())
    other.map(0x400000, 0x300000)
    img = two_cpu_elf("rdtb.elf", mem, pt, f)
    p = ok(tinyvmi("read", img, "0x400010", "4", "--dtb", hex(other.root),
                   "--raw", text=False))
    check(p.stdout == bytes([16, 17, 18, 19]), p.stdout)


def test_options_anywhere_and_double_dash():
    mem, _, _ = kernel_image()
    img = write("opts.raw", mem.b)
    a = ok(tinyvmi("read", "--pa", img, "0x200000", "--raw", "5", text=False))
    check(a.stdout == b"Linux", a.stdout)
    b = ok(tinyvmi("read", "--pa", "--raw", "--", img, "0x200000", "5",
                   text=False))
    check(b.stdout == b"Linux", b.stdout)


# ---- dump ----------------------------------------------------------------------------


def sparse_supported():
    path = os.path.join(TMP, "sparse-probe")
    with open(path, "wb") as fh:
        fh.truncate(8 * MIB)
        fh.seek(4 * MIB)
        fh.write(b"x")
    blocks = os.stat(path).st_blocks
    os.unlink(path)
    return blocks * 512 < MIB


def test_dump_elf_with_hole_round_trip():
    mem, pt, f = kernel_image()
    img = two_cpu_elf("rt.elf", mem, pt, f)
    out = os.path.join(TMP, "rt.img")
    p = ok(tinyvmi("dump", img, out))
    check("wrote" in p.stdout, p.stdout)
    data = open(out, "rb").read()
    check(len(data) == len(mem.b), len(data))
    check(data[:MIB] == mem.b[:MIB] and data[2 * MIB:] == mem.b[2 * MIB:],
          "segments differ")
    check(data[MIB:2 * MIB] == bytes(MIB), "hole is not zero")
    check(os.stat(out).st_mode & 0o077 == 0, "image readable by others")
    if sparse_supported():
        with open(out, "rb") as fh:
            check(os.lseek(fh.fileno(), MIB, os.SEEK_DATA) >= 2 * MIB,
                  "the hole was written, not left sparse")
    # The ELF says where the hole is; the raw image cannot.
    j = json.loads(ok(tinyvmi("info", img, "--json")).stdout)
    check(len(j["ranges"]) == 2 and j["memsize"] == 3 * MIB, j)
    j = json.loads(ok(tinyvmi("info", out, "--json")).stdout)
    check(len(j["ranges"]) == 1 and j["memsize"] == 4 * MIB, j)
    # Translations agree on both.
    for va in (f["text"], f["big"] + 0x777, f["dmap"] + 0x200000):
        agree(out, pt, va, paging_opts(pt))


def test_dump_lime_gaps_and_raw_identity():
    mem, _, _ = kernel_image()
    lm = write("d.lime", lime([(0x1000, bytes(mem.b[0x1000:0x3000])),
                               (0x200000, bytes(mem.b[0x200000:0x201000]))]))
    out = os.path.join(TMP, "d.img")
    ok(tinyvmi("dump", lm, out))
    data = open(out, "rb").read()
    check(len(data) == 0x201000, hex(len(data)))
    check(data[:0x1000] == bytes(0x1000), "leading hole")
    check(data[0x1000:0x3000] == mem.b[0x1000:0x3000], "range 1")
    check(data[0x200000:] == mem.b[0x200000:0x201000], "range 2")
    raw = write("ident.raw", mem.b)
    out2 = os.path.join(TMP, "ident.img")
    ok(tinyvmi("dump", raw, out2))
    check(open(out2, "rb").read() == mem.b, "raw -> raw changed bytes")


def test_dump_overwrite_needs_force():
    mem, _, _ = kernel_image()
    raw = write("ow.raw", mem.b)
    out = write("ow.img", b"precious")
    fails(tinyvmi("dump", raw, out), 1, "dump", "exists", "--force")
    check(open(out, "rb").read() == b"precious", "OUT was touched")
    ok(tinyvmi("dump", raw, out, "--force"))
    check(open(out, "rb").read() == mem.b, "not replaced")
    check(not [n for n in os.listdir(TMP) if ".tinyvmi-" in n],
          os.listdir(TMP))


def test_dump_refuses_its_own_target():
    mem, _, _ = kernel_image()
    raw = write("self.raw", mem.b)
    fails(tinyvmi("dump", raw, raw, "--force"), 1, "dump", "target itself")
    check(open(raw, "rb").read() == mem.b, "target damaged")


def test_dump_write_error_leaves_nothing():
    """A file size limit makes writes fail half way: exit 1, a message,
    and neither OUT nor a temporary file left behind."""
    mem, _, _ = kernel_image()
    raw = write("lim.raw", mem.b)
    d = tempfile.mkdtemp(dir=TMP)
    out = os.path.join(d, "lim.img")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (MIB, MIB))
    fails(tinyvmi("dump", raw, out, preexec_fn=limit), 1, "dump",
          "File too large")
    check(os.listdir(d) == [], os.listdir(d))


def test_dump_progress_only_on_a_terminal():
    mem, _, _ = kernel_image()
    raw = write("tty.raw", mem.b)
    out = os.path.join(TMP, "tty.img")
    p = ok(tinyvmi("dump", raw, out))
    check(p.stderr == "", p.stderr)  # a pipe: no progress bar
    os.unlink(out)
    master, slave = pty.openpty()
    try:
        p = subprocess.run([TINYVMI, "dump", raw, out], stdout=subprocess.PIPE,
                           stderr=slave, timeout=120)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    check(p.returncode == 0, p)
    check(b"100%" in shown and b"\r" in shown, shown)


def test_dump_interrupted_removes_temporary():
    """SIGTERM while writing a large sparse image: the temporary file goes,
    OUT never appears."""
    d = tempfile.mkdtemp(dir=TMP)
    big = os.path.join(d, "big.raw")
    with open(big, "wb") as fh:
        fh.truncate(1 << 30)
        for at in range(0, 1 << 30, 4096 * 64):
            fh.seek(at)
            fh.write(b"\1")
    out = os.path.join(d, "big.img")
    proc = subprocess.Popen([TINYVMI, "dump", big, out],
                            stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline and not [n for n in os.listdir(d)
                                          if ".tinyvmi-" in n]:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    left = sorted(os.listdir(d))
    if proc.returncode == 0:
        raise Skip("the dump finished before the signal came")
    check(proc.returncode == -signal.SIGTERM, proc.returncode)
    check(left == ["big.raw"], left)


# ---- help ------------------------------------------------------------------------------


def test_help_version_and_usage():
    for args in (["--help"], ["-h"], ["help"], ["info", "--help"],
                 ["read", "-h"], ["translate", "--help"], ["dump", "--help"],
                 ["help", "dump"], ["read", "x", "--help", "--bogus"]):
        p = ok(tinyvmi(*args))
        check(p.stdout.startswith("usage: tinyvmi"), (args, p.stdout))
        check("Exit codes" in p.stdout and "3  the target" in p.stdout,
              p.stdout)
        check(p.stderr == "", p.stderr)
    p = ok(tinyvmi("--help"))
    for word in ("info", "read", "translate", "dump", "--page-mode", "--dtb"):
        check(word in p.stdout, word)
    p = ok(tinyvmi("read", "--help"))
    for word in ("--pa", "--raw", "--dtb", "--page-mode"):
        check(word in p.stdout, word)
    check(ok(tinyvmi("--version")).stdout.startswith("tinyvmi 0."))
    p = tinyvmi()
    check(p.returncode == 2 and "usage" in p.stderr and p.stdout == "", p)


if __name__ == "__main__":
    main(globals())
