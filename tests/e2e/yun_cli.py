#!/usr/bin/env python3
"""yun_cli.py - the `yun` CLI as a user runs it, against a real yund.

    yun_cli.py --yun build/src/cli/yun --yund build/src/yund/yund [-k WORD]

Starts its own yund with `yun up` (temporary --root and --run, so nothing
of the host's /var/lib/yun or /run/yun is touched), builds the busybox
image through it, runs container instances and checks what a user sees:
tables and --json, states, messages and exit statuses (0 done, 1 the
operation failed, 2 usage error, 3 yund not reachable), the event stream,
and that `yun down` stops yund; and the README's main job, ./scripts/run,
twice in a temporary root (YUN_ROOT, YUN_RUN, YUN_SOCKET). Every yun and
yund run is checked for sanitizer reports (the suite runs against the
ASan/UBSan build with leak detection).

The tests run in order and share the yund they start; each one states
what it needs. Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per
test, then "N passed, N failed"; exits 1 if any test failed. Needs root
(yund runs containers). Python 3 standard library only.
"""

import argparse
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import harness
from harness import Failure, Skip

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:")


class Env:
    yun = None
    yund = None
    tmp = None
    root = None
    run = None
    sock = None
    up = False  # our yund is running


def yun_env(extra=None):
    env = dict(os.environ, YUN_SOCKET=Env.sock, YUN_YUND=Env.yund)
    env.pop("YUN_URL", None)
    env.pop("YUN_TOKEN", None)
    if extra:
        env.update(extra)
    return env


def check_sanitizers(what, text):
    m = SANITIZER_RE.search(text)
    if m:
        raise Failure("%s: sanitizer report: %s" % (what, text[max(0, m.start() - 200):
                                                              m.start() + 800]))


def yun(args, timeout=120, check=None, env=None, input=None):
    """Run yun ARGS; returns (status, stdout, stderr)."""
    p = subprocess.run([Env.yun] + args, capture_output=True, text=True, timeout=timeout,
                       env=yun_env(env), input=input,
                       stdin=None if input is not None else subprocess.DEVNULL)
    check_sanitizers("yun " + " ".join(args), p.stderr)
    if check is not None and p.returncode != check:
        raise Failure("yun %s: status %d, expected %d; stderr: %s; stdout: %s" %
                      (" ".join(args)[:120], p.returncode, check, p.stderr.strip()[:400],
                       p.stdout.strip()[:400]))
    return p.returncode, p.stdout, p.stderr


def yun_json(args, timeout=120):
    _, out, _ = yun(args + ["--json"], timeout=timeout, check=0)
    try:
        return json.loads(out)
    except ValueError as e:
        raise Failure("yun %s --json: not JSON (%s): %r" % (" ".join(args), e, out[:300]))


def instances():
    return {i["name"]: i for i in yun_json(["ls"])["items"]}


def need_up():
    if not Env.up:
        raise Failure("yund is not up (an earlier test failed)")


def parse_table(text):
    """A yun table as (headers, rows as dicts), checking its layout on the way:
    cells are apart by two or more spaces, each cell starts where its header
    starts (left-aligned) or ends where it ends (right-aligned), and no line
    has trailing blanks."""
    lines = text.rstrip("\n").split("\n")
    if not lines or not lines[0]:
        raise Failure("table: no header line in %r" % text)
    spans = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    names = [s[2] for s in spans]
    rows = []
    for line in lines:
        if line != line.rstrip():
            raise Failure("table: trailing blanks in %r" % line)
    for line in lines[1:]:
        cells = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]
        if len(cells) != len(spans):
            raise Failure("table: %d cells under %d headers in %r" % (len(cells), len(spans),
                                                                      line))
        for (hs, he, name), (cs, ce, cell) in zip(spans, cells):
            if cs != hs and ce != he:
                raise Failure("table: cell %r is not aligned under %s in %r" %
                              (cell, name, line))
        rows.append(dict(zip(names, [c[2] for c in cells])))
    return names, rows


