// Plans and runs on an etcd store: not implemented yet; every call answers 501 LANEWAY_ERR_NOT_SUPPORTED_ON_STORE (README "Storage").
import type { Namespace } from 'etcd3';
import { ControlPlaneError } from '../model/api-errors.js';
import type { PlanListing, PlanStorage, PlanVersion, PutResult, RunPage, RunRecord } from '../model/plans.js';

function unsupported(): never {
  throw new ControlPlaneError('LANEWAY_ERR_NOT_SUPPORTED_ON_STORE', 'plans and runs are stored only by the SQLite store today (--store sqlite:<dir>); see README "Storage"');
}

/**
 * PlanStorage is synchronous (SQLite answers in-process); an etcd version needs it to become
 * asynchronous and runs to carry their replica (a restarting replica must not abandon another
 * replica's runs). Until then the plans API refuses clearly instead of keeping plans in one
 * replica's memory.
 */
export class EtcdPlanStore implements PlanStorage {
  static async open(_ns: Namespace, _guard: <T>(fn: () => Promise<T>) => Promise<T>): Promise<EtcdPlanStore> {
    return new EtcdPlanStore();
  }

  put(): { result: PutResult; version: PlanVersion | undefined } {
    unsupported();
  }

  get(): PlanVersion | undefined {
    unsupported();
  }

  list(): PlanListing[] {
    unsupported();
  }

  startRun(): void {
    unsupported();
  }

  finishRun(): void {
    unsupported();
  }

  getRun(): RunRecord | undefined {
    unsupported();
  }

  listRuns(): RunPage {
    unsupported();
  }

  /** Nothing was ever started here. */
  abandonRunning(): number {
    return 0;
  }
}
