// Property-based tests of the policy parser and `detour check`: random text,
// random YAML documents shaped like a policy, and the shipped examples mutated
// line by line and byte by byte. Whatever the input, the parser returns (never
// throws), and every problem is one positioned line `FILE:LINE:COL path: message`
// that points inside the file. Fixed seed and bounded runs: seconds, repeatable.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parsePolicy } from '../../src/config/parse-policy.js';
import { childPathKey, pathKey } from '../../src/config/read-yaml-tree.js';
import { formatPolicyError, type ParseResult } from '../../src/config/policy.js';
import { buildProgram } from '../../src/cli.js';

const SEED = 20261201;
const configDir = fileURLToPath(new URL('../../config/', import.meta.url));
const examples = readdirSync(configDir).filter((n) => n.endsWith('.yaml')).sort()
  .map((n) => readFileSync(join(configDir, n), 'utf8'));
const env = { DETOUR_ADMIN_TOKEN: 'fuzz-token', PORT: '8080' };
const LINE = /^F\.yaml:(\d+):(\d+) (.+?): (.+)$/s;

/** Holds for every result: ok, or a non-empty list of single-line, positioned problems inside the text. */
function checkResult(result: ParseResult, text: string): string | null {
  if (result.ok) return null;
  if (result.errors.length === 0) return 'not ok but no errors';
  const lineCount = text.split('\n').length;
  for (const e of result.errors) {
    const line = formatPolicyError(e);
    if (/[\r\n]/.test(line)) return `a problem spans lines: ${JSON.stringify(line)}`;
    const m = LINE.exec(line);
    if (!m) return `not FILE:LINE:COL path: message: ${JSON.stringify(line)}`;
    if (!Number.isInteger(e.line) || e.line < 1 || e.line > lineCount + 1) return `line ${e.line} outside 1..${lineCount + 1}: ${line}`;
    if (!Number.isInteger(e.col) || e.col < 1) return `column ${e.col}: ${line}`;
  }
  return null;
}

function parseProperty(text: string): boolean {
  let result: ParseResult;
  try {
    result = parsePolicy(text, 'F.yaml', env);
  } catch (err) {
    throw new Error(`parsePolicy threw on ${JSON.stringify(text)}: ${String(err)}`);
  }
  const problem = checkResult(result, text);
  if (problem) throw new Error(`${problem}\ninput: ${JSON.stringify(text)}`);
  return true;
}

// Fragments that YAML and the policy treat specially: structure, anchors, tags,
// interpolation, durations, the keys the schema knows.
const tokens = [
  ': ', '- ', '{', '}', '[', ']', ',', '#', '&a ', '*a', '!!binary ', '!!str ', '? ', '|', '>', '"', "'", '\t', '\n', '  ',
  '${', '${X}', '${UNSET}', '${X:-1s}', '}', '%', '@', '`', '---', '...', '<<: *a', '\u0000', '\ufeff', '\u2028', 'é',
  'sites', 'routes', 'listen', 'admin', 'drain', 'unavailable', 'state', 'health', 'failback', 'failover', 'ramp',
  'url', 'building', 'interval', 'timeout', 'holdDown', 'verify', 'priority', 'mode', 'auto', 'manual',
  '1s', '0ms', '-1s', '5m', '2h', '1e999', '0x1F', '999999999999999999999', 'null', '~', 'true', 'NaN',
  'http://127.0.0.1:1', 'redis://x', '100', '-1', '0',
];
const token = fc.constantFrom(...tokens);
const example = fc.constantFrom(...examples);

type Mutation = (text: string) => string;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((i): Mutation => (s) => { const l = s.split('\n'); l.splice(i % l.length, 1); return l.join('\n'); }),
  fc.nat().map((i): Mutation => (s) => { const l = s.split('\n'); const k = i % l.length; l.splice(k, 0, l[k]!); return l.join('\n'); }),
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutation => (s) => {
    const l = s.split('\n'); const a = i % l.length; const b = j % l.length; [l[a], l[b]] = [l[b]!, l[a]!]; return l.join('\n');
  }),
  fc.tuple(fc.nat(), token).map(([i, tok]): Mutation => (s) => { const k = i % (s.length + 1); return s.slice(0, k) + tok + s.slice(k); }),
  fc.tuple(fc.nat(), fc.string({ maxLength: 3, unit: 'binary' })).map(([i, r]): Mutation => (s) => {
    const k = i % (s.length + 1); return s.slice(0, k) + r + s.slice(k + 1);
  }),
  fc.nat().map((i): Mutation => (s) => s.slice(0, i % (s.length + 1))),
  fc.nat().map((i): Mutation => (s) => { const l = s.split('\n'); const k = i % l.length; l[k] = `  ${l[k]}`; return l.join('\n'); }),
);

