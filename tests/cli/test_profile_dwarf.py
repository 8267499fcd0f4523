"""tinyvmi profile from a vmlinux with DWARF (Debian's -dbg packages).

The oracle for 6.1.0-56-amd64 is dwarf2json's ISF of the same vmlinux
(shared data, made by another program from the same DWARF): every type,
field, enum, base type and symbol both have must agree, apart from the
differences listed in DWARF2JSON_QUIRKS, each explained there.  For a
32-bit kernel (686-pae) the oracle is the System.map in the -dbg package
(written by the kernel build, not read by us).

The vmlinux files come from tests/guests/dbgsym.py (streamed from the
Debian archive once, ~100 MB each, then cached in build/lab/dbg).
"""
import collections
import json
import lzma
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "guests"))
from pyt import Skip, check, main, tinyvmi  # noqa: E402

import dbgsym  # noqa: E402

REF = "/work/shared/data/debian-6.1.0-56-amd64/vmlinux-6.1.0-56-amd64.isf.json.xz"
AMD64 = "linux-image-6.1.0-56-amd64-dbg:amd64"
I386 = "linux-image-686-pae-dbg:i386"
TMP = os.environ.get("TMPDIR", "/tmp")

# Where dwarf2json and we differ, and why (checked by hand against the
# DWARF with readelf --debug-dump=info; see the report of issue 5):
DWARF2JSON_QUIRKS = """
- symbols: dwarf2json adds every DWARF variable, function-local ones
  included, as a symbol; those not in the ELF symbol table get address 0
  (e.g. "A", "CHUNKSZ").  We list the ELF symbol table only.  It also gives
  a symbol the type of any variable of that name, a local one included
  (e.g. schedule: _Bool, from a local `bool schedule`); we take types from
  variables at compilation-unit level only, so where dwarf2json's type comes
  from a local variable we say void or the global's type.
- symbols, 6.1.0-56-amd64: 37 names (STACK_VALUE_LOCALS) that dwarf2json
  lists with an address are local variables whose DW_AT_location is
  "DW_OP_addr X; DW_OP_stack_value": X is the variable's value (a pointer
  constant), not where it lives (readelf --debug-dump=info shows it, e.g.
  for bgrt and array_suffixes).  We list DW_OP_addr locations only.
- symbols: of several variables of one name, dwarf2json keeps the last in
  any scope, so a global's type can come from a local of the same name.
  We take types from CU-level variables.  Differences are printed; the
  symbols Linux introspection uses are checked exactly.
- enums: dwarf2json names an enum's base from its size and the signs of
  its constants read as int64; we use DWARF's DW_AT_type (see base_quirk).
- types and symbols defined more than once (struct elf_note_info differs in
  binfmt_elf.c and compat_binfmt_elf.c; __func__.0 is in many files): both
  keep the last one, so these match.
- anonymous structs/unions/enums: both name them unnamed_<hash>, with
  different hashes; they are compared through the fields that use them.
"""
STACK_VALUE_LOCALS = set("""
__UNIQUE_ID___addressable___SCK__preempt_schedule1203
__UNIQUE_ID___addressable___SCK__preempt_schedule1214
__UNIQUE_ID___addressable___SCK__preempt_schedule1216
__UNIQUE_ID___addressable___SCK__preempt_schedule1218
__UNIQUE_ID___addressable___SCK__preempt_schedule1219
__UNIQUE_ID___addressable___SCK__preempt_schedule1221
__UNIQUE_ID___addressable___SCK__preempt_schedule1226
__UNIQUE_ID___addressable___SCK__preempt_schedule1243
__UNIQUE_ID___addressable___SCK__preempt_schedule1260
__UNIQUE_ID___addressable___SCK__preempt_schedule1279
__UNIQUE_ID___addressable___SCK__preempt_schedule1297
__UNIQUE_ID___addressable___SCK__preempt_schedule1340
__UNIQUE_ID_guard234 __UNIQUE_ID_guard330 __UNIQUE_ID_guard331 __head
__tmpq array_suffixes bgrt chain consume_entry devs drv gpio_name iup
notErrorCode offload_head ptr_suffixes reg_name_ptr regset_view rfts
seq_ops st_ops str_spec vrs wd_attr ws_head""".split())

_cache = {}


def vmlinux(pkg):
    try:
        d = dbgsym.fetch(pkg)
    except (dbgsym.DbgError, dbgsym.lab.LabError) as e:
        raise Skip(f"cannot fetch {pkg}: {e}")
    return d


