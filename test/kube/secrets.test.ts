// SecretReader against the in-repo API server, which validates Secrets as the real one does.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { SecretReader } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';

const NS = 'kube-service-tunnel';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('SecretReader', () => {
  const server = new LabApiServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('reads one key, drops one trailing newline; errors name the Secret and key, never a value', async () => {
    server.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bgp', namespace: NS }, data: { a: b64('s3cret-value\n'), b: b64('') } } as never);
    const reader = new SecretReader({ kubeConfig: server.kubeConfig(), namespace: NS });
    expect(await reader.read('bgp', 'a')).toBe('s3cret-value');
    await expect(reader.read('bgp', 'missing')).rejects.toThrow('Secret kube-service-tunnel/bgp key "missing": no such key (keys: a, b)');
    await expect(reader.read('bgp', 'b')).rejects.toThrow('the value is empty');
    const gone = await reader.read('nope', 'a').catch((e: Error) => e.message);
    expect(gone).toMatch(/^Secret kube-service-tunnel\/nope key "a": .*404|not ?found/i);
    expect(gone).not.toContain('s3cret');
  });

  it('stringData is write-only: merged into data (its keys win), never returned, and its keys validated', async () => {
    const api = server.kubeConfig().makeApiClient(CoreV1Api);
    const made = await api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'mixed' }, data: { a: b64('old'), b: b64('kept') }, stringData: { a: 'new\n' } } });
    expect(made.stringData).toBeUndefined();
    expect(made.data).toEqual({ a: b64('new\n'), b: b64('kept') });
    const reader = new SecretReader({ kubeConfig: server.kubeConfig(), namespace: NS });
    expect(await reader.read('mixed', 'a')).toBe('new');
    const bad = await api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'bad-string-key' }, stringData: { 'a/b': 'x' } } }).then(() => 'created', (e: { code?: number }) => e.code);
    expect(bad).toBe(422);
  });

  it('the server refuses a Secret whose data is not base64, or whose key is not a config key (422)', async () => {
    const api = server.kubeConfig().makeApiClient(CoreV1Api);
    const bad = (data: Record<string, string>) => api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: `bad-${Object.keys(data)[0]!.length}` }, data } }).then(() => 'created', (e: { code?: number }) => e.code);
    expect(await bad({ ok: 'not base64!' })).toBe(422);
    expect(await bad({ 'a/b': b64('x') })).toBe(422);
    expect(await bad({ fine: b64('x') })).toBe('created');
  });
});
