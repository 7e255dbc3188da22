#!/usr/bin/env bash
# tests/e2e/linux_virtio.sh - opt-in slow test: Debian's cloud kernel finds
# yun-vmm's virtio devices.
#
# Boots Debian's cloud kernel (scripts/linux-kernel) with an initramfs
# (scripts/mkinitramfs) whose /init loads virtio_pci, virtio_blk, virtio_net
# and virtio_rng from the kernel's own .deb and prints YUNLINUX lines for the
# PCI functions, disks, network cards and hardware RNG it found. The VM gets
# a virtio-rng, a 64 MiB virtio-blk disk and a virtio-net card on a TAP this
# script creates (and always removes). Runs yun-vmm, then QEMU microvm with
# its own virtio-*-pci devices as the anchor, one after the other.
#
# Per VMM:
#   - the kernel's "Linux version" banner must appear on the serial port;
#   - on a host with hardware virtualization the YUNLINUX lines must name the
#     rng, the blk disk (64 MiB) and the net card (our MAC), every module
#     loaded, and /init must reach YUNLINUX DONE;
#   - on PVM-backed KVM (shared/TESTBED.md) guest kernel code is emulated and
#     the kernel dies at an int3 in alternative_instructions(), long before
#     userspace: the device check is then reported as a known limitation,
#     "ok - ... # TODO ...", counted as todo, neither passed nor failed. If the
#     lines do appear there anyway, they are checked as on VT-x.
# Not part of the default suite: it takes several minutes on PVM.
#
# Environment:
#   LINUX_VIRTIO_TIMEOUT  seconds per VMM, from start to giving up (default 400)
#   LINUX_VIRTIO_EXPECT   auto (default: "banner" when kvm_pvm is loaded,
#                         else "devices"), devices or banner
#   LINUX_VIRTIO_VMLINUZ  kernel (default: scripts/linux-kernel's)
#   LINUX_VIRTIO_INITRD   initramfs (default: built by scripts/mkinitramfs from
#                         that kernel's modules into the log directory)
#   LINUX_VIRTIO_CMDLINE  kernel command line (default below)
#   LINUX_VIRTIO_MEMORY   guest MiB (default 512)
#   LINUX_VIRTIO_QEMU     0 skips the QEMU anchor (default 1)
#   LINUX_VIRTIO_QEMU_CPU QEMU -cpu (default host,-arch-capabilities, as
#                         tests/e2e/linux_boot.sh)
#   LINUX_VIRTIO_LOGDIR   where the serial logs stay (default: a new temp dir)
#   YUN_BUILD_DIR         meson build dir holding src/vmm/yun-vmm
#
# Needs root (TAP device), cpio (scripts/setup), busybox-static, iproute2.
# Output: "ok - ..." / "not ok - ..." lines, details as "# ..." lines, and a
# closing "N passed, N failed, N skipped, N todo" line. Exit status 0 when
# nothing failed.
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
timeout_s=${LINUX_VIRTIO_TIMEOUT:-400}
memory=${LINUX_VIRTIO_MEMORY:-512}
qemu_cpu=${LINUX_VIRTIO_QEMU_CPU:-host,-arch-capabilities}
# The command line tests/e2e/linux_boot.sh arrived at (see the comments there
# and docs/benchmarks.md): earlyprintk shows the banner early; lpj,
# tsc=reliable and no_timer_check skip calibration; clearcpuid=cx16 noxsave
# keep the kernel off instructions the PVM emulator cannot run; panic=-1
# ends both VMMs (--no-reboot / yun-vmm's default) on a panic. rdinit=/init
# names the initramfs's init explicitly.
cmdline=${LINUX_VIRTIO_CMDLINE:-console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 panic=-1 \
lpj=1000000 tsc=reliable no_timer_check mitigations=off clearcpuid=cx16 noxsave rdinit=/init}
mac=52:54:00:79:75:6e # "yun"
disk_mib=64
disk_bytes=$((disk_mib * 1024 * 1024))
# How long to let a guest that printed YUNLINUX DONE power itself off.
done_grace_s=20

# shellcheck source=tests/e2e/linux_lib.sh
. "$repo/tests/e2e/linux_lib.sh"

tap=""
tap_made=0
logdir=""
disk=""
vmm_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# Interrupted while a VMM runs: stop it before its TAP goes away.
	if [ -n "$vmm_pid" ] && kill -0 "$vmm_pid" 2>/dev/null; then
		kill -KILL "$vmm_pid" 2>/dev/null
		wait "$vmm_pid" 2>/dev/null
	fi
	if [ "$tap_made" = 1 ] && ip link show "$tap" >/dev/null 2>&1; then
		ip link del "$tap" 2>/dev/null || true
	fi
	[ -z "$disk" ] || rm -f "$disk"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

