// Server-side plan runs: start one in the background, store its outcome, bound how many run at once, stop them all on shutdown.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { PlanStorage, PlanVersion, RunRecord, RunStatus } from '../../model/plans.js';
import { ValidateError } from '../errors.js';
import type { Plan } from '../plan.js';
import type { Policy } from '../policy.js';
import type { RunContext, RunResult } from '../runner.js';
import type { Sandboxes } from '../actions/wait.js';

/** Server-side runs in flight at once: each may hold a load generator, and the control plane's first job is routing. */
export const MAX_CONCURRENT_RUNS = 4;

// The runner (undici, autocannon) loads on first use: every control plane start would otherwise pay for it.
const runner = (): Promise<typeof import('../runner.js')> => import('../runner.js');

export interface RunRequest {
  readonly stored: PlanVersion<Plan>;
  readonly sandbox: string | undefined;
  readonly params: Record<string, unknown>;
  readonly policy: Policy;
}

export class Runs {
  readonly #plans: PlanStorage<Plan, RunResult>;
  readonly #sandboxes: Sandboxes;
  readonly #log: Logger;
  readonly #changed: (id: string, status: RunStatus) => void;
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void>; cancelled: boolean }>();

  constructor(plans: PlanStorage<Plan, RunResult>, sandboxes: Sandboxes, log: Logger, changed: (id: string, status: RunStatus) => void = () => {}) {
    this.#changed = changed;
    this.#plans = plans;
    this.#sandboxes = sandboxes;
    this.#log = log;
  }

  /**
   * Checks the run (params 400, unknown sandbox 404, policy 403: thrown before anything is stored or
   * sent), stores it as running and starts it. Resolves with the run id and its completion.
   */
  async start({ stored, sandbox, params, policy }: RunRequest): Promise<{ id: string; done: Promise<void> }> {
    if (this.#running.size >= MAX_CONCURRENT_RUNS) throw new ValidateError('LANEWAY_ERR_RUNS_BUSY', `${MAX_CONCURRENT_RUNS} runs are in progress; retry when one finishes`);
    const controller = new AbortController();
    const ctx: RunContext = { ...(sandbox === undefined ? {} : { sandbox }), sandboxes: this.#sandboxes, policy, signal: controller.signal };
    const { execute, prepare } = await runner();
    const prepared = await prepare(stored.plan, params, ctx);
    const id = randomUUID();
    const plans = this.#plans;
    plans.startRun(id, stored.plan.name, stored.plan.version, sandbox ?? null, Date.now());
    this.#changed(id, 'running');
    const done = execute(prepared, ctx)
      .then(
        (result) => {
          // Stopped by a cancel or our shutdown: not the plan's verdict, so an error with the partial result.
          if (this.#running.get(id)?.cancelled === true) {
            plans.finishRun(id, 'error', result, { code: 'LANEWAY_ERR_RUN_CANCELLED', message: 'the run was cancelled' }, Date.now());
          } else if (controller.signal.aborted) {
            plans.finishRun(id, 'error', result, { code: 'LANEWAY_ERR_RUN_ABORTED', message: 'the control plane shut down during the run' }, Date.now());
          } else {
            plans.finishRun(id, result.verdict === 'pass' ? 'passed' : 'failed', result, null, Date.now());
          }
        },
        (err: unknown) => {
          this.#log.error({ err, run: id }, 'plan run failed');
          plans.finishRun(id, 'error', null, { code: 'LANEWAY_ERR_INTERNAL', message: 'the run failed inside the control plane' }, Date.now());
        },
      )
      .finally(() => {
        this.#running.delete(id);
        this.#changed(id, plans.getRun(id)?.status ?? 'error');
      });
    this.#running.set(id, { controller, done, cancelled: false });
    return { id, done };
  }

  /** Cancels a run in flight (its steps stop at once, load generators included) and resolves once its outcome is stored. */
  async cancel(id: string): Promise<RunRecord<RunResult>> {
    const run = this.#running.get(id);
    if (run === undefined) {
      const stored = this.#plans.getRun(id);
      if (stored === undefined) throw new ValidateError('LANEWAY_ERR_RUN_NOT_FOUND', `run ${id} does not exist`, 'id');
      throw new ValidateError('LANEWAY_ERR_RUN_FINISHED', `run ${id} has already finished (${stored.status})`, 'id');
    }
    run.cancelled = true;
    run.controller.abort();
    await run.done;
    return this.#plans.getRun(id)!;
  }

  get(id: string): RunRecord<RunResult> | undefined {
    return this.#plans.getRun(id);
  }

  /** Aborts every run in flight and waits until each has stored its (error) outcome. */
  async stopAll(): Promise<void> {
    for (const run of this.#running.values()) run.controller.abort();
    await Promise.all([...this.#running.values()].map((r) => r.done));
  }
}
