// The health probe's GET for http:// sites, written on a bare TCP connection.
// A probe is a new connection every time (it must see a building that stopped
// accepting them), and 1,000 sites probed every second are 1,000 of them a
// second: Node's HTTP client (a ClientRequest, an agent's bookkeeping, a parser
// and an IncomingMessage per probe) cost about as much again as the connection
// itself. This sends one prepared request and reads the answer with a small,
// strict HTTP/1.1 reader: status line, headers, then the body as the headers
// frame it (Content-Length, chunked, or until the site closes), as strict as
// Node's own parser where a review found them apart (CRLF line ends, one
// Content-Length, not both framings, no bytes after the answer in the same
// read, trailers and chunk extensions checked), so that a site passes or fails
// as it did through Node's client; test/health/probe-get.test.ts sends every
// case it knows to both. Bounded like
// httpGet: one deadline for everything, a cap on the body kept, an abort
// signal. https:// sites keep Node's client (TLS is most of their cost anyway).
import net from 'node:net';
import { LOCAL_CODES } from '../errors.js';
import { describeError, type HttpGetResult } from './http-get.js';

/** One site's probe, prepared once: where to connect and the request's bytes. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly request: Buffer;
}

export interface ProbeGetOptions {
  readonly timeoutMs: number;
  /** Bytes of body kept; the rest is not read (the answer says `truncated`). */
  readonly maxBodyBytes: number;
  readonly signal?: AbortSignal;
}

/** What Node's HTTP client allows by default (--max-http-header-size), counted as it counts: reason phrase, names and values. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** The head's bytes as sent (colons, spaces, line ends too): a bound on memory, not a rule of HTTP. */
export const MAX_RAW_HEAD_BYTES = 64 * 1024;
/** A chunk-size line (hex digits and extensions) or a trailer line longer than this is not HTTP anyone sends. */
const MAX_LINE_BYTES = 4096;

/** The target for an http:// URL, or the words for why there is none. */
export function probeTarget(url: string): ProbeTarget | string {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return `bad url ${url}`;
  }
  if (target.protocol !== 'http:') return `unsupported protocol ${target.protocol}`;
  // What Node's client sends for a keep-alive-less GET, with the same Host header.
  const head = [
    `GET ${target.pathname}${target.search} HTTP/1.1`,
    `Host: ${target.host}`,
    'User-Agent: detour-probe',
    'Accept: */*',
    'Connection: close',
  ];
  return {
    host: target.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: target.port === '' ? 80 : Number(target.port),
    request: Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'),
  };
}

