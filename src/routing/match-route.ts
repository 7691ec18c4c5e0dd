// Which route a request belongs to. Pure: the policy, the Host header and the
// request target in, the first matching route out (routes are in file order and
// the first match wins, like a firewall rule list).
//
// A request does not walk every route: each policy gets an index, built once
// on first use and kept beside the frozen policy (a reload brings a new policy,
// hence a new index). For every host a route names exactly, the index holds
// the routes that can match that host (that host, a wildcard covering it, or
// no host at all) in file order; any other host gets the wildcard and host-less
// routes. Only path prefixes are compared per request, so a lookup costs the
// same at 10 routes as at 10,000 when routes are spread over hosts. (Prefixes
// are not re-sorted longest first: file order is the contract, and an
// operator who lists `/` before `/api` means it.)
import type { Policy, RoutePolicy } from '../config/policy.js';

interface RouteIndex {
  /** Lower-case exact host -> the routes that may match it, in file order. */
  readonly byHost: ReadonlyMap<string, readonly RoutePolicy[]>;
  /** Routes with a wildcard host or none, in file order: for hosts no route names exactly. */
  readonly otherHosts: readonly RoutePolicy[];
  /** Routes without a host: for requests without one. */
  readonly noHost: readonly RoutePolicy[];
}

const indexes = new WeakMap<Policy, RouteIndex>();

export function matchRoute(policy: Policy, host: string | undefined, path: string): RoutePolicy | undefined {
  const index = indexFor(policy);
  const requestHost = host === undefined ? undefined : normaliseHost(host);
  const requestPath = pathOnly(path);
  if (requestHost === undefined || requestHost === '') return firstByPath(index.noHost, requestPath);
  const exact = index.byHost.get(requestHost);
  if (exact !== undefined) return firstByPath(exact, requestPath);
  for (const route of index.otherHosts) {
    if (matchesHost(route.match.host, requestHost) && matchesPathPrefix(route.match.pathPrefix, requestPath)) return route;
  }
  return undefined;
}

function firstByPath(routes: readonly RoutePolicy[], path: string): RoutePolicy | undefined {
  for (const route of routes) {
    if (matchesPathPrefix(route.match.pathPrefix, path)) return route;
  }
  return undefined;
}

function indexFor(policy: Policy): RouteIndex {
  let index = indexes.get(policy);
  if (!index) indexes.set(policy, (index = buildIndex(policy.routes)));
  return index;
}

function buildIndex(routes: readonly RoutePolicy[]): RouteIndex {
  const exactHosts = new Set<string>();
  for (const route of routes) {
    const p = route.match.host?.toLowerCase();
    if (p !== undefined && p !== '' && !p.startsWith('*.')) exactHosts.add(p);
  }
  const byHost = new Map<string, RoutePolicy[]>();
  for (const host of exactHosts) byHost.set(host, []);
  const otherHosts: RoutePolicy[] = [];
  const noHost: RoutePolicy[] = [];
  for (const route of routes) {
    const p = route.match.host?.toLowerCase();
    if (p === undefined) {
      noHost.push(route);
      otherHosts.push(route);
      for (const list of byHost.values()) list.push(route);
    } else if (p.startsWith('*.')) {
      otherHosts.push(route);
      // A wildcard covers few of the exact hosts; only those get it.
      for (const [host, list] of byHost) if (matchesHost(p, host)) list.push(route);
    } else if (p !== '') {
      byHost.get(p)!.push(route);
    }
  }
  return { byHost, otherHosts, noHost };
}

/** `Ceir.Example.go.id:8080` -> `ceir.example.go.id`; `[::1]:80` -> `[::1]`; a trailing root dot is dropped. */
export function normaliseHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end === -1 ? h : h.slice(0, end + 1);
  } else {
    const colon = h.indexOf(':');
    if (colon !== -1) h = h.slice(0, colon);
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

function matchesHost(pattern: string | undefined, host: string | undefined): boolean {
  if (pattern === undefined) return true;
  if (host === undefined || host === '') return false;
  const p = pattern.toLowerCase();
  // `*.example.com` is any subdomain at any depth, but not the bare domain: an
  // operator who wants both writes two routes, which keeps each rule obvious.
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

/**
 * Prefixes match whole path segments: `/api` takes `/api`, `/api/x` and `/api?q`
 * but not `/apix`. A prefix ending in `/` (`/api/`) takes only what is below it.
 */
function matchesPathPrefix(prefix: string, path: string): boolean {
  if (prefix === '/' || prefix === '') return true;
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** The path of a request target, without query or fragment; absolute-form targets are reduced to their path. */
function pathOnly(target: string): string {
  let p = target;
  if (!p.startsWith('/') && /^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    const afterScheme = p.indexOf('//') + 2;
    const slash = p.indexOf('/', afterScheme);
    p = slash === -1 ? '/' : p.slice(slash);
  }
  const cut = p.search(/[?#]/);
  return decodeUnreserved(cut === -1 ? p : p.slice(0, cut));
}

/**
 * `%61pi` is `/api` to any site that decodes its path (RFC 3986 6.2.2.2), so
 * it must match like `/api`. Only unreserved characters are decoded: `%2F` is
 * data, not a separator, and stays as it is.
 */
function decodeUnreserved(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : escape;
  });
}
