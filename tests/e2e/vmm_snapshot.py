#!/usr/bin/env python3
"""vmm_snapshot.py - yun-vmm snapshots from the outside: save, restore, clones,
diff snapshots and refused files.

The test guest's `counter` case keeps rewriting a checksummed memory region
and prints "YT COUNT <n> steps=<s> sum=<hex>" lines; it prints YT FAIL if the
region's sum ever differs from the one it kept, so a restored guest that
keeps counting has its memory intact. Snapshots are taken with yun-vmm's
test trigger (--snapshot-on-line match=TEXT,state=F,mem=M[,diff=on]
[,then=resume]) until the control API drives them.

    vmm_snapshot.py --yun-vmm build/src/vmm/yun-vmm \\
                    --elf build/tests/guest/yun-test-guest.elf

Prints "ok - NAME" or "not ok - NAME: REASON" per test, then "N passed, N
failed"; exits 1 if any test failed. -k WORD runs the tests whose name
contains WORD. Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from harness import Failure, run_tests

EXIT_HOST_ERROR = 1
SANITIZER_RE = re.compile(r"(ERROR: (Address|Leak)Sanitizer|runtime error:)")
COUNT_RE = re.compile(rb"^YT COUNT (\d+) ")
FILE_HDR = 24  # magic 8, version 4, crc 4, length 8


class Vmm:
    """A running yun-vmm whose stdout (the guest's serial console) we read."""

    def __init__(self, args, timeout):
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.deadline = time.monotonic() + timeout
        self.buf = b""
        self.lines = []

    def next_line(self):
        """The next line of guest output, or None at the end or the time limit."""
        while b"\n" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                return None
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.rstrip(b"\r")
        self.lines.append(line)
        return line

    def counts(self, n=None):
        """Read until n COUNT lines were seen (None: until the output ends); their numbers.
        Fails on YT FAIL."""
        seen = []
        while n is None or len(seen) < n:
            line = self.next_line()
            if line is None and n is None:
                break
            if line is None:
                raise Failure("after COUNT lines %s: no more output (%s); stderr: %s"
                              % (seen, self.describe(), self.stderr_now()))
            if line.startswith(b"YT FAIL"):
                raise Failure("guest says %s" % line.decode(errors="replace"))
            m = COUNT_RE.match(line)
            if m:
                seen.append(int(m.group(1)))
        return seen

    def describe(self):
        rc = self.p.poll()
        return "still running" if rc is None else "exited with status %d" % rc

    def stderr_now(self):
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read().decode(errors="replace").strip()[-600:]

    def stop(self):
        if self.p.returncode is not None and hasattr(self, "err"):
            return self.p.returncode, self.err
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            out, err = self.p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        self.err = err.decode(errors="replace")
        check_sanitizers(self.err)
        return self.p.returncode, self.err


class Context:
    def __init__(self, opts):
        self.opts = opts
        self.dir = tempfile.mkdtemp(prefix="yun-snap-")
        self.vmms = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, args):
        v = Vmm([self.opts.yun_vmm] + args, self.opts.timeout)
        self.vmms.append(v)
        return v

    def run(self, args):
        """Run yun-vmm to its end: (status, stdout, stderr)."""
        p = subprocess.run([self.opts.yun_vmm] + args, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=self.opts.timeout)
        err = p.stderr.decode(errors="replace")
        check_sanitizers(err)
        return p.returncode, p.stdout.decode(errors="replace"), err

    def boot_args(self, extra=()):
        return ["--kernel", self.opts.elf, "--cmdline", "yuntest=counter", "--memory", "256",
                "--serial", "stdio"] + list(extra)

    def snapshot(self, at, state, mem, extra=()):
        """Boot the counter and snapshot it when it prints COUNT `at`; exits 0."""
        trig = "match=YT COUNT %d ,state=%s,mem=%s" % (at, state, mem)
        status, out, err = self.run(self.boot_args(extra) + ["--snapshot-on-line", trig])
        if status != 0:
            raise Failure("snapshot run: status %d, stderr: %s" % (status, err.strip()[-400:]))
        if "YT COUNT %d " % at not in out:
            raise Failure("snapshot run never printed COUNT %d: %s" % (at, out[-300:]))
        for p in (state, mem):
            if not os.path.isfile(p):
                raise Failure("%s was not written" % p)
        return out

    def cleanup(self):
        for v in self.vmms:
            try:
                v.stop()
            except Failure:
                pass  # already reported by the test's own stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def check_sanitizers(err):
    """A sanitizer report in yun-vmm's stderr fails the test (ASan/UBSan builds)."""
    m = SANITIZER_RE.search(err)
    if m:
        raise Failure("sanitizer report: %s" % err[m.start():m.start() + 600])


