/**
 * Unreferencing a timer differs per runtime: Node and Bun return an object
 * with `unref()` and `ref()`, Deno returns a number and offers
 * `Deno.unrefTimer` and `Deno.refTimer`. This is the only place that knows.
 *
 * @module
 */

interface DenoTimers {
  unrefTimer(id: number): void;
  refTimer(id: number): void;
}

/** Lets the process exit while `handle` is pending. */
export function unrefTimer(handle: unknown): void {
  if (typeof handle === "object" && handle !== null) {
    const unref = (handle as { unref?: () => void }).unref;
    if (typeof unref === "function") unref.call(handle);
    return;
  }
  if (typeof handle === "number") {
    const deno = (globalThis as { Deno?: DenoTimers }).Deno;
    deno?.unrefTimer(handle);
  }
}

/** Makes `handle` keep the process alive again while it is pending. */
export function refTimer(handle: unknown): void {
  if (typeof handle === "object" && handle !== null) {
    const ref = (handle as { ref?: () => void }).ref;
    if (typeof ref === "function") ref.call(handle);
    return;
  }
  if (typeof handle === "number") {
    const deno = (globalThis as { Deno?: DenoTimers }).Deno;
    deno?.refTimer(handle);
  }
}
