#!/usr/bin/env python3
"""blk.py - virtio-blk throughput in-process against fio on the same file.

bench/blk_harness (built by meson) plays the guest driver against
src/vmm/virtio/blk.c: kicks through the queue's kick eventfd into the I/O
thread's loop, completions through the MSI-X vector's eventfd, on one
thread (--io-thread: the loop on a thread of its own, as in yun-vmm). fio
(ioengine io_uring, the anchor) reads the same file with the same block
size and queue depth in the same run. Both are pinned to the same host
core. Cases: 4 KiB random reads (IOPS) and 1 MiB sequential reads (MiB/s),
each through the page cache and with O_DIRECT, for the device's io_uring
and synchronous backends.

Each round runs every case once for fio and once per backend, alternating
which goes first; the figures are medians over the rounds, and the ratio is
the ratio of the medians (the per-round ratios are in the JSON).

    blk.py [--build DIR] [--file PATH] [--size MIB] [--seconds S] [--rounds N]
           [--cpu N] [--cases 4k-randread,1m-seqread] [--cache page,direct]
           [--backends io_uring,sync] [--io-thread]

Prints a table and one JSON line per case; writes bench/results/blk-*.json.
Exit status 1 if a run failed. Python 3 standard library, fio, taskset.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = [  # name, mode, bs, iodepth, fio rw
    ("4k-randread", "randread", 4096, 32, "randread"),
    ("1m-seqread", "seqread", 1 << 20, 4, "read"),
]


def harness(args, mode, bs, depth, direct, backend, seconds):
    env = dict(os.environ)
    env.pop("YUN_BLK_NO_URING", None)
    if backend == "sync":
        env["YUN_BLK_NO_URING"] = "1"
    argv = ["taskset", "-c", str(args.cpu), os.path.join(args.build, "bench/blk_harness"),
            args.file, mode, str(bs), str(depth), str(seconds)]
    if direct:
        argv.append("direct")
    if args.io_thread:
        argv.append("thread")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def fio(args, rw, bs, depth, direct, seconds):
    argv = ["taskset", "-c", str(args.cpu), "fio", "--name=anchor", "--filename=" + args.file,
            "--rw=" + rw, "--bs=%d" % bs, "--iodepth=%d" % depth, "--ioengine=io_uring",
            "--direct=%d" % direct, "--invalidate=0", "--time_based",
            "--runtime=%d" % seconds, "--numjobs=1", "--output-format=json"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    job = json.loads(out.stdout)["jobs"][0]
    r = job["read"]
    cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * seconds
    return {"iops": r["iops"], "mib_s": r["bw"] / 1024.0, "cpu_seconds": cpu,
            "ops": r["total_ios"]}


def warm_page_cache(path):
    """Read the whole file so the page-cache cases start from a cached file."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.environ.get("YUN_BUILD_DIR", "build"))
    p.add_argument("--file", default="/var/tmp/yun-blk-bench.img")
    p.add_argument("--size", type=int, default=512, help="MiB (default 512)")
    p.add_argument("--seconds", type=int, default=5, help="per run (default 5)")
    p.add_argument("--rounds", type=int, default=5, help="runs of each, interleaved (default 5)")
    p.add_argument("--cpu", type=int, default=1, help="host core for both (default 1)")
    p.add_argument("--cases", default=",".join(c[0] for c in CASES))
    p.add_argument("--cache", default="page,direct")
    p.add_argument("--backends", default="io_uring,sync")
    p.add_argument("--io-thread", action="store_true",
                   help="run the device's I/O loop on its own thread (same core)")
    args = p.parse_args()
    if not os.path.exists(os.path.join(args.build, "bench/blk_harness")):
        sys.exit("blk.py: no %s/bench/blk_harness (build first)" % args.build)
    if not os.path.exists(args.file) or os.path.getsize(args.file) != args.size << 20:
        subprocess.run(["fio", "--name=fill", "--filename=" + args.file, "--rw=write",
                        "--bs=1M", "--size=%dM" % args.size, "--output=/dev/null"], check=True)
    cases = [c for c in CASES if c[0] in args.cases.split(",")]
    caches = [c == "direct" for c in ("page", "direct") if c in args.cache.split(",")]
    backends = [b for b in ("io_uring", "sync") if b in args.backends.split(",")]

    runs = {}  # (case, direct) -> {"fio": [...], backend: [...]}
    for rnd in range(args.rounds):
        if False in caches:
            warm_page_cache(args.file)
        for name, mode, bs, depth, rw in cases:
            for direct in caches:
                if rnd == 0:
                    # Warm up (page cache, disk) the same way for both sides; discarded.
                    fio(args, rw, bs, depth, direct, 1)
                    harness(args, mode, bs, depth, direct, backends[0], 1)
                slot = runs.setdefault((name, direct), {})
                order = ["fio"] + backends
                if rnd % 2:
                    order.reverse()
                for who in order:
                    if who == "fio":
                        r = fio(args, rw, bs, depth, direct, args.seconds)
                    else:
                        r = harness(args, mode, bs, depth, direct, who, args.seconds)
                    slot.setdefault(who, []).append(r)

    rows = []
    for name, mode, bs, depth, rw in cases:
        key = "iops" if mode == "randread" else "mib_s"
        for direct in caches:
            slot = runs[(name, direct)]
            anchor = [r[key] for r in slot["fio"]]
            for backend in backends:
                yun = [r[key] for r in slot[backend]]
                rows.append({
                    "case": name, "direct": direct, "backend": backend, "metric": key,
                    "yun": statistics.median(yun), "fio": statistics.median(anchor),
                    "ratio": statistics.median(yun) / statistics.median(anchor),
                    "round_ratios": [y / f for y, f in zip(yun, anchor)],
                    "yun_runs": yun, "fio_runs": anchor,
                    "yun_cpu_us_per_op": statistics.median(
                        r["cpu_seconds"] / r["ops"] * 1e6 for r in slot[backend]),
                    "fio_cpu_us_per_op": statistics.median(
                        r["cpu_seconds"] / r["ops"] * 1e6 for r in slot["fio"]),
                    "ops_per_interrupt": statistics.median(
                        r["ops"] / max(r["interrupts"], 1) for r in slot[backend]),
                    "io_thread": args.io_thread, "seconds": args.seconds,
                    "rounds": args.rounds})
    print("%-12s %-7s %-8s %-6s %12s %12s %7s %13s %8s" % (
        "case", "cache", "backend", "metric", "yun-vmm", "fio", "ratio", "round ratios",
        "cpu/op"))
    for r in rows:
        print("%-12s %-7s %-8s %-6s %12.0f %12.0f %6.0f%% %6.0f-%4.0f%% %8s" % (
            r["case"], "direct" if r["direct"] else "page", r["backend"], r["metric"],
            r["yun"], r["fio"], 100 * r["ratio"], 100 * min(r["round_ratios"]),
            100 * max(r["round_ratios"]),
            "%.1f/%.1f" % (r["yun_cpu_us_per_op"], r["fio_cpu_us_per_op"])))
    print("# medians of %d rounds of %d s; cpu/op: us of CPU per request, yun/fio"
          % (args.rounds, args.seconds))
    for r in rows:
        print(json.dumps(r))
    os.makedirs(os.path.join(here, "results"), exist_ok=True)
    path = os.path.join(here, "results", "blk-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump({"file": args.file, "size_mib": args.size, "rows": rows}, f, indent=1)
    print("# results in %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
