#!/usr/bin/env python3
"""vmm_api.py - yun-vmm's control API (--api-sock), from the outside.

Every test starts yun-vmm with --api-sock in a fresh temporary directory and
drives it the way a Firecracker client would: HTTP/1.1 + JSON on the Unix
socket. It checks what a user sees: status codes, fault messages that name
the field, the guest's serial console (the test guest's "YT" lines), the
exit status, and that the socket file is gone afterwards.

    vmm_api.py --yun-vmm build/src/vmm/yun-vmm \\
               --bzimage build/tests/guest/yun-test-guest.bzImage

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. -k WORD runs the tests
whose name contains WORD. Python 3 standard library, plus python3-yaml for
the test that holds the served routes against docs/api/vmm.yaml.
"""

import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from harness import Failure, Skip, UnixHTTPConnection, run_tests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENAPI = os.path.join(ROOT, "docs", "api", "vmm.yaml")
ROUTES_C = os.path.join(ROOT, "src", "vmm", "api", "routes.c")

EXIT_HARD_STOP = 4     # yun-vmm --help: a graceful shutdown passed its deadline
BODY_MAX = 64 * 1024   # server.h API_BODY_MAX

# Firecracker's request bodies (its swagger, firecracker.yaml, v1.7 era) for the
# routes yun-vmm shares with it: the JSON field names a Firecracker client sends.
FIRECRACKER_FIELDS = {
    ("PUT", "/machine-config"): ["vcpu_count", "mem_size_mib", "smt", "track_dirty_pages",
                                 "cpu_template", "huge_pages"],
    ("PATCH", "/machine-config"): ["vcpu_count", "mem_size_mib", "smt", "track_dirty_pages",
                                   "cpu_template", "huge_pages"],
    ("PUT", "/boot-source"): ["kernel_image_path", "boot_args", "initrd_path"],
    ("PUT", "/drives/{drive_id}"): ["drive_id", "path_on_host", "is_root_device",
                                    "is_read_only", "partuuid", "cache_type", "io_engine",
                                    "rate_limiter", "socket"],
    ("PATCH", "/drives/{drive_id}"): ["drive_id", "path_on_host", "rate_limiter"],
    ("PUT", "/network-interfaces/{iface_id}"): ["iface_id", "host_dev_name", "guest_mac",
                                                "rx_rate_limiter", "tx_rate_limiter"],
    ("PATCH", "/network-interfaces/{iface_id}"): ["iface_id", "rx_rate_limiter",
                                                  "tx_rate_limiter"],
    ("PUT", "/vsock"): ["guest_cid", "uds_path", "vsock_id"],
    ("PUT", "/balloon"): ["amount_mib", "deflate_on_oom", "stats_polling_interval_s"],
    ("PATCH", "/balloon"): ["amount_mib"],
    ("PATCH", "/balloon/statistics"): ["stats_polling_interval_s"],
    ("PUT", "/actions"): ["action_type"],
    ("PATCH", "/vm"): ["state"],
    ("PUT", "/snapshot/create"): ["snapshot_type", "snapshot_path", "mem_file_path"],
    ("PUT", "/snapshot/load"): ["snapshot_path", "mem_backend", "mem_file_path",
                                "enable_diff_snapshots", "resume_vm"],
    ("PUT", "/metrics"): ["metrics_path"],
}
# Fields yun-vmm adds to Firecracker's bodies (docs/api/vmm.yaml says so).
YUN_EXTRA_FIELDS = {("PUT", "/actions"): ["timeout_ms"]}
# Nested Firecracker objects: RateLimiter, TokenBucket, MemoryBackend.
FIRECRACKER_NESTED = {
    "RateLimiter": ["bandwidth", "ops"],
    "TokenBucket": ["size", "one_time_burst", "refill_time"],
    "MemoryBackend": ["backend_path", "backend_type"],
}


def short(data, limit=400):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.replace("\r", "")
    return repr(data if len(data) <= limit else data[:limit] + "...")


class Reader(threading.Thread):
    """Everything readable from one pipe, until EOF."""

    def __init__(self, f):
        super().__init__(daemon=True)
        self.f = f
        self.data = bytearray()
        self.lock = threading.Lock()
        self.start()

    def run(self):
        fd = self.f.fileno()
        while True:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def text(self):
        with self.lock:
            return bytes(self.data).decode("utf-8", "replace").replace("\r", "")


