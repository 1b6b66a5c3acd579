// The control plane's error mapping: a server fault never leaks its message to a client.
import { describe, expect, it } from 'vitest';
import { CONTROL_PLANE_ERRORS, ControlPlaneError } from '../../model/api-errors.js';
import { toControlPlaneError } from '../../control-plane/app.js';

// Codes, uniqueness and documentation are checked for every component in test/errors.test.ts.
describe('error mapping', () => {
  it('an unexpected server fault becomes a bare 500 INTERNAL without its message', () => {
    const error = toControlPlaneError(new Error('SQLITE_FULL: database or disk is full at /secret/path'));
    expect(error).toBeInstanceOf(ControlPlaneError);
    expect(error.status).toBe(500);
    expect(error.toBody()).toEqual({ error: { code: 'LANEWAY_ERR_INTERNAL', message: CONTROL_PLANE_ERRORS.LANEWAY_ERR_INTERNAL.message } });
  });
});
