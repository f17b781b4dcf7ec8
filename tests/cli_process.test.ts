// The CLI as a process on this runtime: the password read from standard
// input, a node started with authentication and TLS and a client
// authenticating against it, a cluster's URL, stdout holding only the
// JSON document, and SIGTERM / SIGINT ending the serving commands with
// exit code 0 on their own (no forced exit).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { Client } from "../src/client/client.ts";
import { ops, replyText } from "../testing/ops.ts";
import { runCli, startCli } from "./support/cli_process.ts";

const PASSWORD = "correct horse battery";

test("a node with authentication and TLS: clients authenticate, ping reads the password from stdin, SIGTERM stops it", async () => {
  const node = startCli(
    [
      "node",
      "--port",
      "0",
      "--id",
      "secure-n1",
      "--user",
      "app",
      "--password-stdin",
      "--tls",
      "--json",
    ],
    { stdin: `${PASSWORD}\n` },
  );
  try {
    const d = JSON.parse(await node.firstLine());
    assert.equal(d.ok, true);
    assert.equal(d.user, "app");
    assert.match(d.url, /^nodewire:\/\/app@127\.0\.0\.1:\d+\/\?tls=require$/);
    assert.ok(!d.url.includes(PASSWORD), "the URL carries no password");
    const address: string = d.nodes[0].address;
    const caFile: string = d.tls.caFile;
    const ca = readFileSync(caFile, "utf8");

    // A client with the password from stdin (the newline is not part of it).
    const client = await Client.connect({
      hosts: [address],
      username: "app",
      password: PASSWORD,
      enableTls: true,
      tls: { ca },
      healthConfig: { intervalMs: 0 },
    });
    try {
      assert.equal(replyText(await client.request(ops.echo("in"))), "in");
      assert.equal(client.stats().nodes[0].protocol, "tls");
    } finally {
      await client.disconnect();
    }
    await assert.rejects(
      Client.connect({
        hosts: [address],
        username: "app",
        password: `${PASSWORD}\n`,
        enableTls: true,
        tls: { ca },
        healthConfig: { intervalMs: 0 },
      }),
      { code: "AUTH_FAILED" },
    );

    // The CLI as a client: the password piped in, the node's certificate trusted.
    const common = ["--user", "app", "--password-stdin", "--ca", caFile];
    const ok = await runCli(["ping", address, ...common, "--json"], {
      stdin: `${PASSWORD}\n`,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trimEnd().split("\n").length, 1, ok.stdout);
    const pinged = JSON.parse(ok.stdout);
    assert.equal(pinged.ok, true);
    assert.equal(pinged.nodes[0].nodeId, "secure-n1");
    assert.equal(pinged.nodes[0].protocol, "tls");

    // The URL the node printed, as NODEWIRE_URL: it names the user and
    // TLS; the password comes from stdin, the CA from --ca.
    const fromEnv = await runCli(
      ["health", "--password-stdin", "--ca", caFile, "--json"],
      { stdin: PASSWORD, env: { NODEWIRE_URL: d.url } },
    );
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const healthy = JSON.parse(fromEnv.stdout);
    assert.deepEqual(
      healthy.nodes.map((
        n: { address: string; healthy: boolean; protocol: string },
      ) => [
        n.address,
        n.healthy,
        n.protocol,
      ]),
      [[address, true, "tls"]],
    );

    const wrong = await runCli(["health", address, ...common, "--json"], {
      stdin: "not it\n",
    });
    assert.equal(wrong.code, 3, wrong.stderr);
    const refused = JSON.parse(wrong.stdout);
    assert.deepEqual([refused.ok, refused.error.code], [false, "AUTH_FAILED"]);
    assert.ok(!`${wrong.stdout}${wrong.stderr}`.includes("not it"));

    const empty = await runCli(["ping", address, ...common], { stdin: "" });
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(empty.stderr, /--password-stdin read an empty password/);

    const code = await node.stop("SIGTERM");
    assert.equal(code, 0, node.stderr);
    assert.match(node.stderr, /stopping \(SIGTERM\)[\s\S]*stopped/);
    // The result line was the only thing on stdout, start to end.
    assert.equal(node.stdout.trimEnd().split("\n").length, 1, node.stdout);
    assert.ok(!existsSync(caFile), "the temporary certificate is removed");
    assert.ok(!`${node.stdout}${node.stderr}`.includes(PASSWORD));
  } finally {
    node.kill();
  }
});

test("cluster --nodes 3 prints its URL, serves the cluster, and SIGINT stops it", async () => {
  const cluster = startCli([
    "cluster",
    "--nodes",
    "3",
    "--port",
    "0",
    "--user",
    "ci",
    "--password-stdin",
    "--json",
  ], { stdin: PASSWORD });
  try {
    const d = JSON.parse(await cluster.firstLine());
    const addresses: string[] = d.nodes.map((n: { address: string }) =>
      n.address
    );
    assert.equal(new Set(addresses).size, 3);
    assert.equal(d.url, `nodewire://ci@${addresses.join(",")}`);

    const client = await Client.connect({
      hosts: addresses,
      username: "ci",
      password: PASSWORD,
      healthConfig: { intervalMs: 0 },
    });
    try {
      const results = await client.healthCheckAllNodes();
      assert.deepEqual(results.map((r) => r.nodeId), ["n1", "n2", "n3"]);
      assert.ok(results.every((r) => r.ok));
    } finally {
      await client.disconnect();
    }

    const code = await cluster.stop("SIGINT");
    assert.equal(code, 0, cluster.stderr);
    assert.match(cluster.stderr, /stopping \(SIGINT\)/);
    assert.equal(cluster.stdout.trimEnd().split("\n").length, 1);
  } finally {
    cluster.kill();
  }
});

test("a SIGTERM sent the moment the ready line is read still ends the node cleanly with 0", async () => {
  // A script waits for the line and tears the node down at once: the
  // handlers must be in place before the line is printed.
  for (let i = 0; i < 3; i++) {
    const node = startCli(["node", "--port", "0", "--json"]);
    try {
      await node.firstLine();
      assert.equal(await node.stop("SIGTERM"), 0, node.stderr);
      assert.match(node.stderr, /stopped/);
    } finally {
      node.kill();
    }
  }
});

test("a user name or password SASLprep refuses is bad usage (2) naming its option, never showing the password or a piece of it", async () => {
  // A control character in --user was the client's AuthenticationError,
  // exit 3 ("refused"), and for a serving command startTestNode's
  // ConfigError naming its credentials option, not the CLI's.
  const secret = "\u0007s3cret\u202e";
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["ping", "127.0.0.1:1", "--user", "\u0007"], {}, /^--user: /],
    [["node", "--port", "0", "--user", "\u0007"], {}, /^--user: /],
    [
      ["health"],
      { NODEWIRE_URL: "nodewire://%07@127.0.0.1:1" },
      /^NODEWIRE_URL: /,
    ],
    [["ping", "127.0.0.1:1", "--user", "app"], {}, /^--password-stdin: /],
    [["cluster", "--port", "0", "--user", "app"], {}, /^--password-stdin: /],
  ];
  for (const [args, env, option] of cases) {
    const r = await runCli([...args, "--password-stdin", "--json"], {
      stdin: `${secret}\n`,
      env,
    });
    const what = args.join(" ");
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    const { error } = JSON.parse(r.stdout);
    assert.equal(error.code, "USAGE", what);
    assert.match(error.message, option, what);
    assert.match(error.message, /is not allowed by SASLprep/, what);
    const shown = `${r.stdout}${r.stderr}`;
    assert.ok(!shown.includes("s3cret"), `${what}: ${shown}`);
    if (option.source.includes("password")) {
      // Not even which character, nor where.
      assert.doesNotMatch(shown, /U\+|position/, what);
    }
  }
});

