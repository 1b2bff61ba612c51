#!/usr/bin/env python3
"""Refusals: every option and protocol berth refuses, pushed by real rsync
clients, against the same kind of refusal made by stock `rsync --server`.

    refusals.py --berth PATH [--only NAME ...] [--list] [--keep]

How rsync's server refuses (rsync 3.x main.c, options.c, compat.c,
cleanup.c, io.c):

  * before the version exchange, or in it (an unknown option, a bad value,
    a feature it was built without, an iconv_open failure, a protocol it
    cannot speak): the message goes to stderr, which the remote shell
    carries to the client; the server exits with its code (1, 2, 4), the
    client finds the stream closed and exits 12 ("connection unexpectedly
    closed") -- the remote shell's status only wins when it is larger;
  * after the handshake (a failing DEST, a read-only module): the message
    goes to the client (stderr or MSG_ERROR) and, from protocol 31, the code
    as MSG_ERROR_EXIT, which the client exits with; below 31 the client
    exits 12.

berth refuses an option after the handshake whenever the handshake can be
made, so a client of protocol 31 or newer gets the code; a protocol it
cannot speak is refused in the version exchange (12 at the client).  For
each case and client this checks, against stock rsync measured on the spot:

  * rsync's code for that kind of refusal: the stock server refusing the
    same kind exits N ("(code N)"), and berth's own exit status is N;
  * the client's exit code: N where rsync's server gets a code across at
    this protocol (measured: a stock refusal after the handshake, a DEST
    that cannot be made, reaches the client as its code, 11), else what
    the stock client exits with for the stock refusal (12; 5 for a daemon
    refusal);
  * the client's stderr names the cause (berth's line), and never reads
    "handshake failed" or "Broken pipe";
  * the destination is untouched.

And the end of input: berth, its client killed mid-stream, says
"connection unexpectedly closed (N bytes received so far) [receiver]" and
exits 12.  Old clients come from $BERTH_OLD_CLIENTS (see interop.py);
configurations whose client is missing are skipped.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from interop import OLD_CLIENTS, tree_small  # noqa: E402

# A remote shell that drops the host and runs the rest through sh -c (so
# --rsync-path may carry options), recording the server's exit status.
RSH_TEXT = """#!/bin/sh
shift
sh -c "$*"
rc=$?
[ -n "$REFUSALS_STATUS" ] && echo $rc > "$REFUSALS_STATUS"
exit $rc
"""

# rsync's refusals of each kind, on a stock server: (rsync-path extra,
# client options, target kind).  Code 1: an option error; 4: a requested
# action the server does not support (iconv_open failure; rsync's manual:
# "an option was specified that is supported by the client and not by the
# server"); 2: a protocol incompatibility found in the version exchange
# (--acls below protocol 30); 5: a daemon that refuses the connection.
# rsync 2.6.9 has no --iconv: for it the code-1 refusal stands in (made at
# the same point, before the handshake), and code 4 is not measured.
STOCK = {
    1: ("--bogus", [], "push"),
    4: ("", ["--iconv=UTF-8,bogus-charset"], "push"),
    2: ("--acls", [], "push"),
    5: ("--config={conf}", [], "daemon"),
}

# name: (code, client options, rsync-path extra for berth, cause regex,
#        clients that have the option (None: all), target kind)
CASES = {
    "unknown_option": (1, [], "--bogus", r"berth: --bogus: unknown option",
                       None, "push"),
    "unknown_letter": (1, [], "-Q", r"berth: -Q \(in -Q\): unknown option",
                       None, "push"),
    "bad_value": (1, [], "--block-size=abc",
                  r"berth: --block-size=abc: invalid value", None, "push"),
    "value_not_taken": (1, [], "--force=1",
                        r"berth: --force=1: takes no value", None, "push"),
    "two_alt_dest_kinds": (1, [], "--link-dest=a --copy-dest=b",
                           r"cannot be mixed", None, "push"),
    "pull": (4, [], "", r"berth: pull \(--sender\) is not supported: "
             r"berth only receives", None, "pull"),
    # berth --server --daemon (daemon over a remote shell) with the same
    # configuration as stock's: no module of that name.
    "daemon": (5, [], "--config={conf}", r"@ERROR: Unknown module 'nomod'",
               None, "daemon"),
    "iconv_bogus": (4, ["--iconv=UTF-8,bogus-charset"], "", r"iconv",
                    ["stock", "3.1.3"], "push"),
    "files_from": (4, [], "--files-from=x",
                   r"berth: --files-from.* not supported", None, "push"),
    "only_write_batch": (4, ["--only-write-batch={base}/batch"], "",
                         r"berth: --only-write-batch=X: not supported",
                         None, "push"),
    "munge_links": (4, [], "--munge-links",
                    r"berth: --munge-links: not supported", None, "push"),
    "fuzzy": (4, ["-y"], "", r"berth: --fuzzy:? (is )?not supported", None,
              "push"),
    "keep_dirlinks": (4, ["-K"], "",
                      r"berth: --keep-dirlinks is not supported", None,
                      "push"),
    "write_devices": (4, ["--write-devices"], "",
                      r"berth: --write-devices is not supported",
                      ["stock"], "push"),
    "partial_dir_nested": (4, ["--partial-dir=a/b"], "",
                           r"--partial-dir other than a directory name",
                           None, "push"),
    "delay_updates_H": (4, ["-H", "--delay-updates"], "",
                        r"--delay-updates with --hard-links", None, "push"),
    "backup_dir_delay": (4, ["--backup-dir=b", "--delay-updates"], "",
                         r"--backup-dir with --delay-updates", None, "push"),
    "backup_inplace": (4, ["-b", "--inplace"], "",
                       r"--backup with --inplace", None, "push"),
    "checksum_sha1": (4, ["--cc=sha1"], "",
                      r"--checksum-choice: a checksum berth does not offer",
                      ["stock"], "push"),
}

# Options the client refuses by itself below a protocol (rsync's compat.c:
# "--acls requires protocol 30 or higher"...): berth never sees them there.
CLIENT_MIN_PROTOCOL = {"-A": 30, "-X": 30, "-y": 29, "-m": 29}


def client_refuses(opts, proto):
    return any(proto < CLIENT_MIN_PROTOCOL.get(o, 0) for o in opts)


# Clients: (name, binary, its protocol, --protocol to force or None).
def client_configs(berth_min):
    cfgs = [("stock", "rsync", 32, None), ("stock", "rsync", 31, 31),
            ("stock", "rsync", 30, 30)]
    cfgs += [("stock", "rsync", p, p) for p in (29, 28, 27) if p >= berth_min]
    for v, p in (("3.1.3", 31), ("2.6.9", 29)):
        cfgs.append((v, os.path.join(OLD_CLIENTS, "bin", "rsync-" + v), p,
                     None))
    return cfgs


class Env:
    def __init__(self, berth, work):
        self.berth = berth
        self.work = work
        self.rsh = os.path.join(work, "rsh")
        with open(self.rsh, "w") as f:
            f.write(RSH_TEXT)
        os.chmod(self.rsh, 0o755)
        self.src = os.path.join(work, "src")
        tree_small(self.src, random.Random("refusals"))
        self.conf = os.path.join(work, "rsyncd.conf")
        with open(self.conf, "w") as f:
            f.write(f"use chroot = no\n[only]\npath = {work}/mod\n")
        self.post = {}
        self.stock = {}
        self.n = 0

    def run(self, binary, receiver, opts, kind, proto, base, extra=""):
        """One client run; returns (client rc, stderr, server status)."""
        status = os.path.join(base, "status")
        dst = os.path.join(base, "dst")
        os.makedirs(dst, exist_ok=True)
        if kind == "push":
            ends = [self.src + "/", f"x:{dst}/"]
        elif kind == "missing":
            ends = [self.src + "/", f"x:{base}/missing/deeper/"]
        elif kind == "pull":
            ends = [f"x:{self.src}/", dst + "/pulled/"]
        else:  # daemon
            ends = [self.src + "/", "x::nomod/"]
        path = receiver + (" " + extra if extra else "")
        cmd = [binary, "-a"] + opts + (
            [f"--protocol={proto}"] if proto else []) + [
            "-e", self.rsh, f"--rsync-path={path}"] + ends
        if os.path.exists(status):
            os.unlink(status)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           errors="replace",
                           env=dict(os.environ, REFUSALS_STATUS=status))
        try:
            with open(status) as f:
                st = int(f.read().strip() or -1)
        except (OSError, ValueError):
            st = None
        return p.returncode, p.stderr, st

    def base(self, tag):
        self.n += 1
        b = os.path.join(self.work, f"{self.n:03d}-{tag}")
        os.makedirs(b)
        return b

    def post_code(self, cfg):
        """The client's exit for a stock refusal after the handshake."""
        key = (cfg[0], cfg[2])
        if key not in self.post:
            rc, err, _ = self.run(cfg[1], "rsync", [], "missing", cfg[3],
                                  self.base("post"))
            self.post[key] = (rc, err)
        return self.post[key]

    def stock_refusal(self, code, cfg):
        if code == 4 and cfg[0] == "2.6.9":
            rc, err, st = self.stock_refusal(1, cfg)
            return rc, err.replace("(code 1)", "(code 4)"), 4
        key = (code, cfg[0], cfg[2])
        if key not in self.stock:
            extra, opts, kind = STOCK[code]
            proto = cfg[3]
            if code == 2 and (proto is None or proto >= 30):
                proto = 29 if cfg[2] >= 29 else cfg[2]
            self.stock[key] = self.run(cfg[1], "rsync", opts, kind, proto,
                                       self.base("stock"),
                                       extra.format(conf=self.conf))
        return self.stock[key]


