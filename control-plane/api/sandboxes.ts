// The sandbox API: PUT (create-or-replace), GET one, GET all, DELETE, under /v1/sandboxes.
import { CAPTURE_BODY_MAX_BYTES, CAPTURE_MAX_REDACTED } from '../../model/capture.js';
import type { FastifyInstance } from 'fastify';
import { isDnsLabel, ROUTING_KEY_RULE } from '../../core/names.js';
import type { TargetPolicy } from '../../model/allow-targets.js';
import type { SelfAddress } from '../../model/target-guard.js';
import { ControlPlaneError, ERROR_SCHEMA, invalidField } from '../../model/api-errors.js';
import type { TargetHealth } from '../probe.js';
import { mayReadDetails } from '../auth.js';
import type { Registry } from '../registry.js';
import { LIMITS, validateSpec, type SandboxSpec } from '../spec.js';
import type { SandboxRecord } from '../storage.js';

/** Where a target's health comes from: the TCP prober, or for a `local` target its lane. */
export interface TargetHealthSource {
  health(target: string, record: SandboxRecord): TargetHealth;
}

export interface SandboxesOptions {
  readonly registry: Registry;
  readonly prober: TargetHealthSource;
  /** a writer ended its local lane on purpose (DELETE …/lane), or the sandbox is gone; undefined without a relay */
  readonly releaseLane: ((name: string) => void) | undefined;
  /** whether `local` fork targets are accepted (a lane relay is configured) */
  readonly lanes: boolean;
  readonly policy: TargetPolicy | null;
  /** the control plane's own listeners, read at apply time (port 0 is only known once listening) */
  readonly self: () => readonly SelfAddress[];
}

export type Phase = 'Ready' | 'Pending';

export interface TargetStatus {
  readonly workload: string;
  readonly port: string;
  readonly target: string;
  readonly ready: boolean;
  readonly reason: string | null;
  readonly checkedAt: string | null;
}

/** The resource as clients see it: what they asked for (`spec`) and what the server made of it (`status`). */
export interface SandboxResource {
  readonly name: string;
  readonly spec: SandboxSpec;
  readonly status: {
    readonly routingKey: string;
    readonly revision: number;
    readonly createdAt: string;
    readonly updatedAt: string;
    readonly expiresAt: string | null;
    readonly phase: Phase;
    readonly targets: readonly TargetStatus[];
  };
}

/**
 * Why a target is not ready (`ECONNREFUSED`, `connect timeout`) tells a port scanner what listens where,
 * so readers get only this; writers (who can point a fork anywhere anyway) and the log get the detail.
 */
export const COARSE_NOT_READY = 'not ready';

export function toResource(record: SandboxRecord, prober: TargetHealthSource, detailed = true): SandboxResource {
  const targets: TargetStatus[] = [];
  for (const fork of record.spec.forks) {
    for (const [port, target] of Object.entries(fork.targets)) {
      const health = prober.health(target, record);
      targets.push({
        workload: fork.workload,
        port,
        target,
        ready: health.ready,
        reason: detailed || health.reason === null ? health.reason : COARSE_NOT_READY,
        checkedAt: health.checkedAt === null ? null : new Date(health.checkedAt).toISOString(),
      });
    }
  }
  return {
    name: record.name,
    spec: record.spec,
    status: {
      routingKey: record.routingKey,
      revision: record.revision,
      createdAt: new Date(record.createdAt).toISOString(),
      updatedAt: new Date(record.updatedAt).toISOString(),
      expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
      phase: targets.every((t) => t.ready) ? 'Ready' : 'Pending',
      targets,
    },
  };
}

// Schemas check shapes (and feed the OpenAPI document); validateSpec checks meaning with the route
// model's own validators, so names and targets have exactly one definition.
const TARGETS_SCHEMA = {
  type: 'object',
  description: 'app port (decimal) → host:port of the fork (spoken to in the app port\'s protocol), h2c://host:port or http://host:port (the fork\'s own protocol), or "local"',
  additionalProperties: { type: 'string', maxLength: 300 },
} as const;

/** The shape of `spec` (clients derive their own input schemas from it: cli/mcp.ts). */
export const SPEC_SCHEMA = {
  type: 'object',
  required: ['forks'],
  additionalProperties: false,
  properties: {
    routingKey: { type: 'string', maxLength: 64, description: `${ROUTING_KEY_RULE}; generated (20 base32 characters) when absent` },
    ttl: { type: 'string', maxLength: 32, description: 'the sandbox is deleted this long after its last apply, e.g. 2h' },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 63 } },
    capture: {
      type: 'object',
      description: 'record what the sidecars route to this sandbox (GET /v1/sandboxes/{name}/traffic); authorization, cookie, set-cookie and proxy-authorization are always redacted in the sidecar',
      additionalProperties: false,
      properties: {
        bodyBytes: { type: 'integer', minimum: 0, maximum: CAPTURE_BODY_MAX_BYTES, description: 'keep the first this many bytes of each body (default 0: headers only)' },
        redactHeaders: { type: 'array', maxItems: CAPTURE_MAX_REDACTED, items: { type: 'string', maxLength: 128 }, description: 'more header names to redact' },
      },
    },
    forks: {
      type: 'array',
      maxItems: LIMITS.maxForks,
      items: {
        type: 'object',
        required: ['workload', 'targets'],
        additionalProperties: false,
        properties: {
          workload: { type: 'string', maxLength: 127, description: 'the baseline workload this fork stands in for: <namespace>/<name>' },
          targets: TARGETS_SCHEMA,
        },
      },
    },
  },
} as const;

