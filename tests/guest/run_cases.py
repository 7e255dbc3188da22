#!/usr/bin/env python3
"""run_cases.py - run the freestanding test guest's cases under yun-vmm and QEMU.

Every case boots the same image (bzImage, or the PVH ELF for the pvh-*
cases) with "yuntest=<case>" on the kernel command line, reads the guest's
"YT ..." lines from the serial port (the VMM's stdout) and checks them and
the VMM's exit status. The same checks apply to both VMMs, so QEMU's
behaviour (an implementation nobody here wrote) is the reference.

    run_cases.py --vmm yun|qemu|both --yun-vmm PATH --bzimage PATH --elf PATH
                 [--case NAME ...] [--timeout S] [--seed N] [--verbose]

A NAME selects the case of that name and its variants ("smp" selects
smp-1, smp-2, smp-4 and smp-mptable; "pvh" selects every pvh-* case).
Output: one "ok - <case> [<vmm>] (<secs>s)" or "not ok - <case> [<vmm>]:
<reason>" line per run ("ok - <case> [<vmm>] # SKIP <why>" for a run that
cannot happen: a VMM the case is not for, or a virtio device yun-vmm does
not offer yet, detected from `yun-vmm --help`), then "# <N> skipped" and
"<N> passed, <N> failed" (skips are not passes); exit status 1 if anything
failed. Python 3 standard library only.
"""

import argparse
import calendar
import os
import queue
import random
import json
import re
import socket
import string
import struct
import subprocess
import sys
import tempfile
import threading
import time

# http.client over a Unix socket, as the end-to-end tests talk to yund (stdlib only)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import UnixHTTPConnection  # noqa: E402

STATUS_PASS = 33  # debug-exit 0x10: (0x10 << 1) | 1
STATUS_FAIL = 35  # debug-exit 0x11
MIB = 1 << 20
DISK_SECTORS = 2048 + 7  # virtio-blk test image: 1 MiB + 7 sectors (cases/virtio_blk.c)
DISK_BYTES = DISK_SECTORS * 512
DISK_ID = "yt-disk0"  # its serial / id, returned by GET_ID
ECAM_QEMU = 0xE0000000  # QEMU microvm,pcie=on (no MCFG table there)
GIB = 1 << 30


# ---- what the guest computes, recomputed here ----------------------------

def fnv1a64_words(data):
    """FNV-1a 64 over little-endian 64-bit words (last one zero-padded),
    then the byte length folded in: cases/initrd.c."""
    prime, mask = 0x100000001B3, (1 << 64) - 1
    h = 0xCBF29CE484222325
    padded = data + b"\0" * (-len(data) % 8)
    for (w,) in struct.iter_unpack("<Q", padded):
        h = ((h ^ w) * prime) & mask
    return ((h ^ len(data)) * prime) & mask


def blk_pattern_sector(seed, sector):
    """512 bytes of the pattern cases/virtio_blk.c writes to `sector`:
    word i is base + i * step, base a mix of the seed and the sector."""
    mask = (1 << 64) - 1
    x = seed ^ ((sector * 0x9E3779B97F4A7C15) & mask)
    x ^= x >> 29
    x = (x * 0x94D049BB133111EB) & mask
    base = x ^ (x >> 32)
    return struct.pack("<64Q", *((base + i * 0xBF58476D1CE4E5B9) & mask for i in range(64)))


