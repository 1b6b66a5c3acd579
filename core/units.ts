// Pure parsers for the units people write (durations, ports, hosts): they return a value or undefined, never throw.

const DURATION_RE = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/;
const FACTOR: Readonly<Record<string, number>> = Object.freeze({ ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 });

/** What every duration message says, so flags, plans and the API describe the syntax the same way. */
export const DURATION_SYNTAX = 'a duration like 500ms, 5s, 2m or 1h';
/** The same syntax as a JSON-Schema pattern (the API and the MCP tool schemas use it). */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$';

/** A duration that names its unit (`30m`, `1.5h`, `7d`): what a sandbox TTL takes. */
export const DURATION_WITH_UNIT_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';

/** A duration like `1500ms`, `5s`, `1.5h` or a plain number of milliseconds; undefined when malformed. */
export function parseDuration(value: string): number | undefined {
  const m = DURATION_RE.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * FACTOR[m[2] ?? 'ms']!);
}

/** A TCP port 1-65535 written in decimal; undefined otherwise. */
export function parsePort(value: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : undefined;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