class Vmm:
    """One yun-vmm with --api-sock; the serial console is its stdout."""

    def __init__(self, ctx, args):
        self.ctx = ctx
        self.sock = ctx.path("api.sock")
        cmd = [ctx.opts.yun_vmm, "--api-sock", self.sock, "--serial", "stdio"] + list(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=ctx.tmp,
                                     start_new_session=True)
        self.out = Reader(self.proc.stdout)
        self.err = Reader(self.proc.stderr)
        ctx.vmms.append(self)
        deadline = time.monotonic() + ctx.opts.timeout
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("no API socket %s; exit %s, stderr %s" % (
                    self.sock, self.proc.poll(), short(self.err.text())))
            time.sleep(0.01)

    def api(self, method, path, body=None, raw=None):
        """(status, parsed JSON or None) for one request."""
        conn = UnixHTTPConnection(self.sock, timeout=self.ctx.opts.timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            raise Failure("%s %s: %d with a body that is not JSON: %s" % (
                method, path, resp.status, short(text)))
        return resp.status, parsed

    def ok(self, method, path, body=None, want=204):
        status, reply = self.api(method, path, body)
        if status != want:
            raise Failure("%s %s %s: %d %s, want %d" % (method, path, short(json.dumps(body)),
                                                        status, reply, want))
        return reply

    def state(self):
        return self.ok("GET", "/", want=200)["state"]

    def wait_serial(self, pattern, timeout=None):
        deadline = time.monotonic() + (timeout or self.ctx.opts.timeout)
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out.text())
            if m:
                return m
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Failure("serial: no %r; got %s; stderr %s" % (
                    pattern, short(self.out.text()[-300:]), short(self.err.text())))
            time.sleep(0.02)

    def counts(self):
        """The n of every complete YT COUNT line so far."""
        return [int(n) for n in re.findall(r"YT COUNT (\d+) [^\n]*\n", self.out.text())]

    def wait_counts(self, more, timeout=None):
        """Wait until `more` COUNT lines beyond the present ones have come."""
        start = len(self.counts())
        deadline = time.monotonic() + (timeout or self.ctx.opts.timeout)
        while len(self.counts()) < start + more:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise Failure("the counter guest stopped counting at %d lines; serial %s; "
                              "stderr %s" % (len(self.counts()), short(self.out.text()[-200:]),
                                             short(self.err.text())))
            time.sleep(0.02)

    def wait_exit(self, timeout=None):
        try:
            return self.proc.wait(timeout or self.ctx.opts.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("yun-vmm still running after %ss; stderr %s" % (
                timeout or self.ctx.opts.timeout, short(self.err.text())))

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def check_gone(self):
        if os.path.exists(self.sock):
            raise Failure("the API socket %s is still there after yun-vmm exited" % self.sock)
        if "Sanitizer" in self.err.text() or "runtime error:" in self.err.text():
            raise Failure("sanitizer report: %s" % short(self.err.text(), 1500))


class Context:
    def __init__(self, opts):
        self.opts = opts
        self.tmp = tempfile.mkdtemp(prefix="yun-api-")
        self.vmms = []

    def path(self, name):
        return os.path.join(self.tmp, name)

    def cleanup(self):
        for v in self.vmms:
            v.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def boot_via_api(ctx, case, extra_args=(), before_start=None, memory=64):
    """A yun-vmm configured and started entirely through the API."""
    v = Vmm(ctx, extra_args)
    if v.state() != "Not started":
        raise Failure("GET / before the start: state %r" % v.state())
    v.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": memory})
    v.ok("PUT", "/boot-source", {"kernel_image_path": ctx.opts.bzimage,
                                 "boot_args": "yuntest=" + case})
    if before_start:
        before_start(v)
    v.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    return v


def counter_on_cmdline(ctx, extra=()):
    """The counter guest from the command line, with the API beside it."""
    v = Vmm(ctx, ["--kernel", ctx.opts.bzimage, "--cmdline", "yuntest=counter",
                  "--memory", "64"] + list(extra))
    v.wait_counts(2)
    return v


def expect_fault(v, method, path, body, status, *words, raw=None):
    got, reply = v.api(method, path, body, raw=raw)
    msg = (reply or {}).get("fault_message", "")
    if got != status or not msg or any(w not in msg for w in words):
        raise Failure("%s %s %s: %d %r, want %d with a fault_message naming %s" % (
            method, path, short(raw if raw is not None else json.dumps(body), 80), got, reply,
            status, ", ".join(repr(w) for w in words)))
    return msg


# ---- the tests ----------------------------------------------------------------


def boot_entirely_through_api(ctx):
    """machine-config, boot-source, InstanceStart: the test guest says hello."""
    metrics = ctx.path("metrics.json")
    v = boot_via_api(ctx, "hello",
                     before_start=lambda v: v.ok("PUT", "/metrics", {"metrics_path": metrics}))
    v.wait_serial(r"YT PASS hello")
    status = v.wait_exit()
    if status != 0:
        raise Failure("exit status %d, want 0 (the guest powers off); stderr %s" % (
            status, short(v.err.text())))
    v.check_gone()
    if "YT HELLO memory: " not in v.out.text():
        raise Failure("no memory line from the guest: %s" % short(v.out.text()))


def kernel_on_cmdline_and_api(ctx):
    """--kernel starts at once; the API answers GET / and GET /vm/config meanwhile."""
    v = counter_on_cmdline(ctx)
    root = v.ok("GET", "/", want=200)
    if root.get("state") != "Running" or root.get("app_name") != "yun-vmm" or \
            "vmm_version" not in root or "id" not in root:
        raise Failure("GET /: %r" % root)
    cfg = v.ok("GET", "/vm/config", want=200)
    if cfg["machine-config"]["mem_size_mib"] != 64 or \
            cfg["boot-source"]["boot_args"] != "yuntest=counter":
        raise Failure("GET /vm/config: %r" % cfg)
    v.proc.send_signal(signal.SIGTERM)
    status = v.wait_exit()
    if status != 128 + signal.SIGTERM:
        raise Failure("SIGTERM: exit status %d, want %d" % (status, 128 + signal.SIGTERM))
    v.check_gone()


def signal_before_start_removes_socket(ctx):
    v = Vmm(ctx, [])
    v.proc.send_signal(signal.SIGTERM)
    status = v.wait_exit()
    if status != 128 + signal.SIGTERM:
        raise Failure("exit status %d, want %d" % (status, 128 + signal.SIGTERM))
    v.check_gone()


def pause_and_resume(ctx):
    v = counter_on_cmdline(ctx)
    v.ok("PATCH", "/vm", {"state": "Paused"})
    if v.state() != "Paused":
        raise Failure("GET / after Paused: %r" % v.state())
    time.sleep(0.05)
    before = len(v.counts())
    time.sleep(0.3)
    after = len(v.counts())
    if after != before:
        raise Failure("%d YT COUNT lines while paused" % (after - before))
    expect_fault(v, "PATCH", "/vm", {"state": "Paused"}, 400, "already paused")
    v.ok("PATCH", "/vm", {"state": "Resumed"})
    if v.state() != "Running":
        raise Failure("GET / after Resumed: %r" % v.state())
    v.wait_counts(2, timeout=10)
    expect_fault(v, "PATCH", "/vm", {"state": "Resumed"}, 400, "Resumed", "not paused")
    v.ok("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 0})
    v.wait_exit()
    v.check_gone()


BAD_RUNNING = [
    # (method, path, body or raw text, status, words the fault_message must hold)
    ("PUT", "/machine-config", '{"vcpu_count": 1', 400, ["line 1", "column"]),
    ("PUT", "/machine-config", '[1, 2]', 400, ["JSON object"]),
    ("PUT", "/machine-config", '', 400, ["empty"]),
    ("PUT", "/machine-config", {"vcpus": 2, "mem_size_mib": 64}, 400,
     ["unknown field", "vcpus", "PUT /machine-config"]),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, 400,
     ["not allowed after the VM started"]),
    ("PUT", "/boot-source", {"kernel_image_path": "/k"}, 400,
     ["PUT /boot-source", "not allowed after the VM started"]),
    ("PATCH", "/balloon", {"amount_mib": "8"}, 400, ["amount_mib", "integer", "string"]),
    ("PATCH", "/balloon", {"amount_mib": -1}, 400, ["amount_mib", "negative"]),
    ("PATCH", "/balloon", {"amount_mib": 100000}, 400, ["amount_mib 100000", "64 MiB"]),
    ("PATCH", "/balloon", {"amount_mib": 1.5}, 400, ["amount_mib", "integer"]),
    ("PATCH", "/balloon", {}, 400, ["amount_mib", "required"]),
    ("PATCH", "/vm", {"state": "Resumed"}, 400, ["Resumed", "not paused"]),
    ("PATCH", "/vm", {"state": "Frozen"}, 400, ["state", "Frozen"]),
    ("PATCH", "/vm", {"state": 1}, 400, ["state", "string"]),
    ("PUT", "/actions", {"action_type": "InstanceStart"}, 400,
     ["not allowed after the VM started"]),
    ("PUT", "/actions", {"action_type": "Reboot"}, 400, ["action_type", "Reboot"]),
    ("PUT", "/actions", {"action_type": "InstanceStart", "timeout_ms": 5}, 400,
     ["timeout_ms", "Shutdown"]),
    ("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 10 ** 10}, 400,
     ["timeout_ms 10000000000"]),
    ("PATCH", "/drives/a", {"drive_id": "b"}, 400, ["drive_id", "differs"]),
    ("PATCH", "/drives/nodisk", {"drive_id": "nodisk", "path_on_host": "/x"}, 400,
     ["nodisk", "no such drive"]),
    ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth1"}, 400, ["iface_id", "differs"]),
    ("PATCH", "/drives/a", {"drive_id": "a", "rate_limiter": {"bandwidth": {"size": 1}}}, 400,
     ["rate_limiter.bandwidth.refill_time", "required"]),
    ("PATCH", "/drives/a", {"drive_id": "a", "rate_limiter": {"bw": {}}}, 400,
     ["unknown field", "rate_limiter.bw"]),
    ("PUT", "/snapshot/create", {"snapshot_path": "/s", "mem_file_path": "/m"}, 400,
     ["paused"]),
    ("PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m"}, 400,
     ["not allowed after the VM started"]),
    ("PUT", "/metrics", {"metrics_path": "/tmp/x"}, 400, ["not allowed after the VM started"]),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/v"}, 400, ["not allowed"]),
    ("GET", "/nosuch", None, 404, ["/nosuch"]),
    ("DELETE", "/machine-config", None, 405, ["DELETE", "GET, PUT, PATCH"]),
    ("PUT", "/", {}, 405, ["PUT"]),
]


