#!/usr/bin/env python3
"""Interop: the stock rsync client pushes the same tree into `rsync --server`
and into `berth --server`; the destinations, exit codes and itemized output
must be the same.

    interop.py --berth PATH [--only NAME ...] [--list] [--keep]

Each scenario builds its source (and, for update scenarios, an existing
destination) deterministically, then runs, for each receiver:

    rsync <opts> -e RSH --rsync-path=<receiver> SRC/ localhost:DST/

where RSH drops the host argument and runs the rest.  Destinations are
compared entry by entry: type, size, content, permission bits, mtime (ns),
owner and group, symlink target, device number, hard-link structure, and
xattrs (user.* only; as root every namespace but system.*).  Prints one line per scenario and a closing
'N passed, N failed' line; exits 1 if any failed.
"""
import argparse
import hashlib
import os
import random
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RSH = os.path.join(HERE, "rsh")
BASE_MTIME = 1700000000
IS_ROOT = os.geteuid() == 0


# ---------------------------------------------------------------- trees

def write(path, data, mode=0o644, mtime=BASE_MTIME, ns=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    os.utime(path, ns=(mtime * 10**9 + ns, mtime * 10**9 + ns))


def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def touch_dirs(root, mtime=BASE_MTIME):
    """Pin symlink and special-file mtimes, then directory mtimes
    bottom-up, so trees are reproducible."""
    t = (mtime * 10**9, mtime * 10**9)
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                os.utime(os.path.join(d, n), ns=t, follow_symlinks=False)
    for d, _, _ in sorted(os.walk(root), key=lambda x: -x[0].count("/")):
        os.utime(d, ns=t, follow_symlinks=False)


def tree_small(root, rng):
    write(f"{root}/a.txt", b"hello rsync\n")
    write(f"{root}/sub/b.txt", rand_bytes(rng, 36), 0o600, BASE_MTIME + 1,
          500000000)
    write(f"{root}/sub/deeper/c.bin", rand_bytes(rng, 70000), 0o755)
    write(f"{root}/empty", b"", 0o640)
    os.symlink("a.txt", f"{root}/link")
    os.symlink("../nowhere", f"{root}/sub/dangling")
    os.makedirs(f"{root}/emptydir", 0o750)
    touch_dirs(root)


def tree_many(root, rng, files=400, dirs=20):
    for i in range(files):
        d = f"d{i % dirs:02d}"
        n = rng.randint(0, 16 * 1024)
        write(f"{root}/{d}/f{i:04d}", rand_bytes(rng, n), 0o644,
              BASE_MTIME + i, rng.randint(0, 999999999))
    touch_dirs(root)


def tree_types(root, rng):
    tree_small(root, rng)
    write(f"{root}/h1", b"linked content\n")
    os.link(f"{root}/h1", f"{root}/h2")
    os.link(f"{root}/h1", f"{root}/sub/h3")
    os.mkfifo(f"{root}/fifo", 0o644)
    if IS_ROOT:
        os.mknod(f"{root}/cdev", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    touch_dirs(root)


def tree_edge(root, rng):
    """Issue 5's list: sizes 0, 1, 700, 64K-1/64K/64K+1, > 1 MB; names with
    spaces and UTF-8; relative, absolute and dangling symlinks; modes 0600,
    0755, 0444; nested and empty directories."""
    for n in (0, 1, 700, 65535, 65536, 65537, 1536 * 1024):
        write(f"{root}/size-{n}", rand_bytes(rng, n), 0o644, BASE_MTIME + n % 97)
    write(f"{root}/with space.txt", b"spaces\n", 0o600)
    write(f"{root}/\u00fctf-8 \u00f1ame", "\u00fc".encode() * 5, 0o755)
    write(f"{root}/\u65e5\u672c/\u8a9e", b"nested utf-8\n", 0o444)
    write(f"{root}/a/b/c/d/deep.txt", b"deep\n", 0o600)
    os.makedirs(f"{root}/empty/nested/dirs")
    os.symlink("size-700", f"{root}/rel-link")
    os.symlink("/etc/hostname", f"{root}/abs-link")
    os.symlink("does/not/exist", f"{root}/a/dangling")
    touch_dirs(root)


def same_as_source(builder):
    """A destination that already equals what the push would produce."""
    return lambda root, rng: builder(root, random.Random("same"))


def tree_sort(root, rng):
    for name in ["b-", "b0", "b_file", "zz", "B", "a b", "ü", ".hidden"]:
        write(f"{root}/{name}", name.encode())
    for d in ["b-c", "b.d", "b"]:
        write(f"{root}/{d}/x", d.encode())
    touch_dirs(root)


def tree_owners(root, rng):
    tree_small(root, rng)
    if IS_ROOT:
        os.chown(f"{root}/sub/b.txt", 1, 1)
        os.chown(f"{root}/a.txt", 0, 1)
    touch_dirs(root)


def big_file(root, rng, size=3 * 1024 * 1024):
    write(f"{root}/big.bin", rand_bytes(rng, size))
    touch_dirs(root)


# ---------------------------------------------------------------- xattrs
# -X scenarios run on tmpfs (/dev/shm): values over ~4 KiB do not fit an
# ext4 inode without ea_inode, and the 5000-byte values are the point.

def xa(path, name, value):
    os.setxattr(path, name, value, follow_symlinks=False)


def xa_values():
    r = random.Random("xattr values")
    return {"short": b"value-1", "l200": rand_bytes(r, 200),
            "l5000": rand_bytes(r, 5000), "l100": rand_bytes(r, 100),
            "l40": b"L" * 40}


def tree_xattrs(root, rng):
    """tree_small with user xattrs on files, directories and the root:
    short values, 200 and 5000 bytes (sent as MD5s), an empty value, and
    several files sharing one set; as root also trusted.* on symlinks."""
    v = xa_values()
    tree_small(root, random.Random("xattrs"))
    xa(root, "user.root", b"top")
    xa(f"{root}/a.txt", "user.short", v["short"])
    xa(f"{root}/a.txt", "user.long", v["l200"])
    xa(f"{root}/sub/b.txt", "user.big", v["l5000"])
    xa(f"{root}/sub/b.txt", "user.short", v["short"])
    xa(f"{root}/empty", "user.long", v["l200"])
    xa(f"{root}/empty", "user.short", v["short"])
    xa(f"{root}/sub", "user.dir", v["l100"])
    xa(f"{root}/emptydir", "user.e", b"")
    for i in range(5):
        write(f"{root}/s{i}", b"shared set %d\n" % i)
        xa(f"{root}/s{i}", "user.shared", v["l40"])
        xa(f"{root}/s{i}", "user.z", b"z")
    # Read-only items: a receiver that is not root needs u+w to change
    # their user.* attributes (rsync adds it for the change).
    write(f"{root}/ro.txt", b"read-only\n", 0o444)
    xa(f"{root}/ro.txt", "user.ro", b"r")
    os.makedirs(f"{root}/rodir")
    xa(f"{root}/rodir", "user.ro", b"r")
    os.chmod(f"{root}/rodir", 0o555)
    if IS_ROOT:
        xa(f"{root}/link", "trusted.sym", v["l200"])
        xa(f"{root}/sub/dangling", "trusted.s", b"x")
    touch_dirs(root)


def tree_xattrs_v2(root, rng):
    """tree_xattrs after xattr-only edits: one added, a long value
    changed, one removed, the root's, a directory's and a symlink's
    changed."""
    v = xa_values()
    tree_xattrs(root, rng)
    xa(root, "user.root", v["l100"])
    xa(f"{root}/ro.txt", "user.ro", v["l200"])
    xa(f"{root}/rodir", "user.ro", v["l200"])
    xa(f"{root}/a.txt", "user.added", b"new one")
    xa(f"{root}/a.txt", "user.long", v["l5000"])
    os.removexattr(f"{root}/sub/b.txt", "user.short")
    xa(f"{root}/sub", "user.dir", v["l200"])
    write(f"{root}/s4", b"shared set 4, new content\n")
    xa(f"{root}/s4", "user.shared", v["l40"])
    xa(f"{root}/s4", "user.z", b"z")
    if IS_ROOT:
        xa(f"{root}/link", "trusted.sym", v["l5000"])
    touch_dirs(root)


def dest_xattrs_old(root, rng):
    """tree_xattrs, plus xattrs the source does not have (to be removed),
    and shared-set files that match, differ or lack the value: s0 matches
    and has other perms (its record makes the value known), s1 differs,
    s2 lacks it, s3 has a stale rsync-internal attribute."""
    tree_xattrs(root, rng)
    xa(f"{root}/sub/deeper/c.bin", "user.extra", b"to be removed")
    xa(f"{root}/emptydir", "user.extra", b"x" * 300)
    os.chmod(f"{root}/s0", 0o600)
    xa(f"{root}/s1", "user.shared", b"M" * 40)
    os.removexattr(f"{root}/s2", "user.shared")
    xa(f"{root}/s3", "user.rsync.%aacl", b"stale")
    if IS_ROOT:
        xa(f"{root}/a.txt", "trusted.extra", b"root only")
        xa(f"{root}/link", "trusted.extra", b"e")
    touch_dirs(root)


def tree_xattrs_types(root, rng):
    """Hard links (one inode, one set), specials, and as root devices and
    security.* / trusted.* values, including a file capability on a file
    whose owner changes (a chown drops security.capability: rsync sets
    xattrs after the owner)."""
    v = xa_values()
    tree_types(root, random.Random("xattrs"))
    xa(f"{root}/h1", "user.link", v["l200"])
    xa(f"{root}/h1", "user.s", b"s")
    if IS_ROOT:
        # Linux takes user.* on files and directories only.
        xa(f"{root}/fifo", "trusted.f", b"fifo")
        xa(f"{root}/cdev", "trusted.dev", v["l100"])
        xa(f"{root}/a.txt", "trusted.t", v["l200"])
        xa(f"{root}/a.txt", "security.sec", b"s")
        os.chown(f"{root}/sub/b.txt", 1, 1)
        # vfs_cap_data v2, effective: cap_net_bind_service
        xa(f"{root}/sub/b.txt", "security.capability",
           struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0))
    touch_dirs(root)


def dest_xattrs_types_old(root, rng):
    """tree_xattrs_types with other values on the link group, the fifo
    and (root) the device, and an extra one on the group."""
    tree_xattrs_types(root, rng)
    xa(f"{root}/h1", "user.link", b"old" * 50)
    xa(f"{root}/h2", "user.extra", b"x")
    if IS_ROOT:
        xa(f"{root}/fifo", "trusted.f", b"old fifo")
        xa(f"{root}/cdev", "trusted.extra", b"x")
    touch_dirs(root)


def tree_xattrs_XX(root, rng):
    """rsync's own user.rsync.%* attributes: copied only with -XX."""
    tree_xattrs(root, rng)
    xa(f"{root}/a.txt", "user.rsync.%stat", b"100644 0,0 0:0")
    touch_dirs(root)


def xattr_snapshot_files(root, keep_values):
    v = xa_values()
    for i in range(6):
        write(f"{root}/same{i}", b"unchanged %d\n" % i)
        xa(f"{root}/same{i}", "user.v", v["l200"])
        write(f"{root}/diff{i}", b"xattrs differ %d\n" % i)
        xa(f"{root}/diff{i}", "user.v", v["l200"] if keep_values
           else v["l100"])
        xa(f"{root}/diff{i}", "user.w", b"w")
    touch_dirs(root)


def tree_xattr_snapshot(root, rng):
    xattr_snapshot_files(root, True)
    write(f"{root}/brand-new", b"new\n")
    xa(f"{root}/brand-new", "user.v", xa_values()["l200"])
    touch_dirs(root)


def dest_xattr_snapshot(root, rng):
    prev = os.path.join(os.path.dirname(root), "prev")
    if not os.path.exists(prev):
        xattr_snapshot_files(prev, False)
    os.rmdir(root)


def tree_xattrs_big(root, rng):
    """A 5000-byte value on ext4 (no ea_inode): setting it fails on the
    receiver, which reports it and goes on (exit 23)."""
    write(f"{root}/big", b"big xattr\n")
    xa(f"{root}/big", "user.small", b"fits")
    write(f"{root}/ok", b"fine\n")
    xa(f"{root}/ok", "user.small", b"fits")
    touch_dirs(root)


def xattr_big_on_source(root):
    """Set after the tree is built: the source lives on tmpfs."""
    xa(f"{root}/big", "user.big", xa_values()["l5000"])


# ------------------------------------------------------------- scenarios
# name: (source builder, destination builder or None, extra rsync options)

def dest_stale(root, rng):
    """An older copy of tree_small: some files differ, some are extra."""
    tree_small(root, random.Random(1))
    write(f"{root}/a.txt", b"old content\n", mtime=BASE_MTIME - 50)
    write(f"{root}/extra.txt", b"not in source")
    touch_dirs(root, BASE_MTIME - 100)


def edit_big(root, rng):
    """The source side of a delta: scattered edits, an insertion, a cut."""
    big_file(root, random.Random("big"))
    p = f"{root}/big.bin"
    with open(p, "rb") as f:
        data = bytearray(f.read())
    for k in range(20):
        off = rng.randrange(len(data) - 100)
        data[off:off + 50] = rand_bytes(rng, 50)
    data[100000:100000] = rand_bytes(rng, 777)       # shifts what follows
    del data[2000000:2003000]
    write(p, bytes(data), mtime=BASE_MTIME + 5)
    touch_dirs(root)


MARK = b"CORRUPT-ME-PLEASE"


def tree_redo(root, rng):
    """A file whose literal data carries MARK (the relay flips a bit)."""
    tree_small(root, rng)
    write(f"{root}/redo.txt", b"x" * 5000 + MARK + b"y" * 5000)
    write(f"{root}/after.txt", b"files after the redo one\n")
    touch_dirs(root)


def dest_redo(root, rng):
    """An old redo.txt: the redo pass then uses it as a basis."""
    write(f"{root}/redo.txt", b"x" * 4000 + b"old" + b"y" * 5000)
    touch_dirs(root, BASE_MTIME - 10)


def tree_deep(root, rng):
    """Incremental recursion: several hundred directory lists (an empty
    one among them), more entries than the sender's look-ahead (~1000),
    so lists are released and freed mid-session, and a deep chain."""
    for i in range(60):
        for j in range(6):
            d = f"{root}/t{i:02d}/s{j}"
            for k in range(rng.randint(1, 8)):
                write(f"{d}/f{k}", rand_bytes(rng, rng.randint(0, 3000)),
                      0o644, BASE_MTIME + k)
            if j == 2:
                os.makedirs(f"{d}/empty", 0o755)
        write(f"{root}/t{i:02d}/top.txt", rand_bytes(rng, 100))
    chain = root
    for i in range(40):
        chain += f"/c{i}"
        write(f"{chain}/leaf{i}", rand_bytes(rng, 50), 0o600)
    os.symlink("t00/top.txt", f"{root}/t01/s1/link")
    write(f"{root}/zz.txt", b"last\n")
    touch_dirs(root)


def dest_deep_stale(root, rng):
    """Part of tree_deep, older or changed, plus extraneous files and
    directories inside sub-directories (deleted in their own lists)."""
    tree_deep(root, random.Random("inc_deep"))
    for i in range(0, 60, 7):
        write(f"{root}/t{i:02d}/s1/stale-{i}", b"extraneous\n")
        write(f"{root}/t{i:02d}/olddir/deeper/x", b"old tree\n")
        write(f"{root}/t{i:02d}/s0/f0", rand_bytes(rng, 777), 0o600)
    shutil.rmtree(f"{root}/t05")
    os.remove(f"{root}/c0/c1/c2/leaf2")
    os.remove(f"{root}/c0/c1/c2/c3/c4/leaf4")
    os.makedirs(f"{root}/c0/c1/c2/c3/c4/leaf4")  # a dir where a file goes
    write(f"{root}/c0/c1/c2/c3/c4/leaf4/inside", b"in the way\n")
    touch_dirs(root, BASE_MTIME - 50)


def tree_one(root, rng):
    """A directory pushed without a trailing slash: the initial list has
    exactly one entry ("top"), and its list follows right after it."""
    write(f"{root}/top/a.txt", b"a\n")
    write(f"{root}/top/sub/b.txt", rand_bytes(rng, 5000))
    write(f"{root}/top/sub/deeper/c.txt", b"c\n", 0o600)
    os.makedirs(f"{root}/top/emptydir")
    touch_dirs(root)


def dest_one(root, rng):
    write(f"{root}/top/sub/stale.txt", b"stale\n")
    write(f"{root}/top/a.txt", b"old a\n")
    write(f"{root}/other/kept", b"not part of the transfer\n")
    touch_dirs(root, BASE_MTIME - 50)


def tree_redo_deep(root, rng):
    """The file that fails verification is in a sub-directory's list."""
    tree_small(root, rng)
    write(f"{root}/sub/deeper/redo.txt", b"x" * 5000 + MARK + b"y" * 5000)
    write(f"{root}/sub/deeper/z-after.txt", b"after the redo one\n")
    write(f"{root}/zzz/last.txt", b"a later list\n")
    touch_dirs(root)


def dest_symlink_attack(root, rng):
    """The destination's sub/ and sub/deeper are symlinks to directories
    outside it: a receiver must replace them, never write through them."""
    outside = root + "-outside"
    os.makedirs(outside + "/deeper", exist_ok=True)
    os.symlink(outside, f"{root}/sub")
    os.symlink(outside, f"{root}/emptydir")
    os.symlink("../../etc", f"{root}/link")


def tree_snapshot(root, rng):
    """tree_many, then a few files changed since the previous snapshot."""
    tree_many(root, random.Random("snap"), files=300, dirs=10)
    for i in range(0, 300, 37):
        p = f"{root}/d{i % 10:02d}/f{i:04d}"
        with open(p, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2:len(data) // 2] = b"new bytes in the middle"
        write(p, bytes(data), 0o644, BASE_MTIME + 77777)
    write(f"{root}/brand-new", b"not in the previous snapshot\n")
    touch_dirs(root)


def prev_snapshot(base):
    """The previous snapshot beside the destinations: ../prev."""
    prev = os.path.join(base, "prev")
    if not os.path.exists(prev):
        tree_many(prev, random.Random("snap"), files=300, dirs=10)
    return prev


def dest_snapshot(root, rng):
    prev_snapshot(os.path.dirname(root))
    os.rmdir(root)  # the new snapshot does not exist yet


def dest_snapshot_perms(root, rng):
    """The previous snapshot with other permissions on some files: the
    same content with other attributes is copied, not linked."""
    prev = os.path.join(os.path.dirname(root), "prev")
    if not os.path.exists(prev):
        tree_many(prev, random.Random("snap"), files=300, dirs=10)
        for i in range(1, 300, 41):
            os.chmod(f"{prev}/d{i % 10:02d}/f{i:04d}", 0o600)
        touch_dirs(prev)
    os.rmdir(root)


def dest_extraneous(root, rng):
    """dest_stale plus extraneous dirs, symlinks and nested files."""
    dest_stale(root, rng)
    write(f"{root}/olddir/x.txt", b"x")
    write(f"{root}/olddir/deeper/y.txt", b"y")
    os.symlink("nowhere", f"{root}/oldlink")
    write(f"{root}/sub/stale-in-sub", b"z")
    write(f"{root}/keep-me", b"protected")
    write(f"{root}/junk.tmp", b"excluded")
    write(f"{root}/top-only", b"anchored rule")
    write(f"{root}/sub/top-only", b"not anchored here")
    touch_dirs(root, BASE_MTIME - 100)


def tree_append(root, rng):
    """Logs that grew, one that shrank, one new, one unchanged."""
    base = rand_bytes(random.Random("log"), 50000)
    write(f"{root}/grow.log", base + b"appended lines\n" * 300,
          mtime=BASE_MTIME + 60)
    write(f"{root}/grow2.log", base[:20000], mtime=BASE_MTIME + 60)
    write(f"{root}/shrunk.log", base[:100], mtime=BASE_MTIME + 60)
    write(f"{root}/new.log", b"brand new\n")
    write(f"{root}/same.log", base[:777])
    touch_dirs(root)


def dest_append(root, rng):
    base = rand_bytes(random.Random("log"), 50000)
    write(f"{root}/grow.log", base)
    write(f"{root}/grow2.log", base[:3000])
    write(f"{root}/shrunk.log", base[:5000])
    write(f"{root}/same.log", base[:777])
    touch_dirs(root, BASE_MTIME - 10)


def dest_append_bad(root, rng):
    """grow.log's kept prefix differs from the source's: verification
    fails and the file is sent again in full."""
    dest_append(root, rng)
    write(f"{root}/grow.log", b"X" * 50000)
    touch_dirs(root, BASE_MTIME - 10)


def tree_sparse(root, rng):
    """Files with long zero runs (holes with --sparse) and some data."""
    z = bytes(1 << 20)
    write(f"{root}/holes.img", z + b"data in the middle" + z + b"end")
    write(f"{root}/zeros", bytes(3 * 4096 + 100))
    write(f"{root}/dense", rand_bytes(rng, 70000))
    touch_dirs(root)


TMPDIR = "/tmp/berth-interop-tmpdir"


def dest_stale_tmpdir(root, rng):
    """dest_stale, and a temp dir beside the destinations."""
    dest_stale(root, rng)
    os.makedirs(TMPDIR, exist_ok=True)


def dest_big(root, rng):
    big_file(root, random.Random("big"))


def tree_big(root, rng):
    big_file(root, random.Random("big"))


def dest_partial(root, rng):
    """No big.bin yet, a 1 MiB partial copy of it in .part/ (--partial-dir)
    and another file's partial that must stay."""
    tree_big(root, rng)
    with open(f"{root}/big.bin", "rb") as f:
        data = f.read()
    os.remove(f"{root}/big.bin")
    write(f"{root}/.part/big.bin", data[:1 << 20], mtime=BASE_MTIME - 7)
    write(f"{root}/.part/gone.bin", b"a partial of something else")
    touch_dirs(root, BASE_MTIME - 100)


def dest_partial_old(root, rng):
    """An old big.bin and a partial copy of the new one (the basis)."""
    edit_big(root, random.Random("pd"))
    with open(f"{root}/big.bin", "rb") as f:
        data = f.read()
    write(f"{root}/.part/big.bin", data[:1 << 21], mtime=BASE_MTIME - 7)
    dest_big(root, rng)
    touch_dirs(root, BASE_MTIME - 100)


def dest_partial_same(root, rng):
    """big.bin is already up to date; a stale partial of it is removed."""
    tree_big(root, rng)
    write(f"{root}/.part/big.bin", b"stale")
    touch_dirs(root, BASE_MTIME - 100)


def tree_clash(root, rng):
    write(f"{root}/clash", b"now a file\n")
    write(f"{root}/emptyclash", b"also a file\n")
    os.makedirs(f"{root}/wasfile")
    write(f"{root}/wasfile/x", b"x")
    touch_dirs(root)


def dest_types_replaced(root, rng):
    """tree_types' names with other things in place: a symlink to another
    target, a file where a symlink and where the fifo comes, a symlink
    where the device comes; -b keeps each (rsync's make_backup)."""
    tree_small(root, random.Random(1))
    os.unlink(f"{root}/link")
    os.symlink("sub/b.txt", f"{root}/link")
    os.unlink(f"{root}/sub/dangling")
    write(f"{root}/sub/dangling", b"a file where a symlink comes")
    write(f"{root}/fifo", b"a file where the fifo comes")
    os.symlink("a.txt", f"{root}/cdev")
    touch_dirs(root, BASE_MTIME - 10)


def dest_clash(root, rng):
    write(f"{root}/clash/inside", b"a non-empty dir in the way")
    os.makedirs(f"{root}/emptyclash")
    write(f"{root}/wasfile", b"a file where a dir comes")
    touch_dirs(root, BASE_MTIME - 10)


def dest_perms(root, rng):
    """Same names as tree_small, other modes and contents."""
    tree_small(root, random.Random(1))
    os.chmod(f"{root}/a.txt", 0o600)
    os.chmod(f"{root}/sub/deeper/c.bin", 0o644)
    write(f"{root}/sub/b.txt", b"x" * 36, 0o666, BASE_MTIME - 7)
    touch_dirs(root, BASE_MTIME - 100)


def dest_same_content(root, rng):
    """tree_small's content, but older mtimes: -c sees equal files."""
    tree_small(root, random.Random("update_c"))
    for p in ("a.txt", "empty", "sub/b.txt"):
        os.utime(f"{root}/{p}", ns=((BASE_MTIME - 9) * 10**9,) * 2)
    write(f"{root}/sub/deeper/c.bin", b"different", 0o755)
    touch_dirs(root, BASE_MTIME - 100)


SCENARIOS = {
    "initial_a": (tree_small, None, ["-a"]),
    "initial_a_noinc": (tree_small, None, ["-a", "--no-inc-recursive"]),
    "initial_proto30": (tree_small, None, ["-a", "--protocol=30"]),
    "initial_proto31": (tree_small, None, ["-a", "--protocol=31"]),
    "initial_r_only": (tree_small, None, ["-r"]),
    "edge_a": (tree_edge, None, ["-a"]),
    "edge_rlpt": (tree_edge, None, ["-rlpt"]),
    "edge_noinc_proto31": (tree_edge, None,
                           ["-a", "--no-inc-recursive", "--protocol=31"]),
    "rerun_nothing": (lambda r, _: tree_edge(r, random.Random("same")),
                      same_as_source(tree_edge), ["-a"]),
    "single_file_into_dir": (tree_edge, None, ["-a"],
                             {"single": "size-700", "target": ""}),
    "single_file_new_name": (tree_edge, "MKDIR", ["-a"],
                             {"single": "size-65536", "target": "renamed"}),
    "initial_secluded": (tree_small, None, ["-a", "-s"]),
    "many_files": (tree_many, None, ["-a"]),
    # --fsync without BERTH_DURABILITY: batch durability, same results.
    "fsync_many": (tree_many, None, ["-a", "--fsync"]),
    "fsync_delete_H": (tree_types, dest_extraneous,
                       ["-aH", "--fsync", "--delete"]),
    "types_H": (tree_types, None, ["-aH"]),
    "types_H_again": (lambda r, _: tree_types(r, random.Random(0)),
                      lambda r, _: tree_types(r, random.Random(0)), ["-aH"]),
    "sort_order": (tree_sort, None, ["-a"]),
    "owners_numeric": (tree_owners, None, ["-a", "--numeric-ids"]),
    "owners_names": (tree_owners, None, ["-a"]),
    "usermap": (tree_owners, None,
                ["-a", "--usermap=daemon:bin,0:2", "--groupmap=*:sys"]),
    "chown": (tree_owners, None, ["-a", "--chown=bin:daemon"]),
    "update_stale": (tree_small, dest_stale, ["-a"]),
    "dry_run_update": (tree_small, dest_stale, ["-a", "-n"]),
    "dry_run_initial": (tree_small, None, ["-a", "-n"]),
    "dry_run_delta": (edit_big, dest_big, ["-a", "-n"]),
    "update_delta": (edit_big, dest_big, ["-a"]),
    "update_delta_proto30": (edit_big, dest_big, ["-a", "--protocol=30"]),
    "update_delta_xxh3": (edit_big, dest_big, ["-a", "--cc=xxh3"]),
    "update_delta_xxh64": (edit_big, dest_big, ["-a", "--cc=xxh64"]),
    "update_delta_md5": (edit_big, dest_big, ["-a", "--cc=md5"]),
    "update_delta_md4": (edit_big, dest_big, ["-a", "--cc=md4"]),
    "update_delta_B": (edit_big, dest_big, ["-a", "-B", "2048"]),
    "update_whole_W": (edit_big, dest_big, ["-a", "-W"]),
    "preallocate": (tree_edge, None, ["-a", "--preallocate"]),
    "temp_dir": (tree_small, dest_stale_tmpdir, ["-a", "--temp-dir=" + TMPDIR]),
    "sparse": (tree_sparse, None, ["-a", "--sparse"], {"holes": "holes.img"}),
    "preallocate_delta": (edit_big, dest_big, ["-a", "--preallocate"]),
    "append": (tree_append, dest_append, ["-a", "--append"]),
    "backup": (tree_small, dest_extraneous, ["-a", "--backup", "--delete"]),
    "backup_suffix": (edit_big, dest_big, ["-a", "-b", "--suffix=.old"]),
    "backup_dir": (tree_small, dest_extraneous,
                   ["-a", "--delete", "--backup-dir=bak"]),
    "backup_dir_suffix": (tree_small, dest_stale,
                          ["-a", "-b", "--backup-dir=old/x",
                           "--suffix=.1", "--delete"]),
    "backup_dir_delta": (edit_big, dest_big, ["-a", "--backup-dir=bak"]),
    "backup_types": (tree_types, dest_types_replaced, ["-a", "-b"]),
    "backup_dir_types": (tree_types, dest_types_replaced,
                         ["-a", "--backup-dir=bak", "--suffix=.was"]),
    "backup_dir_none_needed": (tree_small, None,
                               ["-a", "--backup-dir=bak"]),
    "min_max_size": (tree_edge, None,
                     ["-a", "--min-size=2", "--max-size=65536"]),
    "safe_links": (tree_edge, None, ["-a", "--safe-links"]),
    "remove_source_files": (tree_small, dest_stale,
                            ["-a", "--remove-source-files"],
                            {"fresh_src": True}),
    "remove_source_types": (tree_types, None, ["-aH", "--remove-source-files"],
                            {"fresh_src": True}),
    "inplace_delta": (edit_big, dest_big, ["-a", "--inplace"],
                      {"same_inode": True}),
    "inplace_stale": (tree_small, dest_stale, ["-a", "--inplace"],
                      {"same_inode": True}),
    "append_verify": (tree_append, dest_append, ["-a", "--append-verify"]),
    # Known difference in the redo record only: rsync's failed in-place
    # append has already written the tail, berth's aborted one has not, so
    # the redo's item flags differ (..t vs .st); the trees are the same.
    "append_verify_redo": (tree_append, dest_append_bad,
                           ["-a", "--append-verify"], {"no_itemize": True}),
    "update_timeout": (edit_big, dest_big, ["-a", "--timeout=2"]),
    "bwlimit": (tree_small, None, ["-a", "--bwlimit=2000"]),
    "update_delta_zstd": (edit_big, dest_big, ["-a", "-z"]),
    "update_delta_zstd_level": (edit_big, dest_big,
                                ["-a", "--zc=zstd", "--zl=9"]),
    "initial_zstd": (tree_many, None, ["-a", "-z"]),
    "update_checksum_c": (tree_small, dest_same_content, ["-a", "-c"]),
    "update_size_only": (tree_small, dest_stale, ["-a", "--size-only"]),
    "update_ignore_times": (tree_small, dest_stale, ["-a", "-I"]),
    "update_u": (tree_small, dest_stale, ["-a", "-u"]),
    "update_existing": (tree_small, dest_stale, ["-a", "--existing"]),
    "update_ignore_existing": (tree_small, dest_stale,
                               ["-a", "--ignore-existing"]),
    "update_no_perms": (tree_small, dest_perms, ["-rlt"]),
    "update_executability": (tree_small, dest_perms, ["-rltE"]),
    "update_perms": (tree_small, dest_perms, ["-a"]),
    "type_clash": (tree_clash, dest_clash, ["-a"], {"rc": 23}),
    "type_clash_force": (tree_clash, dest_clash, ["-a", "--force"]),
    "big_whole": (big_file, None, ["-a"]),
    "checksum_md5": (tree_small, None, ["-a", "--checksum-choice=md5"]),
    "dest_is_file": (tree_small, "FILE", ["-a"], {"rc": 3}),
    "symlink_attack": (tree_small, dest_symlink_attack, ["-a"],
                       {"outside": True}),
    "symlink_attack_noperms": (tree_small, dest_symlink_attack, ["-rl"],
                               {"outside": True}),
    "link_dest": (tree_snapshot, dest_snapshot, ["-a", "--link-dest=../prev"],
                  {"linked": True}),
    "link_dest_other_perms": (tree_snapshot, dest_snapshot_perms,
                              ["-a", "--link-dest=../prev"]),
    "compare_dest_other_perms": (tree_snapshot, dest_snapshot_perms,
                                 ["-a", "--compare-dest=../prev"]),
    "link_dest_abs_missing": (tree_small, None,
                              ["-a", "--link-dest=/nonexistent/prev"]),
    "compare_dest": (tree_snapshot, dest_snapshot,
                     ["-a", "--compare-dest=../prev"]),
    "copy_dest": (tree_snapshot, dest_snapshot, ["-a", "--copy-dest=../prev"]),
    "delete": (tree_small, dest_extraneous, ["-a", "--delete"]),
    "delete_before": (tree_small, dest_extraneous, ["-a", "--delete-before"]),
    "delete_after": (tree_small, dest_extraneous, ["-a", "--delete-after"]),
    "delete_delay": (tree_small, dest_extraneous, ["-a", "--delete-delay"]),
    "delete_proto30": (tree_small, dest_extraneous,
                       ["-a", "--delete", "--protocol=30"]),
    "delete_filters": (tree_small, dest_extraneous,
                       ["-a", "--delete", "--exclude=*.tmp",
                        "--filter=P keep*", "--filter=- /top-only"]),
    "delete_excluded": (tree_small, dest_extraneous,
                        ["-a", "--delete", "--delete-excluded",
                         "--exclude=*.tmp"]),
    "delete_max": (tree_small, dest_extraneous,
                   ["-a", "--delete", "--max-delete=2"], {"rc": 25}),
    "delete_dry_run": (tree_small, dest_extraneous, ["-a", "-n", "--delete"]),
    "partial_dir_basis": (tree_big, dest_partial, ["-a", "--partial-dir=.part"]),
    "partial_dir_basis_old": (lambda r, _: edit_big(r, random.Random("pd")),
                              dest_partial_old,
                              ["-a", "--partial-dir=.part"]),
    "partial_dir_same": (tree_big, dest_partial_same,
                         ["-a", "--partial-dir=.part"]),
    "partial_dir_dry_run": (tree_big, dest_partial,
                            ["-a", "-n", "--partial-dir=.part"]),
    "delay_updates": (tree_small, dest_stale, ["-a", "--delay-updates"]),
    "delay_updates_delta": (edit_big, dest_big, ["-a", "--delay-updates"]),
    "delay_updates_delete": (tree_small, dest_extraneous,
                             ["-a", "--delay-updates", "--delete"]),
    "delay_updates_delete_after": (tree_small, dest_extraneous,
                                   ["-a", "--delay-updates",
                                    "--delete-after"]),
    "delay_updates_backup": (edit_big, dest_big,
                             ["-a", "--delay-updates", "-b"]),
    "delay_updates_partial_dir": (tree_big, dest_partial,
                                  ["-a", "--delay-updates",
                                   "--partial-dir=.part"]),
    "delay_updates_proto30": (tree_small, dest_stale,
                              ["-a", "--delay-updates", "--protocol=30"]),
    "delay_updates_redo": (tree_redo, dest_redo, ["-a", "--delay-updates"],
                           {"corrupt": MARK, "unordered": True}),
    "redo_new": (tree_redo, None, ["-a"],
                 {"corrupt": MARK, "unordered": True}),
    "redo_basis": (tree_redo, dest_redo, ["-a"],
                   {"corrupt": MARK, "unordered": True}),
    "redo_proto30": (tree_redo, dest_redo, ["-a", "--protocol=30"],
                     {"corrupt": MARK, "unordered": True}),
    # A failed verification with --partial keeps the data as the file, with
    # --partial-dir in the dir; the redo then uses it as its basis.
    "redo_partial": (tree_redo, dest_redo, ["-a", "--partial"],
                     {"corrupt": MARK, "unordered": True}),
    "redo_partial_new": (tree_redo, None, ["-a", "--partial"],
                         {"corrupt": MARK, "unordered": True}),
    "redo_partial_dir": (tree_redo, dest_redo, ["-a", "--partial-dir=.part"],
                         {"corrupt": MARK, "unordered": True}),
    "redo_partial_dir_new": (tree_redo, None,
                             ["-a", "--partial-dir=.part"],
                             {"corrupt": MARK, "unordered": True}),
    # -X (run on tmpfs: see "xattrs" above)
    "xattrs_initial": (tree_xattrs, None, ["-aX"], {"xattr_fs": True}),
    "xattrs_initial_noinc_proto30": (tree_xattrs, None,
                                     ["-aX", "--protocol=30"],
                                     {"xattr_fs": True}),
    "xattrs_update": (tree_xattrs_v2, dest_xattrs_old, ["-aX"],
                      {"xattr_fs": True}),
    "xattrs_update_proto31": (tree_xattrs_v2, dest_xattrs_old,
                              ["-aX", "--protocol=31"], {"xattr_fs": True}),
    "xattrs_rerun_nothing": (tree_xattrs, tree_xattrs, ["-aX"],
                             {"xattr_fs": True}),
    "xattrs_dry_run": (tree_xattrs_v2, dest_xattrs_old, ["-anX"],
                       {"xattr_fs": True}),
    "xattrs_dry_run_initial": (tree_xattrs, None, ["-anX"],
                               {"xattr_fs": True}),
    "xattrs_inplace": (tree_xattrs_v2, dest_xattrs_old, ["-aX", "--inplace"],
                       {"xattr_fs": True}),
    "xattrs_types_H": (tree_xattrs_types, None, ["-aHX"], {"xattr_fs": True}),
    # Known difference in the records only (not -X's): for a link group
    # that exists, rsync updates its first member and re-links the others
    # to it ("hf" records), berth updates the last one (as for a new
    # group) and leaves links that are already right unreported; the
    # trees, xattrs included, are the same.
    "xattrs_types_H_again": (tree_xattrs_types, dest_xattrs_types_old,
                             ["-aHX"], {"xattr_fs": True,
                                        "no_itemize": True}),
    # A client without the 'x' capability (rsync < 3.1.3?): hard-link
    # records carry no xattr request and no values (the optimization).
    "xattrs_types_H_optim": (tree_xattrs_types, None, ["-aHX"],
                             {"xattr_fs": True, "drop_caps": "x"}),
    "xattrs_update_optim": (tree_xattrs_v2, dest_xattrs_old, ["-aHX"],
                            {"xattr_fs": True, "drop_caps": "x"}),
    "xattrs_XX": (tree_xattrs_XX, None, ["-aXX"], {"xattr_fs": True}),
    "xattrs_single_X": (tree_xattrs_XX, None, ["-aX"], {"xattr_fs": True}),
    "xattrs_link_dest": (tree_xattr_snapshot, dest_xattr_snapshot,
                         ["-aX", "--link-dest=../prev"],
                         {"xattr_fs": True, "linked_xattrs": True}),
    "xattrs_compare_dest": (tree_xattr_snapshot, dest_xattr_snapshot,
                            ["-aX", "--compare-dest=../prev"],
                            {"xattr_fs": True}),
    "xattrs_copy_dest": (tree_xattr_snapshot, dest_xattr_snapshot,
                         ["-aX", "--copy-dest=../prev"], {"xattr_fs": True}),
    "xattrs_delete": (tree_xattrs_v2, dest_xattrs_old, ["-aX", "--delete"],
                      {"xattr_fs": True}),
    "xattrs_too_big_on_ext4": (tree_xattrs_big, None, ["-aX"],
                               {"rc": 23, "src_on_tmpfs": True,
                                "src_fixup": xattr_big_on_source}),
    # A receiver that is not root keeps only user.* (and cannot chown or
    # chgrp: no -o -g here, berth does not skip foreign groups as rsync
    # does yet).
    "xattrs_non_root": (tree_xattrs_v2, dest_xattrs_old, ["-rlptDX"],
                        {"xattr_fs": True, "as_user": 65534}),
    "xattrs_non_root_initial": (tree_xattrs_types, None, ["-rlptDHX"],
                                {"xattr_fs": True, "as_user": 65534}),
}

# Incremental recursion (rsync-protocol.md §7.9): many lists, lists freed
# mid-session, a one-entry initial list, deletions in sub-lists, a redo in
# a sub-list, protocols 30 and 31.
SCENARIOS.update({
    "inc_deep": (tree_deep, None, ["-a"]),
    "inc_deep_noinc": (tree_deep, None, ["-a", "--no-inc-recursive"]),
    "inc_deep_rerun": (tree_deep, same_as_source(tree_deep), ["-a"]),
    "inc_deep_delete": (tree_deep, dest_deep_stale, ["-a", "--delete"]),
    "inc_deep_delete_proto30": (tree_deep, dest_deep_stale,
                                ["-a", "--delete", "--protocol=30"]),
    "inc_deep_delete_proto31": (tree_deep, dest_deep_stale,
                                ["-a", "--delete", "--protocol=31"]),
    "inc_deep_dry_run": (tree_deep, dest_deep_stale,
                         ["-a", "-n", "--delete"]),
    # Without a delete mode the directory in the way of a file stays
    # (exit 23, as rsync).
    "inc_deep_checksum": (tree_deep, dest_deep_stale, ["-ac"], {"rc": 23}),
    "inc_deep_zstd": (tree_deep, dest_deep_stale, ["-az"], {"rc": 23}),
    "inc_deep_verbose": (tree_deep, dest_deep_stale,
                         ["-av", "--itemize-changes"], {"rc": 23}),
    "inc_deep_delete_noinc": (tree_deep, dest_deep_stale,
                              ["-a", "--delete", "--no-inc-recursive"]),
    "inc_one_entry": (tree_one, None, ["-a"],
                      {"single": "top", "target": ""}),
    "inc_one_entry_delete": (tree_one, dest_one, ["-a", "--delete"],
                             {"single": "top", "target": ""}),
    "inc_redo_sub": (tree_redo_deep, None, ["-a"],
                     {"corrupt": MARK, "unordered": True}),
    "inc_redo_sub_proto30": (tree_redo_deep, None, ["-a", "--protocol=30"],
                             {"corrupt": MARK, "unordered": True}),
})

# ---- Old protocols and real older clients (27..29: fixed-width file
# list, plain int32 indices, no item flags before 29, seeded MD4 sums).
# Each of these runs with the stock client at --protocol=27/28/29 and with
# the real rsync 2.6.9 (protocol 29); rsync 3.1.3 (protocol 31, no zstd)
# plain.  -z scenarios for them are with the compression ones.
OLD_PROTOCOL_SET = {
    "initial_a": (tree_small, None, ["-a"]),
    "edge_a": (tree_edge, None, ["-a"]),
    "many_files": (tree_many, None, ["-a"]),
    "update_delta": (edit_big, dest_big, ["-a"]),
    "update_delta_B": (edit_big, dest_big, ["-a", "-B", "2048"]),
    "update_stale": (tree_small, dest_stale, ["-a"]),
    "delete": (tree_small, dest_extraneous, ["-a", "--delete"]),
    "delete_after": (tree_small, dest_extraneous, ["-a", "--delete-after"]),
    "types_H": (tree_types, None, ["-aH"]),
    "types_H_again": (lambda r, _: tree_types(r, random.Random(0)),
                      lambda r, _: tree_types(r, random.Random(0)), ["-aH"]),
    "checksum_c": (tree_small, dest_same_content, ["-a", "-c"]),
    "dry_run_update": (tree_small, dest_stale, ["-a", "-n"]),
    "owners_names": (tree_owners, None, ["-a"]),
    "owners_numeric": (tree_owners, None, ["-a", "--numeric-ids"]),
    "append": (tree_append, dest_append, ["-a", "--append"]),
    "inplace_delta": (edit_big, dest_big, ["-a", "--inplace"],
                      {"same_inode": True}),
    "link_dest": (tree_snapshot, dest_snapshot, ["-a", "--link-dest=../prev"],
                  {"linked": True}),
    "backup_dir": (tree_small, dest_extraneous,
                   ["-a", "--delete", "--backup-dir=bak"]),
    "type_clash": (tree_clash, dest_clash, ["-a"], {"rc": 23}),
    "remove_source_files": (tree_small, dest_stale,
                            ["-a", "--remove-source-files"],
                            {"fresh_src": True}),
    "partial_dir_delta": (edit_big, dest_big,
                          ["-a", "--partial-dir=.rsync-partial"]),
    "backup_suffix": (edit_big, dest_big, ["-a", "-b", "--suffix=.old"]),
    "size_only": (tree_small, dest_stale, ["-a", "--size-only"]),
    "whole_W": (edit_big, dest_big, ["-a", "-W"]),
    "existing": (tree_small, dest_stale, ["-a", "--existing"]),
    "max_delete": (tree_small, dest_extraneous,
                   ["-a", "--delete", "--max-delete=2"], {"rc": 25}),
    "delete_excluded": (tree_small, dest_extraneous,
                        ["-a", "--delete-excluded", "--exclude=*.tmp"]),
    "delay_updates": (tree_small, dest_stale, ["-a", "--delay-updates"]),
}
OLD_CLIENT_SET = ("initial_a", "edge_a", "update_delta", "update_stale",
                  "delete", "types_H", "checksum_c", "dry_run_update")
for _k, _v in OLD_PROTOCOL_SET.items():
    _extra = _v[3] if len(_v) > 3 else {}
    for _p in (27, 28, 29):
        SCENARIOS[f"proto{_p}_{_k}"] = (_v[0], _v[1],
                                        _v[2] + [f"--protocol={_p}"], _extra)
    SCENARIOS[f"client269_{_k}"] = (_v[0], _v[1], _v[2],
                                    dict(_extra, client="2.6.9"))
# The same set at 30 and 31 where the scenario set above does not already
# cover the protocol.
for _k in ("types_H", "types_H_again", "checksum_c", "update_stale",
           "owners_names", "append", "inplace_delta", "link_dest",
           "type_clash", "dry_run_update"):
    _v = OLD_PROTOCOL_SET[_k]
    for _p in (30, 31):
        SCENARIOS[f"proto{_p}_{_k}"] = (_v[0], _v[1],
                                        _v[2] + [f"--protocol={_p}"],
                                        _v[3] if len(_v) > 3 else {})
# openrsync's own option strings (separate flags), at its protocol 27.
for _k in ("initial_a", "update_delta", "delete", "owners_numeric",
           "dry_run_update"):
    _v = OLD_PROTOCOL_SET[_k]
    SCENARIOS[f"openrsync_args_{_k}"] = (
        _v[0], _v[1], _v[2] + ["--protocol=27"],
        dict(_v[3] if len(_v) > 3 else {}, openrsync_args=True))
for _k in OLD_CLIENT_SET:
    _v = OLD_PROTOCOL_SET[_k]
    SCENARIOS[f"client313_{_k}"] = (_v[0], _v[1], _v[2],
                                    dict(_v[3] if len(_v) > 3 else {},
                                         client="3.1.3"))


# --iconv: the client's names are UTF-8, this side keeps them in Latin-1
# (or in the locale's charset for "."): the destinations' byte names are
# compared.  Names Latin-1 cannot hold (CJK, emoji) are per-file errors
# (exit 23, no deletions), the rest is transferred.  Known difference:
# with incremental recursion (which berth declines with --iconv) stock
# rsync aborts (exit 4, "invalid path from sender") when such a name is in
# a sub-list, i.e. below the top directory; berth reports it per file as
# rsync does without incremental recursion, so the scenarios with names
# that fail below the top say --no-inc-recursive.

def latin1(name):
    """A path as it is stored on the Latin-1 side."""
    return os.fsdecode(name.encode("latin-1"))


def tree_iconv(root, rng):
    for i, n in enumerate(["café", "über", "straße", "naïve", "Ärger",
                           "plain", "zeta", "alpha", "ÿ-last", "b"]):
        write(f"{root}/{n}", rand_bytes(rng, rng.randint(0, 3000)),
              0o644, BASE_MTIME + i)
    write(f"{root}/dé/ü.txt", b"u umlaut\n")
    write(f"{root}/dé/sous-ß/grüße", rand_bytes(rng, 9000), 0o600)
    write(f"{root}/ascii/naïve.bin", rand_bytes(rng, 70000))
    os.symlink("café", f"{root}/lien-é")
    os.symlink("dé/ü.txt", f"{root}/dé-link")
    os.symlink("../straße", f"{root}/dé/up-ß")
    touch_dirs(root)


def tree_iconv_bad(root, rng):
    tree_iconv(root, rng)
    write(f"{root}/漢字.txt", b"kanji\n")
    write(f"{root}/😀", b"emoji\n")
    os.symlink("😀", f"{root}/to-emoji")
    touch_dirs(root)


def tree_iconv_bad_deep(root, rng):
    tree_iconv_bad(root, rng)
    write(f"{root}/日本/inside", b"in a dir that cannot be converted\n")
    write(f"{root}/ok-é/😀-inside", b"x\n")
    os.symlink("../😀", f"{root}/dé/to-emoji")
    touch_dirs(root)


def dest_iconv_old(root, rng):
    """The same names already there in Latin-1, older and changed."""
    for n in ["café", "über", "straße", "dé/sous-ß/grüße", "ascii/naïve.bin"]:
        write(latin1(f"{root}/{n}"), rand_bytes(rng, 5000), 0o644,
              BASE_MTIME - 50)
    touch_dirs(root, BASE_MTIME - 100)


def dest_iconv_extra(root, rng):
    """Extraneous Latin-1 names for --delete, beside current ones."""
    dest_iconv_old(root, rng)
    write(latin1(f"{root}/vieux-é"), b"old\n")
    write(latin1(f"{root}/ancien-ü/très"), b"old\n")
    write(latin1(f"{root}/dé/périmé"), b"old\n")
    os.symlink(latin1("vieux-é"), latin1(f"{root}/lien-périmé"))
    touch_dirs(root, BASE_MTIME - 100)


def tree_iconv_utf8(root, rng):
    tree_iconv(root, rng)
    write(f"{root}/漢字.txt", b"kanji\n")
    write(f"{root}/😀/ok", b"emoji dir\n")
    os.symlink("😀/ok", f"{root}/to-emoji")
    touch_dirs(root)


LATIN1 = "--iconv=UTF-8,ISO-8859-1"
SCENARIOS.update({
    "iconv_latin1": (tree_iconv, None, ["-a", LATIN1]),
    "iconv_latin1_noinc": (tree_iconv, None,
                           ["-a", LATIN1, "--no-inc-recursive"]),
    "iconv_latin1_proto30": (tree_iconv, None,
                             ["-a", LATIN1, "--protocol=30"]),
    "iconv_latin1_client313": (tree_iconv, None, ["-a", LATIN1],
                               {"client": "3.1.3"}),
    "iconv_latin1_update": (tree_iconv, dest_iconv_old, ["-a", LATIN1]),
    "iconv_latin1_checksum": (tree_iconv, dest_iconv_old, ["-ac", LATIN1]),
    "iconv_latin1_delete": (tree_iconv, dest_iconv_extra,
                            ["-a", "--delete", LATIN1]),
    "iconv_latin1_delete_after": (tree_iconv, dest_iconv_extra,
                                  ["-a", "--delete-after", LATIN1]),
    "iconv_latin1_remove_source": (tree_iconv, None,
                                   ["-a", "--remove-source-files", LATIN1],
                                   {"fresh_src": True}),
    "iconv_unconvertible": (tree_iconv_bad, None, ["-a", LATIN1],
                            {"rc": 23}),
    "iconv_unconvertible_update": (tree_iconv_bad, dest_iconv_old,
                                   ["-a", LATIN1], {"rc": 23}),
    "iconv_unconvertible_delete": (tree_iconv_bad, dest_iconv_extra,
                                   ["-a", "--delete", LATIN1], {"rc": 23}),
    "iconv_unconvertible_client313": (tree_iconv_bad, None, ["-a", LATIN1],
                                      {"rc": 23, "client": "3.1.3"}),
    "iconv_unconvertible_deep_noinc": (tree_iconv_bad_deep, None,
                                       ["-a", LATIN1, "--no-inc-recursive"],
                                       {"rc": 23}),
    "iconv_unconvertible_deep_update": (tree_iconv_bad_deep, dest_iconv_old,
                                        ["-a", LATIN1,
                                         "--no-inc-recursive"],
                                        {"rc": 23}),
    # "." is the locale's charset on each side: UTF-8 here, so every name
    # passes as it is; a receiver in the C locale (ASCII) keeps only the
    # ASCII names (some fail below the top: see above).
    "iconv_dot": (tree_iconv_utf8, None, ["-a", "--iconv=."]),
    "iconv_dot_delete": (tree_iconv_utf8, dest_iconv_extra,
                         ["-a", "--delete", "--iconv=."]),
    "iconv_dot_server_c_locale": (tree_iconv_utf8, None,
                                  ["-a", "--iconv=.", "--no-inc-recursive"],
                                  {"rc": 23, "server_env": {"LC_ALL": "C"}}),
    # A charset iconv does not know: refused after the handshake, so the
    # client gets the code (tests/interop/refusals.py, iconv_bogus).
})

# ---------------------------------------------- -A, --fake-super (ACLs)

def acl(path, *specs):
    """setfacl with @specs (e.g. "-m", "u:65534:rwx"), never following."""
    subprocess.run(["setfacl", "-P", *specs, path], check=True)


def tree_acls(root, rng):
    """Access ACLs with named users and groups (and masks) on files and
    directories, a mask alone, files sharing one ACL, a directory with a
    default ACL and items made inside it after (inheriting), a fifo, a
    symlink and two hard links with an ACL."""
    write(f"{root}/plain", b"no ACL\n")
    write(f"{root}/named", b"named entries\n", 0o640)
    acl(f"{root}/named", "-m", "u:65534:rwx,g:100:r")
    write(f"{root}/maskonly", b"mask alone\n")
    acl(f"{root}/maskonly", "-m", "m::r")
    write(f"{root}/exe", b"#!/bin/sh\n", 0o750)
    acl(f"{root}/exe", "-m", "u:1:rx,g:2:x")
    for i in range(3):
        write(f"{root}/shared{i}", b"one ACL for three %d\n" % i)
        acl(f"{root}/shared{i}", "-m", "u:65534:r")
    os.makedirs(f"{root}/d")
    acl(f"{root}/d", "-m", "u:1:r")
    acl(f"{root}/d", "-d", "-m", "u:65534:rx,g:100:rwx")
    write(f"{root}/d/inherits", b"made under a default ACL\n")
    os.makedirs(f"{root}/d/sub")
    os.makedirs(f"{root}/dflt_only")
    acl(f"{root}/dflt_only", "-d", "-m", "g:100:r")
    os.mkfifo(f"{root}/fifo")
    acl(f"{root}/fifo", "-m", "u:65534:rw")
    os.symlink("named", f"{root}/link")
    write(f"{root}/hl1", b"linked, one ACL\n")
    acl(f"{root}/hl1", "-m", "g:100:rwx")
    os.link(f"{root}/hl1", f"{root}/hl2")
    touch_dirs(root)


def dest_acls_old(root, rng):
    """tree_acls with other ACLs: each item differs only in them."""
    tree_acls(root, rng)
    acl(f"{root}/named", "-m", "g:100:rw")
    acl(f"{root}/maskonly", "-b")
    acl(f"{root}/plain", "-m", "u:1:r")
    acl(f"{root}/d", "-k")
    acl(f"{root}/dflt_only", "-d", "-m", "g:100:rwx")
    acl(f"{root}/shared1", "-x", "u:65534")
    touch_dirs(root)


def acl_snapshot_files(root, keep):
    for i in range(6):
        write(f"{root}/same{i}", b"same ACL %d\n" % i)
        acl(f"{root}/same{i}", "-m", "u:65534:rw")
        write(f"{root}/diff{i}", b"ACL differs %d\n" % i)
        acl(f"{root}/diff{i}", "-m",
            "u:65534:rw" if keep else "u:65534:r,g:100:r")
    touch_dirs(root)


def tree_acl_snapshot(root, rng):
    acl_snapshot_files(root, True)


def dest_acl_snapshot(root, rng):
    prev = os.path.join(os.path.dirname(root), "prev")
    if not os.path.exists(prev):
        acl_snapshot_files(prev, False)
    os.rmdir(root)


def tree_fake_super(root, rng):
    """What only root can make: devices, specials, other owners, set-id
    and sticky bits; and ACLs (stored in xattrs by --fake-super)."""
    write(f"{root}/setuid", b"suid\n", 0o4755)
    write(f"{root}/owned", b"someone else's\n")
    os.chown(f"{root}/owned", 123, 456)
    write(f"{root}/mine", b"plain\n")
    write(f"{root}/acl", b"with an ACL\n")
    acl(f"{root}/acl", "-m", "u:65534:rwx,g:100:r")
    os.makedirs(f"{root}/sticky")
    os.chmod(f"{root}/sticky", 0o1777)
    os.makedirs(f"{root}/d")
    acl(f"{root}/d", "-d", "-m", "u:65534:rx")
    os.chown(f"{root}/d", 7, 8)
    write(f"{root}/d/f", b"inside\n")
    os.mknod(f"{root}/d/null", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(f"{root}/blk", 0o600 | stat.S_IFBLK, os.makedev(7, 200))
    os.mkfifo(f"{root}/fifo", 0o620)
    touch_dirs(root)


SCENARIOS.update({
    "acls_initial": (tree_acls, None, ["-aAX"], {"xattr_fs": True}),
    "acls_initial_A": (tree_acls, None, ["-aA"], {"xattr_fs": True}),
    "acls_update": (tree_acls, dest_acls_old, ["-aAX"], {"xattr_fs": True}),
    "acls_update_A": (tree_acls, dest_acls_old, ["-aA"], {"xattr_fs": True}),
    "acls_dry_run": (tree_acls, dest_acls_old, ["-anA"], {"xattr_fs": True}),
    "acls_dry_run_initial": (tree_acls, None, ["-anA"], {"xattr_fs": True}),
    "acls_H": (tree_acls, None, ["-aAXH"], {"xattr_fs": True}),
    "acls_H_update": (tree_acls, dest_acls_old, ["-aAXH"],
                      {"xattr_fs": True}),
    "acls_numeric_ids": (tree_acls, dest_acls_old, ["-aA", "--numeric-ids"],
                         {"xattr_fs": True}),
    "acls_usermap": (tree_acls, None,
                     ["-aA", "--usermap=65534:1,1:2", "--groupmap=100:50"],
                     {"xattr_fs": True}),
    "acls_inplace": (tree_acls, dest_acls_old, ["-aA", "--inplace"],
                     {"xattr_fs": True}),
    "acls_link_dest": (tree_acl_snapshot, dest_acl_snapshot,
                       ["-aA", "--link-dest=../prev"],
                       {"xattr_fs": True, "linked_xattrs": True}),
    "acls_proto30": (tree_acls, dest_acls_old, ["-aA", "--protocol=30"],
                     {"xattr_fs": True}),
    # Not root: ACLs on the receiver's own items (no -o -g: berth does not
    # skip foreign groups as rsync does yet).
    "acls_as_user": (tree_acls, None, ["-rlptDA"],
                     {"xattr_fs": True, "as_user": 65534}),
    "acls_as_user_update": (tree_acls, dest_acls_old, ["-rlptDA"],
                            {"xattr_fs": True, "as_user": 65534}),
    "fake_super_M": (tree_fake_super, None, ["-aAX", "-M--fake-super"],
                     {"xattr_fs": True, "as_user": 65534}),
    "fake_super_rsync_path": (tree_fake_super, None, ["-aAX"],
                              {"xattr_fs": True, "as_user": 65534,
                               "server_args": ["--fake-super"]}),
    "fake_super_repush": (tree_fake_super, None, ["-aAX", "-M--fake-super"],
                          {"xattr_fs": True, "as_user": 65534,
                           "prepush": True}),
    "fake_super_repush_path": (tree_fake_super, None, ["-aA"],
                               {"xattr_fs": True, "as_user": 65534,
                                "server_args": ["--fake-super"],
                                "prepush": True}),
    "fake_super_no_A": (tree_fake_super, None, ["-a", "-M--fake-super"],
                        {"xattr_fs": True, "as_user": 65534}),
})
# Compression (rsync-protocol.md §9.3): zlib, zlibx, lz4 and zstd, chosen
# by name or negotiated, fresh and as deltas, at protocols 30, 31 and the
# newest; the real rsync 3.1.3 with -z (zlib: no negotiation); text whose
# literal data refers back to the matched blocks (zlib's inflate history),
# with blocks over 0xffff bytes for the rule that differs below protocol 31.
TEXT_WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"rsync", b"block",
              b"token", b"\n"]


def text_blob(rng, size):
    out = bytearray()
    while len(out) < size:
        out += rng.choice(TEXT_WORDS) + b" "
    return bytes(out[:size])


def dest_text(root, rng):
    r = random.Random("text")
    write(f"{root}/t1.txt", text_blob(r, 1_500_000))
    write(f"{root}/t2.txt", text_blob(r, 60_000))
    touch_dirs(root)


def edit_text(root, rng):
    """dest_text's files, each edited a few times just after a 128 KiB
    block boundary, re-using text from the end of that block."""
    dest_text(root, rng)
    for name in ("t1.txt", "t2.txt"):
        p = f"{root}/{name}"
        with open(p, "rb") as f:
            data = f.read()
        for x in sorted((k * 131072 + 5000 for k in (1, 3, 7, 10)),
                        reverse=True):
            x = min(x, len(data) - 1000)
            data = (data[:x] + data[x - 20000:x - 18000] +
                    b"INSERTED " * 50 + data[x:])
        write(p, data, mtime=BASE_MTIME + 5)
    touch_dirs(root)


COMPRESSION = {}
for _zc in ("zlib", "zlibx", "lz4", "zstd"):
    for _proto in ("", "30", "31"):
        _o = ["-a", f"--zc={_zc}"] + ([f"--protocol={_proto}"] if _proto
                                       else [])
        _n = f"z_{_zc}" + (f"_p{_proto}" if _proto else "")
        COMPRESSION[_n + "_fresh"] = (tree_small, None, _o)
        COMPRESSION[_n + "_delta"] = (edit_big, dest_big, _o)
        COMPRESSION[_n + "_text"] = (edit_text, dest_text, _o)
    COMPRESSION[f"z_{_zc}_text_B128k"] = (edit_text, dest_text,
                                          ["-a", f"--zc={_zc}", "-B",
                                           "131072"])
COMPRESSION.update({
    "z_zlib_p30_text_B128k": (edit_text, dest_text,
                              ["-a", "--protocol=30", "--zc=zlib", "-B",
                               "131072"]),
    "z_zlib_p31_text_B128k": (edit_text, dest_text,
                              ["-a", "--protocol=31", "--zc=zlib", "-B",
                               "131072"]),
    "z_negotiated_text": (edit_text, dest_text, ["-az"]),
    "z_zz_zlibx": (edit_text, dest_text, ["-azz"]),
    "z_level_only": (edit_text, dest_text, ["-a", "--zl=1"]),
    "z_zlib_level0": (edit_text, dest_text, ["-a", "--zc=zlib", "--zl=0"]),
    "z_zlib_level9": (edit_big, dest_big, ["-a", "--zc=zlib", "--zl=9"]),
    "z313_fresh": (tree_small, None, ["-az"], {"client": "3.1.3"}),
    "z313_delta": (edit_big, dest_big, ["-az"], {"client": "3.1.3"}),
    "z313_text": (edit_text, dest_text, ["-az"], {"client": "3.1.3"}),
    "z313_text_B128k": (edit_text, dest_text, ["-az", "-B", "131072"],
                        {"client": "3.1.3"}),
    "z313_zz_zlibx": (edit_text, dest_text, ["-azz"], {"client": "3.1.3"}),
    "z313_level": (edit_text, dest_text, ["-az", "--compress-level=1"],
                   {"client": "3.1.3"}),
    "z313_many": (tree_many, None, ["-az"], {"client": "3.1.3"}),
})
SCENARIOS.update(COMPRESSION)
# -z below protocol 30 (zlib, no negotiation; the history rule of < 31):
# the stock client at 27/28/29 and the real rsync 2.6.9.
for _k, _v in {"z_fresh": (tree_many, None, ["-az"]),
               "z_delta": (edit_big, dest_big, ["-az"]),
               "z_text": (edit_text, dest_text, ["-az"]),
               "z_text_B128k": (edit_text, dest_text,
                                ["-az", "-B", "131072"])}.items():
    for _p in (27, 28, 29):
        SCENARIOS[f"proto{_p}_{_k}"] = (_v[0], _v[1],
                                        _v[2] + [f"--protocol={_p}"])
    SCENARIOS[f"client269_{_k}"] = (_v[0], _v[1], _v[2],
                                    {"client": "2.6.9"})

# ---- issue 17 (-R, --files-from, -m, -U, --open-noatime, -F merge
# files, alt-dest of non-regular files, directory times, -S allocation).

def tree_rel(root, rng):
    write(f"{root}/top.txt", b"top\n")
    write(f"{root}/a/b/c/f1", rand_bytes(rng, 3000), 0o640)
    write(f"{root}/a/b/g", b"g\n")
    write(f"{root}/a/x/y", b"y\n")
    write(f"{root}/d/e/h", rand_bytes(rng, 100), 0o600)
    os.makedirs(f"{root}/a/b/empty/deeper")
    os.makedirs(f"{root}/d/e/none")
    os.symlink("c/f1", f"{root}/a/b/lnk")
    for d in ("a", "a/b", "d"):
        os.chmod(f"{root}/{d}", 0o750)
    touch_dirs(root)


def dest_rel(root, rng):
    """The implied parents exist with other modes and times; stale
    entries beneath the sources and beside them."""
    write(f"{root}/a/stale-beside", b"beside\n")
    write(f"{root}/a/b/stale", b"stale\n")
    write(f"{root}/a/b/c/stale3", b"stale3\n")
    write(f"{root}/a/b/g", b"old g\n", mtime=BASE_MTIME - 50)
    os.chmod(f"{root}/a", 0o711)
    touch_dirs(root, BASE_MTIME - 1000)


REL = ["{src}/./a/b", "{src}/./d/e/h"]
FILES_FROM = "a/b/c/f1\na/x/y\nd/e/\ntop.txt\na/b/empty/\n"

SCENARIOS.update({
    "rel_push": (tree_rel, None, ["-aR"], {"sources": REL}),
    "rel_push_existing": (tree_rel, dest_rel, ["-aR"], {"sources": REL}),
    "rel_no_implied": (tree_rel, dest_rel, ["-aR", "--no-implied-dirs"],
                       {"sources": REL}),
    "rel_no_implied_new": (tree_rel, None, ["-aR", "--no-implied-dirs"],
                           {"sources": REL}),
    "rel_delete": (tree_rel, dest_rel, ["-aR", "--delete"],
                   {"sources": REL}),
    "rel_delete_no_implied": (tree_rel, dest_rel,
                              ["-aR", "--delete", "--no-implied-dirs"],
                              {"sources": REL}),
    "rel_absolute": (tree_rel, None, ["-aR"], {"sources": ["{src}/a/b"]}),
    "rel_dot_root": (tree_rel, dest_rel, ["-aR", "--delete"],
                     {"sources": ["{src}/./"]}),
    "files_from": (tree_rel, None, ["-a"], {"files_from": FILES_FROM}),
    "files_from_existing": (tree_rel, dest_rel, ["-a"],
                            {"files_from": FILES_FROM}),
    "files_from_no_implied": (tree_rel, dest_rel,
                              ["-a", "--no-implied-dirs"],
                              {"files_from": FILES_FROM}),
    "files_from_r_delete": (tree_rel, dest_rel, ["-a", "-r", "--delete"],
                            {"files_from": "a/b\nd/e/\n"}),
    "files_from_stdin0": (tree_rel, None, ["-a"],
                          {"files_from_stdin": FILES_FROM.replace("\n",
                                                                  "\0")}),
    "files_from_no_relative": (tree_rel, None, ["-a", "--no-relative"],
                               {"files_from": FILES_FROM}),
    "rel_push_p29": (tree_rel, dest_rel, ["-aR", "--protocol=29"],
                     {"sources": REL}),
    "rel_delete_p29": (tree_rel, dest_rel, ["-aR", "--delete",
                                            "--protocol=29"],
                       {"sources": REL}),
    "files_from_p29": (tree_rel, dest_rel, ["-a", "--protocol=29"],
                       {"files_from": FILES_FROM}),
    "files_from_r_delete_p29": (tree_rel, dest_rel,
                                ["-a", "-r", "--delete", "--protocol=29"],
                                {"files_from": "a/b\nd/e/\n"}),
    "rel_delete_269": (tree_rel, dest_rel, ["-aR", "--delete"],
                       {"sources": REL, "client": "2.6.9"}),
    "files_from_269": (tree_rel, dest_rel, ["-a"],
                       {"files_from": FILES_FROM, "client": "2.6.9"}),
})

def set_dir_times(root, sec, ns):
    for d, _, _ in sorted(os.walk(root), key=lambda x: -x[0].count("/")):
        os.utime(d, ns=(sec * 10**9 + ns,) * 2)


def tree_dir_ns(root, rng):
    for d in ("same", "same/inner", "other", "perm", "newer"):
        write(f"{root}/{d}/f", d.encode())
    set_dir_times(root, BASE_MTIME, 123456789)


def dest_dir_ns(root, rng):
    """The same tree, directories in the same second (other nanoseconds);
    one a second off, one with another mode."""
    tree_dir_ns(root, rng)
    os.chmod(f"{root}/perm", 0o700)
    set_dir_times(root, BASE_MTIME, 987654321)
    os.utime(f"{root}/newer", ns=((BASE_MTIME + 1) * 10**9 + 5,) * 2)


SCENARIOS.update({
    "dir_mtime_ns": (tree_dir_ns, dest_dir_ns, ["-a"], {"dir_mtimes": 1}),
    "dir_mtime_ns_p30": (tree_dir_ns, dest_dir_ns, ["-a", "--protocol=30"],
                         {"dir_mtimes": 1}),
    "dir_mtime_ns_window": (tree_dir_ns, dest_dir_ns,
                            ["-a", "--modify-window=-1"],
                            {"dir_mtimes": 1}),
})

def nonreg_items(root, which):
    """Symlinks, fifos (and, as root, a device) for the alt-dest
    scenarios; @which picks the source or one of two old snapshots."""
    links = {"src": {"d1/ln": "f", "d1/ln2": "x", "d2/ln3": "../d1/f",
                     "d2/ln-new": "y", "d2/ln-time": "z"},
             "p2": {"d1/ln": "f", "d1/ln2": "other", "d2/ln-time": "z"},
             "p1": {"d2/ln3": "../d1/f", "d1/ln": "f"}}[which]
    write(f"{root}/d1/f", b"f\n")
    for name, target in links.items():
        os.makedirs(os.path.dirname(f"{root}/{name}"), exist_ok=True)
        os.symlink(target, f"{root}/{name}")
    fifos = {"src": ["d1/fifo", "d2/fifo2", "d2/fifo3"], "p2": ["d1/fifo"],
             "p1": ["d2/fifo2", "d1/fifo"]}[which]
    for name in fifos:
        os.makedirs(os.path.dirname(f"{root}/{name}"), exist_ok=True)
        os.mkfifo(f"{root}/{name}", 0o640)
    if which == "p1":
        os.chmod(f"{root}/d1/fifo", 0o600)  # other attributes: level 2
    if IS_ROOT and which in ("src", "p1"):
        os.mknod(f"{root}/d2/null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    touch_dirs(root)
    if which == "p2":
        # The same target, another time: compared with, not linked.
        os.utime(f"{root}/d2/ln-time", ns=((BASE_MTIME - 100) * 10**9,) * 2,
                 follow_symlinks=False)


def tree_nonreg(root, rng):
    nonreg_items(root, "src")


def dest_nonreg_snapshots(root, rng):
    base = os.path.dirname(root)
    for which in ("p1", "p2"):
        if not os.path.exists(os.path.join(base, which)):
            nonreg_items(os.path.join(base, which), which)
    os.rmdir(root)


ALT2 = ["../p2", "../p1"]

SCENARIOS.update({
    "link_dest_nonreg": (tree_nonreg, dest_nonreg_snapshots,
                         ["-a"] + [f"--link-dest={d}" for d in ALT2],
                         {"nlinks": 1}),
    "link_dest_nonreg_ii": (tree_nonreg, dest_nonreg_snapshots,
                            ["-ai"] + [f"--link-dest={d}" for d in ALT2],
                            {"nlinks": 1}),
    "compare_dest_nonreg": (tree_nonreg, dest_nonreg_snapshots,
                            ["-a"] + [f"--compare-dest={d}" for d in ALT2]),
    "compare_dest_nonreg_ii": (tree_nonreg, dest_nonreg_snapshots,
                               ["-ai"] +
                               [f"--compare-dest={d}" for d in ALT2]),
    "copy_dest_nonreg": (tree_nonreg, dest_nonreg_snapshots,
                         ["-a"] + [f"--copy-dest={d}" for d in ALT2],
                         {"nlinks": 1}),
    "link_dest_nonreg_p29": (tree_nonreg, dest_nonreg_snapshots,
                             ["-a", "--protocol=29", "--link-dest=../p2"],
                             {"nlinks": 1}),
})

def tree_sparse_alloc(root, rng):
    """Zero runs at every place a sparse writer meets them: a zero tail
    shorter than a block, a file of zeros, data ending mid-block."""
    z = bytes(1 << 20)
    write(f"{root}/holes.img", z + b"data in the middle" + z + b"end")
    write(f"{root}/zeros", bytes(3 * 4096 + 100))
    write(f"{root}/tail", rand_bytes(rng, 5000) + bytes(3000))
    write(f"{root}/head", bytes(5000) + rand_bytes(rng, 5000))
    write(f"{root}/mid", rand_bytes(rng, 100) + bytes(200000) + b"x")
    write(f"{root}/dense", rand_bytes(rng, 70000))
    touch_dirs(root)


SPARSE_FILES = ["holes.img", "zeros", "tail", "head", "mid", "dense"]


def dest_sparse_old(root, rng):
    """An older copy: the zero runs match, so they come from the basis in
    blocks that do not fall on 4 KiB boundaries (1448 bytes for
    holes.img), and a zero block arrives in pieces."""
    tree_sparse_alloc(root, random.Random("sparse_old"))
    z = bytes(1 << 20)
    write(f"{root}/holes.img", z + b"DATA in the middle" + z + b"END",
          mtime=BASE_MTIME - 60)
    for rel in ("zeros", "tail", "head", "mid", "dense"):
        os.utime(f"{root}/{rel}", ns=((BASE_MTIME - 60) * 10**9,) * 2)

SCENARIOS.update({
    "sparse_blocks": (tree_sparse_alloc, None, ["-a", "--sparse"],
                      {"blocks": SPARSE_FILES}),
    "sparse_blocks_p29": (tree_sparse_alloc, None,
                          ["-a", "--sparse", "--protocol=29"],
                          {"blocks": SPARSE_FILES}),
    "sparse_blocks_update": (tree_sparse_alloc, dest_sparse_old,
                             ["-a", "--sparse", "--no-whole-file"],
                             {"blocks": SPARSE_FILES}),
})

def tree_prune(root, rng):
    write(f"{root}/keep/deep/file", b"x\n")
    os.makedirs(f"{root}/empty/a/b")
    os.makedirs(f"{root}/keep/empty-sub")
    os.makedirs(f"{root}/protected/inner")
    write(f"{root}/excluded-only/skip.tmp", b"tmp\n")
    write(f"{root}/top", b"top\n")
    touch_dirs(root)


def dest_prune(root, rng):
    os.makedirs(f"{root}/empty/a")
    write(f"{root}/empty/old", b"old\n")
    os.makedirs(f"{root}/protected")
    touch_dirs(root)


SCENARIOS.update({
    "prune_empty": (tree_prune, None, ["-am"]),
    "prune_empty_delete": (tree_prune, dest_prune,
                           ["-am", "--delete", "--exclude=*.tmp",
                            "--filter=protect protected/"]),
    "prune_empty_rel": (tree_prune, None, ["-amR"],
                        {"sources": ["{src}/./empty", "{src}/./keep"]}),
    "prune_empty_p29": (tree_prune, dest_prune,
                        ["-am", "--delete", "--protocol=29"]),
})

# ---- issue 17, the rest: per-directory merge filters on the receiving
# side (-F, dir-merge), xattr filter rules, -U/--atimes, --open-noatime.

def tree_filters(root, rng):
    """Source: its own .rsync-filter files (the client reads them)."""
    write(f"{root}/.rsync-filter", b"- *.tmp\n")
    write(f"{root}/a.txt", b"a\n")
    write(f"{root}/skip.tmp", b"not sent\n")
    write(f"{root}/sub/b.txt", b"b\n")
    write(f"{root}/sub/.rsync-filter", b"- *.log\n")
    write(f"{root}/sub/x.log", b"not sent\n")
    write(f"{root}/sub/deep/c.txt", b"c\n")
    write(f"{root}/nm/d.txt", b"d\n")
    touch_dirs(root)


def dest_filters(root, rng):
    """DEST's merge files protect and exclude: rules of a directory before
    what it inherits, risk against an inherited protect, a dir-only rule,
    a nested dir-merge, an extraneous directory with a kept file inside,
    a perishable-free comment and a rule for the sender alone."""
    write(f"{root}/.rsync-filter",
          b"# comment\n; another\nprotect precious*\n- *.o\n"
          b"hide hidden-only\ndir-merge .inner\n")
    write(f"{root}/stale.txt", b"stale\n")
    write(f"{root}/precious.dat", b"kept\n")
    write(f"{root}/obj.o", b"excluded\n")
    write(f"{root}/hidden-only", b"hide is for the sender\n")
    write(f"{root}/sub/.rsync-filter",
          b"exclude local/\nrisk precious-sub*\n+ keep.o\n")
    write(f"{root}/sub/local/x", b"dir excluded\n")
    write(f"{root}/sub/precious-sub", b"risked\n")
    write(f"{root}/sub/precious2", b"inherited protect\n")
    write(f"{root}/sub/keep.o", b"included: goes\n")
    write(f"{root}/sub/other.o", b"inherited exclude\n")
    write(f"{root}/sub/deep/.inner", b"- inner-*\n")
    write(f"{root}/sub/deep/inner-x", b"nested merge\n")
    write(f"{root}/sub/deep/outer-x", b"goes\n")
    write(f"{root}/gone/.rsync-filter", b"- keepme\n")
    write(f"{root}/gone/keepme", b"kept in an extraneous dir\n")
    write(f"{root}/gone/other", b"goes\n")
    write(f"{root}/gone/deeper/more", b"goes\n")
    write(f"{root}/gone2/a/b", b"all goes\n")
    write(f"{root}/nm/.nf", b"- nf-*\n")
    write(f"{root}/nm/nf-top", b"kept by .nf\n")
    write(f"{root}/nm/child/nf-child", b"n: not inherited, goes\n")
    write(f"{root}/nm/child/.nf", b"- other\n")
    write(f"{root}/nm/.words", b"-_*.bak protect_*.keep  +_x.bak\n")
    write(f"{root}/nm/a.bak", b"words: excluded\n")
    write(f"{root}/nm/b.keep", b"words: protected\n")
    write(f"{root}/nm/.excl", b"ex-*\nex2\n")
    write(f"{root}/nm/ex-1", b"no-prefix excludes\n")
    write(f"{root}/nm/ex3", b"goes\n")
    touch_dirs(root)


def dest_filters_cvs(root, rng):
    write(f"{root}/core", b"perishable: kept beside the list\n")
    write(f"{root}/x.o", b"kept\n")
    write(f"{root}/sub/.cvsignore", b"*.dat\n")
    write(f"{root}/sub/y.dat", b"kept by .cvsignore\n")
    write(f"{root}/sub/z.txt", b"goes\n")
    write(f"{root}/gone/core", b"perishable: goes with its dir\n")
    write(f"{root}/gone/kept.o", b"not perishable here? (is)\n")
    touch_dirs(root)


FILTER_MODS = ["--filter=:n .nf", "--filter=:w .words",
               "--filter=:en- .excl"]

SCENARIOS.update({
    "merge_F_delete": (tree_filters, dest_filters, ["-a", "-F", "--delete"]),
    "merge_FF_delete": (tree_filters, dest_filters,
                        ["-a", "-FF", "--delete"]),
    "merge_F_delete_after": (tree_filters, dest_filters,
                             ["-a", "-F", "--delete-after"]),
    "merge_F_delete_before_p29": (tree_filters, dest_filters,
                                  ["-a", "-F", "--delete",
                                   "--protocol=29"]),
    "merge_F_delete_n": (tree_filters, dest_filters,
                         ["-a", "-F", "--delete", "-n"]),
    "merge_F_client313": (tree_filters, dest_filters,
                          ["-a", "-FF", "--delete"], {"client": "3.1.3"}),
    "merge_dirmerge_mods": (tree_filters, dest_filters,
                            ["-a", "--delete", "-F"] + FILTER_MODS),
    "merge_dirmerge_filter": (tree_filters, dest_filters,
                              ["-a", "--delete",
                               "--filter=dir-merge .rsync-filter"]),
    "merge_cvs_delete": (tree_small, dest_filters_cvs,
                         ["-a", "-C", "--delete"]),
    "merge_F_delete_excluded": (tree_filters, dest_filters,
                                ["-a", "-F", "--delete-excluded"]),
})

def tree_xattr_filter(root, rng):
    """tree_xattrs and names the rules exclude (or let through)."""
    tree_xattrs(root, rng)
    xa(f"{root}/a.txt", "user.secret1", b"sent unless excluded")
    xa(f"{root}/a.txt", "user.secret2", b"sent unless excluded")
    xa(f"{root}/sub", "user.secretdir", b"s")
    if IS_ROOT:
        xa(f"{root}/a.txt", "trusted.secret", b"t")
        xa(f"{root}/sub/b.txt", "trusted.other", b"o")
    touch_dirs(root)


def tree_xattr_filter_user(root, rng):
    """tree_xattr_filter with user.* names only (rsync stores a non-root
    receiver's others as user.rsync.NAME under rules, berth leaves them
    out)."""
    tree_xattr_filter(root, rng)
    for d, dirs, files in os.walk(root):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            for a in os.listxattr(n, follow_symlinks=False):
                if not a.startswith("user."):
                    os.removexattr(n, a, follow_symlinks=False)
    touch_dirs(root)


def dest_xattr_filter(root, rng):
    """The source's tree, with names only here: excluded ones stay where
    the receiver knows the rules, the others go."""
    tree_xattrs(root, random.Random("dest-xf"))
    xa(f"{root}/a.txt", "user.secret-here", b"kept by the rule")
    xa(f"{root}/a.txt", "user.gone", b"removed")
    xa(f"{root}/sub", "user.secret-d", b"kept")
    xa(f"{root}/emptydir", "user.secret-e", b"kept")
    if IS_ROOT:
        xa(f"{root}/sub/b.txt", "trusted.here", b"t")
    touch_dirs(root)


SCENARIOS.update({
    "xattr_filter_delete": (tree_xattr_filter, dest_xattr_filter,
                            ["-aX", "--delete", "--filter=-x user.secret*"],
                            {"xattr_fs": True}),
    "xattr_filter_no_delete": (tree_xattr_filter, dest_xattr_filter,
                               ["-aX", "--filter=-x user.secret*"],
                               {"xattr_fs": True}),
    "xattr_filter_include": (tree_xattr_filter, dest_xattr_filter,
                             ["-aX", "--delete", "--filter=+x user.secret1",
                              "--filter=-x user.secret*"],
                             {"xattr_fs": True}),
    "xattr_filter_trusted": (tree_xattr_filter, dest_xattr_filter,
                             ["-aX", "--delete", "--filter=-x trusted.*"],
                             {"xattr_fs": True}),
    # (-rlptD: a receiver that is not root does not chgrp; see
    # xattrs_non_root.)
    "xattr_filter_user": (tree_xattr_filter_user, dest_xattr_filter,
                          ["-rlptDX", "--delete",
                           "--filter=-x user.secret*"],
                          {"xattr_fs": True, "as_user": 65534}),
    "xattr_filter_n": (tree_xattr_filter, dest_xattr_filter,
                       ["-aXn", "--delete", "--filter=-x user.secret*"],
                       {"xattr_fs": True}),
})

OLD_ATIME = BASE_MTIME - 400 * 86400


def dest_noatime(root, rng):
    """The basis of a delta, with an atime older than its mtime (a read
    moves it, relatime or not) and a second link outside DEST, to look at
    it once the new file has taken its name."""
    big_file(root, random.Random("big"))
    os.link(f"{root}/big.bin", f"{root}-basis")
    write(f"{root}/same.txt", b"unchanged: read by -c\n")
    for p in (f"{root}/big.bin", f"{root}/same.txt"):
        st = os.stat(p)
        os.utime(p, ns=(OLD_ATIME * 10**9, st.st_mtime_ns))
    touch_dirs(root)


def edit_big_same(root, rng):
    edit_big(root, rng)
    write(f"{root}/same.txt", b"unchanged: read by -c\n")
    touch_dirs(root)


SCENARIOS.update({
    "open_noatime_delta": (edit_big_same, dest_noatime,
                           ["-a", "--no-W", "--open-noatime"],
                           {"atime_kept": ["dst-{who}-basis"]}),
    "open_noatime_checksum": (edit_big_same, dest_noatime,
                              ["-ac", "--no-W", "--open-noatime"],
                              {"atime_kept": ["dst-{who}/same.txt"]}),
})

# ---- issue 17, the last of it: -U/--atimes (and -UU), --fake-super's
# symlinks and non-user xattr names.  (Scenarios from here to REFUSED.)

# After every mtime and ctime the trees get, and never older than a day:
# a read (relatime) does not move it, so both pushes send the same atimes.
FUTURE_ATIME = 4102444800  # 2100-01-01


def set_atime(path, atime):
    st = os.lstat(path)
    os.utime(path, ns=(atime * 10**9, st.st_mtime_ns), follow_symlinks=False)


def atime_files(root, rng, changed):
    write(f"{root}/a.txt", b"same content, other atime\n")
    write(f"{root}/sub/b.bin", rand_bytes(random.Random("b"), 70000), 0o600)
    write(f"{root}/sub/same-atime", b"all the same\n")
    write(f"{root}/c.txt", b"changed here\n" if changed else b"c\n",
          mtime=BASE_MTIME + (7 if changed else 0))
    os.symlink("a.txt", f"{root}/link")
    os.mkfifo(f"{root}/fifo", 0o640)
    touch_dirs(root)


def tree_atimes(root, rng):
    """Files, a symlink and a fifo whose atimes differ from their mtimes;
    one file only the source has."""
    atime_files(root, rng, False)
    write(f"{root}/new.txt", b"only in the source\n")
    touch_dirs(root)
    for i, rel in enumerate(["a.txt", "sub/b.bin", "sub/same-atime",
                             "c.txt", "link", "fifo", "new.txt"]):
        set_atime(f"{root}/{rel}", FUTURE_ATIME + 1000 * i)


def dest_atimes(root, rng):
    """The same items with old atimes (one kept), c.txt's content
    changed."""
    atime_files(root, rng, True)
    for rel in ["a.txt", "sub/b.bin", "c.txt", "link", "fifo"]:
        set_atime(f"{root}/{rel}", OLD_ATIME)
    set_atime(f"{root}/sub/same-atime", FUTURE_ATIME + 2000)


def dest_atimes_prev(root, rng):
    """An old snapshot inside DEST (prev/): the same files with old
    atimes, for --link-dest=prev / --compare-dest=prev."""
    tree_atimes(f"{root}/prev", rng)
    os.unlink(f"{root}/prev/new.txt")
    touch_dirs(root)
    for rel in ["a.txt", "sub/b.bin", "c.txt", "link", "fifo"]:
        set_atime(f"{root}/prev/{rel}", OLD_ATIME)


ATIMES = {"atimes": True}
SCENARIOS.update({
    "atimes_fresh": (tree_atimes, None, ["-aU"], ATIMES),
    "atimes_update": (tree_atimes, dest_atimes, ["-aU"], ATIMES),
    "atimes_dry_run": (tree_atimes, dest_atimes, ["-aUn"], ATIMES),
    "atimes_checksum": (tree_atimes, dest_atimes, ["-aUc"], ATIMES),
    "atimes_no_t": (tree_atimes, dest_atimes, ["-rlpDU"], ATIMES),
    "atimes_inplace": (tree_atimes, dest_atimes, ["-aU", "--inplace"],
                       ATIMES),
    "atimes_UU": (tree_atimes, dest_atimes, ["-aUU"], ATIMES),
    "atimes_proto30": (tree_atimes, dest_atimes, ["-aU", "--protocol=30"],
                       ATIMES),
    "atimes_link_dest": (tree_atimes, dest_atimes_prev,
                         ["-aU", "--link-dest=prev"],
                         {"atimes": True, "nlinks": True}),
    "atimes_compare_dest": (tree_atimes, dest_atimes_prev,
                            ["-aU", "--compare-dest=prev"], ATIMES),
})



def tree_fake_links(root, rng):
    """tree_fake_super with symlinks (relative, absolute, dangling) and
    xattrs of other namespaces than user.* (a --fake-super receiver keeps
    them as user.rsync.NAME), one with a value long enough to be asked
    for."""
    tree_fake_super(root, rng)
    os.symlink("mine", f"{root}/link")
    os.symlink("/abs/target", f"{root}/d/abs")
    os.symlink("does/not/exist", f"{root}/dangling")
    xa(f"{root}/mine", "user.plain", b"u")
    xa(f"{root}/mine", "trusted.secret", b"t")
    xa(f"{root}/d/f", "trusted.long", b"x" * 100)
    xa(f"{root}/d/f", "user.zz", b"after user.rsync.* once disguised")
    # (Not on d: its default ACL would be lost in rsync, see README.)
    xa(f"{root}/sticky", "trusted.dir", b"d")
    touch_dirs(root)


def dest_fake_links(root, rng):
    """What is in the way: a real symlink where a (fake) one goes, a
    plain file where a link goes, a fake link with another target."""
    os.symlink("mine", f"{root}/link")
    write(f"{root}/dangling", b"a plain file\n")
    os.makedirs(f"{root}/d")
    write(f"{root}/d/abs", b"/other/target")
    touch_dirs(root)


FAKE_USER = {"xattr_fs": True, "as_user": 65534}
SCENARIOS.update({
    "fake_super_links": (tree_fake_links, None, ["-aX", "-M--fake-super"],
                         FAKE_USER),
    "fake_super_links_path": (tree_fake_links, None, ["-aAX"],
                              dict(FAKE_USER,
                                   server_args=["--fake-super"])),
    "fake_super_links_update": (tree_fake_links, dest_fake_links,
                                ["-aX", "-M--fake-super"], FAKE_USER),
    "fake_super_links_repush": (tree_fake_links, None,
                                ["-aAX", "-M--fake-super"],
                                dict(FAKE_USER, prepush=True, quiet=True)),
    "fake_super_links_n": (tree_fake_links, dest_fake_links,
                           ["-aXn", "-M--fake-super"], FAKE_USER),
    # Xattr filter rules, not root: other names as user.rsync.NAME too
    # (which a symlink cannot take: exit 23).
    "xattr_filter_user_disguised": (tree_xattr_filter, dest_xattr_filter,
                                    ["-rlptDX", "--delete",
                                     "--filter=-x user.secret*"],
                                    dict(FAKE_USER, rc=23)),
})

# ------------------------------------------ an unprivileged receiver's failures
#
# The receiver runs as uid 65534 in a DEST that is its own, except for the
# parts given back to root (extra "root_owned"): there a directory cannot be
# made, a temp file cannot be created, a root's file in a sticky directory
# cannot be replaced, an entry cannot be deleted and times cannot be set.
# Compared as well: every line on the client's stderr (extra "messages"),
# which says the same as rsync's: one line for a directory that cannot be
# made, then rsync's "skipping" line and nothing of what lies beneath; each
# line prefixed with who failed, the path as rsync shows it, the errno text.

def tree_unpriv_dirs(root, rng):
    """New directories, some beneath one the receiver may not write."""
    write(f"{root}/top", b"top\n")
    for i in range(3):
        write(f"{root}/ok/f{i}", rand_bytes(rng, 100 + i))
        write(f"{root}/locked/new/f{i}", rand_bytes(rng, 200 + i))
        write(f"{root}/locked/new/sub/g{i}", rand_bytes(rng, 300 + i))
        write(f"{root}/locked/new/sub/deeper/h{i}", rand_bytes(rng, 40))
        write(f"{root}/zz/after{i}", rand_bytes(rng, 50 + i))
    os.makedirs(f"{root}/locked/new2")
    touch_dirs(root)


def dest_unpriv_dirs(root, rng):
    os.makedirs(f"{root}/locked")
    write(f"{root}/ok/extra", b"extraneous\n")
    touch_dirs(root)


def tree_unpriv_files(root, rng):
    """Files to update in a directory the receiver may not write, and a
    root's file in a sticky directory (its temp file is made, the rename
    over root's file is refused)."""
    for i in range(3):
        write(f"{root}/locked/f{i}", rand_bytes(rng, 500 + i))
        write(f"{root}/ok/f{i}", rand_bytes(rng, 90 + i))
    write(f"{root}/sticky/rootfile", b"new content\n")
    write(f"{root}/sticky/mine", b"mine\n")
    touch_dirs(root)
    os.chmod(f"{root}/sticky", 0o1777)


def dest_unpriv_files(root, rng):
    for i in range(3):
        write(f"{root}/locked/f{i}", b"old\n", mtime=BASE_MTIME - 50)
    write(f"{root}/sticky/rootfile", b"old content\n", mtime=BASE_MTIME - 50)
    touch_dirs(root)
    os.chmod(f"{root}/sticky", 0o1777)


def tree_unpriv_delete(root, rng):
    write(f"{root}/locked2/keep", b"keep\n")
    write(f"{root}/open/keep", b"keep\n")
    touch_dirs(root)


def dest_unpriv_delete(root, rng):
    write(f"{root}/locked2/keep", b"keep\n")
    write(f"{root}/locked2/extra", b"extraneous\n")
    os.makedirs(f"{root}/locked2/olddir")
    write(f"{root}/open/keep", b"keep\n")
    write(f"{root}/open/extra", b"extraneous\n")
    touch_dirs(root)
    # Its time differs from the source's: setting it fails too.
    os.utime(f"{root}/locked2", ns=((BASE_MTIME - 50) * 10**9,) * 2)


def tree_unpriv_implied(root, rng):
    write(f"{root}/a/b/c/file", b"deep\n")
    write(f"{root}/top", b"top\n")
    touch_dirs(root)


def dest_unpriv_implied(root, rng):
    os.makedirs(f"{root}/a")
    touch_dirs(root)


def tree_unpriv_groups(root, rng):
    """Files of a group the receiver is not in (1), and of its own; the
    same bytes every time (the destination's copy is built so too)."""
    rng = random.Random(7)
    for i in range(3):
        write(f"{root}/other/f{i}", rand_bytes(rng, 60 + i))
        write(f"{root}/own/f{i}", rand_bytes(rng, 70 + i))
    touch_dirs(root)
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            os.lchown(os.path.join(d, n), -1,
                      65534 if "/own" in os.path.join(d, n) else 1)


def dest_unpriv_groups(root, rng):
    """The same files already there (the receiver's own group): -g has
    nothing it may change, as rsync's receiver skips a group it is not a
    member of (no 'g', no chown, no error)."""
    tree_unpriv_groups(root, rng)


def tree_unpriv_readonly(root, rng):
    """Directories the owner may not write (0555) or search (0600)."""
    for d in ("ro", "ro/deeper", "noexec"):
        write(f"{root}/{d}/f", rand_bytes(rng, 300))
    touch_dirs(root)
    os.chmod(f"{root}/ro/deeper", 0o555)
    os.chmod(f"{root}/ro", 0o555)
    os.chmod(f"{root}/noexec", 0o600)


def dest_unpriv_readonly(root, rng):
    """The same directories there already, read-only, older files."""
    for d in ("ro", "ro/deeper"):
        write(f"{root}/{d}/f", b"old\n", mtime=BASE_MTIME - 50)
    touch_dirs(root)
    os.chmod(f"{root}/ro/deeper", 0o555)
    os.chmod(f"{root}/ro", 0o555)


def unpriv(rc=23, **kw):
    return dict({"as_user": 65534, "messages": True, "rc": rc,
                 "root_owned": ["locked", "locked/f0", "locked/f1",
                                "locked/f2", "sticky", "sticky/rootfile",
                                "locked2", "locked2/keep", "locked2/extra",
                                "locked2/olddir", "a"]}, **kw)


SCENARIOS.update({
    "unpriv_mkdir_fails": (tree_unpriv_dirs, dest_unpriv_dirs, ["-rlpt"],
                           unpriv()),
    "unpriv_group_skip": (tree_unpriv_groups, None, ["-a"], unpriv(rc=0)),
    "unpriv_readonly_dirs": (tree_unpriv_readonly, None, ["-a"],
                             unpriv(rc=0)),
    "unpriv_readonly_update": (tree_unpriv_readonly, dest_unpriv_readonly,
                               ["-ai"], unpriv(rc=0)),
    "unpriv_readonly_noperms": (tree_unpriv_readonly, dest_unpriv_readonly,
                                ["-rti"], unpriv(rc=0)),
    "unpriv_group_update": (tree_unpriv_groups, dest_unpriv_groups,
                            ["-ai"], unpriv(rc=0)),
    "unpriv_mkdir_fails_noinc": (tree_unpriv_dirs, dest_unpriv_dirs,
                                 ["-rlpt", "--no-inc-recursive"], unpriv()),
    "unpriv_mkdir_fails_delete": (tree_unpriv_dirs, dest_unpriv_dirs,
                                  ["-rlpt", "--delete"], unpriv()),
    "unpriv_mkdir_fails_n": (tree_unpriv_dirs, dest_unpriv_dirs,
                             ["-rlptn", "--delete"], unpriv(rc=0)),
    "unpriv_mkdir_fails_313": (tree_unpriv_dirs, dest_unpriv_dirs,
                               ["-rlpt", "--delete"],
                               unpriv(client="3.1.3")),
    "unpriv_mkdir_fails_269": (tree_unpriv_dirs, dest_unpriv_dirs,
                               ["-rlpt", "--delete"],
                               unpriv(client="2.6.9")),
    "unpriv_temp_fails": (tree_unpriv_files, dest_unpriv_files, ["-rlpt"],
                          unpriv()),
    "unpriv_temp_fails_noinc": (tree_unpriv_files, dest_unpriv_files,
                                ["-rlpt", "--no-inc-recursive"], unpriv()),
    "unpriv_delete_fails": (tree_unpriv_delete, dest_unpriv_delete,
                            ["-rlpt", "--delete"], unpriv()),
    "unpriv_delete_fails_after": (tree_unpriv_delete, dest_unpriv_delete,
                                  ["-rlpt", "--delete-after"], unpriv()),
    # DEST itself cannot be made (--mkpath: its parents): the session
    # ends, exit 11, one line naming DEST.
    "unpriv_mkpath_fails": (tree_unpriv_implied, dest_unpriv_implied,
                            ["-rlpt", "--mkpath"],
                            unpriv(rc=11, dest_sub="a/x/y/")),
    "unpriv_dest_mkdir_fails": (tree_unpriv_implied, dest_unpriv_implied,
                                ["-rlpt"], unpriv(rc=11, dest_sub="a/x/")),
    # -R --no-implied-dirs: a missing parent that cannot be made is named,
    # and the entry fails on its own.
    "unpriv_implied_fails": (tree_unpriv_implied, dest_unpriv_implied,
                             ["-Rrlpt", "--no-implied-dirs"],
                             unpriv(sources=["{src}/./a/b/c/file",
                                             "{src}/./top"])),
})


def message_lines(err, who):
    """The client's stderr lines, comparable across the two receivers:
    berth's name for rsync's, the destination's name, temp names
    (.NAME.XXXXXX, berth's mark after it) made alike, the server's exit
    line without its source place and version; sorted (the
    generator's and the receiver's lines interleave as they come)."""
    import re
    out = []
    for ln in err.splitlines():
        # The server's last words after a fatal error: name, code and
        # who compared; the source place and version are each program's.
        ln = re.sub(r"^(rsync|berth) (error|warning): (.*) at \S+\(\d+\) "
                    r"\[(server|Receiver|receiver|generator)="
                    r"(berth )?[0-9.]+\]$", r"rsync \2: \3 [\4]", ln)
        ln = re.sub(r"^berth: \[", "rsync: [", ln)
        ln = ln.replace(f"/dst-{who}/", "/dst/").replace(f"/dst-{who}\"",
                                                        "/dst\"")
        ln = re.sub(r"(/\.[^/\"]+\.)[^./\"]{6}(~[0-9a-z]{1,6}[0-9A-Za-z]{4})?\"",
                    r'\1XXXXXX"', ln)
        out.append(ln)
    return sorted(out)


# Options berth refuses (for now): berth must exit 4 with a message naming
# the option, and leave the destination untouched.  The other refusals, with
# every client and protocol: refusals.py.
REFUSED = {
    # A --files-from list on the receiver's host (the server would read it
    # and send it to the client).
    "refuse_files_from_remote": ["-a", "--files-from=localhost:/dev/null"],
}


# ----------------------------------------------------------- comparison

def xattr_compared(name):
    """user.* always; as root every namespace rsync -X copies (all but
    system.*, the ACLs' business)."""
    return name.startswith("user.") or (IS_ROOT and
                                        not name.startswith("system.")) \
        or name.startswith("system.posix_acl_")  # -A


def snapshot(root, atimes=False):
    """Everything rsync -a promises about a tree, keyed by relative path;
    with @atimes (-U) also the atimes of all but directories."""
    out = {}
    inodes = {}
    st = os.lstat(root)
    out["."] = {"type": stat.S_IFMT(st.st_mode),
                "perm": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                "gid": st.st_gid, "mtime_ns": st.st_mtime_ns,
                "xattrs": {n: os.getxattr(root, n) for n in
                           sorted(os.listxattr(root)) if xattr_compared(n)}}
    for d, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            # Byte names that are not UTF-8 (--iconv) stay distinct and
            # printable: \xNN.
            rel = os.fsencode(os.path.relpath(p, root)).decode(
                "utf-8", "backslashreplace")
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode),
                 "perm": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid}
            e["mtime_ns"] = st.st_mtime_ns
            if atimes and not stat.S_ISDIR(st.st_mode):
                e["atime_ns"] = st.st_atime_ns  # (before the read below)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    e["sha"] = hashlib.sha256(f.read()).hexdigest()
                e["size"] = st.st_size
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    e["link_group"] = inodes.setdefault(key, rel)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
                del e["perm"]
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = st.st_rdev
            try:
                names = os.listxattr(p, follow_symlinks=False)
                e["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False)
                               for n in sorted(names) if xattr_compared(n)}
            except OSError:
                pass
            out[rel] = e
    return out


def diff(a, b):
    msgs = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            msgs.append(f"only in berth: {k}")
        elif k not in b:
            msgs.append(f"missing in berth: {k}")
        elif a[k] != b[k]:
            fields = [f for f in set(a[k]) | set(b[k])
                      if a[k].get(f) != b[k].get(f)]
            msgs.append(f"{k}: " + ", ".join(
                f"{f} rsync={a[k].get(f)!r} berth={b[k].get(f)!r}"
                for f in sorted(fields)))
    return msgs


def itemized(out):
    """The client's itemize lines, in order (11 letters since rsync 3.0,
    9 in 2.6.x)."""
    return [ln for ln in out.splitlines()
            if ln.startswith("*deleting") or
            (ln[:1] in ("<", ">", "c", "h", ".") and
             any(len(ln) > n + 1 and ln[n] == " " and " " not in ln[:n]
                 for n in (11, 9)))]


OLD_CLIENTS = os.environ.get("BERTH_OLD_CLIENTS", "/tmp/berth-old-clients")


def client_path(version):
    """The rsync client to push with: the stock one, or a real older
    client built by ../shared/clients/build.sh (scripts/test.sh builds
    them into $BERTH_OLD_CLIENTS)."""
    if not version:
        return "rsync"
    path = os.path.join(OLD_CLIENTS, "bin", "rsync-" + version)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no rsync {version} client at {path} (run "
                           "../shared/clients/build.sh or set "
                           "BERTH_OLD_CLIENTS)")
    return path


def push(src, dst, receiver, opts, env=None, corrupt=None, single=None,
         target=None, client=None, sources=None, stdin=None, sub=None):
    if corrupt:
        env = dict(os.environ, RELAY_TARGET=receiver,
                   RELAY_CORRUPT=corrupt.hex())
        receiver = os.path.join(HERE, "corrupt_relay.py")
    source, dest = [src + "/"], f"localhost:{dst}/"
    if sub:
        dest = f"localhost:{dst}/{sub}"  # DEST beneath the one made
    if single is not None:
        # One file as the source: into DEST/ or as DEST/target.
        source = [os.path.join(src, single)]
        dest = f"localhost:{dst}/{target}"
    if sources:
        # Several sources ("{src}/./a/b" for -R), SRC put in.
        source = [x.format(src=src) for x in sources]
    cmd = [client_path(client)] + opts + ["-i", "-e", RSH,
                                          f"--rsync-path={receiver}",
                                          *source, dest]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       env=env, errors="replace", input=stdin)
    return p.returncode, p.stdout, p.stderr


