"""TinyVMI's Xen lab (tests/guests/xenlab.py): Debian's Xen 4.17 under QEMU TCG,
a PV dom0, a PV and a PVH guest.

One run of the lab serves every test here: dom0 runs JOB (below) after both
guests printed their ground truth; its output, the guests' console logs and
the results come back through the 9p share.  The run is redone only when one
of its inputs changed (the lab's scripts, the job, the tinyvmi binary, the
fetched packages).  Oracles are outside TinyVMI: the guests' own /proc (their
console), Xen's toolstack (xl list -l) and the guest kernels' boot messages.
"""
import hashlib
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))
from pyt import BUILD, ROOT, TINYVMI, check, main, run  # noqa: E402
from test_linux import compare_modules, compare_ps  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import lab as labmod  # noqa: E402
import xenlab  # noqa: E402

XENLAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "xenlab.py")]
OUT = os.path.join(BUILD, "lab", "xen", "test-run")
PV, PVH = "tvpv", "tvpvh"

# Runs in dom0 (busybox sh).  $XENLAB_OUT is the share's out/ directory.
JOB = r"""#!/bin/sh
# job of tests/xen/test_xen.py (run in dom0 by xenlab.py)
O=$XENLAB_OUT
echo "== xl list"
xl list
xl list -l > "$O/xl-list-l.json" 2> "$O/xl-list-l.err"
echo "== /dev/xen"
ls -l /dev/xen
for g in $XENLAB_GUESTS; do
	echo "== truth $g"
	sed -n '/^===TVLAB-BEGIN uname===/,/^===TVLAB-END modules===/p' \
		"$O/console/guest-$g.log" | tr -d '\r'
done
# The PVH guest's memory, paused, as Xen's own dump.  Not written straight to the
# 9p share: 9p's zero-copy write cannot pin foreign-mapped pages (EFAULT), so
# through a fifo (cat copies), or if that fails via dom0's RAM.
echo "== dump-core tvpvh"
xl pause tvpvh
mkfifo /tmp/core.fifo
cat /tmp/core.fifo > "$O/tvpvh.core" &
# bounded: one run stalled here for minutes (the rest of the job must still run)
timeout -s KILL 100 xl dump-core tvpvh /tmp/core.fifo
rc=$?
kill %1 2>/dev/null
wait
echo "dump-core rc=$rc"
ls -l "$O/tvpvh.core"
echo "== tinyvmi in dom0"
/share/tv/tinyvmi --version
echo "version rc=$?"
/share/tv/tinyvmi info "$O/tvpvh.core"
echo "info rc=$?"
xl unpause tvpvh
exit 0
"""

HOST_TOOLS = ("qemu-system-x86_64", "apt-get", "apt-cache", "dpkg-deb", "ldd", "nice")


