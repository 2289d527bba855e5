#!/usr/bin/env bash
# Installs exactly what matchmaker needs to build and test, from Debian
# bookworm's packages. Idempotent; silent when everything is present.
# (prometheus: its promtool checks the alert rules and /metrics in the tests;
# clang and its libFuzzer runtime: the fuzz targets, hack/fuzz.sh;
# docker-registry: the registry the pull e2e tests push to and pull from;
# iproute2 and iptables: the network namespaces of hack/swarm-nodes.sh.)
#   hack/install-deps.sh          what building and every test need
#   hack/install-deps.sh --bench  and what bench/ needs besides: wrk, time,
#                                 valgrind, linux-perf (bench/lib.sh calls this)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  clang libclang-rt-14-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libyaml-cpp-dev libjwt-dev libvalijson-dev libcli11-dev libssl-dev
  prometheus-cpp-dev libfyaml-dev libjemalloc-dev
  openssl
  prometheus
  docker-registry
  iproute2 iptables
)

if [ "${1:-}" = --bench ]; then
  packages+=(wrk time valgrind linux-perf)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to apt-get install (or install the packages above)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
