#!/usr/bin/env python3
"""berth --daemon against rsync --daemon with the same rsyncd.conf.

    daemon.py --berth build/cli/berth [--only NAME...] [--keep]

Both daemons run side by side (modules with the same names, each over
its own trees); every scenario pushes with the stock client into both and
compares exit codes, the destination trees and the cause on the client's
stderr: also incoming chmod, the daemon's filter rules, munged symlinks,
numeric ids (both daemons in a mount namespace with other user ids),
authentication with rsync 2.6.9 and 3.1.3, inetd mode, &include/&merge and
the log file's transfer lines; as root, modules' uid/gid (rsync's
nobody/nogroup default, -o/-g as nobody, two uids at once, a path the uid
cannot write, an unknown uid, use chroot in a worker, SIGHUP adding a
uid, a killed worker, both daemons not root).  Then what only berth is asked (systemd
socket activation too): 8 concurrent pushes, the daemon
over a remote shell, attacks (idle connections, a slow greeting, long
lines, bad auth answers, a flood of refused options) while a well-behaved
client is served, and two berth daemons behind HAProxy (send-proxy-v2)
with host rules seeing the client's real address.  Exit 77 without rsync.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_tree(root, rng, n=12):
    os.makedirs(os.path.join(root, "d1", "d2"), exist_ok=True)
    for i in range(n):
        sub = ["", "d1", "d1/d2"][i % 3]
        with open(os.path.join(root, sub, f"f{i}"), "wb") as f:
            f.write(rng.randbytes(rng.choice([0, 10, 3000, 70000])))
    os.symlink("f0", os.path.join(root, "link"))


def snapshot(root):
    """Names, types, modes, sizes, mtimes and contents (not owners)."""
    out = {}
    if not os.path.isdir(root):
        return None
    for d, dirs, files in os.walk(root):
        # A mount in a module (/proc for a chroot) is not its content.
        dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(d, x))]
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", oct(st.st_mode & 0o7777))
            else:
                with open(p, "rb") as f:
                    h = hashlib.md5(f.read()).hexdigest()
                out[rel] = ("f", oct(st.st_mode & 0o7777), st.st_size,
                            int(st.st_mtime), h)
    return out


CONF = """\
port = {port}
pid file = {base}/pid
use chroot = yes
uid = root
gid = root
log file = {base}/log
{extra_global}
[push]
	path = {base}/m/push
	read only = no
	comment = pushes go here
[ro]
	path = {base}/m/ro
[wo]
	path = {base}/m/wo
	read only = no
	write only = yes
[auth]
	path = {base}/m/auth
	read only = no
	auth users = alice, bob:ro
	secrets file = {base}/secrets
[strict]
	path = {base}/m/strict
	read only = no
	auth users = alice
	secrets file = {base}/secrets_loose
[deny]
	path = {base}/m/deny
	read only = no
	hosts deny = 127.0.0.0/8
[maxc]
	path = {base}/m/maxc
	read only = no
	max connections = 1
	lock file = {base}/lock
[refuse]
	path = {base}/m/refuse
	read only = no
	refuse options = delete c
[hidden]
	path = {base}/m/hidden
	read only = no
	list = no
[jail]
	path = {base}/m/jail
	read only = no
	use chroot = yes
[chmod]
	path = {base}/m/chmod
	read only = no
	incoming chmod = Dg+s,ug+rwX,o-w,Fo-r,F+X
[filt]
	path = {base}/m/filt
	read only = no
	filter = - /nope + keep.tmp
	include from = {base}/incl
	include = /t/d1/f1
	exclude from = {base}/excl
	exclude = *.tmp - /t/d1/f4 /u/
[munge]
	path = {base}/m/munge
	read only = no
	use chroot = no
[mungeon]
	path = {base}/m/mungeon
	read only = no
	munge symlinks = yes