def our_isf(pkg):
    """Our ISF of pkg's vmlinux, remade whenever the tinyvmi binary is newer."""
    if pkg in _cache:
        return _cache[pkg]
    d = vmlinux(pkg)
    out = d / "test.isf.json"
    binary = os.path.join(HERE, "..", "..", "build", "bin", "tinyvmi")
    # parallel tests make it once: the others wait on the release's lock
    with dbgsym.locked(d.parent / f"{d.name}.lock"):
        if not out.exists() or out.stat().st_mtime < os.stat(binary).st_mtime:
            p = tinyvmi("profile", str(d / "vmlinux"), "-o", str(out),
                        "--force", timeout=600)
            check(p.returncode == 0, p.stderr)
    with open(out) as f:
        _cache[pkg] = json.load(f)
    return _cache[pkg]


def ref_isf():
    if "ref" not in _cache:
        if not os.path.exists(REF):
            raise AssertionError(f"{REF} missing (shared data)")
        with lzma.open(REF, "rt") as f:
            _cache["ref"] = json.load(f)
    return _cache["ref"]


class TypeCompare:
    """Compares type descriptors, mapping dwarf2json's unnamed_* names to
    ours by structure (each pair checked once)."""

    def __init__(self, ref, mine):
        self.ref, self.mine = ref, mine
        self.pairs = {}  # ref unnamed name -> our name
        self.bad = []
        self.fields = 0
        self.types = 0
        self.quirks = collections.Counter()

    def desc(self, where, r, m):
        if r.get("kind") != m.get("kind"):
            self.bad.append(f"{where}: kind {r} vs {m}")
            return
        k = r["kind"]
        if k in ("struct", "union", "enum"):
            rn, mn = r["name"], m["name"]
            if rn.startswith("unnamed_") and mn.startswith("unnamed_"):
                self.anon(where, k, rn, mn)
            elif rn != mn:
                self.bad.append(f"{where}: {k} {rn} vs {mn}")
        elif k == "base":
            if r["name"] != m["name"]:
                self.bad.append(f"{where}: base {r['name']} vs {m['name']}")
        elif k == "pointer":
            self.desc(where + "*", r["subtype"], m["subtype"])
        elif k == "array":
            if r["count"] != m["count"]:
                self.bad.append(f"{where}: count {r['count']} vs {m['count']}")
            self.desc(where + "[]", r["subtype"], m["subtype"])
        elif k == "bitfield":
            for key in ("bit_length", "bit_position"):
                if r[key] != m[key]:
                    self.bad.append(f"{where}: {key} {r[key]} vs {m[key]}")
            self.desc(where + ":bits", r["type"], m["type"])
        elif k != "function":
            self.bad.append(f"{where}: unknown kind {k}")

    def anon(self, where, kind, rn, mn):
        if rn in self.pairs:
            if self.pairs[rn] != mn:
                # Two anonymous types of identical content: each side may
                # pick either; compare the content instead.
                pass
            else:
                return
        self.pairs[rn] = mn
        if kind == "enum":
            self.enum(f"{where}({rn})", self.ref["enums"][rn],
                      self.mine["enums"].get(mn))
        else:
            self.record(f"{where}({rn})", self.ref["user_types"][rn],
                        self.mine["user_types"].get(mn))

    def record(self, name, r, m):
        if m is None:
            self.bad.append(f"{name}: missing")
            return
        self.types += 1
        if (r["kind"], r["size"]) != (m["kind"], m["size"]):
            self.bad.append(f"{name}: {r['kind']} size {r['size']} vs "
                            f"{m['kind']} size {m['size']}")
        rf, mf = r["fields"], m["fields"]
        if set(rf) != set(mf):
            self.bad.append(f"{name}: fields {sorted(set(rf) ^ set(mf))[:5]}")
        for fname in rf:
            if fname not in mf:
                continue
            self.fields += 1
            a, b = rf[fname], mf[fname]
            if a["offset"] != b["offset"] or \
                    a.get("anonymous", False) != b.get("anonymous", False):
                self.bad.append(f"{name}.{fname}: offset {a['offset']} vs "
                                f"{b['offset']}")
            self.desc(f"{name}.{fname}", a["type"], b["type"])

    def enum(self, name, r, m):
        if m is None:
            self.bad.append(f"{name}: missing enum")
            return
        if r["size"] != m["size"] or set(r["constants"]) != set(m["constants"]):
            self.bad.append(f"{name}: size/constant names differ")
            return
        mod = 1 << (8 * r["size"]) if r["size"] else 1
        for k, v in r["constants"].items():
            if (v - m["constants"][k]) % mod:
                self.bad.append(f"{name}.{k}: {v} vs {m['constants'][k]}")
        if r["base"] != m["base"] and not self.base_quirk(r, m):
            self.bad.append(f"{name}: base {r['base']} vs {m['base']}")

    def base_quirk(self, r, m):
        """dwarf2json names an enum's base from its size and whether a
        constant is negative as an int64 (8 bytes: "long long unsigned int"
        or "long int"), where we take DWARF's DW_AT_type.  Same size, and a
        different sign only where a constant is >= 2^63 (stored unsigned,
        read as negative by dwarf2json)."""
        bt = self.mine["base_types"]
        rb, mb = bt.get(r["base"]), bt.get(m["base"])
        if not rb or not mb or rb["size"] != mb["size"]:
            return False
        if rb["signed"] == mb["signed"]:
            self.quirks["enum base name"] += 1
            return True
        big = any(v >= 1 << 63 for v in m["constants"].values())
        if big and not mb["signed"]:
            self.quirks["enum base sign (constant >= 2^63)"] += 1
            return True
        return False


