// Bearer-token authentication: the tokens file, constant-time comparison, and the per-route access check.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConfigError } from '../core/errors.js';
import { ControlPlaneError } from '../model/api-errors.js';

/** `sidecar`: what injected sidecars get — read, plus reporting captured traffic and probe sightings. */
export type Role = 'writer' | 'sidecar' | 'reader';
/** What a route needs: `public` (health, OpenAPI), `read` (GETs, watches), `report` (sidecars' reports), `write` (changes). */
export type Access = 'public' | 'read' | 'report' | 'write';

/** Each role's rank: a token listed twice gets the higher role. */
const RANK: Readonly<Record<Role, number>> = { reader: 0, sidecar: 1, writer: 2 };

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

interface Entry {
  readonly role: Role;
  readonly digest: Buffer;
}

export class Tokens {
  readonly #entries: readonly Entry[];
  /** tokens shorter than this are accepted but reported at startup as weak */
  static readonly RECOMMENDED_LENGTH = 16;
  readonly weak: number;

  constructor(lines: readonly { role: Role; token: string }[]) {
    this.#entries = lines.map(({ role, token }) => ({ role, digest: digest(token) }));
    this.weak = lines.filter((l) => l.token.length < Tokens.RECOMMENDED_LENGTH).length;
  }

  /** Reads `role:token` lines (`#` comments and blank lines ignored); throws ConfigError naming the line. */
  static load(path: string): Tokens {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError('--tokens-file', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const lines: { role: Role; token: string }[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const role = colon === -1 ? '' : line.slice(0, colon).trim();
      const token = colon === -1 ? '' : line.slice(colon + 1).trim();
      // The token itself never appears in the message: error output ends up in logs.
      if (role !== 'writer' && role !== 'reader' && role !== 'sidecar') {
        throw new ConfigError('--tokens-file', `${path} line ${i + 1}: expected 'writer:<token>', 'sidecar:<token>' or 'reader:<token>'`);
      }
      if (token === '' || /\s/.test(token)) throw new ConfigError('--tokens-file', `${path} line ${i + 1}: empty or blank-containing token`);
      lines.push({ role, token });
    });
    if (lines.length === 0) throw new ConfigError('--tokens-file', `${path} has no tokens`);
    return new Tokens(lines);
  }

  /**
   * The role of `token`, or null. Both sides are hashed to fixed-length digests first, so the
   * comparison time depends neither on the token's length nor on how many leading bytes match, and
   * every entry is compared (no early exit) so timing does not tell which line matched.
   */
  roleOf(token: string): Role | null {
    const presented = digest(token);
    let role: Role | null = null;
    for (const entry of this.#entries) {
      if (timingSafeEqual(presented, entry.digest) && (role === null || RANK[entry.role] > RANK[role])) role = entry.role;
    }
    return role;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; scheme case-insensitive per RFC 9110 §11.1). */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length < 8) return null;
  if (header.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  const token = header.slice(7).trim();
  return token === '' ? null : token;
}

const kRole = Symbol('laneway.role');
type RoleCarrier = FastifyRequest & { [kRole]?: Role };

/**
 * Whether this request may see details that help map the network (a probe's `ECONNREFUSED` vs a
 * timeout): writers, and everyone when no tokens are configured (loopback-only mode, where every
 * caller may write anyway).
 */
export function mayReadDetails(request: FastifyRequest): boolean {
  const role = (request as RoleCarrier)[kRole];
  return role === undefined || role === 'writer';
}

/** The role of the request's token; null when no tokens are configured (loopback-only mode: every caller may write). */
export function requestRole(request: FastifyRequest): Role | null {
  return (request as RoleCarrier)[kRole] ?? null;
}

/** An onRequest hook enforcing each route's `config.access` (default `read`). */
export function accessHook(tokens: Tokens) {
  return async function checkAccess(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const access = request.routeOptions.config.access ?? 'read';
    if (access === 'public') return;
    const token = bearerToken(request.headers.authorization);
    const role = token === null ? null : tokens.roleOf(token);
    if (role === null) {
      // RFC 6750 §3: a 401 names the scheme the client should use.
      reply.header('www-authenticate', 'Bearer realm="laneway"');
      throw new ControlPlaneError(
        'LANEWAY_ERR_UNAUTHENTICATED',
        token === null ? 'missing Authorization: Bearer <token>' : 'the bearer token is not valid',
      );
    }
    (request as RoleCarrier)[kRole] = role;
    if (access === 'write' && role !== 'writer') {
      throw new ControlPlaneError('LANEWAY_ERR_FORBIDDEN', `this operation needs a writer token; the token given is a ${role} token`);
    }
    if (access === 'report' && role === 'reader') {
      throw new ControlPlaneError('LANEWAY_ERR_FORBIDDEN', 'reporting traffic needs a sidecar (or writer) token; the token given is a reader token');
    }
  };
}
