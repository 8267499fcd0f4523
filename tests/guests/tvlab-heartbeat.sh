#!/bin/sh
# Guest-lab heartbeat: once the ground truth is printed (/run/tvlab-ready), prints
# "TVLAB-HEARTBEAT <n> <uptime>" every second. Builtins only: never forks, so its
# pid and memory stay put; reading /proc/uptime opens a file every second
# (a do_sys_openat2 call a breakpoint test can wait for).
exec 3<>/run/tvlab.fifo
n=0
while :; do
	read -t 1 -u 3 x
	if [ -e /run/tvlab-ready ]; then
		n=$((n + 1))
		read -r up idle < /proc/uptime
		echo "TVLAB-HEARTBEAT $n $up"
	fi
done
