// One keep-alive connection pool per site origin, so a busy route does not pay
// a TCP (and TLS) handshake per request.
// The pool never makes a request wait for a connection: a queue inside the
// agent would count as "connecting" for a busy but healthy site. Idle
// connections are dropped before the site's own keep-alive timeout is likely
// to close them (Node servers default to 5 s), so a reused connection is
// rarely one the site has already closed.
// An https:// site's pool carries its trust (CA, name, client certificate) in
// the agent's own options, which Node applies over anything a request says.
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { ClientTls } from '../tls/client-tls.js';

export interface AgentLimits {
  /** Concurrent connections per site; beyond it requests queue inside the agent (default: no limit). */
  readonly maxSockets?: number;
  /** Idle connections kept per site. */
  readonly maxFreeSockets: number;
  /** An idle pooled connection is closed after this long (a shorter `Keep-Alive: timeout=N` from the site wins). */
  readonly freeSocketTimeoutMs?: number;
}

/**
 * Idle connections kept per site: as many as a busy listener has requests in
 * flight at once (256 client connections each waiting on the site), so a
 * burst does not close connections it will open again a moment later; the
 * idle timeout still closes them once the load is gone.
 */
export const defaultAgentLimits: Required<AgentLimits> = { maxSockets: Infinity, maxFreeSockets: 256, freeSocketTimeoutMs: 4000 };

export class UpstreamAgents {
  private readonly pooled = new Map<string, http.Agent>();
  private readonly fresh = new Map<string, http.Agent>();
  /** Trust each origin's agents were made with; new trust (a reload rotated a CA) retires them. */
  private readonly trust = new Map<string, string>();
  /** Site URL -> origin, so a request does not parse its site's URL again. */
  private origins = new Map<string, string>();
  private readonly limits: Required<AgentLimits>;

  constructor(limits: AgentLimits = defaultAgentLimits) {
    this.limits = { ...defaultAgentLimits, ...limits };
  }

  /** The pool for a site URL; created on first use, keyed by origin so a reload that keeps the URL keeps the pool. */
  agentFor(siteUrl: string, tls?: ClientTls): http.Agent {
    return this.agentIn(this.pooled, siteUrl, tls, {
      keepAlive: true,
      maxSockets: this.limits.maxSockets,
      maxFreeSockets: this.limits.maxFreeSockets,
      // Node's agent applies `timeout` to idle pooled sockets and destroys them
      // when it fires; in-use sockets only get a 'timeout' event nobody acts on.
      timeout: this.limits.freeSocketTimeoutMs,
      // Reuse the most recent idle socket: the least likely to have been closed by the site meanwhile.
      scheduling: 'lifo',
    });
  }

  /** Always a new connection, closed after one request: for the retry after a stale pooled one. */
  freshAgentFor(siteUrl: string, tls?: ClientTls): http.Agent {
    return this.agentIn(this.fresh, siteUrl, tls, { keepAlive: false, maxSockets: Infinity });
  }

  /**
   * Forget the pools of every origin not among `siteUrls` (sites removed or
   * moved by a reload) and return those origins. Idle connections are closed
   * now; a request still running on one of them finishes normally, and its
   * connection is closed instead of going back to a pool nobody uses
   * (agent.destroy() would cut those requests off too).
   */
  retainOrigins(siteUrls: Iterable<string>): string[] {
    const keep = new Set<string>();
    // The URLs kept keep their parsed origins: parsing 1,000 site URLs again was a millisecond or two of a reload's swap turn.
    const known = new Map<string, string>();
    for (const url of siteUrls) {
      const origin = this.origins.get(url) ?? originOf(url);
      if (origin === undefined) continue;
      keep.add(origin);
      known.set(url, origin);
    }
    this.origins = known;
    const dropped = new Set<string>();
    for (const map of [this.pooled, this.fresh]) {
      for (const [origin, agent] of map) {
        if (keep.has(origin)) continue;
        map.delete(origin);
        this.trust.delete(origin);
        dropped.add(origin);
        retire(agent);
      }
    }
    return [...dropped];
  }

