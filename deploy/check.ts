// `npm run deploy:check`: validates every manifest under deploy/ offline against the Kubernetes OpenAPI schemas, strictly, plus Laneway's own cross-checks.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ADMISSION_PATHS } from '../control-plane/api/admission.js';
import { validateSpec } from '../control-plane/spec.js';
import { parseSandboxFile } from '../client/sandbox-file.js';
import { ConfigError } from '../core/errors.js';

/**
 * The kinds deploy/ may contain, each with its schema in kubernetes-models (generated from the
 * Kubernetes OpenAPI document, compiled to Ajv validators; no network at check time). A kind not
 * listed is an error, so adding one is a deliberate choice.
 */
const SCHEMAS: Readonly<Record<string, string>> = {
  'v1/Namespace': 'IoK8sApiCoreV1Namespace',
  'v1/ServiceAccount': 'IoK8sApiCoreV1ServiceAccount',
  'v1/Service': 'IoK8sApiCoreV1Service',
  'v1/PersistentVolumeClaim': 'IoK8sApiCoreV1PersistentVolumeClaim',
  'v1/ConfigMap': 'IoK8sApiCoreV1ConfigMap',
  'v1/Secret': 'IoK8sApiCoreV1Secret',
  'apps/v1/Deployment': 'IoK8sApiAppsV1Deployment',
  'apps/v1/StatefulSet': 'IoK8sApiAppsV1StatefulSet',
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': 'IoK8sApiAdmissionregistrationV1MutatingWebhookConfiguration',
  'rbac.authorization.k8s.io/v1/Role': 'IoK8sApiRbacV1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'IoK8sApiRbacV1RoleBinding',
  'policy/v1/PodDisruptionBudget': 'IoK8sApiPolicyV1PodDisruptionBudget',
  'networking.k8s.io/v1/NetworkPolicy': 'IoK8sApiNetworkingV1NetworkPolicy',
};
const CLUSTER_SCOPED = new Set(['Namespace', 'MutatingWebhookConfiguration']);
/** Kustomization fields this checker models; anything else would be silently mis-built, so it is an error. */
const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources']);
/** YAML files under deploy/ that are not Kubernetes objects, and how they are checked instead. */
const SANDBOX_FILES = /(^|\/)sandbox\.ya?ml$/;
/** Example CI workflows (GitHub Actions): checked for structure and for the laneway commands they run. */
const CI_WORKFLOWS = /(^|\/)examples\/ci\/[^/]+\.ya?ml$/;
/** `laneway <command>`s a workflow may run (cli/main.ts). */
const LANEWAY_COMMANDS = new Set(['sidecar', 'control-plane', 'sandbox', 'routes', 'connect', 'demo', 'plan', 'skills', 'run', 'mcp']);

/** The structure GitHub Actions requires of a workflow, and laneway invocations that exist; no network, no runner. */
export function checkWorkflow(where: string, text: string): string[] {
  const errors: string[] = [];
  const doc = parseAllDocuments(text);
  const first = Array.isArray(doc) ? doc[0] : doc;
  if (first === undefined || first.errors.length > 0) return [`${where}: ${first?.errors[0]?.message ?? 'empty'}`];
  const wf = first.toJS() as Obj;
  if (typeof wf !== 'object' || wf === null) return [`${where}: not a workflow object`];
  if (wf.on === undefined) errors.push(`${where}: 'on' (the triggers) is required`);
  if (typeof wf.jobs !== 'object' || wf.jobs === null || Object.keys(wf.jobs).length === 0) return [...errors, `${where}: 'jobs' must name at least one job`];
  for (const [name, job] of Object.entries(wf.jobs as Obj)) {
    const at = `${where}: jobs.${name}`;
    if (typeof job['runs-on'] !== 'string') errors.push(`${at}.runs-on is required`);
    if (!Array.isArray(job.steps) || job.steps.length === 0) {
      errors.push(`${at}.steps must be a non-empty list`);
      continue;
    }
    job.steps.forEach((step: Obj, i: number) => {
      const where = `${at}.steps[${i}]`;
      if ((step.run === undefined) === (step.uses === undefined)) errors.push(`${where}: exactly one of run or uses`);
      if (step.uses !== undefined && !/^[\w.-]+\/[\w./-]+@[\w.-]+$/.test(String(step.uses))) errors.push(`${where}.uses: expected owner/repo@ref`);
      if (typeof step.run === 'string') {
        for (const m of step.run.matchAll(/(?:^|[\s;&|(])laneway\s+([a-z-]+)/g)) {
          if (!LANEWAY_COMMANDS.has(m[1]!)) errors.push(`${where}.run: 'laneway ${m[1]}' is not a laneway command`);
        }
      }
    });
  }
  return errors;
}

type Obj = Record<string, any>;

export interface Manifest {
  /** `deploy/base/deployment.yaml#1` */
  readonly where: string;
  readonly file: string;
  readonly doc: Obj;
}

export interface CheckReport {
  readonly kustomizations: number;
  readonly manifests: number;
  readonly errors: readonly string[];
}

type Validator = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params?: Obj }[] | null };
const validators = new Map<string, Validator>();

