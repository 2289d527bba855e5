#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test tier with CTest.
#   hack/test.sh                 all tiers; e2e against a dockerd it starts when needed
#                                (MM_ENABLE_E2E=OFF skips it; without an engine it is
#                                skipped with a warning, but under CI=true that fails)
#   MM_SANITIZE= hack/test.sh    without sanitizers (default: address;undefined)
#   hack/test.sh -L unit         extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh

e2e=${MM_ENABLE_E2E:-auto}
if [ "$e2e" != OFF ]; then
  if hack/start-dockerd.sh && hack/build-images.sh; then
    e2e=ON
  elif [ "${CI:-}" = true ] || [ "$e2e" = ON ]; then
    echo "test.sh: no Docker Engine could be started (or the images not built): the e2e tier cannot run" >&2
    exit 1
  else
    echo "test.sh: WARNING: no Docker Engine; the e2e tier is skipped (under CI=true this fails)" >&2
    e2e=OFF
  fi
fi

build_dir=${BUILD_DIR:-build-test}
sanitize=${MM_SANITIZE-address;undefined}
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMM_BUILD_TESTS=ON \
  -DMM_SANITIZE="$sanitize" \
  -DMM_ENABLE_E2E="$e2e" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"

# A test that exhausts file descriptors runs the daemon without sanitizers
# (their runtimes need descriptors too): the Release build of the image.
[ -x build-image/bin/matchmakerd ] && export MM_PLAIN_BIN_DIR="$PWD/build-image/bin"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build_dir" --output-on-failure -j "${JOBS:-2}" --timeout 300 "$@"

# Fuzzing: every libFuzzer target for a bounded time from its seed corpus
# (MM_FUZZ_SECONDS, default 20; 0 skips). Skipped when ctest was given a
# selection (extra arguments).
fuzz_secs=${MM_FUZZ_SECONDS:-20}
if [ $# -eq 0 ] && [ "$fuzz_secs" != 0 ]; then
  hack/fuzz.sh "$fuzz_secs"
fi
