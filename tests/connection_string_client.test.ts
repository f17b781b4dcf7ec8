// Client.connect with a connection string, end to end against reference
// nodes that require SCRAM: the string's credentials log in, overrides
// merge over it, the options argument still applies, and the password
// that came from the string shows nowhere (errors, log lines, stats,
// JSON, inspection). The config-object form keeps working as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { Client } from "../src/client/client.ts";
import type { LogEntry } from "../src/config/shapes.ts";
import {
  AbortedError,
  AuthenticationError,
  ConfigError,
} from "../src/errors.ts";
import { startTestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const PASSWORD = "s3cret/with@odd:chars%";
const ENCODED = encodeURIComponent(PASSWORD);
const QUIET = "healthConfig.intervalMs=0&poolMin=1&poolConfig.maxConnecting=1";

function assertHidden(...values: unknown[]): void {
  for (const value of values) {
    for (
      const text of [
        String(value),
        JSON.stringify(value, (_k, v) => typeof v === "bigint" ? 0 : v) ?? "",
        inspect(value, { depth: 6 }),
        value instanceof Error ? `${value.message}\n${value.stack}` : "",
      ]
    ) {
      for (const form of [PASSWORD, ENCODED]) {
        assert.ok(!text.includes(form), `password shows in: ${text}`);
      }
    }
  }
}

test("the string's user and password log in; nothing the client shows holds the password", async () => {
  const node = await startTestNode({ credentials: { alice: PASSWORD } });
  const log: LogEntry[] = [];
  // A second host that refuses connections, so there is something to log.
  const client = await Client.connect(
    `nodewire://alice:${ENCODED}@${node.address},127.0.0.1:1/?${QUIET}` +
      "&retries=1&healthConfig.unhealthyThreshold=1",
    { logger: (entry) => log.push(entry) },
  );
  try {
    assert.equal(replyText(await client.request(ops.echo("hi"))), "hi");
    assert.equal(client.config.username, "alice");
    assert.equal(client.config.password?.reveal(), PASSWORD);
    assert.equal(client.config.logger !== undefined, true);
    assert.ok(node.stats.authSuccesses >= 1);
    // The dead host, put back in service, fails its check: a log line.
    client.manager.markNodeHealthy("127.0.0.1:1");
    await client.healthCheckAllNodes();
    assert.ok(log.length > 0, "something was logged");
    assertHidden(client.config, client.stats(), client, ...log);
    assert.equal(JSON.stringify(client.config.password), '"[redacted]"');
  } finally {
    await client.disconnect();
    await node.close();
  }
});

test("a wrong password from the string fails with AuthenticationError, which does not show it", async () => {
  const node = await startTestNode({ credentials: { alice: "another" } });
  try {
    const error = await Client.connect(
      `nodewire://alice:${ENCODED}@${node.address}/?${QUIET}`,
    ).then(() => undefined, (e) => e);
    assert.ok(error instanceof AuthenticationError, String(error));
    assertHidden(error);
  } finally {
    await node.close();
  }
});

test("overrides supply what the string leaves out, and the options argument comes third", async () => {
  const node = await startTestNode({ credentials: { alice: PASSWORD } });
  try {
    const client = await Client.connect(
      `nodewire://alice@${node.address}/?${QUIET}`,
      { password: PASSWORD, poolConfig: { maxConnections: 3 } },
      { signal: new AbortController().signal },
    );
    assert.equal(client.config.poolConfig.maxConnections, 3);
    assert.equal(client.config.poolConfig.minConnections, 1);
    assert.equal(replyText(await client.request(ops.echo("x"))), "x");
    await client.disconnect();

    const aborted = new AbortController();
    aborted.abort(new Error("shutting down"));
    await assert.rejects(
      Client.connect(`nodewire://${node.address}/?${QUIET}`, undefined, {
        signal: aborted.signal,
      }),
      (e: unknown) =>
        e instanceof AbortedError && e.code === "ABORTED" &&
        /the connect was aborted/.test(e.message),
    );
  } finally {
    await node.close();
  }
});

test("the config-object form is unchanged: the options argument comes second", async () => {
  const node = await startTestNode();
  try {
    const client = await Client.connect(
      {
        hosts: [node.address],
        healthConfig: { intervalMs: 0 },
        poolConfig: { minConnections: 1 },
      },
      { signal: new AbortController().signal },
    );
    assert.equal(replyText(await client.request(ops.echo("y"))), "y");
    await client.disconnect();
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(
      Client.connect({ hosts: [node.address] }, { signal: aborted.signal }),
      (e: unknown) =>
        e instanceof AbortedError && e.code === "ABORTED" &&
        /the connect was aborted/.test(e.message),
    );
  } finally {
    await node.close();
  }
});

test("a bad string is refused before anything connects", async () => {
  await assert.rejects(
    Client.connect("nodewire://h1/?timeoutMs=abc"),
    (e: unknown) =>
      e instanceof ConfigError && e.field === "timeoutMs" &&
      /expected a number/.test(e.message),
  );
  await assert.rejects(
    Client.connect({ hosts: [`nodewire://alice:${ENCODED}@h1`] }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /looks like a connection string/);
      assertHidden(e);
      return true;
    },
  );
});

// The overloads, as the type checker sees them (`deno check tests/`).
export function typeChecks(): void {
  // @ts-expect-error: a config object is followed by options, not overrides.
  Client.connect({ hosts: ["h"] }, { timeoutMs: 5 });
  // @ts-expect-error: overrides are part of a config, not options.
  Client.connect("nodewire://h", { signal: undefined, bogus: 1 });
  Client.connect("nodewire://h", { timeoutMs: 5 }, { signal: undefined });
  Client.connect(undefined, { logger: () => {} });
  Client.connect();
}
