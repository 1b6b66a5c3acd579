#!/usr/bin/env node
// The `laneway` command: dispatches to the sidecar, the control plane, the sandbox and plan CLIs, the MCP server and the demo.
import { LanewayError } from '../core/errors.js';

const USAGE = `usage: laneway <command> [flags]

commands:
  sidecar         run the routing sidecar in front of an app (see README "Sidecar")
  control-plane   run the sandbox API and route push service
  sandbox         apply|list|get|delete sandboxes on a control plane
  routes          show a workload's route table: laneway routes <namespace>/<name>
  connect         fork a workload to a service on this machine (a local lane)
  demo            start a local mini-mesh and show requests routed by baggage
  plan            run|validate|push|list validation plans (README "Validate a change")
  skills          export|list tagged plans as agent skills
  run             list|get|cancel server-side plan runs
  traffic         what the sidecars captured for a sandbox: laneway traffic <sandbox> [--follow]
  doctor          find the service that drops the routing key: laneway doctor --entry <url>
  mcp             serve the Laneway tools to coding agents over MCP (stdio)
  version         print the version (also: laneway --version)
`;

type Command = (argv: string[]) => Promise<void>;

const commands: Record<string, () => Promise<Command>> = {
  // each command loads only its own modules, so `laneway sidecar` starts without Fastify or SQLite
  'control-plane': async () => (await import('./server.js')).runServer,
  sandbox: async () => (await import('./sandbox.js')).runSandboxCommand,
  routes: async () => (await import('./sandbox.js')).runRoutesCommand,
  connect: async () => (await import('./connect.js')).runConnectCommand,
  sidecar: async () => (await import('../proxy/main.js')).runSidecar,
  demo: async () => (await import('../demo/main.js')).runDemo,
  plan: async () => (await import('./plan.js')).runPlanCommand,
  skills: async () => (await import('./skills.js')).runSkillsCommand,
  run: async () => (await import('./run.js')).runRunCommand,
  traffic: async () => (await import('./traffic.js')).runTrafficCommand,
  doctor: async () => (await import('./doctor.js')).runDoctorCommand,
  mcp: async () => (await import('./mcp.js')).runMcpServer,
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`${(await import('../core/version.js')).versionLine()}\n`);
    return;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`laneway: unknown command '${name}'\n${USAGE}`);
    process.exit(2);
  }
  const command = await load();
  await command(rest);
}

main(process.argv.slice(2)).catch(async (failure: unknown) => {
  if (failure instanceof LanewayError && failure.code === 'LANEWAY_ERR_CONFIG') {
    process.stderr.write(`${failure.message}\n`);
    process.exit(2);
  }
  // An API error reads `<server message> (<code> <status>)`; loaded only now, so commands that never call the API stay light.
  const err = (await import('../client/api.js')).forTerminal(failure);
  process.stderr.write(`laneway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
