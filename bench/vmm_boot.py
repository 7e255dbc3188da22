#!/usr/bin/env python3
"""vmm_boot.py - yun-vmm start-up, exit and memory overhead, with QEMU as anchor.

Boots the project's test guest (tests/guest/) in yun-vmm and in QEMU microvm,
N times each, interleaved so both share the machine's noise, and reports
medians (p10/p90) and the ratio yun/QEMU of:

  first_kvm_run   exec() of the VMM -> its first KVM_RUN ioctl, from kernel
                  tracepoints (tracefs); the closest observable point to the
                  guest's first instruction (kvm_entry does not fire on PVM)
  first_com1_init exec() -> the guest's first COM1 register write (its UART
                  set-up; kvm_pio tracepoint)
  first_com1_char exec() -> the guest writes its first character ("Y")
  serial_latency  that write -> the byte arriving on our stdout pipe
  first_byte      spawn -> first byte of guest serial output on our pipe
  exit_poweroff   spawn -> process exit after ACPI power-off (status 0)
  exit_cmdline    spawn -> process exit through the debug-exit port (33)
  cpu_poweroff    user+sys CPU time of the VMM process (rusage), power-off run
  overhead_rss    VMM RSS minus the RSS of the guest RAM mapping, sampled
                  from /proc/PID/smaps while the guest idles ("serial" case)

Writes bench/results/vmm_boot-<date>.json and prints a table. Python 3
standard library only; run as root for the tracefs metrics (otherwise they
are skipped). See docs/benchmarks.md.
"""

import argparse
import datetime
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KVM_RUN = 0xAE80
COM1_BASE = 0x3F8  # COM1's registers are 0x3f8-0x3ff; 0x3f8 is THR (or DLL)
FIRST_CHAR = ord("Y")  # every line of the test guest starts with "YT "
EXIT_PASS = 33  # the guest's debug-exit pass value 0x10 -> (0x10 << 1) | 1

# case -> expected exit status and the serial line that proves it worked
CASES = {
    "poweroff": (0, b"YT POWEROFF"),
    "cmdline": (EXIT_PASS, b"YT PASS cmdline"),
    "serial": (EXIT_PASS, b"YT PASS serial"),
}

SERIAL_INPUT = b"hello\n"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()


# ---------------------------------------------------------------- tracefs


class Tracer:
    """A private tracefs instance recording a few events of one process.

    The trace clock is "mono", the same clock as time.monotonic_ns(), so the
    kernel's timestamps and ours share one time line.
    """

    # exec, KVM_RUN entries and the guest's writes to COM1
    FIRSTS = [
        ("sched/sched_process_exec", None),
        ("syscalls/sys_enter_ioctl", "cmd == %d" % KVM_RUN),
        ("kvm/kvm_pio", "rw == 1 && port >= %d && port <= %d" % (COM1_BASE, COM1_BASE + 7)),
    ]
    # every ioctl, entry and exit, for the start-up breakdown
    IOCTLS = [
        ("sched/sched_process_exec", None),
        ("syscalls/sys_enter_ioctl", None),
        ("syscalls/sys_exit_ioctl", None),
    ]

    LINE = re.compile(
        r"^\s*(?P<comm>.+?)-(?P<tid>\d+)\s+\(\s*(?P<tgid>[\d-]+)\)\s+\[\d+\]\s+\S+\s+"
        r"(?P<ts>\d+\.\d+):\s+(?P<ev>[a-z_0-9]+)(?P<sep>[:(]|\s+->)\s*(?P<rest>.*)$"
    )

    def __init__(self, events, tag):
        self.events = events
        self.root = None
        for cand in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
            if os.path.exists(os.path.join(cand, "instances")):
                self.root = cand
                break
        if self.root is None and os.geteuid() == 0:
            # tracefs is not mounted on a fresh machine; mounting it is harmless.
            subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"],
                           stderr=subprocess.DEVNULL, check=False)
            if os.path.exists("/sys/kernel/tracing/instances"):
                self.root = "/sys/kernel/tracing"
        if self.root is None:
            raise OSError("tracefs not available (need root)")
        self.dir = os.path.join(self.root, "instances",
                                "yun-vmm-boot-%d-%s" % (os.getpid(), tag))
        os.mkdir(self.dir)
        try:
            self._write("trace_clock", "mono")
            self._write("buffer_size_kb", "8192")
            self._write("options/record-tgid", "1")
            for ev, flt in self.events:
                if flt:
                    self._write("events/%s/filter" % ev, flt)
                self._write("events/%s/enable" % ev, "1")
            self._write("tracing_on", "0")
        except OSError:
            self.close()
            raise

    def _write(self, name, value):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(value)

    def start(self):
        self._write("trace", "")  # truncating clears the buffer
        self._write("tracing_on", "1")

    def stop(self, pid):
        """Stop recording; return pid's events as (ns, tid, event, text)."""
        self._write("tracing_on", "0")
        out = []
        with open(os.path.join(self.dir, "trace")) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                m = self.LINE.match(line)
                if not m:
                    continue
                ev, rest = m.group("ev"), m.group("rest")
                if "->" in m.group("sep"):
                    ev += "_exit"  # "sys_ioctl -> 0x0": a syscall's return
                if ev == "sched_process_exec":
                    if not re.search(r"\bpid=%d\b" % pid, rest):
                        continue
                elif m.group("tgid") != str(pid):
                    continue
                ts = int(round(float(m.group("ts")) * 1e9))
                out.append((ts, int(m.group("tid")), ev, rest))
        return out

    def close(self):
        try:
            self._write("tracing_on", "0")
            for ev, _ in self.events:
                self._write("events/%s/enable" % ev, "0")
        except OSError:
            pass
        try:
            os.rmdir(self.dir)
        except OSError as e:
            log("vmm_boot: cannot remove trace instance %s: %s" % (self.dir, e))


