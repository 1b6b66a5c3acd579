// Error codes are a public contract: unique across the sidecar and control plane, and each documented in the README.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SIDECAR_ERRORS } from '../proxy/errors.js';
import { CONTROL_PLANE_ERRORS } from '../control-plane/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('error codes', () => {
  const sidecar = Object.keys(SIDECAR_ERRORS);
  const controlPlane = Object.keys(CONTROL_PLANE_ERRORS);

  it('follow the LANEWAY_ERR_ naming and are disjoint between components', () => {
    for (const code of [...sidecar, ...controlPlane]) expect(code).toMatch(/^LANEWAY_ERR_[A-Z0-9_]+$/);
    expect(sidecar.filter((c) => controlPlane.includes(c))).toEqual([]);
  });

  it('each carries an HTTP status (0 only for errors that never reach a client) and a message', () => {
    for (const spec of [...Object.values(SIDECAR_ERRORS), ...Object.values(CONTROL_PLANE_ERRORS)]) {
      expect(spec.status === 0 || (spec.status >= 400 && spec.status < 600)).toBe(true);
      expect(spec.message.length).toBeGreaterThan(10);
    }
  });

  it.each([...sidecar, ...controlPlane])('%s is documented in the README', (code) => {
    expect(readme).toContain(`\`${code}\``);
  });
});
