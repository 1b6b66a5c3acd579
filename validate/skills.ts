// Tagged plan versions as agent skills: which versions are skills, and the SKILL.md (plus plan copy) each folder holds. No I/O.
import { stringify } from 'yaml';
import type { PlanSummary } from './server/plans-api.js';
import { actionOf, type Plan } from './plan.js';
import { actionModule } from './actions/index.js';

/** The tag that makes a plan version a skill unless another is asked for. */
export const DEFAULT_SKILL_TAG = 'stable';
/** Agent Skills frontmatter: `description` at most 1024 characters. */
const MAX_DESCRIPTION = 1024;

export interface SkillRef {
  readonly name: string;
  readonly version: string;
  readonly tag: string;
  readonly description: string | null;
  readonly whenToUse: string | null;
  readonly params: Record<string, unknown>;
}

/** The plans whose `tag` points at a version, sorted by name. */
export function skillsOf(plans: readonly PlanSummary[], tag = DEFAULT_SKILL_TAG): SkillRef[] {
  const skills: SkillRef[] = [];
  for (const plan of plans) {
    const version = plan.tags[tag];
    const v = plan.versions.find((x) => x.version === version);
    if (version === undefined || v === undefined) continue;
    skills.push({ name: plan.name, version, tag, description: v.description, whenToUse: v.whenToUse, params: v.params });
  }
  return skills.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function describeStep(plan: Plan, i: number): string {
  const step = plan.steps[i]!;
  const action = actionOf(step);
  const { text: what, labelled } = actionModule(action).describe(step[action]);
  if (!labelled) return `- \`${step.id}\`: ${what}${step.description ? ` — ${oneLine(step.description)}` : ''}`;
  const checks = (step.assert ?? []).length;
  return `- \`${step.id}\` (${action}): ${what}${checks > 0 ? `; ${checks} assertion${checks === 1 ? '' : 's'}` : ''}${step.description ? ` — ${oneLine(step.description)}` : ''}`;
}

/**
 * The files of one skill folder: `SKILL.md` (frontmatter `name` and `description`, then when to use
 * it and how to run it) and `plan.yaml`, the exact plan version, so the skill also works offline with
 * `laneway plan run ./plan.yaml`. Deterministic: the same plan version gives the same bytes.
 */
export function renderSkill(plan: Plan, tag: string): Record<string, string> {
  const summary = oneLine(plan.description ?? `Validates a change to the services plan ${plan.name} covers, in a Laneway sandbox.`);
  const when = plan.whenToUse === undefined ? null : oneLine(plan.whenToUse);
  let description = when === null ? summary : `${summary} Use when ${when.replace(/^use (it )?when /i, '')}`;
  if (description.length > MAX_DESCRIPTION) description = `${description.slice(0, MAX_DESCRIPTION - 3)}...`;
  const params = Object.entries(plan.params ?? {});
  const paramFlags = params.filter(([, p]) => p.default === undefined).map(([name, p]) => ` --param ${name}=<${p.type}>`).join('');
  const lines = [
    '---',
    `name: ${plan.name}`,
    `description: ${JSON.stringify(description)}`,
    '---',
    '',
    `# ${plan.name}`,
    '',
    `Plan \`${plan.name}\` version \`${plan.version}\` (tag \`${tag}\`), run by Laneway: deterministic HTTP checks against your sandbox and the shared baseline, no LLM and no commands in the loop.`,
    '',
    summary,
    '',
    '## When to use it',
    '',
    when ?? `After changing a service this plan exercises, before you open or merge the change: it tells you whether the sandbox still behaves like the baseline.`,
    '',
    '## How to run it',
    '',
    '1. Deploy your change as a fork and register it as a sandbox, waiting until it is Ready:',
    '   `laneway sandbox apply -f sandbox.yaml --wait` (or the MCP tool `sandbox_apply`).',
    '2. Run this skill against it:',
    `   \`laneway plan run ${plan.name}@${plan.version} --sandbox <your-sandbox>${paramFlags}\``,
    `   (offline: \`laneway plan run ./plan.yaml --sandbox <your-sandbox>\` with the copy in this folder; over MCP: \`plan_run\` with \`{"plan": "${plan.name}", "version": "${plan.version}", "sandbox": "<your-sandbox>"}\`).`,
    '3. Read the verdict: exit status 0 = every step passed, 1 = a step failed (the summary names the step, the assertion and the actual value), 2 = the plan could not run (bad parameter, unknown sandbox, refused by the platform policy: the message names the rule).',
    '   Add `-o json` (or `--result result.json`) for the structured result: per step its inputs, outputs, assertions, timing and, for `compare`, the differences from the baseline.',
    '4. Fix your change, redeploy the fork (the sandbox keeps its routing key), and run the same command again until it passes.',
    '',
  ];
  if (params.length > 0) {
    lines.push('## Parameters', '', '| name | type | default | description |', '| --- | --- | --- | --- |');
    for (const [name, p] of params) {
      const def = p.default === undefined ? '(required)' : `\`${JSON.stringify(p.default)}\``;
      const desc = [p.description ?? '', p.enum === undefined ? '' : `one of ${p.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ')}`].filter(Boolean).join('; ');
      lines.push(`| \`${name}\` | ${p.type} | ${def} | ${desc.replace(/\|/g, '\\|')} |`);
    }
    lines.push('');
  }
  lines.push('## Steps', '', ...plan.steps.map((_, i) => describeStep(plan, i)), '');
  return { 'SKILL.md': lines.join('\n'), 'plan.yaml': stringify(plan, { lineWidth: 0 }) };
}
