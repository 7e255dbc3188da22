#!/usr/bin/env python3
"""vmm_cli.py - yun-vmm as a user runs it, from the outside.

Every test starts yun-vmm as a separate process with a time limit, in a fresh
temporary directory, and checks what a user sees: the exit status, stdout,
stderr, the serial console (file, socket, pty, terminal) and what is left on
disk or in the process table afterwards.

    vmm_cli.py --yun-vmm build/src/vmm/yun-vmm \\
               --bzimage build/tests/guest/yun-test-guest.bzImage \\
               --elf build/tests/guest/yun-test-guest.elf

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. -k WORD runs the tests
whose name contains WORD. Run it once per build (normal and ASan/UBSan):
a sanitizer report on stderr fails the tests that expect a quiet stderr.
Needs root for kvm_permission_denied (it runs yun-vmm as uid 65534 with
setpriv). Python 3 standard library only.
"""

import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

from harness import Failure, Skip, run_tests

# yun-vmm's documented exit statuses (yun-vmm --help).
EXIT_HOST_ERROR = 1
EXIT_GUEST_CRASH = 2
EXIT_DEBUG_PASS = (0x10 << 1) | 1  # the test guest writes 0x10 on PASS

MAX_RSS_KIB_4G_GUEST = 64 * 1024


# ---- running yun-vmm -------------------------------------------------------


class Result:
    """How one yun-vmm process ended."""

    def __init__(self, raw_status, rusage, out, err, elapsed):
        self.raw_status = raw_status
        self.signal = os.WTERMSIG(raw_status) if os.WIFSIGNALED(raw_status) else None
        self.core = os.WIFSIGNALED(raw_status) and os.WCOREDUMP(raw_status)
        self.status = os.WEXITSTATUS(raw_status) if os.WIFEXITED(raw_status) else None
        self.maxrss_kib = rusage.ru_maxrss
        self.stdout = out
        self.stderr = err
        self.elapsed = elapsed

    def describe(self):
        if self.signal is not None:
            return "killed by signal %d (%s)%s" % (
                self.signal, signal.Signals(self.signal).name,
                ", core dumped" if self.core else "")
        return "exit status %d" % self.status

    def text(self, which):
        data = self.stdout if which == "stdout" else self.stderr
        return data.decode("utf-8", "replace").replace("\r", "")

    def stderr_lines(self):
        return self.text("stderr").splitlines()


def short(data, limit=400):
    """Bytes or text for a failure message: one line, bounded."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.replace("\r", "")
    if len(data) > limit:
        data = data[:limit] + "..."
    return repr(data)


class Reader(threading.Thread):
    """Collects everything readable from one fd until EOF, EIO or stop()."""

    def __init__(self, fd, name):
        super().__init__(name=name, daemon=True)
        self.fd = fd
        self.data = bytearray()
        self.cond = threading.Condition()
        self.done = False
        self._stop_flag = False
        self.start()

    def run(self):
        try:
            while not self._stop_flag:
                ready, _, _ = select.select([self.fd], [], [], 0.05)
                if not ready:
                    continue
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: a pty whose other side is gone
                    break
                if not chunk:
                    break
                with self.cond:
                    self.data += chunk
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.done = True
                self.cond.notify_all()

    def stop(self):
        self._stop_flag = True
        self.join(2)

    def snapshot(self):
        with self.cond:
            return bytes(self.data)

    def wait_for(self, pattern, timeout, what):
        """Wait until the data matches regex `pattern` (bytes); return the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self.cond:
            while True:
                m = regex.search(bytes(self.data))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.done:
                    raise Failure("%s: no %r within %.0fs (got %s)" % (
                        what, pattern.decode(), timeout, short(bytes(self.data))))
                self.cond.wait(min(left, 0.1))


