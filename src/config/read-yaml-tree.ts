// Turns YAML text into plain data plus a map from every key and value back to
// its LINE:COL, with `${VAR}` interpolated per scalar. Validation happens later
// on the plain data; the positions let each complaint point at what to edit.
import { createRequire } from 'node:module';
import type { Alias, Document, Node } from 'yaml';
import { describeUnset, interpolateEnv } from './interpolate-env.js';

export type PathSegment = string | number;

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface TreeProblem {
  readonly path: readonly PathSegment[];
  readonly position: Position;
  readonly message: string;
}

export interface YamlTree {
  readonly value: unknown;
  /** Keyed by pathKey(path). */
  readonly keyPositions: ReadonlyMap<string, Position>;
  readonly valuePositions: ReadonlyMap<string, Position>;
  /** Map keys in file order (plain objects reorder integer-like keys). */
  readonly keyOrder: ReadonlyMap<string, readonly string[]>;
  /** Scalars whose interpolation failed; later complaints about them would only repeat the cause. */
  readonly interpolationFailed: ReadonlySet<string>;
}

export interface ReadOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Scalars at these paths are dropped, not reported, when a variable they use is unset. */
  readonly isOptionalWhenUnset: (path: readonly PathSegment[]) => boolean;
}

export type ReadResult =
  | { readonly ok: true; readonly tree: YamlTree; readonly problems: readonly TreeProblem[] }
  | { readonly ok: false; readonly problems: readonly TreeProblem[] };

export function pathKey(path: readonly PathSegment[]): string {
  return JSON.stringify(path);
}

/** pathKey([...path, segment]) from pathKey(path), without writing the whole path again (a policy has ~10^5 nodes). */
export function childPathKey(parentKey: string, segment: PathSegment): string {
  return parentKey === '[]' ? `[${JSON.stringify(segment)}]` : `${parentKey.slice(0, -1)},${JSON.stringify(segment)}]`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(top level)' : out;
}

const START: Position = { line: 1, col: 1 };

const YAML_MESSAGES: Record<string, string> = {
  DUPLICATE_KEY: 'this key appears twice in the same map (YAML keys must be unique)',
  TAB_AS_INDENT: 'tabs are not allowed for indentation in YAML; use spaces',
  MULTIPLE_DOCS: 'a policy file holds one YAML document (remove the second ---)',
};

// In a flow map (`admin: { token: ${TOKEN} }`, as the product brief writes it) the
// braces of a reference are YAML syntax. Before parsing, they are swapped for
// private-use characters of the same length, so offsets stay exact, and swapped
// back in every scalar afterwards.
export const OPEN = '\uE000';
export const CLOSE = '\uE001';
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*(?::-[^}\n]*)?)\}/g;

export function protectReferences(text: string): string {
  if (text.includes(OPEN) || text.includes(CLOSE)) return text;
  return text.replace(REFERENCE, (_match, inner: string) => `$${OPEN}${inner}${CLOSE}`);
}

export function restoreReferences(text: string): string {
  return text.replaceAll(OPEN, '{').replaceAll(CLOSE, '}');
}

let yamlLibrary: typeof import('yaml') | undefined;

/**
 * The YAML library, loaded the first time a file is read with positions: a
 * valid policy is read by js-yaml alone (read-yaml-fast.ts), and loading this
 * library was about 30 ms of every `detour start`.
 */
function yaml(): typeof import('yaml') {
  yamlLibrary ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yamlLibrary;
}

