// Fork targets refused unless the operator allows them by name: cloud metadata, link-local, unspecified, the control plane itself. No I/O.
import { BlockList, isIP } from 'node:net';
import { isLoopbackHost } from '../core/units.js';

/** A listener of the control plane (its API, its webhook): a fork pointing there would turn the prober on ourselves. */
export interface SelfAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Instance-metadata endpoints (AWS IMDS v4 and v6, ECS task metadata, GCP, Azure, Alibaba, OpenStack's
 * and AWS's legacy names): reaching them from inside a cluster hands out cloud credentials.
 */
const METADATA_HOSTS: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.azure.com',
  'instance-data',
  'instance-data.ec2.internal',
]);
const METADATA_ADDRESSES: ReadonlySet<string> = new Set(['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200']);

/** RFC 3927 (169.254.0.0/16) and RFC 4291 §2.5.6 (fe80::/10): never a service address, often a metadata one. */
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');

/** An IPv4-mapped IPv6 literal (`::ffff:169.254.169.254`) is the IPv4 address for every check here. */
function normalise(host: string): { address: string; family: number } {
  let bare = host.startsWith('[') ? host.slice(1, -1) : host;
  bare = bare.toLowerCase();
  if (bare.endsWith('.')) bare = bare.slice(0, -1);
  const mapped = bare.startsWith('::ffff:') ? bare.slice(7) : '';
  if (mapped !== '' && isIP(mapped) === 4) return { address: mapped, family: 4 };
  return { address: bare, family: isIP(bare) };
}

function isUnspecified(address: string, family: number): boolean {
  if (family === 4) return address.startsWith('0.');
  return family === 6 && /^[0:]+$/.test(address);
}

/**
 * Why `host:port` may not be a fork target by default, or null when it may. The caller lets an explicit
 * `--allow-targets` entry override it (a platform that really forks onto a link-local address says so).
 */
export function forbiddenTarget(host: string, port: number, self: readonly SelfAddress[]): string | null {
  const { address, family } = normalise(host);
  if (METADATA_HOSTS.has(address) || METADATA_ADDRESSES.has(address)) return 'a cloud instance-metadata address';
  if (family !== 0 && LINK_LOCAL.check(address, family === 4 ? 'ipv4' : 'ipv6')) return 'a link-local address';
  if (isUnspecified(address, family)) return 'the unspecified address';
  for (const own of self) {
    if (own.port !== port) continue;
    // Loopback names reach a listener on loopback or on a wildcard; callers expand a wildcard into the
    // machine's interface addresses, so `self` lists every address a listener answers on.
    if (address === normalise(own.host).address || isLoopbackHost(address)) return "the control plane's own listener";
  }
  return null;
}
