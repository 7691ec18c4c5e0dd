// The request target as both route matching and the site see it. Detour
// forwards the target byte for byte, so a route can only be trusted if the
// site cannot resolve the path to somewhere else: targets with dot segments
// (`/public/../internal`), in any spelling a site might decode, are refused.

export type RequestTarget =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: string };

/** Separators a site may split a path on: `/`, `\` (WHATWG URL parsers), and their percent-encodings. */
const SEPARATORS = /\/|\\|%2f|%5c/i;

/**
 * The origin-form target to match and forward (`/a/b?q`): absolute-form
 * (`http://host/a`) is reduced to its path; `*` is kept. Refused: targets
 * that are not a path, and dot segments (`.`, `..`, `%2e`, `.%2E`, Tomcat's `..;x`).
 */
export function parseRequestTarget(target: string): RequestTarget {
  let path = target;
  if (path === '*') return { ok: true, path };
  if (!path.startsWith('/')) {
    const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(path);
    if (!absolute) return { ok: false, reason: 'the request target is not a path' };
    path = path.slice(absolute[0].length);
    if (!path.startsWith('/')) path = `/${path}`;
  }
  const end = path.indexOf('?');
  // The part after '#' is checked too: a site that does not treat '#' as special would resolve it.
  const pathPart = end === -1 ? path : path.slice(0, end);
  if (pathPart.split(SEPARATORS).some(isDotSegment)) {
    return { ok: false, reason: 'dot segments (. or ..) in the path are not allowed' };
  }
  return { ok: true, path };
}

function isDotSegment(segment: string): boolean {
  // `;params` are part of a segment for some servers (`..;jsessionid` is `..` to Tomcat).
  const bare = segment.split(';', 1)[0]!.replace(/%2e/gi, '.');
  return bare === '.' || bare === '..';
}
