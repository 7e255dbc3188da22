#!/usr/bin/env python3
"""yund_api.py - yund as an API client sees it: real daemon, real containers.

    yund_api.py --yund build/src/yund/yund --yun-ct build/src/ct/yun-ct [-k WORD]

Starts a real yund with a temporary --root and --run (so its yun-ct state
root, <run>/ct, is private too) listening on its Unix socket and on TCP
with a token, builds the busybox image with scripts/mkimage, and checks
what a user of the API sees: objects, states, events, logs, error
messages, and what is left on the host (containers, instance directories,
cgroups) after deletions, bad input and kill -9 of yund at awkward moments.

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. Needs root.
Python 3 standard library only (PyYAML, when installed, checks the OpenAPI
document).
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import Failure, Skip, UnixHTTPConnection, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A container command that prints, then waits; TERM ends it at once.
LOOP = ["sh", "-c", "echo hello from $(hostname); trap 'exit 0' TERM; "
        "while true; do sleep 0.1; done"]


class Env:
    yund = None
    yun_ct = None
    tmp = None
    root = None
    run = None
    image_dir = None  # a busybox image made by scripts/mkimage
    port = None
    proc = None
    log = None
    ct_log = None
    starts = 0
    created = set()  # every instance id this run made


def sock_path():
    return os.path.join(Env.run, "yund.sock")


def ct_root():
    return os.path.join(Env.run, "ct")


# ---- the daemon ---------------------------------------------------------------


def start_yund(extra=()):
    """Start yund (a fresh process on the same root); wait until it answers."""
    env = dict(os.environ, YUN_CT_LOG=Env.ct_log)
    Env.starts += 1
    logf = open(Env.log, "a")
    logf.write("=== start %d\n" % Env.starts)
    logf.flush()
    Env.proc = subprocess.Popen(
        [Env.yund, "--root", Env.root, "--run", Env.run, "--yun-ct", Env.yun_ct,
         "--listen", "127.0.0.1:%d" % Env.port, "-v"] + list(extra),
        stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env)
    logf.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        if Env.proc.poll() is not None:
            raise Failure("yund exited with status %d at start; see %s" %
                          (Env.proc.returncode, Env.log))
        try:
            st, body = api("GET", "/v1/health")
            if st == 200:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise Failure("yund did not answer on %s in 15 s" % sock_path())


def stop_yund(sig=signal.SIGTERM):
    if not Env.proc:
        return
    Env.proc.send_signal(sig)
    try:
        Env.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        Env.proc.kill()
        Env.proc.wait()
        raise Failure("yund did not stop on %s in 20 s" % signal.Signals(sig).name)
    status = Env.proc.returncode
    Env.proc = None
    if sig == signal.SIGTERM and status != 0:
        raise Failure("yund exited with status %d after SIGTERM; see %s" % (status, Env.log))


def kill9_yund():
    stop_yund(signal.SIGKILL)


# ---- the API --------------------------------------------------------------------


def api(method, path, body=None, raw=None, headers=None, conn=None, timeout=15):
    """One request; returns (status, parsed JSON or text)."""
    c = conn or UnixHTTPConnection(sock_path(), timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = dict(headers or {})
    if data is not None:
        h.setdefault("Content-Type", "application/json")
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        status = r.status
        ctype = r.getheader("Content-Type") or ""
    finally:
        if conn is None:
            c.close()
    if "json" in ctype:
        return status, json.loads(text)
    return status, text.decode(errors="replace")


def ok(method, path, body=None, want=(200, 201, 202, 204)):
    st, res = api(method, path, body)
    if st not in (want if isinstance(want, tuple) else (want,)):
        raise Failure("%s %s: %d %s" % (method, path, st, json.dumps(res)[:300]))
    return res


def api_big(method, path, data):
    """A request whose body the server refuses before reading it all."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(sock_path())
    head = ("%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (method, path, len(data))).encode()
    try:
        s.sendall(head)
        for off in range(0, len(data), 65536):
            s.sendall(data[off:off + 65536])
    except OSError:
        pass  # refused early: the answer is waiting
    reply = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
            head_end = reply.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(rb"Content-Length: (\d+)", reply[:head_end], re.I)
                if m and len(reply) >= head_end + 4 + int(m.group(1)):
                    break
    except OSError:
        pass
    s.close()
    m = re.match(rb"HTTP/1\.1 (\d+)", reply)
    if not m:
        raise Failure("%s %s (%d bytes): no HTTP answer: %r" % (method, path, len(data),
                                                                reply[:100]))
    body = reply.split(b"\r\n\r\n", 1)[1]
    return int(m.group(1)), json.loads(body)


def expect_error(method, path, body, want_status, want_text, raw=None):
    if raw is not None and len(raw) > (1 << 20):
        st, res = api_big(method, path, raw)
    else:
        st, res = api(method, path, body, raw=raw)
    if st != want_status:
        raise Failure("%s %s %s: status %d, expected %d: %s" %
                      (method, path, (raw or json.dumps(body))[:80], st, want_status,
                       json.dumps(res)[:300]))
    err = res.get("error") if isinstance(res, dict) else None
    if not err or "code" not in err or "message" not in err:
        raise Failure("%s %s: error body is not {error: {code, message}}: %r" %
                      (method, path, res))
    if want_text not in err["message"]:
        raise Failure("%s %s: message %r does not say %r" %
                      (method, path, err["message"], want_text))
    return err


def instances():
    return ok("GET", "/v1/instances")["items"]


def get_instance(ref):
    st, res = api("GET", "/v1/instances/" + ref)
    return res if st == 200 else None


def wait_instance(ref, pred, what, timeout=15):
    deadline = time.time() + timeout
    inst = None
    while time.time() < deadline:
        inst = get_instance(ref)
        if inst is not None and pred(inst):
            return inst
        time.sleep(0.05)
    raise Failure("instance %s: not %s after %ss (last: %s)" %
                  (ref, what, timeout, json.dumps(inst)[:400] if inst else "gone"))


def wait_state(ref, state, timeout=15):
    return wait_instance(ref, lambda i: i["state"] == state, state, timeout)


def wait_gone(ref, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if get_instance(ref) is None:
            return
        time.sleep(0.05)
    raise Failure("instance %s: still there after %ss" % (ref, timeout))


def create(name, **kw):
    body = {"name": name, "image": "busybox", "command": LOOP}
    body.update(kw)
    st, res = api("POST", "/v1/instances", body)
    if st != 202:
        raise Failure("create %s: %d %s" % (name, st, json.dumps(res)[:300]))
    Env.created.add(res["id"])
    if res["state"] != "creating" or res["desired"] != "running":
        raise Failure("create %s: answered state %s desired %s" %
                      (name, res["state"], res["desired"]))
    return res


def delete_all():
    for i in instances():
        api("DELETE", "/v1/instances/" + i["id"])
    for i in instances():
        wait_gone(i["id"], timeout=30)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


# ---- what may be left on the host ------------------------------------------------


def my_cgroup_dirs():
    """Where yun-ct puts container cgroups: "yun" below yund's cgroup (= ours)."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            fstype, opts = parts[sep + 1], parts[sep + 3]
            if fstype == "cgroup2":
                mounts["unified"] = parts[4]
            elif fstype == "cgroup":
                for o in opts.split(","):
                    if o in ("cpu", "cpuacct", "cpuset", "memory", "pids", "freezer"):
                        mounts[o] = parts[4]
    dirs = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for n in (["unified"] if ctrls == "" else ctrls.split(",")):
                if n in mounts:
                    dirs.append(os.path.join(mounts[n], path.lstrip("/"), "yun"))
    return sorted(set(dirs))


def host_leftovers(keep=()):
    """Containers, instance dirs and cgroups of instances not in `keep`."""
    keep = set(keep)
    found = []
    if os.path.isdir(ct_root()):
        found += ["container state " + n for n in os.listdir(ct_root())
                  if not n.startswith(".") and n not in keep]
    idir = os.path.join(Env.root, "instances")
    if os.path.isdir(idir):
        found += ["instance dir " + n for n in os.listdir(idir) if n not in keep]
    ndir = os.path.join(Env.run, "netns")
    if os.path.isdir(ndir):
        found += ["netns " + n for n in os.listdir(ndir) if n not in keep]
    found += ["veth " + n for n in os.listdir("/sys/class/net")
              if n.startswith("yv-") and "i-" + n[3:] in Env.created and "i-" + n[3:] not in keep]
    # Only our instances' cgroups: other yunds on this machine use the same parent.
    for d in my_cgroup_dirs():
        if os.path.isdir(d):
            found += ["cgroup %s/%s" % (d, n) for n in os.listdir(d)
                      if n in Env.created and n not in keep]
    return found


def check_clean(keep=(), timeout=10):
    deadline = time.time() + timeout
    left = host_leftovers(keep)
    while left and time.time() < deadline:
        time.sleep(0.1)
        left = host_leftovers(keep)
    if left:
        raise Failure("left behind: %s" % ", ".join(left[:6]))


# ---- server-sent events ----------------------------------------------------------


class EventReader:
    """Reads GET /v1/events in a thread; events land in self.events."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()
        self.conn = UnixHTTPConnection(sock_path(), timeout=60)
        self.conn.request("GET", "/v1/events")
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise Failure("GET /v1/events: %d" % self.resp.status)
        ctype = self.resp.getheader("Content-Type") or ""
        if not ctype.startswith("text/event-stream"):
            raise Failure("GET /v1/events: content type %r" % ctype)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        ev = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in ev:
                        with self.lock:
                            self.events.append((ev.get("event"), json.loads(ev["data"])))
                    ev = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(":")
                    ev[k] = v[1:] if v.startswith(" ") else v
        except Exception:  # closed under us by close(): the test is over
            pass

    def wait_for(self, pred, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for t, d in self.events:
                    if pred(t, d):
                        return d
            time.sleep(0.02)
        with self.lock:
            seen = ["%s %s" % (t, d.get("state")) for t, d in self.events[-8:]]
        raise Failure("events: no %s after %ss (last: %s)" % (what, timeout, seen))

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


# ---- tests ---------------------------------------------------------------------


def health_and_host():
    h = ok("GET", "/v1/health")
    if h.get("status") != "ok" or not h.get("version"):
        raise Failure("health: %r" % h)
    hosts = ok("GET", "/v1/hosts")["items"]
    if len(hosts) != 1:
        raise Failure("hosts: %d, expected this one" % len(hosts))
    host = hosts[0]
    if host["vcpus"] != os.cpu_count():
        raise Failure("host vcpus %s, this machine has %d" % (host["vcpus"], os.cpu_count()))
    if host["capacity"]["vcpus"] != 4 * os.cpu_count() or host["cpu_overcommit"] != 4.0:
        raise Failure("host capacity %s with over-commit %s, expected 4x" %
                      (host["capacity"], host["cpu_overcommit"]))
    mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    if abs(host["memory_mib"] - mem) > 1:
        raise Failure("host memory %s MiB, this machine has %d" % (host["memory_mib"], mem))
    if not re.match(r"^h-[0-9a-f]{12}$", host["id"]):
        raise Failure("host id %r" % host["id"])
    for k in ("created_at", "updated_at"):
        if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", host[k]):
            raise Failure("host %s %r: not RFC 3339 UTC" % (k, host[k]))
    ok("GET", "/v1/hosts/" + host["id"])


def flavors():
    names = {f["name"]: f for f in ok("GET", "/v1/flavors")["items"]}
    for n, v, m in (("small", 1, 1024), ("medium", 2, 4096), ("large", 4, 8192)):
        if n not in names or names[n]["vcpus"] != v or names[n]["memory_mib"] != m:
            raise Failure("seed flavor %s: %r" % (n, names.get(n)))
    f = ok("POST", "/v1/flavors", {"name": "tiny", "vcpus": 1, "memory_mib": 64}, want=201)
    if not re.match(r"^fl-[0-9a-f]{12}$", f["id"]) or f["disk_gib"] != 0:
        raise Failure("flavor tiny: %r" % f)
    expect_error("POST", "/v1/flavors", {"name": "tiny", "vcpus": 1, "memory_mib": 64}, 409,
                 "flavor tiny: name already taken")
    if ok("GET", "/v1/flavors/tiny")["id"] != f["id"]:
        raise Failure("flavor by name and by id differ")
    ok("DELETE", "/v1/flavors/" + f["id"], want=204)
    expect_error("GET", "/v1/flavors/tiny", None, 404, "flavor tiny: not found")


def image_import():
    st, img = api("POST", "/v1/images", {"name": "busybox", "import": Env.image_dir})
    if st != 202 or img["state"] != "building" or img["source"] != "import:" + Env.image_dir:
        raise Failure("import: %d %r" % (st, img))
    deadline = time.time() + 30
    while img["state"] == "building" and time.time() < deadline:
        time.sleep(0.05)
        img = ok("GET", "/v1/images/busybox")
    if img["state"] != "available":
        raise Failure("import: state %s, failure %s" % (img["state"], img.get("failure")))
    if img["command"] != ["/sbin/init"] or img["os"] != "busybox" or img["size"] <= 0:
        raise Failure("import: manifest not read: %r" % img)
    if not os.path.isfile(os.path.join(img["path"], "rootfs", "bin", "busybox")):
        raise Failure("import: %s has no rootfs/bin/busybox" % img["path"])
    expect_error("POST", "/v1/images", {"name": "busybox", "import": Env.image_dir}, 409,
                 "image busybox: name already taken")


def image_build_busybox():
    ev = EventReader()
    try:
        img = ok("POST", "/v1/images", {"name": "bb-built", "type": "container",
                                        "build": "busybox"}, want=202)
        got = ev.wait_for(lambda t, d: t == "image.state" and d["id"] == img["id"] and
                          d["state"] != "building", "image.state of the build", timeout=60)
    finally:
        ev.close()
    if got["state"] != "available":
        raise Failure("build busybox: %s (%s)" % (got["state"], got.get("failure")))
    path = got["path"]
    ok("DELETE", "/v1/images/bb-built", want=204)
    expect_error("GET", "/v1/images/bb-built", None, 404, "image bb-built: not found")
    deadline = time.time() + 5
    while os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    if os.path.exists(path):
        raise Failure("deleted image: %s still there" % path)
    # A failing build says why: a stand-in mkimage that fails.
    fake = os.path.join(Env.tmp, "failing-mkimage")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho 'mkimage: debootstrap failed: no archive reachable' >&2\n"
                "exit 1\n")
    os.chmod(fake, 0o755)
    stop_yund()
    start_yund(["--mkimage", fake])
    try:
        img = ok("POST", "/v1/images", {"name": "deb-nope", "build": "debian"}, want=202)
        deadline = time.time() + 10
        while img["state"] == "building" and time.time() < deadline:
            time.sleep(0.05)
            img = ok("GET", "/v1/images/deb-nope")
        if img["state"] != "failed" or "no archive reachable" not in (img["failure"] or ""):
            raise Failure("failed build: %r" % img)
        expect_error("POST", "/v1/instances", {"image": "deb-nope"}, 409,
                     "image deb-nope: its build failed")
        ok("DELETE", "/v1/images/deb-nope", want=204)
        if any(n.startswith(".tmp-") for n in os.listdir(os.path.join(Env.root, "images"))):
            raise Failure("a failed build left its work dir")
    finally:
        stop_yund()
        start_yund()


def instance_lifecycle():
    inst = create("web-1")
    iid = inst["id"]
    if not re.match(r"^i-[0-9a-f]{12}$", iid):
        raise Failure("instance id %r" % iid)
    small = ok("GET", "/v1/flavors/small")
    if inst["flavor"] != small["id"] or inst["vcpus"] != 1 or inst["memory_mib"] != 1024:
        raise Failure("default flavor not applied: %r" % inst)
    run = wait_state("web-1", "running")
    pid = run["pid"]
    if not pid or not pid_alive(pid):
        raise Failure("running without a live pid: %r" % run)
    if [i["id"] for i in instances()] != [iid]:
        raise Failure("list: %r" % instances())
    if get_instance(iid)["name"] != "web-1":
        raise Failure("show by id differs from by name")
    # The console log has the container's output.
    deadline = time.time() + 5
    logs = ""
    while "hello from web-1" not in logs and time.time() < deadline:
        logs = api("GET", "/v1/instances/web-1/logs")[1]
        time.sleep(0.05)
    if "hello from web-1" not in logs:
        raise Failure("logs: %r" % logs[:200])
    # stop
    st = ok("POST", "/v1/instances/web-1/stop", want=202)
    if st["desired"] != "stopped":
        raise Failure("stop answered desired %s" % st["desired"])
    stopped = wait_state("web-1", "stopped")
    if stopped["pid"] is not None or pid_alive(pid):
        raise Failure("stopped but pid %s alive" % pid)
    if stopped["exit_status"] != 0 or stopped["failure"]:
        raise Failure("an asked-for stop recorded as %s / %s" %
                      (stopped["exit_status"], stopped["failure"]))
    # yun-ct's record of the ended run goes right after yund read it.
    check_clean(keep=[iid])
    deadline = time.time() + 5
    while os.path.exists(os.path.join(ct_root(), iid)) and time.time() < deadline:
        time.sleep(0.05)
    if os.path.exists(os.path.join(ct_root(), iid)):
        raise Failure("stopped instance still has its container state dir")
    # start
    ok("POST", "/v1/instances/web-1/start", want=202)
    run2 = wait_state("web-1", "running")
    if run2["pid"] == pid or not pid_alive(run2["pid"]):
        raise Failure("start: pid %s (before %s)" % (run2["pid"], pid))
    # reboot
    ok("POST", "/v1/instances/web-1/reboot", want=202)
    run3 = wait_instance("web-1", lambda i: i["state"] == "running" and i["pid"] != run2["pid"],
                         "running again after reboot")
    if pid_alive(run2["pid"]):
        raise Failure("reboot: the old init %d still runs" % run2["pid"])
    logs = api("GET", "/v1/instances/web-1/logs")[1]
    if logs.count("hello from web-1") < 2:
        raise Failure("logs do not keep earlier runs: %r" % logs[:300])
    st, tail = api("GET", "/v1/instances/web-1/logs?tail=1")
    if st != 200 or tail.count("\n") > 1 or "hello" not in tail:
        raise Failure("logs?tail=1: %d %r" % (st, tail[:200]))
    expect_error("GET", "/v1/instances/web-1/logs?tail=x", None, 400, "query tail")
    # delete
    d = ok("DELETE", "/v1/instances/web-1", want=202)
    if d["desired"] != "deleted" or d["state"] != "deleting":
        raise Failure("delete answered %s/%s" % (d["desired"], d["state"]))
    wait_gone(iid)
    if pid_alive(run3["pid"]):
        raise Failure("deleted instance's init %d still runs" % run3["pid"])
    check_clean()
    expect_error("POST", "/v1/instances/web-1/start", None, 404, "instance web-1: not found")


def explicit_sizes_and_host_allocation():
    inst = create("sized", vcpus=2, memory_mib=256, disk_gib=1,
                  env=["GREETING=hi"], command=["sh", "-c", "echo $GREETING; exec sleep 1000"])
    if inst["flavor"] is not None or inst["vcpus"] != 2 or inst["memory_mib"] != 256:
        raise Failure("explicit sizes: %r" % inst)
    host = ok("GET", "/v1/hosts")["items"][0]
    if host["allocated"]["vcpus"] != 2 or host["allocated"]["memory_mib"] != 256:
        raise Failure("host allocation: %r" % host["allocated"])
    wait_state("sized", "running")
    deadline = time.time() + 5
    while "hi" not in api("GET", "/v1/instances/sized/logs")[1] and time.time() < deadline:
        time.sleep(0.05)
    if "hi" not in api("GET", "/v1/instances/sized/logs")[1]:
        raise Failure("env not passed to the container")
    # Memory limit applied (v1 memory cgroup on this host, or v2 memory.max).
    limit = None
    for d in my_cgroup_dirs():
        for f in ("memory.limit_in_bytes", "memory.max"):
            p = os.path.join(d, inst["id"], f)
            if os.path.exists(p):
                limit = open(p).read().strip()
    if limit is not None and limit != str(256 << 20):
        raise Failure("memory limit %s, expected %d" % (limit, 256 << 20))
    ok("DELETE", "/v1/instances/sized", want=202)
    wait_gone("sized")
    check_clean()


def events_stream():
    ev = EventReader()
    try:
        inst = create("ev-1")
        ev.wait_for(lambda t, d: t == "instance.created" and d["id"] == inst["id"],
                    "instance.created")
        for state in ("starting", "running"):
            ev.wait_for(lambda t, d: t == "instance.state" and d["id"] == inst["id"] and
                        d["state"] == state, "instance.state " + state)
        ok("POST", "/v1/instances/ev-1/stop", want=202)
        ev.wait_for(lambda t, d: t == "instance.state" and d["id"] == inst["id"] and
                    d["state"] == "stopped", "instance.state stopped")
        ok("DELETE", "/v1/instances/ev-1", want=202)
        ev.wait_for(lambda t, d: t == "instance.deleted" and d["id"] == inst["id"],
                    "instance.deleted")
    finally:
        ev.close()
    wait_gone("ev-1")


def bad_input_changes_nothing():
    keeper = create("keeper")
    wait_state("keeper", "running")
    before = json.dumps(sorted(i["id"] for i in instances()))
    host = ok("GET", "/v1/hosts")["items"][0]
    too_much = host["capacity"]["memory_mib"] * 2
    cases = [
        ("POST", "/v1/instances", None, 400, "invalid JSON", b"{"),
        ("POST", "/v1/instances", None, 400, "invalid JSON", b"{\"name\": \"x\",}"),
        ("POST", "/v1/instances", None, 400, "must be a JSON object", b"[1, 2]"),
        ("POST", "/v1/instances", None, 400, "body: missing", b""),
        ("POST", "/v1/instances", None, 400, "invalid JSON", b"{\"image\": \"busybox\", "
                                                             b"\"image\": \"x\"}"),
        ("POST", "/v1/instances", {"image": "busybox", "bogus": 1}, 400, "field bogus: unknown",
         None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": "2", "memory_mib": 64}, 400,
         "field vcpus: must be an integer", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 1.5, "memory_mib": 64}, 400,
         "field vcpus: must be an integer", None),
        ("POST", "/v1/instances", {"image": 7}, 400, "field image: must be a string", None),
        ("POST", "/v1/instances", {"name": "x"}, 400, "field image: required", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 1, "memory_mib": 10 ** 12},
         422, "field memory_mib: 1000000000000 is out of range", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 0, "memory_mib": 64}, 422,
         "field vcpus: 0 is out of range", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": -1, "memory_mib": 64}, 422,
         "field vcpus: -1 is out of range", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 1, "memory_mib": 64,
                                   "disk_gib": 10 ** 9}, 422, "field disk_gib", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 1}, 400,
         "field memory_mib: required with vcpus", None),
        ("POST", "/v1/instances", {"image": "busybox", "flavor": "small", "vcpus": 1,
                                   "memory_mib": 64}, 400, "not both", None),
        ("POST", "/v1/instances", {"name": "a/b", "image": "busybox"}, 400,
         "'/' not allowed", None),
        ("POST", "/v1/instances", {"name": "..", "image": "busybox"}, 400,
         "'.' not allowed", None),
        ("POST", "/v1/instances", {"name": "../../etc/passwd", "image": "busybox"}, 400,
         "not allowed", None),
        ("POST", "/v1/instances", {"name": "", "image": "busybox"}, 400, "must not be empty",
         None),
        ("POST", "/v1/instances", {"name": "x" * 64, "image": "busybox"}, 422,
         "longer than 63", None),
        ("POST", "/v1/instances", {"name": "i-0123456789ab", "image": "busybox"}, 400,
         "form of an id", None),
        ("POST", "/v1/instances", {"name": "nl\nx", "image": "busybox"}, 400,
         "not allowed", None),
        ("POST", "/v1/instances", {"image": "nope"}, 404, "image nope: not found", None),
        ("POST", "/v1/instances", {"image": "busybox", "flavor": "nope"}, 404,
         "flavor nope: not found", None),
        ("POST", "/v1/instances", {"image": "busybox", "network": "nope"}, 404,
         "network nope: not found", None),
        ("POST", "/v1/instances", {"name": "keeper", "image": "busybox"}, 409,
         "instance keeper: name already taken", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 1, "memory_mib": too_much},
         507, "does not fit on host", None),
        ("POST", "/v1/instances", {"image": "busybox", "vcpus": 256, "memory_mib": 64},
         507, "vCPUs requested", None),
        ("POST", "/v1/instances", {"image": "busybox", "type": "microvm"}, 422,
         "image busybox: is a container image, not for microvm instances", None),
        ("POST", "/v1/instances", {"image": "busybox", "type": "vm"}, 422,
         "field type", None),
        ("POST", "/v1/instances", {"image": "busybox", "restart_policy": "sometimes"}, 422,
         "field restart_policy", None),
        ("POST", "/v1/instances", {"image": "busybox", "env": ["NOEQUALS"]}, 422,
         "field env[0]", None),
        ("POST", "/v1/instances", {"image": "busybox", "command": []}, 422,
         "field command: 0 items", None),
        ("POST", "/v1/instances", {"image": "busybox", "command": ["sh", 1]}, 400,
         "field command[1]: must be a string", None),
        ("POST", "/v1/instances", {"image": "busybox", "volumes": ["v1:relative"]}, 422,
         "field volumes", None),
        ("POST", "/v1/instances", {"image": "busybox", "volumes": ["nope"]}, 404,
         "volume nope: not found", None),
        ("POST", "/v1/instances", {"image": "busybox", "user_data": "x" * 70000}, 422,
         "field user_data: longer than", None),
        ("POST", "/v1/instances", None, 413, "larger than 1 MiB",
         b"{\"user_data\": \"" + b"x" * (2 << 20) + b"\"}"),
        ("POST", "/v1/instances", None, 400, "invalid JSON", b"{\"name\": \"a\\u0000b\"}"),
        ("POST", "/v1/images", {"name": "x", "import": "relative/dir"}, 422,
         "must be an absolute path", None),
        ("POST", "/v1/images", {"name": "x", "import": Env.tmp}, 422,
         "not an image made by scripts/mkimage", None),
        ("POST", "/v1/images", {"name": "x", "import": "/nonexistent/dir"}, 422,
         "/nonexistent/dir", None),
        ("POST", "/v1/images", {"name": "x", "build": "windows"}, 422,
         "must be busybox or debian", None),
        ("POST", "/v1/images", {"name": "x"}, 400, "give exactly one", None),
        ("POST", "/v1/images", {"name": "x", "build": "busybox", "type": "microvm"}, 400,
         "field kernel: required to build a microvm image", None),
        ("DELETE", "/v1/images/busybox", None, 409, "image busybox: used by instance keeper",
         None),
        ("DELETE", "/v1/flavors/small", None, 409, "flavor small: used by instance keeper",
         None),
        ("POST", "/v1/flavors", {"name": "big", "vcpus": 1, "memory_mib": 1 << 40}, 422,
         "field memory_mib", None),
        ("POST", "/v1/networks", {"name": "n1", "cidr": "10.0.0.1/24"}, 422, "host bits set",
         None),
        ("POST", "/v1/networks", {"name": "n1", "cidr": "banana"}, 422, "IPv4 prefix", None),
        ("POST", "/v1/instances/keeper/stop", {"timeout": -1}, 422, "field timeout", None),
        ("POST", "/v1/instances/keeper/stop", {"force": True}, 400, "field force: unknown",
         None),
        ("POST", "/v1/instances/nope/stop", None, 404, "instance nope: not found", None),
        ("GET", "/v1/instances/nope", None, 404, "instance nope: not found", None),
        ("DELETE", "/v1/instances/nope", None, 404, "instance nope: not found", None),
        ("DELETE", "/v1/images/nope", None, 404, "image nope: not found", None),
        ("DELETE", "/v1/flavors/nope", None, 404, "flavor nope: not found", None),
        ("DELETE", "/v1/networks/nope", None, 404, "network nope: not found", None),
        ("GET", "/v1/hosts/nope", None, 404, "host nope: not found", None),
        ("GET", "/v1/instances/nope/logs", None, 404, "instance nope: not found", None),
        ("POST", "/v1/instances/nope/reboot", None, 404, "instance nope: not found", None),
        ("POST", "/v1/instances/keeper/reboot", {"x": 1}, 400, "field x: unknown", None),
        ("POST", "/v1/instances/keeper/pause", None, 422,
         "instance keeper: pausing containers is not supported yet (this is a container", None),
        ("POST", "/v1/instances/keeper/resume", None, 422,
         "pausing containers is not supported yet", None),
        ("POST", "/v1/instances/nope/pause", None, 404, "instance nope: not found", None),
        ("POST", "/v1/instances/keeper/pause", {"x": 1}, 400, "field x: unknown", None),
        ("DELETE", "/v1/instances/keeper", None, 400, "body: invalid JSON", b"{oops"),
        ("GET", "/v1/nothing", None, 404, "path /v1/nothing: not found", None),
        ("PUT", "/v1/instances", None, 405, "method PUT not allowed", None),
        ("DELETE", "/v1/instances", None, 405, "allowed: GET, POST", None),
    ]
    for method, path, body, status, text, raw in cases:
        expect_error(method, path, body, status, text, raw=raw)
    # The same without Content-Length (chunked): read, dropped, refused.
    c = UnixHTTPConnection(sock_path())
    try:
        c.request("POST", "/v1/instances", body=iter([b"{\"user_data\": \""] +
                                                   [b"x" * 65536] * 24 + [b"\"}"]),
                  headers={"Content-Type": "application/json"}, encode_chunked=True)
        r = c.getresponse()
        res = json.loads(r.read())
    finally:
        c.close()
    if r.status != 413 or res["error"]["code"] != "too_large":
        raise Failure("chunked 1.5 MiB body: %d %r" % (r.status, res))
    after = json.dumps(sorted(i["id"] for i in instances()))
    if before != after:
        raise Failure("bad input changed the instance list: %s -> %s" % (before, after))
    check_clean(keep=[keeper["id"]])
    if ok("GET", "/v1/hosts")["items"][0]["allocated"]["instances"] != 1:
        raise Failure("bad input changed the host's allocation")
    ok("DELETE", "/v1/instances/keeper", want=202)
    wait_gone("keeper")


