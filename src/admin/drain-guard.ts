// The admin side of the drain safety rule (routing/drain-safety.ts): a drain
// that would leave a route with no eligible site is refused with a conflict
// naming the routes, unless the caller says force; a forced one is applied,
// logged as a warning and its reply (which the audit trail keeps) says FORCED.
import type { Logger } from '../logger.js';
import type { Policy } from '../config/policy.js';
import { findEmptiedRoutes, withDrain, type Drains, type SiteServability } from '../routing/drain-safety.js';
import type { ControlResult, DrainOptions, DrainTarget } from './admin-control.js';

/** What the guard reads of the control plane, and the drain it guards. */
export interface DrainControl {
  readonly policy: Pick<Policy, 'sites' | 'routes'>;
  health(site: string): SiteServability | undefined;
  effectiveDrains(): Drains;
  drain(target: DrainTarget): ControlResult;
}

export function drainSafely(control: DrainControl, target: DrainTarget, opts: DrainOptions, logger: Logger): ControlResult {
  const before = control.effectiveDrains();
  const emptied = findEmptiedRoutes(control.policy, (s) => control.health(s), before, withDrain(before, target));
  if (emptied.length === 0) return control.drain(target);
  const what = `${target.kind} ${target.name}`;
  const routes = `route${emptied.length > 1 ? 's' : ''} ${emptied.join(', ')}`;
  if (opts.force !== true) {
    return {
      ok: false, code: 'conflict',
      message: `drain of ${what} refused: it would leave ${routes} with no eligible site (every other site is drained or down); `
        + 'send {"force": true} (detour drain --force) to drain anyway',
    };
  }
  const result = control.drain(target);
  if (!result.ok) return result;
  logger.warn({ event: 'drainForced', target: what, routes: emptied },
    `FORCED drain of ${what}: ${routes} now ha${emptied.length > 1 ? 've' : 's'} no eligible site`);
  return { ok: true, message: `${result.message} (FORCED: ${routes} left with no eligible site)` };
}

/** The same rule for the policy file's own drains on load and reload: a warning, never a refusal (the file wins). */
export function policyDrainWarnings(
  policy: Pick<Policy, 'sites' | 'routes' | 'drain'>,
  control: Pick<DrainControl, 'health'> & { shared(): { readonly drainedSites: readonly string[]; readonly drainedBuildings: readonly string[] } },
): { readonly route: string; readonly message: string }[] {
  const shared = control.shared();
  const runtime: Drains = { sites: new Set(shared.drainedSites), buildings: new Set(shared.drainedBuildings) };
  const after: Drains = {
    sites: new Set([...runtime.sites, ...policy.drain.sites]),
    buildings: new Set([...runtime.buildings, ...policy.drain.buildings]),
  };
  const emptied = findEmptiedRoutes(policy, (s) => control.health(s), runtime, after);
  return emptied.map((route) => ({
    route, message: `the policy file's drain: leaves route ${route} with no eligible site (applied anyway: the file wins)`,
  }));
}
