// The one JSON Schema compiler for plans, policies and schema assertions (Ajv, strict, standard formats) and the one Ajv-error formatter.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default import is the module object, whose callable is
// the module itself at run time and `.default` in the types.
const addFormats = ((formatsPlugin as unknown as { default?: unknown }).default ?? formatsPlugin) as (ajv: Ajv) => Ajv;

/**
 * `strict`: an unknown keyword or format in a schema is an error at plan validation, not a check that
 * silently passes. `allErrors: false`: the first error is the one reported, with its path.
 */
export function createAjv(options: { forUserSchemas?: boolean; allErrors?: boolean } = {}): Ajv {
  // Schemas a plan author writes for responses are ordinary JSON Schema: `required` without
  // `properties` and `properties` without `type` are legal there, so only those strict checks are off.
  const relaxed = options.forUserSchemas === true ? { strictRequired: false, strictTypes: false, strictTuples: false } : {};
  const ajv = new Ajv({ strict: true, allErrors: options.allErrors === true, allowUnionTypes: true, ...relaxed });
  addFormats(ajv);
  return ajv;
}

/** The part of an Ajv error the formatter reads (Fastify hands its validation errors over in this shape too). */
export interface AjvErrorLike {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  readonly message?: string | undefined;
}

/**
 * Formats an Ajv error as `path: problem`, the path written as in the document (`steps[2].http.url`,
 * `spec.forks[0].targets.8080`), under `root` (e.g. `plan`) when given. A digit-only segment is an
 * array index unless `arrays` names the only array fields, in which case it is an index only under
 * one of them (the sandbox spec: `forks` is its only array, and a port under `targets` is a key).
 */
export function describeAjvError(e: AjvErrorLike, root = '', arrays?: ReadonlySet<string>): { path: string; problem: string } {
  const segments = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let problem = e.message ?? 'is invalid';
  if (e.keyword === 'required') {
    segments.push(String(e.params.missingProperty));
    problem = 'is required';
  } else if (e.keyword === 'additionalProperties') {
    segments.push(String(e.params.additionalProperty));
    problem = 'is not a known field';
  } else if (e.keyword === 'enum') {
    problem = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (e.keyword === 'propertyNames') {
    segments.push(String(e.params.propertyName));
    problem = 'is not a valid name';
  }
  let path = root;
  let previous = '';
  for (const segment of segments) {
    const index = /^[0-9]+$/.test(segment) && (arrays === undefined || arrays.has(previous));
    if (index) path += `[${segment}]`;
    else path += path === '' ? segment : `.${segment}`;
    previous = segment;
  }
  return { path: path === '' ? '(document)' : path, problem };
}

export type { ValidateFunction };
