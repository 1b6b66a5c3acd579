// Wire types of what the web console reads besides sandboxes: workloads with their watching sidecars, and the console's change stream.
import type { Route } from './route-table.js';

/** Header a sidecar names itself with on its watch stream and its acknowledgements (pod name and pid). */
export const REPLICA_HEADER = 'laneway-replica';
/** A replica name, at most (longer or non-printable names are replaced by the peer address). */
export const REPLICA_MAX_CHARS = 128;

/** One sidecar watching a workload's routes, as the control plane sees it. */
export interface SidecarView {
  /** what the sidecar calls itself (REPLICA_HEADER), or its peer address when it sent none */
  readonly replica: string;
  /** the peer address of its watch stream */
  readonly address: string;
  readonly connectedAt: string;
  /** the revision it resumed from (Last-Event-ID), null for a fresh snapshot */
  readonly resumedFrom: number | null;
  /** the last revision it reported as applied (POST …/acks), null before its first acknowledgement */
  readonly acknowledged: number | null;
  readonly acknowledgedAt: string | null;
  /** the workload's revision minus `acknowledged` (the whole revision before a first acknowledgement): 0 means up to date */
  readonly lag: number;
}

export interface WorkloadView {
  /** <namespace>/<name> */
  readonly workload: string;
  readonly revision: number;
  readonly routes: readonly Route[];
  readonly sidecars: readonly SidecarView[];
}

export interface WorkloadList {
  readonly revision: number;
  readonly items: readonly WorkloadView[];
}

/** Console stream (GET /v1/events) events: `change` when sandboxes changed, `sidecar` when one connected, acknowledged or left, `run` when a plan run started or finished. */
export interface ChangeEvent {
  readonly revision: number;
  readonly workloads: readonly string[];
  readonly sandboxes: readonly string[];
}

export interface RunEvent {
  readonly id: string;
  /** running, passed, failed or error */
  readonly status: string;
}

export interface SidecarEvent {
  readonly workload: string;
  readonly replica: string;
  readonly state: 'connected' | 'acknowledged' | 'disconnected';
}