def marker(dst):
    """A file in the destination, so 'untouched' means something."""
    os.makedirs(dst, exist_ok=True)
    p = os.path.join(dst, "keep")
    with open(p, "wb") as f:
        f.write(b"keep\n")
    os.utime(p, (1600000000, 1600000000))


def untouched(dst):
    names = sorted(os.listdir(dst)) if os.path.isdir(dst) else []
    if names != ["keep"]:
        return f"destination touched: {names}"
    st = os.stat(os.path.join(dst, "keep"))
    with open(os.path.join(dst, "keep"), "rb") as f:
        if f.read() != b"keep\n" or int(st.st_mtime) != 1600000000:
            return "destination file changed"
    return None


def check(env, name, code, cfg, berth_range, opts, extra, cause, kind):
    cname, binary, cproto, force = cfg
    proto = min(force or cproto, berth_range[1])
    problems = []
    # rsync's code for the kind, from a stock server refusing it.
    s_rc, s_err, s_st = env.stock_refusal(code, cfg)
    if code != 5 and f"(code {code})" not in s_err:
        problems.append(f"stock analog does not show code {code}: "
                        f"{s_err.strip()[-300:]}")
    base = env.base(name)
    dst = os.path.join(base, "dst")
    marker(dst if kind != "pull" else os.path.join(dst, "pulled"))
    opts = [o.format(base=base) for o in opts]
    rc, err, st = env.run(binary, env.berth, opts, kind, force, base,
                          extra.replace("{conf}", env.conf))
    if proto >= berth_range[0] and kind in ("push", "pull"):
        post_rc, post_err = env.post_code(cfg)
        want = code if post_rc == 11 else post_rc
        how = (f"after the handshake at protocol {proto}: stock's post-"
               f"handshake refusal reaches this client as {post_rc}")
    else:
        want = s_rc
        how = f"stock's refusal of the same kind exits {s_rc}"
    codes, causes = [code], [cause]
    if proto < berth_range[0] and kind != "daemon":
        # The protocol is refused first, unless the command line itself
        # was wrong (that is named first).
        codes.append(2)
        causes.append(r"berth: the client speaks rsync protocol version")
    if rc != want:
        problems.append(f"client exit {rc}, want {want} ({how})")
    if kind != "daemon" and st is not None and st not in codes:
        problems.append(f"berth exit status {st}, want rsync's {code}")
    if not any(re.search(c, err) for c in causes):
        problems.append(f"cause /{cause}/ not on the client's stderr")
    # The server's last line names the code, as stock rsync's server does
    # whenever its own refusal reaches this client.
    if (kind != "daemon" and st and
            re.search(r"^rsync error: .* \[(server|Receiver)=", s_err, re.M)
            and not re.search(r"^berth error: .* \(code %d\) at \S+ "
                              r"\[(server|Receiver)=berth " % st, err, re.M)):
        problems.append(f"no 'berth error: ... (code {st})' line")
    for bad in ("handshake failed", "Broken pipe"):
        if bad in err:
            problems.append(f"stderr reads {bad!r}")
    if rc == 12 and "berth" not in err:
        problems.append("a bare 12: no berth line")
    u = untouched(dst if kind != "pull" else os.path.join(dst, "pulled"))
    if u:
        problems.append(u)
    if problems:
        problems.append("stderr: " + err.strip().replace("\n", " | ")[-400:])
    return problems