def inputs_digest():
    h = hashlib.sha256(JOB.encode())
    for f in (os.path.join(ROOT, "tests", "guests", n) for n in
              ("xenlab.py", "xen-dom0-init.sh", "init.sh", "lab.py")):
        with open(f, "rb") as fh:
            h.update(fh.read())
    for f in (TINYVMI, os.path.join(BUILD, "lab", "xen", "fetch.json")):
        if os.path.exists(f):
            with open(f, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def xen_run():
    """The lab's results for JOB (a run of about 3-6 minutes when not cached)."""
    missing = [t for t in HOST_TOOLS if not shutil.which(t)]
    check(not missing, f"the Xen lab needs {missing} on the host")
    check(os.path.exists(TINYVMI), f"{TINYVMI} is not built (make all)")
    digest = inputs_digest()
    res = labmod.read_json(os.path.join(OUT, "result.json")) or {}
    # a failed run is kept too (every test reports it; a changed input reruns);
    # XENLAB_REUSE=1 keeps the last run whatever changed (while editing a test)
    if res.get("digest") != digest and not (os.environ.get("XENLAB_REUSE") and res):
        p = run(XENLAB + ["fetch"], timeout=900)
        check(p.returncode == 0, f"xenlab.py fetch failed:\n{p.stderr[-3000:]}")
        job = os.path.join(BUILD, "lab", "xen", "test_xen-job.sh")
        with open(job, "w") as f:
            f.write(JOB)
        p = run(XENLAB + ["run", job, "--out", OUT], timeout=1300)
        res = labmod.read_json(os.path.join(OUT, "result.json")) or {}
        if p.returncode and not res.get("error"):
            res["error"] = f"xenlab.py run failed ({p.returncode}):\n{p.stderr[-5000:]}"
        res["digest"] = digest
        os.makedirs(OUT, exist_ok=True)
        labmod.write_json(labmod.Path(OUT) / "result.json", res)
    elif res.get("digest") != digest:
        print("XENLAB_REUSE: the last run is used, inputs changed since", file=sys.stderr)
    check(not res.get("error"), f"the Xen lab run failed: {res.get('error')}")
    return res


def text(name):
    with open(os.path.join(OUT, name), "rb") as f:
        return f.read().decode(errors="replace").replace("\r", "")


def sections(out):
    """job.out split at its '== title' lines: {title: [lines]}"""
    secs, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("== "):
            cur = secs.setdefault(ln[3:].strip(), [])
        elif cur is not None:
            cur.append(ln)
    return secs


def truth(g):
    """The guest's uname, ps, modules and kallsyms blocks.  Not lab.parse_truth:
    the blocks built from $(cat ...) children (modsections, cmdline) lose lines
    when a child segfaults, which happens in these guests (see xenlab.QEMU_CPU)."""
    b = labmod.serial_blocks(console(g))
    need = {"uname", "ps", "modules", "kallsyms"}
    check(need <= set(b), f"{g}: truth blocks {sorted(b)}, missing {sorted(need - set(b))}")
    return {"uname": b["uname"][0].strip(), "ps": labmod.parse_ps(b["ps"]),
            "modules": labmod.parse_modules(b["modules"], {}),
            "kallsyms": labmod.parse_kallsyms(b["kallsyms"])[0]}


def console(g):
    return os.path.join(OUT, "console", f"guest-{g}.log")


def test_run_completes():
    res = xen_run()
    kinds = [k for k, _ in res["markers"]]
    for k in ("DOM0-UP", "TOOLSTACK", "JOB-DONE"):
        check(k in kinds, f"dom0 never reported {k}: {kinds}")
    caps = dict(res["markers"]).get("TOOLSTACK", "")
    check(re.search(r"virt_caps\s*:\s*pv hvm", caps), f"Xen's virt_caps: {caps!r}")


def test_guests_pv_and_pvh():
    """Both guests are listed by xl, with the type Xen built them as, and each
    guest kernel says how it booted."""
    xen_run()
    listed = sections(text("job.out")).get("xl list", [])
    names = {ln.split()[0] for ln in listed[1:] if ln.split()}
    check({"Domain-0", PV, PVH} <= names, f"xl list shows {sorted(names)}:\n"
          + "\n".join(listed))
    doms = json.loads(text("xl-list-l.json"))
    types = {d["config"]["c_info"]["name"]: d["config"]["c_info"]["type"]
             for d in doms if d.get("config", {}).get("c_info")}
    check(types.get(PV) == "pv" and types.get(PVH) == "pvh",
          f"xl list -l types: {types}")
    # Linux's own view (arch/x86/xen): the hypervisor it detected and the
    # "Booting kernel on ..." line (pv_info.name: "Xen" or "Xen PVH")
    for g, det, boot in ((PV, "Xen PV", "Xen"), (PVH, "Xen HVM", "Xen PVH")):
        log = text(f"console/guest-{g}.log")
        m = re.search(r"Hypervisor detected: ([^\n]*)", log)
        check(m and m.group(1).strip() == det, f"{g}: {m and m.group(0)!r}, want {det!r}")
        m = re.search(r"Booting kernel on ([^\n]*)", log)
        check(m and m.group(1).strip() == boot, f"{g}: {m and m.group(0)!r}, want {boot!r}")


def test_guest_truth():
    """Each guest printed its ground truth (ps, modules), the job saw the same."""
    xen_run()
    secs = sections(text("job.out"))
    kver = labmod.kernel_info(xenlab.KERNEL_LINE)["kver"]
    for g in (PV, PVH):
        t = truth(g)
        check(t["uname"] == kver, f"{g}: uname {t['uname']}, the lab's kernel is {kver}")
        names = {p["name"] for p in t["ps"]}
        for want in ("tvlab-sleeper", "tvlab-idle", "tvlab-heartbeat", "kthreadd"):
            check(want in names, f"{g}: no {want} in its ps: {sorted(names)}")
        check(any(p["pid"] == 1 and not p["kthread"] for p in t["ps"]),
              f"{g}: no user pid 1 in its ps")
        check({m["name"] for m in t["modules"]} == {"loop", "dummy"},
              f"{g}: modules {[m['name'] for m in t['modules']]}")
        check(len(t["kallsyms"]) > 10, f"{g}: kallsyms block has {len(t['kallsyms'])}")
        job = secs.get(f"truth {g}", [])
        blk = labmod.BLOCK_RE.search("\n".join(job) + "\n")
        check(blk and "===TVLAB-BEGIN ps===" in "\n".join(job),
              f"{g}: the job printed no truth:\n" + "\n".join(job[:20]))
        jps = labmod.parse_ps(re.search(r"===TVLAB-BEGIN ps===\n(.*?)\n===TVLAB-END ps===",
                                        "\n".join(job), re.S).group(1).split("\n"))
        check(jps == t["ps"], f"{g}: the job's ps differs from the console's")


def test_dom0_privcmd():
    xen_run()
    lines = sections(text("job.out")).get("/dev/xen", [])
    priv = [ln for ln in lines if ln.split() and ln.split()[-1] == "privcmd"]
    check(priv and priv[0].startswith("c"),
          "dom0 has no /dev/xen/privcmd character device:\n" + "\n".join(lines))


def test_tinyvmi_runs_in_dom0():
    """The host's tinyvmi, with its libraries from the share, runs in dom0."""
    xen_run()
    lines = sections(text("job.out")).get("tinyvmi in dom0", [])
    want = run([TINYVMI, "--version"]).stdout.strip()
    check(lines[:2] == [want, "version rc=0"],
          f"tinyvmi --version in dom0: {lines[:2]}, on the host: {want!r}")


def test_dump_core_ps_modules():
    """`xl dump-core` of the paused PVH guest, turned into a raw image (offset =
    guest frame) on the host: tinyvmi's ps and modules on it equal what the
    guest printed about itself.  CR3 comes from the core's own vCPU context."""
    xen_run()
    dc = sections(text("job.out")).get("dump-core tvpvh", [])
    check("dump-core rc=0" in dc, "xl dump-core failed in dom0:\n" + "\n".join(dc))
    raw = os.path.join(OUT, "tvpvh.raw")
    facts = xenlab.core2raw(os.path.join(OUT, "tvpvh.core"), raw)
    check(not facts["pv"] and facts["vcpus"] == 1, f"dump-core facts: {facts}")
    ram = xenlab.GUEST_MEM_MIB << 20
    # the guest's RAM is in the core (give or take Xen's special pages and
    # what the domain builder keeps back)
    check(ram - ram // 16 <= facts["pages"] * 4096 <= ram + (4 << 20),
          f"{facts['pages']} pages for a guest of {xenlab.GUEST_MEM_MIB} MiB")
    t = truth(PVH)
    args = ["--page-mode", "ia32e", "--dtb", facts["cr3"][0], "--json"]
    for what, cmp in (("ps", compare_ps), ("modules", compare_modules)):
        p = run([TINYVMI, what, raw, *args], timeout=300)
        check(p.returncode == 0, f"tinyvmi {what} {raw} {' '.join(args)}: {p.stderr}")
        cmp(json.loads(p.stdout), t)


if __name__ == "__main__":
    main(globals())
