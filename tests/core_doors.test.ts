// The building blocks of /core read their options once, at the door, and
// refuse bad ones with an InvalidArgumentError naming the option: a
// NodeHealth kept a `healthy` of "no" as it was, udpTransport without an
// adapter threw a raw TypeError, and tlsTransport read its options on
// every connect, unchecked, so a bad one failed there.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createHandshake,
  isNodeFailure,
  NodeHealth,
  peakEwmaFailureSample,
  sleep,
  systemClock,
  tlsTransport,
  udpTransport,
} from "../core.ts";
import { AbortedError, ConnectionRefusedError } from "../mod.ts";
import { Secret } from "../src/secret.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { ConfigError } from "../src/errors.ts";
import { invalid, revoked } from "./support/doors.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { readOnce } from "./support/fault_checks.ts";

const thresholds = { unhealthyThreshold: 1, healthyThreshold: 1 };

test("new NodeHealth refuses bad options and a config it cannot read", () => {
  const method = "new NodeHealth()";
  const bad: [unknown, string][] = [
    [{ healthy: "no" }, "options.healthy"],
    [{ healthy: 1 }, "options.healthy"],
    [{ latencyWeight: NaN }, "options.latencyWeight"],
    [{ latencyWeight: 1.5 }, "options.latencyWeight"],
    [{ latencyWieght: 0.5 }, "options.latencyWieght"],
    [null, "options"],
    [revoked(), "options"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(
      () => new NodeHealth("a:1", thresholds, options as never),
      invalid(method, argument),
    );
  }
  for (const config of [null, revoked()]) {
    assert.throws(
      () => new NodeHealth("a:1", config as never),
      (e: unknown) => e instanceof ConfigError && e.field === "healthConfig",
    );
  }
  // Read once: a getter asked again would throw.
  const options = Object.defineProperties({}, {
    healthy: readOnce(false),
    latencyWeight: readOnce(0.5),
  });
  const health = new NodeHealth("a:1", thresholds, options);
  assert.equal(health.isHealthy, false);
  health.recordSuccess(10, 1);
  health.recordSuccess(20, 2);
  assert.equal(health.latencyMs, 15);
});

test("udpTransport refuses a missing adapter and bad options", () => {
  const method = "udpTransport";
  const adapter = createMemoryNetwork();
  const bad: [unknown, string][] = [
    [{}, "options.adapter"],
    [{ adapter: null }, "options.adapter"],
    [{ adapter, maxDatagramSize: 65508 }, "options.maxDatagramSize"],
    [{ adapter, maxDatagramSize: NaN }, "options.maxDatagramSize"],
    [{ adapter, maxDatagramSize: "1200" }, "options.maxDatagramSize"],
    [{ adapter, maxDatagramsize: 1200 }, "options.maxDatagramsize"],
    [null, "options"],
    [revoked(), "options"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(
      () => udpTransport(options as never),
      invalid(method, argument),
    );
  }
  // The memory network has no datagrams: no transport, options read once.
  const options = Object.defineProperties({}, {
    adapter: readOnce(adapter),
    maxDatagramSize: readOnce(1400),
  });
  assert.equal(udpTransport(options as never), undefined);
});

test("tlsTransport reads its options once, at the door, and refuses bad ones", () => {
  const method = "tlsTransport";
  const tls = resolveTlsConfig({}, "require");
  const clock = new VirtualClock();
  const bad: [unknown, string][] = [
    [{ clock }, "options.tls"],
    [{ tls }, "options.clock"],
    [{ tls: "yes", clock }, "options.tls"],
    [{ tls, clock: {} }, "options.clock"],
    [{ tls, clock, signal: null }, "options.signal"],
    [null, "options"],
    [revoked(), "options"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(
      () => tlsTransport(options as never),
      invalid(method, argument),
    );
  }
  const options = Object.defineProperties({}, {
    tls: readOnce(tls),
    clock: readOnce(clock),
  });
  assert.equal(typeof tlsTransport(options as never), "function");
});

test("createHandshake refuses bad options at once, never showing a password", () => {
  const bad: [unknown, string][] = [
    [null, "options"],
    [revoked(), "options"],
    [{ transports: { tls: 5 } }, "options.transports.tls"],
    [{ transports: 5 }, "options.transports"],
    [{ usernme: "u" }, "options.usernme"],
    [{ username: 5 }, "options.username"],
    [{ username: "u", password: "hunter2" }, "options.password"],
    [{ tlsPolicy: "requir" }, "options.tlsPolicy"],
    [{ protocols: "tcp" }, "options.protocols"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(() => createHandshake(options as never), (e: unknown) => {
      invalid("createHandshake", argument)(e);
      assert.ok(!(e as Error).message.includes("hunter2"));
      return true;
    });
  }
  // Read once: a getter asked again would throw.
  const options = Object.defineProperties({}, {
    username: readOnce("u"),
    password: readOnce(new Secret("p")),
    transports: readOnce(
      Object.defineProperties({}, { udp: readOnce(() => Promise.resolve()) }),
    ),
  });
  assert.equal(typeof createHandshake(options), "function");
  assert.equal(typeof createHandshake(undefined as never), "function");
});

test("sleep refuses a bad clock, delay or signal, rejecting, never firing at once", async () => {
  const clock = new VirtualClock();
  const bad: [unknown, unknown, unknown, string][] = [
    [null, 5, undefined, "clock"],
    [{ setTimeout() {} }, 5, undefined, "clock"],
    [revoked(), 5, undefined, "clock"],
    // NaN and Infinity fire at once on every runtime's timers, and so does
    // a delay beyond 2^31 - 1.
    [clock, NaN, undefined, "ms"],
    [clock, Infinity, undefined, "ms"],
    [clock, -1, undefined, "ms"],
    [clock, 2 ** 31, undefined, "ms"],
    [clock, "10", undefined, "ms"],
    [clock, 5, { aborted: false }, "signal"],
    [clock, 5, revoked(), "signal"],
  ];
  for (const [c, ms, signal, argument] of bad) {
    let outcome: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      outcome = sleep(c as never, ms as never, signal as never);
    });
    await assert.rejects(outcome!, invalid("sleep", argument));
  }
  assert.equal(clock.pendingTimers, 0, "no timer armed for a refusal");
  // The good ones still wait their time, and 0 is "at once".
  let woke = 0;
  void sleep(clock, 0).then(() => woke++);
  void sleep(clock, 10, new AbortController().signal).then(() => woke++);
  await clock.advance(0);
  assert.equal(woke, 1);
  await clock.advance(10);
  assert.equal(woke, 2);
  await sleep(systemClock, 1);
});

test("isNodeFailure and peakEwmaFailureSample refuse what they cannot read, and a bad sample", () => {
  const refused = new ConnectionRefusedError({
    hostname: "127.0.0.1",
    port: 1,
  });
  assert.throws(
    () => isNodeFailure(revoked()),
    invalid("isNodeFailure", "error"),
  );
  assert.equal(isNodeFailure(refused), true);
  assert.equal(isNodeFailure(new Error("a bug")), false);
  const method = "peakEwmaFailureSample";
  assert.throws(
    () => peakEwmaFailureSample(1, revoked()),
    invalid(method, "error"),
  );
  // A NaN sample would poison the estimate for good.
  for (const ms of [NaN, -1, Infinity, "5", undefined]) {
    assert.throws(
      () => peakEwmaFailureSample(ms as never, refused),
      invalid(method, "ms"),
    );
  }
  assert.equal(peakEwmaFailureSample(2, refused), 1000);
  assert.equal(peakEwmaFailureSample(2, new AbortedError("gave up")), -1);
  assert.equal(peakEwmaFailureSample(2, "not an error"), 2);
});

test("resolveTlsConfig refuses a section it cannot read and an unknown policy", () => {
  assert.throws(
    () => resolveTlsConfig(revoked(), "require"),
    (e: unknown) =>
      e instanceof ConfigError && e.field === "tls" &&
      /could not be read/.test(e.message),
  );
  for (const section of [undefined, {}]) {
    // An unknown policy passed for "prefer".
    assert.throws(
      () => resolveTlsConfig(section, "bogus" as never),
      (e: unknown) => e instanceof ConfigError && e.field === "tlsPolicy",
    );
  }
  assert.equal(resolveTlsConfig({}, "prefer").direct, false);
});
