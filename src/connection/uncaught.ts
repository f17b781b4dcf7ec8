/**
 * Reporting what foreign code threw (a caller's sink, a custom channel) as
 * uncaught, after the connection's own work. A leaf: the in-flight records
 * and the frame writer both use it, and in_flight.ts imports the writer's
 * types, so neither can take it from the other without an import cycle.
 *
 * @module
 */

/**
 * Reports `thrown` (what a caller's sink, or a custom channel without an
 * `onBroken` to go to, threw) as uncaught, after the current work.
 */
export function reportThrow(thrown: unknown): void {
  queueMicrotask(() => {
    throw thrown;
  });
}
