#!/usr/bin/env python3
"""yund_volumes.py - yund's volumes and snapshots as an API client sees them.

    yund_volumes.py --yund build/src/yund/yund --yun-ct build/src/ct/yun-ct [-k WORD]

Starts a real yund (temporary --root and --run, as tests/e2e/yund_api.py,
whose helpers it uses) and checks: a volume's data survives its
container's stop/start and re-attachment to another instance; a volume
is never mounted by two containers at once; delete refused while
attached; snapshot and clone hold the same bytes; kill -9 of yund while
a volume is being made or removed leaves no half-made file and no loop
mount after the restart; bad input is refused with 4xx naming the
reason, and changes nothing.

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. Needs root.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yund_api as A  # noqa: E402  (the daemon, the API, leftovers)
from yund_api import Env, Failure, api, ok, expect_error  # noqa: E402


# ---- helpers ----------------------------------------------------------------------


def volumes():
    return ok("GET", "/v1/volumes")["items"]


def snapshots():
    return ok("GET", "/v1/snapshots")["items"]


def wait_obj(path, pred, what, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        st, last = api("GET", path)
        if st == 200 and pred(last):
            return last
        if st == 404 and what == "gone":
            return None
        time.sleep(0.05)
    raise Failure("%s: not %s after %ss (last: %s)" % (path, what, timeout, str(last)[:300]))


def make_volume(name, size=1):
    v = ok("POST", "/v1/volumes", {"name": name, "size_gib": size}, want=202)
    if v["state"] != "creating" or v["size_gib"] != size:
        raise Failure("create volume %s: answered %s" % (name, v))
    return wait_obj("/v1/volumes/" + v["id"], lambda o: o["state"] == "available", "available")


def delete_volume(ref):
    ok("DELETE", "/v1/volumes/" + ref, want=202)
    wait_obj("/v1/volumes/" + ref, lambda o: False, "gone")


def logs(ref):
    st, text = api("GET", "/v1/instances/%s/logs" % ref)
    return text if st == 200 else ""


def wait_log(ref, pred, what, timeout=20):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = logs(ref)
        if pred(text):
            return text
        time.sleep(0.1)
    raise Failure("instance %s: log never showed %s; log: %r" % (ref, what, text[-400:]))


def one_shot(name, script, **kw):
    """An instance that runs `script` once per start (restart policy no)."""
    return A.create(name, command=["sh", "-c", script], restart_policy="no", **kw)


def wait_ended(ref, timeout=30):
    return A.wait_instance(ref, lambda i: i["state"] in ("stopped", "failed"), "ended",
                           timeout)


def start(ref):
    ok("POST", "/v1/instances/%s/start" % ref, want=202)


def our_mounts():
    """Mounts under our run dir's volumes/ (host loop mounts of volumes)."""
    vdir = os.path.join(Env.run, "volumes") + "/"
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(vdir)]


def loop_devices_of(paths):
    """Loop devices backed by any of these files."""
    found = []
    for dev in os.listdir("/sys/block"):
        try:
            with open("/sys/block/%s/loop/backing_file" % dev) as f:
                back = f.read().strip()
        except OSError:
            continue
        if any(back == p or back.startswith(p + " ") for p in paths):
            found.append("%s (%s)" % (dev, back))
    return found


def volume_leftovers():
    """Files in <root>/volumes and <root>/snapshots no object owns, half-made files,
    host mounts of volumes not held by a running container, loop devices of our files."""
    ids = {v["id"]: v for v in volumes()}
    snaps = {s["id"]: s for s in snapshots()}
    found = []
    for sub, known in (("volumes", ids), ("snapshots", snaps)):
        d = os.path.join(Env.root, sub)
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            if n.startswith(".tmp-"):
                found.append("half-made %s/%s" % (sub, n))
            elif n[:-4] not in known or known[n[:-4]]["state"] not in ("available", "in-use"):
                found.append("%s/%s (no %s)" % (sub, n, sub[:-1]))
    for m in our_mounts():
        found.append("mount " + m)
    files = []
    for sub in ("volumes", "snapshots"):
        d = os.path.join(Env.root, sub)
        if os.path.isdir(d):
            files += [os.path.join(d, n) for n in os.listdir(d)]
    found += ["loop " + x for x in loop_devices_of(files)]
    return found


