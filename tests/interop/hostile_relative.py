"""-R (relative) and --files-from pushes for the hostile sender: what a
client that sends a relative list (its own --files-from list is always
sent so) may put in it, and a --files-from list the receiving side is
told to read.  Written for berth's tests.
"""
import os

UNSAFE = "unsafe or invalid path name"


def relative_cases(add, ns):
    """@add: the catalog's add(); @ns: Stream, D, F, L, new_answers,
    setup_old, tree_is, WATCH_PATH."""
    Stream, D, F, L = ns.Stream, ns.D, ns.F, ns.L
    new, tree_is, watch = ns.new_answers, ns.tree_is, ns.WATCH_PATH
    rs = Stream(31, letters="R")
    rs29 = Stream(29, letters="R")

    def case(what, ents, rc, msg, st=rs, **kw):
        add(f"-R {what}", st, ents, new(ents, st.proto), rc, msg, **kw)

    # The valid form: implied directories, then the file.
    ents = [D(b"."), D(b"a"), D(b"a/b"), F(b"a/b/f", b"relative\n")]
    for st in (rs, rs29):
        case(f"p{st.proto} valid with implied dirs", ents, 0, "", st=st,
             check=tree_is({"a/b/f": ("f", b"relative\n")}))
    # Absolute names: rsync's receiver takes them with -R (only), beneath
    # the destination; the watched directory's own path is sent.
    ents = [D(b"."), D(b"/tmp"), D(ns.WORK_PATH), D(watch),
            F(watch + b"/victim", b"replaced\n")]

    def beneath(dst):
        w = os.path.join(os.path.dirname(dst), "watch")
        return tree_is({os.path.relpath(w, "/") + "/victim":
                        ("f", b"replaced\n")})(dst)

    case("absolute name of the watched file", ents, 0, "", check=beneath)
    # "/" cleans to an empty name.
    ents = [D(b"."), D(b"/"), F(b"/x", b"root\n")]
    case("'/' and '/x'", ents, 2, UNSAFE)
    # '..' components are refused with -R as without it (rsync: "ABORTING
    # due to unsafe pathname", exit 2).
    for bad in (b"a/../../x", b"/../x", b"/..", b"a/b/../../../x",
                b"../" + watch[1:] + b"/victim"):
        ents = [D(b"."), D(b"a"), D(b"a/b"), F(bad, b"evil\n")]
        case(f"name {bad.decode()[:40]!r}", ents, 2, UNSAFE)
    # Below a symlink sent earlier in the same list, also when the list
    # then names it as an implied directory.
    for tgt in (watch, b"../watch"):
        ents = [D(b"."), L(b"ln", tgt), F(b"ln/victim", b"evil\n")]
        case(f"file below a sent symlink -> {tgt.decode()[-8:]}", ents, 2,
             "")
        # The directory is kept, the symlink dropped (rsync's rule for a
        # duplicate: the directory, it may have contents in the list).
        ents = [D(b"."), L(b"ln", tgt), D(b"ln"), F(b"ln/victim", b"evil\n")]
        case(f"symlink, then the same name as an implied dir -> "
             f"{tgt.decode()[-8:]}", ents, 0, "",
             check=tree_is({"ln/victim": ("f", b"evil\n")}))
    # An implied directory whose name is a file in the list, and one that
    # is a file in the destination (replaced by the directory).
    # (A parent that is not a directory in the list: berth refuses the
    # list, 2; rsync's receiver fails to open the file, 23.)
    ents = [D(b"."), F(b"a", b"a file\n"), F(b"a/b", b"below\n")]
    case("a file where an implied dir goes (in the list)", ents, 2,
         "receiving the file list")

    def setup_file_a(dst, w):
        ns.setup_old(dst, w)
        with open(os.path.join(dst, "a"), "wb") as f:
            f.write(b"old file\n")

    ents = [D(b"."), D(b"a"), F(b"a/b", b"below\n")]
    case("a file where an implied dir goes (in the destination)", ents, 0,
         "", setup=setup_file_a, check=tree_is({"a/b": ("f", b"below\n")}))
    ents = [D(b"."), F(b"a/b", b"below\n")]
    case("no implied dir, a file in its way", ents, 2,
         "receiving the file list", setup=setup_file_a)
    # Duplicate names: rsync's receiver keeps the directory of a pair, or
    # the first of two non-directories, and drops the other; the sender
    # sends data for the kept one only.  Data for the dropped one is
    # data never asked for (2).
    one = {"ndx": 1, "tokens": ns.plain_tokens([b"one\n"]),
           "content": b"one\n"}
    for what, ents, ans, rc, want in (
            ("a file twice", [D(b"."), F(b"a", b"one\n"),
                              F(b"a", b"one\n")], [one], 0,
             {"a": ("f", b"one\n")}),
            ("a file twice, data for both", [D(b"."), F(b"a", b"one\n"),
                                             F(b"a", b"two\n")], None, 2,
             None),
            ("a dir and a file", [D(b"."), D(b"a"), F(b"a", b"two\n"),
                                  F(b"a/f", b"f\n")],
             [dict(one, ndx=3, content=b"f\n",
                   tokens=ns.plain_tokens([b"f\n"]))], 0,
             {"a/f": ("f", b"f\n")}),
            ("a file and a dir", [D(b"."), F(b"a", b"one\n"), D(b"a")], [],
             0, {}),
            ("'.' twice", [D(b"."), D(b"."), F(b"a", b"one\n")],
             [dict(one, ndx=2)], 0, {"a": ("f", b"one\n")})):
        if ans is None:
            ans = new(ents, 31)
        add(f"-R duplicate {what}", rs, ents, ans, rc, "",
            check=tree_is(want) if want is not None else None)
    case("'a' and 'a/'", [D(b"."), D(b"a"), D(b"a/"), F(b"a/f", b"x")], 2,
         UNSAFE)
    # Overlong: a 256-byte component (a file name the system refuses), a
    # 4000-byte path of 255-byte components, a 5000-byte one.
    comp = b"c" * 255
    deep = [D(b".")]
    p = b""
    while len(p) + 256 < 4000:
        p = p + b"/" + comp if p else comp
        deep.append(D(p))
    deep.append(F(p + b"/f", b"deep\n"))
    case("4000-byte path (no sweep)", deep, 0, "",
         check=tree_is({p.decode() + "/f": ("f", b"deep\n")}))
    case("5000-byte name", [D(b"."), F((comp + b"/") * 19 + b"f", b"x")],
         2, UNSAFE)
    # A file name the file system refuses (256 bytes), a directory too:
    # skipped with the error, the rest written, 23 (rsync's generator
    # fails the same way).  The sender sends what was asked for: in the
    # list's sorted order, files before the directories of a level.
    for what, ents in (
            ("a 256-byte file name", [D(b"."), F(b"n" * 256, b"x"),
                                      F(b"z", b"zz\n")]),
            ("a 256-byte dir name", [D(b"."), F(b"z", b"zz\n"),
                                     D(b"d" * 256),
                                     F(b"d" * 256 + b"/f", b"x")])):
        zi = [i for i, e in enumerate(ents) if e["name"] == b"z"][0]
        add(f"-R {what}", rs, ents,
            [{"ndx": zi, "tokens": ns.plain_tokens([b"zz\n"]),
              "content": b"zz\n"}], 23, "File name too long",
            check=tree_is({"z": ("f", b"zz\n")}))
    # Embedded NUL: rsync takes the name up to the NUL; berth refuses the
    # name (a NUL is in no file name).  A newline is a name's byte.
    case("name with a NUL", [D(b"."), F(b"a\x00/../../x", b"x")], 2,
         UNSAFE)
    case("name with a NUL then '..'", [D(b"."), D(b"a"),
                                       F(b"a/\x00..", b"x")], 2, UNSAFE)
    case("name with a newline", [D(b"."), F(b"a\nb", b"nl\n")], 0, "",
         check=tree_is({"a\nb": ("f", b"nl\n")}))

    # --files-from naming a list on the receiving side: rsync's server
    # reads it there and sends it to the client; berth refuses it (exit 4)
    # and never reads it (check: its bytes never reach the client).
    for arg in ([b"--files-from=" + watch + b"/victim"],
                [b"--files-from=-"],
                [b"--files-from=" + watch + b"/victim", b"--from0"],
                [b"--files-from=../watch/victim"],
                [b"--files-from="]):
        st = Stream(31, letters="R",
                    longopts=[a.decode() for a in arg])
        ents = [D(b"."), F(b"a", b"x")]
        add(f"--files-from on the receiver {b' '.join(arg).decode()[-30:]}",
            st, ents, new(ents, 31), 4,
            "receiving side (host:FILE; a local list works) is not "
            "supported")
