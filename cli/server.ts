// The composition root of `laneway control-plane`: the control plane plus the features built on it (the plans API).
import type { FastifyInstance } from 'fastify';
import { buildApp, type ControlPlaneExtension } from '../control-plane/app.js';
import type { ControlPlaneConfig } from '../control-plane/config.js';
import { runControlPlane } from '../control-plane/main.js';
import { plansExtension } from '../validate/server/plans-api.js';

/** Everything `laneway control-plane` serves beyond sandboxes and route tables. */
export const CONTROL_PLANE_EXTENSIONS: readonly ControlPlaneExtension[] = Object.freeze([plansExtension]);

/** The full control plane, not listening (tests inject into it). */
export function buildServer(config: ControlPlaneConfig): Promise<FastifyInstance> {
  return buildApp(config, CONTROL_PLANE_EXTENSIONS);
}

export function runServer(argv: string[]): Promise<void> {
  return runControlPlane(argv, CONTROL_PLANE_EXTENSIONS);
}
