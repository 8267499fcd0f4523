"""LibVMI's three event example programs (tools/examples/*-event-example.c)
against a running guest of the lab, checked against what the guest says
about itself (its serial console: ps, /proc/kallsyms, the heartbeat) and
what QEMU's own monitor says (gva2gpa, the disassembly of guest memory,
the run state) -- never against TinyVMI's own output.

Only one client may attach to a QEMU at a time: every attach here holds an
exclusive flock on build/lab/guests/NAME.lock, the lock file
tests/lab/test_live.py takes for the same guest.  The guest is the lab's live guest (`lab.py live
live-k61-4l-1c`), or, with a lab.py that has no live guests, `lab.py boot
k61-4l-1c` resumed if paused.
"""
import contextlib
import fcntl
import importlib.util
import os
import re
import selectors
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyt import BUILD, ROOT, check, main, run  # noqa: E402

LABPY = os.path.join(ROOT, "tests", "guests", "lab.py")
LAB = [sys.executable, LABPY]
BIN = os.path.join(BUILD, "bin")
LIVE = "live-k61-4l-1c"
FALLBACK = "k61-4l-1c"
HEART_RE = re.compile(rb"TVLAB-HEARTBEAT (\d+) ")

_lab = None


def labmod():
    """lab.py as a module: its QMP client and serial-console parser."""
    global _lab
    if _lab is None:
        spec = importlib.util.spec_from_file_location("tvlab", LABPY)
        _lab = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_lab)
    return _lab


