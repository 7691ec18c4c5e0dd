// Failed-authentication limiting per source address, so the admin token cannot
// be guessed at network speed. After `maxFailures` wrong or missing tokens
// within `windowMs`, every call from that address that needs the token is
// refused (429 with Retry-After) until `blockMs` has passed, even with the right
// token: otherwise a blocked guesser would still learn when it guessed right.
// A success clears the address's count (an operator's typo is forgiven). Pure:
// time comes in as nowMs. Memory is bounded: beyond `maxTracked` addresses the
// oldest entries are forgotten.

export interface AuthLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly blockMs: number;
  readonly maxTracked: number;
}

export const defaultAuthLimits: AuthLimiterOptions = { maxFailures: 5, windowMs: 60_000, blockMs: 60_000, maxTracked: 10_000 };

export type AuthGate = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

interface Entry {
  failures: number;
  windowStartMs: number;
  blockedUntilMs: number;
}

export class AuthLimiter {
  readonly #limits: AuthLimiterOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(limits: Partial<AuthLimiterOptions> = {}) {
    this.#limits = { ...defaultAuthLimits, ...limits };
  }

  check(source: string, nowMs: number): AuthGate {
    const entry = this.#entries.get(source);
    if (entry === undefined || entry.blockedUntilMs <= nowMs) return { allowed: true };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((entry.blockedUntilMs - nowMs) / 1000)) };
  }

  failed(source: string, nowMs: number): void {
    let entry = this.#entries.get(source);
    if (entry === undefined || nowMs - entry.windowStartMs >= this.#limits.windowMs) {
      this.#entries.delete(source);
      entry = { failures: 0, windowStartMs: nowMs, blockedUntilMs: 0 };
      this.#forgetOldest(nowMs);
      this.#entries.set(source, entry);
    }
    entry.failures += 1;
    if (entry.failures >= this.#limits.maxFailures) {
      entry.blockedUntilMs = nowMs + this.#limits.blockMs;
      // A new window starts when the block ends.
      entry.windowStartMs = entry.blockedUntilMs;
      entry.failures = 0;
    }
  }

  succeeded(source: string): void {
    this.#entries.delete(source);
  }

  /** Addresses currently tracked (for tests and bounds). */
  get size(): number {
    return this.#entries.size;
  }

  #forgetOldest(nowMs: number): void {
    if (this.#entries.size < this.#limits.maxTracked) return;
    for (const [source, entry] of this.#entries) {
      if (entry.blockedUntilMs <= nowMs && nowMs - entry.windowStartMs >= this.#limits.windowMs) this.#entries.delete(source);
    }
    // Still full: drop the oldest (Map keeps insertion order).
    for (const source of this.#entries.keys()) {
      if (this.#entries.size < this.#limits.maxTracked) break;
      this.#entries.delete(source);
    }
  }
}