def check_eof(env):
    """The client goes mid-stream: berth's words and code for it."""
    base = env.base("eof")
    dst = os.path.join(base, "dst")
    os.makedirs(dst)
    status = os.path.join(base, "status")
    big = os.path.join(base, "big")
    os.makedirs(big)
    with open(os.path.join(big, "f"), "wb") as f:
        f.write(os.urandom(8 << 20))
    errf = open(os.path.join(base, "err"), "w+")
    p = subprocess.Popen(["rsync", "-a", "--bwlimit=1m", "-e", env.rsh,
                          f"--rsync-path={env.berth}", big + "/",
                          f"x:{dst}/"], stderr=errf,
                         env=dict(os.environ, REFUSALS_STATUS=status),
                         start_new_session=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)  # the client only, not the shell or berth
    p.wait()
    problems = []
    for _ in range(100):
        if os.path.exists(status) and os.path.getsize(status):
            break
        time.sleep(0.1)
    errf.seek(0)
    err = errf.read()
    try:
        with open(status) as f:
            st = int(f.read().strip())
    except (OSError, ValueError):
        st = None
    if st != 12:
        problems.append(f"berth exit status {st}, want 12")
    if not re.search(r"berth: connection unexpectedly closed \(\d+ bytes "
                     r"received so far\) \[receiver\]", err):
        problems.append("no 'connection unexpectedly closed' line")
    if "Broken pipe" in err:
        problems.append("stderr reads 'Broken pipe'")
    if problems:
        problems.append("stderr: " + err.strip().replace("\n", " | ")[-400:])
    return problems


