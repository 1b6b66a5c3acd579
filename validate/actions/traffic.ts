// The traffic action: waits (bounded) for exchanges the sandbox's sidecars captured since the run started, matching a
// filter, and asserts on them — e.g. "the fork of orders called payments exactly once with status 200".
import { setTimeout as sleep } from 'node:timers/promises';
import { isWorkloadName } from '../../core/names.js';
import type { CapturedExchange } from '../../model/capture.js';
import type { AssertionResult } from '../assertions.js';
import { ValidateError } from '../errors.js';
import type { ActionModule } from './action.js';
import { DURATION, METHODS, NUMBERISH } from './request.js';

export interface TrafficInput {
  /** the workload whose sidecars routed the exchanges (the forked one): `<namespace>/<name>` */
  readonly workload: string;
  readonly method?: string;
  /** the request path (query included); a trailing `*` matches any rest */
  readonly path?: string;
  /** every matching exchange must have this status */
  readonly status?: number | string;
  /** exactly this many must match (default: at least one) */
  readonly count?: number | string;
  readonly timeout?: string | number;
}

interface Prepared {
  readonly workload: string;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly status: number | undefined;
  readonly count: number | undefined;
  readonly timeoutMs: number;
}

export const DEFAULT_TRAFFIC_TIMEOUT_MS = 10_000;
/** How often the captured traffic is read while waiting. */
const POLL_MS = 200;
/**
 * Once the expected count is seen, how long to look again for more: sidecars report in batches every
 * 200 ms, so an extra call would show up within this.
 */
export const TRAFFIC_SETTLE_MS = 600;

function matches(e: CapturedExchange, p: Prepared): boolean {
  if (e.workload !== p.workload) return false;
  if (p.method !== undefined && e.method !== p.method) return false;
  if (p.path !== undefined) return p.path.endsWith('*') ? e.path.startsWith(p.path.slice(0, -1)) : e.path === p.path;
  return true;
}

function describeFilter(p: { workload: string; method?: string | undefined; path?: string | undefined }): string {
  return `${p.workload}${p.method === undefined ? '' : ` ${p.method}`}${p.path === undefined ? '' : ` ${p.path}`}`;
}

