// The propagation doctor: one probe request through the mesh, and what the sidecars saw of it, read hop by hop —
// which workloads received the routing key, and which call arrived at the next sidecar without it.
import { request } from 'undici';
import type { ProbeResult, ProbeSighting } from '../model/capture.js';
import type { LanewayClient } from './api.js';

/** Time for every sidecar to receive the probe's announcement before the request is sent. */
export const DOCTOR_ARM_MS = 500;
/** Time after the answer for the sidecars' last reports to arrive (they batch every 200 ms). */
export const DOCTOR_SETTLE_MS = 1200;
/** The probe request's own timeout. */
export const DOCTOR_REQUEST_TIMEOUT_MS = 10_000;

export interface DoctorOptions {
  /** where the probe request goes: the entry service, through its sidecar */
  readonly entry: string;
  /** path (and query) of the probe request; default: the entry URL's own */
  readonly path?: string;
  /** a sandbox whose forks the report names (reached or not) */
  readonly sandbox?: string;
}

/** A finding the report states, in order. */
export type Finding =
  | { readonly kind: 'received'; readonly workload: string }
  | { readonly kind: 'dropped'; readonly from: string; readonly to: string; readonly traced: boolean; readonly certain: boolean }
  | { readonly kind: 'fork-reached'; readonly workload: string; readonly reached: boolean }
  | { readonly kind: 'unseen' };

export interface DoctorReport {
  readonly probe: string;
  readonly key: string;
  readonly entry: string;
  /** the probe request's status (0: no answer) */
  readonly status: number;
  /** workloads that received the key, in the order they did */
  readonly chain: readonly string[];
  /** true when no call lost the key (and at least one sidecar saw it) */
  readonly propagates: boolean;
  readonly findings: readonly Finding[];
  /** the findings as sentences, one per line */
  readonly text: string;
}

/** Runs one probe through the mesh and reads what the sidecars saw. */
export async function runDoctor(client: LanewayClient, options: DoctorOptions): Promise<DoctorReport> {
  const probe = await client.startProbe(options.sandbox);
  await sleep(DOCTOR_ARM_MS);
  const url = new URL(options.path ?? '', options.entry);
  let status = 0;
  try {
    const res = await request(url, { headers: { baggage: probe.baggage, traceparent: probe.traceparent }, headersTimeout: DOCTOR_REQUEST_TIMEOUT_MS, bodyTimeout: DOCTOR_REQUEST_TIMEOUT_MS });
    await res.body.text();
    status = res.statusCode;
  } catch {
    status = 0;
  }
  await sleep(DOCTOR_SETTLE_MS);
  return analyze(await client.probe(probe.id), url.href, status);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Reads a probe's sightings. A workload that saw a request without the key after some workloads
 * saw it with the key got a call from one of them that lost it: the caller is the workload whose
 * sidecar address the request came from when that tells (in a cluster, pod addresses differ), else
 * the last workload that received the key before it (certain for a chain, a best guess for fan-out).
 */
export function analyze(result: ProbeResult, entry: string, status: number): DoctorReport {
  const sightings = [...result.sightings].sort((a, b) => a.at - b.at);
  const firstKeyed = new Map<string, ProbeSighting>();
  for (const s of sightings) if (s.keyed && !firstKeyed.has(s.workload)) firstKeyed.set(s.workload, s);
  const chain = [...firstKeyed.keys()];
  const findings: Finding[] = chain.map((workload) => ({ kind: 'received', workload }));
  const blamed = new Set<string>();
  for (const s of sightings) {
    if (s.keyed || firstKeyed.has(s.workload) || blamed.has(s.workload)) continue;
    const before = chain.filter((w) => firstKeyed.get(w)!.at <= s.at);
    if (before.length === 0) continue; // arrived before the probe entered the mesh: not part of it
    // The caller's address is the local address of a sidecar that saw the key, when exactly one matches.
    const byAddress = before.filter((w) => firstKeyed.get(w)!.local === s.peer);
    const from = byAddress.length === 1 ? byAddress[0]! : before[before.length - 1]!;
    blamed.add(s.workload);
    findings.push({ kind: 'dropped', from, to: s.workload, traced: s.traced, certain: s.traced || byAddress.length === 1 || before.length === 1 });
  }
  if (sightings.length === 0) findings.push({ kind: 'unseen' });
  for (const workload of result.forks) findings.push({ kind: 'fork-reached', workload, reached: firstKeyed.has(workload) });
  const propagates = chain.length > 0 && !findings.some((f) => f.kind === 'dropped');
  const lines = [`probe ${result.probe.key} → ${entry}: ${status === 0 ? 'no answer' : `HTTP ${status}`}`];
  for (const f of findings) lines.push(sentence(f, result.watching));
  if (propagates) lines.push(`the key reached every workload that received a call: ${chain.join(' → ')}`);
  return { probe: result.probe.id, key: result.probe.key, entry, status, chain, propagates, findings, text: `${lines.join('\n')}\n` };
}

function sentence(f: Finding, watching: readonly string[]): string {
  switch (f.kind) {
    case 'received':
      return `${f.workload} received the key`;
    case 'dropped': {
      const why = f.traced
        ? `the trace context arrived, so ${f.from} propagates traceparent but its propagators leave out baggage (add baggage: OTEL_PROPAGATORS=tracecontext,baggage)`
        : `no trace context arrived either: ${f.from} has no OpenTelemetry propagation on that call (no SDK, a client that is not instrumented, or a thread/async hop that lost the context), or something in between strips headers`;
      return `${f.from} received the key; its call to ${f.to} arrived without it: ${f.from} does not propagate baggage — ${why}${f.certain ? '' : ' (matched by time: not certain)'}`;
    }
    case 'fork-reached':
      return f.reached ? `${f.workload} is forked by the sandbox: the key reached its sidecar, so requests there go to the fork` : `${f.workload} is forked by the sandbox but the key never reached its sidecar: its fork gets nothing from this entry`;
    case 'unseen':
      return `no sidecar saw the probe: is the entry served through a Laneway sidecar watching this control plane? (sidecars watching: ${watching.length === 0 ? 'none' : watching.join(', ')})`;
  }
}
