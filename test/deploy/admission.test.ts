// Injection webhook: golden JSONPatches for real AdmissionReview fixtures, idempotency, opt-out, malformed input, and the Fastify route.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import jsonpatch from 'fast-json-patch';
import { Pod } from 'kubernetes-models/v1/Pod';
import { injectOptions, mutatePod, protocolFromPortName, type AdmissionOutcome, type OptIn } from '../../control-plane/admission.js';
import { AS_CLIENT, H2C, HTTP1 } from '../../proxy/protocols.js';
import admissionRoutes, { ADMISSION_PATHS } from '../../control-plane/api/admission.js';
import { parseSidecarConfig } from '../../proxy/config.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const review = (name: string): any => JSON.parse(readFileSync(here(`fixtures/reviews/${name}.json`), 'utf8'));

const OPTIONS = injectOptions({
  image: 'registry.example.com/laneway:0.1.0',
  controlPlaneUrl: 'http://laneway-control-plane.laneway-system.svc:7070',
});

/** The pod as the API server would store it: our patch applied by an independent RFC 6902 implementation. */
function applied(input: any, outcome: AdmissionOutcome): any {
  const patch = JSON.parse(Buffer.from(outcome.review.response.patch as string, 'base64').toString('utf8'));
  expect(patch).toEqual(outcome.patch);
  // validate=true: an `add` to `/spec/initContainers/-` on a pod without the array would throw here, as it fails in the API server.
  return jsonpatch.applyPatch(structuredClone(input.request.object), patch, true).newDocument;
}

function sidecarArgs(pod: any): string[] {
  return pod.spec.containers.find((c: any) => c.name === 'laneway-sidecar').args;
}

const GOLDEN: readonly [fixture: string, optIn: OptIn][] = [
  ['deployment-one-port', 'annotation'],
  ['deployment-two-ports', 'annotation'],
  ['namespace-opt-in', 'namespace'],
  ['workload-annotation', 'annotation'],
  ['app-protocols', 'annotation'],
];

