// Dials a local lane: a TCP connection to the lane relay, turned by HTTP CONNECT (RFC 9110 §9.3.6) into a byte tunnel
// to the laptop's local service. undici then speaks HTTP/1.1 through it as to any fork: the relay and the laptop only
// move bytes (one HTTP/2 stream per connection), which costs them a fraction of converting every request.
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { ERROR_HEADER, FORK_HEADER } from '../core/constants.js';
import type { Target } from '../model/route-table.js';

/** The most of a refusal's body the sidecar reads and passes on (the relay's JSON errors are ~200 bytes). */
export const LANE_REFUSAL_MAX_BYTES = 4096;

/** The relay (or the laptop behind it) refused the tunnel: its status, stable code and JSON body, answered to the client as they are. */
export class LaneRefusedError extends Error {
  readonly code: string;
  readonly status: number;
  readonly body: string;
  constructor(status: number, code: string, body: string) {
    super(`the lane relay refused the connection: ${status} ${code}`);
    this.name = 'LaneRefusedError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** undici's connector callback. */
export type DialCallback = (...args: [null, Socket] | [Error, null]) => void;

/**
 * undici's connector for one lane (`fork`: `<key>@<workload>:<port>`, what the relay resolves to a
 * tunnel). Fails with the socket's error (relay unreachable), `UND_ERR_CONNECT_TIMEOUT` when the
 * tunnel is not established within `timeoutMs`, or LaneRefusedError.
 */
export function dialLane(target: Target, fork: string, timeoutMs: number, callback: DialCallback): void {
  let settled = false;
  const settle = (...args: [null, Socket] | [Error, null]): void => {
    if (settled) return void args[1]?.destroy();
    settled = true;
    clearTimeout(timer);
    callback(...args);
  };
  const req = request({
    host: target.host.replace(/^\[|\]$/g, ''),
    port: target.port,
    method: 'CONNECT',
    path: 'lane',
    headers: { host: 'lane', [FORK_HEADER]: fork },
    agent: false,
  });
  const timer = setTimeout(() => {
    req.destroy();
    settle(Object.assign(new Error(`no tunnel within ${timeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' }), null);
  }, timeoutMs);
  req.on('error', (err) => settle(err, null));
  req.on('connect', (res, socket: Socket, head: Buffer) => {
    if (res.statusCode === 200) {
      socket.setNoDelay(true);
      if (head.length > 0) socket.unshift(head);
      return settle(null, socket);
    }
    // A refusal: the relay's JSON error, then it closes. Read what fits and pass it on.
    const chunks: Buffer[] = [head];
    let size = head.length;
    const code = String(res.headers[ERROR_HEADER] ?? `HTTP_${res.statusCode}`);
    const done = (): void => {
      socket.destroy();
      settle(new LaneRefusedError(res.statusCode ?? 502, code, Buffer.concat(chunks).subarray(0, LANE_REFUSAL_MAX_BYTES).toString('utf8')), null);
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= LANE_REFUSAL_MAX_BYTES) done();
    });
    socket.once('end', done);
    socket.once('close', done);
    socket.on('error', () => {});
  });
  req.end();
}
