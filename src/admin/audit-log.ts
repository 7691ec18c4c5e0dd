// The audit trail of the admin API: every mutation (and every refused attempt
// at one) with who asked, from where, what and how it ended. Bounded, newest
// last, shown in /status as `audit`; each entry is also one log line.

export interface AuditEntry {
  readonly time: string;
  /** The client's address as the admin server saw it. */
  readonly source: string;
  /** drain, undrain, pin, unpin, failback, failover, reload, ... */
  readonly action: string;
  /** What it acted on: `building gedung-cyber-1`, `route ceir -> site serpong`, `policy`, or the path when refused early. */
  readonly target: string;
  readonly result: 'ok' | 'refused' | 'failed';
  readonly status: number;
  readonly message: string;
}

export class AuditLog {
  readonly #entries: AuditEntry[] = [];

  /** onRecord: also told every entry (the shared history of replicas keeps them too). */
  constructor(private readonly limit = 200, private readonly onRecord?: (entry: AuditEntry) => void) {}

  record(entry: AuditEntry): void {
    const frozen = Object.freeze({ ...entry });
    this.#entries.push(frozen);
    this.onRecord?.(frozen);
    if (this.#entries.length > this.limit) this.#entries.splice(0, this.#entries.length - this.limit);
  }

  entries(): readonly AuditEntry[] {
    return [...this.#entries];
  }
}
