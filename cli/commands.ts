// The `laneway` command surface in one table: every command, subcommand and flag with its help; help, completion and parsing read it.
import { DEFAULT_SERVER } from '../core/constants.js';
import type { FlagSpec } from '../core/flags.js';
import { DEMO_FLAGS } from '../demo/flags.js';

/** One command or subcommand as `--help`, `laneway help` and the completion scripts know it. */
export interface CommandInfo {
  /** the words after `laneway` (`sandbox apply`) */
  readonly path: string;
  readonly summary: string;
  /** the synopsis after `laneway ` */
  readonly usage: string;
  /** more lines of explanation, already wrapped */
  readonly details?: string;
  /** the flags this command takes; a noun's are the union its subcommands parse */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly example: string;
  readonly subcommands?: readonly CommandInfo[];
  /** what the first positional argument names, for completion */
  readonly completes?: 'sandbox' | 'workload' | 'run' | 'plan' | 'file' | 'command' | 'shell';
}

/** The output formats of one command; the first is the default. */
function output(formats: readonly string[]): FlagSpec {
  return { type: 'string', short: 'o', env: 'LANEWAY_OUTPUT', arg: formats.join('|'), default: formats[0], doc: 'output format' };
}

// Explicit env names for the client commands: the server and the output are the settings meant to come from the environment.
const server: FlagSpec = { type: 'string', env: 'LANEWAY_URL', arg: 'url', default: DEFAULT_SERVER, doc: 'the control plane; its token comes from LANEWAY_TOKEN, never a flag' };
const noHeaders: FlagSpec = { type: 'boolean', env: 'LANEWAY_NO_HEADERS', doc: 'tables without their header line' };

/** The formats `-o` takes on commands that print resources: kubectl's, with `name` for scripts (`sandbox/pr-42`). */
export const RESOURCE_FORMATS = ['table', 'json', 'yaml', 'name'] as const;

export const SANDBOX_FLAGS = Object.freeze({
  server,
  file: { type: 'string', short: 'f', env: 'LANEWAY_SANDBOX_FILE', arg: 'file|-', doc: 'YAML or JSON file of sandboxes (- reads stdin)' },
  wait: { type: 'boolean', env: 'LANEWAY_SANDBOX_WAIT', doc: 'wait until every applied sandbox is Ready' },
  timeout: { type: 'string', env: 'LANEWAY_WAIT_TIMEOUT', arg: 'dur', default: '2m', doc: 'how long --wait waits' },
  output: output(RESOURCE_FORMATS),
  'no-headers': noHeaders,
} as const satisfies Record<string, FlagSpec>);

export const ROUTES_FLAGS = Object.freeze({ server, output: output(RESOURCE_FORMATS), 'no-headers': noHeaders } as const satisfies Record<string, FlagSpec>);

export const PLAN_FLAGS = Object.freeze({
  server,
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX', arg: 'name', doc: 'the sandbox whose routing key the plan sends' },
  param: { type: 'string', multiple: true, env: 'LANEWAY_PLAN_PARAMS', arg: 'k=v', doc: 'a plan parameter' },
  junit: { type: 'string', env: 'LANEWAY_JUNIT', arg: 'file', doc: 'also write a JUnit XML report' },
  policy: { type: 'string', env: 'LANEWAY_POLICY', arg: 'file', doc: 'the policy (YAML/JSON) the plan must satisfy' },
  result: { type: 'string', env: 'LANEWAY_RESULT', arg: 'file', doc: 'also write the full JSON result' },
  markdown: { type: 'string', env: 'LANEWAY_MARKDOWN', arg: 'file', doc: 'append the pull-request report (e.g. $GITHUB_STEP_SUMMARY)' },
  output: { ...output(['summary', 'json', 'table', 'yaml', 'name']), doc: 'run: summary|json; list: table|json|yaml|name' },
  'no-headers': noHeaders,
  tag: { type: 'string', multiple: true, env: 'LANEWAY_PLAN_TAGS', arg: 'tag', doc: 'a tag for the pushed version' },
  'server-side': { type: 'boolean', env: 'LANEWAY_PLAN_SERVER_SIDE', doc: 'run the stored plan on the control plane; prints the run id' },
} as const satisfies Record<string, FlagSpec>);

