// The operator console's page script: polls the admin API (/status every
// second, /console/traffic every two), renders it, and turns buttons into admin
// calls with the token the operator typed. Rules that keep it safe:
//   - every value from the gateway goes into the page with textContent (or as
//     an attribute that is never a URL or a handler), never as markup;
//   - the token lives in one variable, sent only in the Authorization header
//     of same-origin requests; nothing is written to cookies or storage;
//   - rows are updated in place, so a focused button or an open selection
//     survives the next poll (keyboard use needs that).
// URLs are relative, so the page works on plain loopback and behind admin.tls.
import {
  auditTrail, chartPoints, createTrafficHistory, describeReplicas, describeRoute, describeSite, describeStore,
  drainedSince, formatAge, formatClock, formatErrorShare, formatRate, groupBuildings, newestFirst, refusalText,
  routeActions, routeNotes,
} from './model.js';

const statusEveryMs = 1000;
const trafficEveryMs = 2000;
const requestTimeoutMs = 5000;
const maxMessages = 8;

let token = '';
let lastDoc = null;
let lastOkMs = 0;
let failingSince = null;
const traffic = createTrafficHistory();

const $ = (id) => document.getElementById(id);

// --- element helpers (text only) ----------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'hidden') node.hidden = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** Words with their symbol; the colour class is extra, never the only signal. */
function badge(d) {
  return el('span', { class: `badge tone-${d.tone}` }, el('span', { class: 'symbol', 'aria-hidden': 'true', text: d.symbol }), ` ${d.words}`);
}

function setBadge(node, d) {
  node.replaceChildren(badge(d));
}

/** Keeps one child per key: creates missing ones, updates all in place, removes the rest, keeps order. */
function syncChildren(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of [...container.children]) existing.set(child.dataset.key, child);
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let node = existing.get(key);
    if (node === undefined) {
      node = create(item);
      node.dataset.key = key;
    }
    existing.delete(key);
    update(node, item);
    const wanted = previous === null ? container.firstElementChild : previous.nextElementSibling;
    if (node !== wanted) container.insertBefore(node, wanted);
    previous = node;
  }
  for (const stale of existing.values()) stale.remove();
}

function when(iso, nowMs) {
  const age = formatAge(iso, nowMs);
  return age === '' ? '' : `${formatClock(iso)} (${age})`;
}

// --- admin calls --------------------------------------------------------------

async function request(method, path, body) {
  const headers = {};
  if (token !== '') headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), requestTimeoutMs);
  try {
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', signal: controller.signal,
    });
    return { status: res.status, ok: res.ok, text: await res.text(), retryAfter: res.headers.get('retry-after') };
  } finally {
    clearTimeout(timer);
  }
}

function say(text, tone) {
  const list = $('messages');
  const item = el('li', { class: `message tone-${tone}` },
    el('span', { class: 'symbol', 'aria-hidden': 'true', text: tone === 'ok' ? '✓' : '✕' }),
    el('span', { class: 'time', text: ` ${formatClock(new Date().toISOString())} ` }),
    el('span', { class: 'text', text }));
  list.prepend(item);
  while (list.children.length > maxMessages) list.lastElementChild.remove();
}

async function act(label, method, path, body = {}) {
  let res;
  try {
    res = await request(method, path, body);
  } catch (e) {
    say(`${label}: could not reach the gateway (${e.name === 'AbortError' ? 'timed out' : e.message})`, 'bad');
    return;
  }
  if (res.ok) {
    let message = '';
    try { message = JSON.parse(res.text).message ?? ''; } catch { /* plain answer */ }
    say(`${label}: ${message || 'done'}`, 'ok');
  } else {
    say(`${label} refused: ${refusalText(res.status, res.text)}`, 'bad');
  }
  void pollStatus();
}

const seg = (name) => encodeURIComponent(name);

// --- polling -------------------------------------------------------------------

let statusTimer;
let statusInFlight = false;

// admin.publicRead: false puts reads behind the token, and the gateway limits
// failed authentications per address: a page polling every second without the
// right token would lock its operator out. So a refused read stops the reads
// until a token is entered, and a 429 pauses them for its Retry-After.
let readsRefused = null;
let readsPausedUntilMs = 0;

