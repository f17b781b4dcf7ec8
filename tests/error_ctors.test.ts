// Every public error class is built from whatever a caller or a peer hands
// it: an error is made while something already went wrong, so making it
// must not throw a second, unrelated failure (a TypeError from a template
// literal) in its place, nor write a raw control character to a terminal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import {
  AbortedError,
  AuthenticationError,
  ClientClosedError,
  ConfigError,
  ConnectFailedError,
  ConnectionClosedError,
  ConnectionError,
  ConnectionLostError,
  ConnectionRefusedError,
  ConnectTimeoutError,
  DatagramTooLargeError,
  type ErrorCode,
  HostNotFoundError,
  InvalidArgumentError,
  NegotiationError,
  NodeUnhealthyError,
  NodewireError,
  NoHealthyNodesError,
  PoolClosedError,
  PoolMisuseError,
  PoolTimeoutError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
  RetriesExhaustedError,
  SaslprepError,
  TlsError,
} from "../mod.ts";
import { printable } from "../src/errors/base.ts";

const trap = () => {
  throw new Error("trap");
};

/** A proxy of `target` every one of whose traps throws. */
const trapping = (target: object) =>
  new Proxy(target, {
    get: trap,
    has: trap,
    ownKeys: trap,
    getOwnPropertyDescriptor: trap,
    getPrototypeOf: trap,
    defineProperty: trap,
    set: trap,
  });

