// Workloads page: each workload's route table and revision, and the sidecars watching it with the revision each acknowledged (behind ones flagged).
import type { WorkloadList, SidecarView } from '../../model/console.js';
import { get } from '../api.js';
import { badge, h, replace, table, time } from '../dom.js';
import { errorBox, type Context, type Page } from '../page.js';

function lagBadge(sidecar: SidecarView): HTMLElement {
  if (sidecar.acknowledged === null) return badge('warn', 'no acknowledgement yet');
  return sidecar.lag === 0 ? badge('ok', 'up to date') : badge('bad', `behind by ${sidecar.lag} revision${sidecar.lag === 1 ? '' : 's'}`);
}

export async function workloadsPage(main: HTMLElement, _arg: string, _ctx: Context): Promise<Page> {
  const list = h('div');
  replace(main, h('h1', {}, 'Workloads'), list);
  const load = async (): Promise<void> => {
    const { items } = await get<WorkloadList>('/v1/workloads');
    if (items.length === 0) {
      replace(list, h('p', {}, 'No workload has routes or a watching sidecar yet.'));
      return;
    }
    replace(
      list,
      ...items.map((w) => {
        const behind = w.sidecars.filter((s) => s.lag > 0).length;
        return h(
          'section',
          { class: 'card', 'data-workload': w.workload, 'aria-labelledby': `wl-${w.workload}` },
          h('h2', { id: `wl-${w.workload}` }, h('code', {}, w.workload), ' ', h('span', { class: 'muted' }, `revision ${w.revision}`), ' ',
            w.sidecars.length === 0 ? badge('warn', 'no sidecar watching') : behind > 0 ? badge('bad', `${behind} sidecar${behind === 1 ? '' : 's'} behind`) : badge('ok', 'all sidecars up to date')),
          w.routes.length === 0
            ? h('p', { class: 'muted' }, 'No routes: every request goes to the baseline.')
            : table(
                'Route table',
                ['Sandbox', 'Routing key', 'Targets', 'Capture'],
                w.routes.map((r) => [
                  h('a', { href: `#/lane/${encodeURIComponent(r.sandbox)}` }, r.sandbox),
                  h('code', {}, r.key),
                  h('ul', { class: 'plain' }, ...Object.entries(r.targets).map(([port, t]) => h('li', {}, h('code', {}, `${port} → ${t}`)))),
                  r.capture === undefined ? 'off' : `on (${r.capture.bodyBytes ?? 0} body bytes)`,
                ]),
              ),
          w.sidecars.length === 0
            ? null
            : table(
                'Sidecars watching',
                ['Replica', 'Address', 'Connected since', 'Acknowledged revision', 'Lag'],
                w.sidecars.map((s) => [
                  h('code', {}, s.replica),
                  h('code', {}, s.address),
                  time(s.connectedAt),
                  h('span', { class: 'acknowledged' }, s.acknowledged === null ? '—' : String(s.acknowledged)),
                  lagBadge(s),
                ]),
              ),
        );
      }),
    );
  };
  await load();
  return { refresh: async () => load().catch((err) => replace(list, errorBox(err))) };
}
