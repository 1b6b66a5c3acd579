// Routing keys are exactly what travels: only characters that percent-decoding leaves unchanged (issue 11 item 2).
import { afterAll, describe, expect, it } from 'vitest';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { propagation, ROOT_CONTEXT, defaultTextMapGetter } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../cli/server.js';
import { configWith } from '../../control-plane/config.js';
import { isRoutingKey, ROUTING_KEY_PATTERN } from '../../core/names.js';
import { generateRoutingKey } from '../../control-plane/spec.js';
import { findBaggageValue } from '../../proxy/baggage.js';
import { RouteTableError, validateSnapshot } from '../../model/route-table.js';
import { TOOLS } from '../../cli/mcp.js';
import { createAjv } from '../../core/ajv.js';
import { removeTempDirs, spec, tempDir } from './helpers.js';

const apps: FastifyInstance[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  removeTempDirs();
});

async function put(name: string, routingKey: string): Promise<{ status: number; body: any }> {
  if (apps.length === 0) {
    const app = await buildServer(configWith({ dataDir: tempDir() }));
    await app.ready();
    apps.push(app);
  }
  const res = await apps[0]!.inject({ method: 'PUT', url: `/v1/sandboxes/${name}`, payload: { spec: spec(['a/b'], '127.0.0.1:9', { routingKey }) } });
  return { status: res.statusCode, body: res.json() };
}

/** What OpenTelemetry's own propagator reads from `baggage: laneway=<raw>`. */
function otelValue(raw: string): string | undefined {
  const ctx = new W3CBaggagePropagator().extract(ROOT_CONTEXT, { baggage: `laneway=${raw}` }, defaultTextMapGetter);
  return propagation.getBaggage(ctx)?.getEntry('laneway')?.value;
}

const REFUSED = ['k%41', 'a b', 'é', 'k+1', "it's", 'a,b', 'a;b', 'a=b', 'k!', 'k*', 'k|x', 'k^x', 'k`x', 'k#x', 'k$x', 'k&x'];
const ACCEPTED = ['k7f3q2', 'a-key-pr2', 'A.b_c~d-9', 'x'.repeat(64)];

describe('routing-key alphabet', () => {
  it.each(REFUSED)('the API refuses %j with 400 naming spec.routingKey', async (key) => {
    const res = await put('pr-x', key);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('LANEWAY_ERR_INVALID_FIELD');
    expect(res.body.error.field).toBe('spec.routingKey');
  });

  it.each(ACCEPTED)('the API accepts %j', async (key) => {
    const res = await put(`ok-${ACCEPTED.indexOf(key)}`, key);
    expect(res.status).toBe(201);
    expect(res.body.status.routingKey).toBe(key);
  });

  it('every accepted key reads back as itself through the sidecar scan and OpenTelemetry (decoding is the identity)', () => {
    const samples = [...ACCEPTED, generateRoutingKey(), '~._-', 'Z9'];
    for (const key of samples) {
      expect(isRoutingKey(key)).toBe(true);
      expect(findBaggageValue(`laneway=${key}`, 'laneway')).toBe(key);
      expect(otelValue(key)).toBe(key);
    }
  });

  it('the sidecar refuses a route table carrying a key outside the alphabet (the old table stays)', () => {
    const table = { workload: 'a/b', revision: 1, routes: [{ key: 'k%41', sandbox: 's', targets: { '80': '127.0.0.1:1' } }] };
    expect(() => validateSnapshot(table)).toThrow(RouteTableError);
  });

  it('the MCP tool schema uses the same rules as the API (key alphabet; ttl 1.5h accepted)', () => {
    const apply = TOOLS.find((t) => t.name === 'sandbox_apply')!;
    const validate = createAjv().compile(apply.inputSchema);
    const input = (routingKey: string, ttl = '2h') => ({ name: 'pr-1', spec: { routingKey, ttl, forks: [{ workload: 'a/b', targets: { '8080': '127.0.0.1:9' } }] } });
    for (const key of ACCEPTED) expect(validate(input(key)), key).toBe(true);
    for (const key of REFUSED) expect(validate(input(key)), key).toBe(false);
    expect(validate(input('k1', '1.5h'))).toBe(true);
    expect(validate(input('k1', '90'))).toBe(false);
    expect(JSON.stringify(apply.inputSchema)).toContain(JSON.stringify(ROUTING_KEY_PATTERN));
  });
});
