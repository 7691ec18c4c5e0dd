// The integrity gate's comparison, pure: what one check of the preferred site
// (where traffic wants to go back to) and the serving site (where it is now)
// says about failing back. Anything we could not read is a failure: the gate
// exists so that primary and backup never silently diverge, so doubt blocks.
//
// What is compared is what the sites sent, never a lossy reading of it:
// - whole bodies: the raw bytes (any encoding);
// - a field: its JSON value with numbers as their literal text, so
//   9007199254740993 differs from ...992 (JSON.parse rounds both to ...992), and
//   1.0 differs from 1 (a site that changes how it prints a number has changed
//   what it sends; equal meaning is not proof of equal data). Strings compare
//   decoded, objects in any key order. The body must be valid UTF-8: two
//   Latin-1 bodies would otherwise both decode to U+FFFD and match;
// - a bound (`max`): the literal compared exactly in decimal, and a number
//   beyond the safe integer range (2^53-1) is an error, not a guess.
import { createHash } from 'node:crypto';
import type { VerifyPolicy } from '../config/policy.js';
import { compareNumberText, isSameRawJson, pickRawField, readRawJson, renderRawJson, type RawJson } from './raw-json.js';

export type Answer =
  | { readonly ok: true; readonly status: number; readonly body: Uint8Array }
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
  if (value.kind !== 'number') {
    return error(`${preferred.site}: field ${field} is not a number (${shorten(value)})`);
  }
  const asDouble = Number(value.text);
  if (!Number.isFinite(asDouble)) {
    return error(`${preferred.site}: field ${field} is not a finite number (${shorten(value)})`);
  }
  if (Math.abs(asDouble) > Number.MAX_SAFE_INTEGER) {
    return error(`${preferred.site}: field ${field} ${shorten(value)} is beyond the safe integer range (±${Number.MAX_SAFE_INTEGER}); not compared with max ${max}`);
  }
  return compareNumberText(value.text, max) <= 0
    ? match(`${field} ${value.text} (${preferred.site}) <= max ${max}`)
    : mismatch(`${field} ${value.text} (${preferred.site}) > max ${max}`);
}

function compareFields(field: string, preferred: IntegritySide, serving: IntegritySide): IntegrityComparison {
  const a = readField(preferred, field);
  const b = readField(serving, field);
  if (!a.ok || !b.ok) return error([a, b].flatMap((r) => (r.ok ? [] : [r.error])).join('; '));
  const shownA = shorten(a.value);
  const shownB = shorten(b.value);
  return isSameRawJson(a.value, b.value)
    ? match(`${field} ${shownA} (${preferred.site}) == ${shownB} (${serving.site})`)
    : mismatch(`${field} ${shownA} (${preferred.site}) != ${shownB} (${serving.site})`);
}

function compareBodies(preferred: IntegritySide, serving: IntegritySide): IntegrityComparison {
  const a = readBody(preferred);
  const b = readBody(serving);
  if (!a.ok || !b.ok) return error([a, b].flatMap((r) => (r.ok ? [] : [r.error])).join('; '));
  const hashA = shortHash(a.body);
  const hashB = shortHash(b.body);
  return Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength).equals(b.body)
    ? match(`body ${hashA} (${preferred.site}) == ${hashB} (${serving.site})`)
    : mismatch(`body ${hashA} (${preferred.site}) != ${hashB} (${serving.site})`);
}

type BodyRead = { readonly ok: true; readonly body: Uint8Array } | { readonly ok: false; readonly error: string };
type FieldRead = { readonly ok: true; readonly value: RawJson } | { readonly ok: false; readonly error: string };

function readBody(side: IntegritySide): BodyRead {
  const { site, answer } = side;
  if (answer === undefined) return { ok: false, error: `${site}: not fetched` };
  if (!answer.ok) return { ok: false, error: `${site}: ${answer.error}` };
  if (answer.status < 200 || answer.status > 299) return { ok: false, error: `${site}: status ${answer.status}` };
  return { ok: true, body: answer.body };
}

// fatal: a byte sequence that is not UTF-8 is an error, never U+FFFD (which would make Müller and Mäller in Latin-1 equal).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function readField(side: IntegritySide, field: string): FieldRead {
  const body = readBody(side);
  if (!body.ok) return body;
  let text: string;
  try {
    text = utf8.decode(body.body);
  } catch {
    return { ok: false, error: `${side.site}: body is not valid UTF-8` };
  }
  const json = readRawJson(text);
  if (!json.ok) return { ok: false, error: `${side.site}: body is not JSON (${json.error})` };
  const value = pickRawField(json.value, field);
  // null counts as missing: a site that cannot say its checksum must not match another that cannot either.
  if (value === undefined || (value.kind === 'literal' && value.text === 'null')) {
    return { ok: false, error: `${side.site}: field ${field} missing` };
  }
  return { ok: true, value };
}

/** Long values keep head and tail: checksums that differ often differ only at one end. */
function shorten(value: RawJson): string {
  const text = renderRawJson(value);
  if (text.length <= SHOWN_VALUE_CHARS) return text;
  return `${text.slice(0, 8)}…${text.slice(-7)}`;
}

function shortHash(body: Uint8Array): string {
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