class Vmm:
    """One yun-vmm process in its own session, so it and anything it starts
    can be found (and, on a timeout, killed) by its process group."""

    def __init__(self, ctx, args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 prefix=(), binary=None):
        self.ctx = ctx
        self.cmd = list(prefix) + [binary or ctx.yun_vmm] + list(args)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=stdin, stdout=stdout,
                                     stderr=subprocess.PIPE, cwd=ctx.tmp,
                                     start_new_session=True, close_fds=True)
        self.pid = self.proc.pid
        self.reaped = False
        self.out = Reader(self.proc.stdout.fileno(), "stdout") if self.proc.stdout else None
        self.err = Reader(self.proc.stderr.fileno(), "stderr")
        ctx.processes.append(self)

    def running(self):
        return not self.reaped

    def send_signal(self, sig):
        if self.reaped:
            raise Failure("yun-vmm exited before it could be sent %s" % sig.name)
        os.kill(self.pid, sig)

    def wait_stdout(self, pattern, timeout=None):
        return self.out.wait_for(pattern, timeout or self.ctx.timeout, "stdout")

    def wait_stderr(self, pattern, timeout=None):
        return self.err.wait_for(pattern, timeout or self.ctx.timeout, "stderr")

    def exited(self):
        """True once the process has ended; it stays unreaped for wait()."""
        if self.reaped:
            return True
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None

    def _reap(self, block):
        try:
            pid, raw, rusage = os.wait4(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: nothing left to wait for
            self.reaped = True
            return None
        if pid == 0:
            return None
        self.reaped = True
        self.proc.returncode = os.waitstatus_to_exitcode(raw)  # Popen must not wait again
        return raw, rusage

    def wait(self, timeout=None):
        """Wait for the exit; on timeout kill the process group and fail."""
        timeout = timeout or self.ctx.timeout
        deadline = time.monotonic() + timeout
        got = None
        while got is None and time.monotonic() < deadline:
            got = self._reap(False)
            if got is None:
                time.sleep(0.005)
        if got is None:
            self.kill()
            raise Failure("yun-vmm still running after %.0fs (killed); stdout %s stderr %s"
                          % (timeout, short(self.out.snapshot() if self.out else b""),
                             short(self.err.snapshot())))
        elapsed = time.monotonic() - self.started
        # The pipes end with the process (or with whatever it left running).
        for r in (self.out, self.err):
            if r:
                r.join(5)
                if r.is_alive():
                    r.stop()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        raw, rusage = got
        return Result(raw, rusage, self.out.snapshot() if self.out else b"",
                      self.err.snapshot(), elapsed)

    def kill(self):
        """SIGKILL the process group we created; reap the leader."""
        if self.reaped:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap(True)
        for r in (self.out, self.err):
            if r:
                r.stop()


# ---- the per-test context --------------------------------------------------


class Context:
    """A fresh temporary directory and the processes one test started."""

    def __init__(self, opts):
        self.yun_vmm = opts.yun_vmm
        self.bzimage = opts.bzimage
        self.elf = opts.elf
        self.timeout = opts.timeout
        self.tmp = tempfile.mkdtemp(prefix="yun-e2e-")
        self.processes = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data, mode=0o644):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, mode)
        return p

    def listing(self):
        """Every path under the temporary directory, with its type."""
        found = set()
        for root, dirs, files in os.walk(self.tmp):
            for n in dirs + files:
                p = os.path.join(root, n)
                found.add((os.path.relpath(p, self.tmp), stat.S_IFMT(os.lstat(p).st_mode)))
        return found

    def start(self, args, **kw):
        return Vmm(self, args, **kw)

    def run(self, args, timeout=None, **kw):
        v = self.start(args, **kw)
        r = v.wait(timeout)
        check_no_processes_left(v.pid)
        return r

    def cleanup(self):
        try:
            for v in self.processes:
                v.kill()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def proc_stat(pid):
    """(ppid, pgrp, session) of a process, or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


def check_no_processes_left(vmm_pid):
    """No process of ours, or of yun-vmm's session, may outlive the run."""
    me = os.getpid()
    left = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        st = proc_stat(name)
        if st and (st[0] == me or st[1] == vmm_pid or st[2] == vmm_pid):
            left.append(name)
    if left:
        names = []
        for pid in left:
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    names.append("%s (%s)" % (pid, f.read().replace(b"\0", b" ").decode().strip()))
            except OSError:
                names.append(pid)
            try:  # ours to end: started by the yun-vmm this test started
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        raise Failure("processes left behind after yun-vmm %d exited: %s" % (
            vmm_pid, ", ".join(names)))


# ---- expectations ----------------------------------------------------------


def expect_status(r, status):
    if r.status != status:
        raise Failure("%s, want exit status %d; stdout %s; stderr %s" % (
            r.describe(), status, short(r.stdout), short(r.stderr)))


def expect_guest_pass(r, case):
    expect_status(r, EXIT_DEBUG_PASS)
    if ("YT PASS %s" % case) not in r.text("stdout"):
        raise Failure("no 'YT PASS %s' on stdout: %s" % (case, short(r.stdout)))


