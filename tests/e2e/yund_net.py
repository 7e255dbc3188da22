#!/usr/bin/env python3
"""yund_net.py - yund's network module on the real host: bridges, ports, NAT,
isolation, DHCP, idempotence and cleanup.

    yund_net.py --tool build/tests/e2e/net_tool [-k WORD]

Drives tests/e2e/net_tool (a thin CLI over src/yund/net) with a private run
directory and random ids, and checks what an instance would see: two
namespaces on network A talk (ping, TCP); a namespace on network B cannot
reach A, nor A reach B; an "outside" server behind a test uplink
(198.51.100.1, the host's side 198.51.100.2) sees A's connections arrive
from the host's uplink address (masquerade) and cannot open connections
into A; a DHCP client on A's bridge gets its reserved address, and a new
instance reusing a removed one's address gets it too; TAPs are persistent,
enslaved and attachable with yun-vmm's flags; ensure twice = once; the
pieces an external hand breaks (dnsmasq killed, bridge deleted) come back
on the next ensure; leaks are listed by the inventory and removed; remove
leaves no link, namespace, rule or dnsmasq behind, and the host's own links
and routes are as before.

Touches only links named yb-/yv-/yt- + the test's random ids, one test
uplink ynu-<hex>, the nftables table inet yun and its run directory.
Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. Needs root.
Python 3 standard library only.
"""

import argparse
import fcntl
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

from harness import Failure, Skip

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OUT_IP = "198.51.100.1"   # the outside server (TEST-NET-2)
UPLINK_IP = "198.51.100.2"  # the host's end of the test uplink
PORT = 8080


class Env:
    tool = None
    tmp = None
    run = None
    base = None        # 8 random hex digits shared by the test's ids
    nets = {}          # "A"/"B" -> (id, cidr)
    inst = {}          # name -> (id, ip)
    netns = {}         # name -> path
    servers = []       # Popen of TCP servers
    outside = None     # Popen of the outside server (its own netns)
    uplink = None      # the test uplink's host-side name
    host_before = None


def ident(kind, n):
    return "%s-%s%04x" % (kind, Env.base, n)


def hexpart(i):
    return i.split("-", 1)[1]


