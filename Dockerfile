# kube-service-tunnel agent image (also carries gobgpd for the sidecar container).
# Built with podman by scripts/build-image.sh (also in CI, with local stand-ins for the
# node:20 bases where no registry is reachable) and run by `kst lab up --runtime podman`
# as deploy/base/daemonset.yaml runs it (docs/image.md).

# --- build: compile TypeScript, with GoBGP's protos from Debian's package ---
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends golang-github-osrg-gobgp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

# --- runtime: node + the kernel tools the agent drives + gobgpd ---
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables util-linux procps gobgpd ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kube-service-tunnel
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/proto ./proto
RUN ln -s /opt/kube-service-tunnel/dist/src/cli/main.js /usr/local/bin/kst && chmod +x dist/src/cli/main.js
# The agent programs the host's network and pod namespaces (privileged in
# deploy/base/daemonset.yaml: pod sysctls need a writable /proc/sys); gobgpd gets only
# NET_ADMIN and NET_BIND_SERVICE. Running as uid 0 inside the container keeps those
# capabilities effective without file capabilities on node, ip and nft.
USER 0
ENTRYPOINT ["node", "/opt/kube-service-tunnel/dist/src/cli/main.js"]
CMD ["agent", "--config", "/etc/kube-service-tunnel/config.yaml"]
