#!/usr/bin/env python3
"""A hostile sender built from the protocol: streams a sending client would
write (rsync-protocol.md §4-§10), with the edits a stock client never
makes, fed to `berth --server` over pipes.

    hostile_sender.py --berth PATH [--only SUBSTR] [--fuzz N] [--seed S]
                      [--minutes M] [--list]

The catalog is deterministic: every case names its expected exit code and
a piece of the message.  Cases run against an old destination copy where
delta and compressed paths are attacked, and against a watched directory
outside the destination, reachable from it through a symlink ("esc" in the
destination, or a symlink the stream itself sends): nothing in it may
change.  After the catalog: a truncation sweep of the valid streams and
--fuzz N mutated streams (bit flips, insertions, deletions, byte runs);
--minutes M keeps mutating until M minutes have passed (the soak).
Every run must end by itself with an exit code (no signal, no sanitizer
report, no hang), leave no temp file, write nothing outside the
destination and send none of the watched file's bytes back.  Really
compressed token data (libzstd, liblz4, zlib): hostile_codec.py; -R lists
and --files-from: hostile_relative.py; the daemon's greeting, module,
authentication and arguments against `berth --daemon` (inetd-style, one
connection a case, its valid streams cut short too): hostile_daemon.py.  Prints one line per failing case and a closing summary with
the counts and the exit codes seen.
"""
import argparse
import collections
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_wire import (Ndx, blocks_of, deflated, file_sum,  # noqa: E402
                          head_bytes, i32, longint, lz4_literal_block, mux,
                          plain_tokens, sum_head, varint, varlong, vstring,
                          zlib_tokens, zstd_raw_block, zstd_raw_start)
import hostile_codec  # noqa: E402
import hostile_daemon  # noqa: E402
import hostile_relative  # noqa: E402

TIMEOUT = 30
MTIME_OLD, MTIME_NEW = 1600000000, 1700000000
WATCH = b"outside the destination\n"
WORK_PATH = b"/tmp/bhs-XXXXXXXX"  # mkdtemp's form, in run()
WATCH_PATH = WORK_PATH + b"/watch"
SEED = 12345

