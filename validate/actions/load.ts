// The load action: the same N requests at a fixed rate through autocannon against the baseline, then the sandbox; percentiles and error rates side by side, judged against bounds.
import type autocannon from 'autocannon';
import type { AssertionResult } from '../assertions.js';
import { ValidateError } from '../errors.js';
import type { ActionModule } from './action.js';
import { laneHeaders } from './http.js';
import { checkRequest, DURATION, NUMBERISH, prepareRequest, REQUEST_PROPERTIES, type PreparedRequest, type RequestInput } from './request.js';

export interface LoadBounds {
  readonly percentile?: 'p50' | 'p90' | 'p97_5' | 'p99';
  /** how much slower the sandbox's percentile may be than the baseline's, e.g. `50%` */
  readonly maxIncrease?: string;
  /** differences below this always pass: at a few milliseconds a percentage is noise */
  readonly grace?: string | number;
  /** the sandbox's share of failed requests (connection errors, timeouts, non-2xx), e.g. `1%` */
  readonly maxErrorRate?: string;
}

export interface LoadInput extends RequestInput {
  readonly requests: number | string;
  /** requests per second, over all connections */
  readonly rate: number | string;
  readonly connections?: number | string;
  readonly bounds?: LoadBounds;
}

export interface PreparedLoad extends PreparedRequest {
  readonly requests: number;
  readonly rate: number;
  readonly connections: number;
  readonly bounds: Required<Pick<LoadBounds, 'percentile'>> & { readonly maxIncrease: number; readonly graceMs: number; readonly maxErrorRate: number };
}

/** One side's numbers. Latencies in milliseconds, time to the full response, nearest-rank percentiles over every response. */
export interface LoadSide {
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  /** (connection errors + non-2xx) / requests */
  readonly errorRate: number;
  readonly latency: { readonly p50: number; readonly p90: number; readonly p97_5: number; readonly p99: number; readonly average: number; readonly max: number };
  readonly durationMs: number;
}

export const DEFAULT_BOUNDS = Object.freeze({ percentile: 'p99', maxIncrease: '50%', grace: '10ms', maxErrorRate: '0%' } as const);
export const DEFAULT_LOAD_CONNECTIONS = 4;
const PERCENT = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?%$' } as const;

/** `50%` → 0.5 */
export function percent(text: string): number {
  return Number(text.slice(0, -1)) / 100;
}

/** How often a load step's live line is refreshed on a terminal. */
const PROGRESS_INTERVAL_MS = 250;

/** Runs one side; `key` null = baseline. Rejects with STEP_LOAD_FAILED when autocannon cannot run at all. */
export async function runSide(load: PreparedLoad, key: string | null, signal?: AbortSignal, progress?: (line: string) => void): Promise<LoadSide> {
  // autocannon loads with the first load step, not with the plan schema (validation never needs it).
  const { default: autocannon } = await import('autocannon');
  const headers = laneHeaders(load.headers, key);
  let body: string | undefined;
  if (load.body !== undefined) {
    body = typeof load.body === 'string' ? load.body : JSON.stringify(load.body);
    headers['content-type'] ??= typeof load.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  }
  return new Promise((resolve, reject) => {
    let instance: autocannon.Instance | undefined;
    // Our own record of every response time: with a fixed rate, autocannon's histogram adds
    // coordinated-omission corrections (synthetic samples from 1 ms up), which pulls every
    // percentile below the real latency. The policy caps N, so keeping each time is cheap.
    const times: number[] = [];
    const onAbort = (): void => instance?.stop();
    try {
      instance = autocannon(
        {
          url: load.url,
          method: load.method as autocannon.Request['method'],
          headers,
          ...(body === undefined ? {} : { body }),
          amount: load.requests,
          overallRate: load.rate,
          connections: Math.min(load.connections, load.requests),
          timeout: Math.max(1, Math.ceil(load.timeoutMs / 1000)),
        },
        (err, result) => {
          signal?.removeEventListener('abort', onAbort);
          if (signal?.aborted) return reject(new ValidateError('LANEWAY_ERR_RUN_ABORTED'));
          if (err) return reject(new ValidateError('LANEWAY_ERR_STEP_LOAD_FAILED', `${load.method} ${load.url}: ${(err as Error).message}`));
          const failed = result.errors + result.non2xx;
          const round = (n: number): number => Math.round(n * 100) / 100;
          times.sort((a, b) => a - b);
          const at = (p: number): number => (times.length === 0 ? 0 : round(times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!));
          resolve({
            requests: load.requests,
            ok: result['2xx'],
            errors: result.errors,
            timeouts: result.timeouts,
            non2xx: result.non2xx,
            errorRate: round(Math.min(1, failed / load.requests)),
            latency: {
              p50: at(50),
              p90: at(90),
              p97_5: at(97.5),
              p99: at(99),
              average: times.length === 0 ? 0 : round(times.reduce((a, b) => a + b, 0) / times.length),
              max: times.length === 0 ? 0 : round(times[times.length - 1]!),
            },
            durationMs: Math.round(result.duration * 1000),
          });
        },
      );
    } catch (err) {
      reject(new ValidateError('LANEWAY_ERR_STEP_LOAD_FAILED', `${load.method} ${load.url}: ${(err as Error).message}`));
      return;
    }
    instance.on('response', (_client, _status, _bytes, responseTime) => times.push(responseTime));
    signal?.addEventListener('abort', onAbort, { once: true });
    if (progress !== undefined) {
      // autocannon counts each second; our own count of answers and of errors gives a live line between its ticks
      let errors = 0;
      const t0 = performance.now();
      const side = key === null ? 'baseline' : 'sandbox';
      instance.on('reqError', () => errors++);
      instance.on('response', (_client, status) => void (status < 200 || status > 299 ? errors++ : undefined));
      const timer = setInterval(() => progress(`${side}: ${times.length}/${load.requests} answered, ${errors} errors, ${((performance.now() - t0) / 1000).toFixed(1)}s`), PROGRESS_INTERVAL_MS);
      timer.unref();
      instance.on('done', () => clearInterval(timer));
    }
  });
}