export const SKILLS_FLAGS = Object.freeze({
  server,
  tag: { type: 'string', env: 'LANEWAY_SKILL_TAG', arg: 'tag', default: 'stable', doc: 'the tag that makes a plan version a skill' },
  output: output(RESOURCE_FORMATS),
  'no-headers': noHeaders,
} as const satisfies Record<string, FlagSpec>);

export const RUN_FLAGS = Object.freeze({
  server,
  plan: { type: 'string', env: 'LANEWAY_RUN_PLAN', arg: 'name', doc: 'only runs of this plan' },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX', arg: 'name', doc: 'only runs against this sandbox' },
  status: { type: 'string', env: 'LANEWAY_RUN_STATUS', arg: 'running|passed|failed|error', doc: 'only runs in this status' },
  limit: { type: 'string', env: 'LANEWAY_RUN_LIMIT', arg: 'n', default: '50', doc: 'runs per page' },
  after: { type: 'string', env: 'LANEWAY_RUN_AFTER', arg: 'cursor', doc: 'the page after this cursor (printed under the table)' },
  output: { ...output(['table', 'json', 'yaml', 'name', 'summary', 'markdown']), doc: 'list: table|json|yaml|name; get: summary|json|yaml|markdown' },
  'no-headers': noHeaders,
} as const satisfies Record<string, FlagSpec>);

export const TRAFFIC_FLAGS = Object.freeze({
  server,
  follow: { type: 'boolean', short: 'f', env: 'LANEWAY_TRAFFIC_FOLLOW', doc: 'keep printing new exchanges until Ctrl-C (resumes if the stream drops)' },
  workload: { type: 'string', env: 'LANEWAY_TRAFFIC_WORKLOAD', arg: 'ns/name', doc: 'only exchanges of this workload' },
  status: { type: 'string', env: 'LANEWAY_TRAFFIC_STATUS', arg: '2xx|4xx|5xx|error', doc: 'only exchanges with this status class' },
  since: { type: 'string', env: 'LANEWAY_TRAFFIC_SINCE', arg: 'time', doc: 'RFC 3339 time, or a duration back from now (30s, 5m, 2h)' },
  limit: { type: 'string', env: 'LANEWAY_TRAFFIC_LIMIT', arg: 'n', default: '100', doc: 'at most this many exchanges' },
  output: { ...output(['table', 'json', 'yaml']), doc: 'table: one line per exchange; json: one JSON entry per line; yaml: one document each' },
  'no-headers': noHeaders,
} as const satisfies Record<string, FlagSpec>);

export const DOCTOR_FLAGS = Object.freeze({
  server: { ...server, doc: 'the control plane; a writer token in LANEWAY_TOKEN' },
  entry: { type: 'string', env: 'LANEWAY_DOCTOR_ENTRY', arg: 'url', doc: 'the entry service, through its sidecar; required' },
  path: { type: 'string', env: 'LANEWAY_DOCTOR_PATH', arg: 'path', doc: "the probe's path (default: the entry URL's)" },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX', arg: 'name', doc: "also say which of the sandbox's forked workloads the key reached" },
  output: output(['text', 'json']),
} as const satisfies Record<string, FlagSpec>);

