#!/usr/bin/env bash
# tests/e2e/linux_boot.sh - opt-in slow test: boot a real Linux bzImage.
#
# Boots Debian's cloud kernel (fetched by scripts/linux-kernel) in yun-vmm and,
# as the anchor, in QEMU microvm, and passes for a VMM when the kernel's
# "Linux version" banner appears on its serial port. Not part of the default
# suite: on PVM-backed KVM (docs/benchmarks.md) guest kernel code is emulated
# and the banner takes minutes.
#
# Environment:
#   LINUX_BOOT_TIMEOUT  seconds to wait for the banner per VMM (default 300)
#   LINUX_BOOT_FOLLOW   seconds to keep watching after the banner, to see how
#                       far the kernel gets (default 0: stop at the banner)
#   LINUX_BOOT_VMLINUZ  kernel to boot (default: scripts/linux-kernel's)
#   LINUX_BOOT_CMDLINE  kernel command line (default below)
#   LINUX_BOOT_MEMORY   guest MiB (default 512)
#   LINUX_BOOT_QEMU     0 skips the QEMU anchor (default 1)
#   LINUX_BOOT_QEMU_CPU QEMU -cpu (default host,-arch-capabilities: PVM
#                       refuses QEMU's write of that MSR with plain "host")
#   LINUX_BOOT_LOGDIR   where the serial logs stay (default: a new temp dir)
#   YUN_BUILD_DIR       meson build dir holding src/vmm/yun-vmm
#
# Output: "ok - ..." / "not ok - ..." lines, details as "# ..." lines, and a
# closing "N passed, N failed" line. Exit status 0 when nothing failed.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
timeout_s=${LINUX_BOOT_TIMEOUT:-300}
follow_s=${LINUX_BOOT_FOLLOW:-0}
memory=${LINUX_BOOT_MEMORY:-512}
qemu_cpu=${LINUX_BOOT_QEMU_CPU:-host,-arch-capabilities}
# earlyprintk: the banner shows as soon as setup_arch() registers the early
#   console, instead of after the console driver comes up much later.
# panic=-1: a panic reboots at once, which ends both VMMs (--no-reboot).
# lpj, tsc=reliable, no_timer_check: skip calibration loops and timer checks
#   that cost minutes when every kernel instruction is emulated.
# mitigations=off: fewer boot-time patching passes; a test VM has no tenants.
# clearcpuid=cx16 noxsave: on PVM-backed KVM the instruction emulator cannot
#   run lock cmpxchg16b (SLUB's double cmpxchg) nor xsave/xrstor; without CX16
#   and XSAVE the kernel avoids both and gets further. Harmless on VT-x.
cmdline=${LINUX_BOOT_CMDLINE:-console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 panic=-1 \
lpj=1000000 tsc=reliable no_timer_check mitigations=off clearcpuid=cx16 noxsave}

