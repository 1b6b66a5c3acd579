// Regenerates the console screenshots in docs/ (`npm run screenshots`): the demo mesh with a few sandboxes, traffic and a failed run, in headless Chromium.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { Mesh } from '../../demo/mesh.js';
import { waitFor } from '../../core/poll.js';
import { call } from '../control-plane/helpers.js';
import { HAVE_CHROMIUM, launch, NO_CHROMIUM, openPage } from './browser.js';

if (process.env.LANEWAY_SCREENSHOTS === '1' && !HAVE_CHROMIUM) console.warn(`test/ui/screenshots.test.ts ${NO_CHROMIUM}`);

const DOCS = resolve(import.meta.dirname, '..', '..', 'docs');
const WANTED = process.env.LANEWAY_SCREENSHOTS === '1';

it.skipIf(!WANTED || !HAVE_CHROMIUM)('writes docs/console-*.png (runs only with LANEWAY_SCREENSHOTS=1, and Chromium)', async () => {
  mkdirSync(DOCS, { recursive: true });
  const [mesh, browser] = await Promise.all([Mesh.start(), launch()]);
  try {
    const cp = mesh.controlPlaneUrl;
    const fork = await mesh.startFork('orders', 'orders-v2');
    const payFork = await mesh.startFork('payments', 'payments-v3');
    await mesh.applySandbox('orders-pr-1', [fork]);
    const port = (service: string): string => String(mesh.service(service).appPort);
    const put = async (name: string, spec: unknown): Promise<string> => {
      const res = await call(cp, 'PUT', `/v1/sandboxes/${name}`, { spec });
      expect(res.status).toBe(201);
      return res.body.status.routingKey as string;
    };
    const key = await put('checkout-pr-7', {
      ttl: '4h',
      labels: { team: 'checkout', pr: '7' },
      capture: { bodyBytes: 512 },
      forks: [
        { workload: 'default/orders', targets: { [port('orders')]: fork.target } },
        { workload: 'default/payments', targets: { [port('payments')]: payFork.target } },
      ],
    });
    await put('payments-spike', { ttl: '30m', forks: [{ workload: 'default/payments', targets: { [port('payments')]: '127.0.0.1:9' } }] });
    await waitFor('routes to reach the sidecars', async () => (await mesh.routes('payments')).routes.length === 2, 30_000);
    for (let i = 0; i < 5; i++) await mesh.call(key);

    const plan = {
      name: 'checkout-check',
      version: '1.2.0',
      continueOnFailure: true,
      steps: [
        { id: 'home', http: { url: `${mesh.entryUrl}/` }, assert: [{ status: 200 }, { jsonpath: '$.path[1]', equals: 'orders' }] },
        { id: 'same-shape', compare: { url: `${mesh.entryUrl}/` } },
        { id: 'under-load', load: { url: `${mesh.entryUrl}/`, requests: 40, rate: 40, connections: 2 } },
      ],
    };
    expect((await call(cp, 'PUT', '/v1/plans/checkout-check', { plan })).status).toBe(201);
    const run = await call(cp, 'POST', '/v1/plans/checkout-check/runs', { sandbox: 'checkout-pr-7', wait: true });
    expect(run.status).toBe(200);

    const shots: [string, string, string, { width: number; height: number }?][] = [
      ['console-sandboxes.png', '#/sandboxes', '[data-sandbox="checkout-pr-7"]'],
      ['console-workloads.png', '#/workloads', '[data-workload="default/payments"]'],
      ['console-lane.png', '#/lane/checkout-pr-7', 'svg.diagram'],
      ['console-traffic.png', '#/traffic/checkout-pr-7', 'tbody tr button', { width: 1280, height: 1400 }],
      ['console-run.png', `#/runs/${run.body.id}`, '[data-step="under-load"]'],
      ['console-phone.png', '#/sandboxes', '[data-sandbox="checkout-pr-7"]', { width: 390, height: 844 }],
    ];
    for (const [file, hash, ready, viewport] of shots) {
      const { page, context, problems } = await openPage(browser, cp, viewport === undefined ? {} : { viewport });
      await page.goto(`${cp}/ui/${hash}`);
      await page.locator(ready).first().waitFor();
      await page.getByText('● live').waitFor();
      if (file === 'console-traffic.png') await page.locator('tbody tr button').first().click();
      await page.screenshot({ path: join(DOCS, file), fullPage: file !== 'console-traffic.png' });
      expect(problems).toEqual([]);
      await context.close();
    }
  } finally {
    await browser.close();
    await mesh.stop();
  }
}, 180_000);
