#!/usr/bin/env bash
# Time from `mmctl apply --wait` of a warm: 20 pool of matchmaker/gameserver:dev
# containers (--backend docker) to all 20 Ready, beside the engine's own floor
# measured in the same run: 20 `docker run -d` of the same image issued in
# parallel, timed until every one has returned (container started).
# A second floor leaves the CLI out: 20 create+start pairs sent straight to
# the Engine API with curl, in parallel (the engine's own limit, no Go CLI
# start-up per container).
# Rounds alternate floors / matchmakerd; the median of each is reported.
#   bench/apply_containers.sh [BUILD_DIR] [ROUNDS]
# Needs an engine (hack/start-dockerd.sh) and the image (hack/build-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build}/bin")
rounds=${2:-5}
image=matchmaker/gameserver:dev
tag="mm-bench-$$"
dir=$(mktemp -d /tmp/mm-bench-containers.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  ids=$(docker ps -aq --filter "label=$tag" --filter "label=dev.matchmaker.owner=$tag")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  ids=$(docker ps -aq --filter "label=dev.matchmaker.owner=$tag")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
docker image inspect "$image" >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

mkdir -p "$dir/data"
echo "$tag" >"$dir/data/owner-id"
"$bin/matchmakerd" --backend docker --publish-ip 127.0.0.1 --data-dir "$dir/data" \
  --admin-listen 127.0.0.1:0 --listen 127.0.0.1:0 --log-level warn >"$dir/out" 2>&1 &
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
api=$(curl -s --unix-socket "$sock" http://d/version | grep -o '"ApiVersion":"[0-9.]*"' | head -1 | cut -d'"' -f4)
create_body='{"Image":"'$image'","Cmd":["--capacity","3"],"Labels":{"'$tag'":""},
  "ExposedPorts":{"3000/tcp":{},"7777/tcp":{}},
  "HostConfig":{"PortBindings":{"3000/tcp":[{"HostIp":"127.0.0.1","HostPort":""}],"7777/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]}}}'
api_run() {
  local id
  id=$(curl -sf --unix-socket "$sock" -H 'Content-Type: application/json' -d "$create_body" \
    "http://d/v$api/containers/create" | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4)
  curl -sf --unix-socket "$sock" -X POST "http://d/v$api/containers/$id/start" >/dev/null
}
for r in $(seq "$rounds"); do
  start=$(now)
  pids=()
  for i in $(seq 0 19); do
    docker run -d --label "$tag" -p 127.0.0.1::3000 -p 127.0.0.1::7777 "$image" --capacity 3 >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "$(now) - $start" | bc >>"$dir/floor"
  [ "$(docker ps -q --filter "label=$tag" --filter status=running | wc -l)" -eq 20 ] || { echo "floor: not 20 running" >&2; exit 1; }
  docker rm -f $(docker ps -aq --filter "label=$tag") >/dev/null

  start=$(now)
  pids=()
  for i in $(seq 0 19); do
    api_run &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "$(now) - $start" | bc >>"$dir/api"
  [ "$(docker ps -q --filter "label=$tag" --filter status=running | wc -l)" -eq 20 ] || { echo "api floor: not 20 running" >&2; exit 1; }
  docker rm -f $(docker ps -aq --filter "label=$tag") >/dev/null

  start=$(now)
  "$bin/mmctl" --server "$admin" apply -f "$dir/pool.yaml" --wait >/dev/null
  echo "$(now) - $start" | bc >>"$dir/mm"
  "$bin/mmctl" --server "$admin" delete pool warm20 --force >/dev/null
  for _ in $(seq 400); do
    "$bin/mmctl" --server "$admin" get pools | grep -q warm20 || break
    sleep 0.05
  done
  for _ in $(seq 400); do
    [ -z "$(docker ps -aq --filter "label=dev.matchmaker.owner=$tag")" ] && break
    sleep 0.05
  done
done
floor=$(median <"$dir/floor")
apifloor=$(median <"$dir/api")
mm=$(median <"$dir/mm")
echo "floor rounds (s): $(tr '\n' ' ' <"$dir/floor")"
echo "api floor rounds (s): $(tr '\n' ' ' <"$dir/api")"
echo "matchmakerd rounds (s): $(tr '\n' ' ' <"$dir/mm")"
printf 'floor: 20 docker run -d in parallel (median of %d): %.3f s\n' "$rounds" "$floor"
printf 'floor: 20 create+start via the API in parallel (median): %.3f s\n' "$apifloor"
printf 'matchmakerd: apply --wait to warm 20 Ready (median):  %.3f s\n' "$mm"
printf 'ratio to docker run: %.2fx; ratio to the API floor: %.2fx\n' "$(echo "$mm / $floor" | bc -l)" \
  "$(echo "$mm / $apifloor" | bc -l)"
