// Reading the PEM files and secrets a policy names, with the one set of checks
// that `detour check`, start and every reload share: a file that cannot be
// read, holds no PEM, a key that is not the certificate's, a certificate that
// has expired or is not valid yet. Every message names the file, so an
// operator knows what to fix; contents never appear in a message.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type FileResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly message: string };

export interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** End of the leaf certificate's validity. */
  readonly notAfterMs: number;
}

/** Which of the pair a problem is about, so it can be reported at that key. */
export type PairResult = { readonly ok: true; readonly value: KeyPair } | { readonly ok: false; readonly at: 'cert' | 'key'; readonly message: string };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function readFileBytes(path: string): FileResult<Buffer> {
  try {
    return { ok: true, value: readFileSync(path) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? String(err));
    return { ok: false, message: `cannot read ${path}: ${why}` };
  }
}

/** Every certificate in a PEM file (a chain or a CA bundle), parsed; the first is the leaf. */
export function parseCertificates(path: string, pem: Buffer): FileResult<X509Certificate[]> {
  const blocks = pem.toString('utf8').match(PEM_CERT) ?? [];
  if (blocks.length === 0) return { ok: false, message: `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` };
  const certs: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch {
      return { ok: false, message: `${path}: certificate ${index + 1} is not a valid X.509 certificate` };
    }
  }
  return { ok: true, value: certs };
}

/** A served certificate must be valid now, all along its chain. */
export function checkValidity(path: string, certs: readonly X509Certificate[], nowMs: number): FileResult<number> {
  for (const [index, cert] of certs.entries()) {
    const which = index === 0 ? 'the certificate' : `chain certificate ${index + 1}`;
    const notAfterMs = Date.parse(cert.validTo);
    const notBeforeMs = Date.parse(cert.validFrom);
    if (notAfterMs < nowMs) return { ok: false, message: `${which} in ${path} expired on ${new Date(notAfterMs).toISOString()}` };
    if (notBeforeMs > nowMs) return { ok: false, message: `${which} in ${path} is not valid before ${new Date(notBeforeMs).toISOString()}` };
  }
  return { ok: true, value: Date.parse(certs[0]!.validTo) };
}

/** A certificate (chain allowed) and its private key, ready for a TLS context. */
export function readKeyPair(certPath: string, keyPath: string, nowMs: number): PairResult {
  const cert = readFileBytes(certPath);
  if (!cert.ok) return { ok: false, at: 'cert', message: cert.message };
  const certs = parseCertificates(certPath, cert.value);
  if (!certs.ok) return { ok: false, at: 'cert', message: certs.message };
  const validity = checkValidity(certPath, certs.value, nowMs);
  if (!validity.ok) return { ok: false, at: 'cert', message: validity.message };
  const key = readFileBytes(keyPath);
  if (!key.ok) return { ok: false, at: 'key', message: key.message };
  let matches: boolean;
  try {
    matches = certs.value[0]!.checkPrivateKey(createPrivateKey(key.value));
  } catch (err) {
    const why = /passphrase/i.test((err as Error).message) ? 'it is encrypted (detour needs an unencrypted key file)' : 'it holds no PEM private key';
    return { ok: false, at: 'key', message: `cannot use ${keyPath}: ${why}` };
  }
  if (!matches) return { ok: false, at: 'key', message: `${keyPath} is not the private key of the certificate in ${certPath}` };
  return { ok: true, value: { cert: cert.value, key: key.value, notAfterMs: validity.value } };
}

/** Trust anchors: at least one parseable certificate. Expired ones are left to the TLS handshake to judge. */
export function readCaFile(path: string): FileResult<Buffer> {
  const bytes = readFileBytes(path);
  if (!bytes.ok) return bytes;
  const certs = parseCertificates(path, bytes.value);
  return certs.ok ? bytes : certs;
}

/** A secret in a file (Kubernetes/Docker secrets end it with a newline, which is not part of it). */
export function readTokenFile(path: string): FileResult<string> {
  const bytes = readFileBytes(path);
  if (!bytes.ok) return bytes;
  const token = bytes.value.toString('utf8').trim();
  if (token === '') return { ok: false, message: `${path} is empty (it should hold the admin token)` };
  if (/[\r\n]/.test(token)) return { ok: false, message: `${path} holds more than one line (it should hold only the admin token)` };
  return { ok: true, value: token };
}