export function readYamlTree(text: string, options: ReadOptions): ReadResult {
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(protectReferences(text), { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const locate = (offset: number | undefined): Position => (offset === undefined ? START : lineCounter.linePos(offset));
  if (doc.errors.length > 0) {
    // After the first syntax error the parser's view of the file is a guess, and
    // its follow-on complaints bury the real problem: report that one, plus any
    // duplicate keys, which are independent of it.
    const shown = doc.errors.filter((err, index) => index === 0 || err.code === 'DUPLICATE_KEY');
    return {
      ok: false,
      problems: shown.map((err) => ({
        path: [],
        position: locate(err.pos[0]),
        message: `YAML syntax: ${YAML_MESSAGES[err.code] ?? restoreReferences(err.message).replace(/\s+/g, ' ')}`,
      })),
    };
  }
  const reader = new TreeReader(doc, locate, options);
  const value = reader.read(doc.contents, [], START);
  return { ok: true, tree: reader.finish(value), problems: reader.problems };
}

const OMIT = Symbol('omit');

class TreeReader {
  readonly problems: TreeProblem[] = [];
  private readonly keyPositions = new Map<string, Position>();
  private readonly valuePositions = new Map<string, Position>();
  private readonly keyOrder = new Map<string, string[]>();
  private readonly interpolationFailed = new Set<string>();
  private readonly resolving = new Set<Node>();
  private readonly lib = yaml();

  constructor(
    private readonly doc: Document,
    private readonly locate: (offset: number | undefined) => Position,
    private readonly options: ReadOptions,
  ) {}

  finish(value: unknown): YamlTree {
    return {
      value,
      keyPositions: this.keyPositions,
      valuePositions: this.valuePositions,
      keyOrder: this.keyOrder,
      interpolationFailed: this.interpolationFailed,
    };
  }

  /** `fallback` is where an empty value is reported: its key, since an empty value has no text of its own. */
  read(node: unknown, path: PathSegment[], fallback: Position, key = pathKey(path)): unknown {
    // An empty value (`url:`) is a zero-width node after the colon; the key is what to point at.
    const isEmpty = isNodeWithRange(node) && node.range[0] === node.range[1];
    const position = isNodeWithRange(node) && !isEmpty ? this.locate(node.range[0]) : fallback;
    this.valuePositions.set(key, position);
    if (node === null || node === undefined) return null;
    if (this.lib.isAlias(node)) return this.readAlias(node, path, position);
    if (this.lib.isScalar(node)) return this.readScalar(node.value, path, position);
    if (this.lib.isMap(node)) {
      const out: Record<string, unknown> = {};
      const order: string[] = [];
      for (const pair of node.items) {
        const keyPosition = isNodeWithRange(pair.key) ? this.locate(pair.key.range[0]) : position;
        const name = this.lib.isScalar(pair.key) && ['string', 'number', 'boolean'].includes(typeof pair.key.value) ? restoreReferences(String(pair.key.value)) : undefined;
        if (name === undefined) {
          this.problems.push({ path, position: keyPosition, message: 'keys must be plain names, not lists, maps or empty' });
          continue;
        }
        const childPath = [...path, name];
        const childKey = childPathKey(key, name);
        this.keyPositions.set(childKey, keyPosition);
        const child = this.read(pair.value, childPath, keyPosition, childKey);
        if (child === OMIT) continue;
        order.push(name);
        // defineProperty, not assignment: a key named __proto__ must stay a plain key.
        Object.defineProperty(out, name, { value: child, enumerable: true, writable: true, configurable: true });
      }
      this.keyOrder.set(key, order);
      return out;
    }
    if (this.lib.isSeq(node)) {
      return node.items.map((item, index) => {
        const child = this.read(item, [...path, index], position, childPathKey(key, index));
        return child === OMIT ? null : child;
      });
    }
    return null;
  }

  private readAlias(node: Alias, path: PathSegment[], position: Position): unknown {
    const target: Node | undefined = node.resolve(this.doc);
    if (target === undefined || this.resolving.has(target)) {
      this.problems.push({ path, position, message: 'this alias refers to an unknown anchor or to itself' });
      return null;
    }
    this.resolving.add(target);
    try {
      return this.read(target, path, position);
    } finally {
      this.resolving.delete(target);
      this.valuePositions.set(pathKey(path), position);
    }
  }

  private readScalar(value: unknown, path: PathSegment[], position: Position): unknown {
    if (typeof value !== 'string') return value;
    const source = restoreReferences(value);
    const result = interpolateEnv(source, this.options.env);
    if (!result.ok) {
      this.problems.push({ path, position, message: result.message });
      this.interpolationFailed.add(pathKey(path));
      return source;
    }
    if (result.unset.length > 0) {
      if (this.options.isOptionalWhenUnset(path)) return OMIT;
      this.problems.push({ path, position, message: describeUnset(result.unset) });
      this.interpolationFailed.add(pathKey(path));
      return source;
    }
    if (result.usedVars && result.value === '' && this.options.isOptionalWhenUnset(path)) return OMIT;
    return result.value;
  }
}

function isNodeWithRange(node: unknown): node is { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as { range?: unknown }).range);
}
