// W3C Baggage key extraction: spec cases, fuzzing, and a differential check against OpenTelemetry's propagator.
import { describe, expect, it } from 'vitest';
import { ROOT_CONTEXT, propagation, defaultTextMapGetter } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { BAGGAGE_MAX_BYTES, BAGGAGE_MAX_MEMBERS, decodeSingleValue, findBaggageValue, findTracestateValue, walkMembers } from '../../proxy/baggage.js';

describe('findBaggageValue: W3C Baggage cases', () => {
  const cases: [string, string, string | undefined][] = [
    ['plain', 'laneway=k1', 'k1'],
    ['among others', 'userId=alice,laneway=k1,isProduction=false', 'k1'],
    ['optional whitespace around members and =', '  a=b ,\tlaneway = k1\t, c=d', 'k1'],
    ['properties are not part of the value', 'laneway=k1;ttl=60;flag', 'k1'],
    ['properties with whitespace', 'laneway=k1 ; prop=1', 'k1'],
    ['percent-encoded value', 'laneway=k%31', 'k1'],
    ['percent-encoded UTF-8', 'laneway=%C3%A9t%C3%A9', 'été'],
    ['malformed escape drops the member', 'laneway=%E0%A4%A', undefined],
    ['key is case-sensitive', 'Laneway=k1', undefined],
    ['prefix key is another key', 'laneway2=k1', undefined],
    ['suffix key is another key', 'xlaneway=k1', undefined],
    ['name only inside a value', 'a=laneway', undefined],
    ['name inside another value with =', 'a=x=laneway=k1', undefined],
    ['empty value', 'laneway=', undefined],
    ['missing =', 'laneway', undefined],
    ['space inside value is malformed', 'laneway=k 1', undefined],
    ['quote inside value is malformed', 'laneway="k1"', undefined],
    ['backslash inside value is malformed', 'laneway=k\\1', undefined],
    ['malformed member does not hide a valid one', 'laneway=bad value,laneway=k2', 'k2'],
    ['malformed neighbour is skipped', '=x,;;,laneway=k1,,', 'k1'],
    ['duplicates: last valid wins (as OpenTelemetry)', 'laneway=k1,laneway=k2', 'k2'],
    ['duplicate after a malformed one keeps the valid', 'laneway=k1,laneway=bad value', 'k1'],
    ['several headers joined', 'a=b,laneway=k1', 'k1'],
    ['no key at all', 'a=b,c=d', undefined],
    ['empty header', '', undefined],
    ['only commas', ',,,', undefined],
  ];
  it.each(cases)('%s', (_label, header, expected) => {
    expect(findBaggageValue(header, 'laneway')).toBe(expected);
  });

  it('honours the 180-member limit: members past it are dropped', () => {
    const filler = Array.from({ length: BAGGAGE_MAX_MEMBERS - 1 }, (_, i) => `m${i}=v`);
    expect(findBaggageValue([...filler, 'laneway=k1'].join(','), 'laneway')).toBe('k1');
    expect(findBaggageValue([...filler, 'x=y', 'laneway=k1'].join(','), 'laneway')).toBeUndefined();
  });

  it('honours the 8192-byte limit: a member ending past it is dropped', () => {
    const pad = `pad=${'x'.repeat(BAGGAGE_MAX_BYTES - 20)}`;
    expect(findBaggageValue(`${pad},laneway=k1`, 'laneway')).toBe('k1');
    const bigPad = `pad=${'x'.repeat(BAGGAGE_MAX_BYTES)}`;
    expect(findBaggageValue(`${bigPad},laneway=k1`, 'laneway')).toBeUndefined();
  });

  it('uses a configured key name', () => {
    expect(findBaggageValue('lane=k9,laneway=k1', 'lane')).toBe('k9');
  });
});

