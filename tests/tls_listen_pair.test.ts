// A TLS listener given a key that does not go with its certificate, or a
// certificate that cannot be read, is refused before it binds, instead of
// binding and resetting every client.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "../src/errors.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { startTestNode } from "../testing/node.ts";

const pem = (name: string) =>
  readFileSync(new URL(`../testing/certs/${name}`, import.meta.url), "utf8");
const cert = pem("server.pem");
const key = pem("server-key.pem");
const otherKey = pem("untrusted-key.pem");

test("listen({ tls }) with a mismatched or unreadable pair rejects before binding with InvalidArgumentError on every runtime", async () => {
  for (const adapter of [await getAdapter(), await getAdapter("node")]) {
    const garbled =
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for (
      const [what, tls] of [
        ["another key", { cert, key: otherKey }],
        ["a garbled certificate", { cert: garbled, key }],
      ] as const
    ) {
      const listening = adapter.listen(
        { hostname: "127.0.0.1", port: 0, tls },
        (channel) => channel.destroy(),
      );
      await assert.rejects(listening, (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, `${what}: ${error}`);
        assert.equal(error.argument, "options.tls");
        assert.match(
          error.message,
          /^listen\(\): invalid options\.tls: expected a PEM certificate chain and the private key that goes with it, got "a (key that does not go|pair node:tls refuses|certificate or key that cannot)/,
        );
        assert.ok(!error.message.includes("PRIVATE KEY"));
        return true;
      }, what);
    }
    // The matching pair binds.
    const listener = await adapter.listen(
      { hostname: "127.0.0.1", port: 0, tls: { cert, key } },
      (channel) => channel.destroy(),
    );
    await listener.close();
  }
});

test("startTestNode with a mismatched or unreadable TLS pair rejects at start with the same InvalidArgumentError, as listen() does, also when it serves TLS through STARTTLS (where the pair is first used at a client's handshake): it started, and failed every handshake", async () => {
  const garbled =
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  for (
    const [what, tls] of [
      ["another key", { cert, key: otherKey }],
      ["a garbled certificate", { cert: garbled, key }],
      ["another key, direct", { cert, key: otherKey, direct: true }],
    ] as const
  ) {
    const starting = startTestNode({
      protocols: ["tls", "tcp"],
      tls,
    });
    await assert.rejects(starting, (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, `${what}: ${error}`);
      assert.equal(error.argument, "options.tls");
      assert.match(
        error.message,
        /^startTestNode: invalid options\.tls: expected a PEM certificate chain and the private key that goes with it, got "a (key that does not go|pair node:tls refuses|certificate or key that cannot)/,
      );
      assert.ok(!error.message.includes("PRIVATE KEY"));
      return true;
    }, what);
  }
  // The matching pair starts, and a stop and start keep it.
  const node = await startTestNode({
    protocols: ["tls", "tcp"],
    tls: { cert, key },
  });
  await node.stop();
  await node.start();
  assert.ok(node.running);
  await node.close();
});