# A file of a few blocks for the delta paths, and its edited form.
OLD_BIG = bytes((i * 7 + i // 700) & 0xff for i in range(700 * 6 + 123))
NEW_LIT = b"new middle part " * 20


def F(name, data=b"", **kw):
    e = {"name": name, "kind": "f", "data": data, "perm": 0o644,
         "mtime": MTIME_NEW}
    e.update(kw)
    return e


def D(name, **kw):
    e = {"name": name, "kind": "d", "perm": 0o755, "mtime": MTIME_NEW}
    e.update(kw)
    return e


def L(name, target, **kw):
    e = {"name": name, "kind": "l", "target": target, "mtime": MTIME_NEW}
    e.update(kw)
    return e


TYPE = {"f": 0o100000, "d": 0o040000, "l": 0o120000, "p": 0o010000}


class Stream:
    """One push: argv letters, the file list, the answers, the ends."""

    def __init__(self, proto=31, letters="", longopts=(), compress=None):
        self.proto = proto
        self.letters = letters
        self.longopts = list(longopts)
        self.compress = compress

    def argv(self, dst):
        if self.proto >= 30:
            cl = ("-lDtpr" + self.letters + ("z" if self.compress else "")
                  + "e.LsfxCIvu")
            extra = ["--checksum-choice=md5"]
            if self.compress:
                extra.append("--compress-choice=" + self.compress)
        else:
            cl = "-lDtpr" + self.letters + ("z" if self.compress else "")
            extra = []
        return (["--server", cl] + extra + self.longopts +
                [f"--checksum-seed={SEED}", ".", dst + "/"])

    def entry(self, e, prev):
        p, old = self.proto, self.proto < 30
        name = e["name"]
        xf = e.get("xflags")
        if xf is None:
            xf = 0x01 if name == b"." else 0
            if "hl" in e:
                xf |= 0x200 | (0x1000 if e["hl"] == "first" else 0)
                if old:
                    xf &= ~0x1000  # (dev, ino) pairs say it instead
            if len(name) > 255 or (old and e["kind"] == "d" and not xf):
                xf |= 0x40
            if not xf:
                xf = 0x04 if not old else 0x01
        out = bytearray()
        if old:
            if xf > 0xff or (p >= 28 and xf & 0x04):
                xf |= 0x04
                out += bytes([xf & 0xff, xf >> 8])
            else:
                out += bytes([xf])
        else:
            out += varint(xf)
        if xf & 0x40:
            out += i32(len(name)) if old else varint(len(name))
        else:
            out += bytes([len(name)])
        out += name
        if not old and "hl" in e and e["hl"] != "first":
            out += varint(e["hl"])
            return bytes(out + self.tail(e))
        size = e.get("size")
        if size is None:
            size = (len(e["data"]) if e["kind"] == "f" else
                    len(e["target"]) if e["kind"] == "l" else 4096)
        out += longint(size) if old else varlong(size, 3)
        out += i32(e["mtime"]) if old else varlong(e["mtime"], 4)
        if xf & 0x2000 and not old:
            out += varint(e.get("nsec", 0))
        mode = e.get("mode", TYPE[e["kind"]] | e.get("perm", 0o777))
        out += i32(mode)
        if e["kind"] == "l":
            t = e["target"]
            out += (i32(len(t)) if old else varint(len(t))) + t
        if old and "H" in self.letters and (
                e["kind"] == "f" if p < 28 else "hl" in e):
            out += longint(e.get("dev", 1)) + longint(e.get("ino", 0))
        return bytes(out + self.tail(e))

    def tail(self, e):
        out = b""
        if "A" in self.letters and e["kind"] != "l":
            out += e.get("acl", b"\x00\x00")  # literal, no entries
            if e["kind"] == "d":
                out += e.get("dacl", b"\x00\x00")
        if "X" in self.letters:
            out += e.get("xattr", b"\x00\x00")  # literal, empty
        return out

    def flist(self, entries, end=None):
        out = bytearray()
        prev = None
        for e in entries:
            out += e["raw"] if "raw" in e else self.entry(e, prev)
            prev = e
        if end is not None:
            out += end
        elif self.proto >= 30:
            out += b"\x00\x00"
        else:
            out += b"\x00" + i32(0)  # end, then io_error (no id lists)
        return bytes(out)

    def dones(self):
        return {27: 2, 28: 2, 29: 3, 30: 3}.get(self.proto, 4)

    def build(self, entries, answers, pre=b"", end=None, dones=None,
              tail=b""):
        """@answers: (ndx, head tuple or bytes, token bytes, sum bytes or
        None for the right one of @content) per transfer."""
        nd = Ndx(self.proto)
        data = bytearray(pre + self.flist(entries, end))
        for a in answers:
            data += nd(a["ndx"])
            if self.proto >= 29:
                data += a.get("iflags", b"\x00\x80")
            h = a.get("head", (0, 0, 0, 0))
            data += h if isinstance(h, bytes) else head_bytes(h)
            data += a["tokens"]
            s = a.get("sum")
            data += s if s is not None else file_sum(a["content"],
                                                     self.proto)
        for _ in range(self.dones() if dones is None else dones):
            data += nd(-1)
        data += tail
        head = i32(self.proto)
        if self.proto >= 30:
            return head + mux(bytes(data))
        return head + bytes(data)


# ---------------------------------------------------------------------
# The catalog.  A case: (name, stream, argv, setup, want_rc, want_msg,
# check) where setup prepares the destination and check looks at it.

TREE = [D(b"."), F(b"a.txt", b"hello berth\n"), L(b"link", b"a.txt"),
        D(b"sub"), F(b"sub/c.txt", b"second file\n")]


def new_answers(entries, proto):
    """Every regular file new: all literal."""
    out = []
    for i, e in enumerate(entries):
        if e["kind"] == "f" and e.get("hl", "first") == "first":
            out.append({"ndx": i, "head": (0, 0, 0, 0),
                        "tokens": plain_tokens([e["data"]]),
                        "content": e["data"]})
    return out


def setup_empty(dst, watch):
    pass


def setup_old(dst, watch):
    """An old copy: big.bin (the delta basis), and esc -> the watch dir."""
    with open(os.path.join(dst, "big.bin"), "wb") as f:
        f.write(OLD_BIG)
    os.utime(os.path.join(dst, "big.bin"), (MTIME_OLD, MTIME_OLD))
    os.symlink(watch, os.path.join(dst, "esc"))


def tree_is(want):
    def check(dst):
        got = {}
        for d, ds, fs in os.walk(dst):
            for n in ds + fs:
                p = os.path.join(d, n)
                r = os.path.relpath(p, dst)
                if os.path.islink(p):
                    got[r] = ("l", os.readlink(p))
                elif os.path.isfile(p):
                    got[r] = ("f", open(p, "rb").read())
        bad = {k: v for k, v in want.items() if got.get(k) != v}
        return [f"destination: {k} is {got.get(k)!r:.80}, want {v!r:.80}"
                for k, v in bad.items()]
    return check


# The expected outcome of data a codec (zlib, lz4, zstd) rejects.
CODEC = "codec"


def catalog():
    cases = []

    def add(name, st, entries, answers, rc, msg, setup=setup_empty,
            check=None, **kw):
        if rc == CODEC:  # as rsync's receiver: a stream error, 12
            rc, msg = 12, "compressed data did not decode"
        if not msg:
            msg = {2: "protocol violation by the peer",
                   12: "connection unexpectedly closed"}.get(rc, "")
        cases.append((name, st, st.build(entries, answers, **kw), setup,
                      rc, msg, check))

    # -- valid pushes, every protocol: the baseline the attacks edit.
    for proto in (27, 28, 29, 30, 31, 32):
        st = Stream(proto)
        add(f"p{proto} valid tree", st, TREE, new_answers(TREE, proto), 0,
            "", check=tree_is({"a.txt": ("f", b"hello berth\n"),
                               "link": ("l", "a.txt"),
                               "sub/c.txt": ("f", b"second file\n")}))

    # -- names (§3.6, §7.5), at 31 and 29.
    for proto in (31, 29):
        st = Stream(proto)
        for bad in (b"../x", b"/abs", b"sub/../../x", b"..", b"sub/..",
                    b"./../x", b"a//../../x", b"sub/./../../x"):
            ents = [D(b"."), D(b"sub"), F(bad, b"evil\n")]
            add(f"p{proto} name {bad.decode()!r}", st, ents,
                new_answers(ents, proto), 2, "unsafe or invalid path name")
        ents = [D(b"."), F(b"", b"evil\n")]
        add(f"p{proto} empty name", st, ents, new_answers(ents, proto), 2,
            "unsafe or invalid path name")
        ents = [F(b".", b"evil\n")]
        add(f"p{proto} '.' a file", st, ents, new_answers(ents, proto), 2,
            "")

    st = Stream(31)
    # -- below a symlink the stream itself sent (absolute and relative
    # targets to the watched directory).
    for tgt in (WATCH_PATH, b"../watch"):
        ents = [D(b"."), L(b"ln", tgt), F(b"ln/pwn", b"evil\n")]
        add(f"file below a sent symlink -> {tgt.decode()[-8:]}", st, ents,
            new_answers(ents, 31), 2, "")
        ents = [D(b"."), L(b"ln", tgt), D(b"ln/d"), F(b"ln/d/pwn", b"x")]
        add(f"dir below a sent symlink -> {tgt.decode()[-8:]}", st, ents,
            new_answers(ents, 31), 2, "")
    # -- a symlinked parent already in the destination: "esc" -> watch.
    ents = [D(b"."), D(b"esc"), F(b"esc/pwn", b"evil\n")]
    add("file below a symlinked parent in the destination", st, ents,
        new_answers(ents, 31), 0, "", setup=setup_old,
        check=tree_is({"esc/pwn": ("f", b"evil\n")}))
    ents = [D(b"."), F(b"esc/pwn", b"evil\n")]
    add("file below a parent not in the list (a symlink there)", st, ents,
        new_answers(ents, 31), 2, "", setup=setup_old)
    ents = [D(b"."), F(b"esc", b"replaced\n")]
    add("file over a symlink to outside", st, ents, new_answers(ents, 31),
        0, "", setup=setup_old,
        check=tree_is({"esc": ("f", b"replaced\n")}))

    # -- the delta path against the old copy: the valid form first.
    h = sum_head(len(OLD_BIG))
    blk = blocks_of(OLD_BIG, h)
    new_big = blk[0] + blk[1] + NEW_LIT + blk[4] + blk[6]
    big = [D(b"."), F(b"big.bin", new_big)]
    toks = plain_tokens([0, 1, NEW_LIT, 4, 6])

    def big_ans(**kw):
        a = {"ndx": 1, "head": h, "tokens": toks, "content": new_big}
        a.update(kw)
        return [a]

    add("delta valid", st, big, big_ans(), 0, "", setup=setup_old,
        check=tree_is({"big.bin": ("f", new_big)}))
    # Sum heads (§8.5.1) that were not sent.
    sent = "echoed a sum head that was not sent"
    for what, hh, msg in (("count +1", (h[0] + 1,) + h[1:], ""),
                     ("count -1", (h[0] - 1,) + h[1:], ""),
                     ("count 0", (0, 0, 0, 0), sent),
                     ("blength 512", (h[0], 512, h[2], h[3]), sent),
                     ("s2length 16", (h[0], h[1], 16, h[3]), sent),
                     ("s2length 3", (h[0], h[1], 3, h[3]), sent),
                     ("s2length 17", (h[0], h[1], 17, h[3]), ""),
                     ("s2length -1", (h[0], h[1], -1, h[3]), ""),
                     ("remainder > blength", (h[0], h[1], h[2], 701), ""),
                     ("remainder 0", (h[0], h[1], h[2], 0), ""),
                     ("count -1 (negative)", (-1, h[1], h[2], h[3]), ""),
                     ("blength 2^17+1", (h[0], 131073, h[2], h[3]), ""),
                     ("count 2^31-1", (0x7fffffff, 700, 2, 0), sent)):
        add(f"delta sum head {what}", st, big, big_ans(head=hh), 2, msg,
            setup=setup_old, check=tree_is({"big.bin": ("f", OLD_BIG)}))
    # Block numbers and literal lengths (§9.2).
    for what, t, rc in (
            ("block = count", plain_tokens([h[0]]), 2),
            ("block 2^31-2", plain_tokens([0x7ffffffe]), 2),
            ("token INT32_MIN", i32(-0x80000000) + i32(0), 2),
            ("literal past the end", i32(1000) + b"short", 12),
            ("literal 2^31-1", i32(0x7fffffff) + b"x" * 10, 12),
            ("no end token", plain_tokens([0, 1])[:-4], 2)):
        add(f"delta {what}", st, big, big_ans(tokens=t), rc, "",
            setup=setup_old, check=tree_is({"big.bin": ("f", OLD_BIG)}))
    # A checksum that does not match: redo asked, the stream ends: the
    # old copy stays whole.
    add("delta wrong whole-file sum", st, big, big_ans(sum=b"\x00" * 16),
        0, "failed verification -- update discarded", setup=setup_old,
        check=tree_is({"big.bin": ("f", OLD_BIG)}))
    # Blocks named for a file that was new (no basis offered).
    ents = [D(b"."), F(b"new.bin", blk[0])]
    add("blocks of a basis never offered", st, ents,
        [{"ndx": 1, "head": h, "tokens": plain_tokens([0]),
          "content": blk[0]}], 2, "")
    # Data for an entry never asked for, a directory, out of range.
    for what, ndx in (("a directory", 0), ("ndx past the list", 7),
                      ("ndx 2^31-1", 0x7fffffff)):
        add(f"data for {what}", st, TREE,
            [{"ndx": ndx, "tokens": plain_tokens([b"x"]),
              "content": b"x"}], 2, "")

    # -- zlib tokens (§9.3) over the old copy.
    zs = Stream(31, compress="zlib")
    zt = zlib_tokens(NEW_LIT, [0, 1])
    znew = NEW_LIT + blk[0] + blk[1]
    zbig = [D(b"."), F(b"big.bin", znew)]

    def zans(t, **kw):
        a = {"ndx": 1, "head": h, "tokens": t, "content": znew}
        a.update(kw)
        return [a]

    add("zlib delta valid", zs, zbig, zans(zt), 0, "", setup=setup_old,
        check=tree_is({"big.bin": ("f", znew)}))
    lit_end = zt.index(b"\x20")
    for what, t, rc in (
            ("TOKEN_LONG past count", zt[:lit_end] + b"\x20" + i32(h[0]) +
             b"\x00", 2),
            ("TOKEN_LONG negative", zt[:lit_end] + b"\x20" + i32(-5) +
             b"\x00", 2),
            ("TOKENRUN_LONG past count", zt[:lit_end] + b"\x21" + i32(2) +
             b"\xff\xff\x00", 2),
            ("TOKEN_REL past count", zt[:lit_end] + b"\xbf" * 3 + b"\x00",
             2),
            ("TOKENRUN_REL past count", zt[:lit_end] + b"\xc0\x00\x10\x00",
             2),
            ("invalid flag byte 0x30", zt[:lit_end] + b"\x30\x00", 2),
            ("garbage deflate", deflated(b"\xff" * 40) + b"\x00", CODEC),
            ("deflate length past the stream", b"\x7f\xff" + b"\x00" * 8,
             CODEC),
            ("deflated bytes edited", zt[:5] + bytes([zt[5] ^ 0x55]) +
             zt[6:], CODEC),
            ("a huge inflated run", deflated(
                __import__("zlib").compress(b"\x00" * (1 << 22))[2:-4]) +
             b"\x00", CODEC)):
        add(f"zlib {what}", zs, zbig, zans(t), rc, "", setup=setup_old,
            check=tree_is({"big.bin": ("f", OLD_BIG)}))

    # -- lz4 and zstd tokens: literal-only frames, valid then edited.
    data = b"lz4 literal data\n" * 3
    ents = [D(b"."), F(b"l.txt", data)]
    ls = Stream(31, compress="lz4")
    lb = lz4_literal_block(data)
    add("lz4 literal valid", ls, ents,
        [{"ndx": 1, "tokens": deflated(lb) + b"\x00", "content": data}], 0,
        "", check=tree_is({"l.txt": ("f", data)}))
    for what, t, rc in (
            ("block length past its data", deflated(b"\xf0\xff" + lb[1:]) +
             b"\x00", CODEC),
            ("a match past the output", deflated(b"\x10x\xff\xff") + b"\x00",
             CODEC),
            ("empty payload", b"\x40\x00\x00", 2),
            ("block past the basis", deflated(lb) + b"\x20" + i32(3) +
             b"\x00", 2)):
        add(f"lz4 {what}", ls, ents,
            [{"ndx": 1, "tokens": t, "content": data}], rc, "")
    zz = Stream(31, compress="zstd")
    zf = zstd_raw_start() + zstd_raw_block(data)
    add("zstd raw valid", zz, ents,
        [{"ndx": 1, "tokens": deflated(zf) + b"\x00", "content": data}], 0,
        "", check=tree_is({"l.txt": ("f", data)}))
    for what, t, rc in (
            ("bad magic", deflated(b"\x28\xb5\x2f\xfe" + zf[4:]) + b"\x00",
             CODEC),
            ("raw block longer than sent", deflated(
                zstd_raw_start() + zstd_raw_block(data)[:3] + data[:4]) +
             b"\x00", 0),
            ("reserved block type", deflated(
                zstd_raw_start() + bytes([0x06, 0, 0])) + b"\x00", CODEC),
            ("window 2^41", deflated(
                b"\x28\xb5\x2f\xfd\x00\xf8" + zstd_raw_block(data)) +
             b"\x00", CODEC),
            ("block past the basis", deflated(zf) + b"\x20" + i32(0) +
             b"\x00", 2)):
        add(f"zstd {what}", zz, ents,
            [{"ndx": 1, "tokens": t, "content": data}], rc, "")

    # -- the same codecs with really compressed data (hostile_codec.py).
    hostile_codec.codec_cases(add, types.SimpleNamespace(
        Stream=Stream, D=D, F=F, setup_old=setup_old, tree_is=tree_is,
        OLD_BIG=OLD_BIG, blocks_of=blocks_of, sum_head=sum_head,
        CODEC=CODEC))

    # -- -R lists and --files-from (hostile_relative.py).
    hostile_relative.relative_cases(add, types.SimpleNamespace(
        Stream=Stream, D=D, F=F, L=L, new_answers=new_answers,
        setup_old=setup_old, tree_is=tree_is, WATCH_PATH=WATCH_PATH,
        WORK_PATH=WORK_PATH, plain_tokens=plain_tokens))

    # -- absurd sizes, modes and times in the list.
    for what, e, rc in (
            ("size 2^62", F(b"a", b"tiny", size=1 << 62), 0),
            ("size negative", F(b"a", b"tiny", size=-5), 2),
            ("mode type 0o170000", F(b"a", b"x", mode=0o170644), 2),
            ("mode type 0", F(b"a", b"x", mode=0o644), 2),
            ("nsec 10^9", F(b"a", b"x", xflags=0x2004, nsec=10 ** 9), 2),
            ("name 4096 bytes", F(b"n" * 4096, b"x"), 2),
            ("symlink target 5000 bytes", L(b"a", b"t" * 5000), 2)):
        ents = [D(b"."), e]
        add(f"list {what}", st, ents, new_answers(ents, 31), rc,
            "configured limit exceeded" if "target" in what else
            "unsafe or invalid path name" if "name" in what else "")

    # -- hard links (-H): leaders and references (§7.3 row 4).
    hs = Stream(31, letters="H")
    good = [D(b"."), F(b"h1", b"linked\n", hl="first"), F(b"h2", hl=1)]
    add("hlink valid", hs, good, [{"ndx": 2, "tokens": plain_tokens(
        [b"linked\n"]), "content": b"linked\n"}], 0, "",
        check=tree_is({"h1": ("f", b"linked\n"), "h2": ("f", b"linked\n")}))
    for what, ents in (
            ("reference to itself", [D(b"."), F(b"h1", hl=1)]),
            ("reference forward", [D(b"."), F(b"h1", hl=2),
                                   F(b"h2", b"x", hl="first")]),
            ("reference to a directory", [D(b"."), D(b"d"), F(b"h", hl=1)]),
            ("reference to a non-leader", [D(b"."),
                                           F(b"h1", b"x", hl="first"),
                                           F(b"h2", hl=1), F(b"h3", hl=2)]),
            ("reference 2^31-1", [D(b"."), F(b"h", hl=0x7fffffff)])):
        add(f"hlink {what}", hs, ents, new_answers(ents, 31), 2, "")
    # Old protocols: (dev, ino) pairs.
    for proto in (28, 29):
        ho = Stream(proto, letters="H")
        ents = [D(b"."), F(b"h1", b"linked\n", hl="first", ino=7),
                F(b"h2", b"linked\n", hl="first", ino=7)]
        add(f"p{proto} hlink pair", ho, ents, new_answers(ents[:2], proto)
            and [{"ndx": 2, "tokens": plain_tokens([b"linked\n"]),
                  "content": b"linked\n"}], 0, "",
            check=tree_is({"h1": ("f", b"linked\n"),
                          "h2": ("f", b"linked\n")}))
        ents = [D(b"."), D(b"d", hl="first", ino=9),
                F(b"h2", b"x", hl="first", ino=9)]
        add(f"p{proto} hlink pair with a directory", ho, ents,
            new_answers(ents, proto), 2, "receiving the file list")

    # -- ACLs (-A, §7.8).
    as_ = Stream(31, letters="A")
    ents = [D(b"."), F(b"a", b"acl\n", acl=b"\x00\x01\x06")]
    add("acl valid user_obj", as_, ents, new_answers(ents, 31), 0, "")
    for what, acl in (("reuse of ACL #5", b"\x06"),
                      ("flags 0xff", b"\x00\xff" + b"\x07" * 4 + b"\x00"),
                      ("perms 0xffff", b"\x00\x01\x83\xff\xff"),
                      ("name list 2^31-1 entries",
                       b"\x00\x10\xf0\xff\xff\xff\x7f"),
                      ("named entry, name 200 bytes cut",
                       b"\x00\x10\x01\x05\x0f\xc8abc")):
        ents = [D(b"."), F(b"a", b"acl\n", acl=acl)]
        add(f"acl {what}", as_, ents, new_answers(ents, 31),
            12 if "cut" in what else 2,
            "configured limit exceeded" if "2^31" in what else "")

    # -- xattrs and fake-super (-X, --fake-super: user.rsync.%stat).
    def xset(items):
        out = b"\x00" + varint(len(items))
        for n, v in items:
            out += varint(len(n) + 1) + varint(len(v)) + n + b"\x00" + v
        return out

    xs = Stream(31, letters="X")
    fs = Stream(31, letters="X", longopts=["--fake-super"])
    for what, val in (("valid", b"100640 0,0 0:0"),
                      ("garbage", b"zz"),
                      ("mode of a directory on a file", b"40755 0,0 0:0"),
                      ("device numbers huge",
                       b"20644 4294967295,4294967295 0:0"),
                      ("uid:gid huge", b"100644 0,0 99999999999:1"),
                      ("empty", b"")):
        ents = [D(b"."), F(b"a", b"fake\n",
                           xattr=xset([(b"user.rsync.%stat", val)]))]
        add(f"fake-super %stat {what}", fs, ents, new_answers(ents, 31),
            0, "")
    for what, x, rc, msg in (
            ("count 2^31-1", b"\x00\xf0\xff\xff\xff\x7f", 2,
             "configured limit exceeded"),
            ("set #9 reused", b"\x09", 2, ""),
            ("name without NUL", b"\x00\x01\x02\x01ab" + b"v", 2, ""),
            ("name length 0", b"\x00\x01\x00\x01v", 2, ""),
            ("names unsorted", xset([(b"user.b", b"1"), (b"user.a", b"2")]),
             0, ""),
            ("value 2^30 long, not sent", b"\x00\x01\x07\xe0\x00\x00\x00\x40"
             b"user.a\x00" + b"\x00" * 16, 2, "")):
        ents = [D(b"."), F(b"a", b"xa\n", xattr=x)]
        add(f"xattr {what}", xs, ents, new_answers(ents, 31), rc, msg)

    # -- filter rules from the sender (--delete: they come first, §6):
    # merge files named outside the destination, lengths out of range.
    ds = Stream(31, longopts=["--delete"])

    def rules(*rs):
        return b"".join(i32(len(r)) + r for r in rs) + i32(0)

    add("filter valid", ds, TREE, new_answers(TREE, 31), 0, "",
        pre=rules(b"- *.tmp", b"-r keep*"))

    def setup_rules(dst, watch):
        """An old copy, and outside it a merge file that would protect
        big.bin from --delete if it were ever read."""
        setup_old(dst, watch)
        with open(os.path.join(watch, "rules"), "wb") as f:
            f.write(b"P big.bin\n")

    for name in (b"../watch/rules", b"esc/rules"):
        add(f"filter dir-merge {name.decode()} (outside)", ds, TREE,
            new_answers(TREE, 31), None, "", setup=setup_rules,
            pre=rules(b": " + name),
            check=lambda dst: ([] if not os.path.exists(
                os.path.join(dst, "big.bin")) else
                ["a merge file outside the destination was read"]))
    # An absolute merge-file name: rsync's receiver outside a daemon
    # reads it where it is; berth looks for merge files beneath the
    # destination only, so big.bin goes.
    add("filter dir-merge /abs/rules (outside)", ds, TREE,
        new_answers(TREE, 31), 0, "", setup=setup_rules,
        pre=rules(b": " + WATCH_PATH + b"/rules"),
        check=lambda dst: ([] if not os.path.exists(
            os.path.join(dst, "big.bin")) else
            ["a merge file outside the destination was read"]))
    for what, pre, rc, msg in (
            ("merge file /etc/passwd", rules(b". /etc/passwd"), 4,
             "option not supported by berth"),
            ("dir-merge name with a slash", rules(b": ../../x"), 0, ""),
            ("dir-merge .rsync-filter", rules(b": .rsync-filter"), 0, ""),
            ("rule length 2^31-1", i32(0x7fffffff) + b"- x", 2,
             "configured limit exceeded"),
            ("rule length negative", i32(-5), 2, ""),
            ("10000 rules", rules(*[b"- r%d" % k for k in range(10000)]),
             0, ""),
            ("unknown rule prefix", rules(b"Q x"), 2, "")):
        add(f"filter {what}", ds, TREE, new_answers(TREE, 31), rc, msg,
            pre=pre, setup=setup_old)

    # -- old protocols: their own encodings.
    for proto in (27, 28, 29):
        os_ = Stream(proto)
        for what, e, rc in (
                ("size 2^40 (longint)", F(b"a", b"tiny", size=1 << 40), 0),
                ("size -1 (longint)", F(b"a", b"tiny", size=-1), 2),
                ("mode type 0o170000", F(b"a", b"x", mode=0o170644), 2),
                ("name '../x'", F(b"../x", b"x"), 2)):
            ents = [D(b"."), e]
            add(f"p{proto} {what}", os_, ents, new_answers(ents, proto), rc,
                "unsafe or invalid path name" if "name" in what else "")
        add(f"p{proto} data for ndx -5", os_, TREE,
            [{"ndx": -5, "tokens": plain_tokens([b"x"]), "content": b"x"}],
            2, "")
        add(f"p{proto} data for ndx 2^31-1", os_, TREE,
            [{"ndx": 0x7fffffff, "tokens": plain_tokens([b"x"]),
              "content": b"x"}], 2, "")
        zs_ = Stream(proto, compress="zlib")
        data = b"zlib at an old protocol\n" * 4
        ents = [D(b"."), F(b"z.txt", data)]
        add(f"p{proto} zlib literal valid", zs_, ents,
            [{"ndx": 1, "tokens": zlib_tokens(data, []), "content": data}],
            0, "", check=tree_is({"z.txt": ("f", data)}))
        add(f"p{proto} zlib garbage", zs_, ents,
            [{"ndx": 1, "tokens": deflated(b"\xff" * 30) + b"\x00",
              "content": data}], CODEC, "")

    # -- temp files a killed berth left (its mark names a dead process)
    # go with the next push; rsync's, a live process's and a forged mark
    # stay.
    def setup_stale(dst, watch):
        setup_old(dst, watch)
        os.makedirs(os.path.join(dst, "sub"))
        for n in (DEAD_TEMP, "sub/" + DEAD_TEMP, *KEEP_DOTS):
            with open(os.path.join(dst, n), "wb") as f:
                f.write(b"partial")

    def stale_gone(dst):
        probs = [f"{n} left" for n in (DEAD_TEMP, "sub/" + DEAD_TEMP)
                 if os.path.exists(os.path.join(dst, n))]
        return probs + [f"{n} removed" for n in KEEP_DOTS
                        if not os.path.exists(os.path.join(dst, n))]

    add("temp files of a dead berth", st, TREE, new_answers(TREE, 31), 0,
        "", setup=setup_stale, check=stale_gone)

    # -- the ends of the stream.
    add("no NDX_DONE at all", st, TREE, new_answers(TREE, 31), 12, "",
        dones=0)
    add("extra NDX_DONEs", st, TREE, new_answers(TREE, 31), 0, "",
        dones=9)
    add("list end marker missing", st, TREE[:2], [], 12, "", end=b"")
    add("io_error 1 in the end marker", st, TREE, new_answers(TREE, 31), 23,
        "", end=b"\x00\x01")
    return cases


# ---------------------------------------------------------------------

def tmp_mark(name, pid):
    """berth's temp-name mark (engine/common/tmpname.c), for the test."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    p = ""
    while True:
        p = digits[pid % 36] + p
        pid //= 36
        if not pid:
            break
    out = name + "~" + p
    h = 0x62657274
    for ch in out.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
    c = h % 36 ** 4
    return out + "".join(digits[c // 36 ** k % 36] for k in (3, 2, 1, 0))


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def forged(name):
    """@name with a dead process's mark whose check is wrong (its last
    character changed, never to itself)."""
    m = tmp_mark(name, dead_pid())
    return m[:-1] + ("z" if m[-1] != "z" else "y")


DEAD_TEMP = tmp_mark(".a.txt.Qw3rTy", dead_pid())
KEEP_DOTS = (".a.txt.Ab12Cd",  # rsync's own
             tmp_mark(".a.txt.Zx9Yw8", os.getpid()),  # a live process
             forged(".a.txt.Mn4Bv5"))


# What a receiver leaves when it fails to clean up: a temp file, rsync's
# ".NAME.XXXXXX" with or without berth's mark ("~" + pid + check, both
# base 36), or the default partial directory.  Not any name with a dot in
# front: a mutated list can name ".z.txt" (a shared-prefix byte taking
# the "." of the entry before), which both receivers then make.
LEFTOVER = re.compile(r"^\..*\.[A-Za-z0-9]{6}(~[0-9a-z]+)?$|^\.~tmp~$")


def run(berth, st, stream, setup, keep=None):
    work = tempfile.mkdtemp(prefix="bhs-", dir="/tmp")
    dst, watch, cwd = (os.path.join(work, n) for n in ("dst", "watch",
                                                       "cwd"))
    for d in (dst, watch, cwd):
        os.mkdir(d)
    with open(os.path.join(watch, "victim"), "wb") as f:
        f.write(WATCH)
    setup(dst, watch)
    # Sent targets and rules name the watched directory: the placeholder
    # has its length, so no length field changes.
    assert len(work) == len(WORK_PATH)
    stream = stream.replace(WORK_PATH, work.encode())
    before = snapshot(work, dst)
    argv = [berth] + [a.replace(WORK_PATH.decode(), work)
                      for a in st.argv(dst)]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=stream, capture_output=True,
                           timeout=TIMEOUT, cwd=cwd)
        rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        if WATCH in p.stdout:
            err += "\nLEAK: the watched file's bytes were sent"
    except subprocess.TimeoutExpired:
        rc, err = None, f"hang: no exit within {TIMEOUT} s"
    probs = violations(rc, err, work, dst, before)
    return rc, err, probs, work, time.monotonic() - t0


def snapshot(work, dst):
    out = {}
    for d, ds, fs in os.walk(work):
        if d == dst or d.startswith(dst + os.sep):
            continue
        for n in ds + fs:
            p = os.path.join(d, n)
            if p == dst:
                continue
            st = os.lstat(p)
            data = (open(p, "rb").read() if os.path.isfile(p) and
                    not os.path.islink(p) else None)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    return out


def violations(rc, err, work, dst, before):
    probs = []
    if rc is None:
        return [err]
    if rc < 0:
        probs.append(f"killed by signal {-rc}")
    if "\nLEAK: " in err:
        probs.append("a file outside the destination was read and sent")
    for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer",
                "ThreadSanitizer"):
        if bad in err:
            probs.append("sanitizer: " + err.strip()[-800:])
            break
    for d, ds, fs in os.walk(dst):
        for n in fs + ds:
            if LEFTOVER.match(n) and n not in KEEP_DOTS:
                probs.append(f"temp file left: {os.path.join(d, n)}")
    after = snapshot(work, dst)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        probs.append("escape: outside the destination changed: "
                     f"{[c[0] for c in changed][:5]}")
    if os.path.exists("/abs") or os.path.exists("/x"):
        probs.append("wrote at the root of the file system")
    return probs


def mutate(stream, rng, start):
    """Flips, insertions, deletions, duplicated and overwritten runs,
    after the first @start bytes."""
    b = bytearray(stream)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        if len(b) <= start + 1:
            break
        off = rng.randrange(start, len(b))
        op = rng.randrange(6)
        if op == 0:
            b[off] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[off:off] = bytes(rng.randrange(256)
                               for _ in range(rng.choice((1, 2, 4, 9))))
        elif op == 2:
            del b[off:off + rng.choice((1, 2, 4, 16))]
        elif op == 3:
            b[off] = rng.choice((0x00, 0x7f, 0x80, 0xff, 0xfe, 0x40))
        elif op == 4:
            n = rng.choice((2, 8, 32))
            b[off:off] = b[off:off + n]
        else:
            b[off:off + 4] = rng.choice((b"\xff\xff\xff\x7f", b"\x00" * 4,
                                         b"\x00\x00\x00\x80"))
    return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--fuzz", type=int, default=60)
    ap.add_argument("--truncate-step", type=int, default=7)
    ap.add_argument("--minutes", type=float, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    berth = os.path.abspath(args.berth)
    cases = [c for c in catalog() if args.only in c[0]]
    dcases = [c for c in hostile_daemon.daemon_cases(types.SimpleNamespace(
        Stream=Stream, TREE=TREE, new_answers=new_answers, tree_is=tree_is))
        if args.only in c[0]]
    if args.list:
        for c in cases + dcases:
            print(c[0])
        return 0
    rcs = collections.Counter()
    tried = failed = 0
    t_start = time.monotonic()

    def tally(name, rc, probs, ok_line):
        """Count one run; print its problems, or (-v) its ok line."""
        nonlocal tried, failed
        tried += 1
        rcs[rc] += 1
        if probs:
            failed += 1
            print(f"FAIL {name}")
            for p in probs:
                print("     " + p)
        elif args.v:
            print(f"ok   {name} {ok_line()}")

    def one(name, st, stream, setup, want, msg, check):
        rc, err, probs, work, dt = run(berth, st, stream, setup)
        if want is not None and rc != want:
            probs.append(f"exit {rc}, want {want}: {err.strip()[-300:]}")
        if msg and msg not in err:
            probs.append(f"message {msg!r} missing: {err.strip()[-300:]}")
        if check and not probs:
            probs += check(os.path.join(work, "dst"))
        last = err.strip().splitlines()[-1:] or [""]
        tally(name, rc, probs,
              lambda: f"(exit {rc}, {dt:.1f}s) {last[0][:100]}")
        shutil.rmtree(work, ignore_errors=True)

    for c in cases:
        one(*c)
    # The daemon's cases: their own runner (a connection, not --server),
    # then its valid streams cut before their sessions.
    n_dcuts = 0
    for c in dcases + hostile_daemon.daemon_cuts(dcases):
        n_dcuts += "cut at" in c[0]
        rc, said, probs = hostile_daemon.run_case(berth, c)
        last = [ln for ln in said.strip().splitlines()
                if "@ERROR" in ln or "@RSYNCD: OK" in ln][-1:] or [""]
        tally(c[0], rc, probs, lambda: f"(exit {rc}) {last[0][:100]}")
    n_catalog = tried - n_dcuts
    # (The dead berth's temp files stay when a cut stream ends before
    # the generator looks: not a case for the sweeps.)
    # (Nor are the bombs: every cut would write up to 64 MiB; nor a list
    # of 34 KB whose cuts all end in the same list decoder.)
    valid = [c for c in cases if c[4] == 0 and "dead berth" not in c[0]
             and "(bomb)" not in c[0] and "(no sweep)" not in c[0]]
    # Truncation sweep: every valid stream cut short, every k-th byte.
    for name, st, stream, setup, _, _, _ in valid:
        # At most ~300 cuts of a long stream (the 10000 rules).
        for cut in range(4, len(stream), max(args.truncate_step,
                                             len(stream) // 300)):
            one(f"{name} cut at {cut}", st, stream[:cut], setup, None, "",
                None)
    n_trunc = tried - n_catalog
    # Mutations of the valid streams (the handshake left alone).
    rng = random.Random(args.seed)
    k = 0
    while valid and (k < args.fuzz or time.monotonic() - t_start <
                     args.minutes * 60):
        name, st, stream, setup, _, _, _ = valid[k % len(valid)]
        one(f"{name} mutation {k} (seed {args.seed})", st,
            mutate(stream, rng, 4), setup, None, "", None)
        k += 1
    print(f"hostile_sender: {tried} streams ({n_catalog} catalog, "
          f"{n_trunc} truncated, {k} mutated), {failed} failed; exit codes "
          + ", ".join(f"{r}: {n}" for r, n in sorted(
              rcs.items(), key=lambda x: (x[0] is None, x[0] or 0))))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