function readsAllowed() {
  return readsRefused === null && Date.now() >= readsPausedUntilMs;
}

/** True when the answer refuses reads (401, 403, 429); polling then holds back. */
function holdReadsFor(res) {
  if (res.status === 401 || res.status === 403) {
    readsRefused = `${refusalText(res.status, res.text)}; this gateway shows its status only with the admin token: enter it above (until then the page stops asking)`;
    return true;
  }
  if (res.status === 429) {
    const seconds = Number(res.retryAfter);
    readsPausedUntilMs = Date.now() + (Number.isFinite(seconds) && seconds > 0 ? seconds : 30) * 1000;
    return true;
  }
  return false;
}

function readsHeldReason() {
  return readsRefused ?? `the gateway limits this address after failed authentications; reads resume at ${formatClock(new Date(readsPausedUntilMs).toISOString())}`;
}

async function pollStatus() {
  if (statusInFlight) return;
  statusInFlight = true;
  clearTimeout(statusTimer);
  try {
    if (!readsAllowed()) throw new Error(readsHeldReason());
    const res = await request('GET', 'status');
    if (holdReadsFor(res)) throw new Error(readsHeldReason());
    if (!res.ok) throw new Error(refusalText(res.status, res.text));
    lastDoc = JSON.parse(res.text);
    lastOkMs = Date.now();
    failingSince = null;
    render(lastDoc);
  } catch (e) {
    failingSince ??= Date.now();
    showConnection(e.name === 'AbortError' ? 'no answer within 5s' : e.message);
  } finally {
    statusInFlight = false;
    statusTimer = setTimeout(pollStatus, statusEveryMs);
  }
}

async function pollTraffic() {
  try {
    if (!readsAllowed()) return;
    const res = await request('GET', 'console/traffic');
    if (holdReadsFor(res)) return;
    if (res.ok && traffic.add(JSON.parse(res.text))) renderTraffic();
  } catch {
    // The status poll reports an unreachable gateway; the chart just shows a gap.
  } finally {
    setTimeout(pollTraffic, trafficEveryMs);
  }
}

// The clock in #connection changes every second; screen readers hear only changes of liveness.
let announcedLive = null;
function announce(isLive) {
  if (announcedLive === isLive) return;
  announcedLive = isLive;
  $('announcer').textContent = isLive ? 'Live: the page follows the gateway.' : 'Not live: the page cannot read the gateway\'s status.';
}

function showConnection(problem) {
  announce(false);
  const node = $('connection');
  const stale = lastDoc === null ? 'nothing shown yet' : `showing the state as of ${formatClock(new Date(lastOkMs).toISOString())}`;
  node.className = 'connection tone-bad';
  node.replaceChildren(
    el('span', { class: 'symbol', 'aria-hidden': 'true', text: '✕' }),
    el('span', { class: 'words', text: ` NOT LIVE: cannot read the gateway's status since ${formatClock(new Date(failingSince).toISOString())} (${problem}); ${stale}; retrying every second` }),
  );
}

// --- rendering -------------------------------------------------------------------

function render(doc) {
  const nowMs = Date.now();
  $('gateway-line').textContent = `detour ${doc.version} · policy ${doc.policyFile} · route table v${doc.tableVersion}`;
  announce(true);
  const conn = $('connection');
  conn.className = 'connection tone-ok';
  conn.replaceChildren(
    el('span', { class: 'symbol', 'aria-hidden': 'true', text: '✓' }),
    el('span', { class: 'words', text: ` live: updated ${formatClock(new Date(nowMs).toISOString())}` }),
  );
  renderStore(doc);
  renderBuildings(doc, nowMs);
  renderRoutes(doc, nowMs);
  renderLog($('events'), newestFirst(doc.events ?? []).map((e) => ({ time: e.time, text: `${e.type}: ${e.message}` })), nowMs);
  renderLog($('audit'), auditTrail(doc), nowMs);
}

function renderStore(doc) {
  const store = describeStore(doc.stateStore);
  const node = $('store');
  node.className = `tone-${store.tone}`;
  node.replaceChildren(el('span', { class: 'symbol', 'aria-hidden': 'true', text: store.tone === 'bad' ? '✕' : '✓' }), ` State store ${store.words}`);
  const lines = describeReplicas(doc);
  syncChildren($('replicas'), lines, (l) => l, () => el('li'), (li, l) => { li.textContent = l; });
}