def unescape(s):
    """Undo the guest's \\xHH escaping of the command line."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


# ---- one run of the VMM --------------------------------------------------

class Run:
    """A finished VMM process: exit status, timed serial lines, stderr."""

    def __init__(self):
        self.status = None
        self.timed_out = False
        self.lines = []  # (monotonic time, text)
        self.stderr = ""
        self.secs = 0.0
        self.start = 0.0

    def values(self, key):
        """The value parts of every "YT <key> ..." line."""
        out = []
        for _, text in self.lines:
            if text == "YT " + key:
                out.append("")
            elif text.startswith("YT " + key + " "):
                out.append(text[len(key) + 4:])
        return out

    def value(self, key):
        v = self.values(key)
        return v[0] if v else None

    def time_of(self, text):
        for t, line in self.lines:
            if line == text:
                return t
        return None

    def tail(self, n=6):
        return [text for _, text in self.lines[-n:]]


def execute(argv, timeout, feed=None, on_line=None):
    """Run argv with stdin/stdout/stderr pipes; `feed(stdin)` is called once
    the guest says "YT READY" (it may write to the guest's serial input);
    `on_line(text, proc)` sees every serial line as it arrives (a case that
    talks to the guest or measures the VMM while it runs)."""
    run = Run()
    run.start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line_q = queue.Queue()
    err_chunks = []

    def read_stdout():
        for raw in iter(proc.stdout.readline, b""):
            line_q.put((time.monotonic(), raw.decode("latin-1").rstrip("\r\n")))
        line_q.put(None)

    def read_stderr():
        err_chunks.append(proc.stderr.read().decode("utf-8", "replace"))

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=read_stderr, daemon=True)]
    for t in readers:
        t.start()

    deadline = run.start + timeout
    fed = feed is None
    eof = False
    while not eof:
        try:
            item = line_q.get(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
        except queue.Empty:
            item = False
        if item is None:
            eof = True
        elif item:
            run.lines.append(item)
            if on_line:
                try:
                    on_line(item[1], proc)
                except OSError as e:
                    run.lines.append((time.monotonic(), "# harness: %s" % e))
            if not fed and item[1] == "YT READY":
                fed = True
                try:
                    feed(proc.stdin)
                except OSError:
                    pass
        if time.monotonic() >= deadline:
            run.timed_out = True
            proc.kill()
            break
    try:
        run.status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        run.timed_out = True
        proc.kill()
        run.status = proc.wait()
    run.secs = time.monotonic() - run.start
    for t in readers:
        t.join(timeout=2)
    while True:  # lines that raced with the kill
        try:
            item = line_q.get_nowait()
        except queue.Empty:
            break
        if item:
            run.lines.append(item)
    run.stderr = "".join(err_chunks)
    try:
        proc.stdin.close()
    except OSError:
        pass
    return run


# ---- the cases -----------------------------------------------------------

class CheckFailed(Exception):
    pass


def require(cond, msg):
    if not cond:
        raise CheckFailed(msg)


class Case:
    def __init__(self, name, guest, image="bz", cpus=1, memory=256, initrd=False,
                 expect="pass", vmms=("yun", "qemu"), extra="", check=None, feed=None,
                 devices=(), qemu_extra=(), on_line=None):
        self.name = name
        self.guest = guest      # the yuntest= value
        self.image = image      # "bz" or "elf"
        self.cpus = cpus
        self.memory = memory    # MiB
        self.initrd = initrd
        self.expect = expect    # "pass", "exit0" or "triplefault"
        self.vmms = vmms
        self.extra = extra      # more command-line words
        self.check = check      # check(ctx, run, vmm) raises CheckFailed
        self.feed = feed        # feed(ctx) -> bytes for the serial input
        self.devices = devices  # virtio devices: "rng", "disk", "disk-ro"
        self.qemu_extra = qemu_extra  # QEMU-only argv words (e.g. a root port)
        self.on_line = on_line  # on_line(ctx, text, proc) while the VMM runs


class Context:
    """Per-harness-run data the checks share: random inputs, image facts."""

    def __init__(self, args, tmpdir, rng):
        self.args = args
        self.rng = rng
        self.cmdline_tail = make_cmdline_tail(rng)
        self.serial_text = make_serial_text(rng)
        size = rng.randint(64 * 1024, 256 * 1024) | 1  # odd: exercises the tail word
        self.initrd_data = bytes(rng.getrandbits(8) for _ in range(size))
        self.initrd_path = os.path.join(tmpdir, "initrd.img")
        with open(self.initrd_path, "wb") as f:
            f.write(self.initrd_data)
        self.initrd_hash = fnv1a64_words(self.initrd_data)
        with open(args.bzimage, "rb") as f:
            hdr = f.read(0x270)
        self.initrd_addr_max = struct.unpack_from("<I", hdr, 0x22C)[0]
        self.tmpdir = tmpdir
        self.blk_seed = rng.getrandbits(63) | 1
        self.disk_path = os.path.join(tmpdir, "disk.img")
        self.disk_orig = b""
        self.tap = None  # TapPort of the running virtio-net case
        self.balloon = None  # BalloonState of the running virtio-balloon case
        self.api = None  # ApiState of the running shutdown case
        self.vsock = None  # VsockHost of the running virtio-vsock case

    def make_disk(self, readonly):
        """A fresh random image (DISK_BYTES) per run, every block allocated
        (the discard check looks for a hole); a read-only one carries the
        pattern in sectors 0-1 (the guest reads it back)."""
        data = bytearray(self.rng.randbytes(DISK_BYTES))
        if readonly:
            for sector in (0, 1):
                data[sector * 512:(sector + 1) * 512] = blk_pattern_sector(self.blk_seed, sector)
        self.disk_orig = bytes(data)
        with open(self.disk_path, "wb") as f:
            f.write(self.disk_orig)


def make_cmdline_tail(rng):
    """Spaces, '=', both quote kinds, a tab, then ~1 KiB of words."""
    head = 'a=b  c="d e" \'single quoted\' k==v= x="" tab=\there =lead trail= '
    alphabet = string.ascii_letters + string.digits + "=.,:/_-+@%"
    words = []
    total = len(head)
    while total < 1100:
        w = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        words.append(w)
        total += len(w) + 1
    return head + " ".join(words) + " end"


def make_serial_text(rng):
    """~100 printable ASCII characters (no line ends)."""
    alphabet = "".join(chr(c) for c in range(0x20, 0x7F))
    return "".join(rng.choice(alphabet) for _ in range(100))


def check_pass(run, case):
    require(not run.values("FAIL"), "guest says FAIL: %s" % (run.values("FAIL") or [""])[0])
    require(run.status == STATUS_PASS,
            "exit status %s, want %d (debug-exit PASS)" % (run.status, STATUS_PASS))
    require(case.guest in run.values("PASS"), "no 'YT PASS %s' line" % case.guest)


def check_cmdline(ctx, run, vmm, sent):
    got = run.value("CMDLINE")
    require(got is not None, "no CMDLINE line")
    got = unescape(got)
    if got != sent:
        i = next((k for k in range(min(len(got), len(sent))) if got[k] != sent[k]),
                 min(len(got), len(sent)))
        raise CheckFailed("command line differs at byte %d: got %r..., sent %r... "
                          "(lengths %d, %d)" % (i, got[i:i + 20], sent[i:i + 20],
                                               len(got), len(sent)))


def parse_e820(run):
    out = []
    for v in run.values("E820"):
        base, length, typ = v.split()
        out.append((int(base, 16), int(length, 16), int(typ)))
    return out


def check_e820(ctx, run, vmm, case):
    entries = parse_e820(run)
    require(entries, "no E820 lines")
    real = [e for e in entries if e[1] > 0]
    notes = []
    if len(real) != len(entries):
        notes.append("%d zero-length entries" % (len(entries) - len(real)))
    # Sorted: yun-vmm must sort; QEMU microvm's firmware does not (noted only).
    is_sorted = all(real[i][0] <= real[i + 1][0] for i in range(len(real) - 1))
    if not is_sorted:
        require(vmm != "yun", "entries are not sorted by address")
        notes.append("not sorted")
    s = sorted(real)
    for a, b in zip(s, s[1:]):
        require(a[0] + a[1] <= b[0], "entries overlap: 0x%x+0x%x and 0x%x" % (a[0], a[1], b[0]))
    ram = sum(e[1] for e in real if e[2] == 1)
    want = case.memory * MIB
    require(want - 4 * MIB <= ram <= want,
            "usable RAM %d MiB, want %d MiB (at most 4 MiB less)" % (ram // MIB, case.memory))
    for base, length, typ in real:
        if typ == 1:
            require(base + length <= 0xC0000000 or base >= 1 << 32,
                    "usable RAM 0x%x..0x%x inside the 3-4 GiB hole" % (base, base + length))
    low = [e for e in real if e[2] == 1 and e[0] < 0x100000]
    require(low and low[0][0] == 0, "no usable RAM at address 0")
    require(any(e[2] == 1 and e[0] <= 0x100000 < e[0] + e[1] for e in real),
            "no usable RAM at 1 MiB (where the kernel is)")
    return "; ".join(notes)


def check_initrd(ctx, run, vmm, case):
    v = run.value("INITRD")
    require(v, "no INITRD line")
    addr, size = (int(x, 16) for x in v.split())
    require(size == len(ctx.initrd_data), "initrd size %d, passed %d" % (size, len(ctx.initrd_data)))
    require(addr % 4096 == 0, "initrd at 0x%x is not page aligned" % addr)
    if case.image == "bz":
        require(addr + size - 1 <= ctx.initrd_addr_max,
                "initrd ends at 0x%x, above initrd_addr_max 0x%x" % (addr + size,
                                                                     ctx.initrd_addr_max))
    require(run.value("INITRD_IN_RAM") == "yes", "initrd is not inside usable RAM")
    h = run.value("INITRD_HASH")
    require(h and int(h, 16) == ctx.initrd_hash,
            "checksum %s, want %016x" % (h, ctx.initrd_hash))


def check_serial(ctx, run, vmm, case):
    v = run.value("ECHO")
    require(v is not None, "no ECHO line")
    n, _, text = v.partition(" ")
    require(int(n) == len(ctx.serial_text) and text == ctx.serial_text,
            "echo %r (len %s), sent %r (len %d)" % (text[:30], n, ctx.serial_text[:30],
                                                   len(ctx.serial_text)))
    irqs = dict(kv.split("=") for kv in (run.value("SERIAL_IRQS") or "").split())
    require(int(irqs.get("rx", 0)) > 0, "no RX interrupts")
    require(int(irqs.get("tx", 0)) > 0, "no THRE interrupts")


def check_timer(ctx, run, vmm, case):
    t0, t50 = run.time_of("YT TICK 0"), run.time_of("YT TICK 50")
    require(t0 is not None and t50 is not None, "missing TICK lines")
    dt = t50 - t0
    require(0.375 <= dt <= 0.625, "50 ticks took %.3f s on the host, want 0.5 s +-25%%" % dt)
    lapic = int(run.value("LAPIC_TICKS") or -1)
    require(38 <= lapic <= 62, "LAPIC timer ticked %d times in 50 PIT ticks, want 50 +-25%%"
            % lapic)
    return "50 PIT ticks in %.3f s, LAPIC %d" % (dt, lapic)


def check_smp(ctx, run, vmm, case):
    ids = [v.split()[0] for v in run.values("CPU") if v.endswith(" online")]
    n = run.value("CPUS")
    require(n is not None, "no CPUS line (online: %s)" % ",".join(ids))
    require(int(n) == case.cpus, "%s CPUs online, want %d" % (n, case.cpus))
    require(len(set(ids)) == case.cpus, "CPU lines name %s" % ",".join(ids))
    tables = run.value("TABLES") or ""
    if "yt.tables=mp" in case.extra:
        require(tables.startswith("mptable"), "did not use the MP table: %s" % tables)
        return None
    # Both VMMs have ACPI: a fall-back to the MP table would hide a broken MADT.
    require(tables.startswith("acpi"), "CPUs not found through ACPI: %s" % tables)
    # The boot protocol hands yun-vmm's RSDP over (acpi_rsdp_addr, PVH
    # rsdp_paddr); QEMU's bzImage path leaves it to the guest's scan.
    if vmm == "yun":
        require("rsdp_from=boot" in tables, "RSDP not passed in the boot info: %s" % tables)
    return "RSDP from " + tables.split("rsdp_from=")[-1]


def check_highmem(ctx, run, vmm, case):
    v = run.value("HIGHMEM")
    require(v, "no HIGHMEM line")
    first, last = (int(x, 16) for x in v.split())
    require(first == 1 << 32, "high RAM starts at 0x%x, want 0x100000000" % first)
    require(last > first, "bad high RAM range")
    return "0x%x..0x%x" % (first, last)


def check_exceptions(ctx, run, vmm, case):
    got = [v.split()[0] for v in run.values("EXCEPTION")]
    require(got == ["#UD", "#PF", "#DE"], "exceptions reported: %s" % got)


def check_rtc(ctx, run, vmm, case):
    v = run.value("RTC")
    require(v, "no RTC line")
    at = run.time_of("YT RTC " + v)
    try:
        guest = calendar.timegm(time.strptime(v, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        raise CheckFailed("RTC line %r is not a date" % v)
    # The host's UTC clock when the line arrived, on the same wall clock.
    host = time.time() - (time.monotonic() - at)
    require(abs(guest - host) <= 3, "RTC says %s UTC, host clock %s UTC (off by %.0f s)"
            % (v, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(host)), guest - host))
    return v + " UTC"


def check_poweroff(ctx, run, vmm, case):
    require(not run.values("FAIL"), "guest says FAIL: %s" % (run.values("FAIL") or [""])[0])
    require(run.values("POWEROFF"), "no POWEROFF line")
    require(run.status == 0, "exit status %s after the S5 request, want 0" % run.status)
    return run.value("POWEROFF")


def check_reset(ctx, run, vmm, case):
    require(not run.values("FAIL"), "guest says FAIL: %s" % (run.values("FAIL") or [""])[0])
    ways = run.values("RESET")
    require(ways, "no RESET line")
    require(run.status == 0, "exit status %s after the reset request, want 0" % run.status)
    if "yt.reset=fadt" in case.extra:
        require(ways[-1].startswith("fadt"), "the FADT reset register did not reset: %s"
                % " | ".join(ways))
    return "reset by " + ways[-1]


def check_triplefault(ctx, run, vmm, case):
    require(run.values("TRIPLEFAULT"), "no TRIPLEFAULT line")
    require(run.status not in (0, STATUS_PASS, STATUS_FAIL),
            "exit status %s, want non-zero (and not a debug-exit status)" % run.status)
    require(re.search(r"triple[ -]?fault", run.stderr, re.I), "stderr does not say 'triple fault'")
    require("RIP" in run.stderr, "stderr has no register dump (no 'RIP')")


def check_virtio_rng(ctx, run, vmm, case):
    a, b = run.value("RNG_IRQ"), run.value("RNG_POLL")
    require(a and b, "no RNG_IRQ / RNG_POLL lines")
    require(len(a) == 128 and len(b) == 128, "RNG lines are not 64 bytes of hex")
    require(a != b, "the two 64-byte reads are equal")
    require(a != "0" * 128 and b != "0" * 128, "an all-zero read")
    stats = dict(kv.split("=") for kv in (run.value("RNG_STATS") or "").split())
    require(int(stats.get("irqs", 0)) > 0, "no MSI-X interrupt for the interrupt-mode read")
    require(run.values("VIRTQ"), "no VIRTQ line")
    return "%s; irqs=%s poll_irqs=%s event_idx=%s indirect=%s" % (
        (run.value("PCI_CONFIG") or "?").split()[0], stats.get("irqs"), stats.get("poll_irqs"),
        stats.get("event_idx"), stats.get("indirect"))


def kv_line(run, key):
    """The key=value words of the first "YT <key> ..." line ({} if none)."""
    return dict(w.split("=", 1) for w in (run.value(key) or "").split() if "=" in w)


def file_has_data(path, start, end):
    """Whether [start, end) of the file holds any data (SEEK_DATA)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, start, os.SEEK_DATA) < end
    except OSError:  # ENXIO: no data at or after start
        return False
    finally:
        os.close(fd)


