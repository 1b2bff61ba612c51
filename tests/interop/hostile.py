#!/usr/bin/env python3
"""A hostile sender: replay a real client stream into `berth --server`
with changes a stock client would never make.

    hostile.py --berth PATH [--captures DIR] [--random N] [--seed S]

The capture case1_initial_a_noinc (an initial push, no incremental
recursion) is replayed unchanged first: berth must finish it with exit 0
and the right files.  Then the same stream with
  - a file-list name turned into "../x", "/etc/pwnd" or ".." (exit 2);
  - N random single-bit flips after the handshake.
Then case1_initial_a (incremental recursion, three lists): unchanged
(exit 0), with a sub-list for a directory that does not exist or has no
list of its own, names outside the sub-list's directory, a list twice, a
list after NDX_FLIST_EOF, two NDX_FLIST_EOFs (all exit 2), extra NDX_DONEs
and N/3 random flips.  Then an -aX push recorded on the spot (the stock client into berth, as
case10_xattrs has it but without incremental recursion: a 40-byte value
requested and echoed): unchanged (exit 0, the values on the files), with
the echoed value's number naming a short or a missing item or with a
wrong length (exit 2), with a changed value byte (exit 23: it does not
match the file list's MD5), and N/3 random flips.
Then the -aHX, -aX and --append captures recorded without incremental
recursion (tests/interop/captures, by make_noinc_captures.py): unchanged
(exit 0 and the right files; -aHX may end 23, see noinc_cases()), cut
short at about 80 points each (exit 12), and N/3 mutations each (flips,
insertions, deletions).
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
LONG = b"L" * 40  # case10's abbreviated value, echoed as 01 28 <LONG>


def run(berth, argv, stream, work, setup=None):
    """Feed @stream to berth with the capture's argv, DEST in @work."""
    dst = os.path.join(work, "dst")
    outside = os.path.join(work, "outside")
    os.makedirs(outside, exist_ok=True)
    if setup:
        os.makedirs(dst)
        setup(dst)
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


def record_xattr_push(berth, work):
    """The client stream of `rsync -aX` into berth (no inc-recursion):
    x.txt and y.txt with user.short and a 40-byte user.long (one set)."""
    src = os.path.join(work, "src")
    os.makedirs(src)
    for f in ("x.txt", "y.txt"):
        p = os.path.join(src, f)
        with open(p, "wb") as fh:
            fh.write(b"xattr file " + f.encode() + b"\n")
        try:
            os.setxattr(p, "user.short", b"value-1")
            os.setxattr(p, "user.long", LONG)
        except OSError:
            return None, None  # no user xattrs here
    # berth as the server, through a recorder of what the client sends.
    tee = os.path.join(work, "tee")
    with open(tee, "w") as fh:
        fh.write(f"""#!{sys.executable}
import os, subprocess, sys, threading
open({work!r} + "/argv", "w").write("\\n".join(sys.argv))
p = subprocess.Popen([{berth!r}] + sys.argv[1:], stdin=subprocess.PIPE)
def copy():
    with open({work!r} + "/c2s", "wb") as f:
        while True:
            b = os.read(0, 65536)
            if not b:
                break
            f.write(b)
            f.flush()
            try:
                p.stdin.write(b)
                p.stdin.flush()
            except BrokenPipeError:
                break
threading.Thread(target=copy, daemon=True).start()
sys.exit(p.wait())
""")
    os.chmod(tee, 0o755)
    rsh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rsh")
    p = subprocess.run(["rsync", "-aX", "--no-inc-recursive",
                        "--checksum-seed=12345", "-e", rsh,
                        f"--rsync-path={tee}", src + "/",
                        f"localhost:{work}/dst/"], capture_output=True,
                       timeout=TIMEOUT)
    if p.returncode != 0:
        return None, None
    argv = open(os.path.join(work, "argv")).read().split("\n")
    return ([a for a in argv if a],
            open(os.path.join(work, "c2s"), "rb").read())


def xattr_cases(c2s, n, rng):
    """case10 with the xattr values the sender echoes tampered with."""
    i = c2s.find(b"\x01\x28" + LONG)
    assert i > 0
    cases = [("xattrs unchanged", c2s, 0)]
    for what, at, byte, want in (("names a short item", i, 2, 2),
                                 ("names no item", i, 7, 2),
                                 ("wrong length", i + 1, 0x27, 2),
                                 ("changed value", i + 10, ord("M"), 23)):
        b = bytearray(c2s)
        b[at] = byte
        cases.append((f"xattr value {what}", bytes(b), want))
    for k in range(n):
        b = bytearray(c2s)
        off = rng.randrange(0x23, len(b))
        b[off] ^= 1 << rng.randrange(8)
        cases.append((f"xattr flip {k} @{off:#x}", bytes(b), None))
    return cases


