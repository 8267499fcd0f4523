"""tinyvmi ps/modules on Windows.

Two kinds of evidence:
  - memory laid out from real profiles by tests/data/win_mem.py (the
    Windows 10 19041 x64 ISF with x64 paging; LibVMI's Windows XP SP2 x86
    Rekall profile with PAE and with legacy paging), compared with the
    ground truth the generator wrote, plus hostile variants;
  - the real Windows 10 triage dump (shared data), checked against facts
    read from its bytes here with this file's own parser.
Targets are found through a libvmi.conf entry (ostype, profile,
win_ntoskrnl_va) and --page-mode/--dtb, as a user would."""
import hashlib
import json
import lzma
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pyt import Skip, check, main, tinyvmi  # noqa: E402

GEN = os.path.join(os.path.dirname(HERE), "data", "win_mem.py")
DATA = "/work/shared/data"
TRIAGE_DIR = os.path.join(DATA, "windows-10-19041-x64-triage")
DUMP = os.path.join(TRIAGE_DIR, "triage_x64.dmp")
ISF = os.path.join(TRIAGE_DIR,
                   "ntkrnlmp.pdb-5278AFF86C341677D7D7835C85B7B844-1.json.xz")
XP = os.path.join(DATA, "profiles",
                  "libvmi-ntoskrnl.pdb.32962337f0f646388b39535cd8dd70e82"
                  ".rekall.json")
# Generated images are cached under build/, keyed by the generator's
# content, and written under a temporary name first (tests run in
# parallel, each in its own process).
TMP = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "tests",
                   "windows")
MODES = {"ia32e": "ia32e", "pae": "pae", "legacy": "legacy"}


def need(path):
    # The shared data is part of the test setup: its absence is a failure.
    check(os.path.exists(path), f"shared test data missing: {path}")


def generate(profile, paging, hostile="none", procs=300):
    """Image, truth and config of one variant (made once per process)."""
    need(profile)
    os.makedirs(TMP, exist_ok=True)
    with open(GEN, "rb") as f:
        tag = hashlib.sha256(f.read()).hexdigest()[:12]
    stem = f"{paging}-{hostile}-{procs}-{tag}"
    image = os.path.join(TMP, stem + ".raw")
    truth = os.path.join(TMP, stem + ".json")
    if not os.path.exists(truth):
        tmp = f".{os.getpid()}"
        subprocess.run([sys.executable, GEN, profile, image + tmp,
                        truth + tmp, "--paging", paging, "--hostile",
                        hostile, "--procs", str(procs)], check=True,
                       timeout=120)
        os.replace(image + tmp, image)
        os.replace(truth + tmp, truth)
    with open(truth) as f:
        t = json.load(f)
    key = "volatility_ist" if profile.endswith(".xz") else "rekall_profile"
    conf = os.path.join(TMP, stem + ".conf")
    with open(conf, "w") as f:
        f.write(f'{os.path.basename(image)} {{\n    ostype = "Windows";\n'
                f'    {key} = "{profile}";\n'
                f'    win_ntoskrnl_va = {t["kernel_base"]:#x};\n}}\n')
    return image, conf, t


def run_os(cmd, image, conf, t, *extra):
    return tinyvmi(cmd, image, "--config", conf, "--page-mode",
                   MODES[t["paging"]], "--dtb", hex(t["dtb"]), "--json",
                   *extra)


def ps(image, conf, t):
    p = run_os("ps", image, conf, t)
    return p, json.loads(p.stdout) if p.stdout.strip() else []


def proc_view(p):
    return (p["pid"], p["ppid"], p["name"], int(p["task"], 16),
            int(p["dtb"], 16), int(p["peb"], 16), p["create_time"],
            p["kernel_thread"])


def truth_view(p):
    return (p["pid"], p["ppid"], p["name"], p["task"], p["dtb"], p["peb"],
            p["create_time"], p["kernel_thread"])


def check_ps(profile, paging):
    image, conf, t = generate(profile, paging)
    p, got = ps(image, conf, t)
    check(p.returncode == 0, p.stderr)
    want = [t["idle"]] + t["processes"]
    check(len(got) == len(want), f"{len(got)} processes, want {len(want)}")
    for g, w in zip(got, want):
        check(proc_view(g) == truth_view(w),
              f"{proc_view(g)} != {truth_view(w)}")
    check(t["exited"]["task"] not in [int(g["task"], 16) for g in got],
          "the exited (unlinked) process is listed")
    check(got[1]["pid"] == 4 and got[1]["name"] == "System" and
          got[1]["kernel_thread"], "System is not pid 4, kernel-only")
    check(got[0]["pid"] == 0 and got[0]["name"] == "Idle", "no Idle first")
    print(f"{len(got)} processes match ({paging})")