export const CONNECT_FLAGS = Object.freeze({
  server: { ...server, doc: 'the control plane; a writer token in LANEWAY_TOKEN' },
  sandbox: { type: 'string', env: 'LANEWAY_SANDBOX', arg: 'name', doc: 'the sandbox to add the local fork to (created when absent)' },
  workload: { type: 'string', env: 'LANEWAY_CONNECT_WORKLOAD', arg: 'ns/name', doc: 'the workload whose ports are forked' },
  port: { type: 'string', multiple: true, env: 'LANEWAY_CONNECT_PORTS', arg: 'appPort=host:port', doc: 'app port = where the local service listens (3000 alone means 127.0.0.1:3000)' },
  expose: { type: 'string', multiple: true, env: 'LANEWAY_CONNECT_EXPOSE', arg: 'ns/name:port[=local]', doc: 'reach a cluster service from this machine through the same tunnel' },
  ttl: { type: 'string', env: 'LANEWAY_CONNECT_TTL', arg: 'dur', default: '2h', doc: 'TTL of a sandbox this command creates' },
  keep: { type: 'boolean', env: 'LANEWAY_CONNECT_KEEP', doc: 'leave the fork (and sandbox) in place on exit' },
} as const satisfies Record<string, FlagSpec>);

export const MCP_FLAGS = Object.freeze({ server } as const satisfies Record<string, FlagSpec>);

export const COMPLETION_FLAGS = Object.freeze({} as const satisfies Record<string, FlagSpec>);

/** Help texts of the sidecar's and the control plane's flags, whose specs live with their config parsers. */
export const SIDECAR_FLAG_DOCS: Readonly<Record<string, Pick<FlagSpec, 'doc' | 'arg' | 'default'>>> = Object.freeze({
  workload: { arg: 'ns/name', doc: 'the baseline workload this sidecar serves, required' },
  port: { arg: 'listen:app[/http1|/h2c|/auto]', doc: "listen on one port, forward to the app on another, optionally in a set protocol (default: the client's); required" },
  'app-host': { arg: 'host', default: '127.0.0.1', doc: 'where the app listens' },
  'listen-host': { arg: 'host', default: '127.0.0.1', doc: "the data listeners' address (0.0.0.0 in a pod)" },
  'routes-file': { arg: 'file', doc: 'a JSON route table, watched and reloaded' },
  'control-plane': { arg: 'url', doc: "subscribe to the control plane's push stream instead" },
  token: { arg: 'token', doc: 'bearer token for the control plane (prefer LANEWAY_TOKEN)' },
  'routes-cache': { arg: 'file', doc: 'keep the last table here and start from it when the control plane is down' },
  admin: { arg: 'host:port', default: '127.0.0.1:15000', doc: 'admin server (health, metrics, routes)' },
  'routing-key-name': { arg: 'name', default: 'laneway', doc: 'the baggage member that carries the key' },
  fallback: { arg: 'none|baseline', default: 'none', doc: 'serve from the baseline when a sandbox is unreachable before any byte was sent' },
  'connect-timeout': { arg: 'dur', default: '3s', doc: 'upstream connect timeout' },
  'upstream-timeout': { arg: 'dur', default: '60s', doc: "time to the upstream's response headers" },
  'idle-timeout': { arg: 'dur', default: '60s', doc: 'keep-alive idle timeout (clients) and upstream body idle timeout' },
  'headers-timeout': { arg: 'dur', default: '10s', doc: "a client's request head must arrive within this" },
  'body-timeout': { arg: 'dur', default: '30s', doc: 'a request body may go this long without a byte' },
  'tunnel-idle-timeout': { arg: 'dur', default: '10m', doc: 'an upgraded tunnel idle this long either way is closed' },
  'drain-timeout': { arg: 'dur', default: '15s', doc: 'bound on the SIGTERM drain' },
  'max-connections': { arg: 'n', default: 'from the fd limit', doc: 'client connections open at once' },
  'max-pipelined': { arg: 'n', default: '16', doc: 'HTTP/1 requests in flight per connection' },
  'h2-max-streams': { arg: 'n', default: '100', doc: 'concurrent HTTP/2 streams per client connection' },
  'max-hops': { arg: 'n', default: '8', doc: 'loop guard: sidecar-to-sandbox forwards a request may take' },
  'max-pools': { arg: 'n', default: '1000', doc: 'keep-alive pools kept for sandbox targets (LRU)' },
  'log-level': { arg: 'level', default: 'info', doc: 'pino level of the JSON log on stderr' },
  'access-log': { doc: 'one JSON line per request (off costs nothing per request)' },
});