t.test('random text never crashes the parser; problems are positioned lines', async (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), parseProperty), { seed: SEED, numRuns: 300 });
  fc.assert(fc.property(fc.array(token, { maxLength: 40 }).map((a) => a.join('')), parseProperty), { seed: SEED, numRuns: 400 });
  t.pass('300 random strings and 400 token soups');
});

t.test('mutated example policies never crash the parser; problems are positioned lines', async (t) => {
  t.ok(examples.length >= 3, 'examples to mutate');
  fc.assert(fc.property(example, fc.array(mutation, { minLength: 1, maxLength: 6 }), (text, ms) => {
    return parseProperty(ms.reduce((s, m) => m(s), text));
  }), { seed: SEED, numRuns: 400 });
  t.pass('400 mutated examples');
});

// Documents that look like policies: known keys, values of any JSON type.
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('1s', '250ms', 'x', '', 'http://127.0.0.1:8080', 'https://[::1]:1', '${X}', -1, 0, 1e21, null),
);
const site = fc.dictionary(fc.constantFrom('url', 'building', 'timeouts', 'health', 'passive', 'tls', 'colour'), anyValue, { maxKeys: 5 });
const route = fc.dictionary(
  fc.constantFrom('name', 'match', 'sites', 'priority', 'failover', 'failback', 'retry', 'limits', 'extra'),
  fc.oneof(anyValue, fc.array(fc.constantFrom('a', 'b', 'c', 'zz'), { maxLength: 4 })), { maxKeys: 6 },
);
const policyShaped = fc.record({
  listen: anyValue,
  admin: anyValue,
  sites: fc.oneof(fc.dictionary(fc.constantFrom('a', 'b', 'c'), site, { maxKeys: 3 }), anyValue),
  routes: fc.oneof(fc.array(route, { maxLength: 3 }), anyValue),
  drain: anyValue,
  unavailable: anyValue,
  state: anyValue,
}, { requiredKeys: [] });

t.test('policy-shaped YAML documents never crash the parser', async (t) => {
  fc.assert(fc.property(policyShaped, (doc) => parseProperty(stringify(doc))), { seed: SEED, numRuns: 400 });
  t.pass('400 policy-shaped documents');
});

t.test('detour check: exit 0 with "ok", or exit 1 with one positioned line per problem', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'detour-fuzz-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let runs = 0;
  let failures = 0;
  await fc.assert(fc.asyncProperty(example, fc.array(mutation, { maxLength: 4 }), async (text, ms) => {
    const file = join(dir, `p${runs++}.yaml`);
    writeFileSync(file, ms.reduce((s, m) => m(s), text));
    let out = '';
    let err = '';
    let code = -1;
    await buildProgram({ out: (s) => { out += s; }, err: (s) => { err += s; }, env, setExitCode: (n) => { code = n; } })
      .parseAsync(['node', 'detour', 'check', '-c', file]);
    if (code === 0) return out === `${file}: ok\n` && err === '';
    failures++;
    if (code !== 1 || out !== '' || !err.endsWith('\n')) return false;
    const lines = err.slice(0, -1).split('\n');
    const positioned = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+ .+?: .+$`, 's');
    return lines.length > 0 && lines.every((l) => positioned.test(l));
  }), { seed: SEED, numRuns: 60 });
  t.ok(failures > 0, `mutations produced invalid files too (${failures} of ${runs})`);
  t.ok(failures < runs, 'and some valid ones');
});

t.test('detour check on a file that is missing or a directory: exit 1, positioned', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'detour-fuzz-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const file of [join(dir, 'missing.yaml'), dir]) {
    let err = '';
    let code = -1;
    await buildProgram({ out: () => {}, err: (s) => { err += s; }, env, setExitCode: (n) => { code = n; } })
      .parseAsync(['node', 'detour', 'check', '-c', file]);
    t.equal(code, 1, file);
    t.match(err, /^.+:1:1 \(file\): cannot read the policy file/, file);
  }
});

t.test('childPathKey extends a pathKey exactly as pathKey of the longer path', async (t) => {
  const segment = fc.oneof(fc.string(), fc.nat(), fc.constantFrom('"', '\\', ',', ']', '[', '__proto__'));
  fc.assert(fc.property(fc.array(segment, { maxLength: 6 }), segment, (path, last) => childPathKey(pathKey(path), last) === pathKey([...path, last])), { seed: 20261201, numRuns: 2000 });
  t.pass('2000 paths');
});
