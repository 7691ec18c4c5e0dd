// Scenario tables for the pure routing decision. Each scenario is a script of
// steps at given times; a step changes inputs (health, drains, pins, integrity,
// approvals) and states what every named route must look like afterwards. Time
// is passed in: no sleeps, no timers.
import t from 'tap';
import { decideRoutes } from '../../src/routing/decide-routes.js';
import type {
  Approval, IntegrityVerdict, RouteState, RouteTable, BlockedReason, FailoverReason,
} from '../../src/routing/route-table.js';
import type { SiteHealth, HealthStatus } from '../../src/health/health-state.js';
import { testPolicy, type TestRouteInput } from '../helpers/policy.js';
import type { Policy } from '../../src/config/policy.js';

interface Expect {
  state: RouteState;
  active: string | null;
  /** "site:weight" list, e.g. ['serpong:90', 'cyber1:10'] — checked when given. */
  weights?: string[];
  blocked?: BlockedReason;
  reasonMatch?: RegExp;
  transition?: FailoverReason | null;
  /** The site served although passive evidence alone marked it down (null: none). */
  passiveIgnored?: string | null;
}

interface Step {
  at: number;
  /** 'passive-down': down on live-traffic evidence alone, not confirmed by a probe. */
  health?: Record<string, HealthStatus | 'passive-down'>;
  drainSites?: string[];
  drainBuildings?: string[];
  pins?: Record<string, string>;
  integrity?: Record<string, { ok: boolean; since: number; detail?: string } | null>;
  approveFailback?: Record<string, { force?: boolean; site?: string }>;
  approveFailover?: string[];
  expect: Record<string, Expect>;
  nextWake?: number | null;
}

interface Scenario {
  name: string;
  routes: TestRouteInput[];
  sites?: Array<{ name: string; building?: string }>;
  steps: Step[];
}

const twoSites = [{ name: 'cyber1', building: 'gedung-cyber-1' }, { name: 'serpong', building: 'serpong-dc' }];

