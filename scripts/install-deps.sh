#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to build, test, benchmark
# and package berth (scdoc: the manual pages; debhelper, dpkg-dev: the
# .debs; man-db and systemd: man and systemd-analyze for the install
# test).  Idempotent; prints nothing when everything is already present.
set -eu

pkgs="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
      liburing-dev libzstd-dev libxxhash-dev libmd-dev libcmocka-dev
      zlib1g-dev liblz4-dev libacl1-dev acl autoconf automake
      rsync python3 e2fsprogs time xxhash util-linux haproxy
      scdoc debhelper dpkg-dev man-db systemd"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
