// The CLI's options win over the connection string's settings
// (docs/CLI.md): --tls over enableTls=false, --timeout over a
// requestTimeoutMs the string sets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs } from "../src/cli/args.ts";
import { clientConfig } from "../src/cli/client_config.ts";
import { Output } from "../src/cli/output.ts";
import { COMMANDS } from "../src/cli/spec.ts";
import { resolveConfig } from "../src/config/resolve.ts";
import type { EnvReader } from "../src/runtime/env.ts";

const unset: EnvReader = () => ({ state: "unset" });

/** The resolved configuration `ping` would connect with. */
async function pingConfig(args: string[]) {
  const parsed = parseArgs(args, COMMANDS.ping);
  return resolveConfig(await clientConfig(parsed, new Output(true), unset));
}

test("--tls wins over a URL's enableTls=false or tls=disable", async () => {
  for (
    const url of [
      "nodewire://127.0.0.1:7000/?enableTls=false",
      "nodewire://127.0.0.1:7000/?tlsPolicy=disable",
      "nodewire://127.0.0.1:7000/?enableTls=false&tlsPolicy=disable",
    ]
  ) {
    const config = await pingConfig([url, "--tls"]);
    assert.equal(config.enableTls, true, url);
    assert.equal(config.tlsPolicy, "require", url);
  }
});

test("--timeout bounds each request even when the URL sets requestTimeoutMs", async () => {
  const config = await pingConfig([
    "nodewire://127.0.0.1:7000/?requestTimeoutMs=600000&timeoutMs=600000",
    "--timeout",
    "250",
  ]);
  assert.equal(config.timeoutMs, 250);
  assert.equal(config.requestTimeoutMs, 250);
  assert.equal(config.healthConfig.timeoutMs, 250);
  // Without --timeout, the URL's values stand.
  const own = await pingConfig([
    "nodewire://127.0.0.1:7000/?requestTimeoutMs=9000",
  ]);
  assert.equal(own.requestTimeoutMs, 9000);
});
