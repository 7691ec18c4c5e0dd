// Property-based tests of the request-target parser. The oracle is independent
// of the code under test: WHATWG URL (how browsers and many sites resolve a
// path) and decodeURIComponent (how a site may decode a segment). A target is
// accepted only if no site could resolve it to a different path:
//   - it never throws, and an accepted origin-form target is forwarded as sent,
//     empty segments merged (`//a` -> `/a`), the query untouched;
//   - encoded slashes, backslashes and %00 in the path are refused (a site may
//     decode them into separators or worse);
//   - an accepted path has as many segments after URL resolution as before
//     (no `.`/`..` in any spelling URL understands), and no segment decodes to a
//     dot segment, with `;params` stripped as Tomcat does;
//   - a path built from segments of which one is a dot segment, in any spelling
//     and with any separator, is refused; one built with none, `/` separators and
//     no encoded separator or NUL is accepted;
//   - absolute-form gives the same verdict and path as its origin-form.
import t from 'tap';
import fc from 'fast-check';
import { parseRequestTarget } from '../../src/proxy/request-target.js';

const SEED = 20261201;
const dots = ['.', '..', '%2e', '%2E', '.%2e', '%2e.', '%2E%2E', '..;x', '.;jsessionid=1', '%2e%2e;a=b'];
const separators = ['/', '\\', '%2f', '%2F', '%5c', '%5C'];
// Segments that look dangerous but are not dot segments.
const plain = ['a', 'api', '...', '.a', 'a.', '..a', '%2e%2e%2e', '.well-known', 'x;..', '%252e%252e', '%', '%zz', 'é', '~', ';', '', '%00', '+'];
const segment = fc.oneof(fc.constantFrom(...plain), fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{0,8}$/));

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // not decodable: a site cannot decode it either
  }
}

/** Separators a site might decode, and NUL: never accepted in a path. */
const FORBIDDEN = /%2f|%5c|%00|\\/i;

/** The path part with runs of `/` merged, the query as it was. */
function merged(target: string): string {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  return path.replace(/\/{2,}/g, '/') + (q === -1 ? '' : target.slice(q));
}

function isDotSegment(s: string): boolean {
  const bare = decodeSafely(s).split(';', 1)[0]!;
  return bare === '.' || bare === '..';
}

t.test('any string: never throws; accepted targets are paths no site can resolve elsewhere', async (t) => {
  const target = fc.oneof(
    fc.string({ maxLength: 60, unit: 'binary' }),
    fc.array(fc.oneof(fc.constantFrom(...dots, ...separators, ...plain, '?', '#', '//', 'http://h'), segment), { maxLength: 12 }).map((a) => a.join('')),
    fc.array(fc.oneof(fc.constantFrom(...dots), segment), { maxLength: 8 }).map((a) => `/${a.join('/')}`),
  );
  let accepted = 0;
  let refused = 0;
  fc.assert(fc.property(target, (raw) => {
    const r = parseRequestTarget(raw);
    if (!r.ok) {
      refused++;
      return typeof r.reason === 'string' && r.reason.length > 0;
    }
    accepted++;
    if (r.path === '*') return raw === '*';
    if (!r.path.startsWith('/')) return false;
    if (raw.startsWith('/') && r.path !== merged(raw)) return false; // forwarded as sent, slashes merged
    const q = r.path.indexOf('?');
    const pathPart = q === -1 ? r.path : r.path.slice(0, q);
    if (FORBIDDEN.test(pathPart) || pathPart.includes('//')) return false;
    const rawSegments = pathPart.split('/');
    if (rawSegments.some(isDotSegment)) return false;
    if (!pathPart.includes('#')) {
      const resolved = new URL(`http://site.invalid${pathPart}`).pathname;
      if (resolved.split('/').length !== pathPart.split(/[/\\]/).length) return false;
    }
    return true;
  }), { seed: SEED, numRuns: 3000 });
  t.ok(accepted > 100 && refused > 100, `accepted ${accepted}, refused ${refused}`);
});

t.test('a path with a dot segment in any spelling is refused; one without is accepted', async (t) => {
  const pathArb = fc.record({
    before: fc.array(segment, { maxLength: 4 }),
    dot: fc.option(fc.constantFrom(...dots), { nil: undefined }),
    after: fc.array(segment, { maxLength: 4 }),
    seps: fc.array(fc.constantFrom(...separators), { minLength: 10, maxLength: 10 }),
    query: fc.option(fc.constantFrom('?a=1', '?x=/../', '?..', '?'), { nil: '' }),
  });
  fc.assert(fc.property(pathArb, ({ before, dot, after, seps, query }) => {
    const segs = [...before, ...(dot === undefined ? [] : [dot]), ...after];
    const path = `/${segs.map((s, i) => (i === 0 ? s : `${seps[i % seps.length]}${s}`)).join('')}${query}`;
    const hasDot = segs.some(isDotSegment);
    const r = parseRequestTarget(path);
    if (hasDot) return !r.ok && /dot segments/.test(r.reason);
    const q = path.indexOf('?');
    if (FORBIDDEN.test(q === -1 ? path : path.slice(0, q))) return !r.ok;
    return r.ok && r.path === merged(path);
  }), { seed: SEED, numRuns: 2000 });
  t.pass('2000 built paths');
});

t.test('absolute-form has the verdict and path of its origin-form', async (t) => {
  const origin = fc.array(fc.oneof(fc.constantFrom(...dots), segment), { maxLength: 6 }).map((a) => `/${a.join('/')}`);
  const authority = fc.constantFrom('http://h', 'https://example.go.id:8443', 'HTTP://A.B', 'ws://h', 'x+y.z://u@h');
  fc.assert(fc.property(authority, origin, (auth, path) => {
    const a = parseRequestTarget(`${auth}${path}`);
    const o = parseRequestTarget(path);
    return a.ok === o.ok && (!a.ok || (o.ok && a.path === o.path));
  }), { seed: SEED, numRuns: 1000 });
  t.match(parseRequestTarget('http://h'), { ok: true, path: '/' }, 'no path is /');
  t.match(parseRequestTarget('*'), { ok: true, path: '*' });
  t.equal(parseRequestTarget('h/a').ok, false, 'neither a path nor absolute-form');
});
