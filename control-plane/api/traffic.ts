// What happened in a lane: sidecars' reports in (POST /v1/reports), captured traffic out (GET …/traffic, SSE follow),
// and the propagation doctor's probes (POST /v1/probes, GET /v1/probes/:id).
import { isAscii } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { isDnsLabel, isWorkloadName } from '../../core/names.js';
import { ControlPlaneError, ERROR_SCHEMA, invalidField } from '../../model/api-errors.js';
import { REPORT_CONTENT_TYPE, REPORT_MAX_ITEMS, ReportFormatError, REPORTS_PATH, splitReport, type ExchangeLines, type ReportHead, type TrafficPage, type TrafficQuery } from '../../model/capture.js';
import type { Push } from '../push.js';
import type { ProbeRegistry } from '../propagation.js';
import type { SandboxRecord } from '../storage.js';
import { TRAFFIC_PAGE_DEFAULT, TRAFFIC_PAGE_MAX, type TrafficFilter, type TrafficStore } from '../traffic.js';

/** A report body, at most (REPORT_MAX_ITEMS records with 64 KiB bodies each would not fit: the sidecar's byte cap is lower). */
export const REPORT_BODY_LIMIT = 16 * 1024 * 1024;

export interface TrafficApiOptions {
  readonly traffic: TrafficStore;
  readonly probes: ProbeRegistry;
  readonly push: Push;
  readonly sandbox: (name: string) => SandboxRecord | undefined;
}

const ERRORS = { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } as const;

/** What the report parser hands the route: the head (checked by this schema) and the exchange lines, unparsed. */
interface ParsedReport {
  readonly head: ReportHead;
  readonly bySandbox: ReadonlyMap<string, ExchangeLines>;
  readonly malformed: number;
  /** the body's length in characters */
  readonly chars: number;
}

const REPORT_SCHEMA = {
  type: 'object',
  required: ['head', 'bySandbox', 'malformed'],
  properties: {
    head: {
      type: 'object',
      required: ['workload', 'sightings', 'dropped'],
      properties: {
        workload: { type: 'string', maxLength: 127 },
        sightings: { type: 'array', maxItems: REPORT_MAX_ITEMS, items: { type: 'object', required: ['probe', 'at', 'keyed', 'traced'], properties: { probe: { type: 'string', maxLength: 64 } } } },
        dropped: { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } },
      },
    },
  },
} as const;

/** Reports are NDJSON (REPORT_CONTENT_TYPE): split here, exchange lines kept as they came (see splitReport). */
function parseReport(_request: unknown, body: Buffer, done: (err: Error | null, body?: ParsedReport) => void): void {
  try {
    // Most reports are ASCII: decoding those as Latin-1 is a copy, and gives the same text as UTF-8.
    const text = body.toString(isAscii(body) ? 'latin1' : 'utf8');
    const { head, bySandbox, malformed } = splitReport(text);
    done(null, { head: head as ReportHead, bySandbox, malformed, chars: text.length });
  } catch (err) {
    done(err instanceof ReportFormatError ? new ControlPlaneError('LANEWAY_ERR_INVALID_BODY', `the report is not valid: ${err.message}`) : (err as Error));
  }
}

const TRAFFIC_QUERY = {
  type: 'object',
  properties: {
    workload: { type: 'string', maxLength: 127, description: '<namespace>/<name>: only exchanges that workload\'s sidecars routed' },
    status: { type: 'string', pattern: '^([1-5]xx|error)$', description: '2xx, 4xx, 5xx…, or error (the sidecar answered itself or the connection was cut)' },
    since: { type: 'string', maxLength: 40, description: 'entries at or after this time (RFC 3339)' },
    after: { type: 'string', pattern: '^[0-9]{1,15}$', description: 'entries after this sequence number (what `seq` a previous answer ended with)' },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: `entries to return, 1-${TRAFFIC_PAGE_MAX} (default ${TRAFFIC_PAGE_DEFAULT})` },
  },
} as const;

/** Query strings are not coerced (the API's Ajv never coerces): numbers arrive as digit strings. */
type QueryString = { workload?: string; status?: string; since?: string; after?: string; limit?: string };

