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

Yun, real guests: two yun-vmm processes over loopback TCP, the source
(256 MiB, 1 vCPU, a virtio-blk disk and virtio-rng) running the test
guest's `counter` case, the destination started with --migrate-listen;
PUT /migrate on the source's control API (downtime_ms 50), the figures are
the API's answer; every run checks that the source exited 0 and the
destination goes on counting with no YT FAIL. The guest's dirty rate is
measured from its COUNT lines (steps = pages rewritten) before migrating.
Its kernel-mode code is emulated on these PVM hosts, so it dirties slowly
(tens to hundreds of pages per second) whatever it is asked:

  vmm-idle   the `serial` case (waits for input)
  vmm-slow   `counter` defaults: 64 KiB region, the whole of it re-added
             every 50 ms
  vmm-fast   `counter` yt.region=256 yt.period=1000: 256 KiB region, re-added
             once a second, so nearly all its time goes into rewriting pages
             (the fastest this guest dirties here, ~160 pages/s)
  vmm-full   `counter` defaults in a 256 MiB guest full of data: the source is
             restored (--restore, resume=on) from a snapshot of the counter
             whose memory file has random bytes in the 192 MiB the guest
             never uses (64 MiB up), so ~48000 pages cross the wire, dirtied
             slowly: the issue's "256 MiB dirtied slowly"

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

    migrate.py [--build DIR] [--rounds N] [--cases idle,slow,...,vmm-idle,vmm-full]
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
VMM_CASES = {  # name: guest command line
    "vmm-idle": "yuntest=serial",
    "vmm-slow": "yuntest=counter",
    "vmm-fast": "yuntest=counter yt.region=256 yt.period=1000",
    "vmm-full": "yuntest=counter",
}
COUNT_PREFIX = b"YT COUNT "


