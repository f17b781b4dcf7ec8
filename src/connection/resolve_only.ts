/**
 * Settling a promise, success or failure, through its resolve function
 * alone.
 *
 * A promise that waits on the network is held for as long as the request
 * is in flight, together with whatever settles it. On V8 each resolving
 * function is a closure of about 56 bytes, so keeping `reject` beside
 * `resolve` costs a tenth of a request's whole budget. Resolving with a
 * thenable that rejects fails the promise just the same, one microtask
 * later and only on the failure path, so only `resolve` need be kept.
 *
 * @module
 */

/** A promise's resolve function, which also accepts a thenable. */
export type Resolve<T> = (value: T | PromiseLike<T>) => void;

/**
 * A thenable that rejects with `error`: `resolve(rejection(error))` rejects
 * the promise behind `resolve` with `error` itself.
 *
 * It is not a promise, so it is never reported as an unhandled rejection
 * while the promise it settles adopts it.
 */
export function rejection(error: unknown): PromiseLike<never> {
  return new Rejection(error);
}

class Rejection implements PromiseLike<never> {
  constructor(readonly error: unknown) {}

  then<A = never, B = never>(
    _onFulfilled?: ((value: never) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): PromiseLike<A | B> {
    // Only a promise adopting this thenable calls `then`, and it always
    // passes its reject function; nothing chains on the result.
    onRejected?.(this.error);
    return this as PromiseLike<never>;
  }
}
