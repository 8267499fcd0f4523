#!/bin/sh
# /init of the TinyVMI guest lab initramfs (busybox-static); built by tests/guests/lab.py.
#
# Loads two modules, starts known processes, prints ground truth between
# ===TVLAB-BEGIN x=== / ===TVLAB-END x=== markers on the console (ttyS0), then
# ===TVLAB-READY===. From the ps block on, nothing forks a long-lived process, and
# after READY nothing forks at all (the loops below use shell builtins only), so the
# set of user processes printed stays the set in memory until the guest is stopped.

/bin/busybox --install -s /bin
export PATH=/tvlab:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp

# Only errors and worse reach the console from here on, so kernel messages
# (e.g. "tsc unstable" under TCG) cannot cut into the truth blocks.
echo 4 > /proc/sys/kernel/printk
# Real addresses in /proc/kallsyms, /proc/modules and /sys/module/*/sections.
echo 0 > /proc/sys/kernel/kptr_restrict

fail() {
	echo "===TVLAB-ERROR $*==="
	poweroff -f
}
begin() { echo "===TVLAB-BEGIN $1==="; }
end() { echo "===TVLAB-END $1==="; }

for m in loop dummy; do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done

# wait_comm PID NAME: wait until PID has exec'd into NAME (bounded: ~10 s).
wait_comm() {
	n=0
	while [ $n -lt 100 ]; do
		read -r c < "/proc/$1/comm" && [ "$c" = "$2" ] && return 0
		usleep 100000
		n=$((n + 1))
	done
	fail "process $2 did not start"
}

# The fifo is never written: "read -t N -u 3" on it is a fork-free sleep.
mkfifo /run/tvlab.fifo
exec 3<>/run/tvlab.fifo

tvlab-sleeper 4242 alpha beta &
SLEEPER=$!
tvlab-idle 7 gamma &
IDLE=$!
tvlab-heartbeat &
HEART=$!
wait_comm $SLEEPER tvlab-sleeper
wait_comm $IDLE tvlab-idle
wait_comm $HEART tvlab-heartbeat
USERPIDS="1 $SLEEPER $IDLE $HEART"

begin uname; uname -r; end uname
begin version; cat /proc/version; end version

# pid ppid flags name, from /proc/PID/stat (builtins only: no process of ours appears).
begin ps
for d in /proc/[0-9]*; do
	read -r s < "$d/stat" || continue
	comm=${s#*\(}
	comm=${comm%\)*}
	set -- ${s##*\) }
	echo "${s%% *} $2 $7 $comm"
done
end ps

begin modules; cat /proc/modules; end modules

# module section addresses: "module section address"
begin modsections
for m in loop dummy; do
	for f in /sys/module/$m/sections/.* /sys/module/$m/sections/*; do
		# cat, not read: these sysfs files refuse reads shorter than their size
		[ -f "$f" ] && echo "$m ${f##*/} $(cat "$f")"
	done
done
end modsections

begin kallsyms
grep -E ' (linux_banner|init_task|init_mm|_text|_stext|_etext|_sdata|_edata|_end|__bss_start|startup_64|page_offset_base|vmalloc_base|vmemmap_base|phys_base|swapper_pg_dir|init_top_pgt|level4_kernel_pgt|do_sys_openat2|jiffies|jiffies_64|modules|__per_cpu_offset|current_task|pcpu_hot|sys_call_table|idt_table|init_pid_ns|kallsyms_names|linux_proc_banner)$' /proc/kallsyms
end kallsyms

# every 37th symbol of the kernel itself (module symbols carry a 4th field),
# each with how many kernel symbols share its name, and how many kernel
# symbols there are: ground truth for symbol tables
begin kallsyms_sample
awk 'NF == 3 { n++; c[$3]++; if (n % 37 == 1) s[n] = $0 }
     END { for (k in s) { split(s[k], f, " "); print s[k], c[f[3]] } }' /proc/kallsyms
end kallsyms_sample
begin kallsyms_count
awk 'NF == 3' /proc/kallsyms | wc -l
end kallsyms_count

# "pid hex(cmdline)" for the known user processes
begin cmdline
for p in $USERPIDS; do
	echo "$p $(od -An -v -tx1 "/proc/$p/cmdline" | tr -d ' \n')"
done
end cmdline

# full /proc/PID/stat lines of the known user processes (arg_start, env_start, ...)
begin userstat
for p in $USERPIDS; do read -r s < "/proc/$p/stat" && echo "$s"; done
end userstat

# "pid maps-line" for the sleepers (the marker's address comes from here)
begin maps
for p in $SLEEPER $IDLE; do
	while read -r l; do echo "$p $l"; done < "/proc/$p/maps"
done
end maps

touch /run/tvlab-ready
echo "===TVLAB-READY==="

# PID 1 must never exit; wait reaps, the read sleeps without forking.
while :; do
	wait
	read -t 3600 -u 3 x
done