export const CONTROL_PLANE_FLAG_DOCS: Readonly<Record<string, Pick<FlagSpec, 'doc' | 'arg' | 'default'>>> = Object.freeze({
  listen: { arg: 'host:port', default: '127.0.0.1:7070', doc: 'address to serve on (port 0 picks a free one)' },
  data: { arg: 'dir', default: './.laneway', doc: 'data directory of the SQLite store' },
  store: { arg: 'url', default: 'sqlite:./.laneway', doc: 'sqlite:<dir> (as --data) or etcd://host:port,...[/prefix] for several replicas' },
  'etcd-cacert': { arg: 'file', doc: 'etcd: CA bundle (PEM) for TLS to the members' },
  'etcd-cert': { arg: 'file', doc: 'etcd: client certificate (PEM), with --etcd-key' },
  'etcd-key': { arg: 'file', doc: 'etcd: client private key (PEM)' },
  'etcd-user': { arg: 'user:password', doc: 'etcd: authenticate as this etcd user' },
  'etcd-request-timeout': { arg: 'dur', default: '5s', doc: 'etcd: a call not answered by then fails (writes: 503)' },
  'leader-lease': { arg: 'dur', default: '10s', doc: 'etcd: lease of the replica running the TTL sweeper and prober' },
  'tokens-file': { arg: 'file', doc: "'role:token' lines (writer, reader); enables bearer authentication" },
  insecure: { doc: 'allow a non-loopback --listen without --tokens-file' },
  'allow-targets': { arg: 'glob|cidr,...', doc: 'host globs and CIDRs fork targets must match' },
  policy: { arg: 'file', doc: 'the plan policy server-side runs must satisfy' },
  'probe-interval': { arg: 'dur', default: '2s', doc: 'how often fork targets are probed over TCP (0: never)' },
  'heartbeat-interval': { arg: 'dur', default: '10s', doc: 'SSE heartbeat period (at most 15s)' },
  'delta-log-size': { arg: 'n', default: '1024', doc: 'deltas kept per workload for Last-Event-ID resume' },
  'max-watchers': { arg: 'n', default: '10000', doc: 'concurrent watch streams accepted' },
  'log-level': { arg: 'level', default: 'info', doc: 'pino level of the JSON log on stderr' },
  'webhook-listen': { arg: 'host:port', default: '0.0.0.0:9443', doc: 'HTTPS address of the sidecar-injection webhook' },
  'webhook-cert': { arg: 'file', doc: 'PEM certificate of the webhook (re-read every minute)' },
  'webhook-key': { arg: 'file', doc: 'PEM private key of the webhook' },
  'inject-image': { arg: 'image', doc: 'the laneway image the webhook injects' },
  'inject-control-plane': { arg: 'url', doc: 'the control-plane URL injected sidecars subscribe to' },
  'inject-pull-policy': { arg: 'policy', default: 'IfNotPresent', doc: 'imagePullPolicy of injected containers' },
  'inject-token-secret': { arg: 'name', doc: "Secret (key 'token') holding the reader token of injected sidecars" },
  'lane-listen': { arg: 'host:port', doc: "serve local lanes: the relay port sidecars send local forks' requests to" },
  'lane-advertise': { arg: 'host:port', default: 'the --lane-listen address', doc: 'the address sidecars dial for local forks' },
});

function withDocs(specs: Readonly<Record<string, FlagSpec>>, docs: Readonly<Record<string, Pick<FlagSpec, 'doc' | 'arg' | 'default'>>>): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const [name, spec] of Object.entries(specs)) if (name !== 'help') out[name] = { ...spec, ...docs[name] };
  return out;
}

