// One JSON line per request (policy `accessLog`), so that after an incident
// someone can say who was served from where, and why detour re-sent or
// refused. Lines go through a pino destination (sonic-boom) in async mode: the
// request path only appends to a buffer, and a destination that cannot keep
// up drops lines (counted in the log) instead of holding requests. SIGUSR1
// reopens the file, for logrotate's `create` rotation.
//
// Fields: time (ISO, when the request arrived), client (peer address), method,
// host, path (as forwarded, without the query), route, site, status, bytes
// (written to the client, head included), durationMs, retries, and why (the
// re-sends, a spent retry budget, or the reason detour answered itself).
import { closeSync, openSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { pino } from 'pino';
import type { AccessLogPolicy } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { ExchangeSummary } from './exchange.js';

type Destination = ReturnType<typeof pino.destination>;

/** What the forwarder fills in while it handles one request. */
export interface AccessNote {
  route: string;
  why: string | undefined;
  /** The exchange's own account (site, status, retries, why), read when the response closes. */
  summary: (() => ExchangeSummary) | undefined;
}

export interface AccessLogOptions {
  readonly logger: Logger;
  /** For sampling (tests pass a fixed one). */
  readonly random?: () => number;
}

/** Longest path written; the rest is cut (a line per request must stay a line). */
const MAX_PATH_CHARS = 1024;
/** Buffered bytes beyond which lines are dropped rather than held in memory. */
const MAX_BUFFER_BYTES = 16 * 1024 * 1024;
/**
 * Lines are written in batches of this many bytes, or every FLUSH_MS: one
 * write per line costs a thread-pool round trip and a system call each, which
 * measurably slowed requests under load.
 */
const BATCH_BYTES = 4096;
const FLUSH_MS = 500;

export class AccessLog {
  private config: AccessLogPolicy | undefined;
  private dest: Destination | undefined;
  private dropped = 0;
  private readonly random: () => number;
  private readonly log: Logger;

  constructor(opts: AccessLogOptions) {
    this.log = opts.logger;
    this.random = opts.random ?? Math.random;
  }

  /** Apply the policy's setting (start, on every reload): a new path opens a new destination. */
  update(config: AccessLogPolicy | undefined): void {
    const previous = this.config;
    this.config = config;
    if (config?.path === previous?.path && this.dest) return;
    this.closeDestination();
    if (config) this.dest = this.open(config.path);
  }

  /** Whether lines are being written (false: off, or the path could not be opened). */
  get isOpen(): boolean {
    return this.dest !== undefined;
  }

  /** Start the line for one request; undefined when it is not logged (no access log, or sampled out). */
  begin(req: IncomingMessage, res: ServerResponse): AccessNote | undefined {
    const dest = this.dest;
    const config = this.config;
    if (!dest || !config || (config.sample < 1 && this.random() >= config.sample)) return undefined;
    const startedMs = performance.now();
    const time = new Date().toISOString();
    const socket = req.socket;
    const bytesBefore = socket.bytesWritten;
    const note: AccessNote = { route: 'none', why: undefined, summary: undefined };
    res.once('close', () => {
      const summary = note.summary?.();
      const status = res.headersSent ? res.statusCode : (summary?.status || 499);
      const why = [summary?.why ?? note.why, res.headersSent && !res.writableFinished ? 'response cut off' : undefined]
        .filter((w) => w !== undefined).join('; ');
      const url = req.url ?? '';
      const query = url.indexOf('?');
      this.write(dest, {
        time,
        client: socket.remoteAddress ?? null,
        method: req.method ?? null,
        host: req.headers.host ?? null,
        path: (query === -1 ? url : url.slice(0, query)).slice(0, MAX_PATH_CHARS),
        route: note.route,
        site: summary?.site ?? 'none',
        status,
        bytes: Math.max(0, socket.bytesWritten - bytesBefore),
        durationMs: Math.round((performance.now() - startedMs) * 10) / 10,
        retries: summary?.retries ?? 0,
        ...(why !== '' && { why }),
      });
    });
    return note;
  }

  /** A request Node refused before it became one (unparseable head, 431, timeouts). */
  refused(socket: Duplex, status: number, why: string): void {
    const dest = this.dest;
    const config = this.config;
    if (!dest || !config || (config.sample < 1 && this.random() >= config.sample)) return;
    this.write(dest, {
      time: new Date().toISOString(),
      client: (socket as { remoteAddress?: string }).remoteAddress ?? null,
      method: null, host: null, path: null, route: 'none', site: 'none', status, bytes: 0, durationMs: 0, retries: 0, why,
    });
  }

  /** Reopen the file (after rotation moved it away); stdout has nothing to reopen. */
  reopen(): void {
    if (!this.dest || !this.config || this.config.path === 'stdout') return;
    try {
      this.dest.reopen();
    } catch (err) {
      this.log.error({ err: (err as Error).message, path: this.config.path }, 'access log: cannot reopen');
    }
  }

  /** Flush what is buffered and close the file. */
  async close(): Promise<void> {
    const dest = this.dest;
    this.dest = undefined;
    this.config = undefined;
    if (!dest) return;
    await new Promise<void>((resolve) => {
      dest.once('close', () => resolve());
      dest.once('error', () => resolve());
      dest.end();
    });
  }

  private open(path: string): Destination | undefined {
    if (path !== 'stdout') {
      // Opened once here so a bad path is reported now, and never reaches the
      // destination (which cannot be shut down cleanly before its file opened).
      try {
        closeSync(openSync(path, 'a'));
      } catch (err) {
        this.log.error({ err: (err as Error).message, path }, 'access log: cannot open the file; no access log until the policy names a writable path');
        return undefined;
      }
    }
    const dest = pino.destination({
      dest: path === 'stdout' ? 1 : path, sync: false, maxLength: MAX_BUFFER_BYTES, minLength: BATCH_BYTES, periodicFlush: FLUSH_MS,
    });
    dest.on('error', (err: Error) => this.log.error({ err: err.message, path }, 'access log: write failed'));
    dest.on('drop', () => {
      // One warning per thousand lines dropped: the log itself must not become the flood.
      if (this.dropped++ % 1000 === 0) this.log.warn({ path, dropped: this.dropped }, 'access log: destination too slow, dropping lines');
    });
    return dest;
  }

  private write(dest: Destination, entry: Record<string, unknown>): void {
    dest.write(`${JSON.stringify(entry)}\n`);
  }

  private closeDestination(): void {
    const dest = this.dest;
    this.dest = undefined;
    // Flushes, then closes a file (sonic-boom never closes stdout).
    dest?.end();
  }
}
