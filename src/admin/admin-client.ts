// The CLI's client for the admin API. Every failure surfaces as a DetourError
// carrying the server's code, message and status, or a plain sentence saying
// the gateway could not be reached, so the CLI never prints a stack trace.
import type { PolicyError } from '../config/policy.js';
import { DetourError, badRequest, badResponse, codeForStatus, timedOut, unreachable } from '../errors.js';
import type { DrainTarget, StatusDocument } from './admin-control.js';

export interface AdminClientOptions {
  /** e.g. http://127.0.0.1:9090; a path prefix (behind a reverse proxy) is kept. */
  readonly baseUrl: string;
  /**
   * Sent as a bearer token on mutations, and on a read only when the server
   * asks for it (401 challenge: `admin.publicRead: false`).
   */
  readonly token?: string;
  readonly timeoutMs?: number;
  readonly fetchImpl?: typeof fetch;
}

export interface MutationResult {
  readonly ok: true;
  readonly message: string;
}

/** A refused reload is an answer, not a transport failure: the caller prints the problems. */
export type ReloadResult =
  | { readonly ok: true; readonly message: string }
  | { readonly ok: false; readonly error: string; readonly errors: readonly PolicyError[]; readonly lines: readonly string[] };

interface RequestOptions {
  readonly body?: unknown;
  readonly mutates?: boolean;
  /** Statuses besides 2xx whose JSON body is returned instead of thrown. */
  readonly acceptStatuses?: readonly number[];
}

export class AdminClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: AdminClientOptions) {
    this.baseUrl = normaliseBaseUrl(opts.baseUrl);
    this.token = opts.token === '' ? undefined : opts.token;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.fetchImpl = opts.fetchImpl ?? fetch;
  }

  status(): Promise<StatusDocument> {
    return this.request<StatusDocument>('GET', '/status');
  }

  drain(target: DrainTarget, opts: { readonly force?: boolean } = {}): Promise<MutationResult> {
    const body = opts.force === true ? { [target.kind]: target.name, force: true } : { [target.kind]: target.name };
    return this.request('POST', '/drain', { body, mutates: true });
  }

  undrain(target: DrainTarget): Promise<MutationResult> {
    return this.request('DELETE', '/drain', { body: { [target.kind]: target.name }, mutates: true });
  }

  pin(route: string, site: string): Promise<MutationResult> {
    return this.request('POST', `${routePath(route)}/pin`, { body: { site }, mutates: true });
  }

  unpin(route: string): Promise<MutationResult> {
    return this.request('DELETE', `${routePath(route)}/pin`, { mutates: true });
  }

  failback(route: string, opts: { readonly force?: boolean } = {}): Promise<MutationResult> {
    const body = opts.force === true ? { force: true } : undefined;
    return this.request('POST', `${routePath(route)}/failback`, { body, mutates: true });
  }

  failover(route: string): Promise<MutationResult> {
    return this.request('POST', `${routePath(route)}/failover`, { mutates: true });
  }

  reload(): Promise<ReloadResult> {
    return this.request('POST', '/reload', { mutates: true, acceptStatuses: [422] });
  }

  private async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    try {
      return await this.send<T>(method, path, opts, opts.mutates === true);
    } catch (e) {
      const challenged = e instanceof DetourError && e.status === 401 && opts.mutates !== true && this.token !== undefined;
      if (!challenged) throw e;
      return this.send<T>(method, path, opts, true);
    }
  }

  private async send<T>(method: string, path: string, opts: RequestOptions, withToken: boolean): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (withToken && this.token !== undefined) headers.authorization = `Bearer ${this.token}`;

    let status: number;
    let text: string;
    try {
      const res = await this.fetchImpl(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      throw this.describeFailure(e);
    }

    const parsed = parseJson(text);
    const isAccepted = (status >= 200 && status < 300) || (opts.acceptStatuses ?? []).includes(status);
    if (parsed === undefined || typeof parsed !== 'object' || parsed === null) {
      throw badResponse(`unexpected answer from ${method} ${url}: HTTP ${status}, not a JSON object`, status);
    }
    if (isAccepted) return parsed as T;
    const body = parsed as { error?: unknown; code?: unknown };
    const message = typeof body.error === 'string' ? body.error : `HTTP ${status}`;
    const code = typeof body.code === 'string' ? body.code : codeForStatus(status);
    throw new DetourError(code, status, message);
  }

  private describeFailure(e: unknown): DetourError {
    if (e instanceof DetourError) return e;
    const err = e as { name?: string; message?: string; cause?: unknown };
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return timedOut(this.baseUrl, this.timeoutMs, e);
    return unreachable(this.baseUrl, describeNetworkCause(err.cause) ?? err.message ?? String(e), e);
  }
}

function normaliseBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (e) {
    throw badRequest(`invalid admin URL "${raw}": expected something like http://127.0.0.1:9090`, e);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw badRequest(`invalid admin URL "${raw}": only http and https are supported`);
  }
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

function routePath(route: string): string {
  return `/routes/${encodeURIComponent(route)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `connect ECONNREFUSED`, `getaddrinfo ENOTFOUND`: what an operator needs, without the address noise. */
function describeNetworkCause(cause: unknown): string | undefined {
  if (typeof cause !== 'object' || cause === null) return undefined;
  const c = cause as { code?: unknown; syscall?: unknown; message?: unknown; errors?: unknown };
  // Dual-stack localhost fails with an AggregateError holding one error per address.
  const first = Array.isArray(c.errors) && c.errors.length > 0 ? (c.errors[0] as { code?: unknown; syscall?: unknown }) : undefined;
  const code = c.code ?? first?.code;
  const syscall = c.syscall ?? first?.syscall;
  if (typeof code === 'string') return typeof syscall === 'string' ? `${syscall} ${code}` : code;
  return typeof c.message === 'string' && c.message !== '' ? c.message : undefined;
}
