#!/usr/bin/env python3
"""berth against rsync: the stock rsync client pushes the same workload into
`rsync --server` (A) and into `berth --server` (B), alternating A B, B A,
A B, ... (each pair in the other order from the last: pair_order()) on the
same prepared destination state.

    run.py --berth PATH [--workloads W1,W3] [--pairs N] [--quick]
           [--scratch DIR] [--no-loop] [--no-limits] [--markdown FILE]
           [--profile stat|record|strace] [--json FILE] [--keep]

Every push is

    rsync -a [workload options] -e RSH --rsync-path=WRAPPER SRC/ localhost:DST/

where RSH (tests/interop/rsh) runs the "remote" command locally and WRAPPER
runs the receiver under /usr/bin/time, which records its user+sys CPU time
and peak RSS (ru_maxrss: for rsync, whose receiver forks, the larger of its
two processes, not their sum).  Wall time is the client's whole push.

Destinations live on a freshly made, journaled ext4 filesystem on a loop
device (needs root; --no-loop or a non-root user falls back to a plain
directory under --scratch and says so).  Before each push: the destination
is reset to the workload's starting state, everything is synced, and a
couple of GiB of memory is touched.  After each push the destination is
verified with `rsync -aHnic --delete SRC/ DST/`, which must print nothing;
any difference or failed push makes the run exit 1.  Missed speed targets
are reported, not fatal.

Sources are generated deterministically under --scratch and reused while
their parameters are unchanged.

C8 and C8F (concurrent): 8 clients push at once, A into 8 `rsync --server`
through the same wrapper, B into one `berth --daemon` over rsync://
(bench/daemon_bench.py starts it); C8F adds --fsync.  Wall until the last
client ends; CPU of all receiver processes (berth: /proc, every thread).
"""
import argparse
import datetime
import fcntl
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RSH = os.path.join(ROOT, "tests", "interop", "rsh")
BASE_MTIME = 1700000000
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# Sizes per scale.  "full" aims at 1-10 s per push on a small machine;
# "quick" is a smoke run of a few seconds in all.
SCALES = {
    "full": dict(w1_files=20000, w1_dirs=400, big=1 * GIB,
                 w4_files=100000, w4_dirs=1000, w5_files=10000,
                 w5_dirs=100, image=6 * GIB, touch=2 * GIB,
                 limit_bytes=1 * GIB),
    "quick": dict(w1_files=300, w1_dirs=12, big=8 * MIB,
                  w4_files=600, w4_dirs=20, w5_files=100, w5_dirs=4,
                  image=512 * MIB, touch=32 * MIB, limit_bytes=32 * MIB),
}

# Targets (issue 20): upper bounds on the median per-pair ratio berth/rsync.
# W6 is W3 with zstd (issue 20's W6A), W6B W3 with zlib.
TARGETS = {
    "W1": dict(cpu=0.5, wall=0.6, rss=1.0),
    "W2": dict(cpu=0.5, wall=0.8, rss=1.0),
    "W3": dict(cpu=0.6, wall=0.7, rss=1.0),
    "W4": dict(cpu=0.6, rss=1.0),
    "W5": dict(cpu=0.7, wall=0.2, rss=1.0),
    "W6": dict(cpu=0.6, rss=1.0),
    "W6B": dict(cpu=0.8, rss=1.0),
}


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    """Run a command, fail loudly with its output if it fails."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    except OSError as e:
        raise SystemExit("bench: %s: %s" % (cmd[0], e))
    if p.returncode != 0:
        raise SystemExit("bench: %s failed (exit %d):\n%s%s" %
                         (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


# ------------------------------------------------------------ generators

def rand_bytes(rng, n):
    return rng.randbytes(n)


def make_tree(root, nfiles, ndirs, lo, hi, seed):
    """nfiles regular files of lo..hi bytes of random data spread over
    ndirs directories two levels deep; fixed modes and mtimes."""
    rng = random.Random(seed)
    top = max(1, int(ndirs ** 0.5))
    dirs = []
    for i in range(ndirs):
        d = os.path.join(root, "d%03d" % (i % top), "e%03d" % (i // top))
        os.makedirs(d, exist_ok=True)
        dirs.append(d)
    for i in range(nfiles):
        path = os.path.join(dirs[i % ndirs], "f%06d.dat" % i)
        with open(path, "wb") as f:
            f.write(rand_bytes(rng, rng.randint(lo, hi)))
        t = (BASE_MTIME + i) * 10**9
        os.utime(path, ns=(t, t))
    pin_dir_mtimes(root)


def pin_dir_mtimes(root):
    t = (BASE_MTIME * 10**9, BASE_MTIME * 10**9)
    for d, _, _ in sorted(os.walk(root), key=lambda x: -x[0].count("/")):
        os.utime(d, ns=t)


def make_big(path, size, seed, mtime):
    """size bytes of incompressible data."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MIB)
            f.write(rand_bytes(rng, n))
            left -= n
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