def bad_input(ctx, args, must_name, reason=None, prefix=(), binary=None, extra_paths=()):
    """yun-vmm refuses: status 1, one line on stderr naming the culprit and
    (regex `reason`, case-insensitive) why, nothing on stdout, nothing left."""
    before = ctx.listing()
    r = ctx.run(args, prefix=prefix, binary=binary)
    if r.signal is not None or (r.status is not None and r.status >= 128):
        raise Failure("crashed: %s; stderr %s" % (r.describe(), short(r.stderr)))
    expect_status(r, EXIT_HOST_ERROR)
    if r.stdout:
        raise Failure("stdout should be empty, got %s" % short(r.stdout))
    lines = r.stderr_lines()
    if len(lines) != 1:
        raise Failure("want exactly one line on stderr, got %d: %s" % (
            len(lines), short(r.stderr, 800)))
    line = lines[0]
    for needle in must_name:
        if needle not in line:
            raise Failure("stderr does not name %r: %s" % (needle, short(line)))
    if reason and not re.search(reason, line, re.IGNORECASE):
        raise Failure("stderr gives no reason matching /%s/: %s" % (reason, short(line)))
    after = ctx.listing()
    if after != before:
        raise Failure("left behind in %s: %s" % (
            ctx.tmp, sorted(p for p, _ in after - before)))
    for p in extra_paths:
        if os.path.lexists(p):
            raise Failure("left behind: %s" % p)
    return line


# ---- test inputs -----------------------------------------------------------


def elf_without_pvh_note():
    """A static ELF64 x86-64 executable (ET_EXEC, one PT_LOAD at 1 MiB, entry
    `hlt`) with no notes at all: a kernel yun-vmm cannot enter."""
    code = b"\xf4\xeb\xfd"  # hlt; jmp .-1
    phoff, ehsize, phentsize = 64, 64, 56
    offset = 0x1000
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH",
                       b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7,
                       2, 62, 1, 0x100000, phoff, 0, 0,
                       ehsize, phentsize, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, offset, 0x100000, 0x100000,
                       len(code), len(code), 0x1000)
    image = ehdr + phdr
    return image + b"\0" * (offset - len(image)) + code


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def connect_unix(path, timeout):
    """Connect to yun-vmm's console socket, retrying until it listens."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise Failure("could not connect to %s within %.0fs" % (path, timeout))
            time.sleep(0.005)


def recv_until(sock, data, pattern, timeout):
    """Receive into bytearray `data` until it matches regex `pattern`."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while True:
        m = regex.search(bytes(data))
        if m:
            return m
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                return regex.search(bytes(data))
            data += chunk


ECHO_RE = rb"YT ECHO (\d+) ([^\r\n]*)\r*\n"  # a terminal may add a \r


def expect_echo(m, text, where):
    if not m:
        raise Failure("no 'YT ECHO' line from the guest on %s" % where)
    if int(m.group(1)) != len(text) or m.group(2).decode() != text:
        raise Failure("guest echoed %r, want %r" % (
            m.group(0), "YT ECHO %d %s" % (len(text), text)))


# ---- tests: bad input --------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def missing_kernel_file(ctx):
    k = ctx.path("no-such-kernel")
    bad_input(ctx, ["--kernel", k], [k], r"no such file")


@test
def empty_kernel_file(ctx):
    k = ctx.write("empty.bzImage", b"")
    bad_input(ctx, ["--kernel", k], [k], r"empty")


@test
def truncated_bzimage(ctx):
    k = ctx.write("truncated.bzImage", read_file(ctx.bzimage)[:3000])
    bad_input(ctx, ["--kernel", k, "--cmdline", "yuntest=cmdline", "--debug-exit"], [k],
              r"truncat|too short|too small|short|incomplete|end of file|size")


@test
def text_file_as_kernel(ctx):
    k = ctx.write("notes.txt", "This is a text file, not a kernel.\n" * 100)
    bad_input(ctx, ["--kernel", k], [k], r"bzImage|ELF|format")


@test
def elf_without_pvh_note_bin_true(ctx):
    # Debian's /bin/true: an ELF64 executable (PIE) with no PVH note.
    bad_input(ctx, ["--kernel", "/bin/true"], ["/bin/true"], r"PVH")


@test
def elf_exec_without_pvh_note(ctx):
    k = ctx.write("vmlinux-no-pvh", elf_without_pvh_note())
    bad_input(ctx, ["--kernel", k], [k], r"PVH")


@test
def initrd_bigger_than_ram(ctx):
    initrd = ctx.path("big.initrd")
    with open(initrd, "wb") as f:
        f.truncate(200 << 20)  # sparse: costs no disk
    bad_input(ctx, ["--kernel", ctx.bzimage, "--initrd", initrd, "--memory", "64"], [initrd],
              r"RAM|memory|fit|too (big|large)")


@test
def cpus_zero(ctx):
    line = bad_input(ctx, ["--kernel", ctx.bzimage, "--cpus", "0"], ["cpus"])
    if not re.search(r"\b0\b", line):
        raise Failure("stderr does not name the value 0: %s" % short(line))


@test
def cpus_65(ctx):
    bad_input(ctx, ["--kernel", ctx.bzimage, "--cpus", "65"], ["cpus", "65"])


