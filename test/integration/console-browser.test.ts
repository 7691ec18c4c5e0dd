// The operator console in a real browser (Debian's chromium through
// playwright-core) against a real gateway and fake sites on loopback: the page
// shows buildings and routes live, a drain clicked with the token reaches the
// gateway, refusals read as the API words them, markup in free text stays text,
// and the strict CSP leaves the page working. Set CONSOLE_SCREENSHOT=FILE to
// keep a screenshot of the page after the failover (nothing is written otherwise).
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { startRig, TOKEN, type Rig } from '../helpers/gateway.js';
import { Load, request } from '../helpers/load.js';
import { waitFor } from '../helpers/wait.js';
import { launchBrowser, waitForText } from '../helpers/browser.js';
import { consoleContentSecurityPolicy } from '../../src/admin/console-routes.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { loadPolicyFile } from '../../src/config/load-policy.js';
import { startFakeSite } from '../helpers/fake-site.js';
import { makeCa } from '../helpers/tls.js';

// Callbacks passed to page.evaluate run in the browser; the project compiles without the DOM lib.
declare const document: any;
declare const window: any;
declare const localStorage: any;
declare const sessionStorage: any;

// A generous probe timeout: on a loaded machine a slow answer must not take the
// backup down too (a killed site refuses connections, which is seen at once).
const sites = [
  { name: 'cyber1', building: 'gedung-cyber-1', probe: { timeoutMs: 1000 } },
  { name: 'serpong', building: 'serpong-dc', probe: { timeoutMs: 1000 } },
];
const verify = { path: '/_integrity', field: 'checksum', intervalMs: 50, timeoutMs: 200 };
const markup = '<img src=x onerror="window.__xss=1">';
/** Site values longer than 16 characters are shortened in reasons; this one is shown whole. */
const shortMarkup = '<svg onload=f()>';

const building = (name: string) => `#buildings [data-key="${name}"]`;
const routeRow = (name: string) => `#routes tr[data-key="${name}"]`;
const latestMessage = '#messages li:first-child';

async function startConsoleRig(t: Test): Promise<Rig> {
  return startRig(t, sites, () => ({
    routes: [
      { name: 'ceir', sites: ['cyber1', 'serpong'], priority: 1, failback: { holdDownMs: 200, verify, ramp: [100], stepMs: 100 } },
      { name: 'border-control', sites: ['cyber1', 'serpong'], priority: 2, failback: { holdDownMs: 200, ramp: [100], stepMs: 100 } },
      { name: 'visa', sites: ['cyber1', 'serpong'], priority: 3, failover: { mode: 'manual' }, failback: { holdDownMs: 200, ramp: [100], stepMs: 100 } },
    ],
  }));
}

// One browser for the file; each test has its own context (fresh profile state),
// opened before its gateway so that it is closed first: a gateway closing under
// a polling page would wait out its admin grace period.
const browser = await launchBrowser(t);

async function newPage(t: Test, options: Parameters<typeof browser.newContext>[0] = { viewport: { width: 1280, height: 900 } }): Promise<Page> {
  const context = await browser.newContext(options);
  t.teardown(() => context.close());
  return context.newPage();
}