def check_volumes_clean(timeout=15):
    t0 = time.time()
    deadline = time.time() + timeout
    left = volume_leftovers()
    while left and time.time() < deadline:
        time.sleep(0.1)
        left = volume_leftovers()
    if left:
        raise Failure("left behind: %s" % ", ".join(left[:6]))
    if os.environ.get("VOL_DEBUG"):
        print("# clean after %.1fs" % (time.time() - t0))


def cleanup():
    A.delete_all()
    for s in snapshots():
        api("DELETE", "/v1/snapshots/" + s["id"])
    for s in snapshots():
        wait_obj("/v1/snapshots/" + s["id"], lambda o: False, "gone")
    for v in volumes():
        api("DELETE", "/v1/volumes/" + v["id"])
    for v in volumes():
        wait_obj("/v1/volumes/" + v["id"], lambda o: False, "gone")


# ---- tests ----------------------------------------------------------------------


def data_survives_restart_and_reattach():
    make_volume("data")
    # Each run prints what the volume holds, then (when mounted) adds a line.
    a = one_shot("vol-a", "echo \"run: $(cat /mnt/v/f 2>/dev/null | tr '\\n' ' ')\"; "
                 "[ -d /mnt/v ] && echo data-$(cat /proc/sys/kernel/random/uuid | "
                 "cut -c1-8) >> /mnt/v/f; sync")
    A.wait_state(a["id"], "stopped", timeout=30)
    v = ok("POST", "/v1/volumes/data/attach", {"instance": "vol-a", "path": "/mnt/v"})
    if v["attached_to"] != a["id"] or v["mount_path"] != "/mnt/v" or v["state"] != "in-use":
        raise Failure("attach answered %s" % v)
    expect_error("DELETE", "/v1/volumes/data", None, 409, "volume data: attached to instance vol-a")
    start(a["id"])
    wait_log(a["id"], lambda t: t.count("run:") >= 2, "a second run")
    A.wait_state(a["id"], "stopped", timeout=30)
    start(a["id"])
    text = wait_log(a["id"], lambda t: t.count("run:") >= 3, "a third run")
    runs = [ln for ln in text.splitlines() if ln.startswith("run:")]
    if "data-" not in runs[2]:
        raise Failure("the data written by the 2nd run is not there in the 3rd: %r" % runs)
    written = runs[2].split()[1]
    A.wait_state(a["id"], "stopped", timeout=30)
    # Detach from A; B, created with the volume, reads what A wrote.
    expect_error("POST", "/v1/instances", {"name": "vol-b", "image": "busybox",
                                           "volumes": ["data"]},
                 409, "volume data: attached to instance vol-a")
    if A.get_instance("vol-b") is not None:
        raise Failure("a refused create left instance vol-b")
    c = one_shot("vol-c", "true")
    expect_error("POST", "/v1/volumes/data/attach", {"instance": "vol-c"}, 409,
                 "volume data: attached to instance vol-a")
    expect_error("POST", "/v1/volumes/data/detach", {"instance": "vol-c"}, 409,
                 "volume data: is attached to instance vol-a")
    v = ok("POST", "/v1/volumes/data/detach", {"instance": "vol-a"})
    if v["attached_to"] is not None or v["state"] != "available":
        raise Failure("detach answered %s" % v)
    b = one_shot("vol-b", "echo \"b sees: $(cat /mnt/data/f 2>/dev/null | tr '\\n' ' ')\"",
                 volumes=["data"])
    v = ok("GET", "/v1/volumes/data")
    if v["attached_to"] != b["id"] or v["mount_path"] != "/mnt/data":
        raise Failure("attached at create: %s, expected at /mnt/data of vol-b" % v)
    text = wait_log(b["id"], lambda t: "b sees: data-" in t, "the data")
    if written not in text:
        raise Failure("B sees %r, A wrote %r" % (text, written))
    ok("DELETE", "/v1/instances/" + c["id"], want=202)
    A.wait_state(b["id"], "stopped", timeout=30)
    check_volumes_clean()  # no host mount once the containers ended
    cleanup()


