// A simulated data-center site for the demo: answers application requests,
// its health check and its integrity endpoint, and can lose power (listener
// closed, every open connection cut) and come back on the same port.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class SimSite {
  readonly name: string;
  readonly building: string;
  /** Value served at /_integrity as {"checksum": ...}. */
  checksum: string;
  served = 0;
  #server: http.Server | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();

  constructor(name: string, building: string, checksum: string) {
    this.name = name;
    this.building = building;
    this.checksum = checksum;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get isRunning(): boolean {
    return this.#server !== undefined;
  }

  /** Start listening; after a power cut, on the same port as before. */
  async powerOn(): Promise<void> {
    if (this.#server) return;
    const server = http.createServer((req, res) => this.#answer(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** The building goes dark: no more connections, and open ones are cut mid-flight. */
  async powerOff(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (req.url === '/_integrity') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ checksum: this.checksum }));
      return;
    }
    this.served++;
    // A little service time, so that a power cut catches requests in flight.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ site: this.name, building: this.building, path: req.url }));
    }, 5 + Math.floor(Math.random() * 10));
  }
}
