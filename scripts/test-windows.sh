#!/usr/bin/env bash
# The Windows build of berth's engine, tested under Wine (README "Tests",
# docs/ARCHITECTURE.md "Windows").
#   1. install what is missing: the mingw-w64 cross compilers (C, C++), Wine,
#      dpkg-dev (for `apt-get source`) and zlib built for mingw-w64
#   2. cross-build xxHash, zstd, lz4 and cmocka from Debian's own source
#      packages (a deb-src entry for the same suites is added once), into a
#      prefix keyed by their versions under $BERTH_WIN_CACHE (default
#      /var/cache/berth-win): a second run finds it and skips the builds
#   3. cross-build the engine (pump, delta, basis, commit, protocol) with
#      cmake/mingw-w64.cmake, and run the pump, delta, basis and commit
#      suites under Wine through CTest, each on the iocp and pool backends,
#      and the stress loop's pump and commit modes (test "stress": seeded,
#      30 s, each iteration on iocp or pool as its seed draws)
# Wine is not Windows: what passes here is the engine's logic and its use
# of the Win32 API as Wine implements it.
#   BERTH_WIN_BUILD   build directory (build-win)
#   BERTH_WIN_TESTS   ctest -R pattern (the default: every Windows test)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
cache=${BERTH_WIN_CACHE:-/var/cache/berth-win}
build=${BERTH_WIN_BUILD:-build-win}
host=x86_64-w64-mingw32
t0=$(date +%s)

say() { echo "== $* ($(($(date +%s) - t0)) s)"; }

