// The load action: the same N requests at a fixed rate through autocannon against the baseline, then the sandbox; percentiles and error rates side by side, judged against bounds.
import autocannon from 'autocannon';
import type { AssertionResult } from '../assertions.js';
import { ValidateError } from '../errors.js';
import type { LoadBounds } from '../plan.js';
import { laneHeaders, type PreparedRequest } from './http.js';

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

/** `50%` → 0.5 */
export function percent(text: string): number {
  return Number(text.slice(0, -1)) / 100;
}

/** Runs one side; `key` null = baseline. Rejects with STEP_LOAD_FAILED when autocannon cannot run at all. */
export function runSide(load: PreparedLoad, key: string | null, signal?: AbortSignal): Promise<LoadSide> {
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