function renderBuildings(doc, nowMs) {
  const events = doc.events ?? [];
  syncChildren($('buildings'), groupBuildings(doc.sites ?? []), (b) => b.name, createBuilding, (card, b) => {
    card.querySelector('.name').textContent = b.name;
    const since = b.drained ? drainedSince('building', b.name, events) : undefined;
    setBadge(card.querySelector('.state'), b);
    card.querySelector('.drained-since').textContent = since === undefined ? '' : `building drained since ${when(since, nowMs)}`;
    const drain = card.querySelector('.drain');
    const undrain = card.querySelector('.undrain');
    drain.hidden = b.drained;
    undrain.hidden = !b.drained;
    for (const button of [drain, undrain]) button.dataset.name = b.name;
    drain.setAttribute('aria-label', `Drain building ${b.name}`);
    undrain.setAttribute('aria-label', `Undrain building ${b.name}`);
    syncChildren(card.querySelector('.sites'), b.sites, (s) => s.name, createSite, (li, s) => updateSite(li, s, events, nowMs));
  });
}

function createBuilding() {
  return el('article', { class: 'card building' },
    el('h3', { class: 'name' }),
    el('p', { class: 'state' }),
    el('p', { class: 'drained-since muted' }),
    el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'drain', 'data-action': 'drain-building', text: 'Drain building' }),
      el('button', { type: 'button', class: 'undrain', 'data-action': 'undrain-building', text: 'Undrain building' })),
    el('ul', { class: 'sites plain' }));
}

function createSite() {
  return el('li', { class: 'site' },
    el('div', { class: 'site-head' }, el('strong', { class: 'name' }), ' ', el('span', { class: 'health' }), ' ', el('span', { class: 'drained' })),
    el('div', { class: 'muted since' }),
    el('div', { class: 'muted reason' }),
    el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'drain', 'data-action': 'drain-site', text: 'Drain site' }),
      el('button', { type: 'button', class: 'undrain', 'data-action': 'undrain-site', text: 'Undrain site' })));
}

function updateSite(li, s, events, nowMs) {
  li.querySelector('.name').textContent = s.name;
  setBadge(li.querySelector('.health'), describeSite(s));
  const drainedBy = s.drainedBy ?? [];
  const drained = li.querySelector('.drained');
  if (s.drained) {
    const since = drainedBy.includes('site') ? drainedSince('site', s.name, events) : undefined;
    const by = drainedBy.length > 0 ? ` by ${drainedBy.join(' and ')}` : '';
    setBadge(drained, { tone: 'warn', symbol: '⊘', words: `drained${by}${since ? ` since ${formatClock(since)}` : ''}: no new requests` });
  } else {
    drained.replaceChildren();
  }
  li.querySelector('.since').textContent = `${s.health} since ${when(s.since, nowMs)} · ${s.url}`;
  li.querySelector('.reason').textContent = s.reason ? `reason: ${s.reason}` : '';
  const drain = li.querySelector('.drain');
  const undrain = li.querySelector('.undrain');
  const bySite = drainedBy.includes('site');
  drain.hidden = bySite;
  undrain.hidden = !bySite;
  for (const button of [drain, undrain]) button.dataset.name = s.name;
  drain.setAttribute('aria-label', `Drain site ${s.name}`);
  undrain.setAttribute('aria-label', `Undrain site ${s.name}`);
}

function renderRoutes(doc, nowMs) {
  const routes = [...(doc.routes ?? [])].sort((a, b) => a.priority - b.priority);
  syncChildren($('routes'), routes, (r) => r.name, createRoute, (tr, r) => updateRoute(tr, r, nowMs));
}

