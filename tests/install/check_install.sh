#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cmake --install into a scratch prefix, then use what was installed as a
# user would:
#   - build a program against libberth with pkg-config, shared and static,
#     and with find_package(berth) (berth::berth, berth::berth_static);
#     a version find_package must refuse;
#   - only the API leaves the shared library, each symbol at BERTH_0, the
#     same list as the header's BERTH_API functions;
#   - the manual pages (man -M), the programs (berth --help,
#     berth-connect, berth-backup-agent);
#   - the systemd units' syntax (systemd-analyze verify, where present).
# Its own plain (unsanitized) build, so the installed library is what a
# user gets.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/berth-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
	-DBERTH_URING="${BERTH_URING:-ON}" -DBERTH_TESTS=OFF >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
prefix=$work/prefix
cmake --install "$work/build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags berth) \
	"$src/tests/install/use_berth.c" -o "$work/use_shared" $(pkg-config --libs berth)
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags berth) \
	"$src/tests/install/use_berth.c" -o "$work/use_static" \
	-Wl,-Bstatic $(pkg-config --libs-only-L berth) -lberth -Wl,-Bdynamic \
	$(pkg-config --static --libs-only-l berth | sed 's/-lberth//')
libdir=$(pkg-config --variable=libdir berth)
LD_LIBRARY_PATH="$libdir" "$work/use_shared"
"$work/use_static"
echo "install: pkg-config, shared and static: ok"

# find_package(berth), from the prefix alone.
cmake -S "$src/tests/install/consumer" -B "$work/consumer" \
	-DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer.log" 2>&1 ||
	{ cat "$work/consumer.log" >&2; exit 1; }
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/consumer/use_shared"
"$work/consumer/use_static"
# The shared one finds libberth.so.0 through its RUNPATH or the prefix.
if cmake -S "$src/tests/install/consumer" -B "$work/consumer9" \
	-DCMAKE_PREFIX_PATH="$prefix" -DBERTH_WANT=9.0 >/dev/null 2>&1; then
	echo "find_package(berth 9.0) accepted version $(pkg-config --modversion berth)" >&2
	exit 1
fi
echo "install: find_package(berth), berth::berth and berth::berth_static: ok"

# Only BERTH_API symbols leave the shared library, all at BERTH_0.
so=$libdir/libberth.so
exported=$(nm -D --defined-only "$so" | awk '$3 !~ /^BERTH_0$/ {print $3}' |
	sed 's/@.*//' | sort -u)
declared=$(grep -A1 '^BERTH_API' "$prefix/include/berth.h" |
	grep -o 'berth_[a-z_0-9]*(' | tr -d '(' | sort -u)
if [ "$exported" != "$declared" ]; then
	echo "libberth.so exports differ from berth.h's BERTH_API functions:" >&2
	diff <(echo "$declared") <(echo "$exported") >&2 || true
	exit 1
fi
unversioned=$(objdump -T "$so" | awk '/ berth_/ && $(NF-1) != "BERTH_0" {print $NF}')
[ -z "$unversioned" ] || { echo "symbols not at BERTH_0: $unversioned" >&2; exit 1; }
readelf -d "$so" | grep -q 'SONAME.*libberth\.so\.0' ||
	{ echo "libberth.so: soname is not libberth.so.0" >&2; exit 1; }
echo "install: $(echo "$exported" | wc -l) symbols, all BERTH_0, soname libberth.so.0: ok"

# The programs and the manual pages.
"$prefix/bin/berth" --help | grep -q "Exit codes"
test -x "$prefix/bin/berth-connect"
test -x "$prefix/bin/berth-backup-agent"
for page in berth berth-connect berthd.conf libberth; do
	path=$(man -M "$prefix/share/man" -w "$page")
	MANWIDTH=80 man -l "$path" 2>/dev/null | grep -q "^NAME" ||
		{ echo "man $page: does not render" >&2; exit 1; }
done
MANWIDTH=80 man -M "$prefix/share/man" berth 2>/dev/null | grep -q "RESTRICTED MODE"
echo "install: berth --help, man berth/berth-connect/berthd.conf/libberth: ok"

# The units, their paths pointed at this prefix.
units=$prefix/lib/systemd/system
test -f "$units/berthd.socket" && test -f "$units/berthd.service" &&
	test -f "$units/berth-backup-agent.service"
if command -v systemd-analyze >/dev/null; then
	mkdir "$work/units"
	for u in "$units"/*; do
		sed "s|/usr/local/bin/|$prefix/bin/|" "$u" >"$work/units/$(basename "$u")"
	done
	if ! systemd-analyze verify --man=no "$work"/units/* >"$work/verify.log" 2>&1 ||
		grep -v "Failed to \(connect\|open\|create\)" "$work/verify.log" |
		grep -qi "berth"; then
		cat "$work/verify.log" >&2
		exit 1
	fi
	echo "install: systemd-analyze verify of berthd.socket, berthd.service, berth-backup-agent.service: ok"
else
	echo "install: systemd-analyze not present: the units' syntax not checked"
fi
echo "install: ok (shared and static, pkg-config and find_package, man pages, units)"
