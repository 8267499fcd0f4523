"""A hostile guest: copies of a real guest's dump with its kernel's data
edited the way a compromised or corrupt kernel could leave it.  TinyVMI
must stay bounded, say clearly what is wrong, and never crash or hang.

Where to edit comes from the guest's own ground truth and from QEMU's
oracle (unmapped addresses), located in the dump file through its ELF
program headers; TinyVMI's own answers are used only to pick the victims
(which task, which list entry).
"""
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, check, main, run, tinyvmi  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
OSQ = os.path.join(BUILD, "tests", "lab", "osq")
GUEST = "k61-4l-1c"
WORK = os.path.join(BUILD, "lab", "hostile")


def ensure():
    p = run(LAB + ["ensure", GUEST], timeout=1500)
    check(p.returncode == 0, f"lab.py ensure failed:\n{p.stderr[-4000:]}")
    return os.path.join(BUILD, "lab", "guests", GUEST)


def load(d, f):
    with open(os.path.join(d, f)) as fh:
        return json.load(fh)


def copy_dump(d, name):
    os.makedirs(WORK, exist_ok=True)
    out = os.path.join(WORK, name + ".elf")
    # sparse, as the lab keeps its dumps: four full copies would cost 1 GB of disk
    subprocess.run(["cp", "--sparse=always", os.path.join(d, "dump.elf"), out],
                   check=True)
    return out


def loads(path):
    """The ELF64 PT_LOADs: (paddr, filesz, offset)."""
    with open(path, "rb") as f:
        h = f.read(64)
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        typ, _, off, _, paddr, filesz = struct.unpack_from("<IIQQQQ", ph,
                                                           i * phentsize)
        if typ == 1:
            out.append((paddr, filesz, off))
    return out


def pa_offset(path, pa):
    for start, size, off in loads(path):
        if start <= pa < start + size:
            return off + pa - start
    raise AssertionError(f"pa {pa:#x} is not in {path}")


def va_to_pa(path, va):
    p = tinyvmi("translate", path, hex(va), "--json")
    check(p.returncode == 0, f"translate {va:#x}: {p.stderr}")
    return int(json.loads(p.stdout)["pa"], 16)


def poke(path, va, data):
    pa = va_to_pa(path, va)
    with open(path, "r+b") as f:
        f.seek(pa_offset(path, pa))
        f.write(data)


def ask(target, q):
    p = run([OSQ, target], input=q + "\n")
    check(p.returncode == 0, p.stderr)
    return p.stdout.strip()


def ps(path, code=0):
    p = tinyvmi("ps", path, "--json", timeout=120)
    check(p.returncode == code, f"ps exit {p.returncode}, expected {code}: "
          f"{p.stderr}")
    return json.loads(p.stdout) if p.stdout.strip() else None, p.stderr


def test_task_list_loop():
    d = ensure()
    path = copy_dump(d, "loop")
    tasks_off = int(ask(path, "offset linux_tasks"), 16)
    procs, _ = ps(path)
    check(len(procs) > 10, "too few tasks to make a loop")
    # the 10th task's tasks.next points back at the 3rd task's
    victim, target = procs[9], procs[2]
    poke(path, int(victim["task"], 16) + tasks_off,
         struct.pack("<Q", int(target["task"], 16) + tasks_off))
    got, err = ps(path, code=1)
    check("loop" in err, f"the error should say the list loops: {err}")
    check(len(got) == 10, f"the walk should stop where the loop closes, "
          f"after 10 tasks, not {len(got)}")


def test_comm_without_nul():
    d = ensure()
    path = copy_dump(d, "comm")
    comm_off = int(ask(path, "offset linux_name"), 16)
    procs, _ = ps(path)
    victim = next(p for p in procs if p["name"] == "tvlab-sleeper")
    poke(path, int(victim["task"], 16) + comm_off, b"\xffZ" * 8)
    got, _ = ps(path)
    name = next(p["name"] for p in got if p["pid"] == victim["pid"])
    check(len(name) <= 16 and name.startswith("?Z"),
          f"a comm without a NUL should be cut at its 16 bytes and show "
          f"bytes it cannot print as '?': {name!r}")


def test_module_list_unmapped():
    d = ensure()
    path = copy_dump(d, "modules")
    oracle = load(d, "oracle.json")
    hole = next(int(e["va"], 16) for e in oracle["entries"]
                if e["kind"] == "unmapped")
    modules = int(ask(path, "sym modules"), 16)
    poke(path, modules, struct.pack("<Q", hole))
    p = tinyvmi("modules", path, "--json", timeout=120)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check("module list" in p.stderr and "not mapped" in p.stderr,
          f"the error should say where the list broke: {p.stderr}")
    check(json.loads(p.stdout) == [], "nothing valid to list")


def find_btf(path):
    """File offsets of BTF headers (magic 0xeB9F, version 1, hdr_len 24)."""
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], data.find(b"\x9f\xeb\x01\x00\x18\x00\x00\x00")
    while i >= 0:
        out.append(i)
        i = data.find(b"\x9f\xeb\x01\x00\x18\x00\x00\x00", i + 1)
    return out


def test_btf_bad_lengths():
    d = ensure()
    path = copy_dump(d, "btf")
    offs = find_btf(path)
    check(offs, "no BTF header in the guest's memory")
    with open(path, "r+b") as f:
        for off in offs:  # type_len far beyond the blob
            f.seek(off + 12)
            f.write(struct.pack("<I", 0xfffffff0))
    p = tinyvmi("ps", path, timeout=120)
    check(p.returncode == 3, f"exit {p.returncode}: {p.stderr}")
    check("BTF" in p.stderr, f"the error should name the BTF: {p.stderr}")


if __name__ == "__main__":
    main(globals())
