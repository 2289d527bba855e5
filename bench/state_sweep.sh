#!/usr/bin/env bash
# Allocation latency as the live state grows (issue 19): a warm pool of 4
# mm-gameservers of capacity 1,000,000; wrk (64 connections, new client ids)
# fills it to each stage, then a measured run at that state: wrk, 8
# connections, new ids, SECONDS long: allocations/s, p50, p99, max, and p99
# against the first stage's (the ratio). The journal is sealed and compacted
# every 8 MiB of it, so every measured run spans compactions of a snapshot
# of the whole state. Everything on 127.0.0.1.
#   bench/state_sweep.sh [BIN_DIR] [SECONDS] [STAGES]
#   (default build/bin, 10, "0 100000 1000000")
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-10}
stages=${3:-0 100000 1000000}
bench_workdir

write_ids_lua "$dir/fill.lua" fill
write_ids_lua "$dir/ids.lua" sweep
# wrk's figure in milliseconds ("593.12us", "1.23ms", "2.01s")
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }

serve_capacity_pool "$bin" 4
wrk -t1 -c 8 -d 2s -s "$dir/ids.lua" "http://$client/request" > /dev/null  # warm-up

printf "%12s %10s %9s %9s %9s %8s\n" live "allocs/s" "p50 ms" "p99 ms" "max ms" "p99 ratio"
p99_first=
for target in $stages; do
  for _ in $(seq 200); do  # fill, 5 s at a time
    [ "$(reservations)" -ge "$target" ] && break
    wrk -t1 -c 64 -d 5s --timeout 5s -s "$dir/fill.lua" "http://$client/request" > /dev/null
  done
  live=$(reservations)
  out=$(wrk -t1 -c 8 -d "${secs}s" --timeout 5s --latency -s "$dir/ids.lua" "http://$client/request")
  rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  max=$(ms "$(awk '$1 == "Latency" {print $4}' <<<"$out")")
  [ -n "$p99_first" ] || p99_first=$p99
  printf "%12s %10s %9s %9s %9s %8.2f\n" "$live" "$rate" "$p50" "$p99" "$max" \
    "$(awk -v a="$p99" -v b="$p99_first" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  grep -qE "Non-2xx|timeout [1-9]" <<<"$out" && grep -E "Non-2xx|Socket errors" <<<"$out" || true
done
ls -l "$dir/data/state" | awk 'NR > 1 {print "state file:", $NF, $5, "bytes"}'
echo "matchmakerd rss: $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") kB"