async function validatorFor(apiVersion: string, kind: string): Promise<Validator | undefined> {
  const schema = SCHEMAS[`${apiVersion}/${kind}`];
  if (schema === undefined) return undefined;
  let v = validators.get(schema);
  if (v === undefined) {
    v = ((await import(`kubernetes-models/_schemas/${schema}`)) as { validate: Validator }).validate;
    validators.set(schema, v);
  }
  return v;
}

/**
 * The OpenAPI schemas allow unknown fields, which the API server drops (or, with strict field
 * validation, rejects), so a typo like `readinesProbe` would pass unnoticed. Every object is
 * wrapped in a Proxy recording which keys the compiled validator reads: a key it never read is a
 * key the schema does not know. Maps (labels, resources) are iterated and read whole.
 */
function tracked(value: unknown, path: string, records: { path: string; obj: Obj; read: Set<string> }[]): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v, i) => tracked(v, `${path}[${i}]`, records));
  const obj: Obj = {};
  for (const [k, v] of Object.entries(value)) obj[k] = tracked(v, path === '' ? k : `${path}.${k}`, records);
  const read = new Set<string>();
  records.push({ path, obj, read });
  return new Proxy(obj, {
    get(target, key, receiver) {
      if (typeof key === 'string') read.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.has(target, key);
    },
  });
}

async function validateSchema(m: Manifest): Promise<string[]> {
  const { apiVersion, kind } = m.doc;
  const validate = await validatorFor(String(apiVersion), String(kind));
  if (validate === undefined) return [`${m.where}: no schema for ${String(apiVersion)} ${String(kind)} (deploy/check.ts SCHEMAS lists the kinds allowed)`];
  const records: { path: string; obj: Obj; read: Set<string> }[] = [];
  if (!validate(tracked(m.doc, '', records))) return (validate.errors ?? []).map((e) => `${m.where} (${kind}): ${describeError(e)}`);
  const errors: string[] = [];
  for (const { path, obj, read } of records) {
    for (const key of Object.keys(obj)) if (!read.has(key)) errors.push(`${m.where} (${kind}): ${path === '' ? key : `${path}.${key}`}: unknown field`);
  }
  return errors;
}

type AjvError = NonNullable<Validator['errors']>[number] & { keyword?: string };

/** An Ajv error as `spec.ports[0].protocol must be one of ["SCTP","TCP","UDP"]` (compiled validators carry no messages). */
function describeError(e: AjvError): string {
  let path = '';
  for (const raw of e.instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^[0-9]+$/.test(seg) ? `[${seg}]` : path === '' ? seg : `.${seg}`;
  }
  const p = e.params ?? {};
  let problem: string;
  switch (e.keyword) {
    case 'type':
      problem = `must be ${String(p.type)}`;
      break;
    case 'enum':
      problem = `must be one of ${JSON.stringify(p.allowedValues)}`;
      break;
    case 'required':
      problem = `is missing required field ${String(p.missingProperty)}`;
      break;
    case 'format':
      problem = `must match format ${String(p.format)}`;
      break;
    default:
      problem = e.message ?? `fails ${e.keyword ?? 'the schema'} ${JSON.stringify(p)}`;
  }
  return `${path || '(root)'} ${problem}`;
}

/** Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml): unquoted yes/no/on/off are booleans there, so they are here too. */
function readYaml(file: string, root: string): { docs: Manifest[]; errors: string[] } {
  const rel = relative(root, file);
  const docs: Manifest[] = [];
  const errors: string[] = [];
  parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1', uniqueKeys: true }).forEach((doc, i) => {
    for (const e of [...doc.errors, ...doc.warnings]) errors.push(`${rel}#${i + 1}: ${e.message.split('\n')[0]}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) errors.push(`${rel}#${i + 1}: not an object`);
    else docs.push({ where: `${rel}#${i + 1}`, file, doc: value as Obj });
  });
  return { docs, errors };
}

