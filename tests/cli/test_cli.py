"""The tinyvmi command on dumps generated here: raw images with hand-built
x86-64 page tables, ELF cores laid out as QEMU writes them, LiME files; and
one test per kind of bad input, each expecting a clear error and a non-zero
exit, never a crash or a hang."""
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import check, main, tinyvmi  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tvcli.")
PML4, PDPT, PD, PT = 0x1000, 0x2000, 0x3000, 0x4000
KVA = 0xffffffff81000000
MEM = 4 << 20
BANNER = b"Linux version 9.9.9-test\n\0"


def path(name):
    return os.path.join(TMP, name)


def memory():
    """4 MiB of RAM: KVA -> 0x200000 (4 KiB page), KVA+2M -> 0x200000
    (2 MiB page), and the banner at 0x200000."""
    m = bytearray(MEM)

    def put(pa, v):
        struct.pack_into("<Q", m, pa, v)
    put(PML4 + 511 * 8, PDPT | 3)
    put(PDPT + 510 * 8, PD | 3)
    put(PD + 8 * 8, PT | 3)
    put(PT, 0x200000 | 3)
    put(PD + 9 * 8, 0x200000 | 0x83)
    m[0x200000:0x200000 + len(BANNER)] = BANNER
    return m


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)
    return path(name)


def qemu_note(cr3, rip):
    """QEMU's CPU-state note: version, size, 18 GPRs + rip + rflags (here
    16 GPRs, rip, rflags), 10 segments, cr[5], kernel_gs_base."""
    regs = [0] * 16 + [rip, 2]
    segs = b"".join(struct.pack("<IIIIQ", 0x10, 0xffffffff, 0, 0, 0)
                    for _ in range(10))
    cr = struct.pack("<5Q", 0x80050033, 0, 0, cr3, 0x3506f0)
    desc = struct.pack("<II", 1, 0) + struct.pack("<18Q", *regs) + segs + cr \
        + struct.pack("<Q", 0)
    desc = desc[:4] + struct.pack("<I", len(desc)) + desc[8:]
    return note(b"QEMU", 0, desc)


def note(name, ntype, desc):
    name += b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + \
        pad(desc)


def elf_core(loads, notes=b"", machine=62, phentsize=56, phoff=None,
             extra_phdr=None):
    """An ELF64 ET_CORE: a PT_NOTE and PT_LOADs of (paddr, bytes)."""
    phdrs = [(4, len(notes), notes)] + [(1, pa, data) for pa, data in loads]
    if extra_phdr:
        phdrs.append(extra_phdr)
    nph = len(phdrs)
    hdr_end = 64 + nph * 56
    off = hdr_end
    table, blobs = b"", b""
    for ptype, a, data in phdrs:
        if ptype == 4:
            table += struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(data),
                                 len(data), 1)
        else:
            size = len(data) if isinstance(data, (bytes, bytearray)) else data
            body = data if isinstance(data, (bytes, bytearray)) else b""
            table += struct.pack("<IIQQQQQQ", 1, 7, off, a, a, size, size,
                                 4096)
            data = body
        blobs += data
        off += len(data)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0,
                             64 if phoff is None else phoff, 0, 0, 64,
                             phentsize, nph, 0, 0, 0)
    return eh + table + blobs


def lime(ranges):
    out = b""
    for start, data in ranges:
        out += struct.pack("<IIQQ8x", 0x4C694D45, 1, start,
                           start + len(data) - 1) + data
    return out


def fails(p, code, *words):
    """A clean failure: the exit code wanted, the words in the message, and
    no sign of a crash."""
    text = p.stdout + p.stderr
    check(p.returncode == code, f"exit {p.returncode}, wanted {code}: {text}")
    for w in words:
        check(w in p.stderr, f"{w!r} not in: {p.stderr}")
    check("Sanitizer" not in text and "Segmentation" not in text, text)


RAW = ["--page-mode", "ia32e", "--dtb", hex(PML4)]

# ---- Happy paths --------------------------------------------------------------


