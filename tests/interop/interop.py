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
user xattrs.  Prints one line per scenario and a closing
'N passed, N failed' line; exits 1 if any failed.
"""
import argparse
import hashlib
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile

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
    """Fix directory mtimes bottom-up, so trees are reproducible."""
    for d, _, _ in sorted(os.walk(root), key=lambda t: -t[0].count("/")):
        os.utime(d, ns=(mtime * 10**9, mtime * 10**9), follow_symlinks=False)


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


# ------------------------------------------------------------- scenarios
# name: (source builder, destination builder or None, extra rsync options)

def dest_stale(root, rng):
    """An older copy of tree_small: some files differ, some are extra."""
    tree_small(root, random.Random(1))
    write(f"{root}/a.txt", b"old content\n", mtime=BASE_MTIME - 50)
    write(f"{root}/extra.txt", b"not in source")
    touch_dirs(root, BASE_MTIME - 100)


SCENARIOS = {
    "initial_a": (tree_small, None, ["-a"]),
    "initial_a_noinc": (tree_small, None, ["-a", "--no-inc-recursive"]),
    "initial_proto30": (tree_small, None, ["-a", "--protocol=30"]),
    "initial_proto31": (tree_small, None, ["-a", "--protocol=31"]),
    "initial_r_only": (tree_small, None, ["-r"]),
    "many_files": (tree_many, None, ["-a"]),
    "types_H": (tree_types, None, ["-aH"]),
    "sort_order": (tree_sort, None, ["-a"]),
    "owners_numeric": (tree_owners, None, ["-a", "--numeric-ids"]),
    "owners_names": (tree_owners, None, ["-a"]),
    "update_stale": (tree_small, dest_stale, ["-a"]),
    "big_whole": (big_file, None, ["-a"]),
    "checksum_md5": (tree_small, None, ["-a", "--checksum-choice=md5"]),
}


# ----------------------------------------------------------- comparison

def snapshot(root):
    """Everything rsync -a promises about a tree, keyed by relative path."""
    out = {}
    inodes = {}
    st = os.lstat(root)
    out["."] = {"type": stat.S_IFMT(st.st_mode),
                "perm": stat.S_IMODE(st.st_mode), "uid": st.st_uid,
                "gid": st.st_gid, "mtime_ns": st.st_mtime_ns}
    for d, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = {"type": stat.S_IFMT(st.st_mode),
                 "perm": stat.S_IMODE(st.st_mode),
                 "uid": st.st_uid, "gid": st.st_gid}
            e["mtime_ns"] = st.st_mtime_ns
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
                               for n in sorted(names) if n.startswith("user.")}
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
    """The client's itemize lines, in order."""
    return [ln for ln in out.splitlines()
            if len(ln) > 12 and ln[11] == " " and
            (ln[0] in "<>ch." or ln.startswith("*deleting"))]


def push(src, dst, receiver, opts, env=None):
    cmd = ["rsync"] + opts + ["-i", "-e", RSH, f"--rsync-path={receiver}",
                              src + "/", f"localhost:{dst}/"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                       env=env, errors="replace")
    return p.returncode, p.stdout, p.stderr


def run_scenario(name, berth, work, keep):
    build_src, build_dst, opts = SCENARIOS[name]
    base = os.path.join(work, name)
    src = os.path.join(base, "src")
    os.makedirs(src)
    build_src(src, random.Random(name))
    results = {}
    for who, receiver in (("rsync", "rsync"), ("berth", berth)):
        dst = os.path.join(base, "dst-" + who)
        if build_dst:
            os.makedirs(dst)
            build_dst(dst, random.Random(name + "-dst"))
        rc, out, err = push(src, dst, receiver, opts)
        results[who] = (rc, itemized(out), err, snapshot(dst) if
                        os.path.isdir(dst) else {})
    problems = []
    (rc_a, it_a, err_a, snap_a), (rc_b, it_b, err_b, snap_b) = \
        results["rsync"], results["berth"]
    if rc_a != rc_b:
        problems.append(f"exit code rsync={rc_a} berth={rc_b}; berth stderr: "
                        + err_b.strip()[-400:])
    if it_a != it_b:
        problems.append("itemize differs:\n  rsync: " + "\n         ".join(it_a)
                        + "\n  berth: " + "\n         ".join(it_b))
    # An mtime rsync itself did not carry over (no -t, symlinks and specials
    # it does not time) is the wall clock: not comparable.
    snap_src = snapshot(src)
    for k, e in snap_a.items():
        if k in snap_src and e.get("mtime_ns") != snap_src[k].get("mtime_ns"):
            e.pop("mtime_ns", None)
            snap_b.get(k, {}).pop("mtime_ns", None)
    problems += diff(snap_a, snap_b)
    temps = [k for k in snap_b if os.path.basename(k).startswith(".")
             and len(os.path.basename(k)) > 7
             and os.path.basename(k)[-7] == "."]
    if temps:
        problems.append(f"temp files left: {temps}")
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True,
                    help="the receiver under test (berth binary)")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if not shutil.which("rsync"):
        print("interop: rsync not installed: skipped")
        return 77
    names = args.only or list(SCENARIOS)
    work = tempfile.mkdtemp(prefix="berth-interop-")
    passed = failed = 0
    for name in names:
        try:
            problems = run_scenario(name, os.path.abspath(args.berth), work,
                                    args.keep)
        except Exception as e:  # a harness error is a failure too
            problems = [f"harness error: {e!r}"]
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
