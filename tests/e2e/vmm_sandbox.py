#!/usr/bin/env python3
"""vmm_sandbox.py - yun-vmm's seccomp filters and yun-jailer, from the outside.

    vmm_sandbox.py --yun-vmm build/src/vmm/yun-vmm --yun-jailer build/src/jailer/yun-jailer \\
                   --bzimage build/tests/guest/yun-test-guest.bzImage \\
                   --elf build/tests/guest/yun-test-guest.elf

What a user (an operator of a multi-tenant host) would notice: the test
guest still passes with the filters on; a thread that makes a syscall off
its list (the YUN_VMM_DEBUG_FORBIDDEN hook) stops yun-vmm at once by SIGSYS
with a line naming the thread and the syscall; yun-jailer runs the guest as
an unprivileged user, in its own root, namespaces and cgroup, passes
SIGTERM on, and leaves nothing behind, also when its arguments are wrong.

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. -k WORD runs the tests
whose name contains WORD. Needs root (the jailer). Python 3 standard
library only.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Failure, Skip, run_tests  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_CASES = os.path.join(HERE, "..", "guest", "run_cases.py")
STATUS_PASS = 33  # the guest's debug-exit PASS
JAIL_UID = 40123
JAIL_GID = 40124
CGROUP = "/sys/fs/cgroup"
KILL_LINE = (r"yun-vmm: seccomp: thread (\S+) \((%s)\) made forbidden syscall 135 "
             r"\(personality\); stopping")

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Proc:
    """A process with its stdout and stderr collected by threads."""

    def __init__(self, argv, env=None, stdin=subprocess.DEVNULL, cwd=None):
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, cwd=cwd,
                                  start_new_session=True)
        self.out, self.err = [b""], [b""]
        self.threads = [threading.Thread(target=self._read, args=(f, buf), daemon=True)
                        for f, buf in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(f, buf):
        for chunk in iter(lambda: os.read(f.fileno(), 4096), b""):
            buf[0] += chunk

    def stdout(self):
        return self.out[0].decode(errors="replace")

    def stderr(self):
        return self.err[0].decode(errors="replace")

    def wait_stdout(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.stdout()):
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise Failure("no %r on stdout within %ss (status %s); stdout %r stderr %r"
                              % (pattern, timeout, self.p.poll(), self.stdout()[-300:],
                                 self.stderr()[-500:]))
            time.sleep(0.02)

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
            raise Failure("still running after %ss (killed); stdout %r stderr %r"
                          % (timeout, self.stdout()[-300:], self.stderr()[-500:]))
        for t in self.threads:
            t.join(5)
        return rc


class Context:
    def __init__(self, opts):
        self.__dict__.update(vars(opts))
        self.tmp = tempfile.mkdtemp(prefix="yun-sandbox-")
        os.chmod(self.tmp, 0o755)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def vmm(self, args, env=None, stdin=subprocess.DEVNULL):
        e = dict(os.environ)
        e.update(env or {})
        return Proc([self.yun_vmm] + args, env=e, stdin=stdin, cwd=self.tmp)

    def jailer(self, jid, jail_args, vmm_args, env=None, stdin=subprocess.DEVNULL):
        e = dict(os.environ)
        e.update(env or {})
        argv = ([self.yun_jailer, "--id", jid, "--uid", str(JAIL_UID), "--gid", str(JAIL_GID),
                 "--chroot-base", self.tmp] + jail_args + ["--", self.yun_vmm] + vmm_args)
        return Proc(argv, env=e, stdin=stdin, cwd=self.tmp)

    def jail_dir(self, jid):
        return os.path.join(self.tmp, "yun-vmm", jid)


def cgroup_dirs(jid):
    """The jail's cgroup directories that exist now (v1 or v2)."""
    found = []
    for top in [CGROUP] + [os.path.join(CGROUP, d) for d in sorted(os.listdir(CGROUP))]:
        d = os.path.join(top, "yun-vmm", jid)
        if os.path.isdir(d):
            found.append(d)
    return found


def expect_nothing_left(ctx, jid):
    if os.path.exists(ctx.jail_dir(jid)):
        raise Failure("jail directory %s left behind: %s"
                      % (ctx.jail_dir(jid), os.listdir(ctx.jail_dir(jid))))
    if cgroup_dirs(jid):
        raise Failure("cgroup left behind: %s" % cgroup_dirs(jid))


def has_api(ctx):
    out = subprocess.run([ctx.yun_vmm, "--help"], capture_output=True, text=True).stdout
    return "--api" in out