/**
 * The verdict: the sandbox's percentile may exceed the baseline's by `maxIncrease` plus `grace`
 * (at single-digit milliseconds scheduling noise alone doubles a percentile), and its error rate may
 * not exceed `maxErrorRate`.
 */
export function judge(load: PreparedLoad, baseline: LoadSide, sandbox: LoadSide): AssertionResult[] {
  const { percentile, maxIncrease, graceMs, maxErrorRate } = load.bounds;
  const base = baseline.latency[percentile];
  const actual = sandbox.latency[percentile];
  const limit = Math.round((base * (1 + maxIncrease) + graceMs) * 100) / 100;
  const pct = (n: number): string => `${Math.round(n * 10000) / 100}%`;
  return [
    {
      assertion: `sandbox ${percentile} <= baseline ${percentile} × ${1 + maxIncrease} + ${graceMs} ms`,
      pass: actual <= limit,
      expected: limit,
      actual,
      message: actual <= limit ? 'ok' : `sandbox ${percentile} is ${actual} ms, baseline ${base} ms: more than the ${limit} ms bound (+${pct(maxIncrease)} + ${graceMs} ms)`,
    },
    {
      assertion: `sandbox error rate <= ${pct(maxErrorRate)}`,
      pass: sandbox.errorRate <= maxErrorRate,
      expected: maxErrorRate,
      actual: sandbox.errorRate,
      message:
        sandbox.errorRate <= maxErrorRate
          ? 'ok'
          : `sandbox error rate is ${pct(sandbox.errorRate)} (${sandbox.errors} connection errors, ${sandbox.non2xx} non-2xx of ${sandbox.requests}); baseline ${pct(baseline.errorRate)}`,
    },
  ];
}

export const load: ActionModule<LoadInput, PreparedLoad> = {
  schema: {
    type: 'object',
    required: ['url', 'requests', 'rate'],
    additionalProperties: false,
    properties: {
      ...REQUEST_PROPERTIES,
      requests: NUMBERISH,
      rate: NUMBERISH,
      connections: NUMBERISH,
      bounds: {
        type: 'object',
        additionalProperties: false,
        properties: {
          percentile: { enum: ['p50', 'p90', 'p97_5', 'p99'] },
          maxIncrease: PERCENT,
          grace: DURATION,
          maxErrorRate: PERCENT,
        },
      },
    },
  },
  outputs: ['durationMs'],
  readsResponse: false,
  needsSandbox: () => true,
  requests: (policy) => 2 * (policy.load?.requests ?? 0), // baseline and sandbox
  describe: (input) => ({ text: `${input.requests} requests at ${input.rate}/s to ${input.url} on baseline and sandbox; latency and error rate within bounds`, labelled: true }),
  check(input, at, scope) {
    checkRequest(input, at, scope);
    scope.count(input.requests, `${at}.requests`, 1);
    scope.count(input.rate, `${at}.rate`, 1);
    if (input.connections !== undefined) scope.count(input.connections, `${at}.connections`, 1);
    if (input.bounds?.grace !== undefined) scope.duration(input.bounds.grace, `${at}.bounds.grace`);
  },
  prepare(raw, at, scope) {
    const { request, policy } = prepareRequest(raw, at, scope);
    const requests = scope.count(raw.requests, `${at}.requests`);
    const rate = scope.count(raw.rate, `${at}.rate`);
    const connections = scope.count(raw.connections, `${at}.connections`, Math.min(DEFAULT_LOAD_CONNECTIONS, requests));
    const bounds = { ...DEFAULT_BOUNDS, ...((raw.bounds as Record<string, unknown> | undefined) ?? {}) } as Record<string, string | number>;
    const prepared: PreparedLoad = {
      ...request,
      requests,
      rate,
      connections,
      bounds: {
        percentile: bounds.percentile as PreparedLoad['bounds']['percentile'],
        maxIncrease: percent(String(bounds.maxIncrease)),
        graceMs: scope.ms(bounds.grace, `${at}.bounds.grace`, 0),
        maxErrorRate: percent(String(bounds.maxErrorRate)),
      },
    };
    return { prepared, policy: { ...policy, load: { requests, rate, connections } } };
  },
  async execute(prepared, run) {
    const { result, out } = run;
    const load = run.concrete(prepared);
    result.inputs = { url: load.url, method: load.method, headers: load.headers, ...(load.body === undefined ? {} : { body: load.body }), requests: load.requests, rate: load.rate, connections: load.connections, timeoutMs: load.timeoutMs, bounds: load.bounds };
    run.backstop(load.url);
    const key = run.lane();
    const base = await runSide(load, null, run.signal, run.progress);
    result.load = { baseline: base };
    const forked = await runSide(load, key, run.signal, run.progress);
    result.load = { baseline: base, sandbox: forked };
    result.assertions = judge(load, base, forked);
    out.durationMs = base.durationMs + forked.durationMs;
    result.outputs = out;
  },
};