/** Never rejects: failures come back as words an operator can read. */
export function probeGet(target: ProbeTarget, opts: ProbeGetOptions): Promise<HttpGetResult> {
  return new Promise((resolve) => {
    if (opts.signal?.aborted) {
      resolve({ ok: false, error: 'aborted' });
      return;
    }
    const reader = new ResponseReader(opts.maxBodyBytes);
    let settled = false;
    const socket = net.connect(target.port, target.host);
    const finish = (result: HttpGetResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, error: 'aborted' });
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${opts.timeoutMs}ms` }), opts.timeoutMs);
    timer.unref();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    // Stays attached after finish(): a late error on a destroyed socket must have a listener.
    socket.on('error', (err) => finish({
      ok: false, error: describeError(err),
      ...(LOCAL_CODES.has(String((err as NodeJS.ErrnoException).code)) ? { local: true as const } : {}),
    }));
    socket.on('data', (chunk: Buffer) => {
      const answer = reader.read(chunk);
      if (answer !== undefined) finish(answer);
    });
    socket.on('end', () => finish(reader.end()));
    socket.on('close', () => finish(reader.end()));
    // Written once connected, not queued before: a refused connect then fails one write less, and Node
    // builds (and formats the stack of) a second error for a write that never went out.
    socket.once('connect', () => socket.write(target.request));
  });
}

const NOTHING = Buffer.alloc(0);

type BodyFraming = 'length' | 'chunked' | 'close';
type ChunkStep = 'size' | 'data' | 'data-end' | 'trailer';

/**
 * Reads one HTTP/1.1 response from the bytes as they arrive: `read` returns the
 * answer once it is whole (or wrong), `end` says what a connection closed now
 * amounts to. Interim 1xx answers are skipped, as Node's client does.
 */
export class ResponseReader {
  readonly #maxBodyBytes: number;
  /** Bytes not yet consumed: the head so far, or a chunk-size or trailer line so far. */
  #pending: Buffer = NOTHING;
  #status = 0;
  #framing: BodyFraming | undefined;
  /** Body bytes still to come (length), or bytes left in the current chunk (chunked). */
  #remaining = 0;
  #chunkStep: ChunkStep = 'size';
  readonly #body: Buffer[] = [];
  #kept = 0;
  #sawBytes = false;
  /** How much of the pending head was already looked at (a head trickling in is not re-read byte after byte). */
  #headScanned = 0;

  constructor(maxBodyBytes: number) {
    this.#maxBodyBytes = maxBodyBytes;
  }

  read(chunk: Buffer): HttpGetResult | undefined {
    if (chunk.length > 0) this.#sawBytes = true;
    let bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = NOTHING;
    if (this.#framing === undefined) {
      for (;;) {
        // Empty lines before a status line are skipped, as Node's parser does (after a 1xx too).
        let blank = 0;
        while (blank < bytes.length && (bytes[blank] === 0x0d || bytes[blank] === 0x0a)) blank++;
        if (blank > 0) {
          bytes = bytes.subarray(blank);
          this.#headScanned = Math.max(0, this.#headScanned - blank);
        }
        const head = worthParsing(bytes, this.#headScanned) ? parseHead(bytes) : undefined;
        if (head === undefined) {
          if (bytes.length > MAX_RAW_HEAD_BYTES) return bad(`headers over ${MAX_RAW_HEAD_BYTES / 1024} KiB`);
          this.#pending = bytes;
          this.#headScanned = bytes.length;
          return undefined;
        }
        if (typeof head === 'string') return bad(head);
        bytes = bytes.subarray(head.end);
        this.#headScanned = 0;
        // 100 Continue, 102, 103 Early Hints: the answer comes after.
        if (head.status < 200 && head.status !== 101) continue;
        // Node's client would wait for an upgrade nobody asked for until the timeout.
        if (head.status === 101) return bad('101 Switching Protocols to a probe that asked for no upgrade');
        this.#status = head.status;
        if (head.status === 204 || head.status === 304) return this.#done(bytes);
        if (head.transferEncoding !== undefined) {
          // The last coding says how the body ends; only chunked ends before the connection does (RFC 9112 6.3).
          this.#framing = head.transferEncoding === 'chunked' ? 'chunked' : 'close';
        } else if (head.contentLength !== undefined) {
          this.#framing = 'length';
          this.#remaining = head.contentLength;
          if (head.contentLength === 0) return this.#done(bytes);
        } else {
          this.#framing = 'close';
        }
        break;
      }
    }
    if (this.#framing === 'chunked') return this.#readChunked(bytes);
    if (this.#framing === 'length') {
      const take = Math.min(bytes.length, this.#remaining);
      this.#remaining -= take;
      return this.#keep(bytes.subarray(0, take)) ?? (this.#remaining === 0 ? this.#done(bytes.subarray(take)) : undefined);
    }
    return this.#keep(bytes);
  }

  /** The connection ended: whole if the body runs until the close, cut short otherwise. */
  end(): HttpGetResult {
    if (this.#framing === 'close') return this.#answer(false);
    if (this.#framing !== undefined) return { ok: false, error: 'connection closed before the body ended' };
    return { ok: false, error: this.#sawBytes ? 'connection closed before the headers ended' : 'socket hang up' };
  }

  #readChunked(input: Buffer): HttpGetResult | undefined {
    let bytes = input;
    while (bytes.length > 0) {
      if (this.#chunkStep === 'data') {
        const take = Math.min(bytes.length, this.#remaining);
        this.#remaining -= take;
        const full = this.#keep(bytes.subarray(0, take));
        if (full !== undefined) return full;
        bytes = bytes.subarray(take);
        if (this.#remaining === 0) this.#chunkStep = 'data-end';
        continue;
      }
      const newline = bytes.indexOf(0x0a);
      if (newline === -1) {
        if (bytes.length > MAX_LINE_BYTES) return bad('chunk line too long');
        this.#pending = bytes;
        return undefined;
      }
      if (newline === 0 || bytes[newline - 1] !== 0x0d) return bad('a line ends in LF without CR');
      const line = bytes.toString('latin1', 0, newline - 1);
      bytes = bytes.subarray(newline + 1);
      if (this.#chunkStep === 'data-end') {
        if (line !== '') return bad('chunk not followed by CRLF');
        this.#chunkStep = 'size';
      } else if (this.#chunkStep === 'size') {
        const size = CHUNK_SIZE_LINE.exec(line);
        if (size === null) return bad(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
        const hex = size[1]!.replace(/^0+(?=.)/, '');
        if (hex.length > 13) return bad(`chunk size ${JSON.stringify(hex.slice(0, 40))} too large`);
        this.#remaining = Number.parseInt(hex, 16);
        this.#chunkStep = this.#remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        return this.#done(bytes);
      } else {
        const wrong = checkFieldLine(line);
        if (wrong !== undefined) return bad(`trailer: ${wrong}`);
      }
    }
    return undefined;
  }

  /** Keeps body bytes up to the cap; past it, the answer is whole as far as the probe looks. */
  #keep(bytes: Buffer): HttpGetResult | undefined {
    if (bytes.length === 0) return undefined;
    const room = this.#maxBodyBytes - this.#kept;
    if (bytes.length > room) {
      this.#body.push(bytes.subarray(0, room));
      return this.#answer(true);
    }
    this.#body.push(bytes);
    this.#kept += bytes.length;
    return undefined;
  }

  /** The answer is whole: what else came in the same read must be line ends only (Node's parser says so too). */
  #done(rest: Buffer): HttpGetResult {
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] !== 0x0d && rest[i] !== 0x0a) return bad('data after the response');
    }
    return this.#answer(false);
  }

  #answer(truncated: boolean): HttpGetResult {
    const bytes = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body);
    return { ok: true, status: this.#status, body: bytes.toString('utf8'), bytes, truncated };
  }
}

function bad(words: string): HttpGetResult {
  return { ok: false, error: `bad response: ${words}` };
}

interface Head {
  readonly status: number;
  /** Offset of the first byte after the blank line. */
  readonly end: number;
  /** The last transfer coding, lower case, when there is one: it frames the body whatever Content-Length says. */
  readonly transferEncoding: string | undefined;
  readonly contentLength: number | undefined;
}

/**
 * Whether parsing the head so far can tell more than last time: its status line
 * just arrived (a site that is not HTTP fails at once), or a blank line did. A
 * head sent a byte at a time is otherwise parsed once, not once per byte.
 */
export function worthParsing(bytes: Buffer, scanned: number): boolean {
  const firstNewline = bytes.indexOf(0x0a);
  if (firstNewline === -1) return false;
  if (firstNewline >= scanned) return true;
  for (let at = bytes.indexOf(0x0a, Math.max(0, scanned - 2)); at !== -1; at = bytes.indexOf(0x0a, at + 1)) {
    if (bytes[at + 1] === 0x0a || (bytes[at + 1] === 0x0d && bytes[at + 2] === 0x0a)) return true;
  }
  return false;
}

/** The reason phrase may hold any byte but CR (Node's parser takes NUL there too). */
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: ([^\r]*))?$/;
/** Bytes no header line may hold (HTAB is allowed; CR and LF only end a line). */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Hex digits, then extensions `;name` or `;name=value` (a token or a quoted string), no spaces: what Node's parser takes. */
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]+)(?:;[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]*|"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"))?)*$/;

/** Strips what HTTP calls optional whitespace (space and tab; not what String.trim takes, like U+00A0). */
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

/** What is wrong with a header or trailer line, if anything. */
function checkFieldLine(line: string): string | undefined {
  if (CONTROL.test(line)) return `a control character in ${JSON.stringify(line.slice(0, 40))}`;
  const colon = line.indexOf(':');
  if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) return `header line ${JSON.stringify(line.slice(0, 40))}`;
  return undefined;
}

/** A head that is whole, or undefined while its blank line has not arrived, or the words for what is wrong with it. */
export function parseHead(bytes: Buffer): Head | string | undefined {
  // Headers are ASCII; latin1 maps each byte to one character, so offsets match.
  const text = bytes.toString('latin1', 0, Math.min(bytes.length, MAX_RAW_HEAD_BYTES + 2));
  let start = 0;
  let status = 0;
  /** Bytes counted against MAX_HEAD_BYTES, the way Node's parser counts them. */
  let size = 0;
  let transferEncoding: string | undefined;
  let contentLength: number | undefined;
  for (;;) {
    const newline = text.indexOf('\n', start);
    if (newline === -1) return undefined;
    if (newline === start || text.charCodeAt(newline - 1) !== 0x0d) return 'a line ends in LF without CR';
    const line = text.slice(start, newline - 1);
    start = newline + 1;
    if (status === 0) {
      const match = STATUS_LINE.exec(line);
      if (match === null) return `status line ${JSON.stringify(line.slice(0, 40))}`;
      status = Number(match[1]);
      size += match[2]?.length ?? 0;
      continue;
    }
    if (line === '') {
      if (size > MAX_HEAD_BYTES) return `headers over ${MAX_HEAD_BYTES / 1024} KiB`;
      // Which of the two frames the body is where request smuggling lives: Node's client refuses both, so does the probe.
      if (transferEncoding !== undefined && contentLength !== undefined) return 'both Content-Length and Transfer-Encoding';
      return { status, end: start, transferEncoding, contentLength };
    }
    const wrong = checkFieldLine(line);
    if (wrong !== undefined) return wrong;
    const colon = line.indexOf(':');
    const raw = line.slice(colon + 1);
    const value = raw.replace(OWS_EDGES, '');
    size += colon + value.length;
    if (colon !== 14 && colon !== 17) continue;
    const key = line.slice(0, colon).toLowerCase();
    if (key === 'transfer-encoding') {
      transferEncoding = value.split(',').pop()!.replace(OWS_EDGES, '').toLowerCase();
    } else if (key === 'content-length') {
      if (contentLength !== undefined) return 'content-length given twice';
      // Node's parser takes spaces after the digits, not a tab.
      const digits = raw.replace(/^[ \t]+| +$/g, '');
      const n = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
      if (!Number.isSafeInteger(n)) return `content-length ${JSON.stringify(value.slice(0, 40))}`;
      contentLength = n;
    }
  }
}
