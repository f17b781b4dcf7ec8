// A password written in a connection string never shows: not in any error
// a bad string can give (message, field, stack, cause, JSON, inspect), not
// in the configuration it resolves to. Generated strings carry a password,
// encoded or written as is (the usual slip), and are then damaged by a
// typo outside the password: a character inserted, deleted or replaced.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { fc } from "./support/fc.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { configFromArguments } from "../src/config/sources.ts";
import { ConfigError, InvalidArgumentError } from "../src/errors.ts";
import { Client } from "../src/client/client.ts";

/**
 * Everything a program might print of `value`: of an error, its text, its
 * fields, JSON, inspection and its causes; of a configuration, its JSON and
 * the inspection of its password (inspecting the whole of it thousands of
 * times is slow on Deno, and nothing else in it can hide text from JSON).
 */
function renderings(value: unknown): string[] {
  if (!(value instanceof Error)) {
    const password = (value as { password?: unknown }).password;
    return [JSON.stringify(value), inspect(password), String(password)];
  }
  const texts = [
    String(value),
    value.message,
    value.stack ?? "",
    JSON.stringify(value),
    inspect(value, { depth: 8 }),
  ];
  for (const [key, field] of Object.entries(value)) {
    texts.push(key, String(field));
  }
  if (value.cause !== undefined) texts.push(...renderings(value.cause));
  return texts;
}

function assertHidden(secret: string, value: unknown, url: string): void {
  const forms = new Set([secret, encodeURIComponent(secret)]);
  for (const text of renderings(value)) {
    for (const form of forms) {
      assert.ok(
        !text.includes(form),
        `the password ${JSON.stringify(secret)} of ${url} shows in: ${text}`,
      );
    }
  }
}

// Marks the password so it cannot occur in any fixed text by chance.
const MARK = "Qz7";
const PASSWORD_CHARS = [
  ..."abcdefXYZ0123456789",
  ..."@:/?#[]%&=,+!$'()*;~.-_ ",
];
const SLIP_CHARS = [..."@:/?#[],&=%.a1 "];

const password = fc
  .string({
    unit: fc.constantFrom(...PASSWORD_CHARS),
    minLength: 5,
    maxLength: 16,
  })
  .map((s) => MARK + s);
const host = fc.constantFrom(
  "h1",
  "10.0.0.1:7001",
  "[::1]:7002",
  "db.example:7000",
  "h2:99999",
  "bad host",
  "[::1",
);
const parameter = fc.constantFrom(
  "timeoutMs=5000",
  "timeoutMs=abc",
  "poolMax=20",
  "poolMax=0",
  "tls=require",
  "tls=maybe",
  "poolMx=1",
  "retryConfig.jitter=yes",
  "clientName=app",
  "password=x",
  "tls.ca=x",
  "timeoutMs=1",
);
const slip = fc.record({
  at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  kind: fc.constantFrom("insert", "delete", "replace"),
  char: fc.constantFrom(...SLIP_CHARS),
});

interface Written {
  url: string;
  secret: string;
}

/** `nodewire://user:password@hosts/?params`, then the slips applied. */
const written = fc
  .record({
    user: fc.constantFrom("app", "u", "batch_7"),
    secret: password,
    encoded: fc.boolean(),
    hosts: fc.array(host, { minLength: 1, maxLength: 3 }),
    params: fc.array(parameter, { maxLength: 3 }),
    slips: fc.array(slip, { maxLength: 1 }),
  })
  .map(({ user, secret, encoded, hosts, params, slips }): Written => {
    const head = `nodewire://${user}:`;
    const text = encoded ? encodeURIComponent(secret) : secret;
    const tail = `@${hosts.join(",")}/?${params.join("&")}`;
    let before = head;
    let after = tail;
    for (const { at, kind, char } of slips) {
      // A slip lands anywhere but inside the password itself.
      const outside = before.length + after.length;
      const position = Math.floor(at * outside);
      const inBefore = position < before.length;
      const part = inBefore ? before : after;
      const i = inBefore ? position : position - before.length;
      const edited = kind === "insert"
        ? part.slice(0, i) + char + part.slice(i)
        : kind === "delete"
        ? part.slice(0, i) + part.slice(i + 1)
        : part.slice(0, i) + char + part.slice(i + 1);
      if (inBefore) before = edited;
      else after = edited;
    }
    return { url: before + text + after, secret };
  })
  // Without the colon, user and password are one user name, which is not
  // secret: no reader could tell them apart.
  .filter(({ url, secret }) =>
    url.slice(0, url.indexOf(secret)).slice("nodewire://".length).includes(
      ":",
    ) || !url.startsWith("nodewire://")
  );

