// The operator console's share of the admin port: the page at `/`, its script
// and style sheet (plain files under ./console/, copied beside the compiled
// code by `npm run build`), and `/console/traffic`, the counters the page
// samples to draw request and error rates. The page itself reads /status and
// calls the ordinary admin API; nothing here can change the gateway.
//
// Safe by construction: every console answer carries a Content-Security-Policy
// that allows only same-origin script, style and fetches (no inline script, no
// eval, no framing, no form posts), and the script renders every value as text.
import { readFile } from 'node:fs/promises';
import { internalError } from '../errors.js';
import { summarizeTraffic } from './console-traffic.js';

export interface ConsoleReply {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface ConsoleEndpoint {
  /** Name in logs. */
  readonly action: string;
  /** Path segments as the admin server matches them (`['']` is `/`). */
  readonly template: readonly string[];
  run(): Promise<ConsoleReply>;
}

export interface ConsoleDeps {
  /** The Prometheus exposition, as /metrics serves it. */
  metrics(): Promise<{ readonly body: string }>;
  now?: () => number;
  /** Where index.html, app.js, model.js, console.css and favicon.svg live (default: ./console/ beside this module). */
  readonly assetsDir?: URL;
}

export const consoleContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers on every console answer; the admin server adds no-store and nosniff to all its answers. */
export const consoleSecurityHeaders: Readonly<Record<string, string>> = {
  'content-security-policy': consoleContentSecurityPolicy,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const assets = [
  { action: 'console', template: [''], file: 'index.html', contentType: 'text/html; charset=utf-8' },
  { action: 'console', template: ['console', 'app.js'], file: 'app.js', contentType: 'text/javascript; charset=utf-8' },
  { action: 'console', template: ['console', 'model.js'], file: 'model.js', contentType: 'text/javascript; charset=utf-8' },
  { action: 'console', template: ['console', 'console.css'], file: 'console.css', contentType: 'text/css; charset=utf-8' },
  { action: 'console', template: ['console', 'favicon.svg'], file: 'favicon.svg', contentType: 'image/svg+xml' },
] as const;

export function consoleEndpoints(deps: ConsoleDeps): readonly ConsoleEndpoint[] {
  const dir = deps.assetsDir ?? new URL('./console/', import.meta.url);
  const now = deps.now ?? Date.now;
  // Read once, on first use: a console nobody opens costs nothing, and a broken
  // install answers 500 naming the missing file instead of stopping the gateway.
  const cache = new Map<string, Promise<string>>();
  const load = (file: string): Promise<string> => {
    let text = cache.get(file);
    if (text === undefined) {
      text = readFile(new URL(file, dir), 'utf8');
      cache.set(file, text);
      text.catch(() => cache.delete(file));
    }
    return text;
  };

  const files: ConsoleEndpoint[] = assets.map((a) => ({
    action: a.action,
    template: a.template,
    async run() {
      let body: string;
      try {
        body = await load(a.file);
      } catch (e) {
        throw internalError(`console file ${a.file} is missing from this installation`, e);
      }
      return { status: 200, body, contentType: a.contentType, headers: consoleSecurityHeaders };
    },
  }));

  const traffic: ConsoleEndpoint = {
    // Named like /metrics because it is a view of it: whatever guards the
    // metrics (admin.publicRead: false) guards these counters too.
    action: 'metrics',
    template: ['console', 'traffic'],
    async run() {
      const { body } = await deps.metrics();
      return {
        status: 200,
        body: JSON.stringify(summarizeTraffic(body, now())),
        contentType: 'application/json',
        headers: consoleSecurityHeaders,
      };
    },
  };
  return [...files, traffic];
}
