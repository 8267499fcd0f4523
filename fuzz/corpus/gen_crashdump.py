#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_crashdump: small synthetic Windows crash
dumps (full 32/64-bit, bitmap, triage) and the first 12 KiB of the real
triage dump when it is there.  Run from the repository root."""
import os
import struct

OUT = "fuzz/corpus/fuzz_crashdump"


def put(b, off, fmt, *v):
    struct.pack_into("<" + fmt, b, off, *v)


def hdr64(dump_type):
    b = bytearray(b"PAGE" * 0x800)
    b[0:8] = b"PAGEDU64"
    put(b, 0x08, "II", 0xf, 19041)
    put(b, 0x10, "Q", 0x1ad000)
    put(b, 0x30, "II", 0x8664, 1)
    put(b, 0x348 + 0x30, "I", 0x10001f)
    put(b, 0x348 + 0xf8, "Q", 0xfffff80012345678)
    put(b, 0xf98, "I", dump_type)
    return b


def page(tag):
    return bytes((tag * 31 + i * 7) & 0xff for i in range(0x1000))


def full64():
    b = hdr64(1)
    put(b, 0x88, "IIQ", 2, 0, 2)
    put(b, 0x98, "QQQQ", 0, 1, 0x10, 1)
    return bytes(b) + page(0) + page(1)


def full32():
    b = bytearray(b"PAGE" * 0x400)
    b[0:8] = b"PAGEDUMP"
    put(b, 0x10, "I", 0x39000)
    put(b, 0x20, "I", 0x14c)
    put(b, 0x64, "IIII", 1, 1, 0x100, 1)
    put(b, 0x320, "I", 0x1001f)
    put(b, 0x320 + 0xb8, "I", 0x80401234)
    put(b, 0xf88, "I", 1)
    return bytes(b) + page(2)


def bitmap64(sig):
    b = hdr64(5) + bytearray(0x40)
    b[0x2000:0x2008] = sig + b"DUMP"
    put(b, 0x2020, "QQQ", 0x2040, 2, 16)
    put(b, 0x2038, "B", 0x22)
    return bytes(b) + page(3) + page(4)


def triage64():
    b = hdr64(4) + bytearray(0x300)
    put(b, 0x80, "Q", 0xfffff80000400000)
    put(b, 0x2020, "I", 0x2100)
    put(b, 0x2070, "IIII", 0x2200, 0x20, 0x2280, 2)
    put(b, 0x2280, "QII", 0xffff800000001000, 0x2100, 0x40)
    put(b, 0x2290, "QII", 0xffff800000001040, 0x22a0, 0x10)
    b[0x2210:0x2214] = b"KDBG"
    return bytes(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {"full64": full64(), "full32": full32(),
             "bitmap_kernel": bitmap64(b"SDMP"),
             "bitmap_complete": bitmap64(b"FDMP"), "triage": triage64()}
    # Not the real triage dump's bytes: no licence is stated for it, so
    # nothing of it is copied into the tree (the unit tests read it where
    # it lies).
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
