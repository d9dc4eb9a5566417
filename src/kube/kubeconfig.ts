// Where the agent finds its API server: an explicit --kubeconfig wins; inside a pod the
// service account (in-cluster); otherwise KUBECONFIG or ~/.kube/config, as kubectl does.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  /** --kubeconfig */
  readonly path?: string;
  /** Tests only: the environment (client-node itself reads KUBERNETES_SERVICE_* from process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Tests only: a directory standing for "/" when looking for the service account. */
  readonly root?: string;
  readonly home?: string;
}

export type KubeConfigOrigin = 'flag' | 'in-cluster' | 'KUBECONFIG' | 'home';

export function loadKubeConfig(source: KubeConfigSource = {}): { kubeConfig: KubeConfig; origin: KubeConfigOrigin; where: string } {
  const env = source.env ?? process.env;
  const kc = new KubeConfig();
  const fromFile = (path: string, origin: KubeConfigOrigin) => {
    if (!existsSync(path)) throw new Error(`kubeconfig ${path} (${origin === 'flag' ? '--kubeconfig' : origin}) does not exist`);
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new Error(`kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${path}: no current context/cluster`);
    return { kubeConfig: kc, origin, where: path };
  };
  if (source.path) return fromFile(source.path, 'flag');
  const root = source.root ?? '';
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(`${root}${SERVICE_ACCOUNT_DIR}/token`)) {
    kc.loadFromCluster(root);
    return { kubeConfig: kc, origin: 'in-cluster', where: kc.getCurrentCluster()!.server };
  }
  // KUBECONFIG may list several files (":"-separated); the first existing one is used here.
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p && existsSync(p));
  if (env.KUBECONFIG && !fromEnv) throw new Error(`KUBECONFIG=${env.KUBECONFIG}: no such file`);
  if (fromEnv) return fromFile(fromEnv, 'KUBECONFIG');
  const home = join(source.home ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return fromFile(home, 'home');
  throw new Error('no Kubernetes API configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account');
}
