// Sidecar configuration: flags and LANEWAY_* env parsed once; every mistake exits 2 with one line naming the flag.
import { describe, expect, it } from 'vitest';
import { defaultMaxConnections, parseSidecarConfig } from '../../proxy/config.js';
import { ConfigError } from '../../core/errors.js';
import { AS_CLIENT, AUTO, H2C, HTTP1 } from '../../proxy/protocols.js';
import { runLaneway } from '../helpers/processes.js';

const base = ['--workload', 'default/orders', '--port', '15080:8080', '--routes-file', '/tmp/r.json'];

describe('parseSidecarConfig', () => {
  it('applies defaults and freezes the result', () => {
    const config = parseSidecarConfig(base, {});
    expect(config.ports).toEqual([{ listenPort: 15080, appPort: 8080, protocol: AS_CLIENT }]);
    expect(config.appHost).toBe('127.0.0.1');
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 15000 });
    expect(config.routingKeyName).toBe('laneway');
    expect(config.fallback).toBe('none');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('turns on every client-side limit by default (README "Limits")', () => {
    const config = parseSidecarConfig(base, {}, 1024);
    expect(config.headersTimeoutMs).toBe(10_000);
    expect(config.bodyTimeoutMs).toBe(30_000);
    expect(config.idleTimeoutMs).toBe(60_000);
    expect(config.tunnelIdleTimeoutMs).toBe(600_000);
    expect(config.maxPipelined).toBe(16);
    expect(config.h2MaxStreams).toBe(100);
    expect(config.maxConnections).toBe(480);
    expect(parseSidecarConfig([...base, '--max-connections', '50'], {}, 1024).maxConnections).toBe(50);
    expect(parseSidecarConfig(base, { LANEWAY_H2_MAX_STREAMS: '10', LANEWAY_BODY_TIMEOUT: '2s' }, 1024)).toMatchObject({ h2MaxStreams: 10, bodyTimeoutMs: 2000 });
  });

  it('derives the connection cap from the fd limit: two descriptors per connection, 64 kept back, at most 10,000', () => {
    expect(defaultMaxConnections(256)).toBe(96);
    expect(defaultMaxConnections(1_048_576)).toBe(10_000);
    expect(defaultMaxConnections(70)).toBe(3);
    expect(defaultMaxConnections(10)).toBe(1);
    expect(defaultMaxConnections(undefined)).toBe(1000);
  });

  it('accepts listen port 0 (a free port, reported at startup)', () => {
    expect(parseSidecarConfig(['--workload', 'a/b', '--port', '0:8080', '--port', '0:9090', '--routes-file', 'x'], {}).ports).toEqual([
      { listenPort: 0, appPort: 8080, protocol: AS_CLIENT },
      { listenPort: 0, appPort: 9090, protocol: AS_CLIENT },
    ]);
  });

  it('reads each app port\'s upstream protocol from a /http1, /h2c or /auto suffix (flag and LANEWAY_PORTS)', () => {
    const argv = ['--workload', 'a/b', '--port', '15001:8080/h2c', '--port', '15002:8081/http1', '--port', '0:8082/auto', '--port', '0:8083', '--routes-file', 'x'];
    expect(parseSidecarConfig(argv, {}).ports.map((p) => p.protocol)).toEqual([H2C, HTTP1, AUTO, AS_CLIENT]);
    expect(parseSidecarConfig(['--workload', 'a/b', '--routes-file', 'x'], { LANEWAY_PORTS: '15080:8080/h2c,15090:9090' }).ports.map((p) => [p.appPort, p.protocol])).toEqual([
      [8080, H2C],
      [9090, AS_CLIENT],
    ]);
  });

  it('reads LANEWAY_* environment variables, flags win', () => {
    const config = parseSidecarConfig(['--fallback', 'none'], {
      LANEWAY_WORKLOAD: 'shop/cart',
      LANEWAY_PORTS: '15080:8080,15090:9090',
      LANEWAY_ROUTES_FILE: '/tmp/x.json',
      LANEWAY_FALLBACK: 'baseline',
      LANEWAY_CONNECT_TIMEOUT: '250ms',
    });
    expect(config.workload).toBe('shop/cart');
    expect(config.ports.map((p) => p.appPort)).toEqual([8080, 9090]);
    expect(config.fallback).toBe('none');
    expect(config.connectTimeoutMs).toBe(250);
  });

  it.each([
    [['--port', '1:2', '--routes-file', 'x'], '--workload'],
    [['--workload', 'orders', '--port', '1:2', '--routes-file', 'x'], '--workload'],
    [['--workload', 'a/b', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '80', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:70000', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2', '--port', '1:3', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2/h3', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2/', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2/H2C', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2/h2c/auto', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2/__proto__', '--routes-file', 'x'], '--port'],
    [['--workload', 'a/b', '--port', '1:2'], '--routes-file'],
    [[...base, '--fallback', 'maybe'], '--fallback'],
    [[...base, '--admin', 'nope'], '--admin'],
    [[...base, '--routing-key-name', 'has space'], '--routing-key-name'],
    [[...base, '--connect-timeout', 'soon'], '--connect-timeout'],
    [[...base, '--headers-timeout', '0s'], '--headers-timeout'],
    [[...base, '--body-timeout', 'never'], '--body-timeout'],
    [[...base, '--tunnel-idle-timeout', '-1s'], '--tunnel-idle-timeout'],
    [[...base, '--max-connections', '0'], '--max-connections'],
    [[...base, '--max-pipelined', '2000'], '--max-pipelined'],
    [[...base, '--h2-max-streams', 'lots'], '--h2-max-streams'],
    [[...base, '--bogus'], '--bogus'],
  ])('%j names %s', (argv, flag) => {
    try {
      parseSidecarConfig(argv, {});
      throw new Error('expected ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).flag).toBe(flag);
    }
  });
});

describe('laneway sidecar with bad configuration', () => {
  it('exits 2 with one line naming the flag', async () => {
    const { code, stderr } = await runLaneway(['sidecar', '--workload', 'default/orders', '--port', 'x:8080', '--routes-file', '/tmp/r.json']);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^laneway: --port: expected <listenPort>:<appPort>\[\/http1\|\/h2c\|\/auto\], got 'x:8080'/);
  });
  it('exits 2 naming --port for an unknown upstream protocol', async () => {
    const { code, stderr } = await runLaneway(['sidecar', '--workload', 'default/orders', '--port', '15001:8080/h2', '--routes-file', '/tmp/r.json']);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^laneway: --port: protocol after '\/' must be one of http1, h2c, auto, got '15001:8080\/h2'/);
  });
  it('prints its version, commit and Node version with --version and version', async () => {
    for (const arg of ['--version', 'version']) {
      const { code, stdout } = await runLaneway([arg]);
      expect(code).toBe(0);
      expect(stdout.trim()).toMatch(new RegExp(`^laneway 0\\.\\d+\\.\\d+ \\((commit [0-9a-f]{12}, )?node ${process.version.replace(/\./g, '\\.')}\\)$`));
    }
  });
  it('exits 2 for an unknown command', async () => {
    const { code, stderr } = await runLaneway(['frobnicate']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
