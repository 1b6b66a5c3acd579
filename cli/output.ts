// `-o table|json|yaml|name` and `--no-headers` for every command that prints resources: one renderer, the API's JSON shapes.
import { stringify } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { table } from './table.js';

/**
 * The format `-o` (or LANEWAY_OUTPUT) asks for, checked against what this command prints; without one, the config file's
 * default where this command accepts it, else the command's own (the first of `allowed`).
 */
export function outputFormat(values: Readonly<Record<string, unknown>>, allowed: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  if (typeof values.output === 'string') {
    if (!allowed.includes(values.output)) throw new ConfigError('--output', `expected one of ${allowed.join(', ')}, got '${values.output}'`);
    return values.output;
  }
  const configured = env.LANEWAY_CONFIG_OUTPUT;
  return configured !== undefined && allowed.includes(configured) ? configured : allowed[0]!;
}

/** How one kind of resource prints: its name for `-o name`, its table columns, and what an empty table says. */
export interface ResourceView<T> {
  readonly kind: string;
  name(item: T): string;
  readonly columns: readonly (readonly [header: string, cell: (item: T) => string])[];
  /** printed instead of an empty table (on stderr when headers are off, so scripts read nothing) */
  readonly empty: string;
}

/**
 * Prints `items` in `format`; `document` is what json and yaml print — the API's own response, so scripts get the
 * shape the API documents.
 */
export function printResources<T>(format: string, items: readonly T[], document: unknown, view: ResourceView<T>, noHeaders: boolean): void {
  switch (format) {
    case 'json':
      return void process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    case 'yaml':
      return void process.stdout.write(stringify(document));
    case 'name':
      return void process.stdout.write(items.map((item) => `${view.kind}/${view.name(item)}\n`).join(''));
    default: {
      if (items.length === 0) return void (noHeaders ? undefined : process.stdout.write(`${view.empty}\n`));
      const rows = items.map((item) => view.columns.map(([, cell]) => cell(item)));
      process.stdout.write(table(noHeaders ? rows : [view.columns.map(([header]) => header), ...rows]));
    }
  }
}
