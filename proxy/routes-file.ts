// Route source: a JSON routes file, re-read when it changes and swapped in atomically; a bad file keeps the last good table.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { RouteTable } from '../model/route-table.js';
import type { RouteState } from './route-state.js';

/** Poll interval backing up fs.watch (which misses some editors' and ConfigMap symlink swaps). */
const POLL_MS = 1000;

export class RoutesFileSource {
  readonly #path: string;
  readonly #state: RouteState;
  #watcher: FSWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** digest of the last file read: a poll that finds the same bytes re-parses nothing (and we keep 20 bytes, not the file) */
  #lastDigest: string | null = null;
  #reading: Promise<void> | null = null;
  #again = false;

  constructor(path: string, state: RouteState) {
    this.#path = path;
    this.#state = state;
  }

  /** Loads the file once (a failure is logged, the sidecar stays unready), then watches it. */
  async start(): Promise<void> {
    await this.reload();
    try {
      const name = basename(this.#path);
      this.#watcher = watch(dirname(this.#path), (_event, file) => {
        if (file === null || file === name || file.startsWith('..')) this.#schedule();
      });
      this.#watcher.on('error', () => {});
    } catch {
      // directory not watchable: polling below still works
    }
    watchFile(this.#path, { interval: POLL_MS, persistent: false }, () => this.#schedule());
  }

  #schedule(): void {
    // Editors write in bursts; coalesce them into one read.
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.reload();
    }, 25);
  }

  async reload(): Promise<void> {
    if (this.#reading !== null) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = this.#read().finally(() => {
      this.#reading = null;
      if (this.#again) {
        this.#again = false;
        void this.reload();
      }
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    const source = `file:${this.#path}`;
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      this.#state.reject(source, `cannot read: ${(err as Error).message}`);
      return;
    }
    const digest = createHash('sha1').update(text).digest('base64');
    if (digest === this.#lastDigest) return;
    this.#lastDigest = digest;
    let table: RouteTable;
    try {
      table = RouteTable.parse(JSON.parse(text));
    } catch (err) {
      this.#state.reject(source, (err as Error).message);
      return;
    }
    this.#state.replace(table, source);
  }

  stop(): void {
    this.#watcher?.close();
    unwatchFile(this.#path);
    if (this.#timer !== null) clearTimeout(this.#timer);
  }
}
