#!/usr/bin/env python3
"""migrate_netns.py - live migration between two "hosts": two network
namespaces joined by a veth pair, the source in one and the destination in
the other, each its own process (bench/migrate_harness --send / --listen,
the real engine and stream of src/vmm/migrate with the fake guest of
tests/unit/migrate_fake.h).

    migrate_netns.py --harness build/bench/migrate_harness [-k WORD]

What a user would notice:
  ipv4, ipv6      a guest rewriting a checksummed region arrives and keeps
                  counting on the destination, checksum intact; the source
                  process ends with the migration done
  stranger        a connection with the wrong token (and one speaking
                  garbage) is dropped and the listener still takes the real
                  source
  kill-dest       the destination is killed (SIGKILL) mid-way on a slowed
                  link: the source reports failure and its guest keeps
                  running, checksum intact
  cut             the link goes down mid-way: the source times out, keeps
                  running; the destination aborts and exits non-zero

Touches only namespaces and links named ym-<hex>*. Prints "ok - NAME" or
"not ok - NAME: REASON" per test, then "N passed, N failed"; exits 1 if any
test failed. Needs root. Python 3 standard library, iproute2 (ip, tc).
"""

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time

from harness import Failure, HostPair, Skip, sh

HOSTS = HostPair("ym")
NS_A, NS_B = HOSTS.ns_a, HOSTS.ns_b
LINK_B = HOSTS.link_b
IP_A, IP_B = "10.254.77.1", "10.254.77.2"
IP6_A, IP6_B = "fd00:77::1", "fd00:77::2"
TOKEN = secrets.token_hex(32)


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + argv


def start_dest(args, addr, mib, data_mib, accept_ms=20000):
    env = dict(os.environ, MIGRATE_TOKEN=TOKEN)
    p = subprocess.Popen(in_ns(NS_B, [args.harness, "--listen", addr, str(mib), str(data_mib),
                                      str(accept_ms)]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline()
    if line.strip() != "listening":
        p.kill()
        raise Failure("destination did not listen: %s %s" % (line, p.stderr.read()))
    return p


def start_source(args, addr, mib, data_mib, rate, token=TOKEN):
    env = dict(os.environ, MIGRATE_TOKEN=token)
    return subprocess.Popen(in_ns(NS_A, [args.harness, "--send", addr, str(mib), str(data_mib),
                                         str(rate)]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def result(p, what, timeout=120):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise Failure("%s did not finish in %d s" % (what, timeout))
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise Failure("%s printed no result (status %d): %s" % (what, p.returncode, err.strip()))
    return p.returncode, json.loads(lines[-1])


def migrate_ok(args, addr):
    dst = start_dest(args, addr, 64, 32)
    src = start_source(args, addr, 64, 32, 5000)
    rs, s = result(src, "source")
    rd, d = result(dst, "destination")
    if rs != 0 or s["outcome"] != "done":
        raise Failure("source: status %d %s" % (rs, s))
    if rd != 0 or not d["ok"] or not d["checksum_ok"]:
        raise Failure("destination: status %d %s" % (rd, d))
    if d["counter_after_200ms"] <= d["loaded_counter"]:
        raise Failure("the guest does not keep counting on the destination: %s" % d)
    return s, d


def test_ipv4(args):
    s, d = migrate_ok(args, "%s:4711" % IP_B)
    return "downtime %.1f ms, total %.0f ms, %d rounds" % (s["downtime_ms"], s["total_ms"],
                                                          s["rounds"])


def test_ipv6(args):
    s, d = migrate_ok(args, "[%s]:4712" % IP6_B)
    return "downtime %.1f ms" % s["downtime_ms"]


def test_stranger(args):
    addr = "%s:4713" % IP_B
    dst = start_dest(args, addr, 64, 32)
    # garbage, then the right protocol with the wrong token
    g = subprocess.run(in_ns(NS_A, ["python3", "-c",
                                    "import socket; s=socket.create_connection(('%s', 4713));"
                                    "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n' + b'x' * 64);"
                                    "s.recv(100)" % IP_B]), capture_output=True, timeout=30)
    bad = start_source(args, addr, 32, 8, 0, token=secrets.token_hex(32))
    rb, b = result(bad, "stranger")
    if rb == 0 or b["outcome"] != "failed" or "proof" not in b["error"]:
        raise Failure("the stranger was not refused: status %d %s" % (rb, b))
    src = start_source(args, addr, 64, 32, 5000)
    rs, s = result(src, "source")
    rd, d = result(dst, "destination")
    if rs != 0 or rd != 0 or not d["ok"]:
        raise Failure("after the stranger: source %d %s, destination %d %s" % (rs, s, rd, d))
    if d["rejected"] != 2:
        raise Failure("destination counted %d refused connections, want 2 (garbage: %s)"
                      % (d["rejected"], g.returncode))
    return "2 refused, then migrated"


def break_midway(args, port, breaker):
    """Start a 256 MiB migration on a slowed link, call breaker(dst) 2 s in,
    and return the source's (status, result) and the destination's process."""
    addr = "%s:%d" % (IP_B, port)
    # ~80 Mbit/s: 256 MiB takes ~25 s, so there is time to break things mid-way.
    HOSTS.slow("80mbit", "64kb", "200ms")
    try:
        dst = start_dest(args, addr, 256, 255)
        src = start_source(args, addr, 256, 255, 2000)
        time.sleep(2)
        breaker(dst)
        rs, s = result(src, "source", timeout=60)
    finally:
        sh("ip", "-n", NS_B, "link", "set", LINK_B, "up", check=False)
        HOSTS.fast()
    if rs != 3 or s["outcome"] != "failed" or not s["source_running"]:
        raise Failure("source: status %d %s (want 3: failed, guest still running here)"
                      % (rs, s))
    return s, dst


def test_kill_dest(args):
    def kill(dst):
        dst.kill()
        dst.wait()

    s, dst = break_midway(args, 4714, kill)
    return s["error"]


def test_cut(args):
    s, dst = break_midway(args, 4715,
                          lambda dst: sh("ip", "-n", NS_B, "link", "set", LINK_B, "down"))
    rd, d = result(dst, "destination", timeout=60)
    if rd == 0 or d["ok"]:
        raise Failure("destination: status %d %s (want aborted)" % (rd, d))
    return "source: %s; destination: %s" % (s["error"], d["error"])


TESTS = [("ipv4", test_ipv4), ("ipv6", test_ipv6), ("stranger", test_stranger),
         ("kill-dest", test_kill_dest), ("cut", test_cut)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--harness", required=True)
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    passed = failed = 0
    if os.geteuid() != 0:
        print("ok - all # SKIP needs root")
        print("0 passed, 0 failed")
        return 0
    try:
        HOSTS.up([IP_A + "/24", IP6_A + "/64"], [IP_B + "/24", IP6_B + "/64"])
    except Failure as e:
        HOSTS.down()
        print("not ok - setup: %s" % e)
        print("0 passed, 1 failed")
        return 1
    try:
        for name, fn in TESTS:
            if args.k and args.k not in name:
                continue
            t0 = time.time()
            try:
                note = fn(args)
                print("ok - %s (%.1fs) %s" % (name, time.time() - t0, note or ""))
                passed += 1
            except Skip as e:
                print("ok - %s # SKIP %s" % (name, e))
            except (Failure, OSError, subprocess.SubprocessError, ValueError) as e:
                print("not ok - %s: %s" % (name, e))
                failed += 1
            sys.stdout.flush()
    finally:
        HOSTS.down()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
