// Golden test: a sequence of sandbox changes → every workload's route snapshot (UPDATE_GOLDEN=1 rewrites the file).
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildServer } from '../../cli/server.js';
import { configWith } from '../../control-plane/config.js';
import { validateSnapshot } from '../../model/route-table.js';
import { removeTempDirs, tempDir } from './helpers.js';

const steps = parse(readFileSync(new URL('./golden/steps.yaml', import.meta.url), 'utf8')) as ({ apply: { name: string; spec: unknown } } | { delete: string })[];
const goldenFile = new URL('./golden/routes.golden.json', import.meta.url);

afterAll(() => removeTempDirs());

it('steps.yaml produces routes.golden.json', async () => {
  // Probing off: the golden specs name 10.0.0.x hosts, and no test sends a packet off this machine.
  const app = await buildServer(configWith({ dataDir: tempDir(), probeIntervalMs: 0 }));
  try {
    for (const step of steps) {
      const res =
        'apply' in step
          ? await app.inject({ method: 'PUT', url: `/v1/sandboxes/${step.apply.name}`, payload: { spec: step.apply.spec } as object })
          : await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${step.delete}` });
      expect(res.statusCode, res.body).toBeLessThan(300);
    }
    const snapshots: Record<string, unknown> = {};
    for (const workload of ['shop/orders', 'shop/payments', 'shop/web']) {
      const body = (await app.inject({ method: 'GET', url: `/v1/workloads/${workload}/routes` })).json();
      validateSnapshot(body); // the sidecar would load it
      snapshots[workload] = body;
    }
    const text = `${JSON.stringify(snapshots, null, 2)}\n`;
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenFile, text);
    expect(text).toBe(readFileSync(goldenFile, 'utf8'));
  } finally {
    await app.close();
  }
});
