#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_elf, fuzz_lime, fuzz_xencore and
fuzz_detect (small, handcrafted dumps).  Run from the repository root."""
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

def xencore(pv, frames, nvcpus=1):
    """An xl dump-core file: sections .shstrtab, .note.Xen, .xen_prstatus,
    .xen_shared_info, .xen_pages, .xen_p2m (pv) or .xen_pfn; page i is
    frame frames[i] (None: an entry Xen could not map, ~0)."""
    inval = (1 << 64) - 1
    names = [".shstrtab", ".note.Xen", ".xen_prstatus", ".xen_shared_info",
             ".xen_pages", ".xen_p2m" if pv else ".xen_pfn"]
    strtab, name_at = b"\0", []
    for n in names:
        name_at.append(len(strtab))
        strtab += n.encode() + b"\0"
    hdr = struct.pack("<QQQQ", 0xF00FEBED if pv else 0xF00FEBEE, nvcpus,
                      len(frames), 4096)
    notes = (note("Xen", 0x2000000, b"") + note("Xen", 0x2000001, hdr) +
             note("Xen", 0x2000002, struct.pack("<QQ", 4, 17) + bytes(48)) +
             note("Xen", 0x2000003, struct.pack("<Q", 1)))
    ctx = bytearray(5168)
    struct.pack_into("<Q", ctx, 648, 0xffffffff81000000)    # rip
    struct.pack_into("<Q", ctx, 4984, 0x80050033)           # cr0
    struct.pack_into("<Q", ctx, 4984 + 24, 0x1000)          # cr3
    struct.pack_into("<Q", ctx, 4984 + 32, 0x2660)          # cr4
    pages = b"".join(bytes([i + 1]) * 4096 for i in range(len(frames)))
    table = b""
    for i, fr in enumerate(frames):
        fr = inval if fr is None else fr
        table += struct.pack("<QQ", inval if fr == inval else i, fr) if pv \
            else struct.pack("<Q", fr)
    body = [(7, notes), (1, bytes(ctx) * nvcpus), (1, bytes(64)),
            (1, pages), (1, table)]
    off = 64 + 64 * 7
    shdrs = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    data = b""
    offsets = []
    for typ, blob in body:
        offsets.append(off + len(data))
        data += blob
    strtab_off = off + len(data)
    shdrs += struct.pack("<IIQQQQIIQQ", name_at[0], 3, 0, 0, strtab_off,
                         len(strtab), 0, 0, 1, 0)
    for i, (typ, blob) in enumerate(body):
        shdrs += struct.pack("<IIQQQQIIQQ", name_at[i + 1], typ, 0, 0,
                             offsets[i], len(blob), 0, 0, 8, 0)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 0, 64, 0, 64,
                               56, 0, 64, 7, 1)
    return ehdr + shdrs + data + strtab

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
seeds["xencore"] = {
    "pv_p2m": xencore(True, [0x100, 0x101, None, 0x50]),
    "hvm_pfn": xencore(False, [0, 1, 0xfeff0], nvcpus=2),
}
seeds["detect"] = {
    "elf": seeds["elf"]["x86_64_2cpu"],
    "lime": seeds["lime"]["two_ranges"],
    "raw": page[:64],
    "kdump": b"KDUMP   " + b"\0" * 56,
    "windows": b"PAGEDU64" + b"\0" * 56,
    "xencore": seeds["xencore"]["pv_p2m"],
}

for target, files in seeds.items():
    d = os.path.join("fuzz", "corpus", "fuzz_" + target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
