// `laneway plan run|validate|push|list`: runs a plan locally against a sandbox (exit 0 pass, 1 fail, 2 could not run), checks and stores plans.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, LanewayError } from '../core/errors.js';
import { ApiError, LanewayClient, serverFrom, type PlanSummary } from '../client/api.js';
import { PlanInvalidError, ValidateError } from '../validate/errors.js';
import { parseParamPairs, parsePlan, type Plan } from '../validate/plan.js';
import { loadPolicy, type Policy } from '../validate/policy.js';
import { junit, markdown, summarize } from '../validate/report.js';
import { prepare, runPlan } from '../validate/runner.js';
import { parseSubcommand } from '../core/flags.js';
import { PLAN_FLAGS, RESOURCE_FORMATS } from './commands.js';
import { outputFormat, printResources, type ResourceView } from './output.js';
import { terminalProgress } from './progress.js';

const PLANS: ResourceView<PlanSummary> = {
  kind: 'plan',
  name: (p) => p.name,
  columns: [
    ['NAME', (p) => p.name],
    ['VERSIONS', (p) => p.versions.map((v) => `${v.version}${v.tags.length > 0 ? ` [${v.tags.join(', ')}]` : ''}`).join(', ')],
  ],
  empty: 'no plans',
};

/** Errors that mean "the plan could not run": exit 2 with one line, like every configuration error. */
const CANNOT_RUN = new Set([
  'LANEWAY_ERR_PLAN_INVALID',
  'LANEWAY_ERR_PARAM_INVALID',
  'LANEWAY_ERR_POLICY_INVALID',
  'LANEWAY_ERR_POLICY_VIOLATION',
  'LANEWAY_ERR_SANDBOX_REQUIRED',
  'LANEWAY_ERR_SANDBOX_NOT_FOUND',
  'LANEWAY_ERR_PLAN_NOT_FOUND',
]);

function asConfigError(subject: string, err: unknown): unknown {
  if (!(err instanceof LanewayError && CANNOT_RUN.has(err.code))) return err;
  // A YAML or size error already names its file (the plans API has no other subject): name it once.
  const unprefixed = (message: string): string => (message.startsWith(`${subject}: `) ? message.slice(subject.length + 2) : message);
  // Every problem of an invalid plan on its own line, each naming the file and its path.
  const lines = err instanceof PlanInvalidError ? err.problems.map((p) => unprefixed(p.message)) : [unprefixed(err.message)];
  return new ConfigError(subject, lines.map((line) => `${err.code}: ${line}`).join(`\nlaneway: ${subject}: `));
}

function looksLikeFile(ref: string): boolean {
  return existsSync(ref) || /\.(ya?ml|json)$/i.test(ref) || ref.includes('/');
}

function readPlanFile(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parsePlan(text, file);
}

async function loadPlan(ref: string, client: LanewayClient): Promise<Plan> {
  if (looksLikeFile(ref) || ref === '-') return readPlanFile(ref);
  const at = ref.indexOf('@');
  const name = at === -1 ? ref : ref.slice(0, at);
  const version = at === -1 ? undefined : ref.slice(at + 1);
  try {
    return (await client.plan(name, version)).plan;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) throw new ValidateError('LANEWAY_ERR_PLAN_NOT_FOUND', `${ref}: ${err.message}`);
    throw err;
  }
}

function policyFrom(values: Record<string, unknown>): Policy | null {
  if (typeof values.policy !== 'string') return null;
  try {
    return loadPolicy(values.policy);
  } catch (err) {
    throw asConfigError('--policy', err);
  }
}

function one(positionals: string[], command: string, what: string): string {
  if (positionals.length !== 1) throw new ConfigError(command, `expects exactly one ${what}`);
  return positionals[0]!;
}