@test
def memory_4(ctx):
    line = bad_input(ctx, ["--kernel", ctx.bzimage, "--memory", "4"], ["memory"])
    if not re.search(r"\b4\b", line):
        raise Failure("stderr does not name the value 4: %s" % short(line))


@test
def memory_above_max(ctx):
    bad_input(ctx, ["--kernel", ctx.bzimage, "--memory", "2000000"], ["memory", "2000000"])


@test
def unknown_option(ctx):
    bad_input(ctx, ["--kernel", ctx.bzimage, "--frobnicate"], ["--frobnicate"], r"unknown")


@test
def config_malformed_json(ctx):
    c = ctx.write("vm.json", '{\n  "kernel": "%s",\n  "cpus": 2,,\n}\n' % ctx.bzimage)
    bad_input(ctx, ["--config", c], [c], r"line 3")


@test
def config_unknown_key(ctx):
    c = ctx.write("vm.json", json.dumps({"kernel": ctx.bzimage, "vcpu_count": 2}))
    bad_input(ctx, ["--config", c], ["vcpu_count"], r"unknown")


def disk_image(ctx, name, size):
    p = ctx.path(name)
    with open(p, "wb") as f:
        f.truncate(size)  # sparse
    return p


@test
def disk_missing_file(ctx):
    d = ctx.path("no-such-disk.img")
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=" + d], [d], r"no such file")


@test
def disk_is_directory(ctx):
    d = ctx.path("a-directory")
    os.mkdir(d)
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=%s,readonly=on" % d], [d],
              r"directory")
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=" + d], [d], r"directory")


@test
def disk_size_not_sectors(ctx):
    d = disk_image(ctx, "odd.img", 1000)
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=" + d], [d],
              r"size 1000 is not a multiple of 512")


@test
def disk_bad_option(ctx):
    d = disk_image(ctx, "disk.img", 1 << 20)
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=%s,cache=none" % d],
              [d, "cache"], r"unknown")
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=%s,readonly=maybe" % d],
              [d, "readonly"], r"on or off")
    bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=%s,id=%s" % (d, "x" * 21)],
              [d, "x" * 21], r"20 bytes")
    for rate in ("bw=-1", "iops=fast"):
        bad_input(ctx, ["--kernel", ctx.bzimage, "--disk", "path=%s,%s" % (d, rate)],
                  [d, rate], r"whole number per second")


@test
def disk_locked_by_another_vmm(ctx):
    d = disk_image(ctx, "shared.img", 1 << 20)
    first = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit",
                       "--disk", "path=" + d], stdin=subprocess.PIPE)
    try:
        first.wait_stdout(rb"YT READY")
        # As bad_input(), less its process check: the first yun-vmm is ours too.
        for spec in ("path=" + d, "path=%s,readonly=on" % d):  # readers wait for the writer
            r = ctx.start(["--kernel", ctx.bzimage, "--disk", spec]).wait()
            expect_status(r, EXIT_HOST_ERROR)
            lines = r.stderr_lines()
            if r.stdout or len(lines) != 1:
                raise Failure("want one stderr line and no stdout: %s %s" % (
                    short(r.stdout), short(r.stderr)))
            if d not in lines[0] or "locked by another process" not in lines[0]:
                raise Failure("stderr does not name the disk and the lock: %s" % short(lines[0]))
        if first.exited():
            raise Failure("the first yun-vmm stopped")
    finally:
        first.proc.stdin.close()
        first.kill()
    check_no_processes_left(first.pid)


def tap_name(tag):
    """A TAP name of this run's own (<= 15 characters)."""
    return "yte%d%s" % (os.getpid() % 100000, tag)


def tap_exists(name):
    return os.path.exists("/sys/class/net/" + name)


def need_tun():
    if os.geteuid() != 0 or not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        raise Skip("needs root and /dev/net/tun")


@test
def net_bad_input(ctx):
    t = tap_name("b")
    for spec, names, reason in (
            ("tap=%s,mac=52:54:00:12:34" % t, ["52:54:00:12:34"], r"not a unicast MAC"),
            ("tap=%s,mac=01:00:5e:00:00:01" % t, ["01:00:5e:00:00:01"], r"not a unicast MAC"),
            ("tap=%s,mac=52:54:00:12:34:zz" % t, ["52:54:00:12:34:zz"], r"not a unicast MAC"),
            ("tap=averyverylongtapname", ["averyverylongtapname"], r"1 to 15 characters"),
            ("tap=a/b", ["a/b"], r"not an interface name"),
            ("tap=%s,speed=10" % t, ["speed"], r"unknown option"),
            ("tap=%s,tx_pps=-5" % t, ["tx_pps=-5"], r"whole number per second"),
            ("tap=%s,bw=1.5G" % t, ["bw=1.5G"], r"whole number per second"),
            ("mac=52:54:00:12:34:56", ["mac=52:54:00:12:34:56"], r"no tap=NAME"),
            ("tap=", ["tap="], r"not an interface name")):
        bad_input(ctx, ["--kernel", ctx.bzimage, "--net", spec], names, reason,
                  extra_paths=["/sys/class/net/" + t])
    bad_input(ctx, ["--kernel", ctx.bzimage, "--net", "tap=" + t, "--net", "tap=" + t], [t],
              r"given twice", extra_paths=["/sys/class/net/" + t])
    c = ctx.write("vm.json", json.dumps({"kernel": ctx.bzimage,
                                         "net": [{"tap": t, "mac": "52:54:00:zz:00:01"}]}))
    bad_input(ctx, ["--config", c], [c, "52:54:00:zz:00:01"], r"MAC",
              extra_paths=["/sys/class/net/" + t])


