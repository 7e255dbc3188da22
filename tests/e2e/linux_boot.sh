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
# closing "N passed, N failed, N skipped, N todo" line. Exit status 0 when nothing failed.
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

# shellcheck source=tests/e2e/linux_lib.sh
. "$repo/tests/e2e/linux_lib.sh"

find_yun_vmm
logdir=${LINUX_BOOT_LOGDIR:-$(mktemp -d /tmp/yun-linux-boot.XXXXXX)}
mkdir -p "$logdir"
linux_vmlinuz "${LINUX_BOOT_VMLINUZ:-}" || finish
echo "# kernel: $vmlinuz"
echo "# cmdline: $cmdline"
echo "# timeout: ${timeout_s}s, follow: ${follow_s}s, logs: $logdir"

# boot NAME LOG -- ARGV...: run ARGV until the banner (then follow_s
# more), an exit, a KVM stop or timeout_s; then report.
boot() {
	local name=$1 log=$2
	shift 3
	watch_vm "$log" "Linux version" "$follow_s" -- "$@"
	if [ -n "$r_banner" ]; then
		ok "$name: Linux banner after ${r_banner}s"
	else
		not_ok "$name: no Linux banner within ${timeout_s}s"
	fi
	report_run "$name" "$log"
}

yun_banner=""
if [ -z "$yun" ] || [ ! -x "$yun" ]; then
	not_ok "yun-vmm: no build found (set YUN_BUILD_DIR; ninja -C build)"
else
	boot yun-vmm "$logdir/yun.log" -- "$yun" --kernel "$vmlinuz" --cmdline "$cmdline" \
		--memory "$memory" --cpus 1 --serial "file=$logdir/yun.log"
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
	boot "qemu microvm" "$logdir/qemu.log" -- qemu-system-x86_64 -enable-kvm -M microvm \
		-cpu "$qemu_cpu" -m "$memory" -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$logdir/qemu.log" -no-reboot \
		-kernel "$vmlinuz" -append "$cmdline"
	qemu_banner=$r_banner
fi

if [ -n "$yun_banner" ] && [ -n "$qemu_banner" ]; then
	echo "# time to banner: yun-vmm ${yun_banner}s, qemu microvm ${qemu_banner}s," \
		"yun/qemu $(awk -v a="$yun_banner" -v b="$qemu_banner" 'BEGIN { printf "%.2f", a / b }')"
fi
finish
