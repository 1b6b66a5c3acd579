// `${{ params.x }}`, `${{ steps.<id>.<field> }}` and `${{ sandbox.<field> }}` references in plan inputs: parsing and substitution. No I/O.

/** What a reference points at. */
export type Ref =
  | { readonly kind: 'params'; readonly name: string }
  | { readonly kind: 'steps'; readonly id: string; readonly field: string }
  | { readonly kind: 'sandbox'; readonly field: 'name' | 'routingKey' };

// A deliberately tiny grammar: a dotted name, nothing else. No operators, no function calls, no
// expressions: a plan's inputs are data, so the same plan and params always mean the same request.
const TEMPLATE_RE = /\$\{\{\s*([^{}]*?)\s*\}\}/g;
const WHOLE_RE = /^\$\{\{\s*([^{}]*?)\s*\}\}$/;
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
export const STEP_ID_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** Parses the text between `${{` and `}}`; returns a reason string when it is not a valid reference. */
export function parseRef(expr: string): Ref | string {
  const parts = expr.split('.');
  const [head, a, b] = parts;
  if (head === 'params' && parts.length === 2 && a !== undefined && NAME_RE.test(a)) return { kind: 'params', name: a };
  if (head === 'steps' && parts.length === 3 && a !== undefined && b !== undefined && STEP_ID_RE.test(a) && NAME_RE.test(b)) {
    return { kind: 'steps', id: a, field: b };
  }
  if (head === 'sandbox' && parts.length === 2 && (a === 'name' || a === 'routingKey')) return { kind: 'sandbox', field: a };
  return `'\${{ ${expr} }}' is not a reference; expected \${{ params.<name> }}, \${{ steps.<id>.<field> }}, \${{ sandbox.name }} or \${{ sandbox.routingKey }}`;
}

/** Every reference in a string, in order, or the first malformed one's reason. */
export function refsIn(text: string): Ref[] | string {
  const refs: Ref[] = [];
  for (const m of text.matchAll(TEMPLATE_RE)) {
    const ref = parseRef(m[1] as string);
    if (typeof ref === 'string') return ref;
    refs.push(ref);
  }
  // `${{` without a closing `}}` would otherwise be sent as literal text: almost certainly a typo.
  const stripped = text.replace(TEMPLATE_RE, '');
  if (stripped.includes('${{')) return `unterminated \${{ in '${text}'`;
  return refs;
}

export function hasTemplate(text: string): boolean {
  return text.includes('${{');
}

/** True when the whole string is exactly one `${{ params.<name> }}`: the only template allowed where a number is expected. */
export function isParamRef(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const m = WHOLE_RE.exec(value);
  if (m === null) return false;
  const ref = parseRef(m[1] as string);
  return typeof ref !== 'string' && ref.kind === 'params';
}

/** Marker a resolver returns for a reference it cannot resolve yet (left in place as text). */
export const KEEP: unique symbol = Symbol('keep');
export type Resolver = (ref: Ref) => unknown;

/**
 * Substitutes references in every string of `value` (objects and arrays walked). A string that is one
 * reference and nothing else takes the referenced value with its type (`${{ params.count }}` → 3), so
 * JSON bodies keep numbers numbers; references inside longer text are stringified (objects as JSON).
 */
export function interpolate(value: unknown, resolve: Resolver): unknown {
  if (typeof value === 'string') return interpolateString(value, resolve);
  if (Array.isArray(value)) return value.map((v) => interpolate(v, resolve));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, resolve);
    return out;
  }
  return value;
}

function interpolateString(text: string, resolve: Resolver): unknown {
  if (!text.includes('${{')) return text;
  const whole = WHOLE_RE.exec(text);
  if (whole !== null) {
    const ref = parseRef(whole[1] as string);
    if (typeof ref === 'string') return text; // validation rejected malformed references already
    const v = resolve(ref);
    return v === KEEP ? text : v;
  }
  return text.replace(TEMPLATE_RE, (match, expr: string) => {
    const ref = parseRef(expr);
    if (typeof ref === 'string') return match;
    const v = resolve(ref);
    if (v === KEEP) return match;
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

/** `${{ steps.a.b }}` as text, for messages. */
export function formatRef(ref: Ref): string {
  switch (ref.kind) {
    case 'params':
      return `\${{ params.${ref.name} }}`;
    case 'steps':
      return `\${{ steps.${ref.id}.${ref.field} }}`;
    case 'sandbox':
      return `\${{ sandbox.${ref.field} }}`;
  }
}
