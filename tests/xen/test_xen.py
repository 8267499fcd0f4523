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
from pyt import BUILD, ROOT, TINYVMI, Skip, check, main, run  # noqa: E402
from test_linux import compare_modules, compare_ps  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import lab as labmod  # noqa: E402
import xenlab  # noqa: E402

OUT = os.path.join(BUILD, "lab", "xen", "test-run")
PV, PVH = "tvpv", "tvpvh"
XENQ = os.path.join(BUILD, "tests", "lab", "xenq")
XENEV = os.path.join(BUILD, "tests", "lab", "xenev")
EXAMPLES = [os.path.join(BUILD, "bin", f"{e}-event-example") for e in ("cr3", "msr")]

# Runs in dom0 (busybox sh).  $XENLAB_OUT is the share's out/ directory.
JOB = r"""#!/bin/sh
# job of tests/xen/test_xen.py (run in dom0 by xenlab.py)
O=$XENLAB_OUT
# bound S CMD...: CMD, sent SIGINT after S seconds (the event tools detach on
# it) and SIGKILL 30 s later; its status then says so (130, 137).  A program
# that hangs fails its own step, not the rest of the job.
bound() { t=$1; shift; timeout -s INT -k 30 "$t" "$@"; }
# ldretry CMD...: CMD, run again (up to 3 times) when it died the way dom0's
# processes now and then do under TCG: in the dynamic loader ("Inconsistency
# detected by ld.so: ... __rtld_mutex_init"), of SIGABRT (seen from xl) or of
# SIGSEGV (seen once from tinyvmi ps, which then ran clean on the same guest),
# before it could start (127: seen from busybox's timeout in a loaded dom0),
# or stuck past its bound (130, 137: a clean-clone run's whole job was once
# killed at its 20-minute bound while a 30 s trace ran, on a slower host).
# Other failures are not retried.  Retries are logged to $O/ldretry.log, which
# the tests print (a failure of ours that repeats still fails the step).
ldretry() {
	for t in 1 2 3; do
		"$@" 2> /tmp/ldretry.err
		rc=$?
		case $rc in
		127|130|134|137|139) ;;
		*) grep -q "Inconsistency detected by ld.so" /tmp/ldretry.err || break ;;
		esac
		echo "$* (try $t, status $rc): $(cat /tmp/ldretry.err)" >> "$O/ldretry.log"
	done
	cat /tmp/ldretry.err >&2
	return $rc
}
TVBIN=/share/tv/tinyvmi
TV="ldretry bound 180 $TVBIN"
. /etc/xenlab.conf
. /etc/xenlab-lib.sh                    # xlstate, alive, reboot_crashed
# the boot probe (BOOT_WATCH) may still listen: SIGINT detaches it (a domain
# has one vm_event ring, and the events below need it)
stop_boot_probe() {
	killall -INT xenev 2> /dev/null
	n=0
	while pidof xenev > /dev/null && [ $n -lt 120 ]; do
		usleep 250000
		n=$((n + 1))
	done
}
stop_boot_probe
echo "== xl list"
xl list
echo "== /dev/xen"
ls -l /dev/xen
echo "== tinyvmi in dom0"
$TV --version
echo "version rc=$?"
# ts: seconds since boot with centiseconds, for timing without `time`'s format
ts() { read -r up _ < /proc/uptime; echo "$up"; }
# steps G: everything the tests read about the live guest G, its truth first
steps() {
	g=$1
	echo "== truth $g"
	sed -n '/^===TVLAB-BEGIN uname===/,/^===TVLAB-END modules===/p' \
		"$O/console/guest-$g.log" | tr -d '\r'
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
	echo "== xenq $g"
	ldretry /share/tv/xenq xen:$g 2>&1
	echo "rc=$?"
}
hb() { grep -c TVLAB-HEARTBEAT "$O/console/guest-$1.log"; }
ticks() { grep -c TVLAB-TICK "$O/console/guest-$1.log"; }
# lively G: G's heartbeat and ticker both printed again within 30 s.  Under TCG
# a lab process of a guest now and then dies while the kernel runs on (seen:
# the ticker, whose CR3 writes the event tests need); such a guest counts as
# crashed.
lively() {
	local h0 k0 n=0
	h0=$(hb $1)
	k0=$(ticks $1)
	while [ $n -lt 30 ]; do
		[ "$(hb $1)" -gt "$h0" ] && [ "$(ticks $1)" -gt "$k0" ] && return 0
		sleep 1
		n=$((n + 1))
	done
	echo "$1: no new heartbeat or tick in 30 s (heartbeats $h0 -> $(hb $1)," \
		"ticks $k0 -> $(ticks $1))" >> "$O/crashed.log"
	return 1
}
# A guest that crashed while the steps ran (under TCG the PVH guest now and then
# triple-faults), or whose lab processes stopped, is booted again and its steps
# are redone, up to 3 times; each time is logged to $O/crashed.log, which the
# tests print.  Its memory is preserved, so reading it would not have failed:
# alive() asks Xen.
for g in $XENLAB_GUESTS; do
	for try in 1 2 3; do
		st=$(xlstate $g)
		steps $g
		alive $g "${st% *}" && lively $g && break
		echo "$g: domain ${st% *} crashed or stopped during the steps (try $try): $(xlstate $g)" \
			>> "$O/crashed.log"
		if [ $try -eq 3 ]; then
			echo "$g: gave up" >> "$O/crashed.log"
		else
			reboot_crashed $g "job-$try"
		fi
	done
done
xl list -l > "$O/xl-list-l.json" 2> "$O/xl-list-l.err"
# vm_event on the PVH guest (tests/lab/xenev.c and the LibVMI-style examples):
# CR3 writes while the ticker and the heartbeat take turns, a debug-register
# breakpoint on do_sys_openat2 (the heartbeat opens /proc/uptime every
# second), the events this host cannot deliver, then the guest after detach:
# its heartbeat, its state, its kernel text (hashed before and after).
B=/share/tv
g=tvpvh
# addr G SYMBOL: its address by tinyvmi sym.  An empty answer is asked again
# (logged as ldretry's are): in a clean-clone run a process of the lookup
# aborted ("malloc(): unsorted double linked list corrupted") and tinyvmi
# itself was not retried, so it was not tinyvmi.
addr() {
	for t in 1 2 3; do
		a=$($TV sym xen:$1 $2 2>/dev/null | cut -d' ' -f1)
		[ -n "$a" ] && break
		echo "addr $1 $2 (try $t): no answer" >> "$O/ldretry.log"
	done
	echo "$a"
}
# events: the steps below, redone (up to twice) on a guest booted again when it died
# meanwhile, as steps() above
events() {
	stop_boot_probe
	echo "== events $g"
	echo "domid ${st% *}"
	stext=$(addr $g _stext)
	etext=$(addr $g _etext)
	len=$((etext - stext))
	$TV read xen:$g $stext $len --raw > /tmp/text0 2> "$O/ev-text0.err"
	echo "text0 rc=$? len=$len"
	hb0=$(hb $g)
	t0=$(ts)
	ldretry bound 60 $B/xenev $g 10 cr3 > "$O/ev-cr3.out" 2>&1
	echo "cr3 rc=$? t0=$t0 t1=$(ts)"
	$TV ps xen:$g --json > "$O/ev-ps.json" 2> "$O/ev-ps.err"
	echo "ps rc=$?"
	openat=$(addr $g do_sys_openat2)
	echo "openat $openat"
	ldretry bound 60 $B/xenev $g 8 dr:$openat > "$O/ev-dr.out" 2>&1
	echo "dr rc=$?"
	t0=$(ts)
	ldretry bound 90 $TVBIN trace xen:$g do_sys_openat2 --count 3 --seconds 20 \
		--json > "$O/ev-trace.json" 2> "$O/ev-trace.err"
	echo "trace rc=$? t0=$t0 t1=$(ts)"
	ldretry bound 60 $B/xenev $g 1 mem:0x1000 singlestep guest-request debug > "$O/ev-caps.out" 2>&1
	echo "caps rc=$?"
	ldretry bound 60 $B/xenev $g 6 msr cpuid > "$O/ev-msr.out" 2>&1
	echo "msr rc=$?"
	t0=$(ts)
	h0=$(hb $g)
	bound 12 $B/cr3-event-example $g > "$O/ev-cr3-example.out" 2>&1
	echo "cr3-example rc=$? t0=$t0 t1=$(ts) hb=$h0-$(hb $g)"
	bound 5 $B/msr-event-example $g > "$O/ev-msr-example.out" 2>&1
	echo "msr-example rc=$?"
	sleep 3
	$TV read xen:$g $stext $len --raw > /tmp/text1 2> "$O/ev-text1.err"
	echo "text1 rc=$?"
	echo "text $(sha256sum < /tmp/text0 | cut -d' ' -f1) $(sha256sum < /tmp/text1 | cut -d' ' -f1)"
	rm -f /tmp/text0 /tmp/text1
	echo "hb $hb0 $(hb $g)"
}
for try in 1 2 3; do
	st=$(xlstate $g)
	events
	alive $g "${st% *}" && lively $g && break
	echo "$g: domain ${st% *} crashed or stopped during the events (try $try): $(xlstate $g)" \
		>> "$O/crashed.log"
	[ $try -eq 3 ] && break
	# the guest booted again: its truth and the steps' results anew, so the
	# tests compare them with each other (they read the last section of each)
	reboot_crashed $g "events-$try"
	steps $g
done
alive $g "${st% *}"
echo "alive rc=$? $(xlstate $g)"
# Each guest paused: its vCPU 0 and kernel memory as Xen's own tools see them
# (xenctx: libxenctrl's context and its page walk, xc_translate_foreign_address,
# through foreign mappings; no TinyVMI code) beside tinyvmi's view.  The
# addresses come from the guest's own kallsyms and module sections.  1 KiB
# each (xenctx prints 32 bytes a line).
for g in $XENLAB_GUESTS; do
	echo "== xenctx $g"
	id=$(xlstate $g)
	id=${id% *}
	log="$O/console/guest-$g.log"
	ldretry xl pause $g
	ldretry xenctx -a $id 0 > "$O/xenctx-$g-regs.txt" 2>&1
	echo "regs rc=$?"
	$TV info xen:$g --json > "$O/xenctx-$g-info.json" 2> "$O/xenctx-$g-info.err"
	echo "info rc=$?"
	for s in linux_banner init_task _stext idt_table loop:.text loop:.data; do
		case $s in
		*:*) a=$(tr -d '\r' < "$log" | awk -v m=${s%%:*} -v n=${s#*:} \
			'$1 == m && $2 == n { print $3; exit }') ;;
		*) a=$(tr -d '\r' < "$log" | awk -v n=$s \
			'NF == 3 && $3 == n { print "0x" $1; exit }') ;;
		esac
		[ -n "$a" ] || { echo "$s no address"; continue; }
		ldretry xenctx -m $a -l 32 $id 0 > "$O/xenctx-$g-$s.txt" 2>&1
		r1=$?
		$TV read xen:$g $a 1024 --raw > "$O/xenctx-$g-$s.bin" 2> "$O/xenctx-$g-$s.err"
		echo "$s $a xenctx=$r1 tinyvmi=$?"
	done
	ldretry xl unpause $g
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

# Runs in dom0 beside each guest's creation, the guest paused until it returns
# (xen-dom0-lib.sh's create()): the PVH guest boots under the event probe,
# which hears its kernel's CPUIDs and MSR writes from the first instruction
# until the guest is up (the kernel writes LSTAR, STAR, CSTAR and SFMASK once,
# at boot).  One output file per domain id: a guest booted again gets a new one.
BOOT_WATCH = r"""#!/bin/sh
[ "$2" = pvh ] || exit 0
out=/share/out/boot-$1.$(xl domid "$1").out
log=/share/out/console/guest-$1.log
/share/tv/xenev "$1" 900 msr cpuid > "$out" 2>&1 < /dev/null &
pid=$!
# detached (SIGINT) once the guest's console says it is up: the ring is the job's
(
	n=0
	until grep -q '===TVLAB-READY===' "$log" 2> /dev/null || [ $n -ge 400 ]; do
		sleep 2
		n=$((n + 1))
	done
	kill -INT $pid
) < /dev/null > /dev/null 2>&1 &
n=0
until grep -q '^READY' "$out" 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 360 ] && ! grep -q 'INIT FAILED' "$out" || exit 1
	usleep 250000