def check_virtio_blk(ctx, run, vmm, case):
    cfg = kv_line(run, "BLK_CONFIG")
    require(int(cfg.get("capacity", -1)) == DISK_SECTORS,
            "capacity %s sectors, the image has %d" % (cfg.get("capacity"), DISK_SECTORS))
    require(run.value("BLK_ID") == DISK_ID, "GET_ID says %r, want %r" % (run.value("BLK_ID"),
                                                                       DISK_ID))
    with open(ctx.disk_path, "rb") as f:
        now = f.read()
    require(len(now) == DISK_BYTES, "the image changed size to %d" % len(now))
    read = kv_line(run, "BLK_READ")
    require(int(read.get("sectors", -1)) == DISK_SECTORS and "checksum" in read,
            "BLK_READ: %s" % run.value("BLK_READ"))

    def check_checksum():
        """The guest's checksum of the whole disk as it read it last is the image's."""
        require(int(read["checksum"], 16) == fnv1a64_words(now),
                "the guest's checksum of the disk %s, the image file's %016x"
                % (read["checksum"], fnv1a64_words(now)))

    if "disk-ro" in case.devices:
        require(run.value("BLK_RO_WRITE") == "status=1", "read-only write: %s"
                % run.value("BLK_RO_WRITE"))
        for flag, key in (("discard", "BLK_RO_DISCARD"), ("write_zeroes", "BLK_RO_WRITE_ZEROES")):
            if cfg.get(flag) == "1":
                require(run.value(key) == "status=1", "%s on the read-only disk: %s"
                        % (flag, run.value(key)))
        require(now == ctx.disk_orig, "the read-only image was modified")
        check_checksum()
        return "whole disk read, checksum %s; write, discard, write-zeroes refused" \
            % read["checksum"]
    # Both VMMs offer DISCARD and WRITE_ZEROES: the issue requires them.
    require(cfg.get("discard") == "1" and cfg.get("write_zeroes") == "1",
            "DISCARD / WRITE_ZEROES not offered: %s" % run.value("BLK_CONFIG"))
    require(int(kv_line(run, "BLK_WRITE").get("sectors", -1)) == DISK_SECTORS,
            "the guest did not write the whole disk: %s" % run.value("BLK_WRITE"))
    require(read.get("verified") == "1", "BLK_READ: %s" % run.value("BLK_READ"))
    zero = {}
    for v in run.values("BLK_ZERO"):
        kind, rest = v.split(" ", 1)
        f = dict(w.split("=") for w in rest.split())
        require(f.get("status") == "0", "%s: %s" % (kind, v))
        zero[kind] = (int(f["sector"]), int(f["count"]))
    require(sorted(zero) == ["discard", "write-zeroes", "write-zeroes-unmap"],
            "BLK_ZERO lines: %s" % run.values("BLK_ZERO"))
    want = bytearray(b"".join(blk_pattern_sector(ctx.blk_seed, sector)
                              for sector in range(DISK_SECTORS)))
    for sector, count in zero.values():
        want[sector * 512:(sector + count) * 512] = bytes(count * 512)
    if now != want:
        sector = next(k for k in range(DISK_SECTORS)
                      if now[k * 512:(k + 1) * 512] != want[k * 512:(k + 1) * 512])
        where = next((k for k, (a, n) in zero.items() if a <= sector < a + n), None)
        raise CheckFailed("sector %d of the image %s" % (sector, "is not zero after " + where
                          if where else "does not hold the guest's pattern"))
    check_checksum()
    # A DISCARD of a raw file punches a hole: the blocks go back to the host.
    a, n = zero["discard"]
    require(not file_has_data(ctx.disk_path, a * 512, (a + n) * 512),
            "discarded sectors %d-%d are still allocated in the image" % (a, a + n - 1))
    require(run.values("BLK_PAST_END") == ["write status=1", "read status=1",
                                           "discard status=1", "write-zeroes status=1"],
            "requests past the end: %s" % run.values("BLK_PAST_END"))
    require(run.value("BLK_DISCARD_UNMAP") == "status=2",
            "DISCARD with the UNMAP flag: %s, want UNSUPP (2)" % run.value("BLK_DISCARD_UNMAP"))
    require(run.value("BLK_WRITE_ZEROES_FLAGS") == "status=2",
            "WRITE_ZEROES with an unknown flag: %s, want UNSUPP (2)"
            % run.value("BLK_WRITE_ZEROES_FLAGS"))
    if cfg.get("flush") == "1":
        require(run.value("BLK_FLUSH") == "status=0", "FLUSH: %s" % run.value("BLK_FLUSH"))
    stats = kv_line(run, "BLK_STATS")
    return "%s requests, %s irqs, event_idx=%s indirect=%s flush=%s; checksum %s; " \
        "discarded sectors %d-%d deallocated" % (
            stats.get("requests"), stats.get("irqs"), stats.get("event_idx"),
            stats.get("indirect"), cfg.get("flush"), read["checksum"], a, a + n - 1)


