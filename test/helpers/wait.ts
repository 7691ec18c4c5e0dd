// Bounded waiting for tests: poll a condition, or wait for one event, and fail
// with a clear message instead of hanging the suite. Every timer is cleared.
import type { EventEmitter } from 'node:events';

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** What was being waited for, for the timeout message. */
  readonly message?: string;
}

/** Resolves once `cond` returns true (it may be async); rejects after timeoutMs (default 2000). */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  { timeoutMs = 2000, intervalMs = 10, message = 'condition' }: WaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) throw new Error(`waitFor: ${message} not met within ${timeoutMs}ms`);
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The arguments of the next `event` on `emitter`; rejects after timeoutMs (default 2000) or on 'error'. */
export function once(emitter: EventEmitter, event: string, timeoutMs = 2000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const onEvent = (...args: unknown[]): void => { cleanup(); resolve(args); };
    const onError = (err: unknown): void => { cleanup(); reject(err); };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`once: no "${event}" event within ${timeoutMs}ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    emitter.on(event, onEvent);
    if (event !== 'error') emitter.on('error', onError);
  });
}
