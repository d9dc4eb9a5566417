// The agent's own client against @kubernetes/client-node as the oracle: the same kubeconfig
// files resolve to the same server, CA, client certificate and Authorization in both, and
// list/watch against the in-repo API server give the same objects and resourceVersions.
// Plus what only ours does: paging (a 410 on a continue token restarts the list), the
// token file re-read, the exec plugin run without a shell and cached until it expires.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, Watch, type V1Service } from '@kubernetes/client-node';
import YAML from 'yaml';
import { BearerToken } from '../../src/kube/client/credentials.js';
import { accessFromKubeconfigFile, inClusterAccess, KubeApiError, KubeClient, kubeClient, listAll, SERVICE_ACCOUNT_DIR, UnsupportedKubeconfigError, watchStream } from '../../src/kube/index.js';
import { LabApiServer } from '../../src/lab/index.js';

const pem = (label: string, body: string) => `-----BEGIN ${label}-----\n${Buffer.from(body).toString('base64')}\n-----END ${label}-----\n`;
const CA = pem('CERTIFICATE', 'the cluster CA');
const CERT = pem('CERTIFICATE', 'a client certificate');
const KEY = pem('PRIVATE KEY', 'a client key');
const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Resolved {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  verify: boolean;
  serverName?: string;
  authorization?: string;
}

/** What client-node makes of a kubeconfig file. */
async function byClientNode(path: string, context?: string): Promise<Resolved> {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  if (context) kc.setCurrentContext(context);
  const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string; headers?: Record<string, string> } = {};
  await kc.applyToHTTPSOptions(opts as never);
  const cluster = kc.getCurrentCluster()!;
  return {
    server: cluster.server,
    ...(opts.ca ? { ca: opts.ca.toString() } : {}),
    ...(opts.cert ? { cert: opts.cert.toString() } : {}),
    ...(opts.key ? { key: opts.key.toString() } : {}),
    verify: !cluster.skipTLSVerify,
    ...(cluster.tlsServerName ? { serverName: cluster.tlsServerName } : {}),
    ...(opts.headers?.Authorization ? { authorization: opts.headers.Authorization } : {}),
  };
}

/** What ours makes of it. */
async function byOurs(path: string, context?: string): Promise<Resolved> {
  const a = accessFromKubeconfigFile(path, context ? { context } : {});
  const authorization = await new BearerToken(a.auth).header();
  return {
    server: a.server,
    ...(a.tls.ca ? { ca: a.tls.ca.toString() } : {}),
    ...(a.tls.cert ? { cert: a.tls.cert.toString() } : {}),
    ...(a.tls.key ? { key: a.tls.key.toString() } : {}),
    verify: !a.tls.insecureSkipTlsVerify,
    ...(a.tls.serverName ? { serverName: a.tls.serverName } : {}),
    ...(authorization ? { authorization } : {}),
  };
}

