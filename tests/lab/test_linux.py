"""The Linux OS layer against real Debian kernels under QEMU (tests/guests).

Ground truth is what each guest printed about itself on its serial console
(truth.json: its ps, /proc/modules, a sample of /proc/kallsyms, the command
lines of the processes it started).  Every check runs three ways: with no
profile (the guest's own BTF and kallsyms), with an ISF that `tinyvmi
profile` wrote from the guest's vmlinuz, and with a libvmi.conf entry naming
that ISF; plus a Rekall profile converted from it by an independent script,
and the dwarf2json ISF in ../shared/data on the guest that boots its kernel.
Nothing here hard-codes a kernel version, an offset or an address.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, Skip, check, main, run, tinyvmi  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
OSQ = os.path.join(BUILD, "tests", "lab", "osq")
GUESTS = ["k61-4l-1c", "k61-5l-2c", "k612-4l-2c", "k612-5l-1c"]
PROFILES = os.path.join(BUILD, "lab", "profiles")
ISF2REKALL = os.path.join(ROOT, "tests", "data", "isf2rekall.py")


def ensure(name):
    p = run(LAB + ["ensure", name], timeout=1500)
    check(p.returncode == 0, f"lab.py ensure {name} failed:\n{p.stderr[-4000:]}")
    return os.path.join(BUILD, "lab", "guests", name)


def load(d, f):
    with open(os.path.join(d, f)) as fh:
        return json.load(fh)


# ---------------------------------------------------------------- profiles

def isf_for(d):
    """The ISF `tinyvmi profile` writes from the guest's own vmlinuz (made
    once per kernel, kept in build/lab/profiles)."""
    k = load(d, "lab.json")["kernel"]
    os.makedirs(PROFILES, exist_ok=True)
    out = os.path.join(PROFILES, k["kver"] + ".json")
    if not os.path.exists(out):
        tmp = f"{out}.{os.getpid()}.tmp"
        p = tinyvmi("profile", k["vmlinuz"], "-o", tmp, timeout=600)
        check(p.returncode == 0, f"tinyvmi profile failed: {p.stderr}")
        os.replace(tmp, out)
    return out


def rekall_for(d):
    isf = isf_for(d)
    out = isf[:-5] + ".rekall.json"
    if not os.path.exists(out):
        tmp = f"{out}.{os.getpid()}.tmp"
        p = run([sys.executable, ISF2REKALL, isf, tmp], timeout=600)
        check(p.returncode == 0, f"isf2rekall failed: {p.stderr}")
        os.replace(tmp, out)
    return out


def conf_for(d, dump):
    """A libvmi.conf whose entry, named by the dump's path, names the ISF."""
    path = os.path.join(d, "libvmi.conf")
    with open(path, "w") as f:
        f.write(f'# written by tests/lab/test_linux.py\n'
                f'"{dump}" {{\n    ostype = "Linux";\n'
                f'    volatility_ist = "{isf_for(d)}";\n}}\n')
    return path


def way_args(way, d, dump):
    if way == "none":
        return []
    if way == "isf":
        return ["--profile", isf_for(d)]
    if way == "conf":
        return ["--config", conf_for(d, dump)]
    if way == "rekall":
        if not os.path.exists(ISF2REKALL):
            raise Skip("tests/data/isf2rekall.py is not there yet")
        return ["--profile", rekall_for(d)]
    if way == "dwarf":
        isf = load(d, "lab.json")["kernel"].get("isf")
        if not isf or not os.path.exists(isf):
            raise Skip("the lab has no dwarf2json ISF (shared/data)")
        return ["--profile", isf]
    raise ValueError(way)


# ---------------------------------------------------------------- comparisons

def names_match(ours, truth):
    """procfs composes a workqueue worker's name from its workqueue
    (comm-desc, and on 6.9+ kworker/R-<whole workqueue name> for rescuers);
    TinyVMI shows comm for those, which is 15 characters at most."""
    if ours == truth["name"]:
        return True
    t = truth["name"]
    return bool(truth.get("wq_worker")) and (
        t.startswith(ours + "-") or (len(ours) == 15 and t.startswith(ours)))


def transient(p):
    return p.get("kthread", True) and p["name"].startswith("kworker")