# ---- virtio-net: a TAP the harness creates and watches --------------------

NET_GUEST_MAC = "52:54:00:12:34:56"
NET_HOST_MAC = bytes.fromhex("025954000001")  # no host interface has it
NET_GUEST_IP, NET_HOST_IP = bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])
NET_GUEST_PORT, NET_HOST_PORT, NET_ECHO_PORT = 5000, 5001, 5002
NET_TX_LENS = [8, 18, 100, 512, 1000, 1472, 333, 64]  # cases/virtio_net.c tx_lens
NET_RX_LENS = [4, 60, 200, 700, 1472, 1200, 30, 1000]
NET_NTX = NET_NRX = 8
ETH_P_ALL, ETH_P_IP = 3, 0x0800
SOL_PACKET, PACKET_AUXDATA = 263, 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 1 << 3


def net_payload(seq, n, salt):
    """Payload of frame `seq`: seq (LE32), then bytes of cases/virtio_net.c
    payload_byte (salt 0 for the guest's frames, 0x5a for the harness's)."""
    head = struct.pack("<I", seq)[:n]
    return head + bytes((seq * 37 + i * 13 + salt) & 0xFF for i in range(4, n))


def inet_sum(data, start=0):
    if len(data) % 2:
        data += b"\0"
    s = start + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def pseudo_sum(ip, udp_len):
    return inet_sum(ip[12:20], 17 + udp_len)


def build_udp_frame(dst_mac, seq, payload):
    udp_len = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, seq, 0x4000, 64, 17, 0,
                               NET_HOST_IP, NET_GUEST_IP))
    struct.pack_into("!H", ip, 10, ~inet_sum(bytes(ip)) & 0xFFFF)
    udp = bytearray(struct.pack("!HHHH", NET_HOST_PORT, NET_GUEST_PORT, udp_len, 0) + payload)
    c = ~inet_sum(bytes(udp), pseudo_sum(ip, udp_len)) & 0xFFFF
    struct.pack_into("!H", udp, 6, c or 0xFFFF)
    return dst_mac + NET_HOST_MAC + struct.pack("!H", ETH_P_IP) + bytes(ip) + bytes(udp)


def fnv32(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


class TapPort:
    """A TAP device made for one run (deleted by close(), always) and an
    AF_PACKET socket on it. Nothing gets an address or a route: the frames
    stay on this interface."""

    def __init__(self, name):
        self.name = name
        self.sock = None
        self.frames = []  # (pkttype, auxdata status, bytes)
        subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True,
                       capture_output=True)
        try:
            try:  # no IPv6 chatter (router solicitations, MLD) on the wire
                with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % name, "w") as f:
                    f.write("1")
            except OSError:
                pass
            subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            self.sock.bind((name, ETH_P_ALL))
            self.sock.setblocking(False)
        except BaseException:
            self.close()
            raise

    def send(self, frame):
        self.sock.send(frame)

    def drain(self):
        while True:
            try:
                data, anc, _, addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(32))
            except (BlockingIOError, InterruptedError):
                return
            status = 0
            for level, typ, cdata in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= 4:
                    status = struct.unpack_from("<I", cdata)[0]
            self.frames.append((addr[2], status, data))

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        subprocess.run(["ip", "link", "del", self.name], capture_output=True)


def net_on_line(ctx, text, proc):
    if text == "YT NET READY" and ctx.tap:
        mac = bytes.fromhex(NET_GUEST_MAC.replace(":", ""))
        for seq in range(NET_NRX):
            n = NET_RX_LENS[seq % len(NET_RX_LENS)]
            ctx.tap.send(build_udp_frame(mac, seq, net_payload(seq, n, 0x5A)))
        ctx.tap.drain()


def parse_udp(frame):
    """(ip header, udp header + data) of an IPv4/UDP frame, else None."""
    if len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = frame[14:34]
    if ip[0] != 0x45 or ip[9] != 17:
        return None
    total = struct.unpack_from("!H", ip, 2)[0]
    udp = frame[34:14 + total]
    if len(udp) < 8 or struct.unpack_from("!H", udp, 4)[0] != len(udp):
        return None
    return ip, udp