PIO = re.compile(r"pio_write at 0x(?P<port>[0-9a-f]+) .*val 0x(?P<val>[0-9a-f]+)")


def first_events(events):
    """First timestamps from Tracer.FIRSTS: exec, KVM_RUN, com1_init (the
    guest's first COM1 register write: its UART set-up) and com1_char (the
    first "Y" written to THR: the guest's first output character)."""
    first = {}
    for ts, _, ev, rest in events:
        keys = []
        if ev == "sched_process_exec":
            keys = ["exec"]
        elif ev == "sys_ioctl" and ioctl_cmd(rest) == KVM_RUN:
            keys = ["kvm_run"]
        elif ev == "kvm_pio":
            keys = ["com1_init"]
            m = PIO.search(rest)
            if m and int(m.group("port"), 16) == COM1_BASE and \
                    int(m.group("val"), 16) == FIRST_CHAR:
                keys.append("com1_char")
        for key in keys:
            first.setdefault(key, ts)
    return first


KVM_IOCTLS = {
    0x4004ae8b: "KVM_SET_SIGNAL_MASK",
    0x4004ae99: "KVM_SET_MP_STATE",
    0x4008ae48: "KVM_SET_IDENTITY_MAP_ADDR",
    0x4008ae61: "KVM_IRQ_LINE",
    0x4008ae6a: "KVM_SET_GSI_ROUTING",
    0x4008ae89: "KVM_SET_MSRS",
    0x4008ae90: "KVM_SET_CPUID2",
    0x4008ae9c: "KVM_X86_SETUP_MCE",
    0x4010ae42: "KVM_GET_DIRTY_LOG",
    0x4020ae46: "KVM_SET_USER_MEMORY_REGION",
    0x4020ae76: "KVM_IRQFD",
    0x4020aea5: "KVM_SIGNAL_MSI",
    0x4030ae7b: "KVM_SET_CLOCK",
    0x4040ae77: "KVM_CREATE_PIT2",
    0x4040ae79: "KVM_IOEVENTFD",
    0x4040aea0: "KVM_SET_VCPU_EVENTS",
    0x4048ae9b: "KVM_SET_GUEST_DEBUG",
    0x4068aea3: "KVM_ENABLE_CAP",
    0x4070aea0: "KVM_SET_PIT2",
    0x4080aea2: "KVM_SET_DEBUGREGS",
    0x4080aebf: "KVM_SET_NESTED_STATE",
    0x4090ae82: "KVM_SET_REGS",
    0x4138ae84: "KVM_SET_SREGS",
    0x4188aea7: "KVM_SET_XCRS",
    0x41a0ae8d: "KVM_SET_FPU",
    0x4400ae8f: "KVM_SET_LAPIC",
    0x5000aea5: "KVM_SET_XSAVE",
    0x8004ae98: "KVM_GET_MP_STATE",
    0x8008ae9d: "KVM_X86_GET_MCE_CAP_SUPPORTED",
    0x8030ae7c: "KVM_GET_CLOCK",
    0x8040ae9f: "KVM_GET_VCPU_EVENTS",
    0x8070ae9f: "KVM_GET_PIT2",
    0x8080aea1: "KVM_GET_DEBUGREGS",
    0x8090ae81: "KVM_GET_REGS",
    0x8138ae83: "KVM_GET_SREGS",
    0x8188aea6: "KVM_GET_XCRS",
    0x81a0ae8c: "KVM_GET_FPU",
    0x8208ae63: "KVM_SET_IRQCHIP",
    0x8400ae8e: "KVM_GET_LAPIC",
    0x9000aea4: "KVM_GET_XSAVE",
    0x9000aecf: "KVM_GET_XSAVE2",
    0xae00: "KVM_GET_API_VERSION",
    0xae01: "KVM_CREATE_VM",
    0xae03: "KVM_CHECK_EXTENSION",
    0xae04: "KVM_GET_VCPU_MMAP_SIZE",
    0xae41: "KVM_CREATE_VCPU",
    0xae47: "KVM_SET_TSS_ADDR",
    0xae60: "KVM_CREATE_IRQCHIP",
    0xae78: "KVM_SET_BOOT_CPU_ID",
    0xae80: "KVM_RUN",
    0xaea2: "KVM_SET_TSC_KHZ",
    0xaea3: "KVM_GET_TSC_KHZ",
    0xaead: "KVM_KVMCLOCK_CTRL",
    0xc004ae02: "KVM_GET_MSR_INDEX_LIST",
    0xc004ae0a: "KVM_GET_MSR_FEATURE_INDEX_LIST",
    0xc008ae05: "KVM_GET_SUPPORTED_CPUID",
    0xc008ae67: "KVM_IRQ_LINE_STATUS",
    0xc008ae88: "KVM_GET_MSRS",
    0xc008ae91: "KVM_GET_CPUID2",
    0xc008aec1: "KVM_GET_SUPPORTED_HV_CPUID",
    0xc00caee0: "KVM_CREATE_DEVICE",
    0xc080aebe: "KVM_GET_NESTED_STATE",
    0xc208ae62: "KVM_GET_IRQCHIP",
}