def test_translate_raw_4k_and_2m():
    img = write("mem.raw", memory())
    p = tinyvmi("translate", img, hex(KVA + 0x123), "--json", *RAW)
    check(p.returncode == 0, p.stderr)
    j = json.loads(p.stdout)
    check(j["pa"] == "0x200123" and j["page_size"] == 4096, j)
    check([e["level"] for e in j["entries"]] ==
          ["PML4E", "PDPTE", "PDE", "PTE"], j)
    check(j["entries"][0]["location"] == hex(PML4 + 511 * 8), j)
    p = tinyvmi("translate", img, hex(KVA + 0x212345), "--json", *RAW)
    j = json.loads(p.stdout)
    check(j["pa"] == "0x212345" and j["page_size"] == 2 << 20, j)
    check(len(j["entries"]) == 3, j)


def test_read_raw_bytes_and_hexdump():
    img = write("mem.raw", memory())
    p = tinyvmi("read", img, hex(KVA), str(len(BANNER)), "--raw", *RAW,
                text=False)
    check(p.returncode == 0 and p.stdout == BANNER, p)
    p = tinyvmi("read", img, "0x200000", "16", "--pa")
    check(p.returncode == 0, p.stderr)
    check(p.stdout.startswith("0000000000200000  4c 69 6e 75"), p.stdout)
    check("|Linux version 9." in p.stdout, p.stdout)


def test_elf_registers_paging_and_hole():
    m = memory()
    elf = write("two.elf", elf_core([(0, bytes(m[:0x100000])),
                                     (0x200000, bytes(m[0x200000:]))],
                                    qemu_note(PML4, KVA) + qemu_note(PML4, 0)))
    p = tinyvmi("info", elf, "--json")
    check(p.returncode == 0, p.stderr)
    j = json.loads(p.stdout)
    check(j["format"] == "elf" and len(j["vcpus"]) == 2, j)
    check(j["vcpus"][0]["cr3"] == hex(PML4) and
          j["vcpus"][0]["rip"] == hex(KVA), j)
    check(j["page_mode"] == "IA-32e", j)
    check([r["start"] for r in j["ranges"]] == ["0x0", "0x200000"], j)
    # Paging from the dump's own registers: no options needed.
    p = tinyvmi("read", elf, hex(KVA), str(len(BANNER)), "--raw", text=False)
    check(p.returncode == 0 and p.stdout == BANNER, p)
    # The hole between the segments is unmapped, not zeros.
    fails(tinyvmi("read", elf, "0x100000", "8", "--pa"), 1, "not backed")


def test_dump_round_trip_keeps_holes():
    m = memory()
    elf = write("rt.elf", elf_core([(0, bytes(m[:0x100000])),
                                    (0x200000, bytes(m[0x200000:]))]))
    out = path("rt.raw")
    if os.path.exists(out):
        os.unlink(out)
    p = tinyvmi("dump", elf, out)
    check(p.returncode == 0, p.stderr)
    with open(out, "rb") as f:
        img = f.read()
    check(len(img) == MEM, len(img))
    check(img[:0x100000] == m[:0x100000] and img[0x200000:] == m[0x200000:])
    check(img[0x100000:0x200000] == bytes(0x100000))
    # Not overwritten without --force.
    fails(tinyvmi("dump", elf, out), 2, "--force")
    check(tinyvmi("dump", elf, out, "--force").returncode == 0)


def test_lime_two_ranges():
    m = memory()
    img = write("m.lime", lime([(0, bytes(m[:0x10000])),
                                (0x200000, bytes(m[0x200000:0x210000]))]))
    p = tinyvmi("info", img, "--json")
    j = json.loads(p.stdout)
    check(j["format"] == "lime" and len(j["ranges"]) == 2, j)
    p = tinyvmi("read", img, "0x200000", "5", "--pa", "--raw", text=False)
    check(p.stdout == b"Linux", p)


def test_help_and_version():
    for args in (["--help"], ["info", "--help"], ["translate", "-h"]):
        p = tinyvmi(*args)
        check(p.returncode == 0 and "usage" in p.stdout, p)
        check("Exit codes" in p.stdout, p.stdout)
    check(tinyvmi("--version").stdout.startswith("tinyvmi "))


# ---- Bad input: one test each ---------------------------------------------------


