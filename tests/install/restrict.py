#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""berth --restrict=DIR, as sshd runs it from authorized_keys.

    restrict.py --berth PATH

A stand-in for ssh puts the client's command in SSH_ORIGINAL_COMMAND, as
sshd does for a forced command (the words joined by spaces), and runs
`berth --restrict=DIR`.  The stock rsync client pushes through it.  Checks
that pushes land beneath DIR and only there, that pulls, daemons, -s,
paths out of DIR (by "..", by a symlink), shell syntax and options that
read or write server files are refused with a message, and that
--link-dest and --backup-dir are kept beneath DIR.  Exit 0 when all pass,
1 otherwise, 77 without rsync.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

failures = []
passed = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (f": {detail}" if detail and not cond else ""))
    (passed if cond else failures).append(name)


def make_tree(root):
    os.makedirs(os.path.join(root, "d/e"), exist_ok=True)
    for i, rel in enumerate(["a.txt", "d/b.bin", "d/e/c", "with space.txt"]):
        with open(os.path.join(root, rel), "wb") as f:
            f.write((b"berth %d\n" % i) * (100 + 1000 * i))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    args = ap.parse_args()
    rsync = shutil.which("rsync")
    if not rsync:
        print("restrict: no rsync; skipped")
        return 77
    berth = os.path.abspath(args.berth)
    work = tempfile.mkdtemp(prefix="berth-restrict-")
    try:
        return run(rsync, berth, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(rsync, berth, work):
    src = os.path.join(work, "src")
    jail = os.path.join(work, "jail")
    outside = os.path.join(work, "outside")
    for d in (jail, outside):
        os.makedirs(d)
    make_tree(src)
    # The forced command: sshd's SSH_ORIGINAL_COMMAND is the client's
    # remote command, its words joined by single spaces.
    rsh = os.path.join(work, "fake-ssh")
    with open(rsh, "w") as f:
        f.write("#!/bin/sh\n"
                "shift  # the host\n"
                'SSH_ORIGINAL_COMMAND="$*" exec %s --restrict=%s\n'
                % (berth, jail))
    os.chmod(rsh, 0o755)

    def push(dest, *opts, source=src + "/"):
        return subprocess.run([rsync, "-a", "-e", rsh, *opts, source,
                               "host:" + dest],
                              capture_output=True, text=True, timeout=60)

    def same(a, b):
        r = subprocess.run([rsync, "-ani", "--delete", a + "/", b + "/"],
                           capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() == ""

    # 1. A push lands beneath DIR.
    r = push("host1/")
    check("push into DIR/host1", r.returncode == 0 and
          same(src, os.path.join(jail, "host1")), r.stderr)
    # 2. An absolute DEST means DIR.
    r = push("/abs/")
    check("absolute DEST is beneath DIR", r.returncode == 0 and
          same(src, os.path.join(jail, "abs")), r.stderr)
    # 3. A DEST with a space (the client escapes it for the shell).
    r = push("dir with space/")
    check("DEST with a space", r.returncode == 0 and
          same(src, os.path.join(jail, "dir with space")), r.stderr)
    # 4. --link-dest relative to DEST: unchanged files are hard links.
    r = push("snap2/", "--link-dest=../host1")
    st = os.stat(os.path.join(jail, "snap2/d/b.bin"))
    check("--link-dest=../host1 links beneath DIR",
          r.returncode == 0 and st.st_nlink == 2, r.stderr)
    # 5. --backup-dir, absolute: beneath DIR.
    with open(os.path.join(src, "a.txt"), "ab") as f:
        f.write(b"changed\n")
    r = push("host1/", "-b", "--backup-dir=/old")
    check("--backup-dir=/old is DIR/old", r.returncode == 0 and
          os.path.exists(os.path.join(jail, "old/a.txt")) and
          not os.path.exists("/old/a.txt"), r.stderr)

    # Refusals: a message from berth, a failed push, nothing outside.
    def refused(name, r, words):
        ok = r.returncode != 0 and all(w in r.stderr for w in words)
        check(name, ok, f"exit {r.returncode}: {r.stderr.strip()}")

    refused("DEST above DIR", push("../outside/"), ["outside the allowed"])
    refused("--link-dest above DIR", push("host2/", "--link-dest=../../outside"),
            ["outside the allowed"])
    os.symlink(outside, os.path.join(jail, "evil"))
    refused("DEST through a symlink", push("evil/"), ["symlink"])
    refused("--link-dest through a symlink",
            push("host3/", "--link-dest=../evil"), ["symlink"])
    pulled = os.path.join(work, "pulled")
    r = subprocess.run([rsync, "-a", "-e", rsh, "host:host1/", pulled + "/"],
                       capture_output=True, text=True, timeout=60)
    refused("a pull", r, ["--sender is not allowed", "pushes only"])
    refused("-s (secluded arguments)", push("host4/", "-s"), ["secluded"])
    refused("--log-file on the server", push("host5/", "-M--log-file=" +
            os.path.join(outside, "log")), ["--log-file is not allowed"])
    refused("a daemon over ssh",
            subprocess.run([rsync, "-a", "-e", rsh, src + "/", "host::mod/"],
                           capture_output=True, text=True, timeout=60),
            ["--daemon is not allowed"])
    refused("--partial-dir with a path",
            push("host6/", "--partial-dir=../p"), ["--partial-dir"])
    check("nothing written outside DIR", os.listdir(outside) == [],
          str(os.listdir(outside)))
    for d in ("host2", "host3", "host4", "host5", "host6"):
        check(f"refused push made nothing ({d})",
              not os.path.exists(os.path.join(jail, d)))

    # The command line itself, without a client.
    def direct(cmd):
        env = dict(os.environ)
        env.pop("SSH_ORIGINAL_COMMAND", None)
        if cmd is not None:
            env["SSH_ORIGINAL_COMMAND"] = cmd
        return subprocess.run([berth, "--restrict=" + jail], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30)

    for name, cmd, code, words in [
        ("no SSH_ORIGINAL_COMMAND", None, 1, ["SSH_ORIGINAL_COMMAND"]),
        ("shell syntax", "rsync --server -r . x; touch " + outside + "/pwn",
         1, ["shell syntax"]),
        ("command substitution", "rsync --server -r . \"$(id)\"", 1,
         ["expansion"]),
        ("not rsync --server", "sh -c id", 4, ["only an rsync push"]),
        ("--files-from a server file",
         "rsync --server -r --files-from /etc/passwd . x", 4,
         ["--files-from"]),
    ]:
        r = direct(cmd)
        check(f"{name}: exit {code} and a message",
              r.returncode == code and all(w in r.stderr for w in words),
              f"exit {r.returncode}: {r.stderr.strip()}")
    check("nothing written outside DIR (direct)", os.listdir(outside) == [])

    print(f"restrict: {len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
