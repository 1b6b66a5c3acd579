// The compare action's core: a structural diff of baseline and sandbox JSON bodies (RFC 6902 operations), minus ignored paths. No I/O.
import { isDeepStrictEqual } from 'node:util';
import jsonPatch from 'fast-json-patch';
import { JSONPath } from 'jsonpath-plus';

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