const scenarios: Scenario[] = [
  {
    name: 'passive evidence alone never takes out a route\'s last site; a probe or a drain may',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1', passiveIgnored: null } } },
      {
        at: 1000, health: { cyber1: 'passive-down' },
        expect: { ceir: { state: 'failed-over', active: 'serpong', transition: 'site_down', passiveIgnored: null } },
      },
      {
        at: 2000, health: { serpong: 'passive-down' },
        expect: { ceir: { state: 'failed-over', active: 'serpong', weights: ['serpong:100'], passiveIgnored: 'serpong',
          reasonMatch: /^passive evidence ignored: it would leave ceir with no site; serving from serpong down \(live traffic failed/ } },
      },
      {
        at: 3000, health: { serpong: 'down' },
        expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'site_down', passiveIgnored: 'cyber1' } },
      },
      { at: 4000, health: { cyber1: 'down' }, expect: { ceir: { state: 'unavailable', active: null, passiveIgnored: null } } },
      { at: 5000, health: { cyber1: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1', passiveIgnored: null } } },
      {
        at: 6000, health: { cyber1: 'passive-down', serpong: 'passive-down' }, drainSites: ['cyber1'],
        expect: { ceir: { state: 'failed-over', active: 'serpong', passiveIgnored: 'serpong' } },
      },
      { at: 7000, drainSites: ['cyber1', 'serpong'], expect: { ceir: { state: 'unavailable', active: null, passiveIgnored: null } } },
    ],
  },
  {
    name: 'the last-site rule is per route: a site shared with a healthier route is still left by that route',
    routes: [{ name: 'ceir', sites: ['cyber1'] }, { name: 'visa', sites: ['cyber1', 'serpong'] }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1' }, visa: { state: 'preferred', active: 'cyber1' } } },
      {
        at: 1000, health: { cyber1: 'passive-down' },
        expect: { ceir: { state: 'preferred', active: 'cyber1', passiveIgnored: 'cyber1' }, visa: { state: 'failed-over', active: 'serpong', passiveIgnored: null } },
      },
    ],
  },
  {
    name: 'starts on the first site; fails over at once when it goes down',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1', weights: ['cyber1:100'] } }, nextWake: null },
      {
        at: 1000, health: { cyber1: 'down' },
        expect: { ceir: { state: 'failed-over', active: 'serpong', weights: ['serpong:100'], transition: 'site_down', reasonMatch: /cyber1 down/ } },
      },
    ],
  },
  {
    name: 'failback waits for hold-down, then moves back; a flap restarts it',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 30_000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      {
        at: 10_000, health: { cyber1: 'up' },
        expect: { ceir: { state: 'holding-down', active: 'serpong', blocked: 'holddown', weights: ['serpong:100'] } },
        nextWake: 40_000,
      },
      { at: 20_000, health: { cyber1: 'down' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 25_000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } }, nextWake: 55_000 },
      { at: 54_999, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 55_000, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'ramp shifts weight step by step and completes',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 1000, ramp: [10, 50, 100], stepMs: 5000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 2000, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:10', 'serpong:90'] } }, nextWake: 7000 },
      { at: 6999, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:10', 'serpong:90'] } } },
      { at: 7000, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:50', 'serpong:50'] } }, nextWake: 12_000 },
      { at: 12_000, expect: { ceir: { state: 'preferred', active: 'cyber1', weights: ['cyber1:100'], transition: 'failback' } }, nextWake: null },
    ],
  },
  {
    name: 'preferred site failing mid-ramp takes all traffic back at once and restarts hold-down',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 1000, ramp: [10, 50, 100], stepMs: 5000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 2000, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:10', 'serpong:90'] } } },
      { at: 3000, health: { cyber1: 'down' }, expect: { ceir: { state: 'failed-over', active: 'serpong', weights: ['serpong:100'], transition: null } } },
      { at: 4000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong', weights: ['serpong:100'] } } },
      { at: 5000, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:10', 'serpong:90'] } } },
    ],
  },
  {
    name: 'integrity mismatch blocks failback indefinitely; a match held for hold-down releases it',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 10_000, verify: { path: '/_integrity', field: 'checksum', intervalMs: 1000, timeoutMs: 500 } } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'verifying', active: 'serpong', blocked: 'holddown' } } },
      {
        at: 2000, integrity: { ceir: { ok: false, since: 2000, detail: 'checksum a1f3 (cyber1) != 9c2e (serpong)' } },
        expect: { ceir: { state: 'blocked', active: 'serpong', blocked: 'integrity', reasonMatch: /integrity mismatch: checksum a1f3 \(cyber1\) != 9c2e \(serpong\)/ } },
      },
      { at: 3_600_000, expect: { ceir: { state: 'blocked', active: 'serpong', blocked: 'integrity' } } },
      {
        at: 3_601_000, integrity: { ceir: { ok: true, since: 3_601_000 } },
        expect: { ceir: { state: 'verifying', active: 'serpong', blocked: 'holddown', reasonMatch: /integrity matching for 0s of 10s/ } },
        nextWake: 3_611_000,
      },
      { at: 3_611_000, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'no integrity verdict yet keeps the route verifying after hold-down',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 1000, verify: { path: '/_integrity', intervalMs: 1000, timeoutMs: 500 } } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'verifying', active: 'serpong' } } },
      { at: 5000, expect: { ceir: { state: 'verifying', active: 'serpong', blocked: 'integrity', reasonMatch: /first integrity check/ } } },
    ],
  },
  {
    name: 'integrity failing mid-ramp stops the ramp',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 0, ramp: [10, 100], stepMs: 5000, verify: { path: '/_integrity', intervalMs: 1000, timeoutMs: 500 } } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, integrity: { ceir: { ok: true, since: 500 } }, expect: { ceir: { state: 'ramping', active: 'serpong', weights: ['cyber1:10', 'serpong:90'] } } },
      { at: 2000, integrity: { ceir: { ok: false, since: 2000, detail: 'cyber1: status 500' } }, expect: { ceir: { state: 'blocked', active: 'serpong', weights: ['serpong:100'], blocked: 'integrity' } } },
    ],
  },
  {
    name: 'phased recovery: priority 1, then 2, then 3, each through its ramp',
    routes: [
      { name: 'passport', sites: ['cyber1', 'serpong'], priority: 3, failback: { holdDownMs: 1000, ramp: [50, 100], stepMs: 1000 } },
      { name: 'border', sites: ['cyber1', 'serpong'], priority: 1, failback: { holdDownMs: 1000, ramp: [50, 100], stepMs: 1000 } },
      { name: 'visa', sites: ['cyber1', 'serpong'], priority: 2, failback: { holdDownMs: 1000, ramp: [50, 100], stepMs: 1000 } },
    ],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { border: { state: 'failed-over', active: 'serpong' }, visa: { state: 'failed-over', active: 'serpong' }, passport: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { border: { state: 'holding-down', active: 'serpong' }, visa: { state: 'holding-down', active: 'serpong' }, passport: { state: 'holding-down', active: 'serpong' } } },
      {
        at: 2000,
        expect: {
          border: { state: 'ramping', active: 'serpong', weights: ['cyber1:50', 'serpong:50'] },
          visa: { state: 'blocked', active: 'serpong', blocked: 'priority', reasonMatch: /priority 1 routes to finish failback: border/ },
          passport: { state: 'blocked', active: 'serpong', blocked: 'priority', reasonMatch: /priority 1 routes.*: border/ },
        },
      },
      {
        at: 3000,
        expect: {
          border: { state: 'preferred', active: 'cyber1', transition: 'failback' },
          visa: { state: 'ramping', active: 'serpong', weights: ['cyber1:50', 'serpong:50'] },
          passport: { state: 'blocked', active: 'serpong', blocked: 'priority' },
        },
      },
      { at: 4000, expect: { border: { state: 'preferred', active: 'cyber1' }, visa: { state: 'preferred', active: 'cyber1' }, passport: { state: 'ramping', active: 'serpong' } } },
      { at: 5000, expect: { passport: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'a lower-priority route whose site is still down does not hold back the next level',
    sites: [{ name: 'a1', building: 'A' }, { name: 'b1', building: 'B' }, { name: 'a2', building: 'A' }, { name: 'b2', building: 'B' }],
    routes: [
      { name: 'first', sites: ['a1', 'b1'], priority: 1, failback: { holdDownMs: 0 } },
      { name: 'second', sites: ['a2', 'b2'], priority: 2, failback: { holdDownMs: 0 } },
    ],
    steps: [
      { at: 0, health: { a1: 'down', b1: 'up', a2: 'down', b2: 'up' }, expect: { first: { state: 'failed-over', active: 'b1' }, second: { state: 'failed-over', active: 'b2' } } },
      { at: 1000, health: { a2: 'up' }, expect: { first: { state: 'failed-over', active: 'b1' }, second: { state: 'preferred', active: 'a2' } } },
    ],
  },
  {
    name: 'maxConcurrent lets one route ramp at a time within a level',
    routes: [
      { name: 'r1', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 0, ramp: [50, 100], stepMs: 1000, maxConcurrent: 1 } },
      { name: 'r2', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 0, ramp: [50, 100], stepMs: 1000, maxConcurrent: 1 } },
    ],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { r1: { state: 'failed-over', active: 'serpong' }, r2: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { r1: { state: 'ramping', active: 'serpong' }, r2: { state: 'blocked', active: 'serpong', blocked: 'concurrency' } } },
      { at: 2000, expect: { r1: { state: 'preferred', active: 'cyber1' }, r2: { state: 'ramping', active: 'serpong' } } },
      { at: 3000, expect: { r2: { state: 'preferred', active: 'cyber1' } } },
    ],
  },
  {
    name: 'manual failback waits for approval; approval still respects the integrity gate; force skips it',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { mode: 'manual', holdDownMs: 1000, verify: { path: '/_integrity', field: 'checksum', intervalMs: 1000, timeoutMs: 500 } } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, integrity: { ceir: { ok: true, since: 1000 } }, expect: { ceir: { state: 'verifying', active: 'serpong' } } },
      { at: 2000, expect: { ceir: { state: 'awaiting-approval', active: 'serpong', blocked: 'approval' } } },
      { at: 2500, integrity: { ceir: { ok: false, since: 2500, detail: 'checksum x != y' } }, expect: { ceir: { state: 'blocked', blocked: 'integrity', active: 'serpong' } } },
      { at: 3000, approveFailback: { ceir: {} }, expect: { ceir: { state: 'blocked', blocked: 'integrity', active: 'serpong' } } },
      { at: 4000, approveFailback: { ceir: { force: true } }, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'manual failback with a passing gate moves on approval',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { mode: 'manual', holdDownMs: 1000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 2000, expect: { ceir: { state: 'awaiting-approval', active: 'serpong', blocked: 'approval' } } },
      { at: 9000, approveFailback: { ceir: {} }, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'an approval from an earlier cycle does not count',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { mode: 'manual', holdDownMs: 1000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, approveFailback: { ceir: {} }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 2000, expect: { ceir: { state: 'awaiting-approval', active: 'serpong' } } },
    ],
  },
  {
    name: 'manual failover holds the route on the dead site until approved',
    routes: [{ name: 'visa', sites: ['cyber1', 'serpong'], failover: { mode: 'manual' } }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { visa: { state: 'preferred', active: 'cyber1' } } },
      { at: 1000, health: { cyber1: 'down' }, expect: { visa: { state: 'pending-failover', active: 'cyber1', weights: ['cyber1:100'], reasonMatch: /waiting for an operator/ } } },
      { at: 2000, approveFailover: ['visa'], expect: { visa: { state: 'failed-over', active: 'serpong', transition: 'manual' } } },
    ],
  },
  {
    name: 'manual failover clears when the site comes back by itself',
    routes: [{ name: 'visa', sites: ['cyber1', 'serpong'], failover: { mode: 'manual' } }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { visa: { state: 'preferred', active: 'cyber1' } } },
      { at: 1000, health: { cyber1: 'down' }, expect: { visa: { state: 'pending-failover', active: 'cyber1' } } },
      { at: 2000, health: { cyber1: 'up' }, expect: { visa: { state: 'preferred', active: 'cyber1', transition: null } } },
    ],
  },
  {
    name: 'draining a building moves every route off it at once, even in manual failover mode; undrain fails back through hold-down',
    sites: [{ name: 'cyber1', building: 'gedung-cyber-1' }, { name: 'cyber1b', building: 'gedung-cyber-1' }, { name: 'serpong', building: 'serpong-dc' }],
    routes: [
      { name: 'ceir', sites: ['cyber1', 'cyber1b', 'serpong'], failback: { holdDownMs: 5000 } },
      { name: 'visa', sites: ['cyber1b', 'serpong'], failover: { mode: 'manual' } },
    ],
    steps: [
      { at: 0, health: { cyber1: 'up', cyber1b: 'up', serpong: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1' }, visa: { state: 'preferred', active: 'cyber1b' } } },
      {
        at: 1000, drainBuildings: ['gedung-cyber-1'],
        expect: {
          ceir: { state: 'failed-over', active: 'serpong', transition: 'drain', reasonMatch: /building gedung-cyber-1 drained/ },
          visa: { state: 'failed-over', active: 'serpong', transition: 'drain' },
        },
      },
      // Undrain: probes kept running while drained, so hold-down counts from when the site came up.
      { at: 2000, drainBuildings: [], expect: { ceir: { state: 'holding-down', active: 'serpong' }, visa: { state: 'holding-down', active: 'serpong' } } },
      { at: 5000, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } } },
    ],
  },
  {
    name: 'drained site is never eligible, whatever its health',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'] }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, drainSites: ['cyber1'], expect: { ceir: { state: 'failed-over', active: 'serpong', weights: ['serpong:100'] } } },
      { at: 1000, drainSites: ['cyber1', 'serpong'], expect: { ceir: { state: 'unavailable', active: null, weights: [], transition: 'drain' } } },
    ],
  },
  {
    name: 'every site down: unavailable, then the first site back serves at once',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 60_000 } }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1' } } },
      { at: 1000, health: { cyber1: 'down', serpong: 'down' }, expect: { ceir: { state: 'unavailable', active: null, weights: [], reasonMatch: /no site can serve: cyber1 down/ } } },
      { at: 2000, health: { serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong', transition: 'recovered' } } },
      { at: 3000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
    ],
  },
  {
    name: 'pin overrides health and failback; unpin returns to normal routing; drain beats a pin',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 60_000 } }],
    steps: [
      { at: 0, health: { cyber1: 'up', serpong: 'up' }, pins: { ceir: 'serpong' }, expect: { ceir: { state: 'pinned', active: 'serpong', weights: ['serpong:100'] } } },
      { at: 1000, health: { serpong: 'down' }, expect: { ceir: { state: 'pinned', active: 'serpong' } } },
      { at: 2000, pins: {}, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'unpin' } } },
      { at: 3000, pins: { ceir: 'cyber1' }, expect: { ceir: { state: 'pinned', active: 'cyber1', transition: null } } },
      { at: 4000, drainSites: ['cyber1'], health: { serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong', transition: 'drain' } } },
    ],
  },
  {
    name: 'three sites: fail over down the list, fail back one rank at a time',
    sites: [{ name: 'primary', building: 'A' }, { name: 'backup', building: 'B' }, { name: 'dr', building: 'C' }],
    routes: [{ name: 'api', sites: ['primary', 'backup', 'dr'], failback: { holdDownMs: 1000 } }],
    steps: [
      { at: 0, health: { primary: 'up', backup: 'up', dr: 'up' }, expect: { api: { state: 'preferred', active: 'primary' } } },
      { at: 1000, health: { primary: 'down', backup: 'down' }, expect: { api: { state: 'failed-over', active: 'dr' } } },
      { at: 2000, health: { backup: 'up' }, expect: { api: { state: 'holding-down', active: 'dr' } } },
      { at: 3000, expect: { api: { state: 'failed-over', active: 'backup', transition: 'failback' } } },
      { at: 3500, health: { primary: 'up' }, expect: { api: { state: 'holding-down', active: 'backup' } } },
      { at: 4500, expect: { api: { state: 'preferred', active: 'primary', transition: 'failback' } } },
    ],
  },
  {
    name: 'current site dying while a more preferred one holds down goes straight to the preferred one',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 60_000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'holding-down', active: 'serpong' } } },
      { at: 2000, health: { serpong: 'down' }, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'site_down' } } },
    ],
  },
  {
    name: 'an approval is for one target: approving failback to b does not approve a later one to a',
    sites: [{ name: 'a', building: 'A' }, { name: 'b', building: 'B' }, { name: 'c', building: 'C' }],
    routes: [{ name: 'r', sites: ['a', 'b', 'c'], failback: { mode: 'manual', holdDownMs: 0 } }],
    steps: [
      { at: 0, health: { a: 'up', b: 'down', c: 'up' }, drainSites: ['a'], expect: { r: { state: 'failed-over', active: 'c' } } },
      { at: 1000, health: { b: 'up' }, expect: { r: { state: 'awaiting-approval', active: 'c' } } },
      { at: 2000, approveFailback: { r: { site: 'b' } }, expect: { r: { state: 'failed-over', active: 'b', transition: 'failback' } } },
      { at: 3000, drainSites: [], expect: { r: { state: 'awaiting-approval', active: 'b', blocked: 'approval' } } },
      { at: 4000, approveFailback: { r: { site: 'a' } }, expect: { r: { state: 'preferred', active: 'a', transition: 'failback' } } },
    ],
  },
  {
    name: 'step 0: the ramp completes in one decision',
    routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 0, ramp: [10, 50, 100], stepMs: 0 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: { ceir: { state: 'failed-over', active: 'serpong' } } },
      { at: 1000, health: { cyber1: 'up' }, expect: { ceir: { state: 'preferred', active: 'cyber1', transition: 'failback' } }, nextWake: null },
    ],
  },
  {
    name: 'a ramp to a stable second site keeps going when a flapping first site comes back',
    sites: [{ name: 'a', building: 'A' }, { name: 'b', building: 'B' }, { name: 'c', building: 'C' }],
    routes: [{ name: 'r', sites: ['a', 'b', 'c'], failback: { holdDownMs: 500, ramp: [50, 100], stepMs: 1000 } }],
    steps: [
      { at: 0, health: { a: 'down', b: 'down', c: 'up' }, expect: { r: { state: 'failed-over', active: 'c' } } },
      { at: 1000, health: { b: 'up' }, expect: { r: { state: 'holding-down', active: 'c' } } },
      { at: 1500, expect: { r: { state: 'ramping', active: 'c', weights: ['b:50', 'c:50'] } } },
      { at: 2000, health: { a: 'up' }, expect: { r: { state: 'ramping', active: 'c', weights: ['b:50', 'c:50'] } } },
      { at: 2500, expect: { r: { state: 'failed-over', active: 'b', transition: 'failback' } } },
      { at: 2600, expect: { r: { state: 'ramping', active: 'b', weights: ['a:50', 'b:50'] } } },
    ],
  },
];

