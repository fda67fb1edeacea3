// REST client: bearer token, the server's error envelope turned into ApiError, 401 → sign-in.
import type { ErrorInfo } from './types';

export class ApiError extends Error implements ErrorInfo {
  readonly code: string;
  readonly hint: string | null;
  readonly status: number;

  constructor(status: number, code: string, message: string, hint: string | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

/** Any thrown value as {code, message, hint} for display. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof ApiError) return { code: err.code, message: err.message, hint: err.hint };
  if (err && typeof err === 'object' && 'code' in err && 'message' in err) {
    const e = err as { code: unknown; message: unknown; hint?: unknown };
    return { code: String(e.code), message: String(e.message), hint: e.hint ? String(e.hint) : null };
  }
  if (err instanceof Error) return { code: 'client_error', message: err.message, hint: null };
  return { code: 'client_error', message: String(err), hint: null };
}

// The sign-in of this browser (not of one tab): localStorage, so new tabs and a restarted
// browser stay signed in, and the `storage` event tells every other tab when it changes. Only
// expiring `web` tokens are kept here: a pasted token is exchanged for one (POST /auth/web-token).
const TOKEN_KEY = 'oi.token';
/** How the stored token was obtained: 'web' = a browser sign-in minted by the server (sign-out
 * revokes it); 'pasted' = a token kept as it was pasted (only when the exchange was impossible). */
const TOKEN_SOURCE_KEY = 'oi.token.source';

export type TokenSource = 'pasted' | 'web';

let memoryToken: string | null = null;
let memorySource: TokenSource = 'pasted';

function stored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export const auth = {
  token(): string | null {
    return stored(TOKEN_KEY) ?? memoryToken;
  },
  setToken(token: string | null, source: TokenSource = 'pasted'): void {
    memoryToken = token;
    memorySource = token ? source : 'pasted';
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
      if (token && source === 'web') localStorage.setItem(TOKEN_SOURCE_KEY, source);
      else localStorage.removeItem(TOKEN_SOURCE_KEY);
    } catch {
      /* storage disabled: the token lives as long as the page */
    }
  },
  /** Where the stored token came from (see TOKEN_SOURCE_KEY). */
  tokenSource(): TokenSource {
    const source = stored(TOKEN_SOURCE_KEY);
    if (source === 'web') return 'web';
    return stored(TOKEN_KEY) !== null ? 'pasted' : memorySource;
  },
  /** Call `listener` with the new token (null: signed out) whenever another tab of this browser
   * signs in or out. Returns the unsubscribe function. */
  onOtherTab(listener: (token: string | null) => void): () => void {
    const handler = (e: StorageEvent) => {
      // key === null: the other tab cleared all of this origin's storage.
      if (e.key === TOKEN_KEY || e.key === null) {
        memoryToken = null;
        listener(stored(TOKEN_KEY));
      }
    };
    addEventListener('storage', handler);
    return () => removeEventListener('storage', handler);
  },
  /** Called on any 401 from the API (set by the app: clears the token, shows sign-in). */
  onUnauthorized: (_err: ApiError): void => {},
};

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Use this token instead of the stored one (sign-in check); 401 then does not sign out. */
  token?: string;
}

/** Parse an error response into ApiError, whatever its body. */
async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  let hint: string | null = null;
  try {
    const text = await res.text();
    try {
      const data = JSON.parse(text) as { error?: ErrorInfo; detail?: unknown };
      if (data.error && typeof data.error === 'object') {
        code = data.error.code || code;
        message = data.error.message || message;
        hint = data.error.hint ?? null;
      } else if (data.detail) {
        message = typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail);
      }
    } catch {
      if (text.trim()) message = text.trim().slice(0, 300);
    }
  } catch {
    /* body unreadable */
  }
  return new ApiError(res.status, code, message, hint);
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const token = opts.token ?? auth.token();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network_error', 'Could not reach the server', 'Check that it is running and reachable');
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 && opts.token === undefined) auth.onUnauthorized(err);
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'bad_response', `The server sent something that is not JSON for ${path}`);
  }
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) =>
    request<T>('POST', path, { ...opts, body: body ?? {} }),
  patch: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
  put: <T>(path: string, body: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, body }),
  del: <T = void>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, opts),
};
