// Policy values for health tests: a site with test-friendly health settings.
import type { HealthPolicy, SitePolicy, VerifyPolicy } from '../../src/config/policy.js';
import { defaultPassive } from '../helpers/policy.js';

export function makeSite(name: string, url: string, health: Partial<HealthPolicy> = {}, failureThreshold = 3): SitePolicy {
  return {
    name,
    url,
    building: `building-${name}`,
    timeouts: { connectMs: 1000, responseMs: 5000 },
    health: {
      path: '/healthz',
      // Long by default: tests ask for extra rounds with probeNow() instead of waiting.
      intervalMs: 60_000,
      jitter: 0,
      timeoutMs: 1000,
      rise: 2,
      fall: 2,
      expectStatus: [200],
      ...health,
    },
    passive: { ...defaultPassive, failureThreshold },
  };
}

export function makeVerify(verify: Partial<VerifyPolicy> = {}): VerifyPolicy {
  return { path: '/_integrity', intervalMs: 60_000, timeoutMs: 1000, ...verify };
}