function health(status: HealthStatus | 'passive-down', sinceMs: number): SiteHealth {
  if (status === 'passive-down') {
    return { status: 'down', passes: 0, fails: 0, sinceMs, reason: 'live traffic failed (connect ECONNREFUSED)', passiveOnly: true };
  }
  return { status, passes: 0, fails: 0, sinceMs, reason: status === 'down' ? '2 failed probes (connect ECONNREFUSED)' : 'probes passing' };
}

function runScenario(s: Scenario): Array<{ step: Step; table: RouteTable }> {
  const sites = (s.sites ?? twoSites).map((x) => ({ ...x, url: `http://127.0.0.1:1/${x.name}` }));
  const policy: Policy = testPolicy({ sites, routes: s.routes });
  const healthMap = new Map<string, SiteHealth>();
  const integrity = new Map<string, IntegrityVerdict>();
  const failbackApprovals = new Map<string, Approval>();
  const failoverApprovals = new Map<string, Approval>();
  let drainedSites = new Set<string>();
  let drainedBuildings = new Set<string>();
  let pins = new Map<string, string>();
  let prev: RouteTable | undefined;
  const out: Array<{ step: Step; table: RouteTable }> = [];
  for (const step of s.steps) {
    for (const [site, status] of Object.entries(step.health ?? {})) {
      const was = healthMap.get(site);
      const wasKey = was?.passiveOnly ? 'passive-down' : was?.status;
      if (wasKey !== status) healthMap.set(site, health(status, step.at));
    }
    if (step.drainSites) drainedSites = new Set(step.drainSites);
    if (step.drainBuildings) drainedBuildings = new Set(step.drainBuildings);
    if (step.pins) pins = new Map(Object.entries(step.pins));
    for (const [route, v] of Object.entries(step.integrity ?? {})) {
      if (v === null) integrity.delete(route);
      else integrity.set(route, { ok: v.ok, sinceMs: v.since, detail: v.detail ?? 'checksum a1f3 (cyber1) == a1f3 (serpong)' });
    }
    for (const [route, a] of Object.entries(step.approveFailback ?? {})) {
      failbackApprovals.set(route, { atMs: step.at, force: a.force ?? false, ...(a.site ? { site: a.site } : {}) });
    }
    for (const route of step.approveFailover ?? []) failoverApprovals.set(route, { atMs: step.at, force: false });
    const table = decideRoutes({
      policy, health: healthMap,
      overrides: { drainedSites, drainedBuildings, pins, failbackApprovals, failoverApprovals },
      integrity, prev, nowMs: step.at,
    });
    out.push({ step, table });
    prev = table;
  }
  return out;
}

