#!/usr/bin/env python3
"""yun_cloud.py - the single-node cloud's network promises, through the `yun`
CLI against a real yund.

    yun_cloud.py --yun build/src/cli/yun --yund build/src/yund/yund [-k WORD]

Starts its own yund with `yun up` (temporary --root and --run), builds the
busybox image, makes two networks with `yun net create` and runs busybox
container instances on them with `yun run --net`:

  - a1 and a2 on network A: a2 opens a TCP connection to a1 (busybox nc)
    and both sides see the other's words;
  - a test server "on the host" behind an uplink: a network namespace
    joined to the host by a veth (the host's end 203.0.113.2/24, the
    server 203.0.113.1; TEST-NET-3, so it never meets tests/e2e/yund_net.py's
    198.51.100.0/24 when both run at once) with no route back to the
    instances' networks: a1 and a2 both reach it, and it sees the host's
    uplink address as the peer (masquerade), not theirs;
  - b1 on network B cannot open a TCP connection to a1 (and a1 never
    hears from it).

At the end everything is removed through the CLI (instances, networks,
`yun down`) and the host is checked: no yb-/yv- link, network namespace or
nftables rule of the test's networks is left. Prints "ok - NAME (SECSs)"
or "not ok - NAME: REASON" per test, then "N passed, N failed"; exits 1 if
any test failed. Needs root. Python 3 standard library only.
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import yun_cli  # noqa: E402  (the CLI test's helpers: yun(), Env, Failure, ...)
from yun_cli import Env, Failure, Skip, check_sanitizers, parse_table, wait_for, yun  # noqa: E402

OUT_IP = "203.0.113.1"     # the outside test server
UPLINK_IP = "203.0.113.2"  # the host's end of the test uplink
OUT_PORT = 8080
PORT = 7000                # a1's listener

SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    print("peer=%s" % peer[0], flush=True)
    c.sendall(("peer=%s\n" % peer[0]).encode())
    c.close()
"""

# pid 1 ends at once on TERM: the wait is interrupted by the trapped signal.
IDLE = "while true; do sleep 1 & wait $!; done"


class Cloud:
    nets = {}       # "A"/"B" -> {"name", "cidr", "id"}
    insts = {}      # name -> instance JSON (after running)
    outside = None  # Popen of the outside server
    uplink = None   # host-side name of the test uplink


