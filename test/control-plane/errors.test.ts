// The control plane's error table: unique codes, disjoint from the sidecar's, each documented with its status.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_ERRORS, ControlPlaneError } from '../../control-plane/errors.js';
import { SIDECAR_ERRORS } from '../../proxy/errors.js';
import { toControlPlaneError } from '../../control-plane/app.js';

const doc = readFileSync(new URL('../../control-plane/README.section.md', import.meta.url), 'utf8');

describe('error table', () => {
  it('codes are LANEWAY_ERR_*, unique, and not reused from the sidecar', () => {
    const codes = Object.keys(CONTROL_PLANE_ERRORS);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^LANEWAY_ERR_[A-Z_]+$/);
      expect(Object.keys(SIDECAR_ERRORS)).not.toContain(code);
    }
  });

  it.each(Object.entries(CONTROL_PLANE_ERRORS))('%s is documented with status %o', (code, spec) => {
    expect(doc).toMatch(new RegExp(`^\\| \`${code}\` \\| ${spec.status} \\|`, 'm'));
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `(LANEWAY_ERR_[A-Z_]+)` \| \d{3} \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(CONTROL_PLANE_ERRORS).sort());
  });

  it('an unexpected server fault becomes a bare 500 INTERNAL without its message', () => {
    const error = toControlPlaneError(new Error('SQLITE_FULL: database or disk is full at /secret/path'));
    expect(error).toBeInstanceOf(ControlPlaneError);
    expect(error.status).toBe(500);
    expect(error.toBody()).toEqual({ error: { code: 'LANEWAY_ERR_INTERNAL', message: CONTROL_PLANE_ERRORS.LANEWAY_ERR_INTERNAL.message } });
  });
});