function createRoute() {
  const pinSelect = el('select', { class: 'pin-site' });
  return el('tr', { class: 'route' },
    el('td', { class: 'priority' }),
    el('th', { scope: 'row', class: 'name' }),
    el('td', { class: 'state-cell' }, el('div', { class: 'state' }), el('div', { class: 'detail muted' }), el('ul', { class: 'notes plain' })),
    el('td', { class: 'active' }),
    el('td', { class: 'weights' }, el('div', { class: 'bar', 'aria-hidden': 'true' }), el('div', { class: 'weights-text' })),
    el('td', { class: 'since' }),
    el('td', { class: 'actions' },
      el('div', { class: 'pin-row' },
        el('label', { class: 'pin-label' }, el('span', { class: 'sr-only label-text' }), pinSelect),
        el('button', { type: 'button', 'data-action': 'pin', text: 'Pin' })),
      el('button', { type: 'button', 'data-action': 'unpin', text: 'Unpin' }),
      el('button', { type: 'button', 'data-action': 'failback', text: 'Approve failback' }),
      el('button', { type: 'button', 'data-action': 'force-failback', class: 'danger', text: 'Force failback…' }),
      el('button', { type: 'button', 'data-action': 'failover', text: 'Approve failover' })));
}

function updateRoute(tr, r, nowMs) {
  const d = describeRoute(r);
  tr.dataset.name = r.name;
  tr.querySelector('.priority').textContent = String(r.priority);
  tr.querySelector('.name').textContent = r.name;
  setBadge(tr.querySelector('.state'), d);
  tr.querySelector('.detail').textContent = d.detail;
  syncChildren(tr.querySelector('.notes'), routeNotes(r), (n) => n, () => el('li'), (li, n) => { li.textContent = n; });
  tr.querySelector('.active').textContent = r.active ?? 'none';

  const bar = tr.querySelector('.bar');
  bar.replaceChildren(...r.weights.map((w) => {
    const index = Math.max(0, r.sites.indexOf(w.site));
    const part = el('span', { class: `part part-${index % 4}` });
    part.style.width = `${Math.max(0, Math.min(100, w.weight))}%`;
    return part;
  }));
  tr.querySelector('.weights-text').textContent = r.weights.length === 0 ? 'no site serves' : r.weights.map((w) => `${w.site} ${w.weight}%`).join(' · ');
  tr.querySelector('.since').textContent = when(r.since, nowMs);

  const actions = routeActions(r);
  const select = tr.querySelector('.pin-site');
  const options = [...select.options].map((o) => o.value);
  if (options.join('\n') !== r.sites.join('\n')) {
    const keep = select.value;
    select.replaceChildren(...r.sites.map((s) => el('option', { value: s, text: s })));
    if (r.sites.includes(keep)) select.value = keep;
  }
  tr.querySelector('.label-text').textContent = `Site to pin route ${r.name} to`;
  const button = (action) => tr.querySelector(`[data-action="${action}"]`);
  button('pin').setAttribute('aria-label', `Pin route ${r.name} to the chosen site`);
  button('unpin').hidden = !actions.unpin;
  button('unpin').setAttribute('aria-label', `Unpin route ${r.name}`);
  button('failback').hidden = !actions.approveFailback;
  button('failback').setAttribute('aria-label', `Approve failback of route ${r.name}`);
  button('force-failback').hidden = !actions.forceFailback;
  button('force-failback').setAttribute('aria-label', `Force failback of route ${r.name}`);
  button('failover').hidden = !actions.approveFailover;
  button('failover').setAttribute('aria-label', `Approve failover of route ${r.name}`);
}

function renderLog(list, entries, nowMs) {
  if (entries.length === 0) {
    list.replaceChildren(el('li', { class: 'muted', text: '(none yet)' }));
    return;
  }
  list.replaceChildren(...entries.map((e) =>
    el('li', {}, el('span', { class: 'time', text: formatClock(e.time), title: formatAge(e.time, nowMs) }), ' ', el('span', { class: 'text', text: e.text }))));
}

const svgNs = 'http://www.w3.org/2000/svg';
const chart = { width: 300, height: 60 };

