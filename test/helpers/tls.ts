// Certificates made at test time with openssl, in a temporary directory removed
// at teardown: a private CA, server certificates for chosen names, a second
// ("impostor") CA, expired certificates, client certificates for mutual TLS.
// EC P-256 keys: generating them takes milliseconds.
//
// ```ts
// const ca = await makeCa(t, 'dc-ca');
// const site = ca.issue('ceir', { dns: ['ceir.internal'] });   // { cert, key } paths
// const expired = ca.issue('old', { dns: ['ceir.internal'], expired: true });
// ```
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

export interface CertFiles {
  /** PEM certificate path (leaf first, then the chain when `chain` was asked for). */
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  /** notAfter before notBefore: expired the moment it is made. */
  readonly expired?: boolean;
  /** For a client certificate (extendedKeyUsage clientAuth). */
  readonly client?: boolean;
  /** Append the CA certificate to the leaf, as servers send a chain. */
  readonly chain?: boolean;
}

export interface TestCa extends CertFiles {
  readonly name: string;
  readonly dir: string;
  issue(name: string, opts?: IssueOptions): CertFiles;
  pem(path: string): string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate authority in its own temporary directory (deleted when the test ends). */
export function makeCa(t: Test, name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `detour-tls-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl(['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '3'], dir);
  let serial = 0;
  return {
    name, dir, cert, key,
    pem: (path) => readFileSync(path, 'utf8'),
    issue(leaf, opts = {}) {
      serial++;
      const base = join(dir, `${leaf}-${serial}`);
      const sans = [...(opts.dns ?? []).map((d) => `DNS:${d}`), ...(opts.ip ?? []).map((i) => `IP:${i}`)];
      const ext = [
        'basicConstraints=CA:FALSE',
        `extendedKeyUsage=${opts.client ? 'clientAuth' : 'serverAuth'}`,
        ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
      ];
      writeFileSync(`${base}.ext`, `${ext.join('\n')}\n`);
      openssl(['req', '-new', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${leaf}`], dir);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', cert, '-CAkey', key, '-set_serial', String(1000 + serial),
        '-out', `${base}.crt`, '-days', opts.expired ? '-1' : '2', '-extfile', `${base}.ext`], dir);
      if (opts.chain) writeFileSync(`${base}.crt`, readFileSync(`${base}.crt`, 'utf8') + readFileSync(cert, 'utf8'));
      return { cert: `${base}.crt`, key: `${base}.key` };
    },
  };
}