test("a password in NODEWIRE_URL that SASLprep refuses or empties is bad usage (2) naming NODEWIRE_URL, never showing it", async () => {
  // It was the client's AuthenticationError, exit 3 ("refused"), though
  // no node had been asked.
  const url = (password: string) => `nodewire://app:${password}@127.0.0.1:1`;
  const cases: [string, string][] = [
    ["ping", url("%07s3cret%E2%80%AE")],
    ["health", url("%07s3cret%E2%80%AE")],
    ["bench", url("%07s3cret%E2%80%AE")],
    ["ping", url("s3cret%EF%B7%90")], // a non-character
    ["ping", url("")],
    ["ping", url("%C2%AD")], // a soft hyphen, mapped to nothing
  ];
  for (const [command, nodes] of cases) {
    const r = await runCli([command, "--json"], {
      stdin: "",
      env: { NODEWIRE_URL: nodes },
    });
    const what = `${command} ${nodes}`;
    assert.equal(r.code, 2, `${what}: ${r.stderr}`);
    const { error } = JSON.parse(r.stdout);
    assert.equal(error.code, "USAGE", what);
    assert.match(
      error.message,
      /^NODEWIRE_URL: the password of "app" is (not allowed by SASLprep|empty)/,
      what,
    );
    // Not even which character, nor where.
    const shown = `${r.stdout}${r.stderr}`;
    assert.doesNotMatch(shown, /s3cret|U\+|position|\\u0007|\\u202e/, what);
  }
});
