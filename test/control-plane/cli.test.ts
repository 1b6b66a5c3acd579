// The `laneway sandbox` and `laneway routes` CLI as a child process against a real control plane process.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { validateSnapshot } from '../../model/route-table.js';
import { freePort, runLaneway } from '../helpers/processes.js';
import { removeTempDirs, startControlPlane, tempDir, type ControlPlaneProcess } from './helpers.js';

const WRITER = 'writer-token-0123456789';
const READER = 'reader-token-0123456789';
let cp: ControlPlaneProcess;
let secured: ControlPlaneProcess;
let target: Server;
let targetPort: number;
let dir: string;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const laneway = (args: string[], env: NodeJS.ProcessEnv = {}) => runLaneway(args, { LANEWAY_URL: cp.url, LANEWAY_TOKEN: '', ...env });

beforeAll(async () => {
  dir = tempDir();
  target = createServer((s) => s.destroy());
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  targetPort = (target.address() as { port: number }).port;
  const tokens = file('tokens', `writer:${WRITER}\nreader:${READER}\n`);
  [cp, secured] = await Promise.all([
    startControlPlane(tempDir(), ['--probe-interval', '200ms']),
    startControlPlane(tempDir(), ['--tokens-file', tokens]),
  ]);
});

afterAll(async () => {
  await cp?.stop();
  await secured?.stop();
  target?.close();
  removeTempDirs();
});

