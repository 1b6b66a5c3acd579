// The console's shell: token form, hash routing between pages, and the one live change stream that tells the open page to refresh.
import { ApiError, get, setToken, stream, token } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, type Context, type Page } from './page.js';
import { sandboxesPage } from './pages/sandboxes.js';
import { workloadsPage } from './pages/workloads.js';
import { runPage, runsPage } from './pages/runs.js';
import { trafficPage } from './pages/traffic.js';
import { lanePage } from './pages/lane.js';

type Route = (main: HTMLElement, arg: string, ctx: Context) => Promise<Page>;

const ROUTES: Readonly<Record<string, Route>> = {
  sandboxes: sandboxesPage,
  workloads: workloadsPage,
  runs: (main, arg, ctx) => (arg === '' ? runsPage(main, arg, ctx) : runPage(main, arg, ctx)),
  traffic: trafficPage,
  lane: lanePage,
};

/** After a lost change stream, wait this long before reconnecting (doubling up to the maximum). */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30_000;

const main = document.getElementById('main') as HTMLElement;
const live = document.getElementById('live') as HTMLElement;
const roleEl = document.getElementById('role') as HTMLElement;
const ctx: Context = { role: 'reader', open: false };
let page: Page | null = null;
let stream$: AbortController | null = null;
let generation = 0;

async function whoami(): Promise<void> {
  try {
    const who = await get<{ role: Context['role']; open: boolean }>('/v1/whoami');
    ctx.role = who.role;
    ctx.open = who.open;
    roleEl.textContent = who.open ? 'open control plane (no tokens): writer' : `role: ${who.role}`;
  } catch (err) {
    ctx.role = 'reader';
    ctx.open = false;
    roleEl.textContent = err instanceof ApiError && err.status === 401 ? 'enter a token' : '';
  }
}

async function show(): Promise<void> {
  const hash = location.hash;
  if (hash !== '' && !hash.startsWith('#/')) return; // an in-page anchor (the skip link), not a page
  const [name = 'sandboxes', ...rest] = hash.slice(2).split('/');
  const route = ROUTES[name] ?? ROUTES.sandboxes!;
  const title = ROUTES[name] === undefined ? 'sandboxes' : name;
  document.title = `${title[0]!.toUpperCase()}${title.slice(1)}${rest.length > 0 ? ` ${rest.map(decodeURIComponent).join('/')}` : ''} · Laneway`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset.page === name || (name === '' && a.dataset.page === 'sandboxes')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  page?.dispose?.();
  page = null;
  const mine = ++generation;
  replace(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const next = await route(main, rest.map(decodeURIComponent).join('/'), ctx);
    if (mine !== generation) next.dispose?.();
    else page = next;
  } catch (err) {
    if (mine === generation) replace(main, errorBox(err));
  }
}

type Kind = 'change' | 'sidecar' | 'run' | 'resync';
let refreshing = false;
let pending: Kind | null = null;

/**
 * At most one refresh in flight: events arriving meanwhile (1,000 sidecars acknowledging one change)
 * collapse into one more, so a burst costs two reads per open page, not one per event.
 */
function refresh(kind: Kind): void {
  if (refreshing) {
    pending = pending === null || pending === kind ? kind : 'resync';
    return;
  }
  const current = page;
  if (current?.refresh === undefined) return;
  refreshing = true;
  void current
    .refresh(kind)
    .catch(() => {}) // pages show their own errors
    .finally(() => {
      refreshing = false;
      const next = pending;
      pending = null;
      if (next !== null) refresh(next);
    });
}

/** One stream for the whole console (GET /v1/events): each event asks the open page to refetch what it shows. */
async function follow(): Promise<void> {
  let delay = RECONNECT_MIN_MS;
  for (;;) {
    stream$ = new AbortController();
    try {
      await stream(
        '/v1/events',
        (event) => {
          if (event.event === 'hello') {
            live.textContent = '● live';
            delay = RECONNECT_MIN_MS;
            // Whatever happened while we were not connected: read it now.
            refresh('resync');
          } else if (event.event === 'change' || event.event === 'sidecar' || event.event === 'run') {
            refresh(event.event);
          }
        },
        stream$.signal,
      );
      live.textContent = '○ reconnecting (stream ended)';
    } catch (err) {
      if (stream$.signal.aborted) {
        live.textContent = '○ reconnecting';
        delay = RECONNECT_MIN_MS;
        continue;
      }
      live.textContent = err instanceof ApiError ? `○ not live: ${err.code}` : '○ not live: connection lost';
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  }
}

const form = document.getElementById('token-form') as HTMLFormElement;
const input = document.getElementById('token') as HTMLInputElement;
input.value = token() ?? '';
form.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(input.value.trim());
  void whoami().then(show);
  stream$?.abort(); // reconnect with the new token
});
document.getElementById('token-forget')?.addEventListener('click', () => {
  setToken(null);
  input.value = '';
  void whoami().then(show);
  stream$?.abort();
});
document.getElementById('skip')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => void show());
void whoami().then(show);
void follow();
