// Test helper: the real etcd cluster the etcd-store suites start (shared with the scale bench, which lives below the tests).
export { ETCD_BINARY, ETCD_SKIP_REASON, EtcdCluster } from '../../bench/lib/etcd.js';
