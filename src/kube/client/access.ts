// What the agent needs to reach one API server: where it is, how TLS is checked, and how
// the agent proves who it is. Plain data, resolved once from a kubeconfig file or the
// pod's service account (kubeconfig-file.ts, in-cluster.ts); credentials that change while
// the agent runs (a rotated token file, an exec plugin's token) are fetched per request by
// credentials.ts.

/** client.authentication.k8s.io exec plugin (kubeconfig `users[].user.exec`). */
export interface ExecPlugin {
  readonly apiVersion: 'client.authentication.k8s.io/v1' | 'client.authentication.k8s.io/v1beta1';
  /** Run directly (an argument array, never a shell); a relative path with a `/` is relative to the kubeconfig's directory. */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: ReadonlyArray<{ readonly name: string; readonly value: string }>;
}

/** How requests are authenticated (besides a client certificate, which is TLS's business). */
export type Auth =
  | { readonly kind: 'none' }
  /** A bearer token fixed in the kubeconfig. */
  | { readonly kind: 'token'; readonly token: string }
  /** A bearer token read from a file and re-read periodically (bound service-account tokens rotate). */
  | { readonly kind: 'token-file'; readonly path: string }
  | { readonly kind: 'exec'; readonly exec: ExecPlugin };

export interface TlsSettings {
  /** PEM of the certificate authorities the server's certificate must chain to (default: the system's). */
  readonly ca?: Buffer;
  /** Client certificate and key (PEM). */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  /** The name the server's certificate is checked against, instead of the URL's host. */
  readonly serverName?: string;
}

export interface ClusterAccess {
  /** https://host:port (no trailing slash); http only for test servers. */
  readonly server: string;
  readonly tls: TlsSettings;
  readonly auth: Auth;
  /** Where this came from, for messages: a file path and context, or "in-cluster". */
  readonly source: string;
}

/** A setting we do not implement: failing loudly beats talking to the server the wrong way. */
export class UnsupportedKubeconfigError extends Error {
  override readonly name = 'UnsupportedKubeconfigError';
}