describe('mutatePod golden patches', () => {
  for (const [fixture, optIn] of GOLDEN) {
    it(`${fixture} (${optIn} opt-in) → test/deploy/golden/${fixture}.patch.json`, () => {
      const input = review(fixture);
      const outcome = mutatePod(input, OPTIONS, optIn);
      expect(outcome.result, outcome.reason).toBe('injected');
      expect(outcome.review.response).toMatchObject({ uid: input.request.uid, allowed: true, patchType: 'JSONPatch' });
      const goldenFile = here(`golden/${fixture}.patch.json`);
      const actual = `${JSON.stringify(outcome.patch, null, 2)}\n`;
      // UPDATE_GOLDEN=1 rewrites the files; review the diff before committing it. A missing file fails.
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenFile, actual);
      expect(existsSync(goldenFile), `${goldenFile} is missing; run with UPDATE_GOLDEN=1`).toBe(true);
      expect(actual).toBe(readFileSync(goldenFile, 'utf8'));

      // The patched pod is a valid Kubernetes Pod, and the sidecar accepts the arguments we gave it.
      const pod = applied(input, outcome);
      expect(() => new Pod(pod).validate()).not.toThrow();
      const config = parseSidecarConfig(sidecarArgs(pod).slice(1), {});
      expect(config.listenHost).toBe('0.0.0.0');
      expect(config.admin).toEqual({ host: '0.0.0.0', port: 15000 });
      expect(config.controlPlane).toBe(OPTIONS.controlPlaneUrl);
    });
  }

  it('derives the Deployment from the ReplicaSet owner and maps every TCP port, sorted, to its own sidecar port', () => {
    const one = applied(review('deployment-one-port'), mutatePod(review('deployment-one-port'), OPTIONS));
    expect(sidecarArgs(one)).toEqual(expect.arrayContaining(['--workload', 'default/orders', '--port', '15001:8080/http1']));
    const init = one.spec.initContainers.find((c: any) => c.name === 'laneway-redirect');
    expect(init.args).toEqual(['15001:8080']);

    const twoReview = review('deployment-two-ports');
    const two = applied(twoReview, mutatePod(twoReview, OPTIONS));
    const config = parseSidecarConfig(sidecarArgs(two).slice(1), {});
    expect(config.workload).toBe('shop/checkout');
    // 8080 and 9090 from two containers; UDP 53 is not routed; the existing init container runs first.
    // Port names give the protocols: `grpc` → h2c, `http` → HTTP/1.1 (Istio's convention).
    expect(config.ports).toEqual([{ listenPort: 15001, appPort: 8080, protocol: H2C }, { listenPort: 15002, appPort: 9090, protocol: HTTP1 }]);
    expect(two.spec.initContainers.map((c: any) => c.name)).toEqual(['migrate', 'laneway-redirect']);
    expect(two.spec.initContainers[1].args).toEqual(['15001:8080', '15002:9090']);
    // The app keeps its place as the first container (the default of kubectl logs/exec).
    expect(two.spec.containers.map((c: any) => c.name)).toEqual(['checkout', 'grpc-gateway', 'laneway-sidecar']);
  });

  it('runs the sidecar as the fixed non-root uid and only the init container with NET_ADMIN', () => {
    const pod = applied(review('deployment-one-port'), mutatePod(review('deployment-one-port'), OPTIONS));
    const sidecar = pod.spec.containers.at(-1);
    expect(sidecar.securityContext).toMatchObject({ runAsUser: 15100, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 15000 });
    expect(sidecar.resources.requests).toBeDefined();
    expect(sidecar.resources.limits).toBeDefined();
    const init = pod.spec.initContainers.at(-1);
    expect(init.command).toEqual(['/usr/local/bin/laneway-redirect']);
    expect(init.securityContext.capabilities).toEqual({ add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  });

  it('skips a sidecar port the app already uses', () => {
    const input = review('deployment-one-port');
    input.request.object.spec.containers[0].ports.push({ containerPort: 15001 });
    const outcome = mutatePod(input, OPTIONS);
    expect(sidecarArgs(applied(input, outcome))).toEqual(expect.arrayContaining(['--port', '15002:8080/http1', '--port', '15003:15001']));
  });

  it('derives each port\'s protocol: laneway.dev/app-protocols (appProtocol values) first, then the port name\'s prefix', () => {
    const input = review('app-protocols');
    const pod = applied(input, mutatePod(input, OPTIONS));
    const config = parseSidecarConfig(sidecarArgs(pod).slice(1), {});
    expect(config.ports.map((p) => [p.appPort, p.protocol])).toEqual([
      [8080, H2C], // annotation `grpc` wins over the name `http-web`
      [8081, AS_CLIENT], // `grpc-web` is HTTP/1.1-compatible: left as the client speaks
      [9000, AS_CLIENT], // annotation names no protocol we translate: wins over the name `h2c`
      [9100, H2C], // annotation `kubernetes.io/h2c`
      [9200, H2C], // name `http2-api`
    ]);
    // The redirect init container takes plain <sidecarPort>:<appPort> pairs.
    expect(pod.spec.initContainers.at(-1).args).toEqual(['15001:8080', '15002:8081', '15003:9000', '15004:9100', '15005:9200']);
  });

  it.each(['8080', '8080=', '=h2c', 'x=h2c', '70000=h2c', '8080:h2c'])('refuses to inject with a malformed laneway.dev/app-protocols %j, with a warning', (value) => {
    const input = review('app-protocols');
    input.request.object.metadata.annotations['laneway.dev/app-protocols'] = value;
    const outcome = mutatePod(input, OPTIONS);
    expect(outcome).toMatchObject({ result: 'malformed', patch: [] });
    expect(outcome.review.response.warnings?.[0]).toMatch(/laneway\.dev\/app-protocols must be <port>=<appProtocol>/);
  });

  it.each([
    ['grpc', 'h2c'],
    ['grpc-api', 'h2c'],
    ['h2c-internal', 'h2c'],
    ['http2', 'h2c'],
    ['http', 'http1'],
    ['http-web', 'http1'],
    ['grpc-web', undefined],
    ['grpcx', undefined],
    ['https', undefined],
    ['tcp-db', undefined],
  ])('port name %j → %s', (name, protocol) => {
    expect(protocolFromPortName(name)).toBe(protocol);
  });

  it('passes a reader token from a Secret when configured', () => {
    const withToken = injectOptions({ ...OPTIONS, tokenSecret: 'laneway-sidecar-token' });
    const pod = applied(review('deployment-one-port'), mutatePod(review('deployment-one-port'), withToken));
    expect(pod.spec.containers.at(-1).env).toEqual([
      { name: 'LANEWAY_TOKEN', valueFrom: { secretKeyRef: { name: 'laneway-sidecar-token', key: 'token' } } },
    ]);
  });
});

describe('mutatePod idempotency and opt-out', () => {
  it('leaves an already injected pod alone (the patched pod fed back yields no patch)', () => {
    const input = review('deployment-one-port');
    const pod = applied(input, mutatePod(input, OPTIONS));
    input.request.object = pod;
    for (const optIn of ['annotation', 'namespace'] as const) {
      const again = mutatePod(input, OPTIONS, optIn);
      expect(again).toMatchObject({ result: 'skipped', reason: 'already injected', patch: [] });
      expect(again.review.response).toEqual({ uid: input.request.uid, allowed: true });
    }
  });

  it('laneway.dev/inject: "false" opts out, also in a namespace that opted in', () => {
    for (const optIn of ['annotation', 'namespace'] as const) {
      const outcome = mutatePod(review('opted-out'), OPTIONS, optIn);
      expect(outcome.result).toBe('skipped');
      expect(outcome.review.response).toEqual({ uid: 'c3d4e5f6-6393-11e8-b7cc-42010a800005', allowed: true });
    }
  });

  it('a pod without the annotation is injected only through the namespace webhook', () => {
    expect(mutatePod(review('namespace-opt-in'), OPTIONS, 'annotation').result).toBe('skipped');
    expect(mutatePod(review('namespace-opt-in'), OPTIONS, 'namespace').result).toBe('injected');
  });

  it('leaves Job pods alone under a namespace opt-in (the sidecar would keep them running), but honours an explicit annotation', () => {
    const job = review('namespace-opt-in');
    job.request.object.metadata.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'migrate', uid: 'u', controller: true }];
    expect(mutatePod(job, OPTIONS, 'namespace')).toMatchObject({ result: 'skipped', reason: expect.stringMatching(/Job/) });
    job.request.object.metadata.annotations = { 'laneway.dev/inject': 'true' };
    expect(mutatePod(job, OPTIONS, 'namespace').result).toBe('injected');
  });

  it('does not touch UPDATE, non-pod, subresource or host-network requests', () => {
    const update = review('deployment-one-port');
    update.request.operation = 'UPDATE';
    const binding = review('deployment-one-port');
    binding.request.subResource = 'binding';
    const deployment = review('deployment-one-port');
    deployment.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    const host = review('deployment-one-port');
    host.request.object.spec.hostNetwork = true;
    for (const input of [update, binding, deployment, host]) {
      const outcome = mutatePod(input, OPTIONS);
      expect(outcome.result).toBe('skipped');
      expect(outcome.review.response.patch).toBeUndefined();
      expect(outcome.review.response.allowed).toBe(true);
    }
    // whoever asked for a sidecar on a host-network pod is told why they did not get one
    expect(mutatePod(host, OPTIONS).review.response.warnings?.[0]).toMatch(/hostNetwork/);
  });

  it('does not inject a pod without TCP ports, and says so', () => {
    const input = review('deployment-one-port');
    input.request.object.spec.containers[0].ports = [{ containerPort: 53, protocol: 'UDP' }];
    const outcome = mutatePod(input, OPTIONS);
    expect(outcome).toMatchObject({ result: 'skipped', patch: [] });
    expect(outcome.review.response.warnings?.[0]).toMatch(/no TCP containerPort/);
  });
});