def test_dwarf_types_match_dwarf2json():
    ref, mine = ref_isf(), our_isf(AMD64)
    tc = TypeCompare(ref, mine)
    named = [k for k in ref["user_types"] if not k.startswith("unnamed_")]
    for k in named:
        tc.record(k, ref["user_types"][k], mine["user_types"].get(k))
    extra = [k for k in mine["user_types"]
             if not k.startswith("unnamed_") and k not in ref["user_types"]]
    print(f"{len(named)} named + {tc.types - len(named)} anonymous structs/"
          f"unions, {tc.fields} fields compared; {len(tc.bad)} differ; "
          f"{len(extra)} extra")
    check(len(named) > 8000, f"only {len(named)} named types")
    check(not tc.bad, "\n".join(b[:300] for b in tc.bad[:40]))
    check(not extra, f"types dwarf2json does not have: {extra[:20]}")
    ts = mine["user_types"]["task_struct"]["fields"]
    # DESIGN.md's facts (BTF in guest RAM), a third source.
    check((ts["tasks"]["offset"], ts["pid"]["offset"], ts["comm"]["offset"],
           ts["mm"]["offset"]) == (0x890, 0x970, 0xba0, 0x8e0))


def test_dwarf_enums_match_dwarf2json():
    ref, mine = ref_isf(), our_isf(AMD64)
    tc = TypeCompare(ref, mine)
    named = [k for k in ref["enums"] if not k.startswith("unnamed_")]
    for k in named:
        tc.enum(k, ref["enums"][k], mine["enums"].get(k))
    # Anonymous enums: matched by their constants (names are hashes).
    def key(v):
        mod = 1 << (8 * v["size"]) if v["size"] else 1
        return json.dumps({k: c % mod for k, c in v["constants"].items()},
                          sort_keys=True)
    by_consts = {key(v) for k, v in mine["enums"].items()
                 if k.startswith("unnamed_")}
    anon = [k for k in ref["enums"] if k.startswith("unnamed_")]
    lost = [k for k in anon if key(ref["enums"][k]) not in by_consts]
    consts = sum(len(ref["enums"][k]["constants"]) for k in named + anon)
    print(f"{len(named)} named + {len(anon)} anonymous enums, {consts} "
          f"constants compared; {len(tc.bad)} + {len(lost)} differ; "
          f"explained: {dict(tc.quirks)}")
    check(not tc.bad, "\n".join(b[:300] for b in tc.bad[:20]))
    check(not lost, f"anonymous enums we lack: {lost[:10]}")


def test_dwarf_base_types_match_dwarf2json():
    ref, mine = ref_isf(), our_isf(AMD64)
    rb, mb = ref["base_types"], mine["base_types"]
    bad = [f"{k}: {rb[k]} vs {mb.get(k)}" for k in rb if rb[k] != mb.get(k)]
    print(f"{len(rb)} base types compared; {len(bad)} differ")
    check(not bad, "\n".join(bad))
    check(set(mb) == set(rb), f"extra: {set(mb) - set(rb)}")


