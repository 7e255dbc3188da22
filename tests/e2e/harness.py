"""harness.py - what the end-to-end tests share (python3 standard library).

Failure and Skip are the verdicts a test raises; run_tests runs a list of
test functions and prints the verdicts; UnixHTTPConnection is
http.client over a Unix socket (yund's API); PtyClient runs a program with a
pty as its terminal, the way a person at a terminal would (attach, console,
interactive shells). sh runs a command and fails the test on a non-zero
status; HostPair is two network namespaces joined by a veth pair, the
"hosts" of the migration tests.
"""

import http.client
import os
import pty
import re
import select
import secrets
import signal
import socket
import subprocess
import time


class Failure(Exception):
    """The test saw something a user would call wrong."""


class Skip(Exception):
    """The test cannot say anything on this machine."""


def run_tests(tests, make_context, only=None):
    """Run each fn(ctx) in `tests` with a fresh make_context() (cleaned up with
    ctx.cleanup()); print "ok - NAME (SECSs)", "ok - NAME # SKIP why" or
    "not ok - NAME: REASON", then "N passed, N failed". `only`: run the tests
    whose name contains it. Returns the exit status: 1 if any failed."""
    passed = failed = 0
    for fn in tests:
        name = fn.__name__
        if only and only not in name:
            continue
        ctx = make_context()
        t0 = time.monotonic()
        try:
            note = fn(ctx)
            print("ok - %s (%.2fs)%s" % (name, time.monotonic() - t0,
                                         " # %s" % note if note else ""), flush=True)
            passed += 1
        except Skip as e:
            print("ok - %s # SKIP %s" % (name, e), flush=True)
            passed += 1
        except Failure as e:
            print("not ok - %s: %s" % (name, e), flush=True)
            failed += 1
        except Exception as e:  # a bug in the test itself is a failure too
            print("not ok - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            failed += 1
        finally:
            ctx.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def sh(*argv, check=True):
    """Run argv; with check, a non-zero status is a Failure naming the command."""
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Failure("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HostPair:
    """Two network namespaces ns_a and ns_b (named from `tag` and a random
    suffix) joined by a veth pair link_a <-> link_b: two "hosts" on this
    machine. up() gives each end its addresses, down() removes both."""

    def __init__(self, tag):
        base = "%s-%s" % (tag, secrets.token_hex(3))
        self.ns_a, self.ns_b = base + "-a", base + "-b"
        self.link_a, self.link_b = base + "a", base + "b"

    def ends(self):
        return ((self.ns_a, self.link_a), (self.ns_b, self.link_b))

    def up(self, addrs_a, addrs_b):
        """addrs_*: CIDR strings for each end (IPv6 ones skip duplicate detection)."""
        sh("ip", "netns", "add", self.ns_a)
        sh("ip", "netns", "add", self.ns_b)
        sh("ip", "link", "add", self.link_a, "netns", self.ns_a, "type", "veth", "peer",
           "name", self.link_b, "netns", self.ns_b)
        for (ns, link), addrs in zip(self.ends(), (addrs_a, addrs_b)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for a in addrs:
                sh("ip", "-n", ns, "addr", "add", a, "dev", link, *(["nodad"] if ":" in a else []))
            sh("ip", "-n", ns, "link", "set", link, "up")

    def down(self):
        for ns in (self.ns_a, self.ns_b):
            sh("ip", "netns", "del", ns, check=False)

    def slow(self, rate, burst, latency):
        """Limit both ends to `rate` (tc tbf), to make a transfer take time."""
        for ns, link in self.ends():
            sh("tc", "-n", ns, "qdisc", "replace", "dev", link, "root", "tbf", "rate", rate,
               "burst", burst, "latency", latency)

    def fast(self):
        for ns, link in self.ends():
            sh("tc", "-n", ns, "qdisc", "del", "dev", link, "root", check=False)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket."""

    def __init__(self, path, timeout=15):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class PtyClient:
    """argv with a pty as its terminal; env entries are added to its environment.
    `timeout` is the default wait of expect() and wait()."""

    def __init__(self, argv, env=None, timeout=15):
        self.timeout = timeout
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.environ.update(env or {})
            os.execv(argv[0], argv)
        self.buf = b""

    def send(self, data):
        os.write(self.fd, data)

    def expect(self, pattern, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while not rx.search(self.buf):
            left = deadline - time.time()
            if left <= 0:
                raise Failure("pty: no %r within %ss; got %r" % (pattern, timeout,
                                                                  self.buf[-300:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise Failure("pty: EOF before %r; got %r" % (pattern, self.buf[-300:]))
                self.buf += data
        return self.buf

    def wait(self, timeout=None):
        """The exit code, after reading what is left on the pty."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                try:
                    while True:
                        r, _, _ = select.select([self.fd], [], [], 0)
                        if not r:
                            break
                        data = os.read(self.fd, 4096)
                        if not data:
                            break
                        self.buf += data
                except OSError:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
            try:
                r, _, _ = select.select([self.fd], [], [], 0.05)
                if r:
                    self.buf += os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise Failure("pty client still running after %ss; got %r" % (timeout,
                                                                     self.buf[-300:]))

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)
        return self.wait()