def wait_for(fn, what, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise Failure("%s: not after %ss (last: %r)" % (what, timeout, last))


# ---- a pty for interactive commands -----------------------------------------------


def pty_client(args):
    """yun ARGS with a pty as its terminal."""
    return harness.PtyClient([Env.yun] + args, yun_env(), timeout=15)


# ---- tests -------------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def no_daemon_is_exit_3():
    """Before `yun up`: every command that needs yund says where it looked and what to do."""
    for args in (["ls"], ["image", "ls"], ["show", "web"], ["events"], ["version"]):
        rc, out, err = yun(args)
        if rc != 3:
            raise Failure("yun %s without yund: status %d, expected 3 (%s)" %
                          (" ".join(args), rc, err.strip()))
        if not err.startswith("yun: error: ") or "yun up" not in err or Env.sock not in err:
            raise Failure("yun %s: message should name the socket and `yun up`: %r" %
                          (" ".join(args), err))
    # TCP: nothing listening on a free port.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, _, err = yun(["--url", "http://127.0.0.1:%d" % port, "ls"])
    if rc != 3 or "yun up" not in err:
        raise Failure("--url to a closed port: status %d, %r" % (rc, err))
    # down with nothing running: nothing to do.
    yun(["down"], check=0)


@test
def bad_usage_is_exit_2():
    """Bad flags and missing arguments: a message, the --help hint, status 2."""
    cases = [
        (["ls", "--bogus"], "unknown option '--bogus'"),
        (["run"], "which image"),
        (["run", "--cpus", "x", "busybox"], "not a number"),
        (["run", "--cpus", "2", "busybox"], "--cpus and --memory go together"),
        (["run", "--flavor", "small", "--cpus", "1", "--memory", "64", "busybox"],
         "not both"),
        (["run", "--restart", "sometimes", "busybox"], "--restart"),
        (["run", "-e", "NOEQUALS", "busybox"], "KEY=VALUE"),
        (["stop"], "which instance"),
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["image", "build", "gentoo"], "busybox and debian"),
        (["image", "frob"], "unknown command 'frob'"),
        (["net", "create", "n1"], "--cidr"),
        (["vol", "create", "v1"], "--size"),
        (["logs", "--tail", "0", "x"], "out of range"),
        (["--socket"], "needs a value"),
    ]
    for args, want in cases:
        rc, out, err = yun(args)
        if rc != 2:
            raise Failure("yun %s: status %d, expected 2 (%s)" % (" ".join(args), rc,
                                                                 err.strip()))
        if want not in err or "--help" not in err:
            raise Failure("yun %s: stderr %r lacks %r or the --help hint" %
                          (" ".join(args), err, want))
        if out:
            raise Failure("yun %s: usage error printed on stdout: %r" % (" ".join(args), out))


@test
def help_for_every_command():
    """--help: usage on stdout, status 0, for every command and sub-command."""
    commands = [[], ["up"], ["down"], ["version"], ["run"], ["ls"], ["show"], ["start"],
                ["stop"], ["reboot"], ["rm"], ["logs"], ["exec"], ["console"], ["top"],
                ["events"], ["image"], ["image", "build"], ["image", "import"],
                ["image", "ls"], ["image", "rm"], ["net"], ["net", "create"], ["net", "ls"],
                ["net", "rm"], ["vol"], ["vol", "create"], ["vol", "ls"], ["vol", "rm"],
                ["vol", "attach"], ["vol", "detach"], ["vol", "snapshot"], ["flavor", "ls"],
                ["host", "ls"]]
    for c in commands:
        _, out, _ = yun(c + ["--help"], check=0)
        if not out.startswith("usage: yun"):
            raise Failure("yun %s --help: %r" % (" ".join(c), out[:200]))


@test
def up_with_a_bad_yund_flag_shows_the_log():
    """yund refusing its flags: `yun up` fails (1) and shows yund's own words."""
    run2 = os.path.join(Env.tmp, "run-bad")
    rc, out, err = yun(["up", "--root", os.path.join(Env.tmp, "root-bad"), "--run", run2,
                        "--no-such-yund-flag"], timeout=60)
    if rc != 1:
        raise Failure("status %d, expected 1; %s" % (rc, err.strip()))
    if "yund exited" not in err or "last lines of" not in err or "no-such-yund-flag" not in err:
        raise Failure("the message should say yund exited and quote its log: %r" % err)
    with open(os.path.join(run2, "yund.log")) as f:
        check_sanitizers("yund.log (bad flag)", f.read())


@test
def up_starts_yund():
    """`yun up` returns once yund answers; a second `yun up` finds it running."""
    start = time.time()
    _, out, err = yun(["up", "--root", Env.root, "--run", Env.run], check=0, timeout=90)
    Env.up = True
    if "is up at " + Env.sock not in out:
        raise Failure("yun up said %r" % out)
    if not os.path.exists(os.path.join(Env.run, "yund.log")):
        raise Failure("no yund.log in the run dir")
    _, out, _ = yun(["version"], check=0)
    if "yund" not in out:
        raise Failure("yun version: %r" % out)
    _, out, _ = yun(["up", "--root", Env.root, "--run", Env.run], check=0)
    if "already running" not in out:
        raise Failure("second yun up said %r" % out)
    info = yun_json(["up", "--root", Env.root, "--run", Env.run])
    if info.get("status") != "running":
        raise Failure("yun up --json: %r" % info)
    print("# yun up took %.2fs" % (time.time() - start))