/** The objects `kustomize build <dir>` would emit for the subset modelled here (resources only). */
function build(dir: string, root: string, used: Set<string>, errors: string[], stack: string[] = []): Manifest[] {
  const file = join(dir, 'kustomization.yaml');
  const rel = relative(root, file);
  if (stack.includes(dir)) {
    errors.push(`${rel}: resources form a cycle`);
    return [];
  }
  used.add(file);
  const { docs, errors: yamlErrors } = readYaml(file, root);
  errors.push(...yamlErrors);
  const k = docs[0]?.doc;
  if (k === undefined) return [];
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') errors.push(`${rel}: expected apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization`);
  for (const key of Object.keys(k)) if (!KUSTOMIZATION_KEYS.has(key)) errors.push(`${rel}: '${key}' is not modelled by deploy:check; extend deploy/check.ts before using it`);
  const out: Manifest[] = [];
  for (const entry of Array.isArray(k.resources) ? k.resources : []) {
    if (typeof entry !== 'string' || /^[a-z]+:\/\//.test(entry) || entry.includes('?')) {
      errors.push(`${rel}: resource ${JSON.stringify(entry)} must be a local file or directory (the check is offline)`);
      continue;
    }
    const target = resolve(dir, entry);
    let isDir = false;
    try {
      isDir = statSync(target).isDirectory();
    } catch {
      errors.push(`${rel}: resource '${entry}' does not exist`);
      continue;
    }
    if (isDir) out.push(...build(target, root, used, errors, [...stack, dir]));
    else {
      used.add(target);
      const r = readYaml(target, root);
      errors.push(...r.errors);
      out.push(...r.docs);
    }
  }
  return out;
}

const id = (d: Obj): string => `${d.kind} ${d.metadata?.namespace ? `${d.metadata.namespace}/` : ''}${d.metadata?.name}`;

