#!/usr/bin/env python3
"""Converts a Volatility 3 ISF file (.json or .json.xz) to a Rekall-format
Linux profile, with the standard library only.  Written independently of
TinyVMI's loaders, as a second opinion for tests.
  isf2rekall.py ISF OUT.json

Rekall has no anonymous members: they are flattened into the enclosing
struct (offsets added), as Rekall's own Linux profiles do.  Unions become
structs.  $CONSTANTS holds every symbol's address.
"""
import json
import lzma
import sys


def load(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def desc(t):
    """ISF type -> Rekall [name, {args}]."""
    k = t["kind"]
    if k in ("struct", "union", "class"):
        return [t["name"], {}]
    if k == "base":
        return ["Void", {}] if t["name"] == "void" else [t["name"], {}]
    if k == "void":
        return ["Void", {}]
    if k == "enum":
        return ["Enumeration", {"enum_name": t["name"],
                                "target": "unsigned int"}]
    if k == "function":
        return ["Function", {}]
    if k in ("pointer", "array"):
        name, args = desc(t["subtype"])
        out = {"target": name}
        if args:
            out["target_args"] = args
        if k == "array":
            out["count"] = t["count"]
            return ["Array", out]
        return ["Pointer", out]
    if k == "bitfield":
        pos, length = t["bit_position"], t["bit_length"]
        return ["BitField", {"start_bit": pos, "end_bit": pos + length,
                             "target": desc(t["type"])[0]}]
    raise ValueError(f"unknown kind {k}")


def fields(types, name, base, out, depth=0):
    if depth > 16:
        raise ValueError(f"anonymous members nested too deeply in {name}")
    for fname, f in types[name]["fields"].items():
        off = base + f["offset"]
        t = f["type"]
        if f.get("anonymous") and t["kind"] in ("struct", "union") \
                and t["name"] in types:
            fields(types, t["name"], off, out, depth + 1)
        elif fname not in out:
            out[fname] = [off, desc(t)]


def convert(isf):
    types = isf["user_types"]
    structs = {}
    for name, u in types.items():
        members = {}
        fields(types, name, 0, members)
        size = u.get("size", 0)
        structs[name] = [size if size >= 0 else 0, members]
    enums, revenums = {}, {}
    for name, e in isf.get("enums", {}).items():
        enums[name] = {str(v): c for c, v in e["constants"].items()}
        revenums[name] = dict(e["constants"])
    return {
        "$METADATA": {"ProfileClass": "Linux", "Type": "Profile",
                      "arch": "AMD64"},
        "$CONSTANTS": {n: s["address"] for n, s in isf["symbols"].items()},
        "$STRUCTS": structs,
        "$ENUMS": enums,
        "$REVENUMS": revenums,
    }


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out = convert(load(sys.argv[1]))
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, sort_keys=True)


if __name__ == "__main__":
    main()