def capacity_admission():
    """The pool is 4 x CPUs vCPUs: fill it exactly, then one more is refused."""
    cap = ok("GET", "/v1/hosts")["items"][0]["capacity"]["vcpus"]
    made = []
    for k in range(cap):
        made.append(create("cap-%d" % k, vcpus=1, memory_mib=32)["id"])
    expect_error("POST", "/v1/instances", {"name": "cap-over", "image": "busybox", "vcpus": 1,
                                           "memory_mib": 32}, 507, "0 of %d free" % cap)
    if get_instance("cap-over") is not None:
        raise Failure("a refused create left an instance")
    # Stopped instances still hold their share; deleting frees it.
    ok("DELETE", "/v1/instances/" + made[0], want=202)
    wait_gone(made[0])
    create("cap-after", vcpus=1, memory_mib=32)
    delete_all()
    check_clean()


def tcp_needs_the_token():
    token_path = os.path.join(Env.root, "token")
    mode = os.stat(token_path).st_mode & 0o777
    if mode != 0o600:
        raise Failure("token file mode %o, expected 600" % mode)
    token = open(token_path).read().strip()

    def tcp(headers):
        c = http.client.HTTPConnection("127.0.0.1", Env.port, timeout=10)
        try:
            return api("GET", "/v1/health", headers=headers, conn=c)
        finally:
            c.close()

    st, res = tcp({})
    if st != 401 or res["error"]["code"] != "unauthorized":
        raise Failure("TCP without a token: %d %r" % (st, res))
    st, res = tcp({"Authorization": "Bearer " + token[:-1] + ("0" if token[-1] != "0" else "1")})
    if st != 401:
        raise Failure("TCP with a wrong token: %d" % st)
    st, res = tcp({"Authorization": "Basic " + token})
    if st != 401:
        raise Failure("TCP with a Basic credential: %d" % st)
    st, res = tcp({"Authorization": "Bearer " + token})
    if st != 200 or res.get("status") != "ok":
        raise Failure("TCP with the token: %d %r" % (st, res))
    # A body sent without a token is not read, let alone acted on.
    c = http.client.HTTPConnection("127.0.0.1", Env.port, timeout=10)
    try:
        st, res = api("POST", "/v1/flavors", {"name": "sneaky", "vcpus": 1, "memory_mib": 64},
                      conn=c)
    finally:
        c.close()
    if st != 401 or api("GET", "/v1/flavors/sneaky")[0] != 404:
        raise Failure("unauthenticated POST over TCP: %d" % st)


