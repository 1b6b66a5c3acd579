// `laneway skills export <dir> | list`: tagged plan versions on the control plane as agent skill folders (SKILL.md + plan.yaml).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_SERVER, LanewayClient, serverFrom } from '../client/api.js';
import { DEFAULT_SKILL_TAG, renderSkill, skillsOf } from '../validate/skills.js';
import { parseSubcommand, type FlagSpec } from '../core/flags.js';

const FLAGS = Object.freeze({
  server: { type: 'string', env: 'LANEWAY_URL' },
  tag: { type: 'string', env: 'LANEWAY_SKILL_TAG' },
  help: { type: 'boolean', short: 'h', env: 'LANEWAY_SKILLS_HELP' },
} as const satisfies Record<string, FlagSpec>);

const USAGE = `usage: laneway skills <command> [flags]

  export <dir> [--tag ${DEFAULT_SKILL_TAG}]   write <dir>/<plan>/SKILL.md and plan.yaml for every plan version carrying the tag
  list [--tag ${DEFAULT_SKILL_TAG}]           list those plan versions

  --server url    control plane (default ${DEFAULT_SERVER}; env LANEWAY_URL); token from LANEWAY_TOKEN
`;

export async function runSkillsCommand(argv: string[]): Promise<void> {
  const parsed = parseSubcommand(argv, FLAGS, USAGE);
  if (parsed === undefined) return;
  const { values, command, args } = parsed;
  const client = new LanewayClient(serverFrom(values));
  const tag = typeof values.tag === 'string' ? values.tag : DEFAULT_SKILL_TAG;
  const skills = skillsOf(await client.plans(), tag);
  switch (command) {
    case 'list':
      if (args.length > 0) throw new ConfigError('list', `unexpected argument '${args[0]}'`);
      if (skills.length === 0) process.stdout.write(`no plan version is tagged ${tag}\n`);
      for (const s of skills) process.stdout.write(`${s.name}@${s.version}  ${s.description ?? ''}\n`);
      return;
    case 'export': {
      if (args.length !== 1) throw new ConfigError('export', 'expects exactly one directory');
      const dir = args[0]!;
      for (const skill of skills) {
        const stored = await client.plan(skill.name, skill.version);
        const folder = join(dir, skill.name);
        mkdirSync(folder, { recursive: true });
        for (const [file, text] of Object.entries(renderSkill(stored.plan, tag))) writeFileSync(join(folder, file), text);
        process.stdout.write(`${folder}/SKILL.md (${skill.name}@${skill.version})\n`);
      }
      if (skills.length === 0) process.stdout.write(`no plan version is tagged ${tag}; nothing exported\n`);
      return;
    }
    default:
      throw new ConfigError(command, `unknown skills command (expected export or list)\n${USAGE}`);
  }
}