done
"""


def xen_run():
    """The lab's results for JOB (a run of 5-18 minutes when not cached)."""
    res = xenlab.cached_run("test_xen", JOB, OUT, [TINYVMI, XENQ, XENEV, *EXAMPLES],
                            boot_watch=BOOT_WATCH)
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
    return {"uname": b["uname"][0].strip(), "ps": labmod.parse_ps(lines(g, b, "ps")),
            "modules": labmod.parse_modules(lines(g, b, "modules"), {}),
            "kallsyms": labmod.parse_kallsyms(lines(g, b, "kallsyms"))[0]}


# A truth block's lines.  The console is shared: another process's error can
# land inside a block (seen: the heartbeat's shell, its memory corrupted under
# TCG, printing "/tvlab/tvlab-heartbeat: line 24: rad: not found" amid ps).
# Lines not in the block's format are left out, and said.
TRUTH_LINE = {"ps": r"\d+ \d+ \d+ \S.*",
              "modules": r"\S+ \d+ \d+ \S+ \S+ 0x[0-9a-f]+( \S+)?",
              "kallsyms": r"[0-9a-f]+ \w \S+( \[\S+\])?"}


def lines(g, blocks, name):
    keep, stray = [], []
    for ln in blocks[name]:
        (keep if re.fullmatch(TRUTH_LINE[name], ln.strip()) else stray).append(ln)
    if stray:
        print(f"{g}: lines in its {name} block that are not {name} lines, left out: "
              f"{stray}")
    return keep


