#!/usr/bin/env bash
# cmake --install into a scratch prefix, then build a program against the
# installed libberth with pkg-config, once shared and once static, and run
# both.  Its own plain (unsanitized) build, so the installed library is what
# a user gets.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/berth-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
	-DBERTH_URING="${BERTH_URING:-ON}" >/dev/null
cmake --build "$work/build" -j"$(nproc)" --target berth berth_shared berth_cli >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags berth) \
	"$src/tests/install/use_berth.c" -o "$work/use_shared" $(pkg-config --libs berth)
cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags berth) \
	"$src/tests/install/use_berth.c" -o "$work/use_static" \
	-Wl,-Bstatic $(pkg-config --libs-only-L berth) -lberth -Wl,-Bdynamic \
	$(pkg-config --static --libs-only-l berth | sed 's/-lberth//')
libdir=$(pkg-config --variable=libdir berth)
LD_LIBRARY_PATH="$libdir" "$work/use_shared"
"$work/use_static"
# Only BERTH_API symbols leave the shared library.
extra=$(nm -D --defined-only "$libdir/libberth.so" | awk '{print $3}' |
	grep -v '^berth_' | grep -v '^_' || true)
if [ -n "$extra" ]; then
	echo "libberth.so exports more than the API: $extra" >&2
	exit 1
fi
internal=$(nm -D --defined-only "$libdir/libberth.so" | awk '{print $3}' | grep '^berth__' || true)
[ -z "$internal" ] || { echo "internal symbols exported: $internal" >&2; exit 1; }
test -x "$work/prefix/bin/berth"
echo "install: ok (shared and static, pkg-config)"
