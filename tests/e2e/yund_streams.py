#!/usr/bin/env python3
"""yund_streams.py - exec and console over upgraded connections, at the wire.

    yund_streams.py --yund build/src/yund/yund --yun-ct build/src/ct/yun-ct [-k WORD]

Starts a real yund (temporary --root and --run) and speaks the protocols
of docs/api/yund.yaml by hand on its Unix socket:
  exec     POST /v1/instances/{ref}/exec, Upgrade: yun-exec -> 101, stdin
           raw with a half-close for its end; frames back (1 stdout, 2
           stderr, 3 exit {"status": N}), then yund closes;
  console  GET /v1/instances/{ref}/console, Upgrade: yun-console -> 101,
           raw both ways; closing detaches.
Checks the frames and statuses, large outputs, a terminal for -t, that a
client leaving kills its command but not the container, the refusals
(400/404/409/422), the same over TCP with the bearer token (401 without),
that yund stopping with sessions open ends them and
exits promptly while the container runs on, and that no yun-ct client is
left behind. (tests/e2e/yun_cli.py covers the same through `yun exec` and
`yun console`.) Prints "ok - NAME" / "not ok - NAME: REASON", then "N
passed, N failed". Needs root. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import Failure

SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:")
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
ECHO = ["sh", "-c", "echo ready; while read line; do echo \"got:$line\"; done"]


class Env:
    yund = yun_ct = tmp = root = run = log = None
    proc = None
    port = None


def sock_path():
    return os.path.join(Env.run, "yund.sock")


def connect(tcp=False):
    if tcp:
        return socket.create_connection(("127.0.0.1", Env.port), timeout=30)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path())
    return s


def read_head(s):
    """(status, headers dict lower-cased, bytes after the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise Failure("connection closed in the answer's head: %r" % buf[:300])
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def http(method, path, body=None, headers=None):
    """A plain request: (status, headers, body text). Connection closed after."""
    s = connect()
    data = json.dumps(body).encode() if body is not None else b""
    h = {"Host": "localhost", "Content-Length": str(len(data)), "Connection": "close"}
    h.update(headers or {})
    s.sendall(("%s %s HTTP/1.1\r\n" % (method, path)).encode() +
              "".join("%s: %s\r\n" % kv for kv in h.items()).encode() + b"\r\n" + data)
    status, hdrs, rest = read_head(s)
    length = int(hdrs.get("content-length", "-1"))
    while length < 0 or len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    return status, hdrs, rest.decode(errors="replace")


def api(method, path, body=None, want=None):
    st, _, text = http(method, path, body)
    if want is not None and st != want:
        raise Failure("%s %s: %d %s" % (method, path, st, text[:300]))
    return json.loads(text) if text.strip() else None


def upgrade(method, path, proto, body=None, token=None):
    """Open an upgraded connection: (socket, bytes already read) or raise with the refusal.
    With a token (or ""), over TCP."""
    s = connect(tcp=token is not None)
    data = json.dumps(body).encode() if body is not None else b""
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    s.sendall(("%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n%s"
               "Connection: Upgrade\r\nUpgrade: %s\r\n\r\n" % (method, path, len(data), auth,
                                                             proto)).encode() + data)
    status, headers, rest = read_head(s)
    if status != 101:
        s.close()
        raise Failure("%s %s: %d, not 101" % (method, path, status))
    if headers.get("upgrade", "").lower() != proto or "upgrade" not in \
            headers.get("connection", "").lower():
        raise Failure("101 without Upgrade: %s / Connection: Upgrade: %r" % (proto, headers))
    return s, rest


def read_frames(s, rest=b"", timeout=30):
    """Every frame until yund closes: (stdout, stderr, exit object or None, trailing bytes)."""
    s.settimeout(timeout)
    buf = rest
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Failure("no end of the exec stream within %ss (%d bytes)" % (timeout, len(buf)))
        if not chunk:
            break
        buf += chunk
    out, err, exit_ = b"", b"", None
    pos = 0
    while pos + 5 <= len(buf):
        t, n = struct.unpack(">BI", buf[pos:pos + 5])
        payload = buf[pos + 5:pos + 5 + n]
        if len(payload) != n:
            raise Failure("truncated frame type %d" % t)
        pos += 5 + n
        if exit_ is not None:
            raise Failure("a frame after the exit frame")
        if t == 1:
            out += payload
        elif t == 2:
            err += payload
        elif t == 3:
            exit_ = json.loads(payload)
        else:
            raise Failure("unknown frame type %d" % t)
    return out, err, exit_, buf[pos:]


def exec_(ref, command, stdin=b"", tty=False, timeout=30, **extra):
    body = dict({"command": command, "tty": tty}, **extra)
    s, rest = upgrade("POST", "/v1/instances/%s/exec" % ref, "yun-exec", body)

    def feed():
        # Input and output at the same time, as a real client does.
        try:
            if stdin:
                s.sendall(stdin)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=feed)
    t.start()
    try:
        out, err, x, trailing = read_frames(s, rest, timeout)
    finally:
        s.close()
        t.join()
    if trailing:
        raise Failure("bytes after the last frame: %r" % trailing[:50])
    if x is None:
        raise Failure("exec %r: no exit frame (out %r, err %r)" % (command, out[-200:], err))
    return x["status"], out, err


