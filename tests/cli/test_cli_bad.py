"""The tinyvmi command on bad input, one test per kind: each must exit
non-zero with the documented code, say on stderr what is wrong
("tinyvmi: COMMAND: ..."), and never crash or hang.  Dumps are built with
test_cli.py's builders."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from pyt import check, main, tinyvmi  # noqa: E402
from test_cli import (MIB, P, RW, TMP, Memory, PageTables,  # noqa: E402
                      agree, cpu_notes, elf_core, fails, kernel_image, lime,
                      paging_opts, prstatus, qemu_cpu_state, write)

# ---- The target cannot be opened (exit 3) ------------------------------------


def test_bad_empty_file():
    img = write("empty", b"")
    for cmd in ("info", "dump"):
        args = [os.path.join(TMP, "never.img")] if cmd == "dump" else []
        fails(tinyvmi(cmd, img, *args), 3, cmd, "empty")
    check(not os.path.exists(os.path.join(TMP, "never.img")))


def test_bad_directory():
    fails(tinyvmi("info", TMP), 3, "info", "directory")


def test_bad_missing_file():
    p = fails(tinyvmi("read", os.path.join(TMP, "no-such.dump"), "0", "8",
                      "--pa"), 3, "read", "no-such.dump",
              "No such file or directory")
    check(p.stdout == "", p.stdout)


def test_bad_xen_outside_dom0():
    """Off Xen (no /dev/xen/privcmd here): a Xen target says what is missing,
    whether Xen's libraries are installed (they are loaded at run time) or not."""
    check(not os.path.exists("/dev/xen/privcmd"), "this host runs under Xen")
    for target in ("xen:tvpv", "xen:7"):
        p = fails(tinyvmi("ps", target), 3, "ps", target)
        check("cannot open Xen's control interface" in p.stderr or
              "cannot be loaded" in p.stderr, p.stderr)


def test_bad_xen_domain_ids():
    for target, why in (("xen:99999", "not a Xen domain id"),
                        ("xen:", "needs a domain")):
        fails(tinyvmi("info", target), 3, "info", why)


def test_bad_truncated_elf_header():
    fails(tinyvmi("info", write("trunc.elf", b"\x7fELF\x02\x01\x01" +
                                bytes(20))), 3, "info", "ELF", "header")
    fails(tinyvmi("info", write("tiny.elf", b"\x7fELF")), 3, "info", "ELF")


def test_bad_elf_not_a_core():
    data = bytearray(elf_core([(0, bytes(4096))]))
    struct.pack_into("<H", data, 16, 2)  # ET_EXEC
    fails(tinyvmi("info", write("exec.elf", data)), 3, "info", "ET_CORE")


def test_bad_corrupt_elf_program_headers():
    loads = [(0, bytes(4096))]
    fails(tinyvmi("info", write("phent.elf", elf_core(loads, phentsize=13))),
          3, "info", "e_phentsize")
    fails(tinyvmi("info", write("phoff.elf", elf_core(loads, phoff=1 << 40))),
          3, "info", "program headers", "past end")
    fails(tinyvmi("info", write("phnum.elf", elf_core(loads, phnum=60000))),
          3, "info", "program headers")
    fails(tinyvmi("info", write("phnone.elf", elf_core(loads, phnum=0))), 3,
          "info", "no program headers")


def test_bad_elf_segment_past_end_of_file():
    data = elf_core([(0, bytes(4096))],
                    extra=[(1, 0x100000, 0x100000, 1 << 30, 1 << 30)])
    fails(tinyvmi("info", write("past.elf", data)), 3, "info",
          "program header 2", "past end of file")


def test_bad_elf_overlapping_segments():
    data = elf_core([(0, bytes(8192)), (0x1000, bytes(4096))])
    fails(tinyvmi("info", write("overlap.elf", data)), 3, "info", "overlap")


def test_bad_truncated_lime_header():
    fails(tinyvmi("info", write("trunc.lime", struct.pack(
        "<IIQ", 0x4C694D45, 1, 0))), 3, "info", "LiME", "truncated")


def test_bad_lime_version():
    data = lime([(0, bytes(4096))], version=7)
    fails(tinyvmi("info", write("ver.lime", data)), 3, "info", "LiME",
          "version 7")


