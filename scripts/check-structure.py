#!/usr/bin/env python3
"""The structure rules of docs/ARCHITECTURE.md, checked from the sources.

    scripts/check-structure.py [-v]

1. No source file over 900 lines in engine/, protocol/, cli/.
2. Calls between the files of one folder point one way: no circle of more
   than two files (a file "calls" another when it names a function that
   the other defines, outside comments and strings).
3. Folders depend one way: no circle between folders (by the same calls,
   and by #include "..." of another folder's headers).

A function belongs to the file that defines it: a line at column 0 that is
not static, names berth_* or berth__* followed by "(", and whose
declaration ends in a body, not a ";".  Exit 0 when every rule holds, 1
with the offending files or circles otherwise.  -v prints the graphs.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("engine", "protocol", "daemon", "cli")
MAX_LINES = 900
MAX_CIRCLE = 2

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"')
TAGGED = re.compile(r"\b(?:struct|enum|union)\s+berth_\w+")
NAME = re.compile(r"\bberth_\w+")
DEF_START = re.compile(r"^(?!static\b)[A-Za-z_][^;{}()]*?\b(berth_\w+)\s*\(",
                       re.M)
INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)


def sources():
    for tree in TREES:
        for d, _, fs in os.walk(os.path.join(ROOT, tree)):
            for f in sorted(fs):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def clean(text):
    """Code only: no comments, no strings, no struct/enum tags (a type
    may share its name with a function)."""
    return TAGGED.sub(" ", STRING.sub('""', COMMENT.sub(" ", text)))


def definitions(path, text):
    out = set()
    if not path.endswith(".c"):
        return out
    for m in DEF_START.finditer(text):
        rest = text[m.end():]
        depth, i = 1, 0
        while i < len(rest) and depth:
            depth += {"(": 1, ")": -1}.get(rest[i], 0)
            i += 1
        tail = rest[i:].lstrip()
        if tail.startswith("{") or tail.startswith("__attribute__"):
            out.add(m.group(1))
    return out


def circles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    verbose = "-v" in sys.argv[1:]
    texts, defs, problems = {}, {}, []
    for p in sources():
        with open(os.path.join(ROOT, p), encoding="utf-8") as f:
            raw = f.read()
        lines = raw.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{p}: {lines} lines (at most {MAX_LINES})")
        texts[p] = clean(raw)
        for name in definitions(p, texts[p]):
            defs.setdefault(name, p)

    folder = os.path.dirname
    file_edges, dir_edges = {}, {}
    for p, text in texts.items():
        used = set(NAME.findall(text))
        for name in used:
            q = defs.get(name)
            if not q or q == p:
                continue
            if folder(q) == folder(p):
                file_edges.setdefault(p, set()).add(q)
            else:
                dir_edges.setdefault(folder(p), set()).add(folder(q))
        for inc in INCLUDE.findall(text):
            d = folder(inc)
            if d and d != folder(p) and d.split("/")[0] in TREES:
                dir_edges.setdefault(folder(p), set()).add(d)

    for comp in circles(texts.keys(), file_edges):
        if len(comp) > MAX_CIRCLE:
            problems.append("calls in a circle of %d files: %s"
                            % (len(comp), ", ".join(comp)))
    for comp in circles({folder(p) for p in texts}, dir_edges):
        problems.append("folders depend on each other: " + ", ".join(comp))

    if verbose:
        for d in sorted(dir_edges):
            print(f"{d} -> {', '.join(sorted(dir_edges[d]))}")
        for p in sorted(file_edges):
            print(f"  {p} -> "
                  f"{', '.join(os.path.basename(q) for q in sorted(file_edges[p]))}")
    for line in problems:
        print("structure: " + line)
    if problems:
        return 1
    print(f"structure: {len(texts)} files, {len(defs)} functions: "
          f"no file over {MAX_LINES} lines, no call circle over "
          f"{MAX_CIRCLE} files, folders one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
