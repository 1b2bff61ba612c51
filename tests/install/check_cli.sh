#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# berth's own command line: --help and --version on stdout with exit 0, a
# bad option or a missing argument named on stderr with rsync's exit 1.
#   check_cli.sh BERTH
set -u
berth=$1
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
pass=0 fail=0

expect() { # name code stdout-word stderr-word -- args...
	local name=$1 code=$2 ow=$3 ew=$4
	shift 5
	"$berth" "$@" >"$out" 2>"$err" </dev/null
	local rc=$?
	if [ "$rc" -eq "$code" ] && { [ -z "$ow" ] || grep -qF -- "$ow" "$out"; } &&
		{ [ -z "$ew" ] || grep -qF -- "$ew" "$err"; }; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name: exit $rc; stdout: $(head -3 "$out"); stderr: $(head -3 "$err")"
	fi
}

expect "--help" 0 "Exit codes" "" -- --help
expect "-h" 0 "berth --restrict=DIR" "" -- -h
expect "--help names the environment" 0 "BERTH_DURABILITY" "" -- --help
expect "--version" 0 "protocols 27-32" "" -- --version
expect "-V" 0 "pump backend" "" -- -V
expect "--daemon --help" 0 "--config=FILE" "" -- --daemon --help
expect "unknown option named" 1 "" "berth: --bogus: unknown option" -- --bogus
expect "unknown short option named" 1 "" "berth: -q: unknown option" -- -q
expect "missing argument named" 1 "" "--restrict: missing argument" -- --restrict
expect "empty argument named" 1 "" "--restrict: missing argument" -- --restrict=
expect "stray argument named" 1 "" "berth: foo: unexpected argument" -- foo
expect "no arguments: usage" 1 "" "usage: berth --server" --
expect "--help prints nothing on stderr" 0 "" "" -- --help
[ -s "$err" ] && { echo "FAIL --help wrote to stderr"; fail=$((fail + 1)); }
# A server command line is the session's: no usage text, rsync's code.
expect "--server alone: the session's message" 1 "" "no destination" -- --server
echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