function revoked(target: object): object {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

const values: readonly unknown[] = [
  trapping({}),
  trapping([]),
  revoked({}),
  revoked([]),
  Symbol("s\u001b[2J"),
  { [Symbol.toPrimitive]: trap },
  { toString: trap, valueOf: trap },
  Object.create(null),
  undefined,
  null,
  10n,
  () => "a function",
  "\u001b[31mred\u001b[0m\r\nforged line\u202e",
];

/**
 * Where one of {@linkcode values} goes. fast-check draws these and the
 * property puts the value in: fast-check itself reads what it draws (to
 * clone it, to print it), which a proxy whose traps throw does not allow.
 */
class Hostile {
  constructor(readonly index: number) {}
}

/** `drawn` with each {@linkcode Hostile} replaced by its value. */
function built(drawn: unknown): unknown {
  if (drawn instanceof Hostile) return values[drawn.index];
  if (Array.isArray(drawn)) return drawn.map(built);
  if (typeof drawn !== "object" || drawn === null) return drawn;
  return Object.fromEntries(
    Object.entries(drawn).map(([key, value]) => [key, built(value)]),
  );
}

/** What a caller may hand an argument that ends up in a message. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.nat({ max: values.length - 1 }).map((index) => new Hostile(index)),
  fc.string({ unit: "binary", maxLength: 12 }),
);

/** `ordinary`, or now and then something hostile in its place. */
const or = (ordinary: fc.Arbitrary<unknown>) => fc.oneof(ordinary, hostile);
const text = or(fc.constant("127.0.0.1:7000"));
const count = or(fc.nat({ max: 1000 }));
const endpoint = or(fc.record({ hostname: text, port: count }));
const options = or(fc.record({ cause: hostile, sent: or(fc.boolean()) }));
const list = or(fc.array(text, { maxLength: 12 }));

interface Case {
  /** The class, for `instanceof`. */
  // deno-lint-ignore no-explicit-any
  readonly type: new (...args: any[]) => Error;
  /** Each positional argument. */
  readonly args: fc.Arbitrary<unknown>[];
  /** The code the class gives those arguments. */
  readonly code: (args: unknown[]) => string;
}

const always = (code: ErrorCode) => () => code;
const codes = fc.constantFrom<ErrorCode>("CONNECTION_FAILED", "LISTEN_FAILED");

const cases: Case[] = [
  // The base classes take their code from the caller: a real one here,
  // since that code is what is checked.
  {
    type: NodewireError,
    args: [codes, text, options],
    code: ([c]) => c as string,
  },
  {
    type: ConnectionError,
    args: [codes, text, endpoint, options],
    code: ([c]) => c as string,
  },
  {
    type: ConfigError,
    args: [text, hostile, text, options],
    code: always("CONFIG_INVALID"),
  },
  {
    type: InvalidArgumentError,
    args: [
      text,
      hostile,
      text,
      or(fc.record({ method: text, cause: hostile })),
    ],
    code: always("INVALID_ARGUMENT"),
  },
  {
    type: ProtocolError,
    args: [text, options],
    code: always("PROTOCOL_ERROR"),
  },
  {
    type: ConnectionRefusedError,
    args: [endpoint, options],
    code: always("CONNECTION_REFUSED"),
  },
  {
    type: ConnectTimeoutError,
    args: [endpoint, count, options],
    code: always("CONNECT_TIMEOUT"),
  },
  {
    type: HostNotFoundError,
    args: [endpoint, options],
    code: always("HOST_NOT_FOUND"),
  },
  {
    type: ConnectionLostError,
    args: [endpoint, text, options],
    code: always("CONNECTION_LOST"),
  },
  {
    type: ConnectionClosedError,
    args: [endpoint, options],
    code: always("CONNECTION_CLOSED"),
  },
  {
    type: ConnectFailedError,
    args: [
      or(
        fc.array(
          or(
            fc.record({
              address: text,
              error: or(fc.constant(new Error("refused"))),
            }),
          ),
          { maxLength: 12 },
        ),
      ),
      options,
    ],
    code: always("CONNECT_FAILED"),
  },
  {
    type: NodeUnhealthyError,
    args: [text, text],
    code: always("NODE_UNHEALTHY"),
  },
  {
    type: RequestTimeoutError,
    args: [text, count, options],
    code: always("REQUEST_TIMEOUT"),
  },
  { type: AbortedError, args: [text, hostile], code: always("ABORTED") },
  {
    type: RemoteError,
    args: [count, text, fc.boolean(), text, text],
    code: always("REMOTE_ERROR"),
  },
  {
    type: NoHealthyNodesError,
    args: [list, options],
    code: always("NO_HEALTHY_NODES"),
  },
  {
    type: ClientClosedError,
    args: [text, options],
    code: always("CLIENT_CLOSED"),
  },
  {
    type: RetriesExhaustedError,
    args: [count, hostile],
    code: always("RETRIES_EXHAUSTED"),
  },
  {
    type: DatagramTooLargeError,
    args: [text, count, count, count],
    code: always("DATAGRAM_TOO_LARGE"),
  },
  {
    type: PoolTimeoutError,
    args: [
      text,
      count,
      or(fc.record({ open: count, inUse: count, waiting: count })),
      or(fc.constantFrom("timeoutMs", "connectionTimeoutMs")),
    ],
    code: always("POOL_TIMEOUT"),
  },
  {
    type: PoolClosedError,
    args: [text, or(fc.constantFrom("closed", "cleared")), options],
    code: ([, how]) => how === "closed" ? "POOL_CLOSED" : "POOL_CLEARED",
  },
  { type: PoolMisuseError, args: [text, text], code: always("POOL_MISUSE") },
  {
    type: TlsError,
    args: [
      text,
      or(
        fc.record({
          reason: text,
          address: text,
          serverName: text,
          cause: hostile,
        }),
      ),
    ],
    code: always("TLS_FAILED"),
  },
  {
    type: NegotiationError,
    args: [
      or(fc.record({
        address: text,
        clientProtocols: list,
        allowedProtocols: list,
        nodeProtocols: list,
        detail: text,
      })),
      options,
    ],
    code: always("NEGOTIATION_FAILED"),
  },
  {
    type: AuthenticationError,
    args: [
      text,
      or(fc.record({ reason: text, address: text, cause: hostile })),
    ],
    code: always("AUTH_FAILED"),
  },
  { type: SaslprepError, args: [text], code: always("SASLPREP_FAILED") },
];

test("every public error class is built from whatever it is handed: a proxy whose traps throw, a revoked one, a symbol, a throwing toString, control characters; never a throw, always its code and a printable message", () => {
  // Each class is checked on its own, so that a failure names every class
  // that fails, not only the first.
  const failures: string[] = [];
  for (const { type, args, code } of cases) {
    const details = fc.check(
      fc.property(fc.tuple(...args), (recipe) => {
        const drawn = built(recipe) as unknown[];
        let error: Error;
        try {
          error = new type(...drawn);
        } catch (thrown) {
          assert.fail(
            `threw ${thrown instanceof Error ? thrown.message : "a non-error"}`,
          );
        }
        assert.ok(error instanceof type, "an instance of its class");
        assert.ok(error instanceof Error, "an instance of Error");
        assert.equal(typeof error.message, "string", "a message");
        assert.equal(
          printable(error.message),
          error.message,
          "a printable message",
        );
        assert.equal((error as NodewireError).code, code(drawn), "its code");
      }),
      { numRuns: 200 },
    );
    if (details.failed) {
      const reason = details.errorInstance instanceof Error
        ? details.errorInstance.message.split("\n")[0]
        : "";
      failures.push(
        `${type.name}: ${reason}, for ${
          fc.stringify(details.counterexample)
        } ({"index": i} is values[i]; seed ${details.seed}, path ${details.counterexamplePath})`,
      );
    }
  }
  assert.deepEqual(failures, []);
});

test("the property above covers every error class the entry points export", async () => {
  const covered = new Set<unknown>(cases.map(({ type }) => type));
  const entries = [
    "../mod.ts",
    "../core.ts",
    "../protocol.ts",
    "../auth.ts",
    "../runtime.ts",
    "../otel.ts",
    "../testing/mod.ts",
  ];
  for (const entry of entries) {
    const exports: Record<string, unknown> = await import(entry);
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== "function" || !(value.prototype instanceof Error)) {
        continue;
      }
      assert.ok(covered.has(value), `${entry} exports ${name}, not covered`);
    }
  }
});

