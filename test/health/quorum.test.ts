import t from 'tap';
import { combineHealth } from '../../src/health/quorum.js';
import type { HealthStatus, SiteHealth } from '../../src/health/health-state.js';

const own = (status: HealthStatus, sinceMs = 100): SiteHealth => ({ status, passes: 0, fails: 0, sinceMs, reason: `own ${status}` });
const votes = (...s: Array<'up' | 'down'>) => s.map((status) => ({ status }));

// own verdict, other replicas' verdicts, previous combined verdict -> combined status and sinceMs (now = 5000)
const table: Array<{ name: string; own: SiteHealth; others: Array<{ status: 'up' | 'down' }>; prev?: SiteHealth; status: HealthStatus; sinceMs: number; reason?: RegExp }> = [
  { name: 'alone: own verdict stands', own: own('down'), others: [], status: 'down', sinceMs: 100, reason: /^own down$/ },
  { name: 'one replica sees down, two see up: up', own: own('down'), others: votes('up', 'up'), status: 'up', sinceMs: 5000, reason: /quorum: 1 of 3 replicas see it down \(this replica: down/ },
  { name: 'two of three see down: down even if this one sees up', own: own('up'), others: votes('down', 'down'), status: 'down', sinceMs: 5000, reason: /quorum: 2 of 3/ },
  { name: 'tie keeps the own view (down)', own: own('down'), others: votes('up'), status: 'down', sinceMs: 100 },
  { name: 'tie keeps the own view (up)', own: own('up'), others: votes('down'), status: 'up', sinceMs: 100 },
  { name: 'own unknown: the others decide', own: own('unknown'), others: votes('up', 'down', 'up'), status: 'up', sinceMs: 5000 },
  { name: 'own unknown, others tied: unknown', own: own('unknown'), others: votes('up', 'down'), status: 'unknown', sinceMs: 100 },
  { name: 'agreeing previous verdict keeps its sinceMs', own: own('up', 4000), others: votes('up'), prev: own('up', 1000), status: 'up', sinceMs: 1000 },
  { name: 'quorum flips to up when own has long been up: hold-down counts from the flip', own: own('up', 100), others: votes('up', 'down'), prev: { ...own('down'), sinceMs: 2000 }, status: 'up', sinceMs: 5000 },
  { name: 'others gone (store away): own verdict, but a flip still counts from now', own: own('up', 100), others: [], prev: { ...own('down'), sinceMs: 2000 }, status: 'up', sinceMs: 5000, reason: /^own up$/ },
  { name: 'others gone, same verdict as before: keeps its age', own: own('up', 100), others: [], prev: { ...own('up'), sinceMs: 50 }, status: 'up', sinceMs: 50 },
];

for (const row of table) {
  t.test(row.name, async (t) => {
    const got = combineHealth(row.own, row.others, row.prev, 5000);
    t.equal(got.status, row.status);
    t.equal(got.sinceMs, row.sinceMs);
    if (row.reason) t.match(got.reason, row.reason);
  });
}

// A combined down rests on passive evidence alone only if every down vote does.
const passiveOwn: SiteHealth = { ...own('down'), passiveOnly: true };
const passiveRows: Array<{ name: string; own: SiteHealth; others: Array<{ status: 'up' | 'down'; passiveOnly?: boolean }>; passiveOnly: boolean }> = [
  { name: 'alone, passive down: passive only', own: passiveOwn, others: [], passiveOnly: true },
  { name: 'own passive, another replica probed it down: confirmed', own: passiveOwn, others: [{ status: 'down' }], passiveOnly: false },
  { name: 'own passive, another passive too: passive only', own: passiveOwn, others: [{ status: 'down', passiveOnly: true }], passiveOnly: true },
  { name: 'own up, two replicas passive down: quorum down, passive only', own: own('up'), others: [{ status: 'down', passiveOnly: true }, { status: 'down', passiveOnly: true }], passiveOnly: true },
  { name: 'own up, two replicas down, one by probes: confirmed', own: own('up'), others: [{ status: 'down', passiveOnly: true }, { status: 'down' }], passiveOnly: false },
  { name: 'own passive down, quorum up: up, no flag', own: passiveOwn, others: [{ status: 'up' }, { status: 'up' }], passiveOnly: false },
];
for (const row of passiveRows) {
  t.test(row.name, async (t) => {
    t.equal(combineHealth(row.own, row.others, undefined, 5000).passiveOnly === true, row.passiveOnly);
  });
}