@test
def net_second_card_fails_no_tap_left(ctx):
    need_tun()
    t = tap_name("f")
    # The first TAP is made, then "lo" is refused: the first must go again.
    bad_input(ctx, ["--kernel", ctx.bzimage, "--net", "tap=" + t, "--net", "tap=lo"],
              ["tap lo"], r"not a single-queue TAP", extra_paths=["/sys/class/net/" + t])


@test
def net_tap_created_and_removed(ctx):
    need_tun()
    t = tap_name("c")
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=cmdline", "--debug-exit",
                 "--net", "tap=%s,mac=52:54:00:12:34:56" % t])
    expect_guest_pass(r, "cmdline")
    if r.stderr:
        raise Failure("stderr not empty: %s" % short(r.stderr))
    if tap_exists(t):
        subprocess.run(["ip", "link", "del", t], capture_output=True)
        raise Failure("TAP %s the VMM created is still there after exit" % t)


@test
def net_existing_tap_stays(ctx):
    need_tun()
    t = tap_name("e")
    subprocess.run(["ip", "tuntap", "add", "dev", t, "mode", "tap"], check=True,
                   capture_output=True)
    try:
        c = ctx.write("vm.json", json.dumps({"kernel": ctx.bzimage, "cmdline": "yuntest=cmdline",
                                             "debug_exit": True, "net": [{"tap": t}]}))
        r = ctx.run(["--config", c])
        expect_guest_pass(r, "cmdline")
        if not tap_exists(t):
            raise Failure("the existing TAP %s went away with the VMM" % t)
    finally:
        subprocess.run(["ip", "link", "del", t], capture_output=True)


@test
def kvm_device_missing(ctx):
    bad_input(ctx, ["--kernel", ctx.bzimage, "--kvm-device", "/nonexistent"], ["/nonexistent"])


@test
def kvm_permission_denied(ctx):
    st = os.stat("/dev/kvm")
    if st.st_mode & 0o006:
        raise Skip("/dev/kvm is open to everyone here")
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to run as another user")
    # A world-readable copy of the VMM and kernel, so only /dev/kvm is refused.
    os.chmod(ctx.tmp, 0o755)
    vmm = ctx.path("yun-vmm")
    shutil.copy(ctx.yun_vmm, vmm)
    os.chmod(vmm, 0o755)
    k = ctx.write("kernel.bzImage", read_file(ctx.bzimage), 0o644)
    bad_input(ctx, ["--kernel", k, "--cmdline", "yuntest=cmdline", "--debug-exit"],
              ["/dev/kvm"], r"permission",
              prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
              binary=vmm)


@test
def socket_console_with_bad_kernel_leaves_no_socket(ctx):
    sock = ctx.path("console.sock")
    k = ctx.path("no-such-kernel")
    bad_input(ctx, ["--kernel", k, "--serial", "socket=" + sock], [k], r"no such file",
              extra_paths=[sock])


@test
def socket_console_with_bad_memory_leaves_no_socket(ctx):
    sock = ctx.path("console.sock")
    bad_input(ctx, ["--kernel", ctx.bzimage, "--memory", "4", "--serial", "socket=" + sock],
              ["memory"], extra_paths=[sock])


# ---- tests: good runs --------------------------------------------------------


@test
def help_text(ctx):
    r = ctx.run(["--help"])
    expect_status(r, 0)
    out = r.text("stdout")
    for flag in ("--kernel", "--serial", "--debug-exit", "--config", "Exit status"):
        if flag not in out:
            raise Failure("--help does not mention %s" % flag)
    if r.stderr:
        raise Failure("stderr not empty: %s" % short(r.stderr))


