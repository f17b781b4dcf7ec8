/**
 * What the request and batch fault tests share: a memory scene that fails
 * on escaped errors and closes its client with the clock running, a way to
 * let the network run, the checks that nothing is left in flight, a
 * signal that counts its listeners, and getters that may be read only once.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BatchResult } from "../../src/client/batch.ts";
import type { Client } from "../../src/client/client.ts";
import type { ConnectionConfig } from "../../src/config/shapes.ts";
import type { NodewireError } from "../../src/errors.ts";
import { replyText } from "../../testing/ops.ts";
import type { VirtualClock } from "../../testing/virtual_clock.ts";
import { watchEscapes } from "./fault_harness.ts";
import {
  type MemoryScene,
  memoryScene,
  type MemorySceneOptions,
} from "./memory_scene.ts";

/** Lets the memory network and every settled promise run. */
export async function settle(clock: VirtualClock): Promise<void> {
  await clock.advance(0);
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** The error of a failed batch result; fails the test for a success. */
export function errorOf(result: BatchResult): NodewireError {
  if (result.ok) assert.fail("expected the request to fail");
  return result.error;
}

/** The reply text of a successful batch result; fails the test otherwise. */
export function textOf(result: BatchResult): string {
  if (!result.ok) throw result.error;
  return replyText(result.value);
}

/**
 * Disconnects with the clock running until the disconnect is through: a
 * failed check may leave a request waiting on a timer, and the test then
 * fails instead of hanging.
 */
export async function closeDriven(
  client: Client,
  clock: VirtualClock,
): Promise<void> {
  const closing = client.disconnect({ timeoutMs: 1 });
  let closed = false;
  closing.then(() => closed = true);
  for (let i = 0; i < 5; i++) await clock.advance(1);
  for (let i = 0; i < 100 && !closed; i++) await clock.advance(1000);
  await closing;
}

/**
 * The memory scene, with the client disconnected by the test itself while
 * the clock runs (see {@linkcode closeDriven}); errors escaping to the
 * process fail the test too.
 */
export async function guardedScene(
  n: number,
  config: Partial<ConnectionConfig>,
  body: (s: MemoryScene) => Promise<void>,
  options?: MemorySceneOptions,
): Promise<void> {
  const escapes = watchEscapes();
  await memoryScene(n, config, async (s) => {
    try {
      await body(s);
    } finally {
      await closeDriven(s.client, s.clock);
    }
  }, options);
  assert.deepEqual(await escapes.stop(), []);
}

/** Nothing in flight, on the client or any of its nodes. */
export function assertNothingInFlight(client: Client): void {
  const stats = client.stats();
  assert.equal(stats.inFlight, 0, "client inFlight");
  for (const node of stats.nodes) {
    assert.equal(node.inFlight, 0, `${node.address} inFlight`);
  }
}

/** A real signal that counts the listeners added to it and not removed. */
export function countedSignal(
  controller = new AbortController(),
): { signal: AbortSignal; live: () => number } {
  const signal = controller.signal;
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  Object.assign(signal, {
    addEventListener(type: string, fn: () => void, options?: unknown) {
      live.add(fn);
      add(type, fn, options as AddEventListenerOptions);
    },
    removeEventListener(type: string, fn: () => void, options?: unknown) {
      live.delete(fn);
      remove(type, fn, options as EventListenerOptions);
    },
  });
  return { signal, live: () => live.size };
}

/** Rejects with what `promise` rejects with, or fails when it resolves. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected the call to fail");
}

/**
 * Whether `call` has settled once the network has run and the clock has
 * moved `ms` on, without waiting for it otherwise: a batch that never
 * settles fails the test instead of hanging it.
 */
export async function settledWithin(
  clock: VirtualClock,
  call: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let done = false;
  call.then(() => done = true, () => done = true);
  await settle(clock);
  for (let t = 0; t < ms && !done; t++) {
    await clock.advance(1);
    await settle(clock);
  }
  return done;
}

/** A getter that answers `value` once and throws on any later read. */
export function readOnce<T>(value: T): PropertyDescriptor {
  let read = false;
  return {
    enumerable: true,
    get() {
      if (read) throw new Error("read a second time");
      read = true;
      return value;
    },
  };
}
