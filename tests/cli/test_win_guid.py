"""The win-guid example (tools/examples/win-guid.c) from the command line.

On the real Windows 10 19041 x64 triage dump (/work/shared/data): the
kernel at the KDBG's KernBase, header facts read here from the dump file
itself (TRIAGE_DUMP64's data-block array, PE/COFF offsets), the machine the
ISF records, and the documented answer that the dump does not hold the
debug directory.  On synthetic raw memory images: a kernel image with a
CodeView record whose GUID is written from its text form, found by a
physical scan; an image that is not the kernel; bad usage."""
import os
import shutil
import struct
import sys
import tempfile
import atexit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, check, main, run, Skip  # noqa: E402

WIN_GUID = os.path.join(BUILD, "bin", "win-guid")
TRIAGE = "/work/shared/data/windows-10-19041-x64-triage/triage_x64.dmp"
ISF_MACHINE = 34404          # the ISF's metadata.windows.pdb.machine_type
ISF_KDDEBUGGERDATABLOCK = 0xc00b20  # the ISF's symbol offset
TMP = tempfile.mkdtemp(prefix="tvwinguid.")
atexit.register(shutil.rmtree, TMP, True)


def win_guid(*args):
    if not os.path.exists(WIN_GUID):
        raise Skip(f"{WIN_GUID} is not built (make tools)")
    return run([WIN_GUID, *map(str, args)], timeout=120)


def triage_blocks(raw):
    """TRIAGE_DUMP64 at 0x2000: DataBlocksOffset at 0x78, count at 0x7c;
    each TRIAGE_DATA_BLOCK is (Address u64, Offset u32, Size u32)."""
    arr, n = struct.unpack_from("<II", raw, 0x2078)
    return [struct.unpack_from("<QII", raw, arr + 16 * i) for i in range(n)]


def read_va(raw, blocks, va, n):
    for addr, off, size in blocks:
        if addr <= va and va + n <= addr + size:
            return raw[off + va - addr:off + va - addr + n]
    return None


def test_triage_dump():
    with open(TRIAGE, "rb") as fh:  # the dump is expected to be there
        raw = fh.read()
    kdbg_va = struct.unpack_from("<Q", raw, 0x80)[0]  # KdDebuggerDataBlock
    blocks = triage_blocks(raw)
    kern_base = kdbg_va - ISF_KDDEBUGGERDATABLOCK
    hdr = read_va(raw, blocks, kern_base, 0x1000)
    check(hdr is not None and hdr[:2] == b"MZ", "no header page in the dump")
    lf = struct.unpack_from("<I", hdr, 0x3c)[0]
    machine, nsect, stamp = struct.unpack_from("<HHI", hdr, lf + 4)
    size = struct.unpack_from("<I", hdr, lf + 24 + 56)[0]
    dbg_rva = struct.unpack_from("<I", hdr, lf + 24 + 112 + 48)[0]
    check(read_va(raw, blocks, kern_base + dbg_rva, 1) is None,
          "the dump holds the debug directory after all: expect a GUID")
    p = win_guid(TRIAGE)
    out = p.stdout
    check(p.returncode == 2, f"exit {p.returncode}\n{out}{p.stderr}")
    check(f"Windows Kernel found @ 0x{kern_base:x} (virtual address)" in out,
          out)
    check(f"\tMachine: {ISF_MACHINE}.\n" in out, out)
    check(machine == ISF_MACHINE)
    check(f"\tPE GUID: {stamp:08x}{size:x}\n" in out, out)
    check(f"\tTimestamp: {stamp}.\n" in out, out)
    check(f"\t# of sections: {nsect}.\n" in out, out)
    check(f"debug directory (RVA 0x{dbg_rva:x}) is not in the dump" in out,
          out)
    check("Version: 64-bit Windows" in out, out)
    # Section names from the section table, read here.
    sect = lf + 24 + struct.unpack_from("<H", hdr, lf + 20)[0]
    first = hdr[sect:sect + 8].rstrip(b"\0").decode()
    check(f"\tSection 1: {first}\n" in out, out)


GUID_TEXT = "5278AFF8-6C34-1677-D7D7-835C85B7B844"  # the ISF file name's