@test
def bzimage_boots(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=cmdline", "--debug-exit"])
    expect_guest_pass(r, "cmdline")
    if "YT CMDLINE yuntest=cmdline" not in r.text("stdout"):
        raise Failure("guest saw another command line: %s" % short(r.stdout))
    if r.stderr:
        raise Failure("stderr not empty: %s" % short(r.stderr))


@test
def elf_pvh_boots(ctx):
    r = ctx.run(["--kernel", ctx.elf, "--cmdline", "yuntest=cmdline", "--debug-exit"])
    expect_guest_pass(r, "cmdline")
    if "entry=pvh" not in r.text("stdout"):
        raise Failure("the ELF was not entered through PVH: %s" % short(r.stdout))


@test
def config_file_boots(ctx):
    c = ctx.write("vm.json", json.dumps({
        "kernel": ctx.bzimage, "cmdline": "yuntest=cmdline", "cpus": 2, "memory": 128,
        "debug_exit": True}, indent=2))
    r = ctx.run(["--config", c])
    expect_guest_pass(r, "cmdline")


@test
def flags_after_config_override_it(ctx):
    c = ctx.write("vm.json", json.dumps({
        "kernel": ctx.bzimage, "cmdline": "yuntest=poweroff", "memory": "size=128M",
        "debug_exit": True}))
    r = ctx.run(["--config", c, "--cmdline", "yuntest=cmdline"])
    expect_guest_pass(r, "cmdline")


@test
def serial_file(ctx):
    out = ctx.path("console.log")
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=cmdline", "--debug-exit",
                 "--serial", "file=" + out])
    expect_status(r, EXIT_DEBUG_PASS)
    if r.stdout:
        raise Failure("stdout should be empty with file=, got %s" % short(r.stdout))
    if not os.path.exists(out):
        raise Failure("%s was not created" % out)
    log = read_file(out).decode("utf-8", "replace")
    for want in ("YT BOOT", "YT CMDLINE yuntest=cmdline", "YT PASS cmdline"):
        if want not in log:
            raise Failure("%s lacks %r: %s" % (out, want, short(log)))


@test
def serial_socket(ctx):
    sock_path = ctx.path("console.sock")
    v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit",
                   "--serial", "socket=" + sock_path])
    s = connect_unix(sock_path, ctx.timeout)
    data = bytearray()
    text = "hello through the socket"
    with s:
        # "YT READY" is missed if the guest printed it before we connected
        # (output without a client is dropped); it then already waits for input.
        recv_until(s, data, rb"YT READY", 3)
        s.sendall(text.encode() + b"\n")
        expect_echo(recv_until(s, data, ECHO_RE, ctx.timeout), text, "the socket")
        if not recv_until(s, data, rb"YT PASS serial", ctx.timeout):
            raise Failure("no 'YT PASS serial' on the socket: %s" % short(bytes(data)))
    r = v.wait()
    check_no_processes_left(v.pid)
    expect_status(r, EXIT_DEBUG_PASS)
    if r.stdout:
        raise Failure("stdout should be empty with socket=, got %s" % short(r.stdout))
    if os.path.lexists(sock_path):
        raise Failure("socket file %s left behind" % sock_path)


@test
def serial_pty(ctx):
    v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit",
                   "--serial", "pty"])
    path = v.wait_stderr(rb"/dev/pts/\d+").group(0).decode()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        attrs = termios.tcgetattr(fd)
        if attrs[3] & (termios.ICANON | termios.ECHO):
            raise Failure("%s is not in raw mode (lflag 0x%x)" % (path, attrs[3]))
        reader = Reader(fd, "pty")
        try:
            reader.wait_for(rb"YT READY", ctx.timeout, path)
            text = "hello through the pty"
            os.write(fd, text.encode() + b"\n")
            expect_echo(reader.wait_for(ECHO_RE, ctx.timeout, path), text, path)
            reader.wait_for(rb"YT PASS serial", ctx.timeout, path)
        finally:
            reader.stop()
    finally:
        os.close(fd)
    r = v.wait()
    check_no_processes_left(v.pid)
    expect_status(r, EXIT_DEBUG_PASS)
    if r.stdout:
        raise Failure("stdout should be empty with pty, got %s" % short(r.stdout))
    lines = r.stderr_lines()
    if len(lines) != 1 or path not in lines[0]:
        raise Failure("stderr should be the one line naming %s, got %s" % (path, short(r.stderr)))


@test
def serial_off(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=cmdline", "--debug-exit",
                 "--serial", "off"])
    expect_status(r, EXIT_DEBUG_PASS)
    if r.stdout or r.stderr:
        raise Failure("want no output, got stdout %s stderr %s" % (short(r.stdout),
                                                                   short(r.stderr)))