describe('mutatePod on malformed input: allowed, no patch, a reason', () => {
  const cases: [string, unknown][] = [
    ['null', null],
    ['a string', 'AdmissionReview'],
    ['an array', []],
    ['v1beta1', { ...review('deployment-one-port'), apiVersion: 'admission.k8s.io/v1beta1' }],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }],
    ['no uid', (() => { const r = review('deployment-one-port'); delete r.request.uid; return r; })()],
    ['no object', (() => { const r = review('deployment-one-port'); r.request.object = null; return r; })()],
    ['containers not an array', (() => { const r = review('deployment-one-port'); r.request.object.spec.containers = {}; return r; })()],
    ['annotations not a map', (() => { const r = review('deployment-one-port'); r.request.object.metadata.annotations = 'x'; return r; })()],
    ['inject: "yes"', (() => { const r = review('deployment-one-port'); r.request.object.metadata.annotations['laneway.dev/inject'] = 'yes'; return r; })()],
    ['workload not a DNS label', (() => { const r = review('deployment-one-port'); r.request.object.metadata.annotations['laneway.dev/workload'] = 'Orders_v2'; return r; })()],
    ['owner name too long for a label', (() => {
      const r = review('deployment-one-port');
      r.request.object.metadata.ownerReferences[0].name = `${'a'.repeat(70)}-5d9c7b7f9b`;
      return r;
    })()],
  ];
  for (const [name, input] of cases) {
    it(name, () => {
      const outcome = mutatePod(input, OPTIONS);
      expect(outcome.result).toBe('malformed');
      expect(outcome.reason.length).toBeGreaterThan(5);
      expect(outcome.review.response.allowed).toBe(true);
      expect(outcome.review.response.patch).toBeUndefined();
      expect(outcome.patch).toEqual([]);
    });
  }

  it('answers with the request uid whenever there is one', () => {
    const r = review('deployment-one-port');
    r.request.object.metadata.annotations['laneway.dev/inject'] = 'yes';
    expect(mutatePod(r, OPTIONS).review.response.uid).toBe(r.request.uid);
  });
});

