#!/usr/bin/env bash
# A multi-node Docker Swarm on this one machine, for the multinode test tier
# and for trying the swarm backend by hand (docs/swarm.md, "Several nodes on
# one machine"). Root only.
#
#   hack/swarm-nodes.sh up [N]      N engines (default 3), mm-node-1 .. mm-node-N:
#                                   node 1 initialises a swarm, the others join
#                                   as workers; the project's images are loaded
#                                   on every node. Anything left by an earlier
#                                   `up` is removed first.
#   hack/swarm-nodes.sh down        removes everything `up` made
#   hack/swarm-nodes.sh stop NODE   stops NODE's engine (SIGTERM, as
#                                   `systemctl stop docker` does)
#   hack/swarm-nodes.sh kill NODE   SIGKILLs NODE's dockerd only: its containerd
#                                   and containers run on, as after an engine crash
#   hack/swarm-nodes.sh start NODE  starts it again (it rejoins by itself)
#   hack/swarm-nodes.sh env NODE    prints `export DOCKER_HOST=...` for `eval`
#   hack/swarm-nodes.sh addr NODE   prints NODE's address
#   hack/swarm-nodes.sh status      one line per node
#
# Each node is a dockerd (with the containerd it starts itself) in a network
# namespace and a UTS namespace of its own (so its swarm hostname is its name),
# with its own data root, exec root, socket and pidfile. The namespaces hang on
# one bridge, mm-br0, by veth pairs: node i is 10.213.0.i, the bridge (this
# machine's side) 10.213.0.254. MM_NODES_NET=10.213.0 picks another /24.
# Nothing is routed off the bridge: traffic stays between this machine and the
# namespaces.
#
# Swarm's dispatcher heartbeat is 2 s here (MM_NODES_HEARTBEAT), not the
# default 5 s, so that a stopped node is marked down in seconds.
#
# Images: MM_NODES_IMAGES (default: the two images hack/build-images.sh builds)
# are copied from the machine's own engine (DOCKER_HOST as it is) with
# `docker save | docker load`. Missing ones are skipped with a warning.
set -euo pipefail

net=${MM_NODES_NET:-10.213.0}
heartbeat=${MM_NODES_HEARTBEAT:-2s}
images=${MM_NODES_IMAGES:-matchmaker/gameserver:dev matchmaker/matchmakerd:dev}
bridge=mm-br0
lib=/var/lib/mm-nodes   # data roots
run=/run/mm-nodes       # exec roots, sockets, pidfiles, logs, the node count