def files_from_opts(extra, base):
    """--files-from: the list (extra "files_from") written beside the
    trees, or read from stdin (extra "files_from_stdin", with --from0
    when it holds NULs)."""
    if extra.get("files_from_stdin") is not None:
        return ["--files-from=-"] + (
            ["--from0"] if "\0" in extra["files_from_stdin"] else [])
    if extra.get("files_from") is None:
        return []
    path = os.path.join(base, "files-from")
    with open(path, "w") as f:
        f.write(extra["files_from"])
    return [f"--files-from={path}"]


def compare_alloc_links(extra, base):
    """extra "blocks": allocated blocks of these files equal rsync's;
    extra "nlinks": every non-directory has rsync's link count (links
    into an older snapshot count)."""
    problems = []
    a, b = (os.path.join(base, "dst-" + w) for w in ("rsync", "berth"))
    for rel in extra.get("blocks", ()):
        x, y = (os.stat(os.path.join(d, rel)).st_blocks for d in (a, b))
        if x != y:
            problems.append(f"{rel}: st_blocks rsync={x} berth={y}")
    if extra.get("nlinks"):
        for d, _, fs in os.walk(a):
            for f in fs:
                p = os.path.join(d, f)
                q = os.path.join(b, os.path.relpath(p, a))
                if not os.path.lexists(q):
                    continue
                x, y = os.lstat(p).st_nlink, os.lstat(q).st_nlink
                if x != y:
                    problems.append(f"{os.path.relpath(p, a)}: links "
                                    f"rsync={x} berth={y}")
    return problems