def test_dwarf_symbols_match_dwarf2json():
    ref, mine = ref_isf(), our_isf(AMD64)
    rs, ms = ref["symbols"], mine["symbols"]
    common = [k for k in ms if k in rs]
    bad = [f"{k}: {rs[k]['address']:#x} vs {ms[k]['address']:#x}"
           for k in common if rs[k]["address"] != ms[k]["address"]]
    ours_only = [k for k in ms if k not in rs]
    # dwarf2json's extra symbols are DWARF variables: address 0 unless the
    # symbol table has them (see DWARF2JSON_QUIRKS).
    ref_only = [k for k in rs if k not in ms]
    ref_only_nonzero = [k for k in ref_only if rs[k]["address"] != 0]
    tc = TypeCompare(ref, mine)
    typed = 0
    for k in common:
        mt, rt = ms[k]["type"], rs[k]["type"]
        if mt != {"kind": "base", "name": "void"}:
            typed += 1
            tc.desc(k, rt, mt)
    print(f"{len(common)} symbols' addresses compared, {len(bad)} differ; "
          f"{typed} types compared, {len(tc.bad)} differ; {len(ours_only)} "
          f"only ours, {len(ref_only)} only dwarf2json's "
          f"({len(ref_only_nonzero)} with an address)")
    check(len(common) > 90000, f"only {len(common)} symbols in common")
    check(not bad, "\n".join(bad[:20]))
    check(not ours_only, f"symbols dwarf2json lacks: {ours_only[:20]}")
    unexplained = set(ref_only_nonzero) - STACK_VALUE_LOCALS
    check(not unexplained, f"{sorted(unexplained)[:20]}")
    for name in ("init_task", "modules", "init_uts_ns", "linux_banner",
                 "init_mm", "jiffies", "current_task", "init_top_pgt",
                 "page_offset_base", "__per_cpu_offset", "init_pid_ns",
                 "super_blocks", "mem_section"):
        r = TypeCompare(ref, mine)
        r.desc(name, rs[name]["type"], ms[name]["type"])
        check(not r.bad and ms[name]["address"] == rs[name]["address"],
              f"{name}: {r.bad}")
    check(ms["linux_banner"]["constant_data"] ==
          rs["linux_banner"]["constant_data"], "banner")
    print("type differences (dwarf2json took a local variable's type):",
          [b[:100] for b in tc.bad[:8]])


def system_map(path):
    syms = {}
    with open(path) as f:
        for line in f:
            a, t, n = line.split()[:3]
            syms.setdefault(n, []).append(int(a, 16))
    return syms


def test_dwarf_i386_facts():
    """686-pae: 32-bit pointers; every System.map symbol at its address."""
    mine = our_isf(I386)
    d = vmlinux(I386)
    sm = system_map(d / "System.map")
    ms = mine["symbols"]
    missing = [n for n in sm if n not in ms]
    bad = [n for n in sm if n in ms and ms[n]["address"] not in sm[n]]
    print(f"686-pae: {len(sm)} System.map names, {len(missing)} missing, "
          f"{len(bad)} at another address")
    check(not missing, f"{missing[:20]}")
    check(not bad, f"{bad[:20]}")
    check(mine["base_types"]["pointer"]["size"] == 4, "pointer size")
    check(mine["base_types"]["long int"]["size"] == 4, "long size")
    ts = mine["user_types"]["task_struct"]["fields"]
    check(ts["comm"]["type"] == {"count": 16, "kind": "array", "subtype":
                                 {"kind": "base", "name": "char"}})
    lh = mine["user_types"]["list_head"]
    check(lh["size"] == 8 and lh["fields"]["prev"]["offset"] == 4)
    check(ms["init_task"]["type"] == {"kind": "struct", "name": "task_struct"})
    check(ms["init_task"]["address"] in sm["init_task"])
    banner = __import__("base64").b64decode(ms["linux_banner"]["constant_data"])
    check(banner.startswith(b"Linux version 6.1.0-57-686-pae "), banner[:60])


# The DWARF ISF driving the Linux layer on real guests (ps, modules and
# symbols against the guests' own) is tests/lab/test_arch.py's, on the four
# 32-bit kernels, whose -dbg packages the lab fetches anyway.


# ---- Malformed inputs --------------------------------------------------------------

