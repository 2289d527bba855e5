#!/usr/bin/env bash
# POST /request under wrk (an independent load generator), every request a
# new client id, against a matchmakerd with a warm pool of 4 mm-gameservers
# of capacity 1,000,000, and the floor in the same run: wrk straight at one
# mm-gameserver's POST /reservation/{id}. Everything on 127.0.0.1.
#   bench/wrk_alloc.sh [BIN_DIR] [SECONDS] [CONNECTIONS] [INSTANCES]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-5}
conns=${3:-8}
instances=${4:-4}
bench_workdir

write_ids_lua "$dir/ids.lua" wrk
cat > "$dir/floor.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/reservation/floor-" .. n, nil, "")
end
LUA
serve_capacity_pool "$bin" "$instances"
"$bin/mm-gameserver" --address 127.0.0.1 --control-port 0 --game-port 0 --capacity 1000000 > "$dir/gs.out" 2>&1 &
for _ in $(seq 100); do grep -q "control=" "$dir/gs.out" && break; sleep 0.1; done
gs=$(grep -o 'control=[0-9]*' "$dir/gs.out" | cut -d= -f2)

wrk -t1 -c "$conns" -d 2s -s "$dir/ids.lua" "http://$client/request" > /dev/null  # warm-up
# The floor runs at most 5 s: at 100,000/s longer runs would fill the
# server (1,000,000 slots) and time its 403s instead.
floor_secs=$((secs < 5 ? secs : 5))
echo "== floor: wrk -> mm-gameserver POST /reservation/{id}, $conns connections, ${floor_secs}s"
wrk -t1 -c "$conns" -d "${floor_secs}s" --latency -s "$dir/floor.lua" "http://127.0.0.1:$gs" | grep -E "Requests/sec|50%|99%|Non-2xx"
echo "== matchmakerd: wrk -> POST /request, $conns connections"
wrk -t1 -c "$conns" -d "${secs}s" --timeout 5s --latency -s "$dir/ids.lua" "http://$client/request" |
  grep -E "Requests/sec|50%|99%|Non-2xx|timeout"
