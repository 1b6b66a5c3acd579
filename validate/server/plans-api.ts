// The plans API: store tagged plan versions, list them, run one server-side and keep its result, under /v1/plans and /v1/runs.
// A control-plane extension (cli/server.ts composes it): it reaches the control plane only through PlansServices.
import type { FastifyError, FastifyInstance } from 'fastify';
import type { TrafficPage, TrafficQuery } from '../../model/capture.js';
import type { Logger } from 'pino';
import { ConfigError } from '../../core/errors.js';
import { isDnsLabel } from '../../core/names.js';
import { LATEST, MAX_RUNS, RUNS_PAGE_DEFAULT, RUNS_PAGE_MAX, type PlanStorage, type PlanVersion, type PutResult, type RunStatus } from '../../model/plans.js';
import { ValidateError, PLANS_ERROR_SCHEMA } from '../errors.js';
import { invalidField } from '../../model/api-errors.js';
import type { Plan, ParamSpec } from '../plan.js';
import type { Policy } from '../policy.js';
import type { RunResult } from '../runner.js';
import { toView, type SandboxResource, type Sandboxes } from '../actions/wait.js';
import { Runs } from './runs.js';

/** What the control plane hands its extensions. */
export interface PlansServices {
  /** plan and run storage, in the control plane's store */
  readonly plans: PlanStorage;
  /** a sandbox as GET /v1/sandboxes/:name shows it, from the control plane's own registry (no HTTP round trip) */
  sandbox(name: string): SandboxResource | undefined;
  /** `--policy`: every server-side run is checked against it before its first step */
  readonly policyFile: string | undefined;
  /** a sandbox's captured traffic (the `traffic` action), from the control plane's own ring */
  traffic(name: string, query: TrafficQuery): TrafficPage | undefined;
  /** a run started or finished: open web consoles are told (GET /v1/events `run`) */
  runChanged(id: string, status: RunStatus): void;
}

/** One version in GET /v1/plans: what a caller needs to choose a plan (skill) and fill its parameters. */
export interface PlanVersionSummary {
  readonly version: string;
  readonly tags: readonly string[];
  readonly createdAt: string;
  readonly description: string | null;
  readonly whenToUse: string | null;
  readonly params: Readonly<Record<string, ParamSpec>>;
}

/** One plan in GET /v1/plans. */
export interface PlanSummary {
  readonly name: string;
  /** tag → version */
  readonly tags: Readonly<Record<string, string>>;
  readonly versions: readonly PlanVersionSummary[];
}

/** PUT /v1/plans/:name answers the stored version and what storing it did. */
export type StoredVersion = PlanVersion<Plan> & { readonly result: Exclude<PutResult, 'conflict'> };

const ERRORS = { '4xx': PLANS_ERROR_SCHEMA, '5xx': PLANS_ERROR_SCHEMA } as const;
const TAG = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$', not: { const: LATEST } } as const;
const NAME_PARAMS = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 63, description: 'plan name (DNS-1123 label)' } },
} as const;
const ANY_OBJECT = { type: 'object', additionalProperties: true } as const;

const VERSION_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'tags', 'createdAt', 'plan'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    plan: { ...ANY_OBJECT, description: 'the plan document (README "Plan format")' },
  },
} as const;

const SUMMARY_VERSION_SCHEMA = {
  type: 'object',
  properties: {
    version: { type: 'string' },
    tags: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    description: { type: ['string', 'null'] },
    whenToUse: { type: ['string', 'null'] },
    params: { ...ANY_OBJECT, description: 'name → {type, default?, description?, enum?}' },
  },
} as const;

export const RUN_SCHEMA = {
  type: 'object',
  required: ['id', 'plan', 'version', 'status', 'createdAt'],
  properties: {
    id: { type: 'string' },
    plan: { type: 'string' },
    version: { type: 'string' },
    sandbox: { type: ['string', 'null'] },
    status: { type: 'string', enum: ['running', 'passed', 'failed', 'error'] },
    createdAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: ['string', 'null'] },
    result: { anyOf: [{ type: 'null' }, { ...ANY_OBJECT, description: 'the run result: verdict, summary, per-step inputs, outputs, assertions, timing, diffs' }] },
    error: { anyOf: [{ type: 'null' }, { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } }] },
  },
} as const;

