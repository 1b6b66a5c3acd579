// --allow-targets patterns: globs, CIDRs, single addresses, and what they must not match.
import { describe, expect, it } from 'vitest';
import { compileAllowTargets } from '../../model/allow-targets.js';

describe('compileAllowTargets', () => {
  it('no patterns means no check at all (null, skipped on the apply path)', () => {
    expect(compileAllowTargets([])).toBeNull();
  });

  const policy = compileAllowTargets(['*.default.svc', 'orders-*.staging.svc.cluster.local', '10.0.0.0/8', 'fd00::/8', '192.168.1.7']);
  const cases: [string, boolean][] = [
    ['orders.default.svc', true],
    ['a.b.default.svc', true], // `*` spans dots
    ['ORDERS.Default.SVC', true], // DNS names compare case-insensitively (RFC 4343)
    ['orders.default.svc.', true], // fully qualified
    ['default.svc', false], // `*.` needs at least the dot
    ['orders.default.svc.evil.com', false], // anchored at the end
    ['xdefault.svc', false],
    ['orders-pr42.staging.svc.cluster.local', true],
    ['payments.staging.svc.cluster.local', false],
    ['10.1.2.3', true],
    ['11.1.2.3', false],
    ['[fd00::1]', true],
    ['[fe80::1]', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['10.evil.com', false], // a CIDR never matches a name
  ];
  it.each(cases)('%s → %s', (host, allowed) => {
    expect(policy?.(host)).toBe(allowed);
  });

  it('rejects malformed patterns as configuration errors naming the flag', () => {
    expect(() => compileAllowTargets(['10.0.0.0/33'])).toThrow(/--allow-targets: '10\.0\.0\.0\/33' is not a valid CIDR/);
    expect(() => compileAllowTargets(['not/a/cidr'])).toThrow(/not a valid CIDR/);
    expect(() => compileAllowTargets(['bad host'])).toThrow(/neither a host glob/);
    expect(() => compileAllowTargets(['a..b(c)'])).toThrow(/neither a host glob/);
  });
});
