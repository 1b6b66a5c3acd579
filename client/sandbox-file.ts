// Sandbox files as users write them (`laneway sandbox apply -f`, deploy checks): YAML or JSON, one sandbox per document.
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { isDnsLabel } from '../core/names.js';

/** The documents of a YAML (a ConfigError naming the file for anything that is not a sandbox: exit 2, like a bad flag) (or JSON: JSON is YAML 1.2) file, each a sandbox `{name, spec}`. */
export function parseSandboxFile(file: string, text: string): { name: string; spec: unknown }[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const sandboxes: { name: string; spec: unknown }[] = [];
  list.forEach((doc, i) => {
    if (doc.errors.length > 0) throw new ConfigError(file, doc.errors[0]?.message ?? 'invalid YAML');
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    const where = list.length > 1 ? `${file} document ${i + 1}` : file;
    if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(where, 'expected a sandbox object with name and spec');
    const { name, spec } = value as { name?: unknown; spec?: unknown };
    if (!isDnsLabel(name)) throw new ConfigError(where, 'name must be a DNS-1123 label');
    sandboxes.push({ name, spec });
  });
  if (sandboxes.length === 0) throw new ConfigError(file, 'no sandbox in the file');
  return sandboxes;
}
