// WebSocket connections by the site they were sent to. A WebSocket outlives
// every routing decision made after its handshake, so when a site goes down or
// is drained its connections have to be cut here; clients reconnect through
// detour and land on a site that is serving.
import type { Duplex } from 'node:stream';

/** Cuts one connection on both sides without reporting anything about the site. */
export interface Closable {
  abort(): void;
}

export class WebSocketRegistry {
  private readonly bySite = new Map<string, Map<Duplex, Closable>>();

  /** Track `socket` (the client side) until it closes. */
  track(site: string, socket: Duplex, connection: Closable): void {
    if (socket.destroyed) return;
    let sockets = this.bySite.get(site);
    if (!sockets) {
      sockets = new Map();
      this.bySite.set(site, sockets);
    }
    sockets.set(socket, connection);
    socket.once('close', () => this.forget(site, socket));
  }

  count(site: string): number {
    return this.bySite.get(site)?.size ?? 0;
  }

  /** Sites with open connections. */
  sites(): string[] {
    return [...this.bySite.keys()];
  }

  /** Close every connection to `site`; returns how many there were. */
  closeSite(site: string): number {
    const sockets = this.bySite.get(site);
    if (!sockets) return 0;
    this.bySite.delete(site);
    for (const connection of sockets.values()) connection.abort();
    return sockets.size;
  }

  closeAll(): void {
    for (const site of this.sites()) this.closeSite(site);
  }

  private forget(site: string, socket: Duplex): void {
    const sockets = this.bySite.get(site);
    if (!sockets?.delete(socket)) return;
    if (sockets.size === 0) this.bySite.delete(site);
  }
}