export async function runPlanCommand(argv: string[]): Promise<void> {
  const { values, command, args } = parseSubcommand(argv, PLAN_FLAGS, 'plan');
  const client = new LanewayClient(serverFrom(values));
  switch (command) {
    case 'run': {
      const ref = one(args, 'run', 'plan file or name');
      const output = outputFormat(values, ['summary', 'json']);
      if (values['server-side'] === true) {
        if (looksLikeFile(ref) || ref === '-') throw new ConfigError('--server-side', 'runs a stored plan: push the file first (laneway plan push), then run it by name');
        const at = ref.indexOf('@');
        const name = at === -1 ? ref : ref.slice(0, at);
        let run;
        try {
          run = await client.runPlan(name, {
            ...(at === -1 ? {} : { version: ref.slice(at + 1) }),
            ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
            params: parseParamPairs((values.param as string[] | undefined) ?? []),
            wait: false,
          });
        } catch (err) {
          throw asConfigError(ref, err);
        }
        process.stdout.write(output === 'json' ? `${JSON.stringify(run, null, 2)}\n` : `run/${run.id} started (${run.plan}@${run.version}, sandbox ${run.sandbox ?? '-'}); laneway run get ${run.id}\n`);
        return;
      }
      const policy = policyFrom(values);
      let result;
      try {
        const plan = await loadPlan(ref, client);
        const params = parseParamPairs((values.param as string[] | undefined) ?? []);
        // on stderr, so stdout carries the summary alone; only for a person at a terminal reading the summary
        const progress = output === 'summary' ? terminalProgress(process.stderr, process.stdout.isTTY === true) : undefined;
        result = await runPlan(plan, params, {
          ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
          sandboxes: client.sandboxes(),
          policy,
          ...(progress === undefined ? {} : { progress }),
        });
      } catch (err) {
        throw asConfigError(ref, err);
      }
      if (typeof values.junit === 'string') writeFileSync(values.junit, junit(result));
      if (typeof values.result === 'string') writeFileSync(values.result, `${JSON.stringify(result, null, 2)}\n`);
      // A PR comment or $GITHUB_STEP_SUMMARY: appended to, as GitHub expects of the summary file.
      if (typeof values.markdown === 'string') appendFileSync(values.markdown, markdown(result));
      process.stdout.write(output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : summarize(result));
      if (result.verdict !== 'pass') process.exitCode = 1;
      return;
    }
    case 'validate': {
      const file = one(args, 'validate', 'plan file');
      const policy = policyFrom(values);
      try {
        const plan = readPlanFile(file);
        if (policy !== null) {
          // The policy needs concrete numbers and hosts: check with the parameters' defaults (and any
          // --param), and a stand-in sandbox, since no request is sent.
          const params = parseParamPairs((values.param as string[] | undefined) ?? []);
          const standIn = { get: async (name: string) => ({ name, routingKey: 'validate', phase: 'Ready' as const, targetCount: 0, waiting: [] }), traffic: async () => undefined };
          await prepare(plan, params, { sandboxes: standIn, sandbox: 'validate', policy });
        }
        process.stdout.write(`plan ${plan.name}@${plan.version} is valid (${plan.steps.length} steps)${policy === null ? '' : ` and allowed by ${policy.source}`}\n`);
      } catch (err) {
        throw asConfigError(file, err);
      }
      return;
    }
    case 'push': {
      const file = one(args, 'push', 'plan file');
      let plan: Plan;
      try {
        plan = readPlanFile(file);
      } catch (err) {
        throw asConfigError(file, err);
      }
      const tags = (values.tag as string[] | undefined) ?? [];
      const stored = await client.putPlan(plan, tags);
      process.stdout.write(`plan/${plan.name}@${stored.version} ${stored.result === 'created' ? 'stored' : 'unchanged'}${stored.tags.length > 0 ? ` (tags: ${stored.tags.join(', ')})` : ''}\n`);
      return;
    }
    case 'list': {
      const format = outputFormat(values, RESOURCE_FORMATS);
      const plans = await client.plans();
      printResources(format, plans, { items: plans }, PLANS, values['no-headers'] === true);
      return;
    }
    default:
      throw new ConfigError(command, 'unknown plan command (expected run, validate, push or list; laneway help plan)');
  }
}
