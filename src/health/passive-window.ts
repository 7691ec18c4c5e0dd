// What live traffic says about a site once requests have reached it: a sliding
// window of requests and failures, judged by ratio, volume and distinct
// clients. Pure judgement, time passed in: the window never decides that a site
// is down, only that it is worth an immediate probe (see health-state.ts).
//
// Why all three: a ratio alone lets two failed requests out of three condemn a
// quiet site; a volume alone lets one busy client with one broken URL do it;
// distinct clients (default 1, because behind a load balancer with no trusted
// proxies every client has the same address) let operators who can see real
// client addresses ask that the failures come from more than one of them.
import type { PassivePolicy } from '../config/policy.js';

export interface WindowCounts {
  readonly requests: number;
  readonly failures: number;
  /** Distinct clients among the failed requests (counted up to the policy's minClients). */
  readonly failingClients: number;
}

export type WindowJudgement =
  | { readonly suspect: false; readonly why: 'off' | 'volume' | 'failures' | 'ratio' | 'clients' }
  | { readonly suspect: true; readonly detail: string };

/** Whether the window's failures are enough to ask a probe about the site. */
export function judgeWindow(counts: WindowCounts, policy: PassivePolicy, windowWords: string): WindowJudgement {
  if (policy.failureThreshold <= 0) return { suspect: false, why: 'off' };
  if (counts.requests < policy.minRequests) return { suspect: false, why: 'volume' };
  if (counts.failures < policy.failureThreshold) return { suspect: false, why: 'failures' };
  if (counts.failures < policy.ratio * counts.requests) return { suspect: false, why: 'ratio' };
  if (counts.failingClients < policy.minClients) return { suspect: false, why: 'clients' };
  const clients = policy.minClients > 1 ? ` from ${counts.failingClients}+ clients` : '';
  return { suspect: true, detail: `${counts.failures} of ${counts.requests} requests failed in ${windowWords}${clients}` };
}

const BUCKETS = 10;

interface Bucket {
  startMs: number;
  requests: number;
  failures: number;
  /** Failing clients in this bucket, kept only up to minClients (all the judgement needs). */
  readonly clients: Set<string>;
}

/**
 * Requests and failures of one site over the last `windowMs`, in ten buckets,
 * so memory stays constant whatever the traffic.
 */
export class FailureWindow {
  readonly #bucketMs: number;
  readonly #buckets: Bucket[] = [];
  readonly #maxClients: number;

  constructor(windowMs: number, maxClients: number) {
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
    this.#maxClients = Math.max(1, maxClients);
  }

  record(nowMs: number, failed: boolean, client: string): void {
    const bucket = this.#current(nowMs);
    bucket.requests++;
    if (!failed) return;
    bucket.failures++;
    if (bucket.clients.size < this.#maxClients) bucket.clients.add(client);
  }

  counts(nowMs: number): WindowCounts {
    this.#expire(nowMs);
    let requests = 0;
    let failures = 0;
    const clients = new Set<string>();
    for (const b of this.#buckets) {
      requests += b.requests;
      failures += b.failures;
      for (const c of b.clients) if (clients.size < this.#maxClients) clients.add(c);
    }
    return { requests, failures, failingClients: clients.size };
  }

  #current(nowMs: number): Bucket {
    const startMs = nowMs - (nowMs % this.#bucketMs);
    const last = this.#buckets[this.#buckets.length - 1];
    if (last && last.startMs === startMs) return last;
    this.#expire(nowMs);
    const bucket: Bucket = { startMs, requests: 0, failures: 0, clients: new Set() };
    this.#buckets.push(bucket);
    return bucket;
  }

  #expire(nowMs: number): void {
    const oldest = nowMs - this.#bucketMs * BUCKETS;
    while (this.#buckets.length > 0 && this.#buckets[0]!.startMs <= oldest) this.#buckets.shift();
  }
}
