// Bearer-token auth: missing/wrong tokens 401, reader writes 403, readers read and watch, public endpoints stay open; the tokens file parser.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../cli/server.js';
import { bearerToken, Tokens } from '../../control-plane/auth.js';
import { configWith } from '../../control-plane/config.js';
import { call, listenApp, removeTempDirs, SseClient, spec, tempDir } from './helpers.js';

const WRITER = 'w-0123456789abcdef0123';
const READER = 'r-0123456789abcdef0123';
let app: FastifyInstance;
let tokensFile: string;

beforeAll(async () => {
  const dir = tempDir();
  tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `# CI pipelines\nwriter:${WRITER}\n\nreader: ${READER}\n`);
  app = await buildServer(configWith({ dataDir: dir, tokensFile }));
  await app.ready();
});

afterAll(async () => {
  await app.close();
  removeTempDirs();
});

function inject(method: 'GET' | 'PUT' | 'DELETE', url: string, token?: string, body?: object) {
  return app.inject({
    method,
    url,
    headers: token === undefined ? {} : { authorization: token.includes(' ') ? token : `Bearer ${token}` },
    ...(body === undefined ? {} : { payload: body }),
  });
}

describe('with --tokens-file', () => {
  it('writes need a writer token', async () => {
    const body = { spec: spec(['a/b']) };
    const none = await inject('PUT', '/v1/sandboxes/x', undefined, body);
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="laneway"');
    expect(none.json().error).toMatchObject({ code: 'LANEWAY_ERR_UNAUTHENTICATED', message: 'missing Authorization: Bearer <token>' });
    const wrong = await inject('PUT', '/v1/sandboxes/x', 'nope', body);
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.message).toBe('the bearer token is not valid');
    const prefix = await inject('PUT', '/v1/sandboxes/x', WRITER.slice(0, -1), body);
    expect(prefix.statusCode).toBe(401);
    const reader = await inject('PUT', '/v1/sandboxes/x', READER, body);
    expect(reader.statusCode).toBe(403);
    expect(reader.json().error.code).toBe('LANEWAY_ERR_FORBIDDEN');
    const readerDelete = await inject('DELETE', '/v1/sandboxes/x', READER);
    expect(readerDelete.statusCode).toBe(403);
    const writer = await inject('PUT', '/v1/sandboxes/x', WRITER, body);
    expect(writer.statusCode).toBe(201);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    const lower = await inject('PUT', '/v1/sandboxes/x', `bearer ${WRITER}`, body);
    expect(lower.statusCode).toBe(200);
    const basic = await inject('PUT', '/v1/sandboxes/x', `Basic ${Buffer.from(`u:${WRITER}`).toString('base64')}`, body);
    expect(basic.statusCode).toBe(401);
  });

  it('reads need a reader or writer token', async () => {
    for (const url of ['/v1/sandboxes', '/v1/sandboxes/x', '/v1/workloads/a/b/routes', '/metrics']) {
      expect((await inject('GET', url)).statusCode, url).toBe(401);
      expect((await inject('GET', url, READER)).statusCode, url).toBe(200);
      expect((await inject('GET', url, WRITER)).statusCode, url).toBe(200);
    }
  });

  it('health and the OpenAPI document stay public; the document declares bearer auth', async () => {
    expect((await inject('GET', '/healthz')).statusCode).toBe(200);
    const doc = await inject('GET', '/openapi.json');
    expect(doc.statusCode).toBe(200);
    expect(doc.json().security).toEqual([{ bearer: [] }]);
  });

  it('no token is ever echoed in a response', async () => {
    const res = await inject('PUT', '/v1/sandboxes/x', `${WRITER}x`, { spec: spec(['a/b']) });
    expect(res.body).not.toContain(WRITER);
  });

  it('watch streams need a token too (real socket)', async () => {
    const { app: served, url } = await listenApp({ tokensFile });
    try {
      const denied = await call(url, 'GET', '/v1/workloads/a/b/routes/watch');
      expect(denied.status).toBe(401);
      const watcher = await SseClient.connect(url, '/v1/workloads/a/b/routes/watch', { token: READER });
      const [snap] = await watcher.waitEvents(1);
      expect(snap?.event).toBe('snapshot');
      watcher.close();
    } finally {
      await served.close();
    }
  });
});

describe('tokens file and header parsing', () => {
  it('rejects unknown roles, empty tokens and empty files naming the line, without echoing the token', () => {
    const dir = tempDir();
    const write = (text: string): string => {
      const file = join(dir, `t${Math.random()}`);
      writeFileSync(file, text);
      return file;
    };
    expect(() => Tokens.load(write('admin:secret-token-value\n'))).toThrow(/line 1: expected 'writer:<token>', 'sidecar:<token>' or 'reader:<token>'/);
    expect(() => Tokens.load(write('admin:secret-token-value\n'))).not.toThrow(/secret-token-value/);
    expect(() => Tokens.load(write('writer:ok-token\nreader:\n'))).toThrow(/line 2: empty/);
    expect(() => Tokens.load(write('# nothing\n\n'))).toThrow(/has no tokens/);
    const tokens = Tokens.load(write('writer:abc\r\nreader:def\n'));
    expect(tokens.roleOf('abc')).toBe('writer');
    expect(tokens.roleOf('def')).toBe('reader');
    expect(tokens.roleOf('ab')).toBeNull();
    expect(tokens.weak).toBe(2);
  });

  it('a token listed as both reader and writer is a writer', () => {
    expect(new Tokens([{ role: 'reader', token: 't' }, { role: 'writer', token: 't' }]).roleOf('t')).toBe('writer');
    expect(new Tokens([{ role: 'writer', token: 't' }, { role: 'reader', token: 't' }]).roleOf('t')).toBe('writer');
  });

  it('parses Bearer headers', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('BEARER  abc ')).toBe('abc');
    expect(bearerToken('Bearer ')).toBeNull();
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
