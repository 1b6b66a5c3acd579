// The http action: one request in a sandbox's context (its routing key merged into `baggage`) or the baseline's, recording status, headers, body and timing.
import type { Dispatcher } from 'undici';
import type { ResponseView } from '../assertions.js';
import { ValidateError } from '../errors.js';
import type { ActionModule } from './action.js';
import { checkRequest, prepareRequest, REQUEST_PROPERTIES, type PreparedRequest, type RequestInput } from './request.js';

export interface HttpInput extends RequestInput {
  /** whose routing the request takes: the sandbox's key in `baggage` (default) or none */
  readonly target?: 'sandbox' | 'baseline';
}

interface PreparedHttp {
  readonly request: PreparedRequest;
  readonly target: 'sandbox' | 'baseline';
}

export interface Exchange {
  /** as sent, `baggage` included, so a reader sees which lane the request took */
  readonly request: { readonly url: string; readonly method: string; readonly headers: Record<string, string>; readonly body?: unknown };
  readonly response: ResponseView & { readonly bodyTruncated?: true };
}

/** The baggage member the sidecar routes on by default (README: `baggage: laneway=<key>`). */
export const BAGGAGE_KEY = 'laneway';
/** Bodies beyond this are cut in the result: a run result is read by people and agents, not archived. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * `baggage` with our member set to `key` (or removed, for the baseline), other members kept in order:
 * W3C Baggage §3.2.1 lets a list carry several members, and the services' own baggage must survive.
 * The key is percent-encoded as §3.2.1.1 requires for a value (the sidecar decodes it).
 */
export function withRoutingKey(baggage: string | undefined, key: string | null, name = BAGGAGE_KEY): string | undefined {
  const members: string[] = [];
  if (baggage !== undefined) {
    for (const raw of baggage.split(',')) {
      const member = raw.trim();
      if (member === '') continue;
      const eq = member.indexOf('=');
      if ((eq === -1 ? member : member.slice(0, eq)).trim() === name) continue;
      members.push(member);
    }
  }
  if (key !== null) members.push(`${name}=${encodeURIComponent(key)}`);
  return members.length === 0 ? undefined : members.join(',');
}

/** Headers with `baggage` rewritten for the lane; header names compared case-insensitively (RFC 9110 §5.1). */
export function laneHeaders(headers: Readonly<Record<string, string>>, key: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  let baggage: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'baggage') baggage = baggage === undefined ? value : `${baggage},${value}`;
    else out[name.toLowerCase()] = value;
  }
  const merged = withRoutingKey(baggage, key);
  if (merged !== undefined) out.baggage = merged;
  return out;
}

function encodeBody(body: unknown, headers: Record<string, string>): string | undefined {
  if (body === undefined) return undefined;
  if (typeof body === 'string') {
    headers['content-type'] ??= 'text/plain; charset=utf-8';
    return body;
  }
  headers['content-type'] ??= 'application/json';
  return JSON.stringify(body);
}

function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

/**
 * Sends `req` with `key` as the routing key (null: baseline). Redirects are not followed: a 3xx is
 * the answer, so a redirect can never take a request to a host the policy did not check.
 * Throws STEP_TIMEOUT or STEP_REQUEST_FAILED; every HTTP status is a response, not an error.
 */
export async function send(req: PreparedRequest, key: string | null, dispatcher: Dispatcher, signal?: AbortSignal): Promise<Exchange> {
  // undici loads with the first request, not with the plan schema: the control plane validates every
  // stored plan but runs few.
  const { request } = await import('undici');
  const headers = laneHeaders(req.headers, key);
  const body = encodeBody(req.body, headers);
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const started = performance.now();
  try {
    const res = await request(req.url, {
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: body ?? null,
      dispatcher,
      signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      if (size + buf.length > MAX_BODY_BYTES) {
        chunks.push(buf.subarray(0, MAX_BODY_BYTES - size));
        truncated = true;
        res.body.destroy();
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
    const durationMs = performance.now() - started;
    const text = Buffer.concat(chunks).toString('utf8');
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined) responseHeaders[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    let parsed: unknown = text;
    let json = false;
    const contentType = responseHeaders['content-type'];
    if (!truncated && text !== '' && (isJsonType(contentType) || contentType === undefined)) {
      try {
        parsed = JSON.parse(text);
        json = true;
      } catch {
        // declared JSON but not parseable: kept as text, and JSONPath assertions say the body is not JSON
      }
    }
    return {
      request: { url: req.url, method: req.method, headers, ...(body === undefined ? {} : { body: req.body }) },
      response: {
        status: res.statusCode,
        headers: responseHeaders,
        body: parsed,
        json,
        durationMs: Math.round(durationMs * 100) / 100,
        ...(truncated ? { bodyTruncated: true as const } : {}),
      },
    };
  } catch (err) {
    if (signal?.aborted) throw new ValidateError('LANEWAY_ERR_RUN_ABORTED');
    const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
    if (timeout.aborted || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
      throw new ValidateError('LANEWAY_ERR_STEP_TIMEOUT', `${req.method} ${req.url}: no complete answer within ${req.timeoutMs} ms`);
    }
    const why = e.cause?.code ?? e.code ?? e.cause?.message ?? e.message;
    throw new ValidateError('LANEWAY_ERR_STEP_REQUEST_FAILED', `${req.method} ${req.url}: ${why}`);
  }
}

export const http: ActionModule<HttpInput, PreparedHttp> = {
  schema: {
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: { ...REQUEST_PROPERTIES, target: { enum: ['sandbox', 'baseline'] } },
  },
  outputs: ['status', 'durationMs'],
  readsResponse: true,
  needsSandbox: (input) => input.target !== 'baseline',
  requests: () => 1,
  describe: (input) => ({ text: `${input.method ?? 'GET'} ${input.url}${input.target === 'baseline' ? ' on the baseline' : ' in the sandbox'}`, labelled: true }),
  check: checkRequest,
  prepare(raw, at, scope) {
    const { request, policy } = prepareRequest(raw, at, scope);
    return { prepared: { request, target: raw.target === 'baseline' ? 'baseline' : 'sandbox' }, policy };
  },
  async execute({ request, target }, run) {
    const req = run.concrete(request);
    run.result.inputs = { target, ...req };
    run.backstop(req.url);
    const exchange = await send(req, target === 'sandbox' ? run.lane() : null, run.dispatcher, run.signal);
    run.result.exchanges = { [target]: exchange };
    run.out.status = exchange.response.status;
    run.out.durationMs = exchange.response.durationMs;
    run.result.outputs = run.out;
    run.result.assertions = run.assertions(exchange.response);
    run.capture(exchange.response);
  },
};