def console(g):
    return os.path.join(OUT, "console", f"guest-{g}.log")


def optional(name):
    return text(name) if os.path.exists(os.path.join(OUT, name)) else ""


def live(g):
    """The job's steps on G (steps() in JOB) ran on a guest that stayed alive
    throughout, if need be on a guest booted again after a crash."""
    xen_run()
    check(f"{g}: gave up" not in optional("crashed.log").splitlines(),
          f"{g} crashed during the job's steps 3 times:\n{optional('crashed.log')}")


def test_run_completes():
    res = xen_run()
    # not failures: the emulation's, said aloud
    if optional("ldretry.log"):
        print("dom0 programs retried after dying at start:\n" + text("ldretry.log"))
    if optional("crashed.log"):
        print("guests booted again after crashing during the job:\n" + text("crashed.log"))
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
        for want in ("tvlab-sleeper", "tvlab-idle", "tvlab-heartbeat", "tvlab-ticker",
                     "kthreadd"):
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
        jps = labmod.parse_ps(lines(g, {"ps": re.search(
            r"===TVLAB-BEGIN ps===\n(.*?)\n===TVLAB-END ps===", "\n".join(job),
            re.S).group(1).split("\n")}, "ps"))
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
    live(g)
    t = truth(g)
    compare_ps(tv_json(g, "ps"), t)
    compare_modules(tv_json(g, "modules"), t)