"""


class Daemon:
    def __init__(self, kind, binary, base, extra_global="", extra="",
                 wrap=(), template=CONF):
        self.kind, self.base = kind, base
        self.port = free_port()
        for m in ("push", "ro", "wo", "auth", "strict", "deny", "maxc",
                  "refuse", "hidden", "jail", "chmod", "filt", "munge",
                  "mungeon") if template is CONF else ():
            os.makedirs(os.path.join(base, "m", m), exist_ok=True)
        for name, mode in (("secrets", 0o600), ("secrets_loose", 0o644)):
            p = os.path.join(base, name)
            with open(p, "w") as f:
                f.write("alice:wonderland\nbob:builder\n")
            os.chmod(p, mode)
        with open(os.path.join(base, "excl"), "w") as f:
            f.write("# the daemon's own\nsecret/\n- /t/d1/d2/f5\n")
        with open(os.path.join(base, "incl"), "w") as f:
            f.write("; kept\n/t/secret/open\n")
        self.conf = os.path.join(base, "rsyncd.conf")
        with open(self.conf, "w") as f:
            f.write(template.format(port=self.port, base=base,
                                    extra_global=extra_global))
            f.write(extra.format(base=base))
        self.proc = subprocess.Popen(
            list(wrap) + [binary, "--daemon", "--no-detach", f"--config={self.conf}"],
            stdout=subprocess.DEVNULL, stderr=open(
                os.path.join(base, "stderr"), "w"),
            stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{kind} daemon did not start")

    def url(self, path, user=None):
        u = f"{user}@" if user else ""
        return f"rsync://{u}127.0.0.1:{self.port}/{path}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client(args, password=None, timeout=60):
    env = dict(os.environ)
    env.pop("RSYNC_PASSWORD", None)
    if password is not None:
        env["RSYNC_PASSWORD"] = password
    p = subprocess.run(["rsync"] + args, capture_output=True, text=True,
                       errors="replace", timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


class Env:
    def __init__(self, berth, work):
        self.berth, self.work = berth, work
        self.src = os.path.join(work, "src")
        make_tree(self.src, random.Random("daemon"))
        self.r = Daemon("rsync", "rsync", os.path.join(work, "r"))
        self.b = Daemon("berth", berth, os.path.join(work, "b"))


# Scenarios: name -> (client options, module path, password, user,
#                     cause regex on both clients' output or None)
def same(env, name, opts, path, cause=None, password=None, user=None,
         prep=None, src=None):
    problems = []
    res = {}
    for d in (env.r, env.b):
        if prep:
            prep(d)
        res[d.kind] = client(opts + [src or env.src + "/",
                                     d.url(path, user)], password)
    (rrc, rout), (brc, bout) = res["rsync"], res["berth"]
    if rrc != brc:
        problems.append(f"exit {brc}, rsync's daemon {rrc}")
    if cause and not re.search(cause, rout):
        problems.append(f"rsync's output lacks /{cause}/: {rout[-300:]}")
    if cause and not re.search(cause, bout):
        problems.append(f"berth's output lacks /{cause}/: {bout[-300:]}")
    mod = path.split("/")[0]
    rs = snapshot(os.path.join(env.r.base, "m", mod))
    bs = snapshot(os.path.join(env.b.base, "m", mod))
    if rs != bs:
        diff = sorted(set(rs or {}) ^ set(bs or {}))[:5] or [
            k for k in rs if rs[k] != bs.get(k)][:5]
        problems.append(f"trees differ: {diff}")
    if problems:
        problems.append("berth said: " + bout.strip()[-300:])
    return problems


def touch_src(env):
    rng = random.Random("update")
    p = os.path.join(env.src, "d1", "f1")
    with open(p, "r+b") as f:
        f.seek(100)
        f.write(rng.randbytes(50))
    os.utime(p, (1700000000, 1700000000))


def sc_push(env):
    return same(env, "push", ["-a"], "push/t1/")


def sc_delta(env):
    p = same(env, "delta0", ["-a"], "push/t2/")
    touch_src(env)
    return p + same(env, "delta", ["-a", "--no-whole-file"], "push/t2/")


def sc_compress(env):
    return same(env, "z", ["-az"], "push/tz/")


def sc_delete(env):
    def prep(d):
        p = os.path.join(d.base, "m", "push", "tdel")
        os.makedirs(p, exist_ok=True)
        open(os.path.join(p, "extra"), "w").close()
    return same(env, "delete", ["-a", "--delete"], "push/tdel/", prep=prep)


def sc_auth_ok(env):
    return same(env, "auth", ["-a"], "auth/t/", password="wonderland",
                user="alice")


def sc_auth_wrong(env):
    return same(env, "authbad", ["-a"], "auth/t2/", password="nope",
                user="alice", cause=r"@ERROR: auth failed on module auth")


def sc_auth_ro_user(env):
    return same(env, "authro", ["-a"], "auth/t3/", password="builder",
                user="bob", cause=r"module is read only")


def sc_strict(env):
    return same(env, "strict", ["-a"], "strict/t/", password="wonderland",
                user="alice", cause=r"@ERROR: auth failed on module strict")


def sc_unknown(env):
    return same(env, "unknown", ["-a"], "nosuch/", 
                cause=r"@ERROR: Unknown module 'nosuch'")


def sc_read_only(env):
    return same(env, "ro", ["-a"], "ro/t/", cause=r"module is read only")


def sc_write_only(env):
    problems = []
    out = {}
    for d in (env.r, env.b):
        dst = os.path.join(d.base, "pulled")
        out[d.kind] = client(["-a", d.url("wo/"), dst + "/"])
    if out["rsync"][0] != out["berth"][0]:
        problems.append(f"exit {out['berth'][0]}, rsync {out['rsync'][0]}")
    if not re.search("module is write only", out["berth"][1]):
        problems.append("berth: no 'module is write only': " +
                        out["berth"][1][-300:])
    return problems


def sc_hosts_deny(env):
    return same(env, "deny", ["-a"], "deny/t/",
                cause=r"@ERROR: access denied to deny from \S+ \(127.0.0.1\)")


def sc_max_connections(env):
    holds = []
    for d in (env.r, env.b):
        s = socket.create_connection(("127.0.0.1", d.port), 5)
        s.recv(200)
        s.sendall(b"@RSYNCD: 31.0\nmaxc\n")
        s.settimeout(5)
        s.recv(100)  # "@RSYNCD: OK": the slot is held
        holds.append(s)
    try:
        return same(env, "maxc", ["-a"], "maxc/t/",
                    cause=r"@ERROR: max connections \(1\) reached")
    finally:
        for s in holds:
            s.close()


def sc_refuse(env):
    p = same(env, "refuse", ["-a", "--delete"], "refuse/t/",
             cause=r"refuse --delete")
    return p + same(env, "refuse_c", ["-ac"], "refuse/t2/",
                    cause=r"refuse --checksum \(-c\)")


def sc_incoming_chmod(env):
    """incoming chmod: with -p, without it (new files, and files that
    stay, whose mode changes too)."""
    p = same(env, "chmod", ["-a"], "chmod/t/")
    p += same(env, "chmod_np", ["-rlt"], "chmod/t2/")

    def prep(d):
        for f in ("f0", "d1/f1"):
            os.chmod(os.path.join(d.base, "m", "chmod", "t2", f), 0o600)
    return p + same(env, "chmod_keep", ["-rlt"], "chmod/t2/", prep=prep)


def filter_src(env):
    src = os.path.join(env.work, "fsrc") + "/"
    if not os.path.isdir(src):
        make_tree(src, random.Random("filter"))
        for rel in ("x.tmp", "keep.tmp", "secret/a", "secret/open",
                    "d1/secret/b", "nope/c", "d1/y.tmp"):
            os.makedirs(os.path.dirname(os.path.join(src, rel)),
                        exist_ok=True)
            with open(os.path.join(src, rel), "w") as f:
                f.write(rel)
    return src


def sc_daemon_filter(env):
    """The daemon's exclude/include/filter (and their files): what the
    client sends is refused, deletions never touch it, an excluded
    destination or directory option is refused; incremental recursion and
    one whole list."""
    src = filter_src(env)
    p = []
    for opts in (["-a"], ["-a", "--no-inc-recursive"]):
        tag = "i" if len(opts) == 1 else "n"
        p += same(env, "filt", opts, f"filt/t{tag}/", src=src,
                  cause=r'daemon refused to receive file "x.tmp"')

    def prep(d):
        t = os.path.join(d.base, "m", "filt", "t")
        for rel in ("old.tmp", "secret/old", "gone", "d1/gone", "keep.tmp"):
            os.makedirs(os.path.dirname(os.path.join(t, rel)), exist_ok=True)
            with open(os.path.join(t, rel), "w") as f:
                f.write("old")
            os.utime(os.path.join(t, rel), (1600000000, 1600000000))
    p += same(env, "filt_del", ["-a", "--delete"], "filt/t/", src=src,
              prep=prep)
    p += same(env, "filt_module_path", ["-a"], "filt/v/", src=src)
    p += same(env, "filt_dest", ["-a"], "filt/u/", src=src,
              cause=r'daemon has excluded destination "/u/"')

    def mk_u(d):
        os.makedirs(os.path.join(d.base, "m", "filt", "u"), exist_ok=True)
    for opt in ("--link-dest=/u", "--temp-dir=/u", "--backup-dir=/u"):
        p += same(env, "filt_opts", ["-a", "-b", opt], "filt/w/", src=src,
                  prep=mk_u,
                  cause=r"Your options have been rejected by the server")
    return p


def sc_munge_symlinks(env):
    """munge symlinks: rsync's default without use chroot, or asked; a
    module with a rsyncd-munged directory is refused."""
    src = os.path.join(env.work, "lsrc") + "/"
    if not os.path.isdir(src):
        os.makedirs(os.path.join(src, "d"))
        os.symlink("/etc/passwd", os.path.join(src, "abs"))
        os.symlink("../../up", os.path.join(src, "d", "up"))
        os.symlink("plain", os.path.join(src, "rel"))
        with open(os.path.join(src, "plain"), "w") as f:
            f.write("x")
    p = same(env, "munge", ["-a"], "munge/t/", src=src)
    p += same(env, "munge_again", ["-a", "-i"], "munge/t/", src=src)
    p += same(env, "mungeon", ["-a"], "mungeon/t/", src=src)
    p += same(env, "nomunge", ["-a"], "push/links/", src=src)

    def prep(d):
        os.makedirs(os.path.join(d.base, "m", "mungeon", "rsyncd-munged"),
                    exist_ok=True)
    p += same(env, "munge_unsafe", ["-a"], "mungeon/t2/", src=src, prep=prep,
              cause=r"@ERROR: daemon security issue -- contact admin")
    for d in (env.r, env.b):
        os.rmdir(os.path.join(d.base, "m", "mungeon", "rsyncd-munged"))
    return p


NUMERIC = """\
[numdef]
	path = {base}/m/numdef
	read only = no
