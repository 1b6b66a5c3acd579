// `laneway plan run|validate|push|list`: runs a plan locally against a sandbox (exit 0 pass, 1 fail, 2 could not run), checks and stores plans.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, LanewayError } from '../core/errors.js';
import { ApiError, DEFAULT_SERVER, LanewayClient, serverFrom } from '../client/api.js';
import { PlanInvalidError, ValidateError } from '../validate/errors.js';
import { parseParamPairs, parsePlan, type Plan } from '../validate/plan.js';
import { loadPolicy, type Policy } from '../validate/policy.js';
import { junit, markdown, summarize } from '../validate/report.js';
import { prepare, runPlan } from '../validate/runner.js';
import { parseSubcommand, type FlagSpec } from '../core/flags.js';

const FLAGS = Object.freeze({
  server: { type: 'string', env: 'LANEWAY_URL' },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX' },
  param: { type: 'string', multiple: true, env: 'LANEWAY_PLAN_PARAMS' },
  junit: { type: 'string', env: 'LANEWAY_JUNIT' },
  policy: { type: 'string', env: 'LANEWAY_POLICY' },
  result: { type: 'string', env: 'LANEWAY_RESULT' },
  markdown: { type: 'string', env: 'LANEWAY_MARKDOWN' },
  output: { type: 'string', short: 'o', env: 'LANEWAY_OUTPUT' },
  tag: { type: 'string', multiple: true, env: 'LANEWAY_PLAN_TAGS' },
  'server-side': { type: 'boolean', env: 'LANEWAY_PLAN_SERVER_SIDE' },
  help: { type: 'boolean', short: 'h', env: 'LANEWAY_PLAN_HELP' },
} as const satisfies Record<string, FlagSpec>);

const USAGE = `usage: laneway plan <command> [flags]

  run <file|name[@version|@tag]> --sandbox <name> [--param k=v]... [--junit f] [--markdown f] [--policy f] [--result f] [-o summary|json]
                      run a plan file, or a plan stored on the control plane, from here
                      exit 0: every step passed; 1: a step failed; 2: the plan could not run
                      (invalid plan or params, refused by the policy, unknown sandbox)
  run <name[@version|@tag]> --server-side --sandbox <name> [--param k=v]... [-o summary|json]
                      run a stored plan on the control plane: stored with its result, prints the run
                      id at once (laneway run get|cancel <id>)
  validate <file> [--policy f]       check a plan (and, with --policy, that the policy allows it)
  push <file> [--tag t]...           store the plan's version on the control plane with tags
  list                               list stored plans, versions and tags

  --server url    control plane (default ${DEFAULT_SERVER}; env LANEWAY_URL); token from LANEWAY_TOKEN
`;

/** Errors that mean "the plan could not run": exit 2 with one line, like every configuration error. */
const CANNOT_RUN = new Set([
  'LANEWAY_ERR_PLAN_INVALID',
  'LANEWAY_ERR_PARAM_INVALID',
  'LANEWAY_ERR_POLICY_INVALID',
  'LANEWAY_ERR_POLICY_VIOLATION',
  'LANEWAY_ERR_SANDBOX_REQUIRED',
  'LANEWAY_ERR_SANDBOX_NOT_FOUND',
  'LANEWAY_ERR_PLAN_NOT_FOUND',
  'LANEWAY_ERR_CONTROL_PLANE',
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
  const parsed = parseSubcommand(argv, FLAGS, USAGE);
  if (parsed === undefined) return;
  const { values, command, args } = parsed;
  const client = new LanewayClient(serverFrom(values));
  switch (command) {
    case 'run': {
      const ref = one(args, 'run', 'plan file or name');
      const output = typeof values.output === 'string' ? values.output : 'summary';
      if (output !== 'summary' && output !== 'json') throw new ConfigError('--output', 'expected summary or json');
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
        result = await runPlan(plan, params, {
          ...(typeof values.sandbox === 'string' ? { sandbox: values.sandbox } : {}),
          sandboxes: client.sandboxes(),
          policy,
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
      const plans = await client.plans();
      if (plans.length === 0) {
        process.stdout.write('no plans\n');
        return;
      }
      for (const p of plans) {
        const versions = p.versions.map((v) => `${v.version}${v.tags.length > 0 ? ` [${v.tags.join(', ')}]` : ''}`);
        process.stdout.write(`${p.name}: ${versions.join(', ')}\n`);
      }
      return;
    }
    default:
      throw new ConfigError(command, `unknown plan command (expected run, validate, push or list)\n${USAGE}`);
  }
}