def restart_adopts_running_instances():
    a = create("adopt-a")
    run = wait_state("adopt-a", "running")
    stop_yund(signal.SIGTERM)
    if not pid_alive(run["pid"]):
        raise Failure("SIGTERM of yund took instance adopt-a with it")
    start_yund()
    again = wait_state("adopt-a", "running")
    if again["pid"] != run["pid"]:
        raise Failure("after restart: pid %s, before %s (not adopted)" % (again["pid"], run["pid"]))
    kill9_yund()
    if not pid_alive(run["pid"]):
        raise Failure("kill -9 of yund took instance adopt-a with it")
    start_yund()
    again = wait_state("adopt-a", "running")
    if again["pid"] != run["pid"]:
        raise Failure("after kill -9: pid %s, before %s" % (again["pid"], run["pid"]))
    # Output while yund was down is in the log too (the relay is not yund).
    ok("DELETE", "/v1/instances/" + a["id"], want=202)
    wait_gone(a["id"])
    check_clean()


def kill9_mid_create():
    """kill -9 right after create answers, at several delays: each comes up exactly once."""
    made = []
    for k, delay in enumerate((0, 0.002, 0.01, 0.03, 0.08, 0.15)):
        made.append(create("mc-%d" % k)["id"])
        time.sleep(delay)
        kill9_yund()
        start_yund()
    for iid in made:
        wait_state(iid, "running", timeout=30)
    # One container per instance, nothing else.
    time.sleep(0.3)
    names = sorted(n for n in os.listdir(ct_root()) if not n.startswith("."))
    if names != sorted(made):
        raise Failure("containers %s, instances %s" % (names, sorted(made)))
    # One console relay (a `yun-ct run` leading its own session) per instance; the
    # supervisor, a fork of it, shows the same command line in another session.
    ps = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True,
                        text=True).stdout.splitlines()
    for iid in made:
        cfg = os.path.join(Env.root, "instances", iid, "ct.json")
        leaders = [l for l in ps if cfg in l and l.split()[0] == l.split()[1]]
        if len(leaders) != 1:
            raise Failure("instance %s: %d yun-ct run relays" % (iid, len(leaders)))
    delete_all()
    check_clean()