def bad_requests_leave_the_vm_alone(ctx):
    v = counter_on_cmdline(ctx, ["--balloon"])
    config = v.ok("GET", "/vm/config", want=200)
    for method, path, body, status, words in BAD_RUNNING:
        raw = body if isinstance(body, str) else None
        expect_fault(v, method, path, None if raw is not None else body, status, *words,
                     raw=raw)
    # The body cap, with and without Content-Length.
    big = json.dumps({"boot_args": "x" * BODY_MAX})
    expect_fault(v, "PUT", "/boot-source", None, 413, str(BODY_MAX), raw=big)
    if v.ok("GET", "/vm/config", want=200) != config:
        raise Failure("the configuration changed under bad requests")
    if v.state() != "Running":
        raise Failure("state %r after bad requests" % v.state())
    v.wait_counts(2, timeout=10)


def bad_requests_before_start(ctx):
    v = Vmm(ctx, [])
    expect_fault(v, "PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 64}, 400,
                 "vcpu_count 0", "must be 1 to")
    expect_fault(v, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1}, 400,
                 "mem_size_mib 1")
    expect_fault(v, "PUT", "/machine-config", {"vcpu_count": 1}, 400, "mem_size_mib",
                 "required")
    expect_fault(v, "PATCH", "/machine-config", {"smt": True}, 400, "smt")
    expect_fault(v, "PATCH", "/machine-config", {"cpu_template": "T2"}, 400, "cpu_template")
    expect_fault(v, "PUT", "/actions", {"action_type": "InstanceStart"}, 400, "boot-source")
    expect_fault(v, "PATCH", "/vm", {"state": "Paused"}, 400, "before the VM started")
    expect_fault(v, "GET", "/balloon", None, 400, "no balloon")
    expect_fault(v, "PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": True}, 400,
                 "deflate_on_oom")
    expect_fault(v, "PUT", "/drives/d", {"drive_id": "d", "is_root_device": False}, 400,
                 "path_on_host", "required")
    expect_fault(v, "PUT", "/drives/d", {"drive_id": "d", "is_root_device": False,
                                         "path_on_host": "/x", "cache_type": "Magic"},
                 400, "cache_type", "Magic")
    expect_fault(v, "PUT", "/network-interfaces/n", {"iface_id": "n",
                                                     "host_dev_name": "a/b"}, 400,
                 "host_dev_name")
    expect_fault(v, "PUT", "/network-interfaces/n", {"iface_id": "n", "host_dev_name": "t0",
                                                     "guest_mac": "01:00:00:00:00:01"},
                 400, "guest_mac")
    expect_fault(v, "PUT", "/vsock", {"guest_cid": 2, "uds_path": "/v"}, 400, "guest_cid 2")
    # A snapshot that cannot be loaded (or no snapshot support yet): the state stays.
    status, reply = v.api("PUT", "/snapshot/load", {"snapshot_path": ctx.path("nostate"),
                                                    "mem_backend": {"backend_type": "File",
                                                                    "backend_path": "/nomem"}})
    if status not in (400, 501) or "PUT /snapshot/load" not in reply.get("fault_message", ""):
        raise Failure("PUT /snapshot/load of missing files: %d %r" % (status, reply))
    expect_fault(v, "PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m",
                                              "mem_backend": {"backend_type": "File",
                                                              "backend_path": "/m"}},
                 400, "exactly one")
    expect_fault(v, "PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_backend": {
        "backend_type": "Uffd", "backend_path": "/u"}}, 400, "mem_backend.backend_type")
    if v.state() != "Not started":
        raise Failure("state %r after a failed snapshot load" % v.state())
    # A kernel that does not exist: InstanceStart says so, the state stays.
    v.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    v.ok("PUT", "/boot-source", {"kernel_image_path": ctx.path("nokernel")})
    expect_fault(v, "PUT", "/actions", {"action_type": "InstanceStart"}, 400, "nokernel")
    if v.state() != "Not started":
        raise Failure("state %r after a failed InstanceStart" % v.state())
    # ... and it can still be fixed and started.
    v.ok("PUT", "/boot-source", {"kernel_image_path": ctx.opts.bzimage,
                                 "boot_args": "yuntest=hello"})
    v.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.wait_serial(r"YT PASS hello")
    if v.wait_exit() != 0:
        raise Failure("exit status %d after the retried start" % v.proc.returncode)
    v.check_gone()


