// The compare action: the same request to the baseline, then the sandbox, and a structural diff of the JSON bodies (RFC 6902 operations) minus ignored paths.
import { isDeepStrictEqual } from 'node:util';
import jsonPatch from 'fast-json-patch';
import { JSONPath } from 'jsonpath-plus';
import { planError } from '../errors.js';
import type { ActionModule } from './action.js';
import { send } from './http.js';
import { checkRequest, prepareRequest, REQUEST_PROPERTIES, type PreparedRequest, type RequestInput } from './request.js';

export interface CompareInput extends RequestInput {
  /** JSONPaths whose differences are expected (timestamps, request ids) */
  readonly ignore?: readonly string[];
}

interface PreparedCompare {
  readonly request: PreparedRequest;
  readonly ignore: readonly string[];
}

/** One difference from the baseline's body to the sandbox's. */
export interface Difference {
  /** RFC 6902 operation turning the baseline into the sandbox: a field the sandbox added, removed or changed */
  readonly op: 'add' | 'remove' | 'replace';
  /** JSONPath of the field, `$.items[0].total`, or `status` for the status codes */
  readonly path: string;
  /** RFC 6901 pointer of the same field */
  readonly pointer: string;
  readonly baseline?: unknown;
  readonly sandbox?: unknown;
}

/** RFC 6901 pointer → `$.a.b[0]` (bracket-quoted where a key is not a plain name). */
export function pointerToPath(pointer: string): string {
  if (pointer === '') return '$';
  let path = '$';
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(key)) path += `[${key}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) path += `.${key}`;
    else path += `[${JSON.stringify(key)}]`;
  }
  return path;
}

function ignoredPointers(ignore: readonly string[], docs: readonly unknown[]): string[] {
  const pointers: string[] = [];
  for (const path of ignore) {
    if (path === '$') return [''];
    for (const doc of docs) {
      if (typeof doc !== 'object' || doc === null) continue;
      pointers.push(...(JSONPath({ path, json: doc, wrap: true, eval: 'safe', resultType: 'pointer' }) as string[]));
    }
  }
  return pointers;
}

function lookup(doc: unknown, pointer: string): unknown {
  try {
    return jsonPatch.getValueByPointer(doc, pointer);
  } catch {
    return undefined;
  }
}

/**
 * The differences between two JSON bodies that `ignore` (JSONPaths, evaluated on both bodies) does
 * not cover; a difference inside an ignored subtree is ignored too. Sorted by pointer so the same
 * bodies always give the same list.
 */
export function diffBodies(baseline: unknown, sandbox: unknown, ignore: readonly string[] = []): { differences: Difference[]; ignored: number } {
  let ops: { op: string; path: string; value?: unknown }[];
  if (typeof baseline === 'object' && baseline !== null && typeof sandbox === 'object' && sandbox !== null && Array.isArray(baseline) === Array.isArray(sandbox)) {
    ops = jsonPatch.compare(baseline, sandbox);
  } else {
    ops = isDeepStrictEqual(baseline, sandbox) ? [] : [{ op: 'replace', path: '', value: sandbox }];
  }
  const skip = ignoredPointers(ignore, [baseline, sandbox]);
  const differences: Difference[] = [];
  let ignored = 0;
  for (const op of ops) {
    if (skip.some((p) => p === '' || op.path === p || op.path.startsWith(`${p}/`))) {
      ignored++;
      continue;
    }
    const kind = op.op as Difference['op'];
    differences.push({
      op: kind,
      path: pointerToPath(op.path),
      pointer: op.path,
      ...(kind === 'add' ? {} : { baseline: op.path === '' ? baseline : lookup(baseline, op.path) }),
      ...(kind === 'remove' ? {} : { sandbox: op.value }),
    });
  }
  differences.sort((a, b) => (a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0));
  return { differences, ignored };
}

/** The check every compare step makes before its own assertions. */
export const DIFF_ASSERTION = 'no unexpected differences between baseline and sandbox';

/** `2 unexpected differences` */
export function differencesCount(n: number): string {
  return `${n} unexpected difference${n === 1 ? '' : 's'}`;
}

/** `$.total: removed (baseline 42)` */
export function describeDifference(d: Difference): string {
  const show = (v: unknown): string => {
    const text = JSON.stringify(v);
    return text === undefined ? 'undefined' : text.length > 80 ? `${text.slice(0, 77)}...` : text;
  };
  switch (d.op) {
    case 'add':
      return `${d.path}: only in the sandbox (${show(d.sandbox)})`;
    case 'remove':
      return `${d.path}: missing in the sandbox (baseline ${show(d.baseline)})`;
    case 'replace':
      return `${d.path}: baseline ${show(d.baseline)}, sandbox ${show(d.sandbox)}`;
  }
}

export const compare: ActionModule<CompareInput, PreparedCompare> = {
  schema: {
    type: 'object',
    required: ['url'],
    additionalProperties: false,
    properties: { ...REQUEST_PROPERTIES, ignore: { type: 'array', maxItems: 100, items: { type: 'string', pattern: '^\\$', maxLength: 1024 } } },
  },
  outputs: ['status', 'baselineStatus', 'differences', 'durationMs'],
  readsResponse: true,
  needsSandbox: () => true,
  requests: () => 2, // baseline and sandbox
  describe: (input) => ({
    text: `${input.method ?? 'GET'} ${input.url} on baseline and sandbox; the JSON bodies must not differ${input.ignore?.length ? ` (ignoring ${input.ignore.join(', ')})` : ''}`,
    labelled: true,
  }),
  check(input, at, scope) {
    checkRequest(input, at, scope);
    input.ignore?.forEach((p, j) => {
      try {
        JSONPath({ path: p, json: {}, wrap: true, eval: 'safe' });
      } catch (err) {
        throw planError(`${at}.ignore[${j}]`, `not a valid JSONPath: ${(err as Error).message}`);
      }
    });
  },
  prepare(raw, at, scope) {
    const { request, policy } = prepareRequest(raw, at, scope);
    return { prepared: { request, ignore: (raw.ignore as string[] | undefined) ?? [] }, policy };
  },
  async execute({ request, ignore }, run) {
    const { result, out } = run;
    const req = run.concrete(request);
    result.inputs = { ...req, ignore };
    run.backstop(req.url);
    // Baseline first, then the sandbox, never concurrently: the two answers should differ by the change only.
    const baseline = await send(req, null, run.dispatcher, run.signal);
    const forked = await send(req, run.lane(), run.dispatcher, run.signal);
    result.exchanges = { baseline, sandbox: forked };
    const diffs: Difference[] = [];
    if (baseline.response.status !== forked.response.status) {
      diffs.push({ op: 'replace', path: 'status', pointer: 'status', baseline: baseline.response.status, sandbox: forked.response.status });
    }
    const body = diffBodies(baseline.response.body, forked.response.body, ignore);
    diffs.push(...body.differences);
    result.diffs = diffs;
    result.ignoredDiffs = body.ignored;
    out.status = forked.response.status;
    out.baselineStatus = baseline.response.status;
    out.differences = diffs.length;
    out.durationMs = Math.round((baseline.response.durationMs + forked.response.durationMs) * 100) / 100;
    result.outputs = out;
    result.assertions = [
      {
        assertion: DIFF_ASSERTION,
        pass: diffs.length === 0,
        expected: 0,
        actual: diffs.length,
        message: diffs.length === 0 ? 'ok' : `${differencesCount(diffs.length)}: ${diffs.map(describeDifference).join('; ')}`,
      },
      ...run.assertions(forked.response),
    ];
    run.capture(forked.response);
  },
};
