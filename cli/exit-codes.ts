// The exit codes of every `laneway` command (README "CLI" has the table): one mapping from an error to its code.
import { LanewayError } from '../core/errors.js';

export const EXIT = Object.freeze({
  /** done; for plans and the doctor: the verdict passed */
  OK: 0,
  /** a failing verdict, a request the control plane refused (conflict, not found), a step that failed */
  FAILED: 1,
  /** a usage mistake or invalid input: unknown flag or command, bad value, a plan or sandbox the API rejected as invalid */
  USAGE: 2,
  /** the control plane is unreachable, or it refused the token (401/403) */
  UNREACHABLE: 3,
});

/** Codes that mean "could not talk to the control plane as this user": exit 3, whatever command asked. */
const UNREACHABLE_CODES = new Set(['LANEWAY_ERR_CONTROL_PLANE', 'LANEWAY_ERR_UNAUTHENTICATED', 'LANEWAY_ERR_FORBIDDEN']);

export function exitCodeOf(err: unknown): number {
  if (!(err instanceof LanewayError)) return EXIT.FAILED;
  if (err.code === 'LANEWAY_ERR_CONFIG') return EXIT.USAGE;
  if (UNREACHABLE_CODES.has(err.code) || err.status === 401 || err.status === 403) return EXIT.UNREACHABLE;
  // The API's answer to invalid input (a field path names what is wrong): the same class of mistake as a bad flag.
  if (err.status === 400 || err.status === 413 || err.status === 422) return EXIT.USAGE;
  return EXIT.FAILED;
}