def never_mounted_twice():
    """Detached from a running container, the volume waits for it before another starts."""
    make_volume("shared")
    a = A.create("hold-a", command=["sh", "-c", "echo a-up; trap 'exit 0' TERM; "
                                    "while true; do sleep 0.1; done"])
    A.wait_state(a["id"], "running", timeout=30)
    ok("POST", "/v1/volumes/shared/attach", {"instance": "hold-a", "path": "/v"})
    ok("POST", "/v1/instances/hold-a/reboot", want=202)
    wait_log(a["id"], lambda t: t.count("a-up") >= 2, "the reboot")
    A.wait_state(a["id"], "running", timeout=30)
    if len(our_mounts()) != 1:
        raise Failure("running with a volume: host mounts %s" % our_mounts())
    b = one_shot("hold-b", "echo b-ran")
    A.wait_state(b["id"], "stopped", timeout=30)
    ok("POST", "/v1/volumes/shared/detach")
    ok("POST", "/v1/volumes/shared/attach", {"instance": "hold-b", "path": "/v"})
    expect_error("DELETE", "/v1/volumes/shared", None, 409, "attached to instance hold-b")
    start(b["id"])
    time.sleep(2)
    inst = A.get_instance(b["id"])
    if inst["state"] != "starting" or logs(b["id"]).count("b-ran") != 1:
        raise Failure("B started while A still had the volume mounted: %s" % inst["state"])
    ok("POST", "/v1/instances/hold-a/stop", want=202)
    wait_log(b["id"], lambda t: t.count("b-ran") >= 2, "B's run once A stopped", timeout=30)
    cleanup()
    check_volumes_clean()


def snapshot_and_clone():
    v = make_volume("orig")
    w = one_shot("snap-w", "[ -d /mnt/orig ] && (seq 1 5000 > /mnt/orig/numbers; sync; "
                 "echo wrote)")
    wait_ended(w["id"])
    ok("POST", "/v1/volumes/orig/attach", {"instance": "snap-w"})
    start(w["id"])
    wait_log(w["id"], lambda t: "wrote" in t, "the write")
    wait_ended(w["id"])
    check_volumes_clean()  # unmounted: the volume's file is quiet, so all three compare equal
    sn = ok("POST", "/v1/volumes/orig/snapshot", {"name": "s1"}, want=202)
    if sn["volume"] != v["id"] or sn["state"] != "creating":
        raise Failure("snapshot answered %s" % sn)
    sn = wait_obj("/v1/snapshots/s1", lambda o: o["state"] == "available", "available")
    if sn["method"] not in ("reflink", "copy"):
        raise Failure("snapshot method %r" % sn["method"])
    anon = ok("POST", "/v1/volumes/orig/snapshot", None, want=202)
    if anon["name"] != anon["id"]:
        raise Failure("a snapshot without a name is named %r, not by its id" % anon["name"])
    c = ok("POST", "/v1/snapshots/s1/clone", {"name": "copy"}, want=202)
    if c["source_snapshot"] != sn["id"] or c["size_gib"] != v["size_gib"]:
        raise Failure("clone answered %s" % c)
    c = wait_obj("/v1/volumes/copy", lambda o: o["state"] == "available", "available")
    if subprocess.run(["cmp", "-s", sn["path"], c["path"]]).returncode or \
            subprocess.run(["cmp", "-s", sn["path"], v["path"]]).returncode:
        raise Failure("volume, snapshot and clone differ")
    ok("POST", "/v1/volumes/orig/detach", {"instance": "snap-w"})
    expect_error("DELETE", "/v1/volumes/orig", None, 409, "volume orig: has snapshot")
    # The clone is a copy: deleting the snapshot leaves it whole.
    ok("DELETE", "/v1/snapshots/s1", want=202)
    wait_obj("/v1/snapshots/s1", lambda o: False, "gone")
    c = ok("GET", "/v1/volumes/copy")
    if c["source_snapshot"] is not None or not os.path.exists(c["path"]):
        raise Failure("clone after its snapshot's deletion: %s" % c)
    r = one_shot("snap-r", "echo sum $(cat /mnt/copy/numbers 2>/dev/null | wc -l)")
    wait_ended(r["id"])
    ok("POST", "/v1/volumes/copy/attach", {"instance": "snap-r", "readonly": True})
    start(r["id"])
    wait_log(r["id"], lambda t: "sum 5000" in t, "5000 lines in the clone")
    cleanup()
    check_volumes_clean()


