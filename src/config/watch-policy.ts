// Signals that the policy file may have changed. It does not reload: the owner
// re-parses, validates and swaps, keeping the last good policy on failure.
//
// It watches the directory, not the file: editors (vim, sed -i) and deploy
// tools save by writing a new file and renaming it over the old one, after
// which a watch on the old file sees nothing. Events for other names still
// count when the file's identity changed, which covers Kubernetes ConfigMaps,
// where the file is a symlink and the update swaps a directory under it.
import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface PolicyWatcherOptions {
  readonly file: string;
  readonly onChange: () => void;
  /** Quiet time after the last event before onChange fires; one save can raise several events. */
  readonly debounceMs?: number;
  /** The directory watch failed (for example, the directory was removed); no more signals will come. */
  readonly onError?: (err: Error) => void;
}

export class PolicyWatcher {
  private readonly file: string;
  private readonly name: string;
  private readonly onChange: () => void;
  private readonly debounceMs: number;
  private readonly watcher: FSWatcher;
  private timer: NodeJS.Timeout | undefined;
  private sawOwnName = false;
  private signature: string;
  private isClosed = false;

  constructor(options: PolicyWatcherOptions) {
    this.file = resolve(options.file);
    this.name = basename(this.file);
    this.onChange = options.onChange;
    this.debounceMs = options.debounceMs ?? 200;
    this.signature = readSignature(this.file);
    const dir = dirname(this.file);
    try {
      this.watcher = watch(dir, (_event, filename) => this.noteEvent(filename));
    } catch (err) {
      throw new Error(`cannot watch ${dir} for policy changes: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.watcher.on('error', (err) => {
      this.close();
      options.onError?.(err);
    });
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher.close();
  }

  private noteEvent(filename: string | Buffer | null): void {
    if (this.isClosed) return;
    // Some platforms omit the name; then any event in the directory may be ours.
    if (filename === null || filename.toString() === this.name) this.sawOwnName = true;
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
