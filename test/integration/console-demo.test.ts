// `detour demo` can be watched in the operator console: the URL it prints first
// opens a page that follows the fire, the drain, the held failback and the
// phased return live. Set CONSOLE_DEMO_SCREENSHOT=FILE to keep a screenshot of
// the page during the failover (nothing is written otherwise).
import t from 'tap';
import { runDemo } from '../../src/demo/run-demo.js';
import { launchBrowser, waitForText } from '../helpers/browser.js';

// What the page shows, checked by the test every 100ms while the demo runs.
// --fast keeps some states for well under a second, and a loaded machine may
// delay a poll past them; a state the page may miss is also looked for in the
// page's event list, which keeps it.
const phases = {
  'building dark': { selector: '#buildings [data-key="gedung-cyber-1"]', pattern: /dark: its site is down/, event: /siteDown: site cyber1 down/ },
  'route failed over to serpong': { selector: '#routes tr[data-key="border-control"]', pattern: /failed over.*serpong/, event: /failedOver: route border-control moved cyber1 -> serpong/ },
  'building drained': { selector: '#buildings [data-key="gedung-cyber-1"]', pattern: /drained; /, event: /drained: building gedung-cyber-1 drained/ },
  'drain in the audit trail': { selector: '#audit', pattern: /drain building gedung-cyber-1: ok \(200\) building gedung-cyber-1 drained/, event: null },
  'failback held by the integrity gate': { selector: '#routes', pattern: /integrity mismatch: checksum dead0042 \(cyber1\) != c0ffee01 \(serpong\)/, event: /failbackBlocked: .*integrity mismatch: checksum dead0042/ },
  'ramping back': { selector: '#routes', pattern: /ramping \d+%/, event: /failbackStarted: route border-control ramping/ },
} as const;

t.test('the demo prints the console URL first and the story plays on the page', async (t) => {
  // The browser is up before the demo starts: --fast moves from act to act in
  // under a second, and the page must be watching before the fire.
  const browser = await launchBrowser(t);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  t.teardown(() => context.close());
  const page = await context.newPage();

  const lines: string[] = [];
  let announce: (url: string) => void = () => {};
  const announced = new Promise<string>((resolve) => { announce = resolve; });
  let finished = false;
  const demo = runDemo({
    fast: true,
    plain: true,
    out: (line) => {
      lines.push(line);
      const m = /^Operator console: (http:\/\/127\.0\.0\.1:\d+\/) /.exec(line);
      if (m) announce(m[1]!);
    },
  }).finally(() => { finished = true; });
  // A failing demo must fail the test, not leave it waiting for a URL.
  const url = await Promise.race([announced, demo.then(() => { throw new Error(`demo ended without a console URL: ${lines[0]}`); })]);
  t.match(lines[0], /^Operator console: /, 'the console URL is the first line');
  await page.goto(url);

  const seen = new Set<string>();
  let shot = false;
  while (!finished) {
    const texts = await page.evaluate((sels) => sels.map((sel) => (globalThis as any).document.querySelector(sel)?.textContent ?? ''),
      [...Object.values(phases).map((p) => p.selector), '#events']);
    const events = texts[texts.length - 1]!;
    Object.entries(phases).forEach(([name, p], i) => {
      if (p.pattern.test(texts[i]!)) seen.add(name);
      else if (p.event !== null && p.event.test(events)) seen.add(`${name} (in the events)`);
    });
    if (!shot && seen.has('route failed over to serpong') && process.env.CONSOLE_DEMO_SCREENSHOT) {
      shot = true;
      await page.screenshot({ path: process.env.CONSOLE_DEMO_SCREENSHOT, fullPage: true });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const name of Object.keys(phases)) {
    t.ok(seen.has(name) || seen.has(`${name} (in the events)`), `the page showed: ${name}${seen.has(name) ? '' : ' (in its events)'}`);
  }

  const summary = await demo;
  // Zero failed client requests is the demo's own promise, checked by cli.test.ts;
  // here the page is under test, so the figure is only reported.
  t.comment(`demo: ${summary.requests} client requests, ${summary.failedRequests} failed, fire to backup ${summary.detectionMs} ms`);
  t.same(summary.recoveryOrder, ['border-control', 'ceir', 'passport']);
  await waitForText(page, '#connection', /NOT LIVE/, 10_000);
  t.pass('the page notices the demo ended');
});