def kill9_mid_volume_create_and_delete():
    for i, delay in enumerate((0, 0.01, 0.05, 0.15)):
        v = ok("POST", "/v1/volumes", {"name": "k%d" % i, "size_gib": 8}, want=202)
        time.sleep(delay)
        A.kill9_yund()
        A.start_yund()
        # Acknowledged: made after the restart, whole.
        v = wait_obj("/v1/volumes/" + v["id"], lambda o: o["state"] == "available",
                     "available")
        out = subprocess.run(["dumpe2fs", "-h", v["path"]], capture_output=True, text=True)
        if out.returncode != 0 or "Filesystem state:         clean" not in out.stdout:
            raise Failure("volume k%d after kill -9: no clean ext4: %s" % (i, out.stderr[:200]))
        check_volumes_clean()
    for i, delay in enumerate((0, 0.01, 0.05)):
        ok("DELETE", "/v1/volumes/k%d" % i, want=202)
        time.sleep(delay)
        A.kill9_yund()
        A.start_yund()
        wait_obj("/v1/volumes/k%d" % i, lambda o: False, "gone")
        check_volumes_clean()
    # A snapshot and a clone interrupted alike.
    ok("POST", "/v1/volumes/k3/snapshot", {"name": "ks"}, want=202)
    A.kill9_yund()
    A.start_yund()
    wait_obj("/v1/snapshots/ks", lambda o: o["state"] == "available", "available")
    ok("POST", "/v1/snapshots/ks/clone", {"name": "kc"}, want=202)
    A.kill9_yund()
    A.start_yund()
    wait_obj("/v1/volumes/kc", lambda o: o["state"] == "available", "available")
    check_volumes_clean()
    cleanup()
    check_volumes_clean()


def bad_volume_input_changes_nothing():
    make_volume("good")
    inst = one_shot("bad-in", "true")
    before = (volumes(), snapshots())
    cases = [
        ("POST", "/v1/volumes", {"name": "x", "size_gib": 1, "color": "red"}, 400, "field color"),
        ("POST", "/v1/volumes", {"name": "x"}, 400, "size_gib"),
        ("POST", "/v1/volumes", {"name": "x", "size_gib": "1"}, 400, "size_gib"),
        ("POST", "/v1/volumes", {"name": "x", "size_gib": 0}, 422, "size_gib"),
        ("POST", "/v1/volumes", {"name": "x", "size_gib": 10 ** 12}, 422, "size_gib"),
        ("POST", "/v1/volumes", {"name": "x", "size_gib": 65536}, 507, "free"),
        ("POST", "/v1/volumes", {"name": "../x", "size_gib": 1}, 400, "volume name"),
        ("POST", "/v1/volumes", {"name": "a/b", "size_gib": 1}, 400, "'/'"),
        ("POST", "/v1/volumes", {"name": "good", "size_gib": 1}, 409, "volume good: name already taken"),
        ("GET", "/v1/volumes/nope", None, 404, "volume nope: not found"),
        ("DELETE", "/v1/volumes/nope", None, 404, "volume nope: not found"),
        ("POST", "/v1/volumes/nope/attach", {"instance": "bad-in"}, 404, "volume nope: not found"),
        ("POST", "/v1/volumes/good/attach", {"instance": "nope"}, 404, "instance nope: not found"),
        ("POST", "/v1/volumes/good/attach", {}, 400, "instance"),
        ("POST", "/v1/volumes/good/attach", {"instance": "bad-in", "path": "/mnt/../etc"}, 422, "field path"),
        ("POST", "/v1/volumes/good/attach", {"instance": "bad-in", "path": "relative"}, 422, "field path"),
        ("POST", "/v1/volumes/good/attach", {"instance": "bad-in", "path": "/proc/x"}, 422, "field path"),
        ("POST", "/v1/volumes/good/attach", {"instance": "bad-in", "readonly": "yes"}, 400, "readonly"),
        ("POST", "/v1/volumes/good/attach", {"instance": "bad-in", "mode": 1}, 400, "field mode"),
        ("POST", "/v1/volumes/good/detach", None, 409, "volume good: is not attached"),
        ("POST", "/v1/volumes/good/detach", {"instance": "bad-in", "x": 1}, 400, "field x"),
        ("POST", "/v1/volumes/good/snapshot", {"name": "s", "x": 1}, 400, "field x"),
        ("POST", "/v1/volumes/good/snapshot", {"name": "a b"}, 400, "snapshot name"),
        ("POST", "/v1/volumes/nope/snapshot", {"name": "s"}, 404, "volume nope: not found"),
        ("GET", "/v1/snapshots/nope", None, 404, "snapshot nope: not found"),
        ("DELETE", "/v1/snapshots/nope", None, 404, "snapshot nope: not found"),
        ("POST", "/v1/snapshots/nope/clone", {"name": "c"}, 404, "snapshot nope: not found"),
        ("POST", "/v1/snapshots/nope/clone", {}, 400, "name"),
    ]
    for method, path, body, status, text in cases:
        expect_error(method, path, body, status, text)
    expect_error("POST", "/v1/volumes", None, 400, "", raw=b'{"name": "x", "size_gib": 1')
    expect_error("POST", "/v1/volumes", None, 400, "", raw=b'{"name": "x", "name": "y", "size_gib": 1}')
    after = (volumes(), snapshots())
    if before != after:
        raise Failure("bad input changed the volumes or snapshots")
    if A.get_instance(inst["id"])["updated_at"] != inst["updated_at"] and \
            A.get_instance(inst["id"])["state"] not in ("stopped", "running", "starting"):
        raise Failure("bad input changed the instance")
    cleanup()
    check_volumes_clean()


