// Operational endpoints: /healthz, /metrics (Prometheus) and the OpenAPI document at /openapi.json.
import type { FastifyInstance } from 'fastify';
import { ERROR_SCHEMA } from '../../model/api-errors.js';
import type { Metrics } from '../metrics.js';
import type { Push } from '../push.js';
import type { Registry } from '../registry.js';
import type { Leadership } from '../leadership.js';

export interface SystemOptions {
  readonly registry: Registry;
  readonly push: Push;
  readonly metrics: Metrics;
  readonly leadership: Leadership;
  /** `sqlite` or `etcd` */
  readonly store: string;
}

export async function systemApi(app: FastifyInstance, { registry, push, metrics, leadership, store }: SystemOptions): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Liveness: the store is open and the API answers',
        tags: ['system'],
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['ok'] },
              revision: { type: 'integer' },
              sandboxes: { type: 'integer' },
              watchers: { type: 'integer' },
              store: { type: 'string', enum: ['sqlite', 'etcd'] },
              leader: { type: 'boolean', description: 'this replica runs the TTL sweeper and the prober (always true on SQLite)' },
            },
          },
        },
      },
    },
    async () => ({ status: 'ok', revision: registry.revision, sandboxes: registry.size, watchers: push.watcherCount, store, leader: leadership.leading }),
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (needs a reader token when tokens are configured)',
        tags: ['system'],
        response: {
          200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
          '4xx': ERROR_SCHEMA,
        },
      },
    },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );

  app.get(
    '/openapi.json',
    {
      config: { access: 'public' },
      schema: { summary: 'This API as an OpenAPI 3.1 document', tags: ['system'], response: { 200: { type: 'object', additionalProperties: true } } },
    },
    async (_request, reply) => {
      reply.type('application/json; charset=utf-8');
      return JSON.stringify(app.swagger());
    },
  );
}