function flagValue(args: unknown, flag: string): string | undefined {
  if (!Array.isArray(args)) return undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === flag) return typeof args[i + 1] === 'string' ? args[i + 1] : undefined;
    if (typeof a === 'string' && a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

const matches = (selector: Obj | undefined, labels: Obj | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** What a kustomize build must also get right for Laneway to work: references resolve, the webhook is safe. */
function crossCheck(name: string, manifests: readonly Manifest[]): string[] {
  const errors: string[] = [];
  const byId = new Map<string, Manifest>();
  for (const m of manifests) {
    const key = id(m.doc);
    if (byId.has(key)) errors.push(`${name}: ${key} is defined twice (${byId.get(key)!.where}, ${m.where})`);
    byId.set(key, m);
  }
  const find = (kind: string, ns: string | undefined, n: string): Manifest | undefined => byId.get(`${kind} ${ns ? `${ns}/` : ''}${n}`);
  // Workloads: Deployments, and the StatefulSet of the HA overlay's etcd.
  const deployments = manifests.filter((m) => m.doc.kind === 'Deployment' || m.doc.kind === 'StatefulSet');

  for (const m of manifests) {
    const d = m.doc;
    const ns: string | undefined = d.metadata?.namespace;
    if (CLUSTER_SCOPED.has(d.kind)) {
      if (ns !== undefined) errors.push(`${m.where}: ${d.kind} is cluster-scoped and takes no namespace`);
    } else if (ns === undefined) errors.push(`${m.where}: ${id(d)} has no metadata.namespace (the base sets them explicitly)`);
    else if (ns !== 'default' && find('Namespace', undefined, ns) === undefined) errors.push(`${m.where}: namespace '${ns}' is not created by this build`);
  }

  for (const m of deployments) {
    const d = m.doc;
    const ns = d.metadata?.namespace;
    const pod = d.spec?.template?.spec ?? {};
    if (!matches(d.spec?.selector?.matchLabels, d.spec?.template?.metadata?.labels)) errors.push(`${m.where}: spec.selector.matchLabels does not match the pod template's labels`);
    const sa = pod.serviceAccountName;
    if (sa !== undefined && sa !== 'default' && find('ServiceAccount', ns, sa) === undefined) errors.push(`${m.where}: serviceAccountName '${sa}' is not in this build`);
    const volumes = new Map<string, Obj>([...(pod.volumes ?? []), ...(d.spec?.volumeClaimTemplates ?? []).map((t: Obj) => ({ name: t.metadata?.name }))].map((v: Obj) => [v.name, v]));
    const replicas = d.spec?.replicas ?? 1;
    for (const v of volumes.values()) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim !== undefined && find('PersistentVolumeClaim', ns, claim) === undefined) errors.push(`${m.where}: volume '${v.name}' claims '${claim}', which is not in this build`);
    }
    for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])] as Obj[]) {
      const ports = new Set((c.ports ?? []).map((p: Obj) => p.name).filter(Boolean));
      for (const mount of c.volumeMounts ?? []) if (!volumes.has(mount.name)) errors.push(`${m.where}: container '${c.name}' mounts unknown volume '${mount.name}'`);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const port = c[probe]?.httpGet?.port;
        if (typeof port === 'string' && !ports.has(port)) errors.push(`${m.where}: container '${c.name}' ${probe} uses unknown port name '${port}'`);
      }
      if (c.args?.[0] === 'control-plane' && replicas > 1) {
        // Several replicas need the shared store; SQLite is one process per file (it would fail to lock, or diverge).
        const store = flagValue(c.args, '--store');
        if (store === undefined || !store.startsWith('etcd://')) errors.push(`${m.where}: ${replicas} control-plane replicas need --store etcd://… (SQLite is one process per data directory)`);
        // A lane tunnel lives in one replica's memory; the advertised Service address would reach any replica.
        if (flagValue(c.args, '--lane-listen') !== undefined) errors.push(`${m.where}: --lane-listen with ${replicas} replicas: a lane tunnel is held by one replica; use one replica for local lanes`);
      }
      // The injected image must be the control plane's own: sidecars and control plane speak one protocol version.
      const injectImage = flagValue(c.args, '--inject-image');
      if (injectImage !== undefined && injectImage !== c.image) errors.push(`${m.where}: --inject-image ${injectImage} differs from the container image ${c.image}`);
      // Sidecars dial --lane-advertise for local forks: it must be a Service port of this build that reaches the relay.
      const advertise = flagValue(c.args, '--lane-advertise');
      if (advertise !== undefined) {
        const parsed = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)$/.exec(advertise);
        const service = parsed === null ? undefined : find('Service', parsed[2], parsed[1]!);
        const port = service?.doc.spec?.ports?.find((p: Obj) => p.port === Number(parsed![3]));
        const laneListen = flagValue(c.args, '--lane-listen');
        const declared = (c.ports ?? []).find((p: Obj) => p.name === port?.targetPort || p.containerPort === port?.targetPort);
        if (parsed === null) errors.push(`${m.where}: --lane-advertise ${advertise} is not <service>.<namespace>.svc:<port>`);
        else if (service === undefined) errors.push(`${m.where}: --lane-advertise names Service ${parsed[2]}/${parsed[1]}, which is not in this build`);
        else if (port === undefined) errors.push(`${m.where}: --lane-advertise port ${parsed[3]} is not a port of Service ${parsed[1]}`);
        else if (declared === undefined || laneListen === undefined || !laneListen.endsWith(`:${declared.containerPort}`)) {
          errors.push(`${m.where}: --lane-advertise ${advertise} does not reach --lane-listen ${laneListen ?? '(unset)'} through the Service's targetPort`);
        }
      }
    }
  }

  for (const m of manifests.filter((x) => x.doc.kind === 'Service')) {
    const s = m.doc;
    const targets = deployments.filter((dep) => dep.doc.metadata?.namespace === s.metadata?.namespace && matches(s.spec?.selector, dep.doc.spec?.template?.metadata?.labels));
    if (targets.length === 0) {
      errors.push(`${m.where}: Service ${s.metadata?.name} selects no Deployment of this build`);
      continue;
    }
    const containerPorts = targets.flatMap((t) => (t.doc.spec.template.spec.containers ?? []).flatMap((c: Obj) => c.ports ?? [])) as Obj[];
    for (const p of s.spec?.ports ?? []) {
      const target = p.targetPort ?? p.port;
      const ok = typeof target === 'string' ? containerPorts.some((cp) => cp.name === target) : containerPorts.some((cp) => cp.containerPort === target);
      if (!ok) errors.push(`${m.where}: Service port ${p.name ?? p.port} targets ${target}, which no selected container declares`);
    }
  }

  for (const m of manifests.filter((x) => x.doc.kind === 'PodDisruptionBudget')) {
    const selector = m.doc.spec?.selector?.matchLabels;
    if (!deployments.some((dep) => dep.doc.metadata?.namespace === m.doc.metadata?.namespace && matches(selector, dep.doc.spec?.template?.metadata?.labels))) {
      errors.push(`${m.where}: PodDisruptionBudget ${m.doc.metadata?.name} selects no workload of this build`);
    }
  }

  const paths = new Set<string>();
  for (const m of manifests.filter((x) => x.doc.kind === 'MutatingWebhookConfiguration')) {
    for (const [i, w] of (m.doc.webhooks ?? []).entries()) {
      const where = `${m.where} webhooks[${i}] ${w.name}`;
      // Injection must never block pod creation (issue 7): a down control plane means pods without sidecars.
      if (w.failurePolicy !== 'Ignore') errors.push(`${where}: failurePolicy must be Ignore`);
      if (w.sideEffects !== 'None') errors.push(`${where}: sideEffects must be None (mutatePod is pure)`);
      if (!(w.admissionReviewVersions ?? []).includes('v1')) errors.push(`${where}: admissionReviewVersions must include v1`);
      if (w.namespaceSelector === undefined || w.objectSelector === undefined) errors.push(`${where}: needs both a namespaceSelector and an objectSelector`);
      const svc = w.clientConfig?.service;
      if (svc === undefined) {
        errors.push(`${where}: clientConfig.service is required (the webhook is the control plane's Service)`);
        continue;
      }
      const service = find('Service', svc.namespace, svc.name);
      if (service === undefined) errors.push(`${where}: Service ${svc.namespace}/${svc.name} is not in this build`);
      else if (!(service.doc.spec?.ports ?? []).some((p: Obj) => p.port === (svc.port ?? 443))) errors.push(`${where}: Service ${svc.name} has no port ${svc.port ?? 443}`);
      if (!Object.values(ADMISSION_PATHS).includes(svc.path)) errors.push(`${where}: path ${svc.path} is not an admission route (${Object.values(ADMISSION_PATHS).join(', ')})`);
      paths.add(svc.path);
      // The control plane must not be injected into itself: its own namespace is excluded by name.
      const excluded = (w.namespaceSelector?.matchExpressions ?? []).some(
        (e: Obj) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn' && (e.values ?? []).includes(svc.namespace),
      );
      if (!excluded) errors.push(`${where}: namespaceSelector must exclude the control plane's namespace ${svc.namespace} (kubernetes.io/metadata.name NotIn)`);
      const rule = (w.rules ?? []).find((r: Obj) => (r.resources ?? []).includes('pods'));
      if (rule === undefined || !(rule.operations ?? []).includes('CREATE')) errors.push(`${where}: must match CREATE of pods`);
    }
    for (const path of Object.values(ADMISSION_PATHS)) if (!paths.has(path)) errors.push(`${m.where}: no webhook calls ${path}`);
  }
  return errors;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** Checks every kustomization under `deployDir`; `root` is what paths in messages are relative to. */
