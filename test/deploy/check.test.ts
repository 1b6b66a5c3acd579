// deploy:check: the shipped manifests pass, and each kind of mistake in a copy of deploy/ is reported.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDeploy } from '../../deploy/check.js';

const DEPLOY = fileURLToPath(new URL('../../deploy', import.meta.url));
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A copy of deploy/ with `file` edited by `edit`; returns the check's errors. */
async function errorsAfter(file: string, edit: (text: string) => string): Promise<string[]> {
  const root = mkdtempSync(join(tmpdir(), 'laneway-deploy-check-'));
  temps.push(root);
  const dir = join(root, 'deploy');
  cpSync(DEPLOY, dir, { recursive: true });
  const path = join(dir, file);
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  expect(after, 'the edit must change the file').not.toBe(before);
  writeFileSync(path, after);
  return [...(await checkDeploy(dir, root)).errors];
}

describe('deploy:check', () => {
  it('passes on the manifests in the repository', async () => {
    const report = await checkDeploy(DEPLOY);
    expect(report.errors).toEqual([]);
    expect(report.kustomizations).toBeGreaterThanOrEqual(3);
    expect(report.manifests).toBeGreaterThanOrEqual(11);
  });

  const cases: [what: string, file: string, edit: (t: string) => string, expected: RegExp][] = [
    ['an unknown field (typo)', 'base/deployment.yaml', (t) => t.replace('readinessProbe:', 'readinesProbe:'), /containers\[0\]\.readinesProbe: unknown field/],
    ['a wrong type', 'base/pvc.yaml', (t) => t.replace('accessModes: [ReadWriteOnce]', 'accessModes: ReadWriteOnce'), /spec\.accessModes must be array/],
    ['a bad enum value', 'base/service.yaml', (t) => t.replace('protocol: TCP', 'protocol: tcp'), /spec\.ports\[0\]\.protocol must be one of \["SCTP","TCP","UDP"\]/],
    ['YAML 1.1 booleans, as Kubernetes reads them', 'base/namespace.yaml', (t) => t.replace('laneway.dev/inject: "false"', 'laneway.dev/inject: no'), /labels\.laneway\.dev\/inject must be string/],
    ['a duplicate key', 'base/service.yaml', (t) => t.replace('  selector:\n', '  type: ClusterIP\n  type: NodePort\n  selector:\n'), /Map keys must be unique/],
    ['failurePolicy Fail', 'base/webhook.yaml', (t) => t.replace('failurePolicy: Ignore', 'failurePolicy: Fail'), /failurePolicy must be Ignore/],
    ['a webhook path that is no admission route', 'base/webhook.yaml', (t) => t.replace('path: /v1/admission/mutate\n', 'path: /v1/admission/mutat\n'), /path \/v1\/admission\/mutat is not an admission route/],
    ['a webhook that could inject the control plane', 'base/webhook.yaml', (t) => t.replace(/, laneway-system\]/, ']'), /must exclude the control plane's namespace laneway-system/],
    ['a Service port name no container declares', 'base/service.yaml', (t) => t.replace('targetPort: webhook', 'targetPort: webhooks'), /targets webhooks, which no selected container declares/],
    ['a probe on an unknown port name', 'base/deployment.yaml', (t) => t.replace(/port: http\n/, 'port: api\n'), /readinessProbe uses unknown port name 'api'/],
    ['a PVC that is not in the build', 'base/deployment.yaml', (t) => t.replace('claimName: laneway-control-plane-data', 'claimName: data'), /claims 'data', which is not in this build/],
    ['an injected image that drifted from the control plane image', 'base/deployment.yaml', (t) => t.replace('--inject-image=registry.example.com/laneway:0.1.0', '--inject-image=registry.example.com/laneway:0.0.9'), /--inject-image .* differs from the container image/],
    ['a lane relay the advertised Service port does not reach', 'base/deployment.yaml', (t) => t.replace('--lane-listen=0.0.0.0:7071', '--lane-listen=0.0.0.0:7072'), /--lane-advertise .* does not reach --lane-listen 0\.0\.0\.0:7072/],
    ['a lane address that is no Service of the build', 'base/deployment.yaml', (t) => t.replace('--lane-advertise=laneway-control-plane.', '--lane-advertise=laneway-relay.'), /names Service laneway-system\/laneway-relay, which is not in this build/],
    ['several control-plane replicas on SQLite', 'ha/deployment.yaml', (t) => t.replace(/- --store=etcd:\/\/\S+/, '- --data=/var/lib/laneway'), /3 control-plane replicas need --store etcd:\/\//],
    ['local lanes on several replicas', 'ha/deployment.yaml', (t) => t.replace('- --leader-lease=10s', '- --leader-lease=10s\n            - --lane-listen=0.0.0.0:7071'), /--lane-listen with 3 replicas/],
    ['a PodDisruptionBudget that selects nothing', 'ha/pdb.yaml', (t) => t.replace('  selector:\n    matchLabels:\n      app.kubernetes.io/name: laneway-control-plane', '  selector:\n    matchLabels:\n      app.kubernetes.io/name: laneway-controlplane'), /PodDisruptionBudget laneway-control-plane selects no workload/],
    ['a StatefulSet mounting a volume it does not claim', 'ha/etcd.yaml', (t) => t.replace('mountPath: /var/lib/etcd', 'mountPath: /var/lib/etcd\n            - name: wal\n              mountPath: /var/lib/etcd-wal'), /mounts unknown volume 'wal'/],
    ['a CI workflow step with both run and uses', 'examples/ci/github-actions.yaml', (t) => t.replace('      - uses: actions/checkout@v4\n', '      - uses: actions/checkout@v4\n        run: echo\n'), /steps\[0\]: exactly one of run or uses/],
    ['a CI workflow running a laneway command that does not exist', 'examples/ci/github-actions.yaml', (t) => t.replace('laneway sandbox delete', 'laneway sandboxes delete'), /'laneway sandboxes' is not a laneway command/],
    ['a manifest no kustomization lists', 'base/kustomization.yaml', (t) => t.replace('  - pvc.yaml\n', ''), /base\/pvc\.yaml: not listed by any kustomization/],
    ['a kustomization feature the checker does not model', 'examples/orders/kustomization.yaml', (t) => `${t}namePrefix: dev-\n`, /'namePrefix' is not modelled/],
    ['a missing resource', 'examples/orders/kustomization.yaml', (t) => t.replace('orders.yaml', 'order.yaml'), /resource 'order.yaml' does not exist/],
    ['an invalid example sandbox', 'examples/orders/sandbox.yaml', (t) => t.replace('workload: shop/orders', 'workload: orders'), /sandbox\.yaml/],
  ];
  for (const [what, file, edit, expected] of cases) {
    it(`reports ${what}`, async () => {
      const errors = await errorsAfter(file, edit);
      expect(errors.join('\n')).toMatch(expected);
    });
  }
});
