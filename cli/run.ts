// `laneway run list|get|cancel`: the server-side runs a control plane keeps (history, result, cancel).
import { stringify } from 'yaml';
import { LanewayClient, serverFrom, type Run } from '../client/api.js';
import { ConfigError } from '../core/errors.js';
import { parseSubcommand } from '../core/flags.js';
import type { RunFilter, RunStatus, RunSummary } from '../model/plans.js';
import { markdown, summarize } from '../validate/report.js';
import { RESOURCE_FORMATS, RUN_FLAGS } from './commands.js';
import { outputFormat, printResources, type ResourceView } from './output.js';

const STATUSES: readonly RunStatus[] = ['running', 'passed', 'failed', 'error'];

function oneId(args: readonly string[], command: string): string {
  if (args.length !== 1 || !/^[A-Za-z0-9-]{1,64}$/.test(args[0]!)) throw new ConfigError(command, 'expects exactly one run id');
  return args[0]!;
}

const RUNS: ResourceView<RunSummary> = {
  kind: 'run',
  name: (r) => r.id,
  columns: [
    ['ID', (r) => r.id],
    ['PLAN', (r) => `${r.plan}@${r.version}`],
    ['SANDBOX', (r) => r.sandbox ?? '-'],
    ['STATUS', (r) => r.status],
    ['VERDICT', (r) => r.verdict ?? '-'],
    ['CREATED', (r) => r.createdAt],
  ],
  empty: 'no runs',
};

/** A stored run as a person reads it: the summary when finished, its error, or that it is still running. */
export function describeRun(run: Run): string {
  if (run.result !== null && run.error === null) return `run ${run.id} (${run.plan}@${run.version}, sandbox ${run.sandbox ?? '-'}): ${run.status}\n${summarize(run.result)}`;
  if (run.error !== null) return `run ${run.id} (${run.plan}@${run.version}): ${run.status}: ${run.error.code}: ${run.error.message}\n${run.result === null ? '' : summarize(run.result)}`;
  return `run ${run.id} (${run.plan}@${run.version}, sandbox ${run.sandbox ?? '-'}) is ${run.status} since ${run.createdAt}\n`;
}

export async function runRunCommand(argv: string[]): Promise<void> {
  const { values, command, args } = parseSubcommand(argv, RUN_FLAGS, 'run');
  const client = new LanewayClient(serverFrom(values));
  switch (command) {
    case 'list': {
      if (args.length > 0) throw new ConfigError('list', `unexpected argument '${args[0]}'`);
      const format = outputFormat(values, RESOURCE_FORMATS);
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
      printResources(format, page.items, page, RUNS, values['no-headers'] === true);
      // on stderr: a script reading the table or the names gets rows only
      if (format === 'table' && page.next !== null) process.stderr.write(`more: laneway run list --after ${page.next}\n`);
      return;
    }
    case 'get': {
      const run = await client.run(oneId(args, 'get'));
      const format = outputFormat(values, ['summary', 'json', 'yaml', 'markdown']);
      if (format === 'markdown') {
        if (run.result === null) throw new ConfigError('--output', `run ${run.id} has no result yet (${run.status}); markdown needs a finished run`);
        return void process.stdout.write(markdown(run.result, { runId: run.id }));
      }
      process.stdout.write(format === 'json' ? `${JSON.stringify(run, null, 2)}\n` : format === 'yaml' ? stringify(run) : describeRun(run));
      return;
    }
    case 'cancel': {
      const run = await client.cancelRun(oneId(args, 'cancel'));
      process.stdout.write(`run/${run.id} cancelled (${run.status}${run.error === null ? '' : `, ${run.error.code}`})\n`);
      return;
    }
    default:
      throw new ConfigError(command, 'unknown run command (expected list, get or cancel; laneway help run)');
  }
}