def compare_ps(ps, truth):
    ours = {p["pid"]: p for p in ps}
    check(len(ours) == len(ps), "a pid appears twice")
    check(0 in ours and ours[0]["name"].startswith("swapper"),
          f"pid 0 should be the idle task swapper/0: {ours.get(0)}")
    bad = []
    for t in truth["ps"]:
        o = ours.get(t["pid"])
        if o is None:
            if not transient(t):
                bad.append(f"pid {t['pid']} {t['name']} missing")
            continue
        if not names_match(o["name"], t):
            bad.append(f"pid {t['pid']}: name {o['name']!r}, guest says "
                       f"{t['name']!r}")
        if o["ppid"] != t["ppid"]:
            bad.append(f"pid {t['pid']}: ppid {o['ppid']}, guest says "
                       f"{t['ppid']}")
        if o["kernel_thread"] != t["kthread"]:
            bad.append(f"pid {t['pid']}: kernel_thread {o['kernel_thread']}")
        if not re.fullmatch(r"0x[0-9a-f]+", o["task"]) or \
                not re.fullmatch(r"0x[0-9a-f]+", o["dtb"]):
            bad.append(f"pid {t['pid']}: task/dtb not 0x strings: {o}")
    truth_pids = {t["pid"] for t in truth["ps"]}
    for pid, o in ours.items():
        if pid and pid not in truth_pids and not o["name"].startswith("kworker"):
            bad.append(f"pid {pid} {o['name']} is not in the guest's ps")
    check(not bad, f"{len(bad)} differences from the guest's ps:\n" +
          "\n".join(bad[:30]))
    users = [p for p in ps if not p["kernel_thread"]]
    check(len({p["dtb"] for p in users}) == len(users),
          "user processes should have distinct page tables")


def compare_modules(mods, truth):
    ours = {m["name"]: m for m in mods}
    want = {m["name"]: m for m in truth["modules"]}
    check(set(ours) == set(want), f"modules {sorted(ours)}, guest has "
          f"{sorted(want)}")
    for n, t in want.items():
        check(int(ours[n]["base"], 16) == int(t["base"], 16),
              f"{n}: base {ours[n]['base']}, guest says {t['base']}")
        check(ours[n]["size"] == t["size"],
              f"{n}: size {ours[n]['size']}, guest says {t['size']}")


def osq(target, args, questions):
    p = run([OSQ, target, *args], input="\n".join(questions) + "\n",
            timeout=600)
    check(p.returncode == 0, f"osq failed ({p.returncode}): {p.stderr}")
    lines = p.stdout.splitlines()
    check(len(lines) == len(questions), "osq answered too few questions")
    return lines


def compare_symbols(target, args, truth):
    """Names to addresses and back, for the guest's own /proc/kallsyms
    sample (names that occur once in it)."""
    sample = truth["kallsyms_sample"]
    check(len(sample) > 1000, f"only {len(sample)} sampled symbols")
    uniq = [(a, t, n) for a, t, n, copies in sample if copies == 1]
    qs = [f"sym {n}" for _, _, n in uniq] + [f"addr {a}" for a, _, _ in uniq]
    ans = osq(target, args, qs)
    by_name = ans[:len(uniq)]
    by_addr = ans[len(uniq):]
    bad = []
    for (a, t, n), got in zip(uniq, by_name):
        if got.startswith("-") or int(got, 16) != int(a, 16):
            bad.append(f"sym {n}: {got}, guest says {a}")
    check(not bad, f"{len(bad)} of {len(uniq)} names resolve wrongly:\n" +
          "\n".join(bad[:20]))
    # Address -> symbol: the symbol found must start exactly there (several
    # names may share an address, so the name itself may differ).
    wrong = [f"addr {a} ({n}): {got}" for (a, t, n), got in zip(uniq, by_addr)
             if got.startswith("-") or not got.endswith("+0x0")]
    check(not wrong, f"{len(wrong)} of {len(uniq)} addresses map wrongly:\n" +
          "\n".join(wrong[:20]))


def compare_cmdlines(target, args, truth):
    """Each user process's argv, read from its own memory by pid."""
    qs, want = [], []
    for c in truth["cmdline"]:
        if "arg_start" not in c:
            continue
        start, end = int(c["arg_start"], 16), int(c["arg_end"], 16)
        qs.append(f"read {c['pid']} {hex(start)} {end - start}")
        want.append(c)
    check(len(qs) >= 2, "the guest reported too few command lines")
    for c, got in zip(want, osq(target, args, qs)):
        check(not got.startswith("-"), f"pid {c['pid']}: {got}")
        argv = bytes.fromhex(got).decode(errors="replace").split("\0")[:-1]
        check(argv == c["argv"], f"pid {c['pid']}: argv {argv}, guest "
              f"started it with {c['argv']}")
    for m in truth["user_markers"]:
        n = len(m["bytes"]) // 2
        got = osq(target, args, [f"read {m['pid']} {m['va']} {n}"])[0]
        check(got == m["bytes"], f"pid {m['pid']}: marker at {m['va']}: {got}")


