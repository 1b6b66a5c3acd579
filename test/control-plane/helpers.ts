// Control-plane test helpers: temp data dirs, in-process and child-process control planes, a real SSE client, a JSON client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createParser } from 'eventsource-parser';
import { request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../cli/server.js';
import { configWith, type ControlPlaneConfig } from '../../control-plane/config.js';
import { startLaneway, type Started } from '../helpers/processes.js';

const dirs: string[] = [];

/** A fresh temp directory, removed by `removeTempDirs` (call it in afterAll). */
export function tempDir(prefix = 'laneway-cp-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** An in-process control plane on a real 127.0.0.1 socket (port 0). */
export async function listenApp(overrides: Partial<ControlPlaneConfig> = {}): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildServer(configWith({ dataDir: tempDir(), ...overrides }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

export interface ControlPlaneProcess extends Started {
  readonly url: string;
}

/**
 * `laneway control-plane --listen 127.0.0.1:0 --data <dir> ...` as a child process (`--store <url>` when
 * `location` is an `etcd://` URL, with a 2 s leader lease); resolves once it prints its URL.
 */
export async function startControlPlane(location: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ControlPlaneProcess> {
  const store = location.startsWith('etcd://') ? ['--store', location, '--leader-lease', '2s'] : ['--data', location];
  const started = await startLaneway(
    ['control-plane', '--listen', '127.0.0.1:0', ...store, '--log-level', 'warn', ...extra],
    /listening on http:\/\/\S+:\d+/,
    env,
    // Startup is ~0.7 s on a quiet 2-core box, but many times that while other suites share it.
    45_000,
  );
  const url = /listening on (http:\/\/\S+:\d+)/.exec(started.output())?.[1] as string;
  return { ...started, url };
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** One JSON request over a real socket. */
export async function call<T = any>(url: string, method: string, path: string, body?: unknown, token?: string): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await request(`${url}${path}`, { method: method as 'GET', headers, body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers as JsonResponse['headers'], body: text === '' ? undefined : JSON.parse(text) };
}

/** A sandbox spec forking `workloads` to `target`. */
export function spec(workloads: string[], target = '127.0.0.1:9', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...extra, forks: workloads.map((workload) => ({ workload, targets: { '8080': target } })) };
}

export interface SseEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: any;
  /** performance.now() when the event was parsed */
  readonly at: number;
}

/**
 * A watch-stream client over node:http with its own socket (agent: false), so a test can hold a
 * thousand of them. Events are parsed with eventsource-parser, as the sidecar does.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  comments = 0;
  status = 0;
  headers: IncomingMessage['headers'] = {};
  closed = false;
  #req: ClientRequest | null = null;
  #waiters: (() => void)[] = [];

  static async connect(url: string, path: string, options: { lastEventId?: number | string; token?: string; headers?: Record<string, string> } = {}): Promise<SseClient> {
    const client = new SseClient();
    await client.#open(url, path, options);
    return client;
  }

  #open(url: string, path: string, options: { lastEventId?: number | string; token?: string; headers?: Record<string, string> }): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
    if (options.lastEventId !== undefined) headers['last-event-id'] = String(options.lastEventId);
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${url}${path}`, { headers, agent: false }, (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        const parser = createParser({
          onEvent: (e) => {
            this.events.push({ event: e.event ?? 'message', id: e.id, data: safeJson(e.data), at: performance.now() });
            this.#notify();
          },
          onComment: () => {
            this.comments++;
            this.#notify();
          },
        });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => parser.feed(chunk));
        res.on('close', () => {
          this.closed = true;
          this.#notify();
        });
        resolve();
      });
      req.on('error', (err) => {
        this.closed = true;
        this.#notify();
        reject(err);
      });
      req.end();
      this.#req = req;
    });
  }

  #notify(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once `predicate` holds (checked after each event), or rejects after `timeoutMs`. */
  async until(predicate: (c: SseClient) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE: timed out waiting for ${what}; got ${JSON.stringify(this.events.map((e) => [e.event, e.id]))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until at least `n` events arrived; returns them all. */
  async waitEvents(n: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    await this.until((c) => c.events.length >= n, timeoutMs, `${n} events`);
    return this.events;
  }

  close(): void {
    this.#req?.destroy();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
