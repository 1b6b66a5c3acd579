// Error codes are a public contract: unique across the sidecar, control plane and validation, each in a README table with its status.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SIDECAR_ERRORS } from '../proxy/errors.js';
import { CONTROL_PLANE_ERRORS } from '../model/api-errors.js';
import { VALIDATE_ERRORS } from '../validate/errors.js';
import type { ErrorSpec } from '../core/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const tables: Record<string, Readonly<Record<string, ErrorSpec>>> = {
  sidecar: SIDECAR_ERRORS,
  'control plane': CONTROL_PLANE_ERRORS,
  validation: VALIDATE_ERRORS,
};
const all = Object.values(tables).flatMap((t) => Object.entries(t));

/** `| `CODE` | 502 |` — the status column as documented ("—" or "exit 2" for codes that never reach an HTTP client). */
function documentedStatus(code: string): string | undefined {
  return new RegExp(`^\\| \`${code}\` \\| ([^|]+?) \\|`, 'm').exec(readme)?.[1];
}

describe('error codes', () => {
  it('follow LANEWAY_ERR_* and are unique across components', () => {
    const codes = all.map(([code]) => code);
    for (const code of codes) expect(code).toMatch(/^LANEWAY_ERR_[A-Z0-9_]+$/);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('each carries an HTTP status (0 only when it never reaches an HTTP client) and a message', () => {
    for (const [, spec] of all) {
      expect(spec.status === 0 || (spec.status >= 400 && spec.status < 600)).toBe(true);
      expect(spec.message.length).toBeGreaterThan(10);
    }
  });

  it.each(all)('%s is in a README table with its status', (code, spec) => {
    const status = documentedStatus(code);
    expect(status, `no README table row for ${code}`).toBeDefined();
    if (spec.status !== 0) expect(status).toBe(String(spec.status));
    else expect(status).toMatch(/^(—|exit 2)$/);
  });

  it('the README documents no code that does not exist', () => {
    const known = new Set(all.map(([code]) => code));
    const documented = [...readme.matchAll(/^\| `(LANEWAY_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.filter((c) => !known.has(c!))).toEqual([]);
  });
});
