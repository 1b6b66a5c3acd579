// Sidecar injection as a pure function: an admission.k8s.io/v1 AdmissionReview for a Pod in, the review response with its JSONPatch out.
import { ConfigError } from '../core/errors.js';
import { isDnsLabel, isWorkloadName } from '../core/names.js';

/** Pod annotation: "true" asks for the sidecar, "false" opts out (also when the namespace is labelled). */
export const ANNOTATION_INJECT = 'laneway.dev/inject';
/** Pod annotation: the workload identity, `<name>` (pod's namespace) or `<namespace>/<name>`; overrides the owner. */
export const ANNOTATION_WORKLOAD = 'laneway.dev/workload';
/**
 * Pod annotation: app ports' protocols as Service `appProtocol` values, `8080=kubernetes.io/h2c,9090=http`. A
 * container port has no `appProtocol` field and the review carries no Service, so this is where a chart
 * copies its Services' `appProtocol`; it wins over the port-name prefix.
 */
export const ANNOTATION_APP_PROTOCOLS = 'laneway.dev/app-protocols';

/**
 * `appProtocol` values (Kubernetes' `kubernetes.io/h2c`, IANA service names, Istio's) → the sidecar's
 * `--port` protocol. Values not listed leave the port as the client speaks (no suffix).
 */
const APP_PROTOCOLS: Readonly<Record<string, 'http1' | 'h2c'>> = Object.freeze({
  'kubernetes.io/h2c': 'h2c',
  h2c: 'h2c',
  grpc: 'h2c',
  http2: 'h2c',
  http: 'http1',
  'kubernetes.io/http': 'http1',
  http1: 'http1',
});

/**
 * Istio's port-naming convention: `<protocol>[-<suffix>]` (`grpc-api`, `h2c`, `http-web`). Checked in this
 * order, so `http2-…` is not read as `http`. Other names (and unnamed ports) get no suffix.
 */
const NAME_PREFIXES: readonly (readonly [string, 'http1' | 'h2c'])[] = [
  ['grpc', 'h2c'],
  ['h2c', 'h2c'],
  ['http2', 'h2c'],
  ['http', 'http1'],
];

/** A port's protocol from its container-port name, or undefined. `grpc-web` is HTTP/1.1-compatible and is left alone. */
export function protocolFromPortName(name: unknown): 'http1' | 'h2c' | undefined {
  if (typeof name !== 'string') return undefined;
  if (name === 'grpc-web' || name.startsWith('grpc-web-')) return undefined;
  for (const [prefix, protocol] of NAME_PREFIXES) if (name === prefix || name.startsWith(`${prefix}-`)) return protocol;
  return undefined;
}

/** Parses ANNOTATION_APP_PROTOCOLS: port → protocol (undefined for a value that names no translation), or a problem. */
export function parseAppProtocols(value: unknown): Map<number, 'http1' | 'h2c' | undefined> | { problem: string } {
  const out = new Map<number, 'http1' | 'h2c' | undefined>();
  const problem = { problem: `${ANNOTATION_APP_PROTOCOLS} must be <port>=<appProtocol>[,<port>=<appProtocol>…]` };
  if (typeof value !== 'string' || value.length > 4096) return problem;
  for (const item of value.split(',')) {
    const pair = item.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const port = Number(pair.slice(0, eq));
    const name = pair.slice(eq + 1).trim().toLowerCase();
    if (eq <= 0 || !Number.isInteger(port) || port < 1 || port > 65535 || name === '') return problem;
    out.set(port, Object.hasOwn(APP_PROTOCOLS, name) ? APP_PROTOCOLS[name] : undefined);
  }
  return out;
}
/** The containers we add; their presence is what makes injection idempotent. */
export const SIDECAR_CONTAINER = 'laneway-sidecar';
export const REDIRECT_CONTAINER = 'laneway-redirect';
/**
 * The sidecar's fixed uid (the image's `laneway` user). A uid of its own, distinct from the app's
 * usual 0/1000, so the sidecar's traffic can be told apart in iptables (`-m owner --uid-owner`)
 * should outbound capture ever be added.
 */
