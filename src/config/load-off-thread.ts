// Reading and validating a policy on a worker thread, for reloads. Parsing a
// policy of 10,000 routes takes the YAML and schema passes a second or more;
// on the main thread that second is a second every request waits. The worker
// reads and parses; the main thread only receives the result (a structured
// clone of plain data) and freezes it. A worker that cannot start or dies
// falls back to parsing here: a reload must still happen. A small file is
// parsed here at once: a worker takes longer to start (tens of milliseconds, off
// this thread) than a few hundred routes take to parse.
import { stat } from 'node:fs/promises';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadPolicyFile } from './load-policy.js';
import type { ParseResult } from './policy.js';

type Env = Readonly<Record<string, string | undefined>>;

interface WorkerInput {
  readonly detourPolicyWorker: true;
}

interface Job {
  readonly id: number;
  readonly file: string;
  readonly env: Env;
  /** A warm-up: parse, and answer without the result (copying it here would stall this thread for nothing). */
  readonly warm?: boolean;
}

/** Files smaller than this (about 250 routes) are parsed on the calling thread. */
export const OFF_THREAD_MIN_BYTES = 32 * 1024;

export interface OffThreadOptions {
  /** Files at least this large go to a worker (default OFF_THREAD_MIN_BYTES). */
  readonly minBytes?: number;
  /** For tests: a worker script that fails, to see the fallback. */
  readonly entry?: URL;
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
    result = await worker.parse(file, { ...env });
  } catch (err) {
    return { result: await loadPolicyFile(file, env), offThread: false, workerError: err instanceof Error ? err.message : String(err) };
  } finally {
    if (opts.entry !== undefined) await worker.close();
  }
  if (result.ok) deepFreeze(result.policy);
  return { result, offThread: true };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function isWorkerInput(data: unknown): data is WorkerInput {
  return typeof data === 'object' && data !== null && (data as WorkerInput).detourPolicyWorker === true;
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
  readonly #pending = new Map<number, { resolve: (r: ParseResult) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #dead: Error | undefined;

  /** `entry` is this very module (see the bottom of the file): one file to find in src/ under the test loader and in dist/ once built. */
  constructor(entry: URL) {
    this.#worker = new Worker(entry, { workerData: { detourPolicyWorker: true } satisfies WorkerInput });
    this.#worker.unref();
    this.#worker.on('message', (msg: { id: number; result: ParseResult }) => {
      const job = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (this.#pending.size === 0) this.#worker.unref();
      job?.resolve(msg.result);
    });
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', (code) => this.#fail(new Error(`policy worker exited with code ${code} before answering`)));
  }

  get dead(): boolean {
    return this.#dead !== undefined;
  }

  parse(file: string, env: Env, warm = false): Promise<ParseResult> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
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

let shared: PolicyWorker | undefined;
function sharedWorker(): PolicyWorker {
  if (shared === undefined || shared.dead) shared = new PolicyWorker(new URL(import.meta.url));
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

if (!isMainThread && isWorkerInput(workerData)) {
  parentPort!.on('message', (job: Job) => {
    void loadPolicyFile(job.file, job.env).then((result) => parentPort!.postMessage({ id: job.id, ...(job.warm ? {} : { result }) }));
  });
}
