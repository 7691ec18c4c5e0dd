// Who passive detection counts as the client: the peer, or behind trusted
// proxies the last X-Forwarded-For hop that is not one of them.
import t from 'tap';
import type { IncomingMessage } from 'node:http';
import { clientOf } from '../../src/proxy/forwarder.js';
import { trustedProxies } from '../../src/proxy/trusted-proxies.js';

const req = (peer: string | undefined, xff?: string | string[]): IncomingMessage =>
  ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;

const trusted = trustedProxies(['10.0.0.0/8']);
const rows: Array<[string, IncomingMessage, string]> = [
  ['an untrusted peer is the client, whatever it claims', req('203.0.113.9', '1.2.3.4'), '203.0.113.9'],
  ['a trusted proxy vouches for the last hop', req('10.0.0.5', '198.51.100.7'), '198.51.100.7'],
  ['hops the client wrote itself, left of the vouched one, are ignored', req('10.0.0.5', '6.6.6.6, 198.51.100.7'), '198.51.100.7'],
  ['a chain of trusted proxies is skipped', req('10.0.0.5', '198.51.100.7, 10.1.1.1'), '198.51.100.7'],
  ['repeated headers are one list', req('10.0.0.5', ['198.51.100.7', '10.1.1.1']), '198.51.100.7'],
  ['only trusted hops: the first of them', req('10.0.0.5', '10.2.2.2, 10.1.1.1'), '10.2.2.2'],
  ['a trusted peer without the header is the client', req('10.0.0.5'), '10.0.0.5'],
  ['no address at all', req(undefined), 'unknown'],
];
for (const [name, r, want] of rows) t.equal(clientOf(r, trusted), want, name);
