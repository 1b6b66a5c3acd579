// Interleaved rounds of "throughput, then one-at-a-time latency" per subject, reduced to medians and the cost added over a reference subject.
import { fmt, median, medianPercentiles, type Percentiles } from './stats.js';
import type { BaseContext } from './suite.js';

export interface RoundRow<N extends string> {
  readonly name: N;
  /** median over rounds of the subject's rate */
  readonly rate: number;
  /** median over rounds of the per-round ratio to the reference */
  readonly vsReference: number;
  readonly latency: Percentiles;
  readonly addedP50Us: number | null;
  readonly addedP99Us: number | null;
}

/** `drive(subject, ms, concurrency)` measures one subject; `reference` is the subject the others are compared with. */
export async function interleavedRounds<S extends { readonly name: string }>(
  ctx: BaseContext,
  label: string,
  unit: string,
  subjects: readonly S[],
  reference: NoInfer<S['name']>,
  concurrency: number,
  drive: (subject: S, ms: number, concurrency: number) => Promise<{ rate: number; latency: Percentiles }>,
): Promise<{ rows: RoundRow<S['name']>[]; rounds: number; roundMs: number }> {
  type N = S['name'];
  const roundMs = ctx.quick ? 500 : 3000;
  const rounds = ctx.quick ? 1 : 5;
  for (const s of subjects) await drive(s, ctx.quick ? 300 : 1500, concurrency); // warm-up
  const rates = new Map<N, number[]>(subjects.map((s) => [s.name, []]));
  const single = new Map<N, Percentiles[]>(subjects.map((s) => [s.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const s of subjects) {
      ctx.progress(`${label} round ${round + 1}/${rounds}: ${s.name}…`);
      rates.get(s.name)!.push((await drive(s, roundMs, concurrency)).rate);
      // One at a time: the latency a request pays, without queueing behind others.
      single.get(s.name)!.push((await drive(s, roundMs / 2, 1)).latency);
    }
    ctx.log(`${label} round ${round + 1}/${rounds}: ${subjects.map((s) => `${s.name} ${fmt(rates.get(s.name)!.at(-1)!)} ${unit}`).join(', ')}`);
  }
  const base = rates.get(reference)!;
  const baseLatency = medianPercentiles(single.get(reference)!);
  const rows = subjects.map((s): RoundRow<N> => {
    const mine = rates.get(s.name)!;
    const latency = medianPercentiles(single.get(s.name)!);
    const isReference = s.name === reference;
    return {
      name: s.name,
      rate: median(mine),
      vsReference: median(mine.map((r, i) => r / base[i]!)),
      latency,
      addedP50Us: isReference ? null : latency.p50 - baseLatency.p50,
      addedP99Us: isReference ? null : latency.p99 - baseLatency.p99,
    };
  });
  return { rows, rounds, roundMs };
}
