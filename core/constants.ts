// The few names every part of Laneway agrees on: the baggage key and the headers the sidecar reads and writes.

/** The baggage member (and `ot-baggage-*` / `uberctx-*` / tracestate key) that carries the routing key by default. */
export const DEFAULT_ROUTING_KEY_NAME = 'laneway';

/** Loop guard: how many sidecars forwarded this request to a sandbox target. */
export const HOPS_HEADER = 'laneway-hops';
/**
 * Set by the sidecar on every request it sends to a sandbox fork: `<routing key>@<namespace>/<name>:<app port>`,
 * the lane and the baseline workload and port the fork stands in for (a client's own is dropped).
 * The lane relay picks a local fork by it; the key is what the request carried, so it reveals nothing new.
 */
export const FORK_HEADER = 'laneway-fork';
/** Set on a response a sandbox fork answered: the sandbox's name. */
export const SANDBOX_HEADER = 'laneway-sandbox';
/** Set on a response the sidecar generated: the error code. */
export const ERROR_HEADER = 'laneway-error';
/** Set on a response the baseline answered because the sandbox was unreachable (`--fallback baseline`). */
export const FALLBACK_HEADER = 'laneway-fallback';

/** Where the CLI, the MCP server and the client find the control plane unless told otherwise (`--server`, `LANEWAY_URL`). */
export const DEFAULT_SERVER = 'http://127.0.0.1:7070';