def wait_ready_or_skip(v, ctx):
    """The shutdown case's YT READY; Skip when the guest image has no such case."""
    deadline = time.monotonic() + ctx.opts.timeout
    while "YT READY" not in v.out.text():
        text = v.out.text()
        if "unknown case" in text:
            v.kill()
            raise Skip("the test guest has no 'shutdown' case yet")
        if time.monotonic() > deadline or v.proc.poll() is not None:
            raise Failure("no YT READY from the shutdown case: %s" % short(text[-300:]))
        time.sleep(0.02)


def send_ctrl_alt_del(ctx):
    """SendCtrlAltDel reaches the guest's keyboard; it resets; yun-vmm exits 0."""
    v = boot_via_api(ctx, "shutdown")
    wait_ready_or_skip(v, ctx)
    status, reply = v.api("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    if status == 501:
        v.kill()
        raise Skip("SendCtrlAltDel: %s" % reply.get("fault_message"))
    if status != 204:
        raise Failure("SendCtrlAltDel: %d %r" % (status, reply))
    v.wait_serial(r"YT CAD set=")
    if v.wait_exit() != 0:
        raise Failure("exit status %d after Ctrl-Alt-Del, want 0" % v.proc.returncode)
    v.check_gone()


def graceful_shutdown(ctx):
    """The Shutdown action against a guest that obeys: exit 0 well before the deadline."""
    v = boot_via_api(ctx, "shutdown", extra_args=["--reboot"])
    wait_ready_or_skip(v, ctx)
    t0 = time.monotonic()
    v.ok("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 20000})
    status = v.wait_exit()
    if status != 0 or time.monotonic() - t0 > 10:
        raise Failure("exit status %d after %.1fs, want 0 at once (even with --reboot: a "
                      "reset while shutting down ends the VM); stderr %s" % (
                          status, time.monotonic() - t0, short(v.err.text())))
    v.check_gone()


def shutdown_deadline_hard_stop(ctx):
    """A guest that ignores Ctrl-Alt-Del is stopped hard at the deadline."""
    v = counter_on_cmdline(ctx)
    t0 = time.monotonic()
    v.ok("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 500})
    if v.state() != "Shutting down":
        raise Failure("GET / during the shutdown: %r" % v.state())
    expect_fault(v, "PATCH", "/vm", {"state": "Paused"}, 400, "shuts down")
    status = v.wait_exit()
    took = time.monotonic() - t0
    if status != EXIT_HARD_STOP:
        raise Failure("exit status %d, want %d (hard stop); stderr %s" % (
            status, EXIT_HARD_STOP, short(v.err.text())))
    if not 0.4 <= took <= 5:
        raise Failure("stopped after %.2fs, want about 0.5s" % took)
    if "500 ms" not in v.err.text():
        raise Failure("stderr does not say why: %s" % short(v.err.text()))
    v.check_gone()


def balloon_target(ctx):
    def before(v):
        v.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                                 "stats_polling_interval_s": 1})
    v = boot_via_api(ctx, "counter", before_start=before)
    v.wait_counts(1)
    if v.ok("GET", "/balloon", want=200)["amount_mib"] != 0:
        raise Failure("GET /balloon before the PATCH: %r" % v.ok("GET", "/balloon", want=200))
    v.ok("PATCH", "/balloon", {"amount_mib": 16})
    got = v.ok("GET", "/balloon", want=200)
    if got["amount_mib"] != 16:
        raise Failure("GET /balloon after PATCH amount_mib 16: %r" % got)
    stats = v.ok("GET", "/balloon/statistics", want=200)
    if stats.get("target_mib") != 16 or stats.get("target_pages") != 16 * 256:
        raise Failure("GET /balloon/statistics: %r" % stats)
    expect_fault(v, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0}, 400,
                 "stats_polling_interval_s")
    v.ok("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 5})
    v.wait_counts(1)


def drive_hot_swap(ctx):
    """PATCH /drives: a new backing file and new limits while the guest runs."""
    first, second = ctx.path("one.img"), ctx.path("two.img")
    for p in (first, second):
        with open(p, "wb") as f:
            f.truncate(1 << 20)

    def before(v):
        v.ok("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": first,
                                        "is_root_device": False, "is_read_only": False,
                                        "rate_limiter": {"ops": {"size": 100,
                                                                 "refill_time": 1000}}})
    v = boot_via_api(ctx, "counter", before_start=before)
    v.wait_counts(1)
    status, reply = v.api("PATCH", "/drives/scratch", {"drive_id": "scratch",
                                                       "path_on_host": second})
    if status == 501:
        raise Skip("PATCH /drives: %s" % reply.get("fault_message"))
    if status != 204:
        raise Failure("PATCH /drives path_on_host: %d %r" % (status, reply))
    drive = v.ok("GET", "/vm/config", want=200)["drives"][0]
    if drive["path_on_host"] != second:
        raise Failure("GET /vm/config after the swap: %r" % drive)
    # A file that is not there: refused, the second image stays.
    expect_fault(v, "PATCH", "/drives/scratch", {"drive_id": "scratch",
                                                 "path_on_host": ctx.path("none.img")},
                 400, "none.img")
    v.ok("PATCH", "/drives/scratch", {"drive_id": "scratch", "rate_limiter": {
        "bandwidth": {"size": 1 << 20, "one_time_burst": 4096, "refill_time": 500}}})
    drive = v.ok("GET", "/vm/config", want=200)["drives"][0]
    want = {"bandwidth": {"size": 1 << 20, "one_time_burst": 4096, "refill_time": 500},
            "ops": {"size": 100, "one_time_burst": 0, "refill_time": 1000}}
    if drive["path_on_host"] != second or drive["rate_limiter"] != want:
        raise Failure("GET /vm/config after the failed swap and new limits: %r" % drive)
    expect_fault(v, "PATCH", "/drives/scratch", {"drive_id": "scratch", "rate_limiter": {
        "ops": {"size": 1, "refill_time": 86400001}}}, 400, "rate_limiter.ops.refill_time")
    v.wait_counts(1)