def kill9_mid_delete():
    made = [create("md-%d" % k)["id"] for k in range(4)]
    pids = [wait_state(i, "running")["pid"] for i in made]
    for k, iid in enumerate(made):
        ok("DELETE", "/v1/instances/" + iid, want=202)
        time.sleep((0, 0.005, 0.02, 0.05)[k])
        kill9_yund()
        start_yund()
        # Acknowledged: it must stay deleted whatever the restart found.
        inst = get_instance(iid)
        if inst is not None and inst["desired"] != "deleted":
            raise Failure("instance %s: delete lost across kill -9 (%s)" % (iid, inst["desired"]))
    for iid in made:
        wait_gone(iid, timeout=30)
    for p in pids:
        if pid_alive(p):
            raise Failure("deleted instance's init %d still runs" % p)
    check_clean()


def killed_init_restart_policy():
    always = create("rp-always", restart_policy="always")
    no = create("rp-no", restart_policy="no")
    onf = create("rp-onf", restart_policy="on-failure",
                 command=["sh", "-c", "echo once; sleep 0.3; exit 0"])
    pa = wait_state("rp-always", "running")["pid"]
    pn = wait_state("rp-no", "running")["pid"]
    os.kill(pa, signal.SIGKILL)
    os.kill(pn, signal.SIGKILL)
    a = wait_instance("rp-always", lambda i: i["state"] == "running" and i["pid"] not in (None, pa)
                      and i["restart_count"] == 1, "restarted once")
    if a["exit_status"] != 137 or "signal 9" not in (a["failure"] or ""):
        raise Failure("restarted instance does not say how its last run ended: %r" % a)
    n = wait_instance("rp-no", lambda i: i["state"] == "failed", "failed")
    if n["desired"] != "stopped" or n["exit_status"] != 137 or n["restart_count"] != 0 or \
            "killed by signal 9" not in (n["failure"] or ""):
        raise Failure("policy no: %r" % n)
    o = wait_instance("rp-onf", lambda i: i["state"] == "stopped", "stopped after exit 0",
                      timeout=20)
    if o["exit_status"] != 0 or o["restart_count"] != 0 or o["failure"]:
        raise Failure("on-failure after exit 0: %r" % o)
    # A start that cannot work fails with the reason, and no restart loop for "no".
    bad = create("rp-bad", command=["/nonexistent"])
    b = wait_instance("rp-bad", lambda i: i["state"] == "failed", "failed", timeout=20)
    if "/nonexistent" not in (b["failure"] or "") or b["exit_status"] != 127:
        raise Failure("start failure: %r" % b)
    # And a failed one starts again on request.
    ok("POST", "/v1/instances/rp-no/start", want=202)
    wait_state("rp-no", "running")
    for x in (always, no, onf, bad):
        ok("DELETE", "/v1/instances/" + x["id"], want=202)
    for x in (always, no, onf, bad):
        wait_gone(x["id"])
    check_clean()


