// Sidecar configuration: flags and LANEWAY_* env parsed once; every mistake exits 2 with one line naming the flag.
import { describe, expect, it } from 'vitest';
import { parseSidecarConfig } from '../../proxy/config.js';
import { ConfigError } from '../../core/errors.js';
import { runLaneway } from '../helpers/processes.js';

const base = ['--workload', 'default/orders', '--port', '15080:8080', '--routes-file', '/tmp/r.json'];

describe('parseSidecarConfig', () => {
  it('applies defaults and freezes the result', () => {
    const config = parseSidecarConfig(base, {});
    expect(config.ports).toEqual([{ listenPort: 15080, appPort: 8080 }]);
    expect(config.appHost).toBe('127.0.0.1');
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 15000 });
    expect(config.routingKeyName).toBe('laneway');
    expect(config.fallback).toBe('none');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('accepts listen port 0 (a free port, reported at startup)', () => {
    expect(parseSidecarConfig(['--workload', 'a/b', '--port', '0:8080', '--port', '0:9090', '--routes-file', 'x'], {}).ports).toEqual([
      { listenPort: 0, appPort: 8080 },
      { listenPort: 0, appPort: 9090 },
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
    [['--workload', 'a/b', '--port', '1:2'], '--routes-file'],
    [[...base, '--fallback', 'maybe'], '--fallback'],
    [[...base, '--admin', 'nope'], '--admin'],
    [[...base, '--routing-key-name', 'has space'], '--routing-key-name'],
    [[...base, '--connect-timeout', 'soon'], '--connect-timeout'],
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
    expect(stderr).toMatch(/^laneway: --port: expected <listenPort>:<appPort>, got 'x:8080'/);
  });
  it('exits 2 for an unknown command', async () => {
    const { code, stderr } = await runLaneway(['frobnicate']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
