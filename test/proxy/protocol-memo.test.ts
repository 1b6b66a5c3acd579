// `auto` learning: the HTTP/2-preface probe against real servers on 127.0.0.1 (h2c, HTTP/1.1, silent, closed), and that it is shared.
import { afterAll, describe, expect, it } from 'vitest';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import http2 from 'node:http2';
import { once } from 'node:events';
import { ProtocolMemo, ProtocolMemos } from '../../proxy/protocol-memo.js';
import { AS_CLIENT, H2C, HTTP1 } from '../../proxy/protocols.js';

const servers: { close(): void }[] = [];
const sockets = new Set<Socket>();

async function listen<S extends Server | http2.Http2Server>(server: S): Promise<number> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return (server.address() as { port: number }).port;
}

afterAll(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

describe('ProtocolMemo', () => {
  it('learns h2c from a server that answers the preface with SETTINGS', async () => {
    const memo = new ProtocolMemo('127.0.0.1', await listen(http2.createServer()), 3000);
    await memo.probe();
    expect(memo.learned).toBe(H2C);
  });

  it('learns HTTP/1.1 from a server whose parser refuses the preface, and its handler never sees a request', async () => {
    let requests = 0;
    const memo = new ProtocolMemo('127.0.0.1', await listen(createHttpServer(() => requests++)), 3000);
    await memo.probe();
    expect(memo.learned).toBe(HTTP1);
    expect(requests).toBe(0);
  });

  it('takes a server that accepts and says nothing for HTTP/1.1 once AUTO_PROBE_TIMEOUT_MS passes', async () => {
    const memo = new ProtocolMemo('127.0.0.1', await listen(createNetServer(() => {})), 3000);
    await memo.probe();
    expect(memo.learned).toBe(HTTP1);
  });

  it('stays unlearned when nothing listens, and probes again next time', async () => {
    const probe = createNetServer();
    const port = await listen(probe);
    probe.close();
    await once(probe, 'close');
    const memo = new ProtocolMemo('127.0.0.1', port, 3000);
    await memo.probe();
    expect(memo.learned).toBe(AS_CLIENT);
    await memo.probe();
    expect(memo.probes).toBe(2);
  });

  it('shares one probe between concurrent requests, and forget() makes the next one probe again', async () => {
    const memos = new ProtocolMemos(10, 3000);
    const port = await listen(http2.createServer());
    const memo = memos.get('127.0.0.1', port);
    expect(memos.get('127.0.0.1', port)).toBe(memo);
    await Promise.all(Array.from({ length: 20 }, () => memo.probe()));
    expect(memo.probes).toBe(1);
    await memo.probe(); // learned: no new probe
    expect(memo.probes).toBe(1);
    memo.forget();
    expect(memo.learned).toBe(AS_CLIENT);
    await memo.probe();
    expect(memo).toMatchObject({ learned: H2C, probes: 2 });
  });

  it('keys IPv6 hosts the same with or without brackets', () => {
    const memos = new ProtocolMemos(10, 3000);
    expect(memos.get('[::1]', 8080)).toBe(memos.get('::1', 8080));
  });
});