IOCTL_ENTER = re.compile(r"fd: (0x)?[0-9a-f]+, cmd: (0x)?(?P<cmd>[0-9a-f]+)")


def ioctl_cmd(text):
    m = IOCTL_ENTER.search(text)
    return int(m.group("cmd"), 16) & 0xFFFFFFFF if m else None


def ioctl_profile(events):
    """Time spent in each ioctl before the first KVM_RUN, per ioctl name.

    Returns (ms from exec to the first KVM_RUN, {name: [calls, ms]}).
    """
    t_exec = next((ts for ts, _, ev, _ in events if ev == "sched_process_exec"), None)
    open_calls = {}
    prof = {}
    for ts, tid, ev, rest in events:
        if ev == "sys_ioctl":
            cmd = ioctl_cmd(rest)
            if cmd == KVM_RUN:
                return ((ts - t_exec) / 1e6 if t_exec else None), prof
            open_calls[tid] = (ts, cmd)
        elif ev == "sys_ioctl_exit":
            start = open_calls.pop(tid, None)
            if start is None:
                continue
            name = KVM_IOCTLS.get(start[1], "0x%x" % start[1] if start[1] is not None else "?")
            calls, ms = prof.get(name, (0, 0.0))
            prof[name] = (calls + 1, ms + (ts - start[0]) / 1e6)
    return None, prof


# ---------------------------------------------------------------- memory


def parse_kb(line):
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def read_smaps(pid):
    """Mappings of pid as dicts: range, perms, path, and the kB fields."""
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split(None, 5)
            if head and "-" in head[0] and ":" not in head[0]:
                cur = {
                    "range": head[0],
                    "perms": head[1],
                    "path": head[5].strip() if len(head) > 5 else "",
                }
                maps.append(cur)
            elif cur is not None and line.endswith(" kB\n"):
                key = line.split(":", 1)[0]
                cur[key] = parse_kb(line)
    return maps


def read_rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.endswith(" kB\n"):
                out[line.split(":", 1)[0]] = parse_kb(line)
    return out