function svg(tag, attrs = {}) {
  const node = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function renderTraffic() {
  // Every route of the policy, in priority order, then any the counters name that the status lacks.
  const ordered = [...(lastDoc?.routes ?? [])].sort((a, b) => a.priority - b.priority).map((r) => r.name);
  const names = [...new Set([...ordered, ...traffic.routes().sort()])];
  const endMs = Date.now();
  syncChildren($('traffic'), names, (n) => n, createTrafficCard, (card, name) => {
    const series = traffic.series(name);
    const last = series[series.length - 1];
    card.querySelector('.name').textContent = name;
    card.querySelector('.now').textContent = last === undefined
      ? 'measuring…'
      : `now ${formatRate(last.requestsPerSecond)}, ${formatRate(last.errorsPerSecond, '5xx/s')} (${formatErrorShare(last)})`;
    const max = Math.max(1, ...series.map((p) => p.requestsPerSecond));
    const opts = { ...chart, endMs, windowMs: traffic.windowMs, maxValue: max };
    card.querySelector('.requests').setAttribute('points', chartPoints(series, 'requestsPerSecond', opts));
    card.querySelector('.errors').setAttribute('points', chartPoints(series, 'errorsPerSecond', opts));
    card.querySelector('.peak').textContent = series.length === 0 ? '' : `top of chart: ${formatRate(max)}`;
    card.querySelector('title').textContent = `${name}: requests and 5xx errors per second over the last 5 minutes`;
  });
}

function createTrafficCard() {
  const graph = svg('svg', { viewBox: `0 0 ${chart.width} ${chart.height}`, class: 'chart', role: 'img', preserveAspectRatio: 'none' });
  graph.append(svg('title'), svg('polyline', { class: 'requests', points: '' }), svg('polyline', { class: 'errors', points: '' }));
  return el('article', { class: 'card traffic' }, el('h3', { class: 'name' }), el('p', { class: 'now' }), graph, el('p', { class: 'peak muted' }));
}

// --- actions ----------------------------------------------------------------------

let forceRoute = null;

function onClick(event) {
  const button = event.target.closest('button[data-action]');
  if (button === null) return;
  const action = button.dataset.action;
  const name = button.dataset.name ?? button.closest('tr')?.dataset.name;
  if (name === undefined) return;
  switch (action) {
    case 'drain-building': return void act(`drain building ${name}`, 'POST', 'drain', { building: name });
    case 'undrain-building': return void act(`undrain building ${name}`, 'DELETE', 'drain', { building: name });
    case 'drain-site': return void act(`drain site ${name}`, 'POST', 'drain', { site: name });
    case 'undrain-site': return void act(`undrain site ${name}`, 'DELETE', 'drain', { site: name });
    case 'pin': {
      const site = button.closest('tr').querySelector('.pin-site').value;
      return void act(`pin ${name} to ${site}`, 'POST', `routes/${seg(name)}/pin`, { site });
    }
    case 'unpin': return void act(`unpin ${name}`, 'DELETE', `routes/${seg(name)}/pin`);
    case 'failback': return void act(`approve failback of ${name}`, 'POST', `routes/${seg(name)}/failback`);
    case 'failover': return void act(`approve failover of ${name}`, 'POST', `routes/${seg(name)}/failover`);
    case 'force-failback': return openForce(name, button);
  }
}

let forceOpener = null;

function openForce(route, opener) {
  forceRoute = route;
  forceOpener = opener;
  $('force-text').textContent = `Force the failback of route ${route}? This skips the hold-down, integrity and priority gates: ` +
    'traffic returns to the preferred site even if primary and backup data disagree. The audit log records it as forced.';
  $('force-dialog').showModal();
  $('force-cancel').focus();
}

function closeForce() {
  $('force-dialog').close();
  forceRoute = null;
  forceOpener?.focus();
}

function start() {
  document.addEventListener('click', onClick);
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('token-input');
    token = input.value.trim();
    input.value = '';
    readsRefused = null;
    $('token-state').textContent = token === ''
      ? 'No token entered: the page is read-only and actions will be refused.'
      : 'Token entered (kept in memory only): actions are sent with it.';
    void pollStatus();
  });
  $('token-forget').addEventListener('click', () => {
    token = '';
    $('token-state').textContent = 'Token forgotten: the page is read-only and actions will be refused.';
  });
  $('reload-button').addEventListener('click', () => void act('reload policy', 'POST', 'reload'));
  $('force-confirm').addEventListener('click', () => {
    const route = forceRoute;
    closeForce();
    if (route !== null) void act(`FORCED failback of ${route}`, 'POST', `routes/${seg(route)}/failback`, { force: true });
  });
  $('force-cancel').addEventListener('click', closeForce);
  $('force-dialog').addEventListener('cancel', () => { forceRoute = null; });
  void pollStatus();
  void pollTraffic();
}

start();
