// The webhook's TLS listener with a certificate from deploy/webhook-cert.sh: the API server's view (CA + service DNS name), and rotation.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { injectOptions } from '../../control-plane/admission.js';
import { ADMISSION_PATHS, listenWebhook } from '../../control-plane/api/admission.js';

const CERT_SCRIPT = fileURLToPath(new URL('../../deploy/webhook-cert.sh', import.meta.url));
const REVIEW = readFileSync(fileURLToPath(new URL('fixtures/reviews/deployment-one-port.json', import.meta.url)), 'utf8');
const SERVICE_DNS = 'laneway-control-plane.laneway-system.svc';

let openssl: string | null = null;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = 'openssl not installed';
}
if (openssl !== null) console.warn(`[webhook-tls.test] skipped: ${openssl}`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function makeCert(): string {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-webhook-cert-'));
  dirs.push(dir);
  execFileSync('sh', [CERT_SCRIPT, dir], { stdio: 'pipe' });
  return dir;
}

/** POSTs the review the way the API server does: TLS verified against the caBundle for the Service's DNS name. */
function post(port: number, ca: Buffer, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, servername: SERVICE_DNS, headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(REVIEW);
  });
}

describe.skipIf(openssl !== null)('webhook TLS listener', () => {
  it('serves the admission routes over TLS that verifies for the Service name, and picks up a rotated certificate', async () => {
    const first = makeCert();
    const live = mkdtempSync(join(tmpdir(), 'laneway-webhook-live-'));
    dirs.push(live);
    cpSync(first, live, { recursive: true });
    const app = await listenWebhook({
      host: '127.0.0.1',
      port: 0,
      certFile: join(live, 'tls.crt'),
      keyFile: join(live, 'tls.key'),
      inject: injectOptions({ image: 'registry.example.com/laneway:0.1.0', controlPlaneUrl: 'http://laneway-control-plane.laneway-system.svc:7070' }),
      logger: pino({ level: 'silent' }),
      reloadIntervalMs: 50,
    });
    try {
      const { port } = app.server.address() as AddressInfo;
      const firstCa = readFileSync(join(first, 'ca.crt'));
      const res = await post(port, firstCa, ADMISSION_PATHS.annotation);
      expect(res.status).toBe(200);
      expect(res.body.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });

      // cert-manager renews: the kubelet swaps the Secret's files; the listener must follow without a restart.
      const second = makeCert();
      cpSync(join(second, 'tls.crt'), join(live, 'tls.crt'));
      cpSync(join(second, 'tls.key'), join(live, 'tls.key'));
      const secondCa = readFileSync(join(second, 'ca.crt'));
      const deadline = Date.now() + 5000;
      let last: unknown;
      for (;;) {
        try {
          const rotated = await post(port, secondCa, ADMISSION_PATHS.namespace);
          expect(rotated.body.response.patchType).toBe('JSONPatch');
          break;
        } catch (err) {
          last = err;
          if (Date.now() > deadline) throw new Error(`rotated certificate never served: ${String(last)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      // ...and the old CA no longer verifies it
      await expect(post(port, firstCa, ADMISSION_PATHS.annotation)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      await app.close();
    }
  });
});
