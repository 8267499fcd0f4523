#!/bin/sh
# /init of dom0 in TinyVMI's Xen lab (busybox; built by tests/guests/xenlab.py).
#
# Brings up the Xen toolstack, creates the guests listed in /etc/xenlab-guests
# ("name type" lines; configs in /etc/xen/NAME.cfg), waits until each printed
# ===TVLAB-READY=== on its console (xenconsoled logs it to the share), runs
# /share/job.sh with its output in /share/out/job.out, then reboots, which QEMU's
# -no-reboot turns into QEMU exiting.  Progress goes to the console (hvc0, which Xen
# copies to COM1) as ===XENLAB-KIND details=== lines that xenlab.py reads; every
# wait is bounded.

/bin/busybox --install -s /bin
XENBIN=/usr/lib/xen-4.17/bin
export PATH=/bin:$XENBIN
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
# jobs keep a guest's dump-core here (rootfs is about full with the initramfs)
mount -t tmpfs -o size=320M tmpfs /tmp
mkdir -p /run/xen /run/xenstored /run/lock /var/log/xen/console
echo 4 > /proc/sys/kernel/printk

. /etc/xenlab.conf                      # GUEST_WAIT, JOB_TIMEOUT (seconds)

mark() { echo "===XENLAB-$*==="; }
# bye: flush the share and reboot (QEMU exits); PID 1 never returns.
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
mark "DOM0-UP $(uname -r)"

for m in $(cat /lib/modules/order.txt); do
	insmod "/lib/modules/$m.ko" || fail "dom0 insmod $m"
done
mount -t xenfs xenfs /proc/xen || fail "dom0 mount xenfs"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share ||
	fail "dom0 mount 9p share"
[ -d /share/out/console ] || fail "dom0 share has no out/console (staged by xenlab.py)"
# a trace of every command from here on, for the host to read when something hangs
exec 2> /share/out/dom0-trace.txt
set -x
mark "MODULES $(ls /dev/xen | tr '\n' ' ')"

# waitfor SECONDS WHAT COMMAND...: retry COMMAND every 0.5 s (bounded).
waitfor() {
	n=$(($1 * 2))
	what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "dom0 timeout waiting for $what"
		usleep 500000
	done
}

xenstored --pid-file=/run/xenstored.pid || fail "dom0 xenstored"
waitfor 30 "xenstored's socket" test -S /run/xenstored/socket
xen-init-dom0 > /share/out/xen-init-dom0.txt 2>&1 || fail "dom0 xen-init-dom0"
xenconsoled --log=guest --log-dir=/share/out/console --pid-file=/run/xenconsoled.pid ||
	fail "dom0 xenconsoled"
mark "TOOLSTACK $(xl info 2>/dev/null | grep -E '^(xen_version|virt_caps)' | tr -s ' \n' ' ')"

# The guests, one after the other: creating one while another boots made libxl
# time out waiting for xenconsoled ("console tty: timed out") on a loaded host, so
# each is created only when the previous one is up, with up to 3 attempts.
# Polling must stay cheap: every exec in a PV dom0 under TCG costs page-table
# hypercalls, and an `xl list` per poll slowed the guests' boot several times over.
# So: grep the console log every 2 s, ask xl whether the guest still exists every 30 s.
# now: NOW = seconds since boot, without a fork (read is a builtin)
now() {
	read -r up _ < /proc/uptime
	NOW=${up%.*}
}
create() {
	for try in 1 2 3; do
		xl create "/etc/xen/$1.cfg" < /dev/null > "/share/out/xl-create-$1.txt" 2>&1 &&
			return 0
		mark "RETRY $1 xl create attempt $try failed"
		cat "/share/out/xl-create-$1.txt" >> "/share/out/xl-create-$1-failed.txt"
		timeout 60 xl destroy "$1" < /dev/null > /dev/null 2>&1
		sleep 5
	done
	return 1
}
# waitready NAME: 0 when the guest printed ===TVLAB-READY===, 1 when it crashed
# (TCG's emulation now and then makes a PVH guest triple-fault at boot; its
# domain is preserved in state "c"), fails the run on a timeout or init error.
waitready() {
	log=/share/out/console/guest-$1.log
	now
	t0=$NOW
	n=0
	while ! grep -q '===TVLAB-READY===' "$log" 2>/dev/null; do
		n=$((n + 1))
		now
		t=$((NOW - t0))
		[ $t -lt "$GUEST_WAIT" ] || fail "$1 no ===TVLAB-READY=== within $GUEST_WAIT s"
		grep -q '===TVLAB-ERROR' "$log" 2>/dev/null && fail "$1 guest init failed"
		if [ $((n % 8)) -eq 0 ]; then
			mark "WAITING $1 ${t}s"
			# up to 3 tries: under TCG a dom0 process now and then aborts
			# at start ("Aborted", a loader assertion), xl list included
			state=
			for try in 1 2 3; do
				state=$(timeout 60 xl list "$1" < /dev/null 2>/dev/null |
					awk 'NR == 2 { print $5 }')
				[ -n "$state" ] && break
			done
			[ -n "$state" ] || fail "$1 domain is gone"
			case $state in *c*) return 1 ;; esac
		fi
		sleep 2
	done
	return 0
}
while read -r name type; do
	[ -n "$name" ] || continue
	for boot in 1 2 3 0; do
		[ $boot -gt 0 ] || fail "$name crashed while booting, 3 times"
		create "$name" ||
			fail "$name xl create ($type): $(tail -n 3 /share/out/xl-create-$name.txt | tr '\n' ' ')"
		mark "GUEST-CREATED $name $type"
		waitready "$name" && break
		mark "RETRY $name crashed while booting (attempt $boot)"
		cp "/share/out/console/guest-$name.log" "/share/out/console/crashed-$name-$boot.log"
		timeout 60 xl destroy "$name" < /dev/null > /dev/null 2>&1
		: > "/share/out/console/guest-$name.log"
	done
	mark "GUEST-READY $name"
done < /etc/xenlab-guests

# The job: from the host, through the share; bounded.
export XENLAB_GUESTS="$(cut -d' ' -f1 /etc/xenlab-guests | tr '\n' ' ')"
export XENLAB_OUT=/share/out
export LD_LIBRARY_PATH=/share/tv/lib:/lib/x86_64-linux-gnu
mark "JOB-START"
timeout -s KILL $JOB_TIMEOUT sh /share/job.sh > /share/out/job.out 2>&1
rc=$?
mark "JOB-DONE $rc"
dmesg > /share/out/dom0-dmesg.txt 2>/dev/null
for d in $(xl list 2>/dev/null | awk 'NR > 2 { print $1 }'); do
	xl destroy "$d" 2>/dev/null
done
bye
