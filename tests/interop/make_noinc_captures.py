#!/usr/bin/env python3
"""Record the -H, -X and --append captures without incremental recursion
(berth refuses the incremental -H/-X/--append lists that the shared
captures hold, so fuzzing those tests little).

    make_noinc_captures.py [--shared DIR]      (root; user xattrs needed)

Uses the shared capture tools (DIR/captures/tools: the trees, the tap and
the fake remote shell) with the stock client and `rsync --server`, and
writes tests/interop/captures/<case>_noinc/ beside this script.  The
hostile replays (hostile.py) pick them up from there.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

NOINC = {
    "case6b_hardlinks_xattrs_noinc": "case6b_hardlinks_xattrs",
    "case10_xattrs_noinc": "case10_xattrs",
    "case11_append_noinc": "case11_append",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "../../../shared"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.shared, "captures", "tools"))
    import make_captures as mc  # the shared recorder
    mc.CAPS = os.path.join(HERE, "captures")
    for name, base in NOINC.items():
        c = dict(mc.CASES[base])
        c["opts"] = c["opts"] + ["--no-inc-recursive"]
        mc.CASES[name] = c
        mc.run(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
