// Signals that the policy file may have changed. It does not reload: the owner
// re-parses, validates and swaps, keeping the last good policy on failure.
//
// It watches the directory, not the file: editors (vim, sed -i) and deploy
// tools save by writing a new file and renaming it over the old one, after
// which a watch on the old file sees nothing. Events for other names still
// count when the file's identity changed, which covers Kubernetes ConfigMaps,
// where the file is a symlink and the update swaps a directory under it.
//
// A watch dies with its directory: some deploy tools and config-map mounts
// replace the whole directory (rm -rf, then create it again), and inotify then
// reports nothing, ever again. So a slow poll runs beside the watch: it notices
// the directory being removed or replaced and watches the new one, and it
// compares the file's identity itself, so a change made while nothing could
// watch (or an event the platform dropped) is still signalled, at most pollMs
// late. Whether the watch is alive is reported (log, /status, a gauge), so an
// operator knows edits may only be seen by the poll.
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface WatchStatus {
  /** true while a directory watch is armed; false while only the poll notices changes. */
  readonly up: boolean;
  /** `watching /etc/detour`, `cannot watch /etc/detour: ENOENT ...; polling every 1000ms`. */
  readonly detail: string;
}

export interface PolicyWatcherOptions {
  readonly file: string;
  readonly onChange: () => void;
  /** Quiet time after the last event before onChange fires; one save can raise several events. */
  readonly debounceMs?: number;
  /** How often the directory and the file are checked besides the watch (default 1000 ms). */
  readonly pollMs?: number;
  /** The watch came up or went down (called with the first status too). */
  readonly onStatus?: (status: WatchStatus) => void;
}

export class PolicyWatcher {
  private readonly file: string;
  private readonly dir: string;
  private readonly name: string;
  private readonly onChange: () => void;
  private readonly onStatus: ((status: WatchStatus) => void) | undefined;
  private readonly debounceMs: number;
  private readonly pollMs: number;
  private watcher: FSWatcher | undefined;
  /** Identity of the directory the watch is on; a different one means it was replaced. */
  private watchedDir = '';
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private sawOwnName = false;
  private signature: string;
  private isClosed = false;
  private current: WatchStatus | undefined;

  constructor(options: PolicyWatcherOptions) {
    this.file = resolve(options.file);
    this.dir = dirname(this.file);
    this.name = basename(this.file);
    this.onChange = options.onChange;
    this.onStatus = options.onStatus;
    this.debounceMs = options.debounceMs ?? 200;
    this.pollMs = options.pollMs ?? 1000;
    this.signature = readSignature(this.file);
    this.arm();
    this.schedulePoll();
  }

  get status(): WatchStatus {
    return this.current!;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    this.timer = undefined;
    this.pollTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private arm(): void {
    const dirId = readIdentity(this.dir);
    try {
      const watcher = watch(this.dir, (event, filename) => this.noteEvent(event, filename));
      watcher.on('error', (err) => {
        if (this.watcher !== watcher) return;
        this.disarm(`watch on ${this.dir} failed: ${err.message}`);
      });
      this.watcher = watcher;
      this.watchedDir = dirId;
      this.setStatus({ up: true, detail: `watching ${this.dir}` });
    } catch (err) {
      this.disarm(`cannot watch ${this.dir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private disarm(reason: string): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.watchedDir = '';
    this.setStatus({ up: false, detail: `${reason}; polling every ${this.pollMs}ms` });
  }

  private setStatus(next: WatchStatus): void {
    if (this.current?.up === next.up && this.current.detail === next.detail) return;
    this.current = next;
    this.onStatus?.(next);
  }

  private schedulePoll(): void {
    if (this.isClosed) return;
    this.pollTimer = setTimeout(() => this.poll(), this.pollMs);
    this.pollTimer.unref();
  }

  private poll(): void {
    if (this.isClosed) return;
    const dirId = readIdentity(this.dir);
    if (this.watcher !== undefined && dirId !== this.watchedDir) {
      this.disarm(dirId === '' ? `${this.dir} was removed` : `${this.dir} was replaced`);
    }
    // Re-arm on the directory that is there now (at once when it was replaced).
    if (this.watcher === undefined && dirId !== '') this.arm();
    if (readSignature(this.file) !== this.signature) this.schedule();
    this.schedulePoll();
  }

  private noteEvent(event: string, filename: string | Buffer | null): void {
    if (this.isClosed) return;
    // inotify names the watched directory itself when it is deleted or moved
    // away; the watch is dead from then on, even if a new directory with the
    // same inode number takes its place (rm -rf then mkdir often gets one).
    if (event === 'rename' && filename !== null && filename.toString() === basename(this.dir)) {
      this.disarm(`${this.dir} was removed or replaced`);
      if (readIdentity(this.dir) !== '') this.arm();
    }
    // Some platforms omit the name; then any event in the directory may be ours.
    if (filename === null || filename.toString() === this.name) this.sawOwnName = true;
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(), this.debounceMs);
    this.timer.unref();
  }

  private settle(): void {
    this.timer = undefined;
    if (this.isClosed) return;
    const signature = readSignature(this.file);
    const isChanged = this.sawOwnName || signature !== this.signature;
    this.sawOwnName = false;
    this.signature = signature;
    if (isChanged) this.onChange();
  }
}

/** Identity and version of whatever the path currently resolves to; '' when it is missing. */
function readSignature(file: string): string {
  try {
    const stat = statSync(file);
    return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch {
    return '';
  }
}

/** Which directory (or file) a path is now, by device and inode; '' when it is missing. */
function readIdentity(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.dev}:${stat.ino}`;
  } catch {
    return '';
  }
}
