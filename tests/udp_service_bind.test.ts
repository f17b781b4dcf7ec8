// UdpService.bind with a custom datagram channel that refuses its
// receivers (onMessage or onClose throws): a typed error naming the
// channel's complaint, and the socket closed, as a connection refuses a
// stream channel whose receivers throw.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionError, InvalidArgumentError } from "../src/errors.ts";
import type { DatagramChannel } from "../src/runtime/datagram.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { UdpService } from "../testing/udp_service.ts";

/** A datagram channel whose receiver `which` throws. */
function refusingChannel(
  which: "onMessage" | "onClose",
): DatagramChannel & { closeCalls: number } {
  const channel = {
    hostname: "127.0.0.1",
    port: 7001,
    closed: false,
    closeCalls: 0,
    onMessage() {},
    onClose() {},
    send: () => true,
    close() {
      channel.closeCalls++;
    },
  };
  channel[which] = () => {
    throw new Error(`${which} refused`);
  };
  return channel;
}

for (const which of ["onMessage", "onClose"] as const) {
  test(`UdpService.bind with a channel whose ${which} throws rejects with LISTEN_FAILED and closes it (the raw error escaped, the socket left open)`, async () => {
    const channel = refusingChannel(which);
    const adapter = {
      datagram: () => Promise.resolve(channel),
    } as unknown as RuntimeAdapter;
    const service = new UdpService<object>({ adapter, onMessage: () => {} });
    await assert.rejects(service.bind("127.0.0.1", 7001), (error) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.code, "LISTEN_FAILED");
      assert.match(error.message, /127\.0\.0\.1:7001/);
      assert.match(error.message, new RegExp(`${which} refused`));
      return true;
    });
    assert.equal(channel.closeCalls, 1, "the socket closed");
    assert.equal(service.bound, false);
  });
}

test("UdpService.bind with a channel that refuses its receivers with hostile text quotes it escaped and cut short", async () => {
  const hostile = "\u001b[2J\nbound ok\u202e" + "x".repeat(1 << 20);
  const channel = refusingChannel("onMessage");
  channel.onMessage = () => {
    throw new Error(hostile);
  };
  const adapter = {
    datagram: () => Promise.resolve(channel),
  } as unknown as RuntimeAdapter;
  const service = new UdpService<object>({ adapter, onMessage: () => {} });
  await assert.rejects(service.bind("127.0.0.1", 7001), (error) => {
    assert.ok(error instanceof ConnectionError, String(error));
    assert.doesNotMatch(error.message, /[\p{Cc}\p{Cf}]/u);
    assert.ok(
      error.message.includes("\\u001b[2J\\nbound ok"),
      error.message.slice(0, 300),
    );
    assert.ok(error.message.length < 500, `${error.message.length} chars`);
    return true;
  });
  assert.equal(channel.closeCalls, 1, "the socket closed");
});

test("UdpService.bind whose adapter's datagram() rejects with a raw error rejects with LISTEN_FAILED naming it (the raw error escaped)", async () => {
  const adapter = {
    datagram: () => Promise.reject(new Error("no sockets today")),
  } as unknown as RuntimeAdapter;
  const service = new UdpService<object>({ adapter, onMessage: () => {} });
  await assert.rejects(service.bind("127.0.0.1", 7001), (error) => {
    assert.ok(error instanceof ConnectionError, String(error));
    assert.equal(error.code, "LISTEN_FAILED");
    assert.match(error.message, /127\.0\.0\.1:7001/);
    assert.match(error.message, /no sockets today/);
    return true;
  });
  assert.equal(service.bound, false);
});

test("UdpService.bind whose adapter's datagram() resolves with what is no DatagramChannel rejects with InvalidArgumentError, closing it if it can (a TypeError escaped)", async () => {
  let closed = 0;
  const notAChannel = { close: () => void closed++ };
  const adapter = {
    datagram: () => Promise.resolve(notAChannel),
  } as unknown as RuntimeAdapter;
  const service = new UdpService<object>({ adapter, onMessage: () => {} });
  await assert.rejects(service.bind("127.0.0.1", 7001), (error) => {
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.match(error.message, /DatagramChannel/);
    assert.match(error.message, /onMessage/);
    return true;
  });
  assert.equal(closed, 1);
  assert.equal(service.bound, false);
});
