// Live traffic of one sandbox: the capture follow stream (fetch-read SSE), newest first, filtered by workload and status; a row opens its headers and body preview.
import type { CapturedBody, CapturedExchange, TrafficEntry, TrafficPage } from '../../model/capture.js';
import { get, stream } from '../api.js';
import { badge, h, replace } from '../dom.js';
import { errorBox, type Context, type Page } from '../page.js';

/** Entries the page keeps, at most (older ones leave the table; the control plane's ring has them). */
export const TRAFFIC_ROWS_MAX = 500;
/** Entries read when the page opens (or a filter changes), before following. */
export const TRAFFIC_BACKLOG = 100;

function body(b: CapturedBody | undefined): string {
  if (b === undefined) return '(not captured)';
  const text = b.encoding === 'base64' ? `base64: ${b.data}` : b.data;
  return b.truncated ? `${text}\n… (truncated)` : text;
}

function headers(record: Readonly<Record<string, string>>): string {
  return Object.entries(record).map(([k, v]) => `${k}: ${v}`).join('\n');
}

function statusOf(x: CapturedExchange): HTMLElement {
  if (x.error !== undefined || x.status === 0) return badge('bad', x.error ?? 'cut');
  return badge(x.status < 400 ? 'ok' : x.status < 500 ? 'warn' : 'bad', String(x.status));
}

export async function trafficPage(main: HTMLElement, name: string, _ctx: Context): Promise<Page> {
  const workload = h('input', { id: 'f-workload', name: 'workload', placeholder: 'namespace/name' });
  const status = h('select', { id: 'f-status', name: 'status' }, ...['', '2xx', '3xx', '4xx', '5xx', 'error'].map((v) => h('option', { value: v }, v === '' ? 'any' : v)));
  const apply = h('button', { type: 'submit' }, 'Filter');
  const state = h('p', { class: 'muted', role: 'status' }, 'loading…');
  const rows = h('tbody');
  const detail = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'filters' }, h('label', { for: 'f-workload' }, 'Workload', workload), h('label', { for: 'f-status' }, 'Status', status), apply);
  replace(
    main,
    h('h1', {}, 'Traffic of ', h('code', {}, name)),
    h('p', {}, h('a', { href: `#/lane/${encodeURIComponent(name)}` }, 'Lane path'), ' · requests the sidecars routed to this sandbox, newest first (needs spec.capture)'),
    form,
    state,
    // The open exchange sits above the list, so it stays in view while new rows arrive at the top.
    detail,
    h('table', { class: 'stack' }, h('thead', {}, h('tr', {}, ...['Time', 'Workload', 'Request', 'Status', 'Duration', 'Target'].map((c) => h('th', { scope: 'col' }, c)))), rows),
  );
  let abort = new AbortController();
  const open = (x: CapturedExchange): void => {
    replace(
      detail,
      h('section', { class: 'card', 'aria-label': 'exchange detail' },
        h('h2', { tabindex: -1 }, `${x.method} ${x.path} `, statusOf(x), ' ', h('span', { class: 'muted' }, `${x.workload} → ${x.target}, ${x.durationMs} ms`), ' ', h('button', { type: 'button', onclick: () => detail.replaceChildren() }, 'Close')),
        h('h3', {}, 'Request headers'), h('pre', {}, headers(x.requestHeaders)),
        h('h3', {}, 'Request body'), h('pre', {}, body(x.requestBody)),
        h('h3', {}, 'Response headers'), h('pre', {}, headers(x.responseHeaders)),
        h('h3', {}, 'Response body'), h('pre', {}, body(x.responseBody))),
    );
    detail.querySelector<HTMLElement>('h2')?.focus();
  };
  const add = (entry: TrafficEntry): void => {
    let tr: HTMLTableRowElement;
    if (entry.kind === 'dropped') {
      tr = h('tr', {}, h('td', { colspan: 6 }, badge('warn', `${entry.count} exchanges missing`), ` from ${entry.workload} (${entry.reason})`));
    } else {
      const x = entry.exchange;
      const button = h('button', { type: 'button', onclick: () => open(x) }, `${x.method} ${x.path}`);
      tr = h('tr', { class: 'selectable' },
        h('td', { 'data-label': 'Time' }, new Date(x.at).toLocaleTimeString()),
        h('td', { 'data-label': 'Workload' }, h('code', {}, x.workload)),
        h('td', { 'data-label': 'Request' }, button),
        h('td', { 'data-label': 'Status' }, statusOf(x)),
        h('td', { 'data-label': 'Duration' }, `${x.durationMs} ms`),
        h('td', { 'data-label': 'Target' }, h('code', {}, x.target)));
    }
    rows.prepend(tr);
    while (rows.children.length > TRAFFIC_ROWS_MAX) rows.lastElementChild?.remove();
  };
  const follow = (): void => {
    abort.abort();
    abort = new AbortController();
    rows.replaceChildren();
    state.textContent = 'loading…';
    const query = new URLSearchParams();
    if (workload.value.trim() !== '') query.set('workload', workload.value.trim());
    if (status.value !== '') query.set('status', status.value);
    query.set('limit', String(TRAFFIC_BACKLOG));
    const signal = abort.signal;
    // The newest entries first (a page), then the follow stream from just after them: nothing missed, nothing twice.
    get<TrafficPage>(`/v1/sandboxes/${encodeURIComponent(name)}/traffic?${query}`)
      .then((page) => {
        if (signal.aborted) return;
        for (const entry of page.entries) add(entry);
        state.textContent = page.capture ? 'following…' : 'following… (this sandbox does not capture: set spec.capture to record its traffic)';
        query.delete('limit');
        query.set('after', String(page.lastSeq));
        return stream(`/v1/sandboxes/${encodeURIComponent(name)}/traffic/stream?${query}`, (event) => {
          if (event.event === 'exchange' || event.event === 'dropped') add(JSON.parse(event.data) as TrafficEntry);
          else if (event.event === 'gap') state.textContent = 'following… (some entries left the ring before they could be shown)';
        }, signal).then(() => { if (!signal.aborted) state.textContent = 'the stream ended; choose Filter to follow again'; });
      })
      .catch((err: unknown) => { if (!signal.aborted) replace(state, errorBox(err)); });
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    follow();
  });
  follow();
  return { dispose: () => abort.abort() };
}
