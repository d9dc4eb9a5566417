// Inside a pod: the API server is the kubernetes Service (KUBERNETES_SERVICE_HOST/PORT),
// trusted through the service account's CA and authenticated with its token, which the
// kubelet rotates (bound tokens expire): the token file is re-read, never cached for good.
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { ClusterAccess } from './access.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** True when the environment and the token file say we run in a pod. `root` stands for "/" in tests. */
export function inCluster(env: NodeJS.ProcessEnv, root = ''): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(`${root}${SERVICE_ACCOUNT_DIR}/token`));
}

export function inClusterAccess(env: NodeJS.ProcessEnv, root = ''): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set');
  const caPath = `${root}${SERVICE_ACCOUNT_DIR}/ca.crt`;
  const ca = existsSync(caPath) ? readFileSync(caPath) : undefined;
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    tls: { ...(ca ? { ca } : {}), insecureSkipTlsVerify: false },
    auth: { kind: 'token-file', path: `${root}${SERVICE_ACCOUNT_DIR}/token` },
    source: 'in-cluster',
  };
}
