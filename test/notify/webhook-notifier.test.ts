import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { WebhookNotifier, defaultBackoffMs, type WebhookNotifierDeps } from '../../src/notify/webhook-notifier.js';
import type { WebhookPolicy } from '../../src/config/policy.js';
import type { GatewayEvent } from '../../src/admin/admin-control.js';
import { refusedUrl, waitFor } from '../helpers/probe-site.js';

type Cleanup = { teardown(fn: () => unknown): void };

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** Requests whose connection closed before we answered (aborted by the sender). */
  abandoned: number;
  /** Answers for the coming requests in order; 'hang' never answers; after the script: 200. */
  script: Array<number | 'hang'>;
}

async function startReceiver(t: Cleanup, script: Array<number | 'hang'> = []): Promise<Receiver> {
  const receiver: Receiver = { url: '', received: [], abandoned: 0, script };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      const answer = receiver.script.shift() ?? 200;
      if (answer === 'hang') {
        res.on('close', () => { if (!res.writableEnded) receiver.abandoned += 1; });
        return;
      }
      res.writeHead(answer).end('thanks');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return Object.assign(receiver, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/secret-token` });
}

function startNotifier(t: Cleanup, deps: Partial<WebhookNotifierDeps> = {}): { notifier: WebhookNotifier; metrics: Metrics } {
  const metrics = createMetrics(new Registry());
  const notifier = new WebhookNotifier({ logger: silentLogger(), metrics, backoffMs: () => 1, ...deps });
  t.teardown(() => notifier.close(0));
  return { notifier, metrics };
}

function webhook(url: string, over: Partial<WebhookPolicy> = {}): WebhookPolicy {
  return { url, timeoutMs: 1000, retries: 2, headers: {}, ...over };
}

function event(n: number, over: Partial<GatewayEvent> = {}): GatewayEvent {
  return { time: new Date(1_700_000_000_000 + n).toISOString(), type: 'failedOver', message: `event ${n}`, route: 'ceir', from: 'cyber1', to: 'serpong', reason: 'site_down', ...over };
}

async function notifications(metrics: Metrics, result: 'sent' | 'failed'): Promise<number> {
  const { values } = await metrics.notifications.get();
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')));
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

t.test('one POST per event, with the payload and headers of the policy', async (t) => {
  const receiver = await startReceiver(t);
  const { notifier, metrics } = startNotifier(t);
  notifier.update([webhook(receiver.url, { headers: { authorization: 'Bearer abc', 'content-type': 'text/plain' } })]);
  notifier.notify(event(1));
  notifier.notify(event(2, { type: 'siteDown', site: 'cyber1', route: undefined, from: undefined, to: undefined, reason: undefined }));
  await notifier.flushed();
  t.equal(receiver.received.length, 2, 'exactly one POST per event');
  t.same(receiver.received[0]!.body, {
    type: 'failedOver', time: event(1).time, route: 'ceir', from: 'cyber1', to: 'serpong', reason: 'site_down', message: 'event 1', site: null,
  });
  t.same(receiver.received[1]!.body, { type: 'siteDown', time: event(2).time, route: null, from: null, to: null, reason: null, message: 'event 2', site: 'cyber1' });
  t.equal(receiver.received[0]!.headers.authorization, 'Bearer abc', 'policy headers sent');
  t.equal(receiver.received[0]!.headers['content-type'], 'application/json', 'content type is always JSON');
  t.equal(receiver.received[0]!.path, '/hooks/secret-token');
  t.equal(await notifications(metrics, 'sent'), 2);
  t.equal(await notifications(metrics, 'failed'), 0);
});

t.test('every webhook gets every event', async (t) => {
  const a = await startReceiver(t);
  const b = await startReceiver(t);
  const { notifier } = startNotifier(t);
  notifier.update([webhook(a.url), webhook(b.url)]);
  notifier.notify(event(1));
  await notifier.flushed();
  t.same([a.received.length, b.received.length], [1, 1]);
});

t.test('a 500 is retried, then delivered', async (t) => {
  const receiver = await startReceiver(t, [500, 503]);
  const { notifier, metrics } = startNotifier(t);
  notifier.update([webhook(receiver.url, { retries: 2 })]);
  notifier.notify(event(1));
  await notifier.flushed();
  t.equal(receiver.received.length, 3, 'two failures, then success');
  t.ok(receiver.received.every((r) => r.body.message === 'event 1'), 'the same event each time');
  t.equal(await notifications(metrics, 'sent'), 1);
  t.equal(await notifications(metrics, 'failed'), 0);
});

t.test('gives up after `retries` retries and moves on', async (t) => {
  const receiver = await startReceiver(t, [500, 500, 500]);
  const backoffs: number[] = [];
  const { logger, lines } = captureLogger();
  const { notifier, metrics } = startNotifier(t, { logger, backoffMs: (n) => { backoffs.push(n); return 1; } });
  notifier.update([webhook(receiver.url, { retries: 2 })]);
  notifier.notify(event(1));
  notifier.notify(event(2));
  await notifier.flushed();
  t.same(receiver.received.map((r) => r.body.message), ['event 1', 'event 1', 'event 1', 'event 2'], '1 + retries attempts, then the next event');
  t.same(backoffs, [0, 1], 'backoff asked per retry');
  t.equal(await notifications(metrics, 'failed'), 1);
  t.equal(await notifications(metrics, 'sent'), 1);
  const warn = lines.find((l) => l.msg === 'webhook delivery failed');
  t.equal(warn?.error, 'status 500');
  t.equal(warn?.webhook, new URL(receiver.url).origin, 'the secret path is not logged');
});

t.test('network errors are retried and reported in words', async (t) => {
  const { logger, lines } = captureLogger();
  const { notifier, metrics } = startNotifier(t, { logger });
  notifier.update([webhook(await refusedUrl(), { retries: 1 })]);
  notifier.notify(event(1));
  await notifier.flushed();
  t.equal(await notifications(metrics, 'failed'), 1);
  t.equal(lines.find((l) => l.msg === 'webhook delivery failed')?.error, 'connect ECONNREFUSED');
});

t.test('each attempt is bounded by timeoutMs', async (t) => {
  const receiver = await startReceiver(t, ['hang', 'hang']);
  const { logger, lines } = captureLogger();
  const { notifier, metrics } = startNotifier(t, { logger });
  notifier.update([webhook(receiver.url, { timeoutMs: 150, retries: 1 })]);
  const started = performance.now();
  notifier.notify(event(1));
  await notifier.flushed();
  const tookMs = performance.now() - started;
  t.equal(receiver.received.length, 2, 'tried twice');
  t.ok(tookMs >= 290, `waited out both timeouts (${tookMs.toFixed(0)}ms)`);
  t.ok(tookMs < 3000, 'and not much more');
  t.equal(await notifications(metrics, 'failed'), 1);
  t.equal(lines.find((l) => l.msg === 'webhook delivery failed')?.error, 'timeout after 150ms');
  await waitFor(() => receiver.abandoned === 2, 'timed-out requests aborted');
});

t.test('deliveries stay in order per webhook, across retries', async (t) => {
  const receiver = await startReceiver(t, [200, 500, 200, 502, 200]);
  const { notifier } = startNotifier(t);
  notifier.update([webhook(receiver.url, { retries: 3 })]);
  for (let i = 1; i <= 20; i++) notifier.notify(event(i));
  await notifier.flushed();
  const delivered = receiver.received.map((r) => r.body.message).filter((m, i, all) => all[i + 1] !== m);
  t.same(delivered, Array.from({ length: 20 }, (_, i) => `event ${i + 1}`));
});

t.test('notify never blocks and never throws; a full queue drops the oldest', async (t) => {
  const receiver = await startReceiver(t, ['hang']);
  const { logger, lines } = captureLogger();
  const { notifier, metrics } = startNotifier(t, { logger, maxQueued: 3 });
  notifier.update([webhook(receiver.url, { timeoutMs: 10_000, retries: 0 })]);
  const started = performance.now();
  for (let i = 1; i <= 7; i++) notifier.notify(event(i));
  notifier.notify(null as unknown as GatewayEvent);
  t.ok(performance.now() - started < 200, 'returns at once while the receiver hangs');
  await waitFor(() => receiver.received.length === 1, 'first event in flight');
  t.equal(lines.filter((l) => l.msg === 'webhook queue full: dropped the oldest notification').length, 3, 'three dropped');
  t.equal(lines.filter((l) => l.msg === 'webhook notification not queued').length, 1, 'a bad event is logged, not thrown');
  t.equal(await notifications(metrics, 'failed'), 3);
  // Let the receiver answer again: the hung first event times out only at close, so close it.
  await notifier.close(0);
  t.same(receiver.received.map((r) => r.body.message), ['event 1'], 'nothing else sent after close');
  t.equal(await notifications(metrics, 'failed'), 7, 'in-flight and queued counted as failed');
});

t.test('queued events after a drop are delivered in order', async (t) => {
  const receiver = await startReceiver(t);
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  // Hold the first delivery until every event is queued.
  const fetchImpl: typeof fetch = async (input, init) => {
    await gate;
    return fetch(input, init);
  };
  const { notifier } = startNotifier(t, { fetchImpl, maxQueued: 3 });
  notifier.update([webhook(receiver.url)]);
  for (let i = 1; i <= 7; i++) notifier.notify(event(i));
  release();
  await notifier.flushed();
  t.same(receiver.received.map((r) => r.body.message), ['event 1', 'event 5', 'event 6', 'event 7']);
});

t.test('close flushes within the grace, then aborts', async (t) => {
  const receiver = await startReceiver(t, [200, 'hang']);
  const { notifier, metrics } = startNotifier(t);
  notifier.update([webhook(receiver.url, { timeoutMs: 10_000 })]);
  notifier.notify(event(1));
  notifier.notify(event(2));
  notifier.notify(event(3));
  const started = performance.now();
  await notifier.close(150);
  const tookMs = performance.now() - started;
  t.ok(tookMs >= 140 && tookMs < 3000, `waited the grace, then aborted (${tookMs.toFixed(0)}ms)`);
  t.same(receiver.received.map((r) => r.body.message), ['event 1', 'event 2']);
  t.equal(await notifications(metrics, 'sent'), 1);
  t.equal(await notifications(metrics, 'failed'), 2, 'aborted and never-sent events counted as failed');
  await waitFor(() => receiver.abandoned === 1, 'in-flight request aborted');
  notifier.notify(event(4));
  t.equal(receiver.received.length, 2, 'a closed notifier sends nothing');
});

t.test('close resolves at once when everything is delivered', async (t) => {
  const receiver = await startReceiver(t);
  const { notifier } = startNotifier(t);
  notifier.update([webhook(receiver.url)]);
  notifier.notify(event(1));
  const started = performance.now();
  await notifier.close(5000);
  t.ok(performance.now() - started < 2000, 'did not wait out the grace');
  t.equal(receiver.received.length, 1);
});

t.test('update keeps queues of kept webhooks, applies new settings, drops removed ones', async (t) => {
  const a = await startReceiver(t);
  const b = await startReceiver(t, ['hang']);
  const { notifier, metrics } = startNotifier(t);
  notifier.update([webhook(a.url, { headers: { 'x-token': 'old' } }), webhook(b.url, { timeoutMs: 10_000 })]);
  notifier.notify(event(1));
  await waitFor(() => a.received.length === 1 && b.received.length === 1, 'both received');
  notifier.update([webhook(a.url, { headers: { 'x-token': 'new' } })]);
  await waitFor(() => b.abandoned === 1, 'removed webhook aborted');
  notifier.notify(event(2));
  await notifier.flushed();
  t.same(a.received.map((r) => r.headers['x-token']), ['old', 'new'], 'a rotated header applies to the kept queue');
  t.equal(b.received.length, 1, 'removed webhook gets nothing more');
  t.equal(await notifications(metrics, 'failed'), 1, 'the aborted delivery counted as failed');
});

t.test('without webhooks notify is a no-op', async (t) => {
  const { notifier } = startNotifier(t);
  notifier.notify(event(1));
  await notifier.flushed();
  t.pass('nothing to do');
});

t.test('default backoff doubles from 200ms and is capped', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 10].map(defaultBackoffMs), [200, 400, 800, 1600, 3200, 5000, 5000]);
});
