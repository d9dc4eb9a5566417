// Reads one key of one Secret in the agent's own namespace: BGP session passwords
// (bgp.peers[].passwordSecretRef). A GET of that Secret by name, never a list or a watch,
// so the Role can grant `get` on exactly the named Secrets (resourceNames).
// The value is returned to the caller and nowhere else: errors name the Secret and the
// key, never a value.
import type { V1Secret } from '@kubernetes/client-node';
import { describeKubeError } from './api-error.js';
import { kubeClient, secretPath, type KubeClient, type KubeConnection } from './client/index.js';
import { callWithDeadline, KUBE_CALL_DEADLINES_MS } from './deadline.js';

export class SecretKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretKeyError';
  }
}

export interface SecretReaderOptions {
  readonly kubeConfig: KubeConnection;
  /** The agent's namespace (POD_NAMESPACE). */
  readonly namespace: string;
  readonly requestTimeoutMs?: number;
}

export class SecretReader {
  private readonly client: KubeClient;

  constructor(private readonly opts: SecretReaderOptions) {
    this.client = kubeClient(opts.kubeConfig);
  }

  /** The decoded value of `key` (UTF-8, one trailing newline dropped, as `kubectl create secret --from-file` leaves it). */
  async read(name: string, key: string): Promise<string> {
    const where = `Secret ${this.opts.namespace}/${name} key "${key}"`;
    let secret: V1Secret;
    try {
      secret = await callWithDeadline('secret.get', (signal) => this.client.request<V1Secret>({ method: 'GET', path: secretPath(this.opts.namespace, name), signal }), {
        timeoutMs: this.opts.requestTimeoutMs ?? KUBE_CALL_DEADLINES_MS.read,
      });
    } catch (err) {
      throw new SecretKeyError(`${where}: ${describeKubeError(err)}`);
    }
    // Only `data`: a real server merges a written `stringData` into it and never returns it.
    const encoded = secret.data?.[key];
    if (encoded === undefined) {
      const keys = Object.keys(secret.data ?? {});
      throw new SecretKeyError(`${where}: no such key (keys: ${keys.length ? keys.join(', ') : 'none'})`);
    }
    const value = Buffer.from(encoded, 'base64').toString('utf8');
    const trimmed = value.replace(/\r?\n$/, '');
    if (trimmed === '') throw new SecretKeyError(`${where}: the value is empty`);
    return trimmed;
  }
}
