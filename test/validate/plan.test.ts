// The plan model without I/O: validation errors name their path, references are checked in order, params are typed, interpolation keeps types.
import { describe, expect, it } from 'vitest';
import { canonicalJson, parsePlan, resolveParams, validatePlan } from '../../validate/plan.js';
import { interpolate, KEEP } from '../../validate/template.js';
import { PlanInvalidError } from '../../validate/errors.js';

const base = (steps: string, params = ''): string => `name: p\nversion: "1"\n${params}steps:\n${steps}`;
const error = (text: string): string => {
  try {
    parsePlan(text, 'plan.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the plan to be invalid');
};

describe('plan validation', () => {
  it('accepts a plan using every action, assertion and reference form', () => {
    const plan = parsePlan(
      base(
        `  - id: w
    wait: {timeout: "\${{ params.wait }}"}
  - id: a
    http: {url: "http://\${{ params.host }}/x", method: POST, body: {n: "\${{ params.n }}", s: "\${{ sandbox.routingKey }}"}}
    capture: {token: $.token, etag: {header: etag}}
    assert:
      - status: [200, 201]
      - header: etag
        exists: true
      - jsonpath: $.items[?(@.n > 1)]
        exists: true
      - schema: {required: [token]}
      - latency: 250ms
  - id: b
    compare: {url: "http://\${{ params.host }}/y/\${{ steps.a.token }}", headers: {authorization: "Bearer \${{ steps.a.token }}"}, ignore: [$.at]}
  - id: c
    load: {url: "http://\${{ params.host }}/z", requests: "\${{ params.n }}", rate: 10, bounds: {percentile: p90, maxIncrease: "20%", grace: 5ms, maxErrorRate: "1%"}}
`,
        'params:\n  host: {type: string, default: "127.0.0.1:1"}\n  n: {type: integer, default: 3}\n  wait: {type: string, default: 5s}\n',
      ),
    );
    expect(plan.steps.map((s) => s.id)).toEqual(['w', 'a', 'b', 'c']);
  });

  it.each([
    ['an unknown action (no commands, ever)', base('  - id: x\n    exec: {command: ls}\n'), 'steps[0].exec: is not a known field'],
    ['two actions in one step', base('  - id: x\n    http: {url: "http://a"}\n    wait: {}\n'), 'steps[0]: needs exactly one action of http, compare, load, wait, traffic (got http, wait)'],
    ['a duplicate step id', base('  - id: x\n    wait: {}\n  - id: x\n    wait: {}\n'), "steps[1].id: 'x' is used by an earlier step"],
    ['a reference to a later step', base('  - id: a\n    http: {url: "http://h/${{ steps.b.status }}"}\n  - id: b\n    wait: {}\n'), 'steps[0].http.url: ${{ steps.b.status }} names no earlier step'],
    ['an output a step does not produce', base('  - id: a\n    http: {url: "http://h"}\n  - id: b\n    http: {url: "http://h/${{ steps.a.token }}"}\n'), 'steps[1].http.url: ${{ steps.a.token }}: step a has no output token (it has status, durationMs)'],
    ['a step output in the host', base('  - id: a\n    http: {url: "http://h"}\n    capture: {h: $.h}\n  - id: b\n    http: {url: "http://${{ steps.a.h }}/x"}\n'), 'steps[1].http.url: the scheme, host and port must be known before the plan runs'],
    ['an undeclared parameter', base('  - id: a\n    http: {url: "http://${{ params.host }}"}\n'), 'steps[0].http.url: ${{ params.host }} names no declared parameter'],
    ['a malformed reference', base('  - id: a\n    http: {url: "http://h/${{ env.HOME }}"}\n'), "steps[0].http.url: '${{ env.HOME }}' is not a reference"],
    ['a step output where a number must be known up front', base('  - id: a\n    http: {url: "http://h"}\n  - id: b\n    load: {url: "http://h", requests: "${{ steps.a.status }}", rate: 1}\n'), 'steps[1].load.requests: must be a number or a ${{ params.<name> }} reference'],
    ['a relative URL', base('  - id: a\n    http: {url: "/orders"}\n'), "steps[0].http.url: must be an absolute http:// or https:// URL, got '/orders'"],
    ['a bad regex', base('  - id: a\n    http: {url: "http://h"}\n    assert: [{header: x, matches: "("}]\n'), 'steps[0].assert[0].matches: not a valid regular expression'],
    ['an assertion with two subjects', base('  - id: a\n    http: {url: "http://h"}\n    assert: [{status: 200, latency: 1s}]\n'), 'steps[0].assert[0]: needs exactly one of status, header, jsonpath, schema, latency (got status, latency)'],
    ['an invalid JSON Schema', base('  - id: a\n    http: {url: "http://h"}\n    assert: [{schema: {type: objekt}}]\n'), 'steps[0].assert[0].schema: not a valid JSON Schema'],
    ['assertions on a load step', base('  - id: a\n    load: {url: "http://h", requests: 1, rate: 1}\n    assert: [{status: 200}]\n'), 'steps[0].assert: applies to http and compare steps, not load'],
    ['a capture named like a built-in output', base('  - id: a\n    http: {url: "http://h"}\n    capture: {status: $.s}\n'), "steps[0].capture.status: 'status' is a built-in output"],
    ['an unquoted numeric version', 'name: p\nversion: 1.0\nsteps:\n  - id: a\n    wait: {}\n', 'version: must be a string; quote it (version: "1.0")'],
    ['a bad duration', base('  - id: a\n    wait: {timeout: soon}\n'), "steps[0].wait.timeout: expected a duration like 500ms, 5s or 2m, got 'soon'"],
    ['a default of the wrong type', base('  - id: a\n    wait: {}\n', 'params:\n  n: {type: integer, default: "x"}\n'), 'params.n.default: must be of type integer'],
    ['YAML syntax', 'name: [\n', 'plan.yaml: line'],
  ])('rejects %s, naming the path', (_what, text, message) => {
    const got = error(text);
    expect(got.startsWith(message), got).toBe(true);
  });
});

describe('every problem at once', () => {
  it('lists each mistake with its path, the first as the field; shape errors first and alone', () => {
    const bad = {
      name: 'many',
      version: '1',
      params: { n: { type: 'integer', default: 'ten' } },
      steps: [
        { id: 'a', http: { url: 'http://127.0.0.1:9/${{ params.missing }}', timeout: 'soon' } },
        { id: 'a', wait: {} },
      ],
    };
    let caught: unknown;
    try {
      validatePlan(bad);
    } catch (err) {
      caught = err;
    }
    const err = caught as PlanInvalidError;
    expect(err).toBeInstanceOf(PlanInvalidError);
    expect(err.problems.map((p) => p.path)).toEqual(['params.n.default', 'steps[0].http.url', 'steps[0].http.timeout', 'steps[1].id']);
    expect(err.field).toBe('params.n.default');
    expect(err.message).toMatch(/^params\.n\.default: .*; also: steps\[0\]\.http\.url: .*; also: steps\[0\]\.http\.timeout: .*; also: steps\[1\]\.id: /);

    const shape = { name: 'many', version: '1', extra: true, steps: [{ id: 'a', wait: { bogus: 1 } }] };
    expect(() => validatePlan(shape)).toThrow(PlanInvalidError);
    try {
      validatePlan(shape);
    } catch (e) {
      expect((e as PlanInvalidError).problems.length).toBe(2);
    }
  });
});

describe('params', () => {
  const plan = validatePlan({
    name: 'p',
    version: '1',
    params: { n: { type: 'integer', default: 1 }, on: { type: 'boolean' }, env: { type: 'string', enum: ['a', 'b'], default: 'a' } },
    steps: [{ id: 'w', wait: {} }],
  });

  it('coerces CLI strings to the declared type and fills defaults', () => {
    expect(resolveParams(plan, { n: '3', on: 'true' })).toEqual({ n: 3, on: true, env: 'a' });
    expect(resolveParams(plan, { n: 4, on: false, env: 'b' })).toEqual({ n: 4, on: false, env: 'b' });
  });

  it.each([
    [{ on: 'true', n: '3.5' }, 'params.n: expected an integer, got "3.5"'],
    [{ n: '1' }, 'params.on: is required (boolean)'],
    [{ on: 'yes' }, 'params.on: expected a boolean, got "yes"'],
    [{ on: 'true', env: 'c' }, 'params.env: must be one of "a", "b"'],
    [{ on: 'true', x: '1' }, 'params.x: plan p has no such parameter (it takes n, on, env)'],
  ])('%j → %s', (given, message) => {
    expect(() => resolveParams(plan, given)).toThrow(message);
  });
});

describe('interpolation', () => {
  const resolve = (ref: { kind: string; name?: string }): unknown => (ref.kind === 'params' ? ({ n: 3, s: 'x', o: { a: 1 } } as Record<string, unknown>)[ref.name!] : KEEP);

  it('keeps the type of a whole-string reference, stringifies embedded ones, leaves unresolved ones in place', () => {
    expect(interpolate({ a: '${{ params.n }}', b: 'n=${{params.n}}', c: ['${{ params.o }}', 'o=${{ params.o }}'], d: '${{ steps.x.y }}' }, resolve as never)).toEqual({
      a: 3,
      b: 'n=3',
      c: [{ a: 1 }, 'o={"a":1}'],
      d: '${{ steps.x.y }}',
    });
  });

  it('gives the same canonical JSON whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 1, e: 2 }], c: 2 } })).toBe(canonicalJson({ a: { c: 2, d: [1, { e: 2, f: 1 }] }, b: 1 }));
  });
});
