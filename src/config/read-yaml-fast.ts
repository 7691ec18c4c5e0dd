// A fast first reading of the policy text, without positions. The YAML library
// that gives every key and value its LINE:COL (read-yaml-tree.ts) reads about a
// megabyte a second here: a 10,000-route policy took two seconds to parse, and a
// start or reload waited for it. js-yaml reads the same text about fifteen times
// faster but knows no positions, and positions are only needed to point at a
// problem. So a policy is read here first; when it is valid, that reading is the
// policy, and when anything is wrong (or unusual, below) the caller reads the
// file again with positions, and that reading decides, problems and all.
//
// The two readings must give the same data for every file the fast one accepts.
// So the fast one uses YAML 1.2's core schema with the very patterns of the YAML
// library (null, bool, int, float; no timestamps, no merge keys) and gives up,
// returning undefined, on whatever the two could read differently:
//   - a directive (`%YAML 1.1` changes the schema), a dash alone on its line (a
//     js-yaml bug, below), a syntax error, a duplicate
//     key, an unknown tag, more than one document;
//   - a key that is not a plain name (null, empty, a list or a map: js-yaml
//     turns them into "null", "a,b" or "[object Object]"), or an integer-like key
//     (plain objects put those first, and site order matters);
//   - an anchor (`&`, with the characters below): only aliases could reach one
//     list or map twice, and the positioned reading checks them for cycles;
//   - a `${VAR}` that fails or is unset where that is an error.
// A property test (test/config/read-yaml-fast.test.ts) and, under `npm test`,
// DETOUR_YAML_CROSSCHECK=1 (every parse in every test reads both ways and
// compares) check the two agree.
import { FAILSAFE_SCHEMA, Type, load } from 'js-yaml';
import { interpolateEnv } from './interpolate-env.js';
import { CLOSE, OPEN, protectReferences, restoreReferences, type PathSegment } from './read-yaml-tree.js';

export interface FastReadOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Scalars at these paths are dropped when a variable they use is unset. */
  readonly isOptionalWhenUnset: (path: readonly PathSegment[]) => boolean;
}

// The YAML library's core schema (yaml/dist/schema/core and common/null), test for test.
// js-yaml tries every type on every plain scalar, and most of a policy's scalars
// are names; a look at the first character (each pattern's possible first
// characters) skips the patterns that cannot match before running them.
const startsWithOneOf = (s: string, firsts: string) => s.length > 0 && firsts.includes(s[0]!);
const scalar = (tag: string, firsts: string, test: RegExp, construct: (s: string) => unknown) => new Type(tag, {
  kind: 'scalar',
  resolve: (s: unknown) => typeof s === 'string' && (s.length === 0 || startsWithOneOf(s, firsts)) && test.test(s),
  construct: (s: string) => construct(s),
});
const NUMBER_FIRSTS = '0123456789+-';
const FLOAT_FIRSTS = `${NUMBER_FIRSTS}.`;
const CORE = FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar('tag:yaml.org,2002:null', '~nN', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    scalar('tag:yaml.org,2002:bool', 'tTfF', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T'),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: unknown) => typeof s === 'string' && startsWithOneOf(s, NUMBER_FIRSTS)
        && (/^0o[0-7]+$/.test(s) || /^[-+]?[0-9]+$/.test(s) || /^0x[0-9a-fA-F]+$/.test(s)),
      construct: (s: string) => (s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: unknown) => typeof s === 'string' && startsWithOneOf(s, FLOAT_FIRSTS) && (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s)
        || /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s) || /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)),
      construct: (s: string) => {
        if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
        if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
        return parseFloat(s);
      },
    }),
  ],
});

