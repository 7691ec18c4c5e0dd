// The library copies its server options and each call's options into a new
// object per request. When a call's options add properties the server's do
// not have, V8's optimised copy gives every request's object a hidden class
// of its own, allocated in the old generation: slower copies and old-space
// garbage that forced a mark-compact every few seconds under load
// (src/proxy/http-proxy-adapter.ts, siteProxy). This pins that the copies
// made once the code is optimised share one hidden class, in a child
// process (it needs --allow-natives-syntax), through the built adapter.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./fixtures/options-shape-child.mjs', import.meta.url));
const adapter = fileURLToPath(new URL('../../dist/proxy/http-proxy-adapter.js', import.meta.url));

t.test('per-request options copies share one hidden class once optimised', async (t) => {
  if (!existsSync(adapter)) throw new Error(`${adapter} is missing: run \`npm run build\` first`);
  const proc = spawn(process.execPath, ['--allow-natives-syntax', child, '6000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
  proc.stderr.setEncoding('utf8').on('data', (c: string) => { err += c; });
  const killer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  t.teardown(() => { clearTimeout(killer); if (proc.exitCode === null) proc.kill('SIGKILL'); });
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  t.equal(code, 0, `child exited cleanly ${err}`);
  const result = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { requests: number; failed: number; kept: number; sameMap: boolean };
  t.equal(result.requests, 6000);
  t.equal(result.failed, 0, 'every request was proxied');
  t.equal(result.kept, 20, 'the library handed out its per-request options');
  t.equal(result.sameMap, true, 'the last 20 copies share one hidden class');
});
