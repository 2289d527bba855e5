#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier with CTest.
#   hack/test.sh                 all tiers (e2e too when MM_ENABLE_E2E=ON)
#   MM_SANITIZE= hack/test.sh    without sanitizers (default: address;undefined)
#   hack/test.sh -L unit         extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh

build_dir=${BUILD_DIR:-build-test}
sanitize=${MM_SANITIZE-address;undefined}
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMM_BUILD_TESTS=ON \
  -DMM_SANITIZE="$sanitize" \
  -DMM_ENABLE_E2E="${MM_ENABLE_E2E:-OFF}" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build_dir" --output-on-failure -j "${JOBS:-2}" --timeout 300 "$@"
