# Shared by the bench scripts (sourced): the wrk script that gives every
# request a new client id, and a matchmakerd started on 127.0.0.1 ports the
# kernel picks, waited for by its banner. What the benches need (wrk, time,
# valgrind, perf) is installed when one runs, not for the tests.
"$(dirname "${BASH_SOURCE[0]}")/../hack/install-deps.sh" --bench

# write_ids_lua FILE PREFIX: every request a new Authorization (client id),
# also across wrk runs of the same file: the id holds a nonce of the file,
# the run's start second and the thread. (LuaJIT's math.random is the same
# sequence in every run unless seeded: an id drawn from it repeated the
# previous run's ids, answered from the state without a handshake.)
write_ids_lua() {
  cat > "$1" <<LUA
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local run = nil
request = function()
  if not run then run = "$2-$(date +%s%N)-" .. os.time() .. "-" .. tostring(tid or 0) .. "-" end
  n = n + 1
  return wrk.format("POST", nil, {["Authorization"] = run .. n}, "")
end
LUA
}

# start_matchmakerd BIN DIR [FLAGS...]: runs BIN/matchmakerd with its data in
# DIR/data and output in DIR/mm.out; sets pid, admin and client.
start_matchmakerd() {
  local bin=$1 dir=$2
  shift 2
  "$bin/matchmakerd" --data-dir "$dir/data" --admin-listen 127.0.0.1:0 --listen 127.0.0.1:0 --log-level warn \
    "$@" > "$dir/mm.out" 2>&1 &
  pid=$!
  for _ in $(seq 3000); do grep -q "admin=" "$dir/mm.out" && break; sleep 0.01; done  # a restart at 1M: seconds
  admin=$(grep -o 'admin=[0-9.:]*' "$dir/mm.out" | cut -d= -f2)
  client=$(grep -o 'client=[0-9.:]*' "$dir/mm.out" | cut -d= -f2)
}

# stop_instances DIR: SIGKILLs the instances the matchmakerd of DIR/data
# started (process backend: MM_MANAGED_BY in their environment). They
# outlive matchmakerd by design, so a bench that only stops matchmakerd
# leaves them running.
stop_instances() {
  local want="MM_MANAGED_BY=matchmakerd:$(realpath -m "$1/data")" p
  for p in /proc/[0-9]*; do
    tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qxF "$want" && kill -9 "${p#/proc/}" 2>/dev/null
  done
  return 0
}

# wrk_flags BIN: sets flags to what BIN/matchmakerd needs under wrk, whose
# connections all come from 127.0.0.1: the per-source cap lifted, where the
# binary has one (older ones have none, and refuse the flag).
wrk_flags() {
  flags=()
  if "$1/matchmakerd" --help 2>&1 | grep -q -- --max-connections-per-source; then
    flags=(--max-connections-per-source 0)
  fi
}

# bench_workdir: sets dir to a new temporary directory, and on exit stops
# what the bench started (jobs, processes naming dir, the instances of
# dir/data) and removes it.
bench_workdir() {
  dir=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; pkill -f "$dir" || true; stop_instances "$dir"; rm -rf "$dir"' EXIT
}

# write_capacity_pool FILE BIN WARM: the pool the load benches fill, named
# bench: WARM mm-gameservers of capacity 1,000,000 (up to 2 x WARM as they
# fill), on 127.0.0.1.
write_capacity_pool() {
  cat > "$1" <<YAML
apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: bench}
spec:
  warm: $3
  maxInstances: $(($3 * 2))
  template:
    command: ["$2/mm-gameserver"]
    args: ["--address", "127.0.0.1", "--capacity", "1000000"]
    ports: [{name: game, containerPort: 7777}]
YAML
}

# serve_capacity_pool BIN WARM [MATCHMAKERD_DIR]: the pool of
# write_capacity_pool (DIR/pool.yaml), served warm by matchmakerd with the
# flags wrk needs: BIN's, or the one in MATCHMAKERD_DIR (a wrapper, such as
# instr_per_alloc.sh's under callgrind). Sets pid, admin and client as
# start_matchmakerd does.
serve_capacity_pool() {
  write_capacity_pool "$dir/pool.yaml" "$1" "$2"
  wrk_flags "$1"
  start_matchmakerd "${3:-$1}" "$dir" "${flags[@]}"
  "$1/mmctl" --server "http://$admin" apply -f "$dir/pool.yaml" --wait > /dev/null
}

# reservations: the live reservations of pool bench (the CLIENTS column of
# its instances, summed), asked of the matchmakerd start_matchmakerd started.
reservations() {
  "$bin/mmctl" --server "http://$admin" get instances -p bench --no-headers | awk '{n += $4} END {print n + 0}'
}
