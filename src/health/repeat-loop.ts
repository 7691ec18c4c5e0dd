// A task run now and then again after each run finishes, never overlapping:
// the shape shared by health probes and integrity checks. setTimeout re-armed
// after the run (not setInterval) so a slow site cannot pile up probes, and the
// timer is unref'd so a forgotten loop never keeps the process alive.

/** Runs once; must report its own errors (a rejection is swallowed to keep the loop alive). */
export type LoopTask = (signal: AbortSignal) => Promise<void>;

/** Why a stopped loop's signal is aborted: one error made once, for every loop. */
const STOPPED = Object.freeze(Object.assign(new Error('the loop was stopped'), { name: 'AbortError' }));

export class RepeatLoop {
  readonly #task: LoopTask;
  readonly #nextDelayMs: () => number;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #queued: Promise<void> | undefined;

  constructor(task: LoopTask, nextDelayMs: () => number) {
    this.#task = task;
    this.#nextDelayMs = nextDelayMs;
  }

  get isStopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** First run happens at once. */
  start(): void {
    void this.runNow();
  }

  /**
   * Runs the task at once, or, if a run is in flight, once more right after it
   * (the caller wants an answer from after its call, e.g. after an undrain).
   * Resolves when that run has finished.
   */
  runNow(): Promise<void> {
    if (this.isStopped) return Promise.resolve();
    if (this.#inFlight === undefined) return this.#run();
    this.#queued ??= this.#inFlight.then(() => {
      this.#queued = undefined;
      return this.isStopped ? undefined : this.#run();
    });
    return this.#queued;
  }

  /** Clears the timer and aborts a run in flight; resolves once it has settled. */
  stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // A reason made once: abort() without one builds a DOMException with a stack (about 11 us; a reload can stop 1,000 loops).
    this.#abort.abort(STOPPED);
    return this.#inFlight ?? Promise.resolve();
  }

  #run(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const run = this.#task(this.#abort.signal)
      .catch(() => undefined)
      .finally(() => {
        this.#inFlight = undefined;
        this.#arm();
      });
    this.#inFlight = run;
    return run;
  }

  #arm(): void {
    if (this.isStopped) return;
    this.#timer = setTimeout(() => void this.#run(), Math.max(0, this.#nextDelayMs()));
    this.#timer.unref();
  }
}
