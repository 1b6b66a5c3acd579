// The sidecar-facing API: a workload's route snapshot and its Server-Sent Events watch stream.
import type { FastifyInstance } from 'fastify';
import { isDnsLabel } from '../../core/names.js';
import { ControlPlaneError, ERROR_SCHEMA, invalidField } from '../../model/api-errors.js';
import { REPLICA_HEADER, type WorkloadList, type WorkloadView } from '../../model/console.js';
import type { Route } from '../../model/route-table.js';
import type { Push } from '../push.js';
import { replicaName, type Sidecars } from '../sidecars.js';

export interface WorkloadsOptions {
  readonly push: Push;
  readonly sidecars: Sidecars;
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

const SIDECAR_SCHEMA = {
  type: 'object',
  properties: {
    replica: { type: 'string', description: `what the sidecar calls itself (${REPLICA_HEADER} header: pod name and pid), or its peer address` },
    address: { type: 'string' },
    connectedAt: { type: 'string', format: 'date-time' },
    resumedFrom: { type: ['integer', 'null'], description: 'the revision it resumed from (Last-Event-ID); null for a fresh snapshot' },
    acknowledged: { type: ['integer', 'null'], description: 'the last revision it reported as applied' },
    acknowledgedAt: { type: ['string', 'null'] },
    lag: { type: 'integer', description: "the workload's revision minus the acknowledged one: 0 is up to date" },
  },
} as const;

export async function workloadsApi(app: FastifyInstance, { push, sidecars }: WorkloadsOptions): Promise<void> {
  app.get(
    '/v1/workloads',
    {
      schema: {
        summary: 'Every workload with its route table and the sidecars watching it',
        description: 'Workloads some sandbox forked (now or before) and workloads a sidecar watches, by name.',
        tags: ['workloads'],
        response: {
          200: {
            type: 'object',
            properties: {
              revision: { type: 'integer', description: 'the highest revision of any workload' },
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { workload: { type: 'string' }, revision: { type: 'integer' }, routes: { type: 'array', items: ROUTE_SCHEMA }, sidecars: { type: 'array', items: SIDECAR_SCHEMA } },
                },
              },
            },
          },
          ...ERRORS,
        },
      },
    },
    async (): Promise<WorkloadList> => {
      const names = new Set<string>([...push.routes.workloads(), ...sidecars.workloads()]);
      const items: WorkloadView[] = [...names].sort().map((workload) => {
        const snapshot = JSON.parse(push.routes.snapshotJson(workload)) as { revision: number; routes: Route[] };
        return { workload, revision: snapshot.revision, routes: snapshot.routes, sidecars: sidecars.of(workload, snapshot.revision) };
      });
      return { revision: push.routes.latestRevision(), items };
    },
  );

  app.post<{ Params: Params; Body: { replica: string; revision: number } }>(
    '/v1/workloads/:namespace/:name/acks',
    {
      config: { access: 'report' },
      schema: {
        summary: 'A sidecar acknowledges the route revision it applied',
        description: `Sent by sidecars (sidecar or writer token) after applying pushed routes, at most one at a time; \`replica\` is the name the sidecar sends as ${REPLICA_HEADER} on its watch stream. An acknowledgement from a replica with no open watch stream is ignored (\`known\`: false).`,
        tags: ['workloads'],
        params: WORKLOAD_PARAMS,
        body: {
          type: 'object',
          required: ['replica', 'revision'],
          additionalProperties: false,
          properties: { replica: { type: 'string', maxLength: 200 }, revision: { type: 'integer', minimum: 0 } },
        },
        response: { 200: { type: 'object', properties: { known: { type: 'boolean' } } }, ...ERRORS },
      },
    },
    async (request) => {
      const workload = workloadOf(request.params);
      const replica = replicaName(request.body.replica);
      if (replica === null) throw invalidField('replica', 'must be 1-128 printable ASCII characters');
      return { known: sidecars.acknowledged(workload, replica, request.body.revision) };
    },
  );

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
      const socket = request.raw.socket;
      const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
      const left = sidecars.connected(workload, replicaName(request.headers[REPLICA_HEADER]) ?? address, address, lastEventId ?? null);
      res.once('close', left);
    },
  );
}