@contextlib.contextmanager
def locked(name, timeout=900):
    """Guest NAME held exclusively (build/lab/guests/NAME.lock; waits for
    other users)."""
    locks = os.path.join(BUILD, "lab", "guests")
    os.makedirs(locks, exist_ok=True)
    fd = os.open(os.path.join(locks, f"{name}.lock"),
                 os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                check(time.monotonic() < deadline,
                      f"{name}.lock held by someone else for {timeout} s")
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def qmp(d, cmd, args=None):
    q = labmod().QMP(os.path.join(d, "lab-qmp.sock"))
    try:
        return q.execute(cmd, args)
    finally:
        q.close()


def hmp(d, line):
    return qmp(d, "human-monitor-command",
               {"command-line": line, "cpu-index": 0})


def heartbeat(d):
    """The last heartbeat number on the serial console (0: none yet)."""
    with open(os.path.join(d, "serial.log"), "rb") as f:
        found = HEART_RE.findall(f.read())
    return int(found[-1]) if found else 0


def wait_heartbeat(d, above, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = heartbeat(d)
        if n > above:
            return n
        time.sleep(0.2)
    return heartbeat(d)


def guest():
    """(name, dir) of a running lab guest; call with its lock held."""
    names = run(LAB + ["list"]).stdout.split()
    name = LIVE if LIVE in names else FALLBACK
    p = run(LAB + ["live" if name == LIVE else "boot", name], timeout=900)
    check(p.returncode == 0, f"lab.py could not bring up {name}:\n"
          f"{p.stderr[-3000:]}")
    d = os.path.join(BUILD, "lab", "guests", name)
    if qmp(d, "query-status").get("status") == "paused":
        qmp(d, "cont")
    check(wait_heartbeat(d, 0, 60) > 0, f"{name}: no heartbeat on its serial "
          "console")
    return name, d


def truth(d):
    """What the guest printed about itself at boot (ps, kallsyms, ...)."""
    return labmod().parse_truth(os.path.join(d, "serial.log"))


def gva2gpa(d, va):
    out = hmp(d, f"gva2gpa {va:#x}")
    m = re.search(r"gpa: (0x[0-9a-f]+)", out)
    check(m, f"QEMU gva2gpa {va:#x}: {out!r}")
    return int(m.group(1), 16)


def run_example(prog, args, enough, timeout=120):
    """Runs build/bin/PROG, reading its lines until enough(lines) holds (or
    it exits), then sends it SIGINT as Ctrl-C would; returns (exit code,
    lines)."""
    p = subprocess.Popen([os.path.join(BIN, prog), *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf, lines = b"", []
    deadline = time.monotonic() + timeout
    interrupted = False
    try:
        while True:
            if not interrupted and (enough(lines) or
                                    time.monotonic() > deadline):
                p.send_signal(signal.SIGINT)
                interrupted = True
                deadline = time.monotonic() + 30
            elif interrupted and time.monotonic() > deadline:
                p.kill()
                raise AssertionError(f"{prog} did not end within 30 s of "
                                     f"SIGINT:\n" + "\n".join(lines[-20:]))
            if not sel.select(0.2):
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [ln.decode(errors="replace") for ln in done]
        if buf:
            lines.append(buf.decode(errors="replace"))
        return p.wait(30), lines
    finally:
        sel.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


def check_left_running(d, name):
    """After the example detached: QEMU says running and the guest's
    heartbeat goes on."""
    st = qmp(d, "query-status")
    check(st.get("running") and st.get("status") == "running",
          f"{name} is not running after the example detached: {st}")
    n = heartbeat(d)
    check(wait_heartbeat(d, n, 10) > n,
          f"{name}: heartbeat stuck at {n} after the example detached")


def example(prog, args, enough, what, around=None):
    """(name, dir, lines, truth, events) after running prog against the
    guest; around(d, truth) (optional) runs before and again after it,
    with the guest held by us, and its two answers are returned too."""
    with locked(guest_name()):
        name, d = guest()
        t = truth(d)
        seen = [around(d, t)] if around else []
        target = "qemu:" + os.path.join(d, "qmp.sock")
        rc, lines = run_example(prog, [target, *args], enough)
        if around:
            seen.append(around(d, t))
        out = "\n".join(lines[-30:])
        check(rc == 0, f"{prog} exited {rc}:\n{out}")
        check(any(ln.startswith("Finished:") for ln in lines),
              f"{prog} did not finish cleanly:\n{out}")
        check_left_running(d, name)
        events = [m.groupdict() for m in map(what.match, lines) if m]
        return (name, d, lines, t, events) + ((seen,) if around else ())


def guest_name():
    names = run(LAB + ["list"]).stdout.split()
    return LIVE if LIVE in names else FALLBACK


HEX = r"0x[0-9a-f]+"
INT3_RE = re.compile(
    rf"INT3 event (?P<n>\d+): vCPU (?P<vcpu>\d+) RIP (?P<rip>{HEX}) "
    rf"CR3 (?P<cr3>{HEX}) GLA (?P<gla>{HEX}) GFN (?P<gfn>{HEX}) "
    rf"pid (?P<pid>-?\d+) \((?P<name>.*)\)$")
STEP_RE = re.compile(
    rf"Single-step event (?P<n>\d+): vCPU (?P<vcpu>\d+) RIP (?P<rip>{HEX}) "
    rf"GLA (?P<gla>{HEX}) CR3 (?P<cr3>{HEX}) (?P<mode>kernel|user)$")
MEM_RE = re.compile(
    rf"Memory event (?P<n>\d+): vCPU (?P<vcpu>\d+) GFN (?P<gfn>{HEX}) "
    rf"GLA (?P<gla>{HEX}) offset (?P<offset>{HEX}) access (?P<access>\w+) "
    rf"RIP (?P<rip>{HEX}) \((?P<sym>.*)\)$")


def test_interrupt_event_example():
    """Breakpoint on do_sys_openat2: the hits are at the address the guest's
    own kallsyms gives, on the page QEMU maps it to, and the heartbeat
    (which opens /proc/uptime every second) is among the callers, with the
    pid the guest's ps gave it."""
    hits = lambda ls: sum(bool(INT3_RE.match(x)) for x in ls) >= 4  # noqa

    def code(d, t):  # the function's first bytes, as QEMU reads them
        return hmp(d, "x/16bx " + t["kallsyms"]["do_sys_openat2"]).split()

    name, d, lines, t, ev, (before, after) = example(
        "interrupt-event-example", [], hits, INT3_RE, code)
    check(len(before) > 16 and before == after,
          f"do_sys_openat2's bytes changed:\n{before}\n{after}")
    check("0xcc" not in before[1:3], f"an INT3 before we began: {before}")
    out = "\n".join(lines[-20:])
    check(len(ev) >= 4, f"only {len(ev)} hits:\n{out}")
    want = int(t["kallsyms"]["do_sys_openat2"], 16)
    gfn = gva2gpa(d, want) >> 12
    heart = [p["pid"] for p in t["ps"] if p["name"] == "tvlab-heartbeat"]
    check(len(heart) == 1, f"the guest's ps has no single heartbeat: {heart}")
    for e in ev:
        check(int(e["rip"], 16) == want and int(e["gla"], 16) == want,
              f"hit not at do_sys_openat2 {want:#x} (guest kallsyms): {e}")
        check(int(e["gfn"], 16) == gfn,
              f"hit GFN {e['gfn']}, QEMU gva2gpa says {gfn:#x}")
        check(e["vcpu"] == "0", f"one vCPU, hit on vCPU {e['vcpu']}")
    mine = [e for e in ev if int(e["pid"]) == heart[0]]
    check(mine, f"no hit from the heartbeat (pid {heart[0]}):\n{out}")
    check(all(e["name"] == "tvlab-heartbeat" for e in mine),
          f"heartbeat hits named otherwise: {mine}")
    check(len({e["cr3"] for e in mine}) == 1,
          f"the heartbeat's hits show different CR3s: {mine}")


CONTROL = re.compile(r"^(j\w*|call\w*|lcall\w*|ret\w*|lret\w*|iret\w*|"
                     r"sysret\w*|syscall|sysenter|sysexit\w*|int\w*|ud[0-9]*|"
                     r"hlt|loop\w*|rep\w*|vm\w+|sti|swapgs|ljmp\w*|"
                     r"rdmsr|wrmsr|cpuid|in\w*|out\w*)\b")
INSN_RE = re.compile(r"^(0x[0-9a-f]+):\s+(?:[0-9a-f]{2} ?)+\s{2,}([a-z]\S*)\s*(.*)$")


def test_singlestep_event_example():
    """200 steps of vCPU 0: every address is kernel text (the guest's
    _stext.._etext), a module or user space; and every step to the next
    instruction in line lands exactly where QEMU's disassembler says the
    instruction ends, every direct jump or call where its operand says."""
    steps = 200
    done = lambda ls: any(x.startswith("Finished:") for x in ls)  # noqa
    name, d, lines, t, ev = example("singlestep-event-example", [str(steps)],
                                    done, STEP_RE)
    out = "\n".join(lines[-20:])
    check(len(ev) == steps, f"{len(ev)} steps printed, asked for {steps}:\n"
          f"{out}")
    check([int(e["n"]) for e in ev] == list(range(1, steps + 1)),
          "steps not numbered 1..N")
    ks = t["kallsyms"]
    text = (int(ks["_stext"], 16), int(ks["_etext"], 16))
    mods = [(int(m["base"], 16), int(m["base"], 16) + m["size"])
            for m in t["modules"]]
    rips = [int(e["rip"], 16) for e in ev]
    for e, rip in zip(ev, rips):
        check(int(e["gla"], 16) == rip, f"GLA differs from RIP: {e}")
        check(e["vcpu"] == "0", f"stepped vCPU {e['vcpu']}, asked for 0")
        if rip >> 63:
            check(text[0] <= rip < text[1] or
                  any(lo <= rip < hi for lo, hi in mods),
                  f"kernel RIP {rip:#x} is outside the kernel's text "
                  f"{text[0]:#x}-{text[1]:#x} and its modules")
            check(e["mode"] == "kernel", f"{e}")
        else:
            check(rip < 0x800000000000, f"non-canonical RIP {rip:#x}")
    sequential = branches = odd = 0
    disasm = {}
    for rip, nxt in zip(rips, rips[1:]):
        if not rip >> 63:
            continue  # user code: QEMU would read it through today's CR3
        if rip not in disasm:
            disasm[rip] = hmp(d, f"x/2i {rip:#x}").splitlines()
        # Long instructions carry on their bytes on a line of their own.
        insns = [m for m in map(INSN_RE.match, disasm[rip]) if m]
        check(len(insns) == 2,
              f"QEMU's disassembly at {rip:#x}: {disasm[rip]}")
        check(int(insns[0].group(1), 16) == rip, f"{disasm[rip]}")
        mnem, ops = insns[0].group(2), insns[0].group(3)
        after = int(insns[1].group(1), 16)
        if CONTROL.match(mnem):
            branches += 1
            target = re.fullmatch(r"(0x[0-9a-f]+)", ops.strip())
            if target and nxt != after and mnem[0] in "jc":
                check(nxt == int(target.group(1), 16),
                      f"{mnem} {ops} at {rip:#x} went to {nxt:#x}")
        elif nxt == after:
            sequential += 1
        else:
            odd += 1  # an exception (a page fault) or an interrupt
    print(f"{steps} steps: {sequential} to the next instruction, "
          f"{branches} control transfers, {odd} otherwise; "
          f"{sum(r >> 63 == 0 for r in rips)} in user space")
    check(sequential >= steps // 4,
          f"only {sequential} of {steps} steps went to the next instruction")
    check(odd <= steps // 20, f"{odd} steps went neither to the next "
          f"instruction nor through a control transfer (QEMU's disassembly)")


def test_mem_event_example():
    """Writes to jiffies' page: the watched GFN is the one QEMU maps
    jiffies (address from the guest's kallsyms) to, every GLA maps to that
    page (QEMU's gva2gpa), offsets are the GLA's, and jiffies itself (the
    timer tick writes it) is among the addresses written."""
    count = 25
    done = lambda ls: any(x.startswith("Finished:") for x in ls)  # noqa
    name, d, lines, t, ev = example("mem-event-example",
                                    ["jiffies", str(count)], done, MEM_RE)
    out = "\n".join(lines[-20:])
    check(len(ev) == count, f"{len(ev)} events, asked for {count}:\n{out}")
    jiffies = int(t["kallsyms"]["jiffies"], 16)
    gfn = gva2gpa(d, jiffies) >> 12
    pages = {}
    for e in ev:
        gla = int(e["gla"], 16)
        check(int(e["gfn"], 16) == gfn,
              f"event GFN {e['gfn']}, QEMU maps jiffies to {gfn:#x}")
        check(int(e["offset"], 16) == gla & 0xfff, f"offset/GLA: {e}")
        check(e["access"] == "w", f"a write event reports {e['access']}")
        if gla >> 12 not in pages:
            pages[gla >> 12] = gva2gpa(d, gla & ~0xfff) >> 12
        check(pages[gla >> 12] == gfn,
              f"GLA {gla:#x} is on GFN {pages[gla >> 12]:#x} (QEMU), not "
              f"the watched {gfn:#x}")
    check(any(int(e["gla"], 16) == jiffies for e in ev),
          f"no write to jiffies {jiffies:#x} (guest kallsyms) among "
          f"{count}:\n{out}")


if __name__ == "__main__":
    main(globals())
