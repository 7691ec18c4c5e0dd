// Long-lived connections and evacuation: a WebSocket open through detour to a
// building that is then drained is cut, and the client's reconnect lands on the
// other building.
import t from 'tap';
import { Registry } from 'prom-client';
import { startGateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/logger.js';
import { testPolicy } from '../helpers/policy.js';
import { TOKEN, fastHealth } from '../helpers/gateway.js';
import { once } from '../helpers/wait.js';
import { openWs, startWsSite } from '../helpers/websocket.js';

t.test('draining a building cuts WebSockets into it; the reconnect lands on the other building', async (t) => {
  const cyber1 = await startWsSite(t, 'cyber1');
  const serpong = await startWsSite(t, 'serpong');
  const policy = testPolicy({
    admin: { token: TOKEN },
    sites: [
      { name: 'cyber1', url: cyber1.url, building: 'gedung-cyber-1', health: fastHealth },
      { name: 'serpong', url: serpong.url, building: 'serpong-dc', health: fastHealth },
    ],
    routes: [{ name: 'live', sites: ['cyber1', 'serpong'] }],
  });
  const gateway = await startGateway({ policy, logger: silentLogger(), registry: new Registry() });
  t.teardown(() => gateway.close());

  const first = await openWs(t, `${gateway.proxyUrl}/live`);
  t.equal(first.site, 'cyber1');
  first.socket.write('hello');
  t.equal(String((await once(first.socket, 'data', 3000))[0]), 'cyber1:hello');

  const closed = once(first.socket, 'close', 5000);
  const res = await fetch(`${gateway.adminUrl}/drain`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ building: 'gedung-cyber-1' }),
  });
  t.equal(res.status, 200);
  await closed;
  t.pass('the WebSocket into the drained building was cut');

  const second = await openWs(t, `${gateway.proxyUrl}/live`);
  t.equal(second.site, 'serpong', 'the reconnect goes to the other building');
  second.socket.write('again');
  t.equal(String((await once(second.socket, 'data', 3000))[0]), 'serpong:again');
});