def read_threads(pid):
    """CPU time of each thread so far, from schedstat (ns, not ticks)."""
    out = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                run_ns = int(f.read().split()[0])
        except OSError:
            continue  # the thread ended meanwhile
        out.append({"tid": int(tid), "comm": comm, "cpu_ms": run_ns / 1e6})
    return out


def read_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return parse_kb(line)
    return None


def sample_memory(pid, guest_mib):
    """Split the VMM's RSS into guest RAM and everything else.

    Guest RAM is the anonymous read-write mapping whose size is the guest's
    memory size (-m / --memory). Whatever else is resident (binary, libraries,
    heap, stacks, firmware and ROM copies, device buffers) is VMM overhead.
    """
    rollup = read_rollup(pid)
    maps = read_smaps(pid)
    want_kb = guest_mib * 1024
    cands = [m for m in maps
             if m.get("Size") == want_kb and m["perms"].startswith("rw")
             and (m["path"] == "" or m["path"].startswith("[anon"))]
    if not cands:  # tolerate an allocator that rounds the mapping up a little
        cands = [m for m in maps
                 if want_kb <= m.get("Size", 0) <= want_kb + 4096
                 and m["perms"].startswith("rw") and m["path"] == ""]
    guest = max(cands, key=lambda m: m.get("Rss", 0)) if cands else None
    total = sum(m.get("Rss", 0) for m in maps)
    g_rss = guest.get("Rss", 0) if guest else 0
    others = [m for m in maps if m is not guest]
    top = sorted(others, key=lambda m: m.get("Rss", 0), reverse=True)[:6]
    return {
        "vm_hwm_kb": read_hwm_kb(pid),
        "threads": read_threads(pid),
        "total_rss_kb": total,
        "rollup_rss_kb": rollup.get("Rss"),
        "guest_mapping": guest["range"] if guest else None,
        "guest_candidates": len(cands),
        "guest_rss_kb": g_rss,
        "guest_anon_huge_kb": guest.get("AnonHugePages", 0) if guest else 0,
        # no guest mapping found: no overhead figure rather than a wrong one
        "overhead_rss_kb": total - g_rss if guest else None,
        "overhead_pss_kb": sum(m.get("Pss", 0) for m in others) if guest else None,
        "overhead_anon_kb": sum(m.get("Anonymous", 0) for m in others) if guest else None,
        "overhead_top": [{"range": m["range"], "path": m["path"] or "[anon]",
                          "rss_kb": m.get("Rss", 0)} for m in top],
    }


# ---------------------------------------------------------------- VMMs


def yun_argv(args, image, case):
    return [args.yun, "--kernel", image, "--cmdline", "yuntest=" + case,
            "--memory", str(args.memory), "--cpus", "1", "--debug-exit",
            "--serial", "stdio"]


def qemu_argv(args, image, case, cpu=None):
    return [args.qemu, "-enable-kvm", "-M", args.qemu_machine,
            "-cpu", cpu or args.qemu_cpu, "-m", str(args.memory), "-smp", "1",
            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
            "-no-reboot", "-device", "isa-debug-exit,iobase=0x501,iosize=2",
            "-kernel", image, "-append", "yuntest=" + case]


