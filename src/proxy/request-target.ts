// The request target as both route matching and the site see it. A route can
// only be trusted if the site cannot read the path as belonging to another
// route, so detour settles every spelling a site might resolve differently
// before matching:
// - dot segments (`/public/../internal`), in any spelling a site might
//   decode, are refused;
// - encoded slashes and backslashes (`/ceir%2Frecords`, `/ceir\records`) are
//   refused, as Apache and Tomcat do by default: some sites decode them into
//   separators, others do not, so no route choice would be right for both;
// - empty segments are merged (`//ceir//records` is sent on as
//   `/ceir/records`, like nginx's merge_slashes), so the site gets the path
//   the route was matched on;
// - `;params` (`/ceir;v=1/records`, Tomcat's path parameters) are ignored for
//   matching, because servlet containers drop them before mapping the path,
//   and are sent on unchanged (they carry session ids).
// An absolute-form target (`GET http://host/x`) must name the same host as
// the Host header: the route is chosen by Host, and the site must not be able
// to read another one from the target.

export type RequestTarget =
  | {
    readonly ok: true;
    /** Sent to the site: origin-form, slashes merged, query kept. */
    readonly path: string;
    /** What routes are matched on: `path` with the `;params` of each segment removed. */
    readonly routePath: string;
  }
  | { readonly ok: false; readonly reason: string };

const ENCODED_SEPARATOR = /%2f|%5c|\\/i;
/** What any of the checks and rewrites of parseRequestTarget could act on. */
const NEEDS_A_LOOK = /%|\\|;|\/\/|\/\./;

/**
 * The origin-form target to match and forward (`/a/b?q`): absolute-form
 * (`http://host/a`) is reduced to its path; `*` is kept. Refused: targets
 * that are not a path, dot segments (`.`, `..`, `%2e`, `.%2E`, Tomcat's
 * `..;x`), encoded slashes, encoded NUL, and an absolute-form host that is not
 * the Host header (`host` given).
 */
export function parseRequestTarget(target: string, host?: string): RequestTarget {
  let path = target;
  if (path === '*') return { ok: true, path, routePath: path };
  if (!path.startsWith('/')) {
    const absolute = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)/i.exec(path);
    if (!absolute) return { ok: false, reason: 'the request target is not a path' };
    if (host !== undefined && !sameAuthority(absolute[1]!, absolute[2]!, host)) {
      return { ok: false, reason: 'the host in the request target is not the Host header' };
    }
    path = path.slice(absolute[0].length);
    if (!path.startsWith('/')) path = `/${path}`;
  }
  const end = path.indexOf('?');
  // The part after '#' is checked too: a site that does not treat '#' as special would resolve it.
  const pathPart = end === -1 ? path : path.slice(0, end);
  const query = end === -1 ? '' : path.slice(end);
  // Most paths have nothing to settle: every refusal and rewrite below needs
  // one of these (a dot segment starts with `/.`, an encoded one has `%`).
  if (!NEEDS_A_LOOK.test(pathPart)) return { ok: true, path, routePath: path };
  if (pathPart.split(/\/|\\|%2f|%5c/i).some(isDotSegment)) {
    return { ok: false, reason: 'dot segments (. or ..) in the path are not allowed' };
  }
  if (ENCODED_SEPARATOR.test(pathPart)) return { ok: false, reason: 'encoded slashes (%2F, %5C) and backslashes in the path are not allowed' };
  if (/%00/.test(pathPart)) return { ok: false, reason: 'an encoded NUL (%00) in the path is not allowed' };
  const merged = pathPart.replace(/\/{2,}/g, '/');
  return { ok: true, path: merged + query, routePath: stripParams(merged) + query };
}

function isDotSegment(segment: string): boolean {
  // `;params` are part of a segment for some servers (`..;jsessionid` is `..` to Tomcat).
  const bare = segment.split(';', 1)[0]!.replace(/%2e/gi, '.');
  return bare === '.' || bare === '..';
}

/** `/ceir;v=1/records;jsessionid=x` -> `/ceir/records`. */
function stripParams(path: string): string {
  return path.includes(';') ? path.split('/').map((segment) => segment.split(';', 1)[0]).join('/') : path;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };

/** `http://Example.com:80` names the same host as `Host: example.com.`; userinfo is never accepted. */
function sameAuthority(scheme: string, authority: string, host: string): boolean {
  if (authority.includes('@')) return false;
  const defaultPort = DEFAULT_PORTS[scheme.toLowerCase()];
  const canonical = (value: string): string => {
    const v = value.trim().toLowerCase();
    const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(v);
    if (!m) return v;
    const name = m[1]!.endsWith('.') ? m[1]!.slice(0, -1) : m[1]!;
    const port = m[2] === undefined || m[2] === '' || m[2] === defaultPort ? '' : `:${m[2]}`;
    return name + port;
  };
  return canonical(authority) === canonical(host);
}