export async function checkDeploy(deployDir: string, root = dirname(deployDir)): Promise<CheckReport> {
  const errors: string[] = [];
  const used = new Set<string>();
  const files = walk(deployDir);
  const kustomizations = files.filter((f) => /(^|\/)kustomization\.ya?ml$/.test(f));
  const seen = new Set<string>();
  let manifests = 0;
  for (const k of kustomizations) {
    const dir = dirname(k);
    const buildErrors: string[] = [];
    const built = build(dir, root, used, buildErrors);
    errors.push(...buildErrors);
    errors.push(...crossCheck(relative(root, k), built));
    for (const m of built) {
      // A file reached from several kustomizations (the base, via each overlay) is schema-checked once.
      if (seen.has(m.where)) continue;
      seen.add(m.where);
      manifests++;
      errors.push(...(await validateSchema(m)));
    }
  }
  for (const f of files) {
    if (used.has(f)) continue;
    if (CI_WORKFLOWS.test(f)) {
      errors.push(...checkWorkflow(relative(root, f), readFileSync(f, 'utf8')));
      continue;
    }
    if (SANDBOX_FILES.test(f)) {
      try {
        for (const s of parseSandboxFile(relative(root, f), readFileSync(f, 'utf8'))) validateSpec(s.name, s.spec, null);
      } catch (err) {
        // a file that is not a sandbox already names itself (ConfigError: `laneway: <file>: <problem>`)
        errors.push(err instanceof ConfigError ? err.message.replace(/^laneway: /, '') : `${relative(root, f)}: ${(err as Error).message}`);
      }
      continue;
    }
    errors.push(`${relative(root, f)}: not listed by any kustomization, so never checked (add it to resources, or delete it)`);
  }
  return { kustomizations: kustomizations.length, manifests, errors: [...new Set(errors)] };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  // dist/deploy/check.js → the repo's deploy/ (sources, not the compiled copy)
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const deployDir = resolve(process.argv[2] ?? join(repo, 'deploy'));
  const report = await checkDeploy(deployDir);
  for (const e of report.errors) process.stderr.write(`deploy:check: ${e}\n`);
  process.stdout.write(`deploy:check: ${report.manifests} manifests in ${report.kustomizations} kustomizations, ${report.errors.length} errors\n`);
  process.exitCode = report.errors.length === 0 ? 0 : 1;
}
