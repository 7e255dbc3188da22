#!/usr/bin/env python3
"""ct_run.py - yun-ct vs runc: one short-lived container, and idle containers' memory.

Part 1, start-up. On one busybox rootfs (scripts/mkimage busybox), N runs
each, interleaved (the order rotates every round) so all share the
machine's noise, after warm-up rounds that are discarded:

  runc_run      runc run --bundle B ID           create + start + wait + delete
  runc_seq      runc create, runc start, runc state until "stopped", runc delete
                (what an orchestrator does, one runc process per step)
  yun_rootfs    yun-ct run --rootfs DIR -- /bin/true          (no overlay)
  yun_overlay   yun-ct run --image IMG --overlay -- /bin/true (the realistic path)

The OCI bundle's config.json comes from `runc spec`, with the rootfs path,
terminal false and args ["/bin/true"] changed. Each run is timed from just
before the spawn to the wait4() of the command (for runc_seq: of its last
command), and must exit 0 and leave nothing behind.

CPU time is user+sys of the whole process tree. The benchmark makes itself a
child subreaper (PR_SET_CHILD_SUBREAPER), so processes that outlive their
parent come back to it instead of to PID 1: yun-ct's supervisor (a
grandchild: the middle process of its double fork exits at once) and, for
`runc create`, the container's init. Each is reaped with wait4(), whose
rusage includes its own reaped children (the container's processes). So
yun-ct's CPU = client (with the middle process) + supervisor (with the
container); runc's = runc (with `runc init` and the container) [+ the
orphaned init for runc_seq]. Kernel work deferred to workqueues (network
namespace clean-up) is counted for neither.

Part 2, memory per idle container. M containers (default 200) running
/bin/sleep 3600, started with `yun-ct run -d --image IMG`, then (unless
--no-runc-idle) with `runc run -d`; for each runtime: the sum over its
processes of /proc/PID/smaps_rollup Rss and Pss (yun-ct: supervisor +
container init; runc: the container init, runc itself does not stay), the
containers' memory cgroups (memory.usage_in_bytes, kmem), and the host's
/proc/meminfo deltas (MemAvailable, Slab, ...) divided by M. Then every
container is stopped and deleted and the script checks that no state,
cgroup or process is left.

Writes bench/results/ct_run-<date>.json and prints a table. Python 3
standard library only; run as root. See docs/benchmarks.md.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_SET_CHILD_SUBREAPER = 36
VARIANTS = ("runc_run", "runc_seq", "yun_rootfs", "yun_overlay")
LABELS = {
    "runc_run": "runc run (create+start+wait+delete)",
    "runc_seq": "runc create/start/state.../delete",
    "yun_rootfs": "yun-ct run --rootfs",
    "yun_overlay": "yun-ct run --image --overlay",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


# ---------------------------------------------------------------- processes


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def cpu_ms(ru):
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def spawn(argv, env=None):
    """Start argv with stdio on /dev/null and stderr in a file: a pipe would
    stay open in whatever the command leaves running (runc create's init)."""
    errf = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=errf, env=env)
    p.errf = errf
    return p