def sh(args, check=True):
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise Failure("%s: status %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


def links():
    out = sh(["ip", "-o", "link", "show"]).stdout
    return [m.group(1).split("@")[0] for m in re.finditer(r"^\d+: (\S+):", out, re.M)]


def mounted(path):
    """A mount point (a bind mount on the same file system included)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def logs(name):
    return yun(["logs", name], check=0)[1]


def run_instance(name, net, script):
    _, out, _ = yun(["run", "--name", name, "--net", Cloud.nets[net]["name"], "busybox", "--",
                     "sh", "-c", "trap 'exit 0' TERM; " + script], check=0, timeout=120)
    if not out.startswith(name + " i-"):
        raise Failure("yun run %s printed %r" % (name, out))
    inst = yun_cli.yun_json(["show", name])
    if inst.get("state") != "running" or not inst.get("ip"):
        raise Failure("%s after yun run: %r" % (name, inst))
    Cloud.insts[name] = inst
    return inst


# ---- tests ----------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def up_and_image():
    yun(["up", "--root", Env.root, "--run", Env.run], check=0, timeout=90)
    Env.up = True
    yun(["image", "build", "busybox"], check=0, timeout=600)


@test
def two_networks():
    yun_cli.need_up()
    a, b = random.sample(range(0, 250), 2)
    base = random.randint(100, 199)
    for key, third in (("A", a), ("B", b)):
        name = "cloud-%s-%d" % (key.lower(), os.getpid())
        cidr = "10.%d.%d.0/24" % (base, third)
        _, out, _ = yun(["net", "create", name, "--cidr", cidr], check=0, timeout=120)
        m = re.match(r"^%s (net-[0-9a-f]{12})\n$" % re.escape(name), out)
        if not m:
            raise Failure("net create printed %r" % out)
        Cloud.nets[key] = {"name": name, "cidr": cidr, "id": m.group(1)}
    _, out, _ = yun(["net", "ls"], check=0)
    _, rows = parse_table(out)
    for net in Cloud.nets.values():
        row = [r for r in rows if r["NAME"] == net["name"]]
        if not row or row[0]["STATE"] != "active" or row[0]["CIDR"] != net["cidr"]:
            raise Failure("net ls: %r" % out)


def setup_outside():
    if OUT_IP.rsplit(".", 1)[0] + "." in sh(["ip", "-4", "-o", "addr", "show"]).stdout:
        raise Skip("203.0.113.0/24 is in use on this host")
    Cloud.uplink = "yco-%x" % os.getpid()
    Cloud.outside = subprocess.Popen(["unshare", "--net", "python3", "-c", SERVER,
                                      str(OUT_PORT)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
    if Cloud.outside.stdout.readline().strip() != "ready":
        raise Failure("outside server: %s" % Cloud.outside.stderr.read()[:300])
    pid = str(Cloud.outside.pid)
    sh(["ip", "link", "add", Cloud.uplink, "type", "veth", "peer", "name", "eth0", "netns",
        pid])
    sh(["ip", "addr", "add", UPLINK_IP + "/24", "dev", Cloud.uplink])
    sh(["ip", "link", "set", Cloud.uplink, "up"])
    inside = ["nsenter", "-t", pid, "-n"]
    sh(inside + ["ip", "addr", "add", OUT_IP + "/24", "dev", "eth0"])
    sh(inside + ["ip", "link", "set", "eth0", "up"])
    sh(inside + ["ip", "link", "set", "lo", "up"])


def outside_probe(name):
    """Shell: connect to the outside server until it answers, print what it says."""
    return ("for i in $(seq 1 20); do if nc -w 2 %s %d </dev/null; then echo %s-out-done; "
            "break; fi; sleep 0.5; done" % (OUT_IP, OUT_PORT, name))


@test
def outside_server():
    """The test server outside, on an uplink with no route back to the networks."""
    setup_outside()


@test
def same_network_reaches_over_tcp():
    """a2 -> a1 over TCP on network A: each side sees the other's words."""
    yun_cli.need_up()
    a1 = run_instance("a1", "A", "(%s) & while true; do nc -l -p %d -e sh -c "
                      "'echo from-a1; read x; echo \"a1 got $x\" >&2' & wait $!; done" %
                      (outside_probe("a1"), PORT))
    a2 = run_instance("a2", "A", "for i in $(seq 1 50); do "
                      "if echo from-a2 | nc -w 2 %s %d; then echo a2-done; break; fi; "
                      "sleep 0.2; done; %s; %s" % (a1["ip"], PORT, outside_probe("a2"), IDLE))
    wait_for(lambda: "a2-done" in logs("a2"), "a2's connection to a1", timeout=30)
    if "from-a1" not in logs("a2"):
        raise Failure("a2 did not hear a1: %r" % logs("a2"))
    wait_for(lambda: "a1 got from-a2" in logs("a1"), "a1 hearing a2", timeout=10)
    _, out, _ = yun(["ls"], check=0)
    _, rows = parse_table(out)
    for name, inst in (("a1", a1), ("a2", a2)):
        row = [r for r in rows if r["NAME"] == name]
        if not row or row[0]["STATE"] != "running" or row[0]["IP"] != inst["ip"]:
            raise Failure("ls: %s: %r" % (name, out))


@test
def host_server_through_nat():
    """a1 and a2 reach the outside server; it sees the host's uplink address, not theirs."""
    yun_cli.need_up()
    if not Cloud.outside:
        raise Skip("no outside server")
    for name in ("a1", "a2"):
        if name not in Cloud.insts:
            raise Failure("no %s (an earlier test failed)" % name)
        wait_for(lambda: name + "-out-done" in logs(name), name + "'s connection to the outside",
                 timeout=40)
        seen = re.findall(r"peer=(\S+)", logs(name))
        if seen != [UPLINK_IP]:
            raise Failure("the outside server saw %s as %s, expected %s (masquerade)" %
                          (name, seen, UPLINK_IP))
        if Cloud.insts[name]["ip"] == UPLINK_IP:
            raise Failure("%s has the uplink's address" % name)


@test
def other_network_cannot_reach():
    """b1 on network B: TCP to a1 fails; a1 never hears from b1."""
    yun_cli.need_up()
    a1 = Cloud.insts.get("a1")
    if not a1:
        raise Failure("no a1 (an earlier test failed)")
    run_instance("b1", "B", "for i in 1 2 3; do echo from-b1 | nc -w 2 %s %d; "
                 "echo b1-rc=$?; done; echo b1-done; %s" % (a1["ip"], PORT, IDLE))
    text = wait_for(lambda: "b1-done" in logs("b1") and logs("b1"), "b1's attempts", timeout=40)
    rcs = re.findall(r"b1-rc=(\d+)", text)
    if rcs != ["1", "1", "1"] or "from-a1" in text:
        raise Failure("b1 reached a1 across networks: %r" % text)
    if "from-b1" in logs("a1"):
        raise Failure("a1 heard b1: %r" % logs("a1"))


@test
def clean_up_leaves_nothing():
    """rm -f, net rm, down: no link, namespace or nftables rule of ours is left."""
    yun_cli.need_up()
    names = [n for n in ("a1", "a2", "b1") if n in Cloud.insts]
    if names:
        yun(["rm", "-f"] + names, check=0, timeout=180)
    for net in Cloud.nets.values():
        yun(["net", "rm", net["name"]], check=0, timeout=120)
    yun(["down"], check=0, timeout=60)
    Env.up = False
    check_leftovers()


def check_leftovers():
    hexes = [i["id"].split("-", 1)[1] for i in Cloud.insts.values()] + \
        [n["id"].split("-", 1)[1] for n in Cloud.nets.values()]
    left = [l for l in links() if any(h in l for h in hexes)]
    if left:
        raise Failure("links left: %s" % left)
    netns = os.path.join(Env.run, "netns")
    if os.path.isdir(netns) and os.listdir(netns):
        raise Failure("network namespaces left: %s" % os.listdir(netns))
    if not shutil.which("nft"):
        print("# nft (Debian's nftables) is not installed: rules not checked")
        return
    rules = sh(["nft", "-a", "list", "table", "inet", "yun"], check=False).stdout
    mine = [l.strip() for l in rules.split("\n")
            if any(n["id"] in l for n in Cloud.nets.values())]
    if mine:
        raise Failure("nftables rules left: %s" % mine)


# ---- main -------------------------------------------------------------------------------


def cleanup():
    if Env.up:
        yun(["rm", "-f", "a1", "a2", "b1"], timeout=180)
        for net in Cloud.nets.values():
            yun(["net", "rm", net["name"]], timeout=120)
        yun(["down", "--force"], timeout=60)
        Env.up = False
    if Cloud.outside:
        Cloud.outside.kill()
        Cloud.outside.wait()
    if Cloud.uplink and Cloud.uplink in links():
        sh(["ip", "link", "del", Cloud.uplink], check=False)
    # yund bind-mounts its netns directory onto itself (as `ip netns` does
    # with /run/netns) and leaves it for the next start: ours goes with the test.
    if Env.run and mounted(os.path.join(Env.run, "netns")):
        sh(["umount", "-l", os.path.join(Env.run, "netns")], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yun", default=os.path.join(yun_cli.REPO, "build", "src", "cli", "yun"))
    ap.add_argument("--yund", default=os.path.join(yun_cli.REPO, "build", "src", "yund",
                                                   "yund"))
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.yun = os.path.abspath(args.yun)
    Env.yund = os.path.abspath(args.yund)
    for what, path in (("yun", Env.yun), ("yund", Env.yund)):
        if not os.access(path, os.X_OK):
            print("not ok - yun_cloud: no %s binary at %s" % (what, path))
            print("0 passed, 1 failed")
            return 1
    if os.geteuid() != 0:
        print("not ok - yun_cloud: needs root (yund runs containers, the test makes links)")
        print("0 passed, 1 failed")
        return 1
    yun_cli.make_tmp("yun-cloud-e2e.")
    try:
        passed, failed = yun_cli.run_tests(
            TESTS, args.filter,
            always=(up_and_image, two_networks, outside_server, clean_up_leaves_nothing))
    finally:
        cleanup()
    try:
        check_leftovers()
        if Cloud.uplink and Cloud.uplink in links():
            raise Failure("test uplink %s left" % Cloud.uplink)
        if mounted(os.path.join(Env.run, "netns")):
            raise Failure("the netns directory is still mounted")
        with open(os.path.join(Env.run, "yund.log"), errors="replace") as f:
            check_sanitizers("yund.log", f.read())
        print("ok - nothing_left_and_yund_log_clean")
        passed += 1
    except (Failure, OSError) as e:
        print("not ok - nothing_left_and_yund_log_clean: %s" % e)
        failed += 1
    if not failed:
        shutil.rmtree(Env.tmp, ignore_errors=True)
    else:
        print("# kept %s for a look (yund.log is in run/)" % Env.tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
