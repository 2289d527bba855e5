#!/usr/bin/env bash
# Makes sure a Docker Engine answers on DOCKER_HOST (default: the unix socket),
# for the e2e tier and the container benchmarks. Idempotent:
#   - an engine that already answers is left as it is;
#   - docker.io is installed from Debian when dockerd is missing;
#   - dockerd is started in the background with --userland-proxy=false
#     (published ports are kernel NAT rules, not docker-proxy children of
#     dockerd), logs in /var/log/mm-dockerd.log. Not --live-restore: swarm
#     mode refuses it, and the swarm tier needs swarm mode.
# Exit 0 when an engine answers, 1 when none could be started.
set -euo pipefail

answers() { timeout 10 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if answers; then exit 0; fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "start-dockerd: docker.io is not installed and this is not root" >&2
    exit 1
  fi
  echo "start-dockerd: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
  echo "start-dockerd: DOCKER_HOST=$DOCKER_HOST does not answer and is not a local socket" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: no engine answers and only root can start dockerd" >&2
  exit 1
fi

if ! pgrep -x dockerd >/dev/null; then
  echo "start-dockerd: starting dockerd (log: /var/log/mm-dockerd.log)" >&2
  setsid nohup dockerd --userland-proxy=false >>/var/log/mm-dockerd.log 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if answers; then
    echo "start-dockerd: engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" >&2
    exit 0
  fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; last log lines:" >&2
tail -n 20 /var/log/mm-dockerd.log >&2 || true
exit 1
