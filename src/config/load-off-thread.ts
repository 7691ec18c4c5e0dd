// Reading and validating a policy on a worker thread, for reloads. Parsing a
// policy of 10,000 routes takes the YAML and schema passes a second or more;
// on the main thread that second is a second every request waits. The worker
// reads and parses; the main thread only receives the result (a structured
// clone of plain data) and freezes it. A large result comes in parts (routes
// and sites a few hundred at a time, the next part sent once this thread has
// taken the last): copying 10,000 routes in one message held this thread
// ~100 ms, every request with it. A worker that cannot start or dies
// falls back to parsing here: a reload must still happen. A small file is
// parsed here at once: a worker takes longer to start (tens of milliseconds, off
// this thread) than a few hundred routes take to parse. The worker's side is
// policy-worker.ts.
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadPolicyFile } from './load-policy.js';
import { deepFreeze } from '../model/deep-freeze.js';
import { indexPolicy, samePart, type ParseResult, type Policy, type PolicyIndex } from './policy.js';
import { PART_KEYS, type Ack, type Job, type PartKey, type PartMessage, type ResultMessage, type WorkerInput } from './policy-worker.js';

export { ITEMS_PER_PART, shareEqualSettings } from './policy-worker.js';

type Env = Readonly<Record<string, string | undefined>>;

/** Files smaller than this (about 250 routes) are parsed on the calling thread. */
export const OFF_THREAD_MIN_BYTES = 32 * 1024;

export interface OffThreadOptions {
  /** Files at least this large go to a worker (default OFF_THREAD_MIN_BYTES). */
  readonly minBytes?: number;
  /** For tests: a worker script that fails, to see the fallback. */
  readonly entry?: URL;
  /**
   * The policy in force: a reloaded route or site equal to its running one
   * (same name, samePart) is kept as that object, and the parsed copy dies
   * young. An unchanged route then costs the swap nothing more: the
   * collections after a 10,000-route reload copied every parsed route, and
   * the comparisons across the reload find the same object at once.
   */
  readonly running?: Policy;
}

export interface OffThreadLoad {
  readonly result: ParseResult;
  /** false when the worker could not be used and the policy was parsed on this thread. */
  readonly offThread: boolean;
  /** Why the worker could not be used. */
  readonly workerError?: string;
}

export async function loadPolicyFileOffThread(file: string, env: Env = process.env, opts: OffThreadOptions = {}): Promise<OffThreadLoad> {
  // A file that cannot be stat'ed cannot be read either: loadPolicyFile says why.
  const size = await stat(file).then((s) => s.size, () => undefined);
  if (size === undefined || size < (opts.minBytes ?? OFF_THREAD_MIN_BYTES)) return { result: await loadPolicyFile(file, env), offThread: false };
  // A custom entry (tests) gets a worker of its own, closed after this one parse.
  const worker = opts.entry === undefined ? sharedWorker() : new PolicyWorker(opts.entry);
  let result: ParseResult;
  try {
    result = await worker.parse(file, { ...env }, false, opts.running === undefined ? undefined : indexPolicy(opts.running));
  } catch (err) {
    return { result: await loadPolicyFile(file, env), offThread: false, workerError: err instanceof Error ? err.message : String(err) };
  } finally {
    if (opts.entry !== undefined) await worker.close();
  }
  if (result.ok) deepFreeze(result.policy);
  return { result, offThread: true };
}

/** The running policy's routes and sites by name: its index's maps, one per part key. */
type RunningParts = Pick<PolicyIndex, PartKey>;

/** The running object when the parsed item equals it, else the item, frozen. */
function keptOrFrozen(running: ReadonlyMap<string, unknown> | undefined, item: unknown): unknown {
  const name = (item as { readonly name?: unknown }).name;
  const old = running !== undefined && typeof name === 'string' ? running.get(name) : undefined;
  return old !== undefined && samePart(old, item) ? old : deepFreeze(item);
}

