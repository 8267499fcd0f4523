#!/bin/bash
# Guest-lab self-check: `lab.py ensure` for one 4-level and one 5-level guest, sanity
# checks on what it made, then stop both. Prints timings. Usage: tests/lab_smoke.sh [NAME...]
# Needs: python3, qemu-system-x86, apt/dpkg (Debian's archive reachable on a cold cache).
set -euo pipefail
cd "$(dirname "$0")/.."
LAB="python3 tests/guests/lab.py"
GUESTS=("$@")
[ ${#GUESTS[@]} -gt 0 ] || GUESTS=(k61-4l-1c k612-5l-1c)

cleanup() { $LAB stop "${GUESTS[@]}" || true; }
trap cleanup EXIT

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }

t=$(now)
$LAB fetch
echo "TIMING fetch: $(secs "$t" "$(now)") s"

pass=0 fail=0
for g in "${GUESTS[@]}"; do
	t=$(now)
	$LAB ensure "$g"
	echo "TIMING ensure $g: $(secs "$t" "$(now)") s"
	eval "$($LAB env "$g")"
	if python3 - "$g" <<'EOF'; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
import json, os, sys
name, env = sys.argv[1], os.environ
truth = json.load(open(env["TVLAB_TRUTH"]))
regs = json.load(open(env["TVLAB_REGS"]))
oracle = json.load(open(env["TVLAB_ORACLE"]))
lab = json.load(open(env["TVLAB_LAB_JSON"]))
ram = int(env["TVLAB_RAM_SIZE"])
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)
names = {p["name"] for p in truth["ps"]}
mods = {m["name"] for m in truth["modules"]}
check({"tvlab-sleeper", "tvlab-idle", "tvlab-heartbeat", "init"} <= names, f"ps: {names}")
check({"loop", "dummy"} <= mods, f"modules: {mods}")
check(all(m["sections"].get(".text") for m in truth["modules"]), "module .text sections")
check(truth["uname"] in truth["version"], "uname in version")
for s in ("linux_banner", "init_task", "_text", "_etext", "page_offset_base"):
    check(s in truth["kallsyms"], f"kallsyms {s}")
check(any(c["argv"] == ["tvlab-sleeper", "4242", "alpha", "beta"] for c in truth["cmdline"]),
      "sleeper argv")
check(len(truth["user_markers"]) == 2, "user markers")
want_la57 = env["TVLAB_LA57"] == "1"
check(regs["la57"] == want_la57 and len(regs["cpus"]) == int(env["TVLAB_SMP"]), "regs")
check(all(bool(int(c["cr4"], 16) & 0x1000) == want_la57 for c in regs["cpus"]), "CR4.LA57")
ents = oracle["entries"]
mapped = sum(e["pa"] is not None for e in ents)
check(len(ents) == 1000, f"oracle has {len(ents)} entries")
check(mapped >= 800, f"oracle: only {mapped} mapped")
check(all(e["pa"] is None for e in ents if e["kind"] in ("unmapped", "noncanonical")),
      "oracle: unmapped kinds mapped")
check(oracle["stats"]["directmap_linear"], "oracle: direct map not linear")
check(os.path.getsize(env["TVLAB_DUMP_RAW"]) == ram, "dump.raw size")
check(os.path.getsize(env["TVLAB_DUMP_ELF"]) > ram, "dump.elf size")
with open(env["TVLAB_DUMP_RAW"], "rb") as f:
    check(truth["version"].encode()[:40] in f.read(), "version string in dump.raw")
ids = {truth["boot_id"], regs["boot_id"], oracle["boot_id"], lab["boot_id"]}
check(len(ids) == 1, f"boot ids differ: {ids}")
print(f"{name}: {truth['uname']} la57={regs['la57']} cpus={len(regs['cpus'])} "
      f"ps={len(truth['ps'])} modules={sorted(mods)} oracle mapped={mapped}/1000 "
      f"ranges from {oracle['ranges_from']}")
for p in problems:
    print(f"{name}: FAIL {p}")
sys.exit(1 if problems else 0)
EOF
done
t=$(now)
cleanup
trap - EXIT
echo "TIMING stop: $(secs "$t" "$(now)") s"
left=$($LAB status | grep -E "^($(IFS='|'; echo "${GUESTS[*]}")) .* running" || true)
[ -z "$left" ] || { echo "QEMU left running: $left"; fail=$((fail + 1)); }
echo "lab_smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
