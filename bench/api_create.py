#!/usr/bin/env python3
"""api_create.py - API create->running latency and instances/s: yund vs LXD.

Both sides are driven through their REST API on a Unix socket, the same
way: an API call, then wait until the instance is running.

  anchor (LXD 5.0, Debian's lxd)   /var/lib/lxd/unix.socket
      POST /1.0/instances {name, source: image alias}   -> operation, wait
      PUT  /1.0/instances/NAME/state {action: start}    -> operation, wait
      (LXD 5.0.2 lacks the instance_create_start API extension, so create
      and start are two calls, exactly what `lxc launch` does.) The start
      operation succeeds once liblxc reports the container RUNNING; the
      time is taken when that wait returns.
  yun (yund)                        <run>/yund.sock
      POST /v1/instances {name, type: container, image, vcpus, memory_mib}
      -> 202, then the instance.state event (GET /v1/events) with
      state == "running"; with --yun-wait poll, GET /v1/instances/{id}
      every --poll-ms instead. (In events mode a GET every second is a
      safety net; whichever sees "running" first stops the clock.)

The image is the same busybox image on both sides: scripts/mkimage busybox
DIR; LXD gets DIR/rootfs packed as a unified image tarball (metadata.yaml
with architecture and creation_date), yund gets DIR via POST /v1/images
{import: DIR}.

Cases, sides interleaved (the order alternates every round) so both see
the same background load:

  latency      one instance at a time: create->running (ms), then delete
               ->gone (ms); --warmup rounds discarded, then --runs rounds
  burst c=1    --burst instances back to back, sequential: instances/s =
               N / (last running - first API call); then all deleted
  burst c=4    the same with --concurrency clients in parallel

Ratios: latency yun/anchor (the target "10x faster" means <= 0.1); rates
yun/anchor (target >= 10). Deletes are reported without a target.

LXD: if its socket does not answer, the script starts `lxd --group root`
itself (TESTBED.md: no systemd here), `lxd waitready`, initialises it with a
preseed (a `dir` storage pool named default, no network) if it has no
pool, and stops it with `lxd shutdown` at the end (--keep-lxd leaves it
running). An LXD that was already running is used and left running. All
its instances named ybench-* and the image alias ybench-busybox are removed
at the start (an interrupted run's leftovers) and at the end; on yund, only
this run's instances (ybench-PID-*) and image.

yund: --yund PATH starts one with a temporary --root and --run (and
--cpu-overcommit high enough for a burst of one-vCPU instances: LXD has no
admission control, and a 507 is not what is measured; extra flags with
--yund-arg), --socket PATH uses a running one, --anchor-only runs LXD
alone. Without any of these the script takes build-bench/src/yund/yund,
else the best other build*/src/yund/yund (no sanitizer, release first).

Writes bench/results/api_create-<date>.json, prints a table and one JSON
line per case. Python 3 standard library only; run as root, after
scripts/setup-bench. See docs/benchmarks.md.
"""

import argparse
import concurrent.futures
import datetime
import fcntl
import glob
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LXD_SOCKET = "/var/lib/lxd/unix.socket"
PREFIX = "ybench-"
LXD_ALIAS = "ybench-busybox"
YUN_IMAGE = "ybench-busybox"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def now_ms():
    return time.perf_counter() * 1000.0


