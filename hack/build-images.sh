#!/usr/bin/env bash
# Builds the container images locally (no registry is needed or used):
#   matchmaker/gameserver:dev  FROM scratch + a statically linked mm-gameserver
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
cmake -S . -B build-static -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_STATIC=ON \
  -DMM_BUILD_TESTS=OFF >/dev/null
cmake --build build-static -j "${JOBS:-2}" --target mm-gameserver

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp build-static/bin/mm-gameserver examples/gameserver/Dockerfile "$ctx/"
docker build -q -t matchmaker/gameserver:dev "$ctx"
echo "build-images: matchmaker/gameserver:dev"
