// The policy worker thread: the entry that load-off-thread.ts starts, what it
// and that thread send each other, and the thread's own code. It reads and
// parses a policy file and sends the result back, a large one in parts.
//
// The thread runs below normal CPU priority (Linux: nice 10, for this thread
// alone). Its parse is background work, and on a machine with few cores it
// took CPU from the thread serving requests: the warm-up at start (a new
// thread loading and compiling the parser, then parsing the policy) stalled
// the event loop during a 2,000-route flap right after start 10 to 16 ms
// (median 12, 2 cores), 7 to 15 ms at nice 10 (median 8), and a reload's
// parse added its own. The price is a slower reload when every core is busy:
// 10,000 routes with two busy-looping processes on 2 cores took 0.45 s at
// nice 0, 1.9 s at nice 10, 13.5 s at nice 19 (the lowest, rejected for
// that). The parser is imported only once the priority is set, and nothing
// heavy is imported here statically (load-off-thread.ts imports this module
// on the main thread for the protocol).
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { samePart, type ParseResult, type Policy } from './policy.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface WorkerInput {
  readonly detourPolicyWorker: true;
}

export interface Job {
  readonly id: number;
  readonly file: string;
  readonly env: Env;
  /** A warm-up: parse, and answer without the result (copying it here would stall this thread for nothing). */
  readonly warm?: boolean;
}

/** A part of a large result: some of the policy's routes or sites. */
export interface PartMessage {
  readonly id: number;
  readonly part: { readonly key: PartKey; readonly items: readonly unknown[] };
}

/** The result; when parts came first, its policy has those lists empty and says its keys' order. */
export interface ResultMessage {
  readonly id: number;
  readonly result?: ParseResult;
  readonly keys?: readonly string[];
}

export type PartKey = 'routes' | 'sites';
export const PART_KEYS: readonly PartKey[] = ['routes', 'sites'];
/** Routes or sites per part: a few milliseconds to copy on the receiving side. */
export const ITEMS_PER_PART = 250;

/** The main thread took a part: the next may go. */
export interface Ack {
  readonly ack: number;
}

export function isWorkerInput(data: unknown): data is WorkerInput {
  return typeof data === 'object' && data !== null && (data as WorkerInput).detourPolicyWorker === true;
}

/**
 * Put the calling thread below normal CPU priority (nice 10), where the OS
 * lets one thread have its own: on Linux, setpriority() given a thread's id
 * (from /proc/thread-self) sets that thread's alone. Elsewhere nothing is
 * changed (a pid there would mean the whole process), nor when it fails: the
 * thread then parses at the priority it has.
 */
function lowerThreadPriority(): void {
  if (process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // (no /proc, or not allowed)
  }
}

/**
 * The items of a part with equal settings objects made one (a route's
 * `failover`, `failback`, `retry`, `limits`; a site's `health`, `passive`...):
 * a structured clone copies a shared object once, so the main thread builds one
 * failback for 250 routes instead of 250. Those objects were all young and all
 * survived, and a reload of 10,000 routes stalled requests on the scavenges
 * that copied them (10 to 25 ms each). Safe because a policy is frozen and
 * nothing tells its objects apart by identity. Each field keeps its last few
 * distinct values to compare with (a policy has few distinct settings, many
 * routes): linear, and no text built per value.
 */
export function shareEqualSettings(items: readonly unknown[]): unknown[] {
  const known = new Map<string, object[]>();
  return items.map((item) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
    let copy: Record<string, unknown> | undefined;
    for (const field in item) {
      const value: unknown = (item as Record<string, unknown>)[field];
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      let values = known.get(field);
      if (values === undefined) known.set(field, values = []);
      const shared = values.find((v) => samePart(v, value));
      if (shared !== undefined) (copy ??= { ...item })[field] = shared;
      else if (values.length < DISTINCT_KEPT) values.push(value);
    }
    return copy ?? item;
  });
}

/** Distinct values kept per field: settings beyond these (one per route, like `match`) are sent as they are. */
const DISTINCT_KEPT = 4;

if (!isMainThread && isWorkerInput(workerData)) {
  // First, before the parser loads (the YAML and schema modules, compiled here
  // while the gateway may be busy): this thread's parse is background work.
  lowerThreadPriority();
  const parser = import('./load-policy.js');
  const acks = new Map<number, () => void>();
  const taken = (id: number) => new Promise<void>((resolve) => acks.set(id, resolve));
  const send = async (id: number, result: ParseResult): Promise<void> => {
    if (!result.ok || result.policy.routes.length + result.policy.sites.length <= ITEMS_PER_PART) {
      parentPort!.postMessage({ id, result } satisfies ResultMessage);
      return;
    }
    const policy = result.policy;
    for (const key of PART_KEYS) {
      const list: readonly unknown[] = policy[key];
      for (let i = 0; i < list.length; i += ITEMS_PER_PART) {
        const next = taken(id);
        const items = shareEqualSettings(list.slice(i, i + ITEMS_PER_PART));
        parentPort!.postMessage({ id, part: { key, items } } satisfies PartMessage);
        await next;
      }
    }
    const rest: Policy = { ...policy, routes: [], sites: [] };
    parentPort!.postMessage({ id, result: { ...result, policy: rest }, keys: Object.keys(policy) } satisfies ResultMessage);
  };
  parentPort!.on('message', (msg: Job | Ack) => {
    if ('ack' in msg) {
      const ack = acks.get(msg.ack);
      acks.delete(msg.ack);
      ack?.();
      return;
    }
    const job = msg;
    void parser.then(({ loadPolicyFile }) => loadPolicyFile(job.file, job.env))
      .then((result) => (job.warm ? parentPort!.postMessage({ id: job.id }) : send(job.id, result)));
  });
}
