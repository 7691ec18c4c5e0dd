// A free TCP port on loopback, for servers that must be told their port up front
// (redis-server, prometheus). Binds port 0, reads what the kernel chose, releases
// it; callers retry on EADDRINUSE, since another process may take it meanwhile.
import { createServer } from 'node:net';

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