def check_modules(profile, paging, hostile="none"):
    image, conf, t = generate(profile, paging, hostile)
    p = run_os("modules", image, conf, t)
    check(p.returncode == 0, p.stderr)
    got = json.loads(p.stdout)
    want = t["modules"]
    check(len(got) == len(want), f"{len(got)} modules, want {len(want)}")
    for g, w in zip(got, want):
        check((g["name"], int(g["base"], 16), g["size"],
               int(g["module"], 16)) ==
              (w["name"], w["base"], w["size"], w["addr"]), f"{g} != {w}")
    print(f"{len(got)} modules match ({paging}, {hostile})")


# ---- generated memory ----------------------------------------------------------

def test_w10_x64_processes():
    check_ps(ISF, "ia32e")


def test_w10_x64_modules():
    check_modules(ISF, "ia32e")


def test_xp_pae_processes():
    check_ps(XP, "pae")


def test_xp_pae_modules():
    check_modules(XP, "pae")


def test_xp_legacy_processes():
    check_ps(XP, "legacy")


def test_xp_legacy_modules():
    check_modules(XP, "legacy")


def check_offsets(profile, paging, build):
    """win-offsets prints the profile's offsets as the generator used
    them, the kernel's physical base and System's EPROCESS."""
    image, conf, t = generate(profile, paging)
    exe = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build",
                       "bin", "win-offsets")
    check(os.path.exists(exe), "win-offsets example not built")
    r = subprocess.run([exe, image, MODES[t["paging"]], hex(t["dtb"])],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, TINYVMI_CONF=conf))
    check(r.returncode == 0, r.stderr)
    want = dict(t["offsets"], win_ntoskrnl=t["kernel_pa"],
                win_ntoskrnl_va=t["kernel_base"],
                win_sysproc=t["processes"][0]["task"])
    for k, v in want.items():
        check(f"    {k} = {v:#x};\n" in r.stdout,
              f"{k} {v:#x} not in {r.stdout}")
    check(f", build {build}" in r.stdout, r.stdout)
    return image, conf, t


def test_w10_sym_and_win_offsets():
    """The sym command relocates by the kernel base."""
    image, conf, t = check_offsets(ISF, "ia32e", 19041)
    p = tinyvmi("sym", image, "PsActiveProcessHead", "--config", conf,
                "--page-mode", "ia32e", "--dtb", hex(t["dtb"]))
    check(p.returncode == 0, p.stderr)
    with lzma.open(ISF, "rt") as f:
        rva = json.load(f)["symbols"]["PsActiveProcessHead"]["address"]
    check(int(p.stdout, 16) == t["kernel_base"] + rva, p.stdout)


def test_xp_win_offsets():
    check_offsets(XP, "pae", 2600)


def test_config_offsets_override_profile():
    """libvmi.conf's win_pname wins over the profile's: one byte further
    on, every name loses its first character."""
    image, conf, t = generate(ISF, "ia32e")
    oconf = conf + f".off.{os.getpid()}"
    with open(conf) as f, open(oconf, "w") as g:
        g.write(f.read().replace(
            "win_ntoskrnl_va", f"win_pname = {t['offsets']['win_pname'] + 1:#x};"
            "\n    win_ntoskrnl_va", 1))
    p = run_os("ps", image, oconf, t)
    os.unlink(oconf)
    check(p.returncode == 0, p.stderr)
    got = json.loads(p.stdout)
    check(got[1]["pid"] == 4 and got[1]["name"] == "ystem", got[1])
    check(got[4]["name"] == t["processes"][3]["name"][1:], got[4])


def test_hostile_loop():
    image, conf, t = generate(ISF, "ia32e", "loop")
    p, got = ps(image, conf, t)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check("loops" in p.stderr, p.stderr)
    want = [t["idle"]] + t["processes"][:t["expect"]["processes"]]
    check([proc_view(g) for g in got] == [truth_view(w) for w in want],
          f"{len(got)} delivered, want {len(want)}")