function filterOf(query: QueryString, lastEventId?: string | string[]): TrafficFilter {
  if (query.workload !== undefined && !isWorkloadName(query.workload)) throw invalidField('workload', 'must be <namespace>/<name>');
  let sinceMs: number | undefined;
  if (query.since !== undefined) {
    sinceMs = Date.parse(query.since);
    if (Number.isNaN(sinceMs)) throw invalidField('since', `not an RFC 3339 time: '${query.since}'`);
  }
  const limit = query.limit === undefined ? undefined : Number(query.limit);
  if (limit !== undefined && (limit < 1 || limit > TRAFFIC_PAGE_MAX)) throw invalidField('limit', `must be 1-${TRAFFIC_PAGE_MAX}`);
  let afterSeq = query.after === undefined ? undefined : Number(query.after);
  if (typeof lastEventId === 'string' && /^[0-9]{1,15}$/.test(lastEventId.trim())) afterSeq = Number(lastEventId.trim());
  return {
    ...(query.workload === undefined ? {} : { workload: query.workload }),
    ...(query.status === undefined ? {} : { statusClass: query.status === 'error' ? 0 : Number(query.status[0]) }),
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(afterSeq === undefined ? {} : { afterSeq }),
    ...(limit === undefined ? {} : { limit }),
  };
}

/** The ring of a sandbox that exists: keyed by its incarnation, so a re-created sandbox starts empty. */
function laneOf(record: SandboxRecord): string {
  return `${record.name}#${record.createdAt}`;
}

/** GET …/traffic's answer. */
export function trafficPage(traffic: TrafficStore, record: SandboxRecord, filter: TrafficFilter): TrafficPage {
  const page = traffic.list(laneOf(record), filter);
  return { sandbox: record.name, capture: record.spec.capture !== undefined, entries: page.entries, oldestSeq: page.oldestSeq, lastSeq: page.lastSeq };
}

/** The same, for callers inside the control plane (server-side plan runs) with the client's query type. */
export function trafficPageOf(traffic: TrafficStore, record: SandboxRecord, query: TrafficQuery): TrafficPage {
  const { after, limit, ...rest } = query;
  return trafficPage(traffic, record, filterOf({ ...rest, ...(after === undefined ? {} : { after: String(after) }), ...(limit === undefined ? {} : { limit: String(limit) }) }));
}