test("no error of a bad connection string, and no resolved config, shows its password", () => {
  fc.assert(
    fc.property(written, ({ url, secret }) => {
      let outcome: unknown;
      try {
        const config = configFromArguments(url, undefined);
        assertHidden(secret, config, url);
        outcome = resolveConfig(config);
      } catch (error) {
        outcome = error;
      }
      assertHidden(secret, outcome, url);
    }),
    { numRuns: 1000 },
  );
});

test("every single typo outside the password of a few strings, exhaustively", () => {
  const secret = "Qz7s3cr3t";
  const bases: [before: string, password: string, after: string][] = [
    ["nodewire://app:", secret, "@db1:7000,[::1]:7001/?timeoutMs=5000"],
    ["nodewire://app:", `${secret}/x`, "@db1/?poolMax=abc"],
    ["nodewire://app:", encodeURIComponent(`${secret}@x`), "@db1,db2"],
  ];
  let checked = 0;
  for (const [before, password, after] of bases) {
    const outside = before + after;
    for (let i = 0; i <= outside.length; i++) {
      const edits = [outside.slice(0, i) + outside.slice(i + 1)];
      for (const char of SLIP_CHARS) {
        edits.push(outside.slice(0, i) + char + outside.slice(i));
        edits.push(outside.slice(0, i) + char + outside.slice(i + 1));
      }
      for (const edited of edits) {
        // The password stays where it was: after the (edited) head.
        const cut = i < before.length
          ? before.length + (edited.length - outside.length)
          : before.length;
        // Without the colon, user and password are one user name, which
        // is not secret: no reader could tell them apart.
        if (!edited.slice("nodewire://".length, cut).includes(":")) continue;
        const url = edited.slice(0, cut) + password + edited.slice(cut);
        let outcome: unknown;
        try {
          outcome = resolveConfig(configFromArguments(url, undefined));
        } catch (error) {
          outcome = error;
        }
        assertHidden(secret, outcome, url);
        checked++;
      }
    }
  }
  assert.ok(checked > 3000, `${checked} strings`);
});

