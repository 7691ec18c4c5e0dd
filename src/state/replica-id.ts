// A replica's name in the shared store: readable in `detour status` and in Redis
// (which host, which process), with a random suffix so a restarted process that
// got the same pid is not mistaken for its predecessor's lingering heartbeat.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

export function createReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
}