describe('laneway sandbox', () => {
  it('apply -f yaml --wait prints the key and the baggage header, then waits for Ready', async () => {
    const yaml = file(
      'pr-42.yaml',
      `name: pr-42\nspec:\n  routingKey: k7f3q2\n  ttl: 2h\n  labels: {team: checkout}\n  forks:\n    - workload: default/orders\n      targets: {"8080": "127.0.0.1:${targetPort}"}\n`,
    );
    const res = await laneway(['sandbox', 'apply', '-f', yaml, '--wait']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('sandbox/pr-42 created (revision 1)');
    expect(res.stdout).toContain('routing key: k7f3q2');
    expect(res.stdout).toContain('send header: baggage: laneway=k7f3q2');
    expect(res.stdout).toMatch(/sandbox\/pr-42 is Ready\n$/);

    const again = await laneway(['sandbox', 'apply', '-f', yaml]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('sandbox/pr-42 unchanged (revision 1)');
  });

  it('apply reads JSON and multi-document YAML, generating keys when absent', async () => {
    const json = file('pr-43.json', JSON.stringify({ name: 'pr-43', spec: { forks: [{ workload: 'default/payments', targets: { '9090': '127.0.0.1:1' } }] } }));
    const res = await laneway(['sandbox', 'apply', '-f', json]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/routing key: [a-z2-7]{20}\n/);
    const multi = file('multi.yaml', 'name: m1\nspec: {forks: [{workload: ns/a, targets: {"1": "127.0.0.1:1"}}]}\n---\nname: m2\nspec: {forks: [{workload: ns/b, targets: {"1": "127.0.0.1:1"}}]}\n');
    const both = await laneway(['sandbox', 'apply', '-f', multi]);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toContain('sandbox/m1 created');
    expect(both.stdout).toContain('sandbox/m2 created');
  });

  it('list, get (yaml and json), routes, delete', async () => {
    const list = await laneway(['sandbox', 'list']);
    expect(list.code).toBe(0);
    const header = list.stdout.split('\n')[0] as string;
    expect(header).toMatch(/^NAME\s+ROUTING KEY\s+PHASE\s+REVISION\s+WORKLOADS\s+EXPIRES$/);
    expect(list.stdout).toMatch(/^pr-42\s+k7f3q2\s+(Ready|Pending)\s+1\s+default\/orders\s+in 2h$/m);

    const yaml = await laneway(['sandbox', 'get', 'pr-42']);
    expect(yaml.code).toBe(0);
    const doc = parseYaml(yaml.stdout);
    expect(doc.status.routingKey).toBe('k7f3q2');
    expect(doc.spec.labels).toEqual({ team: 'checkout' });
    const json = await laneway(['sandbox', 'get', 'pr-42', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toEqual(expect.objectContaining({ name: 'pr-42' }));

    const routes = await laneway(['routes', 'default/orders']);
    expect(routes.code).toBe(0);
    expect(routes.stdout).toMatch(/^default\/orders revision 1, 1 route\n/);
    expect(routes.stdout).toMatch(new RegExp(`^k7f3q2\\s+pr-42\\s+8080\\s+127\\.0\\.0\\.1:${targetPort}$`, 'm'));
    const routesJson = await laneway(['routes', 'default/orders', '-o', 'json']);
    expect(validateSnapshot(JSON.parse(routesJson.stdout)).routes[0]?.key).toBe('k7f3q2');

    const del = await laneway(['sandbox', 'delete', 'pr-42']);
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/^sandbox\/pr-42 deleted \(revision \d+\)\n$/);
    const gone = await laneway(['sandbox', 'get', 'pr-42']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('laneway: sandbox pr-42 does not exist (LANEWAY_ERR_SANDBOX_NOT_FOUND 404)\n');
  });

  it('prints the server message and exits non-zero on rejected input and conflicts', async () => {
    const bad = file('bad.yaml', 'name: bad\nspec:\n  forks:\n    - workload: default/orders\n      targets: {"8080": "no-port"}\n');
    const taken = file('taken.yaml', 'name: thief\nspec:\n  routingKey: owned\n  forks: [{workload: a/b, targets: {"1": "127.0.0.1:1"}}]\n');
    const owner = file('owner.yaml', 'name: owner\nspec:\n  routingKey: owned\n  forks: [{workload: a/b, targets: {"1": "127.0.0.1:1"}}]\n');
    expect((await laneway(['sandbox', 'apply', '-f', owner])).code).toBe(0);
    const [invalid, conflict, noName, broken] = await Promise.all([
      laneway(['sandbox', 'apply', '-f', bad]),
      laneway(['sandbox', 'apply', '-f', taken]),
      laneway(['sandbox', 'apply', '-f', file('noname.yaml', 'spec: {}\n')]),
      laneway(['sandbox', 'apply', '-f', file('broken.yaml', 'name: [unclosed\n')]),
    ]);
    // invalid input exits 2 (README "CLI": exit codes), a refused but valid request 1
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toBe('laneway: spec.forks[0].targets.8080: must be host:port, h2c://host:port or http://host:port (LANEWAY_ERR_INVALID_FIELD 400)\n');
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('already used by sandbox owner (LANEWAY_ERR_KEY_CONFLICT 409)');
    expect(noName.code).toBe(2);
    expect(noName.stderr).toContain('name must be a DNS-1123 label');
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^laneway: .*broken\.yaml: /);
  });

  it('--wait gives up after --timeout with the reason per target', async () => {
    const closed = await freePort();
    const f = file('down.yaml', `name: down\nspec: {forks: [{workload: a/c, targets: {"1": "127.0.0.1:${closed}"}}]}\n`);
    const res = await laneway(['sandbox', 'apply', '-f', f, '--wait', '--timeout', '1s']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/waiting for sandbox\/down: 0\/1 targets ready \(127\.0\.0\.1:\d+: (ECONNREFUSED|not probed yet)\)/);
    expect(res.stderr).toMatch(/laneway: sandbox\/down not Ready after 1s: 0\/1 targets ready \(127\.0\.0\.1:\d+: ECONNREFUSED\)\n$/);
  });

  it('usage mistakes exit 2; an unreachable server exits 3 naming it', async () => {
    const port = await freePort();
    const [noFile, badName, unknown, down] = await Promise.all([
      laneway(['sandbox', 'apply']),
      laneway(['sandbox', 'get', 'Not_A_Name']),
      laneway(['sandbox', 'frobnicate']),
      laneway(['sandbox', 'list', '--server', `http://127.0.0.1:${port}`]),
    ]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('-f: apply needs -f <file>');
    expect(badName.code).toBe(2);
    expect(unknown.code).toBe(2);
    expect(down.code).toBe(3);
    expect(down.stderr).toBe(`laneway: cannot reach the control plane at http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });
});

describe('with tokens', () => {
  it('sends LANEWAY_TOKEN; missing and reader tokens get the server message', async () => {
    const f = file('sec.yaml', 'name: sec\nspec: {forks: [{workload: a/b, targets: {"1": "127.0.0.1:1"}}]}\n');
    const env = { LANEWAY_URL: secured.url };
    const [none, reader, writer] = await Promise.all([
      laneway(['sandbox', 'apply', '-f', f], env),
      laneway(['sandbox', 'apply', '-f', f], { ...env, LANEWAY_TOKEN: READER }),
      laneway(['sandbox', 'apply', '-f', f], { ...env, LANEWAY_TOKEN: WRITER }),
    ]);
    expect(none.code).toBe(3);
    expect(none.stderr).toBe('laneway: missing Authorization: Bearer <token> (LANEWAY_ERR_UNAUTHENTICATED 401)\n');
    expect(reader.code).toBe(3);
    expect(reader.stderr).toContain('LANEWAY_ERR_FORBIDDEN 403');
    expect(writer.code, writer.stderr).toBe(0);
    const list = await laneway(['sandbox', 'list'], { ...env, LANEWAY_TOKEN: READER });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^sec\s/m);
  });
});