def test_bad_lime_end_below_start():
    data = struct.pack("<IIQQ8x", 0x4C694D45, 1, 0x2000, 0x1000) + \
        bytes(4096)
    fails(tinyvmi("info", write("back.lime", data)), 3, "info", "LiME",
          "below start")


def test_bad_lime_range_past_end_of_file():
    data = struct.pack("<IIQQ8x", 0x4C694D45, 1, 0, (1 << 30) - 1) + \
        bytes(4096)
    fails(tinyvmi("info", write("short.lime", data)), 3, "info", "LiME",
          "needs")


def test_bad_unsupported_format_named():
    fails(tinyvmi("info", write("k.dump", b"KDUMP   " + bytes(4096))), 3,
          "info", "kdump")


# ---- Paging cannot be set up (exit 3) --------------------------------------------


def test_bad_raw_without_paging_options():
    mem, _, f = kernel_image()
    img = write("nopaging.raw", mem.b)
    p = fails(tinyvmi("translate", img, hex(f["text"])), 3, "translate",
              "no vCPU registers", "--page-mode")
    check(p.stdout == "", p.stdout)
    fails(tinyvmi("read", img, hex(f["text"]), "8"), 3, "read",
          "no vCPU registers")


def test_bad_raw_with_half_the_paging_options():
    mem, pt, f = kernel_image()
    img = write("half.raw", mem.b)
    fails(tinyvmi("translate", img, hex(f["text"]), "--page-mode", "ia32e"),
          3, "translate", "--dtb", "no vCPU registers")
    fails(tinyvmi("translate", img, hex(f["text"]), "--dtb", hex(pt.root)),
          3, "translate", "--page-mode")


def test_bad_elf_paging_disabled():
    mem, pt, f = kernel_image()
    notes = prstatus(1, 0) + qemu_cpu_state(pt.root, 0, cr0=0x11)
    img = write("nopg.elf", elf_core([(0, bytes(mem.b))], notes))
    p = fails(tinyvmi("translate", img, hex(f["text"])), 3, "translate",
              "paging disabled")
    check(p.stdout == "", p.stdout)
    p = tinyvmi("info", img, "--json")
    check(p.returncode == 0, p.stderr)
    j = json.loads(p.stdout)
    check(j["page_mode"] is None and "paging disabled" in
          j["page_mode_error"], j)


# ---- The operation fails (exit 1) ----------------------------------------------------


def test_bad_unmapped_address():
    """Unmapped at each level: the entries walked, then the reason."""
    mem, pt, f = kernel_image()
    img = write("unmapped.raw", mem.b)
    for va, level in ((0xffff800000000000, "PML4E"),
                      (f["dmap"] + (1 << 30), "PDPTE"),
                      (f["text"] + (8 << 20), "PDE"),
                      (f["text"] + 0x5000, "PTE")):
        j = agree(img, pt, va, paging_opts(pt))
        check(j["entries"][-1]["level"] == level, j)
        check(j["entries"][-1]["flags"] == "not present", j)
        p = fails(tinyvmi("translate", img, hex(va), *paging_opts(pt)), 1,
                  "translate", "not mapped", f"{level} 0x0")
        check(p.stdout.startswith(f"{va:#x} -> not mapped"), p.stdout)
        check(p.stdout.splitlines()[-1].startswith(level), p.stdout)
    p = fails(tinyvmi("read", img, hex(f["text"] + 0x5000), "8",
                      *paging_opts(pt)), 1, "read", "not mapped",
              "read 0 of 8")
    check(p.stdout == "", p.stdout)


def test_bad_read_runs_into_unmapped_page():
    mem, pt, f = kernel_image()
    img = write("partial.raw", mem.b)
    va = f["text"] + 0x2ff0  # 16 mapped bytes, then a hole
    p = fails(tinyvmi("read", img, hex(va), "64", *paging_opts(pt)), 1,
              "read", "read 16 of 64", "not mapped")
    check(p.stdout.startswith(f"{va:016x}") and
          len(p.stdout.splitlines()) == 1, p.stdout)
    p = fails(tinyvmi("read", img, hex(va), "64", "--raw", *paging_opts(pt),
                      text=False), 1, "read", "read 16 of 64")
    check(p.stdout == bytes(mem.b[0x201ff0:0x202000]), p.stdout)


