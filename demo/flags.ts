// The demo's flags, apart from the mesh so `laneway demo --help` (the CLI's command table) loads none of it.
import type { FlagSpec } from '../core/flags.js';

export const DEMO_FLAGS = Object.freeze({
  port: { type: 'string', env: 'LANEWAY_DEMO_PORT', arg: 'n', default: 'a free port', doc: "port of web's sidecar, the entry point" },
  verbose: { type: 'boolean', env: 'LANEWAY_DEMO_VERBOSE', doc: "show every process's log" },
} as const satisfies Record<string, FlagSpec>);
