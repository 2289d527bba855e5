#!/usr/bin/env bash
# Memory per live reservation and restart time with them (issue 19): a warm
# pool of 4 mm-gameservers of capacity 1,000,000; wrk fills it with new
# client ids for SECONDS; then matchmakerd's RSS growth per reservation, and
# kill -9 -> /readyz 200 with every reservation recovered, and the RSS after.
# Everything on 127.0.0.1.
#   bench/restart_memory.sh [BIN_DIR] [SECONDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-20}
bench_workdir

write_ids_lua "$dir/ids.lua" mem
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

serve_capacity_pool "$bin" 4
before=$(rss_kb "$pid")
wrk -t1 -c 64 -d "${secs}s" -s "$dir/ids.lua" "http://$client/request" > "$dir/wrk.out"
n=$(reservations)
after=$(rss_kb "$pid")
echo "live reservations: $n"
echo "rss: $before kB before, $after kB after: $(( (after - before) * 1024 / (n > 0 ? n : 1) )) bytes per reservation"
ls -l "$dir/data/state" | awk 'NR > 1 {print "state file:", $NF, $5, "bytes"}'
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
t0=$(date +%s%N)
start_matchmakerd "$bin" "$dir" "${flags[@]}"
for _ in $(seq 6000); do
  "$bin/mmctl" --server "http://$admin" health --ready > /dev/null 2>&1 && break
  sleep 0.005
done
t1=$(date +%s%N)
at_ready=$(rss_kb "$pid")
sleep 2  # the recovered copy of the state is freed on a thread of its own
echo "restart (kill -9 -> /readyz 200): $(( (t1 - t0) / 1000000 )) ms; rss after: $at_ready kB at ready, $(rss_kb "$pid") kB 2 s later"
echo "reservations after restart: $(reservations)"
