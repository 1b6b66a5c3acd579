// What the web console needs beyond the resource APIs: its change stream (GET /v1/events, SSE) and the caller's role (GET /v1/whoami).
import type { FastifyInstance } from 'fastify';
import { ControlPlaneError, ERROR_SCHEMA } from '../../model/api-errors.js';
import { requestRole } from '../auth.js';
import { EVENT_STREAMS_MAX, type ConsoleEvents } from '../events.js';

export async function consoleApi(app: FastifyInstance, { events }: { events: ConsoleEvents }): Promise<void> {
  app.get(
    '/v1/whoami',
    {
      schema: {
        summary: "The caller's role",
        description: '`writer`, `sidecar` or `reader` as the bearer token says; `writer` with `open: true` when the control plane has no tokens (loopback only). The console hides what the role may not do; the API enforces it either way.',
        tags: ['system'],
        response: { 200: { type: 'object', properties: { role: { type: 'string', enum: ['writer', 'sidecar', 'reader'] }, open: { type: 'boolean' } } }, '4xx': ERROR_SCHEMA },
      },
    },
    async (request) => {
      const role = requestRole(request);
      return { role: role ?? 'writer', open: role === null };
    },
  );

  app.get(
    '/v1/events',
    {
      schema: {
        summary: 'What changed, as it happens (Server-Sent Events; the web console follows it)',
        description: [
          '`hello` once connected; `change` (id: the revision; data: {revision, workloads, sandboxes}) after every committed sandbox change;',
          '`sidecar` (data: {workload, replica, state: connected|acknowledged|disconnected});',
          '`run` (data: {id, status}) when a server-side plan run starts or finishes.',
          'Events name what changed; read the resource for its new state. No resume: after a reconnect, read everything again.',
          `A \`: hb\` comment keeps the stream alive; at most ${EVENT_STREAMS_MAX} streams at once.`,
        ].join(' '),
        tags: ['system'],
        response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA },
      },
    },
    (request, reply) => {
      if (!events.hasCapacity()) throw new ControlPlaneError('LANEWAY_ERR_TOO_MANY_WATCHERS', `${EVENT_STREAMS_MAX} event streams are open; retry later`);
      reply.hijack();
      request.raw.socket.setTimeout(0);
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
      reply.raw.flushHeaders();
      events.add(reply.raw);
    },
  );
}