describe('injectOptions', () => {
  it('rejects a missing image, a bad URL and a bad pull policy, naming the flag', () => {
    expect(() => injectOptions({ controlPlaneUrl: 'http://x' })).toThrow(/--inject-image/);
    expect(() => injectOptions({ image: 'i', controlPlaneUrl: 'ftp://x' })).toThrow(/--inject-control-plane/);
    expect(() => injectOptions({ image: 'i', controlPlaneUrl: 'http://x', imagePullPolicy: 'Sometimes' })).toThrow(/--inject-pull-policy/);
    expect(() => injectOptions({ image: 'i', controlPlaneUrl: 'http://x', tokenSecret: 'Bad_Name' })).toThrow(/--inject-token-secret/);
  });
});

describe('POST /v1/admission/mutate (Fastify plugin, inject)', () => {
  async function app() {
    // the control plane's own API limit, which the admission routes must override for big pods
    const instance = Fastify({ bodyLimit: 64 * 1024 });
    await instance.register(admissionRoutes, { inject: OPTIONS });
    return instance;
  }

  it('answers an AdmissionReview with the same patch mutatePod builds', async () => {
    const instance = await app();
    const input = review('deployment-one-port');
    const res = await instance.inject({ method: 'POST', url: ADMISSION_PATHS.annotation, payload: input });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(mutatePod(input, OPTIONS).review);
    const ns = await instance.inject({ method: 'POST', url: ADMISSION_PATHS.namespace, payload: review('namespace-opt-in') });
    expect(ns.json().response.patchType).toBe('JSONPatch');
    await instance.close();
  });

  it('answers malformed JSON objects with allowed: true rather than an error', async () => {
    const instance = await app();
    const res = await instance.inject({ method: 'POST', url: ADMISSION_PATHS.annotation, payload: { request: 5 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '', allowed: true } });
    await instance.close();
  });

  it('accepts a review larger than the API body limit (a pod with a big spec)', async () => {
    const instance = await app();
    const input = review('deployment-one-port');
    input.request.object.metadata.annotations.big = 'x'.repeat(512 * 1024);
    const res = await instance.inject({ method: 'POST', url: ADMISSION_PATHS.annotation, payload: input });
    expect(res.json().response.patchType).toBe('JSONPatch');
    await instance.close();
  });
});
