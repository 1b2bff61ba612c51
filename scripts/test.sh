#!/usr/bin/env bash
# berth's test command (README "Tests"; .ci/run calls exactly this).
#   1. install what is missing (Debian packages, as root)
#   2. check formatting against .clang-format, and the structure rules
#      of docs/ARCHITECTURE.md (scripts/check-structure.py)
#   3. build with -Werror under ASan+UBSan and run every test
#   4. build with -Werror under TSan and run the threaded tests (label tsan)
#   5. build with -Werror and without io_uring (-DBERTH_URING=OFF, no
#      sanitizer) and run every test but the long ones on the pool backend
#   6. cross-build the engine for Windows (mingw-w64) and run its pump,
#      delta and basis suites under Wine on iocp and pool
#      (scripts/test-windows.sh)
# BERTH_LONG=1 also runs the long stress/benchmark labels.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

./scripts/install-deps.sh

echo "== old rsync clients (2.6.9, 3.1.3) for the interop tests"
export BERTH_OLD_CLIENTS=${BERTH_OLD_CLIENTS:-/tmp/berth-old-clients}
if [ ! -x "$BERTH_OLD_CLIENTS/bin/rsync-2.6.9" ] ||
	[ ! -x "$BERTH_OLD_CLIENTS/bin/rsync-3.1.3" ]; then
	if ! ROOT=$BERTH_OLD_CLIENTS JOBS=$jobs \
		"${BERTH_SHARED:-$PWD/../shared}/clients/build.sh" \
		>"$BERTH_OLD_CLIENTS.log" 2>&1; then
		tail -20 "$BERTH_OLD_CLIENTS.log" >&2
		exit 1
	fi
fi

echo "== format check"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
bad=0
for f in $files; do
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f (run: clang-format -i $f)"
		bad=1
	fi
done
[ "$bad" -eq 0 ] || exit 1

echo "== structure check"
python3 scripts/check-structure.py

run_suite() { # dir sanitizer ctest-args...  ($cmake_extra: more -D options)
	local dir=$1 san=$2
	shift 2
	echo "== build $dir (sanitizer: ${san:-none}${cmake_extra:+, $cmake_extra})"
	# shellcheck disable=SC2086 # cmake_extra is a list of words
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DBERTH_WERROR=ON -DBERTH_SANITIZE="$san" ${cmake_extra:-} >/dev/null
	cmake --build "$dir" -j"$jobs" >/dev/null
	echo "== test $dir"
	# On a failure, the lines that say why are printed again at the end,
	# where a CI log cut in the middle still shows them.
	local rc=0
	ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@" 2>&1 |
		tee "$dir/ctest.log" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "== why $dir failed (from $dir/ctest.log)"
		awk '/^(FAIL|VIOLATION)/ { p = 1; print; next }
			p && /^[ \t]/ { print; next }
			{ p = 0 }
			/\*\*\*(Failed|Timeout)|WARNING: ThreadSanitizer|==[0-9]+==ERROR|SUMMARY: |Traceback/' \
			"$dir/ctest.log" | tail -80
		return "$rc"
	fi
}

# detect_stack_use_after_return: a pointer kept to a caller's buffer (a
# composed path, berth_file_path()) fails at its first use after return.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

long=()
[ "${BERTH_LONG:-0}" = 1 ] || long=(-LE long)
run_suite build-asan address "${long[@]}"
run_suite build-tsan thread -L tsan "${long[@]}"
# Without liburing: the pool backend only, never the long labels (about 2
# minutes on two cores: a plain build, every other test on one backend,
# interop included).
cmake_extra=-DBERTH_URING=OFF run_suite build-nouring "" -LE long

# clang -Werror build of everything, and every decoder fed by the peer
# under libFuzzer for a short while, seeded from the captures.
echo "== fuzz smoke (clang, ${BERTH_FUZZ_SECONDS:=10} s per target)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	-DBERTH_WERROR=ON -DBERTH_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" >/dev/null
fuzz_work=$(mktemp -d /tmp/berth-fuzz-XXXXXX)
trap 'rm -rf "$fuzz_work"' EXIT
BERTH_SHARED=${BERTH_SHARED:-$PWD/../shared} \
	build-fuzz/tests/fuzz/fuzz_make_seeds "$fuzz_work/seeds" >/dev/null
fuzz_ok=0
for t in demux handshake filter flist token ztoken argv daemon_conf daemon_lines daemon_proxy; do
	mkdir -p "$fuzz_work/corpus_$t" "$fuzz_work/seeds/$t"
	bin=build-fuzz/tests/fuzz/fuzz_proto_$t
	case $t in daemon_*) bin=build-fuzz/tests/fuzz/fuzz_$t ;; esac
	if $bin -max_total_time="$BERTH_FUZZ_SECONDS" \
		-rss_limit_mb=1024 -print_final_stats=1 "$fuzz_work/corpus_$t" \
		"$fuzz_work/seeds/$t" >"$fuzz_work/$t.log" 2>&1; then
		runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$fuzz_work/$t.log" | grep -o '[0-9]*$')
		echo "fuzz $t: ${runs:-?} runs, no crash"
		fuzz_ok=$((fuzz_ok + 1))
	else
		echo "fuzz $t: FAILED" >&2
		tail -40 "$fuzz_work/$t.log" >&2
		exit 1
	fi
done
echo "fuzz: $fuzz_ok passed, 0 failed"

# Windows: about 15 s of build and 25 s of tests on two cores once the
# cross-built dependencies are cached (/var/cache/berth-win); about 75 s
# more the first time, which installs the toolchain and Wine and builds
# xxHash, zstd, lz4 and cmocka from Debian's sources.
echo "== windows (mingw-w64 cross build, tests under Wine)"
./scripts/test-windows.sh
echo "== all tests passed"
