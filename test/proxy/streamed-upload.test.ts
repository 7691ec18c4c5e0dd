// A body too big to hold for a retry streams to the site through a copy. When
// the client breaks that body (a bad chunk, or it goes away mid-upload) the copy
// is destroyed with the client's error: nobody but us listens on it, so an
// unheard error there would crash the gateway (found by test/fuzz/raw-requests).
import t from 'tap';
import { connect } from 'node:net';
import { startRig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const BIG = 70_000; // over the route's retry.maxBodyBytes (64 KiB): streamed, not buffered

function send(port: number, bytes: string, { closeAfterMs }: { closeAfterMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => socket.destroy(), closeAfterMs ?? 5000);
    socket.on('connect', () => socket.write(bytes, 'latin1'));
    socket.on('data', (c: Buffer) => { data += c.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(timer); resolve(data); });
  });
}

for (const [name, tail, closeAfterMs] of [
  ['a bad chunk size after the first chunk', 'zz\r\n\r\n', undefined],
  ['the client going away mid-upload', `${(BIG).toString(16)}\r\n${'b'.repeat(1000)}`, 300],
] as const) {
  t.test(`a streamed chunked upload broken by ${name}: the gateway keeps serving`, async (t) => {
    const rig = await startRig(t, [{ name: 's1', probe: { timeoutMs: 1000 } }], () => ({ routes: [{ name: 'all', sites: ['s1'] }] }));
    await waitFor(async () => (await rig.admin('GET', '/status')).json?.sites?.[0]?.health === 'up', { timeoutMs: 10_000, message: 's1 up' });
    const port = rig.gateway.proxyAddress.port;
    const head = 'POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n';
    const answer = await send(port, `${head}${BIG.toString(16)}\r\n${'a'.repeat(BIG)}\r\n${tail}`, { closeAfterMs });
    if (closeAfterMs === undefined) t.match(answer, /^HTTP\/1\.1 400 /, 'the broken body is refused');
    await waitFor(() => rig.sites.s1!.pending === 0, { timeoutMs: 5000, message: 'the site is not left waiting on the cut upload' });
    const res = await fetch(`${rig.gateway.proxyUrl}/after`);
    t.equal(res.status, 200, 'the next request is served');
    await res.text();
  });
}