def last_count(out):
    n = [int(m.group(1)) for m in re.finditer(r"^YT COUNT (\d+) ", out, re.M)]
    return n[-1] if n else None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expect_continues(v, after, n=5):
    """The restored guest goes on counting from after + 1 (one line of slack)."""
    seen = v.counts(n)
    if not after + 1 <= seen[0] <= after + 2:
        raise Failure("restored guest counts %s, expected to go on after %d" % (seen, after))
    if seen != list(range(seen[0], seen[0] + n)):
        raise Failure("COUNT lines not consecutive: %s" % seen)
    return seen


def restore_merged(ctx, base_mem, diff_state, diff_mem, after):
    """Apply a diff to a copy of its base (--merge-snapshot), restore, expect it to go on."""
    merged = ctx.path("merged.m")
    subprocess.run(["cp", "--sparse=always", base_mem, merged], check=True)
    status, _, err = ctx.run(["--merge-snapshot", merged, diff_mem])
    if status != 0:
        raise Failure("--merge-snapshot: status %d: %s" % (status, err.strip()))
    v = ctx.start(["--restore", "state=%s,mem=%s,resume=on" % (diff_state, merged),
                   "--serial", "stdio"])
    seen = expect_continues(v, after)
    v.stop()
    return seen


# ---- the state file container, for the refusal tests -------------------------

def read_state(path):
    data = open(path, "rb").read()
    return data[:FILE_HDR], data[FILE_HDR:]


def write_state(path, payload, version=1):
    hdr = b"YUNSNAP\n" + struct.pack("<IIQ", version, zlib.crc32(payload) & 0xffffffff,
                                     len(payload))
    with open(path, "wb") as f:
        f.write(hdr + payload)


def sections(payload):
    """[(tag, version, body)] of a state payload."""
    out, off = [], 0
    while off < len(payload):
        tag, ver, n = struct.unpack_from("<4sIQ", payload, off)
        out.append((tag, ver, payload[off + 16:off + 16 + n]))
        off += 16 + n
    return out


def join_sections(secs):
    return b"".join(struct.pack("<4sIQ", t, v, len(b)) + b for t, v, b in secs)


def expect_refused(ctx, state, mem, *words):
    status, out, err = ctx.run(["--restore", "state=%s,mem=%s,resume=on" % (state, mem),
                                "--serial", "stdio"])
    if status != EXIT_HOST_ERROR:
        raise Failure("restore: status %d, expected %d; stderr: %s" % (status, EXIT_HOST_ERROR,
                                                                      err.strip()))
    if "YT COUNT" in out:
        raise Failure("the guest ran: %s" % out[:200])
    msg = err.strip()
    for w in words:
        if w not in msg:
            raise Failure("stderr does not say %r: %s" % (w, msg))
    return msg


# ---- tests -------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def restore_continues_with_memory_intact(ctx):
    s, m = ctx.path("s"), ctx.path("m")
    out = ctx.snapshot(5, s, m)
    size = os.path.getsize(m)
    used = os.stat(m).st_blocks * 512
    if size != 256 << 20:
        raise Failure("memory file is %d bytes, expected 256 MiB" % size)
    if used > 16 << 20:
        raise Failure("memory file uses %d bytes on disk: zero pages are not holes" % used)
    before = sha256(m)
    v = ctx.start(["--restore", "state=%s,mem=%s,resume=on" % (s, m), "--serial", "stdio"])
    seen = expect_continues(v, last_count(out))
    v.stop()
    if sha256(m) != before:
        raise Failure("restoring changed the memory file")
    return "counted %d..%d after the snapshot at %d; file %d KiB on disk" % (
        seen[0], seen[-1], last_count(out), used >> 10)


@test
def restore_paused_stays_paused(ctx):
    s, m = ctx.path("s"), ctx.path("m")
    ctx.snapshot(3, s, m)
    v = ctx.start(["--restore", "state=%s,mem=%s" % (s, m), "--serial", "stdio"])
    v.deadline = time.monotonic() + 1.5
    line = v.next_line()
    if line is not None:
        raise Failure("a VM restored without resume=on printed %r" % line)
    if v.p.poll() is not None:
        raise Failure("yun-vmm %s" % v.describe())
    status, err = v.stop()
    if status != 128 + signal.SIGTERM:
        raise Failure("SIGTERM to a paused VM: status %d (%s)" % (status, err.strip()))


