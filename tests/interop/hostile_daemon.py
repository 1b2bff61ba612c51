"""The daemon's greeting, module line, authentication and argument list
(rsync-protocol.md §1.2) attacked with client streams built from the
protocol, against `berth --daemon` started as inetd starts it (the
connection on stdin/stdout), one connection per case.  Each case names
the daemon's exit code and a piece of what it sends back (an "@ERROR:"
line) or logs.  The module's path is the destination; beside it, a
watched directory (and a --link-dest bait) that nothing may change or
link to.  tests/interop/daemon.py covers what a stock client does
(wrong passwords, escapes in the module path, idle and slow clients);
these are the streams no stock client writes.  Written for berth's tests.
"""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

TIMEOUT = 30
SECRET = b"s3cret"
CONF = """\
use chroot = no
log file = {work}/log
timeout = 4
[push]
	path = {work}/dst
	read only = no
	uid = {uid}
	gid = {gid}
[auth]
	path = {work}/dst
	read only = no
	uid = {uid}
	gid = {gid}
	auth users = alice
	secrets file = {work}/secrets
"""


def _line(sock, buf):
    """One line from @sock (b"" at the end); @buf: [bytes read past the
    lines returned, everything read]."""
    while b"\n" not in buf[0]:
        try:
            d = sock.recv(4096)
        except OSError:
            d = b""
        if not d:
            out, buf[0] = buf[0], b""
            return out
        buf[0] += d
        buf[1] += d
    out, _, buf[0] = buf[0].partition(b"\n")
    return out + b"\n"


def greeting(proto=31, digests=b"md5"):
    return b"@RSYNCD: %d.0 %s\n" % (proto, digests) if digests else \
        b"@RSYNCD: %d.0\n" % proto


def args_bytes(args, proto=31):
    end = b"\x00" if proto >= 30 else b"\n"
    return b"".join(a + end for a in args) + end


def answer(challenge, user=b"alice", secret=SECRET):
    d = hashlib.md5(secret + challenge).digest()
    return user + b" " + base64.b64encode(d).rstrip(b"=") + b"\n"


