#!/usr/bin/env bash
# Node loss on a real three-node swarm (hack/swarm-nodes.sh): the time from a
# worker's engine stopping to the pool being whole again without it, against
# the swarm's own time to mark that node down (the floor), in one run.
#
#   bench/node_loss.sh [BIN_DIR] [RUNS]     (default build/bin, 3; root)
#
# Each run: a fresh swarm; a pool of 3 warm mm-gameservers of capacity 1;
# 3 clients take one instance on every node, and the pool refills to 3 idle;
# then mm-node-3's engine goes, two ways:
#   stop  SIGTERM (systemctl stop docker): the engine stops its containers
#   kill  SIGKILL of dockerd: its containers run on, only the swarm can tell
# "down" is when the manager lists the node down; "whole" is when the pool has
# 3 Ready idle instances, none starting, none on mm-node-3. Polled every
# 100 ms (the figures are +- 0.1 s). Swarm's heartbeat is 2 s here
# (hack/swarm-nodes.sh); its default is 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
bin=$(realpath "${1:-build/bin}")
runs=${2:-3}
dir=$(mktemp -d /tmp/mm-nodeloss.XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  hack/swarm-nodes.sh down >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/pool.yaml" <<'EOF'
apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: eu}
spec:
  warm: 3
  maxInstances: 12
  template:
    image: matchmaker/gameserver:dev
    args: ["--capacity", "1"]
    ports: [{name: game, containerPort: 7777, protocol: tcp}]
    controlPort: 3000
EOF

now() { date +%s.%N; }
mm() { "$bin/mmctl" --server "http://$admin" "$@"; }
# 3 idle Ready, nothing starting or ending, and (with $1) none on node $1.
whole() {
  local t
  t=$(mm get instances eu --no-headers 2>/dev/null) || return 1
  [ "$(grep -c ' Ready ' <<<"$t")" = 3 ] || return 1
  ! grep -qE ' (Starting|Terminating|Unhealthy) ' <<<"$t" || return 1
  [ -z "${1:-}" ] || ! grep -q " 10\.213\.0\.$1:" <<<"$t"
}
wait_for() {  # wait_for SECONDS CMD...: polls every 100 ms
  local limit=$1
  shift
  local end=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.1
  done
}
node_down() { [ "$(DOCKER_HOST=$manager docker node inspect mm-node-3 --format '{{.Status.State}}')" = down ]; }

printf "%-5s %4s %10s %10s %7s\n" how run "down (s)" "whole (s)" ratio
for how in stop kill; do
  for run in $(seq 1 "$runs"); do
    hack/swarm-nodes.sh up 3 >/dev/null 2>&1
    manager=unix:///run/mm-nodes/mm-node-1/docker.sock
    rm -rf "$dir/data"
    DOCKER_HOST=$manager start_matchmakerd "$bin" "$dir" --backend swarm --pools "$dir/pool.yaml"
    wait_for 60 whole || { echo "pool never Ready" >&2; exit 1; }
    for c in 1 2 3; do curl -fsS -o /dev/null -X POST -H "Authorization: p$c" "http://$client/request"; done
    wait_for 60 whole || { echo "pool never refilled" >&2; exit 1; }
    t0=$(now)
    hack/swarm-nodes.sh "$how" mm-node-3 >/dev/null 2>&1 &
    stopper=$!
    down_at= whole_at=
    end=$(($(date +%s) + 90))
    while [ -z "$down_at" ] || [ -z "$whole_at" ]; do
      [ "$(date +%s)" -lt "$end" ] || { echo "no recovery within 90 s" >&2; exit 1; }
      [ -z "$down_at" ] && node_down && down_at=$(now)
      [ -z "$whole_at" ] && whole 3 && whole_at=$(now)
      sleep 0.1
    done
    wait "$stopper" || true
    printf "%-5s %4s %10.1f %10.1f %7.2f\n" "$how" "$run" "$(echo "$down_at - $t0" | bc)" \
      "$(echo "$whole_at - $t0" | bc)" "$(echo "($whole_at - $t0) / ($down_at - $t0)" | bc -l)"
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    pid=
    hack/swarm-nodes.sh down >/dev/null 2>&1
  done
done
