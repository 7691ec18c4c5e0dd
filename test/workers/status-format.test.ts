// `detour status` shows the worker processes when there are any, and nothing
// more for a single-process gateway.
import t from 'tap';
import { formatStatus } from '../../src/admin/cli-commands.js';
import type { StatusDocument } from '../../src/admin/admin-control.js';

const base: StatusDocument = {
  version: '0.1.0', policyFile: 'p.yaml', tableVersion: 7, routes: [], sites: [],
  drains: { sites: [], buildings: [] }, stateStore: { kind: 'memory', up: true }, events: [],
};
const now = Date.parse('2026-12-01T12:00:00Z');

t.test('workers: a table of processes with the table version each routes by', async (t) => {
  const text = formatStatus({
    ...base,
    workers: {
      configured: 'auto', count: 1, restarts: 2,
      workers: [
        { id: 3, pid: 4101, state: 'serving', tableVersion: 7, startedAt: '2026-12-01T11:59:00Z' },
        { id: 4, pid: 4102, state: 'starting', tableVersion: 0, startedAt: '2026-12-01T11:59:59Z' },
      ],
    },
  }, now);
  t.match(text, /^WORKERS {2}1 serving of auto configured {2}restarts: 2$/m);
  t.match(text, /^ {2}3 {3}4101 {2}serving {3}v7 {5}1m ago$/m);
  t.match(text, /^ {2}4 {3}4102 {2}starting {2}v0 {5}1s ago$/m);
});

t.test('one process: no workers block', async (t) => {
  const text = formatStatus({
    ...base, workers: { configured: 1, count: 1, restarts: 0, workers: [{ id: 0, pid: 1, state: 'serving', tableVersion: 7, startedAt: '2026-12-01T11:00:00Z' }] },
  }, now);
  t.notMatch(text, /WORKERS/);
  t.notMatch(formatStatus(base, now), /WORKERS/, 'nor from an older gateway without the field');
});
