// new ConnectionManager() is a /core door: it takes a resolved config, a
// runtime adapter and connection options. Called with a raw config,
// nothing, or null options it threw a TypeError from deep inside; a
// missing adapter was refused in udpTransport's name; a bad connection
// option (unknown, of the wrong type) surfaced only at the first
// connect, wrapped in a ConnectFailedError.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { ConnectionManager, resolveConfig } from "../core.ts";
import { createMemoryNetwork } from "../src/runtime/memory.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { VirtualClock } from "../testing/virtual_clock.ts";
import { invalid, revoked } from "./support/doors.ts";

const method = "new ConnectionManager()";
const network = createMemoryNetwork();
const resolved = () =>
  resolveConfig({ hosts: ["127.0.0.1:7000"], clock: new VirtualClock() });

test("new ConnectionManager() refuses what is no resolved config, naming it", () => {
  const configs = fc.oneof(
    fc.constantFrom<unknown>(undefined, null, 7, "127.0.0.1:7000", {}),
    fc.constant({ hosts: ["127.0.0.1:7000"] }),
    fc.constant({ ...resolved(), hosts: "127.0.0.1:7000" }),
  );
  fc.assert(
    fc.property(configs, (config) => {
      assert.throws(
        () => new ConnectionManager(config as never, network),
        invalid(method, "config"),
      );
    }),
  );
  // Apart: fast-check cannot look at a revoked proxy.
  assert.throws(
    () => new ConnectionManager(revoked() as never, network),
    invalid(method, "config"),
  );
});

test("new ConnectionManager() refuses a resolved config edited by hand, before anything starts: only what resolveConfig() returned, frozen, is taken", () => {
  type Edit = (config: Record<string, unknown>) => unknown;
  const section =
    (name: string, field: string, value: unknown): Edit => (c) => ({
      ...c,
      [name]: { ...(c[name] as object), [field]: value },
    });
  const without = (name: string): Edit => (c) => {
    const copy = { ...c };
    delete copy[name];
    return copy;
  };
  // Each ran before: with a default or the NaN, failing late in another
  // method's name, or with a raw TypeError.
  const edits: Record<string, Edit> = {
    "timeoutMs NaN": (c) => ({ ...c, timeoutMs: NaN }),
    "timeoutMs -1": (c) => ({ ...c, timeoutMs: -1 }),
    "timeoutMs a string": (c) => ({ ...c, timeoutMs: "5000" }),
    "maxFrameSize NaN": (c) => ({ ...c, maxFrameSize: NaN }),
    "panicThreshold NaN": (c) => ({ ...c, panicThreshold: NaN }),
    "healthConfig.intervalMs -5": section("healthConfig", "intervalMs", -5),
    "poolConfig.maxConnections NaN": section(
      "poolConfig",
      "maxConnections",
      NaN,
    ),
    "no poolConfig": without("poolConfig"),
    "no protocols": without("protocols"),
    "hosts [null]": (c) => ({ ...c, hosts: [null] }),
    "hosts []": (c) => ({ ...c, hosts: [] }),
    "tls null": (c) => ({ ...c, tls: null }),
    "logger 5": (c) => ({ ...c, logger: 5 }),
    "whenNoHealthyNodes bogus": (c) => ({ ...c, whenNoHealthyNodes: "x" }),
    "unchanged copy": (c) => ({ ...c }),
    "proxy": (c) => new Proxy(c, {}),
  };
  for (const [what, edit] of Object.entries(edits)) {
    const config = edit(resolved() as unknown as Record<string, unknown>);
    assert.throws(
      () => new ConnectionManager(config as never, network),
      (error: unknown) =>
        invalid(method, "config")(error) &&
        /resolve it again/.test((error as Error).message),
      what,
    );
  }
  // Edited in place it cannot be: the config and its parts are frozen.
  const config = resolved();
  for (
    const part of [
      config,
      config.poolConfig,
      config.healthConfig,
      config.retryConfig,
      config.tls,
      config.hosts,
      config.hosts[0],
      config.protocols,
    ]
  ) assert.ok(Object.isFrozen(part));
  assert.throws(() => {
    (config as { timeoutMs: number }).timeoutMs = NaN;
  }, TypeError);
  // The one resolveConfig() returned is taken, frozen again or not.
  const manager = new ConnectionManager(Object.freeze(config), network);
  assert.equal(manager.nodes.length, 1);
  return manager.close();
});

