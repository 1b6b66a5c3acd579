// Test helper: a sidecar routes file (the same shape the control plane pushes), written to `path`.
import { writeFileSync } from 'node:fs';

export interface TestRoute {
  readonly key: string;
  readonly sandbox: string;
  /** app port → fork `host:port` */
  readonly targets: Readonly<Record<string, string>>;
}

export function writeRoutesFile(path: string, routes: readonly TestRoute[], workload = 'default/orders', revision = 1): string {
  writeFileSync(path, JSON.stringify({ workload, revision, routes }));
  return path;
}
