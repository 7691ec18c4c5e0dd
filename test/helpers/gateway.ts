// Start a real gateway in front of fake sites for a test, torn down with it.
import type { Test } from 'tap';
import { Registry } from 'prom-client';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import type { HealthPolicy, PassivePolicy, Policy, SitePolicy } from '../../src/config/policy.js';
import { testPolicy, type TestPolicyInput } from './policy.js';
import { startFakeSite, type FakeSite, type FakeSiteOptions } from './fake-site.js';

export interface RigSite {
  readonly name: string;
  readonly building?: string;
  /** Health probe settings over `fastHealth`. */
  readonly probe?: Partial<HealthPolicy>;
  readonly timeouts?: Partial<SitePolicy['timeouts']>;
  readonly passive?: Partial<PassivePolicy>;
  readonly fake?: Omit<FakeSiteOptions, 'name'>;
}

export const TOKEN = 'test-token-0123456789';

export interface Rig {
  readonly gateway: Gateway;
  readonly sites: Record<string, FakeSite>;
  readonly policy: Policy;
  admin(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any; text: string }>;
}

/** Fast probes, so failover tests take a second, not a minute. */
export const fastHealth = { intervalMs: 100, timeoutMs: 150, rise: 2, fall: 2, jitter: 0 };

export async function startRig(
  t: Test,
  sites: RigSite[],
  build: (urls: Record<string, string>) => Omit<TestPolicyInput, 'sites'> & { sites?: TestPolicyInput['sites'] },
): Promise<Rig> {
  const fakes: Record<string, FakeSite> = {};
  for (const s of sites) {
    fakes[s.name] = await startFakeSite({ name: s.name, ...s.fake });
    t.teardown(() => fakes[s.name]!.close());
  }
  const urls = Object.fromEntries(Object.entries(fakes).map(([k, v]) => [k, v.url]));
  const built = build(urls);
  const policy = testPolicy({
    admin: { token: TOKEN },
    ...built,
    sites: built.sites ?? sites.map((s) => ({
      name: s.name, url: fakes[s.name]!.url, building: s.building ?? s.name,
      health: { ...fastHealth, ...s.probe }, timeouts: { connectMs: 500, responseMs: 5000, ...s.timeouts },
      ...(s.passive ? { passive: s.passive } : {}),
    })),
  });
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());
  const admin = async (method: string, path: string, body?: unknown, token: string | null = TOKEN) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${gateway.adminUrl}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any = null;
    try { json = JSON.parse(text); } catch { /* metrics and plain bodies */ }
    return { status: res.status, json, text };
  };
  return { gateway, sites: fakes, policy, admin };
}
