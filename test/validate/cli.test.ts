// `laneway plan validate|push` error lines as a terminal shows them: the server's code and status, a YAML error's path once with its line, column and reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLaneway } from '../helpers/processes.js';
import { removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from '../control-plane/helpers.js';
import { workdir } from './fixture.js';

let cp: ControlPlaneProcess;
let wd: ReturnType<typeof workdir>;

const laneway = (args: string[]) => runLaneway(['plan', ...args], { LANEWAY_URL: cp.url, LANEWAY_TOKEN: '' });
const plan = (description: string): string => `name: conflict\nversion: "1"\ndescription: ${description}\nsteps:\n  - id: w\n    wait: {}\n`;

beforeAll(async () => {
  wd = workdir();
  cp = await startControlPlane(tempDir());
});

afterAll(async () => {
  await cp?.stop();
  wd?.remove();
  removeTempDirs();
});

describe('laneway plan error lines', () => {
  it('push of a stored version with other content ends with the code and status, as sandbox errors do', async () => {
    const first = await laneway(['push', wd.file('v1.yaml', plan('first'))]);
    expect(first.code, first.stderr).toBe(0);
    const conflict = await laneway(['push', wd.file('v1-changed.yaml', plan('changed'))]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^laneway: .+ \(LANEWAY_ERR_PLAN_VERSION_CONFLICT 409\)\n$/);
  });

  it('validate reports every mistake of a plan at once, one line each with its path', async () => {
    const file = wd.file('six-mistakes.yaml', [
      'name: six',
      'version: "1"',
      'params:',
      '  n: {type: integer, default: "ten"}',
      'steps:',
      '  - id: a',
      '    http: {url: "http://127.0.0.1:9/${{ params.missing }}", timeout: soon}',
      '  - id: a',
      '    wait: {}',
      '    assert: [{status: 200}]',
      '  - id: c',
      '    http: {url: "http://127.0.0.1:9/${{ steps.nope.status }}"}',
      '    capture: {x: "no-jsonpath"}',
      '',
    ].join('\n'));
    const res = await laneway(['validate', file]);
    expect(res.code).toBe(2);
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    expect(lines.every((l) => l.startsWith(`laneway: ${file}: LANEWAY_ERR_PLAN_INVALID: `)), res.stderr).toBe(true);
    const paths = lines.map((l) => l.slice(`laneway: ${file}: LANEWAY_ERR_PLAN_INVALID: `.length).split(':')[0]);
    expect(paths).toEqual(['params.n.default', 'steps[0].http.url', 'steps[0].http.timeout', 'steps[1].id', 'steps[1].assert', 'steps[2].http.url', 'steps[2].capture.x']);
  });

  it('a YAML syntax error is one line: the path once, line and column, and the parser reason', async () => {
    const file = wd.file('broken.yaml', 'name: broken\nversion: "1"\nsteps: [\n  - id: w\n');
    const res = await laneway(['validate', file]);
    expect(res.code).toBe(2);
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    expect(lines, res.stderr).toHaveLength(1);
    const line = lines[0]!;
    expect(line.split(file).length - 1, line).toBe(1);
    expect(line).toMatch(/LANEWAY_ERR_PLAN_INVALID: line \d+, column \d+: \S.*[^:]$/);
    expect(line).not.toMatch(/column \d+:$/);
    // and the offending line, quoted
    expect(line).toMatch(/\(line \d+: "[^"]+"\)$/);
  });
});