def berth_range(berth):
    out = subprocess.run([berth, "--version"], capture_output=True,
                         text=True).stdout
    m = re.search(r"protocols (\d+)-(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (30, 32)


def all_names(rng):
    names = list(CASES)
    names += [f"protocol_{p}" for p in sorted({20, 24, 26, rng[0] - 1})
              if 20 <= p < rng[0]]
    return names + ["end_of_input"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    berth = os.path.abspath(args.berth)
    rng = berth_range(berth)
    if args.list:
        print("\n".join(all_names(rng)))
        return 0
    if not shutil.which("rsync"):
        print("refusals: rsync not installed: skipped")
        return 77
    work = tempfile.mkdtemp(prefix="berth-refusals-")
    env = Env(berth, work)
    cfgs = [c for c in client_configs(rng[0])
            if c[0] == "stock" or os.access(c[1], os.X_OK)]
    skipped = [c[0] for c in client_configs(rng[0]) if c not in cfgs]
    if skipped:
        print(f"skip clients {skipped} (not built in {OLD_CLIENTS})")
    passed = failed = 0
    for name in args.only or all_names(rng):
        runs = []
        if name == "end_of_input":
            runs.append(("stock", lambda: check_eof(env)))
        elif name.startswith("protocol_"):
            p = int(name.split("_")[1])
            cfg = ("stock", "rsync", p, p)
            cause = (rf"berth: the client speaks rsync protocol version {p}; "
                     rf"berth speaks versions {rng[0]} to {rng[1]}")
            runs.append((f"stock@{p}", lambda cfg=cfg, cause=cause: check(
                env, name, 2, cfg, rng, [], "", cause, "push")))
        else:
            code, opts, extra, cause, clients, kind = CASES[name]
            for cfg in cfgs:
                if clients and cfg[0] not in clients:
                    continue
                if client_refuses(opts, cfg[2]):
                    continue
                label = cfg[0] + (f"@{cfg[3]}" if cfg[3] else "")
                runs.append((label, lambda cfg=cfg: check(
                    env, name, code, cfg, rng, opts, extra, cause, kind)))
        for label, run in runs:
            try:
                problems = run()
            except Exception as e:  # a harness error is a failure too
                problems = [f"harness error: {e!r}"]
            if problems:
                failed += 1
                print(f"FAIL {name} [{label}]")
                for p in problems:
                    print("     " + p)
            else:
                passed += 1
                print(f"ok   {name} [{label}]")
    if args.keep:
        print(f"runs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"refusals: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