def sym(g):
    """Symbols by name resolve where the guest's /proc/kallsyms says."""
    live(g)
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
    live(g)
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
    live(g)
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


# the kernel symbols the job reads through xenctx: text, read-only data, data,
# the page-aligned IDT in bss (the module ones may be missing: the guest prints
# module sections through children that can die)
XENCTX_KERNEL = ("linux_banner", "init_task", "_stext", "idt_table")


def xenctx_memory(path):
    """The bytes of xenctx's "Memory (address A):" block: lines of 64-bit words
    in hex, each little-endian in memory."""
    out, seen = bytearray(), False
    for ln in text(path).splitlines():
        if ln.startswith("Memory (address "):
            seen = True
            continue
        if seen:
            words = ln.split()
            if not words or not all(re.fullmatch(r"[0-9a-f]{16}", w) for w in words):
                break
            for w in words:
                out += int(w, 16).to_bytes(8, "little")
    return bytes(out) if seen else None


def reads_match_xenctx(g):
    """With the guest paused, 1 KiB at each of several kernel addresses (the
    guest's own kallsyms: text, read-only data, data, bss, a module's text
    and data) reads the same through tinyvmi as through Xen's xenctx, which walks
    the guest's page tables with libxenctrl's own code and maps the frames
    itself; and vCPU 0's RIP and CR3 are the same in both."""
    live(g)
    lines = job_section(f"xenctx {g}")
    check(lines, f"no xenctx section for {g} in the job's output")
    res = {}
    for ln in lines:
        f = ln.split()
        if len(f) == 4 and f[2].startswith("xenctx=") and f[3].startswith("tinyvmi="):
            res[f[0]] = (int(f[1], 16), int(f[2][7:]), int(f[3][8:]))
    missing = [n for n in XENCTX_KERNEL if n not in res]
    check(not missing, f"{g}: no read of {missing}:\n" + "\n".join(lines))
    compared = []
    for name, (addr, rx, rt) in res.items():
        check(rx == 0, f"{g}: xenctx -m {addr:#x} failed:\n"
              + optional(f"xenctx-{g}-{name}.txt")[-1500:])
        check(rt == 0, f"{g}: tinyvmi read {addr:#x} ({name}) failed: "
              + optional(f"xenctx-{g}-{name}.err")[-1500:])
        theirs = xenctx_memory(f"xenctx-{g}-{name}.txt")
        check(theirs is not None and len(theirs) == 1024,
              f"{g}: xenctx gave {len(theirs or b'')} bytes at {name}:\n"
              + optional(f"xenctx-{g}-{name}.txt")[:1500])
        with open(os.path.join(OUT, f"xenctx-{g}-{name}.bin"), "rb") as f:
            ours = f.read()
        at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                  min(len(ours), len(theirs)))
        check(ours == theirs, f"{g}: {name} at {addr:#x}: tinyvmi and xenctx differ "
              f"from byte {at} ({len(ours)} bytes read)")
        compared.append(name)
    regs = text(f"xenctx-{g}-regs.txt")
    info = json.loads(text(f"xenctx-{g}-info.json"))["vcpus"][0]
    rip = re.search(r"^rip: ([0-9a-f]+)", regs, re.M)
    check(rip and int(rip.group(1), 16) == int(info["rip"], 16),
          f"{g}: vCPU 0's RIP: tinyvmi {info['rip']}, xenctx:\n{regs[:1500]}")
    cr3 = re.search(r"\bcr3: ([0-9a-f]+)", regs)
    check(cr3 and int(cr3.group(1), 16) == int(info["cr3"], 16),
          f"{g}: vCPU 0's CR3: tinyvmi {info['cr3']}, xenctx:\n{regs[:1500]}")
    print(f"{g}: {len(compared)} KiB equal ({', '.join(compared)}); RIP {info['rip']}, "
          f"CR3 {info['cr3']} equal")


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
    for _fn in (ps_modules, sym, control, reads_match_xenctx) + ((dump_matches_core, core_file)
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


# ---------------------------------------------------------------- vm_event

DTB_MASK = 0x000FFFFFFFFFF000     # CR3 less its PCID (11:0) and no-flush (63) bits
MSR_LSTAR = 0xC0000082


def probe(name):
    """What tests/lab/xenev.c printed: {'register': {kind: msg}, 'cr3': [(vcpu,
    value, previous)], 'msr': [...], 'cpuid': [...], 'debug': [(vcpu, rip, cr3,
    type, len)], 'count': {kind: n}, 'lines': [...]}."""
    out = {"register": {}, "cr3": [], "msr": [], "cpuid": [], "debug": [], "count": {},
           "lines": text(name).splitlines()}
    for ln in out["lines"]:
        f = ln.split()
        if ln.startswith("REGISTER "):
            out["register"][f[1]] = " ".join(f[2:])
        elif f[:1] == ["CR3"] and len(f) == 4:
            out["cr3"].append((int(f[1]), int(f[2], 16), int(f[3], 16)))
        elif f[:1] == ["MSR"] and len(f) == 4:
            out["msr"].append((int(f[1]), int(f[2], 16), int(f[3], 16)))
        elif f[:1] == ["CPUID"] and len(f) == 6:
            out["cpuid"].append((int(f[1]), int(f[2], 16), int(f[3], 16), int(f[4]),
                                 int(f[5], 16)))
        elif f[:1] == ["DEBUG"] and len(f) == 6:
            out["debug"].append((int(f[1]), int(f[2], 16), int(f[3], 16), int(f[4]),
                                 int(f[5])))
        elif f[:1] == ["COUNT"] and len(f) == 3:
            out["count"][f[1]] = int(f[2])
    return out


def events():
    """The job's events section (the PVH guest), as {key: rest of line}."""
    live(PVH)
    lines = job_section(f"events {PVH}")
    check(lines, "the job has no events section")
    return {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] if " " in ln else "" for ln in lines}


