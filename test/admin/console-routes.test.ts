// The console's server side: the page and its files on the admin port, their
// security headers, the traffic counters, and the static rules that keep the
// page safe under its CSP (no inline script or style, no markup from data).
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { consoleContentSecurityPolicy, consoleEndpoints, consoleSecurityHeaders } from '../../src/admin/console-routes.js';
import { startTestServer } from './start-server.js';

const assetsDir = new URL('../../src/admin/console/', import.meta.url);
const readAsset = (file: string) => readFile(new URL(file, assetsDir), 'utf8');

const files = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/console/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/console/model.js', file: 'model.js', type: 'text/javascript; charset=utf-8' },
  { path: '/console/console.css', file: 'console.css', type: 'text/css; charset=utf-8' },
  { path: '/console/favicon.svg', file: 'favicon.svg', type: 'image/svg+xml' },
];

t.test('GET / and the console files answer with their content and the security headers, no token needed', async (t) => {
  const s = await startTestServer(t);
  for (const f of files) {
    const res = await fetch(`${s.url}${f.path}`);
    t.equal(res.status, 200, `${f.path} 200`);
    t.equal(res.headers.get('content-type'), f.type, `${f.path} content type`);
    t.equal(await res.text(), await readAsset(f.file), `${f.path} serves ${f.file}`);
    for (const [name, value] of Object.entries(consoleSecurityHeaders)) t.equal(res.headers.get(name), value, `${f.path} ${name}`);
    t.equal(res.headers.get('x-content-type-options'), 'nosniff');
    t.equal(res.headers.get('cache-control'), 'no-store');
  }
  const head = await fetch(`${s.url}/`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD / works for monitors');
  t.equal(head.headers.get('content-security-policy'), consoleContentSecurityPolicy);
  t.equal(await head.text(), '');
});

t.test('the CSP allows only same-origin script, style and fetches', async (t) => {
  const directives = new Map(consoleContentSecurityPolicy.split('; ').map((d) => [d.split(' ')[0]!, d.split(' ').slice(1)]));
  t.same(directives.get('default-src'), ["'none'"]);
  t.same(directives.get('script-src'), ["'self'"], 'no inline script, no eval');
  t.same(directives.get('style-src'), ["'self'"], 'no inline style');
  t.same(directives.get('connect-src'), ["'self'"], 'fetches go to the admin port only');
  t.same(directives.get('frame-ancestors'), ["'none'"], 'cannot be framed (clickjacking an approve button)');
  t.same(directives.get('form-action'), ["'none'"], 'no form posts anywhere');
  t.same(directives.get('base-uri'), ["'none'"]);
});

t.test('other methods on console paths are refused; unknown console paths are 404', async (t) => {
  const s = await startTestServer(t);
  const post = await fetch(`${s.url}/`, { method: 'POST', body: '{}' });
  t.equal(post.status, 405);
  t.equal(post.headers.get('allow'), 'GET, HEAD');
  t.equal((await fetch(`${s.url}/console/other.js`)).status, 404);
  t.equal((await fetch(`${s.url}/console/model.d.ts`)).status, 404, 'only the listed files are served');
  t.equal((await fetch(`${s.url}/console/..%2Fconsole-routes.ts`)).status, 404, 'no path traversal');
  t.equal(s.control.calls.length, 0, 'the page costs the control nothing');
});

t.test('GET /console/traffic sums the exposition per route', async (t) => {
  const s = await startTestServer(t);
  const res = await fetch(`${s.url}/console/traffic`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/json');
  t.equal(res.headers.get('content-security-policy'), consoleContentSecurityPolicy);
  const body = (await res.json()) as { timeMs: number; routes: unknown[] };
  t.same(body.routes, [], 'the fake gateway has served no request');
  t.ok(Math.abs(body.timeMs - Date.now()) < 60_000, 'stamped with the gateway clock');
  t.same(s.control.calls.map((c) => c.method), ['metrics'], 'read from the metrics exposition');

  const [traffic] = consoleEndpoints({
    metrics: async () => ({ body: 'detour_requests_total{route="ceir",site="cyber1",code="200"} 9\ndetour_requests_total{route="ceir",site="cyber1",code="500"} 1\n' }),
    now: () => 42,
  }).filter((e) => e.template.join('/') === 'console/traffic');
  const reply = await traffic!.run();
  t.same(JSON.parse(reply.body), { timeMs: 42, routes: [{ route: 'ceir', requests: 10, errors: 1 }] });

  s.control.failWith = new Error('registry exploded');
  const failed = await fetch(`${s.url}/console/traffic`);
  t.equal(failed.status, 500, 'a failing exposition is a 500, not a crash');
  t.match(await failed.json(), { code: 'internal' });
});

t.test('a missing console file answers 500 naming it, and is read again once it is back', async (t) => {
  const dir = t.testdir({});
  const endpoints = consoleEndpoints({ metrics: async () => ({ body: '' }), assetsDir: new URL(`file://${dir}/`) });
  const page = endpoints.find((e) => e.template.join('/') === '')!;
  await t.rejects(page.run(), { status: 500, message: 'console file index.html is missing from this installation' });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${dir}/index.html`, '<!doctype html><title>back</title>');
  t.equal((await page.run()).body, '<!doctype html><title>back</title>', 'a failed read is not cached');
  await writeFile(`${dir}/index.html`, 'changed');
  t.equal((await page.run()).body, '<!doctype html><title>back</title>', 'a good read is cached');
});

t.test('the page is written for its CSP: no inline script, style or handlers; relative URLs only', async (t) => {
  const html = await readAsset('index.html');
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  t.equal(scripts.length, 1, 'one script');
  t.match(scripts[0]![1], /type="module" src="console\/app\.js"/, 'loaded from a same-origin, relative URL');
  t.equal(scripts[0]![2]!.trim(), '', 'with no inline code');
  t.notMatch(html, /\son[a-z]+\s*=/i, 'no inline event handlers');
  t.notMatch(html, /\sstyle\s*=|<style\b/i, 'no inline style');
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'no absolute or other-origin URLs (works over admin.tls and behind a prefix)');
});

t.test('the script renders data as text: no HTML sinks, no eval, no storage', async (t) => {
  for (const file of ['app.js', 'model.js']) {
    const code = await readAsset(file);
    for (const sink of [/\.innerHTML\b/, /\.outerHTML\b/, /insertAdjacentHTML/, /document\.write/, /\beval\s*\(/, /new Function\b/, /localStorage/, /sessionStorage/, /document\.cookie/, /indexedDB/]) {
      t.notMatch(code, sink, `${file} has no ${sink.source}`);
    }
  }
  const app = await readAsset('app.js');
  t.notMatch(app, /setAttribute\(\s*['"](href|src|style|on\w+)['"]/, 'no URL, style or handler attributes from data');
  t.notMatch(app, /fetch\(\s*['"`]\//, 'fetches use relative URLs');
});
