#!/usr/bin/env bash
# From a fresh clone to a running matchmaker: installs what is missing,
# builds into build/, then runs matchmakerd in the foreground on
# examples/pools/ (process backend; Ctrl-C stops it, instances keep running
# and are adopted by the next start).
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "${JOBS:-2}"

build/bin/matchmakerd --validate examples/pools
cat <<'MSG'
quickstart: starting matchmakerd on examples/pools/ (admin API on 127.0.0.1:3001).
  In another shell:
    build/bin/mmctl get pools
    build/bin/mmctl get instances -o wide
    build/bin/mmctl describe pool deathmatch-eu
MSG
exec build/bin/matchmakerd --pools examples/pools --data-dir "${MM_DATA_DIR:-.matchmaker}" "$@"