def ev_ps():
    """pid -> (name, dtb) of `tinyvmi ps` on the PVH guest right after the CR3 watch."""
    rc = events().get("ps", "")
    check(rc == "rc=0", f"tinyvmi ps xen:{PVH}: {rc}\n{optional('ev-ps.err')[-2000:]}")
    return {q["pid"]: (q["name"], int(q["dtb"], 16) & DTB_MASK)
            for q in json.loads(text("ev-ps.json"))}


def test_events_cr3_writes_map_to_processes():
    """CR3 writes arrive while the guest switches between its processes, and
    every value written is the page-table root of a process `tinyvmi ps` lists;
    among them the three that keep waking (tvlab-ticker, tvlab-pong which it
    plays ping-pong with, and tvlab-heartbeat, named by the guest's own ps)."""
    p = probe("ev-cr3.out")
    check(p["register"].get("cr3") == "OK", f"CR3 event: {p['register']}\n"
          + "\n".join(p["lines"][:20]))
    n = p["count"].get("cr3", 0)
    check(n >= 10, f"{n} CR3 writes in 10 s\n" + "\n".join(p["lines"][-10:]))
    seen = {v & DTB_MASK for _, v, _ in p["cr3"]}
    procs = ev_ps()
    by_dtb = {}
    for pid, (_, dtb) in procs.items():
        by_dtb.setdefault(dtb, []).append(pid)
    stray = sorted(hex(v) for v in seen if v not in by_dtb)
    check(not stray, f"CR3 values no process of `tinyvmi ps` has: {stray}")
    names = {q["pid"]: q["name"] for q in truth(PVH)["ps"]}
    woke = {names.get(pid) for v in seen for pid in by_dtb[v]}
    check({"tvlab-ticker", "tvlab-heartbeat", "tvlab-pong"} <= woke,
          f"CR3 writes went to {sorted(map(str, woke))}, not to each of the guest's "
          "waking processes (the ticker, its ping-pong partner, the heartbeat)")
    print(f"{n} CR3 writes, {len(seen)} values: {sorted(map(str, woke))}")


