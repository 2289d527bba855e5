#!/usr/bin/env bash
# Time from `mmctl apply --wait` of a warm: 20 pool with --backend swarm to all
# 20 Ready, beside the floor measured in the same run: 20 `docker service
# create` of the same image issued in parallel (each waits, as the CLI does
# by default, until its task runs). Rounds alternate; medians are reported.
#   bench/apply_services.sh [BUILD_DIR] [ROUNDS]
# Needs a swarm manager (docker swarm init --advertise-addr 127.0.0.1) and
# the image (hack/build-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build}/bin")
rounds=${2:-3}
image=matchmaker/gameserver:dev
tag="mm-bench-$$"
dir=$(mktemp -d /tmp/mm-bench-services.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  ids=$(docker service ls -q --filter "label=$tag")
  [ -z "$ids" ] || docker service rm $ids >/dev/null
  ids=$(docker service ls -q --filter "label=dev.matchmaker.owner=$tag")
  [ -z "$ids" ] || docker service rm $ids >/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] || { echo "not a swarm manager" >&2; exit 1; }

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
gone() {  # waits until no container of the label runs any more
  for _ in $(seq 600); do
    [ -z "$(docker ps -aq --filter "label=$1")" ] && return 0
    sleep 0.1
  done
}

mkdir -p "$dir/data"
echo "$tag" >"$dir/data/owner-id"
"$bin/matchmakerd" --backend swarm --data-dir "$dir/data" --admin-listen 127.0.0.1:0 --listen 127.0.0.1:0 \
  --log-level warn >"$dir/out" 2>&1 &
for _ in $(seq 1000); do grep -q "admin=" "$dir/out" && break; sleep 0.01; done
admin="http://127.0.0.1:$(grep -o "admin=127.0.0.1:[0-9]*" "$dir/out" | cut -d: -f2)"
cat >"$dir/pool.yaml" <<YAML
apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: warm20}
spec:
  warm: 20
  maxInstances: 20
  template:
    image: $image
    args: ["--capacity", "3"]
    ports: [{name: game, containerPort: 7777}]
    controlPort: 3000
YAML

: >"$dir/floor"
: >"$dir/api"
: >"$dir/mm"
sock=/var/run/docker.sock
service_body() {
  echo '{"Name":"'$tag'-'$1'","Labels":{"'$tag'":""},"TaskTemplate":{"ContainerSpec":{"Image":"'$image'",
    "Args":["--capacity","3"],"Labels":{"'$tag'":""}},"RestartPolicy":{"Condition":"none"}},
    "Mode":{"Replicated":{"Replicas":1}},"EndpointSpec":{"Ports":[{"Protocol":"tcp","TargetPort":3000,"PublishMode":"host"},
    {"Protocol":"tcp","TargetPort":7777,"PublishMode":"host"}]}}'
}
wait_running() {  # polled with curl: a Go CLI per poll would load these two cores
  for _ in $(seq 3000); do
    running=$(curl -s --unix-socket "$sock" \
      "http://d/v1.41/services?status=true&filters=%7B%22label%22%3A%5B%22$tag%22%5D%7D" |
      grep -o '"RunningTasks":1' | wc -l || true)
    [ "$running" -eq 20 ] && return 0
    sleep 0.05
  done
}
for r in $(seq "$rounds"); do
  start=$(now)
  pids=()
  for i in $(seq 0 19); do
    docker service create --detach --no-resolve-image --quiet --name "$tag-cli-$i" --label "$tag" --container-label "$tag" --restart-condition none \
      --publish mode=host,target=3000 --publish mode=host,target=7777 "$image" --capacity 3 >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  wait_running
  echo "$(now) - $start" | bc >>"$dir/floor"
  docker service rm $(docker service ls -q --filter "label=$tag") >/dev/null
  gone "$tag"

  start=$(now)
  pids=()
  for i in $(seq 0 19); do
    curl -sf --unix-socket "$sock" -H 'Content-Type: application/json' -d "$(service_body $i)" \
      http://d/v1.41/services/create >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  wait_running
  echo "$(now) - $start" | bc >>"$dir/api"
  docker service rm $(docker service ls -q --filter "label=$tag") >/dev/null
  gone "$tag"

  start=$(now)
  "$bin/mmctl" --server "$admin" apply -f "$dir/pool.yaml" --wait >/dev/null
  echo "$(now) - $start" | bc >>"$dir/mm"
  "$bin/mmctl" --server "$admin" delete pool warm20 --force >/dev/null
  for _ in $(seq 400); do
    "$bin/mmctl" --server "$admin" get pools | grep -q warm20 || break
    sleep 0.05
  done
  gone "dev.matchmaker.owner=$tag"
done
floor=$(median <"$dir/floor")
apifloor=$(median <"$dir/api")
mm=$(median <"$dir/mm")
echo "floor rounds (s): $(tr '\n' ' ' <"$dir/floor")"
echo "api floor rounds (s): $(tr '\n' ' ' <"$dir/api")"
echo "matchmakerd rounds (s): $(tr '\n' ' ' <"$dir/mm")"
printf 'floor: 20 docker service create in parallel (median of %d): %.3f s\n' "$rounds" "$floor"
printf 'floor: 20 services created via the API in parallel (median): %.3f s\n' "$apifloor"
printf 'matchmakerd: apply --wait to warm 20 Ready (median):  %.3f s\n' "$mm"
printf 'ratio to the CLI floor: %.2fx; to the API floor: %.2fx\n' "$(echo "$mm / $floor" | bc -l)" \
  "$(echo "$mm / $apifloor" | bc -l)"