@test
def guest_poweroff(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=poweroff", "--debug-exit"])
    expect_status(r, 0)
    if "YT POWEROFF" not in r.text("stdout"):
        raise Failure("guest did not reach its power-off: %s" % short(r.stdout))


@test
def guest_reset(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=reset", "--debug-exit"])
    expect_status(r, 0)
    out = r.text("stdout")
    if "YT RESET i8042" not in out:
        raise Failure("guest did not reach its reset: %s" % short(out))
    if out.count("YT BOOT") != 1:
        raise Failure("without --reboot the guest must boot once: %s" % short(out))


@test
def reboot_then_sigterm(ctx):
    before = ctx.listing()
    v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=reset", "--debug-exit",
                   "--reboot"])
    v.wait_stdout(rb"(?s)YT BOOT.*YT BOOT")
    v.send_signal(signal.SIGTERM)
    r = v.wait()
    check_no_processes_left(v.pid)
    expect_status(r, 128 + signal.SIGTERM)
    boots = r.text("stdout").count("YT BOOT")
    if boots < 2:
        raise Failure("guest booted %d times" % boots)
    if ctx.listing() != before:
        raise Failure("left behind: %s" % sorted(p for p, _ in ctx.listing() - before))


def stop_waiting_guest(ctx, sig):
    v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit"],
                  stdin=subprocess.PIPE)
    try:
        v.wait_stdout(rb"YT READY")
        sent = time.monotonic()
        v.send_signal(sig)
        r = v.wait()
        took = time.monotonic() - sent
    finally:
        v.proc.stdin.close()
    check_no_processes_left(v.pid)
    expect_status(r, 128 + sig)
    if "YT PASS" in r.text("stdout") or "YT FAIL" in r.text("stdout"):
        raise Failure("guest finished on its own instead of being stopped")
    if took > 2:
        raise Failure("took %.1fs to stop after %s" % (took, sig.name))


@test
def sigterm_long_running_guest(ctx):
    stop_waiting_guest(ctx, signal.SIGTERM)


@test
def sigint_long_running_guest(ctx):
    stop_waiting_guest(ctx, signal.SIGINT)


@test
def sighup_long_running_guest(ctx):
    stop_waiting_guest(ctx, signal.SIGHUP)


