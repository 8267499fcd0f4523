#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_elf, fuzz_lime and fuzz_detect (small,
handcrafted dumps).  Run from the repository root."""
import os
import struct

def note(owner, ntype, desc):
    name = owner.encode() + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)

def prstatus64(rip):
    regs = [0] * 27
    regs[16] = rip
    return b"\0" * 112 + struct.pack("<27Q", *regs) + b"\0" * 8

def prstatus32(eip):
    regs = [0] * 17
    regs[12] = eip
    return b"\0" * 72 + struct.pack("<17I", *regs) + b"\0" * 4

def qemu_state(rip, cr3, size=440):
    gpr = [0] * 18
    gpr[16] = rip
    seg = struct.pack("<IIIIQ", 0x10, 0xffffffff, 0xa09b00, 0, 0) * 10
    cr = struct.pack("<5Q", 0x80050033, 0, 0, cr3, 0x3506f0)
    body = struct.pack("<II", 1, size) + struct.pack("<18Q", *gpr) + seg + cr
    return (body + struct.pack("<Q", 0x1234))[:size]

def elf(cls, machine, segs):
    """segs: list of (type, paddr, data, memsz or None)."""
    ehsize, phentsize = (52, 32) if cls == 1 else (64, 56)
    off = ehsize + phentsize * len(segs)
    phdrs, blobs = b"", b""
    for ptype, paddr, data, memsz in segs:
        memsz = len(data) if memsz is None else memsz
        if cls == 1:
            phdrs += struct.pack("<8I", ptype, off, paddr, paddr, len(data),
                                 memsz, 4, 0)
        else:
            phdrs += struct.pack("<IIQQQQQQ", ptype, 4, off, paddr, paddr,
                                 len(data), memsz, 0)
        off += len(data)
        blobs += data
    ident = b"\x7fELF" + bytes([cls, 1, 1]) + b"\0" * 9
    if cls == 1:
        hdr = ident + struct.pack("<HHIIIIIHHHHHH", 4, machine, 1, 0, ehsize,
                                  0, 0, ehsize, phentsize, len(segs), 0, 0, 0)
    else:
        hdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, ehsize,
                                  0, 0, ehsize, phentsize, len(segs), 0, 0, 0)
    return hdr + phdrs + blobs

def lime(ranges):
    out = b""
    for start, data in ranges:
        out += struct.pack("<IIQQQ", 0x4C694D45, 1, start,
                           start + len(data) - 1, 0) + data
    return out

page = bytes(range(256)) * 2
notes64 = b"".join(note("CORE", 1, prstatus64(0xffffffff81000000 + i))
                   for i in range(2))
notes64 += b"".join(note("QEMU", 0, qemu_state(0xffffffff81000000 + i,
                                                0x1000 * (i + 1)))
                    for i in range(2))
notes32 = note("CORE", 1, prstatus32(0xc1000000)) + \
    note("QEMU", 0, qemu_state(0xc1000000, 0x1c0000, 432))

seeds = {
    "elf": {
        "x86_64_2cpu": elf(2, 62, [(4, 0, notes64, None),
                                   (1, 0x100000, page, None),
                                   (1, 0, page, 0x1000)]),
        "i386_elf32": elf(1, 3, [(4, 0, notes32, None), (1, 0, page, None)]),
        "i386_elf64": elf(2, 3, [(4, 0, notes32, None), (1, 0, page, None)]),
    },
    "lime": {
        "two_ranges": lime([(0, page), (0x100000, page[:64])]),
        "one_range": lime([(0x1000, page[:16])]),
    },
}
seeds["detect"] = {
    "elf": seeds["elf"]["x86_64_2cpu"],
    "lime": seeds["lime"]["two_ranges"],
    "raw": page[:64],
    "kdump": b"KDUMP   " + b"\0" * 56,
    "windows": b"PAGEDU64" + b"\0" * 56,
}

for target, files in seeds.items():
    d = os.path.join("fuzz", "corpus", "fuzz_" + target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
