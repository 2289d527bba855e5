#!/usr/bin/env bash
# From a fresh clone to a running matchmaker: installs what is missing,
# builds into build/, then runs matchmakerd on examples/pools/.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "${JOBS:-2}"

echo "quickstart: built build/bin/{matchmakerd,mm-gameserver}"
build/bin/matchmakerd --validate examples/pools
echo "quickstart: the pools in examples/pools/ are valid."
echo "quickstart: the matchmakerd daemon is not implemented yet (see docs/status.md); stopping here."