def dead_supervisor_is_failure():
    inst = create("sup-kill")
    wait_state("sup-kill", "running")
    st = json.load(open(os.path.join(ct_root(), inst["id"], "state.json")))
    os.kill(st["supervisor_pid"], signal.SIGKILL)
    f = wait_instance("sup-kill", lambda i: i["state"] == "failed", "failed")
    if "supervisor" not in (f["failure"] or ""):
        raise Failure("supervisor death: %r" % f)
    check_clean(keep=[inst["id"]])
    deadline = time.time() + 5
    while os.path.exists(os.path.join(ct_root(), inst["id"])) and time.time() < deadline:
        time.sleep(0.05)
    if os.path.exists(os.path.join(ct_root(), inst["id"])):
        raise Failure("dead container's state dir left")
    ok("DELETE", "/v1/instances/sup-kill", want=202)
    wait_gone(inst["id"])
    check_clean()


def links():
    return set(os.listdir("/sys/class/net"))


def network_attach():
    """Two containers on one network reach each other; all of it goes with delete."""
    net = None
    for third in (213, 214, 215, 216):
        st, res = api("POST", "/v1/networks", {"name": "n1", "cidr": "10.%d.77.0/24" % third})
        if st == 202:
            net = res
            break
        if st != 409:
            raise Failure("create network: %d %r" % (st, res))
    if net is None:
        raise Skip("no free 10.21x.77.0/24 on this host")
    deadline = time.time() + 15
    while net["state"] != "active" and time.time() < deadline:
        time.sleep(0.05)
        net = ok("GET", "/v1/networks/n1")
    if net["state"] != "active":
        raise Failure("network n1: %s" % net["state"])
    bridge = "yb-" + net["id"][4:]
    if net["bridge"] != bridge or bridge not in links():
        raise Failure("network n1: bridge %s, links %s" % (net["bridge"], bridge in links()))
    prefix = net["cidr"].rsplit(".", 1)[0] + "."
    if net["gateway"] != prefix + "1":
        raise Failure("network n1: gateway %s" % net["gateway"])
    expect_error("POST", "/v1/networks", {"name": "n2", "cidr": prefix + "128/25"}, 409,
                 "overlaps")
    a = create("na", network="n1")
    ra = wait_state("na", "running")
    if not (ra["ip"] or "").startswith(prefix) or ra["ip"] == net["gateway"] or not ra["mac"]:
        raise Failure("instance na: ip %s mac %s" % (ra["ip"], ra["mac"]))
    b = create("nb", network="n1", command=["sh", "-c", "ping -c 1 -W 3 %s && echo PING-OK; "
                                            "exec sleep 1000" % ra["ip"]])
    rb = wait_state("nb", "running")
    if rb["ip"] == ra["ip"]:
        raise Failure("two instances got address %s" % ra["ip"])
    deadline = time.time() + 10
    while "PING-OK" not in api("GET", "/v1/instances/nb/logs")[1] and time.time() < deadline:
        time.sleep(0.1)
    if "PING-OK" not in api("GET", "/v1/instances/nb/logs")[1]:
        raise Failure("nb cannot reach na (%s): %r" % (ra["ip"],
                                                       api("GET", "/v1/instances/nb/logs")[1]))
    expect_error("DELETE", "/v1/networks/n1", None, 409, "network n1: used by instance")
    # A restart keeps addresses (and the port is repaired, not remade elsewhere).
    ok("POST", "/v1/instances/na/reboot", want=202)
    ra2 = wait_instance("na", lambda i: i["state"] == "running" and i["pid"] != ra["pid"],
                        "running after reboot")
    if ra2["ip"] != ra["ip"]:
        raise Failure("reboot changed the address %s -> %s" % (ra["ip"], ra2["ip"]))
    for x in (a, b):
        ok("DELETE", "/v1/instances/" + x["id"], want=202)
    for x in (a, b):
        wait_gone(x["id"])
    for x in (a, b):
        veth = "yv-" + x["id"][2:]
        if veth in links() or os.path.exists(os.path.join(Env.run, "netns", x["id"])):
            raise Failure("instance %s: veth or netns left" % x["id"])
    ok("DELETE", "/v1/networks/n1", want=202)
    deadline = time.time() + 10
    while api("GET", "/v1/networks/n1")[0] != 404 and time.time() < deadline:
        time.sleep(0.05)
    if api("GET", "/v1/networks/n1")[0] != 404 or bridge in links():
        raise Failure("network n1: still there after delete")
    check_clean()


