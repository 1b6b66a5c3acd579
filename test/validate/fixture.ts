// Validate test fixture: a `catalog` workload behind a real sidecar subscribed to a real control plane, with forks that rename a field, match the baseline, or answer slowly.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { waitFor } from '../../core/poll.js';
import { startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';

export const WORKLOAD = 'default/catalog';

/** The catalog API: `GET /items/:id` → `{id, <priceField>, currency, generatedAt}`; `generatedAt` differs per call on purpose. */
function catalog(name: string, priceField: 'total' | 'amount', delayMs = 0) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    const answer = (): void => {
      const m = /^\/items\/([0-9]+)$/.exec(req.url ?? '');
      if (m === null) {
        res.writeHead(404, { 'content-type': 'application/json', 'x-served-by': name });
        res.end(JSON.stringify({ error: 'not found' }));
        return;
      }
      const body = { id: Number(m[1]), [priceField]: 42, currency: 'EUR', generatedAt: new Date().toISOString() };
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(JSON.stringify(body));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  };
}

export interface Lane {
  readonly baseline: Upstream;
  /** serves `amount` where the baseline serves `total` */
  readonly renamed: Upstream;
  /** the same API as the baseline */
  readonly same: Upstream;
  /** the baseline's API, 120 ms slower: far beyond any bound the tests set, even on a loaded machine */
  readonly slow: Upstream;
  readonly sidecar: SidecarProcess;
  /** where a client calls catalog: its sidecar */
  readonly url: string;
  /** sandbox name → routing key */
  readonly keys: Record<string, string>;
  stop(): Promise<void>;
}

async function api(cp: string, method: 'PUT' | 'GET', path: string, body?: unknown): Promise<any> {
  const res = await request(`${cp}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text);
}

/**
 * Starts the catalog upstreams and a sidecar for default/catalog subscribed to `controlPlane`, and
 * registers sandboxes pr-rename, pr-same and pr-slow; resolves once the sidecar routes all three.
 */
export async function startLane(controlPlane: string): Promise<Lane> {
  const [baseline, renamed, same, slow] = await Promise.all([
    startUpstream('catalog', catalog('catalog', 'total')),
    startUpstream('catalog-v2', catalog('catalog-v2', 'amount')),
    startUpstream('catalog-same', catalog('catalog-same', 'total')),
    startUpstream('catalog-slow', catalog('catalog-slow', 'total', 120)),
  ]);
  const sidecar = await startSidecar({ appPort: baseline.port, workload: WORKLOAD, extra: ['--control-plane', controlPlane] });
  const keys: Record<string, string> = {};
  for (const [name, fork] of [['pr-rename', renamed], ['pr-same', same], ['pr-slow', slow]] as const) {
    const sandbox = await api(controlPlane, 'PUT', `/v1/sandboxes/${name}`, { spec: { forks: [{ workload: WORKLOAD, targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } }] } });
    keys[name] = sandbox.status.routingKey as string;
  }
  await waitFor('the catalog sidecar to route the three sandboxes', async () => {
    const res = await request(`${sidecar.admin}/routes`);
    const table = JSON.parse(await res.body.text()) as { routes: { key: string }[] };
    return Object.values(keys).every((k) => table.routes.some((r) => r.key === k));
  }, 20_000);
  return {
    baseline,
    renamed,
    same,
    slow,
    sidecar,
    url: `http://127.0.0.1:${sidecar.port}`,
    keys,
    async stop() {
      await sidecar.stop();
      await Promise.all([baseline.close(), renamed.close(), same.close(), slow.close()]);
    },
  };
}

/** A temp directory with helpers to write files in it. */
export function workdir(): { dir: string; file(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-validate-'));
  return {
    dir,
    file(name: string, text: string): string {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The catalog plan used across tests: wait, a sandbox GET with assertions and captures, a compare ignoring generatedAt. */
export function catalogPlan(url: string, extra = ''): string {
  return `name: catalog-check
version: "1.0.0"
description: The catalog answers items with a price, and the sandbox keeps the baseline's response schema.
whenToUse: you changed the catalog service
params:
  itemId: {type: integer, default: 7, description: the item to read}
  base: {type: string, default: "${url}"}
steps:
  - id: ready
    wait: {timeout: 20s}
  - id: get-item
    http:
      url: \${{ params.base }}/items/\${{ params.itemId }}
      headers: {baggage: "tenant=acme"}
    capture:
      itemId: $.id
      servedBy: {header: x-served-by}
    assert:
      - status: 200
      - header: content-type
        matches: ^application/json
      - jsonpath: $.id
        equals: \${{ params.itemId }}
      - jsonpath: $.currency
        matches: ^[A-Z]{3}$
      - schema: {type: object, required: [id, total, currency], properties: {generatedAt: {type: string, format: date-time}}}
      - latency: 2s
  - id: same-shape
    compare:
      url: \${{ params.base }}/items/\${{ steps.get-item.itemId }}
      ignore: [$.generatedAt]
${extra}`;
}
