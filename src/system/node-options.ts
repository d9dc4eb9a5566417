// The V8 heap settings the agent runs with, chosen on purpose (docs/troubleshooting.md,
// "Memory"): deploy/base/daemonset.yaml sets them as NODE_OPTIONS next to the container's
// memory limit, the lab and bench/kube start their agents with them, and a test keeps the
// three the same.
//
// --max-semi-space-size=4: V8 otherwise grows each of the young generation's two
//   semi-spaces to 16 MB, 32 MB of the idle agent's ~170 MB RSS kept for short-lived
//   garbage; at 4 MB young collections run more often, each one shorter.
// --max-old-space-size=384: within the DaemonSet's 512 MiB limit, leaving room for what is
//   not the JavaScript heap (the node binary, the BFD thread, buffers). Near the cap V8
//   collects harder instead of growing into the limit; past it the agent exits with "heap
//   out of memory" in its log instead of a silent OOM kill. Raise both together for large
//   clusters (docs/troubleshooting.md gives figures per VIP count).
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=4 --max-old-space-size=384';
