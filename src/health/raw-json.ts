// A strict JSON reader that keeps what the sender wrote. JSON.parse turns
// 9007199254740993 into ...992 and 1e400 into Infinity, so two sites publishing
// different 64-bit checksums or log positions would compare equal; the integrity
// gate exists to catch exactly that. Here numbers stay as their literal text,
// strings are decoded (decoding a JSON string loses nothing), and objects keep
// their keys in a Map, so key order does not matter but every value does.
// Pure; never throws: a body that is not JSON comes back as a reason.

export type RawJson =
  | { readonly kind: 'number'; readonly text: string }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'literal'; readonly text: 'true' | 'false' | 'null' }
  | { readonly kind: 'array'; readonly items: readonly RawJson[] }
  | { readonly kind: 'object'; readonly entries: ReadonlyMap<string, RawJson> };

export type RawJsonRead = { readonly ok: true; readonly value: RawJson } | { readonly ok: false; readonly error: string };

/** Deeper than any integrity document; keeps the recursion far from the stack limit. */
const MAX_DEPTH = 256;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// Control characters are not allowed raw inside strings; escapes are checked by JSON.parse.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const WHITESPACE = /[ \t\n\r]*/y;

export function readRawJson(text: string): RawJsonRead {
  const reader = new Reader(text);
  try {
    reader.skipWhitespace();
    const value = reader.value(0);
    reader.skipWhitespace();
    if (reader.pos !== text.length) reader.fail('unexpected text after the document');
    return { ok: true, value };
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Dotted path (`replication.lagSeconds`, `shards.0.checksum`); array items by index. */
export function pickRawField(json: RawJson, field: string): RawJson | undefined {
  let current: RawJson | undefined = json;
  for (const key of field.split('.')) {
    if (current === undefined) return undefined;
    if (current.kind === 'object') current = current.entries.get(key);
    else if (current.kind === 'array' && /^(0|[1-9]\d*)$/.test(key)) current = current.items[Number(key)];
    else return undefined;
  }
  return current;
}

/** Same literal numbers (1.0 is not 1), same strings, same arrays in order, same keys in any order. */
export function isSameRawJson(a: RawJson, b: RawJson): boolean {
  switch (a.kind) {
    case 'number':
    case 'literal':
      return b.kind === a.kind && b.text === a.text;
    case 'string':
      return b.kind === 'string' && b.value === a.value;
    case 'array':
      return b.kind === 'array' && a.items.length === b.items.length && a.items.every((v, i) => isSameRawJson(v, b.items[i]!));
    case 'object': {
      if (b.kind !== 'object' || a.entries.size !== b.entries.size) return false;
      for (const [key, v] of a.entries) {
        const other = b.entries.get(key);
        if (other === undefined || !isSameRawJson(v, other)) return false;
      }
      return true;
    }
  }
}

/** Compact text with numbers as sent: `[1,2]`, `{"a":9007199254740993}`; strings bare at the top. */
export function renderRawJson(json: RawJson, top = true): string {
  switch (json.kind) {
    case 'number':
    case 'literal':
      return json.text;
    case 'string':
      return top ? json.value : JSON.stringify(json.value);
    case 'array':
      return `[${json.items.map((v) => renderRawJson(v, false)).join(',')}]`;
    case 'object':
      return `{${[...json.entries].map(([k, v]) => `${JSON.stringify(k)}:${renderRawJson(v, false)}`).join(',')}}`;
  }
}

/**
 * Exact comparison of a JSON number literal with a policy bound: -1, 0 or 1 as
 * text <, = or > max. Decimal arithmetic on the digits, so 5.000000000000000001
 * is over a max of 5 even though it is 5 as a double.
 */
export function compareNumberText(text: string, max: number): number {
  const a = toDecimal(text);
  const b = toDecimal(String(max));
  // Scale both to the smaller exponent, then compare the integers.
  const exp = Math.min(a.exp, b.exp);
  const av = a.digits * 10n ** BigInt(a.exp - exp);
  const bv = b.digits * 10n ** BigInt(b.exp - exp);
  return av < bv ? -1 : av > bv ? 1 : 0;
}

/** `-12.5e3` -> digits -125, exp 2. Only for texts NUMBER accepts (and String(number) output). */
function toDecimal(text: string): { digits: bigint; exp: number } {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) throw new Error(`not a decimal number: ${text}`);
  const [, sign, whole, fraction = '', exponent = '0'] = m;
  const digits = BigInt(`${sign}${whole}${fraction}`);
  return { digits, exp: Number(exponent) - fraction.length };
}

class JsonSyntaxError extends Error {}

class Reader {
  pos = 0;

  constructor(private readonly text: string) {}

  fail(what: string): never {
    throw new JsonSyntaxError(`${what} at offset ${this.pos}`);
  }

  take(c: string): boolean {
    if (this.text[this.pos] !== c) return false;
    this.pos++;
    return true;
  }

  expect(c: string, what = `expected '${c}'`): void {
    if (!this.take(c)) this.fail(what);
  }

  skipWhitespace(): void {
    WHITESPACE.lastIndex = this.pos;
    WHITESPACE.exec(this.text);
    this.pos = WHITESPACE.lastIndex;
  }

  value(depth: number): RawJson {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.pos];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return { kind: 'string', value: this.string() };
    for (const text of ['true', 'false', 'null'] as const) {
      if (this.text.startsWith(text, this.pos)) {
        this.pos += text.length;
        return { kind: 'literal', text };
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) this.fail(c === undefined ? 'unexpected end' : 'unexpected character');
    this.pos = NUMBER.lastIndex;
    return { kind: 'number', text: m[0] };
  }

  string(): string {
    STRING.lastIndex = this.pos;
    const m = STRING.exec(this.text);
    if (m === null) this.fail('bad string');
    this.pos = STRING.lastIndex;
    return JSON.parse(m[0]) as string;
  }

  array(depth: number): RawJson {
    this.pos++; // [
    const items: RawJson[] = [];
    this.skipWhitespace();
    if (this.take(']')) return { kind: 'array', items };
    for (;;) {
      this.skipWhitespace();
      items.push(this.value(depth + 1));
      this.skipWhitespace();
      if (this.take(']')) return { kind: 'array', items };
      this.expect(',', "expected ',' or ']'");
    }
  }

  object(depth: number): RawJson {
    this.pos++; // {
    const entries = new Map<string, RawJson>();
    this.skipWhitespace();
    if (this.take('}')) return { kind: 'object', entries };
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a key');
      const key = this.string();
      this.skipWhitespace();
      this.expect(':');
      this.skipWhitespace();
      // A repeated key: the last one wins, as with JSON.parse and most readers of the document.
      entries.delete(key);
      entries.set(key, this.value(depth + 1));
      this.skipWhitespace();
      if (this.take('}')) return { kind: 'object', entries };
      this.expect(',', "expected ',' or '}'");
    }
  }
}