@test
def run_ssh_key_errors():
    """yun run --ssh-key: unreadable, empty and bad key files, keys for a container: status 1."""
    need_up()
    blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + bytes(range(32))
    good = "ssh-ed25519 " + base64.b64encode(blob).decode() + " me@host"
    files = {"empty.pub": "# nothing\n\n", "good.pub": good + "\n",
             "dss.pub": "ssh-dss " + base64.b64encode(blob).decode() + "\n"}
    for name, text in files.items():
        with open(os.path.join(Env.tmp, name), "w") as f:
            f.write(text)
    before = len(yun_json(["ls"]).get("items", []))
    cases = [
        (["--ssh-key", os.path.join(Env.tmp, "nonexistent.pub")], "SSH public key"),
        (["--ssh-key", os.path.join(Env.tmp, "empty.pub")], "no key in it"),
        (["--type", "vm", "--ssh-key", os.path.join(Env.tmp, "dss.pub")],
         "ssh_keys[0]: key type \"ssh-dss\""),
        (["--ssh-key", os.path.join(Env.tmp, "good.pub")], "ssh_keys: microVMs only"),
    ]
    for args, word in cases:
        rc, _, err = yun(["run"] + args + ["busybox"])
        if rc != 1 or word not in err:
            raise Failure("yun run %s: status %d %r (want 1 naming %r)" %
                          (" ".join(args), rc, err.strip(), word))
    if len(yun_json(["ls"]).get("items", [])) != before:
        raise Failure("a refused yun run left an instance")


@test
def hosts_and_flavors():
    need_up()
    _, out, _ = yun(["host", "ls"], check=0)
    names, rows = parse_table(out)
    if names[:3] != ["NAME", "ID", "STATE"] or len(rows) != 1 or rows[0]["STATE"] != "up":
        raise Failure("host ls: %r" % out)
    _, out, _ = yun(["flavor", "ls"], check=0)
    names, rows = parse_table(out)
    if names != ["NAME", "ID", "VCPUS", "MEMORY", "DISK"]:
        raise Failure("flavor ls header: %r" % names)
    small = [r for r in rows if r["NAME"] == "small"]
    if not small:
        raise Failure("flavor ls: no small flavor: %r" % out)
    fl = {f["name"]: f for f in yun_json(["flavor", "ls"])["items"]}["small"]
    mib = fl["memory_mib"]
    want = "%dG" % (mib // 1024) if mib % 1024 == 0 else "%dM" % mib
    if small[0]["MEMORY"] != want or small[0]["VCPUS"] != str(fl["vcpus"]):
        raise Failure("flavor small: table %r vs JSON %r" % (small[0], fl))


@test
def image_build_busybox():
    """`yun image build busybox` waits until the image is available."""
    need_up()
    _, out, _ = yun(["image", "build", "busybox"], check=0, timeout=600)
    if not re.match(r"^busybox img-[0-9a-f]{12}\n$", out):
        raise Failure("image build printed %r" % out)
    _, out, _ = yun(["image", "ls"], check=0)
    names, rows = parse_table(out)
    if names != ["NAME", "ID", "TYPE", "STATE", "SIZE", "SOURCE", "AGE"]:
        raise Failure("image ls header: %r" % names)
    row = [r for r in rows if r["NAME"] == "busybox"]
    if not row or row[0]["STATE"] != "available" or not re.match(r"^[0-9.]+[BKMG]$",
                                                                  row[0]["SIZE"]):
        raise Failure("image ls: %r" % out)
    items = yun_json(["image", "ls"])["items"]
    if [i["state"] for i in items if i["name"] == "busybox"] != ["available"]:
        raise Failure("image ls --json: %r" % items)
    # The same name again: yund's conflict, as yund words it.
    rc, _, err = yun(["image", "build", "busybox"])
    if rc != 1 or not err.startswith("yun: error: "):
        raise Failure("second build of busybox: status %d, %r" % (rc, err))


# A command that ends at once on TERM (a pid 1 without a handler would wait for KILL).
WEB_CMD = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]


@test
def run_a_container():
    """`yun run` returns when the instance runs and prints its name and id."""
    need_up()
    start = time.time()
    _, out, _ = yun(["run", "--name", "web", "busybox", "--"] + WEB_CMD, check=0)
    if not re.match(r"^web i-[0-9a-f]{12}\n$", out):
        raise Failure("yun run printed %r" % out)
    print("# yun run (create -> running) took %.2fs" % (time.time() - start))
    inst = instances().get("web")
    if not inst or inst["state"] != "running":
        raise Failure("after yun run: %r" % inst)


