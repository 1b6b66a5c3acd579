// Durations in plans and policies: the CLI's syntax (500ms, 5s, 2m), as a value or undefined so each caller words its own error.
import { parseDurationMs } from '../cli/flags.js';

/**
 * Milliseconds, or undefined when `text` is not a duration. parseDurationMs throws a ConfigError
 * naming a flag; a plan or policy field names its path instead, so every caller here would catch
 * and rethrow. One wrapper until a pure parser sits below both.
 */
export function durationMs(text: string): number | undefined {
  try {
    return parseDurationMs('duration', text);
  } catch {
    return undefined;
  }
}
