import t from 'tap';
import { createAuthorizer, tokenNotConfiguredMessage } from '../../src/admin/auth.js';
import { DetourError } from '../../src/errors.js';

// Each case: configured token, Authorization header, expected outcome (null = allowed).
const cases: Array<{ name: string; token: string | undefined; header: string | undefined; expect: null | { status: number; code: string } }> = [
  { name: 'no token configured, no header', token: undefined, header: undefined, expect: { status: 403, code: 'forbidden' } },
  { name: 'no token configured, any header', token: undefined, header: 'Bearer anything', expect: { status: 403, code: 'forbidden' } },
  { name: 'empty configured token is no token', token: '', header: 'Bearer ', expect: { status: 403, code: 'forbidden' } },
  { name: 'missing header', token: 'abc', header: undefined, expect: { status: 401, code: 'unauthorized' } },
  { name: 'empty header', token: 'abc', header: '', expect: { status: 401, code: 'unauthorized' } },
  { name: 'basic scheme', token: 'abc', header: 'Basic abc', expect: { status: 401, code: 'unauthorized' } },
  { name: 'token without scheme', token: 'abc', header: 'abc', expect: { status: 401, code: 'unauthorized' } },
  { name: 'wrong token', token: 'abc', header: 'Bearer abd', expect: { status: 403, code: 'forbidden' } },
  { name: 'longer token', token: 'abc', header: 'Bearer abcd', expect: { status: 403, code: 'forbidden' } },
  { name: 'shorter token', token: 'abc', header: 'Bearer ab', expect: { status: 403, code: 'forbidden' } },
  { name: 'case matters in the token', token: 'abc', header: 'Bearer ABC', expect: { status: 403, code: 'forbidden' } },
  { name: 'right token', token: 'abc', header: 'Bearer abc', expect: null },
  { name: 'scheme is case-insensitive, spaces tolerated', token: 'abc', header: 'BEARER   abc  ', expect: null },
  { name: 'token with symbols', token: 'p@ss#word!', header: 'Bearer p@ss#word!', expect: null },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const auth = createAuthorizer(c.token);
    t.equal(auth.isEnabled, c.token !== undefined && c.token !== '');
    if (c.expect === null) {
      t.doesNotThrow(() => auth.authorize(c.header));
      return;
    }
    try {
      auth.authorize(c.header);
      t.fail('expected a refusal');
    } catch (e) {
      t.type(e, DetourError);
      t.match(e, c.expect);
      if (c.expect.status === 401) t.same((e as DetourError).headers, { 'www-authenticate': 'Bearer' });
      if (c.token === undefined || c.token === '') t.equal((e as Error).message, tokenNotConfiguredMessage);
    }
  });
}
