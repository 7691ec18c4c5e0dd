// A scripted AdminControl: knows a small world of routes, sites and buildings,
// answers like the gateway would, and records every call for assertions.
import type { PolicyError } from '../../src/config/policy.js';
import type { AdminControl, ControlResult, DrainTarget, GatewayEvent, StatusDocument } from '../../src/admin/admin-control.js';

export interface RecordedCall {
  readonly method: string;
  readonly args: readonly unknown[];
}

export interface FakeControl extends AdminControl {
  readonly calls: RecordedCall[];
  /** Next reload() answer; default ok. */
  reloadErrors: readonly PolicyError[] | null;
  /** When set, every method throws this (simulates a gateway bug). */
  failWith: Error | null;
}

const routeSites: Record<string, readonly string[]> = {
  ceir: ['cyber1', 'serpong'],
  'border control': ['cyber1', 'serpong', 'dr'],
  visa: ['serpong', 'cyber1'],
};
const siteBuildings: Record<string, string> = { cyber1: 'gedung-cyber-1', serpong: 'serpong-dc', dr: 'surabaya-dc' };
const pendingFailback = new Set(['ceir']);
const pendingFailover = new Set(['border control']);

export function createFakeControl(): FakeControl {
  const pins = new Map<string, string>();
  const fake: FakeControl = {
    calls: [],
    reloadErrors: null,
    failWith: null,
    status() {
      record('status', []);
      return sampleStatus();
    },
    async metrics() {
      record('metrics', []);
      return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# HELP detour_site_up up\ndetour_site_up{site="cyber1",building="gedung-cyber-1"} 0\n' };
    },
    async drain(target, opts) {
      record('drain', opts === undefined ? [target] : [target, opts]);
      return knownTarget(target) ?? ok(`drained ${target.kind} ${target.name}`);
    },
    async undrain(target) {
      record('undrain', [target]);
      return knownTarget(target) ?? ok(`undrained ${target.kind} ${target.name}`);
    },
    async pin(route, site) {
      record('pin', [route, site]);
      const sites = routeSites[route];
      if (sites === undefined) return fail('not_found', `unknown route "${route}"`);
      if (siteBuildings[site] === undefined) return fail('not_found', `unknown site "${site}"`);
      if (!sites.includes(site)) return fail('bad_request', `site "${site}" is not one of route "${route}"'s sites`);
      pins.set(route, site);
      return ok(`route ${route} pinned to ${site}`);
    },
    async unpin(route) {
      record('unpin', [route]);
      if (routeSites[route] === undefined) return fail('not_found', `unknown route "${route}"`);
      if (!pins.delete(route)) return fail('conflict', `route "${route}" is not pinned`);
      return ok(`route ${route} unpinned`);
    },
    async approveFailback(route, force) {
      record('approveFailback', [route, force]);
      if (routeSites[route] === undefined) return fail('not_found', `unknown route "${route}"`);
      if (!pendingFailback.has(route)) return fail('conflict', `route "${route}" has no pending failback`);
      return ok(`failback of ${route} approved${force ? ' (integrity gate skipped)' : ''}`);
    },
    async approveFailover(route) {
      record('approveFailover', [route]);
      if (routeSites[route] === undefined) return fail('not_found', `unknown route "${route}"`);
      if (!pendingFailover.has(route)) return fail('conflict', `route "${route}" has no pending failover`);
      return ok(`failover of ${route} approved`);
    },
    async reload() {
      record('reload', []);
      if (fake.reloadErrors !== null) return { ok: false, errors: fake.reloadErrors };
      return { ok: true, message: 'policy reloaded: 3 routes, 3 sites' };
    },
  };

  function record(method: string, args: unknown[]): void {
    fake.calls.push({ method, args });
    if (fake.failWith !== null) throw fake.failWith;
  }
  return fake;
}

function knownTarget(target: DrainTarget): ControlResult | undefined {
  const known = target.kind === 'site' ? Object.keys(siteBuildings) : Object.values(siteBuildings);
  return known.includes(target.name) ? undefined : fail('not_found', `unknown ${target.kind} "${target.name}"`);
}

function ok(message: string): ControlResult {
  return { ok: true, message };
}

function fail(code: 'not_found' | 'bad_request' | 'conflict', message: string): ControlResult {
  return { ok: false, code, message };
}

export const policyErrors: readonly PolicyError[] = [
  { file: 'config/prod.yaml', line: 12, col: 5, path: 'routes[0].sites[1]', message: 'unknown site "serpongg"; did you mean "serpong"?' },
  { file: 'config/prod.yaml', line: 30, col: 3, path: 'drain.buildingz', message: 'unknown key' },
];

/** Twelve events so tests can see that only the last ten are printed. */
export function sampleEvents(): GatewayEvent[] {
  return Array.from({ length: 12 }, (_, i) => ({
    time: new Date(Date.UTC(2024, 5, 20, 12, 0, i)).toISOString(),
    type: i === 11 ? 'failedOver' : 'siteUp',
    message: `event number ${i + 1}`,
  }));
}

export function sampleStatus(): StatusDocument {
  const since = '2024-06-20T12:00:00.000Z';
  return {
    version: '0.1.0',
    policyFile: 'config/prod.yaml',
    tableVersion: 42,
    routes: [
      {
        name: 'ceir', priority: 1, sites: ['cyber1', 'serpong'], state: 'awaiting-approval', active: 'serpong',
        weights: [{ site: 'serpong', weight: 100 }], reason: 'integrity ok; waiting for operator approval', since,
        pendingFailover: null, pendingFailback: true, blocked: { code: 'approval', message: 'manual failback' }, pinnedTo: null, passiveIgnored: null,
        integrity: { ok: true, detail: 'checksum a1f3 (cyber1) == a1f3 (serpong)', since },
      },
      {
        name: 'border control', priority: 1, sites: ['cyber1', 'serpong', 'dr'], state: 'pending-failover', active: 'cyber1',
        weights: [{ site: 'cyber1', weight: 100 }], reason: 'cyber1 is down; manual failover', since,
        pendingFailover: { from: 'cyber1', to: 'serpong', since }, pendingFailback: false, blocked: null, pinnedTo: null, passiveIgnored: null, integrity: null,
      },
      {
        name: 'visa', priority: 2, sites: ['serpong', 'cyber1'], state: 'ramping', active: 'cyber1',
        weights: [{ site: 'serpong', weight: 10 }, { site: 'cyber1', weight: 90 }], reason: 'ramp step 1 of 3', since,
        pendingFailover: null, pendingFailback: false, blocked: null, pinnedTo: null, passiveIgnored: null,
        integrity: { ok: false, detail: 'checksum 9c2e (serpong) != a1f3 (cyber1)', since },
      },
    ],
    sites: [
      { name: 'cyber1', building: 'gedung-cyber-1', url: 'http://127.0.0.1:1', health: 'down', reason: 'connect ECONNREFUSED', since, drained: true, drainedBy: ['building'] },
      { name: 'serpong', building: 'serpong-dc', url: 'http://127.0.0.1:2', health: 'up', reason: '2 probes passed', since, drained: false, drainedBy: [] },
      { name: 'dr', building: 'surabaya-dc', url: 'http://127.0.0.1:3', health: 'unknown', reason: 'no probe yet', since, drained: false, drainedBy: [] },
    ],
    drains: { sites: [], buildings: ['gedung-cyber-1'] },
    stateStore: { kind: 'memory', up: true },
    events: sampleEvents(),
  };
}