@test
def two_clones_at_once_with_their_own_vsock(ctx):
    s, m = ctx.path("s"), ctx.path("m")
    out = ctx.snapshot(4, s, m, ["--vsock", "cid=3,socket=%s" % ctx.path("orig.sock")])
    before = sha256(m)
    socks = [ctx.path("c1.sock"), ctx.path("c2.sock")]
    clones = [ctx.start(["--restore", "state=%s,mem=%s,resume=on,vsock_cid=%d,vsock_socket=%s"
                         % (s, m, 10 + i, socks[i]), "--serial", "stdio", "-v"])
              for i in range(2)]
    for c in clones:
        expect_continues(c, last_count(out), 4)
    for p in socks:
        if not os.path.exists(p):
            raise Failure("clone socket %s missing while the clone runs" % p)
    if os.path.exists(ctx.path("orig.sock")):
        raise Failure("a clone took the original's vsock socket")
    for c in clones:
        status, err = c.stop()
        if status != 128 + signal.SIGTERM:
            raise Failure("clone ended with %d: %s" % (status, err.strip()[-300:]))
    for p in socks:
        if os.path.exists(p):
            raise Failure("clone socket %s left behind" % p)
    if sha256(m) != before:
        raise Failure("clones changed the memory file")


@test
def clone_gets_its_own_tap_disk_and_mac(ctx):
    """A clone opens the TAP and disk image it is given, not the original's, and its
    card shows the MAC it asked for; the clone's own snapshot keeps that MAC."""
    if os.geteuid() != 0 or not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "skipped: needs root and /dev/net/tun"
    tap_a, tap_b = ("ysn%d%s" % (os.getpid() % 100000, t) for t in "ab")
    disk_a, disk_b = ctx.path("a.img"), ctx.path("b.img")
    for d in (disk_a, disk_b):
        with open(d, "wb") as f:
            f.truncate(1 << 20)
    s, m, cs, cm = (ctx.path(n) for n in ("s", "m", "c.s", "c.m"))
    out = ctx.snapshot(3, s, m, ["--net", "tap=%s,mac=52:54:00:aa:00:01" % tap_a,
                                 "--disk", "path=%s" % disk_a])
    at = last_count(out)
    new_mac = "52:54:00:aa:00:02"
    v = ctx.start(["--restore", "state=%s,mem=%s,resume=on,tap0=%s,mac0=%s,disk0=%s"
                   % (s, m, tap_b, new_mac, disk_b), "--serial", "stdio",
                   "--snapshot-on-line", "match=YT COUNT %d ,state=%s,mem=%s" % (at + 5, cs, cm)])
    expect_continues(v, at, 2)
    fds = [os.readlink("/proc/%d/fd/%s" % (v.p.pid, fd))
           for fd in os.listdir("/proc/%d/fd" % v.p.pid)]
    has = {p: os.path.exists("/sys/class/net/" + p) for p in (tap_a, tap_b)}
    try:
        v.p.wait(timeout=ctx.opts.timeout)
    except subprocess.TimeoutExpired:
        raise Failure("the clone did not snapshot itself and exit")
    status, err = v.stop()
    if status != 0:
        raise Failure("clone's own snapshot: status %d: %s" % (status, err.strip()[-300:]))
    if not has[tap_b] or has[tap_a]:
        raise Failure("TAPs while the clone ran: %s, expected only %s" % (has, tap_b))
    if disk_b not in fds or disk_a in fds:
        raise Failure("the clone has %s open, expected %s" % (
            [f for f in fds if f.endswith(".img")], disk_b))
    if os.path.exists("/sys/class/net/" + tap_b):
        raise Failure("the clone's TAP %s was left behind" % tap_b)
    conf = sections(read_state(cs)[1])[0][2]
    cfg = json.loads(conf[4:4 + struct.unpack_from("<I", conf)[0]])
    if cfg["net"][0].get("mac") != new_mac or cfg["net"][0]["tap"] != tap_b:
        raise Failure("the clone's snapshot says card 0 is %s" % cfg["net"][0])
    # The clone's snapshot restores (its MAC and its card's state agree).
    v = ctx.start(["--restore", "state=%s,mem=%s,resume=on" % (cs, cm), "--serial", "stdio"])
    expect_continues(v, at + 5, 2)
    v.stop()


