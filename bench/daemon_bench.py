#!/usr/bin/env python3
"""8 concurrent pushes into one `berth --daemon` against `rsync --daemon`.

    bench/daemon_bench.py --berth build-rel/cli/berth [--rounds 4]
                          [--files 100] [--size 262144]
                          [--floor build-rel/bench/bench_floor] [--no-loop]

The same stock client, the same rsyncd.conf (one writable module), a fresh
destination each run; rounds alternate A B A B.  Receiver CPU is the
daemon's user+system time with its reaped children (rsync forks one per
connection); wall is from the first client's start to the last's end.
Prints medians, ranges, the ratios berth/rsync and the load average (the
machine may be shared).  A benchmark, not a test.

As root the source and the destinations live on a fresh journaled ext4 on
a loop device, made as bench/run.py makes its own (--no-loop: in the
temporary directory instead; numbers then depend on that filesystem: one
without a journal makes every create scan recently deleted inodes, which
doubles both receivers' CPU).  --floor also runs bench_floor --jobs N
--tcp on the same files each round: the file-system work any receiver
does for them and the bytes read from loopback TCP connections, without
the protocol, as a share of rsync's CPU.
"""
import argparse
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

CLK = os.sysconf("SC_CLK_TCK")


def cpu_split(pid):
    """(user, system) CPU seconds of @pid with its reaped children."""
    with open(f"/proc/{pid}/stat") as f:
        v = [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
    return (v[0] + v[2]) / CLK, (v[1] + v[3]) / CLK


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def peak_rss_mib(pid):
    """The process's peak resident set (VmHWM), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def start_daemon(binary, base, mod, env=None):
    """Run `binary --daemon --no-detach` with a one-module rsyncd.conf
    (module "m" at @mod, writable, chroot, root) in @base; wait until it
    accepts.  Returns (process, port).  @env: its environment (None:
    ours)."""
    p = port()
    conf = os.path.join(base, "rsyncd.conf")
    # As root: chroot and root's ids; otherwise the caller's own.
    who = ("use chroot = yes\nuid = root\ngid = root\n" if os.geteuid() == 0
           else "use chroot = no\n")
    with open(conf, "w") as f:
        f.write(f"port = {p}\n{who}[m]\npath = {mod}\nread only = no\n")
    d = subprocess.Popen([binary, "--daemon", "--no-detach",
                          f"--config={conf}"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", p), 1).close()
            break
        except OSError:
            time.sleep(0.05)
    return d, p


def run(kind, binary, src, work, n, warm):
    base = os.path.join(work, kind)
    mod = os.path.join(base, "mod")
    shutil.rmtree(base, ignore_errors=True)
    os.sync()  # the last round's writeback is not this round's
    os.makedirs(mod)
    d, p = start_daemon(binary, base, mod)
    if warm:
        # One small push first, not timed: a daemon serves push after
        # push, and what its first connection starts (berth's worker
        # process for the module's uid/gid) is paid once, not per push.
        subprocess.run(["rsync", "-a", os.path.join(src, "f0"),
                        f"rsync://127.0.0.1:{p}/m/warm/"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c0 = cpu_split(d.pid)
    rcs = [None] * n

    def one(i):
        rcs[i] = subprocess.run(["rsync", "-a", src + "/",
                                 f"rsync://127.0.0.1:{p}/m/c{i}/"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.time() - t0
    time.sleep(0.3)  # rsync's parent reaps its children
    c1 = cpu_split(d.pid)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the clients
    clients = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    d.terminate()
    d.wait()
    if any(rcs):
        raise SystemExit(f"{kind}: client exits {rcs}")
    return sum(c1) - sum(c0), wall, c1[1] - c0[1], clients


def run_floor(floor, src, work, clients):
    """bench_floor --jobs N --tcp from src into a fresh directory: (CPU,
    wall)."""
    dst = os.path.join(work, "floor")
    shutil.rmtree(dst, ignore_errors=True)
    os.sync()
    out = subprocess.run([floor, "--jobs", str(clients), "--tcp", src, dst],
                         check=True, capture_output=True, text=True).stdout
    user, _, sys_, _, wall = out.split()[1:6]
    shutil.rmtree(dst, ignore_errors=True)
    return float(user) + float(sys_), float(wall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--size", type=int, default=256 * 1024)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--cold", action="store_true",
                    help="time each daemon's first pushes (no warm-up)")
    ap.add_argument("--floor", help="the bench_floor binary: its CPU and "
                    "wall on the same files each round")
    ap.add_argument("--no-loop", action="store_true",
                    help="no loop filesystem (as root one is made)")
    a = ap.parse_args()
    fs = None
    if not a.no_loop and os.geteuid() == 0:
        import run as bench_run  # bench/run.py, beside this file
        fs = bench_run.Scratch(tempfile.mkdtemp(prefix="berth-dbench-fs-"),
                               1 << 30, True)
    work = tempfile.mkdtemp(prefix="berth-dbench-",
                            dir=fs.mnt if fs else None)
    src = os.path.join(work, "src")
    os.makedirs(src)
    rng = random.Random(1)
    for i in range(a.files):
        with open(os.path.join(src, f"f{i}"), "wb") as f:
            f.write(rng.randbytes(a.size))
    res = {"rsync": [], "berth": []}
    floor = []
    load = [os.getloadavg()[0]]
    try:
        for r in range(a.rounds):
            for kind, b in (("rsync", "rsync"), ("berth", a.berth)):
                res[kind].append(run(kind, b, src, work, a.clients,
                                     not a.cold))
                load.append(os.getloadavg()[0])
            if a.floor:
                floor.append(run_floor(a.floor, src, work, a.clients))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if fs:
            fs.close(False)
            shutil.rmtree(fs.base, ignore_errors=True)
    mb = a.files * a.size * a.clients / 1e6
    print(f"{a.clients} concurrent pushes of {a.files} x {a.size} B "
          f"({mb:.0f} MB in all), {a.rounds} rounds A B A B")
    print("destination: " + (fs.desc if fs else
                             "plain directory " + os.path.dirname(work)))
    med = {}
    for kind in ("rsync", "berth"):
        cpus = [x[0] for x in res[kind]]
        walls = [x[1] for x in res[kind]]
        syss = [x[2] for x in res[kind]]
        clis = [x[3] for x in res[kind]]
        med[kind] = (statistics.median(cpus), statistics.median(walls))
        print(f"{kind:6s} receiver CPU median {med[kind][0]:.2f} s "
              f"[{min(cpus):.2f}-{max(cpus):.2f}] (system "
              f"{statistics.median(syss):.2f} s)  wall median "
              f"{med[kind][1]:.2f} s [{min(walls):.2f}-{max(walls):.2f}]  "
              f"clients' CPU median {statistics.median(clis):.2f} s")
    print(f"ratio berth/rsync: CPU {med['berth'][0] / med['rsync'][0]:.2f}"
          f"  wall {med['berth'][1] / med['rsync'][1]:.2f}")
    if floor:
        fc = [x[0] for x in floor]
        fw = [x[1] for x in floor]
        print(f"floor  bench_floor --jobs {a.clients} --tcp CPU median "
              f"{statistics.median(fc):.2f} s [{min(fc):.2f}-{max(fc):.2f}]"
              f"  wall median {statistics.median(fw):.2f} s; of rsync's: "
              f"CPU {statistics.median(fc) / med['rsync'][0]:.2f}  wall "
              f"{statistics.median(fw) / med['rsync'][1]:.2f}")
    print(f"load average (1 min) during the runs: "
          f"{min(load):.2f}-{max(load):.2f} (shared machine)")


if __name__ == "__main__":
    main()