# --------------------------------------------------------------- packages
need=()
command -v $host-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v $host-g++ >/dev/null || need+=(g++-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine wine64)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/$host/lib/libz.a ] || need+=(libz-mingw-w64-dev)
if [ ${#need[@]} -gt 0 ]; then
	say "install ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${need[@]}" >/dev/null
fi

# `apt-get source` needs a deb-src entry for the suites the binaries come
# from: the deb stanzas again as deb-src, once.  The security suite is
# left out: its source pool is not reachable from every mirror, and the
# point release's source is what the build needs.
srclist=/etc/apt/sources.list.d/berth-deb-src.sources
if [ ! -f "$srclist" ] && [ ! -f "${srclist%.sources}.list" ]; then
	say "add deb-src entries ($srclist)"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		awk -v RS= -v ORS='\n\n' '/Types: deb/ && !/-security/' \
			/etc/apt/sources.list.d/debian.sources |
			sed 's/^Types: deb$/Types: deb-src/' >"$srclist"
	else
		grep -h '^deb ' /etc/apt/sources.list | grep -v -- -security |
			sed 's/^deb /deb-src /' >"${srclist%.sources}.list"
	fi
	apt-get update -qq
fi

# ------------------------------------------------------- the dependencies
srcver() { # source package -> the newest version the deb-src entries list
	apt-cache showsrc "$1" | sed -n 's/^Version: //p' | sort -V -r | head -1
}
# Source package names (zstd's is libzstd).
pkgs=(xxhash libzstd lz4 cmocka)
key=""
for p in "${pkgs[@]}"; do
	v=$(srcver "$p")
	[ -n "$v" ] || {
		echo "no source package for $p" >&2
		exit 1
	}
	key+="${key:++}${p}_$v"
done
# The toolchain's version is part of the key: a new compiler rebuilds.
key+="+gcc_$($host-gcc -dumpversion)"
prefix=$cache/deps-$(echo "$key" | sha256sum | cut -c1-16)

fetch() { # package -> unpacked source directory, in the current directory
	apt-get source -qq --download-only "$1=$(srcver "$1")" >/dev/null
	dpkg-source -x "$(ls ./"${1}"_*.dsc | head -1)" "$1-src" \
		>/dev/null 2>&1
	echo "$PWD/$1-src"
}

pcfile() { # name version cflags libs
	mkdir -p "$prefix/lib/pkgconfig"
	cat >"$prefix/lib/pkgconfig/$1.pc" <<EOF
prefix=$prefix
Name: $1
Description: $1 for $host (berth's Windows build)
Version: $2
Cflags: $3
Libs: $4
EOF
}

build_deps() {
	local work
	work=$(mktemp -d "$cache/work-XXXXXX")
	# shellcheck disable=SC2064 # expand now: the directory to remove
	trap "rm -rf '$work'" RETURN
	cd "$work"
	rm -rf "$prefix.tmp"
	mkdir -p "$prefix.tmp/include" "$prefix.tmp/lib"
	local p=$prefix
	prefix=$prefix.tmp

	say "xxhash $(srcver xxhash)"
	local d
	d=$(fetch xxhash)
	$host-gcc -O2 -c "$d/xxhash.c" -o xxhash.o
	$host-ar rcs "$prefix/lib/libxxhash.a" xxhash.o
	cp "$d/xxhash.h" "$prefix/include/"
	pcfile libxxhash "$(srcver xxhash)" "-I\${prefix}/include" \
		"-L\${prefix}/lib -lxxhash"

	say "zstd $(srcver libzstd)"
	d=$(fetch libzstd)
	# The x86-64 assembly decoder is ELF-only; the C one is used.
	make -s -C "$d/lib" -j"$jobs" libzstd.a CC=$host-gcc AR=$host-ar \
		MOREFLAGS=-DZSTD_DISABLE_ASM ZSTD_LEGACY_SUPPORT=0 \
		ZSTD_NO_UNUSED_FUNCTIONS=1 >/dev/null 2>&1
	cp "$d/lib/libzstd.a" "$prefix/lib/"
	cp "$d/lib/zstd.h" "$d/lib/zdict.h" "$d/lib/zstd_errors.h" \
		"$prefix/include/"
	pcfile libzstd "$(srcver libzstd)" "-I\${prefix}/include" \
		"-L\${prefix}/lib -lzstd"

	say "lz4 $(srcver lz4)"
	d=$(fetch lz4)
	make -s -C "$d/lib" -j"$jobs" liblz4.a CC=$host-gcc AR=$host-ar \
		>/dev/null
	cp "$d/lib/liblz4.a" "$prefix/lib/"
	cp "$d/lib/lz4.h" "$d/lib/lz4hc.h" "$d/lib/lz4frame.h" \
		"$prefix/include/"
	pcfile liblz4 "$(srcver lz4)" "-I\${prefix}/include" \
		"-L\${prefix}/lib -llz4"

	say "cmocka $(srcver cmocka)"
	d=$(fetch cmocka)
	cmake -S "$d" -B cmocka-build -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_TOOLCHAIN_FILE="$src/cmake/mingw-w64.cmake" \
		-DCMAKE_INSTALL_PREFIX="$prefix" -DBUILD_SHARED_LIBS=OFF \
		-DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF \
		-DPICKY_DEVELOPER=OFF >/dev/null
	cmake --build cmocka-build -j"$jobs" >/dev/null
	# cmocka 1.1 names the static archive libcmocka-static.a (beside the
	# DLL's import library, libcmocka.dll.a).
	local a
	a=$(find cmocka-build -name 'libcmocka-static.a' | head -1)
	[ -n "$a" ] || a=$(find cmocka-build -name 'libcmocka.a' | head -1)
	cp "$a" "$prefix/lib/libcmocka.a"
	cp "$d/include/cmocka.h" "$prefix/include/"
	pcfile cmocka "$(srcver cmocka)" "-I\${prefix}/include -DCMOCKA_STATIC" \
		"-L\${prefix}/lib -lcmocka"

	# zlib: Debian's own mingw-w64 build (libz-mingw-w64-dev).
	pcfile zlib 1.2 "-I/usr/$host/include" "-L/usr/$host/lib -lz"

	cd "$src"
	prefix=$p
	mv "$prefix.tmp" "$prefix"
	# Fix the prefix= line of the .pc files (they were written for .tmp).
	sed -i "s|^prefix=.*|prefix=$prefix|" "$prefix"/lib/pkgconfig/*.pc
	echo "$key" >"$prefix/KEY"
}

mkdir -p "$cache"
if [ -f "$prefix/KEY" ]; then
	say "dependencies cached: $prefix"
else
	say "cross-build dependencies into $prefix"
	build_deps
fi

# ----------------------------------------------------------------- berth
export WINEPREFIX=${WINEPREFIX:-$cache/wineprefix}
export WINEDEBUG=${WINEDEBUG:--all}
if [ ! -f "$WINEPREFIX/system.reg" ]; then
	say "wine prefix $WINEPREFIX"
	wineboot -i >/dev/null 2>&1 || true
fi

say "configure $build"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
	-DBERTH_WIN_DEPS="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DBERTH_WERROR=ON >/dev/null
say "build $build"
cmake --build "$build" -j"$jobs" >/dev/null
say "test $build (under Wine)"
ctest --test-dir "$build" --output-on-failure -j"$jobs" \
	${BERTH_WIN_TESTS:+-R "$BERTH_WIN_TESTS"}
wineserver -w 2>/dev/null || true
say "done"
