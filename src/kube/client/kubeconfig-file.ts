// A kubeconfig file (kubectl's format) resolved to one ClusterAccess: the current context
// or a named one. Relative file paths are relative to the kubeconfig's directory, as
// kubectl resolves them. Settings we do not implement are an error naming the field, not
// silently ignored.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import { UnsupportedKubeconfigError, type Auth, type ClusterAccess, type ExecPlugin, type TlsSettings } from './access.js';

type Doc = Record<string, unknown>;

const EXEC_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;

export interface KubeconfigOptions {
  /** Default: the file's current-context. */
  readonly context?: string;
}

export function accessFromKubeconfigFile(path: string, opts: KubeconfigOptions = {}): ClusterAccess {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
  }
  return accessFromKubeconfig(text, { ...opts, path });
}

/** `path` names the file in messages and anchors relative paths. */
export function accessFromKubeconfig(text: string, opts: KubeconfigOptions & { readonly path: string }): ClusterAccess {
  const where = `kubeconfig ${opts.path}`;
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new Error(`${where}: not YAML: ${(err as Error).message}`, { cause: err });
  }
  if (!isDoc(doc)) throw new Error(`${where}: not a kubeconfig (expected a mapping)`);
  const contextName = opts.context ?? str(doc['current-context']);
  if (!contextName) throw new Error(`${where}: no current-context (and no context named)`);
  const context = named(doc, 'contexts', contextName, where)?.context;
  if (!isDoc(context)) throw new Error(`${where}: context "${contextName}" not found`);
  const clusterName = str(context.cluster);
  const cluster = clusterName ? named(doc, 'clusters', clusterName, where)?.cluster : undefined;
  if (!isDoc(cluster)) throw new Error(`${where}: context "${contextName}": cluster "${clusterName ?? ''}" not found`);
  const userName = str(context.user);
  // A context without a user talks to the server anonymously, as kubectl does.
  const user = userName ? named(doc, 'users', userName, where)?.user : {};
  if (!isDoc(user)) throw new Error(`${where}: context "${contextName}": user "${userName}" not found`);
  const base = dirname(resolve(opts.path));
  const at = `${where} context "${contextName}"`;
  return {
    server: serverOf(cluster, at),
    tls: tlsOf(cluster, user, base, at),
    auth: authOf(user, base, at),
    source: `${opts.path} (context ${contextName})`,
  };
}

const isDoc = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function named(doc: Doc, list: string, name: string, where: string): Doc | undefined {
  const entries = doc[list] ?? [];
  if (!Array.isArray(entries)) throw new Error(`${where}: ${list} is not a list`);
  return entries.find((e): e is Doc => isDoc(e) && e.name === name);
}

function serverOf(cluster: Doc, at: string): string {
  const server = str(cluster.server);
  if (!server) throw new Error(`${at}: cluster.server is missing`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`${at}: cluster.server "${server}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${at}: cluster.server "${server}": only https:// (or http://) is supported`);
  if (cluster['proxy-url'] !== undefined) throw new UnsupportedKubeconfigError(`${at}: cluster.proxy-url is not supported by the agent's client; reach the API server directly`);
  return server.replace(/\/+$/, '');
}

/** `<field>-data` (base64) wins over `<field>` (a file), as in client-go. */
function pem(obj: Doc, field: string, base: string, at: string): Buffer | undefined {
  const data = str(obj[`${field}-data`]);
  if (data) return Buffer.from(data, 'base64');
  const file = str(obj[field]);
  if (!file) return undefined;
  const path = isAbsolute(file) ? file : resolve(base, file);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${at}: ${field} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function tlsOf(cluster: Doc, user: Doc, base: string, at: string): TlsSettings {
  const ca = pem(cluster, 'certificate-authority', base, at);
  const cert = pem(user, 'client-certificate', base, at);
  const key = pem(user, 'client-key', base, at);
  if ((cert === undefined) !== (key === undefined)) throw new Error(`${at}: user has ${cert ? 'client-certificate but no client-key' : 'client-key but no client-certificate'}`);
  const serverName = str(cluster['tls-server-name']);
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(serverName ? { serverName } : {}),
  };
}

function authOf(user: Doc, base: string, at: string): Auth {
  for (const field of ['auth-provider', 'username', 'password', 'as', 'as-groups', 'as-uid']) {
    if (user[field] !== undefined) {
      const why = field === 'auth-provider' ? ' (legacy; use an exec credential plugin)' : field === 'username' || field === 'password' ? ' (basic auth; removed from Kubernetes in 1.19)' : ' (impersonation)';
      throw new UnsupportedKubeconfigError(`${at}: user.${field} is not supported by the agent's client${why}`);
    }
  }
  // client-go: a token in the file wins over tokenFile.
  const token = str(user.token);
  if (token) return { kind: 'token', token };
  const tokenFile = str(user.tokenFile);
  if (tokenFile) return { kind: 'token-file', path: isAbsolute(tokenFile) ? tokenFile : resolve(base, tokenFile) };
  if (user.exec !== undefined) return { kind: 'exec', exec: execOf(user.exec, base, at) };
  return { kind: 'none' };
}

function execOf(exec: unknown, base: string, at: string): ExecPlugin {
  if (!isDoc(exec)) throw new Error(`${at}: user.exec is not a mapping`);
  const apiVersion = str(exec.apiVersion);
  if (!apiVersion || !(EXEC_VERSIONS as readonly string[]).includes(apiVersion)) {
    throw new UnsupportedKubeconfigError(`${at}: user.exec.apiVersion "${apiVersion ?? ''}" is not supported (${EXEC_VERSIONS.join(' or ')})`);
  }
  const command = str(exec.command);
  if (!command) throw new Error(`${at}: user.exec.command is missing`);
  if (exec.interactiveMode === 'Always') throw new UnsupportedKubeconfigError(`${at}: user.exec.interactiveMode Always: the agent has no terminal`);
  const args = exec.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error(`${at}: user.exec.args must be a list of strings`);
  const env = exec.env ?? [];
  if (!Array.isArray(env) || !env.every((e) => isDoc(e) && typeof e.name === 'string' && typeof e.value === 'string')) {
    throw new Error(`${at}: user.exec.env must be a list of {name, value} strings`);
  }
  // client-go resolves a relative command that names a path against the kubeconfig's directory.
  const resolved = !isAbsolute(command) && command.includes('/') ? resolve(base, command) : command;
  return { apiVersion: apiVersion as ExecPlugin['apiVersion'], command: resolved, args: args as string[], env: env as ExecPlugin['env'] };
}