def tool(*args, check=0, timeout=30):
    """Run net_tool ARGS; returns (status, stdout, stderr)."""
    p = subprocess.run([Env.tool, "--run", Env.run] + list(args), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check is not None and p.returncode != check:
        raise Failure("net_tool %s: status %d, expected %d; stderr: %s" %
                      (" ".join(args)[:140], p.returncode, check, p.stderr.strip()[:400]))
    if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        raise Failure("net_tool %s: sanitizer report: %s" % (" ".join(args)[:80],
                                                            p.stderr.strip()[:600]))
    return p.returncode, p.stdout, p.stderr


def sh(args, check=True, timeout=20):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise Failure("%s: status %d: %s" % (" ".join(args)[:140], p.returncode,
                                             p.stderr.strip()[:300]))
    return p


def in_ns(name_or_path, args):
    path = Env.netns.get(name_or_path, name_or_path)
    return ["nsenter", "--net=" + path] + args


def links():
    """{name: {"master": ..., "up": bool}} of the host's links, from sysfs."""
    out = {}
    for name in os.listdir("/sys/class/net"):
        d = os.path.join("/sys/class/net", name)
        master = os.path.join(d, "master")
        flags = int(open(os.path.join(d, "flags")).read(), 16)
        out[name] = {"master": os.path.basename(os.readlink(master))
                     if os.path.islink(master) else None, "up": bool(flags & 1)}
    return out


def ours(name):
    return Env.base in name or (Env.uplink and name == Env.uplink)


def host_snapshot():
    """The host's own links (name, state), IPv4 addresses and routes, Yun's and the test's aside."""
    ls = {n: v["up"] for n, v in links().items() if not ours(n)}
    addrs = sh(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines()
    routes = sh(["ip", "-4", "route", "show", "table", "main"]).stdout.splitlines()
    yun = re.compile(r"(dev |^\d+: )(yb-|yv-|yt-|ynu-)")
    return (ls, set(a.split(" valid_lft")[0] for a in addrs if not yun.search(a)),
            set(r for r in routes if not yun.search(r)))


SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept()
    c.sendall(("peer=%s\n" % a[0]).encode())
    c.close()
"""

CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print(c.recv(100).decode().strip())
except Exception as e:
    print("error: %s" % e)
    sys.exit(1)
"""


def start_server(prefix_args):
    p = subprocess.Popen(prefix_args + ["python3", "-c", SERVER, str(PORT)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    Env.servers.append(p)
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise Failure("server did not start: %s" % p.stderr.read()[:300])
    return p


def connect(name, ip, timeout=1.0):
    """TCP connect from instance `name` to ip:PORT: the server's line, or None."""
    p = sh(in_ns(name, ["python3", "-c", CLIENT, ip, str(PORT), str(timeout)]), check=False,
           timeout=timeout + 10)
    out = p.stdout.strip()
    return out if p.returncode == 0 else None


def ping(name, ip, tries=1):
    """One echo from instance `name` answered (within `tries` attempts of 1 s)."""
    for _ in range(tries):
        if sh(in_ns(name, ["busybox", "ping", "-c", "1", "-W", "1", ip]),
              check=False).returncode == 0:
            return True
    return False


def nft_rules(net_id):
    _, out, _ = tool("nft-dump")
    return [line.strip() for line in out.splitlines() if '"%s"' % net_id in line]


def net_args(which):
    nid, cidr = Env.nets[which]
    return nid, cidr


def port_ct(name, which):
    nid, cidr = net_args(which)
    iid, ip = Env.inst[name]
    _, out, _ = tool("port-ensure-ct", nid, cidr, iid, ip)
    Env.netns[name] = out.strip()
    return out.strip()


def gw(which):
    return re.sub(r"\.0/\d+$", ".1", Env.nets[which][1])


def pick_cidrs():
    """Two /24s no route or address of this host uses."""
    free = []
    for third in range(1, 250):
        cidr = "10.251.%d.0/24" % third
        if tool("check-cidr", cidr, check=None)[0] == 0:
            free.append(cidr)
        if len(free) == 2:
            return free
    raise Skip("no free 10.251.x.0/24 on this host")


# --- tests -------------------------------------------------------------------

def test_cidr_checks_against_host():
    # An address the host has (its uplink) is refused, naming the link.
    addrs = sh(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines()
    for line in addrs:
        m = re.search(r"^\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)/(\d+)", line)
        if not m or m.group(1) == "lo" or m.group(1).startswith("yb-"):
            continue
        ifname, addr, prefix = m.group(1), m.group(2), int(m.group(3))
        if prefix < 8 or prefix > 30:
            continue
        o = [int(x) for x in addr.split(".")]
        v = (o[0] << 24 | o[1] << 16 | o[2] << 8 | o[3]) & (0xffffffff << (32 - prefix))
        net = "%d.%d.%d.%d/%d" % (v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255, prefix)
        rc, _, err = tool("check-cidr", net, check=1)
        if "overlaps" not in err or ifname not in err:
            raise Failure("check-cidr %s: %s" % (net, err.strip()))
        break
    rc, _, err = tool("check-cidr", "10.251.7.0/24", "10.251.0.0/16=network net-x", check=1)
    if "cidr 10.251.7.0/24: overlaps 10.251.0.0/16 (network net-x)" not in err:
        raise Failure("overlap with a given network: %s" % err.strip())
    rc, _, err = tool("network-ensure", ident("net", 0xff), "10.251.1.1/24", check=1)
    if "not a network address (did you mean 10.251.1.0/24?)" not in err:
        raise Failure("bad cidr: %s" % err.strip())
    rc, _, err = tool("network-ensure", "net-BAD", "10.251.1.0/24", check=1)
    if "network id \"net-BAD\"" not in err:
        raise Failure("bad id: %s" % err.strip())


def test_networks_come_up():
    a, b = pick_cidrs()
    Env.nets = {"A": (ident("net", 0xa), a), "B": (ident("net", 0xb), b)}
    for which in "AB":
        nid, cidr = Env.nets[which]
        tool("network-ensure", nid, cidr)
        br = "yb-" + hexpart(nid)
        info = links().get(br)
        if not info or not info["up"]:
            raise Failure("bridge %s missing or down" % br)
        addr = sh(["ip", "-4", "-o", "addr", "show", "dev", br]).stdout
        if gw(which) + "/24" not in addr:
            raise Failure("bridge %s has no gateway %s: %s" % (br, gw(which), addr))
        if int(tool("dhcp-pid", nid)[1]) <= 0:
            raise Failure("network %s: no dnsmasq" % nid)
        if len(nft_rules(nid)) != 4:
            raise Failure("network %s: rules %s" % (nid, nft_rules(nid)))
    if open("/proc/sys/net/ipv4/ip_forward").read().strip() != "1":
        raise Failure("ip_forward is not 1")


def test_network_ensure_is_idempotent():
    nid, cidr = Env.nets["A"]
    pid = tool("dhcp-pid", nid)[1].strip()
    before = tool("nft-dump")[1]
    tool("network-ensure", nid, cidr)
    tool("network-ensure", nid, cidr)
    if tool("nft-dump")[1] != before:
        raise Failure("the ruleset changed on a second ensure")
    if tool("dhcp-pid", nid)[1].strip() != pid:
        raise Failure("dnsmasq was restarted")


def test_ports_come_up():
    Env.inst = {
        "a1": (ident("i", 0xa1), gw("A")[:-1] + "2"),
        "a2": (ident("i", 0xa2), gw("A")[:-1] + "3"),
        "b1": (ident("i", 0xb1), gw("B")[:-1] + "2"),
    }
    for name in ("a1", "a2", "b1"):
        path = port_ct(name, "A" if name[0] == "a" else "B")
        if not path.startswith(Env.run + "/netns/") or not os.path.exists(path):
            raise Failure("netns path %s" % path)
    # The same call again changes nothing and fails nothing.
    port_ct("a1", "A")
    iid, ip = Env.inst["a1"]
    mac = tool("mac", iid)[1].strip()
    out = sh(in_ns("a1", ["ip", "-o", "addr", "show", "dev", "eth0"])).stdout
    if ip + "/24" not in out:
        raise Failure("a1 eth0: %s" % out)
    got = sh(in_ns("a1", ["ip", "-o", "link", "show", "dev", "eth0"])).stdout
    got_mac = re.search(r"link/ether (\S+)", got).group(1)
    if got_mac != mac:
        raise Failure("a1 mac %s, expected %s" % (got_mac, mac))
    route = sh(in_ns("a1", ["ip", "-4", "route", "show", "default"])).stdout
    if "via " + gw("A") not in route:
        raise Failure("a1 default route: %s" % route)
    veth = "yv-" + hexpart(iid)
    if links()[veth]["master"] != "yb-" + hexpart(Env.nets["A"][0]):
        raise Failure("%s not on A's bridge" % veth)
    # A port on a network that was never ensured says so.
    rc, _, err = tool("port-ensure-ct", ident("net", 0xc), "10.251.250.0/24", ident("i", 0xc1),
                      "10.251.250.2", check=1)
    if "does not exist (ensure the network first)" not in err:
        raise Failure("port on a missing network: %s" % err.strip())
    rc, _, err = tool("port-ensure-ct", Env.nets["A"][0], Env.nets["A"][1], ident("i", 0xc2),
                      gw("A"), check=1)
    if "the gateway of" not in err:
        raise Failure("port on the gateway address: %s" % err.strip())


def test_port_ensure_converges():
    # A changed address replaces the old one (in the namespace and in DHCP);
    # a port ensured on another network leaves no reservation behind.
    nid_a, nid_b = Env.nets["A"][0], Env.nets["B"][0]
    iid, ip = Env.inst["a2"]
    other = gw("A")[:-1] + "44"
    Env.inst["a2"] = (iid, other)
    port_ct("a2", "A")
    addrs = sh(in_ns("a2", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])).stdout
    hosts = open(os.path.join(Env.run, "net", nid_a, "dhcp-hosts")).read()
    Env.inst["a2"] = (iid, ip)
    port_ct("a2", "A")
    if other + "/24" not in addrs or ip + "/" in addrs:
        raise Failure("a2 after an address change: %s" % addrs)
    if "%s,%s" % (other, iid) not in hosts or "%s,%s" % (ip, iid) in hosts:
        raise Failure("dhcp-hosts after an address change: %s" % hosts)
    mover = ident("i", 0x33)
    tool("port-ensure-tap", nid_a, Env.nets["A"][1], mover, gw("A")[:-1] + "33")
    tool("port-ensure-tap", nid_b, Env.nets["B"][1], mover, gw("B")[:-1] + "33")
    in_a = mover in open(os.path.join(Env.run, "net", nid_a, "dhcp-hosts")).read()
    in_b = mover in open(os.path.join(Env.run, "net", nid_b, "dhcp-hosts")).read()
    master = links()["yt-" + hexpart(mover)]["master"]
    tool("port-remove", mover)
    if in_a or not in_b or master != "yb-" + hexpart(nid_b):
        raise Failure("port moved to B: in A's hosts %s, in B's %s, on %s" % (in_a, in_b, master))


def test_same_network_reaches():
    if not ping("a1", Env.inst["a2"][1], tries=3):
        raise Failure("a1 cannot ping a2")
    if not ping("a2", Env.inst["a1"][1], tries=3):
        raise Failure("a2 cannot ping a1")
    if not ping("a1", gw("A"), tries=3):
        raise Failure("a1 cannot ping its gateway")
    start_server(in_ns("a2", []))
    got = connect("a1", Env.inst["a2"][1])
    if got != "peer=" + Env.inst["a1"][1]:
        raise Failure("a1 -> a2 TCP: %s" % got)


def test_networks_are_isolated():
    start_server(in_ns("b1", []))
    start_server(in_ns("a1", []))
    # B cannot reach A, A cannot reach B (TCP and ping), through the host's routing.
    for src, dst in (("b1", "a2"), ("b1", "a1"), ("a1", "b1"), ("a2", "b1")):
        got = connect(src, Env.inst[dst][1])
        if got is not None:
            raise Failure("%s reached %s over TCP: %s" % (src, dst, got))
    if ping("b1", Env.inst["a1"][1]) or ping("a1", Env.inst["b1"][1]):
        raise Failure("ping crosses networks")
    # Each still reaches its own gateway (the isolation is between networks only).
    if not ping("b1", gw("B"), tries=3):
        raise Failure("b1 cannot ping its gateway")


def setup_outside():
    rc, _, err = tool("check-cidr", "198.51.100.0/24", check=None)
    if rc != 0:
        raise Skip("198.51.100.0/24 is in use on this host: %s" % err.strip())
    Env.uplink = "ynu-" + Env.base
    Env.outside = subprocess.Popen(["unshare", "--net", "python3", "-c", SERVER, str(PORT)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if Env.outside.stdout.readline().strip() != "ready":
        raise Failure("outside server: %s" % Env.outside.stderr.read()[:300])
    pid = str(Env.outside.pid)
    sh(["ip", "link", "add", Env.uplink, "type", "veth", "peer", "name", "eth0", "netns", pid])
    sh(["ip", "addr", "add", UPLINK_IP + "/24", "dev", Env.uplink])
    sh(["ip", "link", "set", Env.uplink, "up"])
    inside = ["nsenter", "-t", pid, "-n"]
    sh(inside + ["ip", "addr", "add", OUT_IP + "/24", "dev", "eth0"])
    sh(inside + ["ip", "link", "set", "eth0", "up"])
    sh(inside + ["ip", "link", "set", "lo", "up"])
    Env.netns["outside"] = "/proc/%s/ns/net" % pid


def test_nat_to_uplink():
    setup_outside()
    # The outside has no route back to 10.251.x: only masquerade can make this work.
    for src in ("a1", "b1"):
        got = None
        for _ in range(3):  # the first SYN may race the uplink's carrier
            got = connect(src, OUT_IP, timeout=2)
            if got:
                break
        if got != "peer=" + UPLINK_IP:
            raise Failure("%s -> outside: server saw %s, expected peer=%s" %
                          (src, got, UPLINK_IP))


def test_outside_cannot_reach_instances():
    if not Env.outside:
        raise Skip("no outside namespace")
    # Even with a route, nothing outside opens a connection into a network.
    sh(in_ns("outside", ["ip", "route", "add", Env.nets["A"][1], "via", UPLINK_IP]))
    got = connect("outside", Env.inst["a1"][1])
    if got is not None:
        raise Failure("outside reached a1: %s" % got)


def test_counters():
    iid = Env.inst["a1"][0]
    before = [int(x) for x in tool("counters", iid)[1].split()[1:]]
    for _ in range(3):
        ping("a1", Env.inst["a2"][1])
    line = tool("counters", iid)[1].split()
    after = [int(x) for x in line[1:]]
    if line[0] != "yv-" + hexpart(iid):
        raise Failure("counters of %s" % line[0])
    # rx = what the instance sent, tx = what it received (host side).
    if not (after[0] > before[0] and after[1] >= before[1] + 3 and after[2] > before[2]
            and after[3] >= before[3] + 3):
        raise Failure("counters did not grow: %s -> %s" % (before, after))
    rc, _, err = tool("counters", ident("i", 0xdead), check=1)
    if "no port" not in err:
        raise Failure("counters of nothing: %s" % err.strip())


DHCP_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "ip=$ip subnet=$subnet router=$router" > "%s"
exit 0
"""


def dhcp_lease(name, which="A"):
    """Strip eth0's static address in `name`'s netns and ask DHCP for one."""
    out = os.path.join(Env.tmp, "dhcp-" + name)
    script = os.path.join(Env.tmp, "dhcp-script")
    with open(script, "w") as f:
        f.write(DHCP_SCRIPT % out)
    os.chmod(script, 0o755)
    if os.path.exists(out):
        os.unlink(out)
    sh(in_ns(name, ["ip", "addr", "flush", "dev", "eth0"]))
    p = sh(in_ns(name, ["busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T",
                        "1", "-s", script]), check=False, timeout=30)
    if not os.path.exists(out):
        log = os.path.join(Env.run, "net", Env.nets[which][0], "dnsmasq.log")
        log = open(log).read().strip()[-600:] if os.path.exists(log) else "no log"
        raise Failure("%s: no lease (udhcpc status %d: %s); dnsmasq log: %s" %
                      (name, p.returncode, (p.stdout + p.stderr).strip()[-200:], log))
    return open(out).read().strip()


def test_dhcp_gives_reserved_address():
    nid, cidr = Env.nets["A"]
    Env.inst["d1"] = (ident("i", 0xd1), gw("A")[:-1] + "10")
    port_ct("d1", "A")
    got = dhcp_lease("d1")
    want = "ip=%s subnet=255.255.255.0 router=%s" % (Env.inst["d1"][1], gw("A"))
    if got != want:
        raise Failure("lease: %s, expected %s" % (got, want))
    leases = open(os.path.join(Env.run, "net", nid, "dnsmasq.leases")).read()
    if tool("mac", Env.inst["d1"][0])[1].strip() not in leases:
        raise Failure("lease file: %s" % leases)


def test_dhcp_address_reused_by_new_instance():
    # d1 goes; d2 (another MAC) gets d1's address: the old lease must not block it.
    tool("port-remove", Env.inst["d1"][0])
    Env.inst["d2"] = (ident("i", 0xd2), Env.inst["d1"][1])
    port_ct("d2", "A")
    got = dhcp_lease("d2")
    if not got.startswith("ip=%s " % Env.inst["d2"][1]):
        raise Failure("lease for the new instance: %s" % got)
    tool("port-remove", Env.inst["d2"][0])


TUNSETIFF = 0x400454ca
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def test_dhcp_needs_reachable_run_dir():
    # dnsmasq drops root: a run directory it cannot traverse is named, not half-used.
    closed = os.path.join(Env.tmp, "closed")
    os.mkdir(closed, 0o700)
    nid = ident("net", 0xc)
    p = subprocess.run([Env.tool, "--run", closed + "/run", "network-ensure", nid,
                        "10.251.251.0/24"], capture_output=True, text=True, timeout=30)
    rm = subprocess.run([Env.tool, "--run", closed + "/run", "network-remove", nid],
                        capture_output=True, text=True, timeout=30)
    want = "is mode 0700, needs o+x"
    if p.returncode != 1 or want not in p.stderr:
        raise Failure("network-ensure: status %d: %s" % (p.returncode, p.stderr.strip()))
    if rm.returncode != 0:
        raise Failure("network-remove after the failure: %s" % rm.stderr.strip())
    if "yb-" + hexpart(nid) in links() or nid in tool("nft-dump")[1]:
        raise Failure("network %s left behind" % nid)


def test_tap_port():
    nid, cidr = Env.nets["A"]
    iid, ip = ident("i", 0x71), gw("A")[:-1] + "20"
    Env.inst["t1"] = (iid, ip)
    _, out, _ = tool("port-ensure-tap", nid, cidr, iid, ip, "02:aa:00:00:00:71")
    tap = out.strip()
    if tap != "yt-" + hexpart(iid):
        raise Failure("tap name %s" % tap)
    info = links().get(tap)
    if not info or not info["up"] or info["master"] != "yb-" + hexpart(nid):
        raise Failure("tap %s: %s" % (tap, info))
    flags = int(open("/sys/class/net/%s/tun_flags" % tap).read(), 16)
    if flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) != IFF_TAP | IFF_NO_PI | IFF_VNET_HDR:
        raise Failure("tap flags 0x%x" % flags)
    # yun-vmm attaches with the same flags; ensure while attached keeps it.
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(),
                                                IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        tool("port-ensure-tap", nid, cidr, iid, ip, "02:aa:00:00:00:71")
    finally:
        os.close(fd)
    if tap not in links():
        raise Failure("tap %s not persistent" % tap)
    hosts = open(os.path.join(Env.run, "net", nid, "dhcp-hosts")).read()
    if "02:aa:00:00:00:71,%s,%s" % (ip, iid) not in hosts:
        raise Failure("dhcp-hosts: %s" % hosts)
    tool("port-remove", iid)
    tool("port-remove", iid)
    if tap in links():
        raise Failure("tap %s still there after remove" % tap)
    if iid in open(os.path.join(Env.run, "net", nid, "dhcp-hosts")).read():
        raise Failure("dhcp entry still there after remove")


def test_repairs_what_was_broken():
    # dnsmasq killed, B's bridge deleted (its veth falls off): ensure brings both back.
    nid_a, cidr_a = Env.nets["A"]
    nid_b, cidr_b = Env.nets["B"]
    pid = int(tool("dhcp-pid", nid_a)[1])
    os.kill(pid, 9)
    sh(["ip", "link", "del", "yb-" + hexpart(nid_b)])
    for _ in range(100):
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.01)
    tool("network-ensure", nid_a, cidr_a)
    tool("network-ensure", nid_b, cidr_b)
    new = int(tool("dhcp-pid", nid_a)[1])
    if new <= 0 or new == pid:
        raise Failure("dnsmasq not restarted (%d -> %d)" % (pid, new))
    port_ct("b1", "B")
    if links()["yv-" + hexpart(Env.inst["b1"][0])]["master"] != "yb-" + hexpart(nid_b):
        raise Failure("b1 not back on B's bridge")
    # B's dnsmasq serves the new bridge (not the deleted one it was bound to).
    got = dhcp_lease("b1", "B")
    if not got.startswith("ip=%s " % Env.inst["b1"][1]):
        raise Failure("b1 lease after the repair: %s" % got)
    # dhcp_lease took b1's address away: ensure puts it back.
    port_ct("b1", "B")
    if not ping("b1", gw("B"), tries=3):
        raise Failure("b1 cannot reach its gateway after the repair")


def test_inventory_finds_leaks():
    _, out, _ = tool("inventory")
    have = set(tuple(line.split()[:2]) for line in out.splitlines())
    want = {("bridge", Env.nets["A"][0]), ("dhcp", Env.nets["A"][0]),
            ("nft", Env.nets["A"][0]), ("veth", Env.inst["a1"][0]),
            ("netns", Env.inst["a1"][0]), ("bridge", Env.nets["B"][0])}
    if not want <= have:
        raise Failure("inventory lacks %s" % sorted(want - have))
    # Leaks as a crash leaves them: a veth and a bare netns file with no owner.
    leak = ident("i", 0xee)
    sh(["ip", "link", "add", "yv-" + hexpart(leak), "type", "veth", "peer", "name",
        "ynl-" + Env.base])
    open(os.path.join(Env.run, "netns", leak), "w").close()
    _, out, _ = tool("inventory")
    for kind in ("veth", "netns"):
        if "%s %s " % (kind, leak) not in out:
            raise Failure("inventory does not list the leaked %s" % kind)
    tool("port-remove", leak)
    _, out, _ = tool("inventory")
    if leak in out:
        raise Failure("leak still listed after port-remove: %s" % out)


def test_remove_cleans_everything():
    for name, (iid, _) in list(Env.inst.items()):
        tool("port-remove", iid)
        tool("port-remove", iid)
    for nid, _ in Env.nets.values():
        tool("network-remove", nid)
        tool("network-remove", nid)
    left = [n for n in links() if Env.base in n and n != Env.uplink]
    if left:
        raise Failure("links left: %s" % left)
    nsdir = os.path.join(Env.run, "netns")
    if os.path.isdir(nsdir) and os.listdir(nsdir):
        raise Failure("netns left: %s" % os.listdir(nsdir))
    netdir = os.path.join(Env.run, "net")
    if os.path.isdir(netdir) and os.listdir(netdir):
        raise Failure("network dirs left: %s" % os.listdir(netdir))
    dump = tool("nft-dump")[1]
    if Env.base in dump:
        raise Failure("rules left: %s" % dump)
    procs = dnsmasq_procs()
    if procs:
        raise Failure("dnsmasq left: %s" % procs)
    _, out, _ = tool("inventory")
    if Env.base in out:
        raise Failure("inventory still lists: %s" % out)


def test_host_networking_untouched():
    # What the host had is still there, as it was (others may add links meanwhile).
    links_before, addrs_before, routes_before = Env.host_before
    links_after, addrs_after, routes_after = host_snapshot()
    changed = ["link %s" % n for n, up in links_before.items() if links_after.get(n) != up]
    changed += ["address %s" % a for a in addrs_before - addrs_after]
    changed += ["route %s" % r for r in routes_before - routes_after]
    if changed:
        raise Failure("host networking changed: %s" % ", ".join(changed))


TESTS = [
    test_cidr_checks_against_host,
    test_networks_come_up,
    test_network_ensure_is_idempotent,
    test_ports_come_up,
    test_port_ensure_converges,
    test_same_network_reaches,
    test_networks_are_isolated,
    test_nat_to_uplink,
    test_outside_cannot_reach_instances,
    test_counters,
    test_dhcp_gives_reserved_address,
    test_dhcp_address_reused_by_new_instance,
    test_dhcp_needs_reachable_run_dir,
    test_tap_port,
    test_repairs_what_was_broken,
    test_inventory_finds_leaks,
    test_remove_cleans_everything,
    test_host_networking_untouched,
]


def dnsmasq_procs():
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace")
        except OSError:
            continue
        if "dnsmasq" in cmd and Env.run in cmd:
            found.append(int(pid))
    return found


def cleanup():
    """Whatever a failed test left: processes, ports, networks, the uplink, mounts."""
    for p in Env.servers + ([Env.outside] if Env.outside else []):
        p.kill()
        p.wait()
    for iid, _ in Env.inst.values():
        tool("port-remove", iid, check=None)
    for nid, _ in Env.nets.values():
        tool("network-remove", nid, check=None)
    for name in links():
        if ours(name):
            sh(["ip", "link", "del", name], check=False)
    for pid in dnsmasq_procs():
        os.kill(pid, 9)
    nsdir = os.path.join(Env.run, "netns")
    if os.path.isdir(nsdir):
        for f in os.listdir(nsdir):
            sh(["umount", "-l", os.path.join(nsdir, f)], check=False)
        sh(["umount", "-l", nsdir], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", default=os.path.join(REPO, "build", "tests", "e2e", "net_tool"))
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.tool = os.path.abspath(args.tool)
    if os.geteuid() != 0:
        print("not ok - yund_net: needs root")
        print("0 passed, 1 failed")
        return 1
    for prog in ("nsenter", "unshare", "ip", "busybox", "/usr/sbin/dnsmasq"):
        if not shutil.which(prog):
            print("not ok - yund_net: %s not found (scripts/setup installs it)" % prog)
            print("0 passed, 1 failed")
            return 1
    Env.tmp = tempfile.mkdtemp(prefix="yun-net-e2e.")
    os.chmod(Env.tmp, 0o711)  # dnsmasq, no longer root, re-reads its hosts file below
    Env.run = os.path.join(Env.tmp, "run")
    Env.base = "%08x" % random.getrandbits(32)
    Env.host_before = host_snapshot()
    passed = failed = 0
    try:
        for t in TESTS:
            if args.filter and args.filter not in t.__name__:
                continue
            start = time.time()
            try:
                t()
                print("ok - %s (%.1fs)" % (t.__name__, time.time() - start))
                passed += 1
            except Skip as e:
                print("ok - %s # SKIP %s" % (t.__name__, e))
                passed += 1
            except (Failure, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
                print("not ok - %s: %s" % (t.__name__, e))
                failed += 1
            sys.stdout.flush()
    finally:
        cleanup()
    left = [n for n in links() if ours(n)] + dnsmasq_procs()
    if left:
        print("not ok - cleanup: left behind %s" % left)
        failed += 1
    else:
        shutil.rmtree(Env.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