export const SIDECAR_UID = 15100;
/** The sidecar's admin server (/healthz, /readyz, /routes, /metrics), reachable by the kubelet's probes. */
export const ADMIN_PORT = 15000;
/** Sidecar listeners are numbered from here in app-port order, skipping ports the pod already uses. */
export const FIRST_SIDECAR_PORT = 15001;
/** Where the image ships deploy/redirect.sh. */
export const REDIRECT_COMMAND = '/usr/local/bin/laneway-redirect';
/** Deployment controllers name ReplicaSets `<deployment>-<pod-template-hash>` and label pods with the hash. */
const POD_TEMPLATE_HASH = 'pod-template-hash';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface InjectOptions {
  /** the URL the injected sidecars subscribe to, e.g. http://laneway-control-plane.laneway-system.svc:7070 */
  readonly controlPlaneUrl: string;
  /** the laneway image, for both the sidecar and the redirect init container */
  readonly image: string;
  readonly imagePullPolicy: PullPolicy;
  /** a Secret in the pod's namespace whose `token` key holds the sidecars' token (a `sidecar` role: routes and reports; a reader token routes only) (env LANEWAY_TOKEN); undefined = none */
  readonly tokenSecret: string | undefined;
}

/**
 * How the pod got here. `annotation`: the default webhook, which sees pods of namespaces that did not
 * opt in, so only pods annotated `laneway.dev/inject: "true"` are injected. `namespace`: the webhook
 * whose namespaceSelector matched `laneway.dev/inject=true` (or `enabled`), so every pod is injected
 * unless it says "false". The review itself carries no namespace labels; the webhook path tells us which case.
 */
export type OptIn = 'annotation' | 'namespace';

