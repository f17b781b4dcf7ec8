// A serverName that no DNS name or IP literal can be (a NUL or another
// control character, thousands of characters, a port, an IPv6 zone of
// thousands of characters) reached a custom runtime adapter's startTls
// unchecked through Connection.startTls() (/core), which took any
// non-empty string; only the built-in adapters refused it, in their own
// words. The config's tls.serverName, checked as a host, took an IPv6
// address with a zone of any length. Now both doors refuse it, naming
// serverName: an InvalidArgumentError from startTls() before the adapter
// is called, the connection going on as it was; a ConfigError from the
// config. What they take: an RFC 1123 host name (letters, digits, `-`,
// and `_` for container service names) of up to 253 characters, an IPv4
// address, an IPv6 address (with a zone of up to 64 characters).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Connection } from "../src/connection/connection.ts";
import { resolveTlsConfig } from "../src/config/tls.ts";
import { ConfigError, InvalidArgumentError } from "../src/errors.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { stubChannel } from "./support/stub_channel.ts";

const BAD: [string, string][] = [
  ["a NUL", "db\0.evil"],
  ["a newline", "db\nforged"],
  ["an ESC", "db\x1b[2J"],
  ["4000 characters", "a".repeat(4000)],
  ["254 characters", `${"a".repeat(63)}.`.repeat(4).slice(0, 253) + "b"],
  ["a port", "db.internal:7000"],
  ["an IPv6 zone of 4000 characters", `fe80::1%${"z".repeat(4000)}`],
  ["a space", "db internal"],
];

const GOOD = [
  "db.internal",
  "my_db",
  "db.internal.",
  `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`,
  "127.0.0.1",
  "::1",
  "fe80::1%eth0",
];

/** A connection over a stub channel whose startTls records its options. */
function scene() {
  const names: unknown[] = [];
  const channel = stubChannel({
    onData: () => {},
    pause: () => {},
    resume: () => {},
    startTls: (options) => {
      names.push(options.serverName);
      // Refused at once: a test that reaches it ends, failed or not.
      return Promise.reject(new Error("no TLS in this stub"));
    },
  });
  const clock = new VirtualClock();
  const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 1000,
  });
  return { connection, names };
}

for (const [what, name] of BAD) {
  test(`Connection.startTls() with a serverName holding ${what}: an InvalidArgumentError naming serverName, the adapter not called`, async () => {
    const s = scene();
    await assert.rejects(
      s.connection.startTls({ serverName: name }),
      (error: unknown) => {
        // Before: the adapter was called with it (and the switch pended).
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, "options.serverName");
        assert.ok(!error.message.includes("\0"), "the NUL shown raw");
        assert.ok(error.message.length < 1000, "the whole name shown");
        return true;
      },
    );
    assert.deepEqual(s.names, []);
    assert.equal(s.connection.isOpen, true);
    s.connection.destroy();
  });

  test(`tls.serverName holding ${what}: a ConfigError naming tls.serverName`, () => {
    assert.throws(
      () => resolveTlsConfig({ serverName: name }, "require"),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(error.field, "tls.serverName");
        return true;
      },
    );
  });
}

test("Connection.startTls() and tls.serverName take host names of up to 253 characters and IP literals", async () => {
  for (const name of GOOD) {
    const s = scene();
    // The stub refuses the switch: only that it was called is checked.
    await s.connection.startTls({ serverName: name }).catch(() => {});
    assert.deepEqual(s.names, [name], name);
    s.connection.destroy();
    assert.equal(
      resolveTlsConfig({ serverName: name }, "require").serverName,
      name,
    );
  }
});

/** A runtime adapter whose connect records its options and refuses. */
function recordingAdapter() {
  const seen: unknown[] = [];
  return {
    seen,
    adapter: {
      connect: (options: unknown) => {
        seen.push(options);
        return Promise.reject(new Error("no network in this stub"));
      },
    },
  };
}

for (const [what, name] of BAD) {
  test(`Connection.connect() with tls.serverName holding ${what}: an InvalidArgumentError naming it, the adapter not called`, async () => {
    const { seen, adapter } = recordingAdapter();
    await assert.rejects(
      Connection.connect({
        adapter: adapter as never,
        hostname: "127.0.0.1",
        port: 7000,
        tls: { serverName: name },
        clock: new VirtualClock(),
      }),
      (error: unknown) => {
        // Before: the adapter was called with it.
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.equal(error.argument, "options.tls.serverName");
        return true;
      },
    );
    assert.deepEqual(seen, []);
  });
}

test("Connection.connect() takes a tls.serverName that is a host name or an IP literal", async () => {
  for (const name of GOOD) {
    const { seen, adapter } = recordingAdapter();
    await Connection.connect({
      adapter: adapter as never,
      hostname: "127.0.0.1",
      port: 7000,
      tls: { serverName: name },
      clock: new VirtualClock(),
    }).catch(() => {});
    assert.equal(seen.length, 1, name);
  }
});
