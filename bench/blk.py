#!/usr/bin/env python3
"""blk.py - virtio-blk throughput in-process against fio on the same file.

bench/blk_harness (built by meson) plays the guest driver against
src/vmm/virtio/blk.c on one thread; fio (ioengine io_uring, the anchor)
reads the same file with the same block size and queue depth in the same
run. Both are pinned to the same host core. Cases: 4 KiB random reads
(IOPS) and 1 MiB sequential reads (MiB/s), each through the page cache and
with O_DIRECT, for the device's io_uring and synchronous backends.

    blk.py [--build DIR] [--file PATH] [--size MIB] [--seconds S] [--cpu N]

Prints a table and one JSON line per case; writes bench/results/blk-*.json.
Exit status 1 if a run failed. Python 3 standard library, fio, taskset.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CASES = [  # name, mode, bs, iodepth, fio rw
    ("4k-randread", "randread", 4096, 32, "randread"),
    ("1m-seqread", "seqread", 1 << 20, 4, "read"),
]


def harness(args, mode, bs, depth, direct, backend):
    env = dict(os.environ)
    env.pop("YUN_BLK_NO_URING", None)
    if backend == "sync":
        env["YUN_BLK_NO_URING"] = "1"
    argv = ["taskset", "-c", str(args.cpu), os.path.join(args.build, "bench/blk_harness"),
            args.file, mode, str(bs), str(depth), str(args.seconds)]
    if direct:
        argv.append("direct")
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def fio(args, rw, bs, depth, direct):
    argv = ["taskset", "-c", str(args.cpu), "fio", "--name=anchor", "--filename=" + args.file,
            "--rw=" + rw, "--bs=%d" % bs, "--iodepth=%d" % depth, "--ioengine=io_uring",
            "--direct=%d" % direct, "--invalidate=0", "--time_based",
            "--runtime=%d" % args.seconds, "--numjobs=1", "--output-format=json"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    job = json.loads(out.stdout)["jobs"][0]
    r = job["read"]
    cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * args.seconds
    return {"iops": r["iops"], "mib_s": r["bw"] / 1024.0, "cpu_seconds": cpu}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.environ.get("YUN_BUILD_DIR", "build"))
    p.add_argument("--file", default="/var/tmp/yun-blk-bench.img")
    p.add_argument("--size", type=int, default=512, help="MiB (default 512)")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--cpu", type=int, default=1, help="host core for both (default 1)")
    args = p.parse_args()
    if not os.path.exists(os.path.join(args.build, "bench/blk_harness")):
        sys.exit("blk.py: no %s/bench/blk_harness (build first)" % args.build)
    if not os.path.exists(args.file) or os.path.getsize(args.file) != args.size << 20:
        subprocess.run(["fio", "--name=fill", "--filename=" + args.file, "--rw=write",
                        "--bs=1M", "--size=%dM" % args.size, "--output=/dev/null"], check=True)

    rows = []
    for name, mode, bs, depth, rw in CASES:
        for direct in (False, True):
            # Warm the page cache (buffered) the same way for both sides.
            fio(args, rw, bs, depth, direct)
            anchor = fio(args, rw, bs, depth, direct)
            for backend in ("io_uring", "sync"):
                h = harness(args, mode, bs, depth, direct, backend)
                key = "iops" if mode == "randread" else "mib_s"
                rows.append({"case": name, "direct": direct, "backend": backend,
                             "metric": key, "yun": h[key], "fio": anchor[key],
                             "ratio": h[key] / anchor[key] if anchor[key] else None,
                             "yun_cpu_s": h["cpu_seconds"], "fio_cpu_s": anchor["cpu_seconds"],
                             "seconds": args.seconds})
    print("%-12s %-8s %-8s %-6s %12s %12s %7s" % ("case", "cache", "backend", "metric",
                                                 "yun-vmm", "fio", "ratio"))
    for r in rows:
        print("%-12s %-8s %-8s %-6s %12.0f %12.0f %6.0f%%" % (
            r["case"], "direct" if r["direct"] else "page", r["backend"], r["metric"],
            r["yun"], r["fio"], 100 * (r["ratio"] or 0)))
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
