// Host entries are parsed strictly (issue 12, defect 7): what is not a DNS
// name, a dotted quad or an IPv6 address is a ConfigError naming the entry,
// never a host that "works" with a port taken from the wrong place or fails
// later with a retryable connect error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fc } from "./support/fc.ts";
import { parseHost } from "../src/config/hosts.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import { ConfigError } from "../src/errors.ts";

function refused(entry: unknown, pattern?: RegExp): void {
  assert.throws(
    () => resolveConfig({ hosts: ["ok.example", entry as string] }),
    (error) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.field, "hosts[1]");
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
    `${JSON.stringify(entry)} should be refused`,
  );
}

// The issue's own examples, one test each, and their neighbours.
const ISSUE_HOSTS: [string, RegExp][] = [
  ["127.0.0.1:7000:1", /not a valid IPv6 address.*brackets/],
  ["[:::::]:7000", /not a valid IPv6 address/],
  ["1.2.3.4.5", /not a valid IPv4 address/],
  ["", /expected host/],
  ["   ", /expected host/],
  ["host:", /port is missing/],
  [":7000", /host is missing/],
  ["[::1]x", /:port after \]/],
  ["[::1]:", /port is missing/],
];
for (const [entry, pattern] of ISSUE_HOSTS) {
  test(`${JSON.stringify(entry)} is a ConfigError naming the entry`, () => {
    refused(entry, pattern);
  });
}

test("IPv6 literals: at most eight groups, one ::, an IPv4 tail only at the end, a zone", () => {
  for (
    const good of [
      "::",
      "::1",
      "1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7::",
      "::2:3:4:5:6:7:8",
      "fe80::1%eth0",
      "::ffff:192.0.2.1",
      "1:2:3:4:5:6:192.0.2.1",
      "2001:DB8::A",
    ]
  ) {
    assert.equal(parseHost(`[${good}]:7001`).hostname, good, good);
    assert.equal(parseHost(good).address, `[${good}]:7000`, good);
  }
  for (
    const bad of [
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "12345::1",
      "g::1",
      ":1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:",
      "1.2.3.4::",
      "::1.2.3",
      "::256.1.1.1",
      "1:2:3:4:5:6:7:1.2.3.4",
      "fe80::1%",
      "fe80::1%eth 0",
    ]
  ) {
    refused(`[${bad}]:7000`, /IPv6/);
    refused(bad);
  }
});

test("IPv4 addresses are dotted quads of 0–255 without leading zeros", () => {
  assert.equal(parseHost("0.0.0.0:1").hostname, "0.0.0.0");
  assert.equal(parseHost("255.255.255.255").port, 7000);
  for (
    const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.", "01.2.3.4", "1..2.3", "123"]
  ) {
    refused(bad, /IPv4/);
  }
});

test("DNS names: labels of letters, digits, - and _, none empty or edged with -", () => {
  for (
    const good of ["localhost", "db-1.example", "my_db", "db.example.", "a"]
  ) {
    assert.equal(parseHost(`${good}:7001`).hostname, good);
  }
  for (
    const bad of [
      "-db.example",
      "db-.example",
      "db..example",
      ".db",
      "db example",
      "db/1",
      "bücher.example",
      `${"a".repeat(64)}.example`,
      `${"a.".repeat(127)}ab`,
    ]
  ) refused(bad, /expected host/);
});

test("a URL among the hosts says that it is not a host, and never quotes it", () => {
  // In a config, the connection-string check names it first (src/config/url.ts).
  refused("nodewire://u:pw@db.example:7000", /looks like a connection string/);
  refused("tcp://127.0.0.1:7000", /a host has no scheme/);
  // parseHost on its own says the same, and does not quote it either.
  for (const url of ["nodewire://u:pw@db:7000", "tcp://db:7000", "u:pw@db"]) {
    assert.throws(() => parseHost(url), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /a URL is not a host/);
      assert.doesNotMatch(error.message, /pw|db/);
      return true;
    });
  }
});

// --- properties --------------------------------------------------------------