def heartbeat_pid():
    """The heartbeat's pid, from the PVH guest's own ps."""
    pids = [q["pid"] for q in truth(PVH)["ps"] if q["name"] == "tvlab-heartbeat"]
    check(len(pids) == 1, f"the guest's ps has {len(pids)} tvlab-heartbeat")
    return pids[0]


def dr_probe():
    """xenev's run with DR0 = do_sys_openat2: the probe, the address, and the
    heartbeats the guest printed meanwhile (each one an open of /proc/uptime)."""
    ev = events()
    check(re.fullmatch(r"0x[0-9a-f]+", ev.get("openat", "")),
          f"no address for do_sys_openat2: {ev.get('openat')!r}")
    openat = int(ev["openat"], 16)
    p = probe("ev-dr.out")
    return p, openat, "\n".join(p["lines"][-25:])


def no_debug_exceptions(p, what):
    """Skips the rest of a test when the host delivered no debug exception at
    all while the breakpoint was armed (QEMU TCG's SVM here: see README)."""
    if not p["count"].get("debug"):
        raise Skip(f"{what}: no debug exception reached Xen's monitor while DR0 held "
                   "do_sys_openat2 and the heartbeat opened /proc/uptime every second; "
                   "this host does not deliver them")


def test_events_debug_register_breakpoint():
    """LibVMI's way (tests/lab/xenev.c): DR0 = do_sys_openat2 and DR7 set on
    every vCPU with vmi_set_vcpureg and read back, a VMI_EVENT_DEBUG_EXCEPTION
    event registered, both put back as they were afterwards.  Where the host
    delivers debug exceptions: the heartbeat's once-a-second open of
    /proc/uptime stops there, in the heartbeat's address space, and each hit,
    answered with RFLAGS.RF, lets the guest go on (no loop of hits)."""
    p, openat, show = dr_probe()
    check(p["register"].get(f"dr:{openat:#x}") == "OK", f"debug event:\n{show}")
    regs = {}
    for ln in p["lines"]:
        f = ln.split()
        if f[:1] in (["ARMED"], ["RESTORED"], ["SAVED"]) and len(f) == 4:
            regs[(f[0], int(f[1]))] = (int(f[2], 16), int(f[3], 16))
    check(("ARMED", 0) in regs and ("RESTORED", 0) in regs, f"DR0/DR7 read back:\n{show}")
    for (what, v), (dr0, dr7) in regs.items():
        if what == "ARMED":
            check(dr0 == openat and dr7 & 3 == 1 and not dr7 >> 16 & 0xf,
                  f"vCPU {v} armed: DR0 {dr0:#x} DR7 {dr7:#x}")
        elif what == "RESTORED":
            check(regs.get(("SAVED", v)) == (dr0, dr7),
                  f"vCPU {v}: DR0/DR7 {dr0:#x}/{dr7:#x} after, "
                  f"{regs.get(('SAVED', v))} before")
    check(not any(ln.startswith(("DISARMED", "RESTORE FAILED")) for ln in p["lines"]),
          show)
    no_debug_exceptions(p, "debug-register breakpoint")
    hits = [d for d in p["debug"] if d[1] == openat]
    check(hits and p["count"].get("breakpoint", 0) >= 3,
          f"{p['count'].get('breakpoint')} breakpoint hits in 8 s:\n{show}")
    dtb = ev_ps()[heartbeat_pid()][1]
    mine = [d for d in hits if d[2] & DTB_MASK == dtb]
    check(mine, f"no hit in the heartbeat's address space {dtb:#x}: "
          f"{[hex(d[2]) for d in hits[:10]]}")