def spawn(argv):
    """posix_spawn argv with pipes on stdin/stdout and a file on stderr."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err = tempfile.TemporaryFile()
    acts = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
    t0 = now_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=acts)
    os.close(in_r)
    os.close(out_w)
    return pid, t0, in_w, out_r, err


def run_once(args, vmm, image, case, tracer=None, keep_events=False):
    argv = yun_argv(args, image, case) if vmm == "yun" else qemu_argv(args, image, case)
    want_status, want_line = CASES[case]
    if tracer:
        tracer.start()
    pid, t0, in_w, out_r, err = spawn(argv)
    out = bytearray()
    t_first = t_ready = None
    mem = None
    timed_out = False
    deadline = t0 + int(args.timeout * 1e9)
    poller = select.poll()
    poller.register(out_r, select.POLLIN)
    while True:
        left_ms = (deadline - now_ns()) // 1_000_000
        if left_ms <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        if not poller.poll(left_ms):
            continue
        data = os.read(out_r, 65536)
        t = now_ns()
        if not data:
            break
        if t_first is None:
            t_first = t
        out += data
        if case == "serial" and t_ready is None and re.search(rb"YT READY\r?\n", out):
            t_ready = t
            try:
                mem = sample_memory(pid, args.memory)
            except OSError as e:
                mem = {"error": str(e)}
            os.write(in_w, SERIAL_INPUT)
    _, status, ru = os.wait4(pid, 0)
    t_exit = now_ns()
    os.close(out_r)
    os.close(in_w)
    events = tracer.stop(pid) if tracer else []
    first = first_events(events)
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    err.close()

    code = os.waitstatus_to_exitcode(status)
    ok = not timed_out and code == want_status and want_line in out
    ms = lambda a, b: (b - a) / 1e6 if a is not None and b is not None else None
    r = {
        "vmm": vmm, "image": os.path.basename(image), "case": case, "pid": pid,
        "ok": ok, "status": code, "timed_out": timed_out,
        "first_byte_ms": ms(t0, t_first),
        "exit_ms": ms(t0, t_exit),
        "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000.0,
        "user_ms": ru.ru_utime * 1000.0,
        "sys_ms": ru.ru_stime * 1000.0,
        "spawn_to_exec_ms": ms(t0, first.get("exec")),
        "first_kvm_run_ms": ms(first.get("exec"), first.get("kvm_run")),
        "first_com1_init_ms": ms(first.get("exec"), first.get("com1_init")),
        "first_com1_char_ms": ms(first.get("exec"), first.get("com1_char")),
        "kvm_run_to_com1_init_ms": ms(first.get("kvm_run"), first.get("com1_init")),
        "com1_char_to_first_byte_ms": ms(first.get("com1_char"), t_first),
    }
    if mem is not None:
        r["memory"] = mem
    if keep_events:
        r["events"] = events
    if not ok:
        r["output_tail"] = out[-400:].decode(errors="replace")
        r["stderr_tail"] = stderr[-400:]
    return r


def qemu_pick_cpu(args, image):
    """The first -cpu model this host's KVM accepts (PVM refuses some MSRs)."""
    for cpu in args.qemu_cpu_candidates:
        p = subprocess.run(qemu_argv(args, image, "cmdline", cpu), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, check=False)
        if p.returncode == EXIT_PASS:
            return cpu
        log("vmm_boot: qemu -cpu %s: status %d: %s" % (cpu, p.returncode,
                                                      p.stderr.decode(errors="replace")
                                                      .strip().splitlines()[:1]))
    raise SystemExit("vmm_boot: no -cpu model works with QEMU here")


# ---------------------------------------------------------------- strace


def strace_first_kvm_run(args, vmm, image, runs):
    """exec -> first KVM_RUN as strace -f -ttt sees it (inflated by ptrace)."""
    if not shutil.which("strace"):
        return None
    vals = []
    for _ in range(runs):
        with tempfile.NamedTemporaryFile(prefix="vmm_boot-strace-") as tf:
            argv = yun_argv(args, image, "cmdline") if vmm == "yun" else \
                qemu_argv(args, image, "cmdline")
            subprocess.run(["strace", "-f", "-ttt", "-e", "trace=execve,ioctl", "-o", tf.name,
                            "--"] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120, check=False)
            t_exec = t_run = None
            for line in open(tf.name):
                f = line.split(None, 2)
                if len(f) < 3:
                    continue
                if t_exec is None and f[2].startswith("execve(") and "= 0" in f[2]:
                    t_exec = float(f[1])
                elif t_run is None and "KVM_RUN" in f[2]:
                    t_run = float(f[1])
                    break
            if t_exec is not None and t_run is not None:
                vals.append((t_run - t_exec) * 1000.0)
    return vals


def ioctl_breakdown(args, vmm, image, runs):
    """Where exec -> first KVM_RUN goes: wall time inside each ioctl."""
    try:
        tracer = Tracer(Tracer.IOCTLS, "ioctl")
    except OSError as e:
        return {"error": str(e)}
    per_run = []
    try:
        for _ in range(runs):
            r = run_once(args, vmm, image, "cmdline", tracer, keep_events=True)
            if r["ok"]:
                per_run.append(ioctl_profile(r["events"]))
    finally:
        tracer.close()
    names = sorted({n for _, prof in per_run for n in prof})
    table = {}
    for n in names:
        table[n] = {
            "calls": statistics.median([prof.get(n, (0, 0))[0] for _, prof in per_run]),
            "median_ms": statistics.median([prof.get(n, (0, 0.0))[1] for _, prof in per_run]),
        }
    totals = [sum(ms for _, ms in prof.values()) for _, prof in per_run]
    return {
        "image": os.path.basename(image), "runs": len(per_run),
        "exec_to_first_kvm_run": stats([t for t, _ in per_run]),
        "in_ioctls_ms": stats(totals),
        "ioctls": dict(sorted(table.items(), key=lambda kv: -kv[1]["median_ms"])),
    }


