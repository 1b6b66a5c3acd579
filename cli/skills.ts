// `laneway skills export <dir> | list`: tagged plan versions on the control plane as agent skill folders (SKILL.md + plan.yaml).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { LanewayClient, serverFrom } from '../client/api.js';
import { DEFAULT_SKILL_TAG, renderSkill, skillsOf, type SkillRef } from '../validate/skills.js';
import { parseSubcommand } from '../core/flags.js';
import { RESOURCE_FORMATS, SKILLS_FLAGS } from './commands.js';
import { outputFormat, printResources, type ResourceView } from './output.js';

const SKILLS: ResourceView<SkillRef> = {
  kind: 'skill',
  name: (s) => `${s.name}@${s.version}`,
  columns: [
    ['NAME', (s) => s.name],
    ['VERSION', (s) => s.version],
    ['DESCRIPTION', (s) => s.description ?? ''],
  ],
  empty: '',
};

export async function runSkillsCommand(argv: string[]): Promise<void> {
  const { values, command, args } = parseSubcommand(argv, SKILLS_FLAGS, 'skills');
  const client = new LanewayClient(serverFrom(values));
  const tag = typeof values.tag === 'string' ? values.tag : DEFAULT_SKILL_TAG;
  const skills = skillsOf(await client.plans(), tag);
  switch (command) {
    case 'list':
      if (args.length > 0) throw new ConfigError('list', `unexpected argument '${args[0]}'`);
      printResources(outputFormat(values, RESOURCE_FORMATS), skills, { tag, items: skills }, { ...SKILLS, empty: `no plan version is tagged ${tag}` }, values['no-headers'] === true);
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
      throw new ConfigError(command, 'unknown skills command (expected export or list; laneway help skills)');
  }
}
