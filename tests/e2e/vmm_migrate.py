#!/usr/bin/env python3
"""vmm_migrate.py - live migration of a real yun-vmm guest between two "hosts":
two network namespaces joined by a veth pair. The source yun-vmm runs the
test guest's `counter` case (it keeps rewriting a checksummed memory region
and prints "YT COUNT <n> steps=<s> sum=<hex>", or YT FAIL if the region's
sum breaks) with a virtio-blk disk and virtio-rng; the destination is
`yun-vmm --migrate-listen ADDR --migrate-token-file FILE`; the migration is
asked for with PUT /migrate on the source's control API.

    vmm_migrate.py --yun-vmm build/src/vmm/yun-vmm \\
                   --elf build/tests/guest/yun-test-guest.elf [-k WORD]

What a user would notice:
  migrates_counter_with_disk_and_rng
                  200 with the figures; the source exits 0; the destination
                  goes on counting from where the source stopped, checksum
                  intact, GET / says Running, it holds the disk's lock and
                  shows the source's drive and rng; its stderr is clean
  disk_in_use_migrates
                  the `virtio-blk` case migrated while it writes its disk
                  and reads it back: the destination finishes it, reading
                  back what the source wrote (YT PASS)
  wrong_token     400 naming authentication; the source keeps counting,
                  Running; the destination keeps waiting and then takes
                  the right token
  destination_killed_midway
                  on a slowed link the destination is SIGKILLed while rounds
                  run: 400, the source keeps counting, Running
  unreachable     nothing listening / no such host: a clear 400, the source
                  runs on
  fast_dirtier_completes
                  a guest dirtying faster than a slowed link carries still
                  finishes (its vCPU throttled, or stop-and-copy forced at
                  max_rounds), intact

Touches only namespaces and links named yv-<hex>*. Prints "ok - NAME" or
"not ok - NAME: REASON" per test, then "N passed, N failed"; exits 1 if any
test failed. Needs root, iproute2 (ip, tc). Python 3 standard library.
"""

import argparse
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

from harness import Failure, HostPair, UnixHTTPConnection, run_tests
from vmm_snapshot import Vmm

HOSTS = HostPair("yv")
NS_A, NS_B = HOSTS.ns_a, HOSTS.ns_b
IP_A, IP_B, IP_NOBODY = "10.254.78.1", "10.254.78.2", "10.254.78.9"
PORT = 4711
STATUS_PASS = 33  # the guest's debug-exit on YT PASS: (0x10 << 1) | 1


class Context:
    def __init__(self, opts):
        self.opts = opts
        self.dir = tempfile.mkdtemp(prefix="yun-mig-")
        self.vmms = []
        self.token = secrets.token_hex(32)
        self.token_file = self.path("token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        self.disk = self.path("disk.img")
        with open(self.disk, "wb") as f:
            f.truncate(16 << 20)

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, ns, args):
        v = Vmm(["ip", "netns", "exec", ns, self.opts.yun_vmm] + args, self.opts.timeout)
        self.vmms.append(v)
        return v

    def source(self, cmdline="yuntest=counter", memory=256):
        sock = self.path("src.sock")
        v = self.start(NS_A, ["--kernel", self.opts.elf, "--cmdline", cmdline,
                              "--memory", str(memory), "--serial", "stdio", "--rng",
                              "--disk", "path=%s" % self.disk, "--api-sock", sock])
        v.sock = sock
        wait_for(sock, v)
        return v

    def destination(self, extra=()):
        sock = self.path("dst.sock")
        v = self.start(NS_B, ["--migrate-listen", "%s:%d" % (IP_B, PORT),
                              "--migrate-token-file", self.token_file, "--serial", "stdio",
                              "--api-sock", sock] + list(extra))
        v.sock = sock
        wait_for(sock, v)  # the listener is bound before the API socket appears
        return v

    def cleanup(self):
        HOSTS.fast()
        for v in self.vmms:
            try:
                v.stop()
            except Failure:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(path, v, timeout=10):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if v.p.poll() is not None or time.monotonic() > deadline:
            raise Failure("%s never appeared (%s): %s" % (path, v.describe(), v.stderr_now()))
        time.sleep(0.02)