/**
 * One worker kept for every reload: a new one per reload spent most of a second
 * starting, loading the parser and compiling it again (a 10,000-route policy:
 * 1.1 s on a new worker, 0.3 s on a warm one). It holds the process open only
 * while it has work; one that fails or exits is replaced with the next reload,
 * and that reload is parsed here.
 */
class PolicyWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, {
    resolve: (r: ParseResult) => void; reject: (e: Error) => void; readonly parts: Record<PartKey, unknown[]>;
    readonly running: RunningParts | undefined;
  }>();
  #nextId = 1;
  #dead: Error | undefined;

  /** `entry` is policy-worker's file (WORKER_ENTRY), or a test's. */
  constructor(entry: URL) {
    this.#worker = new Worker(entry, { workerData: { detourPolicyWorker: true } satisfies WorkerInput });
    this.#worker.unref();
    this.#worker.on('message', (msg: PartMessage | ResultMessage) => {
      const job = this.#pending.get(msg.id);
      if ('part' in msg) {
        if (job === undefined) return;
        const into = job.parts[msg.part.key];
        const running = job.running?.[msg.part.key];
        for (const item of msg.part.items) into.push(keptOrFrozen(running, item));
        this.#worker.postMessage({ ack: msg.id } satisfies Ack);
        return;
      }
      this.#pending.delete(msg.id);
      if (this.#pending.size === 0) this.#worker.unref();
      job?.resolve(withParts(msg, job.parts));
    });
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new Error(`policy worker exited with code ${code} before answering`)));
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  parse(file: string, env: Env, warm = false, running?: RunningParts): Promise<ParseResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, parts: { routes: [], sites: [] }, running });
      this.#worker.ref();
      this.#worker.postMessage({ id, file, env, ...(warm ? { warm } : {}) } satisfies Job);
    });
  }

  /**
   * Terminate, waiting at most a second: a shutdown must not hang on a thread.
   * (Under tap's TypeScript loader, terminating a worker in the middle of a
   * parse never settled 3 times in 4 on a loaded machine; built, it ends at once.)
   */
  async close(): Promise<void> {
    this.#fail(new Error('policy worker closed'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#worker.terminate().catch(() => {}),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, 1000); }),
    ]);
    clearTimeout(timer);
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const job of this.#pending.values()) job.reject(err);
    this.#pending.clear();
  }
}

/**
 * policy-worker.ts beside this file: .ts in src/ under the test loader, .js in
 * dist/ once built (the same extension as this module's).
 */
const WORKER_ENTRY = new URL(`./policy-worker${extname(new URL(import.meta.url).pathname)}`, import.meta.url);

let shared: PolicyWorker | undefined;
function sharedWorker(): PolicyWorker {
  if (shared === undefined || shared.dead) shared = new PolicyWorker(WORKER_ENTRY);
  return shared;
}

/** Stop the reload worker (a reload after this starts a new one). Jobs it had are parsed on their callers' thread. */
export async function closePolicyWorker(): Promise<void> {
  const worker = shared;
  shared = undefined;
  await worker?.close();
}

/**
 * Start the reload worker and have it parse `file` once, answer unused, so the
 * first reload finds it loaded and compiled. For a large policy, at start.
 */
export function warmPolicyWorker(file: string, env: Env = process.env): void {
  void sharedWorker().parse(file, { ...env }, true).catch(() => {});
}

/** The result as parsed: a policy sent in parts gets its lists back, its keys in their order. */
function withParts(msg: ResultMessage, parts: Record<PartKey, unknown[]>): ParseResult {
  const result = msg.result!;
  if (msg.keys === undefined || !result.ok) return result; // (a warm-up has no result at all)
  const policy: Record<string, unknown> = {};
  const sent = result.policy as unknown as Record<string, unknown>;
  for (const key of msg.keys) policy[key] = PART_KEYS.includes(key as PartKey) ? parts[key as PartKey] : sent[key];
  return { ...result, policy: policy as unknown as Policy };
}
