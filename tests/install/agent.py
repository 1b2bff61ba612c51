#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The example agent (berth-backup-agent) with its connector.

    agent.py --agent PATH --connect PATH

Pushes with the stock rsync client through berth-connect into the agent:
a first snapshot; a refused push (-U) whose client prints the reason and
exits 4, and that leaves no snapshot behind; a second good push whose
unchanged files are hard links into the first (the refused push did not
become its base); SIGTERM ends the agent with 0.  Exit 0 when all pass, 1
otherwise, 77 without rsync.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

passed, failures = [], []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name +
          (f": {detail}" if detail and not cond else ""))
    (passed if cond else failures).append(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--connect", required=True)
    a = ap.parse_args()
    rsync = shutil.which("rsync")
    if not rsync:
        print("agent: no rsync; skipped")
        return 77
    work = tempfile.mkdtemp(prefix="berth-agent-")
    sock = os.path.join(work, "agent.sock")
    snaps = os.path.join(work, "snaps")
    src = os.path.join(work, "src")
    os.makedirs(src)
    for n in ("a", "b", "c"):
        with open(os.path.join(src, n), "w") as f:
            f.write(n * 1000)
    log = open(os.path.join(work, "agent.log"), "w+")
    agent = subprocess.Popen([os.path.abspath(a.agent), sock, snaps],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)

        def push(*opts):
            return subprocess.run(
                [rsync, "-a", *opts, "-e",
                 f"{os.path.abspath(a.connect)} {sock}", src + "/",
                 "any:laptop/"], capture_output=True, text=True, timeout=60)

        def snapshots():
            d = os.path.join(snaps, "laptop")
            return sorted(os.listdir(d)) if os.path.isdir(d) else []

        r = push()
        check("first push", r.returncode == 0 and len(snapshots()) == 1,
              r.stderr)
        r = push("-K")  # --keep-dirlinks: refused by berth
        check("refused push: the client prints the reason",
              "--keep-dirlinks" in r.stderr, r.stderr)
        check("refused push: rsync's exit code 4", r.returncode == 4,
              str(r.returncode))
        # The client may exit before the agent has tidied up: the name a
        # later push could take as its base never appears, and the one
        # being written goes soon.
        for _ in range(100):
            if len(snapshots()) == 1:
                break
            time.sleep(0.05)
        check("refused push leaves no snapshot", len(snapshots()) == 1,
              str(snapshots()))
        with open(os.path.join(src, "a"), "a") as f:
            f.write("changed")
        time.sleep(1.1)  # a new snapshot name (one per second)
        r = push()
        snaps_now = snapshots()
        check("second push", r.returncode == 0 and len(snaps_now) == 2,
              r.stderr + str(snaps_now))
        if len(snaps_now) == 2:
            st = os.stat(os.path.join(snaps, "laptop", snaps_now[1], "b"))
            check("unchanged file hard-linked to the last good snapshot",
                  st.st_nlink == 2, f"nlink {st.st_nlink}")
        log.seek(0)
        text = log.read()
        check("the agent logs rsync's codes by name",
              "exit 4 (requested action not supported)" in text and
              "-2000" not in text, text[-500:])
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            rc = agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            rc = -1
        check("SIGTERM ends the agent with 0", rc == 0, str(rc))
        shutil.rmtree(work, ignore_errors=True)
    print(f"agent: {len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