def check_virtio_net(ctx, run, vmm, case):
    require(run.value("NET") is not None or run.values("NET"), "no NET lines")
    lines = run.values("NET")
    mac = next((v.split()[1] for v in lines if v.startswith("MAC ")), None)
    require(mac == NET_GUEST_MAC, "guest read MAC %s from config space, want %s"
            % (mac, NET_GUEST_MAC))
    ctx.tap.drain()
    # Guest -> host: what reached the TAP from the guest (not our own sends).
    tx, echoes, partial = {}, {}, 0
    for pkttype, status, frame in ctx.tap.frames:
        if pkttype == PACKET_OUTGOING:
            continue
        parsed = parse_udp(frame)
        if not parsed:
            continue
        ip, udp = parsed
        sport, dport = struct.unpack_from("!HH", udp)
        if sport != NET_GUEST_PORT:
            continue
        require(frame[:6] == NET_HOST_MAC and frame[6:12].hex(":") == NET_GUEST_MAC,
                "guest frame has addresses %s -> %s" % (frame[6:12].hex(":"), frame[:6].hex(":")))
        require(inet_sum(ip) == 0xFFFF, "guest frame with a bad IP header checksum")
        field = struct.unpack_from("!H", udp, 6)[0]
        if status & TP_STATUS_CSUMNOTREADY:
            # Offloaded: the VMM passed NEEDS_CSUM to the TAP (IFF_VNET_HDR).
            require(field == inet_sum(b"", pseudo_sum(ip, len(udp))),
                    "checksum-partial frame without the pseudo-header sum")
            partial += 1
        else:
            require(field != 0 and inet_sum(udp, pseudo_sum(ip, len(udp))) == 0xFFFF,
                    "guest frame (port %d) with a bad UDP checksum 0x%04x" % (dport, field))
        data = udp[8:]
        if dport == NET_HOST_PORT:
            seq = struct.unpack_from("<I", data.ljust(4, b"\0"))[0]
            require(seq not in tx, "guest frame %d arrived twice" % seq)
            want = net_payload(seq, NET_TX_LENS[seq % len(NET_TX_LENS)], 0)
            require(data == want, "guest frame %d: payload differs (%d bytes, want %d)"
                    % (seq, len(data), len(want)))
            tx[seq] = status
        elif dport == NET_ECHO_PORT:
            require(len(data) == 12, "echo frame of %d bytes" % len(data))
            seq, n, h = struct.unpack("<III", data)
            echoes[seq] = (n, h)
    require(sorted(tx) == list(range(NET_NTX)), "guest frames on the TAP: %s, want 0..%d"
            % (sorted(tx), NET_NTX - 1))
    want_partial = sum(1 for v in run.values("NET") if v.startswith("TX ") and "partial" in v)
    require(partial == want_partial, "%d checksum-partial frames on the TAP, guest sent %d"
            % (partial, want_partial))
    # Host -> guest: every injected frame checked by the guest and echoed.
    rx = [v for v in lines if v.startswith("RX seq=")]
    require(len(rx) == NET_NRX, "guest received %d of %d frames" % (len(rx), NET_NRX))
    for seq in range(NET_NRX):
        payload = net_payload(seq, NET_RX_LENS[seq % len(NET_RX_LENS)], 0x5A)
        require(echoes.get(seq) == (len(payload), fnv32(payload)),
                "echo of frame %d: %s, want %s" % (seq, echoes.get(seq),
                                                   (len(payload), fnv32(payload))))
    cfg = next((v for v in lines if v.startswith("CONFIG ")), "")
    done = next((v for v in lines if v.startswith("RX_DONE ")), "")
    return "%d frames each way + %d echoes, %d tx checksums offloaded; %s; %s" % (
        len(tx), len(echoes), partial, cfg[7:], done[8:])


# ---- virtio-balloon: the target set through the VMM's monitor, RSS read ---

BALLOON_MIB = 64  # the guest's range (cases/virtio_balloon.c REGION_BYTES)
# yun-vmm with a control API (--api-sock in --help): PATCH /balloon
# {"amount_mib": N} as QEMU's target is set. Without one, its target schedule
# is on the command line, `--balloon target=64,deflate_after_ms=N` (64 MiB
# from the start, 0 once the guest has held it N ms). Either way its stats
# reports are read from its -v log.
YUN_BALLOON_DEFLATE_MS = 300


