#!/usr/bin/env python3
"""yund_vm.py - microVM instances through yund's API, with the test guest as image.

    yund_vm.py --yund Y --yun-ct C --yun-vmm V --bzimage B --elf E [-k WORD]

Starts a real yund (temporary --root and --run) with the given yun-vmm,
imports microVM images made from the test guest (tests/guest: kernel =
the guest's bzImage or PVH ELF, rootfs/ or rootfs.ext4, manifest.json
whose cmdline is "yuntest=probe"), and checks what a user sees: the
instance reaches running, its console log (GET logs) has the guest's own
report of its disk (the instance's root disk: ext4, labelled rootfs, the
capacity of disk_gib) and its network card (the MAC yund assigned), the
NoCloud seed disk, stop/start, kill -9 of yund (the VM is adopted), kill -9
of yun-vmm (restart policy), delete (nothing left: instance dir, process,
TAP, DHCP reservation), and bad input answered 4xx with nothing stored.
yund drives each VM through yun-vmm's control API (<run>/vm/<id>.sock):
a stop is the API's graceful Shutdown (a guest that ignores Ctrl-Alt-Del
is stopped hard by yun-vmm at the deadline, one that honours it stops at
once; SIGTERM only when the API does not answer), and pause/resume (API
and `yun pause/resume`, the `counter` guest's vCPU time and output stand
still while paused, a paused VM stays paused across a kill -9 of yund).

Prints "ok - NAME (SECSs)" or "not ok - NAME: REASON" per test, then
"N passed, N failed"; exits 1 if any test failed. Needs root.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness import Failure, UnixHTTPConnection

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Env:
    args = None
    tmp = root = run = log = None
    proc = None
    net = None  # the network's row
    img = None  # the microVM image (bzImage, rootfs/ made into ext4)


def api(method, path, body=None):
    c = UnixHTTPConnection(os.path.join(Env.run, "yund.sock"))
    data = json.dumps(body).encode() if body is not None else None
    try:
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        text = r.read()
        ctype = r.getheader("Content-Type") or ""
        status = r.status
    finally:
        c.close()
    if "json" in ctype:
        return status, json.loads(text)
    return status, text.decode(errors="replace")


def ok(method, path, body=None):
    st, res = api(method, path, body)
    if st not in (200, 201, 202, 204):
        raise Failure("%s %s: %d %s" % (method, path, st, json.dumps(res)[:300]))
    return res


def start_yund():
    logf = open(Env.log, "a")
    Env.proc = subprocess.Popen(
        [Env.args.yund, "--root", Env.root, "--run", Env.run, "--yun-ct", Env.args.yun_ct,
         "--yun-vmm", Env.args.yun_vmm, "-v"],
        stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
    logf.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        if Env.proc.poll() is not None:
            raise Failure("yund exited with status %d; see %s" % (Env.proc.returncode, Env.log))
        try:
            if api("GET", "/v1/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("yund did not answer in 15 s")


def stop_yund(sig=signal.SIGTERM):
    if not Env.proc:
        return
    Env.proc.send_signal(sig)
    try:
        Env.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        Env.proc.kill()
        Env.proc.wait()
        raise Failure("yund did not stop in 20 s")
    status, Env.proc = Env.proc.returncode, None
    if sig == signal.SIGTERM and status != 0:
        raise Failure("yund exited with status %d after SIGTERM; see %s" % (status, Env.log))


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise Failure("%s: not within %d s" % (what, timeout))


def inst(ref):
    st, res = api("GET", "/v1/instances/" + ref)
    return res if st == 200 else None


def wait_state(ref, state, timeout=30):
    def check():
        i = inst(ref)
        if i and i["state"] == "failed" and state != "failed":
            raise Failure("instance %s failed: %s; log:\n%s" % (ref, i["failure"], logs(ref)))
        return i if i and i["state"] == state else None
    return wait_for("instance %s %s" % (ref, state), check, timeout)


def logs(ref):
    st, text = api("GET", "/v1/instances/%s/logs" % ref)
    return text if st == 200 else ""


def wait_log(ref, needle, count=1, timeout=30):
    return wait_for("%r in the console log of %s" % (needle, ref),
                    lambda: logs(ref).count(needle) >= count, timeout)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def tap_of(i):
    return "yt-" + i["id"][2:]


def link_exists(name):
    return os.path.exists("/sys/class/net/" + name)


def dhcp_hosts():
    path = os.path.join(Env.run, "net", Env.net["id"], "dhcp-hosts")
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def inst_dir(i):
    return os.path.join(Env.root, "instances", i["id"])


def ext4_label(path):
    with open(path, "rb") as f:
        f.seek(1024)
        sb = f.read(1024)
    if sb[56:58] != b"\x53\xef":
        return None
    return sb[120:136].rstrip(b"\0").decode()


def make_image_dir(name, kernel, rootfs_ext4=False, cmdline="yuntest=probe"):
    d = os.path.join(Env.tmp, name)
    os.makedirs(os.path.join(d, "rootfs", "etc"))
    with open(os.path.join(d, "rootfs", "etc", "hostname"), "w") as f:
        f.write("guest\n")
    shutil.copy(kernel, os.path.join(d, "kernel"))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"cmdline": cmdline, "os": "yun-test-guest"}, f)
    if rootfs_ext4:
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", os.path.join(d, "rootfs"),
                        os.path.join(d, "rootfs.ext4"), "8M"], check=True,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(os.path.join(d, "rootfs"))
    return d


def wait_image(name, timeout=120):
    def check():
        st, img = api("GET", "/v1/images/" + name)
        if st == 200 and img["state"] == "failed":
            raise Failure("image %s failed: %s" % (name, img["failure"]))
        return img if st == 200 and img["state"] == "available" else None
    return wait_for("image %s available" % name, check, timeout)


def create_vm(name, **kw):
    body = {"name": name, "type": "microvm", "image": "guest", "vcpus": 1, "memory_mib": 64,
            "disk_gib": 1, "network": "vmnet"}
    body.update(kw)
    return ok("POST", "/v1/instances", {k: v for k, v in body.items() if v is not None})


def ssh_key(ktype, comment="", size=32):
    """A public key line of type ktype (blob: the SSH wire format's type name + random bytes)."""
    name = ktype.encode()
    blob = len(name).to_bytes(4, "big") + name + size.to_bytes(4, "big") + os.urandom(size)
    return "%s %s%s" % (ktype, base64.b64encode(blob).decode(), " " + comment if comment else "")


def keygen(kind, bits=None):
    """A real key from ssh-keygen when it is installed, else one made here."""
    if shutil.which("ssh-keygen"):
        path = os.path.join(Env.tmp, "key-%s-%s" % (kind, bits))
        if not os.path.exists(path + ".pub"):
            subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "t@%s" % kind, "-f",
                            path] + (["-b", str(bits)] if bits else []), check=True)
        with open(path + ".pub") as f:
            return f.read().strip()
    return ssh_key({"ed25519": "ssh-ed25519", "rsa": "ssh-rsa",
                    "ecdsa": "ecdsa-sha2-nistp%d" % (bits or 256)}[kind], "t@" + kind)


