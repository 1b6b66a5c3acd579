// Sandboxes page: phase with per-target reasons, routing key with a copy button, forks, labels, TTL countdown, last change; delete for writers.
import type { SandboxResource } from '../../control-plane/api/sandboxes.js';
import type { WorkloadList } from '../../model/console.js';
import { call, get } from '../api.js';
import { badge, h, replace, table, time, type Child } from '../dom.js';
import { errorBox, guarded, type Context, type Page } from '../page.js';

/** The countdowns tick this often (a clock in the page; it reads nothing from the API). */
const COUNTDOWN_MS = 1000;

export function countdown(expiresAt: string | null, now: number): string {
  if (expiresAt === null) return 'no TTL';
  const left = Math.round((Date.parse(expiresAt) - now) / 1000);
  if (left <= 0) return 'expiring';
  const hours = Math.floor(left / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  return `${hours > 0 ? `${hours}h ` : ''}${hours > 0 || minutes > 0 ? `${minutes}m ` : ''}${seconds}s left`;
}

function copyButton(text: string, label: string): HTMLButtonElement {
  const button = h('button', { type: 'button', 'aria-label': label, title: text }, 'Copy header');
  button.addEventListener('click', () => {
    navigator.clipboard.writeText(text).then(
      () => (button.textContent = 'Copied'),
      () => (button.textContent = 'Copy failed'),
    );
  });
  return button;
}

function confirmDelete(name: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement;
  (document.getElementById('confirm-title') as HTMLElement).textContent = `Delete sandbox ${name}?`;
  (document.getElementById('confirm-text') as HTMLElement).textContent = `Its routes are removed from every workload it forks; requests with its key go to the baseline.`;
  dialog.returnValue = '';
  dialog.showModal();
  (document.getElementById('confirm-cancel') as HTMLButtonElement).focus();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

/** How many of the sidecars of the sandbox's forked workloads acknowledged its revision: whether the mesh has its routes yet. */
function propagation(sb: SandboxResource, workloads: WorkloadList): HTMLElement {
  const forked = new Set(sb.spec.forks.map((f) => f.workload));
  const sidecars = workloads.items.filter((w) => forked.has(w.workload)).flatMap((w) => w.sidecars);
  if (sidecars.length === 0) return badge('warn', 'no sidecar watches its workloads');
  const applied = sidecars.filter((s) => s.acknowledged !== null && s.acknowledged >= sb.status.revision).length;
  return h('span', { class: 'propagation' }, badge(applied === sidecars.length ? 'ok' : 'warn', `routes applied by ${applied} of ${sidecars.length} sidecar${sidecars.length === 1 ? '' : 's'}`));
}

function row(sb: SandboxResource, workloads: WorkloadList, ctx: Context, status: HTMLElement, onDeleted: () => void): Child[] {
  const header = `baggage: laneway=${sb.status.routingKey}`;
  const notReady = sb.status.targets.filter((t) => !t.ready);
  const phase = h(
    'div',
    {},
    badge(sb.status.phase === 'Ready' ? 'ok' : 'warn', sb.status.phase),
    h('div', {}, propagation(sb, workloads)),
    notReady.length === 0
      ? null
      : h('ul', { class: 'plain' }, ...notReady.map((t) => h('li', { class: 'muted' }, `${t.workload}:${t.port} → ${t.target}: ${t.reason ?? 'not checked yet'}`))),
  );
  const forks = h(
    'ul',
    { class: 'plain' },
    ...sb.spec.forks.flatMap((f) =>
      Object.entries(f.targets).map(([port, target]) =>
        h('li', {}, h('code', {}, `${f.workload}:${port}`), ' → ', target === 'local' ? h('span', {}, badge('muted', 'local lane'), ' laptop via laneway connect') : h('code', {}, target)),
      ),
    ),
  );
  const labels = Object.entries(sb.spec.labels ?? {});
  const actions = h('div', {}, h('a', { href: `#/lane/${encodeURIComponent(sb.name)}` }, 'Path'), ' · ', h('a', { href: `#/traffic/${encodeURIComponent(sb.name)}` }, 'Traffic'));
  if (ctx.role === 'writer') {
    actions.append(
      ' ',
      h('button', {
        type: 'button',
        class: 'danger',
        'aria-label': `Delete sandbox ${sb.name}`,
        onclick: () => {
          void confirmDelete(sb.name).then(async (ok) => {
            if (!ok) return;
            await guarded(status, async () => {
              await call('DELETE', `/v1/sandboxes/${encodeURIComponent(sb.name)}`);
              onDeleted();
            });
          });
        },
      }, 'Delete'),
    );
  }
  return [
    h('strong', { class: 'sandbox-name' }, sb.name),
    phase,
    h('div', {}, h('code', {}, header), ' ', copyButton(header, `Copy the baggage header of ${sb.name}`)),
    forks,
    labels.length === 0 ? h('span', { class: 'muted' }, 'none') : h('ul', { class: 'plain' }, ...labels.map(([k, v]) => h('li', {}, h('code', {}, `${k}=${v}`)))),
    h('span', { 'data-expires': sb.status.expiresAt ?? '' }, countdown(sb.status.expiresAt, Date.now())),
    h('div', {}, time(sb.status.updatedAt), h('div', { class: 'muted' }, `revision ${sb.status.revision}`)),
    actions,
  ];
}

export async function sandboxesPage(main: HTMLElement, _arg: string, ctx: Context): Promise<Page> {
  const status = h('div', { 'aria-live': 'polite' });
  const list = h('div');
  replace(main, h('h1', {}, 'Sandboxes'), status, list);
  const load = async (): Promise<void> => {
    const [{ items, revision }, workloads] = await Promise.all([get<{ revision: number; items: SandboxResource[] }>('/v1/sandboxes'), get<WorkloadList>('/v1/workloads')]);
    if (items.length === 0) {
      replace(list, h('p', { id: 'sandboxes-empty' }, `No sandboxes (revision ${revision}). Create one with `, h('code', {}, 'laneway sandbox apply'), '.'));
      return;
    }
    replace(
      list,
      table(
        `${items.length} sandbox${items.length === 1 ? '' : 'es'}, revision ${revision}`,
        ['Name', 'Phase', 'Routing key', 'Forks', 'Labels', 'TTL', 'Last change', 'Actions'],
        items.map((sb) => row(sb, workloads, ctx, status, () => void load().catch((err) => replace(list, errorBox(err))))),
        (i) => ({ 'data-sandbox': items[i]!.name }),
      ),
    );
  };
  await load();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const el of list.querySelectorAll<HTMLElement>('[data-expires]')) el.textContent = countdown(el.dataset.expires || null, now);
  }, COUNTDOWN_MS);
  return {
    refresh: async (kind) => {
      // sidecar events too: an acknowledgement changes how far a sandbox's routes have propagated
      if (kind !== 'run') await load().catch((err) => replace(list, errorBox(err)));
    },
    dispose: () => clearInterval(timer),
  };
}
