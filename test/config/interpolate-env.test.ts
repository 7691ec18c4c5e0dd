import t from 'tap';
import { describeUnset, interpolateEnv } from '../../src/config/interpolate-env.js';

const env = { HOST: 'ceir.example.go.id', PORT: '8080', EMPTY: '' };

// [input, expected value or error text, unset names]
const cases: Array<{ input: string; value?: string; unset?: string[]; error?: string }> = [
  { input: 'plain text', value: 'plain text' },
  { input: '${HOST}', value: 'ceir.example.go.id' },
  { input: 'http://${HOST}:${PORT}/x', value: 'http://ceir.example.go.id:8080/x' },
  { input: '${MISSING:-fallback}', value: 'fallback' },
  { input: '${EMPTY:-fallback}', value: 'fallback', unset: [] },
  { input: '${EMPTY}', value: '' },
  { input: '${PORT:-1}', value: '8080' },
  { input: '${MISSING:-}', value: '' },
  { input: '${MISSING:-a:-b}', value: 'a:-b' },
  { input: '$${HOST}', value: '${HOST}' },
  { input: 'cost $5, $HOME, $', value: 'cost $5, $HOME, $' },
  { input: '$$${HOST}', value: '$${HOST}' },
  { input: '${MISSING}-${ALSO}-${MISSING}', value: '--', unset: ['MISSING', 'ALSO'] },
  { input: '${HOST', error: '"${" is never closed by "}" (write "$${" for a literal "${")' },
  { input: '${}', error: '"${}" is not a variable reference: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _)' },
  { input: '${1ABC}', error: '"${1ABC}" is not a variable reference: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _)' },
  { input: '${A-b}', error: '"${A-b}" is not a variable reference: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _)' },
];

for (const c of cases) {
  t.test(JSON.stringify(c.input), async (t) => {
    const result = interpolateEnv(c.input, env);
    if (c.error !== undefined) {
      t.same(result, { ok: false, message: c.error });
      return;
    }
    t.ok(result.ok);
    if (!result.ok) return;
    t.equal(result.value, c.value);
    t.same(result.unset, c.unset ?? []);
    t.equal(result.usedVars, c.input.replaceAll('$${', '').includes('${'));
  });
}

t.test('unset messages', async (t) => {
  t.equal(describeUnset(['DETOUR_ADMIN_TOKEN']), 'environment variable DETOUR_ADMIN_TOKEN is not set');
  t.equal(describeUnset(['A', 'B']), 'environment variables A, B are not set');
});
