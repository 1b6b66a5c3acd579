// Governance: which hosts fork targets may point at (--allow-targets host globs and CIDRs). No I/O.
import { BlockList, isIP } from 'node:net';
import { ConfigError } from '../core/errors.js';

/** True when `host` (a DNS name, IPv4, or `[IPv6]`) is allowed. */
export type TargetPolicy = (host: string) => boolean;

const GLOB_RE = /^[A-Za-z0-9*]([-A-Za-z0-9.*]*[A-Za-z0-9*])?$/;

/**
 * Compiles the patterns once at startup. Returns null when there are none, so the apply path skips
 * the check entirely instead of calling a function that always says yes.
 *
 * - `10.0.0.0/8`, `fd00::/8`: CIDR, matched against IP-literal targets only. Names are not resolved:
 *   a DNS answer can change after the check, so resolving would give a false sense of control.
 * - `10.1.2.3`: one address.
 * - `*.default.svc`, `orders-*.staging.svc.cluster.local`: globs, `*` matching any run of characters
 *   (dots included), case-insensitive (RFC 4343: DNS names compare case-insensitively).
 */
export function compileAllowTargets(patterns: readonly string[]): TargetPolicy | null {
  if (patterns.length === 0) return null;
  const blocks = new BlockList();
  let hasBlocks = false;
  const globs: RegExp[] = [];
  for (const pattern of patterns) {
    const slash = pattern.indexOf('/');
    if (slash !== -1) {
      const addr = pattern.slice(0, slash);
      const prefixText = pattern.slice(slash + 1);
      const family = isIP(addr);
      const prefix = Number(prefixText);
      if (family === 0 || !/^[0-9]{1,3}$/.test(prefixText) || prefix > (family === 4 ? 32 : 128)) {
        throw new ConfigError('--allow-targets', `'${pattern}' is not a valid CIDR`);
      }
      blocks.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
      hasBlocks = true;
      continue;
    }
    const family = isIP(pattern.replace(/^\[|\]$/g, ''));
    if (family !== 0) {
      blocks.addAddress(pattern.replace(/^\[|\]$/g, ''), family === 4 ? 'ipv4' : 'ipv6');
      hasBlocks = true;
      continue;
    }
    if (!GLOB_RE.test(pattern)) {
      throw new ConfigError('--allow-targets', `'${pattern}' is neither a host glob (letters, digits, '-', '.', '*') nor a CIDR`);
    }
    const source = pattern.toLowerCase().replace(/\./g, '\\.').replace(/\*/g, '.*');
    globs.push(new RegExp(`^${source}\\.?$`));
  }
  return (host: string): boolean => {
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    const family = isIP(bare);
    if (family !== 0 && hasBlocks && blocks.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return true;
    const lower = bare.toLowerCase();
    for (const glob of globs) if (glob.test(lower)) return true;
    return false;
  };
}