def seed_file(i, name):
    seed = os.path.join(inst_dir(i), "seed.img")
    r = subprocess.run(["mtype", "-i", seed, "::" + name], capture_output=True, text=True,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    if r.returncode:
        raise Failure("mtype %s %s: %s" % (seed, name, r.stderr.strip()))
    return r.stdout


def delete_and_check(i):
    d = inst_dir(i)
    pid = (inst(i["id"]) or {}).get("pid") or 0
    ok("DELETE", "/v1/instances/" + i["id"])
    wait_for("instance %s gone" % i["name"], lambda: api("GET", "/v1/instances/" + i["id"])[0] == 404)
    left = []
    if pid and alive(pid):
        left.append("yun-vmm %d still runs" % pid)
    if os.path.exists(d):
        left.append("%s still there" % d)
    if link_exists(tap_of(i)):
        left.append("TAP %s still there" % tap_of(i))
    if i["id"] in dhcp_hosts():
        left.append("DHCP reservation still there")
    if left:
        raise Failure("after delete: " + "; ".join(left))


def api_sock(i):
    return os.path.join(Env.run, "vm", i["id"] + ".sock")


def vmm(i, method, path, body=None):
    """A request to the instance's yun-vmm control API, as yund makes them."""
    c = UnixHTTPConnection(api_sock(i))
    try:
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None)
        r = c.getresponse()
        text = r.read()
    finally:
        c.close()
    if r.status >= 300:
        raise Failure("VMM %s %s: %d %s" % (method, path, r.status, text[:300]))
    return json.loads(text) if text else None


def vcpu_ns(i):
    return sum(v["cpu_time_ns"] for v in vmm(i, "GET", "/metrics")["vcpus"])


