#!/usr/bin/env bash
# The main job, for now: build berth (Release) and run the completion-pump
# benchmark on a small file, then print the backend berth picked.
# (Becomes a real `rsync` push into `berth --server` with issue 5.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j"$(nproc)" >/dev/null
./build-rel/cli/berth --version
./build-rel/bench/bench_pump --size "${BERTH_DEMO_MIB:-256}" \
	--reads 200000 --write-mib 256
