"""TinyVMI's Xen lab (tests/guests/xenlab.py): Debian's Xen 4.17 under QEMU TCG,
a PV dom0, a PV and a PVH guest.

One run of the lab serves every test here: dom0 runs JOB (below) after both
guests printed their ground truth; its output, the guests' console logs and
the results come back through the 9p share.  The run is redone only when one
of its inputs changed (the lab's scripts, the job, the tinyvmi binary, the
fetched packages).  Oracles are outside TinyVMI: the guests' own /proc (their
console), Xen's toolstack (xl list -l) and the guest kernels' boot messages.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))
from pyt import BUILD, ROOT, TINYVMI, check, main, run  # noqa: E402
from test_linux import compare_modules, compare_ps  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import lab as labmod  # noqa: E402
import xenlab  # noqa: E402

OUT = os.path.join(BUILD, "lab", "xen", "test-run")
PV, PVH = "tvpv", "tvpvh"
XENQ = os.path.join(BUILD, "tests", "lab", "xenq")

# Runs in dom0 (busybox sh).  $XENLAB_OUT is the share's out/ directory.
JOB = r"""#!/bin/sh
# job of tests/xen/test_xen.py (run in dom0 by xenlab.py)
O=$XENLAB_OUT
# ldretry CMD...: CMD, run again (up to 3 times) when it died before doing its
# work the way dom0's processes now and then do under TCG: in the dynamic loader
# ("Inconsistency detected by ld.so: ... __rtld_mutex_init") or of SIGABRT
# (seen from xl).  Other failures are not retried.  Retries are logged to
# $O/ldretry.log, which the tests print.
ldretry() {
	for t in 1 2 3; do
		"$@" 2> /tmp/ldretry.err
		rc=$?
		[ $rc -eq 134 ] ||
			grep -q "Inconsistency detected by ld.so" /tmp/ldretry.err || break
		echo "$* (try $t): $(cat /tmp/ldretry.err)" >> "$O/ldretry.log"
	done
	cat /tmp/ldretry.err >&2
	return $rc
}
TV="ldretry /share/tv/tinyvmi"
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
echo "== tinyvmi in dom0"
$TV --version
echo "version rc=$?"
# ts: seconds since boot with centiseconds, for timing without `time`'s format
ts() { read -r up _ < /proc/uptime; echo "$up"; }
for g in $XENLAB_GUESTS; do
	for what in info ps modules; do
		echo "== $what $g"
		t0=$(ts)
		$TV $what xen:$g --json > "$O/$g.$what.json" 2> "$O/$g.$what.err"
		echo "rc=$? t0=$t0 t1=$(ts)"
	done
	echo "== sym $g"
	for n in linux_banner init_task do_sys_openat2 sys_call_table; do
		echo "$n $($TV sym xen:$g $n 2>&1) rc=$?"
	done
done
for g in $XENLAB_GUESTS; do
	echo "== xenq $g"
	ldretry /share/tv/xenq xen:$g 2>&1
	echo "rc=$?"
done
# The PV guest paused: Xen's own dump of it, and tinyvmi's raw dump of the same
# memory.  xl dump-core writes to dom0's RAM first: its zero-copy writes of
# foreign-mapped pages fail on the 9p share (EFAULT).  Not the PVH guest: for
# an auto-translated guest xl dump-core visits every guest frame up to Xen's
# special pages just below 4 GiB, which took more than 5 minutes here.
for g in tvpv; do
	echo "== dump $g"
	ldretry xl pause $g
	t0=$(ts)
	timeout -s KILL 300 xl dump-core $g /tmp/$g.core
	rc=$?
	echo "dump-core rc=$rc t0=$t0 t1=$(ts)"
	if [ $rc -eq 0 ]; then
		cp /tmp/$g.core "$O/$g.core"
		echo "cp rc=$?"
	fi
	rm -f /tmp/$g.core
	t0=$(ts)
	$TV dump xen:$g "$O/$g.tv.raw" 2> "$O/$g.dump.err"
	echo "tinyvmi dump rc=$? t0=$t0 t1=$(ts)"
	$TV read xen:$g 0x1000 16 --pa 2>&1
	ldretry xl unpause $g
