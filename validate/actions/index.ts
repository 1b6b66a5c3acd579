// The plan actions, one module each, in one table: validation, the policy and the runner look an action up here and nowhere else.
import type { ActionModule } from './action.js';
import { compare } from './compare.js';
import { http } from './http.js';
import { load } from './load.js';
import { traffic } from './traffic.js';
import { wait } from './wait.js';

/** Adding an action: a module implementing ActionModule, an entry here, its input on `Step` (plan.ts). */
export const ACTION_MODULES = Object.freeze({ http, compare, load, wait, traffic });

export type ActionName = keyof typeof ACTION_MODULES;
/** In table order, which is the order error messages list them in. */
export const ACTIONS = Object.freeze(Object.keys(ACTION_MODULES)) as readonly ActionName[];

/** The module of an action, typed loosely: its input and prepared form pair up inside the module. */
export function actionModule(name: ActionName): ActionModule<any, any> {
  return ACTION_MODULES[name];
}