for (const s of scenarios) {
  t.test(s.name, async (t) => {
    for (const { step, table } of runScenario(s)) {
      for (const [route, want] of Object.entries(step.expect)) {
        const d = table.byName.get(route);
        const at = `t=${step.at} ${route}`;
        if (!d) { t.fail(`${at}: no decision`); continue; }
        t.equal(d.state, want.state, `${at}: state (reason: ${d.reason})`);
        t.equal(d.active, want.active, `${at}: active`);
        if (want.weights) {
          t.same(d.weights.map((w) => `${w.site}:${w.weight}`).sort(), [...want.weights].sort(), `${at}: weights`);
        }
        if (want.weights === undefined && d.weights.length > 0) {
          t.equal(d.weights.reduce((a, w) => a + w.weight, 0), 100, `${at}: weights sum to 100`);
        }
        if (want.blocked) t.equal(d.blocked?.code, want.blocked, `${at}: blocked code`);
        if (want.reasonMatch) t.match(d.reason, want.reasonMatch, `${at}: reason`);
        if (want.transition !== undefined) t.equal(d.transition?.reason ?? null, want.transition, `${at}: transition`);
        if (want.passiveIgnored !== undefined) t.equal(d.passiveIgnored ?? null, want.passiveIgnored, `${at}: passiveIgnored`);
      }
      if (step.nextWake !== undefined) t.equal(table.nextWakeMs, step.nextWake, `t=${step.at}: nextWakeMs`);
    }
  });
}

t.test('the table is frozen and replaced, never mutated', async (t) => {
  const [first, second] = runScenario(scenarios[0]!).map((x) => x.table);
  t.ok(Object.isFrozen(first), 'table frozen');
  t.ok(Object.isFrozen(first!.routes[0]), 'decisions frozen');
  t.not(first, second, 'a new table object');
  t.equal(second!.version, first!.version + 1, 'version increases');
  t.equal(first!.byName.get('ceir')!.active, 'cyber1', 'old table unchanged after the next decision');
});

t.test('sinceMs holds while the state stays the same', async (t) => {
  const out = runScenario({
    name: 'x', routes: [{ name: 'ceir', sites: ['cyber1', 'serpong'], failback: { holdDownMs: 60_000 } }],
    steps: [
      { at: 0, health: { cyber1: 'down', serpong: 'up' }, expect: {} },
      { at: 5000, expect: {} },
      { at: 6000, health: { cyber1: 'up' }, expect: {} },
    ],
  });
  t.equal(out[1]!.table.byName.get('ceir')!.sinceMs, 0);
  t.equal(out[2]!.table.byName.get('ceir')!.sinceMs, 6000);
});
