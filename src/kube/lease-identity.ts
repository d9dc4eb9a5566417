// Who contends for the Lease, and where the Lease lives. client-go's rule: the identity is
// unique per process, never the node name alone (two agents on one node, e.g. during a
// rolling update with surge or a debugging copy, would both believe they hold it).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { SERVICE_ACCOUNT_DIR } from './kubeconfig.js';

/** Where the Lease lives when neither POD_NAMESPACE nor the service account says. */
export const DEFAULT_LEASE_NAMESPACE = 'kube-service-tunnel';

/**
 * `POD_NAME_POD_UID` from the downward API (deploy/base/daemonset.yaml): unique per pod,
 * and stable across a restart of the container, whose old process is gone by then, so the
 * restarted agent resumes its own Lease at once. Without the pod's uid, a random suffix;
 * outside a pod, the hostname and a random suffix (as client-go does).
 */
export function leaseIdentity(env: NodeJS.ProcessEnv = process.env, host: string = hostname()): string {
  const pod = env.POD_NAME?.trim();
  const uid = env.POD_UID?.trim();
  if (pod && uid) return `${pod}_${uid}`;
  return `${pod || host}_${randomBytes(4).toString('hex')}`;
}

/**
 * The pod's own namespace, where its Role for Leases is (a kustomize namespace overlay
 * moves both): POD_NAMESPACE, else the service account's namespace file, else the default.
 */
export function leaseNamespace(env: NodeJS.ProcessEnv = process.env, root = ''): string {
  const fromEnv = env.POD_NAMESPACE?.trim();
  if (fromEnv) return fromEnv;
  try {
    const fromFile = readFileSync(`${root}${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim();
    if (fromFile) return fromFile;
  } catch {
    // not in a pod
  }
  return DEFAULT_LEASE_NAMESPACE;
}