# ---------------------------------------------------------------- HTTP over a Unix socket


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Api:
    """One keep-alive connection per thread to a REST API on a Unix socket."""

    def __init__(self, path, timeout=120):
        self.path = path
        self.timeout = timeout
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = UnixHTTPConnection(self.path, self.timeout)
        return c

    def drop(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()
            self.local.conn = None

    def request(self, method, url, body=None, headers=None, raw=False):
        """Returns (status, parsed JSON or None). A keep-alive connection
        the server closed is reopened once (for idempotent retries the caller
        must not care: only a request that never reached the server is
        retried)."""
        h = dict(headers or {})
        if body is not None and not raw:
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            c = self.conn()
            try:
                c.request(method, url, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                self.drop()
                if attempt:
                    raise Failure("%s %s on %s: %s" % (method, url, self.path, e))
            except (OSError, http.client.HTTPException) as e:
                self.drop()
                raise Failure("%s %s on %s: %s" % (method, url, self.path, e))
            except BaseException:
                # interrupted mid-request: the connection is in an unknown state
                self.drop()
                raise
        if r.getheader("Connection", "").lower() == "close":
            self.drop()
        doc = None
        if data:
            try:
                doc = json.loads(data)
            except ValueError:
                doc = {"_text": data.decode(errors="replace")[:500]}
        return r.status, doc


def err_text(doc):
    if not isinstance(doc, dict):
        return repr(doc)
    e = doc.get("error")
    if isinstance(e, dict):
        return "%s: %s" % (e.get("code"), e.get("message"))
    return str(e or doc)[:300]


# ---------------------------------------------------------------- statistics


def stats(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    if len(vals) == 1:
        return {"n": 1, "median": vals[0], "p10": vals[0], "p90": vals[0],
                "min": vals[0], "max": vals[-1]}
    q = statistics.quantiles(vals, n=10, method="inclusive")
    return {"n": len(vals), "median": statistics.median(vals), "p10": q[0], "p90": q[8],
            "min": vals[0], "max": vals[-1]}


# ---------------------------------------------------------------- image


def make_image(path):
    mk = os.path.join(REPO, "scripts/mkimage")
    r = subprocess.run([mk, "-f", "busybox", path], capture_output=True, text=True,
                       timeout=120)
    if r.returncode:
        raise Failure("scripts/mkimage busybox %s: %s" % (path, r.stderr.strip()))


def lxd_tarball(image_dir, out):
    """A unified LXD image: metadata.yaml + rootfs/ in one tar.gz."""
    with open(os.path.join(image_dir, "manifest.json")) as f:
        man = json.load(f)
    meta = ("architecture: %s\ncreation_date: %d\nproperties:\n"
            "  description: %s %s (scripts/mkimage)\n  os: %s\n  release: \"%s\"\n" % (
                platform.machine(), int(time.time()), man.get("name", "busybox"),
                man.get("version", ""), man.get("os", "busybox"), man.get("version", "")))
    mpath = os.path.join(os.path.dirname(out), "metadata.yaml")
    with open(mpath, "w") as f:
        f.write(meta)
    with tarfile.open(out, "w:gz", compresslevel=6) as t:
        t.add(mpath, arcname="metadata.yaml")
        t.add(os.path.join(image_dir, "rootfs"), arcname="rootfs")
    return out


# ---------------------------------------------------------------- LXD (the anchor)


def lxc_pivots():
    found = glob.glob("/sys/fs/cgroup/*/lxc.pivot") + glob.glob("/sys/fs/cgroup/lxc.pivot")
    return [d for d in found if not os.path.islink(os.path.dirname(d))]


class Lxd:
    name = "anchor"

    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.api = Api(LXD_SOCKET, timeout=args.timeout + 30)
        self.proc = None
        self.started_here = False
        self.version = None
        self.info = {}
        self.pivots_before = set(lxc_pivots())

    # -- daemon

    def alive(self):
        if not os.path.exists(LXD_SOCKET):
            return False
        try:
            st, doc = self.api.request("GET", "/1.0")
            return st == 200
        except Failure:
            self.api.drop()
            return False

    def start_daemon(self):
        lxd = shutil.which("lxd")
        if not lxd:
            raise Failure("lxd not installed: run scripts/setup-bench")
        if self.alive():
            log("lxd: using the running daemon")
        else:
            logf = open(os.path.join(self.tmp, "lxd.log"), "wb")
            log("lxd: starting `lxd --group root` (log %s)" % logf.name)
            self.proc = subprocess.Popen([lxd, "--group", "root"], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            self.started_here = True
            r = subprocess.run([lxd, "waitready", "--timeout", "60"], capture_output=True,
                               text=True)
            if r.returncode or not self.alive():
                raise Failure("lxd waitready: %s; log: %s" % (
                    r.stderr.strip(), tail(logf.name)))
        st, doc = self.api.request("GET", "/1.0")
        env = doc["metadata"]["environment"]
        self.version = env.get("server_version")
        self.info = {"server_version": self.version, "driver": env.get("driver"),
                     "driver_version": env.get("driver_version"),
                     "kernel": env.get("kernel_version"),
                     "create_start_extension":
                         "instance_create_start" in doc["metadata"].get("api_extensions", [])}
        self.init_preseed()

    def init_preseed(self):
        st, _ = self.api.request("GET", "/1.0/storage-pools/default")
        st2, prof = self.api.request("GET", "/1.0/profiles/default")
        has_root = st2 == 200 and "root" in (prof["metadata"].get("devices") or {})
        if st == 200 and has_root:
            st, pool = self.api.request("GET", "/1.0/storage-pools/default")
            self.info["storage"] = pool["metadata"]["driver"]
            return
        preseed = ("config: {}\nnetworks: []\nstorage_pools:\n- name: default\n"
                   "  driver: dir\n  config: {}\nprofiles:\n- name: default\n"
                   "  devices:\n    root:\n      path: /\n      pool: default\n"
                   "      type: disk\n")
        log("lxd: init --preseed (dir storage pool, no network)")
        r = subprocess.run(["lxd", "init", "--preseed"], input=preseed, capture_output=True,
                           text=True, timeout=120)
        if r.returncode:
            raise Failure("lxd init --preseed: %s" % r.stderr.strip())
        self.info["storage"] = "dir"

    def stop_daemon(self):
        if not self.started_here or self.args.keep_lxd:
            return
        log("lxd: lxd shutdown")
        self.api.drop()
        r = subprocess.run(["lxd", "shutdown", "--timeout", "60"], capture_output=True,
                           text=True)
        try:
            self.proc.wait(timeout=70)
        except subprocess.TimeoutExpired:
            log("lxd: still running after `lxd shutdown` (%s); SIGTERM %d" % (
                r.stderr.strip(), self.proc.pid))
            self.proc.terminate()
            self.proc.wait(timeout=30)
        # liblxc leaves an empty lxc.pivot cgroup in every hierarchy on v1
        # hosts; remove the ones this run made (rmdir fails on a busy one).
        for d in sorted(set(lxc_pivots()) - self.pivots_before):
            try:
                os.rmdir(d)
            except OSError:
                pass

    # -- operations

    def wait_op(self, doc, what):
        if doc.get("type") == "error":
            raise Failure("lxd %s: %s" % (what, doc.get("error")))
        op = doc.get("operation")
        if not op:
            return doc
        st, res = self.api.request("GET", "%s/wait?timeout=%d" % (op, self.args.timeout))
        md = (res or {}).get("metadata") or {}
        if st != 200 or md.get("status") != "Success":
            raise Failure("lxd %s: %s" % (what, md.get("err") or res))
        return res

    def call(self, method, url, body, what, ok=(200, 202)):
        st, doc = self.api.request(method, url, body)
        if st not in ok:
            raise Failure("lxd %s: HTTP %d %s" % (what, st, (doc or {}).get("error")))
        return self.wait_op(doc, what)

    # -- image

    def import_image(self, image_dir):
        self.remove_image()
        tb = lxd_tarball(image_dir, os.path.join(self.tmp, "lxd-image.tar.gz"))
        with open(tb, "rb") as f:
            data = f.read()
        st, doc = self.api.request("POST", "/1.0/images", data, raw=True,
                                   headers={"Content-Type": "application/octet-stream"})
        if st not in (200, 202):
            raise Failure("lxd image import: HTTP %d %s" % (st, (doc or {}).get("error")))
        res = self.wait_op(doc, "image import")
        fp = res["metadata"]["metadata"]["fingerprint"]
        self.call("POST", "/1.0/images/aliases", {"name": LXD_ALIAS, "target": fp},
                  "image alias", ok=(200, 201))
        self.info["image_fingerprint"] = fp
        self.info["image_tarball_bytes"] = len(data)
        log("lxd: image %s imported (%s, %d bytes)" % (LXD_ALIAS, fp[:12], len(data)))

    def remove_image(self):
        st, doc = self.api.request("GET", "/1.0/images/aliases/" + LXD_ALIAS)
        if st == 200:
            fp = doc["metadata"]["target"]
            self.api.request("DELETE", "/1.0/images/aliases/" + LXD_ALIAS)
            st, doc = self.api.request("DELETE", "/1.0/images/" + fp)
            if st in (200, 202):
                self.wait_op(doc, "image delete")

    # -- instances

    def create(self, name):
        """API call -> running. Returns timings (ms, perf_counter based)."""
        body = {"name": name, "type": "container",
                "source": {"type": "image", "alias": LXD_ALIAS}}
        if self.args.lxd_privileged:
            body["config"] = {"security.privileged": "true"}
        t0 = now_ms()
        self.call("POST", "/1.0/instances", body, "create " + name)
        t1 = now_ms()
        self.call("PUT", "/1.0/instances/%s/state" % name,
                  {"action": "start", "timeout": self.args.timeout}, "start " + name)
        t2 = now_ms()
        return {"name": name, "t_call": t0, "t_running": t2, "create_op_ms": t1 - t0,
                "start_op_ms": t2 - t1, "ms": t2 - t0}

    def status(self, name):
        st, doc = self.api.request("GET", "/1.0/instances/" + name)
        return doc["metadata"]["status"] if st == 200 else None

    def delete(self, name):
        """Force stop (what `lxc delete -f` does), then delete; until gone."""
        t0 = now_ms()
        st, doc = self.api.request("PUT", "/1.0/instances/%s/state" % name,
                                   {"action": "stop", "force": True, "timeout": 30})
        if st in (200, 202):
            try:
                self.wait_op(doc, "stop " + name)
            except Failure:
                if self.status(name) != "Stopped":
                    raise
        t1 = now_ms()
        self.call("DELETE", "/1.0/instances/" + name, None, "delete " + name)
        t2 = now_ms()
        return {"name": name, "ms": t2 - t0, "stop_op_ms": t1 - t0, "delete_op_ms": t2 - t1}

    def running(self, names):
        st, doc = self.api.request("GET", "/1.0/instances?recursion=1")
        have = {i["name"]: i["status"] for i in doc["metadata"]}
        return {n: have.get(n) for n in names}

    def ours(self):
        st, doc = self.api.request("GET", "/1.0/instances")
        if st != 200:
            return []
        return [u.rsplit("/", 1)[1] for u in doc["metadata"]
                if u.rsplit("/", 1)[1].startswith(PREFIX)]

    def cleanup(self):
        left = []
        for n in self.ours():
            try:
                self.delete(n)
            except Failure as e:
                left.append("%s (%s)" % (n, e))
        try:
            self.remove_image()
        except Failure as e:
            left.append("image %s (%s)" % (LXD_ALIAS, e))
        return left


# ---------------------------------------------------------------- yund (Yun)


class Events:
    """Follows GET /v1/events (server-sent events) and records, per instance
    id, when each state was first seen and when it was deleted."""

    def __init__(self, sock):
        self.sock = sock
        self.cond = threading.Condition()
        self.seen = {}          # id -> {state: t_ms, "deleted": t_ms, "failure": str}
        self.ok = False
        self.error = None
        self.conn = None
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self, timeout=10):
        self.thread.start()
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.ok and self.error is None and time.monotonic() < deadline:
                self.cond.wait(0.1)
        return self.ok

    def run(self):
        try:
            self.conn = UnixHTTPConnection(self.sock, timeout=None)
            self.conn.request("GET", "/v1/events", headers={"Accept": "text/event-stream"})
            r = self.conn.getresponse()
            if r.status != 200:
                raise Failure("GET /v1/events: HTTP %d" % r.status)
            with self.cond:
                self.ok = True
                self.cond.notify_all()
            ev, data = None, []
            while not self.stop:
                line = r.readline()
                if not line:
                    raise Failure("GET /v1/events: stream ended")
                t = now_ms()
                line = line.decode(errors="replace").rstrip("\r\n")
                if line == "":
                    if data:
                        self.dispatch(ev, "\n".join(data), t)
                    ev, data = None, []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    ev = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
        except Exception as e:  # noqa: BLE001 - any end of the stream is reported
            if not self.stop:
                with self.cond:
                    self.error = str(e)
                    self.ok = False
                    self.cond.notify_all()

    def dispatch(self, ev, data, t):
        if not ev or not ev.startswith("instance."):
            return
        try:
            obj = json.loads(data)
        except ValueError:
            return
        iid = obj.get("id")
        if not iid:
            return
        with self.cond:
            rec = self.seen.setdefault(iid, {})
            if ev == "instance.deleted":
                rec.setdefault("deleted", t)
            else:
                st = obj.get("state")
                if st:
                    rec.setdefault(st, t)
                if st == "failed":
                    rec["failure"] = obj.get("failure")
            self.cond.notify_all()

    def close(self):
        self.stop = True
        if self.conn and self.conn.sock:
            try:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Yund:
    name = "yun"

    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.proc = None
        self.sock = args.socket
        self.api = None
        self.events = None
        self.version = None
        self.image_id = None
        self.image_name = YUN_IMAGE
        self.ids = {}            # name -> id
        self.info = {}

    def start_daemon(self):
        if self.args.yund:
            root = os.path.join(self.tmp, "yun-root")
            run = os.path.join(self.tmp, "yun-run")
            os.makedirs(root)
            os.makedirs(run)
            self.sock = os.path.join(run, "yund.sock")
            argv = [self.args.yund, "--root", root, "--run", run]
            # LXD admits any number of containers; yund's pool (2 vCPUs x 4.0
            # by default here) would refuse a burst of 20 one-vCPU instances
            # with 507. Admission is not what is measured: make room.
            need = self.args.burst * self.args.yun_vcpus / float(os.cpu_count() or 1)
            if need > 4.0 and not any(a.startswith("--cpu-overcommit")
                                      for a in self.args.yund_arg):
                argv += ["--cpu-overcommit", "%g" % min(100, -(-need // 1))]
            argv += self.args.yund_arg
            logf = open(os.path.join(self.tmp, "yund.log"), "wb")
            log("yund: starting %s (log %s)" % (" ".join(argv), logf.name))
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            self.info["started"] = argv
            self.logpath = logf.name
        else:
            # Someone else's yund: a name of our own for the image.
            self.image_name = "%s%d" % (YUN_IMAGE + "-", os.getpid())
        self.api = Api(self.sock, timeout=self.args.timeout + 30)
        deadline = time.monotonic() + 30
        while True:
            if self.proc and self.proc.poll() is not None:
                raise Failure("yund exited with status %d before serving; log: %s" % (
                    self.proc.returncode, tail(self.logpath)))
            try:
                st, doc = self.api.request("GET", "/v1/health")
                if st == 200:
                    break
                err = "HTTP %d" % st
            except Failure as e:
                self.api.drop()
                err = str(e)
            if time.monotonic() > deadline:
                raise Failure("yund on %s not healthy after 30 s: %s" % (self.sock, err))
            time.sleep(0.05)
        self.version = (doc or {}).get("version")
        self.info["version"] = self.version
        self.info["socket"] = self.sock
        st, doc = self.api.request("GET", "/v1/hosts")
        if st == 200 and doc.get("items"):
            h = doc["items"][0]
            self.info["host"] = {k: h.get(k) for k in (
                "vcpus", "memory_mib", "cpu_overcommit", "memory_overcommit", "capacity",
                "allocated")}
        if self.args.yun_wait == "events":
            self.events = Events(self.sock)
            if not self.events.start():
                raise Failure("GET /v1/events: %s (use --yun-wait poll to poll instead)" %
                              (self.events.error or "no answer in 10 s"))

    def stop_daemon(self):
        if self.events:
            self.events.close()
        if self.proc and self.proc.poll() is None:
            log("yund: SIGTERM %d" % self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log("yund: still running after 30 s; SIGKILL %d" % self.proc.pid)
                self.proc.kill()
                self.proc.wait()

    def check_capacity(self, n):
        """An admission refusal (507) in the middle of a burst would be a
        benchmark set-up error, not a result: check the pool first."""
        st, doc = self.api.request("GET", "/v1/hosts")
        if st != 200 or not doc.get("items"):
            return
        h = doc["items"][0]
        cap, alloc = h.get("capacity") or {}, h.get("allocated") or {}
        if "vcpus" in cap and "vcpus" in alloc:
            free = cap["vcpus"] - alloc["vcpus"]
            if free < n * self.args.yun_vcpus:
                raise Failure(
                    "yund's pool has %s free vCPUs (capacity %s), a burst of %d needs %d: "
                    "raise its CPU over-commit (--yund-arg) or use --burst %d" % (
                        free, cap["vcpus"], n, n * self.args.yun_vcpus,
                        free // self.args.yun_vcpus))

    # -- image

    def import_image(self, image_dir):
        st, doc = self.api.request("GET", "/v1/images/" + self.image_name)
        if st == 200:
            self.api.request("DELETE", "/v1/images/" + self.image_name)
        st, doc = self.api.request("POST", "/v1/images", {
            "name": self.image_name, "type": "container", "import": os.path.abspath(image_dir)})
        if st not in (201, 202):
            raise Failure("yund POST /v1/images: HTTP %d %s" % (st, err_text(doc)))
        self.image_id = doc.get("id")
        deadline = time.monotonic() + 120
        while True:
            st, doc = self.api.request("GET", "/v1/images/" + self.image_id)
            state = (doc or {}).get("state")
            if state == "available":
                break
            if state == "failed" or st != 200:
                raise Failure("yund image import: HTTP %d state %s: %s" % (
                    st, state, (doc or {}).get("failure") or err_text(doc)))
            if time.monotonic() > deadline:
                raise Failure("yund image import: still %s after 120 s" % state)
            time.sleep(0.05)
        self.info["image"] = {"id": self.image_id, "name": self.image_name}
        log("yund: image %s imported (%s)" % (self.image_name, self.image_id))

    def remove_image(self):
        if self.image_id:
            st, doc = self.api.request("DELETE", "/v1/images/" + self.image_id)
            if st not in (202, 204, 404):
                raise Failure("DELETE /v1/images/%s: HTTP %d %s" % (
                    self.image_id, st, err_text(doc)))

    # -- waiting

    def wait_for(self, iid, key, what):
        """Until `key` (a state, or "deleted") is seen for instance iid: from
        the event stream, else (and every second as a safety net) by GET."""
        deadline = time.monotonic() + self.args.timeout
        poll_s = self.args.poll_ms / 1000.0
        ev = self.events
        next_get = time.monotonic() + (1.0 if ev else 0.0)
        while True:
            if ev:
                with ev.cond:
                    rec = ev.seen.get(iid, {})
                    if key in rec:
                        return rec[key], "event"
                    if "failed" in rec and key != "deleted":
                        raise Failure("yun %s %s: failed: %s" % (what, iid, rec.get("failure")))
                    if ev.error:
                        raise Failure("yun event stream: %s" % ev.error)
                    wait = next_get - time.monotonic()
                    if wait > 0:
                        ev.cond.wait(wait)
                        continue
            st, doc = self.api.request("GET", "/v1/instances/" + iid)
            t = now_ms()
            if key == "deleted":
                if st == 404:
                    return t, "get"
            else:
                if st != 200:
                    raise Failure("yun %s: GET /v1/instances/%s: HTTP %d %s" % (
                        what, iid, st, err_text(doc)))
                if doc.get("state") == key:
                    return t, "get"
                if doc.get("state") == "failed":
                    raise Failure("yun %s %s: failed: %s" % (what, iid, doc.get("failure")))
            if time.monotonic() > deadline:
                raise Failure("yun %s %s: no %s after %d s" % (what, iid, key,
                                                                self.args.timeout))
            if ev:
                next_get = time.monotonic() + 1.0
            else:
                time.sleep(poll_s)

    # -- instances

    def create(self, name):
        body = {"name": name, "type": "container", "image": self.image_id}
        if self.args.yun_flavor:
            body["flavor"] = self.args.yun_flavor
        else:
            body["vcpus"] = self.args.yun_vcpus
            body["memory_mib"] = self.args.yun_memory
        t0 = now_ms()
        st, doc = self.api.request("POST", "/v1/instances", body)
        t1 = now_ms()
        if st != 202:
            raise Failure("yun POST /v1/instances %s: HTTP %d %s" % (name, st, err_text(doc)))
        iid = doc["id"]
        self.ids[name] = iid
        if doc.get("state") == "running":
            t2, how = t1, "answer"
        else:
            t2, how = self.wait_for(iid, "running", "create " + name)
        states = {}
        if self.events:
            with self.events.cond:
                states = {k: v - t0 for k, v in self.events.seen.get(iid, {}).items()
                          if isinstance(v, float)}
        return {"name": name, "id": iid, "t_call": t0, "t_running": t2, "ack_ms": t1 - t0,
                "ms": t2 - t0, "seen_by": how, "state_events_ms": states}

    def delete(self, name):
        iid = self.ids[name]
        t0 = now_ms()
        st, doc = self.api.request("DELETE", "/v1/instances/" + iid)
        if st == 404:
            return {"name": name, "ms": now_ms() - t0}
        if st not in (202, 204):
            raise Failure("yun DELETE /v1/instances/%s: HTTP %d %s" % (iid, st, err_text(doc)))
        t1, how = (now_ms(), "answer") if st == 204 else self.wait_for(iid, "deleted",
                                                                      "delete " + name)
        self.ids.pop(name, None)
        return {"name": name, "ms": t1 - t0, "seen_by": how}

    def running(self, names):
        st, doc = self.api.request("GET", "/v1/instances")
        have = {i["name"]: i.get("state") for i in (doc or {}).get("items", [])}
        return {n: have.get(n) for n in names}

    def cleanup(self):
        left = []
        st, doc = self.api.request("GET", "/v1/instances")
        mine = "%s%d-" % (PREFIX, os.getpid())
        for i in (doc or {}).get("items", []):
            if i.get("name", "").startswith(mine):
                self.ids[i["name"]] = i["id"]
        for n in list(self.ids):
            try:
                self.delete(n)
            except Failure as e:
                left.append("%s (%s)" % (n, e))
        try:
            self.remove_image()
        except Failure as e:
            left.append("image (%s)" % e)
        return left


# ---------------------------------------------------------------- the cases


def one_at_a_time(side, name):
    c = side.create(name)
    d = side.delete(name)
    return {"side": side.name, "create": c, "delete": d}


def burst(side, names, conc):
    """Create all of `names` with `conc` clients; then delete all the same way."""
    if isinstance(side, Yund):
        side.check_capacity(len(names))
    with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as ex:
        creates = list(ex.map(side.create, names))
    t_first = min(c["t_call"] for c in creates)
    t_last = max(c["t_running"] for c in creates)
    states = side.running(names)
    bad = {n: s for n, s in states.items() if (s or "").lower() != "running"}
    if bad:
        raise Failure("%s burst: not running at the end: %s" % (side.name, bad))
    t0 = now_ms()
    with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as ex:
        deletes = list(ex.map(side.delete, names))
    t1 = now_ms()
    return {"side": side.name, "n": len(names), "concurrency": conc,
            "create_wall_ms": t_last - t_first,
            "per_s": len(names) / ((t_last - t_first) / 1000.0),
            "delete_wall_ms": t1 - t0,
            "delete_per_s": len(names) / ((t1 - t0) / 1000.0),
            "instance_ms": [c["ms"] for c in creates],
            "creates": creates, "deletes": deletes}


def run_all(sides, args, results):
    """Fills results (lists of rounds) as it goes, so a failure keeps what ran."""
    pid = os.getpid()
    total = args.warmup + args.runs
    log("latency: %d warm-up + %d rounds, one instance at a time" % (args.warmup, args.runs))
    for r in range(total):
        order = sides if r % 2 == 0 else sides[::-1]
        for s in order:
            res = one_at_a_time(s, "%s%d-l%d" % (PREFIX, pid, r))
            res["round"] = r
            res["warmup"] = r < args.warmup
            results["latency"].append(res)
        last = results["latency"][-len(sides):]
        log("  round %d/%d: %s" % (r + 1, total, ", ".join(
            "%s %.0f ms" % (x["side"], x["create"]["ms"]) for x in last)))
    for conc in sorted({1, args.concurrency}):
        log("burst: %d instances, concurrency %d, %d rounds" % (args.burst, conc,
                                                               args.burst_runs))
        for r in range(args.burst_runs):
            order = sides if r % 2 == 0 else sides[::-1]
            for s in order:
                names = ["%s%d-c%d-r%d-%d" % (PREFIX, pid, conc, r, i) for i in range(args.burst)]
                res = burst(s, names, conc)
                res["round"] = r
                results["burst"].append(res)
                log("  %s: %.2f instances/s (%d in %.0f ms), delete %.2f/s" % (
                    s.name, res["per_s"], res["n"], res["create_wall_ms"], res["delete_per_s"]))


# ---------------------------------------------------------------- summary


def summarize(results, side_names, args):
    s = {}
    for side in side_names:
        lat = [x for x in results["latency"] if x["side"] == side and not x["warmup"]]
        row = {
            "create_running_ms": stats([x["create"]["ms"] for x in lat]),
            "delete_ms": stats([x["delete"]["ms"] for x in lat]),
        }
        if side == "anchor":
            row["lxd_create_op_ms"] = stats([x["create"]["create_op_ms"] for x in lat])
            row["lxd_start_op_ms"] = stats([x["create"]["start_op_ms"] for x in lat])
            row["lxd_stop_op_ms"] = stats([x["delete"]["stop_op_ms"] for x in lat])
            row["lxd_delete_op_ms"] = stats([x["delete"]["delete_op_ms"] for x in lat])
        else:
            row["api_ack_ms"] = stats([x["create"]["ack_ms"] for x in lat])
            # when each state's event arrived, from the API call (events mode)
            for st in ("creating", "starting", "running"):
                v = stats([x["create"].get("state_events_ms", {}).get(st) for x in lat])
                if v:
                    row["event_%s_ms" % st] = v
            seen = [x["create"]["seen_by"] for x in lat] + [
                c["seen_by"] for b in results["burst"] if b["side"] == side
                for c in b["creates"]]
            # "get" in events mode: an event was missed and the 1 s safety
            # poll stopped the clock; such figures are too high.
            row["running_seen_by"] = {k: seen.count(k) for k in sorted(set(seen))}
        for conc in sorted({1, args.concurrency}):
            b = [x for x in results["burst"] if x["side"] == side and x["concurrency"] == conc]
            row["rate_c%d_per_s" % conc] = stats([x["per_s"] for x in b])
            row["delete_rate_c%d_per_s" % conc] = stats([x["delete_per_s"] for x in b])
            row["burst_c%d_instance_ms" % conc] = stats([v for x in b for v in x["instance_ms"]])
        s[side] = row
    return s


def cases(summary, args):
    """One entry per compared metric: medians, the ratio yun/anchor and the
    target where there is one."""
    defs = [("create_running_ms", "create->running, one at a time", "ms", "<=", 0.1),
            ("rate_c1_per_s", "instances/s, %d back to back" % args.burst, "1/s", ">=", 10.0)]
    if args.concurrency != 1:
        defs.append(("rate_c%d_per_s" % args.concurrency,
                     "instances/s, %d with %d clients" % (args.burst, args.concurrency),
                     "1/s", ">=", 10.0))
    defs += [("burst_c1_instance_ms", "create->running per instance, sequential burst",
              "ms", None, None)]
    if args.concurrency != 1:
        defs.append(("burst_c%d_instance_ms" % args.concurrency,
                     "create->running per instance, %d clients" % args.concurrency,
                     "ms", None, None))
    defs += [("delete_ms", "delete->gone, one at a time", "ms", None, None),
             ("delete_rate_c1_per_s", "deletes/s, sequential", "1/s", None, None)]
    if args.concurrency != 1:
        defs.append(("delete_rate_c%d_per_s" % args.concurrency,
                     "deletes/s, %d clients" % args.concurrency, "1/s", None, None))
    out = []
    for key, label, unit, op, target in defs:
        a = (summary.get("anchor", {}).get(key) or {}).get("median")
        y = (summary.get("yun", {}).get(key) or {}).get("median")
        ratio = y / a if (a and y is not None) else None
        met = None
        if ratio is not None and target is not None:
            met = ratio <= target if op == "<=" else ratio >= target
        out.append({"case": key, "what": label, "unit": unit, "yun": y, "anchor": a,
                    "ratio": ratio, "ratio_is": "yun/anchor",
                    "target": "%s %g" % (op, target) if target else None, "met": met})
    return out


def fmt(v, unit):
    if v is None:
        return "n/a"
    return ("%.1f ms" % v) if unit == "ms" else ("%.2f /s" % v)


def print_table(result):
    c = result["config"]
    print()
    print("API create->running, medians; latency N=%d, bursts of %d x %d rounds" % (
        c["runs"], c["burst"], c["burst_runs"]))
    print("anchor: %s" % result["anchor"])
    print("yun:    %s" % result["yun"])
    print()
    print("%-48s %-12s %-12s %-9s %s" % ("case", "yun", "anchor", "yun/anc", "target"))
    for x in result["cases"]:
        r = "%.3f" % x["ratio"] if x["ratio"] is not None else "n/a"
        t = ""
        if x["target"]:
            t = "%s: %s" % (x["target"], {True: "MET", False: "NOT MET", None: "n/a"}[x["met"]])
        print("%-48s %-12s %-12s %-9s %s" % (x["what"], fmt(x["yun"], x["unit"]),
                                             fmt(x["anchor"], x["unit"]), r, t))
    a = result["summary"].get("anchor")
    if a and a.get("lxd_create_op_ms"):
        print()
        print("LXD's two calls, one at a time: create op %.1f ms + start op %.1f ms (medians)" % (
            a["lxd_create_op_ms"]["median"], a["lxd_start_op_ms"]["median"]))
        print("LXD's delete, one at a time: stop (force) op %.1f ms + delete op %.1f ms" % (
            a["lxd_stop_op_ms"]["median"], a["lxd_delete_op_ms"]["median"]))
    y = result["summary"].get("yun")
    if y and y.get("api_ack_ms"):
        print("yund's POST answered (202) after %.1f ms (median); running seen by %s" % (
            y["api_ack_ms"]["median"], y["running_seen_by"]))
        ev = ["%s %.1f" % (st, y["event_%s_ms" % st]["median"])
              for st in ("creating", "starting", "running") if y.get("event_%s_ms" % st)]
        if ev:
            print("yund's state events, one at a time, ms after the call (medians): " +
                  ", ".join(ev))
        if c["yun_wait"] == "events" and y["running_seen_by"].get("get"):
            print("WARNING: %d times the event for running was missed and the 1 s safety "
                  "poll saw it: those yun figures are too high" % y["running_seen_by"]["get"])
    print()
    for x in result["cases"]:
        print(json.dumps({"benchmark": "api_create", **x}))


# ---------------------------------------------------------------- main


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().splitlines()[-n:])
    except OSError:
        return "(no log)"


def git_rev():
    try:
        return subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def build_type(binary):
    """(buildtype, sanitizer) of the meson build dir holding binary."""
    d = os.path.dirname(binary)
    while d != "/" and not os.path.isdir(os.path.join(d, "meson-info")):
        d = os.path.dirname(d)
    try:
        with open(os.path.join(d, "meson-info/intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        return opts.get("buildtype"), opts.get("b_sanitize")
    except (OSError, ValueError, KeyError):
        return None, None


def find_yund():
    """$YUN_BUILD_DIR's yund, else build-bench's, else the best of build*/:
    no sanitizer first, release before debugoptimized before the rest, then
    the newest."""
    env = os.environ.get("YUN_BUILD_DIR")
    if env:
        p = os.path.join(REPO, env, "src/yund/yund")
        return p if os.access(p, os.X_OK) else None
    p = os.path.join(REPO, "build-bench/src/yund/yund")
    if os.access(p, os.X_OK):
        return p
    rank = {"release": 0, "debugoptimized": 1}
    found = []
    for p in glob.glob(os.path.join(REPO, "build*/src/yund/yund")):
        if os.access(p, os.X_OK):
            bt, san = build_type(p)
            found.append(((san or "none") != "none", rank.get(bt, 2), -os.path.getmtime(p), p))
    return min(found)[-1] if found else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=10,
                    help="one-at-a-time rounds per side (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded rounds first (2)")
    ap.add_argument("--burst", type=int, default=20, help="instances per burst (20)")
    ap.add_argument("--burst-runs", type=int, default=3, help="bursts per side and concurrency (3)")
    ap.add_argument("--concurrency", type=int, default=4, help="clients in the parallel burst (4)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds for one instance (120)")
    side = ap.add_mutually_exclusive_group()
    side.add_argument("--yund", help="start this yund with a temporary --root and --run")
    side.add_argument("--socket", help="use the yund serving on this socket")
    side.add_argument("--anchor-only", action="store_true", help="LXD only")
    ap.add_argument("--yund-arg", action="append", default=[],
                    help="extra argument for the yund started by --yund (repeatable)")
    ap.add_argument("--yun-wait", choices=("events", "poll"), default="events",
                    help="follow GET /v1/events (default) or poll GET /v1/instances/{id}")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="poll interval (5 ms)")
    ap.add_argument("--yun-vcpus", type=int, default=1)
    ap.add_argument("--yun-memory", type=int, default=64, help="memory_mib (64)")
    ap.add_argument("--yun-flavor", help="a flavor instead of --yun-vcpus/--yun-memory")
    ap.add_argument("--lxd-privileged", action="store_true",
                    help="LXD containers with security.privileged=true (default: LXD's "
                         "default, unprivileged)")
    ap.add_argument("--keep-lxd", action="store_true",
                    help="leave an LXD this script started running at the end")
    ap.add_argument("--image", help="busybox image from scripts/mkimage (default: made here)")
    ap.add_argument("--out", help="JSON path (default bench/results/api_create-DATE.json)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("api_create.py: needs root")
        return 2
    # One run at a time: a second one would share (and shut down) the LXD
    # daemon and remove the first one's ybench-* instances as leftovers.
    lockf = open("/run/yun-bench-api_create.lock", "w")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("api_create.py: another run holds /run/yun-bench-api_create.lock")
        return 2
    if not (args.anchor_only or args.yund or args.socket):
        args.yund = find_yund()
        if not args.yund:
            log("api_create.py: no yund binary found (build*/src/yund/yund); "
                "pass --yund PATH, --socket PATH or --anchor-only")
            return 2
    if args.yund:
        args.yund = os.path.abspath(args.yund)

    # SIGTERM/SIGHUP clean up like Ctrl-C does.
    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = datetime.datetime.now()
    tmp = tempfile.mkdtemp(prefix="api_create.", dir="/tmp")
    image = args.image or os.path.join(tmp, "busybox")
    lxd = Lxd(args, tmp)
    yun = None if args.anchor_only else Yund(args, tmp)
    sides = [lxd] + ([yun] if yun else [])
    results = {"latency": [], "burst": []}
    failure, left = None, {}
    load_before = os.getloadavg()
    try:
        if not args.image:
            log("making the busybox image in %s" % image)
            make_image(image)
        lxd.start_daemon()
        stale = lxd.ours()
        if stale:
            log("lxd: removing %d leftover instances %s*" % (len(stale), PREFIX))
            lxd.cleanup()
        lxd.import_image(image)
        if yun:
            yun.start_daemon()
            yun.import_image(image)
            yun.check_capacity(max(args.burst, 1))
        run_all(sides, args, results)
    except (Failure, OSError, subprocess.SubprocessError, KeyboardInterrupt) as e:
        failure = "%s: %s" % (type(e).__name__, e) if not isinstance(e, Failure) else str(e)
        log("api_create.py: %s" % failure)
    load_after = os.getloadavg()
    for s in sides:
        try:
            if s.api:
                left[s.name] = s.cleanup()
        except Exception as e:  # noqa: BLE001 - go on to stop the daemons
            left[s.name] = ["cleanup failed: %s" % e]
    if yun:
        yun.stop_daemon()
    try:
        lxd.stop_daemon()
    except (OSError, subprocess.SubprocessError) as e:
        left.setdefault("anchor", []).append("lxd shutdown: %s" % e)

    names = [s.name for s in sides]
    summary = summarize(results, names, args)
    cs = cases(summary, args)
    priv = "privileged" if args.lxd_privileged else "unprivileged (LXD's default)"
    result = {
        "benchmark": "api_create",
        "started": started.isoformat(timespec="seconds"),
        "anchor": "LXD %s (Debian lxd, %s driver %s), %s storage pool, no network, %s "
                  "containers; POST /1.0/instances + PUT state start, each operation waited on" % (
                      lxd.version, lxd.info.get("driver"), lxd.info.get("driver_version"),
                      lxd.info.get("storage"), priv),
        "yun": ("not run (--anchor-only)" if not yun else
                "yund %s (%s); POST /v1/instances, then state running seen via %s" % (
                    yun.version, "%s, %s build" % (os.path.relpath(args.yund, REPO),
                                                   "/".join(x for x in build_type(args.yund)
                                                            if x and x != "none"))
                    if args.yund else args.socket,
                    "GET /v1/events" if args.yun_wait == "events" else
                    "GET /v1/instances/{id} every %g ms" % args.poll_ms)),
        "host": {"kernel": platform.release(), "nproc": os.cpu_count(),
                 "loadavg_before": load_before, "loadavg_after": load_after,
                 "yun_git": git_rev(), "lxd": lxd.info, "yund": yun.info if yun else None},
        "config": {"runs": args.runs, "warmup": args.warmup, "burst": args.burst,
                   "burst_runs": args.burst_runs, "concurrency": args.concurrency,
                   "yun_wait": args.yun_wait, "poll_ms": args.poll_ms,
                   "yun_size": ({"flavor": args.yun_flavor} if args.yun_flavor else
                                {"vcpus": args.yun_vcpus, "memory_mib": args.yun_memory}),
                   "lxd_privileged": args.lxd_privileged, "image": image},
        "ratios": "yun/anchor for every case: latency target <= 0.1 (10x faster), "
                  "rate target >= 10 (10x the instances/s)",
        "failure": failure,
        "left_behind": left,
        "summary": summary,
        "cases": cs,
        "runs": results,
    }
    out = args.out
    if not out:
        os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
        out = os.path.join(REPO, "bench/results",
                           "api_create-%s.json" % started.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)

    print("api_create: yun %s; load %.2f -> %.2f" % (result["host"]["yun_git"],
                                                     load_before[0], load_after[0]))
    print_table(result)
    leftovers = [x for v in left.values() for x in v]
    print()
    print("results: %s%s%s" % (os.path.relpath(out, REPO),
                                "; FAILED: %s" % failure if failure else "",
                                "; LEFT BEHIND: %s" % leftovers if leftovers else ""))
    if not failure and not leftovers:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failure or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