const port = fc.integer({ min: 1, max: 65535 });

/** A valid entry and what it must parse to. */
const validEntry = fc.oneof(
  fc.tuple(fc.domain(), port).map(([h, p]) => ({
    entry: `${h}:${p}`,
    hostname: h,
    port: p,
  })),
  fc.tuple(fc.ipV4(), port).map(([h, p]) => ({
    entry: `${h}:${p}`,
    hostname: h,
    port: p,
  })),
  fc.tuple(fc.ipV6(), port).map(([h, p]) => ({
    entry: `[${h}]:${p}`,
    hostname: h,
    port: p,
  })),
  fc.ipV6().map((h) => ({ entry: h, hostname: h, port: 7000 })),
  fc.domain().map((h) => ({ entry: h, hostname: h, port: 7000 })),
);

test("Property: valid generated hosts round-trip through parseHost and their address", () => {
  fc.assert(
    fc.property(validEntry, ({ entry, hostname, port }) => {
      const parsed = parseHost(entry);
      assert.equal(parsed.hostname, hostname);
      assert.equal(parsed.port, port);
      // The canonical address parses back to the same host.
      assert.deepEqual(parseHost(parsed.address), parsed);
    }),
    { numRuns: 1000 },
  );
});

/** A valid host in its three forms, and mutations that always break it. */
const mutated = fc.oneof(
  // A second port: "host:port:1".
  fc.tuple(fc.oneof(fc.domain(), fc.ipV4()), port, fc.nat()).map(
    ([h, p, n]) => `${h}:${p}:${n}`,
  ),
  // Anything but ":port" after the bracket.
  fc.tuple(fc.ipV6(), fc.constantFrom("x", ":", ":x", " 1", ":1:2", ":-1")).map(
    ([h, tail]) => `[${h}]${tail}`,
  ),
  // A port out of range.
  fc.tuple(fc.ipV6(), fc.integer({ min: 65536, max: 99999 })).map(
    ([h, p]) => `[${h}]:${p}`,
  ),
  // A second "::" or a stray ":::".
  fc.ipV6().map((h) => `[${h}:::1]:7000`),
  fc.ipV6().map((h) => (h.includes("::") ? `${h}1::1` : `${h}:1`)),
  // A fifth part, or an octet above 255.
  fc.ipV4().map((h) => `${h}.1`),
  fc.tuple(fc.ipV4(), fc.integer({ min: 256, max: 999 })).map(
    ([h, n]) => h.replace(/^\d+/, String(n)),
  ),
  // A character no host name has.
  fc.tuple(fc.domain(), fc.constantFrom(" ", "/", "@", "*", "..", "?")).map(
    ([h, c]) => h.replace(".", `${c}.`),
  ),
  // No host, or no port after the colon.
  port.map((p) => `:${p}`),
  fc.domain().map((h) => `${h}:`),
  // A URL.
  fc.tuple(fc.domain(), port).map(([h, p]) => `nodewire://${h}:${p}`),
);

test("Property: mutated hosts are refused with a ConfigError, never anything else", () => {
  fc.assert(
    fc.property(mutated, (entry) => {
      assert.throws(() => parseHost(entry, "hosts[0]"), (error) => {
        assert.ok(error instanceof ConfigError, `${entry}: ${error}`);
        assert.equal(error.field, "hosts[0]");
        return true;
      });
    }),
    { numRuns: 1000 },
  );
});

test("Property: any string or value parses or is a ConfigError, nothing else", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: "binary-ascii" }),
        fc.string({ unit: fc.constantFrom(..."0123456789abcdef:.[]%x ") }),
        fc.anything(),
      ),
      (entry) => {
        try {
          const parsed = parseHost(entry as string);
          assert.deepEqual(parseHost(parsed.address), parsed);
        } catch (error) {
          assert.ok(
            error instanceof ConfigError,
            `${fc.stringify(entry)}: ${error}`,
          );
        }
      },
    ),
    { numRuns: 2000 },
  );
});
