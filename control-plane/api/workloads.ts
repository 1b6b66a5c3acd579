// The sidecar-facing API: a workload's route snapshot and its Server-Sent Events watch stream.
import type { FastifyInstance } from 'fastify';
import { isDnsLabel } from '../../core/names.js';
import { ControlPlaneError, ERROR_SCHEMA, invalidField } from '../../model/api-errors.js';
import type { Push } from '../push.js';

export interface WorkloadsOptions {
  readonly push: Push;
}

const WORKLOAD_PARAMS = {
  type: 'object',
  required: ['namespace', 'name'],
  properties: {
    namespace: { type: 'string', maxLength: 63, description: 'DNS-1123 label' },
    name: { type: 'string', maxLength: 63, description: 'DNS-1123 label' },
  },
} as const;

const ROUTE_SCHEMA = {
  type: 'object',
  required: ['key', 'sandbox', 'targets'],
  properties: {
    key: { type: 'string' },
    sandbox: { type: 'string' },
    targets: { type: 'object', additionalProperties: { type: 'string' }, description: 'app port → host:port, h2c://host:port or http://host:port (the fork\'s own protocol), or lane://<relay host:port> for a local fork' },
    capture: {
      type: 'object',
      description: "the sandbox's spec.capture: sidecars record what they route to it",
      properties: { bodyBytes: { type: 'integer' }, redactHeaders: { type: 'array', items: { type: 'string' } } },
    },
  },
} as const;

/** The sidecar's routes-file format (proxy/route-table.ts RouteSnapshot). */
export const SNAPSHOT_SCHEMA = {
  type: 'object',
  required: ['workload', 'revision', 'routes'],
  properties: {
    workload: { type: 'string', description: '<namespace>/<name>' },
    revision: { type: 'integer', description: 'global revision of the last change that touched this workload (0 if none)' },
    routes: { type: 'array', items: ROUTE_SCHEMA },
  },
} as const;

const ERRORS = { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } as const;

type Params = { namespace: string; name: string };

function workloadOf(params: Params): string {
  if (!isDnsLabel(params.namespace)) throw invalidField('namespace', 'must be a DNS-1123 label');
  if (!isDnsLabel(params.name)) throw invalidField('name', 'must be a DNS-1123 label');
  return `${params.namespace}/${params.name}`;
}

/** `Last-Event-ID` as a revision; anything else (absent, garbage) means "send a snapshot". */
function parseLastEventId(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string' || !/^[0-9]{1,15}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

export async function workloadsApi(app: FastifyInstance, { push }: WorkloadsOptions): Promise<void> {
  app.get<{ Params: Params }>(
    '/v1/workloads/:namespace/:name/routes',
    {
      schema: {
        summary: "A workload's route table",
        description: 'Exactly the sidecar routes-file format; an empty table at revision 0 for a workload nothing forked.',
        tags: ['workloads'],
        params: WORKLOAD_PARAMS,
        response: { 200: SNAPSHOT_SCHEMA, ...ERRORS },
      },
    },
    async (request, reply) => {
      // Already-serialized JSON (cached per revision): Fastify sends a string with a JSON type as is.
      reply.type('application/json; charset=utf-8');
      return push.routes.snapshotJson(workloadOf(request.params));
    },
  );

  app.get<{ Params: Params }>(
    '/v1/workloads/:namespace/:name/routes/watch',
    {
      schema: {
        summary: "Watch a workload's route table (Server-Sent Events)",
        description: [
          'Events, each with `id: <revision>`:',
          '`snapshot` (data: the route table, as GET …/routes),',
          '`upsert` (data: {"revision":N,"route":{key,sandbox,targets}}; replaces any route of the same sandbox),',
          '`delete` (data: {"revision":N,"key":"…"}).',
          'With `Last-Event-ID: R` only the deltas after R are sent when they are all still kept, otherwise a fresh snapshot.',
          'A `: hb` comment is sent at least every 15 s.',
        ].join(' '),
        tags: ['workloads'],
        params: WORKLOAD_PARAMS,
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'string', description: 'the last revision the client applied' } },
        },
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          ...ERRORS,
        },
      },
    },
    (request, reply) => {
      const workload = workloadOf(request.params);
      if (!push.hasCapacity()) throw new ControlPlaneError('LANEWAY_ERR_TOO_MANY_WATCHERS');
      const lastEventId = parseLastEventId(request.headers['last-event-id']);
      reply.hijack();
      const res = reply.raw;
      // The stream is meant to stay open; no idle timeout on its socket (heartbeats keep middleboxes awake).
      request.raw.socket.setTimeout(0);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        // nginx and similar proxies buffer responses by default, which would hold events back.
        'x-accel-buffering': 'no',
      });
      // Headers go out now, on their own: events are then written to the socket as whole chunks, and an
      // up-to-date resume (nothing to send yet) still learns at once that it is connected.
      res.flushHeaders();
      push.watch(workload, res, lastEventId);
    },
  );
}
