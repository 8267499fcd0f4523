"""LibVMI's example programs (tools/examples, built to build/bin) on the
guest lab's dumps.  Ground truth comes from outside TinyVMI: truth.json (the
guest's own ps, /proc/modules, kallsyms and a marker in a user page, from
its serial console), oracle.json (QEMU's gva2gpa) and dump.raw (QEMU's
pmemsave of guest RAM).  A guest whose files are missing is skipped; the
lab is only read, never started (run `make test` or tests/guests/lab.py
for that)."""
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, Skip, check, main, run  # noqa: E402

BIN = os.path.join(BUILD, "bin")
LAB = os.environ.get("TVLAB_ROOT", os.path.join(BUILD, "lab"))
GUESTS = ["k61-4l-1c", "k61-5l-2c", "k612-4l-2c", "k612-5l-1c", "isf-4l-1c"]
EXAMPLES = ["process-list", "module-list", "map-symbol", "map-addr",
            "dump-memory", "va-pages"]
PAGE = 4096


def example(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise Skip(f"{path} is not built (make tools; it links once the "
                   "OS-layer API it uses exists)")
    return path


def guest(name):
    d = os.path.join(LAB, "guests", name)
    need = ["dump.elf", "dump.raw", "truth.json", "oracle.json"]
    missing = [f for f in need if not os.path.exists(os.path.join(d, f))]
    if missing:
        raise Skip(f"lab guest {name} has no {', '.join(missing)} "
                   f"(python3 tests/guests/lab.py ensure {name})")
    with open(os.path.join(d, "truth.json")) as f:
        truth = json.load(f)
    with open(os.path.join(d, "oracle.json")) as f:
        oracle = json.load(f)
    return d, truth, oracle


def ex(name, *args, env=None, timeout=300):
    return run([example(name), *map(str, args)], env=env, timeout=timeout)


def ok(p, what):
    check(p.returncode == 0,
          f"{what}: exit {p.returncode}\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return p.stdout


def raw_bytes(d, pa, n):
    with open(os.path.join(d, "dump.raw"), "rb") as f:
        f.seek(pa)
        return f.read(n)


HEX_LINE = re.compile(r"^([0-9a-f]{8}):((?: [0-9a-f]{2}| {3}| )+)  ")


def parse_hex(text):
    """The bytes of a hex dump (offset: 16 bytes, ASCII)."""
    out = bytearray()
    for line in text.splitlines():
        m = HEX_LINE.match(line)
        if not m:
            continue
        check(int(m.group(1), 16) == len(out), f"offset jumps: {line}")
        out += bytes(int(b, 16) for b in m.group(2).split())
    return bytes(out)


def kernel_delta(oracle):
    """va - pa of the kernel image (mapped linearly), from QEMU's gva2gpa
    of kernel data addresses."""
    for e in oracle["entries"]:
        va = int(e["va"], 16)
        if e["kind"] == "data" and e["pa"] and va >= 0xffffffff80000000:
            return va - int(e["pa"], 16)
    raise Skip("oracle.json has no kernel-image address")


# ---- usage (no lab needed) ----------------------------------------------------

def test_usage_errors():
    """Each example: no arguments, or an unknown option, exits non-zero
    with a usage line; -h too."""
    for name in EXAMPLES:
        for args in ([], ["--bogus-option"], ["-h"]):
            p = ex(name, *args)
            check(p.returncode != 0, f"{name} {args}: exit 0")
            check("Usage: " in p.stdout + p.stderr,
                  f"{name} {args}: no usage line:\n{p.stdout}{p.stderr}")
    # Too many positional arguments, a bad domid, a bad address.
    for argv in (["process-list", "a", "b"], ["map-symbol", "vm"],
                 ["map-addr", "vm", "xyz"], ["dump-memory", "vm"],
                 ["va-pages", "vm", "1", "2"], ["module-list", "-d", "x"],
                 ["process-list", "-n", "a", "-d", "1"]):
        p = ex(*argv)
        check(p.returncode != 0, f"{argv}: exit 0")
        check("Usage: " in p.stdout + p.stderr, f"{argv}: no usage line")


def test_missing_vm():
    p = ex("process-list", "/nonexistent/dump.elf")
    check(p.returncode != 0, "a missing dump must fail")
    check("Failed to init LibVMI library" in p.stdout, p.stdout)


# ---- per guest ------------------------------------------------------------------

PS_LINE = re.compile(r"^\[\s*(-?\d+)\] (.*) \(struct addr:([0-9a-f]+)\)$")


def name_matches(mine, truth_ps):
    """task_struct.comm is 15 bytes; the guest's ps shows a kernel thread's
    full name and a workqueue worker's current work after a '-'."""
    want = truth_ps["name"]
    if mine == want:
        return True
    if len(mine) == 15 and want.startswith(mine):
        return True
    return truth_ps.get("wq_worker") and want.startswith(mine + "-")


def check_process_list(d, truth, out):
    lines = out.splitlines()
    check(lines and lines[0].startswith("Process listing for file "),
          f"no header: {lines[:1]}")
    got = {}
    for line in lines[1:]:
        m = PS_LINE.match(line)
        check(m, f"unexpected line {line!r}")
        pid = int(m.group(1))
        check(pid not in got, f"pid {pid} listed twice")
        got[pid] = m.group(2)
    check(got.get(0, "").startswith("swapper"), "init_task (pid 0) first")
    want = {p["pid"]: p for p in truth["ps"]}
    # Every user process, exactly; kernel threads may come and go.
    for pid, p in want.items():
        if not p["kthread"]:
            check(pid in got and name_matches(got[pid], p),
                  f"user process {pid} {p['name']}: got {got.get(pid)!r}")
    both = [pid for pid in want if pid in got]
    check(len(both) >= 0.9 * len(want),
          f"only {len(both)} of {len(want)} truth pids listed")
    bad = [(pid, got[pid], want[pid]["name"]) for pid in both
           if not name_matches(got[pid], want[pid])]
    check(not bad, f"names differ: {bad[:10]}")
    extra = [pid for pid in got if pid and pid not in want]
    check(len(extra) <= 0.1 * len(want), f"pids not in truth: {extra}")


def t_process_list(name):
    d, truth, _ = guest(name)
    out = ok(ex("process-list", os.path.join(d, "dump.elf")), "process-list")
    check_process_list(d, truth, out)
    # The same through -n (LibVMI's long form).
    out2 = ok(ex("process-list", "-n", os.path.join(d, "dump.elf")),
              "process-list -n")
    check(out2 == out, "-n <vm> and <vm> differ")


def t_process_list_json(name):
    """With the guest's ISF profile (-j, VMI_CONFIG_JSON_PATH)."""
    d, truth, _ = guest(name)
    with open(os.path.join(d, "lab.json")) as f:
        kernel = json.load(f)["kernel"]
    # dwarf2json's ISF where the lab has one, else the one `tinyvmi
    # profile` writes from the guest's vmlinuz (made here if missing).
    isf = kernel.get("isf")
    if not isf or not os.path.exists(isf):
        isf = os.path.join(BUILD, "lab", "profiles", kernel["kver"] + ".json")
    if not os.path.exists(isf):
        os.makedirs(os.path.dirname(isf), exist_ok=True)
        p = run([os.path.join(BUILD, "bin", "tinyvmi"), "profile",
                 kernel["vmlinuz"], "-o", f"{isf}.{os.getpid()}.tmp"], timeout=600)
        check(p.returncode == 0, f"tinyvmi profile: {p.stderr}")
        os.replace(f"{isf}.{os.getpid()}.tmp", isf)
    path = isf
    tmp = None
    if isf.endswith(".xz"):
        tmp = tempfile.mkdtemp(prefix="tvex.")
        path = os.path.join(tmp, "profile.json")
        with lzma.open(isf) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    try:
        out = ok(ex("process-list", "-j", path, os.path.join(d, "dump.elf")),
                 "process-list -j")
    finally:
        if tmp:
            shutil.rmtree(tmp, True)
    check_process_list(d, truth, out)


def t_process_list_conf(name):
    """A libvmi.conf entry for the dump (TINYVMI_CONF), as LibVMI's
    VMI_CONFIG_GLOBAL_FILE_ENTRY finds it by the dump's file name."""
    d, truth, _ = guest(name)
    lib = os.path.join(BUILD, "lib", "libtinyvmi.a")
    nm = run(["nm", lib])
    if not re.search(r"\bU tv_config_load\b", nm.stdout):
        raise Skip("vmi_init_os does not read libvmi.conf yet "
                   "(tv_config_load is not called by the library)")
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "libvmi.conf")
        with open(conf, "w") as f:
            f.write('dump.elf {\n    ostype = "Linux";\n}\n')
        env = dict(os.environ, TINYVMI_CONF=conf)
        out = ok(ex("process-list", os.path.join(d, "dump.elf"), env=env),
                 "process-list with libvmi.conf")
        check_process_list(d, truth, out)
        with open(conf, "w") as f:
            f.write('dump.elf {\n    ostype = "Linux"\n}\n')
        p = ex("process-list", os.path.join(d, "dump.elf"), env=env)
        check(p.returncode != 0, "a malformed libvmi.conf must fail")


def t_module_list(name):
    d, truth, _ = guest(name)
    out = ok(ex("module-list", os.path.join(d, "dump.elf")), "module-list")
    got = out.split()
    want = [m["name"] for m in truth["modules"]]
    check(sorted(got) == sorted(want), f"modules {got} != truth {want}")


def t_map_symbol(name):
    """The page at a kernel symbol (address from the guest's kallsyms) is
    the page QEMU's pmemsave holds at its physical address."""
    d, truth, oracle = guest(name)
    delta = kernel_delta(oracle)
    for sym in ("do_sys_openat2", "init_task", "linux_banner"):
        if sym not in truth["kallsyms"]:
            continue
        va = int(truth["kallsyms"][sym], 16)
        out = ok(ex("map-symbol", os.path.join(d, "dump.elf"), sym),
                 f"map-symbol {sym}")
        got = parse_hex(out)
        check(len(got) == PAGE, f"{sym}: {len(got)} bytes dumped")
        want = raw_bytes(d, va - delta, PAGE)
        check(got == want, f"{sym}: bytes differ from dump.raw at "
                           f"0x{va - delta:x}")


def t_map_addr(name):
    """Pages at kernel addresses QEMU translated (gva2gpa), against
    pmemsave; an unmapped address fails."""
    d, _, oracle = guest(name)
    done = set()
    for e in oracle["entries"]:
        if e["kind"] in done or not e["pa"]:
            continue
        va = int(e["va"], 16) & ~(PAGE - 1)
        pa = int(e["pa"], 16) & ~(PAGE - 1)
        out = ok(ex("map-addr", os.path.join(d, "dump.elf"), f"{va:x}"),
                 f"map-addr {va:x}")
        check(parse_hex(out) == raw_bytes(d, pa, PAGE),
              f"{va:x}: bytes differ from dump.raw at 0x{pa:x}")
        done.add(e["kind"])
    check(done, "no mapped oracle entries")
    bad = [e for e in oracle["entries"] if e["pa"] is None]
    if bad:
        p = ex("map-addr", os.path.join(d, "dump.elf"),
               "0x" + bad[0]["va"][2:])
        check(p.returncode != 0 and "failed to map memory" in p.stdout,
              f"unmapped {bad[0]['va']}: {p.returncode} {p.stdout}")


def t_va_pages(name):
    """A user process's pages include the page with the guest's marker,
    at a physical address whose bytes (pmemsave) are the marker."""
    d, truth, _ = guest(name)
    markers = truth.get("user_markers") or []
    if not markers:
        raise Skip("truth.json has no user markers")
    for m in markers:
        out = ok(ex("va-pages", os.path.join(d, "dump.elf"), m["pid"]),
                 f"va-pages {m['pid']}")
        check(out.rstrip().endswith(" 0 disagreements"), out[-500:])
        va = int(m["va"], 16)
        pages = {}
        for line in out.splitlines():
            g = re.match(r"^0x([0-9a-f]+) -> 0x([0-9a-f]+) \(0x([0-9a-f]+)\)$",
                         line)
            if g:
                pages[int(g.group(1), 16)] = (int(g.group(2), 16),
                                              int(g.group(3), 16))
        page = va & ~(PAGE - 1)
        check(page in pages, f"pid {m['pid']}: page 0x{page:x} not listed")
        pa, size = pages[page]
        check(size == PAGE, f"size 0x{size:x}")
        marker = bytes.fromhex(m["bytes"])
        check(raw_bytes(d, pa + (va - page), len(marker)) == marker,
              f"pid {m['pid']}: marker not at 0x{pa:x}")


def t_dump_memory(name):
    """dump-memory --sparse of the ELF core: its first ram_size bytes equal
    QEMU's pmemsave of the RAM.  The file runs to the highest physical
    address (QEMU's ELF also holds the BIOS ROM just below 4 GiB), so the
    plain (non-sparse) form would write 4 GiB: not run here."""
    d, _, _ = guest(name)
    size = os.path.getsize(os.path.join(d, "dump.raw"))

    def digest(path, limit):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            left = limit
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
        return h.hexdigest()

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "mem.raw")
        ok(ex("dump-memory", "--sparse", os.path.join(d, "dump.elf"), out),
           "dump-memory --sparse")
        check(os.path.getsize(out) >= size,
              f"{os.path.getsize(out)} bytes < RAM {size}")
        check(digest(out, size) == digest(os.path.join(d, "dump.raw"), size),
              "dump-memory differs from dump.raw")


def _register():
    g = globals()
    for gname in GUESTS:
        ident = gname.replace("-", "_")
        for kind in ("process_list", "process_list_json", "process_list_conf",
                     "module_list", "map_symbol", "map_addr", "va_pages"):
            fn = g["t_" + kind]
            g[f"test_{kind}_{ident}"] = (lambda f=fn, n=gname: f(n))
    # 256 MiB hashed twice: one guest is enough.
    g["test_dump_memory_k61_4l_1c"] = lambda: t_dump_memory("k61-4l-1c")


_register()

if __name__ == "__main__":
    main(globals())