[names]
	path = {base}/m/names
	read only = no
	use chroot = no
[numyes]
	path = {base}/m/numyes
	read only = no
	use chroot = no
	numeric ids = yes
"""


def sc_numeric_ids(env):
    """numeric ids: the daemons run where user and group "daemon" have
    id 4242 (a mount namespace over /etc/passwd and /etc/group), the
    client sends id 1 named "daemon": mapped without use chroot, kept by
    default under chroot and when asked."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("     (numeric_ids needs root and unshare: skipped)")
        return []
    ns = os.path.join(env.work, "ns")
    os.makedirs(ns, exist_ok=True)
    for name in ("passwd", "group"):
        with open(f"/etc/{name}") as f:
            lines = f.read().splitlines()
        out = []
        for ln in lines:
            parts = ln.split(":")
            if parts[0] == "daemon" and len(parts) > 3:
                parts[2] = "4242"
                if name == "passwd":
                    parts[3] = "4242"
            out.append(":".join(parts))
        with open(os.path.join(ns, name), "w") as f:
            f.write("\n".join(out) + "\n")
    wrap = ["unshare", "-m", "sh", "-c",
            'mount --bind "$1" /etc/passwd && '
            'mount --bind "$2" /etc/group && shift 2 && exec "$@"', "sh",
            os.path.join(ns, "passwd"), os.path.join(ns, "group")]
    src = os.path.join(env.work, "idsrc")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("x")
    os.chown(os.path.join(src, "f"), 1, 1)
    ds = []
    for kind, binary in (("rsync", "rsync"), ("berth", env.berth)):
        base = os.path.join(env.work, "n" + kind)
        for m in ("numdef", "names", "numyes"):
            os.makedirs(os.path.join(base, "m", m), exist_ok=True)
        ds.append(Daemon(kind, binary, base, extra=NUMERIC, wrap=wrap))
    p = []
    try:
        for mod, want in (("numdef", 1), ("names", 4242), ("numyes", 1)):
            got = {}
            for d in ds:
                rc, out = client(["-a", src + "/", d.url(f"{mod}/t/")])
                st = os.lstat(os.path.join(d.base, "m", mod, "t", "f"))
                got[d.kind] = (rc, st.st_uid, st.st_gid)
            if got["rsync"] != got["berth"] or got["rsync"] != (0, want,
                                                                  want):
                p.append(f"{mod}: rsync {got['rsync']}, berth "
                         f"{got['berth']}, want {want}")
    finally:
        for d in ds:
            d.stop()
    return p


OLD = "/tmp/berth-old-clients/bin"


def old_client(which, args, password):
    env = dict(os.environ, RSYNC_PASSWORD=password)
    p = subprocess.run([os.path.join(OLD, f"rsync-{which}")] + args,
                       capture_output=True, text=True, errors="replace",
                       timeout=60, env=env)
    return p.returncode, p.stdout + p.stderr


def sc_auth_old_clients(env):
    """Authentication with rsync 2.6.9 (protocol 29, md4) and 3.1.3
    (protocol 31, md5), right and wrong."""
    p = []
    for which in ("2.6.9", "3.1.3"):
        if not os.path.exists(os.path.join(OLD, f"rsync-{which}")):
            p.append(f"no rsync-{which} in {OLD}")
            continue
        for pw, want in (("wonderland", 0), ("nope", 5)):
            got = {}
            for d in (env.r, env.b):
                rc, out = old_client(which, ["-a", env.src + "/",
                                             d.url(f"auth/o{which}/",
                                                   "alice")], pw)
                got[d.kind] = rc
            if got["rsync"] != want or got["berth"] != want:
                p.append(f"{which} password {pw}: {got}, want {want}")
        if snapshot(os.path.join(env.b.base, "m", "auth", f"o{which}")) != \
                snapshot(env.src):
            p.append(f"{which}: tree differs")
    return p


