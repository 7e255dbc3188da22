#!/usr/bin/env python3
"""yund_metrics.py - GET /metrics as Prometheus and a user see it.

    yund_metrics.py --yund build/src/yund/yund --yun-ct build/src/ct/yun-ct
                    [--yun build/src/cli/yun] [--prometheus /usr/bin/prometheus] [-k WORD]

Starts a real yund (temporary --root and --run, --listen on a free
127.0.0.1 port, so the bearer token is needed), builds the busybox image
through it, starts a busy container instance on a network and an idle
one, and checks:
  - the text: every sample belongs to a family with HELP and TYPE, names
    and labels are well-formed, histogram buckets are cumulative and the
    +Inf bucket equals _count, counters do not go backwards between two
    scrapes; `promtool check metrics` accepts it;
  - the numbers: the busy instance's CPU seconds grow by about a CPU's
    worth, memory is there, the network port's counters are there, the
    host's capacity and allocation agree with GET /v1/hosts, the API
    histogram counts the requests this test made;
  - a real Prometheus (Debian's `prometheus`) scraping yund every second
    with the token from a credentials_file: `up == 1`, and the busy
    instance's CPU counter grows between two queries of its HTTP API;
  - `yun top --json` (with --yun) shows the busy instance's CPU use.
Prints "ok - NAME" / "not ok - NAME: REASON" per test, then "N passed, N
failed". Needs root. Python 3 standard library only. The Prometheus test
SKIPs when no prometheus binary is installed (scripts/setup installs it).
"""

import argparse
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import Failure, Skip, free_port
import urllib.parse
import urllib.request

SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:")
BUSY = ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
NET_CIDR = "10.213.93.0/24"


class Env:
    yund = yun_ct = yun = prometheus = None
    tmp = root = run = log = None
    port = None
    token = None
    proc = None
    prom = None
    prom_port = None


def request(method, path, body=None, token=True, port=None):
    """(status, headers, text) over TCP."""
    c = http.client.HTTPConnection("127.0.0.1", port or Env.port, timeout=30)
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + Env.token
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    return r.status, dict(r.getheaders()), text


def api(method, path, body=None, want=None):
    st, _, text = request(method, path, body)
    if want is not None and st != want:
        raise Failure("%s %s: %d %s" % (method, path, st, text[:300]))
    return json.loads(text) if text.strip() else None