def wait_for_path(v, path, timeout, poll=0.001):
    """Poll until `path` exists; fail if yun-vmm exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not os.path.lexists(path):
        if v.exited():
            raise Failure("yun-vmm exited before %s appeared" % path)
        if time.monotonic() > deadline:
            raise Failure("%s did not appear within %.0fs" % (path, timeout))
        time.sleep(poll)


@test
def sigterm_during_start_leaves_no_socket(ctx):
    # A 256 MiB (sparse) initrd takes a second or more to load: a signal
    # 50 ms after the socket appears lands while the VM is being built.
    initrd = ctx.path("slow.initrd")
    with open(initrd, "wb") as f:
        f.truncate(256 << 20)
    sock_path = ctx.path("console.sock")
    before = ctx.listing()
    v = ctx.start(["--kernel", ctx.bzimage, "--initrd", initrd, "--memory", "512",
                   "--cmdline", "yuntest=serial", "--debug-exit",
                   "--serial", "socket=" + sock_path])
    wait_for_path(v, sock_path, ctx.timeout)
    time.sleep(0.05)
    if v.exited():
        raise Failure("yun-vmm finished before the signal: the initrd loaded too fast")
    v.send_signal(signal.SIGTERM)
    r = v.wait()
    check_no_processes_left(v.pid)
    expect_status(r, 128 + signal.SIGTERM)
    if ctx.listing() != before:
        raise Failure("left behind: %s" % sorted(p for p, _ in ctx.listing() - before))


SOCKET_RACE_ROUNDS = 50


@test
def sigterm_as_socket_appears_leaves_no_socket(ctx):
    # The signal as soon as the socket file exists: it may land while the
    # console is still being opened. Timing-dependent, so many rounds; each
    # round's socket must be gone after the exit.
    sock_path = ctx.path("console.sock")
    left = 0
    for _ in range(SOCKET_RACE_ROUNDS):
        v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit",
                       "--serial", "socket=" + sock_path])
        wait_for_path(v, sock_path, ctx.timeout, poll=0.0002)
        v.send_signal(signal.SIGTERM)
        r = v.wait()
        check_no_processes_left(v.pid)
        expect_status(r, 128 + signal.SIGTERM)
        if os.path.lexists(sock_path):
            left += 1
            os.unlink(sock_path)
    if left:
        raise Failure("socket file left behind in %d of %d rounds (SIGTERM right after it "
                      "appeared)" % (left, SOCKET_RACE_ROUNDS))


@test
def triple_fault(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=triplefault", "--debug-exit"])
    expect_status(r, EXIT_GUEST_CRASH)
    lines = r.stderr_lines()
    if not lines or "triple fault" not in lines[0].lower():
        raise Failure("stderr's first line does not say 'triple fault': %s" % short(r.stderr))
    if not any("RIP=" in l for l in lines[1:]):
        raise Failure("no register dump (RIP=) after the first line: %s" % short(r.stderr))
    if "YT TRIPLEFAULT" not in r.text("stdout"):
        raise Failure("guest did not reach the fault: %s" % short(r.stdout))


# ---- tests: stdio on a terminal ------------------------------------------------


def on_terminal(ctx, act):
    """Run the serial case with stdin/stdout a pty; `act(vmm, master, reader)`
    drives it; returns (result, termios before, during, after)."""
    master, slave = os.openpty()
    reader = None
    try:
        before = termios.tcgetattr(slave)
        v = ctx.start(["--kernel", ctx.bzimage, "--cmdline", "yuntest=serial", "--debug-exit"],
                      stdin=slave, stdout=slave)
        reader = Reader(master, "terminal")
        reader.wait_for(rb"YT READY", ctx.timeout, "terminal")
        during = termios.tcgetattr(slave)
        act(v, master, reader)
        r = v.wait()
        check_no_processes_left(v.pid)
        after = termios.tcgetattr(slave)
        time.sleep(0.05)  # the last output on its way through the pty
        r.stdout = reader.snapshot()
        return r, before, during, after
    finally:
        if reader:
            reader.stop()
        os.close(master)
        os.close(slave)


def expect_raw_then_restored(before, during, after):
    if during[3] & (termios.ICANON | termios.ECHO):
        raise Failure("terminal not in raw mode while yun-vmm runs (lflag 0x%x)" % during[3])
    if after != before:
        names = ["iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed", "cc"]
        diff = [n for n, a, b in zip(names, before, after) if a != b]
        raise Failure("terminal not restored: %s differ" % ", ".join(diff))


@test
def terminal_echo_and_restore(ctx):
    text = "hello terminal"

    def act(v, master, reader):
        os.write(master, text.encode() + b"\r")
        expect_echo(reader.wait_for(ECHO_RE, ctx.timeout, "terminal"), text, "the terminal")

    r, before, during, after = on_terminal(ctx, act)
    expect_status(r, EXIT_DEBUG_PASS)
    expect_raw_then_restored(before, during, after)


@test
def terminal_ctrl_a_x_quits(ctx):
    def act(v, master, reader):
        os.write(master, b"\x01x")

    r, before, during, after = on_terminal(ctx, act)
    expect_status(r, 0)
    expect_raw_then_restored(before, during, after)


@test
def terminal_restored_after_sigterm(ctx):
    def act(v, master, reader):
        v.send_signal(signal.SIGTERM)

    r, before, during, after = on_terminal(ctx, act)
    expect_status(r, 128 + signal.SIGTERM)
    expect_raw_then_restored(before, during, after)


# ---- tests: memory -------------------------------------------------------------


@test
def big_guest_small_rss(ctx):
    r = ctx.run(["--kernel", ctx.bzimage, "--cmdline", "yuntest=cmdline", "--debug-exit",
                 "--memory", "4096"])
    expect_guest_pass(r, "cmdline")
    if r.maxrss_kib >= MAX_RSS_KIB_4G_GUEST:
        raise Failure("peak RSS %d KiB for a 4096 MiB guest, want < %d KiB" % (
            r.maxrss_kib, MAX_RSS_KIB_4G_GUEST))
    # ru_maxrss also counts the forked copy of this Python process before the
    # exec, so the figure is an upper bound; show that floor next to it.
    p = subprocess.Popen(["/bin/true"], start_new_session=True, close_fds=True)
    floor = os.wait4(p.pid, 0)[2].ru_maxrss
    p.returncode = 0
    return "peak RSS %d KiB (floor from this harness's fork: %d KiB)" % (r.maxrss_kib, floor)


# ---- main ----------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yun-vmm", required=True, help="the yun-vmm binary to test")
    ap.add_argument("--bzimage", required=True, help="yun-test-guest.bzImage")
    ap.add_argument("--elf", required=True, help="yun-test-guest.elf (PVH)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per yun-vmm run")
    ap.add_argument("-k", dest="only", default=None, help="run tests whose name contains this")
    opts = ap.parse_args()
    for p in (opts.yun_vmm, opts.bzimage, opts.elf):
        if not os.path.isfile(p):
            sys.exit("vmm_cli.py: %s: no such file" % p)
    opts.yun_vmm = os.path.abspath(opts.yun_vmm)
    opts.bzimage = os.path.abspath(opts.bzimage)
    opts.elf = os.path.abspath(opts.elf)

    return run_tests(TESTS, lambda: Context(opts), opts.only)


if __name__ == "__main__":
    sys.exit(main())
