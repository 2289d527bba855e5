#!/usr/bin/env bash
# Time from `mmctl apply --wait` of a warm: 20 pool of mm-gameserver to all 20
# Ready, beside the floor measured in the same run: 20 mm-gameservers started
# in parallel by the shell, timed until each has printed that it listens.
#   bench/apply_warm20.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build}/bin")
dir=$(mktemp -d /tmp/mm-bench-apply.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

now() { date +%s.%N; }

# Floor: 20 servers started in parallel, timed until each has printed that
# it listens (one grep per 5 ms poll, no HTTP).
start=$(now)
for i in $(seq 0 19); do
  "$bin/mm-gameserver" --address 127.0.0.1 --control-port 0 --game-port 0 >"$dir/gs$i.out" 2>&1 &
done
for _ in $(seq 2000); do
  [ "$(grep -l "control=" "$dir"/gs*.out 2>/dev/null | wc -l)" -eq 20 ] && break
  sleep 0.005
done
floor=$(echo "$(now) - $start" | bc)
[ "$(grep -l "control=" "$dir"/gs*.out | wc -l)" -eq 20 ] || { echo "floor: servers did not start" >&2; exit 1; }
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true

"$bin/matchmakerd" --data-dir "$dir/data" --admin-listen 127.0.0.1:0 --listen 127.0.0.1:0 --log-level warn >"$dir/out" 2>&1 &
for _ in $(seq 1000); do grep -q "admin=" "$dir/out" && break; sleep 0.01; done
admin=$(grep -o "admin=127.0.0.1:[0-9]*" "$dir/out" | cut -d: -f2)
cat >"$dir/pool.yaml" <<YAML
apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: warm20}
spec:
  warm: 20
  maxInstances: 20
  template:
    command: ["$bin/mm-gameserver"]
    args: ["--address", "127.0.0.1"]
    ports: [{name: game, containerPort: 7777}]
YAML
start=$(now)
"$bin/mmctl" --server "http://127.0.0.1:$admin" apply -f "$dir/pool.yaml" --wait >/dev/null
took=$(echo "$(now) - $start" | bc)
"$bin/mmctl" --server "http://127.0.0.1:$admin" delete pool warm20 --force >/dev/null
for _ in $(seq 100); do
  "$bin/mmctl" --server "http://127.0.0.1:$admin" get pools | grep -q warm20 || break
  sleep 0.05
done
printf 'floor: 20 mm-gameserver started in parallel: %.3f s\n' "$floor"
printf 'matchmakerd: apply --wait to warm 20 Ready:  %.3f s\n' "$took"
printf 'ratio: %.2fx\n' "$(echo "$took / $floor" | bc -l)"
