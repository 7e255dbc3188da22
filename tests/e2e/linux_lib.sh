# tests/e2e/linux_lib.sh - shared by the opt-in Linux guest tests
# (linux_boot.sh, linux_virtio.sh); sourced, not run.
#
# Provides: result counters and ok / not_ok / skip / todo / note / finish;
# now / elapsed; find_yun_vmm (sets $yun); linux_vmlinuz (sets $vmlinuz);
# watch_vm (start a VMM and follow its serial log); report_run (how a run
# ended); failed_insn (the instruction KVM could not emulate).
# Callers set $repo, $timeout_s and $logdir before using them.

passed=0
failed=0
skipped=0
todo=0

ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
skip() { echo "ok - # SKIP $*"; skipped=$((skipped + 1)); }
todo() { echo "ok - $1 # TODO $2"; todo=$((todo + 1)); }
note() { sed 's/^/# /'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
later() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

finish() {
	echo "$passed passed, $failed failed, $skipped skipped, $todo todo"
	[ "$failed" -eq 0 ]
	exit
}

# $yun: yun-vmm from $YUN_BUILD_DIR or the first build directory holding one.
find_yun_vmm() {
	local b build=${YUN_BUILD_DIR:-}
	if [ -z "$build" ]; then
		for b in build build-bench build-dev; do
			if [ -x "$repo/$b/src/vmm/yun-vmm" ]; then
				build=$repo/$b
				break
			fi
		done
	fi
	yun=${build:+$build/src/vmm/yun-vmm}
}

# linux_vmlinuz [PATH]: set $vmlinuz to PATH, or to Debian's cloud kernel
# fetched by scripts/linux-kernel; records a failure and returns 1 when
# there is none.
linux_vmlinuz() {
	vmlinuz=${1:-}
	if [ -z "$vmlinuz" ] && ! vmlinuz=$("$repo/scripts/linux-kernel" 2>"$logdir/fetch.err"); then
		not_ok "fetch the Debian cloud kernel (scripts/linux-kernel)"
		note <"$logdir/fetch.err"
		return 1
	fi
	if [ ! -r "$vmlinuz" ]; then
		not_ok "kernel $vmlinuz is not readable"
		return 1
	fi
}

# True when the VMM has said on stderr that KVM stopped the guest: yun-vmm
# exits then, but QEMU only pauses the VM and would sit there until killed.
kvm_failed() {
	grep -q "KVM internal error\|emulation failure" "$1" 2>/dev/null
}

# watch_vm LOG STOP_RE GRACE -- ARGV...: start ARGV and follow the serial
# LOG until the VMM exits, KVM stops the guest, timeout_s runs out, or GRACE
# seconds after the first line matching STOP_RE (grep -E; "" for none).
# Sets: r_banner (seconds to "Linux version"), r_stop (to STOP_RE), r_first
# and r_last (first and last serial output), each "" when not seen;
# r_status (exit status, "killed" or "paused"), r_kvm_error, r_elapsed.
# $vmm_pid is the VMM while it runs (for an EXIT trap to kill).
watch_vm() {
	local log=$1 stop_re=$2 grace=$3 pid t0 t stop_at size last_size=0 i
	shift 4
	: >"$log"
	t0=$(now)
	"$@" </dev/null >"$log.out" 2>"$log.err" &
	pid=$!
	vmm_pid=$pid
	r_banner=""
	r_stop=""
	r_first=""
	r_last=""
	r_status=killed
	r_kvm_error=0
	stop_at=$(later "$t0" "$timeout_s")
	while :; do
		t=$(now)
		size=$(stat -c %s "$log" 2>/dev/null || echo 0)
		if [ "$size" -gt "$last_size" ]; then
			last_size=$size
			r_last=$(elapsed "$t0" "$t")
			[ -n "$r_first" ] || r_first=$r_last
			if [ -z "$r_banner" ] && grep -qa "Linux version" "$log"; then
				r_banner=$r_last
			fi
			if [ -n "$stop_re" ] && [ -z "$r_stop" ] && tr -d '\r' <"$log" | grep -qaE "$stop_re"; then
				r_stop=$r_last
				stop_at=$(later "$t" "$grace")
			fi
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			r_status=$?
			break
		fi
		if kvm_failed "$log.err"; then
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
	vmm_pid=""
	# yun-vmm may print its dump and exit between two polls.
	kvm_failed "$log.err" && r_kvm_error=1
	# Output written between the last poll and the exit still counts.
	t=$(now)
	[ -n "$r_banner" ] || ! grep -qa "Linux version" "$log" || r_banner=$(elapsed "$t0" "$t")
	[ -z "$stop_re" ] || [ -n "$r_stop" ] || ! tr -d '\r' <"$log" | grep -qaE "$stop_re" ||
		r_stop=$(elapsed "$t0" "$t")
	r_elapsed=$(elapsed "$t0" "$t")
}

# The instruction KVM could not emulate, as hex bytes ("cc 90 ..."), or
# nothing. yun-vmm names its bytes ("instruction bytes cc 90 ..."); QEMU
# prints the raw words of kvm_run.emulation_failure: flags, then insn_size
# and insn_bytes packed little-endian from the second word on.
failed_insn() {
	local words w i n=0 size out=""
	local -a b=()
	out=$(sed -n 's/.*instruction bytes \([0-9a-f][0-9a-f ]*\).*/\1/p' "$1" | head -n 1)
	if [ -n "$out" ]; then
		echo "${out% }"
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
			b[n++]=$(((0x$w >> (8 * i)) & 0xff))
		done
	done
	size=${b[0]}
	((size > 15)) && size=15
	for ((i = 1; i <= size; i++)); do
		out+=$(printf ' %02x' "${b[i]}")
	done
	echo "${out# }"
}

# report_run NAME LOG: how the last watch_vm ended, as "# ..." lines.
report_run() {
	local name=$1 log=$2 insn
	case $r_status in
	killed) echo "# $name: still running after ${r_elapsed}s; killed" ;;
	paused) echo "# $name: KVM stopped the guest and the VMM paused; killed after ${r_elapsed}s" ;;
	*)
		if [ "$r_kvm_error" = 1 ]; then
			echo "# $name: KVM stopped the guest; the VMM exited with status $r_status after ${r_elapsed}s"
		else
			echo "# $name: exited with status $r_status after ${r_elapsed}s"
		fi
		;;
	esac
	echo "# $name: $(wc -l <"$log") serial lines, the first at ${r_first:-?}s, the last at ${r_last:-?}s:"
	tail -n 6 "$log" | tr -d '\r' | note
	insn=$(failed_insn "$log.err")
	[ -z "$insn" ] || echo "# $name: KVM could not emulate the instruction at RIP; bytes: $insn"
	if [ -s "$log.err" ]; then
		echo "# $name: stderr (first lines):"
		head -n 4 "$log.err" | note
	fi
}
