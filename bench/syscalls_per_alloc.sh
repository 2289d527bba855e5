#!/usr/bin/env bash
# System calls of matchmakerd per allocation (issue 19), counted by the
# kernel's syscall tracepoints (perf stat; Debian's linux-perf): what the
# io thread and the journal writer ask of the kernel for each client served,
# and how many reads found nothing to read (EAGAIN). The tracepoints slow
# matchmakerd (about half the rate), not the counts per allocation.
#
# wrk (CONNECTIONS, every request a new client id) against a warm pool of
# INSTANCES mm-gameservers; 2 s of warm-up, then SECONDS counted. The
# allocations are the reservations the pool gained meanwhile. Everything on
# 127.0.0.1.
#   bench/syscalls_per_alloc.sh [BIN_DIR] [SECONDS] [CONNECTIONS] [INSTANCES]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$(realpath "${1:-build/bin}")
secs=${2:-4}
conns=${3:-64}
instances=${4:-32}

bench_workdir

write_ids_lua "$dir/ids.lua" sys
serve_capacity_pool "$bin" "$instances"
wrk -t1 -c "$conns" -d 2s -s "$dir/ids.lua" "http://$client/request" > /dev/null  # warm-up
r0=$(reservations)
perf stat -x, -o "$dir/stat.csv" -p "$pid" \
  -e syscalls:sys_enter_recvmsg -e syscalls:sys_exit_recvmsg --filter 'ret < 0' \
  -e syscalls:sys_enter_sendmsg -e syscalls:sys_enter_write -e syscalls:sys_enter_epoll_wait \
  -e syscalls:sys_enter_futex -e syscalls:sys_enter_fdatasync \
  -- wrk -t1 -c "$conns" -d "${secs}s" -s "$dir/ids.lua" "http://$client/request" > "$dir/wrk.out"
n=$(($(reservations) - r0))
echo "allocations: $n ($(awk '/Requests\/sec/ {print $2}' "$dir/wrk.out")/s under the tracepoints)"
awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ {
  name = $3; sub("syscalls:sys_", "", name)
  if (name == "exit_recvmsg") name = "recvmsg that failed (EAGAIN)"
  else sub("enter_", "", name)
  printf "%8.3f per allocation  %s\n", $1 / n, name
}' "$dir/stat.csv"
