// The web console's assets under /ui/ (built into dist/ui by `npm run build`), with a strict Content-Security-Policy; `/` redirects there.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ControlPlaneError } from '../../model/api-errors.js';

export const UI_PATH = '/ui/';

/**
 * Only our own files, no inline code or style (nothing here can run an injected `<script>` or
 * `style=""`), and the page may talk to this origin alone: no third-party requests, no framing.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'x-frame-options': 'DENY',
});

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
});

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
  readonly etag: string;
}

/** dist/ui, whether this module runs compiled (dist/control-plane/api/ui.js) or as source under vitest. */
export function uiDirectory(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return basename(root) === 'dist' ? join(root, 'ui') : join(root, 'dist', 'ui');
}

/** Every servable file of `dir` (source maps and unknown types left out), read and gzipped once at startup. */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const type = TYPES[extname(name)];
        if (type === undefined) continue;
        const body = readFileSync(path);
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        assets.set(relative(dir, path).split(sep).join('/'), { type, body, gzip: gzipSync(body, { level: 9 }), etag });
      }
    }
  };
  walk(dir);
  return assets;
}

export async function uiRoutes(app: FastifyInstance, { dir = uiDirectory() }: { dir?: string } = {}): Promise<void> {
  const assets = loadAssets(dir);
  const send = (file: string, accept: string | undefined, ifNoneMatch: string | undefined, reply: FastifyReply): FastifyReply => {
    const asset = assets.get(file);
    if (asset === undefined) {
      throw new ControlPlaneError('LANEWAY_ERR_ROUTE_NOT_FOUND', assets.size === 0 ? `the web console is not built (run npm run build; looked in ${dir})` : `no console file ${file}`);
    }
    // Files are not content-hashed: the browser revalidates each time (a 304 when unchanged).
    reply.headers(HEADERS).header('cache-control', 'no-cache').header('etag', asset.etag).header('vary', 'accept-encoding');
    if (ifNoneMatch === asset.etag) return reply.code(304).send();
    reply.type(asset.type);
    if (accept !== undefined && /\bgzip\b/.test(accept)) return reply.header('content-encoding', 'gzip').send(asset.gzip);
    return reply.send(asset.body);
  };
  const hidden = { config: { access: 'public' as const }, schema: { hide: true } };
  app.get('/', hidden, async (_request, reply) => reply.redirect(UI_PATH, 302));
  app.get('/ui', hidden, async (_request, reply) => reply.redirect(UI_PATH, 302));
  app.get('/ui/', hidden, async (request, reply) => send('index.html', request.headers['accept-encoding'], request.headers['if-none-match'], reply));
  app.get<{ Params: { '*': string } }>('/ui/*', hidden, async (request, reply) =>
    send(request.params['*'], request.headers['accept-encoding'], request.headers['if-none-match'], reply),
  );
}