die() { echo "swarm-nodes: $*" >&2; exit 1; }
say() { echo "swarm-nodes: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"

node_index() {  # mm-node-3 -> 3
  local n=${1#mm-node-}
  [[ "$1" == mm-node-* && "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 200 ]] || die "no such node: $1 (mm-node-1 .. mm-node-N)"
  echo "$n"
}
sock() { echo "unix://$run/$1/docker.sock"; }
addr() { echo "$net.$(node_index "$1")"; }
dk() { local node=$1; shift; DOCKER_HOST=$(sock "$node") timeout 60 docker "$@"; }
answers() { DOCKER_HOST=$(sock "$1") timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# A live process, not a zombie: an engine that was stopped stays one until
# something reaps it, and where pid 1 does not reap, `kill -0` would call it
# alive for ever.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}
pid_of() { local f=$run/$1/dockerd.pid; [ -s "$f" ] && alive "$(cat "$f")" && cat "$f"; }
count() { cat "$run/count" 2>/dev/null || echo 0; }

start_engine() {
  local node=$1 d=$run/$1
  [ -e "/run/netns/$node" ] || die "$node does not exist (run: $0 up)"
  if pid_of "$node" >/dev/null; then say "$node is already running"; return 0; fi
  mkdir -p "$d/exec" "$lib/$node"
  # nsenter, not `ip netns exec`: the latter makes a mount namespace with a
  # fresh /sys, without the cgroup mounts dockerd needs ("Devices cgroup isn't
  # mounted").
  # The whole subshell's output goes to the log: nothing of this script's
  # stdout may stay open in the engine (a caller reading it would wait).
  (cd / && exec nsenter --net="/run/netns/$node" unshare --uts \
      sh -c 'hostname "$0" && exec "$@"' "$node" \
      dockerd --data-root "$lib/$node" --exec-root "$d/exec" -H "$(sock "$node")" \
        --pidfile "$d/dockerd.pid" --userland-proxy=false) >>"$d/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    answers "$node" && return 0
    sleep 0.25
  done
  tail -n 20 "$d/dockerd.log" >&2 || true
  die "$node: dockerd did not answer within 30 s (log: $d/dockerd.log)"
}

stop_engine() {
  local node=$1 pid
  pid=$(pid_of "$node") || { say "$node is not running"; return 0; }
  kill -TERM "$pid"
  for _ in $(seq 1 240); do  # dockerd stops its containers first (10 s grace each, in parallel)
    alive "$pid" || return 0
    sleep 0.25
  done
  say "$node: dockerd did not stop within 60 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  local node pid pids=()
  # Every engine stops at once (each stops its containers first), 30 s at most.
  for d in "$run"/mm-node-*; do
    [ -d "$d" ] || continue
    if pid=$(pid_of "$(basename "$d")"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for _ in $(seq 1 120); do
    local left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.25
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for d in "$run"/mm-node-*; do
    [ -d "$d" ] || continue
    node=$(basename "$d")
    # Anything still holding the node's exec root (containerd, shims after a
    # dockerd that was killed) goes too, found by its command line.
    pkill -KILL -f -- "$run/$node/exec/" 2>/dev/null || true
  done
  # Mounts under the roots (container netns files, overlay layers), deepest first.
  { awk '{print $2}' /proc/mounts | grep -E "^($run|$lib)/" || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^mm-node-[0-9]+$' || true); do
    ip link del "$ns-h" 2>/dev/null || true
    ip netns del "$ns"
  done
  ip link del "$bridge" 2>/dev/null || true
  while iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null; do :; done
  rm -rf "$run" "$lib"
}

up() {
  local n=${1:-3} node i token
  [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 200 ]] || die "N must be 1..200, not $n"
  for tool in ip nsenter unshare iptables dockerd docker; do
    command -v "$tool" >/dev/null || die "$tool is missing (docker.io, iproute2, util-linux, iptables)"
  done
  down
  mkdir -p "$run" "$lib"
  echo "$n" >"$run/count"
  ip link add "$bridge" type bridge
  ip addr add "$net.254/24" dev "$bridge"
  ip link set "$bridge" up
  # With br_netfilter loaded, frames between two ports of a bridge go through
  # this machine's FORWARD chain, whose policy the machine's own dockerd sets
  # to DROP: node-to-node traffic (swarm's 2377, 7946) would vanish.
  iptables -I FORWARD 1 -i "$bridge" -o "$bridge" -j ACCEPT
  for i in $(seq 1 "$n"); do
    node=mm-node-$i
    ip netns add "$node"
    ip link add "$node-h" type veth peer name eth0 netns "$node"
    ip link set "$node-h" master "$bridge" up
    ip -n "$node" addr add "$net.$i/24" dev eth0
    ip -n "$node" link set eth0 up
    ip -n "$node" link set lo up
    mkdir -p "$run/$node"
  done
  for i in $(seq 1 "$n"); do start_engine "mm-node-$i"; done
  dk mm-node-1 swarm init --advertise-addr "$net.1" --listen-addr "$net.1:2377" \
    --dispatcher-heartbeat "$heartbeat" >/dev/null
  token=$(dk mm-node-1 swarm join-token -q worker)
  for i in $(seq 2 "$n"); do
    dk "mm-node-$i" swarm join --token "$token" --advertise-addr "$net.$i" --listen-addr "$net.$i:2377" \
      "$net.1:2377" >/dev/null
  done
  for img in $images; do
    if ! timeout 10 docker image inspect "$img" >/dev/null 2>&1; then
      say "WARNING: $img is not on this machine's engine (hack/build-images.sh); not loaded on the nodes"
      continue
    fi
    for i in $(seq 1 "$n"); do
      timeout 120 docker save "$img" | dk "mm-node-$i" load >/dev/null
    done
  done
  for _ in $(seq 1 120); do
    [ "$(dk mm-node-1 node ls --format '{{.Status}}' | grep -c '^Ready$')" = "$n" ] && break
    sleep 0.25
  done
  [ "$(dk mm-node-1 node ls --format '{{.Status}}' | grep -c '^Ready$')" = "$n" ] ||
    die "not every node is Ready after 30 s: $(dk mm-node-1 node ls)"
  say "$n node(s) up; manager: $(sock mm-node-1)"
}

status() {
  local n node state
  n=$(count)
  for i in $(seq 1 "$n"); do
    node=mm-node-$i
    if answers "$node"; then
      state=$(dk "$node" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
    else
      state=stopped
    fi
    echo "$node $(addr "$node") $state"
  done
}

cmd=${1:-}
case "$cmd" in
  up) up "${2:-3}" ;;
  down) down ;;
  stop) [ $# = 2 ] || die "usage: $0 stop NODE"; node_index "$2" >/dev/null; stop_engine "$2" ;;
  kill)
    [ $# = 2 ] || die "usage: $0 kill NODE"
    node_index "$2" >/dev/null
    pid=$(pid_of "$2") || die "$2 is not running"
    kill -KILL "$pid"
    for _ in $(seq 1 40); do alive "$pid" || exit 0; sleep 0.25; done
    die "$2: dockerd $pid did not die"
    ;;
  start) [ $# = 2 ] || die "usage: $0 start NODE"; node_index "$2" >/dev/null; start_engine "$2" ;;
  env) [ $# = 2 ] || die "usage: $0 env NODE"; node_index "$2" >/dev/null; echo "export DOCKER_HOST=$(sock "$2")" ;;
  addr) [ $# = 2 ] || die "usage: $0 addr NODE"; addr "$2" ;;
  status) status ;;
  *) die "usage: $0 up [N] | down | stop NODE | kill NODE | start NODE | env NODE | addr NODE | status" ;;
esac