@test
def ls_shows_it_running():
    need_up()
    _, out, _ = yun(["ls"], check=0)
    names, rows = parse_table(out)
    if names != ["NAME", "ID", "TYPE", "STATE", "IMAGE", "FLAVOR/SIZE", "IP", "AGE"]:
        raise Failure("ls header: %r" % names)
    web = [r for r in rows if r["NAME"] == "web"]
    if len(web) != 1:
        raise Failure("ls: no single web row: %r" % out)
    web = web[0]
    if (web["STATE"], web["TYPE"], web["IMAGE"]) != ("running", "container", "busybox"):
        raise Failure("ls row: %r" % web)
    if not re.match(r"^\d+[smhd]$", web["AGE"]) or not re.match(r"^i-[0-9a-f]{12}$",
                                                                 web["ID"]):
        raise Failure("ls row: %r" % web)
    inst = instances()["web"]
    if inst["id"] != web["ID"] or inst["state"] != "running":
        raise Failure("ls --json disagrees with the table: %r vs %r" % (inst, web))
    _, out, _ = yun(["ls", "-q"], check=0)
    if "web" not in out.split():
        raise Failure("ls -q: %r" % out)


@test
def show_an_instance():
    need_up()
    _, out, _ = yun(["show", "web"], check=0)
    fields = dict(line.split(None, 1) for line in out.strip().split("\n"))
    if fields.get("state") != "running" or fields.get("name") != "web" or \
            fields.get("command") != " ".join(WEB_CMD):
        raise Failure("show web: %r" % out)
    obj = yun_json(["show", "web"])
    if obj["name"] != "web" or obj["id"] != fields["id"]:
        raise Failure("show web --json: %r" % obj)
    _, out2, _ = yun(["show", obj["id"]], check=0)
    if out2 != out:
        raise Failure("show by id differs from show by name")