async function openConsole(t: Test, page: Page, rig: Rig): Promise<{ page: Page; problems: string[] }> {
  // A CSP violation, a script error or a missing file would show up here; the
  // page must have none. Refused admin calls (4xx) are expected and checked apart.
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.request().method() === 'GET' && r.status() !== 200) problems.push(`GET ${r.url()}: ${r.status()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
  const response = await page.goto(`${rig.gateway.adminUrl}/`);
  t.equal(response?.status(), 200, 'GET / answers 200');
  t.equal(response?.headers()['content-security-policy'], consoleContentSecurityPolicy, 'the page comes with the strict CSP');
  await waitForText(page, '#connection', /live: updated/);
  return { page, problems };
}

const cookiesAndStorage = (page: Page) =>
  page.evaluate(() => ({ cookie: document.cookie, local: localStorage.length, session: sessionStorage.length }));

t.test('the console shows the gateway live and drains a building with the token', async (t) => {
  const blank = await newPage(t);
  const rig = await startConsoleRig(t);
  const { page, problems } = await openConsole(t, blank, rig);

  await waitForText(page, building('gedung-cyber-1'), /✓ up/);
  await waitForText(page, `${building('gedung-cyber-1')} [data-key="cyber1"]`, /cyber1.*up/);
  await waitForText(page, routeRow('ceir'), /on preferred site/);
  t.equal(await page.textContent(`${routeRow('ceir')} .active`), 'cyber1', 'ceir is served from cyber1');
  t.equal(await page.textContent(`${routeRow('ceir')} .weights-text`), 'cyber1 100%', 'weights in words beside the bar');
  t.equal(await page.locator(`${routeRow('ceir')} .bar .part`).count(), 1, 'one bar segment per weighted site');
  const order = await page.locator('#routes tr .name').allTextContents();
  t.same(order, ['ceir', 'border-control', 'visa'], 'routes in priority order');
  t.match(await page.textContent('#store'), /memory: this replica only/, 'the state store in words');
  // /status names this replica (no leader yet): one line, and no leader line.
  t.equal(await page.locator('#replicas li').count(), 1, 'one replica line: this replica');
  t.match(await page.locator('#replicas li').first().textContent(), /this replica: \S+/);

  const drainButton = `${building('gedung-cyber-1')} button.drain`;
  await t.test('without a token the drain is refused as the API words it', async (t) => {
    await page.click(drainButton);
    await waitForText(page, latestMessage, /refused: 401 unauthorized: missing or malformed Authorization header/);
    t.same((await rig.admin('GET', '/status')).json.drains.buildings, [], 'nothing drained');
  });

  await t.test('a wrong token is refused with 403', async (t) => {
    await page.fill('#token-input', 'not-the-token');
    await page.press('#token-input', 'Enter');
    t.equal(await page.inputValue('#token-input'), '', 'the field is cleared once the token is taken');
    await page.click(drainButton);
    await waitForText(page, latestMessage, /drain building gedung-cyber-1 refused: 403 forbidden: invalid admin token/);
    t.same((await rig.admin('GET', '/status')).json.drains.buildings, [], 'nothing drained');
  });

  await t.test('with the token the drain reaches the gateway and the site gets no requests', async (t) => {
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await waitForText(page, '#token-state', /Token entered \(kept in memory only\)/);
    await page.click(drainButton);
    await waitForText(page, latestMessage, /drain building gedung-cyber-1: building gedung-cyber-1 drained/);
    t.same((await rig.admin('GET', '/status')).json.drains.buildings, ['gedung-cyber-1'], 'the gateway has the drain');
    await waitForText(page, building('gedung-cyber-1'), /drained; up/);
    await waitForText(page, building('gedung-cyber-1'), /building drained since \d\d:\d\d:\d\d/);
    await waitForText(page, `${building('gedung-cyber-1')} [data-key="cyber1"] .drained`, /drained by building/);
    await waitForText(page, routeRow('ceir'), /failed over/);
    t.equal(await page.textContent(`${routeRow('ceir')} .active`), 'serpong');

    const before = rig.sites.cyber1!.counts.traffic;
    for (let i = 0; i < 10; i++) t.equal((await request(`${rig.gateway.proxyUrl}/x`, undefined)).site, 'serpong');
    t.equal(rig.sites.cyber1!.counts.traffic, before, 'the drained site received no requests');

    const undrain = `${building('gedung-cyber-1')} button.undrain`;
    t.ok(await page.isVisible(undrain), 'an undrain button replaces the drain button');
    t.notOk(await page.isVisible(drainButton));
    await page.click(undrain);
    await waitForText(page, latestMessage, /undrain building gedung-cyber-1: building gedung-cyber-1 undrained/);
    await waitForText(page, routeRow('ceir'), /on preferred site/, 8000);
    t.same(await cookiesAndStorage(page), { cookie: '', local: 0, session: 0 }, 'the token is in no cookie or storage');
    await waitForText(page, '#audit li:first-child', /undrain building gedung-cyber-1: ok \(200\) building gedung-cyber-1 undrained, from 127\.0\.0\.1/);
    const audit = await page.locator('#audit li').allTextContents();
    t.ok(audit.some((a) => /drain building gedung-cyber-1: ok \(200\) building gedung-cyber-1 drained/.test(a)), 'the drain is in the audit trail');
    t.ok(audit.some((a) => /: refused \(403\) invalid admin token/.test(a)), 'and so is the refused attempt');
  });

  t.same(problems, [], 'no script error or CSP violation on the page');
});

t.test('the page follows a building fire live, keeps markup as text and guards a forced failback', async (t) => {
  const blank = await newPage(t);
  const rig = await startConsoleRig(t);
  const { page, problems } = await openConsole(t, blank, rig);
  await waitForText(page, routeRow('ceir'), /on preferred site/);
  const load = new Load({ url: `${rig.gateway.proxyUrl}/x`, workers: 2, pauseMs: 20, maxMs: 60_000 }).start();
  t.teardown(() => load.stop());

  await t.test('the primary dies: building dark and route failed over on the page, without a reload', async (t) => {
    const killedMs = Date.now();
    await rig.sites.cyber1!.kill();
    await waitForText(page, building('gedung-cyber-1'), /dark: its site is down/, 10_000);
    await waitForText(page, routeRow('ceir'), /failed over/, 10_000);
    const shownMs = Date.now() - killedMs;
    t.equal(await page.textContent(`${routeRow('ceir')} .active`), 'serpong', await page.textContent(routeRow('ceir')) ?? '');
    t.ok(shownMs <= 2000, `the page showed the failover ${shownMs}ms after the kill (at most 2000ms)`);
    await waitForText(page, '#events', /failedOver/);
    await waitForText(page, routeRow('visa'), /failover awaiting approval/);
    t.match(await page.textContent(`${routeRow('visa')} .notes`), /failover cyber1 → serpong waits for an operator's approval/);
  });

  await t.test('a pending manual failover is approved from its row', async (t) => {
    await page.fill('#token-input', TOKEN);
    await page.press('#token-input', 'Enter');
    await page.click(`${routeRow('visa')} [data-action="failover"]`);
    await waitForText(page, latestMessage, /approve failover of visa: route visa failed over to serpong/);
    await waitForText(page, routeRow('visa'), /failed over/);
    t.equal(await page.textContent(`${routeRow('visa')} .active`), 'serpong');
    t.notOk(await page.isVisible(`${routeRow('visa')} [data-action="failover"]`), 'the button goes once nothing is pending');
  });

  await t.test('request and error rates per route are drawn from sampled counters', async (t) => {
    await waitForText(page, '#traffic [data-key="ceir"] .now', /now \d+(\.\d)? req\/s/, 10_000);
    const points = await page.getAttribute('#traffic [data-key="ceir"] polyline.requests', 'points');
    t.match(points, /^[\d.]+,[\d.]+( [\d.]+,[\d.]+)*$/, 'the request-rate line has points');
    t.match(await page.textContent('#traffic [data-key="ceir"] .now'), /% errors|no requests/, 'the error share in words');
  });

  if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT, fullPage: true });

  await t.test('markup in reasons and event messages shows as text', async (t) => {
    rig.sites.cyber1!.setIntegrity({ checksum: shortMarkup });
    rig.sites.serpong!.setIntegrity({ checksum: '9c2e' });
    await rig.sites.cyber1!.revive();
    const want = `integrity mismatch: checksum ${shortMarkup} (cyber1) != 9c2e (serpong)`;
    // The reason passes through hold-down and verifying first; wait for the mismatch itself.
    await waitForText(page, `${routeRow('ceir')} .detail`, new RegExp(want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 10_000);
    t.match(await page.textContent(`${routeRow('ceir')} .detail`), want, 'the reason shows the markup literally');
    t.equal(await page.locator('#routes svg').count(), 0, 'and made no element of it');
    // A failed reload's message quotes the policy file: free text an operator did not write for a browser.
    rig.gateway.control.recordEvent({ type: 'policyReloadFailed', message: `policy line <script>window.__xss=2</script>${markup}` });
    await waitForText(page, '#events', /policyReloadFailed: policy line <script>/);
    t.ok((await page.textContent('#events'))?.includes(markup), 'the event message shows the markup literally');
    t.equal(await page.locator('img').count(), 0, 'no element was made from the markup');
    t.equal(await page.locator('main script').count(), 0);
    t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'no handler ran');
  });

  await t.test('a forced failback needs a second confirmation', async (t) => {
    const force = `${routeRow('ceir')} [data-action="force-failback"]`;
    await page.waitForSelector(force, { state: 'visible', timeout: 10_000 });
    await page.click(force);
    t.ok(await page.isVisible('#force-dialog'), 'the confirmation opens');
    t.match(await page.textContent('#force-text'), /route ceir.*skips the hold-down, integrity and priority gates/);
    t.equal(await page.evaluate(() => document.activeElement?.id), 'force-cancel', 'focus starts on Cancel');
    await page.keyboard.press('Escape');
    t.notOk(await page.isVisible('#force-dialog'), 'Escape closes it');
    t.equal((await rig.admin('GET', '/status')).json.routes.find((r: { name: string }) => r.name === 'ceir').active, 'serpong', 'nothing forced');

    await page.click(force);
    await page.click('#force-confirm');
    await waitForText(page, latestMessage, /FORCED failback of ceir: failback of ceir approved/);
    await waitFor(async () => (await rig.admin('GET', '/status')).json.events.some((e: { type: string }) => e.type === 'failbackForced'),
      { timeoutMs: 5000, message: 'failbackForced event' });
    await waitForText(page, '#audit', /failback route ceir \(forced\): ok \(200\) failback of ceir approved/);
  });

  await t.test('pin and unpin from the row, and reload', async (t) => {
    await page.selectOption(`${routeRow('border-control')} select.pin-site`, 'serpong');
    await page.click(`${routeRow('border-control')} [data-action="pin"]`);
    await waitForText(page, latestMessage, /pin border-control to serpong: route border-control pinned to serpong/);
    await waitForText(page, routeRow('border-control'), /pinned to serpong/);
    await page.click(`${routeRow('border-control')} [data-action="unpin"]`);
    await waitForText(page, latestMessage, /unpin border-control: route border-control unpinned/);
    await page.click('#reload-button');
    // The test policy has no file to re-read: the gateway's refusal is shown as it words it.
    await waitForText(page, latestMessage, /reload policy refused: 422 invalid policy: policy has 1 problem\(s\); keeping the last good policy/);
    t.match(await page.textContent(latestMessage), /test-policy\.yaml/, 'with the problem line naming the file');
  });

  t.same(problems, [], 'no script error or CSP violation on the page');
});

t.test('keyboard and 200% zoom', async (t) => {
  // 200% zoom of a 1280px wide window: CSS pixels halve, device pixels double.
  const page = await newPage(t, { viewport: { width: 640, height: 450 }, deviceScaleFactor: 2 });
  const rig = await startConsoleRig(t);
  await page.goto(`${rig.gateway.adminUrl}/`);
  await waitForText(page, routeRow('ceir'), /on preferred site/);
  t.equal(await page.textContent('#announcer'), 'Live: the page follows the gateway.');
  const wide = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll('body *')]
      .filter((e: any) => e.getBoundingClientRect().right > width + 1 && !e.parentElement.closest('.table-wrap'))
      .map((e: any) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)}px)`);
  });
  t.same(wide, [], 'nothing sticks out sideways at 200% zoom (the routes table scrolls in its own box)');
  t.equal(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), 0, 'the page does not scroll sideways');

  await page.keyboard.press('Tab');
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to routes', 'the first Tab reaches the skip link');
  await page.keyboard.press('Tab');
  t.equal(await page.evaluate(() => document.activeElement?.id), 'token-input', 'then the token field');
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await waitForText(page, '#token-state', /Token entered/);

  // Reach the building's drain button by keyboard alone, and press it.
  const target = `${building('serpong-dc')} button.drain`;
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate((sel) => document.activeElement === document.querySelector(sel), target);
  }
  t.ok(reached, 'the drain button is reachable with Tab');
  // The poll re-renders every second; the focused button must stay focused.
  await waitForText(page, '#connection', /live: updated/);
  const updated = await page.textContent('#connection');
  await waitFor(async () => (await page.textContent('#connection')) !== updated, { timeoutMs: 5000, message: 'next poll' });
  t.ok(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), target), 'focus survives a poll');
  await page.keyboard.press('Enter');
  await waitForText(page, latestMessage, /drain building serpong-dc: building serpong-dc drained/);
  t.same((await rig.admin('GET', '/status')).json.drains.buildings, ['serpong-dc']);
  await waitForText(page, building('serpong-dc'), /drained/);

  await t.test('when the gateway is gone the page says NOT LIVE and keeps the last state', async (t) => {
    await rig.gateway.close();
    await waitForText(page, '#connection', /NOT LIVE: cannot read the gateway's status since \d\d:\d\d:\d\d .*retrying every second/, 10_000);
    t.match(await page.textContent(building('serpong-dc')), /drained/, 'the last known state stays on screen');
    t.equal(await page.textContent('#announcer'), 'Not live: the page cannot read the gateway\'s status.', 'screen readers hear the change once');
    t.equal(await page.getAttribute('#connection', 'role'), null, 'the ticking clock is not a live region');
  });
});