@test
def diff_snapshot_merged_onto_base(ctx):
    bs, bm, ds, dm = (ctx.path(n) for n in ("b.s", "b.m", "d.s", "d.m"))
    status, out, err = ctx.run(ctx.boot_args() + [
        "--snapshot-on-line", "match=YT COUNT 3 ,state=%s,mem=%s,then=resume" % (bs, bm),
        "--snapshot-on-line", "match=YT COUNT 7 ,state=%s,mem=%s,diff=on" % (ds, dm)])
    if status != 0:
        raise Failure("status %d: %s" % (status, err.strip()[-400:]))
    at = last_count(out)
    if os.path.getsize(dm) != os.path.getsize(bm):
        raise Failure("diff memory file is not the full size")
    diff_used, base_used = os.stat(dm).st_blocks * 512, os.stat(bm).st_blocks * 512
    if not 0 < diff_used < base_used:
        raise Failure("diff holds %d bytes, base %d: expected some, and fewer" % (diff_used,
                                                                                 base_used))
    seen = restore_merged(ctx, bm, ds, dm, at)
    # Without the diff's pages the same state must not run cleanly.
    v = ctx.start(["--restore", "state=%s,mem=%s,resume=on" % (ds, bm), "--serial", "stdio"])
    v.deadline = time.monotonic() + 10
    try:
        v.counts(5)
        raise Failure("the diff state ran cleanly on the base memory alone: the diff "
                      "carried nothing the guest needed")
    except Failure as e:
        if "carried nothing" in str(e):
            raise
    v.stop()
    return "diff %d KiB vs base %d KiB; merged restore counted %d..%d" % (
        diff_used >> 10, base_used >> 10, seen[0], seen[-1])