class Qmp:
    """A minimal QMP client (QEMU's JSON monitor on a Unix socket)."""

    def __init__(self, path, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self._reply()  # the greeting
        self.cmd("qmp_capabilities")

    def _reply(self):
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("QMP connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **arguments):
        req = {"execute": name}
        if arguments:
            req["arguments"] = arguments
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        msg = self._reply()
        while "QMP" in msg:
            msg = self._reply()
        if "error" in msg:
            raise OSError("QMP %s: %s" % (name, msg["error"].get("desc")))
        return msg.get("return")

    def close(self):
        self.sock.close()


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class BalloonState:
    def __init__(self, vmm, case, qmp_path, api_path=None):
        self.vmm = vmm
        self.memory = case.memory
        self.qmp_path = qmp_path
        self.api_path = api_path  # yun-vmm with --api-sock: PATCH /balloon
        self.qmp = None
        self.rss = {}  # phase -> KiB
        self.notes = []
        self.host_stats = []  # (guest's free figure, QEMU's stat-free-memory)
        self.inflated = False
        self.deflating = False
        self.want_stats = False

    def set_target(self, mib):
        if self.vmm == "yun":
            if self.api_path:
                # Firecracker's amount_mib is the balloon's size, not the guest's.
                api_request(self.api_path, "PATCH", "/balloon",
                            {"amount_mib": self.memory - mib})
            return  # else fixed on its command line (vmm_argv)
        if not self.qmp:
            self.qmp = Qmp(self.qmp_path)
        self.qmp.cmd("balloon", value=mib * MIB)

    def close(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None


def balloon_on_line(ctx, text, proc):
    b = ctx.balloon
    if not b:
        return
    if text.startswith("YT BALLOON CONFIG"):
        b.rss["start"] = vm_rss_kib(proc.pid)
        b.want_stats = "stats=1" in text
        if b.vmm == "qemu" and b.want_stats:
            b.qmp = b.qmp or Qmp(b.qmp_path)
            b.qmp.cmd("qom-set", path="/machine/peripheral/balloon0",
                      property="guest-stats-polling-interval", value=1)
    elif text.startswith("YT BALLOON TOUCHED"):
        b.rss["touched"] = vm_rss_kib(proc.pid)
        b.set_target(b.memory - BALLOON_MIB)
    elif text.startswith("YT BALLOON INFLATED"):
        b.rss["inflated"] = vm_rss_kib(proc.pid)
        b.inflated = True
        if b.vmm == "yun" and b.api_path:
            # yun-vmm hands the stats buffer back only when asked: go on now.
            balloon_deflate(b, proc)
            return
        if b.vmm == "yun":
            # The target was there before TOUCHED was read: the peak RSS is
            # the touched figure. Deflate once yun-vmm's timer dropped it.
            b.rss["touched"] = max(b.rss.get("touched", 0), vm_hwm_kib(proc.pid))
            time.sleep(YUN_BALLOON_DEFLATE_MS / 1000 + 0.3)
            balloon_deflate(b, proc)
            return
        # Wait for a statistics report made after the inflate when the
        # device has a stats queue (QEMU returns the buffer every second);
        # otherwise go on now.
        if not b.want_stats:
            balloon_deflate(b, proc)
    elif text.startswith("YT BALLOON STATS ") and b.vmm == "qemu":
        free = int(text.split("free=")[1].split()[0])
        got = b.qmp.cmd("qom-get", path="/machine/peripheral/balloon0",
                        property="guest-stats")
        b.host_stats.append((free, got["stats"].get("stat-free-memory"), b.inflated))
        if b.inflated and not b.deflating:
            balloon_deflate(b, proc)
    elif text.startswith("YT BALLOON DEFLATED"):
        b.rss["deflated"] = vm_rss_kib(proc.pid)
        proc.stdin.write(b"done\n")
        proc.stdin.flush()


def balloon_deflate(b, proc):
    b.deflating = True
    b.set_target(b.memory)
    proc.stdin.write(b"deflate\n")
    proc.stdin.flush()


def check_virtio_balloon(ctx, run, vmm, case):
    b = ctx.balloon
    lines = run.values("BALLOON")
    cfg = next((v for v in lines if v.startswith("CONFIG ")), "")
    inflated = next((v for v in lines if v.startswith("INFLATED ")), None)
    deflated = next((v for v in lines if v.startswith("DEFLATED ")), None)
    require(inflated and deflated, "no INFLATED / DEFLATED lines")
    pages = int(inflated.split()[1])
    want = BALLOON_MIB * MIB // 4096
    require(pages == want, "inflated %d pages, want %d (target %d MiB)" % (pages, want,
                                                                          BALLOON_MIB))
    require(int(deflated.split()[1]) == pages, "deflated %s of %d pages"
            % (deflated.split()[1], pages))
    r = b.rss
    require(all(k in r for k in ("touched", "inflated", "deflated")), "RSS not measured: %s" % r)
    kib = pages * 4
    drop, regain = r["touched"] - r["inflated"], r["deflated"] - r["inflated"]
    require(drop >= 0.75 * kib, "RSS fell by %d KiB on inflate, want >= 75%% of %d KiB"
            % (drop, kib))
    require(regain >= 0.75 * kib, "RSS rose by %d KiB on deflate, want >= 75%% of %d KiB"
            % (regain, kib))
    stats_note = "no stats queue"
    if "stats=1" in (cfg or "") and vmm == "yun":
        # yun-vmm keeps the buffer until asked (no polling before the control API).
        first = next((v for v in lines if v.startswith("STATS ")), "")
        free = first.split("free=")[1].split()[0] if "free=" in first else "?"
        require("virtio-balloon: stats report 1: free %s " % free in run.stderr,
                "yun-vmm did not log the guest's first stats report (free=%s)" % free)
        stats_note = "stats report (free %s MiB) logged by yun-vmm" % (int(free) // MIB)
    elif "stats=1" in (cfg or ""):
        require(b.host_stats, "no statistics report reached the host")
        for free, host_free, _ in b.host_stats:
            require(host_free == free, "host sees stat-free-memory %s, guest sent %d"
                    % (host_free, free))
        after = [s for s in b.host_stats if s[2]]
        require(after and after[0][0] == b.host_stats[0][0] - pages * 4096,
                "no report with free memory lowered by the balloon: %s" % b.host_stats)
        stats_note = "free memory %d -> %d MiB in the host's stats" % (
            b.host_stats[0][0] // MIB, after[0][0] // MIB)
    return ("RSS MiB: start %.0f, touched %.0f, inflated %.0f (-%.1f), deflated %.0f (+%.1f); "
            "%s" % (r.get("start", 0) / 1024, r["touched"] / 1024, r["inflated"] / 1024,
                    drop / 1024, r["deflated"] / 1024, regain / 1024, stats_note))


# ---- shutdown: Ctrl+Alt+Del typed by the host --------------------------------
# QEMU: QMP send-key (ctrl, alt, delete). yun-vmm: its control API on the
# Unix socket given with --api-sock, Firecracker's
# PUT /actions {"action_type": "SendCtrlAltDel"}.

def api_request(path, method, url, body=None, timeout=5.0):
    """One request to yun-vmm's control API; waits for the socket to appear.
    Returns the response body; a status >= 300 raises OSError."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    conn = UnixHTTPConnection(path, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, url, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        if resp.status >= 300:
            raise OSError("API %s %s: %d %s" % (method, url, resp.status, text.strip()))
        return text
    finally:
        conn.close()


class ApiState:
    """The VMM's control socket for the running case: QMP or yun-vmm's API."""

    def __init__(self, vmm, path):
        self.vmm = vmm
        self.path = path
        self.sent = False


def shutdown_on_line(ctx, text, proc):
    api = ctx.api
    if text != "YT READY" or not api or api.sent:
        return
    api.sent = True
    if api.vmm == "qemu":
        qmp = Qmp(api.path)
        try:
            qmp.cmd("send-key", keys=[{"type": "qcode", "data": k}
                                      for k in ("ctrl", "alt", "delete")])
        finally:
            qmp.close()
    else:
        api_request(api.path, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})


def check_shutdown(ctx, run, vmm, case):
    require(not run.values("FAIL"), "guest says FAIL: %s" % (run.values("FAIL") or [""])[0])
    harness = [t for _, t in run.lines if t.startswith("# harness:")]
    require(not harness, harness[0] if harness else "")
    cad = run.value("CAD")
    require(cad, "the guest saw no Ctrl+Alt+Del")
    if "yt.kbd=xlate" in case.extra:
        require("set=1" in cad, "translation on, but the keys did not come in set 1: %s" % cad)
    ways = run.values("RESET")
    require(run.status == 0, "exit status %s after the guest's reset, want 0" % run.status)
    return "%s; reset by %s" % (cad, ways[-1] if ways else "?")


# ---- virtio-vsock: a host end per VMM --------------------------------------
# yun-vmm: Firecracker-style hybrid vsock. `--vsock cid=N,socket=PATH`; the
# host reaches guest port P by connecting to PATH and writing "CONNECT P\n"
# (answer "OK <host port>\n"); a guest connection to host port P arrives at
# the Unix socket "PATH_P", where the harness listens. QEMU: vhost-vsock-pci
# and AF_VSOCK sockets, which need /dev/vhost-vsock (absent on the PVM test
# machines, so the QEMU run is skipped there).

VSOCK_CID = 3
VSOCK_HOST_PORT = 5001  # the guest connects here (yt.vport)
VSOCK_GUEST_PORT = 1234  # the guest listens here


def vsock_recv_line(conn, limit=4096):
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(limit)
        if not chunk:
            raise OSError("connection closed after %r" % data[:40])
        data += chunk
    return data


class VsockHost:
    def __init__(self, vmm, tmpdir):
        self.vmm = vmm
        self.path = os.path.join(tmpdir, "vsock.sock")
        self.results = {}  # "g2h" / "h2g" -> (ok, note)
        self.threads = []
        if vmm == "yun":
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind("%s_%d" % (self.path, VSOCK_HOST_PORT))
        else:
            self.listener = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            self.listener.bind((socket.VMADDR_CID_ANY, VSOCK_HOST_PORT))
        self.listener.listen(1)
        self.listener.settimeout(30)
        self._start(self._serve_g2h)

    def _start(self, fn):
        t = threading.Thread(target=fn, daemon=True)
        t.start()
        self.threads.append(t)

    def _serve_g2h(self):
        try:
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(15)
                ping = vsock_recv_line(conn)
                conn.sendall(b"pong " + ping[:-1][::-1] + b"\n")
                self.results["g2h"] = (True, "%d bytes each way" % len(ping))
                conn.recv(16)  # until the guest shuts down
        except OSError as e:
            self.results.setdefault("g2h", (False, "host listener: %s" % e))

    def connect_guest(self, message):
        def run():
            try:
                if self.vmm == "yun":
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(15)
                    s.connect(self.path)
                    s.sendall(b"CONNECT %d\n" % VSOCK_GUEST_PORT)
                    ok = vsock_recv_line(s)
                    if not re.match(rb"OK \d+\n$", ok):
                        raise OSError("CONNECT answered %r" % ok)
                else:
                    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                    s.settimeout(15)
                    s.connect((VSOCK_CID, VSOCK_GUEST_PORT))
                with s:
                    s.sendall(message)
                    echo = vsock_recv_line(s)
                    if echo != message:
                        raise OSError("echo %r, sent %r" % (echo[:40], message[:40]))
                self.results["h2g"] = (True, "%d bytes echoed" % len(message))
            except OSError as e:
                self.results["h2g"] = (False, "host connection: %s" % e)
        self._start(run)

    def close(self):
        self.listener.close()
        for t in self.threads:
            t.join(timeout=2)


def vsock_on_line(ctx, text, proc):
    if text == "YT VSOCK LISTEN %d" % VSOCK_GUEST_PORT and ctx.vsock:
        msg = ("hello guest %s\n" % "".join(ctx.rng.choice(string.ascii_letters)
                                             for _ in range(80))).encode()
        ctx.vsock.connect_guest(msg)


def check_virtio_vsock(ctx, run, vmm, case):
    require(run.value("VSOCK") is not None, "no VSOCK lines")
    lines = run.values("VSOCK")
    require("CID %d" % VSOCK_CID in lines, "guest CID: %s" % lines[:1])
    ctx.vsock.close()
    for k in ("g2h", "h2g"):
        ok, note = ctx.vsock.results.get(k, (False, "no result"))
        require(ok, "%s: %s" % (k, note))
    return "guest->host %s; host->guest %s" % (ctx.vsock.results["g2h"][1],
                                              ctx.vsock.results["h2g"][1])


def cases():
    def cmdline_case(name, image):
        c = Case(name, "cmdline", image=image)
        c.check = lambda ctx, run, vmm: check_cmdline(ctx, run, vmm, full_cmdline(ctx, c))
        return c

    def mk(name, guest, fn, **kw):
        c = Case(name, guest, **kw)
        if fn:
            c.check = lambda ctx, run, vmm: fn(ctx, run, vmm, c)
        return c

    return [
        mk("hello", "hello", None, cpus=2),
        cmdline_case("cmdline", "bz"),
        mk("e820", "e820", check_e820),
        mk("e820-5g", "e820", check_e820, memory=5120),
        mk("initrd", "initrd", check_initrd, initrd=True),
        mk("serial", "serial", check_serial, feed=lambda ctx: (ctx.serial_text + "\n").encode()),
        mk("timer", "timer", check_timer),
        mk("smp-1", "smp", check_smp, cpus=1),
        mk("smp-2", "smp", check_smp, cpus=2),
        mk("smp-4", "smp", check_smp, cpus=4),
        mk("smp-mptable", "smp", check_smp, cpus=2, extra="yt.tables=mp"),
        mk("highmem", "highmem", check_highmem, memory=5120),
        mk("exceptions", "exceptions", check_exceptions),
        mk("rtc", "rtc", check_rtc),
        mk("poweroff", "poweroff", check_poweroff, expect="exit0"),
        mk("reset", "reset", check_reset, expect="exit0"),
        mk("reset-fadt", "reset", check_reset, expect="exit0", extra="yt.reset=fadt"),
        mk("triplefault", "triplefault", check_triplefault, expect="triplefault",
           vmms=("yun",)),
        cmdline_case("pvh-cmdline", "elf"),
        mk("pvh-e820", "e820", check_e820, image="elf"),
        mk("pvh-initrd", "initrd", check_initrd, image="elf", initrd=True),
        mk("pvh-smp-2", "smp", check_smp, image="elf", cpus=2),
        mk("pvh-smp-4", "smp", check_smp, image="elf", cpus=4),
        mk("virtio-rng", "virtio-rng", check_virtio_rng, devices=("rng",)),
        mk("virtio-rng-min", "virtio-rng", check_virtio_rng, devices=("rng",),
           extra="yt.virtio=min"),
        # QEMU only: a modern-only device (id 0x1044) behind a PCIe root port
        mk("virtio-rng-bridge", "virtio-rng", check_virtio_rng, devices=("rng",),
           vmms=("qemu",), qemu_extra=("-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1")),
        # yun only: configuration mechanism #1 (QEMU microvm has no 0xCF8/0xCFC)
        mk("virtio-rng-cf8", "virtio-rng", check_virtio_rng, devices=("rng",),
           vmms=("yun",), extra="yt.pci=cf8"),
        mk("virtio-blk", "virtio-blk", check_virtio_blk, devices=("disk",)),
        mk("virtio-blk-min", "virtio-blk", check_virtio_blk, devices=("disk",),
           extra="yt.virtio=min"),
        mk("virtio-blk-ro", "virtio-blk", check_virtio_blk, devices=("disk-ro",),
           extra="yt.blk=ro"),
        mk("virtio-net", "virtio-net", check_virtio_net, devices=("net",), on_line=net_on_line),
        mk("virtio-net-min", "virtio-net", check_virtio_net, devices=("net",),
           on_line=net_on_line, extra="yt.virtio=min"),
        mk("virtio-balloon", "virtio-balloon", check_virtio_balloon, devices=("balloon",),
           on_line=balloon_on_line),
        mk("virtio-vsock", "virtio-vsock", check_virtio_vsock, devices=("vsock",),
           on_line=vsock_on_line),
        # QEMU microvm has no PS/2 controller unless asked for one
        mk("shutdown", "shutdown", check_shutdown, expect="exit0", devices=("api",),
           on_line=shutdown_on_line, qemu_extra=("-device", "i8042")),
        mk("shutdown-xlate", "shutdown", check_shutdown, expect="exit0", devices=("api",),
           on_line=shutdown_on_line, qemu_extra=("-device", "i8042"), extra="yt.kbd=xlate"),
    ]


def full_cmdline(ctx, case):
    words = ["yuntest=" + case.guest]
    if case.extra:
        words.append(case.extra)
    if case.guest == "cmdline":
        words.append(ctx.cmdline_tail)
    if case.guest == "virtio-blk":
        words.append("yt.seed=%d" % ctx.blk_seed)
    if case.guest == "virtio-vsock":
        words.append("yt.vport=%d" % VSOCK_HOST_PORT)
    if case.guest == "virtio-net":
        words.append("yt.ntx=%d yt.nrx=%d" % (NET_NTX, NET_NRX))
    return " ".join(words)


# yun-vmm flag each virtio device needs; a yun-vmm without it skips the case.
# "api" is no device: the case needs the control API's socket.
YUN_DEVICE_FLAGS = {"rng": "--rng", "disk": "--disk", "disk-ro": "--disk", "net": "--net",
                    "balloon": "--balloon", "vsock": "--vsock", "api": "--api-sock"}


# Runs that cannot happen on this host, with the reason (a skip, not a pass).
def host_cannot_run(vmm, case):
    if vmm == "qemu" and "vsock" in case.devices and not os.path.exists("/dev/vhost-vsock"):
        return "QEMU's vsock is vhost-vsock-pci and this host has no /dev/vhost-vsock"
    return None


def yun_has_flag(args, flag):
    """Does `yun-vmm --help` list flag?"""
    if not hasattr(args, "yun_help"):
        try:
            out = subprocess.run([args.yun_vmm, "--help"], capture_output=True, text=True,
                                 timeout=10)
            args.yun_help = out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            args.yun_help = ""
    return bool(re.search(r"(^|\s)" + re.escape(flag) + r"\b", args.yun_help))


def yun_missing_flags(args, case):
    """The device flags this case needs that `yun-vmm --help` does not list."""
    flags = sorted({YUN_DEVICE_FLAGS[d] for d in case.devices})
    return [f for f in flags if not yun_has_flag(args, f)]


def vmm_argv(args, vmm, ctx, case):
    kernel = args.bzimage if case.image == "bz" else args.elf
    cmdline = full_cmdline(ctx, case)
    if vmm == "yun":
        argv = [args.yun_vmm, "--kernel", kernel]
        if case.initrd:
            argv += ["--initrd", ctx.initrd_path]
        argv += ["--cmdline", cmdline, "--cpus", str(case.cpus), "--memory", str(case.memory),
                 "--serial", "stdio", "--debug-exit"]
        for dev in case.devices:
            if dev == "rng":
                argv += ["--rng"]
            elif dev in ("disk", "disk-ro"):
                argv += ["--disk", "path=%s%s,id=%s" % (
                    ctx.disk_path, ",readonly=on" if dev == "disk-ro" else "", DISK_ID)]
            elif dev == "net":
                argv += ["--net", "tap=%s,mac=%s" % (ctx.tap.name, NET_GUEST_MAC)]
            elif dev == "balloon" and ctx.balloon.api_path:
                argv += ["-v", "--balloon", "--api-sock", ctx.balloon.api_path]
            elif dev == "balloon":
                argv += ["-v", "--balloon", "target=%d,deflate_after_ms=%d"
                         % (BALLOON_MIB, YUN_BALLOON_DEFLATE_MS)]
            elif dev == "api":
                argv += ["--api-sock", ctx.api.path]
            elif dev == "vsock":
                argv += ["--vsock", "cid=%d,socket=%s" % (VSOCK_CID, ctx.vsock.path)]
        return argv
    machine = "microvm,rtc=on"
    if any(d != "api" for d in case.devices):
        # QEMU's GPEX host bridge has no MCFG table on microvm: name ECAM.
        machine = "microvm,pcie=on,rtc=on"
        cmdline += " yt.ecam=0x%x" % ECAM_QEMU
    argv = [args.qemu, "-enable-kvm", "-M", machine, "-smp", str(case.cpus),
            "-m", str(case.memory), "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0x501,iosize=2", "-kernel", kernel]
    if case.initrd:
        argv += ["-initrd", ctx.initrd_path]
    argv += list(case.qemu_extra)
    bus = ",bus=rp0,disable-legacy=on" if "rp0" in " ".join(case.qemu_extra) else ""
    for dev in case.devices:
        if dev == "rng":
            argv += ["-device", "virtio-rng-pci" + bus]
        elif dev in ("disk", "disk-ro"):
            # discard=unmap: pass DISCARD to the file as a punched hole, as yun-vmm does
            argv += ["-drive", "file=%s,if=none,id=d0,format=raw,discard=unmap%s" % (
                ctx.disk_path, ",readonly=on" if dev == "disk-ro" else ""),
                "-device", "virtio-blk-pci,drive=d0,serial=%s%s" % (DISK_ID, bus)]
        elif dev == "net":
            argv += ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no,vhost=off"
                     % ctx.tap.name,
                     "-device", "virtio-net-pci,netdev=n0,mac=%s,romfile=%s" % (NET_GUEST_MAC, bus)]
        elif dev == "balloon":
            argv += ["-qmp", "unix:%s,server=on,wait=off" % ctx.balloon.qmp_path,
                     "-device", "virtio-balloon-pci,id=balloon0%s" % bus]
        elif dev == "vsock":
            argv += ["-device", "vhost-vsock-pci,guest-cid=%d%s" % (VSOCK_CID, bus)]
        elif dev == "api":
            argv += ["-qmp", "unix:%s,server=on,wait=off" % ctx.api.path]
    return argv + ["-append", cmdline]


def run_case(args, ctx, case, vmm):
    """Returns (ok, note)."""
    feed = None
    if case.feed:
        data = case.feed(ctx)

        def feed(stdin):
            stdin.write(data)
            stdin.flush()
    if any(d.startswith("disk") for d in case.devices):
        ctx.make_disk("disk-ro" in case.devices)
    on_line = None
    if case.on_line:
        def on_line(text, proc):
            case.on_line(ctx, text, proc)
    try:
        if "net" in case.devices:
            ctx.tap = TapPort("ytap%d" % (os.getpid() % 100000))
        if "balloon" in case.devices:
            api = (os.path.join(ctx.tmpdir, "api.sock")
                   if vmm == "yun" and yun_has_flag(args, "--api-sock") else None)
            ctx.balloon = BalloonState(vmm, case, os.path.join(ctx.tmpdir, "qmp.sock"), api)
        if "api" in case.devices:
            ctx.api = ApiState(vmm, os.path.join(ctx.tmpdir,
                                                 "qmp.sock" if vmm == "qemu" else "api.sock"))
        if "vsock" in case.devices:
            ctx.vsock = VsockHost(vmm, ctx.tmpdir)
        run = execute(vmm_argv(args, vmm, ctx, case), args.timeout, feed, on_line)
        return finish_case(args, ctx, case, vmm, run)
    finally:
        if ctx.tap:
            ctx.tap.close()
            ctx.tap = None
        if ctx.balloon:
            ctx.balloon.close()
            ctx.balloon = None
        ctx.api = None
        for sock in ("api.sock", "qmp.sock"):
            try:
                os.unlink(os.path.join(ctx.tmpdir, sock))
            except OSError:
                pass
        if ctx.vsock:
            ctx.vsock.close()
            ctx.vsock = None


def finish_case(args, ctx, case, vmm, run):
    if args.verbose:
        for t, text in run.lines:
            print("#   %7.3f %s" % (t - run.start, text))
        for line in run.stderr.splitlines():
            print("#   stderr: %s" % line)
    if run.timed_out:
        return False, "timed out after %ds; last lines: %s" % (args.timeout,
                                                               " | ".join(run.tail(3))), run
    try:
        if case.expect == "pass":
            check_pass(run, case)
        note = case.check(ctx, run, vmm) if case.check else None
    except CheckFailed as e:
        return False, str(e), run
    return True, note, run


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vmm", choices=("yun", "qemu", "both"), default="both")
    p.add_argument("--yun-vmm", default=os.path.join(here, "../../build/src/vmm/yun-vmm"))
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--bzimage", required=True)
    p.add_argument("--elf", required=True)
    p.add_argument("--case", action="append", default=[], metavar="NAME")
    p.add_argument("--timeout", type=int, default=60, help="seconds per run (default 60)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--verbose", action="store_true", help="show every serial line")
    args = p.parse_args()

    all_cases = cases()
    selected = all_cases
    if args.case:
        selected = [c for c in all_cases
                    if any(c.name == n or c.name.startswith(n + "-") for n in args.case)]
        unknown = [n for n in args.case
                   if not any(c.name == n or c.name.startswith(n + "-") for c in all_cases)]
        if unknown:
            p.error("unknown case(s): %s (known: %s)" % (", ".join(unknown),
                                                        ", ".join(c.name for c in all_cases)))
    vmms = ["yun", "qemu"] if args.vmm == "both" else [args.vmm]
    for path, what in ((args.bzimage, "--bzimage"), (args.elf, "--elf")):
        if not os.path.isfile(path):
            p.error("%s %s: no such file" % (what, path))
    if "yun" in vmms and not os.access(args.yun_vmm, os.X_OK):
        p.error("--yun-vmm %s: not an executable" % args.yun_vmm)

    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print("# seed %d" % seed)
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix="yun-guest-") as tmpdir:
        ctx = Context(args, tmpdir, random.Random(seed))
        for case in selected:
            for vmm in vmms:
                if vmm not in case.vmms:
                    print("ok - %s [%s] # SKIP %s only" % (case.name, vmm, "/".join(case.vmms)))
                    skipped += 1
                    continue
                missing = yun_missing_flags(args, case) if vmm == "yun" else []
                cannot = None if missing else host_cannot_run(vmm, case)
                if cannot:
                    print("ok - %s [%s] # SKIP %s" % (case.name, vmm, cannot))
                    skipped += 1
                    continue
                if missing:
                    # Expected missing: the device model has not landed yet.
                    print("ok - %s [%s] # SKIP yun-vmm has no %s yet (expected missing)"
                          % (case.name, vmm, " ".join(missing)))
                    skipped += 1
                    continue
                ok, note, run = run_case(args, ctx, case, vmm)
                if ok:
                    passed += 1
                    print("ok - %s [%s] (%.2fs)%s" % (case.name, vmm, run.secs,
                                                     " # " + note if note else ""))
                else:
                    failed += 1
                    print("not ok - %s [%s]: %s" % (case.name, vmm, note))
                    for text in run.tail():
                        print("#   serial: %s" % text)
                    for line in run.stderr.strip().splitlines()[-6:]:
                        print("#   stderr: %s" % line)
                    print("#   exit status %s after %.2fs" % (run.status, run.secs))
                sys.stdout.flush()
    if skipped:
        print("# %d skipped" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
