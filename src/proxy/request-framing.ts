// Refuse requests whose framing two parsers could read differently (request
// smuggling): the site, or a cache in front of it, must never see a different
// message boundary than detour did. Node's parser already refuses most of this
// (Content-Length with Transfer-Encoding, repeated Content-Length, bare LF,
// NUL); this check holds the rest and does not depend on the parser's version
// or leniency flags: HTTP/0.9 request lines, repeated or unusual
// Transfer-Encoding, Transfer-Encoding on HTTP/1.0, repeated or malformed Host.

export interface RequestHead {
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** Names and values as received, alternating (IncomingMessage.rawHeaders). */
  readonly rawHeaders: readonly string[];
}

/** `host` or `host:port`, reg-name or IP literal (RFC 9110 7.2, RFC 3986 3.2.2). */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::\d{0,5})?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/** undefined when the head is unambiguous, else why it is refused (400). */
export function checkFraming(head: RequestHead): string | undefined {
  if (head.httpVersionMajor !== 1 || head.httpVersionMinor > 1) return `HTTP/${head.httpVersionMajor}.${head.httpVersionMinor} is not supported`;
  let hosts = 0;
  let lengths = 0;
  const codings: string[] = [];
  const raw = head.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (CONTROL.test(name) || CONTROL.test(value)) return `control characters in header ${JSON.stringify(raw[i])}`;
    if (name === 'host') {
      hosts++;
      if (!HOST_VALUE.test(value.trim())) return 'the Host header is not a host name';
    } else if (name === 'content-length') {
      lengths++;
      if (!/^\d{1,15}$/.test(value.trim())) return 'Content-Length is not a number';
    } else if (name === 'transfer-encoding') {
      codings.push(value);
    }
  }
  if (hosts > 1) return 'more than one Host header';
  if (lengths > 1) return 'more than one Content-Length header';
  if (codings.length > 0) {
    if (lengths > 0) return 'both Content-Length and Transfer-Encoding';
    if (codings.length > 1) return 'more than one Transfer-Encoding header';
    // Only plain chunked: a coding list (`gzip, chunked`) would be re-framed
    // without its codings, and anything else has no agreed end.
    if (codings[0]!.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding ${JSON.stringify(codings[0])} is not supported (only chunked)`;
    if (head.httpVersionMinor === 0) return 'Transfer-Encoding in an HTTP/1.0 request';
  }
  return undefined;
}
