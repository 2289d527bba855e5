#!/usr/bin/env bash
# User-space instructions of matchmakerd per allocation (issue 19), counted
# by valgrind's callgrind: unlike CPU time on a shared VM (which drifts by
# 10-20% between runs minutes apart), the count repeats within about 1%, so
# it can tell a 3% change in one pair of runs. It counts what matchmakerd's
# own code and libraries execute, not the kernel (system calls, the
# loopback) and not cache misses: a ratio of these is not a ratio of CPU
# time; bench/cpu_per_alloc.sh measures that.
#
# matchmakerd runs under callgrind (about 50x slower), the game servers
# natively; wrk (CONNECTIONS, every request a new client id) warms up for
# 3 s, the counters are zeroed, then SECONDS of load are counted. Everything
# on 127.0.0.1.
#   bench/instr_per_alloc.sh [BIN_DIR] [SECONDS] [CONNECTIONS] [INSTANCES]
# Prints the allocations, the instructions, and the top functions by their
# own instructions per allocation.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-5}
conns=${3:-8}
instances=${4:-4}
bench_workdir

# A directory whose matchmakerd is the real one under callgrind; the pool's
# game servers run natively.
vbin="$dir/vbin"
mkdir -p "$vbin"
printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/callgrind.%%p %s/matchmakerd "$@"\n' \
  "$dir" "$bin" > "$vbin/matchmakerd"
chmod +x "$vbin/matchmakerd"
write_ids_lua "$dir/ids.lua" instr
serve_capacity_pool "$bin" "$instances" "$vbin"
wrk -t1 -c "$conns" -d 3s -s "$dir/ids.lua" "http://$client/request" > /dev/null  # warm-up
callgrind_control -z "$pid" > /dev/null 2>&1
wrk -t1 -c "$conns" -d "${secs}s" -s "$dir/ids.lua" "http://$client/request" > "$dir/wrk.out"
callgrind_control -d "$pid" > /dev/null 2>&1
n=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
grep -E "Non-2xx|timeout" "$dir/wrk.out" || true
out=$(ls -t "$dir"/callgrind.*.1 2> /dev/null | head -1)
[ -n "$out" ] || { echo "instr_per_alloc: callgrind wrote no dump" >&2; exit 1; }
total=$(awk '/^summary:/ {print $2}' "$out")
echo "allocations: $n; instructions: $total; per allocation: $((total / n))"
# Each function's own instructions (callgrind's format: fn= names a
# function, an id in parentheses stands for a name given before; the cost
# line after a calls= line is the callee's, not the function's own).
awk -v n="$n" '
  function name(s,   id) {
    if (match(s, /^\([0-9]+\) /)) { id = substr(s, 1, RLENGTH - 1); names[id] = substr(s, RLENGTH + 1); return names[id] }
    return (s in names) ? names[s] : s
  }
  /^fn=/ { cur = name(substr($0, 4)); next }
  /^cfn=/ { name(substr($0, 5)); next }
  /^calls=/ { callee_cost = 1; next }
  /^[0-9+*-]/ { if (callee_cost) callee_cost = 0; else self[cur] += $2; next }
  END { for (f in self) printf "%8d %s\n", self[f] / n, substr(f, 1, 110) }' "$out" | sort -rn | head -15
