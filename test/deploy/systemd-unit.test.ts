// The shipped systemd unit: systemd itself must accept it without a single
// warning (systemd-analyze verify exits 0 even on unknown keys, so its output
// must be empty too), and it must keep the promises the README makes about it.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const unit = fileURLToPath(new URL('../../deploy/detour.service', import.meta.url));

function verify(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile('systemd-analyze', ['verify', file], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('systemd-analyze is missing: install Debian\'s systemd package (npm test runs .ci/ensure-tools.sh)'));
        return;
      }
      resolve({ code, output: `${stdout}${stderr}`.trim() });
    });
  });
}

t.test('systemd-analyze verify accepts deploy/detour.service without a warning', async (t) => {
  const { code, output } = await verify(unit);
  t.equal(code, 0, 'exit 0');
  t.equal(output, '', 'no warning');
});

t.test('the check can fail: a misspelt key or a missing program is reported', async (t) => {
  const dir = t.testdir({});
  const text = readFileSync(unit, 'utf8');
  const typo = join(dir, 'typo.service');
  writeFileSync(typo, text.replace('Restart=on-failure', 'Restartt=on-failure'));
  t.match((await verify(typo)).output, /Unknown key 'Restartt'/);
  const missing = join(dir, 'missing.service');
  writeFileSync(missing, text.replace('ExecStart=/usr/bin/node ', 'ExecStart=/usr/bin/no-such-node '));
  t.not((await verify(missing)).code, 0);
});

t.test('the unit keeps what the README promises', async (t) => {
  const lines = readFileSync(unit, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  const has = (line: string) => t.ok(lines.includes(line), line);
  has('User=detour');
  has('CapabilityBoundingSet=CAP_NET_BIND_SERVICE');
  has('AmbientCapabilities=CAP_NET_BIND_SERVICE');
  has('NoNewPrivileges=yes');
  has('ProtectSystem=strict');
  has('ReadWritePaths=/var/log/detour /var/lib/detour');
  has('ExecReload=/bin/kill -HUP $MAINPID');
  has('Restart=on-failure');
  t.ok(lines.some((l) => /^ExecStart=\S+ \S+\/dist\/cli\.js start -c \S+$/.test(l)), 'ExecStart runs detour start -c FILE');
});
