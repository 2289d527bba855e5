#!/usr/bin/env bash
# Builds the container images locally (no registry is needed or used):
#   matchmaker/gameserver:dev    FROM scratch + a statically linked mm-gameserver
#   matchmaker/matchmakerd:dev   FROM scratch + matchmakerd and mmctl (dynamically linked:
#                                prometheus-cpp is a shared library in Debian) with exactly
#                                the shared libraries ldd lists, and the loader
#   matchmaker/prometheus:dev    Debian's prometheus binary and the libc it needs, for
#                                charts/swarm on machines that reach no registry (tests)
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
cmake -S . -B build-static -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_STATIC=ON \
  -DMM_BUILD_TESTS=OFF >/dev/null
cmake --build build-static -j "${JOBS:-2}" --target mm-gameserver
cmake -S . -B build-image -G Ninja -DCMAKE_BUILD_TYPE=Release -DMM_BUILD_TESTS=OFF >/dev/null
cmake --build build-image -j "${JOBS:-2}" --target matchmakerd mmctl

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

mkdir "$ctx/gameserver"
cp build-static/bin/mm-gameserver examples/gameserver/Dockerfile "$ctx/gameserver/"
docker build -q -t matchmaker/gameserver:dev "$ctx/gameserver" >/dev/null
echo "build-images: matchmaker/gameserver:dev"

# matchmakerd (data/ becomes its data dir, owned by the non-root user).
d="$ctx/matchmakerd"
mkdir -p "$d/rootfs/usr/local/bin" "$d/rootfs/etc" "$d/data"
touch "$d/data/.keep"  # the legacy builder does not COPY an empty directory
for b in matchmakerd mmctl; do
  cp build-image/bin/$b "$d/rootfs/usr/local/bin/"
  strip "$d/rootfs/usr/local/bin/$b"
  # Exactly the shared libraries it needs, and the loader, at their paths.
  for lib in $(ldd "build-image/bin/$b" | grep -o '/[^ ]*'); do cp --parents -L "$lib" "$d/rootfs/"; done
done
# glibc resolves host names (files, then DNS) with what it has built in;
# docker provides /etc/hosts and /etc/resolv.conf.
echo "hosts: files dns" >"$d/rootfs/etc/nsswitch.conf"
echo "matchmaker:x:65532:65532:matchmaker:/var/lib/matchmaker:/sbin/nologin" >"$d/rootfs/etc/passwd"
echo "matchmaker:x:65532:" >"$d/rootfs/etc/group"
cp cmd/matchmakerd/Dockerfile "$d/"
docker build -q -t matchmaker/matchmakerd:dev "$d" >/dev/null
echo "build-images: matchmaker/matchmakerd:dev"

# Prometheus from Debian's package (its binary needs only libc and the loader).
p="$ctx/prometheus"
bin=/usr/bin/prometheus
mkdir -p "$p/rootfs/etc/prometheus" "$p/data"
touch "$p/data/.keep"
cp --parents "$bin" "$p/rootfs/"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do cp --parents -L "$lib" "$p/rootfs/"; done
cat >"$p/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data /prometheus
USER 65534:65534
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE
docker build -q -t matchmaker/prometheus:dev "$p" >/dev/null
echo "build-images: matchmaker/prometheus:dev ($($bin --version 2>&1 | head -1))"
