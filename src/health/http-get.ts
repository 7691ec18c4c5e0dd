// One bounded HTTP(S) GET, shared by the prober and the integrity verifier.
// Bounded in every direction: one overall deadline covering connect, headers and
// body (a building that accepts connections and never answers must cost no more
// than timeoutMs), a cap on the bytes read, and an abort signal for close().
// Never rejects: failures come back as words an operator can read.
import http from 'node:http';
import https from 'node:https';
import { describeTlsError, type ClientTls } from '../tls/client-tls.js';
import { LOCAL_CODES } from '../errors.js';

export interface HttpAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

export interface HttpGetOptions {
  readonly timeoutMs: number;
  /** Bytes of body kept; the rest is not read (the answer says `truncated`). */
  readonly maxBodyBytes: number;
  readonly agents: HttpAgents;
  readonly signal?: AbortSignal;
  /** Trust for an https:// URL: exactly what live traffic to the site uses. */
  readonly tls?: ClientTls;
}

export type HttpGetResult =
  | {
    readonly ok: true; readonly status: number;
    /** Decoded as UTF-8 (bad sequences become U+FFFD): for reading, not for comparing. */
    readonly body: string;
    /** The bytes as sent, for comparisons that must be exact. */
    readonly bytes: Buffer;
    readonly truncated: boolean;
  }
  | { readonly ok: false; readonly error: string; readonly local?: true };

/** Fresh connections every time: a probe must see a dead building, not a pooled socket to it. */
export function createAgents(): HttpAgents {
  return { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };
}

export function destroyAgents(agents: HttpAgents): void {
  agents.http.destroy();
  agents.https.destroy();
}

/** `http://a:1/` + `/healthz` -> `http://a:1/healthz` (site urls may carry a base path). */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

export function httpGet(url: string, opts: HttpGetOptions): Promise<HttpGetResult> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ ok: false, error: `bad url ${url}` });
      return;
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      resolve({ ok: false, error: `unsupported protocol ${target.protocol}` });
      return;
    }
    if (opts.signal?.aborted) {
      resolve({ ok: false, error: 'aborted' });
      return;
    }

    let settled = false;
    const isHttps = target.protocol === 'https:';
    const request = isHttps ? https.request : http.request;
    const req = request(target, {
      method: 'GET',
      agent: isHttps ? opts.agents.https : opts.agents.http,
      headers: { 'user-agent': 'detour-probe', accept: '*/*' },
      // Per request, not per agent: Node keys its sockets by these options, so sites never share a connection.
      ...(isHttps ? opts.tls?.options : {}),
    });

    const finish = (result: HttpGetResult, destroy: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (destroy) req.destroy();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, error: 'aborted' }, true);
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${opts.timeoutMs}ms` }, true), opts.timeoutMs);
    timer.unref();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    // Stays attached after finish(): destroying the request emits errors nobody else hears.
    req.on('error', (err) => finish({
      ok: false, error: describeError(err),
      ...(LOCAL_CODES.has(String((err as NodeJS.ErrnoException).code)) ? { local: true as const } : {}),
    }, true));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        const room = opts.maxBodyBytes - kept;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          // Stop reading: the cap is what we promised to look at, not a reason to fail.
          finish(answered(status, Buffer.concat(chunks), true), true);
          return;
        }
        chunks.push(chunk);
        kept += chunk.length;
      });
      res.on('end', () => finish(answered(status, Buffer.concat(chunks), false), false));
      res.on('error', (err) => finish({ ok: false, error: describeError(err) }, true));
      res.on('close', () => finish({ ok: false, error: 'connection closed before the body ended' }, true));
    });
    req.end();
  });
}

function answered(status: number, bytes: Buffer, truncated: boolean): HttpGetResult {
  return { ok: true, status, body: bytes.toString('utf8'), bytes, truncated };
}

/** `connect ECONNREFUSED`, `getaddrinfo ENOTFOUND`, `read ECONNRESET`, `socket hang up`: no addresses, no stack. */
export function describeError(err: unknown): string {
  const tls = describeTlsError(err);
  if (tls !== undefined) return tls;
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && typeof e.syscall === 'string') return `${e.syscall} ${e.code}`;
  if (typeof e?.message === 'string' && e.message !== '') return e.message;
  return String(err);
}