def serve_once(argv, port_holder, how):
    """Accept one connection on a new port and run @argv on it: with
    the socket as stdin/stdout (inetd), or hand the listening socket over
    as systemd does (LISTEN_FDS=1, LISTEN_PID)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    port_holder.append(ls.getsockname()[1])
    if how == "systemd":
        fd = ls.fileno()

        def child():
            os.dup2(fd, 3)
            os.set_inheritable(3, True)
        return subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh"] +
            # fd 3 is kept whatever the listener's number was: the child
            # closes the others after preexec_fn has dup2'ed it there.
            argv, preexec_fn=child, pass_fds=(3,),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), ls
    conn, _ = None, None

    def acceptor(box):
        c, _ = ls.accept()
        box.append(subprocess.Popen(argv, stdin=c, stdout=c,
                                    stderr=subprocess.DEVNULL))
        c.close()
    box = []
    t = threading.Thread(target=acceptor, args=(box,))
    t.start()
    return (t, box), ls


def sc_inetd_systemd(env):
    """inetd mode (the accepted socket is stdin and stdout) for both
    daemons; systemd socket activation (an inherited listening socket)
    for berth."""
    p = []
    for d in (env.r, env.b):
        binary = "rsync" if d.kind == "rsync" else env.berth
        port = []
        (t, box), ls = serve_once([binary, "--daemon",
                                   f"--config={d.conf}"], port, "inetd")
        rc, out = client(["-a", env.src + "/",
                          f"rsync://127.0.0.1:{port[0]}/push/inetd/"])
        t.join(10)
        ls.close()
        if box:
            box[0].wait(20)
        if rc != 0:
            p.append(f"{d.kind} inetd: exit {rc}: {out[-200:]}")
        if snapshot(os.path.join(d.base, "m", "push", "inetd")) != \
                snapshot(env.src):
            p.append(f"{d.kind} inetd: tree differs")
    port = []
    proc, ls = serve_once([env.berth, "--daemon", "--no-detach",
                           f"--config={env.b.conf}"], port, "systemd")
    try:
        for i in range(2):
            rc, out = client(["-a", env.src + "/",
                              f"rsync://127.0.0.1:{port[0]}/push/sd{i}/"])
            if rc != 0:
                p.append(f"systemd push {i}: exit {rc}: {out[-200:]}")
            elif snapshot(os.path.join(env.b.base, "m", "push",
                                       f"sd{i}")) != snapshot(env.src):
                p.append(f"systemd push {i}: tree differs")
    finally:
        proc.terminate()
        proc.wait(20)
        ls.close()
    return p


INCLUDES = """\
[merged]
	path = {base}/m/merged
	&merge {base}/inc.d
	comment = merged module
