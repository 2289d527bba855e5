#!/usr/bin/env bash
# Pool scale (issue 19): time for a pool of warm N mm-gameservers (process
# backend) to be all Ready, against N mm-gameservers started in parallel by
# this script (time until all listen), and matchmakerd's steady CPU per
# Ready instance (liveness probes once a second each). 127.0.0.1 only.
#   bench/pool_scale.sh [BIN_DIR] [N] [CREATES_PER_SECOND (0: no limit)]
# FLOOR=0 skips the floor (past a few thousand, bash's own bookkeeping of
# its background jobs, not the servers, is what it measures).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
n=${2:-1000}
rate=${3:-0}
dir=$(mktemp -d)
range_file=/proc/sys/net/ipv4/ip_local_port_range
restore_range=""
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  sleep 0.5
  pkill -f "$dir" || true
  stop_instances "$dir"
  pkill -f "mm-gameserver --address 127.0.0.1 --control-port 0 --game-port 0 --capacity 7" || true
  rm -rf "$dir"
  if [ -n "$restore_range" ]; then echo "$restore_range" > "$range_file"; fi
}
trap cleanup EXIT
trap "exit 143" INT TERM  # the EXIT trap then runs
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Each instance takes two listening ports and a probe connection from the
# kernel's ephemeral range (28,232 ports by default): when N needs more, the
# range is widened for the run (root only) and restored on exit.
if [ $((3 * n + 1000)) -gt "$(awk '{print $2 - $1}' "$range_file")" ]; then
  restore_range=$(tr -s '\t ' ' ' < "$range_file")
  echo "1024 65535" > "$range_file"
  echo "ephemeral ports widened to 1024-65535 for $n instances (were $restore_range)"
fi

# The floor: N servers started at once, until each prints its ports.
floor=0
if [ "${FLOOR:-1}" != 0 ]; then
t0=$(now_ms)
for i in $(seq "$n"); do
  "$bin/mm-gameserver" --address 127.0.0.1 --control-port 0 --game-port 0 --capacity 7 > "$dir/gs.$i" 2>&1 &
done
for i in $(seq "$n"); do
  until grep -q "control=" "$dir/gs.$i" 2>/dev/null; do sleep 0.01; done
done
t1=$(now_ms)
floor=$((t1 - t0))
pkill -f "mm-gameserver --address 127.0.0.1 --control-port 0 --game-port 0 --capacity 7" || true
sleep 1
echo "floor: $n mm-gameservers started in parallel, all listening in $floor ms"
fi

cat > "$dir/pool.yaml" <<YAML
apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: scale}
spec:
  warm: $n
  maxInstances: $n
  template:
    command: ["$bin/mm-gameserver"]
    args: ["--address", "127.0.0.1", "--capacity", "7"]
    ports: [{name: game, containerPort: 7777}]
YAML
start_matchmakerd "$bin" "$dir" --max-instances "$n" --max-creates-per-second "$rate"
t0=$(now_ms)
"$bin/mmctl" --server "http://$admin" apply -f "$dir/pool.yaml" --wait --timeout 600 > /dev/null
t1=$(now_ms)
ready=$((t1 - t0))
echo "matchmakerd: warm $n (--max-creates-per-second $rate) all Ready in $ready ms: $(awk -v a="$ready" -v b="$floor" 'BEGIN {if (b > 0) printf "%.2fx the floor", a / b; else printf "(no floor measured)"}')"
# Steady CPU with N Ready instances: utime + stime over 10 s.
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
c0=$(ticks); sleep 10; c1=$(ticks)
awk -v d="$((c1 - c0))" -v hz="$hz" -v n="$n" \
  'BEGIN {cpu = d / hz / 10; printf "steady CPU with %d Ready instances: %.1f%% of a core, %.1f us of CPU per instance per second\n", n, cpu * 100, cpu * 1e6 / n}'
