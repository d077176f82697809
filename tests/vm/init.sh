#!/bin/busybox sh
# /init of the tier-3 guest (tests/vm_powercut.rs drives it; build.sh packs it into the initramfs).
#
# One boot = one cycle: mount the disk (the kernel replays ext4's journal: the file system's
# recovery), read the journal the previous boot left (`turnwal verify --json` and
# `turnwal export --raw`: what was recovered after the power cut), write that report to the
# second disk, then feed a new writer and let it run until the host pulls the plug (SIGKILL to
# QEMU). The host reads ttyS1: lines "TWL <what> ..." from this script and the writer's own
# `{"durable_through": N}` lines, written straight to the port after each completed fsync.
#
# Parameters come on the kernel command line (twl.<name>=<value>):
#   nonce   tags this boot's report        check   chain to report on, or -
#   chain   chain to append to, or -       seed, big (one_in,min,max): the chain's stream
#   sync    always|batch|never             compact N: --compact-records N (0: none)
#   lines   lines to feed                  end     idle (wait for the kill) | poweroff
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
stty -F /dev/ttyS1 raw -echo 2>/dev/null

say() { echo "TWL $*" > /dev/ttyS1; }
stop() {
	if [ "$TWL_end" = poweroff ]; then poweroff -f; fi
	while :; do sleep 3600; done
}

TWL_nonce=0 TWL_check=- TWL_chain=- TWL_seed=1 TWL_big=0,1,1 TWL_sync=always TWL_compact=0
TWL_lines=0 TWL_end=idle
for a in $(cat /proc/cmdline); do
	case "$a" in
	twl.*=*)
		k=${a%%=*}
		eval "TWL_${k#twl.}=\${a#*=}"
		;;
	esac
done

# A guest whose host died (its test killed without unwinding) powers itself off.
(
	sleep 1200
	echo "TWL watchdog" > /dev/ttyS1
	poweroff -f
) &

for m in $(cat /lib/modules/load); do insmod "/lib/modules/$m.ko" || say insmod-failed "$m"; done
say boot "$TWL_nonce"
i=0
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do
	i=$((i + 1))
	[ $i -gt 200 ] && { say no-disk; stop; }
	sleep 0.05
done
if ! mount -t ext4 /dev/vda /mnt; then
	say mount-failed
	stop
fi
say mounted

# The report: what the previous boot's journal holds now, before any writer touched it.
if [ "$TWL_check" != - ]; then
	cd /tmp || stop
	turnwal verify "/mnt/$TWL_check" --json > verify.json 2> verify.err
	echo $? > verify.rc
	turnwal export "/mnt/$TWL_check" --raw > export.jsonl 2> export.err
	echo $? > export.rc
	say verify "$(cat verify.rc)" "$(cat verify.json)"
	{
		echo "TWLREPORT $TWL_nonce"
		for f in verify.rc verify.json verify.err export.rc export.jsonl export.err; do
			echo "$f $(wc -c < $f)"
			cat $f
		done
		echo "END $TWL_nonce"
	} > report
	# conv=fsync: every block is in QEMU's hands (the host file) before the writer starts.
	dd if=report of=/dev/vdb bs=1M conv=fsync 2> /dev/null || say report-failed
	rm report
	say reported
	cd /
fi

# Old chains go, so the disk never fills.
for d in /mnt/c*; do
	[ -d "$d" ] || continue
	n=${d#/mnt/}
	[ "$n" = "$TWL_check" ] || [ "$n" = "$TWL_chain" ] || rm -rf "$d"
done

if [ "$TWL_chain" != - ]; then
	if [ "$TWL_chain" = "$TWL_check" ]; then
		last=$(tail -n 1 /tmp/export.jsonl)
	elif [ -d "/mnt/$TWL_chain" ]; then
		last=$(turnwal export "/mnt/$TWL_chain" --raw 2> /dev/null | tail -n 1)
	else
		last=
	fi
	last=$(echo "$last" | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
	[ -n "$last" ] || last=1
	from=$((last + 1))
	compact=
	[ "$TWL_compact" != 0 ] && compact="--compact-records $TWL_compact"
	say append "$from"
	# shellcheck disable=SC2086 # $compact is two words or none
	feeder "$TWL_seed" $(echo "$TWL_big" | tr , ' ') "$from" "$TWL_lines" |
		turnwal append "/mnt/$TWL_chain" --sync "$TWL_sync" $compact > /dev/ttyS1 2> /tmp/append.err
	rc=$?
	say exit "$rc" "$(head -c 300 /tmp/append.err | tr '\n' ' ')"
fi
say idle
stop
