#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages, built and used on this machine:
#   1. dpkg-buildpackage in a copy of the source tree (debian/: berth,
#      libberth0, libberth-dev; a library-only build, manual pages on);
#   2. the three .debs installed with dpkg;
#   3. used as installed: man berth (and the other pages), berth --help, a
#      push with the stock rsync client through /usr/bin/berth, the
#      restricted mode (restrict.py against /usr/bin/berth), a program
#      built with find_package(berth) and with pkg-config from /usr, the
#      units in /lib/systemd/system (systemd-analyze verify);
#   4. purged again, unless they were installed before.
# Needs root, dpkg-buildpackage and debhelper: exit 77 (skipped) without.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-buildpackage >/dev/null ||
	! command -v dh >/dev/null || ! command -v rsync >/dev/null; then
	echo "deb: needs root, dpkg-buildpackage, debhelper and rsync: skipped"
	exit 77
fi
work=$(mktemp -d /tmp/berth-deb-XXXXXX)
had=$(dpkg-query -W -f='${Status}' berth 2>/dev/null || true)
cleanup() {
	case $had in
	*"install ok installed"*) ;;
	*) dpkg --purge berth libberth-dev libberth0 >/dev/null 2>&1 || true ;;
	esac
	rm -rf "$work"
}
trap cleanup EXIT

# 1. Build from a copy holding the source files only (no build trees).
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree=$work/berth-$version
mkdir -p "$tree"
(cd "$src" && if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -co --exclude-standard
else
	find . -path './build*' -prune -o -type f -print
fi) | (cd "$src" && tar -cf - -T -) | tar -xf - -C "$tree"
start=$(date +%s)
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b -j"$(nproc)") \
	>"$work/build.log" 2>&1; then
	tail -40 "$work/build.log" >&2
	exit 1
fi
debs=("$work"/berth_"$version"_*.deb "$work"/libberth0_"$version"_*.deb
	"$work"/libberth-dev_"$version"_*.deb)
echo "deb: built ${debs[*]##*/} in $(($(date +%s) - start)) s"

# 2. Installed.
dpkg -i "${debs[@]}" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; exit 1; }
echo "deb: installed"

# 3. Used.
test "$(command -v berth)" = /usr/bin/berth
berth --help | grep -q "Exit codes"
berth --version | grep -q "berth $version"
for page in berth berth-connect berthd.conf libberth; do
	man -w "$page" >/dev/null
done
MANWIDTH=80 man berth 2>/dev/null | grep -q "RESTRICTED MODE"
MANWIDTH=80 man 5 berthd.conf 2>/dev/null | grep -q "PARAMETERS BERTH SUPPORTS"
MANWIDTH=80 man 3 libberth 2>/dev/null | grep -q "OWNERSHIP"
echo "deb: berth --help, --version, man berth, man 1 berth-connect, man 5 berthd.conf, man 3 libberth: ok"

mkdir -p "$work/src/d" "$work/dst"
for i in $(seq 1 50); do echo "file $i" >"$work/src/d/f$i"; done
head -c 300000 /dev/urandom >"$work/src/big"
rsync -a -e "$src/tests/interop/rsh" --rsync-path=berth \
	"$work/src/" "localhost:$work/dst/"
[ -z "$(rsync -anic --delete "$work/src/" "$work/dst/")" ] ||
	{ echo "deb: the push through /usr/bin/berth differs" >&2; exit 1; }
echo "deb: rsync -a --rsync-path=berth through the installed program: ok"

python3 "$src/tests/install/restrict.py" --berth /usr/bin/berth >"$work/restrict.log" ||
	{ cat "$work/restrict.log" >&2; exit 1; }
echo "deb: $(tail -1 "$work/restrict.log") (installed berth --restrict)"

cmake -S "$src/tests/install/consumer" -B "$work/consumer" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/use_shared" >/dev/null
"$work/consumer/use_static" >/dev/null
cc -std=c11 -Wall -Werror "$src/tests/install/use_berth.c" -o "$work/use_pc" \
	$(pkg-config --cflags --libs berth)
"$work/use_pc" >/dev/null
echo "deb: find_package(berth) and pkg-config from /usr (libberth-dev), shared and static: ok"

if command -v systemd-analyze >/dev/null; then
	units=(/lib/systemd/system/berthd.socket /lib/systemd/system/berthd.service
		/lib/systemd/system/berth-backup-agent.service)
	if ! systemd-analyze verify --man=no "${units[@]}" >"$work/verify.log" 2>&1 ||
		grep -v "Failed to \(connect\|open\|create\)" "$work/verify.log" |
		grep -qi "berth"; then
		cat "$work/verify.log" >&2
		exit 1
	fi
	echo "deb: systemd-analyze verify of the installed units: ok"
else
	echo "deb: systemd-analyze not present: the units' syntax not checked"
fi
echo "deb: ok"