def guid_struct(text):
    """A GUID's text form as the GUID struct stores it: Data1 u32, Data2
    and Data3 u16 little-endian, then Data4's 8 bytes in order."""
    d1, d2, d3, d4a, d4b = text.split("-")
    return (struct.pack("<IHH", int(d1, 16), int(d2, 16), int(d3, 16)) +
            bytes.fromhex(d4a + d4b))


def pe_image(pdb, export, age=1, size=0x4000):
    """A PE32+ image laid out from the PE/COFF specification."""
    img = bytearray(size)
    img[0:2] = b"MZ"
    struct.pack_into("<I", img, 0x3c, 0x80)
    img[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHI", img, 0x84, 0x8664, 1, 0x12345678)
    struct.pack_into("<HH", img, 0x84 + 16, 240, 0x22)
    opt = 0x98
    struct.pack_into("<H", img, opt, 0x20b)
    struct.pack_into("<HH", img, opt + 40, 10, 0)   # OS version 10.0
    struct.pack_into("<I", img, opt + 56, size)     # SizeOfImage
    struct.pack_into("<I", img, opt + 108, 16)      # NumberOfRvaAndSizes
    dd = opt + 112
    struct.pack_into("<II", img, dd, 0x1200, 40)    # export directory
    struct.pack_into("<I", img, 0x1200 + 12, 0x1300)
    img[0x1300:0x1300 + len(export) + 1] = export + b"\0"
    path = b"d:\\os\\obj\\" + pdb
    struct.pack_into("<II", img, dd + 48, 0x1000, 28)  # debug directory
    struct.pack_into("<IIHHIIII", img, 0x1000, 0, 0, 0, 0, 2,
                     24 + len(path) + 1, 0x1100, 0)
    img[0x1100:0x1104] = b"RSDS"
    img[0x1104:0x1114] = guid_struct(GUID_TEXT)
    struct.pack_into("<I", img, 0x1114, age)
    img[0x1118:0x1118 + len(path) + 1] = path + b"\0"
    sect = opt + 240                                 # one section: .text
    img[sect:sect + 5] = b".text"
    return bytes(img)


def raw_image(name, at, image):
    mem = bytearray(4 << 20)
    mem[at:at + len(image)] = image
    path = os.path.join(TMP, name)
    with open(path, "wb") as fh:
        fh.write(mem)
    return path


def test_raw_kernel_guid():
    path = raw_image("kernel.raw", 0x203000,
                     pe_image(b"ntkrnlmp.pdb", b"ntoskrnl.exe", age=0x1c))
    p = win_guid("name", path)
    out = p.stdout
    check(p.returncode == 0, f"exit {p.returncode}\n{out}{p.stderr}")
    check("Windows Kernel found @ 0x203000\n" in out, out)
    key = GUID_TEXT.replace("-", "")
    check(f"\tPDB GUID: {key.lower()}1c\n" in out, out)
    check(f"\tSymbol key: ntkrnlmp.pdb/{key}1C\n" in out, out)
    check("\tKernel filename: ntkrnlmp.pdb\n" in out, out)
    check("\tMulti-processor without PAE\n" in out, out)
    check("\tPE GUID: 123456784000\n" in out, out)
    check("\tVersion: 64-bit Windows 10 or 11\n" in out, out)
    check("\tSection 1: .text\n" in out, out)
    # the same by the bare path
    q = win_guid(path)
    check(q.returncode == 0 and q.stdout == out, q.stdout + q.stderr)


def test_raw_not_a_kernel():
    path = raw_image("hal.raw", 0x10000, pe_image(b"hal.pdb", b"hal.dll"))
    p = win_guid(path)
    check(p.returncode == 1, f"exit {p.returncode}\n{p.stdout}{p.stderr}")
    check("No Windows kernel found" in p.stdout, p.stdout)


def test_bad_usage():
    for args in ([], ["name"], ["-x"], ["a", "b", "c"]):
        p = win_guid(*args)
        check(p.returncode == 1, f"{args}: exit {p.returncode}")
        check("Usage:" in p.stderr, p.stderr)
    p = win_guid(os.path.join(TMP, "no-such.dump"))
    check(p.returncode == 1 and "Failed to init" in p.stdout,
          p.stdout + p.stderr)


if __name__ == "__main__":
    main(globals())
