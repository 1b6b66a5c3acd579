// Request headers and route tables shared by every suite: realistic baggage, a 10,000-route snapshot.
import type { RouteSnapshot } from '../../model/route-table.js';

export const WORKLOAD = 'default/orders';
export const APP_PORT = 8080;
/** The routes everyone loads: the 10,000 of the cost target, so every suite runs with a full table. */
export const ROUTE_COUNT = 10_000;
/** The sandbox the bench routes to; its key sits in the middle of the table (no first/last-entry luck). */
export const SANDBOX = 'bench-sandbox';
export const SANDBOX_KEY = 'k4q7x2m9b3t8w1z6p5n0';

/** Headers of an ordinary instrumented request, as a browser → gateway → service hop sends them. */
export const BASE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'user-agent': 'laneway-bench/1',
  accept: 'application/json',
  'accept-encoding': 'gzip, deflate',
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
});

/** Nine members OpenTelemetry users commonly carry (ids, tenant, flags; one with a property, one percent-encoded). */
const OTHER_MEMBERS = [
  'userId=alice',
  'tenant=acme-corp',
  'session.id=3f2a9c1e7b',
  'serverNode=DF%2028',
  'isProduction=false',
  'region=eu-west-1',
  'feature.flags=new-checkout;ttl=60',
  'client.version=4.12.0',
  'experiment=checkout-b',
];

/** A `baggage` value of `members` members (≥ 1) whose last one is the routing key, or none at all when `withKey` is false. */
export function baggage(members: number, withKey = true, key = SANDBOX_KEY): string {
  const parts: string[] = [];
  const others = withKey ? members - 1 : members;
  for (let i = 0; i < others; i++) parts.push(OTHER_MEMBERS[i % OTHER_MEMBERS.length]!.replace('=', `${i >= OTHER_MEMBERS.length ? i : ''}=`));
  if (withKey) parts.push(`laneway=${key}`);
  return parts.join(',');
}

/** A baggage header just under the W3C 8,192-byte limit with the key as its last member: the parser's worst case. */
export function baggage8k(key = SANDBOX_KEY): string {
  const tail = `,laneway=${key}`;
  const parts: string[] = [];
  let length = tail.length;
  for (let i = 0; length < 8192 - tail.length - 60; i++) {
    const member = `member${i}=value-${i.toString(36).padStart(30, 'x')}`;
    parts.push(member);
    length += member.length + 1;
  }
  return parts.join(',') + tail;
}

/** The realistic sandbox request: the base headers plus a 10-member baggage carrying the key. */
export const SANDBOX_HEADERS: Readonly<Record<string, string>> = Object.freeze({ ...BASE_HEADERS, baggage: baggage(10) });

/** 10,000 routes forking app port `appPort`; the bench's own key points to `sandboxTarget`, the others to unused loopback ports. */
export function routeSnapshot(sandboxTarget: string, appPort = APP_PORT, count = ROUTE_COUNT): RouteSnapshot {
  const routes = [];
  const middle = Math.floor(count / 2);
  for (let i = 0; i < count; i++) {
    if (i === middle) {
      routes.push({ key: SANDBOX_KEY, sandbox: SANDBOX, targets: { [String(appPort)]: sandboxTarget } });
    } else {
      const key = `k${i.toString(36).padStart(8, '0')}${(i * 2654435761 >>> 0).toString(36)}`;
      routes.push({ key, sandbox: `pr-${i}`, targets: { [String(appPort)]: `127.0.0.1:${20_000 + (i % 10_000)}` } });
    }
  }
  return { workload: WORKLOAD, revision: 1, routes };
}