done
echo "== errors"
$TV ps xen:no-such-guest 2>&1; echo "rc=$?"
$TV ps xen:4242 2>&1; echo "rc=$?"
# Xen's libraries missing: hidden for one run (tinyvmi loads them at run time)
L=/lib/x86_64-linux-gnu
mv $L/libxenforeignmemory.so.1 /tmp/
$TV ps xen:tvpvh 2>&1; echo "rc=$?"
mv /tmp/libxenforeignmemory.so.1 $L/
echo "== destroyed"
# The guest destroyed while tinyvmi reads it: a clear error, no hang.
$TV dump xen:tvpv /tmp/gone.raw > /tmp/gone.out 2>&1 &
sleep 1
xl destroy tvpv
t0=$(ts)
wait $!
echo "rc=$? t0=$t0 t1=$(ts)"
cat /tmp/gone.out
ls /tmp/gone.raw* 2>&1
exit 0
"""

def xen_run():
    """The lab's results for JOB (a run of 5-18 minutes when not cached)."""
    res = xenlab.cached_run("test_xen", JOB, OUT, [TINYVMI, XENQ])
    check(not res.get("error"), f"the Xen lab run failed: {res.get('error')}")
    return res


def text(name):
    with open(os.path.join(OUT, name), "rb") as f:
        return f.read().decode(errors="replace").replace("\r", "")


sections = xenlab.job_sections


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
    retried = os.path.join(OUT, "ldretry.log")
    if os.path.exists(retried):  # not a failure: the emulation's, said aloud
        print("dom0 programs retried after dying at start:\n" + text("ldretry.log"))
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


def job_section(title):
    return sections(text("job.out")).get(title, [])


def timed_rc(lines):
    """rc and seconds of a `rc=N t0=A t1=B` line."""
    for ln in lines:
        m = re.match(r"rc=(\d+) t0=([\d.]+) t1=([\d.]+)", ln)
        if m:
            return int(m.group(1)), float(m.group(3)) - float(m.group(2))
    return None, None


def tv_json(g, what):
    """What `tinyvmi WHAT xen:G --json` printed in dom0 (it must have succeeded)."""
    rc, secs = timed_rc(job_section(f"{what} {g}"))
    err = text(f"{g}.{what}.err") if os.path.exists(os.path.join(OUT, f"{g}.{what}.err")) \
        else "(no stderr file)"
    check(rc == 0, f"tinyvmi {what} xen:{g} in dom0: rc {rc}\n{err[-2000:]}")
    return json.loads(text(f"{g}.{what}.json"))


def ps_modules(g):
    """`tinyvmi ps` and `modules` on the live guest, in dom0, equal the guest's own
    /proc (printed on its console before the job ran)."""
    xen_run()
    t = truth(g)
    compare_ps(tv_json(g, "ps"), t)
    compare_modules(tv_json(g, "modules"), t)


def sym(g):
    """Symbols by name resolve where the guest's /proc/kallsyms says."""
    xen_run()
    t = truth(g)
    lines = job_section(f"sym {g}")
    check(len(lines) >= 4, f"sym {g}: {lines}")
    for ln in lines:
        name, rest = ln.split(" ", 1)
        want = t["kallsyms"].get(name)
        check(want is not None, f"{g}: the guest's kallsyms block has no {name}")
        got = rest.split()[0]
        check(rest.endswith("rc=0") and int(got, 16) == int(want, 16),
              f"{g}: tinyvmi sym {name}: {rest!r}; the guest says {want}")