def ended(step):
    """How a step of the job's that ran under bound() ended, when it was made to."""
    m = re.match(r"rc=(\d+)", step or "")
    return {130: " (still running at its bound: sent SIGINT)",
            137: " (still running 30 s after its SIGINT: killed)"}.get(
                int(m.group(1)) if m else -1, "")


def test_events_trace_openat():
    """`tinyvmi trace xen:tvpvh do_sys_openat2`: TinyVMI's breakpoint (a debug
    register on Xen) is planted and taken away again (the trace ends at
    --seconds with its count); where the host delivers debug exceptions, it
    names the caller and the file as the guest knows them: the heartbeat
    (its pid from the guest's own ps) opening /proc/uptime."""
    ev = events()
    err = optional("ev-trace.err")
    check(ev.get("trace", "").startswith("rc=0") and
          re.search(r"tinyvmi trace: \d+ hit\(s\) of do_sys_openat2", err),
          f"tinyvmi trace: {ev.get('trace')}{ended(ev.get('trace'))}\n{err[-2000:]}")
    hits = [json.loads(ln) for ln in text("ev-trace.json").splitlines() if ln.strip()]
    no_debug_exceptions(dr_probe()[0], "tinyvmi trace")
    check(len(hits) == 3, f"{len(hits)} hits, asked for 3:\n{err}")
    pid = heartbeat_pid()
    for h in hits:
        check(h["symbol"] == "do_sys_openat2" and h["pid"] == pid and
              h["name"] == "tvlab-heartbeat" and h["file"] == "/proc/uptime",
              f"hit {h}; the heartbeat is pid {pid}")


def test_events_msr_and_cpuid_at_boot():
    """The PVH guest booted under the event probe (BOOT_WATCH): its kernel's
    CPUIDs arrived with leaf, subleaf and length (2 bytes: 0f a2) and were
    answered (the probe moves RIP past each, as a LibVMI tool must on Xen);
    its MSR writes arrived too, LSTAR last written with the address of
    entry_SYSCALL_64 as the guest's own /proc/kallsyms gives it."""
    live(PVH)
    doms = {d["config"]["c_info"]["name"]: d for d in json.loads(text("xl-list-l.json"))}
    name = f"boot-{PVH}.{doms[PVH]['domid']}.out"
    check(optional(name), f"no {name}: the probe did not watch the boot "
          f"({optional(f'boot-watch-{PVH}.txt')[-500:]})")
    p = probe(name)
    show = "\n".join(p["lines"][:10] + ["..."] + p["lines"][-10:])
    check(p["register"].get("msr") == "OK" and p["register"].get("cpuid") == "OK",
          f"registering at boot:\n{show}")
    leaves = {c[1] for c in p["cpuid"]}
    check(p["count"].get("cpuid", 0) >= 10 and {0, 1} <= leaves,
          f"{p['count'].get('cpuid')} CPUIDs, leaves {sorted(hex(v) for v in leaves)}")
    check(all(c[3] == 2 for c in p["cpuid"]),
          f"a CPUID not 2 bytes long: {[c for c in p['cpuid'] if c[3] != 2][:5]}")
    lstar = [v for _, m, v in p["msr"] if m == MSR_LSTAR]
    want = truth(PVH)["kallsyms"].get("entry_SYSCALL_64")
    check(want, "the guest's kallsyms block has no entry_SYSCALL_64")
    check(lstar and lstar[-1] == int(want, 16),
          f"LSTAR writes {[hex(v) for v in lstar]}; entry_SYSCALL_64 is {want}\n{show}")
    print(f"{p['count']['cpuid']} CPUIDs, {p['count'].get('msr')} MSR writes at boot: "
          f"{sorted({hex(m) for _, m, _ in p['msr']})}")


