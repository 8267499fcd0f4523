"""TinyVMI attached to running guests (tests/guests: the live-* guests).

Ground truth comes from outside TinyVMI: what the guest prints on its
serial console (its boot-time blocks, and fresh answers to commands sent
to its heartbeat on ttyS1: ps, spawn, reap) and QEMU's own monitor through
the lab's QMP socket (xp, x, info registers, query-status).  Only one
client may hold a guest's QMP socket and gdbstub at a time, so every test
takes the guest's lock file.  Nothing here hard-codes a kernel version, an
offset or an address.
"""
import contextlib
import fcntl
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from pyt import BUILD, ROOT, TINYVMI, Skip, check, main, run, tinyvmi  # noqa: E402
from test_linux import compare_modules, compare_ps  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "guests"))
import lab as labmod  # noqa: E402

LAB = [sys.executable, os.path.join(ROOT, "tests", "guests", "lab.py")]
LIVEQ = os.path.join(BUILD, "tests", "lab", "liveq")
GUESTS = ["live-k61-4l-1c", "live-k612-5l-2c"]
HB_RE = re.compile(r"^TVLAB-HEARTBEAT (\d+) (\S+) (\S+)$", re.M)


# ---------------------------------------------------------------- the guest

class Guest:
    """A running live guest: its serial console, its ttyS1, QEMU's monitor."""

    def __init__(self, name):
        self.name = name
        self.d = os.path.join(BUILD, "lab", "guests", name)
        with open(os.path.join(self.d, "lab.json")) as f:
            self.lab = json.load(f)
        self.qmp_sock = self.lab["qmp"]
        self.target = "qemu:" + self.qmp_sock
        self.truth = labmod.parse_truth(self.lab["serial"])
        self.ks = {k: int(v, 16) for k, v in self.truth["kallsyms"].items()}

    def serial(self):
        with open(self.lab["serial"], "rb") as f:
            return f.read().decode(errors="replace").replace("\r", "")

    def send(self, line):
        labmod.send_input(self.name, line)

    def wait_serial(self, regex, start, timeout=30):
        """The first match of regex in the serial log after offset start."""
        r = re.compile(regex, re.M | re.S)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = r.search(self.serial(), start)
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no {regex!r} on the console in "
                             f"{timeout}s; tail:\n{self.serial()[-1500:]}")

    def heartbeat(self):
        """(n, uptime, path) of the last heartbeat line, or None."""
        hb = HB_RE.findall(self.serial())
        return (int(hb[-1][0]), hb[-1][1], hb[-1][2]) if hb else None

    def wait_heartbeat_after(self, n, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            hb = self.heartbeat()
            if hb and hb[0] > n:
                return hb
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: heartbeat stuck at {n} for "
                             f"{timeout}s")

    def command(self, line, regex, tries=3):
        """Sends a command line (idempotent ones only) and waits for its
        answer on the console.  Now and then the guest's shell reads an
        empty line instead (seen once, on the 2-vCPU 6.12 guest, with the
        tty having echoed the whole line): then the line is sent again."""
        for attempt in range(1, tries + 1):
            start = len(self.serial())
            self.send(line(attempt) if callable(line) else line)
            try:
                return self.wait_serial(regex(attempt) if callable(regex)
                                        else regex, start,
                                        timeout=10 if attempt < tries else 30)
            except AssertionError:
                if attempt == tries:
                    raise
                print(f"{self.name}: no answer to {line!r}, sending it "
                      f"again", file=sys.stderr)

    def ps(self):
        """A fresh ps block printed by the guest (pid ppid flags name)."""
        tags = [uuid.uuid4().hex[:8] for _ in range(3)]
        m = self.command(lambda i: f"ps {tags[i - 1]}",
                         lambda i: rf"^===TVLAB-PS-BEGIN {tags[i - 1]}===\n(.*?)"
                                   rf"^===TVLAB-PS-END {tags[i - 1]}===$")
        lines = [ln for ln in m.group(1).split("\n")
                 if ln.strip() and not labmod.PRINTK_RE.match(ln)]
        return labmod.parse_ps(lines)

    def by_name(self, ps, name):
        got = [p for p in ps if p["name"] == name]
        check(len(got) == 1, f"{self.name}: {len(got)} processes named {name}")
        return got[0]

    def qmp(self):
        return labmod.lab_qmp(self.name)

    def hmp(self, line, cpu=0):
        q = self.qmp()
        try:
            return q.hmp(line, cpu=cpu)
        finally:
            q.close()

    def status(self):
        q = self.qmp()
        try:
            return q.execute("query-status")
        finally:
            q.close()

    def words(self, cmd, addr, n):
        """n 8-byte words at addr from QEMU's `xp` (physical) or `x`
        (vCPU 0's virtual), as bytes."""
        out = self.hmp(f"{cmd} /{n}gx {addr:#x}")
        vals = [int(v, 16) for ln in out.splitlines() if ":" in ln
                for v in re.findall(r"0x([0-9a-fA-F]+)", ln.split(":", 1)[1])]
        check(len(vals) == n, f"{cmd} {addr:#x}: {out!r}")
        return b"".join(v.to_bytes(8, "little") for v in vals)

    def gva2gpa(self, va):
        out = self.hmp(f"gva2gpa {va:#x}").strip()
        m = re.match(r"gpa:\s*(0x[0-9a-fA-F]+)", out)
        check(m, f"gva2gpa {va:#x}: {out}")
        return int(m.group(1), 16)

    def rip(self, cpu=0):
        regs = labmod.parse_regs(self.hmp("info registers", cpu=cpu))
        return int(regs[0]["rip"], 16)

    def check_alive(self, what):
        """The guest runs (QEMU says so and its heartbeat moves on)."""
        st = self.status()
        check(st.get("running") and st.get("status") == "running",
              f"{what}: QEMU status {st}")
        hb = self.heartbeat()
        self.wait_heartbeat_after(hb[0] if hb else 0)