passed=0
failed=0
skipped=0

ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
skip() { echo "ok - # SKIP $*"; skipped=$((skipped + 1)); }
note() { sed 's/^/# /'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

finish() {
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

build=${YUN_BUILD_DIR:-}
if [ -z "$build" ]; then
	for b in build build-bench build-dev; do
		if [ -x "$repo/$b/src/vmm/yun-vmm" ]; then
			build=$repo/$b
			break
		fi
	done
fi
yun=${build:+$build/src/vmm/yun-vmm}

logdir=${LINUX_BOOT_LOGDIR:-$(mktemp -d /tmp/yun-linux-boot.XXXXXX)}
mkdir -p "$logdir"

if [ -n "${LINUX_BOOT_VMLINUZ:-}" ]; then
	vmlinuz=$LINUX_BOOT_VMLINUZ
elif ! vmlinuz=$("$repo/scripts/linux-kernel" 2>"$logdir/fetch.err"); then
	not_ok "fetch the Debian cloud kernel (scripts/linux-kernel)"
	note <"$logdir/fetch.err"
	finish
fi
if [ ! -r "$vmlinuz" ]; then
	not_ok "kernel $vmlinuz is not readable"
	finish
fi
echo "# kernel: $vmlinuz"
echo "# cmdline: $cmdline"
echo "# timeout: ${timeout_s}s, follow: ${follow_s}s, logs: $logdir"

# True when the VMM has said on stderr that KVM stopped the guest: yun-vmm
# exits then, but QEMU only pauses the VM and would sit there until killed.
kvm_failed() {
	grep -q "KVM internal error\|emulation failure" "$1" 2>/dev/null
}

# boot NAME LOG -- ARGV...: start ARGV, watch LOG for the banner.
# Sets: r_banner (seconds to the banner, or ""), r_first and r_last (seconds
# to the first and the last serial output), r_status (exit status, "killed"
# or "paused"), r_kvm_error (1 when KVM stopped the guest), r_elapsed.
boot() {
	local name=$1 log=$2 pid t0 t stop_at size last_size=0 i
	shift 3
	: >"$log"
	t0=$(now)
	"$@" </dev/null >"$log.out" 2>"$log.err" &
	pid=$!
	r_banner=""
	r_first=""
	r_last=""
	r_status=killed
	r_kvm_error=0
	stop_at=$(awk -v a="$t0" -v b="$timeout_s" 'BEGIN { printf "%.3f", a + b }')
	while :; do
		t=$(now)
		size=$(stat -c %s "$log" 2>/dev/null || echo 0)
		if [ "$size" -gt "$last_size" ]; then
			last_size=$size
			r_last=$(elapsed "$t0" "$t")
			[ -n "$r_first" ] || r_first=$r_last
		fi
		if [ -z "$r_banner" ] && grep -q "Linux version" "$log" 2>/dev/null; then
			r_banner=$(elapsed "$t0" "$t")
			stop_at=$(awk -v a="$t" -v b="$follow_s" 'BEGIN { printf "%.3f", a + b }')
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			r_status=$?
			break
		fi
		if kvm_failed "$log.err"; then
			# yun-vmm exits (status 2) after its register dump; QEMU
			# pauses the VM and waits for a monitor that is not there.
			r_kvm_error=1
			for i in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null
				wait "$pid" 2>/dev/null
				r_status=paused
			else
				wait "$pid"
				r_status=$?
			fi
			break
		fi
		if awk -v t="$t" -v s="$stop_at" 'BEGIN { exit !(t >= s) }'; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			break
		fi
		sleep 0.2
	done
	# yun-vmm may print its dump and exit between two polls.
	kvm_failed "$log.err" && r_kvm_error=1
	# A banner printed in the last interval before the exit still counts.
	if [ -z "$r_banner" ] && grep -q "Linux version" "$log" 2>/dev/null; then
		r_banner=$(elapsed "$t0" "$(now)")
	fi
	r_elapsed=$(elapsed "$t0" "$(now)")
}

# The instruction KVM could not emulate. yun-vmm names its bytes
# ("instruction bytes cc 90 ..."); QEMU prints the raw words of struct
# kvm_run.emulation_failure: flags, then insn_size and insn_bytes packed
# little-endian from the second word on.
failed_insn() {
	local words w i n=0 size out=""
	local -a b=()
	out=$(sed -n 's/.*instruction bytes \([0-9a-f][0-9a-f ]*\).*/\1/p' "$1" | head -n 1)
	if [ -n "$out" ]; then
		echo "bytes at RIP: $out"
		return 0
	fi
	words=$(sed -n 's/.*emulation failure[^,]*), data \(.*\)/\1/p' "$1" | head -n 1)
	if [ -z "$words" ]; then # QEMU: "extra data[N]: 0x..."
		words=$(sed -n 's/^extra data\[[0-9]*\]: \(0x\)\{0,1\}//p' "$1" | head -n 3 | tr '\n' ' ')
	fi
	# shellcheck disable=SC2086 # split the words on purpose
	set -- $words
	[ $# -ge 3 ] || return 0
	((0x$1 & 1)) || return 0 # flags: no instruction bytes
	for w in "$2" "$3"; do
		for ((i = 0; i < 8; i++)); do
			b[n++]=$(( (0x$w >> (8 * i)) & 0xff ))
		done
	done
	size=${b[0]}
	((size > 15)) && size=15
	for ((i = 1; i <= size; i++)); do
		out+=$(printf ' %02x' "${b[i]}")
	done
	echo "bytes at RIP:$out"
}

report() {
	local name=$1 log=$2 insn
	if [ -n "$r_banner" ]; then
		ok "$name: Linux banner after ${r_banner}s"
	else
		not_ok "$name: no Linux banner within ${timeout_s}s"
	fi
	case $r_status in
	killed) echo "# $name: still running after ${r_elapsed}s; killed" ;;
	paused) echo "# $name: KVM stopped the guest and the VMM paused; killed after ${r_elapsed}s" ;;
	*)
		if [ "$r_kvm_error" = 1 ]; then
			echo "# $name: KVM stopped the guest; the VMM exited with status $r_status" \
				"after ${r_elapsed}s"
		else
			echo "# $name: exited with status $r_status after ${r_elapsed}s"
		fi
		;;
	esac
	echo "# $name: $(wc -l <"$log") serial lines, the first at ${r_first:-?}s, the last at" \
		"${r_last:-?}s:"
	tail -n 6 "$log" | tr -d '\r' | note
	insn=$(failed_insn "$log.err")
	[ -z "$insn" ] || echo "# $name: KVM could not emulate the instruction at RIP; $insn"
	if [ -s "$log.err" ]; then
		echo "# $name: stderr (first lines):"
		head -n 4 "$log.err" | note
	fi
}

yun_banner=""
if [ -z "$yun" ] || [ ! -x "$yun" ]; then
	not_ok "yun-vmm: no build found (set YUN_BUILD_DIR; ninja -C build)"
else
	boot yun-vmm "$logdir/yun.log" -- "$yun" --kernel "$vmlinuz" --cmdline "$cmdline" \
		--memory "$memory" --cpus 1 --serial "file=$logdir/yun.log"
	report yun-vmm "$logdir/yun.log"
	yun_banner=$r_banner
fi

qemu_banner=""
if [ "${LINUX_BOOT_QEMU:-1}" = 0 ]; then
	skip "qemu microvm anchor (LINUX_BOOT_QEMU=0)"
elif ! command -v qemu-system-x86_64 >/dev/null; then
	skip "qemu microvm anchor (qemu-system-x86_64 not installed)"
else
	# microvm enters a bzImage through its 16-bit setup code (qboot + the
	# Linux boot protocol), yun-vmm through the 64-bit entry point.
	boot qemu "$logdir/qemu.log" -- qemu-system-x86_64 -enable-kvm -M microvm \
		-cpu "$qemu_cpu" -m "$memory" -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$logdir/qemu.log" -no-reboot \
		-kernel "$vmlinuz" -append "$cmdline"
	report "qemu microvm" "$logdir/qemu.log"
	qemu_banner=$r_banner
fi

if [ -n "$yun_banner" ] && [ -n "$qemu_banner" ]; then
	echo "# time to banner: yun-vmm ${yun_banner}s, qemu microvm ${qemu_banner}s," \
		"yun/qemu $(awk -v a="$yun_banner" -v b="$qemu_banner" 'BEGIN { printf "%.2f", a / b }')"
fi
finish
