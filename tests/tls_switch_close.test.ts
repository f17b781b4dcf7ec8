// close() while the stream switches to TLS, with a request waiting for the
// secure channel: a graceful close lets the work in flight finish, and
// that request can only go out once the switch is done. The switch took
// the closing connection for a closed one: it destroyed the secure
// channel it had just been handed and failed startTls() with a
// ConnectionLostError saying the connection was closed (it was not); the
// request then waited out its whole timeout ("before it was sent"), and
// close() with it. Now a closing connection completes its switch: the
// request goes out on the secure channel and is answered, then the close
// ends the connection with GOODBYE, over TLS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { MessageCodec } from "../src/protocol/codec.ts";
import { MessageType } from "../src/protocol/frame.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { watchEscapes } from "./support/fault_harness.ts";
import { stubChannel } from "./support/stub_channel.ts";

/** A message type's name, as MessageType spells it. */
const nameOf = (type: number) =>
  Object.entries(MessageType).find(([, value]) => value === type)?.[0];

/** Every microtask queued so far (a tick's end) has run. */
const tickEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

test("close() during a TLS switch with a request waiting lets the switch finish, the request go out on the secure channel and be answered, then closes with GOODBYE over TLS", async () => {
  const watch = watchEscapes();
  const codec = new MessageCodec();
  const log: string[] = [];
  let upgrade!: (secure: ByteChannel) => void;
  let reply!: (chunk: Uint8Array) => void;
  const plain = stubChannel({
    onData: () => {},
    write: () => (log.push("plain write"), true),
    close: () => log.push("plain close"),
    destroy: () => log.push("plain destroy"),
    startTls: () => new Promise<ByteChannel>((resolve) => (upgrade = resolve)),
  });
  const secure = stubChannel({
    onData: (fn) => (reply = fn),
    write(bytes) {
      new MessageCodec().decode(bytes.slice(), (m) => {
        log.push(`secure ${nameOf(m.type)}`);
        // The node answers each request.
        if (m.type === MessageType.Request) {
          queueMicrotask(() =>
            reply(codec.encode({
              type: MessageType.Response,
              flags: 0,
              sequence: m.sequence,
              payload: new Uint8Array([7]),
            }))
          );
        }
      });
      return true;
    },
    close: () => log.push("secure close"),
    destroy: () => log.push("secure destroy"),
  });
  const clock = new VirtualClock();
  const connection = new Connection(plain, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 1000,
  });
  const switched = connection.startTls({ serverName: "n1" }).then(
    () => "switched",
    (e: unknown) => e,
  );
  const request = connection.sendRequest(new Uint8Array([1])).then(
    (bytes) => `answered ${Array.from(bytes)}`,
    (e: unknown) => e,
  );
  let closed = false;
  const closing = connection.close().then(() => (closed = true));
  await tickEnds();
  assert.equal(connection.isOpen, false, "closing");
  upgrade(secure);
  // Before: a ConnectionLostError saying the connection was closed.
  assert.equal(await switched, "switched");
  await tickEnds();
  // Before: still waiting, to time out "before it was sent" at 1000 ms.
  assert.equal(await request, "answered 7");
  await tickEnds();
  assert.equal(closed, true, "closed without waiting for a timeout");
  await closing;
  assert.equal(await connection.closed, undefined, "closed gracefully");
  assert.equal(connection.encrypted, true);
  assert.deepEqual(log, [
    "secure Request",
    "secure Goodbye",
    "secure close",
  ], "nothing in plaintext; the secure channel closed, not destroyed");
  assert.equal(clock.pendingTimers, 0);
  assert.deepEqual(await watch.stop(), []);
});
