# Shell functions of dom0 in TinyVMI's Xen lab (busybox sh), sourced by its /init
# (xen-dom0-init.sh) and by the jobs the tests run there: bringing a guest up, and
# telling whether it is still the guest that was brought up.  Expects GUEST_WAIT
# (from /etc/xenlab.conf) and the share mounted on /share.

# mark KIND DETAILS: a ===XENLAB-KIND DETAILS=== line on the console, which
# xenlab.py reads (from /init and from a job, whose stdout is a file).
mark() { echo "===XENLAB-$*===" > /dev/console; }
# bye: flush the share and reboot (QEMU exits); never returns.
bye() {
	sync
	umount /share 2>/dev/null
	echo b > /proc/sysrq-trigger
	while :; do sleep 60; done
}
fail() {
	mark "ERROR $*"
	[ -d /share/out ] && dmesg > /share/out/dom0-dmesg.txt 2>/dev/null
	bye
}

# waitfor SECONDS WHAT COMMAND...: retry COMMAND every 0.5 s (bounded).
waitfor() {
	local n=$(($1 * 2)) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "dom0 timeout waiting for $what"
		usleep 500000
	done
}

# now: NOW = seconds since boot, without a fork (read is a builtin)
now() {
	read -r up _ < /proc/uptime
	NOW=${up%.*}
}

# xlstate NAME: "DOMID STATE" of the guest as `xl list` shows it, "" when it is
# gone.  Up to 3 tries: under TCG a dom0 process now and then aborts at start
# ("Aborted", a loader assertion), xl included.
xlstate() {
	local try st
	for try in 1 2 3; do
		st=$(timeout 60 xl list "$1" < /dev/null 2>/dev/null |
			awk 'NR == 2 { print $2, $5 }')
		[ -n "$st" ] && break
	done
	echo "$st"
}

# alive NAME DOMID: the guest is still domain DOMID and neither crashed nor shut
# down.  A guest that triple-faults is preserved (on_crash, on_reboot), memory
# and all, so a reader would go on reading it: this is how a job finds out.
alive() {
	local st
	st=$(xlstate "$1")
	[ "${st% *}" = "$2" ] || return 1
	case ${st#* } in *c* | *s*) return 1 ;; esac
	return 0
}

# create NAME TYPE: the guest created, up to 3 tries.  With a boot watcher on the
# share (/share/boot-watch.sh, from the job's test), the guest is created
# paused, the watcher runs (`sh /share/boot-watch.sh NAME TYPE`: it starts what
# should see the guest from its first instruction and returns), then the guest
# is unpaused.
create() {
	local try
	for try in 1 2 3; do
		if [ -f /share/boot-watch.sh ]; then
			xl create -p "/etc/xen/$1.cfg" < /dev/null > "/share/out/xl-create-$1.txt" 2>&1 &&
				timeout 120 sh /share/boot-watch.sh "$1" "$2" \
					>> "/share/out/boot-watch-$1.txt" 2>&1 < /dev/null &&
				xl unpause "$1" < /dev/null >> "/share/out/xl-create-$1.txt" 2>&1 &&
				return 0
		else
			xl create "/etc/xen/$1.cfg" < /dev/null > "/share/out/xl-create-$1.txt" 2>&1 &&
				return 0
		fi
		mark "RETRY $1 xl create attempt $try failed"
		cat "/share/out/xl-create-$1.txt" >> "/share/out/xl-create-$1-failed.txt"
		timeout 60 xl destroy "$1" < /dev/null > /dev/null 2>&1
		sleep 5
	done
	return 1
}

# waitready NAME: 0 when the guest printed ===TVLAB-READY===, 1 when it crashed
# (TCG's emulation now and then makes a PVH guest triple-fault; its domain is
# preserved, in state "c" or "s") or its init gave up (===TVLAB-ERROR: seen
# when a child it started died at once, as busybox children now and then do
# under TCG); fails the run on a timeout.
# Polling must stay cheap: every exec in a PV dom0 under TCG costs page-table
# hypercalls, and an `xl list` per poll slowed the guests' boot several times over.
# So: grep the console log every 2 s, ask xl about the guest every 16 polls.
waitready() {
	local log=/share/out/console/guest-$1.log t0 t n=0 state
	now
	t0=$NOW
	while ! grep -q '===TVLAB-READY===' "$log" 2>/dev/null; do
		n=$((n + 1))
		now
		t=$((NOW - t0))
		[ $t -lt "$GUEST_WAIT" ] || fail "$1 no ===TVLAB-READY=== within $GUEST_WAIT s"
		if grep -q '===TVLAB-ERROR' "$log" 2>/dev/null; then
			mark "GUEST-ERROR $1 $(grep -m1 '===TVLAB-ERROR' "$log" | tr -d '\r=')"
			return 1
		fi
		if [ $((n % 8)) -eq 0 ]; then
			mark "WAITING $1 ${t}s"
			state=$(xlstate "$1")
			[ -n "$state" ] || fail "$1 domain is gone"
			case ${state#* } in *c* | *s*) return 1 ;; esac
		fi
		sleep 2
	done
	return 0
}

# boot NAME TYPE WHY: create the guest and wait until it is ready, up to 5 boots
# when it crashes (seen: 2 crashes in a row, just after "Run /init"); the
# console log of each crashed boot is kept as crashed-NAME-WHY-N.log.  Fails
# the run when all 5 crash.
boot() {
	local try
	for try in 1 2 3 4 5 0; do
		[ $try -gt 0 ] || fail "$1 crashed while booting, 5 times"
		create "$1" "$2" ||
			fail "$1 xl create ($2): $(tail -n 3 /share/out/xl-create-$1.txt | tr '\n' ' ')"
		mark "GUEST-CREATED $1 $2"
		waitready "$1" && break
		mark "RETRY $1 crashed or failed while booting (attempt $try)"
		cp "/share/out/console/guest-$1.log" "/share/out/console/crashed-$1-$3-$try.log"
		timeout 60 xl destroy "$1" < /dev/null > /dev/null 2>&1
		: > "/share/out/console/guest-$1.log"
	done
	mark "GUEST-READY $1"
}

# reboot_crashed NAME WHY: a guest that crashed after it was ready (its console
# log kept as crashed-NAME-WHY.log) destroyed and booted again.
reboot_crashed() {
	mark "RETRY $1 crashed ($2)"
	cp "/share/out/console/guest-$1.log" "/share/out/console/crashed-$1-$2.log"
	timeout 60 xl destroy "$1" < /dev/null > /dev/null 2>&1
	: > "/share/out/console/guest-$1.log"
	boot "$1" "$(awk -v n="$1" '$1 == n { print $2 }' /etc/xenlab-guests)" "$2"
}