def openapi_documents_every_route():
    try:
        import yaml
    except ImportError:
        raise Skip("python3-yaml not installed")
    doc = yaml.safe_load(open(os.path.join(REPO, "docs", "api", "yund.yaml")))
    if not str(doc.get("openapi", "")).startswith("3."):
        raise Failure("docs/api/yund.yaml: not OpenAPI 3")
    src = open(os.path.join(REPO, "src", "yund", "api", "v1.c")).read()
    routes = re.findall(r'\{"(GET|POST|DELETE|PUT|PATCH)", "([^"]+)", v1_\w+\}', src)
    if len(routes) < 20:
        raise Failure("found only %d routes in src/yund/api/v1.c" % len(routes))
    missing = [m + " " + p for m, p in routes
               if m.lower() not in (doc["paths"].get(p) or {})]
    if missing:
        raise Failure("not in docs/api/yund.yaml: %s" % ", ".join(missing))
    for p, ops in doc["paths"].items():
        for m in ops:
            if m in ("get", "post", "delete") and (m.upper(), p) not in routes:
                raise Failure("documented but not served: %s %s" % (m.upper(), p))


TESTS = [
    health_and_host,
    flavors,
    image_import,
    openapi_documents_every_route,
    instance_lifecycle,
    explicit_sizes_and_host_allocation,
    events_stream,
    network_attach,
    bad_input_changes_nothing,
    capacity_admission,
    tcp_needs_the_token,
    killed_init_restart_policy,
    dead_supervisor_is_failure,
    restart_adopts_running_instances,
    kill9_mid_create,
    kill9_mid_delete,
    image_build_busybox,
]

SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehavior")


def sanitizer_reports():
    """Sanitizer reports in yund's log, the supervisors' log and the console logs."""
    found = []
    paths = [Env.log, Env.ct_log]
    idir = os.path.join(Env.root, "instances")
    if os.path.isdir(idir):
        paths += [os.path.join(idir, d, "console.log") for d in os.listdir(idir)]
    for p in paths:
        try:
            text = open(p, errors="replace").read()
        except OSError:
            continue
        for line in text.splitlines():
            if SANITIZER.search(line):
                found.append("%s: %s" % (os.path.basename(p), line.strip()[:160]))
    return found


def finish_run(passed, failed, cleanup=None, extra_checks=()):
    """After the tests: clean up through the API (cleanup(), else delete_all), check
    nothing is left (check_clean and extra_checks), stop yund, look for sanitizer
    reports, remove what a failure left; prints the verdict line, returns the exit status."""
    # Whatever a failed test left, through the API; then a clean shutdown.
    try:
        if Env.proc is None or Env.proc.poll() is not None:
            start_yund()
        (cleanup or delete_all)()
        for img in ok("GET", "/v1/images")["items"]:
            api("DELETE", "/v1/images/" + img["id"])
        check_clean()
        for check in extra_checks:
            check()
        stop_yund(signal.SIGTERM)
        print("ok - shutdown: clean, nothing left (%s)" % Env.tmp)
        passed += 1
    except (Failure, OSError, ValueError, KeyError) as e:
        print("not ok - shutdown: %s" % e)
        failed += 1
        if Env.proc:
            Env.proc.kill()
    reports = sanitizer_reports()
    if reports:
        print("not ok - sanitizers: %s" % "; ".join(reports[:4]))
        failed += 1
    # Containers a failure left behind, whatever state yund is in.
    if os.path.isdir(ct_root()):
        for cid in os.listdir(ct_root()):
            if not cid.startswith("."):
                subprocess.run([Env.yun_ct, "rm", "-f", cid], env=dict(os.environ,
                               YUN_CT_ROOT=ct_root()), capture_output=True, timeout=30)
    # The network module keeps <run>/netns bind-mounted on itself (as iproute2
    # does /run/netns): a host's run dir keeps it, a test's goes.
    ndir = os.path.join(Env.run, "netns")
    with open("/proc/self/mounts") as f:
        mounted = any(line.split()[1] == ndir for line in f)
    if mounted:
        subprocess.run(["umount", "-l", ndir], capture_output=True)
    if failed == 0:
        subprocess.run(["rm", "-rf", Env.tmp])
    else:
        print("# logs kept in %s" % Env.tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yund", required=True)
    ap.add_argument("--yun-ct", required=True)
    ap.add_argument("--image", help="a busybox image dir from scripts/mkimage (else built)")
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.yund = os.path.abspath(args.yund)
    Env.yun_ct = os.path.abspath(args.yun_ct)
    if os.geteuid() != 0:
        print("not ok - yund_api: needs root")
        print("0 passed, 1 failed")
        return 1
    Env.tmp = tempfile.mkdtemp(prefix="yund-e2e.")
    os.chmod(Env.tmp, 0o711)
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.log = os.path.join(Env.tmp, "yund.log")
    Env.ct_log = os.path.join(Env.tmp, "supervisors.log")
    Env.port = free_port()
    if args.image:
        Env.image_dir = os.path.abspath(args.image)
    else:
        Env.image_dir = os.path.join(Env.tmp, "busybox-image")
        subprocess.run([os.path.join(REPO, "scripts", "mkimage"), "busybox", Env.image_dir],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    passed = failed = 0
    try:
        start_yund()
    except Failure as e:
        print("not ok - start yund: %s" % e)
        print("0 passed, 1 failed")
        return 1
    needs_image = args.filter and "image_import" not in (args.filter or "")
    for t in TESTS:
        if args.filter and args.filter not in t.__name__ and \
                not (needs_image and t is image_import):
            continue
        start = time.time()
        try:
            if Env.proc is None or Env.proc.poll() is not None:
                start_yund()
            t()
            print("ok - %s (%.1fs)" % (t.__name__, time.time() - start))
            passed += 1
        except Skip as e:
            print("ok - %s # SKIP %s" % (t.__name__, e))
            passed += 1
        except (Failure, OSError, ValueError, KeyError, TypeError,
                http.client.HTTPException) as e:
            print("not ok - %s: %r" % (t.__name__, e) if not isinstance(e, Failure)
                  else "not ok - %s: %s" % (t.__name__, e))
            failed += 1
            # Start the next test from a clean slate.
            try:
                if Env.proc is None or Env.proc.poll() is not None:
                    start_yund()
                delete_all()
            except (Failure, OSError, ValueError, KeyError) as e2:
                print("# cleanup after %s: %s" % (t.__name__, e2))
        sys.stdout.flush()
    return finish_run(passed, failed)


if __name__ == "__main__":
    sys.exit(main())
