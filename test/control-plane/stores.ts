// The stores the control-plane suites run against: SQLite always, etcd (a real 3-member cluster) where it is installed.
import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type ControlPlaneConfig } from '../../control-plane/config.js';
import { ETCD_BINARY, ETCD_SKIP_REASON, EtcdCluster } from '../helpers/etcd.js';
import { tempDir } from './helpers.js';

export interface StoreUnderTest {
  readonly name: 'sqlite' | 'etcd';
  /** A fresh, empty store: a data directory, or an etcd URL with a key prefix of its own. */
  fresh(): string;
  /** The config overrides of a control plane on `location` (in-process). */
  config(location: string): Partial<ControlPlaneConfig> & { dataDir: string };
  /** The flags of a control-plane process on `location`. */
  args(location: string): string[];
}

let cluster: Promise<EtcdCluster> | null = null;
let current: EtcdCluster | null = null;

const sqlite: StoreUnderTest = {
  name: 'sqlite',
  fresh: () => tempDir(),
  config: (dir) => ({ dataDir: dir }),
  args: (dir) => ['--data', dir],
};

const etcd: StoreUnderTest = {
  name: 'etcd',
  fresh: () => {
    if (current === null) throw new Error('the etcd cluster is not started (call useStores() at the top of the file)');
    return current.storeUrl();
  },
  // A short lease: leadership tests wait for a takeover; etcd's minimum is 2 s.
  config: (url) => ({ dataDir: tempDir(), etcd: (loadConfig(['--store', url, '--leader-lease', '2s'], {}) as ControlPlaneConfig).etcd }),
  args: (url) => ['--store', url, '--leader-lease', '2s'],
};

/** The stores to run a suite against; registers starting and stopping the shared etcd cluster for this file. */
export function useStores(): StoreUnderTest[] {
  if (ETCD_BINARY === undefined) {
    console.warn(ETCD_SKIP_REASON);
    return [sqlite];
  }
  beforeAll(async () => {
    cluster ??= EtcdCluster.start();
    current = await cluster;
  }, 120_000);
  afterAll(async () => {
    const c = await cluster;
    cluster = null;
    current = null;
    await c?.close();
  });
  return [sqlite, etcd];
}

/** The running cluster (for tests that stop members). */
export function etcdCluster(): EtcdCluster {
  if (current === null) throw new Error('the etcd cluster is not started');
  return current;
}
