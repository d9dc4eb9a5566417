// Where the agent finds its API server: an explicit --kubeconfig wins; inside a pod the
// service account (in-cluster); otherwise KUBECONFIG or ~/.kube/config, as kubectl does.
// The result is the agent's own client (client/), never @kubernetes/client-node.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { accessFromKubeconfigFile, inCluster, inClusterAccess, KubeClient, SERVICE_ACCOUNT_DIR } from './client/index.js';

export { SERVICE_ACCOUNT_DIR };

export interface KubeConfigSource {
  /** --kubeconfig */
  readonly path?: string;
  /** A context of the kubeconfig file other than its current-context. */
  readonly context?: string;
  /** Tests only: the environment (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Tests only: a directory standing for "/" when looking for the service account. */
  readonly root?: string;
  readonly home?: string;
}

export type KubeConfigOrigin = 'flag' | 'in-cluster' | 'KUBECONFIG' | 'home';

export function loadKubeConfig(source: KubeConfigSource = {}): { client: KubeClient; origin: KubeConfigOrigin; where: string } {
  const env = source.env ?? process.env;
  const fromFile = (path: string, origin: KubeConfigOrigin) => {
    if (!existsSync(path)) throw new Error(`kubeconfig ${path} (${origin === 'flag' ? '--kubeconfig' : origin}) does not exist`);
    const access = accessFromKubeconfigFile(path, source.context ? { context: source.context } : {});
    return { client: new KubeClient(access), origin, where: path };
  };
  if (source.path) return fromFile(source.path, 'flag');
  const root = source.root ?? '';
  if (inCluster(env, root)) {
    const access = inClusterAccess(env, root);
    return { client: new KubeClient(access), origin: 'in-cluster', where: access.server };
  }
  // KUBECONFIG may list several files (":"-separated); the first existing one is used here.
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p && existsSync(p));
  if (env.KUBECONFIG && !fromEnv) throw new Error(`KUBECONFIG=${env.KUBECONFIG}: no such file`);
  if (fromEnv) return fromFile(fromEnv, 'KUBECONFIG');
  const home = join(source.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFile(home, 'home');
  throw new Error('no Kubernetes API configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account');
}
