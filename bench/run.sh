#!/usr/bin/env bash
# The benchmark harness (README "Benchmarks"): install what is missing,
# build berth Release into build-rel, then run bench/run.py with the
# arguments given, e.g.
#   ./bench/run.sh                         # W1-W6, C8, C8F, 3 pairs
#   ./bench/run.sh --workloads W1,W4 --pairs 5
#   ./bench/run.sh --quick                 # smoke run, seconds
# Needs root for the loop-mounted ext4 the destinations live on.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j"$(nproc)" --target berth_cli bench_floor >/dev/null
exec python3 bench/run.py --berth build-rel/cli/berth \
	--floor build-rel/bench/bench_floor "$@"
