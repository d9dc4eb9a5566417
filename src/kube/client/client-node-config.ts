// A client for the same cluster and user as a @kubernetes/client-node KubeConfig. The lab,
// the bench and the tests build their configurations with client-node (the reference
// client); the components take either. Only client-node's TYPES are imported here: this
// file reads the KubeConfig's current cluster and user and never loads client-node.
import type { Cluster, KubeConfig, User } from '@kubernetes/client-node';
import { accessFromKubeconfig } from './kubeconfig-file.js';
import type { ClusterAccess } from './access.js';
import { KubeClient } from './client.js';

/** What components accept: our client, or a client-node KubeConfig (tests, lab, bench). */
export type KubeConnection = KubeClient | KubeConfig;

const clients = new WeakMap<object, KubeClient>();

/** Our client for `connection`; one per client-node KubeConfig, so components share its sockets. */
export function kubeClient(connection: KubeConnection): KubeClient {
  if (connection instanceof KubeClient) return connection;
  let client = clients.get(connection);
  if (!client) {
    client = new KubeClient(accessFromClientNode(connection));
    clients.set(connection, client);
  }
  return client;
}

/** The current cluster and user of a client-node KubeConfig, resolved exactly as a kubeconfig file would be. */
export function accessFromClientNode(kc: KubeConfig): ClusterAccess {
  const cluster: Cluster | null = kc.getCurrentCluster();
  const user: User | null = kc.getCurrentUser();
  if (!cluster) throw new Error('client-node KubeConfig: no current cluster');
  const u: Record<string, unknown> = {};
  if (user) {
    const provider = user.authProvider as { name?: string; config?: { tokenFile?: string } } | undefined | null;
    // loadFromCluster() describes the service-account token as an auth provider named tokenFile.
    if (provider?.name === 'tokenFile' && provider.config?.tokenFile) u.tokenFile = provider.config.tokenFile;
    else if (provider) u['auth-provider'] = provider;
    if (user.token) u.token = user.token;
    if (user.certData) u['client-certificate-data'] = user.certData;
    if (user.certFile) u['client-certificate'] = user.certFile;
    if (user.keyData) u['client-key-data'] = user.keyData;
    if (user.keyFile) u['client-key'] = user.keyFile;
    if (user.exec) u.exec = user.exec as unknown;
    if (user.username) u.username = user.username;
    if (user.impersonateUser) u.as = user.impersonateUser;
  }
  const c: Record<string, unknown> = { server: cluster.server, 'insecure-skip-tls-verify': cluster.skipTLSVerify };
  if (cluster.caData) c['certificate-authority-data'] = cluster.caData;
  if (cluster.caFile) c['certificate-authority'] = cluster.caFile;
  if (cluster.tlsServerName) c['tls-server-name'] = cluster.tlsServerName;
  if (cluster.proxyUrl) c['proxy-url'] = cluster.proxyUrl;
  const doc = {
    clusters: [{ name: 'c', cluster: c }],
    users: [{ name: 'u', user: u }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  // Paths in a client-node KubeConfig are already resolved; JSON is YAML.
  return { ...accessFromKubeconfig(JSON.stringify(doc), { path: `${process.cwd()}/client-node-kubeconfig` }), source: `client-node KubeConfig (${cluster.name})` };
}
