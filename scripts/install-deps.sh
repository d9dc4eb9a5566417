#!/usr/bin/env bash
# System packages the agent, the lab and the tests need (Debian 12, as root).
# Idempotent: installs only what is missing.
#   --containers  also podman, runc and mmdebstrap: the image build (scripts/build-image.sh)
#                 and `kst lab up --runtime podman` (docs/image.md). CI passes it.
set -euo pipefail
containers=false
for a in "$@"; do
  case $a in
    --containers) containers=true ;;
    *) echo "install-deps: unknown option $a (only --containers)" >&2; exit 2 ;;
  esac
done
packages=(
  iproute2 nftables iptables procps iputils-ping iperf3 kmod
  frr                            # the data-centre router in the lab and tests (zebra, bgpd, bfdd)
  gobgpd                         # the BGP speaker sidecar
  bird2                          # a second router implementation in the BGP/BFD tests (test/bgp/bird.test.ts)
  golang-github-osrg-gobgp-dev   # GoBGP's API protos (build time)
  user-mode-linux                # a full kernel for GRE/MPLS tests where it boots (docs/testing.md)
  qemu-system-x86 busybox-static # a full kernel where UML cannot run: QEMU guest with Debian's kernel
  xz-utils                       # unpacks the guest kernel image (scripts/guest-kernel.sh)
)
# crun comes with podman but refuses hybrid cgroup layouts; runc works (scripts/podman/containers.conf).
$containers && packages+=(podman runc mmdebstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi
# The Debian frr package may start the system service; the project runs its own FRR
# instances with their own files and must not share a router with it.
if command -v service >/dev/null && pgrep -x watchfrr >/dev/null; then service frr stop || true; fi
# The QEMU guest's kernel: Debian's own, unpacked (never installed) into the project's cache.
# Only the fallback guest needs it: without it the QEMU guest suites skip, saying why.
bash "$(dirname "$0")/guest-kernel.sh" >/dev/null || echo "install-deps: no guest kernel for QEMU (see above); full-kernel tests will use UML or skip" >&2
command -v node >/dev/null || { echo "install-deps: Node.js 20 is required" >&2; exit 1; }