def children(pid):
    """Pids whose parent is pid."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


# ---- seccomp -------------------------------------------------------------

@test
def guest_cases_pass_with_seccomp(ctx):
    """The default (filters on): hello and the virtio-blk cases still pass."""
    r = subprocess.run([sys.executable, RUN_CASES, "--vmm", "yun", "--yun-vmm", ctx.yun_vmm,
                        "--bzimage", ctx.bzimage, "--elf", ctx.elf, "--case", "hello",
                        "--case", "virtio-blk", "--case", "serial"],
                       capture_output=True, text=True, timeout=600)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    m = re.match(r"(\d+) passed, (\d+) failed", last)
    if r.returncode != 0 or not m or m.group(2) != "0" or int(m.group(1)) < 4:
        raise Failure("run_cases.py: %s" % (r.stdout[-1500:] + r.stderr[-500:]))
    return last


def forbidden(ctx, kind, thread_re, extra=()):
    v = ctx.vmm(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit",
                 "--rng"] + list(extra), env={"YUN_VMM_DEBUG_FORBIDDEN": kind},
                stdin=subprocess.PIPE)
    t0 = time.monotonic()
    rc = v.wait(20)
    took = time.monotonic() - t0
    v.p.stdin.close()
    if rc != -signal.SIGSYS:
        raise Failure("status %s, want killed by SIGSYS; stderr %r" % (rc, v.stderr()[-800:]))
    m = re.search(KILL_LINE % kind, v.stderr())
    if not m or not re.fullmatch(thread_re, m.group(1)):
        raise Failure("stderr does not name the thread (%s, %s) and the syscall: %r"
                      % (thread_re, kind, v.stderr()[-800:]))
    if took > 5:
        raise Failure("took %.1fs to stop" % took)
    return "%.2fs: %s" % (took, m.group(0))


@test
def forbidden_syscall_vcpu(ctx):
    return forbidden(ctx, "vcpu", r"vcpu0")


@test
def forbidden_syscall_io(ctx):
    # The I/O thread is named by its creator right after it starts: either name.
    return forbidden(ctx, "io", r"io|yun-vmm")


@test
def forbidden_syscall_main(ctx):
    # The main thread (its filter goes on last, once the vCPUs run) or the
    # signal or console thread, whichever enters first.
    return forbidden(ctx, "main", r"yun-vmm")


@test
def forbidden_syscall_api(ctx):
    if not has_api(ctx):
        raise Skip("this yun-vmm has no control API (--api) yet")
    # The API thread exists with --api-sock only.
    return forbidden(ctx, "api", r"api", ["--api-sock", os.path.join(ctx.tmp, "api.sock")])


@test
def seccomp_off_runs_unfiltered(ctx):
    v = ctx.vmm(["--kernel", ctx.bzimage, "--cmdline", "yuntest=hello", "--debug-exit",
                 "--seccomp", "off"], env={"YUN_VMM_DEBUG_FORBIDDEN": "vcpu"})
    rc = v.wait(30)
    if rc != STATUS_PASS or "YT PASS hello" not in v.stdout():
        raise Failure("status %s; stderr %r" % (rc, v.stderr()[-500:]))


@test
def seccomp_bad_value(ctx):
    v = ctx.vmm(["--kernel", ctx.bzimage, "--seccomp", "maybe"])
    rc = v.wait(30)
    if rc != 1 or "--seccomp maybe: must be on or off" not in v.stderr():
        raise Failure("status %s; stderr %r" % (rc, v.stderr()))


@test
def debug_hook_bad_value(ctx):
    v = ctx.vmm(["--kernel", ctx.bzimage, "--cmdline", "yuntest=hello", "--debug-exit"],
                env={"YUN_VMM_DEBUG_FORBIDDEN": "gpu"})
    rc = v.wait(30)
    if rc != 1 or "YUN_VMM_DEBUG_FORBIDDEN=gpu: must be vcpu, io, api or main" not in v.stderr():
        raise Failure("status %s; stderr %r" % (rc, v.stderr()))


# ---- yun-jailer ------------------------------------------------------------

@test
def jailer_runs_hello(ctx):
    v = ctx.jailer("hello-1", ["--copy", ctx.bzimage + ":/guest/k.bz"],
                   ["--kernel", "/guest/k.bz", "--cmdline", "yuntest=hello", "--debug-exit"])
    rc = v.wait(60)
    if rc != STATUS_PASS or "YT PASS hello" not in v.stdout():
        raise Failure("status %s; stdout %r stderr %r" % (rc, v.stdout()[-300:],
                                                          v.stderr()[-800:]))
    expect_nothing_left(ctx, "hello-1")


@test
def jailer_isolates_and_stops_on_sigterm(ctx):
    jid = "serial-1"
    limit = 384 << 20
    v = ctx.jailer(jid, ["--copy", ctx.bzimage + ":/k.bz", "--cgroup",
                         "memory.limit_in_bytes=%d,cpu.cfs_quota_us=50000" % limit],
                   ["--kernel", "/k.bz", "--cmdline", "yuntest=serial", "--debug-exit"],
                   stdin=subprocess.PIPE)
    try:
        v.wait_stdout(r"YT READY", 30)
        kids = children(v.p.pid)
        if len(kids) != 1:
            raise Failure("want one child of yun-jailer, found %s" % kids)
        pid = kids[0]
        st = status_fields(pid)
        if st["Uid"].split() != [str(JAIL_UID)] * 4 or st["Gid"].split() != [str(JAIL_GID)] * 4:
            raise Failure("VMM runs as Uid %s Gid %s" % (st["Uid"], st["Gid"]))
        if st.get("Groups", "").strip():
            raise Failure("supplementary groups left: %r" % st["Groups"])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            if int(st[cap], 16) != 0:
                raise Failure("%s = %s, want none" % (cap, st[cap]))
        if st.get("NoNewPrivs") != "1" or st.get("Seccomp") != "2":
            raise Failure("NoNewPrivs %s Seccomp %s" % (st.get("NoNewPrivs"), st.get("Seccomp")))
        root = os.path.join(ctx.jail_dir(jid), "root")
        a, b = os.stat("/proc/%d/root/" % pid), os.stat(root)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            raise Failure("/proc/%d/root is not %s" % (pid, root))
        inside = sorted(os.listdir("/proc/%d/root/" % pid))
        if "k.bz" not in inside or "etc" in inside or "home" in inside:
            raise Failure("the root holds %s" % inside)
        for ns in ("mnt", "pid", "net", "ipc", "uts"):
            if os.readlink("/proc/%d/ns/%s" % (pid, ns)) == os.readlink("/proc/self/ns/%s" % ns):
                raise Failure("VMM shares the test's %s namespace" % ns)
        with open("/proc/%d/cgroup" % pid) as f:
            cg = f.read()
        if not re.search(r"(?m)^\d+:[^:]*memory[^:]*:/yun-vmm/%s$" % jid, cg) and \
           not re.search(r"(?m)^0::/yun-vmm/%s$" % jid, cg):
            raise Failure("/proc/%d/cgroup: %r" % (pid, cg))
        mem = os.path.join(CGROUP, "memory", "yun-vmm", jid, "memory.limit_in_bytes")
        if not os.path.exists(mem):
            mem = os.path.join(CGROUP, "yun-vmm", jid, "memory.max")
        with open(mem) as f:
            got = int(f.read())
        if got != limit:
            raise Failure("%s = %d, want %d" % (mem, got, limit))
        t0 = time.monotonic()
        v.p.send_signal(signal.SIGTERM)
        rc = v.wait(10)
        took = time.monotonic() - t0
    finally:
        v.p.stdin.close()
        if v.p.poll() is None:
            os.killpg(v.p.pid, signal.SIGKILL)
            v.p.wait()
    if rc != 128 + signal.SIGTERM:
        raise Failure("after SIGTERM: status %s, want %d; stderr %r"
                      % (rc, 128 + signal.SIGTERM, v.stderr()[-500:]))
    expect_nothing_left(ctx, jid)
    return "stopped %.2fs after SIGTERM" % took


@test
def jailer_seccomp_still_kills(ctx):
    v = ctx.jailer("kill-1", ["--copy", ctx.bzimage + ":/k.bz"],
                   ["--kernel", "/k.bz", "--cmdline", "yuntest=serial", "--debug-exit"],
                   env={"YUN_VMM_DEBUG_FORBIDDEN": "vcpu"}, stdin=subprocess.PIPE)
    rc = v.wait(20)
    v.p.stdin.close()
    if rc != 128 + signal.SIGSYS or not re.search(KILL_LINE % "vcpu", v.stderr()):
        raise Failure("status %s; stderr %r" % (rc, v.stderr()[-500:]))
    expect_nothing_left(ctx, "kill-1")


def jailer_refuses(ctx, jid, argv, must_say):
    r = subprocess.run([ctx.yun_jailer] + argv, capture_output=True, text=True, timeout=30,
                       cwd=ctx.tmp)
    if r.returncode != 1 or must_say not in r.stderr:
        raise Failure("%s: status %s, stderr %r (want %r)" % (" ".join(argv), r.returncode,
                                                              r.stderr, must_say))
    if jid:
        expect_nothing_left(ctx, jid)


@test
def jailer_bad_arguments(ctx):
    def args(jid="bad-1", uid="40123", gid="40124", base=None, extra=(), prog=None):
        return (["--id", jid, "--uid", uid, "--gid", gid, "--chroot-base", base or ctx.tmp]
                + list(extra) + ["--", prog or ctx.yun_vmm, "--kernel", "/k"])
    # (id to check for leftovers or None, args(...) keywords, what stderr must say)
    cases = [
        ("bad-1", dict(uid="0"), "--uid 0: refusing to run the VMM as root"),
        ("bad-1", dict(gid="0"), "--gid 0: refusing to run the VMM as root"),
        ("bad-1", dict(uid="-5"), "--uid -5: not a number"),
        ("bad-1", dict(base="relative/dir"), "--chroot-base relative/dir: must be an absolute path"),
        ("bad-1", dict(base="/nonexistent-yun"),
         "--chroot-base /nonexistent-yun: No such file or directory"),
        (None, dict(jid="a/b"), "--id a/b: want 1 to 64 characters from A-Z, a-z, 0-9 and -"),
        (None, dict(jid="x" * 65), "--id %s: want 1 to 64" % ("x" * 65)),
        (None, dict(jid=".."), "--id ..: want 1 to 64"),
        ("bad-1", dict(prog="yun-vmm"), "yun-vmm: the program must be an absolute path"),
        ("bad-1", dict(extra=["--cgroup", "memory"]),
         "--cgroup memory: want <controller>.<setting>=VALUE"),
        ("bad-1", dict(extra=["--cgroup", "memory.limit_in_bytes=1/2"]), "value has a '/'"),
        ("bad-1", dict(extra=["--copy", "/etc/hostname:rel"]),
         "--copy /etc/hostname:rel: want SRC:DST"),
        ("bad-1", dict(extra=["--netns", "/nonexistent-ns"]),
         "--netns /nonexistent-ns: No such file or directory"),
        # Failures after the jail directory or the cgroup exist: nothing is left.
        ("bad-1", dict(extra=["--copy", "/nonexistent-src:/k"]),
         "/nonexistent-src: No such file or directory"),
        ("bad-1", dict(extra=["--copy", "/etc/hostname:/a/../../x"]),
         "not an absolute path inside the jail"),
        ("bad-1", dict(extra=["--cgroup", "memory.no_such_knob=1"]),
         "memory.no_such_knob: No such file or directory"),
        ("bad-1", dict(extra=["--cgroup", "memory.limit_in_bytes=lots"]),
         "memory.limit_in_bytes: write \"lots\""),
    ]
    for jid, kw, must_say in cases:
        jailer_refuses(ctx, jid, args(**kw), must_say)
    # An existing jail directory is someone else's: refused and kept.
    os.makedirs(ctx.jail_dir("taken-1"))
    jailer_refuses(ctx, None, args(jid="taken-1"), "(another jail with this id, or left over)")
    if not os.path.isdir(ctx.jail_dir("taken-1")) or cgroup_dirs("taken-1"):
        raise Failure("the existing jail directory was touched or a cgroup was left")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yun-vmm", required=True)
    ap.add_argument("--yun-jailer", required=True)
    ap.add_argument("--bzimage", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("-k", dest="only", default=None, help="run tests whose name contains this")
    opts = ap.parse_args()
    for name in ("yun_vmm", "yun_jailer", "bzimage", "elf"):
        path = getattr(opts, name)
        if not os.path.isfile(path):
            sys.exit("vmm_sandbox.py: %s: no such file" % path)
        setattr(opts, name, os.path.abspath(path))
    tests = TESTS
    if os.geteuid() != 0:
        tests = [needs_root(fn) if fn.__name__.startswith("jailer") else fn for fn in TESTS]
    return run_tests(tests, lambda: Context(opts), opts.only)


def needs_root(fn):
    """fn as a test that skips: yun-jailer's tests need root."""
    def skip(ctx):
        raise Skip("needs root")
    skip.__name__ = fn.__name__
    return skip

if __name__ == "__main__":
    sys.exit(main())