def finish(p):
    """wait4() the process; returns (status, rusage, stderr text)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    p.errf.seek(0)
    err = p.errf.read().decode(errors="replace")
    p.errf.close()
    return p.returncode, ru, err


def reap_orphans(timeout=10.0, keep=()):
    """wait4() every child that is not in `keep` (orphans handed to us as the
    subreaper) until none is left; returns their summed CPU ms."""
    total, deadline = 0.0, time.monotonic() + timeout
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return total
        if pid:
            total += cpu_ms(ru)
            continue
        if not [c for c in children() if c not in keep]:
            return total
        if time.monotonic() > deadline:
            raise Failure("children still running after %.0f s: %s" % (timeout, children()))
        time.sleep(0.0005)


def children():
    me = str(os.getpid())
    out = []
    try:
        with open("/proc/%s/task/%s/children" % (me, me)) as f:
            out = [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def run_checked(argv, env=None, timeout=60):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=env, timeout=timeout)
    if r.returncode != 0:
        raise Failure("%s: status %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout


def run_detached(argv, env=None, timeout=60):
    """For commands that leave a process holding their stdio: no pipes."""
    with tempfile.TemporaryFile() as errf:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=errf, env=env, timeout=timeout)
        if r.returncode != 0:
            errf.seek(0)
            raise Failure("%s: status %d: %s" % (" ".join(argv), r.returncode,
                                                 errf.read().decode(errors="replace").strip()))


# ---------------------------------------------------------------- set-up


def make_image(path):
    mk = os.path.join(REPO, "scripts/mkimage")
    run_checked([mk, "-f", "busybox", path], timeout=120)


def make_bundle(dir_, rootfs, args, runc):
    os.makedirs(dir_, exist_ok=True)
    cfg = os.path.join(dir_, "config.json")
    if os.path.exists(cfg):
        os.unlink(cfg)
    run_checked([runc, "spec", "--bundle", dir_])
    with open(cfg) as f:
        spec = json.load(f)
    spec["root"]["path"] = rootfs
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    with open(cfg, "w") as f:
        json.dump(spec, f, indent=1)
    return spec


class Ctx:
    pass


def yun_env(ctx):
    return dict(os.environ, YUN_CT_ROOT=ctx.yun_root)


def runc_argv(ctx, *rest):
    return [ctx.runc, "--root", ctx.runc_root] + list(rest)


# ---------------------------------------------------------------- leftovers


def cgroup_dirs_named(prefix):
    """Cgroup directories (any hierarchy, any depth below /sys/fs/cgroup) whose
    name starts with prefix: what a runtime may leave behind."""
    found = []
    for top in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", top)
        if os.path.islink(base) or not os.path.isdir(base):
            continue
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                if d.startswith(prefix):
                    found.append(os.path.join(dirpath, d))
    return found


def yun_leftovers(ctx, prefix):
    left = []
    if os.path.isdir(ctx.yun_root):
        left += [e for e in os.listdir(ctx.yun_root) if not e.startswith(".")]
    left += cgroup_dirs_named(prefix)
    return left


def runc_leftovers(ctx, prefix):
    left = []
    if os.path.isdir(ctx.runc_root):
        left += os.listdir(ctx.runc_root)
    left += cgroup_dirs_named(prefix)
    return left


# ---------------------------------------------------------------- part 1


def one_run(ctx, variant, i):
    """One timed run; returns a dict with wall_ms, cpu_ms (and its parts)."""
    name = "%s-%s-%d" % (ctx.prefix, variant.replace("_", ""), i)
    rec = {"variant": variant, "i": i}
    if variant == "runc_seq":
        return runc_sequence(ctx, name, rec)
    if variant == "runc_run":
        argv, env = runc_argv(ctx, "run", "--bundle", ctx.bundle, name), None
    elif variant == "yun_rootfs":
        argv = [ctx.yun_ct, "run", "--name", name, "--rootfs", ctx.rootfs, "--", "/bin/true"]
        env = yun_env(ctx)
    else:
        argv = [ctx.yun_ct, "run", "--name", name, "--image", ctx.image, "--overlay", "--",
                "/bin/true"]
        env = yun_env(ctx)
    t0 = time.perf_counter_ns()
    p = spawn(argv, env)
    status, ru, err = finish(p)
    t1 = time.perf_counter_ns()
    rec["wall_ms"] = (t1 - t0) / 1e6
    rec["cpu_main_ms"] = cpu_ms(ru)
    # yun-ct's supervisor exits once its client has gone; runc leaves nobody.
    rec["cpu_orphans_ms"] = reap_orphans()
    rec["cpu_ms"] = rec["cpu_main_ms"] + rec["cpu_orphans_ms"]
    if status != 0:
        raise Failure("%s: status %d: %s" % (" ".join(argv), status, err.strip()))
    return rec


def runc_sequence(ctx, name, rec):
    cpu, cmds = 0.0, 0
    t0 = time.perf_counter_ns()
    for argv in (runc_argv(ctx, "create", "--bundle", ctx.bundle, name),
                 runc_argv(ctx, "start", name)):
        status, ru, err = finish(spawn(argv))
        cpu += cpu_ms(ru)
        cmds += 1
        if status != 0:
            raise Failure("%s: status %d: %s" % (" ".join(argv), status, err.strip()))
    # The container's init is our child now (runc create exited): reap it when
    # it is done, then ask runc, as an orchestrator without a shim would.
    while True:
        p = subprocess.Popen(runc_argv(ctx, "state", name), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        p.stdout.close()
        _, st, ru = os.wait4(p.pid, 0)
        cpu += cpu_ms(ru)
        cmds += 1
        if os.waitstatus_to_exitcode(st) != 0:
            raise Failure("runc state %s failed" % name)
        if json.loads(out)["status"] == "stopped":
            break
        try:
            pid, _, ru = os.wait4(-1, os.WNOHANG)
            if pid:
                cpu += cpu_ms(ru)
        except ChildProcessError:
            pass
    argv = runc_argv(ctx, "delete", name)
    status, ru, err = finish(spawn(argv))
    cpu += cpu_ms(ru)
    cmds += 1
    t1 = time.perf_counter_ns()
    if status != 0:
        raise Failure("%s: status %d: %s" % (" ".join(argv), status, err.strip()))
    rec["wall_ms"] = (t1 - t0) / 1e6
    rec["cpu_main_ms"] = cpu
    rec["cpu_orphans_ms"] = reap_orphans()
    rec["cpu_ms"] = cpu + rec["cpu_orphans_ms"]
    rec["commands"] = cmds
    return rec


def startup(ctx, args, variants):
    runs = []
    rounds = args.warmup + args.runs
    for r in range(rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            rec = one_run(ctx, v, r)
            rec["warmup"] = r < args.warmup
            runs.append(rec)
        left = yun_leftovers(ctx, ctx.prefix) + runc_leftovers(ctx, ctx.prefix)
        if left:
            raise Failure("left behind after round %d: %s" % (r, left[:10]))
        if (r + 1) % 10 == 0:
            log("  round %d/%d" % (r + 1, rounds))
    return runs


# ---------------------------------------------------------------- part 2


MEMINFO_KEYS = ("MemAvailable", "MemFree", "Slab", "SReclaimable", "SUnreclaim", "KernelStack",
                "PageTables", "Shmem", "AnonPages", "Cached")


def meminfo():
    """MEMINFO_KEYS in KiB, and the kernel's count of memory cgroups."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in MEMINFO_KEYS:
                out[k] = int(v.split()[0])
    out["memory_cgroups"] = memory_cgroups()
    return out