&include {base}/extra.conf
"""


def sc_include_logs(env):
    """&merge (a directory's *.inc, in the module it stands in) and
    &include (a file whose leading parameters are its modules' defaults);
    the log file's transfer lines in a module's log format."""
    ds = []
    for kind, binary in (("rsync", "rsync"), ("berth", env.berth)):
        base = os.path.join(env.work, "i" + kind)
        for m in ("merged", "inc1"):
            os.makedirs(os.path.join(base, "m", m), exist_ok=True)
        os.makedirs(os.path.join(base, "inc.d"), exist_ok=True)
        with open(os.path.join(base, "inc.d", "a.inc"), "w") as f:
            f.write("read only = no\ntransfer logging = yes\n"
                    "log format = [%m] %o %f %n %l %b\n")
        with open(os.path.join(base, "inc.d", "b.txt"), "w") as f:
            f.write("bogus parameter = 1\n")
        with open(os.path.join(base, "extra.conf"), "w") as f:
            f.write(f"read only = no\n[inc1]\n\tpath = {base}/m/inc1\n")
        ds.append(Daemon(kind, binary, base, extra=INCLUDES))
    p = []
    try:
        lines = {}
        for d in ds:
            for mod in ("merged", "inc1"):
                rc, out = client(["-a", env.src + "/", d.url(f"{mod}/t/")])
                if rc != 0:
                    p.append(f"{d.kind} {mod}: exit {rc}: {out[-200:]}")
            rc, out = client([d.url("")])
            if "merged module" not in out:
                p.append(f"{d.kind}: listing lacks the comment: {out}")
            with open(os.path.join(d.base, "log")) as f:
                lines[d.kind] = sorted(
                    ln.split("] ", 1)[1] for ln in f.read().splitlines()
                    if "] [merged]" in ln)
        if lines["rsync"] != lines["berth"] or not lines["rsync"]:
            p.append(f"transfer lines differ: rsync {lines['rsync'][:3]}, "
                     f"berth {lines['berth'][:3]}")
        for mod in ("merged", "inc1"):
            if snapshot(os.path.join(ds[0].base, "m", mod)) != \
                    snapshot(os.path.join(ds[1].base, "m", mod)):
                p.append(f"{mod}: trees differ")
    finally:
        for d in ds:
            d.stop()
    return p


def sc_listing(env):
    outs = {}
    for d in (env.r, env.b):
        rc, out = client([d.url("")])
        outs[d.kind] = (rc, sorted(out.splitlines()))
    if outs["rsync"] != outs["berth"]:
        return [f"listing differs: {outs}"]
    return []


def sc_escapes(env):
    p = []
    for path in ("push/../../esc1/", "push/a/../../../esc2/"):
        p += same(env, "esc", ["-a"], path)
    for opt in ("--link-dest=../../..", "--compare-dest=/etc",
                "--backup-dir=../../../bk", "--temp-dir=../../../tmpesc"):
        extra = ["-b"] if "backup" in opt else []
        p += same(env, "alt", ["-a"] + extra + [opt], "push/alt/")
    for d in (env.r, env.b):
        for n in ("esc1", "esc2", "bk", "tmpesc"):
            for where in (d.base, os.path.join(d.base, "m")):
                if os.path.exists(os.path.join(where, n)):
                    p.append(f"{d.kind}: {where}/{n} made outside")
    return p


def sc_symlink_escape(env):
    """A symlink in a chrooted module leading out: rsync's chroot keeps
    the push inside; berth refuses it (never writes outside)."""
    outside = os.path.join(env.work, "outside")
    os.makedirs(outside, exist_ok=True)
    link = os.path.join(env.b.base, "m", "jail", "out")
    if not os.path.islink(link):
        os.symlink(outside, link)
    rc, out = client(["-a", env.src + "/", env.b.url("jail/out/x/")])
    p = []
    if os.listdir(outside):
        p.append(f"berth wrote outside the module: {os.listdir(outside)}")
    if rc == 0:
        p.append("berth accepted a destination behind a symlink out")
    return p


def sc_concurrent(env):
    rcs = [None] * 8

    def one(i):
        rcs[i] = client(["-a", env.src + "/", env.b.url(f"push/c{i}/")])[0]
    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    want = snapshot(env.src)
    p = [f"push {i} exit {rc}" for i, rc in enumerate(rcs) if rc != 0]
    for i in range(8):
        got = snapshot(os.path.join(env.b.base, "m", "push", f"c{i}"))
        if got != want:
            p.append(f"push {i}: tree differs")
    return p


def sc_rsh(env):
    dst = os.path.join(env.b.base, "m", "push", "rsh")
    rsh = os.path.join(env.work, "rsh")
    with open(rsh, "w") as f:
        f.write('#!/bin/sh\nshift\nexec sh -c "$*"\n')
    os.chmod(rsh, 0o755)
    rc, out = client(["-a", "-e", rsh,
                      f"--rsync-path={env.berth} --config={env.b.conf}",
                      env.src + "/", "x::push/rsh/"])
    p = [] if rc == 0 else [f"exit {rc}: {out[-300:]}"]
    if snapshot(dst) != snapshot(env.src):
        p.append("tree differs")
    return p


def sc_attacks(env):
    """Hostile clients while a well-behaved one pushes."""
    port = env.b.port
    socks = []
    stop = threading.Event()
    p = []
    for _ in range(60):  # idle connections
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), 5))
        except OSError:
            break

    def slow():
        try:
            s = socket.create_connection(("127.0.0.1", port), 5)
            for ch in b"@RSYNCD: 31.0\n":
                if stop.is_set():
                    break
                s.send(bytes([ch]))
                time.sleep(0.3)
            s.close()
        except OSError:
            pass

    def long_line():
        try:
            s = socket.create_connection(("127.0.0.1", port), 5)
            s.sendall(b"@RSYNCD: 31.0\n" + b"x" * 200000)
            s.close()
        except OSError:
            pass

    def bad_auth():
        for _ in range(20):
            try:
                s = socket.create_connection(("127.0.0.1", port), 5)
                s.recv(200)
                s.sendall(b"@RSYNCD: 31.0 md5\nauth\n")
                s.settimeout(5)
                s.recv(200)
                s.sendall(b"\xff" * 3000 + b"\n")
                s.recv(200)
                s.close()
            except OSError:
                pass

    def refused_flood():
        for i in range(20):
            client(["-a", "--delete", env.src + "/",
                    env.b.url(f"refuse/f{i}/")], timeout=30)

    ts = [threading.Thread(target=f) for f in
          (slow, long_line, bad_auth, refused_flood)]
    for t in ts:
        t.start()
    t0 = time.time()
    # The well-behaved client: its idle connections must not stall it.
    for s in socks[:40]:
        s.close()
    rc, out = client(["-a", env.src + "/", env.b.url("push/good/")])
    took = time.time() - t0
    if rc != 0:
        p.append(f"well-behaved push exit {rc}: {out[-300:]}")
    if took > 20:
        p.append(f"well-behaved push took {took:.1f} s")
    stop.set()
    for t in ts:
        t.join(60)
    for s in socks[40:]:
        s.close()
    if env.b.proc.poll() is not None:
        p.append("the daemon died")
    rc, out = client(["-a", env.src + "/", env.b.url("push/after/")])
    if rc != 0:
        p.append(f"push after the attacks exit {rc}")
    return p


HAPROXY_CFG = """\
global
	maxconn 256
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend rsyncd
	bind 127.0.0.1:{port}
	default_backend berths
backend berths
	balance roundrobin
	server b1 127.0.0.1:{p1} send-proxy-v2
	server b2 127.0.0.1:{p2} send-proxy-v2
"""


def sc_haproxy(env):
    hap = shutil.which("haproxy")
    if not hap:
        return ["haproxy not installed (scripts/install-deps.sh)"]
    ds = []
    p = []
    extra = "proxy protocol = yes\nreverse lookup = no\n"
    for i in range(2):
        base = os.path.join(env.work, f"hb{i}")
        d = Daemon("berth", env.berth, base, extra)
        # hosts rules on the real client (127.0.0.2): allowed in push
        with open(d.conf, "a") as f:
            f.write(f"[real]\n\tpath = {base}/m/push\n\tread only = no\n"
                    "\thosts allow = 127.0.0.2\n"
                    f"[notreal]\n\tpath = {base}/m/push\n"
                    "\tread only = no\n\thosts allow = 127.0.0.1\n")
        d.proc.send_signal(1)  # SIGHUP: the new modules
        ds.append(d)
    time.sleep(0.5)
    port = free_port()
    cfg = os.path.join(env.work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(port=port, p1=ds[0].port, p2=ds[1].port))
    hp = subprocess.Popen([hap, "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        rcs = [None] * 6

        def one(i):
            rcs[i] = client(["-a", "--address=127.0.0.2", env.src + "/",
                             f"rsync://127.0.0.1:{port}/real/h{i}/"])
        ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for i, (rc, out) in enumerate(rcs):
            if rc != 0:
                p.append(f"push {i} through haproxy exit {rc}: {out[-200:]}")
        counts = [len([n for n in os.listdir(os.path.join(d.base, "m",
                                                           "push"))
                       if n.startswith("h")]) for d in ds]
        if sum(counts) != 6 or 0 in counts:
            p.append(f"pushes per daemon: {counts} (want both used)")
        rc, out = client(["-a", "--address=127.0.0.2", env.src + "/",
                          f"rsync://127.0.0.1:{port}/notreal/x/"])
        if rc != 5 or "access denied to notreal from UNDETERMINED " \
                      "(127.0.0.2)" not in out:
            p.append(f"hosts allow saw the balancer: exit {rc}: {out[-200:]}")
    finally:
        hp.terminate()
        hp.wait()
        for d in ds:
            d.stop()
    return p


def sc_sigterm(env):
    """SIGTERM: the daemon ends every session and exits; no temp files."""
    base = os.path.join(env.work, "term")
    d = Daemon("berth", env.berth, base)
    big = os.path.join(env.work, "bigsrc")
    os.makedirs(big, exist_ok=True)
    with open(os.path.join(big, "big"), "wb") as f:
        f.write(os.urandom(64 << 20))
    proc = subprocess.Popen(["rsync", "-a", "--bwlimit=2000", big + "/",
                             d.url("push/big/")],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    d.proc.terminate()
    p = []
    try:
        d.proc.wait(20)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        p.append("did not end within 20 s")
        d.proc.kill()
        proc.kill()
    leftovers = [n for n in os.listdir(os.path.join(base, "m", "push",
                                                    "big"))
                 if n.startswith(".")] if os.path.isdir(
        os.path.join(base, "m", "push", "big")) else []
    if leftovers:
        p.append(f"temp files left: {leftovers}")
    if proc.returncode == 0:
        p.append("the client did not see the end")
    return p


# ------------------------------------------- uid/gid: worker processes

UIDCONF = """\
port = {port}
pid file = {base}/pid
log file = {base}/log
{extra_global}
[nob]
	path = {base}/m/nob
	read only = no
	uid = nobody
	gid = nogroup
[dflt]
	path = {base}/m/dflt
	read only = no
[u1]
	path = {base}/m/u1
	read only = no
	uid = daemon
	gid = daemon
	use chroot = no
[noperm]
	path = {base}/m/noperm
	read only = no
	uid = nobody
	gid = nogroup
[badid]
	path = {base}/m/badid
	read only = no
	uid = nosuchuser
[asroot]
	path = {base}/m/asroot
	read only = no
	uid = root
	gid = root
[jailu]
	path = {base}/m/jailu
	read only = no
	uid = nobody
	gid = nogroup
	use chroot = yes
	exclude from = {base}/excl_u
"""

UID_OWNERS = {"nob": (65534, 65534), "dflt": (65534, 65534), "u1": (1, 1),
              "noperm": (0, 0), "badid": (0, 0), "asroot": (0, 0),
              "newu": (8, 8), "jailu": (65534, 65534)}


def uid_daemon(kind, binary, base):
    for m, (u, g) in UID_OWNERS.items():
        p = os.path.join(base, "m", m)
        os.makedirs(p, exist_ok=True)
        os.chown(p, u, g)
        os.chmod(p, 0o755)
    os.chmod(base, 0o755)
    os.chmod(os.path.join(base, "m"), 0o755)
    # Outside the module, root's alone: read before the chroot and uid.
    with open(os.path.join(base, "excl_u"), "w") as f:
        f.write("f4\n")
    os.chmod(os.path.join(base, "excl_u"), 0o600)
    link = os.path.join(base, "m", "jailu", "out")
    if not os.path.islink(link):
        os.symlink("/", link)
    return Daemon(kind, binary, base, template=UIDCONF)


def uid_env(env):
    """Both daemons over UIDCONF, started once (root only)."""
    if getattr(env, "uid", None) is None:
        os.chmod(env.work, 0o755)
        base = os.path.join(env.work, "uid")
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)
        env.uid = (uid_daemon("rsync", "rsync", os.path.join(base, "r")),
                   uid_daemon("berth", env.berth, os.path.join(base, "b")))
        env.extra_daemons = getattr(env, "extra_daemons", []) + list(env.uid)
        idsrc = os.path.join(env.work, "uidsrc")
        make_tree(idsrc, random.Random("uid"), n=6)
        for dp, dirs, files in os.walk(idsrc):
            for n in dirs + files:
                os.lchown(os.path.join(dp, n), 1, 1)
        os.chmod(idsrc, 0o755)
        env.idsrc = idsrc + "/"
    return env.uid


def owners(root):
    out = {}
    if not os.path.isdir(root):
        return None
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(d, x))]
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_uid, st.st_gid)
    return out


def same_uid(env, opts, path, cause=None, src=None, top=None):
    """A push into both UIDCONF daemons: exit code, cause, tree and every
    file's owner and group alike."""
    r, b = uid_env(env)
    res = {d.kind: client(opts + [src or env.src + "/", d.url(path)])
           for d in (r, b)}
    (rrc, rout), (brc, bout) = res["rsync"], res["berth"]
    p = []
    if rrc != brc:
        p.append(f"{path}: exit {brc}, rsync's daemon {rrc}")
    for kind, out in (("rsync", rout), ("berth", bout)):
        if cause and not re.search(cause, out):
            p.append(f"{kind}'s output lacks /{cause}/: {out[-300:]}")
    top = top or path.rstrip("/")
    rt, bt = (os.path.join(d.base, "m", top) for d in (r, b))
    if snapshot(rt) != snapshot(bt):
        p.append(f"{path}: trees differ")
    if owners(rt) != owners(bt):
        ro, bo = owners(rt) or {}, owners(bt) or {}
        diff = [(k, ro.get(k), bo.get(k)) for k in sorted(set(ro) | set(bo))
                if ro.get(k) != bo.get(k)][:4]
        p.append(f"{path}: owners differ (rsync, berth): {diff}")
    if p:
        p.append("berth said: " + bout.strip()[-300:])
    return p


def needs_root(fn):
    def wrapped(env):
        if os.geteuid() != 0:
            print("     (needs root: skipped)")
            return []
        return fn(env)
    wrapped.__doc__ = fn.__doc__
    return wrapped


@needs_root
def sc_uid_nobody(env):
    """uid = nobody, gid = nogroup: files owned as rsync's daemon leaves
    them, -o/-g of other owners not honoured, --numeric-ids alike."""
    p = same_uid(env, ["-a"], "nob/t/")
    p += same_uid(env, ["-a"], "nob/o/", src=env.idsrc)
    p += same_uid(env, ["-rlt", "-o", "-g", "--numeric-ids"], "nob/n/",
                  src=env.idsrc)
    b = env.uid[1]
    if owners(os.path.join(b.base, "m", "nob", "t")) and any(
            v != (65534, 65534) for v in
            owners(os.path.join(b.base, "m", "nob", "t")).values()):
        p.append("berth's files are not nobody:nogroup")
    return p


@needs_root
def sc_uid_default(env):
    """No uid/gid in the module, the daemon root: nobody/nogroup."""
    p = same_uid(env, ["-a"], "dflt/t/", src=uid_env(env) and env.idsrc)
    got = owners(os.path.join(env.uid[1].base, "m", "dflt", "t")) or {}
    if not got or set(got.values()) != {(65534, 65534)}:
        p.append(f"berth's owners: {sorted(set(got.values()))}")
    p += same_uid(env, ["-a"], "asroot/t/", src=env.idsrc)
    return p


@needs_root
def sc_uid_concurrent(env):
    """Two modules of different uids pushed at once (both daemons)."""
    r, b = uid_env(env)
    res = {}

    def push(d, mod, i):
        res[(d.kind, mod, i)] = client(["-a", env.src + "/",
                                        d.url(f"{mod}/c{i}/")])[0]
    ts = [threading.Thread(target=push, args=(d, mod, i))
          for d in (r, b) for mod in ("nob", "u1") for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    p = [f"{k}: exit {v}" for k, v in sorted(res.items()) if v]
    for mod in ("nob", "u1"):
        for i in range(3):
            rt = os.path.join(r.base, "m", mod, f"c{i}")
            bt = os.path.join(b.base, "m", mod, f"c{i}")
            if snapshot(rt) != snapshot(bt) or owners(rt) != owners(bt):
                p.append(f"{mod}/c{i}: trees or owners differ")
            want = {UID_OWNERS[mod]}
            if set((owners(bt) or {None: None}).values()) != want:
                p.append(f"{mod}/c{i}: berth's owners not {want}")
    return p


@needs_root
def sc_uid_chroot(env):
    """use chroot with a uid: the worker is chrooted into the module when
    /proc is mounted inside it (berth's safe paths need /proc/self), and
    an absolute symlink in it then leads to the module's top, as in
    rsync's chroot; without /proc the module is confined instead (the
    symlink push is refused, nothing is written outside).  The daemon's
    exclude from file, root's alone outside the module, applies both
    ways."""
    r, b = uid_env(env)
    p = same_uid(env, ["-a"], "jailu/t/", top="jailu",
                 cause=r'daemon refused to receive file "d1/f4"')
    # Confined (no /proc inside): refused, with the reason.
    rc, out = client(["-a", env.src + "/", b.url("jailu/out/y/")])
    if rc == 0 or "leads out of module" not in out:
        p.append(f"berth without /proc: exit {rc}: {out[-200:]}")
    procdir = os.path.join(b.base, "m", "jailu", "proc")
    os.makedirs(procdir, exist_ok=True)
    if subprocess.run(["mount", "--bind", "/proc", procdir]).returncode:
        print("     (cannot mount /proc in the module: chroot not tried)")
        return p
    try:
        p += same_uid(env, ["-a"], "jailu/out/x/", top="jailu")
        if not os.path.isdir(os.path.join(b.base, "m", "jailu", "x")):
            p.append("berth: jailu/out/x/ did not land in the module's x/")
    finally:
        subprocess.run(["umount", "-l", procdir])
    for n in ("/x", "/y"):
        if os.path.exists(n):
            p.append(f"something wrote {n} outside the module")
    return p


@needs_root
def sc_uid_noperm(env):
    """A module whose path its uid cannot write; an unknown uid."""
    p = same_uid(env, ["-a"], "noperm/t/", cause=r"Permission denied")
    p += same_uid(env, ["-a"], "noperm/", cause=r"Permission denied")
    p += same_uid(env, ["-a"], "badid/t/",
                  cause=r"@ERROR: invalid uid nosuchuser")
    return p


def slow_src(env, mb=6):
    src = os.path.join(env.work, f"slow{mb}")
    if not os.path.isdir(src):
        os.makedirs(src)
        with open(os.path.join(src, "big"), "wb") as f:
            f.write(os.urandom(mb << 20))
        os.chmod(src, 0o755)
    return src + "/"


def slow_push(src, url, kbps=1500):
    return subprocess.Popen(["rsync", "-a", f"--bwlimit={kbps}", src, url],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def children(pid):
    out = []
    for n in os.listdir("/proc"):
        if not n.isdigit():
            continue
        try:
            with open(f"/proc/{n}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            if ppid == pid:
                out.append((int(n), os.stat(f"/proc/{n}").st_uid))
        except (OSError, ValueError):
            pass
    return out


@needs_root
def sc_uid_sighup(env):
    """SIGHUP adding a module with a uid not used yet while a push runs
    in a worker: the push ends well, the new module writes as its uid."""
    r, b = uid_env(env)
    src = slow_src(env)
    procs = [slow_push(src, d.url("nob/hup/")) for d in (r, b)]
    time.sleep(1.0)
    for d in (r, b):
        with open(d.conf, "a") as f:
            f.write(f"[newu]\n\tpath = {d.base}/m/newu\n"
                    "\tread only = no\n\tuid = mail\n\tgid = mail\n")
    # rsync's daemon reads its file per connection (SIGHUP would end
    # it); berth's on SIGHUP.
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    p = same_uid(env, ["-a"], "newu/t/")
    got = owners(os.path.join(b.base, "m", "newu", "t")) or {}
    if set(got.values()) != {(8, 8)}:
        p.append(f"newu: berth's owners {sorted(set(got.values()))}")
    for d, pr in zip((r, b), procs):
        try:
            pr.wait(60)
        except subprocess.TimeoutExpired:
            pr.kill()
            p.append(f"{d.kind}: the running push did not end")
        if pr.returncode != 0:
            p.append(f"{d.kind}: the running push: exit {pr.returncode}: "
                     + pr.stderr.read()[-200:])
    rt, bt = (os.path.join(d.base, "m", "nob", "hup") for d in (r, b))
    if snapshot(rt) != snapshot(bt) or owners(rt) != owners(bt):
        p.append("nob/hup: trees or owners differ")
    return p


@needs_root
def sc_uid_kill_worker(env):
    """The process writing as the module's uid killed under a push (rsync's
    connection child, berth's worker): the client's exit code alike, the
    next push works."""
    r, b = uid_env(env)
    src = slow_src(env)
    procs = [slow_push(src, d.url("nob/kill/")) for d in (r, b)]
    time.sleep(1.5)
    p = []
    for d in (r, b):
        kids = [pid for pid, uid in children(d.proc.pid) if uid == 65534]
        if not kids:
            p.append(f"{d.kind}: no process running as nobody")
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
    rcs = []
    for pr in procs:
        try:
            pr.wait(30)
        except subprocess.TimeoutExpired:
            pr.kill()
            pr.wait()
        rcs.append(pr.returncode)
    if rcs[0] != rcs[1] or rcs[1] == 0:
        p.append(f"killed push: exit rsync {rcs[0]}, berth {rcs[1]}")
    time.sleep(0.3)
    p += same_uid(env, ["-a"], "nob/after/")
    with open(os.path.join(b.base, "log")) as f:
        if "killed by signal 9" not in f.read():
            p.append("berth's log does not say the worker was killed")
    return p


@needs_root
def sc_uid_sigterm(env):
    """SIGTERM while pushes run in two workers: every session ends, no
    temp files, the workers are gone, the daemon exits."""
    base = os.path.join(env.work, "uidterm")
    os.makedirs(base, exist_ok=True)
    os.chmod(env.work, 0o755)
    d = uid_daemon("berth", env.berth, base)
    src = slow_src(env)
    procs = [slow_push(src, d.url(f"{m}/big/"), 1000)
             for m in ("nob", "u1", "nob")]
    time.sleep(1.5)
    workers = [pid for pid, uid in children(d.proc.pid) if uid != 0]
    d.proc.terminate()
    p = []
    if len(workers) != 2:
        p.append(f"workers before SIGTERM: {workers}")
    try:
        d.proc.wait(20)
        for pr in procs:
            pr.wait(20)
    except subprocess.TimeoutExpired:
        p.append("did not end within 20 s")
        d.proc.kill()
        for pr in procs:
            pr.kill()
    for m in ("nob", "u1"):
        top = os.path.join(base, "m", m, "big")
        left = [n for n in os.listdir(top) if n.startswith(".")] \
            if os.path.isdir(top) else []
        if left:
            p.append(f"{m}: temp files left: {left}")
    if any(pr.returncode == 0 for pr in procs):
        p.append("a client did not see the end")
    alive = [w for w in workers if os.path.exists(f"/proc/{w}")]
    if alive:
        p.append(f"workers still there: {alive}")
    return p


NOTROOTCONF = """\
port = {port}
pid file = {base}/pid
log file = {base}/log
use chroot = no
{extra_global}
[other]
	path = {base}/m/other
	read only = no
	uid = daemon
[otherg]
	path = {base}/m/otherg
	read only = no
	gid = daemon
[plain]
	path = {base}/m/plain
	read only = no
"""


@needs_root
def sc_uid_not_root(env):
    """Both daemons run as nobody: a module naming another user or group
    is refused with rsync's message; one naming none writes as nobody."""
    os.chmod(env.work, 0o755)
    top = os.path.join(env.work, "notroot")
    wrap = ["setpriv", "--reuid=nobody", "--regid=nogroup",
            "--clear-groups"]
    ds = []
    for kind, binary in (("rsync", "rsync"), ("berth", env.berth)):
        base = os.path.join(top, kind)
        for m in ("other", "otherg", "plain"):
            os.makedirs(os.path.join(base, "m", m), exist_ok=True)
        for dp, dirs, files in os.walk(top):
            os.chmod(dp, 0o755)
            os.chown(dp, 65534, 65534)
        ds.append(Daemon(kind, binary, base, template=NOTROOTCONF,
                         wrap=wrap))
    p = []
    try:
        for mod, cause in (("other", r"@ERROR: setuid failed"),
                           ("otherg", r"@ERROR: setgid failed"),
                           ("plain", None)):
            got = {}
            for d in ds:
                rc, out = client(["-a", env.src + "/", d.url(f"{mod}/t/")])
                got[d.kind] = rc
                if cause and not re.search(cause, out):
                    p.append(f"{d.kind} {mod}: no /{cause}/: {out[-200:]}")
            if got["rsync"] != got["berth"]:
                p.append(f"{mod}: exit rsync {got['rsync']}, berth "
                         f"{got['berth']}")
        rt, bt = (os.path.join(d.base, "m", "plain", "t") for d in ds)
        if snapshot(rt) != snapshot(bt) or owners(rt) != owners(bt):
            p.append("plain: trees or owners differ")
    finally:
        for d in ds:
            d.stop()
    return p


SCENARIOS = {
    "push": sc_push, "delta": sc_delta, "compress": sc_compress,
    "delete": sc_delete, "auth_ok": sc_auth_ok, "auth_wrong": sc_auth_wrong,
    "auth_ro_user": sc_auth_ro_user, "strict_modes": sc_strict,
    "unknown_module": sc_unknown, "read_only": sc_read_only,
    "write_only": sc_write_only, "hosts_deny": sc_hosts_deny,
    "max_connections": sc_max_connections, "refuse_options": sc_refuse,
    "listing": sc_listing, "escapes": sc_escapes,
    "incoming_chmod": sc_incoming_chmod, "daemon_filter": sc_daemon_filter,
    "munge_symlinks": sc_munge_symlinks, "numeric_ids": sc_numeric_ids,
    "auth_old_clients": sc_auth_old_clients,
    "inetd_systemd": sc_inetd_systemd, "include_logs": sc_include_logs,
    "symlink_escape": sc_symlink_escape, "concurrent8": sc_concurrent,
    "remote_shell": sc_rsh, "attacks": sc_attacks, "haproxy": sc_haproxy,
    "sigterm": sc_sigterm,
    "uid_nobody": sc_uid_nobody, "uid_default": sc_uid_default,
    "uid_concurrent": sc_uid_concurrent, "uid_noperm": sc_uid_noperm,
    "uid_sighup": sc_uid_sighup, "uid_kill_worker": sc_uid_kill_worker,
    "uid_sigterm": sc_uid_sigterm, "uid_chroot": sc_uid_chroot,
    "uid_not_root": sc_uid_not_root,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not shutil.which("rsync"):
        print("daemon: no rsync, skipped")
        return 77
    berth = os.path.abspath(a.berth)
    work = tempfile.mkdtemp(prefix="berth-daemon-")
    env = Env(berth, work)
    failed = 0
    t0 = time.time()
    try:
        for name, fn in SCENARIOS.items():
            if a.only and name not in a.only:
                continue
            try:
                problems = fn(env)
            except Exception as e:  # a broken scenario is a failure
                problems = [f"{type(e).__name__}: {e}"]
            if problems:
                failed += 1
                print(f"FAIL {name}")
                for line in problems:
                    print(f"     {line}")
            else:
                print(f"ok   {name}")
            sys.stdout.flush()
    finally:
        env.r.stop()
        env.b.stop()
        for d in getattr(env, "extra_daemons", []):
            d.stop()
            if d.kind == "berth" and d.proc.returncode not in (0, -15):
                print(f"FAIL berth daemon (uid) exit {d.proc.returncode}")
                failed += 1
        if env.b.proc.returncode not in (0, -15):
            print(f"FAIL berth daemon exit {env.b.proc.returncode}")
            failed += 1
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(f"daemon: {failed} failed ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
