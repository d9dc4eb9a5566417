// A non-2xx answer of the API server: the HTTP status (`code`, also `statusCode` as the
// watch code reads it) and the Status object the server sent (`body`), whose reason and
// message say what is wrong. kube/api-error.ts classifies these for callers.

/** The metav1.Status a failed request answers with (as far as it parses). */
export interface ApiStatus {
  readonly kind?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly details?: { readonly causes?: ReadonlyArray<{ readonly reason?: string; readonly message?: string; readonly field?: string }> };
}

export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  /** The Status when the body was one; otherwise the body's text. */
  readonly body: ApiStatus | string;

  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: number,
    text: string,
  ) {
    let body: ApiStatus | string = text;
    try {
      const parsed = JSON.parse(text) as unknown;
      if (typeof parsed === 'object' && parsed !== null) body = parsed as ApiStatus;
    } catch {
      // Not JSON (a proxy's HTML page): keep the text.
    }
    const status = typeof body === 'object' ? body : undefined;
    const detail = status?.message ?? (typeof body === 'string' ? body.slice(0, 200) : '');
    super(`${method} ${path}: HTTP ${code}${status?.reason ? ` ${status.reason}` : ''}${detail ? `: ${detail}` : ''}`);
    this.body = body;
  }

  get statusCode(): number {
    return this.code;
  }

  get reason(): string | undefined {
    return typeof this.body === 'object' ? this.body.reason : undefined;
  }

  get status(): ApiStatus | undefined {
    return typeof this.body === 'object' ? this.body : undefined;
  }
}
