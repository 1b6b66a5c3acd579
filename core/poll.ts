// The one poll-until helper: demo, tests, bench and the CLI wait for a condition the same way.
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  readonly timeoutMs: number;
  /** pause between checks; default 20 ms (route pushes and probes take milliseconds) */
  readonly intervalMs?: number;
}

/**
 * Calls `read` until `done(value)` holds or `timeoutMs` passes; a `read` that throws counts as "not
 * yet". Resolves with the last value read and whether the condition held (never rejects on timeout).
 */
export async function poll<T>(read: () => T | Promise<T>, done: (value: T) => boolean, { timeoutMs, intervalMs = 20 }: PollOptions): Promise<{ ok: boolean; value: T | undefined }> {
  const deadline = Date.now() + timeoutMs;
  let value: T | undefined;
  for (;;) {
    try {
      value = await read();
      if (done(value)) return { ok: true, value };
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return { ok: false, value };
    await sleep(intervalMs);
  }
}

/** True once `check` returns true within `timeoutMs`, false otherwise. */
export async function until(check: () => boolean | Promise<boolean>, options: PollOptions): Promise<boolean> {
  return (await poll(check, (v) => v, options)).ok;
}

export class PollTimeoutError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`);
    this.name = 'PollTimeoutError';
  }
}

/** As `until`, but a timeout throws PollTimeoutError naming `what`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  if (!(await until(check, { timeoutMs, intervalMs }))) throw new PollTimeoutError(what, timeoutMs);
}