const NAME_PARAMS = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 63, description: 'sandbox name (DNS-1123 label)' } },
} as const;

const NULLABLE_STRING = { type: ['string', 'null'] } as const;

export const SANDBOX_SCHEMA = {
  type: 'object',
  required: ['name', 'spec', 'status'],
  properties: {
    name: { type: 'string' },
    spec: SPEC_SCHEMA,
    status: {
      type: 'object',
      properties: {
        routingKey: { type: 'string' },
        revision: { type: 'integer', description: 'global revision of the sandbox\'s last change' },
        createdAt: { type: 'string', format: 'date-time' },
        updatedAt: { type: 'string', format: 'date-time' },
        expiresAt: NULLABLE_STRING,
        phase: { type: 'string', enum: ['Ready', 'Pending'], description: 'Ready when every fork target accepts TCP connections' },
        targets: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              workload: { type: 'string' },
              port: { type: 'string' },
              target: { type: 'string' },
              ready: { type: 'boolean' },
              reason: NULLABLE_STRING,
              checkedAt: NULLABLE_STRING,
            },
          },
        },
      },
    },
  },
} as const;

const ERRORS = { '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA } as const;

function checkName(name: string): void {
  if (!isDnsLabel(name)) throw invalidField('name', 'must be a DNS-1123 label (lowercase letters, digits and -, at most 63)');
}

export async function sandboxesApi(app: FastifyInstance, { registry, prober, policy, self, releaseLane, lanes }: SandboxesOptions): Promise<void> {
  app.put<{ Params: { name: string }; Body: { name?: string; spec: unknown } }>(
    '/v1/sandboxes/:name',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Create or replace a sandbox',
        description:
          'Idempotent: the same spec again changes nothing (no revision, no push) but renews the TTL. The `Laneway-Apply` response header says created, configured or unchanged.',
        tags: ['sandboxes'],
        params: NAME_PARAMS,
        body: {
          type: 'object',
          required: ['spec'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', description: 'optional; must equal the name in the URL' },
            spec: SPEC_SCHEMA,
            status: { type: 'object', description: 'ignored (server-owned), accepted so a fetched sandbox can be re-applied' },
          },
        },
        response: { 200: SANDBOX_SCHEMA, 201: SANDBOX_SCHEMA, ...ERRORS },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      checkName(name);
      if (request.body.name !== undefined && request.body.name !== name) {
        throw invalidField('name', `the body names ${request.body.name} but the URL names ${name}`);
      }
      const valid = validateSpec(name, request.body.spec, policy, self(), lanes);
      const { record, result } = await registry.apply(name, valid, Date.now());
      if (result !== 'unchanged') request.log.info({ sandbox: name, revision: record.revision, result }, 'sandbox applied');
      reply.code(result === 'created' ? 201 : 200).header('laneway-apply', result);
      return toResource(record, prober, mayReadDetails(request));
    },
  );

  app.get(
    '/v1/sandboxes',
    {
      schema: {
        summary: 'List sandboxes',
        tags: ['sandboxes'],
        response: {
          200: {
            type: 'object',
            properties: { revision: { type: 'integer' }, items: { type: 'array', items: SANDBOX_SCHEMA } },
          },
          ...ERRORS,
        },
      },
    },
    async (request) => ({ revision: registry.revision, items: registry.list().map((r) => toResource(r, prober, mayReadDetails(request))) }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/sandboxes/:name',
    { schema: { summary: 'Get a sandbox', tags: ['sandboxes'], params: NAME_PARAMS, response: { 200: SANDBOX_SCHEMA, ...ERRORS } } },
    async (request) => {
      checkName(request.params.name);
      const record = registry.get(request.params.name);
      if (record === undefined) throw notFound(request.params.name);
      return toResource(record, prober, mayReadDetails(request));
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/sandboxes/:name',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Delete a sandbox',
        description: 'Its routes are removed from every workload it forked (a `delete` event on each).',
        tags: ['sandboxes'],
        params: NAME_PARAMS,
        response: {
          200: { type: 'object', properties: { name: { type: 'string' }, revision: { type: 'integer' } } },
          ...ERRORS,
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      checkName(name);
      const revision = await registry.delete(name);
      releaseLane?.(name);
      request.log.info({ sandbox: name, revision }, 'sandbox deleted');
      return { name, revision };
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/sandboxes/:name/lane',
    {
      config: { access: 'write' },
      schema: {
        summary: "End a sandbox's local lane",
        description:
          'What `laneway connect` calls when it stops on purpose: the tunnel is closed and the lane forgets its owner, so another laptop may connect it. ' +
          'Connecting is an HTTP/1.1 Upgrade (`upgrade: laneway-lane`) of `GET` on this path (README "Run your change locally").',
        tags: ['sandboxes'],
        params: NAME_PARAMS,
        response: { 204: { type: 'null' }, ...ERRORS },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      checkName(name);
      if (releaseLane === undefined) throw new ControlPlaneError('LANEWAY_ERR_LANES_OFF');
      if (registry.get(name) === undefined) throw notFound(name);
      releaseLane(name);
      reply.code(204);
    },
  );
}

function notFound(name: string): ControlPlaneError {
  return new ControlPlaneError('LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${name} does not exist`, 'name');
}
