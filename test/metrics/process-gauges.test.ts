// The process gauges: heap in use, and the event-loop delay p99 over closed
// windows, so several scrapers see the same values instead of resetting the
// histogram under one another.
import t from 'tap';
import { Registry } from 'prom-client';
import { LOOP_DELAY_WINDOW_MS, createMetrics } from '../../src/metrics/metrics.js';

async function gauge(registry: Registry, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await registry.metrics());
  if (!m) throw new Error(`${name} not exported`);
  return Number(m[1]);
}

function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) { /* hold the event loop */ }
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 30));

t.test('heap in use is exported in bytes', async (t) => {
  const registry = new Registry();
  const m = createMetrics(registry);
  t.teardown(() => m.close());
  const heap = await gauge(registry, 'detour_heap_used_bytes');
  t.ok(heap > 1_000_000 && heap < 4e9, `heap ${heap} bytes`);
});

t.test('the heap right after a full collection: 0 until one, then the live heap', async (t) => {
  const registry = new Registry();
  const m = createMetrics(registry);
  t.teardown(() => m.close());
  t.equal(await gauge(registry, 'detour_heap_after_gc_bytes'), 0, 'no full collection seen yet');
  // Allocate enough to make V8 run a full collection (tap runs without --expose-gc).
  // Kept objects reach the old space, whose growth is what starts a full collection.
  const keep: unknown[][] = [];
  for (let round = 0; round < 400 && (await gauge(registry, 'detour_heap_after_gc_bytes')) === 0; round++) {
    keep.push(Array.from({ length: 50_000 }, (_, i) => ({ i, s: `x${i}` })));
    await new Promise((r) => setImmediate(r));
  }
  const after = await gauge(registry, 'detour_heap_after_gc_bytes');
  t.ok(after > 1_000_000 && after < 4e9, `after a full collection: ${after} bytes (kept ${keep.length})`);
});

t.test('event-loop delay p99: the open window until one closes, then the last closed window', async (t) => {
  const realNow = Date.now;
  let offsetMs = 0;
  Date.now = () => realNow() + offsetMs;
  t.teardown(() => { Date.now = realNow; });
  const registry = new Registry();
  const m = createMetrics(registry);
  t.teardown(() => m.close());

  await tick(); // the histogram's timer is running
  for (let i = 0; i < 3; i++) {
    block(400);
    await tick(); // the histogram records its late timer after each block
  }
  const open = await gauge(registry, 'detour_event_loop_delay_p99_seconds');
  t.ok(open >= 0.3, `the open window shows the 400 ms blocks (${open} s)`);

  offsetMs += LOOP_DELAY_WINDOW_MS;
  const closed = await gauge(registry, 'detour_event_loop_delay_p99_seconds');
  t.equal(closed, open, 'the scrape that closes the window reports it');
  await tick();
  t.equal(await gauge(registry, 'detour_event_loop_delay_p99_seconds'), closed, 'later scrapes in the next window see the same closed window');

  offsetMs += LOOP_DELAY_WINDOW_MS;
  await tick();
  const quiet = await gauge(registry, 'detour_event_loop_delay_p99_seconds');
  t.ok(quiet < 0.2, `a window without a block reports a small delay (${quiet} s)`);
});