def test_bad_noncanonical_address():
    mem, pt, _ = kernel_image()
    img = write("noncanon.raw", mem.b)
    for va in (0x0000800000000000, 0xfff0000000000000):
        p = fails(tinyvmi("translate", img, hex(va), "--json",
                          *paging_opts(pt)), 1, "translate", "non-canonical")
        j = json.loads(p.stdout)
        check(j["pa"] is None and j["entries"] == [] and
              "non-canonical" in j["error"], j)
        fails(tinyvmi("read", img, hex(va), "8", *paging_opts(pt)), 1,
              "read", "non-canonical")


def test_bad_va_beyond_32_bits():
    mem, pt, _ = kernel_image("pae")
    img = write("pae-big.raw", mem.b)
    fails(tinyvmi("translate", img, "0x100000000", *paging_opts(pt)), 1,
          "translate", "4 GiB")


def test_bad_self_referencing_page_tables():
    """PML4[0] points back at the PML4: every level reads the same table,
    the walk stops after four levels at the PML4 page itself (a defined
    answer, as Windows' self-map gives); PML4[1] pointing past RAM is a
    clean error, and a read through the loop terminates."""
    mem = Memory(MIB)
    pt = PageTables(mem)
    mem.put(pt.root, pt.root | P | RW)
    mem.put(pt.root + 8, (1 << 40) | P | RW)
    img = write("loop.raw", mem.b)
    opts = paging_opts(pt)
    j = agree(img, pt, 0x10, opts)
    check(j["pa"] == hex(pt.root + 0x10) and len(j["entries"]) == 4, j)
    check({e["location"] for e in j["entries"]} == {hex(pt.root)}, j)
    j = agree(img, pt, 1 << 39, opts)
    check([e["level"] for e in j["entries"]] == ["PML4E"], j)
    fails(tinyvmi("translate", img, hex(1 << 39), *opts, timeout=10), 1,
          "translate", "PDPTE", "not backed")
    # VA 0x1000 walks to PML4[1] as its PTE: past RAM.
    p = fails(tinyvmi("read", img, "0", "0x2000", "--raw", *opts, text=False,
                      timeout=10), 1, "read", "read 4096 of 8192")
    check(p.stdout[:8] == struct.pack("<Q", pt.root | 3) and
          len(p.stdout) == 0x1000, p.stdout[:8])


def test_bad_large_page_loop():
    """A 1 GiB PDPTE whose address bits point at the tables: a page, not a
    table; the answer is defined and reads stay inside RAM checks."""
    mem = Memory(MIB)
    pt = PageTables(mem)
    pt.map(0x40000000, 0, 1 << 30)
    img = write("bigloop.raw", mem.b)
    j = agree(img, pt, 0x40000000 + pt.root, paging_opts(pt))
    check(j["pa"] == hex(pt.root) and j["page_size"] == 1 << 30, j)
    fails(tinyvmi("read", img, hex(0x40000000 + MIB - 4), "8",
                  *paging_opts(pt)), 1, "read", "read 4 of 8", "not backed")


def test_bad_physical_read_past_end_of_memory():
    mem, _, _ = kernel_image()
    img = write("end.raw", mem.b)
    end = len(mem.b)
    p = fails(tinyvmi("read", img, hex(end - 8), "16", "--pa"), 1, "read",
              "read 8 of 16", "not backed")
    check(p.stdout.startswith(f"{end - 8:016x}") and
          len(p.stdout.splitlines()) == 1, p.stdout)
    p = fails(tinyvmi("read", img, hex(end), "1", "--pa"), 1, "read",
              "read 0 of 1")
    check(p.stdout == "", p.stdout)
    fails(tinyvmi("read", img, "0xfffffffffffffff0", "16", "--pa"), 1,
          "read", "not backed")


def test_bad_physical_read_in_elf_hole():
    mem, pt, f = kernel_image()
    loads = [(0, bytes(mem.b[:MIB])), (2 * MIB, bytes(mem.b[2 * MIB:]))]
    img = write("hole.elf", elf_core(loads, cpu_notes([(pt.root, 0, 0x20)])))
    p = fails(tinyvmi("read", img, hex(MIB - 4), "8", "--pa", "--raw",
                      text=False), 1, "read", "read 4 of 8", "not backed")
    check(p.stdout == bytes(4), p.stdout)