describe('other key sources', () => {
  it('tracestate member', () => {
    expect(findTracestateValue('rojo=00f067aa0ba902b7, laneway=k1', 'laneway')).toBe('k1');
    expect(findTracestateValue('xlaneway=k1', 'laneway')).toBeUndefined();
    expect(findTracestateValue('laneway=', 'laneway')).toBeUndefined();
  });
  it('ot-baggage / uberctx values are trimmed and URL-decoded', () => {
    expect(decodeSingleValue(' k1 ')).toBe('k1');
    expect(decodeSingleValue('k%31')).toBe('k1');
    expect(decodeSingleValue('%zz')).toBeUndefined();
    expect(decodeSingleValue('')).toBeUndefined();
  });
});

// Deterministic PRNG so a failure reproduces.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz: random input never throws', () => {
  it('survives 20,000 random headers built from hostile characters', () => {
    const rand = rng(42);
    const alphabet = 'laneway=,; \t%"\\\x00\xff\u00e9k1=%zz%C3;=,,';
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rand() * 120);
      let s = '';
      for (let j = 0; j < len; j++) {
        s += rand() < 0.3 ? String.fromCharCode(Math.floor(rand() * 256)) : alphabet[Math.floor(rand() * alphabet.length)];
      }
      const value = findBaggageValue(s, 'laneway');
      expect(value === undefined || typeof value === 'string').toBe(true);
      findTracestateValue(s, 'laneway');
      decodeSingleValue(s);
    }
  });
});

describe('the short-header fast path', () => {
  it('agrees with the member-by-member walk on 50,000 random short headers', () => {
    const rand = rng(99);
    const parts = ['laneway', 'laneway2', 'xlaneway', '=', '==', ',', ', ', ' ,', ';', ';p=1', ' ', '\t', 'k1', 'k2', '%6B', '%zz', 'a=b', '"', 'laneway=k3'];
    for (let i = 0; i < 50_000; i++) {
      let s = '';
      const n = Math.floor(rand() * 24);
      for (let j = 0; j < n; j++) s += parts[Math.floor(rand() * parts.length)];
      expect(findBaggageValue(s, 'laneway'), JSON.stringify(s)).toBe(walkMembers(s, 'laneway'));
    }
  });
});

describe('differential: same value as @opentelemetry/core W3CBaggagePropagator', () => {
  const propagator = new W3CBaggagePropagator();
  function otelValue(headers: string[]): string | undefined {
    const carrier = { baggage: headers.length === 1 ? headers[0] : headers };
    const ctx = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
    return propagation.getBaggage(ctx)?.getEntry('laneway')?.value;
  }
  it('agrees on 5,000 generated valid headers', () => {
    const rand = rng(7);
    const keyChars = 'abcdefghijklmnopqrstuvwxyz0123456789_-';
    const valueChars = 'abcXYZ0189-_.~!#$&\'*+/:<>?@[]^`{|}';
    const pick = (chars: string, n: number): string => Array.from({ length: n }, () => chars[Math.floor(rand() * chars.length)]).join('');
    const ows = (): string => (rand() < 0.3 ? (rand() < 0.5 ? ' ' : '\t ') : '');
    let agreed = 0;
    for (let i = 0; i < 5_000; i++) {
      const members: string[] = [];
      const n = 1 + Math.floor(rand() * 12);
      for (let m = 0; m < n; m++) {
        const key = rand() < 0.25 ? 'laneway' : rand() < 0.1 ? 'laneway2' : pick(keyChars, 1 + Math.floor(rand() * 10));
        let value = pick(valueChars, 1 + Math.floor(rand() * 12));
        if (rand() < 0.2) value = encodeURIComponent(`é${value} ü`);
        const props = rand() < 0.3 ? `${ows()};${ows()}p${m}=1` : '';
        members.push(`${ows()}${key}${ows()}=${ows()}${value}${ows()}${props}`);
      }
      // Sometimes split across several baggage headers.
      const split = rand() < 0.3 ? Math.floor(rand() * members.length) : 0;
      const headers = split > 0 ? [members.slice(0, split).join(','), members.slice(split).join(',')] : [members.join(',')];
      const ours = findBaggageValue(headers.join(','), 'laneway');
      expect(ours, headers.join(' | ')).toBe(otelValue(headers));
      agreed++;
    }
    expect(agreed).toBe(5_000);
  });
});