export const traffic: ActionModule<TrafficInput, Prepared> = {
  schema: {
    type: 'object',
    required: ['workload'],
    additionalProperties: false,
    properties: {
      workload: { type: 'string', maxLength: 127 },
      method: { type: 'string', enum: [...METHODS] },
      path: { type: 'string', maxLength: 2000 },
      status: NUMBERISH,
      count: NUMBERISH,
      timeout: DURATION,
    },
  },
  outputs: ['count', 'statuses', 'durationMs', 'missed'],
  readsResponse: false,
  needsSandbox: () => true,
  requests: () => 0,
  describe: (input) => ({ text: `check the captured traffic: ${describeFilter(input)}${input.count === undefined ? '' : ` ×${input.count}`}${input.status === undefined ? '' : ` → ${input.status}`}`, labelled: false }),
  check(input, at, scope) {
    scope.refs(input.workload, `${at}.workload`, false);
    if (!input.workload.includes('${{') && !isWorkloadName(input.workload)) throw new ValidateError('LANEWAY_ERR_PLAN_INVALID', `${at}.workload: must be <namespace>/<name>`, `${at}.workload`);
    if (input.path !== undefined && !input.path.startsWith('/') && !input.path.startsWith('${{')) {
      throw new ValidateError('LANEWAY_ERR_PLAN_INVALID', `${at}.path: must start with /`, `${at}.path`);
    }
    if (input.count !== undefined) scope.count(input.count, `${at}.count`, 0);
    if (input.status !== undefined) scope.count(input.status, `${at}.status`, 100);
    if (input.timeout !== undefined) scope.duration(input.timeout, `${at}.timeout`);
  },
  prepare(raw, at, scope) {
    const timeoutMs = scope.ms(raw.timeout, `${at}.timeout`, scope.capMs(DEFAULT_TRAFFIC_TIMEOUT_MS));
    const prepared: Prepared = {
      workload: String(raw.workload),
      method: raw.method === undefined ? undefined : String(raw.method),
      path: raw.path === undefined ? undefined : String(raw.path),
      status: raw.status === undefined ? undefined : scope.count(raw.status, `${at}.status`),
      // 0 is a valid expectation ("never called"): scope.count wants ≥ 1, so read it here.
      count: raw.count === undefined ? undefined : Number(raw.count) === 0 ? 0 : scope.count(raw.count, `${at}.count`),
      timeoutMs,
    };
    return { prepared, policy: { timeoutMs } };
  },
  async execute(p, run) {
    const { result, out, sandbox } = run;
    result.inputs = { sandbox: sandbox?.name ?? null, workload: p.workload, method: p.method ?? null, path: p.path ?? null, status: p.status ?? null, count: p.count ?? null, timeoutMs: p.timeoutMs };
    if (sandbox === null) throw new ValidateError('LANEWAY_ERR_SANDBOX_REQUIRED');
    const since = new Date(run.runStartedAt).toISOString();
    const started = performance.now();
    // `missed`: exchanges of the workload in the window that never made it into the ring (a sidecar's full buffer,
    // or an invalid record): an exact count can be short because of them, and the failure must say so.
    let missed = 0;
    const read = async (): Promise<CapturedExchange[]> => {
      const page = await run.sandboxes.traffic(sandbox.name, { workload: p.workload, since, limit: 1000 }, run.signal);
      if (page === undefined) throw new ValidateError('LANEWAY_ERR_SANDBOX_NOT_READY', `sandbox ${sandbox.name} does not exist (deleted while the plan ran?)`);
      if (!page.capture) throw new ValidateError('LANEWAY_ERR_CAPTURE_OFF', `sandbox ${sandbox.name} does not capture traffic: add "capture": {} to its spec`);
      missed = 0;
      const matching: CapturedExchange[] = [];
      for (const e of page.entries) {
        if (e.kind === 'dropped') missed += e.count;
        else if (matches(e.exchange, p)) matching.push(e.exchange);
      }
      return matching;
    };
    const enough = (n: number): boolean => (p.count === undefined ? n >= 1 : n >= p.count && p.count > 0);
    let seen = await read();
    try {
      while (!enough(seen.length) && performance.now() - started < p.timeoutMs) {
        await sleep(POLL_MS, undefined, { signal: run.signal });
        seen = await read();
      }
      // An exact count: more may still be on their way (or, for 0, arrive late).
      if (p.count !== undefined) {
        await sleep(Math.min(TRAFFIC_SETTLE_MS, Math.max(0, p.timeoutMs - (performance.now() - started))), undefined, { signal: run.signal });
        seen = await read();
      }
    } catch (err) {
      if (err instanceof ValidateError) throw err;
      throw new ValidateError('LANEWAY_ERR_RUN_ABORTED');
    }
    const unsure = missed === 0 ? '' : ` (${missed} exchange(s) of ${p.workload} in this window were not captured: a sidecar's buffer was full or it sent invalid records)`;
    const statuses = seen.map((e) => e.status);
    const assertions: AssertionResult[] = [];
    const what = describeFilter(p);
    if (p.count === undefined) {
      const pass = seen.length >= 1;
      assertions.push({ assertion: 'traffic count >= 1', pass, expected: '>= 1', actual: seen.length, message: pass ? 'ok' : `no exchange matching ${what} was captured within ${p.timeoutMs} ms${unsure}` });
    } else {
      const pass = seen.length === p.count;
      assertions.push({ assertion: `traffic count == ${p.count}`, pass, expected: p.count, actual: seen.length, message: pass ? 'ok' : `${seen.length} exchange(s) matching ${what} were captured, expected ${p.count}${unsure}` });
    }
    if (p.status !== undefined) {
      const pass = seen.length > 0 && statuses.every((s) => s === p.status);
      assertions.push({ assertion: `traffic status == ${p.status}`, pass, expected: p.status, actual: statuses, message: pass ? 'ok' : seen.length === 0 ? `nothing matching ${what} to check` : `statuses were ${statuses.join(', ')}` });
    }
    result.assertions.push(...assertions);
    out.count = seen.length;
    out.statuses = statuses;
    out.durationMs = Math.round(performance.now() - started);
    out.missed = missed;
    result.outputs = { ...out, exchanges: seen.slice(0, 20).map((e) => ({ at: new Date(e.at).toISOString(), method: e.method, path: e.path, status: e.status, durationMs: e.durationMs, target: e.target })) };
  },
};