def net_rate_limits(ctx):
    """PATCH /network-interfaces: new limits for a running card, one direction at a time."""
    tap = "ytapi%d" % (os.getpid() % 100000)

    def before(v):
        v.ok("PUT", "/network-interfaces/eth0", {
            "iface_id": "eth0", "host_dev_name": tap, "guest_mac": "52:54:00:12:34:56",
            "tx_rate_limiter": {"ops": {"size": 1000, "refill_time": 1000}}})
    v = Vmm(ctx, [])
    v.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    v.ok("PUT", "/boot-source", {"kernel_image_path": ctx.opts.bzimage,
                                 "boot_args": "yuntest=counter"})
    before(v)
    status, reply = v.api("PUT", "/actions", {"action_type": "InstanceStart"})
    if status == 400 and "tap" in reply.get("fault_message", "").lower() and os.geteuid():
        raise Skip("no TAP devices without root: %s" % reply["fault_message"])
    if status != 204:
        raise Failure("InstanceStart with a network interface: %d %r" % (status, reply))
    v.wait_counts(1)
    v.ok("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "rx_rate_limiter": {
        "bandwidth": {"size": 125000, "refill_time": 100}}})
    nic = v.ok("GET", "/vm/config", want=200)["network-interfaces"][0]
    if nic["rx_rate_limiter"] != {"bandwidth": {"size": 125000, "one_time_burst": 0,
                                                "refill_time": 100}} or \
            nic["tx_rate_limiter"] != {"ops": {"size": 1000, "one_time_burst": 0,
                                               "refill_time": 1000}}:
        raise Failure("GET /vm/config after PATCH rx_rate_limiter: %r" % nic)
    expect_fault(v, "PATCH", "/network-interfaces/eth1", {"iface_id": "eth1"}, 400,
                 "eth1", "no such network interface")
    v.wait_counts(1)


