// Error codes are a public contract: unique across the sidecar, control plane and validation, and each documented in the README.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SIDECAR_ERRORS } from '../proxy/errors.js';
import { CONTROL_PLANE_ERRORS } from '../control-plane/errors.js';
import { VALIDATE_ERRORS } from '../validate/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('error codes', () => {
  const sidecar = Object.keys(SIDECAR_ERRORS);
  const controlPlane = Object.keys(CONTROL_PLANE_ERRORS);
  const validate = Object.keys(VALIDATE_ERRORS);
  const all = [...sidecar, ...controlPlane, ...validate];

  it('follow the LANEWAY_ERR_ naming and are disjoint between components', () => {
    for (const code of all) expect(code).toMatch(/^LANEWAY_ERR_[A-Z0-9_]+$/);
    expect(new Set(all).size).toBe(all.length);
  });

  it('each carries an HTTP status (0 only for errors that never reach a client) and a message', () => {
    for (const spec of [...Object.values(SIDECAR_ERRORS), ...Object.values(CONTROL_PLANE_ERRORS), ...Object.values(VALIDATE_ERRORS)]) {
      expect(spec.status === 0 || (spec.status >= 400 && spec.status < 600)).toBe(true);
      expect(spec.message.length).toBeGreaterThan(10);
    }
  });

  it.each(all)('%s is documented in the README', (code) => {
    expect(readme).toContain(`\`${code}\``);
  });
});