def wait_for(fn, what, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise Failure("%s: not after %ss (last: %r)" % (what, timeout, last))


def ct_clients():
    """yun-ct exec/attach client processes of our yund (found by our ct root)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if argv and argv[0].endswith(b"yun-ct") and len(argv) > 1 and \
                argv[1] in (b"exec", b"attach") and \
                ("YUN_CT_ROOT=" + os.path.join(Env.run, "ct")).encode() in env:
            found.append((int(pid), b" ".join(argv).decode(errors="replace")))
    return found


def host_procs(marker):
    """Host pids whose command line contains marker."""
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if marker.encode() in f.read().replace(b"\0", b" "):
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def start_yund():
    logf = open(Env.log, "a")
    Env.proc = subprocess.Popen([Env.yund, "--root", Env.root, "--run", Env.run, "--yun-ct",
                                 Env.yun_ct, "--listen", "127.0.0.1:%d" % Env.port, "-v"],
                                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    logf.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        if Env.proc.poll() is not None:
            raise Failure("yund exited with status %d" % Env.proc.returncode)
        try:
            if http("GET", "/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("yund did not answer in 15 s")


def stop_yund(timeout=30):
    if not Env.proc:
        return 0
    Env.proc.send_signal(signal.SIGTERM)
    try:
        Env.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        Env.proc.kill()
        Env.proc.wait()
        Env.proc = None
        raise Failure("yund did not stop on SIGTERM in %ss" % timeout)
    rc = Env.proc.returncode
    Env.proc = None
    return rc


def run_instance(name, command):
    api("POST", "/v1/instances", {"name": name, "image": "busybox", "command": command},
        want=202)
    wait_for(lambda: api("GET", "/v1/instances/" + name)["state"] == "running",
             name + " running")


# ---- the tests ------------------------------------------------------------------


def exec_status_and_streams():
    """stdout and stderr apart, stdin to its end, the command's own status."""
    st, out, err = exec_("box", ["sh", "-c", "cat; echo oops >&2; exit 5"], stdin=b"abc\n")
    if (st, out, err) != (5, b"abc\n", b"oops\n"):
        raise Failure("exec: %r" % ((st, out, err),))
    st, out, err = exec_("box", ["sh", "-c", "kill -9 $$"])
    if st != 137:
        raise Failure("exec killed by signal 9: status %d" % st)
    st, out, err = exec_("box", ["/no/such/command"])
    if st != 127 or b"no/such/command" not in err:
        raise Failure("exec of a missing command: %d %r" % (st, err))
    st, out, err = exec_("box", ["pwd"], cwd="/tmp", env=["FOO=bar"])
    if st != 0 or out != b"/tmp\n":
        raise Failure("exec with cwd: %d %r %r" % (st, out, err))
    st, out, _ = exec_("box", ["sh", "-c", "echo $FOO"], env=["FOO=bar"])
    if st != 0 or out != b"bar\n":
        raise Failure("exec with env: %d %r" % (st, out))


def exec_large_output_and_input():
    """4 MiB through stdin and back, byte for byte."""
    data = os.urandom(4 << 20)
    st, out, err = exec_("box", ["cat"], stdin=data, timeout=60)
    if st != 0 or out != data:
        raise Failure("cat of 4 MiB: status %d, %d bytes back, equal %s, %r" %
                      (st, len(out), out == data, err[:200]))
    # A reader slower than its input: the end of input comes after all of it.
    st, out, err = exec_("box", ["sh", "-c", "sleep 1; cat"], stdin=data[:2 << 20], timeout=60)
    if st != 0 or out != data[:2 << 20]:
        raise Failure("slow cat of 2 MiB: status %d, %d bytes back, %r" % (st, len(out),
                                                                           err[:200]))


def exec_with_a_tty():
    st, out, _ = exec_("box", ["sh", "-c", "tty; test -t 1"], tty=True)
    if st != 0 or not out.startswith(b"/dev/pts/"):
        raise Failure("exec tty: %d %r" % (st, out))


def exec_client_leaving_kills_the_command():
    """Closing the connection mid-command ends the command, not the container."""
    s, rest = upgrade("POST", "/v1/instances/box/exec", "yun-exec",
                      {"command": ["sh", "-c", "echo started; exec sleep 4242"]})
    buf = rest
    while b"started" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise Failure("stream closed before the command started")
        buf += chunk
    if not host_procs("sleep 4242"):
        raise Failure("the command is not running")
    s.close()
    wait_for(lambda: not host_procs("sleep 4242"), "sleep 4242 gone after the client left", 15)
    wait_for(lambda: not ct_clients(), "no yun-ct exec client left", 15)
    if api("GET", "/v1/instances/box")["state"] != "running":
        raise Failure("the container stopped with the exec")


def streams_over_tcp():
    """On TCP the upgrade needs the bearer token like everything else."""
    with open(os.path.join(Env.root, "token")) as f:
        token = f.read().strip()
    for method, path, proto, body in (
            ("POST", "/v1/instances/box/exec", "yun-exec", {"command": ["true"]}),
            ("GET", "/v1/instances/box/console", "yun-console", None)):
        try:
            upgrade(method, path, proto, body, token="wrong")
            raise Failure("%s %s with a wrong token was upgraded" % (method, path))
        except Failure as e:
            if ": 401," not in str(e):
                raise
    s, rest = upgrade("POST", "/v1/instances/box/exec", "yun-exec",
                      {"command": ["sh", "-c", "cat; exit 7"]}, token=token)
    s.sendall(b"over tcp\n")
    s.shutdown(socket.SHUT_WR)
    out, err, x, _ = read_frames(s, rest)
    s.close()
    if out != b"over tcp\n" or x != {"status": 7}:
        raise Failure("exec over TCP: %r %r %r" % (out, err, x))
    s, rest = upgrade("GET", "/v1/instances/echo/console", "yun-console", token=token)
    s.sendall(b"tcp\r")
    buf = rest
    while b"got:tcp" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise Failure("console over TCP closed: %r" % buf[-200:])
        buf += chunk
    s.close()
    wait_for(lambda: not ct_clients(), "no yun-ct attach client after a TCP detach", 15)


def exec_refusals():
    """400 without the upgrade or with a bad body, 404, 409 stopped, 422 values."""
    cases = [
        ({"command": ["true"]}, {}, "box", 400, "needs an upgrade"),
        ({"command": ["true"], "bogus": 1}, None, "box", 400, "bogus"),
        ({"command": "true"}, None, "box", 400, "command"),
        ({"command": []}, None, "box", 422, "command"),
        ({"command": [""]}, None, "box", 422, "command[0]"),
        ({"command": ["true"], "cwd": "tmp"}, None, "box", 422, "cwd"),
        ({"command": ["true"], "env": ["NOEQUALS"]}, None, "box", 422, "env[0]"),
        ({"command": ["true"]}, None, "nosuch", 404, "instance nosuch: not found"),
        ({"command": ["true"]}, None, "stopped1", 409, "not running"),
    ]
    for body, headers, ref, want, text in cases:
        h = {"Connection": "Upgrade", "Upgrade": "yun-exec"} if headers is None else headers
        st, _, resp = http("POST", "/v1/instances/%s/exec" % ref, body, h)
        if st != want or text not in resp:
            raise Failure("exec %r on %s: %d %s (want %d, %r)" % (body, ref, st, resp[:200],
                                                                   want, text))
        try:
            if json.loads(resp)["error"]["code"] not in ("invalid", "not_found", "conflict"):
                raise Failure("error code: %s" % resp)
        except ValueError:
            raise Failure("not a JSON error: %r" % resp[:200])
    for ref, want in (("nosuch", 404), ("stopped1", 409)):
        st, _, resp = http("GET", "/v1/instances/%s/console" % ref, None,
                           {"Connection": "Upgrade", "Upgrade": "yun-console"})
        if st != want:
            raise Failure("console of %s: %d %s" % (ref, st, resp[:200]))
    st, _, _ = http("GET", "/v1/instances/box/console")
    if st != 400:
        raise Failure("console without the upgrade: %d" % st)


def console_input_output_detach():
    """Typed input reaches init through the pty; closing detaches; a second client works."""
    for word in (b"first", b"second"):
        s, rest = upgrade("GET", "/v1/instances/echo/console", "yun-console")
        s.sendall(word + b"\r")
        buf = rest
        s.settimeout(15)
        while b"got:" + word not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise Failure("console closed before got:%s: %r" % (word, buf[-200:]))
            buf += chunk
        s.close()
        wait_for(lambda: not ct_clients(), "no yun-ct attach client after the detach", 15)
        if api("GET", "/v1/instances/echo")["state"] != "running":
            raise Failure("detaching stopped the container")
    st, _, logs = http("GET", "/v1/instances/echo/logs")
    if "got:first" not in logs or "got:second" not in logs:
        raise Failure("the console log lacks the sessions: %r" % logs[-300:])


def console_ends_with_the_container():
    """When the container ends, yund closes its console connections."""
    s, _ = upgrade("GET", "/v1/instances/echo/console", "yun-console")
    api("POST", "/v1/instances/echo/stop", {"timeout": 1}, want=202)
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        raise Failure("the console stayed open after the container stopped")
    s.close()
    wait_for(lambda: api("GET", "/v1/instances/echo")["state"] == "stopped", "echo stopped")
    wait_for(lambda: not ct_clients(), "no yun-ct attach client left", 15)


def yund_stops_with_sessions_open():
    """SIGTERM with a console and an exec open: both end, yund exits 0, the container runs on."""
    c, _ = upgrade("GET", "/v1/instances/box/console", "yun-console")
    e, _ = upgrade("POST", "/v1/instances/box/exec", "yun-exec",
                   {"command": ["sh", "-c", "exec sleep 4343"]})
    wait_for(lambda: host_procs("sleep 4343"), "the exec's command running", 15)
    t0 = time.time()
    rc = stop_yund(timeout=20)
    if rc != 0:
        raise Failure("yund exited with status %d" % rc)
    if time.time() - t0 > 10:
        raise Failure("yund took %.1fs to stop with sessions open" % (time.time() - t0))
    for s in (c, e):
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except (socket.timeout, OSError):
            raise Failure("a session stayed open after yund stopped")
        s.close()
    wait_for(lambda: not host_procs("sleep 4343"), "the exec's command gone", 15)
    wait_for(lambda: not ct_clients(), "no yun-ct client left", 15)
    start_yund()
    if api("GET", "/v1/instances/box")["state"] != "running":
        raise Failure("box is not running after yund's restart")
    st, out, _ = exec_("box", ["echo", "back"])
    if st != 0 or out != b"back\n":
        raise Failure("exec after the restart: %d %r" % (st, out))


TESTS = [exec_status_and_streams, exec_large_output_and_input, exec_with_a_tty,
         exec_client_leaving_kills_the_command, exec_refusals, streams_over_tcp,
         console_input_output_detach,
         console_ends_with_the_container, yund_stops_with_sessions_open]


def setup():
    start_yund()
    api("POST", "/v1/images", {"name": "busybox", "build": "busybox"}, want=202)
    wait_for(lambda: api("GET", "/v1/images/busybox")["state"] == "available",
             "image available", 120)
    run_instance("box", IDLE)
    run_instance("echo", ECHO)
    run_instance("stopped1", IDLE)
    api("POST", "/v1/instances/stopped1/stop", {"timeout": 1}, want=202)
    wait_for(lambda: api("GET", "/v1/instances/stopped1")["state"] == "stopped",
             "stopped1 stopped")


def cleanup():
    try:
        if not Env.proc:
            start_yund()
        for i in api("GET", "/v1/instances")["items"]:
            http("DELETE", "/v1/instances/" + i["id"])
        wait_for(lambda: not api("GET", "/v1/instances")["items"], "instances gone", 60)
    except (Failure, OSError, ValueError) as e:
        print("# cleanup: %s" % e)
    try:
        stop_yund()
    except Failure as e:
        print("# cleanup: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--yund", required=True)
    ap.add_argument("--yun-ct", required=True)
    ap.add_argument("-k", dest="filter")
    args = ap.parse_args()
    Env.yund = os.path.abspath(args.yund)
    Env.yun_ct = os.path.abspath(args.yun_ct)
    if os.geteuid() != 0:
        print("not ok - yund_streams: needs root")
        print("0 passed, 1 failed")
        return 1
    Env.tmp = tempfile.mkdtemp(prefix="yund-streams-e2e.")
    os.chmod(Env.tmp, 0o711)
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.log = os.path.join(Env.tmp, "yund.log")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    Env.port = s.getsockname()[1]
    s.close()
    passed = failed = 0
    try:
        try:
            setup()
        except (Failure, OSError, ValueError, KeyError) as e:
            print("not ok - setup: %s" % e)
            failed += 1
        else:
            for t in TESTS:
                if args.filter and args.filter not in t.__name__:
                    continue
                start = time.time()
                try:
                    if Env.proc is None:
                        start_yund()
                    t()
                    print("ok - %s (%.1fs)" % (t.__name__, time.time() - start))
                    passed += 1
                except (Failure, OSError, ValueError, KeyError, TypeError) as e:
                    print("not ok - %s: %s" % (t.__name__, e))
                    failed += 1
                sys.stdout.flush()
    finally:
        cleanup()
    try:
        with open(Env.log, errors="replace") as f:
            text = f.read()
        m = SANITIZER_RE.search(text)
        if m:
            print("not ok - yund_log_clean: %s" % text[max(0, m.start() - 200):m.start() + 600])
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