function pick<T extends Record<string, FlagSpec>>(specs: T, names: readonly (keyof T & string)[]): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const name of names) out[name] = specs[name]!;
  return out;
}

/**
 * The whole surface. The sidecar's and control plane's flag specs are passed in (they live with their config parsers,
 * which load nothing heavy), so help for `laneway sidecar` does not load the sidecar.
 */
export function commandTable(sidecarFlags: Readonly<Record<string, FlagSpec>>, controlPlaneFlags: Readonly<Record<string, FlagSpec>>): readonly CommandInfo[] {
  return [
    {
      path: 'sidecar',
      summary: 'run the routing sidecar in front of an app',
      usage: 'sidecar --workload <ns/name> --port <listen:app>... [--control-plane url | --routes-file file] [flags]',
      details: 'Reads the routing key from each request\'s baggage and sends the request to the sandbox fork its\nroute table names, or to the local app. Every flag can also be set as LANEWAY_<FLAG>.',
      flags: withDocs(sidecarFlags, SIDECAR_FLAG_DOCS),
      example: 'laneway sidecar --workload default/orders --port 15001:8080 --control-plane http://laneway-control-plane:7070',
    },
    {
      path: 'control-plane',
      summary: 'run the sandbox API and the route push service',
      usage: 'control-plane [--listen host:port] [--data dir] [--tokens-file file] [flags]',
      details: 'Every flag can also be set as LANEWAY_<FLAG> (e.g. LANEWAY_LISTEN, LANEWAY_DATA).',
      flags: withDocs(controlPlaneFlags, CONTROL_PLANE_FLAG_DOCS),
      example: 'laneway control-plane --listen 127.0.0.1:7070 --data ./.laneway',
    },
    {
      path: 'sandbox',
      summary: 'apply, list, get and delete sandboxes',
      usage: 'sandbox <apply|list|get|delete> [flags]',
      flags: SANDBOX_FLAGS,
      example: 'laneway sandbox apply -f pr-42.yaml --wait',
      subcommands: [
        { path: 'sandbox apply', summary: 'create or replace the sandboxes of a YAML or JSON file', usage: 'sandbox apply -f <file|-> [--wait] [--timeout 2m]', flags: pick(SANDBOX_FLAGS, ['file', 'wait', 'timeout', 'server']), example: 'laneway sandbox apply -f pr-42.yaml --wait', completes: 'file' },
        { path: 'sandbox list', summary: 'list sandboxes', usage: 'sandbox list [-o table|json|yaml|name] [--no-headers]', flags: pick(SANDBOX_FLAGS, ['output', 'no-headers', 'server']), example: 'laneway sandbox list -o name' },
        { path: 'sandbox get', summary: 'show one sandbox with its status', usage: 'sandbox get <name> [-o yaml|json|table|name]', flags: { ...pick(SANDBOX_FLAGS, ['server', 'no-headers']), output: output(['yaml', 'json', 'table', 'name']) }, example: 'laneway sandbox get pr-42 -o json', completes: 'sandbox' },
        { path: 'sandbox delete', summary: 'delete a sandbox (its routes disappear everywhere)', usage: 'sandbox delete <name>', flags: pick(SANDBOX_FLAGS, ['server']), example: 'laneway sandbox delete pr-42', completes: 'sandbox' },
      ],
    },
    {
      path: 'routes',
      summary: "show a workload's route table",
      usage: 'routes <namespace>/<name> [-o table|json|yaml|name] [--no-headers]',
      details: "-o json prints the table in the sidecar's routes-file format.",
      flags: ROUTES_FLAGS,
      example: 'laneway routes default/orders',
      completes: 'workload',
    },
    {
      path: 'connect',
      summary: 'fork a workload to a service on this machine (a local lane)',
      usage: 'connect --sandbox <name> --workload <ns/name> --port <appPort>=<host:port>... [--ttl 2h] [--keep] [-- <command> [args]]',
      details:
        "Requests in the cluster that carry the sandbox's routing key reach the local service through one\n" +
        'outbound connection to the control plane (no inbound port, no image). Ctrl-C disconnects and removes\n' +
        'the local fork (or the sandbox, if this command created it) unless --keep. With -- <command>, the\n' +
        'command runs with PORT, LANEWAY_ROUTING_KEY and LANEWAY_BAGGAGE set, and its exit code is the exit code.',
      flags: CONNECT_FLAGS,
      example: 'laneway connect --sandbox pr-7 --workload default/orders --port 8080=3000 -- npm run dev',
    },
    {
      path: 'demo',
      summary: 'start a local mini-mesh and show requests routed by baggage',
      usage: 'demo [--port n] [--verbose]',
      details:
        'Starts a control plane, web -> orders -> payments each behind a sidecar, and a fork orders-v2 registered\n' +
        'as sandbox orders-pr-1 on 127.0.0.1; sends one request without and one with a routing key, prints both\n' +
        'paths and curl lines to try, and runs until Ctrl-C.',
      flags: DEMO_FLAGS,
      example: 'laneway demo --port 8080',
    },
    {
      path: 'plan',
      summary: 'run, validate, push and list validation plans',
      usage: 'plan <run|validate|push|list> [flags]',
      flags: PLAN_FLAGS,
      example: 'laneway plan run checkout.yaml --sandbox pr-42 --markdown report.md',
      subcommands: [
        {
          path: 'plan run',
          summary: 'run a plan file, or a plan stored on the control plane',
          usage: 'plan run <file|name[@version|@tag]> --sandbox <name> [--param k=v]... [--server-side] [flags]',
          details: 'exit 0: every step passed; 1: a step failed; 2: the plan could not run (invalid plan or params,\nrefused by the policy, unknown sandbox); 3: the control plane is unreachable or refused the token.\nOn a terminal, each step is shown as it starts, with a live line for load and wait steps.',
          flags: { ...pick(PLAN_FLAGS, ['sandbox', 'param', 'server-side', 'junit', 'markdown', 'result', 'policy', 'server']), output: { ...output(['summary', 'json']), doc: 'summary: one line per step; json: the full result' } },
          example: 'laneway plan run checkout.yaml --sandbox pr-42 --param items=3',
          completes: 'file',
        },
        { path: 'plan validate', summary: 'check a plan (and, with --policy, that the policy allows it)', usage: 'plan validate <file> [--policy file] [--param k=v]...', flags: pick(PLAN_FLAGS, ['policy', 'param']), example: 'laneway plan validate checkout.yaml --policy policy.yaml', completes: 'file' },
        { path: 'plan push', summary: "store the plan's version on the control plane with tags", usage: 'plan push <file> [--tag t]...', flags: pick(PLAN_FLAGS, ['tag', 'server']), example: 'laneway plan push checkout.yaml --tag stable', completes: 'file' },
        { path: 'plan list', summary: 'list stored plans, versions and tags', usage: 'plan list [-o table|json|yaml|name] [--no-headers]', flags: { ...pick(PLAN_FLAGS, ['no-headers', 'server']), output: output(RESOURCE_FORMATS) }, example: 'laneway plan list -o name' },
      ],
    },
    {
      path: 'skills',
      summary: 'export or list tagged plans as agent skills',
      usage: 'skills <export|list> [flags]',
      flags: SKILLS_FLAGS,
      example: 'laneway skills export .claude/skills',
      subcommands: [
        { path: 'skills export', summary: 'write <dir>/<plan>/SKILL.md and plan.yaml for every plan version carrying the tag', usage: 'skills export <dir> [--tag stable]', flags: pick(SKILLS_FLAGS, ['tag', 'server']), example: 'laneway skills export .claude/skills --tag stable', completes: 'file' },
        { path: 'skills list', summary: 'list the plan versions carrying the tag', usage: 'skills list [--tag stable] [-o table|json|yaml|name] [--no-headers]', flags: SKILLS_FLAGS, example: 'laneway skills list -o json' },
      ],
    },
    {
      path: 'run',
      summary: 'list, get and cancel server-side plan runs',
      usage: 'run <list|get|cancel> [flags]',
      flags: RUN_FLAGS,
      example: 'laneway run list --sandbox pr-42 --status failed',
      subcommands: [
        { path: 'run list', summary: 'server-side runs, newest first (the last line names the next page)', usage: 'run list [--plan p] [--sandbox s] [--status s] [--limit 50] [--after cursor] [-o table|json|yaml|name]', flags: { ...pick(RUN_FLAGS, ['plan', 'sandbox', 'status', 'limit', 'after', 'no-headers', 'server']), output: output(RESOURCE_FORMATS) }, example: 'laneway run list --status failed -o name' },
        { path: 'run get', summary: "a run's status and result (markdown: the PR report)", usage: 'run get <id> [-o summary|json|yaml|markdown]', flags: { ...pick(RUN_FLAGS, ['server']), output: { ...output(['summary', 'json', 'yaml', 'markdown']), doc: 'markdown: the pull-request report' } }, example: 'laneway run get 01J9Z3 -o markdown >> "$GITHUB_STEP_SUMMARY"', completes: 'run' },
        { path: 'run cancel', summary: 'stop a running run (its partial result is kept)', usage: 'run cancel <id>', flags: pick(RUN_FLAGS, ['server']), example: 'laneway run cancel 01J9Z3', completes: 'run' },
      ],
    },
    {
      path: 'traffic',
      summary: 'what the sidecars captured for a sandbox',
      usage: 'traffic <sandbox> [--follow] [--workload ns/name] [--status 2xx|4xx|5xx|error] [--since time] [--limit 100] [-o table|json|yaml]',
      details: "The sandbox needs spec.capture. One line per exchange: time, workload, method, path, status, duration,\ntarget; -o json prints one JSON entry per line (with headers and body previews).",
      flags: TRAFFIC_FLAGS,
      example: 'laneway traffic pr-42 --status 5xx --follow',
      completes: 'sandbox',
    },
    {
      path: 'doctor',
      summary: 'find the service that drops the routing key',
      usage: 'doctor --entry <url> [--path /checkout] [--sandbox name] [-o text|json]',
      details: "Sends one request with a fresh probe key (no route: baselines serve it) and reports, hop by hop, which\nworkloads' sidecars saw the key and which call arrived without it. Exit 1 when a hop dropped it.",
      flags: DOCTOR_FLAGS,
      example: 'laneway doctor --entry http://127.0.0.1:8080 --path /checkout',
    },
    {
      path: 'mcp',
      summary: 'serve the Laneway tools to coding agents over MCP (stdio)',
      usage: 'mcp [--server url]',
      details: 'Client configuration, e.g.:\n{"mcpServers": {"laneway": {"command": "laneway", "args": ["mcp"], "env": {"LANEWAY_URL": "http://127.0.0.1:7070"}}}}',
      flags: MCP_FLAGS,
      example: 'laneway mcp --server http://127.0.0.1:7070',
    },
    {
      path: 'completion',
      summary: 'print a shell completion script',
      usage: 'completion <bash|zsh|fish>',
      details: 'Completes commands, flags and, where a control plane is reachable, sandbox and workload names.',
      flags: COMPLETION_FLAGS,
      example: 'laneway completion bash > ~/.local/share/bash-completion/completions/laneway',
      completes: 'shell',
    },
    { path: 'version', summary: 'print the version, commit and Node version (also: laneway --version)', usage: 'version', flags: {}, example: 'laneway version' },
    { path: 'help', summary: 'help for a command', usage: 'help [command [subcommand]]', flags: {}, example: 'laneway help sandbox apply', completes: 'command' },
  ];
}
