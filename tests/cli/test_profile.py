"""tinyvmi profile against an independent reference: the ISF that dwarf2json
made from the Debian 6.1.0-56 kernel's DWARF (shared data).  The ISF written
from the kernel image alone (BTF + kallsyms) must agree with it wherever
both say something, with differences only of the explained kinds."""
import json
import lzma
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pyt import Skip, check, main, tinyvmi  # noqa: E402

DATA = "/work/shared/data/debian-6.1.0-56-amd64"
VMLINUZ = os.path.join(DATA, "vmlinuz-6.1.0-56-amd64")
REF = os.path.join(DATA, "vmlinux-6.1.0-56-amd64.isf.json.xz")
TMP = os.environ.get("TMPDIR", "/tmp")

_cache = {}


def isfs():
    if not (os.path.exists(VMLINUZ) and os.path.exists(REF)):
        raise Skip("shared 6.1.0-56 kernel data not present")
    if not _cache:
        out = os.path.join(TMP, f"tv-profile-{os.getpid()}.json")
        p = tinyvmi("profile", VMLINUZ, "-o", out, "--force", timeout=300)
        check(p.returncode == 0, p.stderr)
        with open(out) as f:
            _cache["mine"] = json.load(f)
        os.unlink(out)
        with lzma.open(REF, "rt") as f:
            _cache["ref"] = json.load(f)
    return _cache["mine"], _cache["ref"]


def test_profile_symbols_match_dwarf2json():
    mine, ref = isfs()
    ms, rs = mine["symbols"], ref["symbols"]
    common = [k for k in ms if k in rs]
    check(len(common) > 80000, f"only {len(common)} symbols in common")
    bad = [k for k in common if ms[k]["address"] != rs[k]["address"]]
    # Explained: static symbols with one name in several files, where
    # kallsyms lists each and the ISF keeps one.  The C test checks that
    # each is such a duplicate; here, only that they are few.
    check(len(bad) < len(common) // 50, f"{len(bad)} address mismatches")
    for name in ("init_task", "linux_banner", "modules", "_text",
                 "init_top_pgt", "swapper_pg_dir"):
        if name in rs:
            check(name in ms and ms[name]["address"] == rs[name]["address"],
                  name)
    check(ms["init_task"]["type"] == rs["init_task"]["type"])
    check(ms["linux_banner"]["constant_data"] ==
          rs["linux_banner"]["constant_data"], "banner")
    print(f"{len(common)} symbols compared, {len(bad)} differ (duplicates)")


def flat_count(t):
    """Elements of an array type, through nested arrays, and the innermost
    type (BTF flattens int a[2][4] to int a[8])."""
    n = 1
    while t.get("kind") == "array":
        n *= t["count"]
        t = t["subtype"]
    return n, t


def same_type(a, b):
    if a == b:
        return True
    if a.get("kind") != b.get("kind"):
        return False
    k = a["kind"]
    if k in ("struct", "union", "enum"):
        return a["name"].startswith("unnamed_") and \
            b["name"].startswith("unnamed_")
    if k == "pointer":
        return same_type(a["subtype"], b["subtype"])
    if k == "bitfield":
        return (a["bit_length"], a["bit_position"]) == \
            (b["bit_length"], b["bit_position"]) and \
            same_type(a["type"], b["type"])
    if k == "array":
        (na, ia), (nb, ib) = flat_count(a), flat_count(b)
        return na == nb and same_type(ia, ib)
    return False


def test_profile_types_match_dwarf2json():
    mine, ref = isfs()
    mu, ru = mine["user_types"], ref["user_types"]
    common = [k for k in mu if k in ru and not k.startswith("unnamed_")]
    check(len(common) > 7000, f"only {len(common)} types in common")
    sizes = [k for k in common if mu[k]["size"] != ru[k]["size"]]
    # Same-name structs defined differently in different files (static
    # "struct getdents_callback" in fs/readdir.c and fs/nfsd...): DWARF's
    # ISF and BTF may keep different ones.  Recognised by other field names.
    other = [k for k in common if k not in sizes and
             set(f for f in mu[k]["fields"] if not f.startswith("unnamed")) !=
             set(f for f in ru[k]["fields"] if not f.startswith("unnamed"))]
    fields = 0
    bad = []
    for k in common:
        if k in sizes or k in other:
            continue
        for f, v in ru[k]["fields"].items():
            if f.startswith("unnamed_field"):
                continue
            m = mu[k]["fields"].get(f)
            check(m is not None, f"{k}.{f} missing")
            fields += 1
            if m["offset"] != v["offset"]:
                bad.append((k, f, "offset", v["offset"], m["offset"]))
            elif not same_type(m["type"], v["type"]):
                bad.append((k, f, "type", v["type"], m["type"]))
    check(not bad, f"{len(bad)} fields differ: {bad[:5]}")
    # Same-name structs from different files: see test_btf.c, which checks
    # that BTF has a definition of the ISF's size for each.
    check(len(sizes) < 20, f"sizes differ: {sizes}")
    check(len(other) < 60, f"{len(other)} same-name types differ: {other}")
    check(mu["task_struct"]["fields"]["pid"]["offset"] == 0x970)
    print(f"{len(common)} types, {fields} fields compared; sizes differ "
          f"for {len(sizes)} same-name types: {sizes}; other fields for "
          f"{len(other)}: {other}")


def test_profile_enums_and_base_types():
    mine, ref = isfs()
    for name, bt in ref["base_types"].items():
        if name in mine["base_types"]:
            check(mine["base_types"][name]["size"] == bt["size"], name)
    common = [k for k in mine["enums"] if k in ref["enums"] and
              not k.startswith("unnamed_")]
    check(len(common) > 500, f"{len(common)} enums in common")
    # BTF may not mark 64-bit enums signed: compare values modulo 2^64.
    # Same-name enums defined differently in two files: other names.
    other = []
    for k in common:
        a = {n: v % (1 << 64) for n, v in mine["enums"][k]["constants"].items()}
        b = {n: v % (1 << 64) for n, v in ref["enums"][k]["constants"].items()}
        if set(a) != set(b):
            other.append(k)
            continue
        check(a == b, k)
    check(len(other) < 10, f"enums differ: {other}")


def test_profile_bad_input():
    p = tinyvmi("profile", "/dev/null", "-o", os.path.join(TMP, "x.json"))
    check(p.returncode == 3 and "profile" in p.stderr, p.stderr)
    p = tinyvmi("profile", HERE + "/test_profile.py")
    check(p.returncode == 3 and "not a kernel image" in p.stderr, p.stderr)


if __name__ == "__main__":
    main(globals())
