// UdpService.close() waits for the socket to report closing, so that the
// port can be bound again; a custom channel that never reports it must
// not hold the node's close for ever.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { UdpService } from "../testing/udp_service.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";

/** A datagram channel whose close is asked for but never reported. */
function silentChannel(): DatagramChannel & { closeCalls: number } {
  return {
    hostname: "127.0.0.1",
    port: 7001,
    closed: false,
    closeCalls: 0,
    onMessage() {},
    onClose() {},
    send: () => true,
    close() {
      this.closeCalls++;
    },
  };
}

/** A UdpService bound on `channel`, a custom adapter's, on `clock`. */
async function boundService(
  channel: DatagramChannel,
  clock: VirtualClock,
): Promise<UdpService<object>> {
  const adapter = {
    datagram: () => Promise.resolve(channel),
  } as unknown as RuntimeAdapter;
  const service = new UdpService<object>({
    adapter,
    clock,
    onMessage: () => {},
  });
  await service.bind("127.0.0.1", 0);
  return service;
}

test("UdpService.close() with a channel that never reports closing resolves after a bounded wait on its clock", async () => {
  const clock = new VirtualClock();
  const channel = silentChannel();
  const service = await boundService(channel, clock);
  let closed = false;
  const closing = service.close().then(() => (closed = true));
  assert.equal(channel.closeCalls, 1);
  for (let i = 0; i < 100 && !closed; i++) await clock.advance(100);
  assert.equal(closed, true, "close() resolved");
  assert.ok(clock.now() <= 5000, `after ${clock.now()} ms`);
  await closing;
  assert.equal(service.bound, false);
  assert.equal(clock.pendingTimers, 0);
});

test("UdpService.close() resolves as soon as the channel reports closing, and leaves no timer", async () => {
  const clock = new VirtualClock();
  let report: (() => void) | undefined;
  const channel: DatagramChannel = {
    ...silentChannel(),
    onClose(fn) {
      report = fn;
    },
    close() {
      queueMicrotask(() => report?.());
    },
  };
  const service = await boundService(channel, clock);
  await service.close();
  assert.equal(clock.now(), 0);
  assert.equal(clock.pendingTimers, 0);
});

test("UdpService.close() with a channel whose close throws resolves at once and leaves no timer: a node's graceful drain closes it unawaited, where a rejection went unhandled", async () => {
  const clock = new VirtualClock();
  const channel: DatagramChannel = {
    ...silentChannel(),
    close() {
      throw new Error("close failed");
    },
  };
  const service = await boundService(channel, clock);
  await service.close();
  assert.equal(service.bound, false);
  assert.equal(clock.pendingTimers, 0);
});

test("UdpService.close() with a channel whose close is async and rejects handles that rejection and resolves at once, leaving no timer: the promise was dropped (an unhandled rejection) and the wait ran its 5 s", async () => {
  const clock = new VirtualClock();
  let watched = false;
  const channel: DatagramChannel = {
    ...silentChannel(),
    // A thenable, so the test sees whether anyone takes its outcome
    // without leaving a real rejection unhandled when nobody does.
    close() {
      return {
        then(_: unknown, fail: (error: Error) => void) {
          watched = true;
          fail(new Error("async close failed"));
        },
      } as unknown as void;
    },
  };
  const service = await boundService(channel, clock);
  let closed = false;
  const closing = service.close().then(() => (closed = true));
  for (let i = 0; i < 10 && !closed; i++) await Promise.resolve();
  assert.equal(watched, true, "the close's promise was watched");
  assert.equal(closed, true, "close() resolved without waiting");
  assert.equal(clock.now(), 0);
  assert.equal(clock.pendingTimers, 0);
  await closing;
  assert.equal(service.bound, false);
});