def xattr_tmpfs():
    """A fresh directory on a tmpfs that takes user xattrs, or None."""
    if not os.path.isdir("/dev/shm"):
        return None
    d = tempfile.mkdtemp(prefix="berth-interop-xattr-", dir="/dev/shm")
    try:
        os.setxattr(d, "user.probe", b"1")
        os.removexattr(d, "user.probe")
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
        return None
    return d


def as_user(receiver, uid, base, who):
    """A wrapper that runs @receiver as @uid (a non-root receiver)."""
    path = os.path.join(base, f"as-{uid}-{who}")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec setpriv --reuid={uid} --regid={uid} "
                f"--clear-groups {receiver} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def without_caps(receiver, letters, base, who):
    """A wrapper that drops @letters from the client's capability string
    (-e.LETTERS, rsync-protocol.md §2.3) before running @receiver: e.g.
    without 'x' the client and the server use the xattr optimization."""
    path = os.path.join(base, f"nocaps-{who}")
    with open(path, "w") as f:
        f.write(f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
for i, a in enumerate(args):
    if a.startswith("-") and not a.startswith("--") and "e." in a:
        head, caps = a.split("e.", 1)
        args[i] = head + "e." + "".join(c for c in caps
                                        if c not in {letters!r})
os.execvp({receiver!r}, [{receiver!r}] + args)
""")
    os.chmod(path, 0o755)
    return path


def openrsync_style(receiver, base, who):
    """A wrapper that rewrites the client's server argv the way openrsync
    (macOS 15's rsync, protocol 27) writes it: every flag on its own, in
    its order (--delete --numeric-ids -g -l -n -o -p -D -r -t -v -x),
    before running @receiver."""
    path = os.path.join(base, f"openrsync-{who}")
    with open(path, "w") as f:
        f.write(f"""#!{sys.executable}
import os, sys
args, out, letters = sys.argv[1:], [], ""
for a in args:
    if a.startswith("-") and not a.startswith("--") and len(a) > 1:
        letters += a[1:].split("e.", 1)[0]
    else:
        out.append(a)
order = "glnopDrtvx"
flags = ["-" + c for c in order for _ in range(letters.count(c))]
flags += ["-" + c for c in letters if c not in order]
i = out.index("--server") + 1
os.execvp({receiver!r}, [{receiver!r}] + out[:i] + flags + out[i:])
""")
    os.chmod(path, 0o755)
    return path


def lead_args(receiver, args, base, who):
    """A wrapper that runs @receiver with @args before the client's
    (--rsync-path="<receiver> --fake-super")."""
    path = os.path.join(base, f"lead-{who}")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec {receiver} {' '.join(args)} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def with_env(receiver, env, base, who):
    """A wrapper that runs @receiver with the variables @env set."""
    path = os.path.join(base, f"env-{who}")
    sets = " ".join(f"{k}={v}" for k, v in env.items())
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec env {sets} {receiver} \"$@\"\n")
    os.chmod(path, 0o755)
    return path


def chown_tree(root, uid):
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            os.chown(os.path.join(d, n), uid, uid, follow_symlinks=False)
    os.chown(root, uid, uid)


def is_temp_name(base):
    """rsync's temp name .NAME.XXXXXX, or berth's: the same with its mark
    "~<pid in base 36><4-char check>" after it."""
    import re
    return bool(re.match(r"^\..+\.[^./]{6}(~[0-9a-z]{1,6}[0-9A-Za-z]{4})?$",
                         base))


def run_scenario(name, berth, work, keep):
    build_src, build_dst, opts = SCENARIOS[name][:3]
    extra = SCENARIOS[name][3] if len(SCENARIOS[name]) > 3 else {}
    tmpfs = None
    if extra.get("root_owned") and not IS_ROOT:
        return None  # skipped: only root can give parts of DEST away
    if extra.get("xattr_fs") or extra.get("src_on_tmpfs"):
        tmpfs = xattr_tmpfs()
        if not tmpfs:
            return None  # skipped: no tmpfs with user xattrs
    try:
        return run_scenario_in(name, berth, work, keep, tmpfs, build_src,
                               build_dst, opts, extra)
    finally:
        if tmpfs and not keep:
            shutil.rmtree(tmpfs, ignore_errors=True)


def run_scenario_in(name, berth, work, keep, tmpfs, build_src, build_dst,
                    opts, extra):
    base = os.path.join(tmpfs if extra.get("xattr_fs") else work, name)
    src = os.path.join(tmpfs if extra.get("src_on_tmpfs") else base, "src")
    uid = extra.get("as_user")
    os.makedirs(base, exist_ok=True)
    os.makedirs(src)
    build_src(src, random.Random(name))
    if extra.get("src_fixup"):
        extra["src_fixup"](src)
    if uid is not None:
        # The receiver must reach its destination.
        for d in (work, tmpfs, base):
            if d:
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o755)
    results = {}
    for who, receiver in (("rsync", "rsync"), ("berth", berth)):
        if extra.get("fresh_src"):
            # The push changes the source (--remove-source-files).
            shutil.rmtree(src)
            os.makedirs(src)
            build_src(src, random.Random(name))
        dst = os.path.join(base, "dst-" + who)
        if build_dst == "FILE":
            write(dst, b"DEST is a file\n")
        elif build_dst == "MKDIR":
            os.makedirs(dst)
        elif build_dst:
            os.makedirs(dst)
            build_dst(dst, random.Random(name + "-dst"))
        if extra.get("server_args"):
            # --rsync-path="<receiver> ARGS": options before --server.
            receiver = lead_args(shutil.which(receiver) or receiver,
                                 extra["server_args"], base, who)
        if uid is not None:
            if not os.path.exists(dst):
                os.makedirs(dst)
            chown_tree(dst, uid)
            for rel in extra.get("root_owned", ()):
                # Given back to root: not the receiver's to change.
                p = os.path.join(dst, rel)
                if os.path.lexists(p):
                    os.chown(p, 0, 0, follow_symlinks=False)
            receiver = as_user(shutil.which(receiver) or receiver, uid,
                               base, who)
        if extra.get("openrsync_args"):
            receiver = openrsync_style(shutil.which(receiver) or receiver,
                                       base, who)
        if extra.get("server_env"):
            receiver = with_env(shutil.which(receiver) or receiver,
                                extra["server_env"], base, who)
        if extra.get("drop_caps"):
            receiver = without_caps(shutil.which(receiver) or receiver,
                                    extra["drop_caps"], base, who)
        before = {}
        if extra.get("same_inode") and os.path.isdir(dst):
            for d, _, fs in os.walk(dst):
                for f in fs:
                    p = os.path.join(d, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        before[p] = os.stat(p).st_ino
        if extra.get("prepush"):
            # A first push; the second, compared, must find all in place.
            rc, _, err = push(src, dst, receiver, opts)
            if rc:
                results.setdefault("_prepush", []).append(
                    f"{who}: first push exited {rc}: {err.strip()[-300:]}")
        results.setdefault("_t0", {})[who] = time.time_ns() - 10**9
        rc, out, err = push(src, dst, receiver,
                            opts + files_from_opts(extra, base),
                            corrupt=extra.get("corrupt"),
                            single=extra.get("single"),
                            target=extra.get("target"),
                            client=extra.get("client"),
                            sources=extra.get("sources"),
                            stdin=extra.get("files_from_stdin"),
                            sub=extra.get("dest_sub"))
        if extra.get("atime_kept"):
            # Before the comparison reads the files.
            results.setdefault("_atimes", {})[who] = {
                rel: os.stat(os.path.join(base, rel.format(who=who)))
                .st_atime_ns for rel in extra["atime_kept"]}
        moved = [p for p, ino in before.items()
                 if os.path.exists(p) and os.stat(p).st_ino != ino]
        if moved:
            results.setdefault("_moved", {})[who] = moved
        if os.path.isdir(dst):
            tree = snapshot(dst, extra.get("atimes", False))
        elif os.path.exists(dst):
            tree = open(dst, "rb").read()
        else:
            tree = b"(no destination)"
        results[who] = (rc, itemized(out), err, tree)
        if extra.get("fresh_src"):
            results.setdefault("_src", {})[who] = sorted(
                os.path.relpath(os.path.join(d, f), src)
                for d, _, fs in os.walk(src) for f in fs)
    problems = list(results.get("_prepush", []))
    (rc_a, it_a, err_a, snap_a), (rc_b, it_b, err_b, snap_b) = \
        results["rsync"], results["berth"]
    if extra.get("messages"):
        msg_a, msg_b = message_lines(err_a, "rsync"), \
            message_lines(err_b, "berth")
        if msg_a != msg_b:
            problems.append("stderr differs:\n  rsync: " +
                            "\n         ".join(msg_a) + "\n  berth: " +
                            "\n         ".join(msg_b))
    srcs = results.get("_src", {})
    if srcs and srcs["rsync"] != srcs["berth"]:
        problems.append(f"sources left differ: rsync {srcs['rsync']}, "
                        f"berth {srcs['berth']}")
    if results.get("_moved", {}).get("berth"):
        problems.append("in-place files got new inodes: "
                        f"{results['_moved']['berth']}")
    if rc_a != extra.get("rc", 0):
        problems.append(f"the reference rsync exited {rc_a}, not "
                        f"{extra.get('rc', 0)}: {err_a.strip()[-300:]}")
    if rc_a != rc_b:
        problems.append(f"exit code rsync={rc_a} berth={rc_b}; berth stderr: "
                        + err_b.strip()[-400:])
    if extra.get("no_itemize"):
        it_b = it_a
    if extra.get("unordered"):
        # Where a redo record lands depends on timing in stock rsync.
        it_a, it_b = sorted(it_a), sorted(it_b)
    else:
        # MSG_DELETED lines overtake records still buffered in the
        # writer, so how the two interleave depends on flush timing
        # (rsync-protocol.md §8.7); each must be in order on its own.
        def split(lines):
            return ([ln for ln in lines if ln.startswith("*deleting")],
                    [ln for ln in lines if not ln.startswith("*deleting")])
        if split(it_a) == split(it_b):
            it_b = it_a
    if extra.get("quiet") and it_b:
        # A push after an identical one: nothing to do, nothing said.
        problems.append(f"berth itemized on a second push: {it_b}")
    if it_a != it_b:
        problems.append("itemize differs:\n  rsync: " + "\n         ".join(it_a)
                        + "\n  berth: " + "\n         ".join(it_b))
    # An mtime rsync itself did not carry over (no -t, symlinks and specials
    # it does not time) is the wall clock: not comparable.
    snap_src = snapshot(src)
    for k, e in (snap_a.items() if isinstance(snap_a, dict) else ()):
        if extra.get("dir_mtimes") and e.get("type") == stat.S_IFDIR:
            continue  # compared as they are: rsync kept or set them
        if k not in snap_src or \
                e.get("mtime_ns") != snap_src[k].get("mtime_ns"):
            e.pop("mtime_ns", None)
            snap_b.get(k, {}).pop("mtime_ns", None)
    # -U: an atime a read moved during the push (relatime) is the wall
    # clock; it must have moved in both, and is not compared further.
    for k, e in (snap_a.items() if isinstance(snap_a, dict) else ()):
        f = snap_b.get(k, {}) if isinstance(snap_b, dict) else {}
        if "atime_ns" in e and "atime_ns" in f and \
                e["atime_ns"] >= results["_t0"]["rsync"] and \
                f["atime_ns"] >= results["_t0"]["berth"]:
            del e["atime_ns"], f["atime_ns"]
    if isinstance(snap_a, bytes) or isinstance(snap_b, bytes):
        if snap_a != snap_b:
            problems.append("destination differs")
        snap_a = snap_b = {}
    problems += diff(snap_a, snap_b)
    problems += compare_alloc_links(extra, base)
    if extra.get("holes"):
        st = os.stat(os.path.join(base, "dst-berth", extra["holes"]))
        if st.st_blocks * 512 >= st.st_size:
            problems.append(f"--sparse: {extra['holes']} has no holes "
                            f"({st.st_blocks * 512} bytes allocated)")
    if extra.get("linked"):
        # Unchanged files are hard links into the previous snapshot.
        prev = os.path.join(base, "prev")
        dst = os.path.join(base, "dst-berth")
        linked = unlinked = 0
        for d, _, fs in os.walk(prev):
            for f in fs:
                p = os.path.join(d, f)
                q = os.path.join(dst, os.path.relpath(p, prev))
                if not os.path.exists(q):
                    continue
                same = open(p, "rb").read() == open(q, "rb").read()
                if same and os.stat(p).st_ino == os.stat(q).st_ino:
                    linked += 1
                elif same:
                    unlinked += 1
        if unlinked or not linked:
            problems.append(f"link-dest: {linked} unchanged files linked, "
                            f"{unlinked} copied instead")
    if extra.get("linked_xattrs"):
        # Unchanged files (same xattrs) are links into the previous
        # snapshot; files whose xattrs differ are not.
        prev = os.path.join(base, "prev")
        for who in ("rsync", "berth"):
            dst = os.path.join(base, "dst-" + who)
            for i in range(6):
                for kind, want in (("same", True), ("diff", False)):
                    p = os.path.join(prev, f"{kind}{i}")
                    q = os.path.join(dst, f"{kind}{i}")
                    linked = os.stat(p).st_ino == os.stat(q).st_ino
                    if linked != want:
                        problems.append(f"{who}: {kind}{i} "
                                        f"{'not ' if want else ''}linked")
    for rel in extra.get("atime_kept", ()):
        # --open-noatime: berth's reads left these atimes as they were.
        if results["_atimes"]["berth"][rel] != OLD_ATIME * 10**9:
            problems.append(f"{rel}: atime moved by berth's reads")
    if extra.get("outside"):
        for who in ("rsync", "berth"):
            out_dir = os.path.join(base, "dst-" + who) + "-outside"
            found = [os.path.join(d, f) for d, _, fs in os.walk(out_dir)
                     for f in fs]
            if found:
                problems.append(f"{who} wrote outside the destination: "
                                f"{found}")
    temps = [k for k in snap_b if is_temp_name(os.path.basename(k))]
    if temps:
        problems.append(f"temp files left: {temps}")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def wait_gone(arg, seconds):
    """Wait until no process has @arg in its command line; False when one
    still has after @seconds."""
    deadline = time.time() + seconds
    while True:
        alive = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if arg.encode() in f.read():
                        alive = True
                        break
            except OSError:
                continue
        if not alive:
            return True
        if time.time() >= deadline:
            return False
        time.sleep(0.05)


def run_partial(name, berth, work, keep):
    """--partial: a push killed mid-file leaves the received prefix as the
    file (no temp file), and the next push completes it from that basis.
    --partial-dir: the prefix is kept in that directory instead, the final
    name is never touched, and the directory is gone after the resume."""
    pdir = ".rsync-partial" if name == "partial_dir_resume" else None
    base = os.path.join(work, name)
    src, dst = os.path.join(base, "src"), os.path.join(base, "dst")
    big = 256 * 1024 * 1024
    os.makedirs(dst)
    rng = random.Random(name)
    write(f"{src}/big.bin",
          b"".join(rng.randbytes(1 << 20) for _ in range(big >> 20)))
    cmd = ["rsync", "-a", f"--partial-dir={pdir}" if pdir else "--partial",
           "-e", RSH, f"--rsync-path={berth}", src + "/", f"localhost:{dst}/"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    path = os.path.join(dst, "big.bin")
    problems = []
    deadline = time.time() + 60
    # Kill the client once some data landed (a temp file grows).
    while time.time() < deadline and p.poll() is None:
        temps = [f for f in os.listdir(dst) if f.startswith(".")]
        if temps and os.path.getsize(os.path.join(dst, temps[0])) > 1 << 20:
            p.kill()
            break
        time.sleep(0.01)
    p.wait()
    # berth notices the dead client and ends: wait for the receiver itself
    # (a fixed pause was too short under TSan on a loaded machine).
    if not wait_gone(dst, 60):
        problems.append("the receiver did not end within 60 s of the kill")
    left = [f for f in os.listdir(dst) if f.startswith(".") and f != pdir]
    if pdir:
        left += [f for f in os.listdir(os.path.join(dst, pdir))
                 if f.startswith(".")]
    if left:
        problems.append(f"temp files left: {left}")
    if pdir:
        if os.path.exists(path):
            problems.append("--partial-dir: the final name was written")
        path = os.path.join(dst, pdir, "big.bin")
    if not os.path.exists(path):
        problems.append("no partial file kept")
    else:
        # rsync's marks of an unfinished file: the epoch under the final
        # name, never the sender's mtime in the partial dir.
        mt = os.stat(path).st_mtime_ns
        if not pdir and mt != 0:
            problems.append(f"--partial: the kept file's mtime is {mt} ns, "
                            "not the epoch")
        if pdir and mt == os.stat(f"{src}/big.bin").st_mtime_ns:
            problems.append("--partial-dir: the partial has the sender's "
                            "mtime")
        n = os.path.getsize(path)
        with open(path, "rb") as a, open(f"{src}/big.bin", "rb") as b:
            if n >= big or a.read() != b.read(n):
                problems.append(f"partial file ({n} bytes) is not a prefix")
    out = subprocess.run(cmd + ["--stats"], capture_output=True, text=True)
    if out.returncode != 0 or "Matched data: 0 bytes" in out.stdout:
        problems.append("resume did not use the partial file: "
                        + out.stdout[-300:] + out.stderr[-300:])
    if pdir:
        if os.path.exists(os.path.join(dst, pdir)):
            problems.append("--partial-dir: still there after the resume")
        path = os.path.join(dst, "big.bin")
    with open(path, "rb") as a, open(f"{src}/big.bin", "rb") as b:
        if a.read() != b.read():
            problems.append("resumed file differs from the source")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def run_refusal(name, berth, work, keep):
    opts = REFUSED[name]
    base = os.path.join(work, name)
    src = os.path.join(base, "src")
    dst = os.path.join(base, "dst")
    os.makedirs(src)
    tree_small(src, random.Random(name))
    rc, out, err = push(src, dst, berth, opts)
    problems = []
    if rc != 4:
        problems.append(f"exit code {rc}, want 4; stderr: {err.strip()[-300:]}")
    if "not supported" not in err:
        problems.append(f"no clear refusal on stderr: {err.strip()[-300:]}")
    if os.path.isdir(dst) and os.listdir(dst):
        problems.append(f"destination touched: {os.listdir(dst)}")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", help="the receiver under test (berth binary)")
    ap.add_argument("--make-tree", metavar="DIR",
                    help="only build the sample tree (for the demo) in DIR")
    ap.add_argument("--edit-tree", metavar="DIR",
                    help="only change some files of a sample tree")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.make_tree:
        rng = random.Random("demo")
        tree_many(f"{args.make_tree}/many", rng, files=2000, dirs=40)
        tree_types(f"{args.make_tree}/types", rng)
        edit_big(f"{args.make_tree}/big", rng)
        touch_dirs(args.make_tree)
        return 0
    if args.edit_tree:
        rng = random.Random("demo-edit")
        for i in range(0, 2000, 97):
            p = f"{args.edit_tree}/many/d{i % 40:02d}/f{i:04d}"
            write(p, rand_bytes(rng, rng.randint(1, 16384)), 0o644,
                  BASE_MTIME + 99999)
        edit_big(f"{args.edit_tree}/big", random.Random("demo-edit2"))
        os.utime(f"{args.edit_tree}/big/big.bin",
                 ns=((BASE_MTIME + 99999) * 10**9,) * 2)
        touch_dirs(args.edit_tree)
        return 0
    if not args.berth:
        ap.error("--berth is required")
    if args.list:
        print("\n".join(list(SCENARIOS) + list(REFUSED)))
        return 0
    if not shutil.which("rsync"):
        print("interop: rsync not installed: skipped")
        return 77
    names = args.only or (list(SCENARIOS) + list(REFUSED) +
                          ["partial_resume", "partial_dir_resume"])
    work = tempfile.mkdtemp(prefix="berth-interop-")
    passed = failed = 0
    for name in names:
        try:
            run = (run_refusal if name in REFUSED else
                   run_partial if name.endswith("partial_resume") or
                   name == "partial_dir_resume" else run_scenario)
            problems = run(name, os.path.abspath(args.berth), work, args.keep)
        except Exception as e:  # a harness error is a failure too
            problems = [f"harness error: {e!r}"]
        if problems is None:
            passed += 1
            print(f"skip {name} (no tmpfs with user xattrs)")
            continue
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print("     " + p)
        else:
            passed += 1
            print(f"ok   {name}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"trees kept in {work}")
    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