def xattr_tree_ok(dst, name):
    """What case10 (and its tampered forms) must leave."""
    got = sorted(os.listdir(dst))
    if got != ["x.txt", "y.txt"]:
        return [f"unexpected tree: {got}"]
    probs = []
    for f in got:
        xs = {n: os.getxattr(os.path.join(dst, f), n)
              for n in os.listxattr(os.path.join(dst, f))}
        want = {"user.short": b"value-1", "user.long": LONG}
        if name == "xattr value changed value":
            del want["user.long"]  # not the file list's value: not set
        if xs != want:
            probs.append(f"{f}: xattrs {xs}")
    return probs


INC_CASE = "case1_initial_a"  # the same tree, incremental (3 lists)
INC_MUX = 0x23  # where the client's stream is multiplexed from


def demux(c2s, start):
    """The data bytes of a multiplexed stream (other messages dropped)."""
    data, i = bytearray(), start
    while i + 4 <= len(c2s):
        n = c2s[i] | c2s[i + 1] << 8 | c2s[i + 2] << 16
        if c2s[i + 3] == 7:
            data += c2s[i + 4:i + 4 + n]
        i += 4 + n
    return bytes(data)


def remux(head, data):
    """@head (unmultiplexed) then @data in MSG_DATA frames."""
    out = bytearray(head)
    for i in range(0, len(data), 4096):
        chunk = data[i:i + 4096]
        out += bytes([len(chunk) & 0xff, len(chunk) >> 8 & 0xff, 0, 7])
        out += chunk
    return bytes(out)


def inc_cases(c2s, n, rng):
    """case1_initial_a (incremental recursion) and sub-lists a stock
    client never sends (rsync-protocol.md §7.9).  Its data stream: the
    initial list, then `ff 65` (NDX_FLIST_OFFSET-1: the list of dir #1,
    "sub") with the entry sub/b.txt, then `ff fe 80 02 00 00`
    (NDX_FLIST_EOF)."""
    head, data = c2s[:INC_MUX], demux(c2s, INC_MUX)
    sub = data.find(b"\xff\x65")
    eof = data.find(b"\xff\xfe\x80\x02\x00\x00", sub)
    assert 0 < sub < eof, "case1_initial_a layout"
    sublist = data[sub + 2:eof]  # entries, end marker, io_error
    name = data.find(b"\x09sub/b.txt", sub)
    assert sub < name < eof
    after = eof + 6

    def edit(at, old_len, new):
        return remux(head, data[:at] + new + data[at + old_len:])

    cases = [("inc unchanged", c2s, 0)]
    # A directory number that does not exist, the root (whose contents
    # were the initial list), a huge one.
    cases.append(("inc list for dir #5 (no such dir)",
                  edit(sub, 2, b"\xff\x69"), 2))
    cases.append(("inc list for dir #0 (no list of its own)",
                  edit(sub, 2, b"\xff\x64"), 2))
    cases.append(("inc list for dir #2^31-102",
                  edit(sub, 2, b"\xff\xfe\xff\xff\xff\x7f"), 2))
    # Names outside the list's directory.
    for new in (b"\x09xyz/b.txt", b"\x09sub/x/b.t", b"\x09sub/../x",
                b"\x09subb.txt.", b"\x09/etc/pwnd"):
        cases.append((f"inc sub-list name {new[1:].decode()!r}",
                      edit(name, 10, new), 2))
    # The same list twice (the second after the end of the lists), two
    # ends, a list in a stream without incremental recursion is below.
    cases.append(("inc second list for dir #1",
                  edit(eof, 0, b"\xff\x65" + sublist), 2))
    cases.append(("inc list after NDX_FLIST_EOF",
                  edit(after, 0, b"\xff\x64" + sublist), 2))
    cases.append(("inc NDX_FLIST_EOF twice",
                  edit(after, 0, b"\xff\xfe\x00\x00"), 2))
    # More sender NDX_DONEs than lists and phases.
    cases.append(("inc extra NDX_DONEs", remux(head, data + b"\x00" * 8),
                  None))
    for k in range(n):
        b = bytearray(data)
        off = rng.randrange(0, len(b))
        b[off] ^= 1 << rng.randrange(8)
        cases.append((f"inc flip {k} @{off:#x}", remux(head, bytes(b)),
                      None))
    return cases


# Captures of -H, -X and --append without incremental recursion, recorded
# by make_noinc_captures.py (the shared ones are incremental, which berth
# refuses at the file list for these options).
NOINC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "captures")
T0 = 1700000000
APPEND_DATA = random.Random(11).randbytes(5000)


def append_old(dst):
    with open(os.path.join(dst, "grow.log"), "wb") as f:
        f.write(APPEND_DATA[:3000])
    os.utime(os.path.join(dst, "grow.log"), (T0, T0))


