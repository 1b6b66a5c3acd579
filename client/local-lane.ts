// A local lane's whole lifecycle on the laptop: register the local fork, hold the tunnel, open exposures, and undo it all — shared by `laneway connect` and the MCP server.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Fork, SandboxSpec } from '../control-plane/spec.js';
import { LANE_SESSION_RE, LOCAL_TARGET } from '../model/lanes.js';
import type { Target } from '../model/route-table.js';
import type { ApplyResult, LanewayClient } from './api.js';
import { LaneAgent, newLaneSession, type Exposure, type LaneState } from './lane-agent.js';

export interface LocalLaneRequest {
  readonly sandbox: string;
  readonly workload: string;
  /** app port → the local service */
  readonly ports: ReadonlyMap<string, Target>;
  readonly exposures?: readonly { readonly target: string; readonly localPort: number }[];
  readonly ttl?: string;
  readonly onState?: (state: LaneState) => void;
  /** say on stderr when the session file cannot be kept (the CLI); the MCP server stays quiet */
  readonly warn?: (message: string) => void;
}

export interface LocalLane {
  readonly sandbox: string;
  readonly workload: string;
  readonly key: string;
  readonly result: ApplyResult;
  readonly revision: number;
  readonly exposed: readonly Exposure[];
  /** Ends the lane on purpose; unless `keep`, removes the local fork (the sandbox too when it was its only fork). Returns what it did. */
  close(keep?: boolean): Promise<string>;
}

/** The spec with this workload's fork replaced by a local one (the other forks, key, labels and TTL kept). */
export function withLocalFork(existing: SandboxSpec | undefined, workload: string, ports: Iterable<string>, ttl: string | undefined): SandboxSpec {
  const targets: Record<string, string> = {};
  for (const port of ports) targets[port] = LOCAL_TARGET;
  const forks: Fork[] = [...(existing?.forks ?? []).filter((f) => f.workload !== workload), { workload, targets }];
  return { ...(existing ?? {}), ...(ttl === undefined ? {} : { ttl }), forks };
}

/**
 * This machine's ownership secret for a sandbox's lane, kept in a file only this user can read
 * (`$XDG_STATE_HOME/laneway/lanes/`, default `~/.local/state/laneway/lanes/`): after a crash or
 * kill -9, connecting again reclaims the lane; another machine cannot.
 */
export function laneSession(server: string, sandbox: string, warn: (message: string) => void = () => {}): string {
  const dir = join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'laneway', 'lanes');
  const file = join(dir, `${createHash('sha256').update(`${server} ${sandbox}`).digest('hex').slice(0, 32)}.session`);
  try {
    const saved = readFileSync(file, 'utf8').trim();
    if (LANE_SESSION_RE.test(saved)) return saved;
  } catch {
    // none yet
  }
  const session = newLaneSession();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${session}\n`, { mode: 0o600 });
  } catch (err) {
    warn(`cannot keep the lane session in ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); after a crash this lane stays taken until the sandbox is re-created`);
  }
  return session;
}

/**
 * Registers (or updates) the sandbox with a local fork of `workload`, connects its tunnel and opens
 * the exposures. A refusal (auth, another machine holds the lane) leaves the sandbox as it was.
 */
export async function openLocalLane(client: LanewayClient, token: string | undefined, request: LocalLaneRequest): Promise<LocalLane> {
  const { sandbox, workload, ports } = request;
  const before = await client.findSandbox(sandbox);
  const { result, sandbox: applied } = await client.applySandbox(sandbox, withLocalFork(before?.spec, workload, ports.keys(), request.ttl));
  const agent = new LaneAgent({
    server: client.server,
    token,
    sandbox,
    session: laneSession(client.server, sandbox, request.warn),
    ports: new Map([...ports].map(([port, target]) => [`${workload}:${port}`, target])),
    exposures: request.exposures ?? [],
    ...(request.onState === undefined ? {} : { onState: request.onState }),
  });
  const close = async (keep = false): Promise<string> => {
    agent.stop();
    // Ownership goes either way: the next connect (a new session) may take the lane.
    await client.releaseLane(sandbox).catch(() => {});
    if (keep) return `sandbox/${sandbox} kept`;
    const current = await client.findSandbox(sandbox);
    if (current === undefined) return `sandbox/${sandbox} already gone`;
    const forks = current.spec.forks.filter((f) => f.workload !== workload);
    if (forks.length === 0) {
      await client.deleteSandbox(sandbox);
      return `sandbox/${sandbox} deleted`;
    }
    await client.applySandbox(sandbox, { ...current.spec, forks });
    return `sandbox/${sandbox}: local fork of ${workload} removed`;
  };
  try {
    await agent.start();
  } catch (err) {
    agent.stop();
    if (before === undefined) await client.deleteSandbox(sandbox).catch(() => {});
    else if (JSON.stringify(before.spec) !== JSON.stringify(applied.spec)) await client.applySandbox(sandbox, before.spec).catch(() => {});
    throw err;
  }
  let exposed: Exposure[];
  try {
    exposed = await agent.expose();
  } catch (err) {
    await close().catch(() => {});
    throw Object.assign(new Error(`cannot listen for an exposure: ${(err as NodeJS.ErrnoException).code ?? String(err)}`), { code: 'LANEWAY_ERR_CONFIG' });
  }
  return { sandbox, workload, key: applied.status.routingKey, result, revision: applied.status.revision, exposed, close };
}