def api_snapshot(ctx, refused_running=False):
    """A 64 MiB, 1 vCPU counter saved through the API: (state, mem, last count)."""
    state, mem = ctx.path("vm.state"), ctx.path("vm.mem")
    v = counter_on_cmdline(ctx)
    if refused_running:
        expect_fault(v, "PUT", "/snapshot/create", {"snapshot_path": state,
                                                    "mem_file_path": mem}, 400, "paused")
    v.ok("PATCH", "/vm", {"state": "Paused"})
    status, reply = v.api("PUT", "/snapshot/create", {"snapshot_type": "Full",
                                                      "snapshot_path": state,
                                                      "mem_file_path": mem})
    if status == 501:
        raise Skip("PUT /snapshot/create: %s" % reply.get("fault_message"))
    if status != 204:
        raise Failure("PUT /snapshot/create: %d %r" % (status, reply))
    last = v.counts()[-1]
    v.ok("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 0})
    v.wait_exit()
    return state, mem, last


def snapshot_through_api(ctx):
    """Pause, PUT /snapshot/create; a fresh yun-vmm loads it and the guest counts on."""
    state, mem, last = api_snapshot(ctx, refused_running=True)
    w = Vmm(ctx, [])
    w.ok("PUT", "/snapshot/load", {"snapshot_path": state, "resume_vm": False,
                                   "mem_backend": {"backend_type": "File", "backend_path": mem}})
    if w.state() != "Paused":
        raise Failure("state %r after loading with resume_vm false" % w.state())
    cfg = w.ok("GET", "/vm/config", want=200)
    if cfg["boot-source"]["boot_args"] != "yuntest=counter" or \
            cfg["machine-config"]["mem_size_mib"] != 64:
        raise Failure("GET /vm/config of the restored VM: %r" % cfg)
    expect_fault(w, "PUT", "/snapshot/load", {"snapshot_path": state, "mem_file_path": mem},
                 400, "not allowed after the VM started")
    w.ok("PATCH", "/vm", {"state": "Resumed"})
    w.wait_counts(2)
    first = w.counts()[0]
    if not last < first <= last + 2:
        raise Failure("the restored guest counted from %d; it was at %d" % (first, last))


def load_and_count_on(ctx, machine, state, mem, last, built):
    """A fresh yun-vmm told `machine` loads the snapshot running; it counts on, intact."""
    w = Vmm(ctx, ["--verbose"])
    w.ok("PUT", "/machine-config", machine)
    # The pre-built VM for that shape, before the load (the API does not wait for it).
    deadline = time.monotonic() + ctx.opts.timeout
    ready = "pre-built VM ready (%d vCPU(s), %d MiB)" % (machine["vcpu_count"],
                                                         machine["mem_size_mib"])
    while ready not in w.err.text():
        if time.monotonic() > deadline:
            raise Failure("no %r in yun-vmm's log: %s" % (ready, short(w.err.text())))
        time.sleep(0.02)
    w.ok("PUT", "/snapshot/load", {"snapshot_path": state, "resume_vm": True,
                                   "mem_backend": {"backend_type": "File", "backend_path": mem}})
    if w.state() != "Running":
        raise Failure("state %r after loading with resume_vm true" % w.state())
    w.wait_counts(3)
    first = w.counts()[0]
    if not last < first <= last + 2:
        raise Failure("the restored guest counted from %d; it was at %d" % (first, last))
    if "YT FAIL" in w.out.text():
        raise Failure("the restored guest's memory checksum failed: %s"
                      % short(w.out.text()[-300:]))
    if "(%s VM)" % built not in w.err.text():
        raise Failure("the load did not use a %s VM: %s" % (built, short(w.err.text(), 1500)))
    cfg = w.ok("GET", "/vm/config", want=200)["machine-config"]
    if cfg["mem_size_mib"] != 64 or cfg["vcpu_count"] != 1:
        raise Failure("GET /vm/config of the restored VM: %r" % cfg)
    w.ok("PUT", "/actions", {"action_type": "Shutdown", "timeout_ms": 0})
    w.wait_exit()
    w.check_gone()


def snapshot_load_takes_the_prebuilt_vm(ctx):
    """machine-config of the snapshot's shape: the load adopts the pre-built VM, counts on."""
    state, mem, last = api_snapshot(ctx)
    load_and_count_on(ctx, {"vcpu_count": 1, "mem_size_mib": 64}, state, mem, last,
                      "pre-built")


def snapshot_load_of_another_shape(ctx):
    """A pre-built VM of other vCPUs or memory: the load builds afresh, counts on."""
    state, mem, last = api_snapshot(ctx)
    load_and_count_on(ctx, {"vcpu_count": 2, "mem_size_mib": 64}, state, mem, last, "new")
    load_and_count_on(ctx, {"vcpu_count": 1, "mem_size_mib": 128}, state, mem, last, "new")


def metrics_json(ctx):
    metrics = ctx.path("metrics.json")

    def before(v):
        v.ok("PUT", "/metrics", {"metrics_path": metrics})
    v = boot_via_api(ctx, "counter", before_start=before)
    v.wait_counts(1)
    m1 = v.ok("GET", "/metrics", want=200)
    v.wait_counts(2)
    m2 = v.ok("GET", "/metrics", want=200)
    if m2["exits"]["io"] <= m1["exits"]["io"]:
        raise Failure("exits.io did not grow: %r then %r" % (m1["exits"], m2["exits"]))
    if not m2["vcpus"] or m2["vcpus"][0]["cpu_time_ns"] <= 0:
        raise Failure("no vCPU time: %r" % m2["vcpus"])
    if m2["vcpus"][0]["exits"]["io"] != m2["exits"]["io"]:
        raise Failure("per-vCPU exits do not add up: %r" % m2)
    if m2["memory"]["rss_kib"] <= 0 or m2["memory"]["guest_mib"] != 64:
        raise Failure("memory: %r" % m2["memory"])
    if m2["state"] != "Running" or m2["uptime_ms"] < m1["uptime_ms"]:
        raise Failure("state/uptime: %r" % m2)
    v.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    v.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    with open(metrics) as f:
        lines = [json.loads(line) for line in f]
    if len(lines) != 2 or "exits" not in lines[1] or "vcpus" not in lines[1]:
        raise Failure("metrics file after two FlushMetrics: %r" % lines)


def served_routes():
    """(method, path) of every entry of the route table in routes.c."""
    with open(ROUTES_C) as f:
        text = f.read()
    return set((m, p) for p, m in re.findall(r'\{ "(/[^"]*)", "([A-Z]+)", \w+ \}', text))


def load_openapi():
    try:
        import yaml
    except ImportError:
        raise Skip("python3-yaml is not installed")
    with open(OPENAPI) as f:
        return yaml.safe_load(f)


def documented_routes(doc):
    methods = ("get", "put", "patch", "post", "delete")
    return set((m.upper(), p) for p, item in doc["paths"].items() for m in item if m in methods)


def routes_match_openapi(ctx):
    """Every route served is in docs/api/vmm.yaml and vice versa; each answers."""
    doc = load_openapi()
    served, documented = served_routes(), documented_routes(doc)
    if len(served) < 20:
        raise Failure("found only %d routes in %s" % (len(served), ROUTES_C))
    if served != documented:
        raise Failure("served but not documented: %s; documented but not served: %s" % (
            sorted(served - documented), sorted(documented - served)))
    v = Vmm(ctx, [])
    for method, path in sorted(served):
        concrete = path.replace("{drive_id}", "d0").replace("{iface_id}", "n0")
        status, reply = v.api(method, concrete, None if method == "GET" else {})
        if status in (404, 405):
            raise Failure("%s %s (documented): %d %r" % (method, concrete, status, reply))


def resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def firecracker_field_names(ctx):
    """The fields we accept on Firecracker's routes are Firecracker's (plus documented
    Yun extensions): checked in the OpenAPI document and against the server."""
    doc = load_openapi()
    for (method, path), fc in FIRECRACKER_FIELDS.items():
        op = doc["paths"][path][method.lower()]
        schema = resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])
        props = set(schema.get("properties", {}))
        want = set(fc) | set(YUN_EXTRA_FIELDS.get((method, path), []))
        if props != want:
            raise Failure("%s %s: documented fields %s, Firecracker's (+ Yun's) %s" % (
                method, path, sorted(props), sorted(want)))
    for name, fc in FIRECRACKER_NESTED.items():
        props = set(doc["components"]["schemas"][name]["properties"])
        if props != set(fc):
            raise Failure("%s: documented fields %s, Firecracker's %s" % (
                name, sorted(props), sorted(fc)))
    # The server takes every one of them (null = absent, so nothing is applied) and
    # refuses a field Firecracker does not have.
    v = Vmm(ctx, [])
    for (method, path), fc in FIRECRACKER_FIELDS.items():
        concrete = path.replace("{drive_id}", "d0").replace("{iface_id}", "n0")
        body = dict((f, None) for f in fc)
        status, reply = v.api(method, concrete, body)
        msg = (reply or {}).get("fault_message", "")
        if "unknown field" in msg:
            raise Failure("%s %s refuses a Firecracker field: %s" % (method, path, msg))
        body["firecracker_has_no_such_field"] = None
        status, reply = v.api(method, concrete, body)
        msg = (reply or {}).get("fault_message", "")
        if status != 400 or "firecracker_has_no_such_field" not in msg:
            raise Failure("%s %s takes an unknown field: %d %r" % (method, path, status, reply))
    nested = {"drive_id": "d1", "is_root_device": False, "path_on_host": "/x",
              "rate_limiter": {"bandwidth": {"size": 0, "one_time_burst": 0, "refill_time": 0},
                               "ops": None}}
    v.ok("PUT", "/drives/d1", nested)


