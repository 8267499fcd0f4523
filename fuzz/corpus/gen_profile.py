#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_btf and fuzz_kallsyms: a small BTF blob
(struct with bitfields, anonymous union, typedefs, enums) and small kallsyms
tables in both layouts (Linux <= 6.3 and 6.4+), from the formats'
descriptions."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def btf():
    strs = bytearray(b"\0")
    types = bytearray()

    def s(name):
        if not name:
            return 0
        off = len(strs)
        strs.extend(name.encode() + b"\0")
        return off

    def ty(name, kind, vlen, kflag, st, extra=b""):
        types.extend(struct.pack("<III", s(name),
                                 vlen | kind << 24 | (kflag << 31), st))
        types.extend(extra)

    def mem(name, t, off):
        return struct.pack("<III", s(name), t, off)

    ty("int", 1, 0, 0, 4, struct.pack("<I", 1 << 24 | 32))          # 1
    ty("long unsigned int", 1, 0, 0, 8, struct.pack("<I", 64))       # 2
    ty("u64", 8, 0, 0, 2)                                            # 3
    ty("", 2, 0, 0, 5)                                               # 4
    ty("node", 4, 4, 1, 24, mem("next", 4, 0) + mem("val", 3, 64) +
       mem("flags", 1, 3 << 24 | 128) + mem("", 6, 160))             # 5
    ty("", 5, 2, 0, 4, mem("a", 1, 0) + mem("b", 1, 0))              # 6
    ty("color", 6, 2, 1, 4, struct.pack("<IiIi", s("RED"), 0, s("BLUE"),
                                          -1))                       # 7
    ty("big", 19, 1, 0, 8, struct.pack("<III", s("HUGE"), 0x23456789,
                                       1))                           # 8
    ty("", 3, 0, 0, 0, struct.pack("<III", 5, 1, 4))                 # 9
    hdr = struct.pack("<HBBIIIII", 0xeb9f, 1, 0, 24, 0, len(types),
                      len(types), len(strs))
    return hdr + bytes(types) + bytes(strs)


def kallsyms(newer, percpu, nsym=600):
    base = 0xffffffff81000000
    tab, idx = bytearray(), []
    for c in range(256):
        idx.append(len(tab))
        tab.extend(bytes([c]) if 32 < c < 127 else b"xx")
        tab.append(0)
    names, markers, offs = bytearray(), [], []
    for i in range(nsym):
        name = ("T" if i % 3 else "D") + f"sym_{i}"
        addr = i * 8 if percpu and i < 5 else base + 16 * i
        if i % 256 == 0:
            markers.append(len(names))
        names.append(len(name))
        names.extend(name.encode())
        if percpu:
            offs.append(addr if addr < base else base - addr - 1)
        else:
            offs.append(addr - base)
    out = bytearray(b"\xa5" * 64)

    def align():
        while len(out) % 8:
            out.append(0)

    def emit_offs():
        align()
        out.extend(struct.pack(f"<{nsym}i", *offs))
        align()
        out.extend(struct.pack("<Q", base))
    if not newer:
        emit_offs()
    align()
    out.extend(struct.pack("<I", nsym))
    align()
    out.extend(names)
    align()
    out.extend(struct.pack(f"<{len(markers)}I", *markers))
    align()
    out.extend(tab)
    align()
    out.extend(struct.pack("<256H", *idx))
    if newer:
        emit_offs()
    out.extend(b"\x5a" * 64)
    return bytes(out)


def main():
    with open(os.path.join(HERE, "fuzz_btf", "sample"), "wb") as f:
        f.write(btf())
    for name, newer, percpu in (("old", False, False),
                                ("old_percpu", False, True),
                                ("new", True, False),
                                ("new_percpu", True, True)):
        with open(os.path.join(HERE, "fuzz_kallsyms", name), "wb") as f:
            f.write(kallsyms(newer, percpu))


if __name__ == "__main__":
    main()