def make_mutant(basis, path, size, seed, mtime):
    """A copy of basis with ~1% of it rewritten in scattered regions, plus
    insertions of 1..4096 bytes that shift everything after them."""
    rng = random.Random(seed)
    nreg = max(4, size // (5 * MIB))
    per = max(1, size // 100 // nreg)
    edits = [(rng.randrange(size - per), "chg", per) for _ in range(nreg)]
    edits += [(rng.randrange(size), "ins", rng.randint(1, 4096))
              for _ in range(max(2, nreg // 4))]
    edits.sort()
    pos = 0
    with open(basis, "rb") as fi, open(path, "wb") as fo:

        def copy_to(end):
            nonlocal pos
            while pos < end:
                buf = fi.read(min(MIB, end - pos))
                fo.write(buf)
                pos += len(buf)

        for off, kind, n in edits:
            copy_to(max(off, pos))
            if kind == "ins":
                fo.write(rand_bytes(rng, n))
            else:
                n = min(n, size - pos)
                fo.write(rand_bytes(rng, n))
                fi.seek(n, os.SEEK_CUR)
                pos += n
        copy_to(size)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


def cached(srcdir, params, build):
    """Build srcdir with build(srcdir) unless a stamp says it was already
    built with the same params."""
    stamp = srcdir + ".stamp"
    want = json.dumps(params, sort_keys=True)
    if os.path.exists(stamp) and open(stamp).read() == want:
        return
    log("  generating %s" % srcdir)
    shutil.rmtree(srcdir, ignore_errors=True)
    os.makedirs(srcdir)
    build(srcdir)
    with open(stamp, "w") as f:
        f.write(want)


# ------------------------------------------------------------ workloads

class Workload:
    """One benchmark case.  prepare(dst) puts the destination into its
    starting state (identically for both receivers); opts are the client's
    extra options; batch selects berth's BERTH_DURABILITY=batch wrapper."""

    def __init__(self, name, title, src, opts=(), prepare=None,
                 batch=False, persistent=False):
        self.name, self.title, self.src = name, title, src
        self.opts = list(opts)
        self.prepare = prepare
        self.batch = batch
        self.persistent = persistent  # dst kept between pushes (W4)


def build_workloads(sc, srcroot, mnt, names):
    """Generate (or reuse) the sources the chosen workloads need and
    return their Workload objects."""
    big_src = os.path.join(srcroot, "big")
    mod_src = os.path.join(srcroot, "mod")
    pristine = os.path.join(mnt, "pristine")
    out = []

    def need(*ws):
        return any(w in names for w in ws)

    if need("W2", "W3", "W6", "W6B"):
        cached(big_src, dict(size=sc["big"], seed=2),
               lambda d: make_big(os.path.join(d, "big.bin"), sc["big"], 2,
                                  BASE_MTIME))
    if need("W3", "W6", "W6B"):
        cached(mod_src, dict(size=sc["big"], seed=3, basis=2),
               lambda d: make_mutant(os.path.join(big_src, "big.bin"),
                                     os.path.join(d, "big.bin"), sc["big"],
                                     3, BASE_MTIME + 100))
        # The basis every delta push starts from, on the same filesystem.
        os.makedirs(pristine, exist_ok=True)
        run(["cp", "-p", "--reflink=never", os.path.join(big_src, "big.bin"),
             pristine])

    def fresh(dst):
        run(["rm", "-rf", dst])

    def basis(dst):
        run(["rm", "-rf", dst])
        os.makedirs(dst)
        run(["cp", "-p", "--reflink=never",
             os.path.join(pristine, "big.bin"), dst])

    for name in names:
        if name == "M1":
            out.append(m1_workload(sc is SCALES["quick"], srcroot))
        elif name == "W1":
            src = os.path.join(srcroot, "w1")
            n, nd = sc["w1_files"], sc["w1_dirs"]
            cached(src, dict(n=n, d=nd, seed=1),
                   lambda d: make_tree(d, n, nd, KIB, 16 * KIB, 1))
            out.append(Workload("W1", "initial copy, %d files of 1-16 KiB "
                                "in %d dirs" % (n, nd), src, (), fresh))
        elif name == "W2":
            out.append(Workload("W2", "initial copy, one %s incompressible "
                                "file" % human(sc["big"]), big_src, (),
                                fresh))
        elif name == "W3":
            out.append(Workload("W3", "delta, %s basis, ~1%% changed + "
                                "insertions" % human(sc["big"]), mod_src,
                                (), basis))
        elif name == "W4":
            src = os.path.join(srcroot, "w4")
            n, nd = sc["w4_files"], sc["w4_dirs"]
            cached(src, dict(n=n, d=nd, seed=4),
                   lambda d: make_tree(d, n, nd, 1, 8 * KIB, 4))
            out.append(Workload("W4", "no-change re-sync, %d files" % n,
                                src, (), None, persistent=True))
        elif name == "W5":
            src = os.path.join(srcroot, "w5")
            n, nd = sc["w5_files"], sc["w5_dirs"]
            cached(src, dict(n=n, d=nd, seed=5),
                   lambda d: make_tree(d, n, nd, KIB, 16 * KIB, 5))
            out.append(Workload("W5", "initial copy, %d files, --fsync "
                                "(both as the client sends it)" % n, src,
                                ["--fsync"], fresh))
        elif name == "W6":
            out.append(Workload("W6", "W3 with -z (zstd)", mod_src,
                                ["-z", "--compress-choice=zstd"], basis))
        elif name == "W6B":
            out.append(Workload("W6B", "W3 with -z (zlib)", mod_src,
                                ["-z", "--compress-choice=zlib"], basis))
    return out


def human(n):
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d B" % n


# ------------------------------------------------------------ filesystem

class Scratch:
    """The destination filesystem: a fresh journaled ext4 on a loop
    device, or (no root, --no-loop, or no loop device) a plain directory."""

    def __init__(self, base, size, use_loop):
        self.base = base
        self.mnt = os.path.join(base, "mnt")
        self.img = os.path.join(base, "dst.img")
        self.dev = None
        self.mounted = False
        self.desc = "plain directory %s (no loop device)" % self.mnt
        os.makedirs(self.mnt, exist_ok=True)
        if use_loop:
            try:
                self._make(size)
            except SystemExit as e:  # e.g. a container without loop devices
                log("bench: no loop filesystem, using a plain directory "
                    "(numbers are less comparable):\n%s" % e)
                self.close(False)

    def _make(self, size):
        if os.path.ismount(self.mnt):
            run(["umount", self.mnt])
        if os.path.exists(self.img):
            os.unlink(self.img)
        # Write the whole image once, so the timed pushes never allocate
        # blocks or convert unwritten extents in the host filesystem; no
        # discard in mkfs, which would punch holes in it again; inode
        # tables and journal written now rather than by a background
        # thread during the runs.
        run(["dd", "if=/dev/zero", "of=" + self.img, "bs=16M",
             "count=%d" % (size // (16 * MIB)), "conv=fsync", "status=none"])
        run(["mkfs.ext4", "-F", "-q", "-E",
             "nodiscard,lazy_itable_init=0,lazy_journal_init=0", self.img])
        dio = "on"
        try:
            self.dev = run(["losetup", "-f", "--show", "--direct-io=on",
                            self.img]).strip()
        except SystemExit:
            dio = "off"
            self.dev = run(["losetup", "-f", "--show", self.img]).strip()
        run(["mount", "-t", "ext4", self.dev, self.mnt])
        self.mounted = True
        self.desc = ("fresh ext4 (journal, data=ordered) on %s, %s image, "
                     "direct-io=%s" % (self.dev, human(size), dio))

    def close(self, keep):
        if self.mounted:
            subprocess.run(["umount", self.mnt])
            self.mounted = False
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev])
            self.dev = None
        if not keep and os.path.exists(self.img):
            os.unlink(self.img)


# ------------------------------------------------------------ measuring

def touch_memory(nbytes):
    """Fault in nbytes of fresh anonymous memory, then free it: the page
    allocator starts each push from a similar state (steadies the 1 GiB
    workloads)."""
    if nbytes:
        buf = bytearray(nbytes)
        buf[::4096] = b"\1" * len(range(0, nbytes, 4096))
        del buf


# --profile: a profiler between /usr/bin/time and the receiver, one output
# file per push under <scratch>/prof/ (timings then include its overhead).
PROFILERS = {
    "stat": "perf stat -e task-clock,context-switches,cpu-migrations,"
            "page-faults -o '{out}.stat'",
    "record": "perf record -q -F 999 -g -o '{out}.perf'",
    "strace": "strace -f -c -o '{out}.strace'",
}

RECEIVERS = {  # key: (program, environment)
    "rsync": ("rsync", ""),
    "berth": ("berth", "-u BERTH_DURABILITY "),  # as installed: unset
    "berth-batch": ("berth", "BERTH_DURABILITY=batch "),
}


def write_wrapper(wrapdir, key, prog, prof_out=None, profiler=None):
    """The receiver wrapper for --rsync-path (the client appends --server
    and the rest): /usr/bin/time writes 'wall user sys maxrss_kib' of the
    receiver to the returned time file."""
    env = RECEIVERS[key][1]
    path = os.path.join(wrapdir, "recv-" + key)
    tfile = os.path.join(wrapdir, key + ".time")
    prof = PROFILERS[profiler].format(out=prof_out) + " " if profiler else ""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n# generated by bench/run.py\n"
                "exec env %s/usr/bin/time -f '%%e %%U %%S %%M' -o '%s' "
                "%s'%s' \"$@\"\n" % (env, tfile, prof, prog))
    os.chmod(path, 0o755)
    return path, tfile


def push(wl, wrapper, dst, rsync):
    """One timed push; returns dict(wall, cpu, rss_mib)."""
    path, tfile = wrapper
    if os.path.exists(tfile):
        os.unlink(tfile)
    cmd = [rsync, "-a"] + wl.opts + ["-e", RSH, "--rsync-path=" + path,
                                     wl.src + "/", "localhost:" + dst + "/"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("bench: %s: push failed (exit %d):\n%s%s" %
                         (wl.name, p.returncode, p.stdout, p.stderr))
    try:
        last = open(tfile).read().strip().splitlines()[-1]
        _, user, sys_, rss = last.split()
    except (OSError, IndexError, ValueError):
        raise SystemExit("bench: %s: no receiver timing in %s" %
                         (wl.name, tfile))
    return dict(wall=wall, cpu=float(user) + float(sys_), sys=float(sys_),
                rss=int(rss) / 1024.0)


def verify(wl, dst, who):
    """rsync itself (local, full checksums) must find nothing to change."""
    out = run(["rsync", "-aHnic", "--delete", wl.src + "/", dst + "/"])
    if out.strip():
        raise SystemExit("bench: %s: %s's destination differs from the "
                         "source:\n%s" % (wl.name, who, out[:4000]))


def warm(src):
    """Read the source once so the first push does not pay for it."""
    for d, _, files in os.walk(src):
        for n in files:
            with open(os.path.join(d, n), "rb") as f:
                while f.read(MIB):
                    pass


def pair_order(i, pair):
    """Pair i's order: as given for even i, reversed for odd (A B, B A,
    A B, ...).  The machine has state that flips from one push to the
    next: a 1 GiB push into the loop filesystem took about 0.8 s or about
    1.3-1.5 s of receiver CPU on alternate pushes, whichever receiver ran
    (2026-12-07), so always A first would hand one receiver the cheap
    half of the pushes."""
    return pair if i % 2 == 0 else tuple(reversed(pair))


def bench_workload(wl, pairs, dst, progs, touch, profiler=None):
    """A B, B A, ... (pair_order()): rsync and berth, pairs times, each
    from the same starting state.  progs: {"rsync": path, "berth": path,
    "wrapdir": dir, "profdir": dir}.  Returns the list of (rsync, berth)
    result pairs."""
    warm(wl.src)
    if wl.persistent:
        run(["rm", "-rf", dst])
        run(["cp", "-a", wl.src, dst])
        verify(wl, dst, "initial copy")
    results = []
    for i in range(pairs):
        pair = {}
        for who in pair_order(i, ("rsync", "berth")):
            if wl.prepare:
                wl.prepare(dst)
            os.sync()
            touch_memory(touch)
            key = "berth-batch" if (who == "berth" and wl.batch) else who
            out = os.path.join(progs["profdir"],
                               "%s-%s-%d" % (wl.name, who, i + 1))
            wrapper = write_wrapper(progs["wrapdir"], key, progs[who], out,
                                    profiler)
            r = push(wl, wrapper, dst, progs["rsync"])
            verify(wl, dst, who)
            pair[who] = r
            log("  %s pair %d %-5s wall %7.3f s  cpu %7.3f s  rss %7.1f "
                "MiB" % (wl.name, i + 1, who, r["wall"], r["cpu"],
                         r["rss"]))
        results.append((pair["rsync"], pair["berth"]))
    run(["rm", "-rf", dst])
    return results


# The file-system floor (--floor): bench_floor makes the same tree with
# only the calls any receiver makes (data out of a pipe, create under a
# temporary name, write, XXH3-128, mode, times, [fsync,] close, rename;
# directories made, their mode and times set at the end) and no protocol.
# Its CPU over rsync's is the lowest receiver CPU ratio any design reaches
# with these calls.  Initial copies; W4's no-change re-sync: there
# (--stat) only the lstat and quick check of each entry of a copy of the
# source on the same filesystem, as the pushes find it; the delta pushes
# (W3, W6: --basis): a lower bound, the basis read for its block sums and
# again into the new file (with its whole-file checksum, mode, times,
# rename), no rolling checksum, no literal data, no decompression.  Not
# W6B: with zlib the receiver also runs every matched block through
# inflate's window (the protocol's dictionary), which the floor lacks.
FLOOR_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "C8", "C8F")
FLOOR_BASIS = ("W3", "W6")


def bench_floor(wl, pairs, dst, floor, touch):
    """bench_floor's CPU and wall, pairs times; returns their list."""
    clients = getattr(wl, "clients", 0)
    out = []
    if wl.persistent:
        run(["rm", "-rf", dst])
        run(["cp", "-a", wl.src, dst])
    mode = ("--stat" if wl.persistent else
            "--basis" if wl.name in FLOOR_BASIS else None)
    for i in range(pairs):
        cmd = [floor] + (["--fsync"] if "--fsync" in wl.opts else [])
        if clients:
            cmd += ["--jobs", str(clients)]
        if mode == "--basis":
            wl.prepare(dst)
            os.sync()
        elif not mode:
            run(["rm", "-rf", dst])
            os.sync()
        touch_memory(touch)
        cmd += ([mode] if mode else []) + [wl.src, dst]
        user, _, sys_, _, wall = run(cmd).split()[1:6]
        if not clients and not mode:  # an initial copy: SRC's tree
            verify(wl, dst, "bench_floor")
        out.append(dict(cpu=float(user) + float(sys_), sys=float(sys_),
                        wall=float(wall)))
        log("  %s floor %d wall %7.3f s  cpu %7.3f s" %
            (wl.name, i + 1, out[-1]["wall"], out[-1]["cpu"]))
    run(["rm", "-rf", dst])
    return out


def summarize(wl, results, load):
    """Medians per receiver and the median per-pair ratio berth/rsync."""
    s = dict(name=wl.name, title=wl.title, pairs=len(results), load=load,
             runs=[dict(rsync=a, berth=b) for a, b in results])
    for m in ("wall", "cpu", "rss"):
        s["rsync_" + m] = statistics.median(a[m] for a, _ in results)
        s["berth_" + m] = statistics.median(b[m] for _, b in results)
        # /usr/bin/time counts CPU in 10 ms steps: a pair where rsync
        # shows 0 has no ratio.
        ratios = [b[m] / a[m] for a, b in results if a[m] > 0]
        s["ratio_" + m] = statistics.median(ratios) if ratios else None
    if all("sys" in a and "sys" in b for a, b in results):
        s["rsync_sys"] = statistics.median(a["sys"] for a, _ in results)
        s["berth_sys"] = statistics.median(b["sys"] for _, b in results)
    s["verdicts"] = {m: s["ratio_" + m] is not None and
                     s["ratio_" + m] <= lim
                     for m, lim in TARGETS[wl.name].items()}
    return s


# ------------------------------------------------------------ concurrent

# C8: 8 stock clients push at once, into 8 `rsync --server` (each under the
# --rsync-path wrapper, as above) and into ONE `berth --daemon` (rsync://
# on 127.0.0.1: the one berth process that serves many clients; its
# sessions are threads on one shared pump).  C8F: the same with --fsync
# from the clients, no environment variable on either side.
CONC_TARGETS = {
    "C8": dict(cpu=0.6, wall=0.7),
    "C8F": dict(cpu=0.8, wall=0.4),
}
CONC_SCALES = {
    "full": dict(clients=8, files=2000, dirs=20, lo=1 * KIB, hi=64 * KIB),
    "quick": dict(clients=8, files=40, dirs=4, lo=1 * KIB, hi=16 * KIB),
}
TARGETS.update(CONC_TARGETS)


def build_concurrent(quick, srcroot, names):
    """The concurrent workloads among @names: one source tree each client
    pushes (the same tree for all of them)."""
    sc = CONC_SCALES["quick" if quick else "full"]
    out = []
    src = os.path.join(srcroot, "conc")
    for name in names:
        if name not in CONC_TARGETS:
            continue
        cached(src, dict(n=sc["files"], d=sc["dirs"], lo=sc["lo"],
                         hi=sc["hi"], seed=8),
               lambda d: make_tree(d, sc["files"], sc["dirs"], sc["lo"],
                                   sc["hi"], 8))
        fs = name == "C8F"
        wl = Workload(name, "%d clients at once, each %d files of %s-%s, "
                      "%s; one berth --daemon vs %d rsync --server" %
                      (sc["clients"], sc["files"], human(sc["lo"]),
                       human(sc["hi"]), "--fsync" if fs else "no fsync",
                       sc["clients"]), src, ["--fsync"] if fs else [])
        wl.clients = sc["clients"]
        out.append(wl)
    return out


def conc_clients(cmds):
    """Start every client at once; wall until the last one ends."""
    t0 = time.perf_counter()
    ps = [subprocess.Popen(c, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
          for c in cmds]
    outs = [p.communicate()[0] for p in ps]
    wall = time.perf_counter() - t0
    bad = [(p.returncode, o) for p, o in zip(ps, outs) if p.returncode]
    if bad:
        raise SystemExit("bench: concurrent push failed (exit %d):\n%s" %
                         bad[0])
    return wall


def conc_rsync(wl, dst, progs):
    """wl.clients rsync --server receivers, one wrapper (and time file)
    each: CPU and peak RSS summed over them."""
    cmds, tfiles = [], []
    for i in range(wl.clients):
        path = os.path.join(progs["wrapdir"], "recv-conc%d" % i)
        tfile = path + ".time"
        if os.path.exists(tfile):
            os.unlink(tfile)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n# generated by bench/run.py\n"
                    "exec /usr/bin/time -f '%%e %%U %%S %%M' -o '%s' "
                    "'%s' \"$@\"\n" % (tfile, progs["rsync"]))
        os.chmod(path, 0o755)
        tfiles.append(tfile)
        cmds.append([progs["rsync"], "-a"] + wl.opts +
                    ["-e", RSH, "--rsync-path=" + path, wl.src + "/",
                     "localhost:%s/c%d/" % (dst, i)])
    wall = conc_clients(cmds)
    cpu = rss = ksys = 0.0
    for tfile in tfiles:
        _, user, sys_, kib = open(tfile).read().split()[-4:]
        cpu += float(user) + float(sys_)
        ksys += float(sys_)
        rss += int(kib) / 1024.0
    return dict(wall=wall, cpu=cpu, sys=ksys, rss=rss)


def conc_berth(wl, dst, progs):
    """One berth --daemon, started before and stopped after the timed
    part: CPU from /proc (every thread, io_uring workers included, and
    reaped children), peak RSS its VmHWM."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import daemon_bench  # bench/daemon_bench.py: the daemon's harness

    base = os.path.join(progs["wrapdir"], "conc-daemon")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    env = {k: v for k, v in os.environ.items() if k != "BERTH_DURABILITY"}
    d, port = daemon_bench.start_daemon(progs["berth"], base, dst, env)
    try:
        c0 = daemon_bench.cpu_split(d.pid)
        wall = conc_clients([[progs["rsync"], "-a"] + wl.opts +
                             [wl.src + "/", "rsync://127.0.0.1:%d/m/c%d/" %
                              (port, i)] for i in range(wl.clients)])
        c1 = daemon_bench.cpu_split(d.pid)
        rss = daemon_bench.peak_rss_mib(d.pid)
    finally:
        d.terminate()
        d.wait()
    return dict(wall=wall, cpu=sum(c1) - sum(c0), sys=c1[1] - c0[1],
                rss=rss)


def bench_concurrent(wl, pairs, dst, progs, touch, profiler=None):
    """A B, B A, ... as bench_workload(), each from an empty destination;
    every client's tree verified.  (No --profile here.)"""
    warm(wl.src)
    results = []
    for i in range(pairs):
        pair = {}
        for who, fn in pair_order(i, (("rsync", conc_rsync),
                                      ("berth", conc_berth))):
            run(["rm", "-rf", dst])
            os.makedirs(dst)
            os.sync()
            touch_memory(touch)
            r = fn(wl, dst, progs)
            for c in range(wl.clients):
                verify(wl, os.path.join(dst, "c%d" % c), who)
            pair[who] = r
            log("  %s pair %d %-5s wall %7.3f s  cpu %7.3f s  rss %7.1f "
                "MiB  load %.2f" % (wl.name, i + 1, who, r["wall"],
                                    r["cpu"], r["rss"], os.getloadavg()[0]))
        results.append((pair["rsync"], pair["berth"]))
    run(["rm", "-rf", dst])
    return results


def concurrent_note(summaries):
    """The report's note on C8/C8F: what their figures count."""
    if not any(s["name"] in CONC_TARGETS for s in summaries):
        return ""
    return ("\nC8/C8F: wall from the first client's start to the last one's "
            "end; CPU and RSS of the receivers: for rsync summed over the "
            "`rsync --server` processes (each with its forked child), for "
            "berth the one `berth --daemon` process (all threads, io_uring "
            "workers included; RSS its peak).\n")


# ------------------------------------------------------------ M1: list memory

# M1: the receiver's memory for a large list without incremental recursion
# (the whole list is held at once): 300,000 empty files in a source-tree
# shaped hierarchy, pushed with -a --no-inc-recursive.  The figure that
# counts is peak RSS; rsync's receiver side is two processes (generator and
# the receiver it forks after the list arrived), each reported.
M1_SCALES = {"full": dict(files=300000, top=12, mid=20, leaf=25),
             "quick": dict(files=3000, top=3, mid=4, leaf=5)}
TARGETS["M1"] = dict(rss=1.0)
M1_WORDS = ("src", "lib", "include", "test", "docs", "core", "util", "net",
            "io", "fs", "kernel", "driver", "common", "platform", "internal",
            "plugins", "resources", "assets", "config", "scripts", "tools",
            "build", "vendor", "generated", "fixtures", "examples")
M1_EXTS = (".c", ".h", ".py", ".txt", ".json", ".md", ".o", ".png", ".js",
           ".rs", ".go", ".html", "")


def m1_make_tree(root, p, seed):
    """p["files"] empty files under top/mid/leaf directories named from a
    word list (names of 2-30 bytes, paths of ~40-70), fixed mtimes."""
    rng = random.Random(seed)
    dirs = []
    for a in range(p["top"]):
        da = "%s%d" % (rng.choice(M1_WORDS), a)
        for b in range(p["mid"]):
            db = "%s_%s%d" % (rng.choice(M1_WORDS), rng.choice(M1_WORDS), b)
            for c in range(p["leaf"]):
                dirs.append(os.path.join(root, da, db, "%s%d" %
                                         (rng.choice(M1_WORDS), c)))
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    for i in range(p["files"]):
        stem = "_".join(rng.choice(M1_WORDS)
                        for _ in range(rng.randint(1, 3)))
        path = os.path.join(dirs[i % len(dirs)], "%s%d%s" %
                            (stem, i, rng.choice(M1_EXTS)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.close(fd)
        t = (BASE_MTIME + i) * 10**9
        os.utime(path, ns=(t, t))
    pin_dir_mtimes(root)


def m1_workload(quick, srcroot):
    p = M1_SCALES["quick" if quick else "full"]
    src = os.path.join(srcroot, "m1")
    cached(src, dict(p, seed=7), lambda d: m1_make_tree(d, p, 7))
    wl = Workload("M1", "initial copy, %d empty files, --no-inc-recursive"
                  % p["files"], src, ["--no-inc-recursive"],
                  lambda dst: run(["rm", "-rf", dst]))
    wl.bench = m1_bench
    return wl


def m1_wrapper(progs, key, i):
    """The receiver wrapper of write_wrapper() under peak_rss.py: returns
    (wrapper, time file, per-process peaks file)."""
    path, tfile = write_wrapper(progs["wrapdir"], key, progs[key])
    procs = os.path.join(progs["wrapdir"], "%s-%d.procs" % (key, i))
    with open(path) as f:
        body = f.read()
    body = body.replace("exec env ", "exec '%s' '%s' '%s' env " %
                        (sys.executable, os.path.join(HERE, "peak_rss.py"),
                         procs), 1)
    with open(path, "w") as f:
        f.write(body)
    return (path, tfile), procs


def m1_procs(path, prog):
    """The receiver's own processes' peaks (MiB), largest first."""
    name = os.path.basename(prog)[:15]
    peaks = []
    with open(path) as f:
        for line in f:
            _, _, comm, kib = line.split()
            if comm == name:
                peaks.append(int(kib) / 1024.0)
    return sorted(peaks, reverse=True)


def m1_bench(wl, pairs, dst, progs, touch, profiler=None):
    """bench_workload() for M1 (A B, B A, ...), plus each receiver
    process's peak RSS (r["procs"])."""
    warm(wl.src)
    results = []
    for i in range(pairs):
        pair = {}
        for who in pair_order(i, ("rsync", "berth")):
            wl.prepare(dst)
            os.sync()
            touch_memory(touch)
            wrapper, procs = m1_wrapper(progs, who, i)
            r = push(wl, wrapper, dst, progs["rsync"])
            r["procs"] = m1_procs(procs, progs[who])
            verify(wl, dst, who)
            pair[who] = r
            log("  %s pair %d %-5s wall %7.3f s  cpu %7.3f s  rss %7.1f "
                "MiB (per process: %s; %.0f B an entry, all included)" %
                (wl.name, i + 1, who, r["wall"], r["cpu"], r["rss"],
                 " + ".join("%.1f" % m for m in r["procs"]),
                 r["rss"] * MIB / m1_count(wl)))
        results.append((pair["rsync"], pair["berth"]))
    run(["rm", "-rf", dst])
    return results


def m1_count(wl):
    n = json.loads(open(wl.src + ".stamp").read())["files"]
    return n


def m1_note(summaries):
    """The report's line on M1: each rsync process's median peak."""
    for s in summaries:
        if s["name"] != "M1":
            continue
        runs = s["runs"]
        k = max(len(r["rsync"]["procs"]) for r in runs)
        med = [statistics.median(r["rsync"]["procs"][j] if j <
                                 len(r["rsync"]["procs"]) else 0
                                 for r in runs) for j in range(k)]
        bm = statistics.median(r["berth"]["procs"][0] if r["berth"]["procs"]
                               else 0 for r in runs)
        return ("\nM1: per-process peak RSS (VmHWM polled every 10 ms), "
                "medians: rsync %s MiB (its two processes, largest "
                "first), berth %.1f MiB (target: berth <= rsync's larger "
                "process).\n" % (" / ".join("%.1f" % m for m in med), bm))
    return ""


# ------------------------------------------------------------ machine limits

def limits(mnt, nbytes):
    """Context: what this machine can do at best."""
    out = {}
    chunk = random.Random(0).randbytes(MIB)
    path = os.path.join(mnt, "limits.bin")
    # Each write test twice, the better one counts (the machine is shared).
    for label, do_fsync in (("write", False), ("write+fsync", True)) * 2:
        os.sync()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        t0 = time.perf_counter()
        for _ in range(nbytes // MIB):
            os.write(fd, chunk)
        if do_fsync:
            os.fsync(fd)
        os.close(fd)
        rate = nbytes / (time.perf_counter() - t0) / 1e9
        out[label] = max(out.get(label, 0), rate)
        os.unlink(path)
        os.sync()

    n = min(nbytes, 256 * MIB)
    a, b = bytearray(n), bytearray(n)
    a[::4096] = b"\1" * len(range(0, n, 4096))
    b[:] = a
    t0 = time.perf_counter()
    for _ in range(4):
        b[:] = a  # one memcpy
    out["memcpy"] = 4 * n / (time.perf_counter() - t0) / 1e9
    del a, b

    count = nbytes // (128 * KIB)
    t0 = time.perf_counter()
    run(["sh", "-c", "dd if=/dev/zero bs=128K count=%d status=none | "
         "dd of=/dev/null bs=128K status=none" % count])
    out["pipe"] = nbytes / (time.perf_counter() - t0) / 1e9

    for label, variant in (("xxh3", "5"), ("xxh128", "11")):
        try:
            p = subprocess.run(["xxhsum", "-q", "-b" + variant, "-i3"],
                               capture_output=True, text=True, timeout=120)
            mbs = re.findall(r"\(\s*([0-9.]+) MB/s\)", p.stdout + p.stderr)
            out[label] = float(mbs[-1]) / 1000 if mbs else None
        except (OSError, subprocess.TimeoutExpired):
            out[label] = None
    return out


def machine_info(berth, rsync):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    bv = run([berth, "--version"]).splitlines()
    rv = run([rsync, "--version"]).splitlines()[0]
    return dict(date=datetime.datetime.now(datetime.timezone.utc)
                .strftime("%Y-%m-%d %H:%M UTC"),
                host=platform.node(), kernel=platform.release(), cpu=cpu,
                cores=os.cpu_count(), mem_gib=round(mem / GIB, 1),
                rsync=rv, berth=bv[0],
                pump=next((l for l in bv if l.startswith("pump")), "?"))


# ------------------------------------------------------------ reporting

def fmt_gbs(v):
    return "n/a" if v is None else "%.1f" % v


def fmt_ratio(s, m):
    r = s["ratio_" + m]
    lim = TARGETS[s["name"]].get(m)
    if r is None:
        return "n/a"
    mark = "" if lim is None else (" ok" if r <= lim else " MISS")
    return "%.2f%s" % (r, mark)


def markdown(info, lim, fsdesc, summaries):
    lines = ["Machine: %s, %d cores, %.1f GiB RAM, Linux %s; %s; %s; "
             "%s." % (info["cpu"], info["cores"], info["mem_gib"],
                      info["kernel"], info["rsync"], info["berth"],
                      info["pump"]),
             "Date: %s.  Destinations: %s." % (info["date"], fsdesc)]
    if lim:
        lines.append(
            "Limits: write %.2f GB/s, write+fsync %.2f GB/s, memcpy %.2f "
            "GB/s, pipe %.2f GB/s, xxh3 %s GB/s (xxhsum -b, 100 KB)." %
            (lim["write"], lim["write+fsync"], lim["memcpy"], lim["pipe"],
             fmt_gbs(lim["xxh3"])))
    lines += ["",
              "| workload | pairs | load avg | wall s rsync / berth | "
              "wall ratio | CPU s rsync / berth | CPU ratio | "
              "RSS MiB rsync / berth | RSS ratio |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        lines.append(
            "| %s %s | %d | %.2f–%.2f | %.2f / %.2f | %s | %.2f / %.2f | "
            "%s | %.1f / %.1f | %s |" %
            (s["name"], s["title"], s["pairs"], s["load"][0], s["load"][1],
             s["rsync_wall"], s["berth_wall"], fmt_ratio(s, "wall"),
             s["rsync_cpu"], s["berth_cpu"], fmt_ratio(s, "cpu"),
             s["rsync_rss"], s["berth_rss"], fmt_ratio(s, "rss")))
    lines += ["",
              "Medians; ratios are medians of per-pair berth/rsync ratios "
              "(targets: %s).  Load avg: 1-minute load before and after "
              "the workload.  Per-pair ratio ranges, and the receivers' "
              "system (kernel) CPU, median s rsync / berth:" %
              "; ".join("%s %s" % (w, ", ".join(
                  "%s ≤ %.1f" % (m, lim) for m, lim in t.items()))
                  for w, t in TARGETS.items())]
    for s in summaries:
        rr = [[r["berth"][m] / r["rsync"][m] for r in s["runs"]
               if r["rsync"][m] > 0] for m in ("wall", "cpu", "rss")]
        lines.append("- %s: wall %s, CPU %s, RSS %s%s" % (
            s["name"], *["%.2f–%.2f" % (min(v), max(v)) if v else "n/a"
                         for v in rr],
            "; system CPU %.2f / %.2f" % (s["rsync_sys"], s["berth_sys"])
            if "rsync_sys" in s else "") + (
            "; floor CPU %.2f s (system %.2f) = %s of rsync's" %
            (s["floor_cpu"], s["floor_sys"],
             "%.2f" % s["floor_ratio"] if s["floor_ratio"] is not None
             else "n/a")
            if "floor_cpu" in s else ""))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", required=True, help="berth binary")
    ap.add_argument("--rsync", default=shutil.which("rsync") or "rsync",
                    help="rsync binary (client and reference server)")
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W6B,C8,C8F",
                    help="comma-separated subset of W1..W6, W6B, C8, C8F, "
                    "M1")
    ap.add_argument("--pairs", type=int, default=3,
                    help="A B pairs per workload (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes: a smoke run of seconds")
    ap.add_argument("--scratch", help="sources, loop image, mount point "
                    "(default /var/tmp/berth-bench; --quick: a temporary "
                    "directory removed afterwards)")
    ap.add_argument("--no-loop", action="store_true",
                    help="destinations in a plain directory, no loop fs")
    ap.add_argument("--no-limits", action="store_true",
                    help="skip measuring the machine's limits")
    ap.add_argument("--floor", help="the bench_floor binary: also "
                    "measure the file-system floor of %s" %
                    ", ".join(FLOOR_WORKLOADS))
    ap.add_argument("--profile", choices=sorted(PROFILERS),
                    help="run each receiver under perf stat, perf record "
                    "or strace -c (outputs in <scratch>/prof/)")
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--keep", action="store_true",
                    help="keep the loop image (sources are always kept "
                    "in a named --scratch)")
    args = ap.parse_args()

    names = [w.strip().upper() for w in args.workloads.split(",") if w]
    bad = [w for w in names if w not in TARGETS]
    if bad or args.pairs < 1:
        ap.error("unknown workload %s / pairs must be >= 1" % bad)
    berth = os.path.abspath(args.berth)
    rsync = shutil.which(args.rsync) or args.rsync
    if not os.access("/usr/bin/time", os.X_OK):
        # 77: CTest's "skipped"
        print("bench: /usr/bin/time missing (Debian package 'time'; "
              "scripts/install-deps.sh installs it)", file=sys.stderr)
        sys.exit(77)
    sc = SCALES["quick" if args.quick else "full"]

    temp = None
    scratch = args.scratch
    if not scratch:
        if args.quick:
            scratch = temp = tempfile.mkdtemp(prefix="berth-bench-")
        else:
            scratch = "/var/tmp/berth-bench"
    scratch = os.path.abspath(scratch)
    os.makedirs(scratch, exist_ok=True)
    lock = open(os.path.join(scratch, ".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit("bench: %s is in use by another run" % scratch)

    # SIGTERM/SIGHUP unwind through the finally below (unmount, detach).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(143))

    use_loop = not args.no_loop and os.geteuid() == 0
    if not use_loop and not args.no_loop:
        log("bench: not root: destinations in a plain directory, not on a "
            "fresh loop-mounted ext4 -- numbers are less comparable")
    fs = None
    try:
        fs = Scratch(scratch, sc["image"], use_loop)
        info = machine_info(berth, rsync)
        log("== %s, %d cores, %.1f GiB, Linux %s; %s; %s (%s)" %
            (info["cpu"], info["cores"], info["mem_gib"], info["kernel"],
             info["rsync"], info["berth"], info["pump"]))
        log("== %s; destinations: %s" % (info["date"], fs.desc))
        lim = None
        if not args.no_limits:
            lim = limits(fs.mnt, sc["limit_bytes"])
            log("== limits (GB/s): write %.2f, write+fsync %.2f, memcpy "
                "%.2f, pipe %.2f, xxh3 %s" %
                (lim["write"], lim["write+fsync"], lim["memcpy"],
                 lim["pipe"], fmt_gbs(lim["xxh3"])))
        log("== sources")
        srcroot = os.path.join(scratch, "src")
        os.makedirs(srcroot, exist_ok=True)
        wls = build_workloads(sc, srcroot, fs.mnt, names)
        wls += build_concurrent(args.quick, srcroot, names)
        wrapdir = os.path.join(scratch, "wrap")
        os.makedirs(wrapdir, exist_ok=True)
        profdir = os.path.join(scratch, "prof")
        os.makedirs(profdir, exist_ok=True)
        progs = dict(rsync=rsync, berth=berth, wrapdir=wrapdir,
                     profdir=profdir)
        if args.profile:
            log("== profiling with %s into %s (timings include its "
                "overhead; RSS is the profiler's if that is larger)" %
                (args.profile, profdir))
        dst = os.path.join(fs.mnt, "dst")

        summaries = []
        for wl in wls:
            log("== %s: %s" % (wl.name, wl.title))
            l0 = os.getloadavg()[0]
            bench = (bench_concurrent if getattr(wl, "clients", 0)
                     else getattr(wl, "bench", bench_workload))
            res = bench(wl, args.pairs, dst, progs, sc["touch"],
                        args.profile)
            fl = (bench_floor(wl, args.pairs, dst, args.floor, sc["touch"])
                  if args.floor and wl.name in FLOOR_WORKLOADS else None)
            s = summarize(wl, res, (l0, os.getloadavg()[0]))
            if fl:
                s["floor_cpu"] = statistics.median(f["cpu"] for f in fl)
                s["floor_sys"] = statistics.median(f["sys"] for f in fl)
                # (10 ms steps: a quick run's rsync may show 0)
                s["floor_ratio"] = (s["floor_cpu"] / s["rsync_cpu"]
                                    if s["rsync_cpu"] > 0 else None)
            summaries.append(s)
            log("  %s median: wall %.3f / %.3f s (ratio %s), cpu %.3f / "
                "%.3f s (ratio %s), rss %.1f / %.1f MiB (ratio %s)" %
                (wl.name, s["rsync_wall"], s["berth_wall"],
                 fmt_ratio(s, "wall"), s["rsync_cpu"], s["berth_cpu"],
                 fmt_ratio(s, "cpu"), s["rsync_rss"], s["berth_rss"],
                 fmt_ratio(s, "rss")))

        md = markdown(info, lim, fs.desc, summaries)
        md += concurrent_note(summaries) + m1_note(summaries)
        if args.quick:
            md += ("\n--quick scale: a smoke run; the timings are too "
                   "small for the targets to mean anything.\n")
        log("\n" + md)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(md)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(machine=info, limits=lim, fs=fs.desc,
                               scale="quick" if args.quick else "full",
                               workloads=summaries), f, indent=1)
        log("bench: all %d destinations verified" %
            (2 * args.pairs * len(wls)))
    finally:
        if fs:
            fs.close(args.keep)
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