def yun(*args):
    """The CLI (next to yund in the build tree), on this yund's socket."""
    exe = os.path.join(os.path.dirname(os.path.dirname(Env.args.yund)), "cli", "yun")
    if not os.path.exists(exe):
        raise Failure("no yun CLI at %s" % exe)
    r = subprocess.run([exe, "--socket", os.path.join(Env.run, "yund.sock")] + list(args),
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise Failure("yun %s: status %d: %s" % (" ".join(args), r.returncode,
                                                  r.stderr.strip()))
    return r.stdout


def timed_stop(i, timeout):
    t0 = time.time()
    ok("POST", "/v1/instances/%s/stop" % i["id"], {"timeout": timeout})
    s = wait_state(i["id"], "stopped", timeout=timeout + 30)
    return s, time.time() - t0


def guest_image(name, case):
    if api("GET", "/v1/images/" + name)[0] != 200:
        d = make_image_dir("img-" + case, Env.args.bzimage, cmdline="yuntest=" + case)
        ok("POST", "/v1/images", {"name": name, "type": "microvm", "import": d})
    return wait_image(name)


# ---- tests -----------------------------------------------------------------------


def t_bad_input():
    """microVM bad input: 4xx naming the reason, nothing stored."""
    nokernel = os.path.join(Env.tmp, "nokernel")
    os.makedirs(os.path.join(nokernel, "rootfs"))
    notkernel = os.path.join(Env.tmp, "notkernel")
    os.makedirs(os.path.join(notkernel, "rootfs"))
    with open(os.path.join(notkernel, "kernel"), "w") as f:
        f.write("not a kernel\n" * 200)
    cases = [
        ("/v1/images", {"name": "x", "type": "microvm", "import": nokernel}, 422, "no kernel"),
        ("/v1/images", {"name": "x", "type": "microvm", "import": notkernel}, 422, "not a kernel"),
        ("/v1/images", {"name": "x", "type": "microvm", "import": "/nonexistent"}, 422, "import"),
        ("/v1/images", {"name": "x", "type": "microvm", "build": "busybox"}, 400, "kernel"),
        ("/v1/images", {"name": "x", "type": "microvm", "build": "busybox",
                        "kernel": "/etc/passwd"}, 422, "not a kernel"),
        ("/v1/images", {"name": "x", "type": "container", "build": "busybox",
                        "kernel": Env.args.bzimage}, 400, "kernel"),
        ("/v1/instances", {"type": "microvm", "image": "guest", "vcpus": 1,
                           "memory_mib": 2000000}, 422, "memory_mib"),
        ("/v1/instances", {"type": "microvm", "image": "guest", "vcpus": 1,
                           "memory_mib": 10 ** 12}, 422, "memory_mib"),
        ("/v1/instances", {"type": "microvm", "image": "guest", "vcpus": 65,
                           "memory_mib": 64}, 422, "vcpus"),
        ("/v1/instances", {"type": "microvm", "image": "guest", "command": ["sh"]}, 400,
         "command"),
        ("/v1/instances", {"type": "container", "image": "guest"}, 422, "microvm image"),
    ]
    vm = {"type": "microvm", "image": "guest", "vcpus": 1, "memory_mib": 64}
    good = ssh_key("ssh-ed25519", "me@host")
    b64 = good.split()[1]
    bad_keys = [
        ("ssh_keys", "x", 400, "ssh_keys"),
        ("ssh_keys", [good, 7], 400, "ssh_keys"),
        ("ssh_keys", [good] * 17, 422, "ssh_keys"),
        ("ssh_keys", [good, "ssh-dss " + b64], 422, "ssh_keys[1]: key type \"ssh-dss\""),
        ("ssh_keys", [""], 422, "ssh_keys[0]: empty"),
        ("ssh_keys", ["ssh-ed25519"], 422, "ssh_keys[0]: no base64"),
        ("ssh_keys", ["ssh-ed25519 AAAA$AAA"], 422, "ssh_keys[0]: the key is not valid base64"),
        ("ssh_keys", ["ssh-ed25519 " + b64[:-1]], 422, "not valid base64"),
        ("ssh_keys", [good, good.split()[0] + " " + b64 + "=="], 422, "ssh_keys[1]: the key is"),
        ("ssh_keys", ["ssh-rsa " + b64], 422, "ssh_keys[0]: the key data is not a ssh-rsa key"),
        ("ssh_keys", ["ssh-ed25519 " + base64.b64encode(b"hello world!").decode()], 422,
         "not a ssh-ed25519 key"),
        ("ssh_keys", [good + "\nssh-ed25519 " + b64], 422, "ssh_keys[0]: control character"),
        ("ssh_keys", [ssh_key("ssh-rsa", size=8200)], 422, "ssh_keys"),
        ("ssh_key", [good], 400, "ssh_key"),
    ]
    for field, value, want, word in bad_keys:
        cases.append(("/v1/instances", dict(vm, **{field: value}), want, word))
    cases.append(("/v1/instances", {"type": "container", "image": "guest", "ssh_keys": [good]},
                  422, "ssh_keys: microVMs only"))
    n_img = len(ok("GET", "/v1/images")["items"])
    n_inst = len(ok("GET", "/v1/instances")["items"])
    for path, body, want, word in cases:
        st, res = api("POST", path, body)
        msg = res.get("error", {}).get("message", "") if isinstance(res, dict) else str(res)
        if st != want or word not in msg:
            raise Failure("POST %s %s: %d %r (want %d naming %r)" % (path, json.dumps(body), st,
                                                                    msg, want, word))
    if (len(ok("GET", "/v1/images")["items"]) != n_img or
            len(ok("GET", "/v1/instances")["items"]) != n_inst):
        raise Failure("bad input left a row behind")


def t_lifecycle():
    """create -> running, the guest confirms disk and NIC; seed; stop; start; delete."""
    keys = [keygen("ed25519"), keygen("rsa", 2048), keygen("ecdsa", 384),
            ssh_key("sk-ssh-ed25519@openssh.com", 'a "quoted" \\ comment: #x'),
            ssh_key("ecdsa-sha2-nistp521")]
    i = create_vm("vm-1", user_data="#cloud-config\nhostname: vm-one\n", ssh_keys=keys)
    if i.get("ssh_keys") != keys or inst(i["id"]).get("ssh_keys") != keys:
        raise Failure("ssh_keys not shown as given: %r" % i.get("ssh_keys"))
    i = wait_state(i["id"], "running")
    if not i["mac"] or not i["ip"]:
        raise Failure("running instance without mac/ip: %s" % json.dumps(i))
    wait_log(i["id"], "YT PROBE ready")
    text = logs(i["id"])
    want = ["YT PROBE disks=2 nets=1",
            "YT PROBE disk capacity=%d ext4=yes label=rootfs" % (1 << 30 >> 9),
            "YT PROBE net mac=%s" % i["mac"]]
    for w in want:
        if w not in text:
            raise Failure("console log lacks %r:\n%s" % (w, text[-2000:]))
    pid = i["pid"]
    if not pid or not alive(pid):
        raise Failure("pid %r is not a live process" % pid)
    d = inst_dir(i)
    seed = os.path.join(d, "seed.img")
    md = subprocess.run(["mtype", "-i", seed, "::meta-data"], capture_output=True, text=True,
                        env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    ud = subprocess.run(["mtype", "-i", seed, "::user-data"], capture_output=True, text=True,
                        env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    label = subprocess.run(["mlabel", "-s", "-i", seed, "::"], capture_output=True, text=True,
                           env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    if ("instance-id: %s" % i["id"]) not in md.stdout or "local-hostname: vm-1" not in md.stdout:
        raise Failure("seed meta-data: %r %r" % (md.stdout, md.stderr))
    if ud.stdout != "#cloud-config\nhostname: vm-one\n":
        raise Failure("seed user-data: %r" % ud.stdout)
    if "CIDATA" not in label.stdout:
        raise Failure("seed label: %r" % label.stdout)
    check_seed_keys(md.stdout, keys)
    if not link_exists(tap_of(i)) or ("%s,%s" % (i["mac"], i["ip"])) not in dhcp_hosts():
        raise Failure("TAP %s or DHCP reservation %s,%s missing (%r)" %
                      (tap_of(i), i["mac"], i["ip"], dhcp_hosts()))

    # (The probe guest ignores the graceful shutdown: yun-vmm ends it at the deadline.)
    ok("POST", "/v1/instances/%s/stop" % i["id"], {"timeout": 1})
    s = wait_state(i["id"], "stopped")
    wait_for("yun-vmm %d gone" % pid, lambda: not alive(pid), 10)
    if s["pid"]:
        raise Failure("stopped instance shows pid %r" % s["pid"])
    # Stop keeps what belongs to the instance: its disk, its port (TAP + address).
    if not os.path.exists(os.path.join(d, "disk.img")) or not link_exists(tap_of(i)):
        raise Failure("stop removed the disk or the TAP")

    ok("POST", "/v1/instances/%s/start" % i["id"])
    i2 = wait_state(i["id"], "running")
    wait_log(i["id"], "YT PROBE ready", count=2)
    if i2["pid"] == pid or i2["ip"] != i["ip"] or i2["mac"] != i["mac"]:
        raise Failure("restart: pid %s->%s ip %s->%s mac %s->%s" %
                      (pid, i2["pid"], i["ip"], i2["ip"], i["mac"], i2["mac"]))
    delete_and_check(i2)


def check_seed_keys(meta, keys):
    """meta-data as cloud-init's NoCloud reads it (YAML): public-keys is the list of keys."""
    import yaml  # python3-yaml: cloud-init's own YAML loader
    try:
        md = yaml.safe_load(meta)
    except yaml.YAMLError as e:
        raise Failure("seed meta-data is not YAML (%s): %r" % (e, meta))
    got = md.get("public-keys") if isinstance(md, dict) else None
    if keys and got != keys:
        raise Failure("seed meta-data public-keys %r, want %r" % (got, keys))
    if not keys and "public-keys" in md:
        raise Failure("seed meta-data has public-keys without keys: %r" % meta)


def t_ssh_keys_cli():
    """yun run --ssh-key FILE (twice; one file with two keys): stored, in the seed; none: no list."""
    yun = os.path.join(os.path.dirname(os.path.dirname(Env.args.yund)), "cli", "yun")
    k1, k2, k3 = keygen("ed25519"), ssh_key("ecdsa-sha2-nistp256", "two"), ssh_key("ssh-rsa")
    f1, f2 = os.path.join(Env.tmp, "one.pub"), os.path.join(Env.tmp, "two.keys")
    with open(f1, "w") as f:
        f.write(k1 + "\n")
    with open(f2, "w") as f:
        f.write("# two keys\n\n" + k2 + "\r\n  " + k3 + "\n")
    r = subprocess.run([yun, "run", "--socket", os.path.join(Env.run, "yund.sock"),
                        "--type", "vm", "--net", "vmnet", "--cpus", "1", "--memory", "64",
                        "--disk", "1", "--name", "vm-keys", "--ssh-key", f1, "--ssh-key", f2,
                        "guest"], capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise Failure("yun run --ssh-key: %d %s" % (r.returncode, r.stderr.strip()))
    i = inst("vm-keys")
    if i["ssh_keys"] != [k1, k2, k3]:
        raise Failure("ssh_keys %r" % i["ssh_keys"])
    check_seed_keys(seed_file(i, "meta-data"), [k1, k2, k3])
    delete_and_check(i)
    i = create_vm("vm-nokeys")
    if i["ssh_keys"] != []:
        raise Failure("ssh_keys of an instance without keys: %r" % i["ssh_keys"])
    wait_state(i["id"], "running")
    check_seed_keys(seed_file(i, "meta-data"), [])
    delete_and_check(i)


def console_attach(ref):
    """GET /v1/instances/REF/console with the upgrade: (status, socket, bytes after the head)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(os.path.join(Env.run, "yund.sock"))
    s.sendall(("GET /v1/instances/%s/console HTTP/1.1\r\nHost: yund\r\n"
               "Connection: Upgrade\r\nUpgrade: yun-console\r\n\r\n" % ref).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, s, rest


def read_until(s, needle, have=b"", timeout=15):
    deadline = time.time() + timeout
    buf = have
    while needle not in buf and time.time() < deadline:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    if needle not in buf:
        raise Failure("console: no %r in %r" % (needle, buf[-500:]))
    return buf


def t_console():
    """microVM console: through the API both ways; logged by yun-vmm while yund is down."""
    d = make_image_dir("img-serial", Env.args.bzimage, cmdline="yuntest=serial")
    ok("POST", "/v1/images", {"name": "guest-serial", "type": "microvm", "import": d})
    wait_image("guest-serial")
    i = create_vm("vm-con", image="guest-serial", network=None)
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT READY")
    st, s, rest = console_attach(i["id"])
    if st != 101:
        raise Failure("console of a running microVM: %d %r" % (st, rest[:300]))
    # Output is live: the guest answers a line typed into the console.
    s.sendall(b"hello vm\r")
    read_until(s, b"YT ECHO 8 hello vm", rest)
    s.close()
    wait_log(i["id"], "YT ECHO 8 hello vm")
    delete_and_check(i)

    # yund down: yun-vmm keeps the console and its log.
    i = create_vm("vm-con2", image="guest-serial", network=None)
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT READY")
    stop_yund(signal.SIGKILL)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(os.path.join(inst_dir(i), "console.sock"))
    time.sleep(0.2)  # accepted by yun-vmm's console thread before the guest reads
    c.sendall(b"yund is down\r")
    read_until(c, b"YT ECHO 12 yund is down")
    c.close()
    log = os.path.join(inst_dir(i), "console.log")
    wait_for("the echo in console.log while yund is down",
             lambda: b"YT ECHO 12 yund is down" in open(log, "rb").read(), 10)
    start_yund()
    wait_log(i["id"], "YT ECHO 12 yund is down")
    st, s, rest = console_attach(i["id"])
    s.close()
    if st not in (101, 409):  # 409 once the guest has powered off
        raise Failure("console after the restart: %d %r" % (st, rest[:300]))
    delete_and_check(i)
    ok("DELETE", "/v1/images/guest-serial")


def t_adopt():
    """kill -9 yund while a microVM runs: the next yund adopts it; reboot; stop."""
    i = create_vm("vm-adopt")
    i = wait_state(i["id"], "running")
    pid = i["pid"]
    stop_yund(signal.SIGKILL)
    if not alive(pid):
        raise Failure("yun-vmm %d died with yund" % pid)
    start_yund()
    time.sleep(1.5)  # a few loop passes
    a = wait_state(i["id"], "running")
    if a["pid"] != pid or not alive(pid):
        raise Failure("after restart: pid %s (was %d, alive %s)" % (a["pid"], pid, alive(pid)))
    if logs(i["id"]).count("YT PROBE ready") != 1:
        raise Failure("the VM was started again instead of adopted")
    # Reboot of an adopted VM: Shutdown through its API (the probe guest ignores it, so
    # yun-vmm ends it at the stop timeout, 10 s), then a new yun-vmm.
    ok("POST", "/v1/instances/%s/reboot" % i["id"])
    wait_log(i["id"], "YT PROBE ready", count=2)
    r = wait_state(i["id"], "running")
    wait_for("old yun-vmm %d gone" % pid, lambda: not alive(pid), 10)
    pid = r["pid"]
    # Stop works on an adopted VM too (it is no longer yund's child).
    ok("POST", "/v1/instances/%s/stop" % i["id"], {"timeout": 1})
    wait_state(i["id"], "stopped")
    wait_for("adopted yun-vmm %d gone" % pid, lambda: not alive(pid), 10)
    delete_and_check(i)


def t_graceful_stop():
    """stop = the VMM API's Shutdown: hard stop by yun-vmm at the deadline, prompt with a
    guest that honours Ctrl-Alt-Del, SIGTERM when the API does not answer"""
    i = create_vm("vm-stop")
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT PROBE ready")
    with open(os.path.join(inst_dir(i), "vm.json")) as f:
        if json.load(f).get("api_sock") != api_sock(i):
            raise Failure("vm.json has no api_sock %s" % api_sock(i))
    if vmm(i, "GET", "/")["state"] != "Running":
        raise Failure("VMM state: %s" % vmm(i, "GET", "/"))
    # The probe guest ignores Ctrl-Alt-Del: yun-vmm stops it at the deadline (status 4).
    s, took = timed_stop(i, 3)
    if s["exit_status"] != 4 or not 2.5 <= took < 6:
        raise Failure("stop of a guest ignoring Ctrl-Alt-Del: exit_status %s after %.1f s "
                      "(want 4, the VMM's hard stop at 3 s; 137 = KILL by yund)"
                      % (s["exit_status"], took))
    if os.path.exists(api_sock(i)):
        raise Failure("%s left after the VM ended" % api_sock(i))
    # Without an answering API (socket removed): TERM, at once.
    ok("POST", "/v1/instances/%s/start" % i["id"])
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT PROBE ready", count=2)
    os.unlink(api_sock(i))
    s, took = timed_stop(i, 10)
    if s["exit_status"] != 128 + signal.SIGTERM or took > 5:
        raise Failure("stop without the API: exit_status %s after %.1f s (want 143, TERM)"
                      % (s["exit_status"], took))
    delete_and_check(i)
    # The shutdown case resets on Ctrl-Alt-Del: a graceful stop well before the deadline.
    guest_image("guest-cad", "shutdown")
    c = create_vm("vm-cad", image="guest-cad", network=None)
    c = wait_state(c["id"], "running")
    wait_log(c["id"], "YT READY")
    s, took = timed_stop(c, 30)
    if s["exit_status"] != 0 or took > 10 or "YT CAD" not in logs(c["id"]):
        raise Failure("graceful stop: exit_status %s after %.1f s; log:\n%s"
                      % (s["exit_status"], took, logs(c["id"])[-800:]))
    delete_and_check(c)
    ok("DELETE", "/v1/images/guest-cad")


def t_pause():
    """pause/resume (API and CLI): the VMM says Paused, vCPU time and output stand still,
    resume brings them back; 409/404; paused across a kill -9 of yund; stop while paused"""
    guest_image("guest-counter", "counter")
    i = create_vm("vm-pause", image="guest-counter", network=None)
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT COUNT 3")
    p = ok("POST", "/v1/instances/%s/pause" % i["id"])
    if p["desired"] != "paused":
        raise Failure("pause answered %s" % json.dumps(p))
    wait_state(i["id"], "paused", timeout=10)
    if vmm(i, "GET", "/")["state"] != "Paused":
        raise Failure("VMM state after pause: %s" % vmm(i, "GET", "/"))
    ns, n = vcpu_ns(i), logs(i["id"]).count("YT COUNT")
    time.sleep(1.5)
    if vcpu_ns(i) - ns > 20_000_000 or logs(i["id"]).count("YT COUNT") != n:
        raise Failure("paused VM ran on: vCPU time +%d ns, %d more lines"
                      % (vcpu_ns(i) - ns, logs(i["id"]).count("YT COUNT") - n))
    ok("POST", "/v1/instances/%s/pause" % i["id"])  # again: nothing changes
    st, res = api("POST", "/v1/instances/%s/reboot" % i["id"])
    if st != 409:
        raise Failure("reboot of a paused instance: %d %s" % (st, res))
    # kill -9 of yund: the VM stays paused and the next yund sees it so.
    stop_yund(signal.SIGKILL)
    start_yund()
    time.sleep(1.5)
    a = inst(i["id"])
    if a["state"] != "paused" or a["desired"] != "paused" or a["pid"] != i["pid"] or \
            vmm(i, "GET", "/")["state"] != "Paused":
        raise Failure("after a restart of yund: %s, VMM %s" % (json.dumps(a),
                                                              vmm(i, "GET", "/")))
    ok("POST", "/v1/instances/%s/resume" % i["id"])
    wait_state(i["id"], "running", timeout=10)
    if vmm(i, "GET", "/")["state"] != "Running":
        raise Failure("VMM state after resume: %s" % vmm(i, "GET", "/"))
    wait_log(i["id"], "YT COUNT", count=n + 3, timeout=10)
    ns = vcpu_ns(i)
    time.sleep(0.5)
    if vcpu_ns(i) <= ns:
        raise Failure("resumed VM: vCPU time does not grow")
    # yund's Prometheus metrics carry the VMM's own: exits by reason, vCPU time.
    text = api("GET", "/metrics")[1]
    if not re.search(r'yun_instance_vm_exits_total\{id="%s"[^}]*reason="io"\} [1-9]' % i["id"],
                     text) or \
            not re.search(r'yun_instance_vcpu_seconds_total\{id="%s"[^}]*\} [0-9.e-]+\n' % i["id"],
                          text):
        raise Failure("/metrics lacks the VM's exits or vCPU time: %s" %
                      [ln for ln in text.splitlines() if i["id"] in ln][:20])
    # The CLI.
    out = yun("pause", "--wait", "vm-pause")
    if i["id"] not in out or inst(i["id"])["state"] != "paused" or \
            vmm(i, "GET", "/")["state"] != "Paused":
        raise Failure("yun pause: %s" % out)
    out = yun("resume", "--wait", "vm-pause")
    if i["id"] not in out or inst(i["id"])["state"] != "running" or \
            vmm(i, "GET", "/")["state"] != "Running":
        raise Failure("yun resume: %s" % out)
    # Stop while paused: the Shutdown resumes it; the counter ignores Ctrl-Alt-Del.
    yun("pause", "--wait", "vm-pause")
    s, took = timed_stop(i, 1)
    with open(Env.log, errors="replace") as f:
        by_signal = [ln for ln in f if "vm-pause: stop:" in ln]
    # (Adopted since the restart of yund: not its child, so no exit status.)
    if not 0.8 <= took < 5 or by_signal:
        raise Failure("stop of a paused VM: after %.1f s; %s" % (took, by_signal))
    # Bad requests: not running, unknown, a body with fields.
    for path, body, want, word in [
            ("/v1/instances/vm-pause/pause", None, 409, "state stopped"),
            ("/v1/instances/vm-pause/resume", None, 409, "state stopped"),
            ("/v1/instances/nope/pause", None, 404, "instance nope: not found"),
            ("/v1/instances/nope/resume", None, 404, "instance nope: not found"),
            ("/v1/instances/vm-pause/pause", {"x": 1}, 400, "field x: unknown")]:
        st, res = api("POST", path, body)
        if st != want or word not in json.dumps(res):
            raise Failure("POST %s: %d %s (want %d, %r)" % (path, st, json.dumps(res), want,
                                                            word))
    delete_and_check(i)
    ok("DELETE", "/v1/images/guest-counter")


def t_crash_restart():
    """yun-vmm killed: restart_policy on-failure restarts it; no -> failed."""
    i = create_vm("vm-crash", restart_policy="on-failure")
    i = wait_state(i["id"], "running")
    os.kill(i["pid"], signal.SIGKILL)

    def restarted():
        j = inst(i["id"])
        return j if j and j["state"] == "running" and j["pid"] != i["pid"] and \
            j["restart_count"] >= 1 else None
    j = wait_for("restart after kill -9 of yun-vmm", restarted)
    if "signal 9" not in j["failure"]:
        raise Failure("failure says %r" % j["failure"])
    n = create_vm("vm-norestart")
    n = wait_state(n["id"], "running")
    os.kill(n["pid"], signal.SIGKILL)
    f = wait_state(n["id"], "failed")
    if f["desired"] != "stopped" or "signal 9" not in f["failure"]:
        raise Failure("no-restart instance: %s" % json.dumps(f))
    delete_and_check(j)
    delete_and_check(f)


def t_elf_ext4():
    """an image of the PVH ELF and a ready rootfs.ext4; an instance without a network."""
    d = make_image_dir("img-elf", Env.args.elf, rootfs_ext4=True)
    ok("POST", "/v1/images", {"name": "guest-elf", "type": "microvm", "import": d})
    img = wait_image("guest-elf")
    if ext4_label(os.path.join(img["path"], "rootfs.ext4")) != "rootfs":
        raise Failure("image rootfs.ext4 not copied")
    i = create_vm("vm-elf", image="guest-elf", network=None, disk_gib=0)
    del_net = {k: v for k, v in i.items()}
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT PROBE ready")
    text = logs(i["id"])
    if "YT PROBE disks=2 nets=0" not in text or "entry=pvh" not in text or \
            "capacity=%d ext4=yes" % (8 << 20 >> 9) not in text:
        raise Failure("console log:\n%s" % text[-1500:])
    delete_and_check(del_net)
    ok("DELETE", "/v1/images/guest-elf")


def t_build_busybox():
    """build busybox as a microVM image: rootfs.ext4 made by mkfs.ext4 -d."""
    ok("POST", "/v1/images", {"name": "bb-vm", "type": "microvm", "build": "busybox",
                              "kernel": os.path.abspath(Env.args.bzimage)})
    img = wait_image("bb-vm", timeout=300)
    p = img["path"]
    for f in ("kernel", "rootfs.ext4", "manifest.json"):
        if not os.path.exists(os.path.join(p, f)):
            raise Failure("built image lacks %s" % f)
    if ext4_label(os.path.join(p, "rootfs.ext4")) != "rootfs":
        raise Failure("rootfs.ext4 is not an ext4 labelled rootfs")
    ls = subprocess.run(["debugfs", "-R", "ls -l /bin", os.path.join(p, "rootfs.ext4")],
                        capture_output=True, text=True)
    if "busybox" not in ls.stdout:
        raise Failure("no /bin/busybox in the ext4: %s" % ls.stdout[:300])
    with open(os.path.join(p, "manifest.json")) as f:
        m = json.load(f)
    if m.get("type") != "microvm" or not m.get("cmdline"):
        raise Failure("manifest: %s" % m)
    ok("DELETE", "/v1/images/bb-vm")


def t_volume():
    """an attached volume is a third virtio-blk disk of the microVM."""
    ok("POST", "/v1/volumes", {"name": "vmvol", "size_gib": 1})
    wait_for("volume available", lambda: (lambda r: r[0] == 200 and
                                          r[1].get("state") == "available")(
        api("GET", "/v1/volumes/vmvol")))
    i = create_vm("vm-vol", volumes=["vmvol"])
    i = wait_state(i["id"], "running")
    wait_log(i["id"], "YT PROBE ready")
    if "YT PROBE disks=3 nets=1" not in logs(i["id"]):
        raise Failure("console log:\n%s" % logs(i["id"])[-1500:])
    with open(os.path.join(inst_dir(i), "vm.json")) as f:
        disks = json.load(f)["disks"]
    if len(disks) != 3 or not disks[2]["path"].endswith(".img"):
        raise Failure("vm.json disks: %s" % disks)
    delete_and_check(i)
    ok("DELETE", "/v1/volumes/vmvol")


TESTS = [t_bad_input, t_lifecycle, t_ssh_keys_cli, t_console, t_adopt, t_graceful_stop, t_pause,
         t_crash_restart, t_elf_ext4, t_volume, t_build_busybox]


def setup():
    Env.tmp = tempfile.mkdtemp(prefix="yund-vm.")
    os.chmod(Env.tmp, 0o755)  # dnsmasq re-reads its hosts file below the run dir
    Env.root = os.path.join(Env.tmp, "root")
    Env.run = os.path.join(Env.tmp, "run")
    Env.log = os.path.join(Env.tmp, "yund.log")
    start_yund()
    d = make_image_dir("img-bz", Env.args.bzimage)
    ok("POST", "/v1/images", {"name": "guest", "type": "microvm", "import": d})
    Env.img = wait_image("guest")
    if Env.img.get("kernel") != os.path.join(Env.img["path"], "kernel") or \
            Env.img.get("initrd") is not None or not Env.img.get("rootfs", "").endswith(".ext4"):
        raise Failure("image fields: %s" % json.dumps(Env.img))
    ok("POST", "/v1/networks", {"name": "vmnet", "cidr": "10.231.%d.0/24" % (os.getpid() % 200)})
    Env.net = wait_for("network active", lambda: (lambda r: r if r[1].get("state") == "active"
                                                    else None)(api("GET", "/v1/networks/vmnet")))[1]


def teardown():
    try:
        if not Env.proc:
            start_yund()
        for i in ok("GET", "/v1/instances")["items"]:
            api("DELETE", "/v1/instances/" + i["id"])
        wait_for("instances gone", lambda: not ok("GET", "/v1/instances")["items"], 30)
        api("DELETE", "/v1/networks/vmnet")
        wait_for("network gone", lambda: api("GET", "/v1/networks/vmnet")[0] == 404, 30)
        stop_yund()
        with open(Env.log, errors="replace") as f:
            bad = [ln for ln in f if re.search(r"ERROR: (Address|Leak)Sanitizer|runtime error:|"
                                               r"SUMMARY: UndefinedBehavior", ln)]
        if bad:
            raise Failure("sanitizer reports in %s: %s" % (Env.log, bad[0].strip()))
    except Exception as e:  # noqa: BLE001 - report, keep the temp dir
        print("# teardown: %s; kept %s" % (e, Env.tmp))
        return False
    shutil.rmtree(Env.tmp, ignore_errors=True)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yund", required=True)
    ap.add_argument("--yun-ct", required=True)
    ap.add_argument("--yun-vmm", required=True)
    ap.add_argument("--bzimage", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("-k", default="")
    Env.args = ap.parse_args()
    for k in ("yund", "yun_ct", "yun_vmm", "bzimage", "elf"):
        setattr(Env.args, k, os.path.abspath(getattr(Env.args, k)))
    passed = failed = 0
    try:
        setup()
    except Exception as e:  # noqa: BLE001
        print("not ok - setup: %s" % e)
        if Env.proc:
            Env.proc.kill()
        print("0 passed, 1 failed")
        return 1
    for t in TESTS:
        if Env.args.k and Env.args.k not in t.__name__:
            continue
        t0 = time.time()
        try:
            if not Env.proc:
                start_yund()
            t()
            print("ok - %s: %s (%.1fs)" % (t.__name__[2:], t.__doc__.strip(), time.time() - t0))
            passed += 1
        except Exception as e:  # noqa: BLE001
            print("not ok - %s: %s" % (t.__name__[2:], e))
            failed += 1
        sys.stdout.flush()
    if not teardown():
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