def wait_for(fn, what, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise Failure("%s: not after %ss (last: %r)" % (what, timeout, last))


def start_yund():
    logf = open(Env.log, "a")
    Env.proc = subprocess.Popen(
        [Env.yund, "--root", Env.root, "--run", Env.run, "--yun-ct", Env.yun_ct,
         "--listen", "127.0.0.1:%d" % Env.port, "-v"],
        stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    logf.close()
    token_file = os.path.join(Env.root, "token")
    deadline = time.time() + 15
    while time.time() < deadline:
        if Env.proc.poll() is not None:
            raise Failure("yund exited with status %d; see %s" % (Env.proc.returncode, Env.log))
        try:
            with open(token_file) as f:
                Env.token = f.read().strip()
            if request("GET", "/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("yund did not answer in 15 s")


def stop_yund():
    if Env.proc:
        Env.proc.send_signal(signal.SIGTERM)
        try:
            Env.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            Env.proc.kill()
            Env.proc.wait()
        Env.proc = None


# ---- the text format ------------------------------------------------------------

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')


def parse_labels(text):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise Failure("bad label text at %r" % text[pos:pos + 60])
        if m.group(1) in labels:
            raise Failure("label %s twice in {%s}" % (m.group(1), text))
        labels[m.group(1)] = (m.group(2).replace("\\n", "\n").replace('\\"', '"')
                              .replace("\\\\", "\\"))
        pos = m.end()
        if m.group(3) == "" and pos < len(text):
            raise Failure("bad label text %r" % text)
    return labels


def parse_value(v):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    return float(v)


def parse_metrics(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; checks the format."""
    if not text.endswith("\n"):
        raise Failure("the exposition does not end with a newline")
    fams = {}
    order = []
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line[:120])
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.match(name):
                    raise Failure("%s: bad metric name" % where)
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                key = parts[1].lower()
                if f[key] is not None:
                    raise Failure("%s: second %s for %s" % (where, parts[1], name))
                if key == "type":
                    if f["samples"]:
                        raise Failure("%s: TYPE after samples" % where)
                    if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram",
                                                           "summary", "untyped"):
                        raise Failure("%s: bad TYPE" % where)
                    f["type"] = parts[3]
                else:
                    f["help"] = parts[3] if len(parts) == 4 else ""
                if name != current:
                    if name in order:
                        raise Failure("%s: family %s is split" % (where, name))
                    order.append(name)
                    current = name
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$", line)
        if not m:
            raise Failure("%s: not a sample" % where)
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), parse_value(m.group(3))
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams and \
                    fams[name[:-len(suffix)]]["type"] == "histogram":
                family = name[:-len(suffix)]
        f = fams.get(family)
        if not f or not f["type"]:
            raise Failure("%s: sample without a TYPE line" % where)
        if not f["help"]:
            raise Failure("%s: family %s has no HELP" % (where, family))
        if family != current:
            raise Failure("%s: sample of %s away from its family" % (where, family))
        if f["type"] == "counter" and (value < 0 or math.isnan(value)):
            raise Failure("%s: negative counter" % where)
        f["samples"].append((name, labels, value))
    # Each series once.
    for family, f in fams.items():
        seen = set()
        for name, labels, _ in f["samples"]:
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise Failure("%s: series %r twice" % (family, key))
            seen.add(key)
    for family, f in fams.items():
        if f["type"] == "histogram":
            check_histogram(family, f["samples"])
    return fams


def check_histogram(family, samples):
    groups = {}
    for name, labels, value in samples:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if name == family + "_bucket":
            if "le" not in labels:
                raise Failure("%s: bucket without le" % family)
            g["buckets"].append((parse_value(labels["le"]), value))
        elif name == family + "_sum":
            g["sum"] = value
        elif name == family + "_count":
            g["count"] = value
        else:
            raise Failure("%s: stray sample %s" % (family, name))
    for base, g in groups.items():
        b = g["buckets"]
        if not b or g["count"] is None or g["sum"] is None:
            raise Failure("%s%r: buckets, _sum or _count missing" % (family, base))
        if [le for le, _ in b] != sorted(le for le, _ in b):
            raise Failure("%s%r: buckets not in order of le" % (family, base))
        if b[-1][0] != float("inf"):
            raise Failure("%s%r: no +Inf bucket" % (family, base))
        for (_, a), (_, c) in zip(b, b[1:]):
            if c < a:
                raise Failure("%s%r: buckets not cumulative: %r" % (family, base, b))
        if b[-1][1] != g["count"]:
            raise Failure("%s%r: +Inf bucket %g != _count %g" % (family, base, b[-1][1],
                                                                  g["count"]))


def scrape():
    st, headers, text = request("GET", "/metrics")
    if st != 200:
        raise Failure("GET /metrics: %d %s" % (st, text[:200]))
    ctype = headers.get("Content-Type", "")
    if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
        raise Failure("GET /metrics: Content-Type %r" % ctype)
    return text, parse_metrics(text)


def value(fams, metric, /, **labels):
    """The value of sample `metric` (a family, or a histogram's _bucket/_sum/_count)."""
    family = re.sub(r"_(bucket|sum|count)$", "", metric)
    if family not in fams or fams[family]["type"] != "histogram":
        family = metric
    for n, l, v in fams.get(family, {"samples": []})["samples"]:
        if n == metric and all(l.get(k) == w for k, w in labels.items()):
            return v
    return None


# ---- the tests ------------------------------------------------------------------


def setup_instances():
    api("POST", "/v1/images", {"name": "busybox", "build": "busybox"}, want=202)
    wait_for(lambda: api("GET", "/v1/images/busybox")["state"] == "available",
             "image busybox available", 120)
    api("POST", "/v1/networks", {"name": "mnet", "cidr": NET_CIDR}, want=202)
    api("POST", "/v1/instances", {"name": "busy", "image": "busybox", "command": BUSY,
                                  "network": "mnet"}, want=202)
    api("POST", "/v1/instances", {"name": "idle", "image": "busybox", "command": IDLE},
        want=202)
    for name in ("busy", "idle"):
        wait_for(lambda: api("GET", "/v1/instances/" + name)["state"] == "running",
                 name + " running", 120)


def metrics_need_the_token():
    """On TCP /metrics is like every other path: 401 without the token."""
    st, headers, text = request("GET", "/metrics", token=False)
    if st != 401 or "bearer token" not in text:
        raise Failure("GET /metrics without a token: %d %r" % (st, text[:200]))
    st, _, _ = request("GET", "/v1/metrics")
    if st != 404:
        raise Failure("GET /v1/metrics: %d (the path has no /v1)" % st)


def text_format_is_valid():
    """Every sample has HELP/TYPE, labels parse, histograms are consistent."""
    text, fams = scrape()
    need = ["yun_instance_state", "yun_instance_cpu_seconds_total",
            "yun_instance_memory_bytes", "yun_instance_network_receive_bytes_total",
            "yun_instance_network_transmit_bytes_total",
            "yun_instance_network_receive_packets_total",
            "yun_instance_network_transmit_packets_total", "yun_host_vcpus",
            "yun_host_memory_bytes", "yun_host_allocated_vcpus",
            "yun_host_allocated_memory_bytes", "yun_host_cpu_seconds_total",
            "yun_host_memory_used_bytes", "yun_api_requests_total",
            "yun_api_request_duration_seconds"]
    missing = [n for n in need if n not in fams]
    if missing:
        raise Failure("families missing: %s" % ", ".join(missing))
    for name, f in fams.items():
        if f["type"] == "counter" and not name.endswith("_total"):
            raise Failure("counter %s does not end in _total" % name)
    with open(os.path.join(Env.tmp, "metrics.txt"), "w") as f:
        f.write(text)


def promtool_accepts_it():
    promtool = shutil.which("promtool")
    if not promtool:
        raise Skip("no promtool (Debian's prometheus package)")
    text, _ = scrape()
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise Failure("promtool check metrics: status %d: %s%s" % (p.returncode, p.stdout[:800],
                                                                    p.stderr[:800]))


def proc_cpu_seconds(pid):
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def instance_numbers():
    """A busy container's CPU seconds grow by about one CPU; memory and network are there."""
    busy = api("GET", "/v1/instances/busy")
    labels = {"id": busy["id"], "name": "busy", "type": "container"}
    # The anchor: a busy loop on the host over the same window. On an idle
    # machine both get about one CPU second per second; on a loaded one
    # (other work on the 2 cores) both get less, so compare with it.
    ref = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        r0 = proc_cpu_seconds(ref.pid)
        _, a = scrape()
        t0 = time.time()
        time.sleep(2)
        _, b = scrape()
        dt = time.time() - t0
        r1 = proc_cpu_seconds(ref.pid)
    finally:
        ref.kill()
        ref.wait()
    c0 = value(a, "yun_instance_cpu_seconds_total", **labels)
    c1 = value(b, "yun_instance_cpu_seconds_total", **labels)
    if c0 is None or c1 is None:
        raise Failure("no yun_instance_cpu_seconds_total for %r" % labels)
    # A busy loop under a 1-vCPU limit: about what the host's busy loop got.
    if not (0.4 * (r1 - r0) < c1 - c0 < 1.3 * dt):
        raise Failure("busy used %.2f CPU s in %.2f s (a host busy loop got %.2f)"
                      % (c1 - c0, dt, r1 - r0))
    idle = api("GET", "/v1/instances/idle")
    ci0 = value(a, "yun_instance_cpu_seconds_total", id=idle["id"])
    ci1 = value(b, "yun_instance_cpu_seconds_total", id=idle["id"])
    if ci0 is None or ci1 - ci0 > 0.5 * dt:
        raise Failure("idle: CPU %r -> %r" % (ci0, ci1))
    mem = value(b, "yun_instance_memory_bytes", **labels)
    if not mem or mem <= 0 or mem > busy["memory_mib"] * 1048576:
        raise Failure("busy memory %r" % mem)
    if value(b, "yun_instance_state", state="running", **labels) != 1 or \
            value(b, "yun_instance_state", state="stopped", **labels) != 0:
        raise Failure("busy state gauge wrong")
    for fam in ("yun_instance_network_receive_bytes_total",
                "yun_instance_network_transmit_packets_total"):
        if value(b, fam, **labels) is None:
            raise Failure("busy (on network mnet) has no %s" % fam)
        if value(b, fam, id=idle["id"]) is not None:
            raise Failure("idle (no network) has %s" % fam)
    # Counters never go backwards between scrapes.
    for family, f in b.items():
        if f["type"] != "counter":
            continue
        for name, l, v in f["samples"]:
            old = value(a, family, **l)
            if old is not None and v < old:
                raise Failure("%s%r went down: %g -> %g" % (family, l, old, v))


def host_numbers():
    """Capacity and allocation as GET /v1/hosts has them; the host's usage."""
    h = api("GET", "/v1/hosts")["items"][0]
    _, m = scrape()
    if value(m, "yun_host_vcpus", host=h["id"]) != h["vcpus"]:
        raise Failure("yun_host_vcpus %r vs %r" % (value(m, "yun_host_vcpus", host=h["id"]),
                                                   h["vcpus"]))
    if value(m, "yun_host_memory_bytes", host=h["id"]) != h["memory_mib"] * 1048576:
        raise Failure("yun_host_memory_bytes")
    want = sum(i["vcpus"] for i in api("GET", "/v1/instances")["items"])
    if value(m, "yun_host_allocated_vcpus", host=h["id"]) != want:
        raise Failure("allocated vcpus %r, instances hold %d" %
                      (value(m, "yun_host_allocated_vcpus", host=h["id"]), want))
    if not value(m, "yun_host_cpu_seconds_total", host=h["id"], mode="user"):
        raise Failure("no host user CPU seconds")
    used = value(m, "yun_host_memory_used_bytes", host=h["id"])
    total = value(m, "yun_host_memory_total_bytes", host=h["id"])
    if not used or not total or used > total:
        raise Failure("host memory used %r of %r" % (used, total))


def api_histogram_counts_requests():
    """The latency histogram and counters count what this test asked."""
    _, a = scrape()
    for _ in range(5):
        request("GET", "/v1/instances/busy")
    request("GET", "/v1/instances/nosuch")
    request("GET", "/no/such/path")
    _, b = scrape()
    route = "/v1/instances/{ref}"

    def count(fams, **l):
        return value(fams, "yun_api_request_duration_seconds_count", **l) or 0

    if count(b, route=route, method="GET", code="2xx") - \
            count(a, route=route, method="GET", code="2xx") != 5:
        raise Failure("2xx count of %s did not grow by 5" % route)
    if count(b, route=route, method="GET", code="4xx") - \
            count(a, route=route, method="GET", code="4xx") != 1:
        raise Failure("4xx count of %s did not grow by 1" % route)
    if not value(b, "yun_api_requests_total", route="unmatched", method="GET", status="404"):
        raise Failure("no unmatched 404 counted")
    if not value(b, "yun_api_requests_total", route=route, method="GET", status="200"):
        raise Failure("yun_api_requests_total has no 200 for %s" % route)


def prometheus_scrapes_yund():
    """Debian's prometheus scrapes yund (token from a file): up == 1, CPU grows."""
    prom = Env.prometheus or shutil.which("prometheus")
    if not prom or not os.access(prom, os.X_OK):
        raise Skip("no prometheus binary (scripts/setup installs Debian's prometheus)")
    d = os.path.join(Env.tmp, "prometheus")
    os.makedirs(d, exist_ok=True)
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: yund\n    metrics_path: /metrics\n"
                "    authorization:\n      type: Bearer\n      credentials_file: %s\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                % (os.path.join(Env.root, "token"), Env.port))
    Env.prom_port = free_port()
    log = open(os.path.join(d, "prometheus.log"), "w")
    Env.prom = subprocess.Popen(
        [prom, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
         "--web.listen-address=127.0.0.1:%d" % Env.prom_port, "--log.level=warn"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (Env.prom_port,
                                                       urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.loads(r.read().decode())
        except OSError:
            return None
        if doc.get("status") != "success":
            raise Failure("prometheus: %s -> %r" % (q, doc))
        return doc["data"]["result"]

    def up():
        if Env.prom.poll() is not None:
            raise Failure("prometheus exited with status %d" % Env.prom.returncode)
        r = query('up{job="yund"}')
        return r and r[0]["value"][1] == "1"

    wait_for(up, "prometheus: up{job=\"yund\"} == 1", 60)
    q = 'yun_instance_cpu_seconds_total{name="busy",type="container"}'

    def cpu():
        r = query(q)
        return float(r[0]["value"][1]) if r else None

    c0 = wait_for(cpu, "prometheus: " + q, 30)
    time.sleep(3)
    c1 = wait_for(lambda: (cpu() or 0) > c0 and cpu(), "prometheus: %s grows past %g" % (q, c0),
                  30)
    r = wait_for(lambda: query('rate(%s[5s])' % q), "prometheus: rate(%s)" % q, 30)
    rate = float(r[0]["value"][1])
    if not 0.2 < rate < 1.3:
        raise Failure("prometheus: rate of busy's CPU %.2f (c0 %g, c1 %g)" % (rate, c0, c1))
    # The histogram as PromQL sees it.
    r = query('sum(yun_api_request_duration_seconds_count{route="/metrics"})')
    if not r or float(r[0]["value"][1]) < 2:
        raise Failure("prometheus: no /metrics requests in the histogram: %r" % r)


def yun_top_shows_cpu():
    """yun top --json reads /metrics: busy's CPU% is that of a busy loop."""
    if not Env.yun:
        raise Skip("no --yun given")
    env = dict(os.environ, YUN_URL="http://127.0.0.1:%d" % Env.port, YUN_TOKEN=Env.token)
    env.pop("YUN_SOCKET", None)
    p = subprocess.run([Env.yun, "top", "-n", "1", "--json"], capture_output=True, text=True,
                       timeout=60, env=env, stdin=subprocess.DEVNULL)
    if SANITIZER_RE.search(p.stderr):
        raise Failure("yun top: sanitizer report: %s" % p.stderr[:1000])
    if p.returncode != 0:
        raise Failure("yun top: status %d %r" % (p.returncode, p.stderr))
    rows = {r["name"]: r for r in json.loads(p.stdout.strip().split("\n")[-1])["items"]}
    busy = rows.get("busy") or {}
    if not busy.get("cpu_percent") or not 30 < busy["cpu_percent"] < 130 or \
            not busy.get("memory_bytes"):
        raise Failure("yun top: busy %r" % busy)


TESTS = [metrics_need_the_token, text_format_is_valid, promtool_accepts_it, instance_numbers,
         host_numbers, api_histogram_counts_requests, prometheus_scrapes_yund,
         yun_top_shows_cpu]


def cleanup():
    if Env.prom:
        Env.prom.terminate()
        try:
            Env.prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            Env.prom.kill()
            Env.prom.wait()
    if Env.proc:
        try:
            items = api("GET", "/v1/instances")["items"]
            for i in items:
                request("DELETE", "/v1/instances/" + i["id"])
            wait_for(lambda: not api("GET", "/v1/instances")["items"], "instances gone", 60)
            request("DELETE", "/v1/networks/mnet")
            wait_for(lambda: not api("GET", "/v1/networks")["items"], "networks gone", 60)
        except (Failure, OSError, ValueError) as e:
            print("# cleanup: %s" % e)
        stop_yund()
    # The network module keeps <run>/netns bind-mounted on itself (as iproute2
    # does /run/netns): a test's run dir must not keep it.
    ndir = os.path.join(Env.run, "netns")
    if os.path.isdir(ndir):
        subprocess.run(["umount", "-l", ndir], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yund", required=True)
    ap.add_argument("--yun-ct", required=True)
    ap.add_argument("--yun", help="the yun CLI (for yun top)")
    ap.add_argument("--prometheus", help="the prometheus binary (default: on PATH)")
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.yund = os.path.abspath(args.yund)
    Env.yun_ct = os.path.abspath(args.yun_ct)
    Env.yun = os.path.abspath(args.yun) if args.yun else None
    Env.prometheus = args.prometheus
    if os.geteuid() != 0:
        print("not ok - yund_metrics: needs root")
        print("0 passed, 1 failed")
        return 1
    Env.tmp = tempfile.mkdtemp(prefix="yund-metrics-e2e.")
    os.chmod(Env.tmp, 0o711)
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.log = os.path.join(Env.tmp, "yund.log")
    Env.port = free_port()
    passed = failed = 0
    try:
        try:
            start_yund()
            setup_instances()
        except (Failure, OSError, ValueError, KeyError) as e:
            print("not ok - setup: %s" % e)
            failed += 1
        else:
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
                except (Failure, OSError, ValueError, KeyError, TypeError,
                        subprocess.TimeoutExpired, http.client.HTTPException) as e:
                    print("not ok - %s: %s" % (t.__name__, e))
                    failed += 1
                sys.stdout.flush()
    finally:
        cleanup()
    try:
        with open(Env.log, errors="replace") as f:
            m = SANITIZER_RE.search(f.read())
        if m:
            print("not ok - yund_log_clean: sanitizer report in %s" % Env.log)
            failed += 1
        else:
            print("ok - yund_log_clean")
            passed += 1
    except OSError:
        pass
    if failed:
        print("# kept %s for a look" % Env.tmp)
    else:
        shutil.rmtree(Env.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
