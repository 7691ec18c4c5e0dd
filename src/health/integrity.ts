// The integrity gate's comparison, pure: what one check of the preferred site
// (where traffic wants to go back to) and the serving site (where it is now)
// says about failing back. Anything we could not read is a failure: the gate
// exists so that primary and backup never silently diverge, so doubt blocks.
import { createHash } from 'node:crypto';
import type { VerifyPolicy } from '../config/policy.js';

export type Answer =
  | { readonly ok: true; readonly status: number; readonly body: string }
  | { readonly ok: false; readonly error: string };

export interface IntegritySide {
  readonly site: string;
  /** undefined = not fetched (with `max`, only the preferred site is read). */
  readonly answer: Answer | undefined;
}

export type IntegrityResult = 'match' | 'mismatch' | 'error';

export interface IntegrityComparison {
  readonly ok: boolean;
  /** `checksum a1f3 (cyber1) != 9c2e (serpong)`, `serpong: status 500`, ... */
  readonly detail: string;
  /** For metrics: error = we could not get comparable values. */
  readonly result: IntegrityResult;
}

const SHOWN_VALUE_CHARS = 16;

export function compareIntegrity(verify: VerifyPolicy, preferred: IntegritySide, serving: IntegritySide): IntegrityComparison {
  if (verify.max !== undefined) return compareBound(verify, verify.max, preferred);
  if (verify.field !== undefined) return compareFields(verify.field, preferred, serving);
  return compareBodies(preferred, serving);
}

function compareBound(verify: VerifyPolicy, max: number, preferred: IntegritySide): IntegrityComparison {
  const field = verify.field;
  if (field === undefined) return error(`verify.max ${max} needs a field to read`);
  const read = readField(preferred, field);
  if (!read.ok) return error(read.error);
  const value = read.value;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return error(`${preferred.site}: field ${field} is not a finite number (${shorten(value)})`);
  }
  return value <= max
    ? match(`${field} ${value} (${preferred.site}) <= max ${max}`)
    : mismatch(`${field} ${value} (${preferred.site}) > max ${max}`);
}

function compareFields(field: string, preferred: IntegritySide, serving: IntegritySide): IntegrityComparison {
  const a = readField(preferred, field);
  const b = readField(serving, field);
  if (!a.ok || !b.ok) return error([a, b].flatMap((r) => (r.ok ? [] : [r.error])).join('; '));
  const shownA = shorten(a.value);
  const shownB = shorten(b.value);
  return isDeepEqual(a.value, b.value)
    ? match(`${field} ${shownA} (${preferred.site}) == ${shownB} (${serving.site})`)
    : mismatch(`${field} ${shownA} (${preferred.site}) != ${shownB} (${serving.site})`);
}

function compareBodies(preferred: IntegritySide, serving: IntegritySide): IntegrityComparison {
  const a = readBody(preferred);
  const b = readBody(serving);
  if (!a.ok || !b.ok) return error([a, b].flatMap((r) => (r.ok ? [] : [r.error])).join('; '));
  const hashA = shortHash(a.body);
  const hashB = shortHash(b.body);
  return a.body === b.body
    ? match(`body ${hashA} (${preferred.site}) == ${hashB} (${serving.site})`)
    : mismatch(`body ${hashA} (${preferred.site}) != ${hashB} (${serving.site})`);
}

type BodyRead = { readonly ok: true; readonly body: string } | { readonly ok: false; readonly error: string };
type FieldRead = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

function readBody(side: IntegritySide): BodyRead {
  const { site, answer } = side;
  if (answer === undefined) return { ok: false, error: `${site}: not fetched` };
  if (!answer.ok) return { ok: false, error: `${site}: ${answer.error}` };
  if (answer.status < 200 || answer.status > 299) return { ok: false, error: `${site}: status ${answer.status}` };
  return { ok: true, body: answer.body };
}

function readField(side: IntegritySide, field: string): FieldRead {
  const body = readBody(side);
  if (!body.ok) return body;
  let json: unknown;
  try {
    json = JSON.parse(body.body);
  } catch {
    return { ok: false, error: `${side.site}: body is not JSON` };
  }
  const value = pickField(json, field);
  // null counts as missing: a site that cannot say its checksum must not match another that cannot either.
  if (value === undefined || value === null) return { ok: false, error: `${side.site}: field ${field} missing` };
  return { ok: true, value };
}

/** Dotted path (`replication.lagSeconds`, `shards.0.checksum`), own properties only. */
function pickField(json: unknown, field: string): unknown {
  let current: unknown = json;
  for (const key of field.split('.')) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => isDeepEqual(v, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  return keys.length === Object.keys(rb).length && keys.every((k) => Object.hasOwn(rb, k) && isDeepEqual(ra[k], rb[k]));
}

/** Long values keep head and tail: checksums that differ often differ only at one end. */
function shorten(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  if (text.length <= SHOWN_VALUE_CHARS) return text;
  return `${text.slice(0, 8)}…${text.slice(-7)}`;
}

function shortHash(body: string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex').slice(0, 8)}`;
}

function match(detail: string): IntegrityComparison {
  return { ok: true, detail, result: 'match' };
}

function mismatch(detail: string): IntegrityComparison {
  return { ok: false, detail, result: 'mismatch' };
}

function error(detail: string): IntegrityComparison {
  return { ok: false, detail, result: 'error' };
}
