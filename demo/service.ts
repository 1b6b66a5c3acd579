// A small, ordinary HTTP service (web, orders, payments and their forks) that propagates W3C trace context and baggage with OpenTelemetry; it knows nothing about Laneway.
//
// Run: node dist/demo/service.js --name orders --listen 127.0.0.1:0 [--call http://127.0.0.1:<downstream sidecar port>]
// Every request answers `{"service":"<name>","path":[<name>, ...the downstream's path]}`, so a caller
// sees which instance of every hop served it. Routing is the sidecars' job: this service just calls
// its downstream's address and carries the incoming context along, as any instrumented service does.
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { ROOT_CONTEXT, propagation, type Context } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';


export interface Reply {
  readonly service: string;
  readonly path: readonly string[];
  /** set when the downstream failed: its status and body, so the caller sees where the chain broke */
  readonly error?: { readonly status: number; readonly from: string; readonly lanewayError?: string; readonly body: unknown };
}

const { values } = parseArgs({
  options: { name: { type: 'string' }, listen: { type: 'string', default: '127.0.0.1:0' }, call: { type: 'string' }, propagate: { type: 'string', default: 'all' } },
});

/**
 * What the service carries to its downstream, to show (and test) the usual ways a lane breaks:
 * `all` — the propagators an OpenTelemetry SDK installs by default (`tracecontext,baggage`; a full SDK
 * gets them from NodeSDK, this demo has no tracer so it installs them itself); `tracecontext` — a
 * propagator list without baggage (OTEL_PROPAGATORS=tracecontext); `none` — no propagation at all.
 */
const propagate = values.propagate ?? 'all';
if (propagate !== 'all' && propagate !== 'tracecontext' && propagate !== 'none') {
  process.stderr.write('service: --propagate must be all, tracecontext or none\n');
  process.exit(2);
}
if (propagate !== 'none') {
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: propagate === 'all' ? [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] : [new W3CTraceContextPropagator()] }),
  );
}
const name = values.name;
if (name === undefined || !/^[a-z0-9-]{1,63}$/.test(name)) {
  process.stderr.write('service: --name <lowercase-name> is required\n');
  process.exit(2);
}
const listen = values.listen ?? '127.0.0.1:0';
const colon = listen.lastIndexOf(':');
const downstream = values.call === undefined ? undefined : new URL(values.call);

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  // Extract on the way in. Without an SDK there is no active-context manager, so the context travels
  // explicitly; with one, `context.with(ctx, ...)` and auto-instrumentation do the same thing.
  const ctx: Context = propagation.extract(ROOT_CONTEXT, req.headers);
  if (downstream === undefined) {
    send(res, 200, { service: name!, path: [name!] });
    return;
  }
  // Inject on the way out: `baggage` (and `traceparent`) go to the downstream unchanged.
  const headers: Record<string, string> = {};
  propagation.inject(ctx, headers);
  try {
    const answer = await get(new URL(req.url ?? '/', downstream), headers);
    const body = parseJson(answer.text);
    if (answer.status === 200 && isReply(body)) {
      send(res, 200, { service: name!, path: [name!, ...body.path] });
      return;
    }
    const lanewayError = answer.headers['laneway-error'];
    send(res, 502, {
      service: name!,
      path: [name!],
      error: {
        status: answer.status,
        from: downstream.host,
        ...(typeof lanewayError === 'string' ? { lanewayError } : {}),
        body,
      },
    });
  } catch (err) {
    send(res, 502, { service: name!, path: [name!], error: { status: 0, from: downstream.host, body: (err as Error).message } });
  }
}

// node:http rather than undici or fetch: an ordinary service's client, and it starts ~150 ms faster
// (the e2e tests start dozens of these on 2 cores).
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function get(url: URL, headers: Record<string, string>): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
  return new Promise((resolve, reject) => {
    const out = request(url, { agent, headers }, (answer) => {
      let text = '';
      answer.setEncoding('utf8');
      answer.on('data', (chunk: string) => (text += chunk));
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, text }));
      answer.on('error', reject);
    });
    out.on('error', reject);
    out.end();
  });
}

function send(res: ServerResponse, status: number, reply: Reply): void {
  const body = JSON.stringify(reply);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && Array.isArray((value as Reply).path);
}

const server = createServer((req, res) => void handle(req, res));
server.keepAliveTimeout = 60_000;
server.listen(Number(listen.slice(colon + 1)), listen.slice(0, colon), () => {
  const { port } = server.address() as { port: number };
  // One JSON line on stdout: whoever started us reads the port from it (we may have been given port 0).
  process.stdout.write(`${JSON.stringify({ msg: 'service listening', service: name, port, calls: downstream?.href ?? null })}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`service ${name}: ${err.message}\n`);
  process.exit(1);
});

const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  // In-flight requests get a moment to finish; a stuck client must not keep us alive.
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