export async function trafficApi(app: FastifyInstance, options: TrafficApiOptions): Promise<void> {
  const { traffic, probes, push, sandbox } = options;

  const existing = (name: string): SandboxRecord => {
    if (!isDnsLabel(name)) throw invalidField('name', 'must be a DNS-1123 label');
    const record = sandbox(name);
    if (record === undefined) throw new ControlPlaneError('LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${name} does not exist`);
    return record;
  };

  // Its own scope: the report parser applies to this route only.
  await app.register(async (scope) => {
    scope.addContentTypeParser(REPORT_CONTENT_TYPE, { parseAs: 'buffer', bodyLimit: REPORT_BODY_LIMIT }, parseReport);
    // A JSON report (an older sidecar, a hand-made request) gets 415 naming the format, not a schema error about `head`.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', (_request, _payload, done) => done(new ControlPlaneError('LANEWAY_ERR_UNSUPPORTED_MEDIA_TYPE', `reports are ${REPORT_CONTENT_TYPE}: a JSON head line, then one exchange per line`)));
    scope.post<{ Body: ParsedReport }>(
      REPORTS_PATH,
      {
        bodyLimit: REPORT_BODY_LIMIT,
        config: { access: 'report' },
        schema: {
          summary: "A sidecar's batch of captured exchanges and probe sightings",
          description: 'Sent by sidecars (sidecar or writer token) as application/x-ndjson: a head line {workload, sightings, dropped}, then one exchange per line, `sandbox` its first field (the body schema below is the head as parsed). Exchanges are kept only for sandboxes that capture and fork the reporting workload, checked when read; sightings only for active probes.',
          tags: ['traffic'],
          body: REPORT_SCHEMA,
          response: { 202: { type: 'object', properties: { accepted: { type: 'integer' }, ignored: { type: 'integer' } } }, ...ERRORS },
        },
      },
      async (request, reply) => {
        const { head, bySandbox, malformed, chars } = request.body;
        if (!isWorkloadName(head.workload)) throw invalidField('head.workload', 'must be <namespace>/<name>');
        let accepted = 0;
        let ignored = malformed;
        // A sidecar may only add to sandboxes that capture and fork its own workload.
        const capturing = (name: string): SandboxRecord | undefined => {
          const record = sandbox(name);
          return record !== undefined && record.spec.capture !== undefined && record.spec.forks.some((f) => f.workload === head.workload) ? record : undefined;
        };
        for (const [name, group] of bySandbox) {
          const record = capturing(name);
          if (record === undefined) {
            ignored += group.lines.length;
            continue;
          }
          // Lines are slices of the body: a sandbox with a small share of it gets copies, so its ring never keeps a
          // whole body alive for a few lines (a ring holds at most about twice its bytes).
          traffic.addExchanges(laneOf(record), name, head.workload, group.lines, group.chars * 2 < chars);
          accepted += group.lines.length;
        }
        for (const [name, count] of Object.entries(head.dropped)) {
          const record = capturing(name);
          if (record !== undefined && count > 0) traffic.addDropped(laneOf(record), head.workload, count);
        }
        for (const sighting of head.sightings) {
          if (sighting.workload === head.workload && probes.sighting(sighting)) accepted++;
          else ignored++;
        }
        reply.code(202);
        return { accepted, ignored };
      },
    );
  });

  app.get<{ Params: { name: string }; Querystring: QueryString }>(
    '/v1/sandboxes/:name/traffic',
    {
      schema: {
        summary: "A sandbox's captured traffic",
        description: 'Entries oldest first: the newest `limit` that match. Each has a `seq`; pass the last one as `after` to read on. Needs `spec.capture` on the sandbox.',
        tags: ['traffic'],
        querystring: TRAFFIC_QUERY,
        response: ERRORS,
      },
    },
    async (request) => {
      const record = existing(request.params.name);
      return trafficPage(traffic, record, filterOf(request.query));
    },
  );

  app.get<{ Params: { name: string }; Querystring: QueryString }>(
    '/v1/sandboxes/:name/traffic/stream',
    {
      schema: {
        summary: "Follow a sandbox's captured traffic (Server-Sent Events)",
        description: 'Events `exchange` and `dropped` (data: a traffic entry, id: its seq), `gap` when entries asked for with Last-Event-ID already left the ring. Resume with Last-Event-ID.',
        tags: ['traffic'],
        querystring: TRAFFIC_QUERY,
        response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...ERRORS },
      },
    },
    (request, reply) => {
      const record = existing(request.params.name);
      const filter = filterOf(request.query, request.headers['last-event-id']);
      reply.hijack();
      const res = reply.raw;
      request.raw.socket.setTimeout(0);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
      res.flushHeaders();
      traffic.follow(laneOf(record), res, filter);
    },
  );

  app.post<{ Body: { sandbox?: string } | undefined }>(
    '/v1/probes',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Start a propagation probe',
        description: 'Registers a probe key for a few seconds and announces it to every sidecar; send one request with `baggage` and `traceparent` as returned, then read GET /v1/probes/{id}.',
        tags: ['traffic'],
        body: { type: ['object', 'null'], additionalProperties: false, properties: { sandbox: { type: 'string', maxLength: 63 } } },
        response: ERRORS,
      },
    },
    async (request, reply) => {
      const name = request.body?.sandbox;
      if (name !== undefined) existing(name);
      const probe = probes.create(name ?? null);
      if (probe === null) throw new ControlPlaneError('LANEWAY_ERR_PROBES_BUSY');
      push.announce('probe', JSON.stringify({ id: probe.id, key: probe.key, traceId: probe.traceId, until: probe.until }), probe.until);
      reply.code(201);
      return {
        ...probe,
        baggage: `laneway=${probe.key}`,
        traceparent: `00-${probe.traceId}-${probe.id}-01`,
        watching: push.watchedWorkloads().sort(),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/probes/:id',
    {
      schema: {
        summary: "A probe's sightings",
        description: 'Which sidecars saw the probe request (with or without its key), and the workloads watched by a sidecar.',
        tags: ['traffic'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } } },
        response: ERRORS,
      },
    },
    async (request) => {
      const found = probes.get(request.params.id);
      if (found === undefined) throw new ControlPlaneError('LANEWAY_ERR_PROBE_NOT_FOUND');
      const record = found.probe.sandbox === null ? undefined : sandbox(found.probe.sandbox);
      return {
        probe: found.probe,
        sightings: [...found.sightings].sort((a, b) => a.at - b.at),
        watching: push.watchedWorkloads().sort(),
        forks: record === undefined ? [] : record.spec.forks.map((f) => f.workload),
      };
    },
  );
}