def rollup(pid):
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        return None
    return out


def memcg_of(pid):
    """The v1 memory cgroup directory of pid (None on v2-only hosts)."""
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    return "/sys/fs/cgroup/memory" + path
    except OSError:
        pass
    return None


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def memory_cgroups():
    """Memory cgroups the kernel holds, dying ones included (/proc/cgroups)."""
    try:
        with open("/proc/cgroups") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] == "memory":
                    return int(parts[2])
    except (OSError, ValueError, IndexError):
        pass
    return None


def settle(limit_s=90.0):
    """Wait until the kernel is done: network namespaces and dying memory
    cgroups go away in kernel workers, up to a minute after the processes
    (seen here: 100 stopped containers' cgroups drain over ~60 s, for both
    runtimes), so a fixed pause would count them as kept. Returns the
    seconds waited."""
    t0 = time.monotonic()
    time.sleep(1.0)
    prev, prev_cg, calm = meminfo(), memory_cgroups(), 0
    while time.monotonic() - t0 < limit_s and calm < 3:
        time.sleep(1.0)
        cur, cg = meminfo(), memory_cgroups()
        still = (abs(cur["MemAvailable"] - prev["MemAvailable"]) < 1024 and
                 abs(cur["Slab"] - prev["Slab"]) < 512 and cg == prev_cg)
        calm = calm + 1 if still else 0
        prev, prev_cg = cur, cg
    return time.monotonic() - t0


def sum_rollups(pids):
    tot = {"Rss": 0, "Pss": 0, "Private_Dirty": 0, "Private_Clean": 0, "Anonymous": 0}
    n = 0
    for pid in pids:
        r = rollup(pid)
        if not r:
            continue
        n += 1
        for k in tot:
            tot[k] += r.get(k, 0)
    return tot, n


def container_memcg(pids):
    usage, kmem, n = 0, 0, 0
    for pid in pids:
        d = memcg_of(pid)
        u = read_int(os.path.join(d, "memory.usage_in_bytes")) if d else None
        if u is None:
            continue
        usage += u
        kmem += read_int(os.path.join(d, "memory.kmem.usage_in_bytes")) or 0
        n += 1
    return {"usage_kb": usage / 1024, "kmem_kb": kmem / 1024, "n": n}