def api(v, method, path, body=None, timeout=120):
    c = UnixHTTPConnection(v.sock, timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        c.close()


def migrate(ctx, v, **extra):
    body = {"destination": "%s:%d" % (IP_B, PORT), "token": ctx.token}
    body.update(extra)
    return api(v, "PUT", "/migrate", body)


def state(v):
    status, reply = api(v, "GET", "/")
    if status != 200:
        raise Failure("GET /: %d %r" % (status, reply))
    return reply["state"]


def expect_continued(src, last_src, after):
    """The destination's first COUNT follows the source's last. A line the guest was in the
    middle of printing when it paused is split between the two consoles: its start is the
    source's unterminated last bytes, its end the destination's first, and neither side
    has the whole COUNT line."""
    if after[0] == last_src + 1:
        return
    if after[0] == last_src + 2 and src.buf.startswith(b"YT COUNT %d " % (last_src + 1)):
        return
    raise Failure("the destination counts %s after the source's last %d (then %r)"
                  % (after, last_src, src.buf[:40]))


def expect_exit(v, want, timeout=20):
    try:
        v.p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure("yun-vmm did not exit after the migration")
    status, err = v.stop()
    if status != want:
        raise Failure("yun-vmm exited %d, not %d: %s" % (status, want, err.strip()[-500:]))
    return err


def expect_still_counting(v, n=3):
    got = v.counts(n)
    if state(v) != "Running":
        raise Failure("the source is not Running after the failure: %s" % state(v))
    return got


# ---- tests -------------------------------------------------------------------------------

def migrates_counter_with_disk_and_rng(ctx):
    src = ctx.source()
    dst = ctx.destination()
    before = src.counts(8)
    status, st = migrate(ctx, src)
    if status != 200 or st.get("outcome") != "done":
        raise Failure("PUT /migrate: %d %r" % (status, st))
    last_src = (before + src.counts())[-1]
    expect_exit(src, 0)
    after = dst.counts(5)
    expect_continued(src, last_src, after)
    if state(dst) != "Running":
        raise Failure("destination: %s" % state(dst))
    _, conf = api(dst, "GET", "/vm/config")
    if len(conf.get("drives", [])) != 1 or conf["drives"][0]["path_on_host"] != ctx.disk:
        raise Failure("destination's drives: %r" % conf.get("drives"))
    # The image's lock came along: nobody else may open it for writing now.
    with open(ctx.disk, "r+b") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise Failure("the disk image is not locked by the destination")
        except OSError:
            pass
    dst.counts(2)
    status, err = dst.stop()
    if status != 128 + 15:
        raise Failure("destination: status %d: %s" % (status, err.strip()[-300:]))
    return "src %d..%d, dst from %d; %d rounds, %.1f ms downtime, %.0f ms total" % (
        before[0], last_src, after[0], st["rounds"], st["downtime_ms"], st["total_ms"])


def lines_until(v, prefix, what):
    """Guest lines up to and including the first that starts with prefix; fails on YT FAIL."""
    seen = []
    while True:
        line = v.next_line()
        if line is None:
            raise Failure("%s: no %r (%s): %s" % (what, prefix, v.describe(),
                                                  v.stderr_now()[-300:]))
        seen.append(line)
        if line.startswith(b"YT FAIL"):
            raise Failure("%s: guest says %s" % (what, line.decode(errors="replace")))
        if line.startswith(prefix):
            return seen


def disk_in_use_migrates(ctx):
    # The virtio-blk case writes the whole disk with a pattern, then reads it back and
    # compares (~10 s for 8 MiB here): migrated while it works, the destination must
    # complete the requests the source had not and read back what the source wrote.
    with open(ctx.disk, "r+b") as f:
        f.truncate(8 << 20)
    sock = ctx.path("src.sock")
    src = ctx.start(NS_A, ["--kernel", ctx.opts.elf, "--cmdline", "yuntest=virtio-blk yt.seed=7",
                           "--memory", "256", "--serial", "stdio", "--debug-exit",
                           "--disk", "path=%s" % ctx.disk, "--api-sock", sock])
    src.sock = sock
    wait_for(sock, src)
    dst = ctx.destination()
    lines_until(src, b"YT BLK_DZ_CONFIG", "source")
    time.sleep(2)
    status, st = migrate(ctx, src)
    if status != 200:
        raise Failure("PUT /migrate: %d %r" % (status, st))
    src.counts()  # to the end of its output
    expect_exit(src, 0)
    if any(ln.startswith(b"YT BLK_READ") for ln in src.lines):
        raise Failure("the source finished reading the disk back before it migrated")
    seen = lines_until(dst, b"YT PASS virtio-blk", "destination")
    read = [ln for ln in seen if ln.startswith(b"YT BLK_READ")]
    if not read or b"verified=1" not in read[0]:
        raise Failure("the destination read back %r" % read)
    # The guest prints YT PASS, then writes the debug-exit port: wait for that exit
    # (a SIGTERM sent right after the line raced it, exit 143).
    expect_exit(dst, STATUS_PASS)
    return "migrated 2 s into the disk work, %d rounds, %.1f ms downtime; %s" % (
        st["rounds"], st["downtime_ms"], read[0].decode()[:60])


def wrong_token(ctx):
    src = ctx.source()
    dst = ctx.destination()
    src.counts(2)
    body = {"destination": "%s:%d" % (IP_B, PORT), "token": secrets.token_hex(32),
            "timeout_ms": 3000}
    status, reply = api(src, "PUT", "/migrate", body)
    msg = (reply or {}).get("fault_message", "")
    if status != 400 or "authentication" not in msg:
        raise Failure("wrong token: %d %r" % (status, reply))
    expect_still_counting(src)
    # The destination dropped the stranger and still takes the real source.
    status, st = migrate(ctx, src)
    if status != 200:
        raise Failure("then the right token: %d %r" % (status, st))
    expect_exit(src, 0)
    dst.counts(3)
    return msg[:120]


def destination_killed_midway(ctx):
    # A bigger region makes round 0 last a few seconds on a slowed link.
    src = ctx.source("yuntest=counter yt.region=2048")
    dst = ctx.destination()
    src.counts(2)
    HOSTS.slow("4mbit", "16kb", "400ms")
    killer = subprocess.Popen([sys.executable, "-c", "import os, time, signal; "
                               "time.sleep(1.5); os.kill(%d, signal.SIGKILL)" % dst.p.pid])
    t0 = time.monotonic()
    status, reply = migrate(ctx, src, timeout_ms=3000)
    killer.wait()
    took = time.monotonic() - t0
    if status != 400:
        raise Failure("migration to a killed destination: %d %r" % (status, reply))
    if took < 1.2:
        raise Failure("the migration ended after %.2f s, before the kill: %r" % (took, reply))
    HOSTS.fast()
    expect_still_counting(src)
    return "%.1f s: %s" % (took, reply["fault_message"][:140])


def unreachable(ctx):
    src = ctx.source()
    src.counts(1)
    notes = []
    # Nothing listens there (connection refused), then no such host (a timeout).
    for dest, words in (("%s:%d" % (IP_B, PORT), ("connect",)),
                        ("%s:%d" % (IP_NOBODY, PORT), ("connect",))):
        status, reply = api(src, "PUT", "/migrate", {"destination": dest, "token": ctx.token,
                                                     "timeout_ms": 1500})
        msg = (reply or {}).get("fault_message", "")
        if status != 400 or dest not in msg or not all(w in msg for w in words):
            raise Failure("to %s: %d %r" % (dest, status, reply))
        notes.append(msg[msg.index(dest):][:70])
        expect_still_counting(src, 2)
    # Bad requests name their field.
    for body, word in (({"token": ctx.token}, "destination"),
                       ({"destination": "x:1", "token": "short"}, "token"),
                       ({"destination": "x:1", "token": ctx.token, "downtime_ms": 0},
                        "downtime_ms"),
                       ({"destination": "x:1", "token": ctx.token, "rounds": 3}, "rounds")):
        status, reply = api(src, "PUT", "/migrate", body)
        if status != 400 or word not in reply.get("fault_message", ""):
            raise Failure("%r: %d %r" % (body, status, reply))
    return "; ".join(notes)


def fast_dirtier_completes(ctx):
    # A 1 MiB region rewritten continuously against a link of ~120 KB/s: the dirty set
    # does not fit 50 ms; the vCPU is throttled (auto-converge) and, if that is not
    # enough, max_rounds forces the stop-and-copy.
    src = ctx.source("yuntest=counter yt.region=1024 yt.period=10")
    dst = ctx.destination()
    src.counts(5)
    HOSTS.slow("1mbit", "16kb", "400ms")
    status, st = migrate(ctx, src, max_rounds=8, timeout_ms=30000)
    if status != 200:
        raise Failure("PUT /migrate: %d %r" % (status, st))
    last_src = src.counts()
    expect_exit(src, 0)
    HOSTS.fast()
    after = dst.counts(5)
    if last_src:
        expect_continued(src, last_src[-1], after)
    if not st["forced"] and not st["throttle"]:
        raise Failure("expected auto-converge (throttle) or a forced stop-and-copy: %r" % st)
    return "%d rounds %s, throttle %d%%, %s, %.0f ms downtime, %.1f s total" % (
        st["rounds"], st["round_pages"], st["throttle"],
        "forced" if st["forced"] else "converged", st["downtime_ms"], st["total_ms"] / 1000)


TESTS = [migrates_counter_with_disk_and_rng, disk_in_use_migrates, wrong_token, destination_killed_midway,
         unreachable, fast_dirtier_completes]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yun-vmm", required=True)
    ap.add_argument("--elf", required=True, help="yun-test-guest.elf (PVH)")
    ap.add_argument("--timeout", type=float, default=90, help="seconds per yun-vmm run")
    ap.add_argument("-k", dest="only", default=None)
    opts = ap.parse_args()
    opts.yun_vmm = os.path.abspath(opts.yun_vmm)
    opts.elf = os.path.abspath(opts.elf)
    if os.geteuid() != 0:
        print("ok - all # SKIP needs root (network namespaces)")
        print("0 passed, 0 failed")
        return 0
    HOSTS.up([IP_A + "/24"], [IP_B + "/24"])
    try:
        return run_tests(TESTS, lambda: Context(opts), opts.only)
    finally:
        HOSTS.down()


if __name__ == "__main__":
    sys.exit(main())
