// `laneway run list|get|cancel`: the server-side runs a control plane keeps (history, result, cancel).
import { LanewayClient, serverFrom, DEFAULT_SERVER, type Run } from '../client/api.js';
import { ConfigError } from '../core/errors.js';
import { parseSubcommand, type FlagSpec } from '../core/flags.js';
import { RUNS_PAGE_DEFAULT, type RunFilter, type RunStatus } from '../model/plans.js';
import { markdown, summarize } from '../validate/report.js';
import { table } from './table.js';

const FLAGS = Object.freeze({
  server: { type: 'string', env: 'LANEWAY_URL' },
  plan: { type: 'string', env: 'LANEWAY_RUN_PLAN' },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX' },
  status: { type: 'string', env: 'LANEWAY_RUN_STATUS' },
  limit: { type: 'string', env: 'LANEWAY_RUN_LIMIT' },
  after: { type: 'string', env: 'LANEWAY_RUN_AFTER' },
  output: { type: 'string', short: 'o', env: 'LANEWAY_OUTPUT' },
  help: { type: 'boolean', short: 'h', env: 'LANEWAY_RUN_HELP' },
} as const satisfies Record<string, FlagSpec>);

const USAGE = `usage: laneway run <command> [flags]

  list [--plan p] [--sandbox s] [--status running|passed|failed|error] [--limit ${RUNS_PAGE_DEFAULT}] [--after cursor] [-o table|json]
                     server-side runs, newest first (the last line names the cursor of the next page)
  get <id> [-o summary|json|markdown]   a run's status and result (markdown: the PR report)
  cancel <id>                    stop a running run (its partial result is kept)

  --server url    control plane (default ${DEFAULT_SERVER}; env LANEWAY_URL); token from LANEWAY_TOKEN
  example: laneway run list --sandbox pr-42 --status failed
`;

const STATUSES: readonly RunStatus[] = ['running', 'passed', 'failed', 'error'];

function output(values: Record<string, unknown>, allowed: readonly string[], fallback: string): string {
  const chosen = typeof values.output === 'string' ? values.output : fallback;
  if (!allowed.includes(chosen)) throw new ConfigError('--output', `expected one of ${allowed.join(', ')}`);
  return chosen;
}

function oneId(args: readonly string[], command: string): string {
  if (args.length !== 1 || !/^[A-Za-z0-9-]{1,64}$/.test(args[0]!)) throw new ConfigError(command, 'expects exactly one run id');
  return args[0]!;
}

/** A stored run as a person reads it: the summary when finished, its error, or that it is still running. */
export function describeRun(run: Run): string {
  if (run.result !== null && run.error === null) return `run ${run.id} (${run.plan}@${run.version}, sandbox ${run.sandbox ?? '-'}): ${run.status}\n${summarize(run.result)}`;
  if (run.error !== null) return `run ${run.id} (${run.plan}@${run.version}): ${run.status}: ${run.error.code}: ${run.error.message}\n${run.result === null ? '' : summarize(run.result)}`;
  return `run ${run.id} (${run.plan}@${run.version}, sandbox ${run.sandbox ?? '-'}) is ${run.status} since ${run.createdAt}\n`;
}

export async function runRunCommand(argv: string[]): Promise<void> {
  const parsed = parseSubcommand(argv, FLAGS, USAGE);
  if (parsed === undefined) return;
  const { values, command, args } = parsed;
  const client = new LanewayClient(serverFrom(values));
  switch (command) {
    case 'list': {
      if (args.length > 0) throw new ConfigError('list', `unexpected argument '${args[0]}'`);
      const format = output(values, ['table', 'json'], 'table');
      const status = values.status;
      if (status !== undefined && !STATUSES.includes(status as RunStatus)) throw new ConfigError('--status', `expected one of ${STATUSES.join(', ')}`);
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new ConfigError('--limit', 'expected a positive integer');
      const filter: RunFilter = {
        ...(typeof values.plan === 'string' ? { plan: values.plan } : {}),
        ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
        ...(typeof status === 'string' ? { status: status as RunStatus } : {}),
      };
      const page = await client.listRuns(filter, limit, typeof values.after === 'string' ? values.after : undefined);
      if (format === 'json') return void process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
      if (page.items.length === 0) return void process.stdout.write('no runs\n');
      const rows = [['ID', 'PLAN', 'SANDBOX', 'STATUS', 'VERDICT', 'CREATED']];
      for (const r of page.items) rows.push([r.id, `${r.plan}@${r.version}`, r.sandbox ?? '-', r.status, r.verdict ?? '-', r.createdAt]);
      process.stdout.write(table(rows));
      if (page.next !== null) process.stdout.write(`more: laneway run list --after ${page.next}\n`);
      return;
    }
    case 'get': {
      const run = await client.run(oneId(args, 'get'));
      const format = output(values, ['summary', 'json', 'markdown'], 'summary');
      if (format === 'markdown') {
        if (run.result === null) throw new ConfigError('--output', `run ${run.id} has no result yet (${run.status}); markdown needs a finished run`);
        return void process.stdout.write(markdown(run.result, { runId: run.id }));
      }
      process.stdout.write(format === 'json' ? `${JSON.stringify(run, null, 2)}\n` : describeRun(run));
      return;
    }
    case 'cancel': {
      const run = await client.cancelRun(oneId(args, 'cancel'));
      process.stdout.write(`run/${run.id} cancelled (${run.status}${run.error === null ? '' : `, ${run.error.code}`})\n`);
      return;
    }
    default:
      throw new ConfigError(command, `unknown run command (expected list, get or cancel)\n${USAGE}`);
  }
}