def control(g):
    """Registers, pause and resume of the live domain (tests/lab/xenq.c): the id and
    vCPU count are Xen's (xl list -l); while paused the guest's jiffies stand still
    and after resuming they move; DR0 written reads back; CR3 is the page-table
    root of one of the guest's tasks."""
    xen_run()
    lines = job_section(f"xenq {g}")
    check(lines and lines[-1] == "rc=0", f"xenq xen:{g}:\n" + "\n".join(lines))
    kv = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in lines if " " in ln}
    doms = {d["config"]["c_info"]["name"]: d for d in json.loads(text("xl-list-l.json"))}
    check(int(kv["vmid"]) == doms[g]["domid"], f"{g}: vmid {kv['vmid']}, xl says "
          f"{doms[g]['domid']}")
    check(kv["name"] == g, f"{g}: name {kv['name']}")
    check(int(kv["vcpus"]) == doms[g]["config"]["b_info"]["max_vcpus"], f"{g}: {kv}")
    a, b = map(int, kv["paused-jiffies"].split())
    check(a == b and a > 0, f"{g}: jiffies moved while paused: {a} -> {b}")
    c, d = map(int, kv["running-jiffies"].split())
    check(d > c >= b, f"{g}: jiffies after resuming: {c} -> {d} (paused at {b})")
    old, set_, back = (int(v, 16) for v in kv["dr0"].split())
    check(back == set_, f"{g}: DR0 written {set_:#x}, read back {back:#x}")
    dtbs = {int(p["dtb"], 16) for p in tv_json(g, "ps")}
    check(int(kv["cr3"], 16) in dtbs, f"{g}: vCPU 0's CR3 {kv['cr3']} is no task's "
          f"page-table root ({len(dtbs)} roots)")


def info(g, typ):
    """`tinyvmi info` names the guest as Xen sees it."""
    xen_run()
    i = tv_json(g, "info")
    doms = {d["config"]["c_info"]["name"]: d for d in json.loads(text("xl-list-l.json"))}
    vcpus = doms[g]["config"]["b_info"]["max_vcpus"]
    check(i.get("format") == "xen", f"info xen:{g}: format {i.get('format')}")
    check(len(i.get("vcpus", [])) == vcpus, f"info xen:{g}: vcpus {i.get('vcpus')}, "
          f"xl says {vcpus}")
    check(i.get("page_mode") == "IA-32e", f"info xen:{g}: page mode {i.get('page_mode')}")
    # all of the guest's RAM, give or take what the domain builder keeps back
    ram = xenlab.GUEST_MEM_MIB << 20
    check(ram * 7 // 8 <= i.get("memsize", 0) <= ram + (8 << 20),
          f"info xen:{g}: memsize {i.get('memsize')} for {xenlab.GUEST_MEM_MIB} MiB")