def idle_yun(ctx, m):
    env = yun_env(ctx)
    names = ["%s-idle-%d" % (ctx.prefix, i) for i in range(m)]
    settle()
    before = meminfo()
    t0 = time.monotonic()
    for n in names:
        run_detached([ctx.yun_ct, "run", "-d", "--name", n, "--image", ctx.image, "--",
                      "/bin/sleep", "3600"], env=env)
    started_s = time.monotonic() - t0
    settle()
    after = meminfo()
    sups, inits = [], []
    for n in names:
        with open(os.path.join(ctx.yun_root, n, "state.json")) as f:
            st = json.load(f)
        sups.append(st["supervisor_pid"])
        inits.append(st["pid"])
    sup_mem, nsup = sum_rollups(sups)
    init_mem, ninit = sum_rollups(inits)
    cg = container_memcg(inits)
    t0 = time.monotonic()
    for n in names:
        r = subprocess.run([ctx.yun_ct, "stop", "--timeout", "0", n], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode not in (0, 137, 143):
            raise Failure("yun-ct stop %s: status %d: %s" % (n, r.returncode, r.stderr))
    reap_orphans(timeout=30)
    stopped_s = time.monotonic() - t0
    left = yun_leftovers(ctx, ctx.prefix)
    settle()
    end = meminfo()
    return idle_summary("yun-ct", m, before, after, end, started_s, stopped_s,
                        {"supervisors": (sup_mem, nsup), "inits": (init_mem, ninit)}, cg, left)


def idle_runc(ctx, m):
    names = ["%s-ridle-%d" % (ctx.prefix, i) for i in range(m)]
    settle()
    before = meminfo()
    t0 = time.monotonic()
    for n in names:
        run_detached(runc_argv(ctx, "run", "-d", "--bundle", ctx.idle_bundle, n))
    started_s = time.monotonic() - t0
    settle()
    after = meminfo()
    inits = []
    for n in names:
        inits.append(json.loads(run_checked(runc_argv(ctx, "state", n)))["pid"])
    init_mem, ninit = sum_rollups(inits)
    cg = container_memcg(inits)
    t0 = time.monotonic()
    for n in names:
        run_checked(runc_argv(ctx, "delete", "--force", n))
    reap_orphans(timeout=30)
    stopped_s = time.monotonic() - t0
    left = runc_leftovers(ctx, ctx.prefix)
    settle()
    end = meminfo()
    return idle_summary("runc", m, before, after, end, started_s, stopped_s,
                        {"inits": (init_mem, ninit)}, cg, left)


def idle_summary(runtime, m, before, after, end, started_s, stopped_s, procs, cg, left):
    per = {}
    for what, (tot, n) in procs.items():
        per[what] = {k: v / max(n, 1) for k, v in tot.items()}
        per[what]["count"] = n
    rss = sum(p["Rss"] for p in per.values())
    pss = sum(p["Pss"] for p in per.values())
    return {
        "runtime": runtime, "containers": m,
        "start_all_s": started_s, "stop_all_s": stopped_s,
        "per_container_kb": {
            "processes_rss": rss, "processes_pss": pss,
            "by_process": per,
            "memcg_usage": cg["usage_kb"] / max(cg["n"], 1),
            "memcg_kmem": cg["kmem_kb"] / max(cg["n"], 1),
            "host": {k: (before[k] - after[k] if k in ("MemAvailable", "MemFree")
                         else after[k] - before[k]) / m for k in MEMINFO_KEYS},
        },
        "meminfo_kb": {"before": before, "running": after, "after_stop": end},
        "not_returned_after_stop_kb": before["MemAvailable"] - end["MemAvailable"],
        "left_behind": left,
    }


# ---------------------------------------------------------------- report


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


def summarize(runs, variants):
    out = {}
    for v in variants:
        rs = [r for r in runs if r["variant"] == v and not r["warmup"]]
        out[v] = {"label": LABELS[v], "wall_ms": stats([r["wall_ms"] for r in rs]),
                  "cpu_ms": stats([r["cpu_ms"] for r in rs]),
                  "cpu_main_ms": stats([r["cpu_main_ms"] for r in rs]),
                  "cpu_orphans_ms": stats([r["cpu_orphans_ms"] for r in rs])}
        if v == "runc_seq":
            out[v]["commands"] = stats([r["commands"] for r in rs])
    return out


def ratio(summary, a, b, key):
    try:
        return summary[a][key]["median"] / summary[b][key]["median"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def fmt(s):
    return "%.2f ms (%.2f-%.2f)" % (s["median"], s["p10"], s["p90"]) if s else "n/a"


def print_tables(result):
    s, n = result["summary"], result["config"]["runs"]
    print()
    print("start-up, median (p10-p90), N=%d each, interleaved" % n)
    print("%-38s %-26s %-26s" % ("", "wall", "CPU user+sys (tree)"))
    for v, row in s.items():
        print("%-38s %-26s %-26s" % (row["label"], fmt(row["wall_ms"]), fmt(row["cpu_ms"])))
    print()
    print("%-38s %-12s %-12s" % ("ratio (medians)", "wall", "CPU"))
    for name, r in result["ratios"].items():
        print("%-38s %-12s %-12s" % (name, "%.3f" % r["wall"] if r["wall"] else "n/a",
                                     "%.3f" % r["cpu"] if r["cpu"] else "n/a"))
    for idle in result["idle"]:
        p = idle["per_container_kb"]
        print()
        print("%s: %d idle containers (/bin/sleep), per container:" % (
            idle["runtime"], idle["containers"]))
        for what, row in p["by_process"].items():
            print("  %-14s RSS %7.0f KiB  PSS %7.0f KiB  private dirty %6.0f KiB  (%d procs)" % (
                what, row["Rss"], row["Pss"], row["Private_Dirty"], row["count"]))
        print("  %-14s RSS %7.0f KiB  PSS %7.0f KiB" % ("processes", p["processes_rss"],
                                                       p["processes_pss"]))
        print("  memory cgroup  usage %7.0f KiB (kernel %0.0f KiB)" % (p["memcg_usage"],
                                                                      p["memcg_kmem"]))
        h = p["host"]
        print("  host delta     MemAvailable %+0.0f KiB, Slab %+0.0f KiB (unreclaimable %+0.0f), "
              "KernelStack %+0.0f, PageTables %+0.0f, Shmem %+0.0f" % (
                  -h["MemAvailable"], h["Slab"], h["SUnreclaim"], h["KernelStack"],
                  h["PageTables"], h["Shmem"]))
        mi = idle["meminfo_kb"]
        print("  start all %.1f s, stop+delete all %.1f s; after the kernel settled: "
              "MemAvailable %+d KiB vs before, memory cgroups %s -> %s -> %s; left behind: %s" % (
                  idle["start_all_s"], idle["stop_all_s"], -idle["not_returned_after_stop_kb"],
                  mi["before"]["memory_cgroups"], mi["running"]["memory_cgroups"],
                  mi["after_stop"]["memory_cgroups"], idle["left_behind"] or "nothing"))


def git_rev():
    try:
        return subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def default_yun_ct():
    env = os.environ.get("YUN_BUILD_DIR")
    builds = [env] if env else ["build-bench", "build"]
    for b in builds:
        p = os.path.join(REPO, b, "src/ct/yun-ct")
        if os.path.exists(p):
            return p
    return os.path.join(REPO, "build/src/ct/yun-ct")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=30, help="timed runs per variant")
    ap.add_argument("--warmup", type=int, default=3, help="discarded rounds first")
    ap.add_argument("--yun-ct", default=default_yun_ct(),
                    help="yun-ct binary (default: $YUN_BUILD_DIR, build-bench, build)")
    ap.add_argument("--runc", default=shutil.which("runc") or "runc")
    ap.add_argument("--image", default=None,
                    help="busybox image from scripts/mkimage (default: made in a temp dir)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--idle", type=int, default=200, help="idle containers (0: skip part 2)")
    ap.add_argument("--no-runc-idle", action="store_true", help="idle containers for yun-ct only")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        log("ct_run.py: needs root")
        return 2
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            log("ct_run.py: unknown variant %s" % v)
            return 2

    set_subreaper()
    started = datetime.datetime.now()
    tmp = tempfile.mkdtemp(prefix="ct_run.", dir="/tmp")
    ctx = Ctx()
    ctx.yun_ct = os.path.abspath(args.yun_ct)
    ctx.runc = args.runc
    ctx.prefix = "ctb%d" % os.getpid()
    # Private state roots: nothing else's containers are touched or counted.
    ctx.yun_root = "/run/yun-ct-bench-%d" % os.getpid()
    ctx.runc_root = "/run/runc-bench-%d" % os.getpid()
    ctx.image = args.image or os.path.join(tmp, "busybox")
    if not args.image:
        log("making the busybox image in %s" % ctx.image)
        make_image(ctx.image)
    ctx.rootfs = os.path.join(ctx.image, "rootfs")
    ctx.bundle = os.path.join(tmp, "bundle")
    spec = make_bundle(ctx.bundle, ctx.rootfs, ["/bin/true"], ctx.runc)
    ctx.idle_bundle = os.path.join(tmp, "bundle-idle")
    make_bundle(ctx.idle_bundle, ctx.rootfs, ["/bin/sleep", "3600"], ctx.runc)

    load_before = os.getloadavg()
    failure = None
    runs, idle = [], []
    try:
        log("start-up: %d warm-up + %d rounds of %s" % (args.warmup, args.runs,
                                                       ", ".join(variants)))
        runs = startup(ctx, args, variants)
        if args.idle > 0:
            log("idle: %d yun-ct containers" % args.idle)
            idle.append(idle_yun(ctx, args.idle))
            if not args.no_runc_idle:
                log("idle: %d runc containers" % args.idle)
                idle.append(idle_runc(ctx, args.idle))
    except (Failure, OSError, subprocess.SubprocessError) as e:
        failure = str(e)
        log("ct_run.py: %s" % failure)
    load_after = os.getloadavg()

    summary = summarize(runs, variants)
    ratios = {}
    for y in ("yun_rootfs", "yun_overlay"):
        for r in ("runc_run", "runc_seq"):
            if y in summary and r in summary:
                ratios["%s / %s" % (y, r)] = {"wall": ratio(summary, y, r, "wall_ms"),
                                              "cpu": ratio(summary, y, r, "cpu_ms")}
    target = ratios.get("yun_rootfs / runc_run", {}).get("wall")
    result = {
        "benchmark": "ct_run",
        "started": started.isoformat(timespec="seconds"),
        "host": {
            "kernel": platform.release(), "nproc": os.cpu_count(),
            "loadavg_before": load_before, "loadavg_after": load_after,
            "runc_version": subprocess.run([ctx.runc, "--version"], capture_output=True,
                                           text=True).stdout.splitlines()[0],
            "yun_git": git_rev(), "yun_ct": os.path.relpath(ctx.yun_ct, REPO),
        },
        "config": {
            "runs": args.runs, "warmup": args.warmup, "variants": variants,
            "idle": args.idle, "image": ctx.image,
            "runc_spec_changes": {"root.path": spec["root"]["path"],
                                  "process.terminal": False,
                                  "process.args": spec["process"]["args"]},
            "runc_namespaces": [n["type"] for n in spec["linux"]["namespaces"]],
        },
        "failure": failure,
        "summary": summary,
        "ratios": ratios,
        "target": {"what": "yun-ct run / runc run, median wall, <= 0.25",
                   "ratio": target, "met": None if target is None else target <= 0.25},
        "idle": idle,
        "runs": runs,
    }
    out = args.out
    if not out:
        os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
        out = os.path.join(REPO, "bench/results",
                           "ct_run-%s.json" % started.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)

    print("ct_run: yun-ct %s vs %s; load %.2f -> %.2f" % (
        result["host"]["yun_git"], result["host"]["runc_version"], load_before[0],
        load_after[0]))
    print_tables(result)
    print()
    t = result["target"]
    print("target yun-ct/runc wall <= 0.25: %s (%s)" % (
        {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]],
        "%.3f" % t["ratio"] if t["ratio"] is not None else "n/a"))
    print("results: %s%s" % (os.path.relpath(out, REPO),
                             "; FAILED: %s" % failure if failure else ""))
    # The private state roots hold only the lock and the seccomp cache by now
    # (or a failed run's remains, which the JSON lists).
    if not failure:
        for d in (ctx.yun_root, ctx.runc_root):
            shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
