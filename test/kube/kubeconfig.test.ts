import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeConfig, SERVICE_ACCOUNT_DIR } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';

describe('loadKubeConfig', () => {
  const server = new LabApiServer();
  let dir: string;
  beforeAll(async () => {
    await server.start();
    dir = await mkdtemp(join(tmpdir(), 'kst-kc-'));
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('uses --kubeconfig first, then KUBECONFIG, then ~/.kube/config; the result talks to the server', async () => {
    const file = join(dir, 'lab.yaml');
    await writeFile(file, server.kubeconfigYaml());
    const flag = loadKubeConfig({ path: file, env: { KUBECONFIG: '/nonexistent' } });
    expect(flag.origin).toBe('flag');
    const namespaces = await flag.client.request<{ items: unknown[] }>({ method: 'GET', path: '/api/v1/namespaces' });
    expect(namespaces.items).toEqual([]);

    expect(loadKubeConfig({ env: { KUBECONFIG: `/nonexistent:${file}` }, home: dir }).origin).toBe('KUBECONFIG');
    await mkdir(join(dir, '.kube'));
    await writeFile(join(dir, '.kube', 'config'), server.kubeconfigYaml());
    expect(loadKubeConfig({ env: {}, home: dir })).toMatchObject({ origin: 'home', where: join(dir, '.kube', 'config') });
  });

  it('uses the service account inside a pod', async () => {
    const root = join(dir, 'root');
    await mkdir(join(root, SERVICE_ACCOUNT_DIR), { recursive: true });
    await writeFile(join(root, SERVICE_ACCOUNT_DIR, 'token'), 'token');
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = '192.0.2.1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    try {
      const r = loadKubeConfig({ root, home: dir });
      expect(r).toMatchObject({ origin: 'in-cluster', where: 'https://192.0.2.1:443' });
    } finally {
      for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('says what is missing', () => {
    expect(() => loadKubeConfig({ path: join(dir, 'missing') })).toThrow(/kubeconfig .*missing \(--kubeconfig\) does not exist/);
    expect(() => loadKubeConfig({ env: { KUBECONFIG: join(dir, 'nope') }, home: dir })).toThrow(/KUBECONFIG=.*nope: no such file/);
    expect(() => loadKubeConfig({ env: {}, home: join(dir, 'empty') })).toThrow(/no Kubernetes API configuration/);
  });
});
