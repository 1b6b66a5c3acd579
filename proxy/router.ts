// The routing decision: routing key → route → target for this app port, or an error. No I/O.
import type { InboundHeaders } from './headers.js';
import type { RouteState } from './route-state.js';
import type { CompiledRoute, Target } from '../model/route-table.js';
import type { SidecarErrorCode } from './errors.js';

export const BASELINE = 0;
export const SANDBOX = 1;
export const REFUSE = 2;

/** The outcome of routing one request; reused fields, so routing allocates nothing itself. */
export interface Routed {
  route: CompiledRoute | undefined;
  target: Target | undefined;
  error: SidecarErrorCode | undefined;
}

export class Router {
  readonly #state: RouteState;
  readonly #keyName: string;
  readonly #maxHops: number;

  constructor(state: RouteState, keyName: string, maxHops: number) {
    this.#state = state;
    this.#keyName = keyName;
    this.#maxHops = maxHops;
  }

  /** BASELINE, SANDBOX (route + target set) or REFUSE (error set). */
  decide(inbound: InboundHeaders, appPort: number, out: Routed): number {
    if (inbound.hops >= this.#maxHops) {
      out.error = 'LANEWAY_ERR_LOOP_DETECTED';
      return REFUSE;
    }
    const key = inbound.routingKey(this.#keyName);
    if (key === undefined) return BASELINE;
    const route = this.#state.table.lookup(key);
    if (route === undefined) return BASELINE;
    out.route = route;
    const target = route.targets.get(appPort);
    if (target === undefined) {
      out.error = 'LANEWAY_ERR_SANDBOX_NO_PORT';
      return REFUSE;
    }
    out.target = target;
    return SANDBOX;
  }
}