@contextlib.contextmanager
def guest(name):
    """The live guest, held for this test alone (one client at a time)."""
    locks = os.path.join(BUILD, "lab", "guests")
    os.makedirs(locks, exist_ok=True)
    with open(os.path.join(locks, f"{name}.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        p = run(LAB + ["live", name], timeout=600)
        check(p.returncode == 0, f"lab.py live {name} failed:\n"
              f"{p.stderr[-4000:]}")
        g = Guest(name)
        g.wait_heartbeat_after(0, timeout=60)
        yield g


# ---------------------------------------------------------------- liveq

class LiveQ:
    """tests/lab/liveq as a child: one command, one (or more) answer lines."""

    def __init__(self, *args):
        self.p = subprocess.Popen([LIVEQ, *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""
        line = self.line(120)
        check(line == "ready", f"liveq {args}: {line!r} {self.stderr()}")

    def stderr(self):
        if self.p.poll() is None:
            return ""
        return self.p.stderr.read().decode(errors="replace")

    def line(self, timeout=60):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"liveq: no answer in {timeout}s")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    self.p.wait(10)
                    raise AssertionError(f"liveq exited ({self.p.returncode})"
                                         f": {self.stderr()}")
                self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.decode()

    def send(self, cmd):
        self.p.stdin.write(cmd.encode() + b"\n")
        self.p.stdin.flush()

    def ask(self, cmd, timeout=60):
        self.send(cmd)
        ans = self.line(timeout)
        check(not ans.startswith("-"), f"liveq {cmd}: {ans}")
        return ans

    def until(self, cmd, last, timeout=60):
        """Lines answering cmd up to the line `last` (excluded)."""
        self.send(cmd)
        out = []
        while True:
            ln = self.line(timeout)
            check(not ln.startswith("-"), f"liveq {cmd}: {ln}")
            if ln == last:
                return out
            out.append(ln)

    def close(self):
        if self.p.poll() is None:
            try:
                self.send("quit")
            except OSError:
                pass
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        check(self.p.returncode == 0, f"liveq exited {self.p.returncode}: "
              f"{self.p.stderr.read().decode(errors='replace')}")


@contextlib.contextmanager
def liveq(*args):
    q = LiveQ(*args)
    try:
        yield q
    finally:
        q.close()


def tool_json(*args):
    p = tinyvmi(*args, "--json", timeout=300)
    check(p.returncode == 0, f"tinyvmi {' '.join(args)}: {p.stderr}")
    return json.loads(p.stdout)


def plausible_rip(v, la57):
    """A kernel (upper half) or user (lower half) canonical address."""
    bits = 57 if la57 else 48
    top = v >> (bits - 1)
    return v != 0 and top in (0, (1 << (64 - bits + 1)) - 1)


# ---------------------------------------------------------------- OS views

def ps_matches(name):
    """Live ps equals a fresh ps the guest prints; only kworker churn is
    retried (a live kernel starts and stops those), nothing else."""
    with guest(name) as g:
        for attempt in range(3):
            truth = {"ps": g.ps()}
            ps = tool_json("ps", g.target)
            try:
                compare_ps(ps, truth)
                break
            except AssertionError as e:
                diff = str(e).splitlines()[1:]
                if attempt == 2 or not diff or \
                        not all("kworker" in ln for ln in diff):
                    raise
        want = {"tvlab-sleeper", "tvlab-idle", "tvlab-heartbeat", "init"}
        names = {p["name"] for p in ps if not p["kernel_thread"]}
        check(want <= names, f"user processes {sorted(names)}")


def modules_sym(name):
    with guest(name) as g:
        compare_modules(tool_json("modules", g.target), g.truth)
        p = tinyvmi("sym", g.target, "init_task")
        check(p.returncode == 0, p.stderr)
        check(int(p.stdout.strip(), 16) == g.ks["init_task"],
              f"init_task {p.stdout.strip()}, guest says "
              f"{g.truth['kallsyms']['init_task']}")
        p = tinyvmi("sym", g.target, hex(g.ks["do_sys_openat2"] + 5))
        check(p.returncode == 0 and p.stdout.strip() == "do_sys_openat2+0x5",
              f"{p.stdout} {p.stderr}")


def spawn(name):
    """A process the guest starts after attach shows in the next ps."""
    with guest(name) as g:
        heart = g.by_name(g.ps(), "tvlab-heartbeat")
        before = tool_json("ps", g.target)
        check(not [p for p in before if p["name"] == "tvlab-late"],
              "tvlab-late runs before spawn")
        try:
            pid = int(g.command("spawn", r"^TVLAB-SPAWNED (\d+) tvlab-late$")
                      .group(1))
            ps = {p["pid"]: p for p in tool_json("ps", g.target)}
            check(pid in ps, f"spawned pid {pid} not in the live ps")
            check(ps[pid]["name"] == "tvlab-late" and
                  ps[pid]["ppid"] == heart["pid"] and
                  not ps[pid]["kernel_thread"],
                  f"pid {pid}: {ps[pid]}, want tvlab-late child of "
                  f"{heart['pid']}")
        finally:
            m = g.command("reap", r"^TVLAB-REAPED (\S+)$")
        check(m.group(1) == str(pid), f"reaped {m.group(1)}, spawned {pid}")
        ps = {p["pid"]: p for p in tool_json("ps", g.target)}
        check(pid not in ps, f"reaped pid {pid} still in the live ps")


# ---------------------------------------------------------------- reads

def paused_reads(name):
    """While liveq holds the guest paused, its physical and kernel-virtual
    reads equal QEMU's xp/x, jiffies stands still and the heartbeat stops;
    after resume both move on."""
    with guest(name) as g:
        ram = g.lab["ram_size"]
        rng = random.Random(7)
        pas = [rng.randrange(1 << 20, ram - 64) & ~7 for _ in range(60)]
        jpa = g.gva2gpa(g.ks["jiffies"])
        pas += [jpa, g.gva2gpa(g.ks["init_task"]),
                g.gva2gpa(g.ks["linux_banner"]), g.gva2gpa(g.ks["_text"])]
        vas = [g.ks[s] for s in ("jiffies", "init_task", "linux_banner",
                                 "_text", "do_sys_openat2", "init_mm")]
        vas += [int(m["base"], 16) for m in g.truth["modules"]]
        with liveq(g.target) as q:
            q.ask("pause")
            hb0 = g.heartbeat()
            t0 = time.monotonic()
            bad = []
            for pa in pas:
                ours = bytes.fromhex(q.ask(f"pa {pa:#x} 64"))
                theirs = g.words("xp", pa, 8)
                if ours != theirs:
                    bad.append(f"pa {pa:#x}: {ours.hex()} / QEMU "
                               f"{theirs.hex()}")
            for va in vas:
                ours = bytes.fromhex(q.ask(f"va {va:#x} 64"))
                theirs = g.words("x", va, 8)
                if ours != theirs:
                    bad.append(f"va {va:#x}: {ours.hex()} / QEMU "
                               f"{theirs.hex()}")
            check(not bad, f"{len(bad)} of {len(pas) + len(vas)} reads "
                  f"differ from QEMU's:\n" + "\n".join(bad[:10]))
            j0 = g.words("xp", jpa, 1)
            time.sleep(max(0.0, 2.5 - (time.monotonic() - t0)))
            check(g.words("xp", jpa, 1) == j0 and
                  q.ask(f"pa {jpa:#x} 8") == j0.hex(),
                  "jiffies moved while paused")
            check(g.heartbeat() == hb0, f"heartbeat moved while paused: "
                  f"{hb0} -> {g.heartbeat()}")
            check(not g.status()["running"], "QEMU says running while paused")
            q.ask("resume")
            g.wait_heartbeat_after(hb0[0] if hb0 else 0)
            check(g.words("xp", jpa, 1) != j0, "jiffies stands after resume")


def low_memory(name):
    """Pages below 1 MiB (the BIOS's low RAM) read as QEMU's xp does."""
    with guest(name) as g:
        with liveq(g.target) as q:
            q.ask("pause")
            bad = []
            for pa in (0x0, 0x1000, 0x7000, 0x9f000, 0xe8000):
                q.send(f"pa {pa:#x} 64")
                ans = q.line()
                theirs = g.words("xp", pa, 8).hex()
                if ans != theirs:
                    bad.append(f"pa {pa:#x}: liveq {ans} / QEMU {theirs}")
            q.ask("resume")
            check(not bad, "\n".join(bad))


# ---------------------------------------------------------------- events

def trace(name):
    """tinyvmi trace do_sys_openat2: the heartbeat's opens, with its pid,
    name and the file it printed."""
    with guest(name) as g:
        check("do_sys_openat2" in g.ks, "no do_sys_openat2 in kallsyms")
        heart = g.by_name(g.ps(), "tvlab-heartbeat")
        p = tinyvmi("trace", g.target, "do_sys_openat2", "--count", 3,
                    "--json", "--seconds", 60, timeout=120)
        check(p.returncode == 0, f"trace: {p.stderr}")
        hits = [json.loads(ln) for ln in p.stdout.splitlines()]
        check(len(hits) == 3, f"{len(hits)} hits: {p.stdout}")
        path = g.heartbeat()[2]
        for h in hits:
            check(h["pid"] == heart["pid"] and h["name"] == heart["name"] and
                  h["file"] == path and h["symbol"] == "do_sys_openat2" and
                  int(h["address"], 16) == g.ks["do_sys_openat2"],
                  f"hit {h}; heartbeat is pid {heart['pid']} and opens "
                  f"{path}")
        g.check_alive("after trace --count")


def single_step(name):
    """20 single steps of vCPU 0: each RIP plausible, the guest left where
    the last step says (QEMU's info registers)."""
    with guest(name) as g:
        with liveq(g.target) as q:
            lines = q.until("step 0 20", "paused", timeout=120)
            check(len(lines) == 20, f"{len(lines)} steps: {lines}")
            rips = []
            for ln in lines:
                f = ln.split()
                rip, gla, vcpu = int(f[1], 16), int(f[3], 16), int(f[5])
                check(vcpu == 0 and gla == rip, f"step {ln}")
                check(plausible_rip(rip, g.lab["la57"]), f"step {ln}")
                rips.append(rip)
            check(len(set(rips)) > 1, f"20 steps never moved: {rips[0]:#x}")
            check(not g.status()["running"], "guest runs after the steps")
            qrip = g.rip(0)
            check(qrip == rips[-1], f"QEMU's RIP {qrip:#x}, last step "
                  f"{rips[-1]:#x}")
            check(int(q.ask("reg 0 RIP"), 16) == qrip, "vmi_get_vcpureg RIP")
            q.ask("resume")
        g.check_alive("after single steps")


def mem_event(name):
    """A write event on jiffies' page fires with gla = &jiffies."""
    with guest(name) as g:
        jva = g.ks["jiffies"]
        jpa = g.gva2gpa(jva)
        with liveq(g.target) as q:
            check(int(q.ask(f"kv2p {jva:#x}"), 16) == jpa, "kv2p of jiffies "
                  "differs from QEMU's gva2gpa")
            hits = q.until(f"watch {jva:#x} 200 {jva:#x}", "done",
                           timeout=120)
        check(hits, "no write event")
        parsed = [dict(kv.split("=") for kv in h.split()[1:]) for h in hits]
        for h in parsed:
            gla = int(h["gla"], 16)
            check(int(h["gfn"], 16) == jpa >> 12, f"event on gfn {h}")
            check(gla >> 12 == jva >> 12 or int(h["offset"], 16) ==
                  gla & 0xfff, f"event {h}")
        last = parsed[-1]
        check(int(last["gla"], 16) == jva and int(last["offset"], 16) ==
              jva & 0xfff, f"no write at jiffies ({jva:#x}): {hits[-5:]}")
        g.check_alive("after the memory event")


def detach(name):
    """After detach, a trace ended by SIGINT and one SIGKILLed with its
    breakpoint set, the guest runs on and do_sys_openat2's bytes are
    untouched (QEMU's xp before and after)."""
    with guest(name) as g:
        fpa = g.gva2gpa(g.ks["do_sys_openat2"])
        text0 = g.words("xp", fpa, 4)
        with liveq(g.target) as q:
            q.ask("vcpus")
        g.check_alive("after detach")
        for sig in (signal.SIGINT, signal.SIGKILL):
            p = subprocess.Popen([TINYVMI, "trace", g.target,
                                  "do_sys_openat2", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                r, _, _ = select.select([p.stdout], [], [], 60)
                check(r, "trace printed no hit in 60 s")
                first = p.stdout.readline()
                check(json.loads(first)["symbol"] == "do_sys_openat2", first)
                p.send_signal(sig)
                p.wait(20)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            err = p.stderr.read().decode(errors="replace")
            if sig == signal.SIGINT:
                check(p.returncode == 0, f"trace after SIGINT: exit "
                      f"{p.returncode}: {err}")
            else:                  # the watchdog detaches for it
                end = time.monotonic() + 20
                while (g.status().get("status") != "running" and
                       time.monotonic() < end):
                    time.sleep(0.2)
            g.check_alive(f"after trace ended by {sig.name}")
            check(g.words("xp", fpa, 4) == text0,
                  f"do_sys_openat2's bytes changed after {sig.name}")
            p2 = tinyvmi("info", g.target, timeout=60)
            check(p2.returncode == 0, f"attach after {sig.name}: {p2.stderr}")
        g.check_alive("at the end")


def kvm_mode(name):
    """VMI_KVM with a domain name and VMI_INIT_DATA_KVMI_SOCKET works as
    qemu:SOCK does."""
    with guest(name) as g:
        heart = g.by_name(g.ps(), "tvlab-heartbeat")
        with liveq("--kvm", "tvlab-" + name, g.qmp_sock) as q:
            check(int(q.ask("sym init_task"), 16) == g.ks["init_task"],
                  "init_task")
            check(int(q.ask("vcpus")) == g.lab["smp"], "vCPU count")
            ps = q.until("ps", "end")
            procs = {int(ln.split()[0]): ln.split(None, 2)[2] for ln in ps}
            check(procs.get(heart["pid"]) == "tvlab-heartbeat" and
                  procs.get(1) == "init", f"ps: {ps}")
            q.ask("pause")
            jpa = g.gva2gpa(g.ks["jiffies"])
            check(q.ask(f"pa {jpa:#x} 64") == g.words("xp", jpa, 8).hex(),
                  "jiffies' page differs from xp")
            regs = labmod.parse_regs(g.hmp("info registers", cpu=0))[0]
            check(int(q.ask("reg 0 CR3"), 16) == int(regs["cr3"], 16), "CR3")
            check(int(q.ask("reg 0 RIP"), 16) == int(regs["rip"], 16), "RIP")
            q.ask("resume")
        g.check_alive("after VMI_KVM")


# ---------------------------------------------------------------- bad QEMUs

@contextlib.contextmanager
def bare_qemu(ram_args, stopped=True):
    """A QEMU with no kernel (stopped at reset, or running its firmware,
    which finds nothing to boot) and its QMP socket."""
    with tempfile.TemporaryDirectory(prefix="tvlive-") as d:
        sock = os.path.join(d, "qmp.sock")
        argv = ["qemu-system-x86_64", "-accel", "tcg", *ram_args,
                "-nodefaults", "-display", "none", *(["-S"] if stopped else []),
                "-qmp", f"unix:{sock},server=on,wait=off"]
        p = subprocess.Popen([a.replace("DIR", d) for a in argv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + 30
            while not os.path.exists(sock):
                if p.poll() is not None:
                    raise AssertionError(f"QEMU exited: {p.stdout.read()}")
                check(time.monotonic() < end, "QEMU made no QMP socket")
                time.sleep(0.05)
            yield p, sock
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()


SHARED_RAM = ["-m", "64M", "-object", "memory-backend-file,id=ram0,size=64M,"
              "mem-path=DIR/ram,share=on", "-machine", "pc,memory-backend=ram0"]


def test_qemu_killed():
    """QEMU killed mid-session: the tool fails fast with the cause."""
    with bare_qemu(SHARED_RAM, stopped=False) as (p, sock):
        q = LiveQ("--bare", "qemu:" + sock)
        try:
            q.send("regloop")
            check(q.line(30) == "ok", "regloop")
            p.kill()
            t0 = time.monotonic()
            try:
                q.p.wait(10)
            except subprocess.TimeoutExpired:
                raise AssertionError("liveq still runs 10 s after QEMU died")
            took = time.monotonic() - t0
            # (its stderr ends only when the driver's watchdog, which
            # shares it, gives up on the dead gdbstub)
            err = q.p.stderr.read().decode(errors="replace")
            print(f"liveq exited {q.p.returncode} after {took:.1f}s: {err}")
            check(q.p.returncode not in (0, None), f"exit {q.p.returncode}")
            check(re.search(r"gdbstub|QEMU|closed|gone", err),
                  f"no cause in: {err!r}")
            check(took < 5, f"liveq took {took:.1f}s to notice")
        finally:
            if q.p.poll() is None:
                q.p.kill()
                q.p.wait()


def bad_target(ram_args, want):
    with bare_qemu(ram_args) as (_, sock):
        p = tinyvmi("info", "qemu:" + sock, timeout=60)
        check(p.returncode == 3, f"exit {p.returncode}: {p.stderr}")
        for w in want:
            check(w in p.stderr, f"{w!r} not in: {p.stderr}")


def test_error_plain_ram():
    bad_target(["-m", "64M"], ["memory-backend-file", "share=on"])


def test_error_share_off():
    bad_target(["-m", "64M", "-object", "memory-backend-file,id=ram0,"
                "size=64M,mem-path=DIR/ram,share=off",
                "-machine", "pc,memory-backend=ram0"],
               ["memory-backend-file", "share=on", "not shared"])


def test_error_no_listener():
    """A QMP path nobody listens on, and one that does not exist."""
    with tempfile.TemporaryDirectory(prefix="tvlive-") as d:
        dead = os.path.join(d, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(dead)
        s.close()                           # the file stays, nobody listens
        for path in (dead, os.path.join(d, "missing.sock")):
            t0 = time.monotonic()
            p = tinyvmi("info", "qemu:" + path, timeout=60)
            check(p.returncode == 3, f"{path}: exit {p.returncode}: "
                  f"{p.stderr}")
            check(path in p.stderr and "QMP" in p.stderr,
                  f"{path}: unclear message: {p.stderr}")
            check(time.monotonic() - t0 < 15, f"{path}: too slow")


# The matrix: both live guests.
for _g in GUESTS:
    _k = _g.replace("-", "_")
    for _f in (ps_matches, modules_sym, spawn, paused_reads, low_memory,
               trace, single_step, mem_event, detach, kvm_mode):
        globals()[f"test_{_f.__name__}_{_k}"] = (lambda g=_g, f=_f: f(g))


if __name__ == "__main__":
    main(globals())
