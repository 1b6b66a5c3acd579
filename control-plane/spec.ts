// The sandbox resource: its types, validation of untrusted specs (field-named errors) and routing-key generation. No I/O.
import { randomBytes } from 'node:crypto';
import { parseTarget, type Route, RouteTableError, type Target, validateRoute } from '../model/route-table.js';
import { isRoutingKey, isWorkloadName, ROUTING_KEY_RULE } from '../core/names.js';
import { parseDuration } from '../core/units.js';
import { ControlPlaneError, invalidField } from '../model/api-errors.js';
import type { TargetPolicy } from '../model/allow-targets.js';
import { forbiddenTarget, type SelfAddress } from '../model/target-guard.js';
import { LOCAL_TARGET } from '../model/lanes.js';
import { parseCaptureSpec, PROBE_KEY_PREFIX, type CaptureRule } from '../model/capture.js';

/** One baseline workload the sandbox stands in for, and where its fork listens per app port. */
export interface Fork {
  readonly workload: string;
  readonly targets: Readonly<Record<string, string>>;
}

export interface SandboxSpec {
  /** absent when the server generated the key (then it lives in status.routingKey only) */
  readonly routingKey?: string;
  readonly ttl?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly forks: readonly Fork[];
  /** record what the sidecars route to this sandbox's forks (off when absent) */
  readonly capture?: CaptureRule;
}

/** A validated spec plus what the server derives from it. */
/** Stands in for a `local` target while the route model validates the rest (any valid host:port does). */
const LOCAL_PLACEHOLDER = '127.0.0.1:1';

export interface ValidSpec {
  readonly spec: SandboxSpec;
  readonly ttlMs: number | undefined;
  /** canonical JSON of `spec`: equal text = same spec, so an identical apply changes nothing */
  readonly canonical: string;
}

export const LIMITS = Object.freeze({
  maxForks: 64,
  maxPortsPerFork: 16,
  maxLabels: 64,
  minTtlMs: 1000,
  maxTtlMs: 365 * 86_400_000,
});

// Kubernetes label syntax: optional DNS-subdomain prefix, a name of ≤ 63 characters; values ≤ 63.
const LABEL_KEY_RE = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a sandbox spec. The route schema already checked shapes; this checks meaning, reusing the
 * route model's validators so the API can never accept a route the sidecar would reject. Throws
 * ControlPlaneError naming the field (`spec.forks[0].targets.8080`).
 */
/**
 * `policy`: `--allow-targets` (null: any host). `self`: the control plane's own listeners; targets that
 * `forbiddenTarget` names (metadata, link-local, unspecified, ourselves) are refused unless `policy`
 * allows that host explicitly.
 */
