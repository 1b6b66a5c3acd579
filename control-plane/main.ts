// `laneway control-plane`: reads config, opens the store, listens, prints one startup line, shuts down cleanly on SIGINT/SIGTERM.
import type { AddressInfo } from 'node:net';
import { buildApp, type ControlPlaneExtension } from './app.js';
import { loadConfig } from './config.js';
import { StoreLockedError } from './sqlite-store.js';
import { listenWebhook } from './api/admission.js';

export async function runControlPlane(argv: string[], extensions: readonly ControlPlaneExtension[] = []): Promise<void> {
  const config = loadConfig(argv);
  if (config === undefined) {
    // The `laneway` entry point answers --help from its command table (cli/commands.ts) before this runs.
    process.stdout.write('usage: laneway control-plane [flags]; every flag with its default: laneway control-plane --help\n');
    return;
  }
  let app;
  try {
    app = await buildApp(config, extensions);
  } catch (err) {
    // Not a flag mistake (exit 2) but an environment one: say so in one line (exit 1).
    if (err instanceof StoreLockedError) throw new Error(err.message);
    throw err;
  }
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const { registry, authenticated, laneAddress } = app.controlPlane;
  // Tests and the demo wait for "listening on http://host:port"; the log goes to stderr so stdout stays this one line.
  process.stdout.write(
    `laneway control-plane listening on http://${host}:${address.port} ` +
      `(${config.etcd === undefined ? `data ${config.dataDir}` : `store ${app.controlPlane.store.location}`}, revision ${registry.revision}, ${registry.size} sandboxes, ` +
      `${authenticated ? 'bearer tokens required' : 'no authentication'}` +
      `${laneAddress === null ? '' : `, local lanes via ${laneAddress}`})\n`,
  );

  const webhook =
    config.webhook === undefined || config.inject === undefined
      ? null
      : await listenWebhook({ ...config.webhook.listen, certFile: config.webhook.certFile, keyFile: config.webhook.keyFile, inject: config.inject, logger: app.log });
  if (webhook !== null) app.log.info({ address: webhook.server.address() }, 'sidecar-injection webhook listening (TLS)');

  // The store's watch is gone for good (etcd compacted past us): exit, so the supervisor restarts us on a fresh load.
  app.controlPlane.fatal.catch(() => process.exit(1));

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    Promise.all([webhook?.close(), app.close()]).then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}