def dump_matches_core(g):
    """With the guest paused, every page of Xen's own `xl dump-core` equals the same
    frame of `tinyvmi dump xen:G` (machine frames for PV, guest frames for PVH)."""
    xen_run()
    lines = job_section(f"dump {g}")
    check(any(ln.startswith("dump-core rc=0") for ln in lines),
          f"xl dump-core {g} failed in dom0:\n" + "\n".join(lines))
    check(any(ln.startswith("tinyvmi dump rc=0") for ln in lines),
          f"tinyvmi dump xen:{g} failed:\n" + "\n".join(lines) + "\n" +
          text(f"{g}.dump.err")[-2000:])
    core = os.path.join(OUT, f"{g}.core")
    raw = os.path.join(OUT, f"{g}.core.raw")
    facts = xenlab.core2raw(core, raw)
    check(facts["pv"] == (g == PV), f"{g}: dump-core facts {facts}")
    ours = os.path.join(OUT, f"{g}.tv.raw")
    n = differ = 0
    first = []
    size_b = os.path.getsize(ours)
    with open(raw, "rb") as a, open(ours, "rb") as b:
        for fr in xenlab.core_frames(core):
            a.seek(fr * 4096)
            pa = a.read(4096)
            # past the end: zero pages tinyvmi dump left as a hole at the end
            b.seek(min(fr * 4096, size_b))
            pb = b.read(4096).ljust(4096, b"\0")
            n += 1
            if pa != pb:
                differ += 1
                if len(first) < 5:
                    first.append(hex(fr))
    ram = xenlab.GUEST_MEM_MIB << 20
    check(n * 4096 >= ram * 7 // 8, f"{g}: the core holds only {n} pages")
    check(differ == 0, f"{g}: {differ} of {n} pages differ from Xen's dump, "
          f"first at frames {first}")


def core_file(g):
    """Xen's own dump-core of the paused guest, read by TinyVMI's file driver on
    the host: the format and vCPU 0's CR3 as the core's own header and context
    say (read by xenlab.core2raw, an independent reader), and ps and modules
    equal to what the guest printed about itself."""
    xen_run()
    lines = job_section(f"dump {g}")
    check(any(ln.startswith("dump-core rc=0") for ln in lines),
          f"xl dump-core {g} failed in dom0:\n" + "\n".join(lines))
    core = os.path.join(OUT, f"{g}.core")
    facts = xenlab.core2raw(core, os.path.join(OUT, f"{g}.core.raw"))
    p = run([TINYVMI, "info", core, "--json"], timeout=300)
    check(p.returncode == 0, f"tinyvmi info {core}: {p.stderr}")
    i = json.loads(p.stdout)
    want = "xen-core (PV, machine frames)" if g == PV else "xen-core (HVM)"
    check(i["format"] == want, f"{g}.core: format {i['format']!r}, want {want!r}")
    check(i["page_mode"] == "IA-32e", f"{g}.core: page mode {i['page_mode']}")
    cr3 = int(facts["cr3"][0], 16) & ~0xfff
    check(int(i["kernel_dtb"], 16) == cr3, f"{g}.core: CR3 {i['kernel_dtb']}, the "
          f"core's context says {cr3:#x}")
    t = truth(g)
    for what, cmp in (("ps", compare_ps), ("modules", compare_modules)):
        p = run([TINYVMI, what, core, "--json"], timeout=300)
        check(p.returncode == 0, f"tinyvmi {what} {core}: {p.stderr}")
        cmp(json.loads(p.stdout), t)


for _g, _t in ((PV, "pv"), (PVH, "pvh")):
    for _fn in (ps_modules, sym, control) + ((dump_matches_core, core_file)
                                             if _g == PV else ()):
        globals()[f"test_{_fn.__name__}_{_t}"] = (lambda f, g: lambda: f(g))(_fn, _g)
    globals()[f"test_info_{_t}"] = (lambda g, t: lambda: info(g, t))(_g, _t)


def test_errors():
    """An unknown name or id gives a clear error and exit 3, no hang."""
    xen_run()
    lines = job_section("errors")
    check(len(lines) >= 4, f"errors: {lines}")
    check("no Xen domain is named no-such-guest" in lines[0] and
          PV in lines[0] and PVH in lines[0] and lines[1] == "rc=3",
          f"unknown name: {lines[:2]}")
    check("no Xen domain has id 4242" in lines[2] and lines[3] == "rc=3",
          f"unknown id: {lines[2:4]}")
    check("cannot be loaded" in lines[4] and "libxenforeignmemory.so.1" in lines[4] and
          lines[5] == "rc=3", f"missing library: {lines[4:6]}")


def test_destroyed_mid_session():
    """A guest destroyed while tinyvmi dumps it: tinyvmi stops with an error that
    says so, promptly, and leaves no partial output."""
    xen_run()
    lines = job_section("destroyed")
    rc, secs = timed_rc(lines)
    check(rc not in (None, 0), f"tinyvmi dump of a destroyed guest: {lines}")
    check(secs is not None and secs < 60, f"tinyvmi took {secs} s to notice")
    msg = "\n".join(lines[1:])
    check("no longer exists" in msg or "has shut down" in msg,
          f"the error does not say the domain is gone:\n{msg}")
    check("No such file" in lines[-1], f"partial output left: {lines[-1]}")


if __name__ == "__main__":
    main(globals())