function checkName(name: string): void {
  if (!isDnsLabel(name)) throw new ValidateError('LANEWAY_ERR_PLAN_INVALID', 'name: must be a DNS-1123 label', 'name');
}

function planNotFound(name: string, ref: string): ValidateError {
  return new ValidateError('LANEWAY_ERR_PLAN_NOT_FOUND', ref === LATEST ? `plan ${name} does not exist` : `plan ${name} has no version or tag ${ref}`, 'name');
}

// Plan validation (Ajv, JSONPath) loads on first use: every control plane start, the e2e suites'
// dozens included, would otherwise pay for it.
const validation = (): Promise<typeof import('../plan.js')> => import('../plan.js');

/**
 * Server-side runs send requests from the control plane's network position, on behalf of anyone with
 * a writer token. Without `--policy` they may therefore reach loopback only, with modest load limits:
 * reaching cluster hosts is a decision the platform team makes explicitly in a policy file.
 */
export const DEFAULT_SERVER_POLICY = Object.freeze({
  hosts: ['127.0.0.0/8', '::1', 'localhost'],
  maxTimeout: '60s',
  load: { maxRequests: 2000, maxRate: 200, maxDuration: '60s', maxConnections: 16 },
});
const DEFAULT_POLICY_SOURCE = 'the built-in default policy (loopback hosts only; start the control plane with --policy to allow others)';

/** Registers the plans API on the control plane's Fastify instance (its own context: own error handler). */
export async function plansExtension(app: FastifyInstance, services: PlansServices): Promise<void> {
  await app.register(plansApi, services);
}