  close(): void {
    for (const agent of [...this.pooled.values(), ...this.fresh.values()]) agent.destroy();
    this.pooled.clear();
    this.fresh.clear();
    this.trust.clear();
    this.origins.clear();
  }

  private agentIn(map: Map<string, http.Agent>, siteUrl: string, tls: ClientTls | undefined, options: http.AgentOptions): http.Agent {
    let origin = this.origins.get(siteUrl);
    if (origin === undefined) this.origins.set(siteUrl, (origin = new URL(siteUrl).origin));
    const trustId = tls?.id ?? '';
    if ((this.trust.get(origin) ?? '') !== trustId) {
      // Connections made under the old trust must not be reused under the new one.
      for (const m of [this.pooled, this.fresh]) {
        const old = m.get(origin);
        if (old) retire(old);
        m.delete(origin);
      }
      this.trust.set(origin, trustId);
    }
    let agent = map.get(origin);
    if (!agent) {
      agent = origin.startsWith('https:') ? new https.Agent({ ...options, ...tls?.options })
        : options.keepAlive === true ? new ReusingAgent(options) : new http.Agent(options);
      map.set(origin, agent);
    }
    return agent;
  }
}

/**
 * A plain-HTTP keep-alive pool that hands an idle connection to a request
 * without Node's generic path. `Agent.addRequest` starts by copying the
 * request's options and the agent's into a new prototype-free (dictionary)
 * object, about 8 us per request on this machine (measured in the gateway
 * under load), only to compute the pool's name; for a pooled connection
 * nothing else of that copy is used. This does the same steps as Node for
 * that case (the last idle connection, as `scheduling: 'lifo'`; the agent's
 * public `reuseSocket`; the request's timeout) and leaves every other case
 * (no idle connection, a closed one, a queue) to Node. The name is Node's own
 * `getName` of the request's options, which for these agents' options (no
 * host, port, family, local address or socket path of their own) is the name
 * Node would compute. Not done: the async-hooks id of a reused socket is not
 * renewed (detour installs no async hooks).
 */
class ReusingAgent extends http.Agent {
  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void {
    const pool = this as unknown as NodeAgentInternals;
    const name = this.getName(options);
    const free = pool.freeSockets[name];
    const socket = free?.[free.length - 1];
    if (free === undefined || socket === undefined || socket.destroyed) {
      (http.Agent.prototype as unknown as NodeAgentInternals).addRequest.call(this, req, options);
      return;
    }
    free.pop();
    if (free.length === 0) delete pool.freeSockets[name];
    this.reuseSocket(socket, req);
    (req as unknown as { onSocket(socket: Socket): void }).onSocket(socket);
    const timeout = (req as { timeout?: number }).timeout;
    if (timeout !== undefined && timeout !== (pool.options.timeout ?? 0)) socket.setTimeout(timeout);
    (pool.sockets[name] ??= []).push(socket);
  }
}

/** What Node's Agent has at run time beyond its published types. */
interface NodeAgentInternals {
  readonly options: { readonly timeout?: number };
  readonly freeSockets: Record<string, Socket[] | undefined>;
  sockets: Record<string, Socket[] | undefined>;
  addRequest(req: http.ClientRequest, options: http.ClientRequestArgs): void;
}

function originOf(siteUrl: string): string | undefined {
  try {
    return new URL(siteUrl).origin;
  } catch {
    return undefined;
  }
}

/** Close an agent's idle connections and make it close each busy one when its request is done. */
function retire(agent: http.Agent): void {
  // Consulted by the agent on every connection that comes free.
  agent.keepSocketAlive = () => false;
  for (const sockets of Object.values(agent.freeSockets)) {
    for (const socket of sockets ?? []) socket.destroy();
  }
}
