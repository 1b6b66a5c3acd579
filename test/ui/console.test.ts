// The web console in real headless Chromium against the demo mesh (control plane, three services, their sidecars, a fork): pages, live updates, auth, CSP.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Browser } from 'playwright-core';
import { Mesh, type ForkNode, type SandboxNode } from '../../demo/mesh.js';
import { CONSOLE_CSP } from '../../control-plane/api/ui.js';
import { waitFor } from '../../core/poll.js';
import { REPLICA_HEADER } from '../../model/console.js';
import { call, removeTempDirs, SseClient, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { HAVE_CHROMIUM, launch, NO_CHROMIUM, openPage, useToken } from './browser.js';

if (!HAVE_CHROMIUM) console.warn(`test/ui/console.test.ts ${NO_CHROMIUM}`);

/** The budget for the JavaScript of the first page, gzip. */
const FIRST_PAGE_JS_MAX = 100 * 1024;

describe.skipIf(!HAVE_CHROMIUM)('web console in headless Chromium', () => {
  let mesh: Mesh;
  let browser: Browser;
  let fork: ForkNode;
  let sandbox: SandboxNode;
  let cp: string;

  beforeAll(async () => {
    [mesh, browser] = await Promise.all([Mesh.start(), launch()]);
    cp = mesh.controlPlaneUrl;
    fork = await mesh.startFork('orders', 'orders-v2');
    sandbox = await mesh.applySandbox('orders-pr-1', [fork]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await mesh?.stop();
  });

  it('serves /ui/ with a strict CSP, redirects / there, loads under 100 KB of gzip JS with no console errors and no third-party requests', async () => {
    const root = await request(`${cp}/`);
    await root.body.dump();
    expect(root.statusCode).toBe(302);
    expect(root.headers.location).toBe('/ui/');

    const { page, problems, requests, context } = await openPage(browser, cp);
    const document = await page.goto(`${cp}/`);
    expect(page.url()).toBe(`${cp}/ui/`);
    const headers = document!.headers();
    expect(headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options']).toBe('nosniff');
    await page.locator('[data-sandbox="orders-pr-1"]').waitFor();
    await page.getByText('● live').waitFor();

    // Every script the first page loaded, as sent gzip-encoded.
    const scripts = requests.filter((url) => url.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(3);
    let gzip = 0;
    for (const url of scripts) {
      const res = await request(url, { headers: { 'accept-encoding': 'gzip' } });
      expect(res.headers['content-encoding']).toBe('gzip');
      gzip += (await res.body.arrayBuffer()).byteLength;
    }
    console.log(`first page: ${scripts.length} scripts, ${gzip} bytes gzip`);
    expect(gzip).toBeLessThanOrEqual(FIRST_PAGE_JS_MAX);
    // The page holds no secret: nothing inline, no token in any URL it asked for.
    const html = await (await request(`${cp}/ui/`)).body.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/style=/);
    expect(requests.filter((url) => /token|bearer/i.test(url))).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('lists a sandbox created through the API; applying and deleting one updates the page live, without a reload', async () => {
    const { page, problems, context } = await openPage(browser, cp);
    await page.goto(`${cp}/ui/#/sandboxes`);
    const row = page.locator('[data-sandbox="orders-pr-1"]');
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain(`baggage: laneway=${sandbox.key}`);
    await expect(row.textContent()).resolves.toContain(`default/orders:${mesh.service('orders').appPort}`);
    // The orders sidecar acknowledged the sandbox's revision: the mesh has its routes.
    await row.getByText('routes applied by 1 of 1 sidecar').waitFor();
    await page.evaluate(() => ((globalThis as { loadedOnce?: number }).loadedOnce = 1));
    // The copy button puts the exact header on the clipboard.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cp });
    await row.getByRole('button', { name: 'Copy the baggage header of orders-pr-1' }).click();
    await row.getByRole('button', { name: 'Copy the baggage header of orders-pr-1' }).filter({ hasText: 'Copied' }).waitFor();
    await expect(page.evaluate(() => navigator.clipboard.readText())).resolves.toBe(`baggage: laneway=${sandbox.key}`);

    const applied = await call(cp, 'PUT', '/v1/sandboxes/live-one', { spec: { ttl: '2h', labels: { team: 'payments' }, forks: [{ workload: 'default/payments', targets: { [String(mesh.service('payments').appPort)]: fork.target } }] } });
    expect(applied.status).toBe(201);
    const live = page.locator('[data-sandbox="live-one"]');
    await live.waitFor();
    await live.getByText('routes applied by 1 of 1 sidecar').waitFor();
    await expect(live.textContent()).resolves.toContain('team=payments');
    await expect(live.textContent()).resolves.toMatch(/1h 59m \d+s left|2h 0m 0s left/);
    expect((await call(cp, 'DELETE', '/v1/sandboxes/live-one')).status).toBe(200);
    await live.waitFor({ state: 'detached' });

    // A fork to a laptop (the demo's control plane has a lane relay) reads as a local lane, pending until connected.
    expect((await call(cp, 'PUT', '/v1/sandboxes/on-laptop', { spec: { forks: [{ workload: 'default/payments', targets: { '8080': 'local' } }] } })).status).toBe(201);
    const laptop = page.locator('[data-sandbox="on-laptop"]');
    await laptop.waitFor();
    await expect(laptop.textContent()).resolves.toContain('local lane');
    await expect(laptop.textContent()).resolves.toContain('⚠ Pending');
    expect((await call(cp, 'DELETE', '/v1/sandboxes/on-laptop')).status).toBe(200);
    await laptop.waitFor({ state: 'detached' });

    // Deleting through the page: a confirmation dialog first, then the API call; the row leaves.
    expect((await call(cp, 'PUT', '/v1/sandboxes/live-two', { spec: { forks: [{ workload: 'default/payments', targets: { '8080': fork.target } }] } })).status).toBe(201);
    const two = page.locator('[data-sandbox="live-two"]');
    await two.waitFor();
    await two.getByRole('button', { name: 'Delete sandbox live-two' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await expect(dialog.textContent()).resolves.toContain('Delete sandbox live-two?');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await two.waitFor({ state: 'detached' });
    expect((await call(cp, 'GET', '/v1/sandboxes/live-two')).status).toBe(404);

    expect(await page.evaluate(() => (globalThis as { loadedOnce?: number }).loadedOnce)).toBe(1);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("shows each workload's route table and the revision its sidecar acknowledged, live as it moves", async () => {
    const { page, problems, context } = await openPage(browser, cp);
    await page.goto(`${cp}/ui/#/workloads`);
    const orders = page.locator('[data-workload="default/orders"]');
    await orders.waitFor();
    await expect(orders.textContent()).resolves.toContain(sandbox.key);
    // What the sidecar itself says it has applied (its admin endpoint) is what the page shows as acknowledged.
    const before = (await mesh.routes('orders')).revision;
    await waitFor('the acknowledged revision on the page', async () => (await orders.locator('.acknowledged').textContent()) === String(before), 30_000);
    await expect(orders.textContent()).resolves.toContain('up to date');
    await expect(page.locator('[data-workload="default/web"] .acknowledged').textContent()).resolves.toMatch(/^\d+$/);

    const second = await mesh.applySandbox('orders-pr-2', [fork]);
    const after = (await mesh.routes('orders')).revision;
    expect(after).toBeGreaterThan(before);
    await waitFor('the new acknowledged revision on the page', async () => (await orders.locator('.acknowledged').textContent()) === String(after), 30_000);
    await expect(orders.textContent()).resolves.toContain(second.key);
    await mesh.deleteSandbox(second);

    // A sidecar that stops acknowledging (a replica stuck on an old table) stands out on its workload.
    const stuck = await SseClient.connect(cp, '/v1/workloads/default/orders/routes/watch', { headers: { [REPLICA_HEADER]: 'orders-stuck/7' } });
    await stuck.waitEvents(1);
    const current = (await mesh.routes('orders')).revision;
    expect((await call(cp, 'POST', '/v1/workloads/default/orders/acks', { replica: 'orders-stuck/7', revision: current })).body).toEqual({ known: true });
    const third = await mesh.applySandbox('orders-pr-3', [fork]);
    const now = (await mesh.routes('orders')).revision;
    const stuckRow = orders.locator('tr', { hasText: 'orders-stuck/7' });
    await waitFor('the stuck replica to show as behind', async () => ((await stuckRow.textContent()) ?? '').includes(`behind by ${now - current} revision`), 30_000);
    await expect(orders.locator('h2').textContent()).resolves.toContain('1 sidecar behind');
    stuck.close();
    await stuckRow.waitFor({ state: 'detached' });
    await expect(orders.locator('h2').textContent()).resolves.toContain('all sidecars up to date');
    await mesh.deleteSandbox(third);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("shows a failing run's verdict, its steps and the failing assertion's expected and actual", async () => {
    const plan = {
      name: 'web-check',
      version: '1',
      continueOnFailure: true,
      steps: [
        { id: 'home', http: { url: `${mesh.entryUrl}/` }, assert: [{ status: 201 }] },
        { id: 'same', compare: { url: `${mesh.entryUrl}/` } },
        { id: 'under-load', load: { url: `${mesh.entryUrl}/`, requests: 20, rate: 40, connections: 1 } },
      ],
    };
    expect((await call(cp, 'PUT', '/v1/plans/web-check', { plan })).status).toBe(201);
    const { page, problems, context } = await openPage(browser, cp);
    await page.goto(`${cp}/ui/#/runs`);
    await page.getByText('● live').waitFor();
    // Started while the list is open: it appears running, then turns failed, without a reload.
    const run = await call(cp, 'POST', '/v1/plans/web-check/runs', { sandbox: 'orders-pr-1' });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    const listed = page.locator('tr', { hasText: run.body.id });
    await listed.waitFor();
    await listed.getByText('✗ failed').waitFor();
    expect((await call(cp, 'GET', `/v1/runs/${run.body.id}`)).body.status).toBe('failed');
    await page.getByRole('link', { name: run.body.id }).click();
    const step = page.locator('[data-step="home"]');
    await step.waitFor();
    await expect(page.locator('.verdict').textContent()).resolves.toContain('failed');
    await expect(step.locator('.expected').textContent()).resolves.toBe('201');
    await expect(step.locator('.actual').textContent()).resolves.toBe('200');
    await expect(step.textContent()).resolves.toContain('status');
    // compare: the sandbox's path differs from the baseline's at the forked hop
    await expect(page.locator('[data-step="same"]').textContent()).resolves.toContain('"orders-v2"');
    // load: p50/p90/p99 of both lanes as bars, with their numbers as text
    const chart = page.locator('[data-step="under-load"] svg[aria-label="latency percentiles, baseline and sandbox"]');
    await expect(chart.locator('rect.baseline').count()).resolves.toBe(3);
    await expect(chart.locator('rect.sandbox').count()).resolves.toBe(3);
    await expect(chart.textContent()).resolves.toMatch(/p99 sandbox\d+(\.\d+)? ms/);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("follows a capturing sandbox's traffic live and draws its lane path with the forked hop", async () => {
    const capturing = await call(cp, 'PUT', '/v1/sandboxes/orders-cap', {
      spec: { capture: { bodyBytes: 1024 }, forks: [{ workload: 'default/orders', targets: { [String(mesh.service('orders').appPort)]: fork.target } }] },
    });
    expect(capturing.status).toBe(201);
    const key = capturing.body.status.routingKey as string;
    await waitFor('the orders sidecar to route orders-cap', async () => (await mesh.routes('orders')).routes.some((r) => r.key === key), 30_000);

    // One exchange before the page opens (read as its backlog), one while it follows.
    expect((await mesh.call(key, `${mesh.entryUrl}/before`)).body.path).toEqual(['web', 'orders-v2', 'payments']);
    await waitFor('the first exchange to be captured', async () => (await call(cp, 'GET', '/v1/sandboxes/orders-cap/traffic')).body.entries.length === 1, 30_000);
    const { page, problems, context } = await openPage(browser, cp);
    await page.goto(`${cp}/ui/#/traffic/orders-cap`);
    await page.getByText('following…').waitFor();
    await page.getByRole('button', { name: 'GET /before' }).waitFor();
    expect((await mesh.call(key, `${mesh.entryUrl}/during`)).body.path).toEqual(['web', 'orders-v2', 'payments']);
    const entry = page.getByRole('button', { name: 'GET /during' });
    await entry.waitFor();
    // newest first
    await expect(page.locator('tbody tr button').allTextContents()).resolves.toEqual(['GET /during', 'GET /before']);
    // Filters go to the API: no 5xx here, and the orders workload has both.
    await page.getByLabel('Status').selectOption('5xx');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('following…').waitFor();
    await expect(page.locator('tbody tr').count()).resolves.toBe(0);
    await page.getByLabel('Status').selectOption('2xx');
    await page.getByLabel('Workload').fill('default/orders');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('button', { name: 'GET /before' }).waitFor();
    await expect(page.locator('tbody tr button').allTextContents()).resolves.toEqual(['GET /during', 'GET /before']);
    await entry.click();
    const detail = page.getByRole('region', { name: 'exchange detail' });
    await detail.waitFor();
    await expect(detail.textContent()).resolves.toContain(`laneway=${key}`);

    await page.goto(`${cp}/ui/#/lane/orders-cap`);
    const svg = page.locator('svg.diagram');
    await svg.waitFor();
    const text = await svg.textContent();
    expect(text).toContain(`FORK ${fork.target}`);
    expect(text).toContain('default/web');
    expect(text).toContain('2 captured · seen 1st');
    expect(problems).toEqual([]);
    expect((await call(cp, 'DELETE', '/v1/sandboxes/orders-cap')).status).toBe(200);
    await context.close();
  });

  it('works from the keyboard and fits a phone screen', async () => {
    const { page, problems, context } = await openPage(browser, cp, { viewport: { width: 390, height: 844 } });
    await page.goto(`${cp}/ui/`);
    await page.locator('[data-sandbox="orders-pr-1"]').waitFor();
    // Tab order: the skip link first, then the page links; Enter follows one.
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Workloads');
    await page.keyboard.press('Enter');
    await page.locator('[data-workload="default/orders"]').waitFor();
    await expect(page.locator('nav a[aria-current="page"]').textContent()).resolves.toBe('Workloads');
    await expect(page.title()).resolves.toBe('Workloads · Laneway');
    // Every form control has a label, and nothing is wider than the screen.
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select')].filter((el) => (el as HTMLInputElement).labels?.length === 0).length);
    expect(unlabelled).toBe(0);
    await page.goto(`${cp}/ui/#/sandboxes`);
    await page.locator('[data-sandbox="orders-pr-1"]').waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('shows API errors with their code and message instead of a blank page', async () => {
    const { page, context } = await openPage(browser, cp);
    await page.goto(`${cp}/ui/#/lane/no-such-sandbox`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toContain('LANEWAY_ERR_SANDBOX_NOT_FOUND');
    await expect(alert.textContent()).resolves.toContain('sandbox no-such-sandbox does not exist');
    await context.close();
  });
});

describe.skipIf(!HAVE_CHROMIUM)('web console with tokens', () => {
  const WRITER = 'writer-token-0123456789abcdef';
  const READER = 'reader-token-0123456789abcdef';
  let cp: ControlPlaneProcess;
  let browser: Browser;

  beforeAll(async () => {
    const dir = tempDir();
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, `writer:${WRITER}\nreader:${READER}\n`);
    [cp, browser] = await Promise.all([startControlPlane(join(dir, 'data'), ['--tokens-file', tokens]), launch()]);
    expect((await call(cp.url, 'PUT', '/v1/sandboxes/kept', { spec: { forks: [{ workload: 'default/orders', targets: { '8080': '127.0.0.1:9' } }] } }, WRITER)).status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await cp?.stop();
    removeTempDirs();
  });

  it('without a token shows the 401 code; a reader token lists but cannot delete; a writer token can', async () => {
    const { page, context } = await openPage(browser, cp.url);
    await page.goto(`${cp.url}/ui/`);
    await expect(page.getByRole('alert').textContent()).resolves.toContain('LANEWAY_ERR_UNAUTHENTICATED');

    await useToken(page, READER);
    const row = page.locator('[data-sandbox="kept"]');
    await row.waitFor();
    await page.getByText('role: reader').waitFor();
    await expect(row.getByRole('button', { name: /Delete/ }).count()).resolves.toBe(0);
    // The API refuses it too, whatever the page shows: the same request the page would send.
    const refused = await page.evaluate(async () => {
      const res = await fetch('/v1/sandboxes/kept', { method: 'DELETE', headers: { authorization: `Bearer ${sessionStorage.getItem('laneway.token')}` } });
      return { status: res.status, body: await res.json() };
    });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('LANEWAY_ERR_FORBIDDEN');
    expect((await call(cp.url, 'GET', '/v1/sandboxes/kept', undefined, READER)).status).toBe(200);
    // The token lives in session storage only: not in local storage, a cookie or the URL.
    expect(await page.evaluate(() => [localStorage.length, document.cookie, location.href])).toEqual([0, '', `${cp.url}/ui/`]);

    await useToken(page, WRITER);
    await page.getByText('role: writer').waitFor();
    await row.getByRole('button', { name: 'Delete sandbox kept' }).waitFor();
    await context.close();
  });
});