def yun_once(args, case):
    mib, data, rate = CASES[case]
    argv = [os.path.join(args.build, "bench/migrate_harness"), str(mib), str(data), rate, "50"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError("migrate_harness %s: %s" % (case, out.stderr.strip()))
    return json.loads(out.stdout)


def wait_file(path, proc, what, timeout=20):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("%s: %s never appeared" % (what, path))
        time.sleep(0.01)


def count_lines(path):
    """(n, steps, time seen) of each COUNT line in the serial file so far."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for line in data.split(b"\n")[:-1]:
        if line.startswith(b"YT FAIL"):
            raise RuntimeError("guest says %s" % line.decode(errors="replace"))
        if line.startswith(COUNT_PREFIX):
            words = line.split()
            out.append((int(words[2]), int(words[3].split(b"=")[1])))
    return out


def api_put(sock, path, body, timeout=120):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    data = json.dumps(body).encode()
    s.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (path.encode(), len(data))
              + data)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def full_snapshot(args, tmp, vmm, disk):
    """State and memory files of the counter guest with 256 MiB of data (made once)."""
    state, mem = os.path.join(tmp, "full.state"), os.path.join(tmp, "full.mem")
    if os.path.exists(state):
        return state, mem
    r = subprocess.run([vmm, "--kernel", args.elf, "--cmdline", "yuntest=counter",
                        "--memory", "256", "--rng", "--disk", "path=" + disk,
                        "--serial", "file=" + os.path.join(tmp, "snap.out"),
                        "--snapshot-on-line",
                        "match=YT COUNT 3 ,state=%s,mem=%s" % (state, mem)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("vmm-full snapshot: %s" % r.stderr.strip())
    with open(mem, "r+b") as f:
        f.seek(64 << 20)
        for _ in range(192):
            f.write(os.urandom(1 << 20))
    return state, mem


def vmm_once(args, tmp, case):
    """One real yun-vmm migration over loopback; the API's figures plus the dirty rate."""
    port = free_port()
    token = os.urandom(32).hex()
    paths = {k: os.path.join(tmp, k) for k in ("tok", "disk", "src.sock", "dst.sock",
                                                "src.out", "dst.out")}
    for k in ("src.sock", "dst.sock", "src.out", "dst.out"):
        if os.path.exists(paths[k]):
            os.unlink(paths[k])
    with open(paths["tok"], "w") as f:
        f.write(token + "\n")
    with open(paths["disk"], "wb") as f:
        f.truncate(16 << 20)
    vmm = os.path.join(args.build, "src/vmm/yun-vmm")
    if case == "vmm-full":
        state, mem = full_snapshot(args, tmp, vmm, paths["disk"])
        boot = ["--restore", "state=%s,mem=%s,resume=on" % (state, mem)]
    else:
        boot = ["--kernel", args.elf, "--cmdline", VMM_CASES[case], "--memory", "256",
                "--rng", "--disk", "path=" + paths["disk"]]
    src = subprocess.Popen([vmm] + boot + ["--serial", "file=" + paths["src.out"],
                                           "--api-sock", paths["src.sock"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dst = subprocess.Popen([vmm, "--migrate-listen", "127.0.0.1:%d" % port,
                            "--migrate-token-file", paths["tok"],
                            "--serial", "file=" + paths["dst.out"],
                            "--api-sock", paths["dst.sock"]],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_file(paths["src.sock"], src, "source")
        wait_file(paths["dst.sock"], dst, "destination")
        counting = case != "vmm-idle"
        deadline = time.time() + 30
        first = None
        while True:  # let the guest run ~1 s (counting ones: measure the dirty rate)
            text = open(paths["src.out"], "rb").read() if os.path.exists(paths["src.out"]) \
                else b""
            if not counting and b"YT READY" in text:
                time.sleep(1)
                break
            seen = count_lines(paths["src.out"]) if counting else []
            if seen and first is None:
                first = (seen[-1][0], seen[-1][1], time.time())
            # Steps between two COUNT lines at least ~1 s apart, over the time we saw them.
            if first and seen[-1][0] > first[0] and time.time() - first[2] >= 0.9:
                rate = (seen[-1][1] - first[1]) / (time.time() - first[2])
                break
            if time.time() > deadline or src.poll() is not None:
                raise RuntimeError("%s: the source guest does not run" % case)
            time.sleep(0.01)
        status, st = api_put(paths["src.sock"], "/migrate",
                             {"destination": "127.0.0.1:%d" % port, "token": token,
                              "downtime_ms": 50})
        if status != 200:
            raise RuntimeError("%s: PUT /migrate %d %s" % (case, status, st))
        if src.wait(timeout=20) != 0:
            raise RuntimeError("%s: the source exited %d" % (case, src.returncode))
        last = count_lines(paths["src.out"]) if counting else []
        deadline = time.time() + 20
        while counting:  # the destination goes on counting, intact
            seen = count_lines(paths["dst.out"]) if os.path.exists(paths["dst.out"]) else []
            if len(seen) >= 3:
                if last and seen[0][0] > last[-1][0] + 2:
                    raise RuntimeError("%s: destination counts from %d after %d"
                                       % (case, seen[0][0], last[-1][0]))
                break
            if time.time() > deadline or dst.poll() is not None:
                raise RuntimeError("%s: the destination does not count on" % case)
            time.sleep(0.01)
        st["dirty_pages_s"] = round(rate) if counting else 0
        st["throttle"] = 0
        return st
    finally:
        for p in (src, dst):
            if p.poll() is None:
                p.kill()
            p.wait()


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
    ap.add_argument("--cases", default="idle,full,slow,medium,fast,"
                    "vmm-idle,vmm-slow,vmm-fast,vmm-full")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--elf", default=None)
    args = ap.parse_args()
    args.elf = args.elf or os.path.join(args.build, "tests/guest/yun-test-guest.elf")
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES and c not in VMM_CASES:
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
                    elif what in VMM_CASES:
                        yun[what].append(vmm_once(args, tmp, what))
                    else:
                        r = yun_once(args, what)
                        if not (r["ram_identical"] and r["checksum_ok"] and r["counter_ok"]):
                            raise RuntimeError("%s: guest arrived damaged: %s" % (what, r))
                        yun[what].append(r)
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    print("run failed: %s" % e, file=sys.stderr)
                    failed = True

    results = []
    # Real guests with little data: QEMU migrating the same idle guest; with 256 MiB of
    # data: QEMU with 256 MiB of data and the same 50 ms budget.
    anchor_of = {c: ("qemu-idle" if c == "idle" or (c in VMM_CASES and c != "vmm-full")
                     else "qemu-full") for c in cases}
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
        real = c in VMM_CASES
        row = {
            "bench": "migrate", "case": c, "guest_mib": 256 if real else CASES[c][0],
            "data_mib": None if real else CASES[c][1],
            "rate_pages_s": med(runs, "dirty_pages_s") if real else CASES[c][2],
            "runs": len(runs),
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