@test
def events_follow_a_stop():
    """`yun events` prints each state change as it happens; --json as JSON lines."""
    need_up()
    human = subprocess.Popen([Env.yun, "events", "--type", "instance", "-n", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=yun_env())
    js = subprocess.Popen([Env.yun, "events", "--json", "-n", "2"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=yun_env())
    time.sleep(1.0)  # both connected
    try:
        yun(["stop", "-t", "1", "web"], check=0)
        hout, herr = human.communicate(timeout=60)
        jout, jerr = js.communicate(timeout=60)
    finally:
        for p in (human, js):
            if p.poll() is None:
                p.kill()
                p.wait()
    check_sanitizers("yun events", herr + jerr)
    if human.returncode != 0 or js.returncode != 0:
        raise Failure("events: status %d/%d: %s %s" % (human.returncode, js.returncode,
                                                        herr, jerr))
    lines = hout.strip().split("\n")
    if len(lines) != 2 or not all(re.match(r"^\S+ instance\.\w+ web i-[0-9a-f]{12} \w+", l)
                                  for l in lines):
        raise Failure("events lines: %r" % hout)
    events = [json.loads(l) for l in jout.strip().split("\n")]
    if len(events) != 2 or any(e["data"]["name"] != "web" or
                               not e["event"].startswith("instance.") or
                               not isinstance(e["id"], int) for e in events):
        raise Failure("events --json: %r" % jout)
    # Let the stop finish before the next test.
    wait_for(lambda: instances()["web"]["state"] == "stopped", "web stopped")


@test
def stop_start_reboot():
    """stop, start and reboot with --wait end in the states they promise."""
    need_up()
    _, out, _ = yun(["stop", "--wait", "-t", "1", "web"], check=0)
    if not out.startswith("web i-"):
        raise Failure("stop printed %r" % out)
    if instances()["web"]["state"] != "stopped":
        raise Failure("after stop --wait: %r" % instances()["web"])
    _, out, _ = yun(["ls"], check=0)
    _, rows = parse_table(out)
    if [r["STATE"] for r in rows if r["NAME"] == "web"] != ["stopped"]:
        raise Failure("ls after stop: %r" % out)
    rc, out, err = yun(["start", "--wait", "web"])
    if rc != 0:
        raise Failure("start --wait: status %d: %s" % (rc, err.strip()))
    if instances()["web"]["state"] != "running":
        raise Failure("after start --wait: %r" % instances()["web"])
    # reboot --wait returns once a new run is up: a new init.
    pid = instances()["web"]["pid"]
    rc, out, err = yun(["reboot", "--wait", "web"], timeout=60)
    if rc != 0:
        raise Failure("reboot --wait: status %d: %s" % (rc, err.strip()))
    web = instances()["web"]
    if web["state"] != "running" or web["pid"] == pid:
        raise Failure("after reboot --wait: pid %s -> %s, %r" % (pid, web["pid"], web))


@test
def logs_of_a_finished_command():
    """A command that ends: `yun run` returns, `yun logs` has its output."""
    need_up()
    rc, out, err = yun(["run", "--name", "hello", "busybox", "--", "sh", "-c",
                        "echo hello-from-yun; echo second-line"])
    if rc != 0 or not out.startswith("hello i-"):
        raise Failure("run hello: status %d, %r %r" % (rc, out, err))
    text = wait_for(lambda: "second-line" in yun(["logs", "hello"], check=0)[1] and
                    yun(["logs", "hello"])[1], "hello's log")
    if "hello-from-yun" not in text:
        raise Failure("logs: %r" % text)
    _, tail, _ = yun(["logs", "--tail", "1", "hello"], check=0)
    if tail.strip() != "second-line":
        raise Failure("logs --tail 1: %r" % tail)
    # The command ended: the instance stops (restart policy no), with its status.
    inst = wait_for(lambda: instances()["hello"]["state"] == "stopped" and
                    instances()["hello"], "hello stopped")
    if inst.get("exit_status") != 0:
        raise Failure("hello: %r" % inst)
    yun(["rm", "hello"], check=0)


@test
def a_failing_command_is_exit_1():
    need_up()
    # A command that cannot start fails before the instance is ever running;
    # one that exits at once (sh -c 'exit 3') may be seen running for a few
    # ms first, and `yun run` returns once it is running.
    rc, out, err = yun(["run", "--name", "sad", "busybox", "--", "/no/such/command"])
    if rc != 1 or not err.startswith("yun: error: instance sad") or "not found" not in err:
        raise Failure("run of a missing command: status %d, %r %r" % (rc, out, err))
    yun(["rm", "-f", "sad"], check=0)


@test
def server_errors_are_exit_1_with_its_message():
    """yund's refusals come through as `yun: error: <yund's message>`, status 1."""
    need_up()
    rc, out, err = yun(["run", "nosuchimage"])
    if rc != 1 or err.strip() != "yun: error: image nosuchimage: not found" or out:
        raise Failure("run nosuchimage: status %d, %r" % (rc, err))
    rc, _, err = yun(["show", "nosuch"])
    if rc != 1 or err.strip() != "yun: error: instance nosuch: not found":
        raise Failure("show nosuch: status %d, %r" % (rc, err))
    rc, _, err = yun(["run", "--name", "web", "busybox"])
    if rc != 1 or not err.startswith("yun: error: ") or "web" not in err:
        raise Failure("run with a taken name: status %d, %r" % (rc, err))
    rc, _, err = yun(["run", "--name", "../etc", "busybox"])
    if rc != 1 or "name" not in err:
        raise Failure("run with a path as name: status %d, %r" % (rc, err))
    rc, _, err = yun(["run", "--cpus", "256", "--memory", "4000G", "busybox"])
    if rc != 1 or not err.startswith("yun: error: "):
        raise Failure("run too big: status %d, %r" % (rc, err))
    if "nosuchimage" in [i["name"] for i in yun_json(["ls"])["items"]]:
        raise Failure("a refused run left an instance")


@test
def missing_apis_give_clear_errors():
    """Commands whose API yund may not have yet: its 404 message, status 1, no crash."""
    need_up()
    for args in (["vol", "ls"], ["vol", "create", "v1", "--size", "1"], ["top", "-n", "1"]):
        rc, out, err = yun(args, timeout=60)
        if rc == 0:
            if args[0] == "vol" and args[1] == "create":
                yun(["vol", "rm", "v1"])
            continue
        if rc != 1 or not re.match(r"^yun: error: .+", err):
            raise Failure("yun %s: status %d, %r" % (" ".join(args), rc, err))


@test
def top_once():
    need_up()
    frame = json.loads(yun(["top", "-n", "1", "--json"], check=0, timeout=30)[1])
    if "web" not in [i["name"] for i in frame["items"]]:
        raise Failure("top --json: %r" % frame)
    _, out, _ = yun(["top", "-n", "1"], check=0, timeout=30)
    names, rows = parse_table(out.split("\n\n")[0].split("\n(")[0] + "\n")
    if names[:4] != ["NAME", "ID", "STATE", "CPU%"] or "web" not in [r["NAME"] for r in rows]:
        raise Failure("top: %r" % out)


@test
def exec_in_a_container():
    """exec: output, stderr and input through the upgraded stream; the command's status."""
    need_up()
    rc, out, err = yun(["exec", "web", "--", "echo", "inside"], timeout=30)
    if rc != 0 or out.strip() != "inside":
        raise Failure("exec echo: status %d, %r %r" % (rc, out, err))
    rc, out, err = yun(["exec", "web", "--", "cat"], input="through stdin\n", timeout=30)
    if rc != 0 or out != "through stdin\n":
        raise Failure("exec cat: status %d, %r %r" % (rc, out, err))
    # The command's own status, its stdout and stderr kept apart.
    rc, out, err = yun(["exec", "web", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"],
                       timeout=30)
    if rc != 3 or out != "hi\n" or err != "oops\n":
        raise Failure("exec exit 3: status %d, %r %r" % (rc, out, err))
    rc, out, err = yun(["exec", "web", "--", "/no/such/cmd"], timeout=30)
    if rc != 127:
        raise Failure("exec of a missing command: status %d, %r" % (rc, err))
    # A bigger output arrives whole.
    rc, out, err = yun(["exec", "web", "--", "sh", "-c", "seq 1 20000"], timeout=30)
    if rc != 0 or out != "".join("%d\n" % i for i in range(1, 20001)):
        raise Failure("exec seq: status %d, %d bytes, %r" % (rc, len(out), err[:200]))
    # With a terminal (-t) the command sees one.
    rc, out, err = yun(["exec", "-t", "web", "--", "sh", "-c", "test -t 0 && echo tty"],
                       timeout=30)
    if rc != 0 or out.strip() != "tty":
        raise Failure("exec -t: status %d, %r %r" % (rc, out, err))
    rc, _, err = yun(["exec", "nosuch", "--", "true"], timeout=30)
    if rc != 1 or "instance nosuch: not found" not in err:
        raise Failure("exec in a missing instance: status %d, %r" % (rc, err))
    rc, _, err = yun(["run", "--name", "idle", "busybox", "--"] + WEB_CMD)
    if rc != 0:
        raise Failure("run idle: %s" % err)
    try:
        yun(["stop", "--wait", "-t", "1", "idle"], check=0)
        rc, _, err = yun(["exec", "idle", "--", "true"], timeout=30)
        if rc != 1 or "not running" not in err:
            raise Failure("exec in a stopped instance: status %d, %r" % (rc, err))
        st, _ = raw_api("POST", "/v1/instances/idle/exec", {"command": ["true"]},
                        {"Connection": "Upgrade", "Upgrade": "yun-exec"})
        if st != 409:
            raise Failure("exec in a stopped instance over HTTP: %d, want 409" % st)
        st, _ = raw_api("POST", "/v1/instances/nosuch/exec", {"command": ["true"]},
                        {"Connection": "Upgrade", "Upgrade": "yun-exec"})
        if st != 404:
            raise Failure("exec in a missing instance over HTTP: %d, want 404" % st)
        st, _ = raw_api("POST", "/v1/instances/web/exec", {"command": ["true"]}, {})
        if st != 400:
            raise Failure("exec without the upgrade: %d, want 400" % st)
    finally:
        yun(["rm", "-f", "idle"])


def raw_api(method, path, body, headers):
    """One request to yund's socket by hand: (status, body text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(Env.sock)
    data = json.dumps(body).encode() if body is not None else b""
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n" % (method, path,
                                                                            len(data))
    head += "".join("%s: %s\r\n" % kv for kv in headers.items())
    s.sendall(head.encode() + b"\r\n" + data)
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    s.close()
    status = int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else 0
    return status, resp.decode(errors="replace")


@test
def console_attach_and_detach():
    """console on a terminal: output, typed input reaches init, Ctrl-] detaches, it runs on."""
    need_up()
    rc, _, err = yun(["run", "--name", "ticker", "busybox", "--", "sh", "-c",
                      "echo ready; while read line; do echo \"got:$line\"; done"])
    if rc != 0:
        raise Failure("run ticker: %s" % err)
    try:
        wait_for(lambda: instances()["ticker"]["state"] == "running", "ticker running")
        c = pty_client(["console", "ticker"])
        try:
            c.expect(rb"connected")
            c.send(b"hello console\r")
            c.expect(rb"got:hello console")
        except Failure:
            c.wait()
            raise
        c.send(b"\x1d")
        status = c.wait()
        check_sanitizers("yun console", c.buf.decode(errors="replace"))
        if status != 0 or b"[detached]" not in c.buf:
            raise Failure("console: status %d, %r" % (status, c.buf[-200:]))
        time.sleep(0.5)
        if instances()["ticker"]["state"] != "running":
            raise Failure("detaching stopped the instance: %r" % instances()["ticker"])
        # Attach again: the same init still answers.
        c = pty_client(["console", "ticker"])
        try:
            c.expect(rb"connected")
            c.send(b"again\r")
            c.expect(rb"got:again")
        finally:
            c.send(b"\x1d")
            c.wait()
        _, logs, _ = yun(["logs", "ticker"], check=0)
        if "got:hello console" not in logs:
            raise Failure("console log lacks the session: %r" % logs[-300:])
        rc, _, err = yun(["console", "nosuch"], timeout=30)
        if rc != 1 or "instance nosuch: not found" not in err:
            raise Failure("console of a missing instance: status %d, %r" % (rc, err))
    finally:
        yun(["rm", "-f", "ticker"])


@test
def network_lifecycle():
    need_up()
    rc, out, err = yun(["net", "create", "testnet", "--cidr", "10.213.77.0/24"], timeout=120)
    if rc != 0:
        raise Failure("net create: status %d, %r" % (rc, err))
    try:
        _, out, _ = yun(["net", "ls"], check=0)
        names, rows = parse_table(out)
        row = [r for r in rows if r["NAME"] == "testnet"]
        if not row or row[0]["CIDR"] != "10.213.77.0/24" or row[0]["STATE"] != "active":
            raise Failure("net ls: %r" % out)
    finally:
        yun(["net", "rm", "testnet"], check=0, timeout=120)
    if "testnet" in [n["name"] for n in yun_json(["net", "ls"])["items"]]:
        raise Failure("net rm: testnet still listed")


@test
def image_rm_refused_while_used():
    need_up()
    rc, _, err = yun(["image", "rm", "busybox"])
    if rc != 1 or not err.startswith("yun: error: "):
        raise Failure("image rm of a used image: status %d, %r" % (rc, err))


@test
def rm_instances():
    """rm refuses a running instance without -f; rm -f removes it; it is gone."""
    need_up()
    state = instances()["web"]["state"]
    if state == "running":
        rc, _, err = yun(["rm", "web"])
        if rc != 1 or "stop it first" not in err:
            raise Failure("rm of a running instance: status %d, %r" % (rc, err))
    _, out, _ = yun(["rm", "-f", "web"], check=0)
    if out.strip() != "web":
        raise Failure("rm -f printed %r" % out)
    if "web" in instances():
        raise Failure("web still listed after rm")
    rc, _, err = yun(["show", "web"])
    if rc != 1 or "not found" not in err:
        raise Failure("show after rm: status %d, %r" % (rc, err))


@test
def tcp_with_a_token():
    """A second yund on TCP: the token file works, a wrong or missing token is refused."""
    need_up()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    root2, run2 = os.path.join(Env.tmp, "root-tcp"), os.path.join(Env.tmp, "run-tcp")
    sock2 = os.path.join(run2, "yund.sock")
    yun(["up", "--root", root2, "--run", run2, "--listen", "127.0.0.1:%d" % port], check=0,
        env={"YUN_SOCKET": sock2}, timeout=90)
    try:
        url = "http://127.0.0.1:%d" % port
        token = os.path.join(root2, "token")
        _, out, _ = yun(["--url", url, "--token-file", token, "host", "ls"], check=0)
        if "up" not in out:
            raise Failure("host ls over TCP: %r" % out)
        with open(token) as f:
            value = f.read().strip()
        yun(["--url", url, "flavor", "ls"], check=0, env={"YUN_TOKEN": value})
        rc, _, err = yun(["--url", url, "ls"])
        if rc != 1 or "token" not in err:
            raise Failure("no token: status %d, %r" % (rc, err))
        rc, _, err = yun(["--url", url, "ls"], env={"YUN_TOKEN": "wrong"})
        if rc != 1 or "token" not in err:
            raise Failure("wrong token: status %d, %r" % (rc, err))
    finally:
        yun(["down"], env={"YUN_SOCKET": sock2}, timeout=60)
        with open(os.path.join(run2, "yund.log")) as f:
            check_sanitizers("yund.log (tcp)", f.read())


def main_job_table(out):
    """The `yun ls` table scripts/run ends with (between "+ yun ls" and its last line)."""
    if "+ yun ls\n" not in out:
        raise Failure("scripts/run: no `yun ls` at the end: %r" % out[-600:])
    table = out.split("+ yun ls\n", 1)[1].rstrip("\n").split("\n")
    if not table[-1].startswith("(yund keeps running"):
        raise Failure("scripts/run: no closing hint after the table: %r" % table[-1:])
    _, rows = parse_table("\n".join(table[:-1]) + "\n")
    return {r["NAME"]: r for r in rows}


@test
def scripts_run_is_the_main_job():
    """./scripts/run in a temporary root: yund up, busybox built, "hello" running in
    `yun ls`; a second run reuses all three; yund stays up until `yun down`."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(Env.yun)))
    if not os.path.exists(os.path.join(build, "build.ninja")):
        raise Skip("yun is not in a meson build directory (%s)" % build)
    run2 = os.path.join(Env.tmp, "run-main")
    env = {"YUN_ROOT": os.path.join(Env.tmp, "root-main"), "YUN_RUN": run2,
           "YUN_SOCKET": os.path.join(run2, "yund.sock"), "YUN_BUILD": build}
    script = os.path.join(REPO, "scripts", "run")
    try:
        ids = []
        for n in (1, 2):
            p = subprocess.run([script], capture_output=True, text=True, timeout=900,
                               env=yun_env(env), stdin=subprocess.DEVNULL)
            check_sanitizers("scripts/run", p.stdout + p.stderr)
            if p.returncode != 0:
                raise Failure("scripts/run #%d: status %d: %s %s" %
                              (n, p.returncode, p.stdout[-400:], p.stderr[-600:]))
            rows = main_job_table(p.stdout)
            hello = rows.get("hello")
            if not hello or hello["STATE"] != "running" or hello["IMAGE"] != "busybox":
                raise Failure("scripts/run #%d: yun ls %r" % (n, rows))
            ids.append(hello["ID"])
            steps = [l for l in p.stdout.split("\n") if l.startswith("+ ")]
            if n == 1 and steps != ["+ yun up", "+ yun image build busybox",
                                    "+ yun run --name hello busybox", "+ yun ls"]:
                raise Failure("scripts/run #1 steps: %r" % steps)
            if n == 2 and (steps != ["+ yun up", "+ yun ls"] or
                           "already running" not in p.stdout):
                raise Failure("scripts/run #2 should reuse yund, image and instance: %r" %
                              p.stdout[-600:])
        if ids[0] != ids[1]:
            raise Failure("scripts/run #2 made a new instance: %s -> %s" % tuple(ids))
        # yund is still up after the script: the user's next commands work.
        _, out, _ = yun(["ls", "-q"], check=0, env={"YUN_SOCKET": env["YUN_SOCKET"]})
        if out.split() != ["hello"]:
            raise Failure("yun ls -q after scripts/run: %r" % out)
    finally:
        yun(["rm", "-f", "hello"], env={"YUN_SOCKET": env["YUN_SOCKET"]}, timeout=120)
        yun(["down"], env={"YUN_SOCKET": env["YUN_SOCKET"]}, timeout=60)
        try:
            with open(os.path.join(run2, "yund.log"), errors="replace") as f:
                check_sanitizers("yund.log (scripts/run)", f.read())
        except OSError:
            pass


@test
def down_stops_yund():
    need_up()
    _, out, _ = yun(["down"], check=0, timeout=60)
    Env.up = False
    m = re.match(r"^yund stopped \(pid (\d+)\)$", out.strip())
    if not m:
        raise Failure("down printed %r" % out)
    if os.path.exists("/proc/%s" % m.group(1)):
        with open("/proc/%s/stat" % m.group(1)) as f:
            if f.read().split(")")[-1].split()[0] not in ("Z", "X"):
                raise Failure("yund pid %s still there after down" % m.group(1))
    rc, _, err = yun(["ls"])
    if rc != 3:
        raise Failure("ls after down: status %d, %r" % (rc, err))
    _, out, _ = yun(["down"], check=0)
    if "not running" not in out:
        raise Failure("second down: %r" % out)


# ---- main -------------------------------------------------------------------------------


def make_tmp(prefix):
    """The test's directory (0711: dnsmasq, no longer root, must traverse it)
    with yund's --root and --run in it."""
    Env.tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(Env.tmp, 0o711)
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.sock = os.path.join(Env.run, "yund.sock")


def run_tests(tests, name_filter=None, always=()):
    """Run tests in order (those whose name has name_filter, and always the ones
    in always): "ok - NAME (SECSs)" or "not ok - NAME: REASON" each; a Skip
    counts as passed. Returns (passed, failed)."""
    passed = failed = 0
    for t in tests:
        if name_filter and name_filter not in t.__name__ and t not in always:
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
    return passed, failed


def cleanup():
    """Whatever a failed test left: instances (through yund), yund itself."""
    if Env.up:
        rc, out, _ = yun(["ls", "-q"])
        if rc == 0 and out.split():
            yun(["rm", "-f"] + out.split(), timeout=120)
        yun(["down", "--force"], timeout=60)
    for run in (Env.run, os.path.join(Env.tmp, "run-tcp"), os.path.join(Env.tmp, "run-main")):
        sock = os.path.join(run, "yund.sock")
        if os.path.exists(sock):
            yun(["down", "--force"], env={"YUN_SOCKET": sock}, timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--yun", default=os.path.join(REPO, "build", "src", "cli", "yun"))
    ap.add_argument("--yund", default=os.path.join(REPO, "build", "src", "yund", "yund"))
    ap.add_argument("-k", dest="filter", help="run tests whose name contains this")
    args = ap.parse_args()
    Env.yun = os.path.abspath(args.yun)
    Env.yund = os.path.abspath(args.yund)
    if not os.access(Env.yun, os.X_OK):
        print("not ok - yun_cli: no yun binary at %s" % Env.yun)
        print("0 passed, 1 failed")
        return 1
    if not os.access(Env.yund, os.X_OK):
        print("SKIP yun_cli: no yund binary at %s (build src/yund first)" % Env.yund)
        print("not ok - yun_cli: yund missing")
        print("0 passed, 1 failed")
        return 1
    if os.geteuid() != 0:
        print("not ok - yun_cli: needs root (yund runs containers)")
        print("0 passed, 1 failed")
        return 1
    make_tmp("yun-cli-e2e.")
    try:
        passed, failed = run_tests(TESTS, args.filter, always=(up_starts_yund,))
    finally:
        cleanup()
    log = os.path.join(Env.run, "yund.log")
    try:
        with open(log, errors="replace") as f:
            check_sanitizers("yund.log", f.read())
        passed += 1
        print("ok - yund_log_clean")
    except Failure as e:
        print("not ok - yund_log_clean: %s" % e)
        failed += 1
    except OSError:
        pass
    if not failed:
        shutil.rmtree(Env.tmp, ignore_errors=True)
    else:
        print("# kept %s for a look (yund.log is in run/)" % Env.tmp)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
