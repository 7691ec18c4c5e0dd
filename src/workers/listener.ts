// The data plane as one process runs it: the client-facing listener, the
// forwarder behind it and the access log. A single-process gateway runs one
// (gateway.ts); with `workers: N` every worker process runs one and the
// primary runs none (worker-main.ts). Either way it only reads the current
// route table and reports live traffic through `passive`.
import http from 'node:http';
import https from 'node:https';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import { indexPolicy, type Policy } from '../config/policy.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RouteTable } from '../routing/route-table.js';
import { Forwarder, type PassiveHealth } from '../proxy/forwarder.js';
import { answerClientError, applyClientLimits, clientServerOptions } from '../proxy/client-limits.js';
import { AccessLog } from '../proxy/access-log.js';
import type { PolicyMaterial } from '../tls/policy-material.js';

/**
 * How long a closing listener keeps idle client connections open for requests
 * already on the wire. Bounded by shutdown.grace.
 */
const SHUTDOWN_LINGER_MS = 500;

export interface DataPlaneListenerDeps {
  readonly policy: Policy;
  readonly material: PolicyMaterial;
  currentTable(): RouteTable;
  readonly passive: PassiveHealth;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Probes doubt this site: its re-sends skip the retry budget. */
  inDoubt(site: string): boolean;
  readonly random?: () => number;
}

export class DataPlaneListener {
  readonly forwarder: Forwarder;
  readonly accessLog: AccessLog;
  readonly server: http.Server;
  readonly #logger: Logger;
  #material: PolicyMaterial;
  #draining = false;
  /** Client connections open (a count: a Set of them churned like the requests of live-list.ts). */
  #clientSockets = 0;
  #lastSocketClosed: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: DataPlaneListenerDeps) {
    const { logger, policy } = deps;
    this.#logger = logger;
    this.#material = deps.material;
    this.accessLog = new AccessLog({ logger: logger.child({ component: 'access-log' }), ...(deps.random ? { random: deps.random } : {}) });
    this.accessLog.update(policy.accessLog);
    this.forwarder = new Forwarder({
      currentTable: deps.currentTable, passive: deps.passive, metrics: deps.metrics, logger: logger.child({ component: 'proxy' }),
      accessLog: this.accessLog, inDoubt: (site) => deps.inDoubt(site),
      ...(deps.random ? { random: deps.random } : {}), clientTls: (siteUrl) => this.#material.sites.get(siteUrl),
    });
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      // Once closing, what still arrives on an open connection is answered, with
      // `connection: close`, so that client moves to another gateway.
      if (this.#draining) res.shouldKeepAlive = false;
      this.forwarder.handle(req, res);
    };
    const serverOptions = clientServerOptions(policy.limits);
    this.server = this.#material.listener
      ? https.createServer({ ...serverOptions, ...this.#material.listener }, onRequest)
      : http.createServer(serverOptions, onRequest);
    this.server.on('upgrade', (req, socket, head) => this.forwarder.handleUpgrade(req, socket, head));
    // Unparseable heads (431 for too many header bytes), heads or requests past their timeout (408).
    this.server.on('clientError', (err, socket) => {
      const status = answerClientError(err, socket);
      const code = (err as { code?: unknown }).code;
      logger.debug({ err: err.message, code, status }, 'client error');
      if (status !== undefined) this.accessLog.refused(socket, status, typeof code === 'string' ? `${code}: ${err.message}` : err.message);
    });
    applyClientLimits(this.server, policy.limits);
    this.server.on('connection', (socket: Socket) => {
      this.#clientSockets++;
      socket.once('close', () => {
        if (--this.#clientSockets === 0) this.#lastSocketClosed?.();
      });
    });
  }

  get isTls(): boolean {
    return this.server instanceof https.Server;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** A reloaded policy: new handshakes get the new certificate; open connections keep theirs. */
  applyPolicy(policy: Policy, material: PolicyMaterial): void {
    this.#material = material;
    if (material.listener && this.server instanceof https.Server) this.server.setSecureContext(material.listener);
    this.forwarder.retainOrigins(policy.sites.map((s) => s.url), policy);
    applyClientLimits(this.server, policy.limits);
    this.accessLog.update(policy.accessLog);
  }

  /** Open WebSockets to a site no route may use any more (drained, pinned away) are cut, so clients reconnect elsewhere. */
  tableChanged(table: RouteTable): void {
    // Asked only for sites with WebSockets open: a table of 10,000 routes is not walked for nothing.
    const routesBySite = indexPolicy(table.policy).routesBySite;
    this.forwarder.retainSites((site) => (routesBySite.get(site) ?? [])
      .some((route) => table.byName.get(route.name)?.eligible.includes(site) === true));
  }

  siteDown(site: string): void {
    this.forwarder.siteDown(site);
  }

  reopenLogs(): void {
    this.accessLog.reopen();
  }

  /** Close a listener that never served (the gateway could not start). */
  async abort(): Promise<void> {
    this.server.close();
    await this.accessLog.close();
  }

  /** Stop accepting, let in-flight requests finish within graceMs, close every connection and the access log. */
  close(graceMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#draining = true;
      // Stop accepting, but leave idle keep-alive connections open a moment: a
      // client may have written a request on one just before the signal, and
      // closing it now would reset a request the client rightly thinks was sent
      // (the chaos suite's SIGTERM scenario saw exactly that). http.Server#close
      // would close idle connections at once, so the listener is closed as a
      // plain net.Server; idle connections go after the linger.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(this.server, () => resolve()));
      if (this.#clientSockets > 0) {
        await Promise.race([
          new Promise<void>((resolve) => { this.#lastSocketClosed = resolve; }),
          delay(Math.min(SHUTDOWN_LINGER_MS, graceMs)),
        ]);
      }
      this.server.closeIdleConnections();
      await this.forwarder.close(graceMs);
      this.server.closeAllConnections();
      await closed;
      await this.accessLog.close();
      this.#logger.debug('data plane closed');
    })();
    return this.#closing;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