@test
def diff_snapshot_of_a_vm_with_a_disk(ctx):
    """Diff snapshots of VMs with virtio devices: the one dirty tracker has the device
    models' writes (rings, read buffers) too, so they are no longer refused."""
    disk = ctx.path("disk.img")
    with open(disk, "wb") as f:
        f.truncate(8 << 20)
    bs, bm, ds, dm = (ctx.path(n) for n in ("b.s", "b.m", "d.s", "d.m"))
    status, out, err = ctx.run(ctx.boot_args(["--disk", "path=%s" % disk, "--rng"]) + [
        "--snapshot-on-line", "match=YT COUNT 3 ,state=%s,mem=%s,then=resume" % (bs, bm),
        "--snapshot-on-line", "match=YT COUNT 7 ,state=%s,mem=%s,diff=on" % (ds, dm)])
    if status != 0:
        raise Failure("diff of a VM with a disk and rng: status %d: %s" % (status,
                                                                          err.strip()[-400:]))
    seen = restore_merged(ctx, bm, ds, dm, last_count(out))
    return "diff %d KiB; merged restore (disk and rng loaded) counted %d..%d" % (
        os.stat(dm).st_blocks // 2, seen[0], seen[-1])


@test
def diff_of_a_restored_clone(ctx):
    """The clone workflow: restore a base with dirty=on, let it run, save only what changed."""
    bs, bm, ds, dm = (ctx.path(n) for n in ("b.s", "b.m", "d.s", "d.m"))
    ctx.snapshot(3, bs, bm)
    status, out, err = ctx.run(["--restore", "state=%s,mem=%s,resume=on,dirty=on" % (bs, bm),
                                "--serial", "stdio", "--snapshot-on-line",
                                "match=YT COUNT 7 ,state=%s,mem=%s,diff=on" % (ds, dm)])
    if status != 0:
        raise Failure("diff of the restored VM: status %d: %s" % (status, err.strip()[-400:]))
    seen = restore_merged(ctx, bm, ds, dm, last_count(out))
    # A diff without a base to diff against is refused, and says why.
    status, _, err = ctx.run(["--restore", "state=%s,mem=%s,resume=on" % (bs, bm), "--serial",
                              "stdio", "--snapshot-on-line",
                              "match=YT COUNT 5 ,state=%s,mem=%s,diff=on" % (ds, dm)])
    if status == 0 or "diff" not in err:
        raise Failure("diff with no base: status %d, %s" % (status, err.strip()))
    return "diff %d KiB; merged restore counted %d..%d" % (os.stat(dm).st_blocks // 2,
                                                           seen[0], seen[-1])


@test
def refused_files(ctx):
    s, m = ctx.path("s"), ctx.path("m")
    ctx.snapshot(2, s, m)
    hdr, payload = read_state(s)
    bad = ctx.path("bad.s")

    # Truncated.
    with open(bad, "wb") as f:
        f.write(hdr + payload[:len(payload) // 2])
    expect_refused(ctx, bad, m, bad, "truncated")
    # One flipped byte in the middle: the checksum.
    b = bytearray(payload)
    b[len(b) // 2] ^= 0x40
    with open(bad, "wb") as f:
        f.write(hdr + bytes(b))
    expect_refused(ctx, bad, m, bad, "checksum")
    # Another container version.
    write_state(bad, payload, version=99)
    expect_refused(ctx, bad, m, bad, "version 99")
    # A section version this yun-vmm does not know (checksum fixed up).
    secs = [(t, 7 if t == b"VCPU" else v, body) for t, v, body in sections(payload)]
    write_state(bad, join_sections(secs))
    expect_refused(ctx, bad, m, bad, "VCPU", "version 7")
    # A value KVM refuses: async page faults enabled with reserved bits 4-5 set.
    secs = sections(payload)
    vcpu = [i for i, sec in enumerate(secs) if sec[0] == b"VCPU"][0]
    body = bytearray(secs[vcpu][2])
    off = 4                                  # vCPU id
    for _ in range(5):                       # regs, sregs, fpu, xsave, xcrs: u32 size + bytes
        off += 4 + struct.unpack_from("<I", body, off)[0]
    nmsrs = struct.unpack_from("<I", body, off)[0]
    for i in range(nmsrs):
        at = off + 4 + i * 12
        if struct.unpack_from("<I", body, at)[0] == 0x4b564d02:
            struct.pack_into("<Q", body, at + 4, 0x30)
            break
    else:
        raise Failure("no MSR_KVM_ASYNC_PF_EN among the %d saved MSRs" % nmsrs)
    secs[vcpu] = (secs[vcpu][0], secs[vcpu][1], bytes(body))
    write_state(bad, join_sections(secs))
    expect_refused(ctx, bad, m, bad, "vCPU 0", "MSR 0x4b564d02")
    # Memory file of the wrong size.
    small = ctx.path("small.m")
    with open(small, "wb") as f:
        f.truncate(128 << 20)
    expect_refused(ctx, s, small, small, "bytes")
    # Not a state file at all.
    expect_refused(ctx, m, m, m, "not a yun-vmm state file")
    # A configuration whose devices are not the ones saved (checksum fixed up).
    secs = sections(payload)
    conf = secs[0][2]
    n = struct.unpack_from("<I", conf)[0]
    cfg = json.loads(conf[4:4 + n])
    cfg["rng"] = True
    text = json.dumps(cfg).encode()
    secs[0] = (secs[0][0], secs[0][1], struct.pack("<I", len(text)) + text)
    write_state(bad, join_sections(secs))
    msg = expect_refused(ctx, bad, m, bad)
    if "rng" not in msg and "device" not in msg:
        raise Failure("device mismatch not named: %s" % msg)
    # Missing files.
    expect_refused(ctx, ctx.path("none.s"), m, ctx.path("none.s"))
    expect_refused(ctx, s, ctx.path("none.m"), ctx.path("none.m"))


@test
def restore_bad_usage(ctx):
    for args, word in ((["--restore", "state=a"], "mem="),
                       (["--restore", "state=a,mem=b", "--kernel", ctx.opts.elf], "--kernel"),
                       (["--restore", "state=a,mem=b,vsock_cid=2"], "vsock_cid"),
                       (["--restore", "state=a,mem=b,mac0=01:00:00:00:00:01"], "mac0"),
                       (["--restore", "state=a,mem=b,bogus=1"], "bogus")):
        status, _, err = ctx.run(args)
        if status != EXIT_HOST_ERROR or word not in err:
            raise Failure("%s: status %d, stderr %s" % (" ".join(args), status, err.strip()))
    s, m = ctx.path("s"), ctx.path("m")
    ctx.snapshot(1, s, m)
    status, _, err = ctx.run(["--restore", "state=%s,mem=%s,vsock_cid=9" % (s, m)])
    if status != EXIT_HOST_ERROR or "vsock" not in err:
        raise Failure("new CID for a VM without vsock: status %d, %s" % (status, err.strip()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yun-vmm", required=True)
    ap.add_argument("--elf", required=True, help="yun-test-guest.elf (PVH)")
    ap.add_argument("--bzimage", help="unused; accepted like the other e2e tests")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per yun-vmm run")
    ap.add_argument("-k", dest="only", default=None)
    opts = ap.parse_args()
    opts.yun_vmm = os.path.abspath(opts.yun_vmm)
    opts.elf = os.path.abspath(opts.elf)
    return run_tests(TESTS, lambda: Context(opts), opts.only)

if __name__ == "__main__":
    sys.exit(main())
