#!/usr/bin/env bash
# Throughput per core (issue 19): wrk (CONNECTIONS, every request a new
# client id) at saturation against a warm pool of INSTANCES (default 4)
# mm-gameservers of capacity 1,000,000, and the CPU time matchmakerd, the
# game servers and wrk spent over the run (utime + stime): each one's CPU
# per allocation, and allocations per second of matchmakerd CPU. Run it for two
# binaries in one session for the ratio. Everything on 127.0.0.1.
#   bench/cpu_per_alloc.sh [BIN_DIR] [SECONDS] [CONNECTIONS] [INSTANCES]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-10}
conns=${3:-64}
instances=${4:-4}
bench_workdir

write_ids_lua "$dir/ids.lua" cpu
serve_capacity_pool "$bin" "$instances"
wrk -t1 -c "$conns" -d 2s -s "$dir/ids.lua" "http://$client/request" > /dev/null  # warm-up
servers=$(pgrep -f "$bin/mm-gameserver" | tr '\n' ' ')
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
m0=$(ticks "$pid"); g0=$(ticks $servers)
/usr/bin/time -f "%U %S" -o "$dir/wrk.cpu" wrk -t1 -c "$conns" -d "${secs}s" --latency -s "$dir/ids.lua" "http://$client/request" > "$dir/wrk.out"
m1=$(ticks "$pid"); g1=$(ticks $servers)
n=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
grep -E "Requests/sec|50%|99%|Non-2xx|timeout" "$dir/wrk.out"
awk -v n="$n" -v m=$((m1 - m0)) -v g=$((g1 - g0)) -v hz="$hz" -v w="$(awk '{print $1 + $2}' "$dir/wrk.cpu")" 'BEGIN {
  printf "matchmakerd cpu: %.2f s, %.1f us per allocation, %.0f allocations per cpu-second\n", m / hz, m / hz * 1e6 / n, n / (m / hz)
  printf "game servers cpu: %.2f s, %.1f us per allocation\n", g / hz, g / hz * 1e6 / n
  printf "wrk cpu: %.2f s, %.1f us per allocation\n", w, w * 1e6 / n
}'