/** JSON with sorted keys: client-node's serializer orders fields its own way. */
const canonical = (v: unknown): string =>
  Array.isArray(v) ? `[${v.map(canonical).join(',')}]` : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}` : JSON.stringify(v);

const kubeconfig = (clusters: object[], users: object[], contexts: object[], current: string) =>
  YAML.stringify({ apiVersion: 'v1', kind: 'Config', clusters, users, contexts, 'current-context': current });

describe('kubeconfig: ours resolves like client-node', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kst-client-'));
    await mkdir(join(dir, 'pki'));
    await writeFile(join(dir, 'pki', 'ca.crt'), CA);
    await writeFile(join(dir, 'pki', 'client.crt'), CERT);
    await writeFile(join(dir, 'pki', 'client.key'), KEY);
    await writeFile(join(dir, 'token'), 'token-from-file\n');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const cases: Record<string, string> = {
    'token, CA and client certificate as data': kubeconfig(
      [{ name: 'prod', cluster: { server: 'https://192.0.2.10:6443/', 'certificate-authority-data': b64(CA) } }],
      [{ name: 'admin', user: { token: 'abc.def', 'client-certificate-data': b64(CERT), 'client-key-data': b64(KEY) } }],
      [{ name: 'prod', context: { cluster: 'prod', user: 'admin' } }],
      'prod',
    ),
    'CA and certificates as files (relative to the kubeconfig), tokenFile': kubeconfig(
      [{ name: 'lab', cluster: { server: 'https://[2001:db8::1]:443', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'kubernetes.default' } }],
      [{ name: 'agent', user: { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key', tokenFile: 'token' } }],
      [{ name: 'lab', context: { cluster: 'lab', user: 'agent' } }],
      'lab',
    ),
    'insecure-skip-tls-verify, anonymous': kubeconfig(
      [{ name: 'test', cluster: { server: 'https://203.0.113.5:6443', 'insecure-skip-tls-verify': true } }],
      [{ name: 'nobody', user: {} }],
      [{ name: 'test', context: { cluster: 'test', user: 'nobody' } }],
      'test',
    ),
  };

  for (const [name, text] of Object.entries(cases)) {
    it(name, async () => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      await writeFile(file, text);
      const ours = await byOurs(file);
      if (text.includes('tokenFile')) {
        // kubectl's field is tokenFile; client-node 1.4 reads only a "token-file" of its own
        // (config_types.js findToken), so here the oracle is kubectl's documented behaviour.
        const { authorization, ...rest } = ours;
        expect(authorization).toBe('Bearer token-from-file');
        expect(rest).toEqual(await byClientNode(file));
      } else expect(ours).toEqual(await byClientNode(file));
      expect(ours.server).toMatch(/^https:\/\//);
    });
  }

  it('a named context other than the current one', async () => {
    const file = join(dir, 'two-contexts.yaml');
    await writeFile(
      file,
      kubeconfig(
        [
          { name: 'a', cluster: { server: 'https://192.0.2.1:6443', 'certificate-authority-data': b64(CA) } },
          { name: 'b', cluster: { server: 'https://192.0.2.2:6443', 'insecure-skip-tls-verify': true } },
        ],
        [
          { name: 'ua', user: { token: 'token-a' } },
          { name: 'ub', user: { token: 'token-b' } },
        ],
        [
          { name: 'ctx-a', context: { cluster: 'a', user: 'ua' } },
          { name: 'ctx-b', context: { cluster: 'b', user: 'ub' } },
        ],
        'ctx-a',
      ),
    );
    expect(await byOurs(file)).toEqual(await byClientNode(file));
    const b = await byOurs(file, 'ctx-b');
    expect(b).toEqual(await byClientNode(file, 'ctx-b'));
    expect(b).toMatchObject({ server: 'https://192.0.2.2:6443', authorization: 'Bearer token-b', verify: false });
    expect(() => accessFromKubeconfigFile(file, { context: 'nope' })).toThrow(/context "nope" not found/);
  });

  it('in-cluster: the service account, as client-node loadFromCluster() sees it', async () => {
    const root = join(dir, 'pod');
    await mkdir(join(root, SERVICE_ACCOUNT_DIR), { recursive: true });
    await writeFile(join(root, SERVICE_ACCOUNT_DIR, 'token'), 'sa-token');
    await writeFile(join(root, SERVICE_ACCOUNT_DIR, 'ca.crt'), CA);
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      for (const host of ['192.0.2.1', '2001:db8::1']) {
        process.env.KUBERNETES_SERVICE_HOST = host;
        process.env.KUBERNETES_SERVICE_PORT = '443';
        const kc = new KubeConfig();
        kc.loadFromCluster(root);
        const opts: { ca?: Buffer; headers?: Record<string, string> } = {};
        await kc.applyToHTTPSOptions(opts as never);
        const access = inClusterAccess(process.env, root);
        expect({ server: access.server, ca: access.tls.ca?.toString(), authorization: await new BearerToken(access.auth).header() }).toEqual({
          server: kc.getCurrentCluster()!.server,
          ca: opts.ca?.toString(),
          authorization: opts.headers?.Authorization,
        });
      }
    } finally {
      for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('what we do not support is an error naming the field', async () => {
    const file = join(dir, 'unsupported.yaml');
    const write = (user: object, cluster: object = {}) =>
      writeFile(file, kubeconfig([{ name: 'c', cluster: { server: 'https://192.0.2.1', ...cluster } }], [{ name: 'u', user }], [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'x'));
    await write({ 'auth-provider': { name: 'gcp' } });
    expect(() => accessFromKubeconfigFile(file)).toThrow(UnsupportedKubeconfigError);
    expect(() => accessFromKubeconfigFile(file)).toThrow(/user\.auth-provider is not supported .*legacy/);
    await write({}, { 'proxy-url': 'http://192.0.2.9:3128' });
    expect(() => accessFromKubeconfigFile(file)).toThrow(/cluster\.proxy-url is not supported/);
    await write({ username: 'admin', password: 'x' });
    expect(() => accessFromKubeconfigFile(file)).toThrow(/user\.username is not supported .*basic auth/);
    await write({ exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } });
    expect(() => accessFromKubeconfigFile(file)).toThrow(/user\.exec\.apiVersion "client\.authentication\.k8s\.io\/v1alpha1" is not supported/);
  });
});

describe('credentials that change while the agent runs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kst-cred-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a token file is re-read after a minute (rotated service-account tokens), and at once after a 401', async () => {
    const path = join(dir, 'token');
    await writeFile(path, 'first\n');
    let now = 1_000_000;
    const token = new BearerToken({ kind: 'token-file', path }, () => now);
    expect(await token.header()).toBe('Bearer first');
    await writeFile(path, 'second\n');
    now += 59_000;
    expect(await token.header()).toBe('Bearer first');
    now += 2_000;
    expect(await token.header()).toBe('Bearer second');
    await writeFile(path, 'third\n');
    token.invalidate();
    expect(await token.header()).toBe('Bearer third');
  });

  it('an exec plugin (v1 and v1beta1) runs with an argument array, its token cached until expirationTimestamp; client-node sends the same header', async () => {
    const script = join(dir, 'plugin.mjs');
    const runs = join(dir, 'runs');
    await writeFile(
      script,
      `#!/usr/bin/env node
import { appendFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(runs)}, JSON.stringify(process.argv.slice(2)) + '\\n');
// client-node sets no KUBERNETES_EXEC_INFO (ours does): API_VERSION stands in for it there.
const info = process.env.KUBERNETES_EXEC_INFO ? JSON.parse(process.env.KUBERNETES_EXEC_INFO) : { apiVersion: process.env.API_VERSION };
const expires = new Date(Date.now() + Number(process.env.TTL_MS)).toISOString();
console.log(JSON.stringify({ apiVersion: info.apiVersion, kind: 'ExecCredential', status: { token: 'exec-' + process.env.TOKEN_SUFFIX, expirationTimestamp: expires } }));
`,
    );
    await chmod(script, 0o755);
    for (const apiVersion of ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1']) {
      await rm(runs, { force: true });
      const file = join(dir, 'exec.yaml');
      // "./plugin.mjs": relative to the kubeconfig; the argument would run a second command in a shell.
      const exec = { apiVersion, command: './plugin.mjs', args: ['--cluster', 'a; touch pwned'], env: [{ name: 'TOKEN_SUFFIX', value: 'xyz' }, { name: 'TTL_MS', value: '400' }, { name: 'API_VERSION', value: apiVersion }], interactiveMode: 'Never' };
      await writeFile(file, kubeconfig([{ name: 'c', cluster: { server: 'https://192.0.2.1' } }], [{ name: 'u', user: { exec } }], [{ name: 'x', context: { cluster: 'c', user: 'u' } }], 'x'));
      const access = accessFromKubeconfigFile(file);
      const token = new BearerToken(access.auth);
      expect(await token.header()).toBe('Bearer exec-xyz');
      expect(await token.header()).toBe('Bearer exec-xyz');
      expect((await readFile(runs, 'utf8')).trim().split('\n')).toEqual([JSON.stringify(['--cluster', 'a; touch pwned'])]);
      await new Promise((r) => setTimeout(r, 500));
      expect(await token.header()).toBe('Bearer exec-xyz');
      expect((await readFile(runs, 'utf8')).trim().split('\n')).toHaveLength(2);
      // client-node, as the oracle, runs the same plugin from the same file.
      const kc = new KubeConfig();
      kc.loadFromFile(file);
      const user = kc.getCurrentUser() as { exec: { command: string } };
      user.exec.command = script; // client-node resolves the command from the working directory
      const opts: { headers?: Record<string, string> } = {};
      await kc.applyToHTTPSOptions(opts as never);
      expect(opts.headers?.Authorization).toBe('Bearer exec-xyz');
    }
    await expect(readFile(join(dir, 'pwned'))).rejects.toThrow();
  });

  it('an exec plugin that prints something else is a clear error', async () => {
    const script = join(dir, 'bad.sh');
    await writeFile(script, '#!/bin/sh\necho not json\n');
    await chmod(script, 0o755);
    const token = new BearerToken({ kind: 'exec', exec: { apiVersion: 'client.authentication.k8s.io/v1', command: script, args: [], env: [] } });
    await expect(token.header()).rejects.toThrow(/exec credential plugin .*bad\.sh: its output is not JSON/);
  });
});

const service = (i: number): V1Service => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: `svc-${i}`, namespace: `ns-${i % 7}`, labels: { app: 'oracle' } },
  spec: { type: 'ClusterIP', ports: [{ port: 80 + (i % 3), protocol: 'TCP' }] },
});

describe('list and watch: ours gives what client-node gives', () => {
  const server = new LabApiServer();
  let ours: KubeClient;
  let kc: KubeConfig;
  beforeAll(async () => {
    await server.start();
    for (let i = 0; i < 1203; i++) server.apply(service(i) as never);
    kc = server.kubeConfig();
    ours = kubeClient(kc);
  });
  afterAll(async () => {
    ours.close();
    await server.stop();
  });

  const summary = (items: readonly { metadata?: { namespace?: string; name?: string; resourceVersion?: string; uid?: string }; spec?: unknown }[]) =>
    items.map((o) => `${o.metadata?.namespace}/${o.metadata?.name} rv=${o.metadata?.resourceVersion} uid=${o.metadata?.uid} ${canonical(o.spec)}`).sort();

  it('a full list: the same objects, resourceVersions and list resourceVersion (in pages of 500 when the server pages)', async () => {
    const reference = await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces();
    const listed = await listAll(ours, '/api/v1/services');
    expect(listed.items).toHaveLength(1203);
    expect(summary(listed.items)).toEqual(summary(reference.items));
    expect(listed.resourceVersion).toBe(reference.metadata?.resourceVersion);
    const limited = server.requests.filter((r) => r.path === '/api/v1/services' && r.query.includes('limit=500'));
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect([1, 3]).toContain(listed.pages); // 1 while the in-repo server ignores limit
  });

  it('a watch: the same events with the same resourceVersions', async () => {
    const from = (await listAll(ours, '/api/v1/services')).resourceVersion;
    const theirs: string[] = [];
    const mine: string[] = [];
    const note = (into: string[]) => (type: string, obj: unknown) => {
      const o = obj as { metadata?: { name?: string; resourceVersion?: string } };
      if (type !== 'BOOKMARK') into.push(`${type} ${o.metadata?.name} ${o.metadata?.resourceVersion}`);
    };
    const query = { resourceVersion: from, allowWatchBookmarks: true };
    const reference = await new Watch(kc).watch('/api/v1/services', query, note(theirs), () => {});
    const handle = await watchStream(ours, '/api/v1/services', query, note(mine), () => {});
    try {
      server.apply({ ...service(1), spec: { type: 'ClusterIP', ports: [{ port: 8080, protocol: 'TCP' }] } } as never);
      server.remove('v1', 'Service', 'svc-2', 'ns-2');
      server.apply(service(5000) as never);
      for (let i = 0; i < 200 && (mine.length < 3 || theirs.length < 3); i++) await new Promise((r) => setTimeout(r, 10));
      expect(mine).toHaveLength(3);
      expect(mine).toEqual(theirs);
      expect(mine.map((e) => e.split(' ')[0])).toEqual(['MODIFIED', 'DELETED', 'ADDED']);
    } finally {
      handle.abort();
      reference.abort();
    }
  });

  it('errors carry the HTTP status and the Status reason and message', async () => {
    const err = await ours.request({ method: 'GET', path: '/api/v1/namespaces/ns-1/services/missing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ code: 404, statusCode: 404, reason: 'NotFound' });
    expect((err as Error).message).toMatch(/GET \/api\/v1\/namespaces\/ns-1\/services\/missing: HTTP 404 NotFound: .*missing/);
  });
});

describe('paging', () => {
  it('follows continue tokens, and a 410 on a continue token restarts as one full list', async () => {
    const seen: string[] = [];
    const all = [1, 2, 3, 4, 5].map((i) => ({ metadata: { name: `o${i}`, resourceVersion: `${i}` } }));
    const srv = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push(url.search);
      const send = (code: number, body: object) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const limit = Number(url.searchParams.get('limit') ?? 0);
      const token = url.searchParams.get('continue');
      if (!limit) return send(200, { metadata: { resourceVersion: '99' }, items: all });
      if (token === 'expired') return send(410, { kind: 'Status', code: 410, reason: 'Expired', message: 'continue token expired' });
      const start = token ? Number(token) : 0;
      const page = all.slice(start, start + limit);
      const next = start + limit < all.length ? String(start + limit) : '';
      // The second page's token "expires" on the first pass.
      send(200, { metadata: { resourceVersion: '42', continue: next === '4' && seen.length < 3 ? 'expired' : next }, items: page });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const client = new KubeClient({ server: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, tls: { insecureSkipTlsVerify: false }, auth: { kind: 'none' }, source: 'test' });
    try {
      const paged = await listAll(client, '/api/v1/things', { pageSize: 2, fieldSelector: 'spec.x=y' });
      expect(paged.items.map((o) => o.metadata?.name)).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
      expect(paged.resourceVersion).toBe('99');
      expect(seen).toEqual(['?fieldSelector=spec.x%3Dy&limit=2', '?fieldSelector=spec.x%3Dy&limit=2&continue=2', '?fieldSelector=spec.x%3Dy&limit=2&continue=expired', '?fieldSelector=spec.x%3Dy']);
      seen.length = 10;
      const whole = await listAll(client, '/api/v1/things', { pageSize: 2 });
      expect(whole).toMatchObject({ resourceVersion: '42', pages: 3 });
      expect(whole.items).toHaveLength(5);
    } finally {
      client.close();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('keep-alive', () => {
  it('a request on a kept-alive socket the server has just closed is sent once more on a fresh one; a fresh socket failing is an error', async () => {
    const perSocket = new WeakMap<object, number>();
    let requests = 0;
    let hangUpFirst = false;
    const srv = http.createServer((req, res) => {
      requests += 1;
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      // The race of an idle timeout: the server drops the connection as the request arrives.
      if (n >= 2 || hangUpFirst) return req.socket.destroy();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const client = new KubeClient({ server: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, tls: { insecureSkipTlsVerify: false }, auth: { kind: 'none' }, source: 'test' });
    try {
      expect(await client.request({ method: 'GET', path: '/version' })).toEqual({ ok: true });
      expect(await client.request({ method: 'GET', path: '/version' })).toEqual({ ok: true });
      expect(requests).toBe(3);
      client.close();
      hangUpFirst = true;
      const fresh = new KubeClient(client.access);
      await expect(fresh.request({ method: 'GET', path: '/version' })).rejects.toThrow(/socket hang up/);
      expect(requests).toBe(4);
      fresh.close();
    } finally {
      client.close();
      await new Promise((r) => srv.close(r));
    }
  });
});
