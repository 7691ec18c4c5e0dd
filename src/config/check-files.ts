// The third pass, the only one that touches the file system: every file the
// policy names (TLS certificates, keys, CA bundles, the admin token file) must
// be readable and make sense, reported at the key that names it. It runs in
// `detour check` and on every load and reload, so a broken certificate pair
// fails the reload (keeping the running one) instead of the listener.
import { isAbsolute, resolve } from 'node:path';
import type { ReferenceProblem } from './check-references.js';
import type { PathSegment } from './read-yaml-tree.js';
import { readCaFile, readKeyPair, readTokenFile } from '../tls/tls-files.js';

type Data = Record<string, unknown>;

/** Relative paths in a policy are relative to the policy file's directory, not to where detour was started. */
export function resolvePolicyPath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

export function checkFiles(root: unknown, baseDir: string, nowMs: number): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  if (!isData(root)) return problems;
  const report = (path: readonly PathSegment[], message: string) => problems.push({ path, at: 'key', message });
  const at = (value: unknown) => (typeof value === 'string' && value !== '' ? resolvePolicyPath(baseDir, value) : undefined);

  const checkPair = (tls: unknown, path: readonly PathSegment[]) => {
    if (!isData(tls)) return;
    const cert = at(tls.cert);
    const key = at(tls.key);
    if (cert === undefined || key === undefined) return;
    const pair = readKeyPair(cert, key, nowMs);
    if (!pair.ok) report([...path, pair.at], pair.message);
  };

  if (isData(root.listen)) checkPair(root.listen.tls, ['listen', 'tls']);
  if (isData(root.admin)) {
    checkPair(root.admin.tls, ['admin', 'tls']);
    const tokenFile = at(root.admin.tokenFile);
    if (tokenFile !== undefined) {
      const token = readTokenFile(tokenFile);
      if (!token.ok) report(['admin', 'tokenFile'], token.message);
    }
  }
  if (isData(root.sites)) {
    for (const [name, site] of Object.entries(root.sites)) {
      if (!isData(site) || !isData(site.tls)) continue;
      const path = ['sites', name, 'tls'];
      const ca = at(site.tls.ca);
      if (ca !== undefined) {
        const read = readCaFile(ca);
        if (!read.ok) report([...path, 'ca'], read.message);
      }
      checkPair(site.tls, path);
    }
  }
  if (isData(root.state) && isData(root.state.redis) && isData(root.state.redis.tls)) {
    const ca = at(root.state.redis.tls.ca);
    if (ca !== undefined) {
      const read = readCaFile(ca);
      if (!read.ok) report(['state', 'redis', 'tls', 'ca'], read.message);
    }
  }
  return problems;
}

function isData(value: unknown): value is Data {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