# ---------------------------------------------------------------- statistics


def stats(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    if len(vals) == 1:
        return {"n": 1, "median": vals[0], "p10": vals[0], "p90": vals[0],
                "min": vals[0], "max": vals[0]}
    q = statistics.quantiles(vals, n=10, method="inclusive")
    return {"n": len(vals), "median": statistics.median(vals), "p10": q[0], "p90": q[8],
            "min": vals[0], "max": vals[-1]}


# metric name -> (cases it is taken from, how to get it from a run, unit, label)
METRICS = [
    ("spawn_to_exec", ("poweroff", "cmdline", "serial"), lambda r: r["spawn_to_exec_ms"],
     "ms", "spawn -> exec (posix_spawn)"),
    ("first_kvm_run", ("poweroff", "cmdline", "serial"), lambda r: r["first_kvm_run_ms"],
     "ms", "exec -> first KVM_RUN (tracefs)"),
    ("first_com1_init", ("poweroff", "cmdline", "serial"), lambda r: r["first_com1_init_ms"],
     "ms", "exec -> guest's first COM1 access"),
    ("first_com1_char", ("poweroff", "cmdline", "serial"), lambda r: r["first_com1_char_ms"],
     "ms", "exec -> guest writes its 1st char"),
    ("serial_latency", ("poweroff", "cmdline", "serial"),
     lambda r: r["com1_char_to_first_byte_ms"],
     "ms", "  that char -> our pipe (VMM latency)"),
    ("first_byte", ("poweroff", "cmdline", "serial"), lambda r: r["first_byte_ms"],
     "ms", "spawn -> first serial byte on stdout"),
    ("exit_poweroff", ("poweroff",), lambda r: r["exit_ms"],
     "ms", "spawn -> exit, ACPI power-off"),
    ("exit_cmdline", ("cmdline",), lambda r: r["exit_ms"],
     "ms", "spawn -> exit, debug-exit (cmdline)"),
    ("cpu_poweroff", ("poweroff",), lambda r: r["cpu_ms"],
     "ms", "CPU user+sys, power-off run"),
    ("main_thread_cpu", ("serial",),
     lambda r: next((t["cpu_ms"] for t in r.get("memory", {}).get("threads", [])
                     if t["tid"] == r["pid"]), None),
     "ms", "main-thread CPU at YT READY"),
    ("overhead_rss", ("serial",), lambda r: r.get("memory", {}).get("overhead_rss_kb"),
     "KiB", "VMM overhead RSS (total - guest RAM)"),
    ("overhead_pss", ("serial",), lambda r: r.get("memory", {}).get("overhead_pss_kb"),
     "KiB", "VMM overhead PSS"),
    ("overhead_anon", ("serial",), lambda r: r.get("memory", {}).get("overhead_anon_kb"),
     "KiB", "VMM overhead anonymous (private)"),
    ("total_rss", ("serial",), lambda r: r.get("memory", {}).get("total_rss_kb"),
     "KiB", "total RSS"),
    ("peak_rss", ("serial",), lambda r: r.get("memory", {}).get("vm_hwm_kb"),
     "KiB", "peak RSS so far (VmHWM)"),
    ("guest_rss", ("serial",), lambda r: r.get("memory", {}).get("guest_rss_kb"),
     "KiB", "guest RAM RSS (pages touched)"),
]


def summarize(runs, images):
    out = {}
    for img in images:
        name = os.path.basename(img)
        out[name] = {}
        for metric, cases, get, unit, label in METRICS:
            row = {"unit": unit, "label": label, "cases": list(cases)}
            for vmm in ("yun", "qemu"):
                row[vmm] = stats([get(r) for r in runs
                                  if r["ok"] and r["vmm"] == vmm and r["image"] == name
                                  and r["case"] in cases])
            if row["yun"] and row["qemu"] and row["qemu"]["median"]:
                row["ratio"] = row["yun"]["median"] / row["qemu"]["median"]
            else:
                row["ratio"] = None
            out[name][metric] = row
    return out


def fmt(s, unit):
    if not s:
        return "n/a"
    if unit == "KiB":
        return "%.2f MiB (%.2f-%.2f)" % (s["median"] / 1024, s["p10"] / 1024, s["p90"] / 1024)
    return "%.2f ms (%.2f-%.2f)" % (s["median"], s["p10"], s["p90"])


def print_table(summary, n):
    for img, rows in summary.items():
        print()
        print("%s  (median, p10-p90; N=%d per case)" % (img, n))
        print("%-40s %-26s %-26s %s" % ("metric", "yun-vmm", "qemu microvm", "yun/qemu"))
        for metric, row in rows.items():
            ratio = "%.3f" % row["ratio"] if row["ratio"] is not None else "n/a"
            print("%-40s %-26s %-26s %s" % (row["label"], fmt(row["yun"], row["unit"]),
                                            fmt(row["qemu"], row["unit"]), ratio))


# ---------------------------------------------------------------- main


def git_rev():
    try:
        return subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def default_build():
    env = os.environ.get("YUN_BUILD_DIR")
    if env:
        return env
    for b in ("build-bench", "build"):
        if os.path.exists(os.path.join(REPO, b, "src/vmm/yun-vmm")):
            return os.path.join(REPO, b)
    return os.path.join(REPO, "build")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=20, help="runs per VMM, image and case")
    ap.add_argument("--warmup", type=int, default=2, help="discarded rounds first")
    ap.add_argument("--build", default=default_build(),
                    help="meson build dir (default: $YUN_BUILD_DIR, build-bench, build)")
    ap.add_argument("--images", default="bzImage,elf",
                    help="comma list of test-guest images: bzImage, elf")
    ap.add_argument("--cases", default="poweroff,cmdline,serial")
    ap.add_argument("--memory", type=int, default=256, help="guest MiB for both VMMs")
    ap.add_argument("--qemu", default=shutil.which("qemu-system-x86_64") or "qemu-system-x86_64")
    ap.add_argument("--qemu-machine", default="microvm,x-option-roms=off")
    ap.add_argument("--qemu-cpu", default=None,
                    help="QEMU -cpu (default: first of host, host,-arch-capabilities, max "
                         "that boots)")
    ap.add_argument("--strace-runs", type=int, default=3,
                    help="extra runs under strace for exec -> first KVM_RUN (0: none)")
    ap.add_argument("--breakdown-runs", type=int, default=5,
                    help="extra traced runs splitting exec -> first KVM_RUN by ioctl (0: none)")
    ap.add_argument("--no-trace", action="store_true", help="skip the tracefs metrics")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per run")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/...)")
    args = ap.parse_args()

    args.yun = os.path.join(args.build, "src/vmm/yun-vmm")
    images = []
    for name in args.images.split(","):
        img = os.path.join(args.build, "tests/guest/yun-test-guest." + name.strip())
        if not os.path.exists(img):
            raise SystemExit("vmm_boot: %s missing (ninja -C %s)" % (img, args.build))
        images.append(img)
    for path in (args.yun, args.qemu):
        if not os.access(path, os.X_OK):
            raise SystemExit("vmm_boot: %s is not executable" % path)
    cases = [c.strip() for c in args.cases.split(",")]
    for c in cases:
        if c not in CASES:
            raise SystemExit("vmm_boot: unknown case %s" % c)

    args.qemu_cpu_candidates = [args.qemu_cpu] if args.qemu_cpu else \
        ["host", "host,-arch-capabilities", "max"]
    args.qemu_cpu = qemu_pick_cpu(args, images[0])
    log("vmm_boot: qemu -cpu %s -M %s" % (args.qemu_cpu, args.qemu_machine))

    tracer = None
    trace_note = None
    if not args.no_trace:
        try:
            tracer = Tracer(Tracer.FIRSTS, "first")
        except OSError as e:
            trace_note = "tracefs unavailable: %s" % e
            log("vmm_boot: " + trace_note)

    load_before = os.getloadavg()
    started = datetime.datetime.now()
    runs = []
    failures = 0
    try:
        total = args.warmup + args.runs
        for i in range(total):
            for ci, case in enumerate(cases):
                for ii, img in enumerate(images):
                    # alternate who goes first so neither always runs on a
                    # cache or CPU the other has just warmed
                    order = ("yun", "qemu") if (i + ci + ii) % 2 == 0 else ("qemu", "yun")
                    for vmm in order:
                        r = run_once(args, vmm, img, case, tracer)
                        r["round"] = i
                        r["warmup"] = i < args.warmup
                        if not r["ok"]:
                            failures += 1
                            log("vmm_boot: FAILED %s %s %s: status %s %s" % (
                                vmm, r["image"], case, r["status"],
                                r.get("stderr_tail", "").strip()[-200:]))
                        runs.append(r)
            log("vmm_boot: round %d/%d done" % (i + 1, total))
    finally:
        if tracer:
            tracer.close()
    load_after = os.getloadavg()

    measured = [r for r in runs if not r["warmup"]]
    summary = summarize(measured, images)

    strace = {}
    if args.strace_runs > 0:
        for vmm in ("yun", "qemu"):
            vals = strace_first_kvm_run(args, vmm, images[0], args.strace_runs)
            strace[vmm] = {"image": os.path.basename(images[0]), "values_ms": vals,
                           "stats": stats(vals or [])}

    breakdown = {}
    if tracer is not None and args.breakdown_runs > 0:
        for vmm in ("yun", "qemu"):
            breakdown[vmm] = ioctl_breakdown(args, vmm, images[0], args.breakdown_runs)

    first = os.path.basename(images[0])
    yk = summary[first]["first_kvm_run"]["yun"]
    yo = summary[first]["overhead_rss"]["yun"]
    targets = {
        "first_instruction_le_5ms": {
            "metric": "first_kvm_run (exec -> first KVM_RUN), " + first,
            "median_ms": yk["median"] if yk else None,
            "met": (yk["median"] <= 5.0) if yk else None,
        },
        "overhead_le_3mib": {
            "metric": "overhead_rss, " + first,
            "median_mib": yo["median"] / 1024 if yo else None,
            "met": (yo["median"] <= 3 * 1024) if yo else None,
        },
    }

    result = {
        "benchmark": "vmm_boot",
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "host": {
            "kernel": platform.release(),
            "nproc": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "qemu_version": subprocess.run([args.qemu, "--version"], capture_output=True,
                                           text=True).stdout.splitlines()[0],
            "yun_git": git_rev(),
            "yun_binary": os.path.relpath(args.yun, REPO),
        },
        "config": {
            "runs": args.runs, "warmup": args.warmup, "memory_mib": args.memory,
            "images": [os.path.basename(i) for i in images], "cases": cases,
            "yun_argv": yun_argv(args, "IMAGE", "CASE"),
            "qemu_argv": qemu_argv(args, "IMAGE", "CASE"),
            "tracefs": tracer is not None, "trace_note": trace_note,
        },
        "failures": failures,
        "summary": summary,
        "targets": targets,
        "strace_first_kvm_run": strace,
        "ioctl_breakdown": breakdown,
        "runs": runs,
    }
    out = args.out
    if not out:
        os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
        out = os.path.join(REPO, "bench/results",
                           "vmm_boot-%s.json" % started.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)

    print("vmm_boot: yun-vmm %s vs %s; -m %d; load %.2f -> %.2f" % (
        result["host"]["yun_git"], result["host"]["qemu_version"], args.memory,
        load_before[0], load_after[0]))
    print_table(summary, args.runs)
    if strace:
        print()
        for vmm, s in strace.items():
            st = s["stats"]
            print("strace -f exec -> first KVM_RUN, %s (%s, %d runs): %s" % (
                vmm, s["image"], len(s["values_ms"] or []),
                "median %.2f ms (min %.2f, max %.2f)" % (st["median"], st["min"], st["max"])
                if st else "n/a"))
    for vmm, b in breakdown.items():
        if "error" in b or not b.get("exec_to_first_kvm_run"):
            continue
        print()
        print("exec -> first KVM_RUN, %s (%s, %d traced runs): median %.2f ms, of which "
              "%.2f ms inside ioctls:" % (vmm, b["image"], b["runs"],
                                          b["exec_to_first_kvm_run"]["median"],
                                          b["in_ioctls_ms"]["median"]))
        for name, row in list(b["ioctls"].items())[:6]:
            print("  %-30s %5.1f calls %7.2f ms" % (name, row["calls"], row["median_ms"]))
    print()
    for name, t in targets.items():
        met = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        val = t.get("median_ms", t.get("median_mib"))
        print("target %-26s %-8s (%s: %s)" % (name, met, t["metric"],
                                               "%.2f" % val if val is not None else "n/a"))
    print("failed runs: %d; results: %s" % (failures, os.path.relpath(out, REPO)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
