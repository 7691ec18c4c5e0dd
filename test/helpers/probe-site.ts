// A tiny scripted site for probe and integrity tests: an HTTP server on
// 127.0.0.1:0 whose answer is switched at runtime, counting what it sees.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type SiteBehaviour =
  | { readonly status: number; readonly body?: string | Buffer; readonly delayMs?: number }
  /** Accept the request and never answer: a hung building. */
  | 'hang';

export interface ProbeSite {
  readonly url: string;
  /** Request paths, in arrival order. */
  readonly paths: string[];
  /** Requests being answered right now, and the most ever at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Client connections currently open. */
  readonly openSockets: number;
  set(behaviour: SiteBehaviour): void;
  close(): Promise<void>;
}

export async function startProbeSite(initial: SiteBehaviour): Promise<ProbeSite> {
  let behaviour = initial;
  let inFlight = 0;
  let maxInFlight = 0;
  let openSockets = 0;
  const paths: string[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let counted = true;
    const done = (): void => {
      if (!counted) return;
      counted = false;
      inFlight -= 1;
    };
    res.on('close', done);
    const b = behaviour;
    if (b === 'hang') return;
    const answer = (): void => {
      res.writeHead(b.status, { 'content-type': 'text/plain' });
      res.end(b.body ?? '');
    };
    if (b.delayMs === undefined) {
      answer();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, b.delayMs);
    timers.add(timer);
  });
  server.on('connection', (socket) => {
    openSockets += 1;
    socket.on('close', () => { openSockets -= 1; });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    paths,
    get inFlight() { return inFlight; },
    get maxInFlight() { return maxInFlight; },
    get openSockets() { return openSockets; },
    set(next) { behaviour = next; },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A loopback url nothing listens on (a port just released). */
export async function refusedUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Polls a condition every few ms, failing with `what` after timeoutMs. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