def test_bad_dump_output_directory_missing():
    mem, _, _ = kernel_image()
    img = write("nodir.raw", mem.b)
    out = os.path.join(TMP, "no", "such", "dir", "x.img")
    fails(tinyvmi("dump", img, out), 1, "dump", "No such file or directory")


def test_bad_dump_output_not_a_regular_file():
    mem, _, _ = kernel_image()
    img = write("devnull.raw", mem.b)
    fails(tinyvmi("dump", img, "/dev/null", "--force"), 1, "dump",
          "not a regular file")
    fails(tinyvmi("dump", img, TMP, "--force"), 1, "dump",
          "not a regular file")


def test_bad_output_write_error():
    """stdout is a full device: the error is reported, exit 1."""
    mem, _, _ = kernel_image()
    img = write("full.raw", mem.b)
    with open("/dev/full", "w") as full:
        p = tinyvmi("read", img, "0", "0x10000", "--pa", stdout=full,
                    capture_output=False, stderr=-1)
    fails(p, 1, "read", "writing output", "No space left")


# ---- Usage errors (exit 2) -----------------------------------------------------------


def test_bad_numbers():
    mem, pt, _ = kernel_image()
    img = write("num.raw", mem.b)
    for bad in ("12zz", "0x", "", "-1", "+1", " 12", "12 ", "1e3", "0x1g",
                "18446744073709551616", "0x10000000000000000", "0b101",
                "١٢"):
        p = fails(tinyvmi("translate", img, bad, *paging_opts(pt)), 2,
                  "translate", "VA", "not a number")
        check(p.stdout == "", p.stdout)
        fails(tinyvmi("read", img, "0", bad, "--pa"), 2, "read", "LEN",
              "not a number")
        fails(tinyvmi("read", img, bad, "8", "--pa"), 2, "read", "ADDR")
        fails(tinyvmi("translate", img, "0", "--page-mode", "ia32e",
                      "--dtb", bad), 2, "translate", "--dtb")
    # The largest numbers are fine, and checked before the target opens.
    fails(tinyvmi("translate", os.path.join(TMP, "absent"),
                  "18446744073709551615"), 3, "translate")
    fails(tinyvmi("translate", os.path.join(TMP, "absent"), "12zz"), 2,
          "translate")


def test_bad_options():
    mem, _, _ = kernel_image()
    img = write("opt.raw", mem.b)
    cases = [
        (["read", img, "0", "8", "--bogus"], "read", "unknown option --bogus"),
        (["read", img, "0", "8", "-x"], "read", "unknown option -x"),
        (["translate", img, "0", "--pa"], "translate", "does not apply"),
        (["info", img, "--raw"], "info", "does not apply"),
        (["dump", img, "x.img", "--json"], "dump", "does not apply"),
        (["read", img, "0", "8", "--dtb"], "read", "needs a value"),
        (["read", img, "0", "8", "--pa", "--pa"], "read", "twice"),
        (["read", img, "0", "8", "--pa=1"], "read", "takes no value"),
        (["read", img, "0", "8", "--pa", "--dtb", "0x1000"], "read",
         "exclude"),
        (["read", img, "0", "8", "--page-mode", "sparc"], "read",
         "unknown mode 'sparc'"),
        (["read", img, "0", "0", "--pa"], "read", "LEN must be at least 1"),
        (["read", img, "0xffffffffffffff00", "0x200", "--pa"], "read",
         "past the end of the address space"),
        (["read", img, "0"], "read", "missing LEN"),
        (["translate", img], "translate", "missing VA"),
        (["info"], "info", "missing TARGET"),
        (["dump", img], "dump", "missing OUT"),
        (["info", img, "extra"], "info", "unexpected argument 'extra'"),
        (["translate", img, "1", "2"], "translate", "unexpected argument"),
    ]
    for args, cmd, words in cases:
        p = fails(tinyvmi(*args), 2, cmd, words)
        check(p.stdout == "", (args, p.stdout))


def test_bad_command():
    for args, words in ((["frobnicate", "x"], "unknown command 'frobnicate'"),
                        (["--frob"], "unknown command '--frob'"),
                        (["help", "frob"], "unknown command 'frob'"),
                        (["help", "read", "x"], "too many")):
        p = fails(tinyvmi(*args), 2, None, words)
        check(p.stdout == "", p.stdout)


if __name__ == "__main__":
    main(globals())