t.test('with admin.publicRead: false the page asks for the token, then goes live with it', async (t) => {
  const page = await newPage(t);
  const rig = await startRig(t, sites, () => ({
    admin: { token: TOKEN, publicRead: false },
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
  }));
  const response = await page.goto(`${rig.gateway.adminUrl}/`);
  t.equal(response?.status(), 200, 'the page itself carries no data and needs no token');
  await waitForText(page, '#connection', /NOT LIVE: .*401 unauthorized.*this gateway shows its status only with the admin token: enter it above/);
  t.equal(await page.locator('#routes tr').count(), 0, 'nothing shown without the token');
  // The gateway locks an address out after 5 failed authentications: the page must stop asking.
  const failures = async () => {
    const text = (await rig.admin('GET', '/metrics')).text;
    return Number(/^detour_admin_auth_failures_total\{reason="missing"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const early = await failures();
  await waitForText(page, '#connection', /NOT LIVE: cannot read the gateway's status since (\d\d:\d\d:\d\d).*/);
  const since = Date.now();
  await waitFor(() => Date.now() - since > 3000, { timeoutMs: 5000, message: 'three poll periods' });
  t.equal(await failures(), early, 'no more unauthenticated reads while the page waits for the token');
  t.ok(early >= 1 && early <= 2, `only the first status and traffic reads were refused (${early})`);
  t.equal((await fetch(`${rig.gateway.adminUrl}/console/traffic`)).status, 401, 'the traffic counters are guarded like /metrics');
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await waitForText(page, '#connection', /live: updated/);
  await waitForText(page, routeRow('ceir'), /on preferred site/);
  await waitForText(page, '#traffic [data-key="ceir"] .now', /now \d+(\.\d)? req\/s|measuring/);
});

t.test('over admin.tls the page works the same: same-origin HTTPS, relative URLs', async (t) => {
  const page = await newPage(t, { viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true });
  const ca = makeCa(t, 'console-ca');
  const cert = ca.issue('admin', { ip: ['127.0.0.1'] });
  const site = await startFakeSite({ name: 'app' });
  t.teardown(() => site.close());
  const file = join(ca.dir, 'policy.yaml');
  writeFileSync(file, [
    'listen: { host: 127.0.0.1, port: 0 }',
    `admin: { host: 127.0.0.1, port: 0, token: ${TOKEN}, tls: { cert: ${cert.cert}, key: ${cert.key} } }`,
    `sites:\n  app: { url: "${site.url}", building: dc-1, health: { interval: 100ms } }`,
    'routes:\n  - { name: app, sites: [app] }', '',
  ].join('\n'));
  const loaded = await loadPolicyFile(file, {});
  if (!loaded.ok) return t.fail(loaded.errors.map((e) => e.message).join('\n'));
  const gateway = await startGateway({ policy: loaded.policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());
  t.match(gateway.adminUrl, /^https:\/\//);

  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('requestfailed', (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
  const response = await page.goto(`${gateway.adminUrl}/`);
  t.equal(response?.headers()['content-security-policy'], consoleContentSecurityPolicy);
  await waitForText(page, '#connection', /live: updated/);
  await waitForText(page, building('dc-1'), /✓ up/);
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await page.click(`${building('dc-1')} button.drain`);
  // The only site: the gateway may refuse (409) or drain; either way the page shows the API's words.
  await waitForText(page, latestMessage, /drain building dc-1(: building dc-1 drained| refused: 409 conflict: .+)/);
  t.same(problems, [], 'script, style and every fetch loaded over HTTPS');
});
