// A steady, bounded client load for integration tests: `workers` loops sending
// requests through the gateway until stop() (or maxMs, whichever first), each
// outcome recorded with its latency and serving site. Loopback only.
import http from 'node:http';
import https from 'node:https';

export interface Outcome {
  readonly status: number | null;
  readonly site: string | null;
  readonly error: string | null;
  readonly latencyMs: number;
  readonly startedMs: number;
  readonly body: string;
}

export interface LoadOptions {
  readonly url: string;
  readonly workers?: number;
  /** Pause between two requests of one worker. */
  readonly pauseMs?: number;
  /** Hard stop, so a broken test never loops forever. */
  readonly maxMs?: number;
  readonly method?: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** For https:// URLs: trust for the gateway's certificate (ca, servername). */
  readonly tls?: Pick<https.AgentOptions, 'ca' | 'servername'>;
}

export class Load {
  readonly outcomes: Outcome[] = [];
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #agent: http.Agent;
  #hardStop: NodeJS.Timeout | undefined;

  constructor(readonly opts: LoadOptions) {
    this.#agent = opts.url.startsWith('https:')
      ? new https.Agent({ keepAlive: true, maxSockets: 32, ...opts.tls })
      : new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  start(): this {
    this.#running = true;
    for (let i = 0; i < (this.opts.workers ?? 4); i++) this.#loops.push(this.#loop());
    this.#hardStop = setTimeout(() => { this.#running = false; }, this.opts.maxMs ?? 30_000);
    return this;
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#hardStop);
    await Promise.all(this.#loops);
    this.#loops = [];
    this.#agent.destroy();
  }

  get failed(): Outcome[] {
    return this.outcomes.filter((o) => o.error !== null || (o.status ?? 0) >= 500);
  }

  bySite(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const o of this.outcomes) if (o.site) out[o.site] = (out[o.site] ?? 0) + 1;
    return out;
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      this.outcomes.push(await request(this.opts.url, this.#agent, this.opts));
      if (this.opts.pauseMs) await new Promise((r) => setTimeout(r, this.opts.pauseMs));
    }
  }
}

export function request(
  url: string, agent: http.Agent | undefined,
  opts: { method?: string; body?: string; headers?: Readonly<Record<string, string>>; localAddress?: string } = {},
): Promise<Outcome> {
  const startedMs = Date.now();
  return new Promise((resolve) => {
    const done = (o: Omit<Outcome, 'latencyMs' | 'startedMs'>) => resolve({ ...o, latencyMs: Date.now() - startedMs, startedMs });
    // localAddress (another 127.x address) makes one test look like several clients.
    const send = url.startsWith('https:') ? https.request : http.request;
    const req = send(url, {
      method: opts.method ?? 'GET', agent, headers: opts.headers, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({
        status: res.statusCode ?? null, site: (res.headers['x-detour-site'] as string | undefined) ?? null,
        error: null, body: Buffer.concat(chunks).toString(),
      }));
      res.on('error', (err) => done({ status: res.statusCode ?? null, site: null, error: err.message, body: '' }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => done({ status: null, site: null, error: err.message, body: '' }));
    req.end(opts.body);
  });
}