def tool_json(*args):
    p = tinyvmi(*args, "--json", timeout=300)
    check(p.returncode == 0, f"tinyvmi {' '.join(args)}: {p.stderr}")
    return json.loads(p.stdout)


# ---------------------------------------------------------------- tests

def linux(name, way="none", dump="dump.elf"):
    d = ensure(name)
    truth = load(d, "truth.json")
    target = os.path.join(d, dump)
    args = way_args(way, d, target)
    compare_ps(tool_json("ps", target, *args), truth)
    compare_modules(tool_json("modules", target, *args), truth)
    compare_symbols(target, args, truth)
    compare_cmdlines(target, args, truth)


def sym_cli(name):
    """tinyvmi sym both ways, in text, against the guest's kallsyms."""
    d = ensure(name)
    truth = load(d, "truth.json")
    dump = os.path.join(d, "dump.elf")
    p = tinyvmi("sym", dump, "init_task")
    check(p.returncode == 0, p.stderr)
    check(p.stdout.strip() == truth["kallsyms"]["init_task"],
          f"init_task {p.stdout.strip()}, guest says "
          f"{truth['kallsyms']['init_task']}")
    fn = int(truth["kallsyms"]["do_sys_openat2"], 16)
    p = tinyvmi("sym", dump, hex(fn + 5))
    check(p.returncode == 0 and p.stdout.strip() == "do_sys_openat2+0x5",
          f"{p.stdout} {p.stderr}")


# The matrix: every guest, three ways, plus raw dumps (no registers).
for _g in GUESTS:
    _k = _g.replace("-", "_")
    for _way in ("none", "isf", "conf"):
        globals()[f"test_linux_{_way}_{_k}"] = \
            (lambda g=_g, w=_way: linux(g, w))
    globals()[f"test_linux_raw_{_k}"] = \
        (lambda g=_g: linux(g, "none", "dump.raw"))
    globals()[f"test_sym_cli_{_k}"] = (lambda g=_g: sym_cli(g))


def same_table(name):
    """The table read from guest memory (BTF + kallsyms) and the one from
    the ISF `tinyvmi profile` wrote from the kernel image answer alike:
    every struct's size and every named member's offset, and the address
    of every symbol the ISF lists once (KASLR-adjusted on both sides)."""
    d = ensure(name)
    target = os.path.join(d, "dump.elf")
    with open(isf_for(d)) as f:
        isf = json.load(f)
    qs = []
    for tname, t in sorted(isf["user_types"].items()):
        if t.get("kind") not in ("struct", "union") or \
                tname.startswith("unnamed"):
            continue
        qs.append(f"size {tname}")
        qs += [f"member {tname} {m}" for m in sorted(t["fields"])
               if not m.startswith("unnamed")]
    syms = sorted(isf["symbols"])
    qs += [f"sym {n}" for n in syms[::10] if n and " " not in n]
    check(len(qs) > 20000, f"only {len(qs)} questions")
    a = osq(target, [], qs)
    b = osq(target, ["--profile", isf_for(d)], qs)
    diff = [f"{q}: memory {x}, ISF {y}" for q, x, y in zip(qs, a, b)
            if x != y]
    check(not diff, f"{len(diff)} of {len(qs)} answers differ:\n" +
          "\n".join(diff[:20]))


def test_same_table_k61_4l_1c():
    same_table("k61-4l-1c")


def test_same_table_k612_5l_1c():
    same_table("k612-5l-1c")


def test_linux_rekall_k61_4l_1c():
    linux("k61-4l-1c", "rekall")


def test_linux_rekall_k612_5l_1c():
    linux("k612-5l-1c", "rekall")


def test_linux_dwarf2json_isf():
    """The ISF dwarf2json made from Debian's debug vmlinux (a file TinyVMI
    did not write), on the guest that boots that exact kernel."""
    linux("isf-4l-1c", "dwarf")
    linux("isf-4l-1c", "dwarf", "dump.raw")


if __name__ == "__main__":
    main(globals())
