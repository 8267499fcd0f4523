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

. /etc/xenlab-lib.sh                    # mark, fail, boot, alive, ...
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

xenstored --pid-file=/run/xenstored.pid || fail "dom0 xenstored"
waitfor 30 "xenstored's socket" test -S /run/xenstored/socket
xen-init-dom0 > /share/out/xen-init-dom0.txt 2>&1 || fail "dom0 xen-init-dom0"
xenconsoled --log=guest --log-dir=/share/out/console --pid-file=/run/xenconsoled.pid ||
	fail "dom0 xenconsoled"
mark "TOOLSTACK $(xl info 2>/dev/null | grep -E '^(xen_version|virt_caps)' | tr -s ' \n' ' ')"

# The guests, one after the other: creating one while another boots made libxl
# time out waiting for xenconsoled ("console tty: timed out") on a loaded host, so
# each is created only when the previous one is up.
while read -r name type; do
	[ -n "$name" ] && boot "$name" "$type" boot
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
