// The data-plane listeners: one server per `--port`, wired to forwarding and tunnelling, with bounded drain.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Forwarder } from './forward.js';
import type { Tunneler } from './tunnel.js';
import type { Stats } from './metrics.js';
import type { PortMapping } from './config.js';

export interface ListenerOptions {
  readonly host: string;
  readonly ports: readonly PortMapping[];
  readonly idleTimeoutMs: number;
}

export class Listeners {
  readonly servers: Server[] = [];
  readonly #stats: Stats;
  readonly #sockets = new Set<Socket>();

  constructor(options: ListenerOptions, forwarder: Forwarder, tunneler: Tunneler, stats: Stats) {
    this.#stats = stats;
    const onSocketClose = (socket: Socket): void => {
      this.#sockets.delete(socket);
      stats.openConnections--;
    };
    for (const { appPort } of options.ports) {
      const server = createServer(
        {
          keepAliveTimeout: options.idleTimeoutMs,
          // Uploads and downloads may legitimately take long; idleness is bounded by keepAliveTimeout and upstream timeouts.
          requestTimeout: 0,
          noDelay: true,
        },
        (req, res) => forwarder.handle(req, res, appPort),
      );
      server.on('upgrade', (req, socket, head) => tunneler.handle(req, socket, head, appPort));
      server.on('connection', (socket: Socket) => {
        stats.openConnections++;
        this.#sockets.add(socket);
        socket.once('close', () => onSocketClose(socket));
      });
      this.servers.push(server);
    }
  }

  async listen(host: string, ports: readonly PortMapping[]): Promise<void> {
    await Promise.all(
      this.servers.map(
        (server, i) =>
          new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(ports[i]!.listenPort, host, () => {
              server.off('error', reject);
              resolve();
            });
          }),
      ),
    );
  }

  /**
   * Stops accepting, lets in-flight requests finish (closing keep-alive connections as they go idle),
   * and after `timeoutMs` closes whatever is left. Resolves true when everything finished in time.
   */
  async drain(timeoutMs: number, inFlight: () => number): Promise<boolean> {
    for (const server of this.servers) server.close();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const server of this.servers) server.closeIdleConnections();
      if (inFlight() === 0 && this.#sockets.size === 0) return true;
      if (inFlight() === 0) {
        // Idle keep-alive and upgraded sockets: nothing is lost by closing them now.
        for (const socket of this.#sockets) socket.destroySoon();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const server of this.servers) server.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
    return this.#stats !== undefined && inFlight() === 0;
  }
}
