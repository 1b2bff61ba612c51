#!/usr/bin/env python3
"""Per-process peak RSS of a command and its descendants.

    peak_rss.py OUT CMD [ARGS...]

Runs CMD (stdin/stdout/stderr inherited: it can sit in an rsync
--rsync-path wrapper), polls /proc every 10 ms for its descendants and
their VmHWM (the kernel's own high-water mark of each process's RSS), and
at the end writes one line per process to OUT: "pid ppid comm vmhwm_kib".
A process's last 10 ms before its exit can escape the poll, so the figures
are lower bounds; /usr/bin/time's ru_maxrss (the largest process) is the
exact one.  Exits with CMD's status.
"""
import os
import subprocess
import sys
import time


def ppid_comm(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    close = s.rindex(")")
    comm = s[s.index("(") + 1:close]
    return int(s[close + 2:].split()[1]), comm


def vmhwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    child = subprocess.Popen(cmd)
    me = os.getpid()
    known = {}  # pid -> [ppid, comm, peak]
    seen = set()  # pids looked at (not ours or ours)
    while child.poll() is None:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in seen:
                continue
            try:
                ppid, comm = ppid_comm(pid)
            except (OSError, ValueError):
                continue
            seen.add(pid)  # a process's parent is set before it shows
            if ppid == me or ppid in known:
                known[pid] = [ppid, comm, 0]
        for pid, rec in known.items():
            try:
                rec[1] = ppid_comm(pid)[1]
                rec[2] = max(rec[2], vmhwm(pid))
            except (OSError, ValueError, IndexError):
                pass
        time.sleep(0.01)
    with open(out, "w") as f:
        for pid, (ppid, comm, peak) in sorted(known.items()):
            f.write("%d %d %s %d\n" % (pid, ppid, comm, peak))
    sys.exit(child.returncode)


if __name__ == "__main__":
    main()
