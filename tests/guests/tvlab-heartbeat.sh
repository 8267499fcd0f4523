#!/bin/sh
# Guest-lab heartbeat: once the ground truth is printed (/run/tvlab-ready), prints
# "TVLAB-HEARTBEAT <n> <uptime> <path>" every second, where <path> is the file it
# opened to read the uptime (/proc/uptime): one do_sys_openat2 per second that a
# breakpoint test can wait for and compare with. Builtins only: it never forks on
# its own, so its pid and memory stay put.
#
# Between heartbeats it waits for a command line on the second serial port (ttyS1,
# QEMU's input.sock; lab.py send NAME ...). Only the live guests get commands:
#   spawn    start tvlab-late (the sleeper under a new name; at most one), print
#            "TVLAB-SPAWNED <pid> tvlab-late"
#   reap     kill it and wait for it, print "TVLAB-REAPED <pid>" (or "none")
#   ps TAG   a fresh ps block in init's format (pid ppid flags name) between
#            ===TVLAB-PS-BEGIN TAG=== and ===TVLAB-PS-END TAG===
exec 4<>/run/tvlab.fifo                 # never written: "read -t N -u 4" sleeps
if ! exec 3<>/dev/ttyS1; then
	exec 3<>/run/tvlab.fifo
fi
UPTIME=/proc/uptime
LATE=
n=0
while :; do
	cmd=
	read -t 1 -u 3 cmd arg
	[ -e /run/tvlab-ready ] || continue
	case "$cmd" in
	spawn)
		if [ -z "$LATE" ]; then
			tvlab-late 99 late &
			LATE=$!
			i=0
			while [ $i -lt 100 ]; do
				c=
				read -r c < "/proc/$LATE/comm"
				[ "$c" = tvlab-late ] && break
				read -t 0.1 -u 4 x
				i=$((i + 1))
			done
		fi
		echo "TVLAB-SPAWNED $LATE tvlab-late"
		continue
		;;
	reap)
		if [ -n "$LATE" ]; then
			kill "$LATE"
			wait "$LATE"
			echo "TVLAB-REAPED $LATE"
			LATE=
		else
			echo "TVLAB-REAPED none"
		fi
		continue
		;;
	ps)
		echo "===TVLAB-PS-BEGIN $arg==="
		for d in /proc/[0-9]*; do
			read -r s < "$d/stat" || continue
			comm=${s#*\(}
			comm=${comm%\)*}
			set -- ${s##*\) }
			echo "${s%% *} $2 $7 $comm"
		done
		echo "===TVLAB-PS-END $arg==="
		continue
		;;
	esac
	n=$((n + 1))
	read -r up idle < "$UPTIME"
	echo "TVLAB-HEARTBEAT $n $up $UPTIME"
done
