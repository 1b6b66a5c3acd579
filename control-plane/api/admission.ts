// The sidecar-injection webhook: POST /v1/admission/mutate[/namespace] (AdmissionReview in, JSONPatch out), and its TLS listener.
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type {} from '../auth.js'; // the `config.access` route option
import { mutatePod, type InjectOptions, type OptIn } from '../admission.js';

export interface AdmissionRouteOptions {
  /** validated with `injectOptions()` at startup */
  readonly inject: InjectOptions;
}

/** The two webhook paths; deploy/webhook.yaml points one MutatingWebhook at each. */
export const ADMISSION_PATHS: Readonly<Record<OptIn, string>> = Object.freeze({
  annotation: '/v1/admission/mutate',
  namespace: '/v1/admission/mutate/namespace',
});

/**
 * A Pod AdmissionReview carries the whole pod (plus oldObject on updates); etcd caps an object at
 * 1.5 MiB, so the control plane's 64 KiB API body limit would reject large pods. 4 MiB covers both.
 */
const REVIEW_BODY_LIMIT = 4 * 1024 * 1024;

// Deliberately loose: a review we cannot read must still get `allowed: true` (mutatePod says why),
// not a 400 that the API server would log as a webhook failure.
const REVIEW_SCHEMA = {
  type: 'object',
  description: 'an admission.k8s.io/v1 AdmissionReview whose request is a Pod CREATE',
  properties: {
    apiVersion: { description: 'admission.k8s.io/v1' },
    kind: { description: 'AdmissionReview' },
    request: { description: 'uid, kind, namespace, operation, object (the Pod)' },
  },
  additionalProperties: true,
} as const;

const RESPONSE_SCHEMA = {
  type: 'object',
  required: ['apiVersion', 'kind', 'response'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    response: {
      type: 'object',
      required: ['uid', 'allowed'],
      properties: {
        uid: { type: 'string' },
        allowed: { type: 'boolean' },
        patchType: { type: 'string', enum: ['JSONPatch'] },
        patch: { type: 'string', description: 'base64 of the RFC 6902 JSON patch' },
        warnings: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

const DESCRIPTIONS: Readonly<Record<OptIn, string>> = {
  annotation: 'Injects the sidecar into pods annotated laneway.dev/inject: "true" (namespaces that did not opt in)',
  namespace: 'Injects the sidecar into every pod of a namespace labelled laneway.dev/inject=true (or enabled), unless annotated "false"',
};

export default async function admissionRoutes(app: FastifyInstance, opts: AdmissionRouteOptions): Promise<void> {
  const { inject } = opts;
  for (const optIn of ['annotation', 'namespace'] as const) {
    app.post(
      ADMISSION_PATHS[optIn],
      {
        bodyLimit: REVIEW_BODY_LIMIT,
        // The API server authenticates us by TLS, not by bearer token; and a patch reveals nothing
        // beyond the image and control-plane URL, so the route needs no token.
        config: { access: 'public' },
        schema: {
          summary: DESCRIPTIONS[optIn],
          tags: ['admission'],
          body: REVIEW_SCHEMA,
          response: { 200: RESPONSE_SCHEMA },
        },
      },
      async (request) => {
        const outcome = mutatePod(request.body, inject, optIn);
        const fields = { uid: outcome.review.response.uid, pod: outcome.pod, result: outcome.result, reason: outcome.reason };
        if (outcome.result === 'malformed') request.log.warn(fields, 'admission: not injected');
        else request.log.info(fields, outcome.result === 'injected' ? 'admission: injected' : 'admission: skipped');
        return outcome.review;
      },
    );
  }
}

export interface WebhookServerOptions {
  readonly host: string;
  readonly port: number;
  /** PEM files, e.g. a cert-manager Secret mounted as a volume */
  readonly certFile: string;
  readonly keyFile: string;
  readonly inject: InjectOptions;
  readonly logger: FastifyBaseLogger;
  /** how often the files are re-read; a renewed certificate is picked up without a restart */
  readonly reloadIntervalMs?: number;
}

/**
 * The HTTPS listener the API server calls (webhooks must be TLS). It serves only the admission
 * routes, so the sandbox API keeps its own listener and auth, and a certificate rotated in the
 * mounted Secret (the kubelet swaps the files) is loaded within `reloadIntervalMs`.
 */
export async function listenWebhook(options: WebhookServerOptions): Promise<FastifyInstance> {
  let cert = readFileSync(options.certFile);
  let key = readFileSync(options.keyFile);
  const app = Fastify({
    https: { cert, key },
    loggerInstance: options.logger,
    // each review is logged once, with its outcome, by the route
    logController: new LogController({ disableRequestLogging: true }),
  });
  await app.register(admissionRoutes, { inject: options.inject });
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onClose', async () => clearInterval(timer));
  await app.listen({ host: options.host, port: options.port });
  timer = setInterval(() => {
    try {
      const nextCert = readFileSync(options.certFile);
      const nextKey = readFileSync(options.keyFile);
      if (nextCert.equals(cert) && nextKey.equals(key)) return;
      (app.server as import('node:https').Server).setSecureContext({ cert: nextCert, key: nextKey });
      cert = nextCert;
      key = nextKey;
      app.log.info({ certFile: options.certFile }, 'webhook certificate reloaded');
    } catch (err) {
      // Mid-rotation the pair can be inconsistent for a moment; keep serving the old one and retry.
      app.log.warn({ err }, 'webhook certificate reload failed; keeping the current one');
    }
  }, options.reloadIntervalMs ?? 60_000);
  timer.unref();
  return app;
}
