#!/usr/bin/env bash
# The main job: build berth, then push a sample tree into it with the stock
# rsync client exactly as `rsync -a --rsync-path=berth src/ host:/dst/`
# would over ssh (the "remote shell" here runs the command locally), and
# check the result against the source:
#   1. initial copy of ~2,000 files, symlinks, hard links, a 3 MiB file;
#   2. edit some files, push again with -z (zstd): deltas against the old
#      copies, only the changes travel;
#   3. a third push must find nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j"$(nproc)" >/dev/null
berth=$PWD/build-rel/cli/berth
rsh=$PWD/tests/interop/rsh
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$berth" --version
python3 tests/interop/interop.py --make-tree "$work/src"

push() {
	echo "+ rsync $* -e rsh --rsync-path=berth src/ localhost:dst/" >&2
	rsync "$@" -e "$rsh" --rsync-path="$berth" "$work/src/" \
		"localhost:$work/dst/"
}
same() {
	# rsync itself (local, checksums) must see nothing left to change.
	local diff
	diff=$(rsync -aHnic --delete "$work/src/" "$work/dst/")
	if [ -n "$diff" ]; then
		echo "demo: destination differs from the source:" >&2
		echo "$diff" >&2
		exit 1
	fi
	echo "verified: destination == source"
}

echo "== 1. initial copy"
push -aH --stats | grep -E "^(Number of (files|regular files transferred)|Total (file size|bytes sent)|Literal|Matched)"
same
echo "== 2. update: edited files, deltas, zstd"
python3 tests/interop/interop.py --edit-tree "$work/src"
push -aHz --stats -i | grep -E "^(<f|Literal data|Matched data|Total bytes sent)"
same
echo "== 3. nothing to do"
out=$(push -aH -i)
[ -z "$out" ] || { echo "demo: unexpected changes: $out" >&2; exit 1; }
echo "no changes, as expected"
echo "demo: OK"