def daemon_cases(ns):
    """(name, script, want_rc, want_text, check): @script is the bytes
    the client sends, or a function(sock, buf) that talks; @want_text is
    looked for in what the daemon sent and in its log.  @ns: Stream, TREE,
    new_answers, tree_is."""
    st = ns.Stream(31)
    tree = ns.TREE
    session = st.build(tree, ns.new_answers(tree, 31))[4:]
    push_args = [a.encode() for a in st.argv("push")]
    auth_args = [a.encode() for a in st.argv("auth")]
    tree_ok = ns.tree_is({"a.txt": ("f", b"hello berth\n"),
                          "sub/c.txt": ("f", b"second file\n")})
    cases = []

    def add(name, script, rc, text="", check=None):
        cases.append((f"daemon {name}", script, rc, text, check))

    def push(args=push_args, module=b"push\n", hello=greeting()):
        return hello + module + args_bytes(args) + session

    add("valid push", push(), 0, "@RSYNCD: OK", tree_ok)
    # -- the greeting.
    add("no greeting", b"", 5, "")
    for what, g in (("no version", b"@RSYNCD: \n"),
                    ("letters", b"@RSYNCD: x.y\n"),
                    ("not @RSYNCD", b"HELLO 31.0\n"),
                    ("5-digit version", b"@RSYNCD: 99999.0\n"),
                    ("negative", b"@RSYNCD: -31.0\n"),
                    ("version 0", b"@RSYNCD: 0.0\n"),
                    ("sub-version letters", b"@RSYNCD: 31.x\n")):
        add(f"greeting {what}", g + b"push\n", 5,
            "@ERROR: protocol startup error")
    add("greeting protocol 26", b"@RSYNCD: 26.0\npush\n", 5,
        "@ERROR: berth speaks rsync protocols")
    add("greeting 30 without a sub-version", b"@RSYNCD: 30\npush\n", 5,
        "incompatible beta of protocol 30")
    # rsync reads lines into a fixed buffer and drops the connection on
    # an over-long one; berth's lines stop at 4 KiB.
    add("greeting 5000 bytes", b"@RSYNCD: 31.0 " + b"m" * 5000 + b"\n" +
        b"push\n", 5, "")
    add("greeting never ends", b"@RSYNCD: 31.0 " + b"m" * 100000, 5, "")
    add("greeting digest list 3000 bytes", greeting(digests=b"x" * 3000) +
        b"push\n", 5, "@ERROR: protocol startup error")
    add("greeting NUL after the version", push(
        hello=b"@RSYNCD: 31.0\x00 garbage\n"), 0, "@RSYNCD: OK", tree_ok)
    # -- the module line.
    for what, m in (("with '/'", b"push/sub"), ("'..'", b".."),
                    ("'../push'", b"../push"), ("'/'", b"/"),
                    ("2000 bytes", b"p" * 2000)):
        add(f"module {what}", greeting() + m + b"\n", 5,
            "@ERROR: Unknown module")
    add("module 10 KiB", greeting() + b"p" * 10240 + b"\n", 5, "")
    add("module unknown command", greeting() + b"#exec\n", 5,
        "@ERROR: Unknown command '#exec'")
    # Names are C strings: what follows a NUL is not read (rsync alike).
    add("module NUL then junk", push(module=b"push\x00/../../etc\n"), 0,
        "@RSYNCD: OK", tree_ok)
    add("module NUL first (an empty name: the listing)",
        greeting() + b"\x00push\n", 0, "@RSYNCD: EXIT")
    add("module listing", greeting() + b"#list\n", 0, "@RSYNCD: EXIT")

    # -- authentication (module auth: alice, md5 from the greeting).
    def auth(resp, then=b""):
        def talk(sock, buf):
            sock.sendall(greeting() + b"auth\n")
            while True:
                ln = _line(sock, buf)
                if not ln or ln.startswith(b"@ERROR"):
                    return
                if ln.startswith(b"@RSYNCD: AUTHREQD "):
                    ch = ln[18:].strip()
                    break
            sock.sendall(resp(ch) if callable(resp) else resp)
            sock.sendall(then)
        return talk

    add("auth valid", auth(answer, args_bytes(auth_args) + session), 0,
        "@RSYNCD: OK", tree_ok)
    failed = "@ERROR: auth failed on module auth"
    for what, resp in (
            ("wrong user", lambda ch: answer(ch, user=b"mallory")),
            ("wrong secret", lambda ch: answer(ch, secret=b"guess")),
            ("user only", b"alice\n"),
            ("user and a space", b"alice \n"),
            ("no user", lambda ch: answer(ch, user=b"")),
            ("digest 15 bytes", lambda ch: b"alice " + base64.b64encode(
                hashlib.md5(SECRET + ch).digest()[:15]) + b"\n"),
            ("digest padded", lambda ch: b"alice " + base64.b64encode(
                hashlib.md5(SECRET + ch).digest()) + b"\n"),
            ("digest alphabet", b"alice " + b"!*" * 11 + b"\n"),
            ("digest of the challenge alone", lambda ch: b"alice " +
             base64.b64encode(hashlib.md5(ch).digest()).rstrip(b"=") +
             b"\n"),
            ("NUL in the user", lambda ch: answer(ch, user=b"alice\x00x")),
            ("overlong (5000 bytes)", b"alice " + b"A" * 5000 + b"\n"),
            ("empty line", b"\n")):
        add(f"auth {what}", auth(resp, args_bytes(auth_args) + session), 5,
            failed)
    add("auth no answer", auth(b""), 5, failed)
    add("auth digest list without a known one",
        greeting(digests=b"sha999 crc") + b"auth\n", 5,
        "@ERROR: your client does not support one of our daemon-auth")

    # -- the arguments after "@RSYNCD: OK".  Directory options are
    # sanitized into the module (rsync's daemon without chroot does the
    # same): ../x is the module's x, / its root, never a path outside.
    def with_opt(*opts):
        a = list(push_args)
        return a[:2] + [o.encode() for o in opts] + a[2:]

    def not_linked(dst):
        p = []
        a = os.path.join(dst, "a.txt")
        bait = os.path.join(os.path.dirname(dst), "x", "a.txt")
        if os.path.exists(a) and os.path.samefile(a, bait):
            p.append("a.txt is a hard link to the --link-dest bait outside")
        return p + tree_ok(dst)

    add("arg --link-dest=../x", push(with_opt("--link-dest=../x")), 0,
        "@RSYNCD: OK", not_linked)
    add("arg --link-dest=../../../..", push(with_opt(
        "--link-dest=../../../..")), 0, "@RSYNCD: OK", not_linked)
    add("arg --temp-dir=/", push(with_opt("--temp-dir=/")), 0,
        "@RSYNCD: OK", tree_ok)
    add("arg --partial-dir=..", push(with_opt("--partial-dir=..")), 4,
        "--partial-dir other than a directory name")
    add("arg --backup-dir=/ with -b", push(with_opt("-b", "--backup-dir=/")),
        0, "@RSYNCD: OK", tree_ok)
    # The list that never ends: one argument with no end (the argument
    # space runs out), many arguments, and one that stalls (the module's
    # timeout).
    add("args one never ending", greeting() + b"push\n" + b"-" * 300000, 2,
        "bad arguments")
    add("args 100000 of them", greeting() + b"push\n" + b"-v\x00" * 100000,
        2, "bad arguments")

    def stall(sock, buf):
        sock.sendall(greeting() + b"push\n" + b"--server\x00-v")
        time.sleep(6)
    # rsync's daemon: "io timeout after N seconds -- exiting", 30.
    add("args stall past the timeout", stall, 30, "io timeout after 4 seconds")

    def stall_greeting(sock, buf):
        sock.sendall(b"@RSYNCD: 31")
        time.sleep(6)
    add("greeting stalls past the timeout", stall_greeting, 30,
        "io timeout after 4 seconds")
    add("args end at EOF", greeting() + b"push\n" + b"--server\x00", 2,
        "bad arguments")
    add("args no --server", push([a for a in push_args
                                  if a != b"--server"]), 1, "no --server")
    add("args --sender (a pull)", push(with_opt("--sender")), 4,
        "pulls from push are not supported")
    add("args --daemon", push(with_opt("--daemon")), 4,
        "daemon mode (--daemon, HOST::MODULE) is not supported")
    add("args protocol 29 newline-ended", greeting(29, b"") + b"push\n" +
        args_bytes([b"--server", b"-lDtpr", b"."] + [b"x\x00y"] +
                   [b"push/"], 29), 1, "unexpected argument")
    return cases


