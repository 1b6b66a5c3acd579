// The wait action and the sandbox lookup it shares with the runner: a sandbox's routing key and phase, from the control plane API or, server-side, its registry.
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidateError } from '../errors.js';
import type { ActionModule } from './action.js';
import { DURATION } from './request.js';
import type { TrafficPage, TrafficQuery } from '../../model/capture.js';

export interface WaitInput {
  readonly timeout?: string | number;
}

export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;

export interface SandboxView {
  readonly name: string;
  readonly routingKey: string;
  readonly phase: 'Ready' | 'Pending';
  /** how many fork targets the sandbox has */
  readonly targetCount: number;
  /** per target that is not ready: `host:port: reason` */
  readonly waiting: readonly string[];
}

/** Where sandboxes are looked up: the CLI asks the API, the control plane its own registry. */
export interface Sandboxes {
  /** undefined when there is no such sandbox */
  get(name: string, signal?: AbortSignal): Promise<SandboxView | undefined>;
  /** its captured traffic (the `traffic` action); undefined when there is no such sandbox */
  traffic(name: string, query: TrafficQuery, signal?: AbortSignal): Promise<TrafficPage | undefined>;
}

/** The fields of a control plane sandbox resource (GET /v1/sandboxes/:name) the runner reads. */
export interface SandboxResource {
  readonly name: string;
  readonly status: {
    readonly routingKey: string;
    readonly phase: 'Ready' | 'Pending';
    readonly targets: readonly { readonly target: string; readonly ready: boolean; readonly reason: string | null }[];
  };
}

export function toView(resource: SandboxResource): SandboxView {
  return {
    name: resource.name,
    routingKey: resource.status.routingKey,
    phase: resource.status.phase,
    targetCount: resource.status.targets.length,
    waiting: resource.status.targets.filter((t) => !t.ready).map((t) => `${t.target}: ${t.reason ?? 'not probed yet'}`),
  };
}

/** How often the phase is polled: the control plane probes targets every couple of seconds anyway. */
const POLL_MS = 200;

/** `ready/total targets ready (host:port: reason, …)`: how `laneway sandbox apply --wait` shows progress. */
export function describeWaiting(view: SandboxView): string {
  const ready = view.targetCount - view.waiting.length;
  return `${ready}/${view.targetCount} targets ready${view.waiting.length > 0 ? ` (${view.waiting.join(', ')})` : ''}`;
}

/**
 * Polls until the sandbox is Ready; throws SANDBOX_NOT_READY after `timeoutMs` with the targets
 * still waiting. `pending` hears each poll that found it not Ready yet (the CLI prints progress).
 */
export async function waitReady(
  sandboxes: Sandboxes,
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
  pending?: (view: SandboxView) => void,
): Promise<SandboxView & { waitedMs: number }> {
  const started = performance.now();
  for (;;) {
    const view = await sandboxes.get(name, signal);
    if (view === undefined) throw new ValidateError('LANEWAY_ERR_SANDBOX_NOT_READY', `sandbox ${name} does not exist (deleted while the plan ran?)`);
    const waitedMs = Math.round(performance.now() - started);
    if (view.phase === 'Ready') return { ...view, waitedMs };
    pending?.(view);
    if (waitedMs >= timeoutMs) {
      throw new ValidateError('LANEWAY_ERR_SANDBOX_NOT_READY', `sandbox ${name} not Ready after ${timeoutMs} ms: ${view.waiting.join(', ') || 'targets not probed yet'}`);
    }
    try {
      await sleep(Math.min(POLL_MS, timeoutMs - waitedMs), undefined, { signal });
    } catch {
      throw new ValidateError('LANEWAY_ERR_RUN_ABORTED');
    }
  }
}

export const wait: ActionModule<WaitInput, { readonly timeoutMs: number }> = {
  schema: { type: 'object', additionalProperties: false, properties: { timeout: DURATION } },
  outputs: ['routingKey', 'phase', 'durationMs'],
  readsResponse: false,
  needsSandbox: () => true,
  requests: () => 0,
  describe: () => ({ text: 'wait until the sandbox is Ready', labelled: false }),
  check(input, at, scope) {
    if (input.timeout !== undefined) scope.duration(input.timeout, `${at}.timeout`);
  },
  prepare(raw, at, scope) {
    const timeoutMs = scope.ms(raw.timeout, `${at}.timeout`, scope.capMs(DEFAULT_WAIT_TIMEOUT_MS));
    return { prepared: { timeoutMs }, policy: { timeoutMs } };
  },
  async execute({ timeoutMs }, run) {
    const { result, out, sandbox } = run;
    result.inputs = { sandbox: sandbox?.name ?? null, timeoutMs };
    if (sandbox === null) throw new ValidateError('LANEWAY_ERR_SANDBOX_REQUIRED');
    const view = await waitReady(run.sandboxes, sandbox.name, timeoutMs, run.signal, run.progress === undefined ? undefined : (v) => run.progress!(describeWaiting(v)));
    out.routingKey = view.routingKey;
    out.phase = view.phase;
    out.durationMs = view.waitedMs;
    result.outputs = out;
  },
};
