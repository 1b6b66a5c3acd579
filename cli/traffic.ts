// `laneway traffic <sandbox>`: what the sidecars captured for a sandbox (spec.capture), one line per exchange; --follow streams.
import { stringify } from 'yaml';
import { LanewayClient, serverFrom } from '../client/api.js';
import { ConfigError } from '../core/errors.js';
import { parseFlags, parsePositiveInt } from '../core/flags.js';
import { TRAFFIC_FLAGS } from './commands.js';
import { outputFormat } from './output.js';
import { isDnsLabel, isWorkloadName } from '../core/names.js';
import type { TrafficEntry, TrafficQuery } from '../model/capture.js';

/** One exchange (or drop marker) as one line. */
export function trafficLine(entry: TrafficEntry): string {
  if (entry.kind === 'dropped') {
    const why = entry.reason === 'invalid-record' ? `${entry.count} record(s) invalid: the sidecar sent something that is not an exchange` : `${entry.count} exchange(s) dropped: the sidecar's capture buffer was full`;
    return `${clock(entry.at)}  ${entry.workload}  ${why}\n`;
  }
  const e = entry.exchange;
  const status = e.status === 0 ? '---' : String(e.status);
  const error = e.error === undefined ? '' : `  ${e.error}`;
  return `${clock(e.at)}  ${e.workload}  ${e.method} ${e.path}  ${status}  ${e.durationMs.toFixed(1)} ms  -> ${e.target}${error}\n`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

function sinceOf(value: string): string {
  const relative = /^([0-9]+)(s|m|h)$/.exec(value);
  if (relative !== null) return new Date(Date.now() - Number(relative[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[relative[2] as 's' | 'm' | 'h']).toISOString();
  if (Number.isNaN(Date.parse(value))) throw new ConfigError('--since', `expected an RFC 3339 time or a duration like 5m, got '${value}'`);
  return value;
}

export async function runTrafficCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(argv, TRAFFIC_FLAGS, process.env, true);
  const [sandbox, ...extra] = positionals;
  if (sandbox === undefined || extra.length > 0 || !isDnsLabel(sandbox)) throw new ConfigError('traffic', `expected one sandbox name, got '${positionals.join(' ')}'`);
  // `line` is the table's name before -o table existed; both print one line per exchange
  const output = outputFormat(values, ['table', 'json', 'yaml', 'line']);
  const workload = values.workload as string | undefined;
  if (workload !== undefined && !isWorkloadName(workload)) throw new ConfigError('--workload', `expected <namespace>/<name>, got '${workload}'`);
  const status = values.status as string | undefined;
  if (status !== undefined && !/^([1-5]xx|error)$/.test(status)) throw new ConfigError('--status', 'expected 1xx-5xx or error');
  const query: TrafficQuery = {
    ...(workload === undefined ? {} : { workload }),
    ...(status === undefined ? {} : { status }),
    ...(typeof values.since === 'string' ? { since: sinceOf(values.since) } : {}),
    ...(typeof values.limit === 'string' ? { limit: parsePositiveInt('--limit', values.limit, 1000) } : {}),
  };
  // one entry per line (json) or per document (yaml), so a follow stream can be read as it comes
  const print = (entry: TrafficEntry): void =>
    void process.stdout.write(output === 'json' ? `${JSON.stringify(entry)}\n` : output === 'yaml' ? `---\n${stringify(entry)}` : trafficLine(entry));
  const client = new LanewayClient(serverFrom(values));
  const page = await client.traffic(sandbox, query);
  if (!page.capture) process.stderr.write(`sandbox ${sandbox} does not capture traffic: add "capture": {} to its spec\n`);
  for (const entry of page.entries) print(entry);
  if (values.follow !== true) return;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  await client.followTraffic(sandbox, { ...query, after: page.lastSeq }, print, abort.signal, (missed) =>
    process.stderr.write(`${missed} entries left the control plane's buffer before they could be shown\n`),
  );
}
