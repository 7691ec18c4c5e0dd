// One keep-alive connection pool per site origin, so a busy route does not pay
// a TCP (and TLS) handshake per request, with bounds so a hanging building
// cannot make detour open sockets without limit.
import http from 'node:http';
import https from 'node:https';

export interface AgentLimits {
  /** Concurrent connections per site; further requests queue inside the agent. */
  readonly maxSockets: number;
  /** Idle connections kept per site. */
  readonly maxFreeSockets: number;
}

export const defaultAgentLimits: AgentLimits = { maxSockets: 512, maxFreeSockets: 64 };

export class UpstreamAgents {
  private readonly agents = new Map<string, http.Agent>();

  constructor(private readonly limits: AgentLimits = defaultAgentLimits) {}

  /** The pool for a site URL; created on first use, keyed by origin so a reload that keeps the URL keeps the pool. */
  agentFor(siteUrl: string): http.Agent {
    const origin = new URL(siteUrl).origin;
    let agent = this.agents.get(origin);
    if (!agent) {
      const options: http.AgentOptions = {
        keepAlive: true,
        maxSockets: this.limits.maxSockets,
        maxFreeSockets: this.limits.maxFreeSockets,
        // Reuse the most recent idle socket: the least likely to have been closed by the site meanwhile.
        scheduling: 'lifo',
      };
      agent = origin.startsWith('https:') ? new https.Agent(options) : new http.Agent(options);
      this.agents.set(origin, agent);
    }
    return agent;
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