TESTS = [
    boot_entirely_through_api,
    kernel_on_cmdline_and_api,
    signal_before_start_removes_socket,
    pause_and_resume,
    bad_requests_leave_the_vm_alone,
    bad_requests_before_start,
    send_ctrl_alt_del,
    graceful_shutdown,
    shutdown_deadline_hard_stop,
    balloon_target,
    drive_hot_swap,
    net_rate_limits,
    snapshot_through_api,
    snapshot_load_takes_the_prebuilt_vm,
    snapshot_load_of_another_shape,
    metrics_json,
    routes_match_openapi,
    firecracker_field_names,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yun-vmm", required=True, help="the yun-vmm binary to test")
    ap.add_argument("--bzimage", required=True, help="yun-test-guest.bzImage")
    ap.add_argument("--timeout", type=float, default=30, help="seconds per wait")
    ap.add_argument("-k", dest="only", default=None, help="run tests whose name contains this")
    opts = ap.parse_args()
    for p in (opts.yun_vmm, opts.bzimage):
        if not os.path.isfile(p):
            sys.exit("vmm_api.py: %s: no such file" % p)
    opts.yun_vmm = os.path.abspath(opts.yun_vmm)
    opts.bzimage = os.path.abspath(opts.bzimage)

    return run_tests(TESTS, lambda: Context(opts), opts.only)


if __name__ == "__main__":
    sys.exit(main())