def daemon_cuts(cases, step=11):
    """The valid byte scripts cut short before their session's data
    (the session's own cuts are the --server sweep's): no hang, no
    crash, an exit code."""
    out = []
    for name, script, want, _, _ in cases:
        if want != 0 or callable(script):
            continue
        end = script.find(b"\x00\x00")  # the empty argument
        for cut in range(1, end + 2 if end > 0 else len(script), step):
            out.append((f"{name} cut at {cut}", script[:cut], None, "",
                        None))
    return out


def run_case(berth, case, work_root=None):
    """Run one case: (rc, text, problems)."""
    name, script, want, text, check = case
    work = tempfile.mkdtemp(prefix="bhd-", dir=work_root or "/tmp")
    dst, watch, bait = (os.path.join(work, n) for n in ("dst", "watch", "x"))
    for d in (dst, watch, bait):
        os.mkdir(d)
    with open(os.path.join(watch, "victim"), "wb") as f:
        f.write(b"outside the module\n")
    # --link-dest bait: the pushed a.txt as it will be (content, mtime).
    with open(os.path.join(bait, "a.txt"), "wb") as f:
        f.write(b"hello berth\n")
    os.utime(os.path.join(bait, "a.txt"), (1700000000, 1700000000))
    os.symlink(watch, os.path.join(dst, "esc"))
    with open(os.path.join(work, "secrets"), "w") as f:
        f.write("alice:" + SECRET.decode() + "\n")
    os.chmod(os.path.join(work, "secrets"), 0o600)
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(work=work, uid=os.getuid(), gid=os.getgid()))
    before = _snap(work, dst)
    ours, theirs = socket.socketpair()
    p = subprocess.Popen([berth, "--daemon", f"--config={conf}"],
                         stdin=theirs, stdout=theirs,
                         stderr=subprocess.PIPE)
    theirs.close()
    got, buf = bytearray(), [b"", bytearray()]

    def talk():
        try:
            if callable(script):
                script(ours, buf)
            else:
                ours.sendall(script)
            ours.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    ours.settimeout(TIMEOUT)
    t0 = time.monotonic()
    # A script that talks reads its answers itself: it runs first; bytes
    # are written by a thread while this one reads (neither side blocks).
    t = threading.Thread(target=talk)
    if callable(script):
        talk()
        got += buf[1]
    else:
        t.start()
    try:
        while time.monotonic() - t0 < TIMEOUT:
            d = ours.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    if t.is_alive():
        t.join(TIMEOUT)
    got = bytes(got)
    probs = []
    try:
        _, err = p.communicate(timeout=max(1, TIMEOUT -
                                           (time.monotonic() - t0)))
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        rc = None
        probs.append(f"hang: no exit within {TIMEOUT} s")
    ours.close()
    err = err.decode("utf-8", "replace")
    log = ""
    if os.path.exists(os.path.join(work, "log")):
        log = open(os.path.join(work, "log"), errors="replace").read()
    said = got.decode("utf-8", "replace") + "\n" + log + "\n" + err
    if rc is not None and rc < 0:
        probs.append(f"killed by signal {-rc}")
    for bad in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
        if bad in err:
            probs.append("sanitizer: " + err.strip()[-800:])
            break
    if want is not None and rc != want:
        probs.append(f"exit {rc}, want {want}: {said.strip()[-300:]}")
    if text and text not in said:
        probs.append(f"{text!r} missing: {said.strip()[-300:]}")
    if b"outside the module" in got:
        probs.append("a file outside the module was read and sent")
    if _snap(work, dst) != before:
        probs.append("escape: outside the module changed")
    for d, ds, fs in os.walk(dst):
        for n in fs + ds:
            if n.startswith("."):
                probs.append(f"temp file left: {os.path.join(d, n)}")
    if check and not probs:
        probs += check(dst)
    shutil.rmtree(work, ignore_errors=True)
    return rc, said, probs


def _snap(work, dst):
    out = {}
    for d, ds, fs in os.walk(work):
        if d == dst or d.startswith(dst + os.sep):
            continue
        for n in ds + fs:
            p = os.path.join(d, n)
            if p == dst or n == "log":
                continue
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink)
    return out
