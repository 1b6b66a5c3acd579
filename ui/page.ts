// What every console page is (a render that may refresh on live events and must stop its own streams), and the API error box.
import { ApiError } from './api.js';
import { h } from './dom.js';

export interface Context {
  role: 'writer' | 'sidecar' | 'reader';
  /** the control plane has no tokens (loopback only) */
  open: boolean;
}

export interface Page {
  /** a `change` (sandboxes changed), `sidecar` or `run` event arrived, or `resync` (the stream is back after a gap): refetch what the page shows */
  refresh?(kind: 'change' | 'sidecar' | 'run' | 'resync'): Promise<void>;
  /** the user left the page: stop its streams and timers */
  dispose?(): void;
}

/** An API error as the user sees it: the stable code and the message, never a blank page. */
export function errorBox(err: unknown): HTMLElement {
  if (err instanceof ApiError) {
    return h('div', { class: 'error', role: 'alert' }, h('code', {}, err.code), ' ', err.status === 0 ? '' : `(HTTP ${err.status}) `, err.message);
  }
  return h('div', { class: 'error', role: 'alert' }, h('code', {}, 'CONSOLE_ERROR'), ' ', (err as Error)?.message ?? String(err));
}

/** Runs `work`, putting an error box into `slot` when it fails (and clearing it when it succeeds). */
export async function guarded(slot: HTMLElement, work: () => Promise<void>): Promise<void> {
  try {
    await work();
    slot.replaceChildren();
  } catch (err) {
    slot.replaceChildren(errorBox(err));
  }
}