// js-yaml 4 reads `- \n  - \n- x` as [[null, "x"]]: after a nested empty item the
// next, shallower item lands in the inner list. A dash alone on its line is rare in a policy.
// Nor does it check that the items of a list written compactly (`- - a`) line up.
const EMPTY_ITEM = /^[ \t]*-[ \t]*(?:#.*)?$|^[ \t]*- +-(?:\s|$)/m;

// Where js-yaml and the YAML library (strict) part ways, found by the property
// test: tabs (as indentation, or anywhere: a policy needs none), a comment glued
// to a bracket, comma or quote (`{}#`, `[#`), and tags and anchors (`!`, `&`:
// spacing rules, and an empty tagged value is null in one and "" in the other).
// Any of these characters anywhere, even inside a string, sends the file to the
// positioned reading: slower, never wrong.
const LENIENT = /[\t&!]|[[\]{},"']#/;
// Complex keys: `? key`, and a list or map before a colon (`[x]: 1`; js-yaml turns
// a one-item list into its item).
const COMPLEX_KEY = /(?:^|[\s,[{])\?(?:\s|$)|[\]}]\s*:|[{,]\s*[[{]/m;
// Document markers (`---`, `...`, even glued to a scalar: `---7`) and block scalars (`|`, `>`, and their indicators).
const MARKER_OR_BLOCK = /^(?:---|\.\.\.)|(?:^|\s)[|>]/m;
/**
 * A quoted string or a flow collection that goes on past its line (the two
 * readings fold and indent those their own ways), or a stray quote or bracket.
 */
export function spansLines(text: string): boolean {
  // One pass over the text, the counts starting again at each line (no array of lines).
  let double = 0;
  let single = 0;
  let depth = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 0x0a : text.charCodeAt(i);
    if (c === 0x0a /* \n */) {
      if ((double & 1) === 1 || (single & 1) === 1 || depth !== 0) return true;
      double = 0;
      single = 0;
      depth = 0;
    } else if (c === 0x5c /* \ */) {
      // An escape never reaches past its line: the next character, unless it ends the line.
      if (i + 1 < text.length && text.charCodeAt(i + 1) !== 0x0a) i++;
    } else if (c === 0x22 /* " */) double++;
    else if (c === 0x27 /* ' */) single++;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) depth++;
    else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return false;
}

/** Reasons to give up; thrown inside the walk, caught below. */
class Unusual extends Error {}
const OMIT = Symbol('omit');
/** Keys a plain object would reorder (array indices), and keys js-yaml made of something that was not a name. */
const INTEGER_LIKE = /^(?:0|[1-9][0-9]*)$/;

/** The policy's plain data, or undefined when only the positioned reading can say what the file means. */
export function readYamlFast(text: string, options: FastReadOptions): { readonly value: unknown } | undefined {
  if (/^%/m.test(text) || EMPTY_ITEM.test(text) || LENIENT.test(text) || COMPLEX_KEY.test(text) || MARKER_OR_BLOCK.test(text) || spansLines(text)) return undefined;
  const protectedText = protectReferences(text);
  let raw: unknown;
  try {
    raw = load(protectedText, { schema: CORE });
  } catch {
    return undefined;
  }
  // No anchors (LENIENT sends every `&` to the positioned reading), so no
  // aliases: each list and map is reached once, and is changed where it lies.
  // (A copy of the tree, and a set of every node to find aliases, were about
  // 30 ms of a cold load of a 10,000-route policy, collections included.)
  // One path, pushed and popped: only isOptionalWhenUnset looks at it.
  const path: PathSegment[] = [];
  // Keys and strings hold a protected `${` only when the text had one.
  const restore = protectedText.includes(OPEN) || protectedText.includes(CLOSE) ? restoreReferences : undefined;
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return readScalar(restore === undefined ? node : restore(node), path, options);
    if (typeof node !== 'object' || node === null) return node;
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index++) {
        path.push(index);
        const child = walk(node[index]);
        path.pop();
        node[index] = child === OMIT ? null : child;
      }
      return node;
    }
    const map = node as Record<string, unknown>;
    const keys = Object.keys(map);
    // Keys change only when the text had a `${` to protect: then a new map, in the same order.
    const out: Record<string, unknown> = restore === undefined ? map : {};
    for (const rawKey of keys) {
      if (rawKey === 'null' || rawKey === '' || rawKey.includes(',') || rawKey.includes('[object ') || INTEGER_LIKE.test(rawKey)) throw new Unusual();
      const name = restore === undefined ? rawKey : restore(rawKey);
      path.push(name);
      const child = walk(map[rawKey]);
      path.pop();
      if (child === OMIT) {
        if (out === map) delete map[rawKey];
        continue;
      }
      if (out === map && child === map[rawKey]) continue;
      // defineProperty, not assignment, for __proto__: it must stay a plain key.
      if (name === '__proto__') Object.defineProperty(out, name, { value: child, enumerable: true, writable: true, configurable: true });
      else out[name] = child;
    }
    return out;
  };
  try {
    return { value: raw === undefined ? null : walk(raw) };
  } catch (err) {
    if (err instanceof Unusual) return undefined;
    throw err;
  }
}

function readScalar(value: string, path: readonly PathSegment[], options: FastReadOptions): unknown {
  // Most scalars name something and hold no `$`: nothing to substitute, nothing to allocate.
  if (!value.includes('$')) return value;
  const result = interpolateEnv(value, options.env);
  if (!result.ok) throw new Unusual();
  if (result.unset.length > 0) {
    if (options.isOptionalWhenUnset(path)) return OMIT;
    throw new Unusual();
  }
  if (result.usedVars && result.value === '' && options.isOptionalWhenUnset(path)) return OMIT;
  return result.value;
}