expect=${LINUX_VIRTIO_EXPECT:-auto}
if [ "$expect" = auto ]; then
	if [ -d /sys/module/kvm_pvm ]; then expect=banner; else expect=devices; fi
fi
case $expect in
banner | devices) ;;
*)
	not_ok "LINUX_VIRTIO_EXPECT=$expect: want auto, banner or devices"
	finish
	;;
esac

find_yun_vmm

logdir=${LINUX_VIRTIO_LOGDIR:-$(mktemp -d /tmp/yun-linux-virtio.XXXXXX)}
mkdir -p "$logdir"

if [ "$(id -u)" -ne 0 ]; then
	skip "needs root to create a TAP device"
	finish
fi
if ! command -v ip >/dev/null; then
	skip "needs ip (iproute2) to create a TAP device"
	finish
fi

linux_vmlinuz "${LINUX_VIRTIO_VMLINUZ:-}" || finish

if [ -n "${LINUX_VIRTIO_INITRD:-}" ]; then
	initrd=$LINUX_VIRTIO_INITRD
else
	initrd=$logdir/initramfs.cpio.gz
	kver=${vmlinuz##*/vmlinuz-}
	moddir=$(dirname "$(dirname "$vmlinuz")")/lib/modules/$kver
	if "$repo/scripts/mkinitramfs" "$initrd" "$moddir" 2>"$logdir/mkinitramfs.err"; then
		ok "initramfs: $(sed -n 's/^mkinitramfs: [^:]*: //p' "$logdir/mkinitramfs.err")"
	else
		not_ok "build the initramfs (scripts/mkinitramfs)"
		note <"$logdir/mkinitramfs.err"
		finish
	fi
fi
if [ ! -r "$initrd" ]; then
	not_ok "initramfs $initrd is not readable"
	finish
fi

disk=$logdir/disk.img
rm -f "$disk"
if ! truncate -s "${disk_mib}M" "$disk"; then
	not_ok "create the ${disk_mib} MiB disk image $disk"
	finish
fi

# A TAP of our own, up, shared by both VMMs in turn. yun-vmm only removes a
# TAP it created itself, so this one outlives it; cleanup() removes it.
tap=yunlv$$
tap=${tap:0:15}
make_tap() {
	ip link show "$tap" >/dev/null 2>&1 && return 0
	ip tuntap add dev "$tap" mode tap 2>"$logdir/tap.err" &&
		ip link set "$tap" up 2>>"$logdir/tap.err" && tap_made=1
}
if ! make_tap; then
	not_ok "create TAP device $tap"
	note <"$logdir/tap.err"
	finish
fi

echo "# kernel: $vmlinuz"
echo "# initramfs: $initrd"
echo "# cmdline: $cmdline"
echo "# devices: rng, blk ${disk_mib} MiB ($disk), net on TAP $tap, MAC $mac"
echo "# expect: $expect$([ "$expect" = banner ] && echo " (PVM-backed KVM: guest kernel code is emulated)")"
echo "# timeout: ${timeout_s}s per VMM, logs: $logdir"

# boot LOG -- ARGV...: run ARGV until it exits, KVM stops the guest, /init
# prints YUNLINUX DONE (then up to done_grace_s for the power-off) or
# timeout_s runs out (linux_lib.sh's watch_vm; r_stop is YUNLINUX DONE).
boot() {
	local log=$1
	shift 2
	watch_vm "$log" "^YUNLINUX DONE" "$done_grace_s" -- "$@"
}

# The YUNLINUX lines of a log, carriage returns dropped.
yun_lines() { tr -d '\r' <"$1" | grep -a "^YUNLINUX "; }

# check_devices NAME LOG: what /init reported, against what the VM was given.
check_devices() {
	local name=$1 log=$2 lines bad
	lines=$(yun_lines "$log")
	bad=$(grep "^YUNLINUX MODULE .* fail" <<<"$lines" | awk '{ print $3 }' | tr '\n' ' ')
	if [ -z "$bad" ] && grep -q "^YUNLINUX MODULE virtio_pci ok" <<<"$lines"; then
		ok "$name: modules loaded ($(grep -c "^YUNLINUX MODULE" <<<"$lines") insmod ok)"
	else
		not_ok "$name: modules loaded (failed: ${bad:-virtio_pci not reported})"
	fi
	# virtio PCI ids: 1af4:1044 modern rng (1005 transitional), 1042 blk
	# (1001), 1041 net (1000); virtio device ids 4, 2, 1.
	if grep -Eq "^YUNLINUX PCI [^ ]+ 1af4:(1044|1005)$" <<<"$lines" &&
		grep -Eq "^YUNLINUX VIRTIO [^ ]+ 0*4 virtio_rng$" <<<"$lines" &&
		grep -Eq "^YUNLINUX RNG virtio_rng[^ ]* [1-9]" <<<"$lines"; then
		ok "$name: rng found ($(grep "^YUNLINUX RNG" <<<"$lines" | cut -d' ' -f3-))"
	else
		not_ok "$name: rng: want PCI 1af4:1044, VIRTIO id 4 bound to virtio_rng, bytes from /dev/hwrng"
	fi
	if grep -Eq "^YUNLINUX PCI [^ ]+ 1af4:(1042|1001)$" <<<"$lines" &&
		grep -q "^YUNLINUX BLK vda $disk_bytes$" <<<"$lines"; then
		ok "$name: blk found (vda $disk_bytes bytes)"
	else
		not_ok "$name: blk: want PCI 1af4:1042 and vda of $disk_bytes bytes"
	fi
	if grep -Eq "^YUNLINUX PCI [^ ]+ 1af4:(1041|1000)$" <<<"$lines" &&
		grep -q "^YUNLINUX NET eth[0-9]* $mac$" <<<"$lines"; then
		ok "$name: net found ($(grep "^YUNLINUX NET .* $mac$" <<<"$lines" | cut -d' ' -f3-))"
	else
		not_ok "$name: net: want PCI 1af4:1041 and an eth* with MAC $mac"
	fi
}

# report NAME LOG: the banner, then the devices or the known limitation.
report() {
	local name=$1 log=$2 insn n why
	if [ -n "$r_banner" ]; then
		ok "$name: Linux banner after ${r_banner}s"
	else
		not_ok "$name: no Linux banner within ${timeout_s}s"
	fi
	insn=$(failed_insn "$log.err")
	n=$(yun_lines "$log" | wc -l)
	if [ -n "$r_stop" ]; then
		echo "# $name: YUNLINUX DONE at ${r_stop}s"
		yun_lines "$log" | note
		check_devices "$name" "$log"
	elif [ "$expect" = banner ]; then
		if [ "$r_kvm_error" = 1 ] && [ "${insn%% *}" = cc ]; then
			why="PVM int3 limit (KVM cannot emulate int3 in alternative_instructions())"
		elif [ "$r_kvm_error" = 1 ]; then
			why="PVM emulation limit (KVM could not emulate${insn:+ $insn})"
		else
			why="PVM: userspace not reached within ${timeout_s}s"
		fi
		if [ -n "$r_banner" ]; then
			todo "$name: virtio device lines (rng, blk, net)" "reached banner only: $why; $n YUNLINUX lines"
		else
			todo "$name: virtio device lines (rng, blk, net)" "banner not reached: $why; $n YUNLINUX lines"
		fi
	else
		not_ok "$name: /init did not reach YUNLINUX DONE ($n YUNLINUX lines)"
		[ "$n" -eq 0 ] || yun_lines "$log" | note
	fi
	report_run "$name" "$log"
}

yun_banner=""
if [ -z "$yun" ] || [ ! -x "$yun" ]; then
	not_ok "yun-vmm: no build found (set YUN_BUILD_DIR; ninja -C build)"
else
	echo "# yun-vmm: $yun"
	boot "$logdir/yun.log" -- "$yun" --kernel "$vmlinuz" --initrd "$initrd" \
		--cmdline "$cmdline" --memory "$memory" --cpus 1 --serial "file=$logdir/yun.log" \
		--rng --disk "path=$disk" --net "tap=$tap,mac=$mac"
	report yun-vmm "$logdir/yun.log"
	yun_banner=$r_banner
fi

qemu_banner=""
if [ "${LINUX_VIRTIO_QEMU:-1}" = 0 ]; then
	skip "qemu microvm anchor (LINUX_VIRTIO_QEMU=0)"
elif ! command -v qemu-system-x86_64 >/dev/null; then
	skip "qemu microvm anchor (qemu-system-x86_64 not installed)"
elif ! make_tap; then
	not_ok "qemu microvm: recreate TAP device $tap"
	note <"$logdir/tap.err"
else
	# pcie=on gives microvm a PCIe host bridge (ECAM, described by ACPI's
	# MCFG); rtc=on the CMOS clock a stock kernel expects.
	boot "$logdir/qemu.log" -- qemu-system-x86_64 -enable-kvm -M microvm,pcie=on,rtc=on \
		-cpu "$qemu_cpu" -m "$memory" -smp 1 -nodefaults -no-user-config \
		-display none -serial "file:$logdir/qemu.log" -no-reboot \
		-kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline" \
		-device virtio-rng-pci \
		-drive "file=$disk,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
		-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
		-device "virtio-net-pci,netdev=n0,mac=$mac"
	report "qemu microvm" "$logdir/qemu.log"
	qemu_banner=$r_banner
fi

if [ -n "$yun_banner" ] && [ -n "$qemu_banner" ]; then
	echo "# time to banner: yun-vmm ${yun_banner}s, qemu microvm ${qemu_banner}s," \
		"yun/qemu $(awk -v a="$yun_banner" -v b="$qemu_banner" 'BEGIN { printf "%.2f", a / b }')"
fi
finish