async function plansApi(app: FastifyInstance, { plans: storage, sandbox, policyFile, traffic, runChanged }: PlansServices): Promise<void> {
  let policy: Policy | null = null;
  if (policyFile !== undefined) {
    try {
      policy = (await import('../policy.js')).loadPolicy(policyFile);
    } catch (err) {
      throw new ConfigError('--policy', (err as Error).message);
    }
  }
  // The default is compiled on first use, like the rest of validation (startup stays cheap).
  const serverPolicy = async (): Promise<Policy> =>
    (policy ??= (await import('../policy.js')).compilePolicy(DEFAULT_SERVER_POLICY, DEFAULT_POLICY_SOURCE));
  // Documents went in validated (PUT below), so they come back as plans and run results.
  const plans = storage as PlanStorage<Plan, RunResult>;
  const abandoned = plans.abandonRunning(Date.now(), { code: 'LANEWAY_ERR_RUN_ABORTED', message: 'the control plane stopped during the run' });
  if (abandoned > 0) app.log.warn({ runs: abandoned }, 'runs interrupted by the last shutdown marked as errors');

  const sandboxes: Sandboxes = {
    get: async (name) => {
      const resource = sandbox(name);
      return resource === undefined ? undefined : toView(resource);
    },
    traffic: async (name, query) => traffic(name, query),
  };
  const runs = new Runs(plans, sandboxes, app.log as Logger, runChanged);
  app.addHook('preClose', () => runs.stopAll());

  // Our codes (plans, params, policy) answered in the shared body shape; anything else goes to the
  // control plane's handler (Fastify passes an error thrown here to the parent context's handler).
  app.setErrorHandler((err: FastifyError | ValidateError, _request, reply) => {
    if (!(err instanceof ValidateError)) throw err;
    reply.code(err.status === 0 ? 500 : err.status).type('application/json; charset=utf-8').send(err.toBody());
  });

  app.put<{ Params: { name: string }; Body: { plan: unknown; tags?: string[] } }>(
    '/v1/plans/:name',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Store a plan version with tags',
        description:
          'Idempotent per version: the same content again stores nothing (tags are still moved to it); the same version with different content is a 409. A tag names one version per plan: tagging a version moves the tag from any other.',
        tags: ['plans'],
        params: NAME_PARAMS,
        body: {
          type: 'object',
          required: ['plan'],
          additionalProperties: false,
          properties: {
            plan: { ...ANY_OBJECT, description: 'the plan document; its name must equal the name in the URL' },
            tags: { type: 'array', maxItems: 20, uniqueItems: true, items: TAG },
          },
        },
        response: {
          200: { ...VERSION_SCHEMA, properties: { ...VERSION_SCHEMA.properties, result: { type: 'string', enum: ['unchanged', 'tagged'] } } },
          201: { ...VERSION_SCHEMA, properties: { ...VERSION_SCHEMA.properties, result: { type: 'string', enum: ['created'] } } },
          ...ERRORS,
        },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      checkName(name);
      const { canonicalJson, validatePlan } = await validation();
      let plan: Plan;
      try {
        plan = validatePlan(request.body.plan);
      } catch (err) {
        if (err instanceof ValidateError && err.field !== undefined) {
          throw new ValidateError('LANEWAY_ERR_PLAN_INVALID', `plan.${err.message}`, `plan.${err.field}`);
        }
        throw err;
      }
      if (plan.name !== name) throw new ValidateError('LANEWAY_ERR_PLAN_INVALID', `plan.name: the plan is named ${plan.name} but the URL names ${name}`, 'plan.name');
      const { result, version } = plans.put(plan.name, plan.version, plan, canonicalJson(plan), request.body.tags ?? [], Date.now());
      if (result === 'conflict' || version === undefined) {
        throw new ValidateError(
          'LANEWAY_ERR_PLAN_VERSION_CONFLICT',
          `plan ${plan.name} version ${plan.version} is already stored with different content; bump version to store a change`,
          'plan.version',
        );
      }
      if (result !== 'unchanged') request.log.info({ plan: name, version: plan.version, result }, 'plan stored');
      reply.code(result === 'created' ? 201 : 200);
      return { ...version, result };
    },
  );

  app.get(
    '/v1/plans',
    {
      schema: {
        summary: 'List plans, their versions and tags',
        tags: ['plans'],
        response: {
          200: {
            type: 'object',
            properties: {
              items: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    tags: { type: 'object', additionalProperties: { type: 'string' }, description: 'tag → version' },
                    versions: { type: 'array', items: SUMMARY_VERSION_SCHEMA },
                  },
                },
              },
            },
          },
          ...ERRORS,
        },
      },
    },
    async (): Promise<{ items: PlanSummary[] }> => ({
      items: plans.list().map((p) => ({
        name: p.name,
        tags: p.tags,
        versions: p.versions.map((v) => ({
          version: v.version,
          tags: v.tags,
          createdAt: v.createdAt,
          description: v.plan.description ?? null,
          whenToUse: v.plan.whenToUse ?? null,
          params: v.plan.params ?? {},
        })),
      })),
    }),
  );

  app.get<{ Params: { name: string; ref: string } }>(
    '/v1/plans/:name/versions/:ref',
    {
      schema: {
        summary: 'Get a plan version by version, tag or `latest`',
        tags: ['plans'],
        params: {
          type: 'object',
          required: ['name', 'ref'],
          properties: { name: NAME_PARAMS.properties.name, ref: { type: 'string', maxLength: 64, description: 'a version, a tag, or latest' } },
        },
        response: { 200: VERSION_SCHEMA, ...ERRORS },
      },
    },
    async (request) => {
      checkName(request.params.name);
      const version = plans.get(request.params.name, request.params.ref);
      if (version === undefined) throw planNotFound(request.params.name, request.params.ref);
      return version;
    },
  );

  app.post<{ Params: { name: string }; Body: { version?: string; sandbox?: string; params?: Record<string, unknown>; wait?: boolean } }>(
    '/v1/plans/:name/runs',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Run a plan server-side',
        description: [
          'Parameters, sandbox and policy are checked first: a plan that cannot run (400), names an unknown sandbox (404) or breaks the policy (403) is refused and nothing is sent.',
          'Otherwise the run starts and is stored: 202 with status running, or with wait=true the finished run (200).',
          'Poll GET /v1/runs/:id for the result.',
        ].join(' '),
        tags: ['plans'],
        params: NAME_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            version: { type: 'string', maxLength: 64, description: 'a version or tag (default: latest)' },
            sandbox: { type: 'string', maxLength: 63, description: 'the sandbox whose routing key sandbox-context requests carry' },
            params: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
            wait: { type: 'boolean', description: 'answer when the run has finished (default false)' },
          },
        },
        response: { 200: RUN_SCHEMA, 202: RUN_SCHEMA, ...ERRORS },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      checkName(name);
      const ref = request.body.version ?? LATEST;
      const stored = plans.get(name, ref);
      if (stored === undefined) throw planNotFound(name, ref);
      const { id, done } = await runs.start({ stored, sandbox: request.body.sandbox, params: request.body.params ?? {}, policy: await serverPolicy() });
      if (request.body.wait === true) {
        await done;
        reply.code(200);
      } else {
        reply.code(202);
      }
      return runs.get(id);
    },
  );

  const { result: _result, ...summaryProperties } = RUN_SCHEMA.properties;
  app.get<{ Querystring: { plan?: string; sandbox?: string; status?: RunStatus; limit?: string; after?: string } }>(
    '/v1/runs',
    {
      schema: {
        summary: 'List runs, newest first',
        description: `Filters: plan, sandbox, status. Paging: at most \`limit\` runs (default ${RUNS_PAGE_DEFAULT}, at most ${RUNS_PAGE_MAX}); \`next\` is the cursor to pass as \`after\` for the following page (null on the last). Items carry the verdict but not the result (GET /v1/runs/:id has it).`,
        tags: ['plans'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            plan: { type: 'string', maxLength: 63 },
            sandbox: { type: 'string', maxLength: 63 },
            status: { type: 'string', enum: ['running', 'passed', 'failed', 'error'] },
            limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
            after: { type: 'string', pattern: '^[0-9]{1,15}\\.[0-9]{1,15}$' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: { type: 'object', properties: { ...summaryProperties, verdict: { type: ['string', 'null'] } } } },
              next: { type: ['string', 'null'] },
            },
          },
          ...ERRORS,
        },
      },
    },
    async (request) => {
      const { plan, sandbox, status, limit, after } = request.query;
      const size = limit === undefined ? RUNS_PAGE_DEFAULT : Number(limit);
      if (size < 1 || size > RUNS_PAGE_MAX) throw invalidField('limit', `must be between 1 and ${RUNS_PAGE_MAX}`);
      return plans.listRuns({ ...(plan === undefined ? {} : { plan }), ...(sandbox === undefined ? {} : { sandbox }), ...(status === undefined ? {} : { status }) }, size, after);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/runs/:id/cancel',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Cancel a running run',
        description: 'Its steps stop at once (a load step included); answers the run once its outcome is stored: status error, code LANEWAY_ERR_RUN_CANCELLED, the partial result kept. 409 when it has already finished.',
        tags: ['plans'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: RUN_SCHEMA, ...ERRORS },
      },
    },
    async (request) => runs.cancel(request.params.id),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/runs/:id',
    {
      schema: {
        summary: 'Get a run: its status and, once finished, its result',
        tags: ['plans'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: RUN_SCHEMA, ...ERRORS },
      },
    },
    async (request) => {
      const run = plans.getRun(request.params.id);
      if (run === undefined) throw new ValidateError('LANEWAY_ERR_RUN_NOT_FOUND', `run ${request.params.id} does not exist (only the last ${MAX_RUNS} runs are kept)`, 'id');
      return run;
    },
  );
}
