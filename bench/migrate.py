#!/usr/bin/env python3
"""migrate.py - live migration downtime and total time against the guest's
dirty rate, with QEMU's migration of an idle guest as the anchor.

Yun: bench/migrate_harness (built by meson) migrates the fake VM of
tests/unit/migrate_fake.h (256 MiB) over loopback TCP in one process, the
real engine and stream (src/vmm/migrate) with the fake guest dirtying
random pages of its RAM throughout:

  idle    no writes; 1 MiB of data, the rest zero (what an idle small guest is)
  full    no writes; 255 MiB of random data (every page must cross the wire)
  slow    2000 pages/s   (~8 MiB/s) over 255 MiB of random data
  medium  20000 pages/s  (~78 MiB/s)
  fast    as fast as one thread can (auto-converge / forced stop-and-copy)

QEMU (the anchor, same run): two qemu-system-x86_64 -M microvm -m 256
-enable-kvm processes running the project's test guest in its `serial`
case (it waits for input: an idle guest), the destination with
-incoming tcp:127.0.0.1:PORT; QMP `migrate` on the source, then
`query-migrate` until completed for its downtime and total-time. Two
anchors:

  qemu-idle  QEMU's defaults (downtime-limit 300 ms, max-bandwidth
             128 MiB/s); against Yun's idle case
  qemu-full  guest RAM backed by a private mapping of a file of 256 MiB of
             random bytes (the guest does not touch it), downtime-limit 50 ms
             and max-bandwidth unlimited, as Yun runs; against Yun's full
             case (the same amount of data, the same budget)

Figures are medians over --rounds runs (rounds interleave Yun and QEMU);
ratios are Yun's median over QEMU's.

    migrate.py [--build DIR] [--rounds N] [--cases idle,slow,medium,fast]
               [--qemu PATH] [--elf PATH]

Prints a table and one JSON line per case; writes bench/results/migrate-*.json.
Exit status 1 if a run failed. Python 3 standard library, QEMU.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {  # name: (mib, data_mib, rate)
    "idle": (256, 1, "0"),
    "full": (256, 255, "0"),
    "slow": (256, 255, "2000"),
    "medium": (256, 255, "20000"),
    "fast": (256, 255, "max"),
}


def yun_once(args, case):
    mib, data, rate = CASES[case]
    argv = [os.path.join(args.build, "bench/migrate_harness"), str(mib), str(data), rate, "50"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError("migrate_harness %s: %s" % (case, out.stderr.strip()))
    return json.loads(out.stdout)


class QMP:
    def __init__(self, path, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buf = b""
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self.read()
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError("QMP %s: %s" % (name, r["error"]))
            # events are skipped

    def close(self):
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def qemu_once(args, tmp, full):
    port = free_port()
    serial = os.path.join(tmp, "serial.log")
    qmp_path = os.path.join(tmp, "qmp.sock")
    dqmp_path = os.path.join(tmp, "qmp-dest.sock")
    for p in (serial, qmp_path, dqmp_path):
        if os.path.exists(p):
            os.unlink(p)
    base = [args.qemu, "-enable-kvm", "-M", "microvm,rtc=on", "-m", "256", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", args.elf, "-append", "yuntest=serial"]
    src_extra = []
    if full:
        ram = os.path.join(tmp, "ram.bin")
        if not os.path.exists(ram):
            with open(ram, "wb") as f:
                f.write(os.urandom(256 << 20))
        base[base.index("microvm,rtc=on")] = "microvm,rtc=on,memory-backend=mem"
        src_extra = ["-object", "memory-backend-file,id=mem,size=256M,mem-path=%s,share=off"
                     % ram]
        dst_extra = ["-object", "memory-backend-ram,id=mem,size=256M"]
    src = subprocess.Popen(base + src_extra + ["-serial", "file:" + serial,
                                   "-qmp", "unix:%s,server=on,wait=off" % qmp_path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dst = subprocess.Popen(base + (dst_extra if full else []) +
                           ["-serial", "null", "-incoming", "tcp:127.0.0.1:%d" % port,
                            "-qmp", "unix:%s,server=on,wait=off" % dqmp_path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while True:  # the guest is up and idle, waiting for input
            if os.path.exists(serial) and b"YT READY" in open(serial, "rb").read():
                break
            if time.time() > deadline or src.poll() is not None:
                raise RuntimeError("QEMU source guest never reached YT READY")
            time.sleep(0.02)
        # The destination answers QMP once its -incoming socket listens.
        dqmp = QMP(dqmp_path)
        if dqmp.cmd("query-status").get("status") != "inmigrate":
            raise RuntimeError("QEMU destination is not waiting for a migration")
        dqmp.close()
        qmp = QMP(qmp_path)
        if full:
            qmp.cmd("migrate-set-parameters", **{"downtime-limit": 50,
                                                 "max-bandwidth": 100 << 30})
        qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        deadline = time.time() + 120
        while True:
            st = qmp.cmd("query-migrate")
            if st.get("status") == "completed":
                break
            if st.get("status") in ("failed", "cancelled") or time.time() > deadline:
                raise RuntimeError("QEMU migration: %s" % st)
            time.sleep(0.005)
        qmp.close()
        ram = st.get("ram", {})
        return {"anchor": "qemu-full" if full else "qemu-idle",
                "total_ms": float(st["total-time"]), "downtime_ms": float(st["downtime"]),
                "setup_ms": float(st.get("setup-time", 0)),
                "bytes": ram.get("transferred"), "rounds": ram.get("dirty-sync-count")}
    finally:
        for p in (src, dst):
            p.kill()
            p.wait()


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default="idle,full,slow,medium,fast")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--elf", default=None)
    args = ap.parse_args()
    args.elf = args.elf or os.path.join(args.build, "tests/guest/yun-test-guest.elf")
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            ap.error("unknown case %s" % c)

    yun = {c: [] for c in cases}
    qemu = {"qemu-idle": [], "qemu-full": []}
    failed = False
    with tempfile.TemporaryDirectory(prefix="yun-migrate-bench-") as tmp:
        for rnd in range(args.rounds):
            anchors = list(qemu)
            order = anchors + cases if rnd % 2 == 0 else cases + anchors
            for what in order:
                try:
                    if what in qemu:
                        qemu[what].append(qemu_once(args, tmp, what == "qemu-full"))
                    else:
                        r = yun_once(args, what)
                        if not (r["ram_identical"] and r["checksum_ok"] and r["counter_ok"]):
                            raise RuntimeError("%s: guest arrived damaged: %s" % (what, r))
                        yun[what].append(r)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    print("run failed: %s" % e, file=sys.stderr)
                    failed = True

    results = []
    anchor_of = {c: ("qemu-idle" if c == "idle" else "qemu-full") for c in cases}
    q = {a: (med(r, "downtime_ms"), med(r, "total_ms")) for a, r in qemu.items() if r}
    print("%-10s %12s %12s %7s %9s %7s %10s %11s %11s" % (
        "case", "downtime ms", "total ms", "rounds", "throttle", "forced", "anchor",
        "down/anchor", "total/anchor"))
    for a, (d, t) in q.items():
        print("%-10s %12.1f %12.1f %7s %9s %7s %10s %11s %11s" % (
            a, d, t, med(qemu[a], "rounds"), "-", "-", "-", "-", "-"))
    for c in cases:
        runs = yun[c]
        if not runs:
            continue
        d, t = med(runs, "downtime_ms"), med(runs, "total_ms")
        a = anchor_of[c]
        qd, qt = q.get(a, (None, None))
        row = {
            "bench": "migrate", "case": c, "guest_mib": CASES[c][0], "data_mib": CASES[c][1],
            "rate_pages_s": CASES[c][2], "runs": len(runs),
            "downtime_ms": round(d, 2), "total_ms": round(t, 1),
            "rounds": med(runs, "rounds"), "throttle_max": max(r["throttle"] for r in runs),
            "forced_runs": sum(1 for r in runs if r["forced"]),
            "bandwidth_mib_s": round(med(runs, "bandwidth_mib_s"), 1),
            "anchor": a, "anchor_downtime_ms": qd, "anchor_total_ms": qt,
            "downtime_ratio": round(d / qd, 3) if qd else None,
            "total_ratio": round(t / qt, 3) if qt else None,
            "per_run": runs,
        }
        results.append(row)
        print("%-10s %12.1f %12.1f %7s %9s %7s %10s %11s %11s" % (
            c, d, t, row["rounds"], "%d%%" % row["throttle_max"],
            "%d/%d" % (row["forced_runs"], len(runs)), a,
            "%.2f" % row["downtime_ratio"] if qd else "-",
            "%.2f" % row["total_ratio"] if qt else "-"))
    for row in results:
        print(json.dumps({k: v for k, v in row.items() if k != "per_run"}))
    for a, runs in qemu.items():
        if runs:
            print(json.dumps({"bench": "migrate", "case": a, "runs": len(runs),
                              "downtime_ms": q[a][0], "total_ms": q[a][1], "per_run": runs}))
    os.makedirs(os.path.join(root, "bench/results"), exist_ok=True)
    path = os.path.join(root, "bench/results/migrate-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        json.dump({"yun": results, "qemu": qemu}, f, indent=1)
    print("wrote %s" % path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