test("NodewireError and ConnectionError refuse a code the SDK does not define, whatever it is, with InvalidArgumentError naming the class and the code", () => {
  const bad: unknown[] = [
    "NOT_A_CODE",
    "connection_refused",
    "",
    42,
    undefined,
    null,
    {},
    ...values,
  ];
  for (const code of bad) {
    for (
      const make of [
        () => new NodewireError(code as ErrorCode, "message"),
        () =>
          new ConnectionError(code as "CONNECTION_FAILED", "message", {
            hostname: "127.0.0.1",
            port: 7000,
          }),
      ]
    ) {
      let thrown: unknown;
      try {
        make();
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown instanceof InvalidArgumentError, String(thrown));
      assert.equal(thrown.argument, "code");
      assert.match(thrown.message, /^new (NodewireError|ConnectionError): /);
      assert.equal(printable(thrown.message), thrown.message);
    }
  }
  // A code of the SDK's that is no connection error's is no
  // ConnectionError's code either; the base class takes any of them.
  const endpoint = { hostname: "127.0.0.1", port: 7000 };
  assert.throws(
    () =>
      new ConnectionError("AUTH_FAILED" as "CONNECTION_FAILED", "m", endpoint),
    (error) =>
      error instanceof InvalidArgumentError &&
      /CONNECTION_REFUSED/.test(error.message),
  );
  assert.equal(new NodewireError("AUTH_FAILED", "denied").code, "AUTH_FAILED");
  assert.equal(
    new ConnectionError("TLS_UNSUPPORTED", "m", endpoint).code,
    "TLS_UNSUPPORTED",
  );
  // A subclass of the caller's own is held to the same codes.
  class Mine extends NodewireError {
    constructor() {
      super("MINE" as ErrorCode, "mine");
    }
  }
  assert.throws(
    () => new Mine(),
    (error) =>
      error instanceof InvalidArgumentError &&
      error.message.startsWith("new Mine: invalid code"),
  );
});

test("retryable and sent are booleans whatever a caller passes: a value that is none (undefined given explicitly too) is the class's default", () => {
  const endpoint = { hostname: "127.0.0.1", port: 7000 };
  // Each class with options, and the retryable it has by default.
  const classes: [string, (options: object) => NodewireError, boolean][] = [
    ["NodewireError", (o) => new NodewireError("AUTH_FAILED", "m", o), false],
    [
      "ConnectionError",
      (o) => new ConnectionError("CONNECTION_FAILED", "m", endpoint, o),
      true,
    ],
    [
      "ConnectionLostError",
      (o) => new ConnectionLostError(endpoint, "r", o),
      true,
    ],
    ["ConnectFailedError", (o) => new ConnectFailedError([], o), true],
    ["NoHealthyNodesError", (o) => new NoHealthyNodesError([], o), true],
    [
      "PoolClosedError cleared",
      (o) => new PoolClosedError("a", "cleared", o),
      true,
    ],
    [
      "PoolClosedError closed",
      (o) => new PoolClosedError("a", "closed", o),
      false,
    ],
    [
      "RequestTimeoutError unsent",
      (o) => new RequestTimeoutError("a", 5, { sent: false, ...o }),
      true,
    ],
  ];
  const notFlags: unknown[] = [
    undefined,
    null,
    "no",
    "false",
    0,
    1,
    {},
    ...values,
  ];
  for (const [name, make, byDefault] of classes) {
    for (const retryable of notFlags) {
      const error = make({ retryable });
      assert.equal(
        error.retryable,
        byDefault,
        `${name}, retryable ${String(typeof retryable)}`,
      );
    }
    assert.equal(make({ retryable: !byDefault }).retryable, !byDefault, name);
  }
  for (const sent of notFlags) {
    const lost = new ConnectionLostError(endpoint, "r", { sent } as never);
    assert.equal(lost.sent, true);
    const late = new RequestTimeoutError("a", 5, { sent } as never);
    assert.equal(late.sent, true);
    assert.equal(late.retryable, false);
    assert.doesNotMatch(late.message, /before it was sent/);
  }
  for (const retryable of notFlags) {
    assert.equal(new RemoteError(3, "m", retryable as never).retryable, false);
  }
});
