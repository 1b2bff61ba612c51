#!/usr/bin/env python3
"""A hostile sender: replay a real client stream into `berth --server`
with changes a stock client would never make.

    hostile.py --berth PATH [--captures DIR] [--random N] [--seed S]

The capture case1_initial_a_noinc (an initial push, no incremental
recursion) is replayed unchanged first: berth must finish it with exit 0
and the right files.  Then the same stream with
  - a file-list name turned into "../x", "/etc/pwnd" or ".." (exit 2);
  - N random single-bit flips after the handshake.
Every run must end on its own within the time limit with an exit code (no
signal, no sanitizer report), leave no temp files, and create nothing
outside the destination.  Prints one line per case and a closing
'N passed, N failed' line.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

CASE = "case1_initial_a_noinc"
TIMEOUT = 60


def run(berth, argv, stream, work):
    """Feed @stream to berth with the capture's argv, DEST in @work."""
    dst = os.path.join(work, "dst")
    outside = os.path.join(work, "outside")
    os.makedirs(outside, exist_ok=True)
    args = [berth] + argv[1:-1] + [dst + "/"]
    try:
        p = subprocess.run(args, input=stream, capture_output=True,
                           timeout=TIMEOUT, cwd=outside)
    except subprocess.TimeoutExpired:
        return None, "hang: no exit within %d s" % TIMEOUT
    err = p.stderr.decode("utf-8", "replace")
    return p.returncode, err


def violations(rc, err, work):
    probs = []
    if rc is None:
        return [err]
    if rc < 0:
        probs.append(f"killed by signal {-rc}")
    for bad in ("AddressSanitizer", "runtime error", "ThreadSanitizer",
                "LeakSanitizer"):
        if bad in err:
            probs.append("sanitizer: " + err.strip()[-600:])
            break
    for d, _, fs in os.walk(os.path.join(work, "dst")):
        for f in fs:
            if f.startswith("."):
                probs.append(f"temp file left: {os.path.join(d, f)}")
    # Nothing may appear beside the destination (or in the cwd).
    for name in os.listdir(work):
        if name not in ("dst", "outside"):
            probs.append(f"wrote outside the destination: {name}")
    if os.listdir(os.path.join(work, "outside")):
        probs.append("wrote into the working directory: "
                     f"{os.listdir(os.path.join(work, 'outside'))}")
    if os.path.exists("/etc/pwnd"):
        probs.append("wrote /etc/pwnd")
    return probs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--captures", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/captures"))
    ap.add_argument("--random", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cdir = os.path.join(os.environ.get("BERTH_SHARED", ""), "captures", CASE)
    if not os.path.isdir(cdir):
        cdir = os.path.join(args.captures, CASE)
    if not os.path.isdir(cdir):
        print("hostile: captures not found: skipped")
        return 77
    argv = open(os.path.join(cdir, "argv.txt")).read().split("\n")
    argv = [a for a in argv if a]
    c2s = open(os.path.join(cdir, "client_to_server.bin"), "rb").read()
    berth = os.path.abspath(args.berth)

    cases = [("unchanged", c2s, 0)]
    for old, new in ((b"\x04link", b"\x04../x"), (b"\x09sub/b.txt",
                                                   b"\x09/etc/pwnd"),
                     (b"\x03sub\x00", b"\x03..\x00\x00")):
        i = c2s.find(old)
        assert i > 0, old
        cases.append((f"name {new[1:].decode(errors='replace')!r}",
                      c2s[:i] + new + c2s[i + len(new):], 2))
    rng = random.Random(args.seed)
    for k in range(args.random):
        b = bytearray(c2s)
        off = rng.randrange(0x23, len(b))  # after the handshake lists
        b[off] ^= 1 << rng.randrange(8)
        cases.append((f"flip {k} @{off:#x}", bytes(b), None))

    passed = failed = 0
    for name, stream, want in cases:
        work = tempfile.mkdtemp(prefix="berth-hostile-")
        rc, err = run(berth, argv, stream, work)
        probs = violations(rc, err, work)
        if want is not None and rc != want:
            probs.append(f"exit {rc}, want {want}: {err.strip()[-300:]}")
        if name == "unchanged" and not probs:
            got = sorted(os.listdir(os.path.join(work, "dst")))
            if got != ["a.txt", "link", "sub"]:
                probs.append(f"unexpected tree: {got}")
        shutil.rmtree(work, ignore_errors=True)
        if probs:
            failed += 1
            print(f"FAIL {name}")
            for p in probs:
                print("     " + p)
        else:
            passed += 1
            if want is not None:
                print(f"ok   {name} (exit {rc})")
    print(f"hostile: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