def test_bad_empty_file():
    fails(tinyvmi("info", write("empty", b"")), 3, "empty")


def test_bad_directory():
    fails(tinyvmi("info", TMP), 3, "directory")


def test_bad_missing_file():
    fails(tinyvmi("info", path("no-such-dump")), 3, "No such file")


def test_bad_truncated_elf_header():
    fails(tinyvmi("info", write("trunc.elf", b"\x7fELF\x02\x01\x01" +
                                b"\0" * 20)), 3, "ELF")


def test_bad_corrupt_elf_phdrs():
    data = elf_core([(0, b"\0" * 4096)], phentsize=13)
    fails(tinyvmi("info", write("phent.elf", data)), 3, "ELF")
    data = elf_core([(0, b"\0" * 4096)], phoff=1 << 40)
    fails(tinyvmi("info", write("phoff.elf", data)), 3, "ELF")


def test_bad_segment_past_end():
    data = elf_core([(0, b"\0" * 4096)], extra_phdr=(1, 0x100000, 1 << 30))
    fails(tinyvmi("info", write("past.elf", data)), 3, "past end of file")


def test_bad_truncated_lime_header():
    fails(tinyvmi("info", write("trunc.lime", struct.pack(
        "<IIQ", 0x4C694D45, 1, 0))), 3, "LiME")


def test_bad_corrupt_lime():
    bad_version = struct.pack("<IIQQ8x", 0x4C694D45, 7, 0, 4095) + \
        b"\0" * 4096
    fails(tinyvmi("info", write("v.lime", bad_version)), 3, "version")
    backwards = struct.pack("<IIQQ8x", 0x4C694D45, 1, 0x2000, 0x1000)
    fails(tinyvmi("info", write("b.lime", backwards)), 3, "LiME")


def test_bad_unmapped_address():
    img = write("mem.raw", memory())
    fails(tinyvmi("translate", img, hex(KVA + (4 << 20)), *RAW), 1,
          "not present")
    fails(tinyvmi("read", img, hex(KVA + (4 << 20)), "8", *RAW), 1,
          "not mapped")


def test_bad_noncanonical_address():
    img = write("mem.raw", memory())
    fails(tinyvmi("translate", img, "0x0000800000000000", *RAW), 1,
          "non-canonical")


def test_bad_self_referencing_tables():
    """PML4[0] points at the PML4: the walk ends (at the PML4 page itself)
    and PML4[1] pointing past RAM is a clean error."""
    m = bytearray(1 << 20)
    struct.pack_into("<Q", m, PML4, PML4 | 3)
    struct.pack_into("<Q", m, PML4 + 8, (1 << 40) | 3)
    img = write("loop.raw", m)
    p = tinyvmi("translate", img, "0x10", "--json", *RAW, timeout=10)
    check(p.returncode == 0, p.stderr)
    check(json.loads(p.stdout)["pa"] == hex(PML4 + 0x10), p.stdout)
    fails(tinyvmi("translate", img, hex(1 << 39), *RAW, timeout=10), 1,
          "not backed")


def test_bad_read_past_memory():
    img = write("mem.raw", memory())
    p = tinyvmi("read", img, hex(MEM - 8), "16", "--pa")
    fails(p, 1, "read 8 of 16")
    check(p.stdout.startswith(f"{MEM - 8:016x}"), p.stdout)


def test_bad_usage():
    img = write("mem.raw", memory())
    fails(tinyvmi("translate", img, "12zz"), 2, "number")
    fails(tinyvmi("translate", img, "0x1", "--pa"), 2, "does not apply")
    fails(tinyvmi("read", img, "0", "8", "--bogus"), 2, "--bogus")
    fails(tinyvmi("frobnicate", img), 2, "unknown command")
    fails(tinyvmi("read", img, "0", "0", "--pa"), 2, "LEN")
    fails(tinyvmi("info"), 2, "usage")
    fails(tinyvmi("read", img, "0", "8", "--page-mode", "sparc"), 2,
          "--page-mode")


def test_bad_raw_without_paging():
    img = write("mem.raw", memory())
    fails(tinyvmi("translate", img, hex(KVA)), 3, "no vCPU registers")


if __name__ == "__main__":
    main(globals())