def deleting_an_instance_detaches_its_volumes():
    make_volume("keep")
    i = one_shot("goner", "true")
    ok("POST", "/v1/volumes/keep/attach", {"instance": "goner"})
    # (404 too: the loop may remove a stopped instance before the API re-reads it.)
    ok("DELETE", "/v1/instances/" + i["id"], want=(202, 404))
    A.wait_gone(i["id"], timeout=30)
    v = ok("GET", "/v1/volumes/keep")
    if v["attached_to"] is not None or v["state"] != "available":
        raise Failure("volume of a deleted instance: %s" % v)
    cleanup()
    check_volumes_clean()


TESTS = [
    bad_volume_input_changes_nothing,
    data_survives_restart_and_reattach,
    snapshot_and_clone,
    never_mounted_twice,
    deleting_an_instance_detaches_its_volumes,
    kill9_mid_volume_create_and_delete,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yund", required=True)
    ap.add_argument("--yun-ct", required=True)
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.yund = os.path.abspath(args.yund)
    Env.yun_ct = os.path.abspath(args.yun_ct)
    if os.geteuid() != 0:
        print("not ok - yund_volumes: needs root")
        print("0 passed, 1 failed")
        return 1
    Env.tmp = tempfile.mkdtemp(prefix="yund-vol-e2e.")
    os.chmod(Env.tmp, 0o711)
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.log = os.path.join(Env.tmp, "yund.log")
    Env.ct_log = os.path.join(Env.tmp, "supervisors.log")
    Env.port = A.free_port()
    passed = failed = 0
    try:
        A.start_yund()
        ok("POST", "/v1/images", {"name": "busybox", "build": "busybox"}, want=202)
        wait_obj("/v1/images/busybox", lambda o: o["state"] == "available", "available",
                 timeout=120)
    except (Failure, OSError) as e:
        print("not ok - start yund and build busybox: %s" % e)
        print("0 passed, 1 failed")
        return 1
    for t in TESTS:
        if args.filter and args.filter not in t.__name__:
            continue
        t0 = time.time()
        try:
            if Env.proc is None or Env.proc.poll() is not None:
                A.start_yund()
            t()
            print("ok - %s (%.1fs)" % (t.__name__, time.time() - t0))
            passed += 1
        except (Failure, OSError, ValueError, KeyError, TypeError, IndexError) as e:
            print("not ok - %s: %s" % (t.__name__, e if isinstance(e, Failure) else repr(e)))
            failed += 1
            try:
                if Env.proc is None or Env.proc.poll() is not None:
                    A.start_yund()
                cleanup()
            except (Failure, OSError, ValueError, KeyError) as e2:
                print("# cleanup after %s: %s" % (t.__name__, e2))
        sys.stdout.flush()
    rc = A.finish_run(passed, failed, cleanup=cleanup, extra_checks=(check_volumes_clean,))
    # Host mounts of volumes a failure left (logs are kept then, the mounts go).
    for m in our_mounts():
        subprocess.run(["umount", "-l", m], capture_output=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
