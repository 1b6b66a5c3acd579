// The injection webhook served by a real `laneway control-plane` process, configured by its flags.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { runLaneway, startLaneway, type Started } from '../helpers/processes.js';

const review = JSON.parse(readFileSync(new URL('./fixtures/reviews/deployment-one-port.json', import.meta.url), 'utf8')) as {
  request: { uid: string };
};
const started: Started[] = [];

afterAll(async () => {
  for (const s of started) await s.stop();
});

describe('laneway control-plane --inject-*', () => {
  it('serves POST /v1/admission/mutate and answers an injected pod with a JSONPatch', async () => {
    const cp = await startLaneway(
      ['control-plane', '--listen', '127.0.0.1:0', '--data', mkdtempSync(join(tmpdir(), 'laneway-wh-')), '--inject-image', 'ghcr.io/laneway/laneway:test', '--inject-control-plane', 'http://laneway.laneway-system.svc:7070'],
      /listening on http:\/\//,
    );
    started.push(cp);
    const url = /listening on (http:\/\/[^ ]+)/.exec(cp.output())![1];
    const res = await request(`${url}/v1/admission/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(review) });
    const body = (await res.body.json()) as { response: { uid: string; allowed: boolean; patchType?: string; patch?: string } };
    expect(res.statusCode).toBe(200);
    expect(body.response.uid).toBe(review.request.uid);
    expect(body.response.allowed).toBe(true);
    expect(body.response.patchType).toBe('JSONPatch');
    const patch = JSON.parse(Buffer.from(body.response.patch!, 'base64').toString()) as { path: string; value: unknown }[];
    expect(JSON.stringify(patch)).toContain('ghcr.io/laneway/laneway:test');
    expect(JSON.stringify(patch)).toContain('http://laneway.laneway-system.svc:7070');
  });

  it('without --inject-* the admission routes are not served', async () => {
    const cp = await startLaneway(['control-plane', '--listen', '127.0.0.1:0', '--data', mkdtempSync(join(tmpdir(), 'laneway-wh-'))], /listening on http:\/\//);
    started.push(cp);
    const url = /listening on (http:\/\/[^ ]+)/.exec(cp.output())![1];
    const res = await request(`${url}/v1/admission/mutate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(review) });
    await res.body.dump();
    expect(res.statusCode).toBe(404);
  });

  it.each([
    [['--webhook-cert', '/tmp/c.pem'], '--webhook-key'],
    [['--webhook-cert', '/tmp/c.pem', '--webhook-key', '/tmp/k.pem'], '--inject-image'],
    [['--inject-image', 'img'], '--inject-control-plane'],
  ])('bad webhook flags %j exit 2 naming %s', async (flags, flag) => {
    const { code, stderr } = await runLaneway(['control-plane', '--listen', '127.0.0.1:0', '--data', mkdtempSync(join(tmpdir(), 'laneway-wh-')), ...flags]);
    expect(code).toBe(2);
    expect(stderr).toMatch(new RegExp(`^laneway: ${flag}:`));
  });
});