def small_elf(debug):
    """A program of our own, with or without DWARF (linked: libdw does not
    apply an object file's relocations to its DWARF)."""
    src = os.path.join(TMP, f"tv-dw-{os.getpid()}.c")
    obj = src[:-2] + ("-g" if debug else "")
    with open(src, "w") as f:
        f.write("struct s { int a; unsigned b:3, c:5; struct s *next; };\n"
                "struct s var;\nint main(void) { return var.a; }\n")
    r = subprocess.run(["cc", "-O0", *(["-g"] if debug else []), src,
                        "-o", obj], capture_output=True, text=True)
    os.unlink(src)
    if r.returncode:
        raise Skip(f"cc: {r.stderr}")
    return obj


def profile_of(path):
    out = os.path.join(TMP, f"tv-dw-out-{os.getpid()}.json")
    p = tinyvmi("profile", path, "-o", out, "--force", timeout=60)
    isf = None
    if p.returncode == 0:
        with open(out) as f:
            isf = json.load(f)
        os.unlink(out)
    check(p.returncode in (0, 1, 3), f"rc {p.returncode}: {p.stderr}")
    check(not os.path.exists(out), "output left behind")
    return p, isf


def test_dwarf_small_object():
    """Our own object file: the layout is what the C source says."""
    obj = small_elf(True)
    p, isf = profile_of(obj)
    os.unlink(obj)
    check(p.returncode == 0, p.stderr)
    s = isf["user_types"]["s"]
    check(s["size"] == 16, s)
    f = s["fields"]
    check(f["a"] == {"type": {"kind": "base", "name": "int"}, "offset": 0})
    # b: bits 0-2 of the word at 4, c: bits 3-7 (x86 allocates from bit 0).
    check(f["b"]["offset"] == 4 and f["b"]["type"]["bit_position"] == 0 and
          f["b"]["type"]["bit_length"] == 3, f["b"])
    check(f["c"]["offset"] == 4 and f["c"]["type"]["bit_position"] == 3 and
          f["c"]["type"]["bit_length"] == 5, f["c"])
    check(f["next"]["type"] == {"kind": "pointer", "subtype":
                                {"kind": "struct", "name": "s"}})
    check(isf["symbols"]["var"]["type"] == {"kind": "struct", "name": "s"})


def test_dwarf_no_debug_no_btf():
    obj = small_elf(False)
    p, _ = profile_of(obj)
    os.unlink(obj)
    check(p.returncode != 0, "accepted an ELF without DWARF or BTF")
    check("no DWARF" in p.stderr and "BTF" in p.stderr, p.stderr)


def section(data, name):
    """(file offset of the section header, offset, size) of a section of an
    ELF64 little-endian file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    strtab = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    for i in range(shnum):
        h = shoff + i * shentsize
        nm, = struct.unpack_from("<I", data, h)
        end = data.index(b"\0", strtab + nm)
        if data[strtab + nm:end] == name.encode():
            off, size = struct.unpack_from("<QQ", data, h + 24)
            return h, off, size
    raise AssertionError(f"no {name}")


def test_dwarf_malformed():
    obj = small_elf(True)
    with open(obj, "rb") as f:
        good = f.read()
    os.unlink(obj)
    path = os.path.join(TMP, f"tv-dw-bad-{os.getpid()}")
    cases = []
    hdr, off, size = section(good, ".debug_info")
    # .debug_info claims to run far past the end of the file.
    b = bytearray(good)
    struct.pack_into("<Q", b, hdr + 32, 1 << 40)
    cases.append(("huge .debug_info", bytes(b)))
    # The unit header's length says more than there is.
    b = bytearray(good)
    struct.pack_into("<I", b, off, 0xfffffff0)
    cases.append(("unit length", bytes(b)))
    # Garbage in the DIEs (abbrev codes, attribute values).
    b = bytearray(good)
    for i in range(off + 12, off + size, 7):
        b[i] ^= 0x5a
    cases.append(("garbled DIEs", bytes(b)))
    # The file cut in the middle (section headers lost).
    cases.append(("truncated", good[:len(good) // 2]))
    cases.append(("ELF header only", good[:64]))
    for what, data in cases:
        with open(path, "wb") as f:
            f.write(data)
        p, _ = profile_of(path)
        print(f"{what}: rc {p.returncode}: {p.stderr.strip()[:160]}")
        check(p.returncode == 0 or "tinyvmi: profile:" in p.stderr, what)
    os.unlink(path)


if __name__ == "__main__":
    main(globals())