test("the slips that matter most, one by one", () => {
  const secret = "Qz7hunter2";
  const urls = [
    // The @ forgotten: user:password becomes the first host.
    `nodewire://app:${secret}db1:7000,db2/?timeoutMs=5000`,
    `nodewire://app:${secret}/?timeoutMs=5000`,
    `nodewire://app:${secret}`,
    `nodewire://:${secret}db1`,
    // The @ replaced by a separator.
    `nodewire://app:${secret}/db1:7000`,
    `nodewire://app:${secret}?db1:7000`,
    `nodewire://app:${secret},db1:7000`,
    `nodewire://app:${secret}:db1:7000`,
    `nodewire://app:${secret}#db1`,
    // Reserved characters left unencoded in the password.
    `nodewire://app:Qz7hun/ter2@db1`,
    `nodewire://app:Qz7hun@ter2@db1`,
    `nodewire://app:Qz7hun?ter2@db1`,
    `nodewire://app:Qz7hun#ter2@db1`,
    `nodewire://app:Qz7hun%ter2@db1`,
    `nodewire://app:Qz7hun[ter2@db1`,
    // The password as a parameter, the wrong scheme, a URL in hosts.
    `nodewire://db1/?password=${secret}`,
    `nodewire://db1/?passwrd=${secret}`,
    `nodewire://db1/?pass%20word=${secret}`,
    // ... with a "%" that starts no escape, decoded before the name was
    // known (the value was quoted); a known parameter's value still is.
    `nodewire://db1/?password=${secret}%`,
    `nodewire://db1/?pwd=${secret}%zz`,
    `nodewire://db1/?passwrd=${secret}%`,
    // The @ forgotten with a "?" in the password: its end is a parameter
    // with no value (the name was quoted).
    `nodewire://app:12345?${secret}`,
    `nodewire://app:12345/?${secret}`,
    `postgres://app:${secret}@db1`,
    `nodewire:/app:${secret}@db1`,
    `app:${secret}@db1`,
  ];
  for (const url of urls) {
    let outcome: unknown;
    try {
      outcome = resolveConfig(configFromArguments(url, undefined));
    } catch (error) {
      outcome = error;
    }
    assertHidden("hunter2", outcome, url);
    assertHidden("ter2", outcome, url);
  }
  for (
    const hosts of [
      [`nodewire://app:${secret}@db1`],
      [`mongodb://app:${secret}@db1`],
      [`app:${secret}@db1`],
    ]
  ) {
    let outcome: unknown;
    try {
      outcome = resolveConfig({ hosts });
    } catch (error) {
      outcome = error;
    }
    assert.ok(outcome instanceof Error);
    assertHidden("hunter2", outcome, hosts[0]);
  }
});

test("overrides that cannot be read are named as such, never by quoting the string's password", () => {
  // A throwing getter or proxy trap in the overrides was reported as
  // `invalid config: could not be read (...), got "nodewire://app:<password>@db1"`.
  const secret = "Qz7hunter2";
  // poolMax, so that the overrides' poolConfig is merged field by field.
  const url = `nodewire://app:${secret}@db1/?poolMax=5`;
  const overrides: unknown[] = [
    {
      get logger() {
        throw new Error("no logger today");
      },
    },
    {
      poolConfig: {
        get maxConnections() {
          throw new Error("no pool today");
        },
      },
    },
    new Proxy({}, {
      ownKeys() {
        throw new Error("no keys today");
      },
    }),
  ];
  for (const given of overrides) {
    for (
      const [first, readEnv] of [
        [url, undefined],
        [undefined, () => ({ state: "set", value: url })],
      ] as const
    ) {
      let outcome: unknown;
      try {
        outcome = configFromArguments(first, given, readEnv as never);
      } catch (error) {
        outcome = error;
      }
      assert.ok(outcome instanceof ConfigError, String(outcome));
      assert.equal(outcome.field, "overrides");
      assert.match(outcome.message, /could not be read \(no \w+ today\)/);
      assertHidden(secret, outcome, url);
    }
  }
});

test("a connection string given where an object belongs (overrides, options) is refused without being quoted", async () => {
  // Client.connect(url, otherUrl) and Client.connect(config, url) quoted
  // the misplaced string, password and all: `expected an object, got
  // "nodewire://app:<password>@db2"`.
  const secret = "Qz7hunter2";
  const url = `nodewire://app:${secret}@db2`;
  const overridesError = (() => {
    try {
      configFromArguments("nodewire://db1", url);
    } catch (error) {
      return error;
    }
  })();
  assert.ok(overridesError instanceof ConfigError, String(overridesError));
  assert.equal(overridesError.field, "overrides");
  assert.match(
    overridesError.message,
    /expected an object, got "\[redacted\]"/,
  );
  assertHidden(secret, overridesError, url);
  for (
    const call of [
      () => Client.connect({ hosts: ["127.0.0.1:1"] }, url as never),
      () => Client.connect("nodewire://127.0.0.1:1", {}, url as never),
    ]
  ) {
    const error = await call().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.equal(error.argument, "options");
    assert.match(
      error.message,
      /expected an object of options, got "\[redacted\]"/,
    );
    assertHidden(secret, error, url);
  }
  // Other values are still shown as they are.
  assert.throws(
    () => configFromArguments("nodewire://db1", 5),
    /expected an object, got 5/,
  );
});
