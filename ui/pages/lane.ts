// A lane's path: the workloads a request can pass, and at which of them this sandbox's key leaves the baseline for a fork — an SVG diagram from the route tables, with counts and order from captured traffic.
import type { SandboxResource } from '../../control-plane/api/sandboxes.js';
import type { WorkloadList } from '../../model/console.js';
import type { TrafficPage } from '../../model/capture.js';
import { ApiError, get } from '../api.js';
import { h, replace, s } from '../dom.js';
import { errorBox, type Context, type Page } from '../page.js';

interface Hop {
  readonly workload: string;
  /** the fork target(s) this sandbox's key goes to at this hop; null when it stays on the baseline */
  readonly fork: string | null;
  readonly sidecars: number;
  /** exchanges captured at this hop (null when capture is off) */
  readonly seen: number | null;
  /** 1 for the forked hop captured traffic reached first, 2 for the next…; null when not seen */
  readonly order: number | null;
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}

const BOX_W = 220;
const BOX_H = 44;
const GAP = 40;

/** The workloads side by side, a fork dropped below each hop the key leaves the baseline at; text on every box, so it reads without colour. */
export function diagram(name: string, hops: readonly Hop[]): SVGElement {
  const width = Math.max(1, hops.length) * (BOX_W + GAP);
  const height = 2 * BOX_H + 70;
  const parts: SVGElement[] = [s('title', {}, `Path of sandbox ${name}`)];
  hops.forEach((hop, i) => {
    const x = i * (BOX_W + GAP) + 10;
    // No arrows between workloads: route tables do not say who calls whom, and a drawn order that is not real would mislead.
    parts.push(
      s('rect', { x, y: 10, width: BOX_W, height: BOX_H, rx: 6, fill: hop.fork === null ? '#f6f8fa' : '#fff', stroke: hop.fork === null ? '#57606a' : '#8c959f', 'stroke-dasharray': hop.fork === null ? null : '4 3' }),
      s('text', { x: x + 8, y: 28 }, hop.workload),
      s('text', { x: x + 8, y: 44, fill: '#57606a' }, `${hop.fork === null ? 'baseline' : 'bypassed by this key'} · ${hop.sidecars} sidecar${hop.sidecars === 1 ? '' : 's'}`),
    );
    if (hop.fork !== null) {
      const y = BOX_H + 50;
      parts.push(
        s('line', { x1: x + BOX_W / 2, y1: BOX_H + 10, x2: x + BOX_W / 2, y2: y, stroke: '#1f4b99', 'stroke-width': 3, 'marker-end': 'url(#arrow-fork)' }),
        s('rect', { x, y, width: BOX_W, height: BOX_H, rx: 6, fill: '#eef3fc', stroke: '#1f4b99', 'stroke-width': 2 }),
        s('text', { x: x + 8, y: y + 18, 'font-weight': 'bold' }, `FORK ${hop.fork}`),
        s('text', { x: x + 8, y: y + 34, fill: '#57606a' }, hop.seen === null ? 'capture off' : `${hop.seen} captured${hop.order === null ? '' : ` · seen ${ordinal(hop.order)}`}`),
      );
    }
  });
  const defs = s('defs', {},
    s('marker', { id: 'arrow-fork', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#1f4b99' })));
  return s('svg', { class: 'diagram', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-labelledby': 'lane-desc' }, defs, ...parts);
}

export async function lanePage(main: HTMLElement, name: string, _ctx: Context): Promise<Page> {
  const body = h('div');
  replace(main, h('h1', {}, 'Path of ', h('code', {}, name)), body);
  const load = async (): Promise<void> => {
    const [sandbox, workloads] = await Promise.all([get<SandboxResource>(`/v1/sandboxes/${encodeURIComponent(name)}`), get<WorkloadList>('/v1/workloads')]);
    let traffic: TrafficPage | null = null;
    if (sandbox.spec.capture !== undefined) {
      try {
        traffic = await get<TrafficPage>(`/v1/sandboxes/${encodeURIComponent(name)}/traffic?limit=1000`);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      }
    }
    const forks = new Map(sandbox.spec.forks.map((f) => [f.workload, Object.values(f.targets).join(', ')]));
    const names = new Set([...workloads.items.filter((w) => w.sidecars.length > 0 || forks.has(w.workload)).map((w) => w.workload), ...forks.keys()]);
    const counts = new Map<string, number>();
    const latest = new Map<string, number>();
    for (const e of traffic?.entries ?? []) {
      if (e.kind !== 'exchange') continue;
      counts.set(e.exchange.workload, (counts.get(e.exchange.workload) ?? 0) + 1);
      latest.set(e.exchange.workload, e.exchange.at);
    }
    // The order in which one request reaches the forked hops: the latest exchange per hop, earliest first.
    const seenOrder = [...latest.entries()].sort((a, b) => a[1] - b[1]).map(([w]) => w);
    const hops: Hop[] = [...names].sort().map((workload) => ({
      workload,
      fork: forks.get(workload) ?? null,
      sidecars: workloads.items.find((w) => w.workload === workload)?.sidecars.length ?? 0,
      seen: traffic === null ? null : counts.get(workload) ?? 0,
      order: seenOrder.includes(workload) ? seenOrder.indexOf(workload) + 1 : null,
    }));
    const forked = hops.filter((hop) => hop.fork !== null).map((hop) => `${hop.workload} → ${hop.fork}`);
    replace(
      body,
      h('p', { id: 'lane-desc' }, `A request carrying baggage laneway=${sandbox.status.routingKey} stays on the baseline except at: ${forked.join('; ') || 'nowhere'}.`),
      diagram(name, hops),
      h('p', { class: 'muted' }, 'Workloads shown, by name: those with a watching sidecar and those this sandbox forks. Route tables do not say who calls whom, so no call order is drawn; with capture on, each fork says in which order the last request reached the forked hops. laneway doctor traces the whole chain.'),
    );
  };
  await load().catch((err) => replace(body, errorBox(err)));
  return { refresh: async (kind) => { if (kind === 'change' || kind === 'resync') await load().catch((err) => replace(body, errorBox(err))); } };
}
