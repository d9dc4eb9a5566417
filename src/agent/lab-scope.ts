// Which pod namespaces a lab agent may look at (KST_LAB_NETNS_PREFIX set by `kst lab`).
// Several labs and tests share one machine with the same pod addresses, so a lab agent only
// considers its own lab's pods: namespaces named with the lab's prefix (the lab's default
// runtime), or, when a container runtime made the pod (`kst lab up --runtime podman`), a
// namespace known only as /proc/PID/ns/net whose process the lab started with
// KST_LAB_POD=<prefix> in its environment. Outside the lab every namespace is a candidate.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const PROC_NS = /^(.*)\/(\d+)\/ns\/net$/;

export function labPodScope(labPrefix: string, readEnviron: (path: string) => string = (p) => readFileSync(p, 'latin1')): (c: { path: string }) => boolean {
  const marker = `KST_LAB_POD=${labPrefix}`;
  return (c) => {
    if (/\/run\/netns\//.test(c.path)) return basename(c.path).startsWith(labPrefix);
    const m = PROC_NS.exec(c.path);
    if (!m) return false;
    try {
      return readEnviron(`${m[1]}/${m[2]}/environ`).split('\0').includes(marker);
    } catch {
      return false; // gone, or not ours to read
    }
  };
}
