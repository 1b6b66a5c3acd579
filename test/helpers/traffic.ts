// Test helper: drives requests into a mini-mesh N at a time and records, per request, its key, timing and what it saw.
import type { Mesh } from '../../demo/mesh.js';

export interface Sent {
  /** the routing key sent as `baggage: laneway=<key>`; undefined = no key */
  readonly key: string | undefined;
  readonly startedAt: number;
  readonly endedAt: number;
  /** 0 when the request itself failed (connection error) */
  readonly status: number;
  readonly path: readonly string[] | undefined;
  readonly body: unknown;
  readonly error?: string;
}

export interface DriveOptions {
  readonly concurrency: number;
  /** stop after this many requests… */
  readonly total?: number;
  /** …or once this returns true (checked before each request) */
  readonly stop?: () => boolean;
  /** the key for the i-th request */
  readonly key: (i: number) => string | undefined;
  /** results are pushed here as they arrive, so a test can act mid-traffic */
  readonly into?: Sent[];
}

/** A test that fails before setting its stop flag must not leave workers spinning against a stopped mesh. */
const RUNAWAY_LIMIT = 50_000;

/** Sends requests through `mesh.call` with `concurrency` in flight until `total` or `stop()`. */
export async function drive(mesh: Mesh, options: DriveOptions): Promise<Sent[]> {
  const sent: Sent[] = options.into ?? [];
  let next = 0;
  const limit = options.total ?? RUNAWAY_LIMIT;
  const more = (): boolean => next < limit && !(options.stop?.() ?? false);
  const worker = async (): Promise<void> => {
    while (more()) {
      const key = options.key(next++);
      const startedAt = performance.now();
      try {
        const res = await mesh.call(key);
        sent.push({ key, startedAt, endedAt: performance.now(), status: res.status, path: res.body.path, body: res.body });
      } catch (err) {
        sent.push({ key, startedAt, endedAt: performance.now(), status: 0, path: undefined, body: undefined, error: (err as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return sent;
}

/** Requests whose status or path differ from what their key should give, for a readable failure message. */
export function mismatches(sent: readonly Sent[], expected: (key: string | undefined) => readonly string[]): Sent[] {
  return sent.filter((s) => s.status !== 200 || s.path === undefined || s.path.join('>') !== expected(s.key).join('>'));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