def test_hostile_unmapped_link():
    image, conf, t = generate(ISF, "ia32e", "unmapped")
    p, got = ps(image, conf, t)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check("broken after" in p.stderr and "0xfffff80dead00000" in p.stderr,
          p.stderr)
    want = [t["idle"]] + t["processes"][:t["expect"]["processes"]]
    check([proc_view(g) for g in got] == [truth_view(w) for w in want],
          f"{len(got)} delivered, want {len(want)}")


def test_hostile_unmapped_link_pae():
    image, conf, t = generate(XP, "pae", "unmapped")
    p, got = ps(image, conf, t)
    check(p.returncode == 1 and "broken after" in p.stderr, p.stderr)
    check(len(got) == 1 + t["expect"]["processes"], f"{len(got)}")


def test_hostile_module_name_length():
    check_modules(ISF, "ia32e", "bigname")


def test_truncated_image():
    """Cut images: no crash; whatever is delivered is the truth's prefix;
    a walk that could not finish, or a start that failed, says why.  Some
    cut must leave a walk that got part of the way."""
    image, conf, t = generate(ISF, "ia32e")
    with open(image, "rb") as f:
        whole = f.read()
    partial = 0
    for frac in (0.97, 0.93, 0.85, 0.7, 0.5):
        cut = f"{image}.{int(frac * 100)}.{os.getpid()}"
        with open(cut, "wb") as g:
            g.write(whole[:int(len(whole) * frac) // 4096 * 4096])
        cconf = cut + ".conf"
        with open(conf) as f, open(cconf, "w") as g:
            g.write(f.read().replace(os.path.basename(image),
                                     os.path.basename(cut), 1))
        p = run_os("ps", cut, cconf, t)
        os.unlink(cut)
        os.unlink(cconf)
        check(p.returncode in (0, 1, 3), f"exit {p.returncode}: {p.stderr}")
        check(p.returncode == 0 or p.stderr.strip(), "no reason given")
        got = json.loads(p.stdout) if p.stdout.strip() else []
        got = [g for g in got if g["pid"] != 0]  # Idle may be cut off
        check([proc_view(g) for g in got] ==
              [truth_view(w) for w in t["processes"][:len(got)]],
              f"{frac}: not a prefix")
        if p.returncode == 1 and 0 < len(got) < len(t["processes"]):
            partial += 1
            check("broken after" in p.stderr, p.stderr)
        print(f"{frac}: exit {p.returncode}, {len(got)} processes")
    check(partial > 0, "no cut gave a partial walk")


def symbol_dir(name, layout):
    """A Volatility 3 symbol directory of links (not copies): the real
    profiles under their GUID+age names, and a decoy under a wrong one."""
    root = os.path.join(TMP, name)
    pre = "windows/" if layout == "volatility" else ""
    links = ((f"{pre}ntkrnlmp.pdb/5278AFF86C341677D7D7835C85B7B8441.json.xz",
              ISF),
             (f"{pre}ntoskrnl.pdb/32962337F0F646388B39535CD8DD70E83.json", XP),
             (f"{pre}ntkrnlmp.pdb/00000000000000000000000000000001.json", XP))
    for rel, src in links:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.symlink(src, path)
        except FileExistsError:  # made by this test before, or in parallel
            pass
    return root


def test_symbols_dir_by_guid_x64():
    """The kernel's RSDS record (written by the generator from the ISF's
    own GUID and age) picks the ISF; the directory comes from the
    config's win_symbols."""
    image, conf, t = generate(ISF, "ia32e")
    root = symbol_dir("syms-x64", "volatility")
    sconf = conf + f".sym.{os.getpid()}"
    with open(sconf, "w") as f:
        f.write(f'{os.path.basename(image)} {{ ostype = "Windows"; '
                f'win_symbols = "{root}"; '
                f'win_ntoskrnl_va = {t["kernel_base"]:#x}; }}\n')
    p = tinyvmi("ps", image, "--config", sconf, "--page-mode", "ia32e",
                "--dtb", hex(t["dtb"]))
    os.unlink(sconf)
    check(p.returncode == 0, p.stderr)
    first = p.stdout.splitlines()[0]
    check(f"{t['guid_age']}.json.xz (by the kernel's GUID+age "
          f"{t['guid_age']})" in first, first)
    check("unknown key" not in p.stderr, p.stderr)
    check(len(p.stdout.splitlines()) == 2 + 1 + len(t["processes"]),
          "process count")


def test_symbols_dir_by_guid_xp_flat():
    """The XP profile through --symbols, laid out without windows/."""
    image, conf, t = generate(XP, "pae")
    root = symbol_dir("syms-flat", "flat")
    bconf = conf + f".base.{os.getpid()}"
    with open(bconf, "w") as f:
        f.write(f'{os.path.basename(image)} {{ ostype = "Windows"; '
                f'win_ntoskrnl_va = {t["kernel_base"]:#x}; }}\n')
    p = tinyvmi("ps", image, "--config", bconf, "--symbols", root,
                "--page-mode", "pae", "--dtb", hex(t["dtb"]), "--json")
    check(p.returncode == 0, p.stderr)
    got = json.loads(p.stdout)
    check([proc_view(g) for g in got] ==
          [truth_view(w) for w in [t["idle"]] + t["processes"]], "list")
    # no profile for this GUID and nothing recorded to check offsets by
    empty = os.path.join(TMP, "syms-empty")
    os.makedirs(os.path.join(empty, "windows"), exist_ok=True)
    p = tinyvmi("ps", image, "--config", bconf, "--symbols", empty,
                "--page-mode", "pae", "--dtb", hex(t["dtb"]))
    os.unlink(bconf)
    check(p.returncode == 3 and "cannot choose a profile" in p.stderr,
          p.stderr)


def test_wrong_profile_rejected():
    """The XP profile on the x64 image: refused, saying why."""
    image, conf, t = generate(ISF, "ia32e")
    bad = conf + ".xp"
    with open(conf) as f, open(bad, "w") as g:
        g.write(f.read().replace(f'volatility_ist = "{ISF}"',
                                 f'rekall_profile = "{XP}"'))
    p = run_os("ps", image, bad, t)
    check(p.returncode == 3 and "32-bit kernel" in p.stderr, p.stderr)


def test_no_kernel_base():
    image, conf, t = generate(ISF, "ia32e")
    p = tinyvmi("ps", image, "--profile", ISF, "--page-mode", "ia32e",
                "--dtb", hex(t["dtb"]))
    check(p.returncode == 3 and "base is unknown" in p.stderr, p.stderr)


# ---- the real triage dump --------------------------------------------------------

def dump_facts():
    """From the dump's bytes: header fields, the current EPROCESS copy's
    pid and name at the ISF's offsets."""
    need(DUMP)
    need(ISF)
    with open(DUMP, "rb") as f:
        d = f.read()
    with lzma.open(ISF, "rt") as f:
        isf = json.load(f)
    ep = isf["user_types"]["_EPROCESS"]["fields"]
    proc = struct.unpack_from("<I", d, 0x2000 + 0x20)[0]
    pid = struct.unpack_from("<Q", d, proc + ep["UniqueProcessId"]
                             ["offset"])[0]
    off = ep["ImageFileName"]["offset"]
    name = d[proc + off:proc + off + 15].split(b"\0")[0].decode()
    return {"pid": pid, "name": name,
            "active": struct.unpack_from("<Q", d, 0x28)[0],
            "dtb": struct.unpack_from("<Q", d, 0x10)[0]}


def test_triage_current_process():
    f = dump_facts()
    check(f["pid"] == 4 and f["name"] == "System", f)
    p = tinyvmi("ps", DUMP, "--profile", ISF, "--json")
    check(p.returncode in (0, 1), p.stderr)
    got = json.loads(p.stdout)
    check(got and got[0]["pid"] == f["pid"] and got[0]["name"] == f["name"],
          got[:1])
    check(int(got[0]["dtb"], 16) == f["dtb"], got[0])
    t = tinyvmi("ps", DUMP, "--profile", ISF)
    check(t.stdout.startswith("# Windows build 19041"), t.stdout)


def triage_list():
    """The process list as the dump's saved blocks hold it, walked here:
    (EPROCESS, pid or None) per entry, and whether it closed."""
    with open(DUMP, "rb") as f:
        d = f.read()
    with lzma.open(ISF, "rt") as f:
        ep = json.load(f)["user_types"]["_EPROCESS"]["fields"]
    links = ep["ActiveProcessLinks"]["offset"]
    pid_at = ep["UniqueProcessId"]["offset"]
    n, table = struct.unpack_from("<II", d, 0x2000 + 0x7c)[0], \
        struct.unpack_from("<I", d, 0x2000 + 0x78)[0]
    blocks = [struct.unpack_from("<QII", d, table + 16 * i)
              for i in range(n)]

    def rd(va, ln):
        for b, fo, sz in blocks:
            if b <= va and va + ln <= b + sz:
                return d[fo + va - b:fo + va - b + ln]
        return None

    head = struct.unpack_from("<Q", d, 0x28)[0]
    cur, out = head, []
    for _ in range(10000):
        raw = rd(cur, 8)
        if raw is None:
            return out, False
        nxt = struct.unpack("<Q", raw)[0]
        if nxt == head:
            return out, True
        pid = rd(nxt - links + pid_at, 8)
        out.append((nxt - links, struct.unpack("<Q", pid)[0] if pid
                    else None))
        cur = nxt
    return out, False


def test_triage_process_list():
    """Every entry the dump's blocks hold, in order; System from the copy
    (its pid field is not in a saved block)."""
    need(DUMP)
    want, closed = triage_list()
    p = tinyvmi("ps", DUMP, "--profile", ISF, "--json")
    got = json.loads(p.stdout)
    check(p.returncode == (0 if closed else 1), p.stderr)
    check([int(g["task"], 16) for g in got] == [w[0] for w in want],
          f"{got} vs {want}")
    for g, (_, pid) in zip(got[1:], want[1:]):
        check(g["pid"] == (pid if pid is not None else -1), g)
    print(f"{len(got)} processes, list {'closed' if closed else 'open'}")


def test_triage_modules_from_driver_list():
    """PsLoadedModuleList is not among the saved blocks: the modules come
    from the dump's own driver list (DUMP_DRIVER_ENTRY64: name offset,
    then the KLDR entry at 8: DllBase at +0x30, SizeOfImage at +0x40;
    names are DUMP_STRINGs, full paths), read here with this file's own
    parser."""
    need(DUMP)
    with open(DUMP, "rb") as f:
        d = f.read()
    table, count = struct.unpack_from("<II", d, 0x2000 + 0x30)
    want = []
    for i in range(count):
        e = table + 0x90 * i
        name_at = struct.unpack_from("<I", d, e)[0]
        n = struct.unpack_from("<I", d, name_at)[0]
        path = d[name_at + 4:name_at + 4 + 2 * n].decode("utf-16-le")
        want.append((path.split("\\")[-1],
                     struct.unpack_from("<Q", d, e + 8 + 0x30)[0],
                     struct.unpack_from("<I", d, e + 8 + 0x40)[0]))
    p = tinyvmi("modules", DUMP, "--profile", ISF, "--json")
    check(p.returncode == 0, p.stderr)
    got = [(m["name"], int(m["base"], 16), m["size"])
           for m in json.loads(p.stdout)]
    check(got == want, f"{got[:3]} vs {want[:3]}")
    check(want[0][0] == "ntoskrnl.exe" and want[0][1] == 0xfffff8047ba00000,
          want[0])
    print(f"{len(got)} drivers")


def test_triage_symbols_dir_picks_isf():
    """A Volatility 3 symbol directory with the shipped ISF and the XP
    profile (links, not copies): the ISF is chosen by its offsets."""
    need(DUMP)
    root = os.path.join(TMP, "syms-triage")
    for sub, src, name in (("ntkrnlmp.pdb", ISF,
                            "5278AFF86C341677D7D7835C85B7B8441.json.xz"),
                           ("ntoskrnl.pdb", XP,
                            "32962337F0F646388B39535CD8DD70E83.json")):
        d = os.path.join(root, "windows", sub)
        os.makedirs(d, exist_ok=True)
        try:
            os.symlink(src, os.path.join(d, name))
        except FileExistsError:
            pass
    p = tinyvmi("ps", DUMP, "--symbols", root)
    check(p.returncode in (0, 1), p.stderr)
    first = p.stdout.splitlines()[0]
    check("ntkrnlmp.pdb/5278AFF86C341677D7D7835C85B7B8441.json.xz" in first
          and "offsets match" in first, first)


def test_triage_xp_profile_rejected():
    need(DUMP)
    p = tinyvmi("ps", DUMP, "--profile", XP)
    check(p.returncode == 3, p.stderr)
    check("disagrees at PsActiveProcessHead" in p.stderr, p.stderr)


if __name__ == "__main__":
    main(globals())