export function validateSpec(name: string, input: unknown, policy: TargetPolicy | null, self: readonly SelfAddress[] = [], lanes = false): ValidSpec {
  if (!isObject(input)) throw invalidField('spec', 'must be an object');
  const spec: { routingKey?: string; ttl?: string; labels?: Record<string, string>; forks?: Fork[]; capture?: CaptureRule } = {};
  const forks: Fork[] = [];

  if (input.routingKey !== undefined) {
    if (!isRoutingKey(input.routingKey)) throw invalidField('spec.routingKey', `must be ${ROUTING_KEY_RULE}`);
    if (input.routingKey.startsWith(PROBE_KEY_PREFIX)) throw invalidField('spec.routingKey', `keys starting with ${PROBE_KEY_PREFIX} are the propagation doctor's probes`);
    spec.routingKey = input.routingKey;
  }

  let ttlMs: number | undefined;
  if (input.ttl !== undefined) {
    if (typeof input.ttl !== 'string') throw invalidField('spec.ttl', 'must be a duration like 30m, 2h or 7d');
    ttlMs = parseDuration(input.ttl);
    if (ttlMs === undefined) throw invalidField('spec.ttl', `expected a duration like 30m, 2h or 7d, got '${input.ttl}'`);
    if (!/[a-z]$/.test(input.ttl.trim())) throw invalidField('spec.ttl', 'needs a unit (s, m, h or d)');
    if (ttlMs < LIMITS.minTtlMs || ttlMs > LIMITS.maxTtlMs) throw invalidField('spec.ttl', 'must be between 1s and 365d');
    spec.ttl = input.ttl;
  }

  if (input.labels !== undefined) {
    if (!isObject(input.labels)) throw invalidField('spec.labels', 'must be an object of strings');
    const keys = Object.keys(input.labels).sort();
    if (keys.length > LIMITS.maxLabels) throw invalidField('spec.labels', `at most ${LIMITS.maxLabels} labels`);
    const labels: Record<string, string> = {};
    for (const key of keys) {
      const value = input.labels[key];
      if (!LABEL_KEY_RE.test(key)) throw invalidField(`spec.labels.${key}`, 'key must be a Kubernetes label name');
      if (typeof value !== 'string' || !LABEL_VALUE_RE.test(value)) {
        throw invalidField(`spec.labels.${key}`, 'value must be ≤ 63 letters, digits, -, _ or .');
      }
      labels[key] = value;
    }
    spec.labels = labels;
  }

  if (input.capture !== undefined) {
    const capture = parseCaptureSpec(input.capture, 'spec.capture');
    if (Array.isArray(capture)) throw invalidField(capture[0], capture[1]);
    spec.capture = capture;
  }

  if (!Array.isArray(input.forks) || input.forks.length === 0) throw invalidField('spec.forks', 'must list at least one fork');
  if (input.forks.length > LIMITS.maxForks) throw invalidField('spec.forks', `at most ${LIMITS.maxForks} forks`);
  const seen = new Map<string, number>();
  input.forks.forEach((raw: unknown, i: number) => {
    const path = `spec.forks[${i}]`;
    if (!isObject(raw)) throw invalidField(path, 'must be an object');
    const workload = raw.workload;
    if (!isWorkloadName(workload)) {
      throw invalidField(`${path}.workload`, 'must be <namespace>/<name> (DNS-1123 labels)');
    }
    const first = seen.get(workload);
    if (first !== undefined) {
      throw new ControlPlaneError(
        'LANEWAY_ERR_WORKLOAD_CONFLICT',
        `${path}.workload: sandbox ${name} already forks ${workload} (spec.forks[${first}]); a sandbox forks a workload at most once`,
        `${path}.workload`,
      );
    }
    seen.set(workload, i);
    if (isObject(raw.targets) && Object.keys(raw.targets).length > LIMITS.maxPortsPerFork) {
      throw invalidField(`${path}.targets`, `at most ${LIMITS.maxPortsPerFork} ports`);
    }
    // `local` (a laptop's lane) stands for the relay's address, which the route model checks like any target.
    const rawTargets = isObject(raw.targets) ? { ...raw.targets } : raw.targets;
    const local = new Set<string>();
    if (isObject(rawTargets)) {
      for (const [port, target] of Object.entries(rawTargets)) {
        if (target !== LOCAL_TARGET) continue;
        if (!lanes) throw new ControlPlaneError('LANEWAY_ERR_LANES_OFF', `${path}.targets.${port}: "${LOCAL_TARGET}" needs a control plane started with --lane-listen`, `${path}.targets.${port}`);
        local.add(port);
        rawTargets[port] = LOCAL_PLACEHOLDER;
      }
    }
    // The route model's own validator: the key is checked above, so only sandbox/targets can fail here.
    let route: Route;
    try {
      route = validateRoute({ key: 'k', sandbox: name, targets: rawTargets }, path);
    } catch (err) {
      if (err instanceof RouteTableError) throw invalidField(err.path, err.message.slice(err.path.length + 2));
      throw err;
    }
    const targets: Record<string, string> = {};
    for (const port of Object.keys(route.targets).sort((a, b) => Number(a) - Number(b))) {
      if (local.has(port)) {
        targets[port] = LOCAL_TARGET;
        continue;
      }
      const target = route.targets[port] as string;
      // `h2c://` / `http://` name the fork's protocol; the guard and the policy look at its host and port.
      const parsed = parseTarget(target) as Target;
      if (parsed.lane) throw invalidField(`${path}.targets.${port}`, `must be host:port, h2c://host:port or http://host:port, or "${LOCAL_TARGET}"`);
      const allowed = policy === null ? null : policy(parsed.host);
      const forbidden = forbiddenTarget(parsed.host, parsed.port, self);
      if (forbidden !== null && allowed !== true) {
        throw new ControlPlaneError(
          'LANEWAY_ERR_TARGET_NOT_ALLOWED',
          `${path}.targets.${port}: ${target} is ${forbidden}; a fork may point there only when an --allow-targets pattern names it`,
          `${path}.targets.${port}`,
        );
      }
      if (allowed === false) {
        throw new ControlPlaneError(
          'LANEWAY_ERR_TARGET_NOT_ALLOWED',
          `${path}.targets.${port}: ${target} does not match any --allow-targets pattern`,
          `${path}.targets.${port}`,
        );
      }
      targets[port] = target;
    }
    forks.push(Object.freeze({ workload, targets: Object.freeze(targets) }));
  });

  const frozen: SandboxSpec = Object.freeze({ ...spec, forks: Object.freeze(forks) });
  return { spec: frozen, ttlMs, canonical: JSON.stringify(frozen) };
}

// RFC 4648 §6 base32 alphabet, lowercased: routing keys travel in baggage and URLs, so stick to
// characters that need no escaping anywhere and read unambiguously.
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
export const GENERATED_KEY_LENGTH = 20;

/** 20 base32 characters = 100 random bits from the CSPRNG (the contract asks for ≥ 80). */
export function generateRoutingKey(): string {
  const bytes = randomBytes(GENERATED_KEY_LENGTH); // one byte per character, low 5 bits used: no modulo bias (256 % 32 = 0)
  let key = '';
  for (let i = 0; i < GENERATED_KEY_LENGTH; i++) key += BASE32[(bytes[i] as number) & 31];
  return key;
}