test("new ConnectionManager() refuses an adapter without connect in its own name", () => {
  for (const adapter of [undefined, null, {}, { connect: 1 }, revoked()]) {
    assert.throws(
      () => new ConnectionManager(resolved(), adapter as RuntimeAdapter),
      invalid(method, "adapter"),
    );
  }
});

test("new ConnectionManager() refuses an adapter whose datagram or supportsTls is of the wrong kind or cannot be read", () => {
  const throwing = (key: string) =>
    Object.defineProperty({ ...network }, key, {
      get() {
        throw new Error(`${key} boom`);
      },
    });
  const bad: [unknown, string][] = [
    [{ ...network, datagram: 5 }, "adapter.datagram"],
    [{ ...network, supportsTls: "yes" }, "adapter.supportsTls"],
    [throwing("datagram"), "adapter"],
    [throwing("supportsTls"), "adapter"],
  ];
  for (const [adapter, argument] of bad) {
    assert.throws(
      () => new ConnectionManager(resolved(), adapter as RuntimeAdapter),
      invalid(method, argument),
    );
  }
});

test("new ConnectionManager() checks connection options by Connection.connect's rules, before any connect", () => {
  const bad: [unknown, string][] = [
    [null, "connectionOptions"],
    [7, "connectionOptions"],
    [revoked(), "connectionOptions"],
    [{ bogus: 1 }, "connectionOptions.bogus"],
    [{ handshake: 5 }, "connectionOptions.handshake"],
    [{ timeoutMs: Number.NaN }, "connectionOptions.timeoutMs"],
    [{ maxFrameSize: "big" }, "connectionOptions.maxFrameSize"],
  ];
  for (const [options, argument] of bad) {
    assert.throws(
      () => new ConnectionManager(resolved(), network, options as never),
      invalid(method, argument),
    );
  }
});

test("a ConnectionManager built with good arguments and options still closes cleanly", async () => {
  const config = resolved();
  const manager = new ConnectionManager(config, network, {
    clientName: "probe",
  });
  assert.equal(manager.nodes.length, 1);
  await manager.close();
  assert.equal((config.clock as VirtualClock).pendingTimers, 0);
});

test("ConnectionManager.addEventListener and removeEventListener refuse a name the manager never dispatches, a non-listener and bad options, naming them", () => {
  const manager = new ConnectionManager(resolved(), network);
  for (const name of ["addEventListener", "removeEventListener"] as const) {
    const call = (...args: unknown[]) =>
      (manager[name] as (...a: unknown[]) => void)(...args);
    const at = `ConnectionManager.${name}`;
    assert.throws(
      () => call("nodeHealthchanged", () => {}),
      invalid(at, "type"),
    );
    // A pool's event: the manager does not dispatch it (the client does).
    assert.throws(() => call("checkedOut", () => {}), invalid(at, "type"));
    assert.throws(() => call("nodeAdded", 5), invalid(at, "listener"));
    assert.throws(
      () => call("nodeAdded", () => {}, { once: "yes" }),
      invalid(at, "options.once"),
    );
  }
  const listener = () => {};
  manager.addEventListener("nodeHealthChanged", listener);
  assert.equal(manager.hasListeners("nodeHealthChanged"), true);
  manager.removeEventListener("nodeHealthChanged", listener);
  assert.equal(manager.hasListeners("nodeHealthChanged"), false);
});

test("new ConnectionManager() refuses a config another loaded copy of the package resolved with a message that says so, and a plain copy without it", () => {
  // To this copy, a config another copy (another version, or JSR beside
  // npm) resolved is a frozen config it did not make: a frozen copy of
  // one of ours stands for it (a second instance of the module, by a
  // query in its URL, is not one on Bun's test runner).
  const foreign = Object.freeze({ ...resolved() });
  assert.throws(
    () => new ConnectionManager(foreign, network),
    (error: unknown) =>
      invalid(method, "config")(error) &&
      /another loaded copy of @nodewire\/client/.test(
        (error as Error).message,
      ),
  );
  // A plain copy is no other package's: not told so.
  assert.throws(
    () => new ConnectionManager({ ...resolved() }, network),
    (error: unknown) =>
      invalid(method, "config")(error) &&
      !/another loaded copy/.test((error as Error).message),
  );
});
