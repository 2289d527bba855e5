#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a
# bounded time from its checked-in seed corpus (fuzz/corpus/<target>/).
#   hack/fuzz.sh              20 s per target (what hack/test.sh runs)
#   hack/fuzz.sh 600          longer, e.g. before a release
#   hack/fuzz.sh 60 jwt       one target
# New inputs found go to build-fuzz/corpus/<target>/ (not the repository);
# a crash leaves build-fuzz/crashes/<target>-crash-*: reproduce with
#   build-fuzz/bin/fuzz_<target> build-fuzz/crashes/<target>-crash-...
# and, once fixed, copy it into fuzz/corpus/<target>/ as a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
only=${2:-}
hack/install-deps.sh
dir=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMM_BUILD_TESTS=OFF \
  -DMM_FUZZ=ON -DMM_SANITIZE="address;undefined" >/dev/null
targets=(pool_decode http_server client_id jwt journal)
[ -n "$only" ] && targets=("$only")
cmake --build "$dir" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"
mkdir -p "$dir/crashes"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t"
  echo "fuzz: $t for ${secs}s"
  if ! "$dir/bin/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$dir/crashes/$t-" -print_final_stats=1 "$dir/corpus/$t" "fuzz/corpus/$t" \
      >"$dir/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; see $dir/$t.log and $dir/crashes/" >&2
    tail -40 "$dir/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$dir/$t.log" | tr '\n' ' ' | sed 's/^/fuzz:   /'
    echo
  fi
done
exit $status
