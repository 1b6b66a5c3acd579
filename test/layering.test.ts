// The import direction of the tree: a part imports only from parts below it, never sideways or up (CONVENTIONS §13).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * Each top-level folder's layer. A file may import from its own folder or from a folder of a strictly
 * lower layer; folders on one layer are siblings and may not import each other.
 */
export const LAYERS: Readonly<Record<string, number>> = Object.freeze({
  core: 0, // errors, flags, units, names, Ajv, constants, process harness: imports nothing of ours
  model: 1, // the route table and the wire types, on core
  proxy: 2,
  'control-plane': 2,
  validate: 2,
  client: 3, // the one typed API client
  demo: 4,
  ui: 4, // the web console (browser modules; type-only imports of the API's types)
  cli: 5, // `laneway` dispatches every command, the demo's included
  bench: 6,
  deploy: 6,
  test: 7,
});

interface Edge {
  readonly file: string;
  readonly line: number;
  readonly from: string;
  readonly to: string;
  readonly specifier: string;
}

/** `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')`, relative specifiers only. */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

function topFolder(path: string): string {
  return relative(ROOT, path).split(sep)[0] ?? '';
}

export function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const folder of Object.keys(LAYERS)) {
    let files: string[];
    try {
      files = sourceFiles(join(ROOT, folder));
    } catch {
      continue; // a layer may not exist yet
    }
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((text, i) => {
        for (const m of text.matchAll(IMPORT)) {
          const specifier = m[1]!;
          const to = topFolder(resolve(dirname(file), specifier));
          edges.push({ file: relative(ROOT, file), line: i + 1, from: folder, to, specifier });
        }
      });
    }
  }
  return edges;
}

export function layeringViolations(edges: readonly Edge[]): string[] {
  const out: string[] = [];
  for (const e of edges) {
    if (e.from === e.to) continue;
    const fromLayer = LAYERS[e.from]!;
    const toLayer = LAYERS[e.to];
    if (toLayer === undefined) out.push(`${e.file}:${e.line}: imports '${e.specifier}' from '${e.to}/', which is not a known layer`);
    else if (toLayer >= fromLayer) {
      const how = toLayer === fromLayer ? 'sideways into its sibling' : 'up into';
      out.push(`${e.file}:${e.line}: ${e.from}/ (layer ${fromLayer}) imports ${how} ${e.to}/ (layer ${toLayer}): '${e.specifier}'`);
    }
  }
  return out;
}

describe('import layering', () => {
  const edges = importEdges();

  it('finds the imports it checks (the scanner is not blind)', () => {
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.some((e) => e.from === 'proxy' && e.to === 'model')).toBe(true);
  });

  it('every import goes to the same folder or a lower layer', () => {
    expect(layeringViolations(edges)).toEqual([]);
  });

  it('flags an upward, a sideways and an unknown edge, naming file and line', () => {
    const fake: Edge[] = [
      { file: 'proxy/config.ts', line: 3, from: 'proxy', to: 'cli', specifier: '../cli/flags.js' },
      { file: 'control-plane/x.ts', line: 9, from: 'control-plane', to: 'validate', specifier: '../validate/plan.js' },
      { file: 'core/x.ts', line: 1, from: 'core', to: 'scripts', specifier: '../scripts/a.js' },
    ];
    expect(layeringViolations(fake)).toEqual([
      "proxy/config.ts:3: proxy/ (layer 2) imports up into cli/ (layer 5): '../cli/flags.js'",
      "control-plane/x.ts:9: control-plane/ (layer 2) imports sideways into its sibling validate/ (layer 2): '../validate/plan.js'",
      "core/x.ts:1: imports '../scripts/a.js' from 'scripts/', which is not a known layer",
    ]);
  });
});