def test_events_refused_by_capability():
    """Memory access (xc_set_mem_access: EINVAL on this host) and single-step (no
    SINGLESTEP capability) are refused at registration, each naming what it
    lacks; guest requests and debug exceptions register."""
    events()
    p = probe("ev-caps.out")
    reg = p["register"]
    mem = reg.get("mem:0x1000", "")
    check(mem.startswith("FAILED:") and "memory-access events" in mem and
          "mem_access" in mem, f"memory event: {mem!r}")
    ss = reg.get("singlestep", "")
    check(ss.startswith("FAILED:") and "single-step events" in ss and "SINGLESTEP" in ss,
          f"single-step event: {ss!r}")
    for kind in ("guest-request", "debug"):
        check(reg.get(kind) == "OK", f"{kind} event: {reg.get(kind)!r}")
    check(any(ln.startswith("DETACHED") for ln in p["lines"]), "\n".join(p["lines"]))


def test_events_examples_attach_and_detach():
    """cr3-event-example and msr-event-example (LibVMI's examples) register,
    listen and end on SIGINT with their summary; the CR3 one saw writes, each
    printed."""
    ev = events()
    cr3 = text("ev-cr3-example.out")
    check(ev.get("cr3-example", "").startswith("rc=0") and "Waiting for events..." in cr3,
          f"cr3-event-example: {ev.get('cr3-example')}{ended(ev.get('cr3-example'))}\n"
          f"{cr3[-2000:]}")
    m = re.search(r"Finished: (\d+) CR3 write", cr3)
    values = re.findall(r"CR3 write happened: Value=(0x[0-9a-f]+)", cr3)
    check(m and int(m.group(1)) == len(values),
          f"cr3-event-example counted {m and m.group(1)}, printed {len(values)}")
    # each heartbeat is a switch into the heartbeat and one out of it: when the
    # guest's console shows two while the example ran, it must have seen writes
    # (the guest's pace under TCG varies: 0.3 to 1.2 heartbeats a second)
    h0, h1 = map(int, re.search(r"hb=(\d+)-(\d+)", ev["cr3-example"]).groups())
    check(h1 - h0 < 2 or values, f"cr3-event-example saw no CR3 write while the "
          f"guest printed {h1 - h0} heartbeats")
    print(f"cr3-event-example: {len(values)} CR3 writes over {h1 - h0} heartbeats")
    msr = text("ev-msr-example.out")
    check(ev.get("msr-example") == "rc=0" and "Finished with test" in msr,
          f"msr-event-example: {ev.get('msr-example')}\n{msr[-2000:]}")


def test_events_guest_unchanged_after_detach():
    """After every event program detached: the guest's kernel text is what it
    was before the first attached (all of _stext.._etext, hashed in dom0), its
    heartbeat went on (its console), and Xen has it running as the same domain."""
    ev = events()
    check(ev.get("text0", "").startswith("rc=0") and ev.get("text1") == "rc=0",
          f"reading the kernel text: {ev.get('text0')}, {ev.get('text1')}\n"
          + optional("ev-text0.err") + optional("ev-text1.err"))
    length = int(ev["text0"].split("len=")[1])
    check(length > 1 << 20, f"kernel text of {length} bytes")
    a, b = ev.get("text", "").split()
    check(a == b and len(a) == 64, f"kernel text changed: {a} -> {b}")
    h0, h1 = map(int, ev.get("hb", "0 0").split())
    check(h1 >= h0 + 20, f"heartbeats {h0} -> {h1} over the events section")
    check(ev.get("alive", "").startswith("rc=0"), f"after detach: {ev.get('alive')}")


if __name__ == "__main__":
    main(globals())