/** Validates options once (at startup); the flag names are the control plane's. */
export function injectOptions(input: { controlPlaneUrl?: string; image?: string; imagePullPolicy?: string; tokenSecret?: string }): InjectOptions {
  const { controlPlaneUrl, image } = input;
  if (image === undefined || image === '' || /\s/.test(image)) throw new ConfigError('--inject-image', 'required: the laneway image to inject');
  if (controlPlaneUrl === undefined) throw new ConfigError('--inject-control-plane', 'required: the control-plane URL sidecars subscribe to');
  let url: URL;
  try {
    url = new URL(controlPlaneUrl);
  } catch {
    throw new ConfigError('--inject-control-plane', `not a URL: '${controlPlaneUrl}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--inject-control-plane', 'must be an http:// or https:// URL');
  const policy = input.imagePullPolicy ?? 'IfNotPresent';
  if (policy !== 'Always' && policy !== 'IfNotPresent' && policy !== 'Never') {
    throw new ConfigError('--inject-pull-policy', `expected Always, IfNotPresent or Never, got '${policy}'`);
  }
  if (input.tokenSecret !== undefined && !isDnsSubdomain(input.tokenSecret)) {
    throw new ConfigError('--inject-token-secret', `not a Secret name: '${input.tokenSecret}'`);
  }
  return Object.freeze({ controlPlaneUrl, image, imagePullPolicy: policy, tokenSecret: input.tokenSecret });
}

/** RFC 6902 operations; injection only ever adds. */
export interface JsonPatchOp {
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

/** The AdmissionReview we answer with (admission.k8s.io/v1). */
export interface AdmissionReviewResponse {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: {
    readonly uid: string;
    /** always true: failing to inject must never block a pod */
    readonly allowed: true;
    readonly patchType?: 'JSONPatch';
    /** base64 of the JSON patch */
    readonly patch?: string;
    /** shown by kubectl to whoever created the pod: why a pod that asked for the sidecar did not get it */
    readonly warnings?: readonly string[];
  };
}

export interface AdmissionOutcome {
  /** what to send back to the API server */
  readonly review: AdmissionReviewResponse;
  /** `injected`; `skipped` (not ours, opted out, already injected); `malformed` (bad review or bad annotations) */
  readonly result: 'injected' | 'skipped' | 'malformed';
  /** one line for the log */
  readonly reason: string;
  /** the decoded patch (empty unless injected) */
  readonly patch: readonly JsonPatchOp[];
  /** `<namespace>/<name>` of the pod when known, for the log */
  readonly pod: string;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const DNS_SUBDOMAIN_RE = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isDnsSubdomain = (v: string): boolean => DNS_SUBDOMAIN_RE.test(v);

/**
 * Decides and builds the injection for one review. Never throws: whatever arrives, the answer is
 * `allowed: true`, with a patch only when the pod asked for the sidecar and can run it.
 */
export function mutatePod(review: unknown, options: InjectOptions, optIn: OptIn = 'annotation'): AdmissionOutcome {
  const request = isObj(review) ? review.request : undefined;
  // The API server matches the answer to its call by uid; without one there is nothing valid to say,
  // and an empty uid makes the call fail, which failurePolicy: Ignore turns into "admit unchanged".
  const uid = isObj(request) && typeof request.uid === 'string' ? request.uid : '';
  const namespace = isObj(request) && typeof request.namespace === 'string' ? request.namespace : '';
  const pod = isObj(request) && isObj(request.object) ? request.object : undefined;
  const meta = pod !== undefined && isObj(pod.metadata) ? pod.metadata : {};
  const podName = `${namespace || '?'}/${str(meta.name) ?? (str(meta.generateName) !== undefined ? `${str(meta.generateName)}*` : '?')}`;

  const done = (result: AdmissionOutcome['result'], reason: string, patch: JsonPatchOp[] = [], warning?: string): AdmissionOutcome => ({
    review: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid,
        allowed: true,
        ...(patch.length > 0 ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } : {}),
        ...(warning !== undefined ? { warnings: [warning] } : {}),
      },
    },
    result,
    reason,
    patch,
    pod: podName,
  });

  if (!isObj(review) || review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    return done('malformed', 'not an admission.k8s.io/v1 AdmissionReview');
  }
  if (!isObj(request) || uid === '') return done('malformed', 'request.uid is missing');
  const kind = isObj(request.kind) ? request.kind : {};
  if (kind.kind !== 'Pod' || (kind.group !== undefined && kind.group !== '') || (request.subResource !== undefined && request.subResource !== '')) {
    return done('skipped', `not a Pod (${String(kind.kind)}${request.subResource ? `/${String(request.subResource)}` : ''})`);
  }
  if (request.operation !== 'CREATE') return done('skipped', `operation ${String(request.operation)}: only CREATE is injected`);
  if (pod === undefined || !isObj(pod.spec) || !Array.isArray(pod.spec.containers)) return done('malformed', 'request.object is not a Pod with spec.containers');
  if (!isDnsLabel(namespace)) return done('malformed', 'request.namespace is missing');
  const spec = pod.spec;
  const annotations = meta.annotations === undefined ? {} : meta.annotations;
  if (!isObj(annotations)) return done('malformed', 'metadata.annotations is not a map');

  const inject = annotations[ANNOTATION_INJECT];
  if (inject === 'false') return done('skipped', `${ANNOTATION_INJECT}: "false"`);
  if (inject !== undefined && inject !== 'true') {
    return done('malformed', `${ANNOTATION_INJECT} must be "true" or "false"`, [], `laneway: ${ANNOTATION_INJECT} must be "true" or "false"; sidecar not injected`);
  }
  if (optIn === 'annotation' && inject !== 'true') return done('skipped', `no ${ANNOTATION_INJECT}: "true" and the namespace did not opt in`);
  // The sidecar never exits, so a Job's pod would never complete: a namespace-wide opt-in leaves Jobs
  // alone; only an explicit annotation injects one.
  if (inject !== 'true' && controllerKind(meta) === 'Job') return done('skipped', 'owned by a Job (the sidecar would keep it running)');

  const containers = (spec.containers as unknown[]).filter(isObj);
  const initContainers = Array.isArray(spec.initContainers) ? spec.initContainers.filter(isObj) : [];
  if (containers.some((c) => c.name === SIDECAR_CONTAINER) || initContainers.some((c) => c.name === REDIRECT_CONTAINER)) {
    return done('skipped', 'already injected');
  }
  // iptables in a host-network pod would rewrite the node's own rules.
  if (spec.hostNetwork === true) return done('skipped', 'hostNetwork pod', [], 'laneway: hostNetwork pods cannot get the sidecar; not injected');

  const workload = workloadOf(meta, namespace);
  if (typeof workload !== 'string') return done('malformed', workload.problem, [], `laneway: ${workload.problem}; sidecar not injected`);

  const appPorts = tcpPorts(containers);
  if (appPorts.length === 0) {
    return done('skipped', 'no TCP containerPort declared', [], 'laneway: the pod declares no TCP containerPort to route; sidecar not injected');
  }
  if (appPorts.includes(ADMIN_PORT)) {
    return done('skipped', `containerPort ${ADMIN_PORT} is the sidecar admin port`, [], `laneway: containerPort ${ADMIN_PORT} is reserved for the sidecar; not injected`);
  }
  const mappings = assignSidecarPorts(appPorts);
  const portArgs = mappings.map(([listen, app]) => `${listen}:${app}`);
  // Each app port's protocol (README "Annotate a deployment"): the annotation, else the port name's prefix.
  const declared = annotations[ANNOTATION_APP_PROTOCOLS] === undefined ? new Map<number, 'http1' | 'h2c' | undefined>() : parseAppProtocols(annotations[ANNOTATION_APP_PROTOCOLS]);
  if (!(declared instanceof Map)) return done('malformed', declared.problem, [], `laneway: ${declared.problem}; sidecar not injected`);
  const names = portNames(containers);
  const sidecarPortArgs = mappings.map(([listen, app]) => {
    const protocol = declared.has(app) ? declared.get(app) : protocolFromPortName(names.get(app));
    return protocol === undefined ? `${listen}:${app}` : `${listen}:${app}/${protocol}`;
  });

  const patch: JsonPatchOp[] = [];
  const init = redirectContainer(options, portArgs);
  // RFC 6902 §4.1: `add` at `/-` needs the array to exist; a pod without init containers gets the whole array.
  if (Array.isArray(spec.initContainers)) patch.push({ op: 'add', path: '/spec/initContainers/-', value: init });
  else patch.push({ op: 'add', path: '/spec/initContainers', value: [init] });
  // Appended, not prepended: the app stays the first container, the default of `kubectl logs/exec`.
  patch.push({ op: 'add', path: '/spec/containers/-', value: sidecarContainer(options, workload, sidecarPortArgs) });
  return done('injected', `workload ${workload}, ports ${sidecarPortArgs.join(',')}`, patch);
}

function controllerKind(meta: Obj): unknown {
  const owners = Array.isArray(meta.ownerReferences) ? meta.ownerReferences.filter(isObj) : [];
  return (owners.find((o) => o.controller === true) ?? owners[0])?.kind;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * The workload identity: the annotation, else the controlling owner. A ReplicaSet owned by a
 * Deployment is named `<deployment>-<pod-template-hash>` and the pod carries the hash as a label, so
 * stripping `-<hash>` gives the Deployment without asking the API server.
 */
function workloadOf(meta: Obj, namespace: string): string | { problem: string } {
  const annotations = meta.annotations as Obj | undefined;
  const explicit = annotations?.[ANNOTATION_WORKLOAD];
  if (explicit !== undefined) {
    const value = typeof explicit === 'string' ? (explicit.includes('/') ? explicit : `${namespace}/${explicit}`) : '';
    return isWorkloadName(value) ? value : { problem: `${ANNOTATION_WORKLOAD} must be <name> or <namespace>/<name> (DNS-1123 labels)` };
  }
  let name: string | undefined;
  const owners = Array.isArray(meta.ownerReferences) ? meta.ownerReferences.filter(isObj) : [];
  const owner = owners.find((o) => o.controller === true) ?? owners[0];
  if (owner !== undefined && typeof owner.name === 'string') {
    name = owner.name;
    const labels = isObj(meta.labels) ? meta.labels : {};
    const hash = labels[POD_TEMPLATE_HASH];
    if (owner.kind === 'ReplicaSet' && typeof hash === 'string' && hash !== '' && name.endsWith(`-${hash}`)) {
      name = name.slice(0, -(hash.length + 1));
    }
  } else {
    // A bare pod: its name, or what a generateName-only pod will be called before the suffix.
    name = str(meta.name) ?? str(meta.generateName)?.replace(/-+$/, '');
  }
  const workload = `${namespace}/${name ?? ''}`;
  if (isWorkloadName(workload)) return workload;
  return { problem: `cannot derive a workload name (DNS-1123 label) from '${name ?? ''}'; set ${ANNOTATION_WORKLOAD}` };
}

/** Declared TCP container ports of the app containers, deduplicated and sorted so the mapping is stable. */
function tcpPorts(containers: readonly Obj[]): number[] {
  const ports = new Set<number>();
  for (const c of containers) {
    if (!Array.isArray(c.ports)) continue;
    for (const p of c.ports) {
      if (!isObj(p)) continue;
      const protocol = p.protocol ?? 'TCP';
      const port = p.containerPort;
      if (protocol === 'TCP' && Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535) ports.add(port as number);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** TCP container port → its name (the first container that names it). */
function portNames(containers: readonly Obj[]): Map<number, string> {
  const names = new Map<number, string>();
  for (const c of containers) {
    if (!Array.isArray(c.ports)) continue;
    for (const p of c.ports) {
      if (isObj(p) && (p.protocol ?? 'TCP') === 'TCP' && typeof p.name === 'string' && typeof p.containerPort === 'number' && !names.has(p.containerPort)) names.set(p.containerPort, p.name);
    }
  }
  return names;
}

/** `[sidecarPort, appPort]` pairs: 15001, 15002, … skipping any port an app container uses. */
function assignSidecarPorts(appPorts: readonly number[]): [number, number][] {
  const taken = new Set(appPorts);
  const out: [number, number][] = [];
  let next = FIRST_SIDECAR_PORT;
  for (const app of appPorts) {
    while (taken.has(next)) next++;
    out.push([next, app]);
    next++;
  }
  return out;
}

function redirectContainer(options: InjectOptions, portArgs: readonly string[]): Obj {
  return {
    name: REDIRECT_CONTAINER,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy,
    command: [REDIRECT_COMMAND],
    args: [...portArgs],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    // iptables needs uid 0 with NET_ADMIN (nat table) and NET_RAW; nothing else. It runs once, before the
    // app, and exits. The root filesystem stays writable because iptables-legacy takes /run/xtables.lock.
    securityContext: {
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    },
  };
}

function sidecarContainer(options: InjectOptions, workload: string, portArgs: readonly string[]): Obj {
  const args = ['sidecar', '--workload', workload];
  for (const p of portArgs) args.push('--port', p);
  // 0.0.0.0: redirected packets arrive on the pod IP; the admin port is probed by the kubelet from outside.
  args.push('--control-plane', options.controlPlaneUrl, '--listen-host', '0.0.0.0', '--admin', `0.0.0.0:${ADMIN_PORT}`);
  return {
    name: SIDECAR_CONTAINER,
    image: options.image,
    imagePullPolicy: options.imagePullPolicy,
    args,
    ...(options.tokenSecret !== undefined
      ? { env: [{ name: 'LANEWAY_TOKEN', valueFrom: { secretKeyRef: { name: options.tokenSecret, key: 'token' } } }] }
      : {}),
    ports: [{ name: 'laneway-admin', containerPort: ADMIN_PORT, protocol: 'TCP' }],
    // /readyz turns ready after the first route table, so the pod joins its Service only once requests
    // with a key can be routed; the kubelet's HTTP probes of app ports pass through the sidecar.
    readinessProbe: { httpGet: { path: '/readyz', port: ADMIN_PORT }, periodSeconds: 2, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: ADMIN_PORT }, periodSeconds: 10, failureThreshold: 3 },
    // No tight CPU limit: a throttled proxy adds latency to every request of the app behind it.
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
    securityContext: {
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
}