def noinc_ok(case, dst):
    """What each unchanged noinc capture must leave."""
    def xa(p):
        return {n: os.getxattr(p, n) for n in os.listxattr(p)}
    p = lambda n: os.path.join(dst, n)
    try:
        if case.startswith("case6b"):
            ok = (os.stat(p("h1")).st_ino == os.stat(p("h2")).st_ino and
                  open(p("h1"), "rb").read() == b"linked with xattr\n" and
                  xa(p("h1")) == {"user.tag": b"t"})
        elif case.startswith("case10"):
            want = {"user.short": b"value-1", "user.long": b"L" * 40}
            ok = xa(p("x.txt")) == want and xa(p("y.txt")) == want
        else:
            ok = open(p("grow.log"), "rb").read() == APPEND_DATA
    except OSError as e:
        return [f"{case}: {e}"]
    return [] if ok else [f"{case}: unexpected destination"]


def noinc_cases(n, rng, step):
    """Each capture unchanged (exit 0), cut short every @step bytes, and
    @n mutated forms (flips, insertions, deletions) each."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hostile_sender import mutate
    out = []
    if not os.path.isdir(NOINC_DIR):
        return out
    for case in sorted(os.listdir(NOINC_DIR)):
        cdir = os.path.join(NOINC_DIR, case)
        argv = [a for a in open(os.path.join(cdir, "argv.txt")).read()
                .split("\n") if a]
        c2s = open(os.path.join(cdir, "client_to_server.bin"), "rb").read()
        setup = append_old if "append" in case else None
        if "X" in argv[2] and not xattrs_here():
            continue
        # -H: the sender's echo of h1's record (its xattr values) is
        # replayed before berth may have sent that record (it does once
        # h1 is linked): setting them can then fail (23), the tree is
        # right either way.
        out.append((argv, f"{case} unchanged", c2s,
                    (0, 23) if case.startswith("case6b") else 0, setup))
        for cut in range(4, len(c2s), max(step, len(c2s) // 80)):
            out.append((argv, f"{case} cut at {cut}", c2s[:cut], 12, setup))
        for k in range(n):
            out.append((argv, f"{case} mutation {k}", mutate(c2s, rng, 4),
                        None, setup))
    return out


def xattrs_here():
    d = tempfile.mkdtemp(prefix="berth-hostile-xa-")
    try:
        os.setxattr(d, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--captures", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/captures"))
    ap.add_argument("--random", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    def load(case):
        cdir = os.path.join(os.environ.get("BERTH_SHARED", ""), "captures",
                            case)
        if not os.path.isdir(cdir):
            cdir = os.path.join(args.captures, case)
        if not os.path.isdir(cdir):
            return None, None
        argv = open(os.path.join(cdir, "argv.txt")).read().split("\n")
        return ([a for a in argv if a],
                open(os.path.join(cdir, "client_to_server.bin"), "rb").read())

    argv, c2s = load(CASE)
    if not argv:
        print("hostile: captures not found: skipped")
        return 77
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

    cases = [(argv,) + c for c in cases]
    iargv, ic2s = load(INC_CASE)
    if iargv:
        cases += [(iargv,) + c
                  for c in inc_cases(ic2s, args.random // 3, rng)]
        # The incremental stream where berth did not grant it (no 'i'
        # in the client's capabilities): lists where none may be.
        nargv = [a.replace(".iLs", ".Ls") if a.startswith("-l") else a
                 for a in iargv]
        cases.append((nargv, "inc stream, not granted", ic2s, 2))
    rec = tempfile.mkdtemp(prefix="berth-hostile-rec-")
    xargv, xc2s = (record_xattr_push(berth, rec) if shutil.which("rsync")
                   else (None, None))
    shutil.rmtree(rec, ignore_errors=True)
    if xargv:
        cases += [(xargv,) + c
                  for c in xattr_cases(xc2s, args.random // 3, rng)]

    cases = [c + (None,) for c in cases]
    cases += noinc_cases(args.random // 3, rng, 5)

    passed = failed = 0
    for argv, name, stream, want, setup in cases:
        work = tempfile.mkdtemp(prefix="berth-hostile-")
        rc, err = run(berth, argv, stream, work, setup)
        probs = violations(rc, err, work)
        if want is not None and rc not in (
                want if isinstance(want, tuple) else (want,)):
            probs.append(f"exit {rc}, want {want}: {err.strip()[-300:]}")
        if name in ("unchanged", "inc unchanged") and not probs:
            got = sorted(os.listdir(os.path.join(work, "dst")))
            if got != ["a.txt", "link", "sub"] or not os.path.isfile(
                    os.path.join(work, "dst", "sub", "b.txt")):
                probs.append(f"unexpected tree: {got}")
        if name in ("xattrs unchanged", "xattr value changed value") \
                and not probs:
            probs += xattr_tree_ok(os.path.join(work, "dst"), name)
        if name.endswith("_noinc unchanged") and not probs:
            probs += noinc_ok(name, os.path.join(work, "dst"))
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
