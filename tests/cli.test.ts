// The CLI run in-process: help, usage errors and their exit codes, each
// command's --json document, and the serving commands stopped from code.
// What needs a process of its own (standard input, signals) is in
// cli_process.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { main } from "../cli.ts";
import { Client } from "../src/client/client.ts";
import { COMMANDS } from "../src/cli/spec.ts";
import { ConnectFailedError } from "../src/errors.ts";
import { startTestNode, type TestNode } from "../testing/node.ts";
import { ops, replyText } from "../testing/ops.ts";

const env =
  (globalThis as { process: { env: Record<string, string | undefined> } })
    .process.env;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process and captures what it printed, stdout and stderr
 * apart. `during` runs while the command does (for the serving commands,
 * which run until stopped), with a view of the output so far.
 */
async function cli(
  args: string[],
  during?: (so: { stdout: () => string }) => Promise<void>,
  signal?: AbortSignal,
): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => stdout.push(a.join(" "));
  console.error = (...a: unknown[]) => stderr.push(a.join(" "));
  try {
    const running = main(args, { signal });
    await during?.({ stdout: () => stdout.join("\n") });
    const code = await running;
    return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** The one JSON document on stdout (throws if there is anything else). */
function doc(run: Run): Record<string, unknown> & { ok: boolean } {
  assert.equal(run.stdout.split("\n").length, 1, `one line: ${run.stdout}`);
  return JSON.parse(run.stdout);
}

async function withNode(fn: (node: TestNode) => Promise<void>) {
  const node = await startTestNode({ nodeId: "cli-n1" });
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

/** Waits until the command printed its first line, and returns it. */
async function firstLine(read: () => string): Promise<string> {
  for (let i = 0; i < 500 && read() === ""; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const text = read();
  assert.ok(text, "the command printed nothing");
  return text.split("\n")[0];
}

test("--help prints the overview with every command and the exit codes", async () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = await cli(args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage:/);
    for (const name of Object.keys(COMMANDS)) {
      assert.match(r.stdout, new RegExp(`nodewire ${name}\\b`));
    }
    assert.match(r.stdout, /exit codes:[\s\S]*\b3 +refused/);
    assert.equal(r.stderr, "");
  }
});

test("each command has its own --help listing every option", async () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    for (const args of [[name, "--help"], [name, "-h"], ["help", name]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.stdout, new RegExp(`^usage: nodewire ${name} `));
      for (const option of Object.keys(spec.options)) {
        assert.ok(r.stdout.includes(`--${option}`), `${name}: --${option}`);
      }
    }
    const json = doc(await cli([name, "--help", "--json"]));
    assert.equal(json.ok, true);
    assert.equal(json.command, name);
    assert.match(String(json.usage), /^usage: /);
  }
});

test("bad usage exits 2 with a message naming the problem, as text or JSON", async () => {
  const cases: [string[], RegExp][] = [
    [[], /no command given/],
    [["frobnicate"], /unknown command "frobnicate"/],
    [["--timeout", "5"], /expected a command before options, got "--timeout"/],
    [["help", "nope"], /no command "nope"/],
    [
      ["ping", "nodewire://127.0.0.1:7000", "127.0.0.1:7001"],
      /give either one nodewire:\/\/ URL or host:port addresses, not both/,
    ],
    [
      ["ping", "postgres://127.0.0.1:7000"],
      /invalid url: expected a connection string starting with "nodewire:\/\/"/,
    ],
    [
      ["health", "nodewire://127.0.0.1:7000/?poolMx=3"],
      /invalid poolMx: unknown parameter \(did you mean "poolMax"\?\)/,
    ],
    [
      ["ping", "nodewire://127.0.0.1:7000", "--password-stdin"],
      /--password-stdin needs a user: --user <name>, or one in the URL/,
    ],
    [["ping", "127.0.0.1:99999"], /port must be within 1–65535/],
    [
      ["ping", "127.0.0.1:7000", "--bogus"],
      /unknown option "--bogus" for "ping"/,
    ],
    [["ping", "127.0.0.1:7000", "-x"], /unknown option "-x" for "ping"/],
    [["ping", "127.0.0.1:7000", "--timeout"], /--timeout needs a value/],
    [["health", "127.0.0.1:7000", "--ca"], /--ca needs a value: --ca <file>/],
    [
      ["ping", "127.0.0.1:7000", "--timeout", "0"],
      /invalid --timeout: expected a finite number of milliseconds > 0, got 0/,
    ],
    [["ping", "127.0.0.1:7000", "--timeout", "1e3"], /got "1e3"/],
    [
      ["ping", "127.0.0.1:7000", "--timeout", "3000000000"],
      /expected at most 2147483647 ms/,
    ],
    [["ping", "127.0.0.1:7000", "--tls=yes"], /--tls takes no value/],
    [
      ["ping", "127.0.0.1:7000", "--timeout", "1", "--timeout", "2"],
      /--timeout is given more than once/,
    ],
    [
      ["ping", "127.0.0.1:7000", "--user", "app"],
      /--user needs --password-stdin/,
    ],
    [
      ["ping", "127.0.0.1:7000", "--password-stdin"],
      /--password-stdin needs a user: --user <name>/,
    ],
    [
      ["ping", "127.0.0.1:7000", "--ca", "/nonexistent/ca.pem"],
      /--ca: cannot read "\/nonexistent\/ca.pem" \(ENOENT\)/,
    ],
    [
      ["bench", "127.0.0.1:7000", "--concurrency", "zero"],
      /--concurrency must be an integer in 1–10000, got "zero"/,
    ],
    [["node", "extra"], /"node" takes no arguments, got "extra"/],
    [["node", "--port", "70000"], /--port must be an integer in 0–65535/],
    [["node", "--tls-cert", "c.pem"], /--tls-cert and --tls-key go together/],
    [
      ["node", "--ca-out", "ca.pem"],
      /--ca-out writes the throwaway certificate/,
    ],
    [["cluster", "--nodes", "0"], /--nodes must be an integer in 1–64/],
    [["cluster", "--port", "65535"], /--port must be an integer in 0–65533/],
    [["cluster", "--id", "x"], /unknown option "--id" for "cluster"/],
  ];
  // With no address and no NODEWIRE_URL there is nothing to connect to.
  if (env.NODEWIRE_URL === undefined) {
    cases.push([
      ["ping"],
      /give at least one host:port or a nodewire:\/\/ URL, or set NODEWIRE_URL/,
    ]);
  }
  for (const [args, message] of cases) {
    const text = await cli(args);
    assert.equal(text.code, 2, `${args.join(" ")}: ${text.stderr}`);
    assert.match(text.stderr, message, args.join(" "));
    assert.equal(text.stdout, "", `${args.join(" ")}: nothing on stdout`);

    const json = await cli([...args, "--json"]);
    assert.equal(json.code, 2, `${args.join(" ")} --json`);
    const d = doc(json) as {
      ok: boolean;
      error: { code: string; message: string };
    };
    assert.equal(d.ok, false);
    assert.equal(d.error.code, "USAGE");
    assert.match(d.error.message, message);
  }
});

test("--password, or a password in a URL argument, is refused, says why and never repeated", async () => {
  for (
    const args of [
      ["ping", "127.0.0.1:7000", "--password", "hunter2"],
      ["ping", "127.0.0.1:7000", "--password=hunter2"],
      ["ping", "127.0.0.1:7000", "--password=\u0007hunter2\u202e"],
      ["health", "127.0.0.1:7000", "--password", "hunter2\u0000"],
      ["node", "--user", "app", "--password", "hunter2", "--json"],
      ["cluster", "--password"],
      ["ping", "nodewire://app:hunter2@127.0.0.1:7000", "--json"],
    ]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(
      r.stderr,
      /(--password is not accepted: a password in the command line|the URL in the arguments holds a password, which) (is visible to )?every user/,
    );
    assert.match(r.stderr, /--password-stdin/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes("hunter2"), args.join(" "));
  }
});

test("an option's value is never repeated in a usage error: not before the command, not after a single dash, nor a URL in the command's place", async () => {
  for (
    const [args, message] of [
      [["--password=hunter2", "ping", "127.0.0.1:7000"], /got "--password"/],
      [["--user=app:hunter2", "ping"], /got "--user"/],
      [["ping", "127.0.0.1:7000", "-password=hunter2"], /option "-password"/],
      [["node", "-p=hunter2", "--json"], /option "-p"/],
      [["help", "--password=hunter2"], /no command "--password" to/],
      // A connection string where the command belongs: its password too.
      [["nodewire://app:hunter2@db1"], /unknown command "nodewire:\/\/…"/],
      [["help", "nodewire://app:hunter2@db1"], /no command "nodewire:\/\/…"/],
      [["app:hunter2@db1", "ping"], /unknown command "\[redacted\]"/],
      [["app:hunter2", "db1"], /unknown command "app:…"/],
      [
        ["cluster", "nodewire://app:hunter2@db1"],
        /"cluster" takes no arguments, got "nodewire:\/\/…"/,
      ],
    ] as const
  ) {
    const r = await cli([...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, message, args.join(" "));
    assert.ok(!`${r.stdout}${r.stderr}`.includes("hunter2"), args.join(" "));
  }
});

test("an address argument that may be user:password (a forgotten @host) is quoted only up to its colon", async () => {
  for (
    const [args, message] of [
      [
        ["ping", "app:hunter2"],
        /invalid host 1: the port must be a number, got "app:…"/,
      ],
      [
        ["health", "127.0.0.1:7000", "app:hun:ter2"],
        /invalid host 2: .*got "app:…"/,
      ],
      // After `--`, an option is an address: quoted up to its `=`.
      [
        ["ping", "--", "--password=hunter2"],
        /invalid host 1: .*got "--password=…"/,
      ],
      [
        ["health", "127.0.0.1:7000", "--", "-p=hunter2"],
        /invalid host 2: .*got "-p=…"/,
      ],
      [
        ["bench", "[::1]:hunter2", "--json"],
        /invalid host 1: the port must be a number, got "\[::1\]:…"/,
      ],
    ] as const
  ) {
    const r = await cli([...args]);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, message, args.join(" "));
    assert.ok(!`${r.stdout}${r.stderr}`.includes("hunter2"), args.join(" "));
  }
  // A host with no port is shown whole: it holds no password.
  const r = await cli(["ping", "db_-"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid host 1: .*got "db_-"/);
});

test("ping --json: one document with every node's round trip, id and protocol", async () => {
  await withNode(async (node) => {
    const r = await cli(["ping", node.address, "--json", "--timeout", "2000"]);
    assert.equal(r.code, 0, r.stderr);
    const d = doc(r) as {
      ok: boolean;
      nodes: {
        address: string;
        nodeId: string;
        ok: boolean;
        latencyMs: number;
        protocol: string;
        error: unknown;
      }[];
    };
    assert.equal(d.ok, true);
    assert.equal(d.nodes.length, 1);
    const [n] = d.nodes;
    assert.equal(n.address, node.address);
    assert.equal(n.nodeId, "cli-n1");
    assert.equal(n.ok, true);
    assert.equal(n.protocol, "tcp");
    assert.equal(n.error, null);
    assert.ok(n.latencyMs >= 0);
  });
});

test("ping takes the nodes as a nodewire:// URL too, options winning over it", async () => {
  await withNode(async (node) => {
    const r = await cli([
      "ping",
      `nodewire://${node.address}/?timeoutMs=1&loadBalancing=least-in-flight`,
      "--timeout",
      "2000",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const d = doc(r) as {
      ok: boolean;
      nodes: { address: string; nodeId: string }[];
    };
    assert.deepEqual(
      d.nodes.map((n) => [n.address, n.nodeId]),
      [[node.address, "cli-n1"]],
    );
  });
});

test("ping shows each node's round trip and id as a table", async () => {
  await withNode(async (node) => {
    const r = await cli(["ping", node.address]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`${node.address}\\s+cli-n1\\s+\\S+ (µs|ms)\\s+tcp\\s+ok`),
    );
  });
});

test("ping exits 1 when a node is unreachable, and says why in JSON too", async () => {
  await withNode(async (node) => {
    const dead = await startTestNode();
    const deadAddress = dead.address;
    await dead.close();

    const text = await cli(["ping", node.address, deadAddress]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`${deadAddress}.*FAILED: .*refused`));

    const some = await cli(["ping", node.address, deadAddress, "--json"]);
    assert.equal(some.code, 1);
    const d = doc(some) as {
      ok: boolean;
      nodes: { ok: boolean; error: { code: string } | null }[];
    };
    assert.equal(d.ok, false);
    assert.deepEqual(d.nodes.map((n) => n.ok), [true, false]);
    assert.equal(typeof d.nodes[1].error?.code, "string");

    const none = await cli(["ping", deadAddress, "--json"]);
    assert.equal(none.code, 1);
    const e = doc(none) as { ok: boolean; error: { code: string } };
    assert.deepEqual([e.ok, e.error.code], [false, "CONNECT_FAILED"]);
    assert.match(none.stderr, /CONNECT_FAILED/);
  });
});

test("health --json: every node's health, latency and pool", async () => {
  await withNode(async (node) => {
    const text = await cli(["health", node.address]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`${node.address}\\s+cli-n1\\s+yes`));

    const r = await cli(["health", node.address, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const d = doc(r) as {
      ok: boolean;
      nodes: {
        address: string;
        nodeId: string;
        healthy: boolean;
        consecutiveFailures: number;
        pool: { open: number };
      }[];
    };
    assert.equal(d.ok, true);
    assert.equal(d.nodes[0].address, node.address);
    assert.equal(d.nodes[0].nodeId, "cli-n1");
    assert.equal(d.nodes[0].healthy, true);
    assert.equal(d.nodes[0].consecutiveFailures, 0);
    assert.equal(typeof d.nodes[0].pool.open, "number");
  });
});

test("bench --json: a bounded load summarised in one document", async () => {
  await withNode(async (node) => {
    const r = await cli([
      "bench",
      node.address,
      "--duration",
      "0.3",
      "--concurrency",
      "8",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const d = doc(r) as {
      ok: boolean;
      requests: number;
      errors: number;
      requestsPerSecond: number;
      latencyMs: { p50: number; p99: number; max: number };
      perNode: Record<string, number>;
    };
    assert.equal(d.ok, true);
    assert.equal(d.errors, 0);
    assert.ok(d.requests > 0);
    assert.equal(d.perNode["cli-n1"], d.requests);
    assert.ok(d.latencyMs.p50 <= d.latencyMs.p99);
    assert.ok(d.latencyMs.p99 <= d.latencyMs.max);
    assert.ok(node.stats.requests >= d.requests);
  });
});

test("bench prints a summary table; its progress goes to stderr", async () => {
  await withNode(async (node) => {
    const r = await cli(["bench", node.address, "--duration", "0.2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /throughput\s+[\d,]+ req\/s/);
    assert.match(r.stdout, /errors\s+0/);
    assert.doesNotMatch(r.stdout, /req\/s {2}p50/);
  });
});

test("cluster --json prints its nodes and URL, serves clients, and stops when told", async () => {
  const stop = new AbortController();
  let url = "";
  let addresses: string[] = [];
  const r = await cli(
    ["cluster", "--nodes", "3", "--port", "0", "--json"],
    async ({ stdout }) => {
      const d = JSON.parse(await firstLine(stdout));
      assert.equal(d.ok, true);
      assert.equal(d.user, null);
      assert.equal(d.tls, null);
      assert.deepEqual(
        d.nodes.map((n: { id: string }) => n.id),
        ["n1", "n2", "n3"],
      );
      addresses = d.nodes.map((n: { address: string }) => n.address);
      url = d.url;
      const client = await Client.connect({
        hosts: addresses,
        healthConfig: { intervalMs: 0 },
      });
      try {
        const results = await client.healthCheckAllNodes();
        assert.deepEqual(results.map((x) => x.nodeId), ["n1", "n2", "n3"]);
        assert.equal(
          replyText(await client.request(ops.echo("to the cluster"))),
          "to the cluster",
        );
      } finally {
        await client.disconnect();
      }
      stop.abort();
    },
    stop.signal,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(new Set(addresses).size, 3);
  assert.equal(url, `nodewire://${addresses.join(",")}`);
  assert.match(r.stderr, /stopped/);
  // Stopped means closed: the ports refuse now (refuse, not hang or fail
  // some other way, which any rejection would have let pass).
  await assert.rejects(
    Client.connect({ hosts: addresses, healthConfig: { intervalMs: 0 } }),
    (error: unknown) => {
      assert.ok(error instanceof ConnectFailedError, String(error));
      assert.deepEqual(
        error.failures.map(({ address, error }) => [address, error.name]),
        addresses.map((address) => [address, "ConnectionRefusedError"]),
      );
      return true;
    },
  );
});

test("node --tls serves a throwaway certificate a client trusts from the file it names", async () => {
  const stop = new AbortController();
  let caFile = "";
  const r = await cli(
    ["node", "--port", "0", "--id", "tls-n1", "--tls", "--json"],
    async ({ stdout }) => {
      const d = JSON.parse(await firstLine(stdout));
      assert.match(d.url, /^nodewire:\/\/127\.0\.0\.1:\d+\/\?tls=require$/);
      assert.equal(d.tls.certificate, "self-signed");
      assert.deepEqual(d.tls.names, ["localhost", "127.0.0.1", "::1"]);
      caFile = d.tls.caFile;
      const ca = readFileSync(caFile, "utf8");
      assert.match(ca, /^-----BEGIN CERTIFICATE-----\n/);
      assert.ok(!ca.includes("PRIVATE KEY"), "only the certificate is written");
      const client = await Client.connect({
        hosts: [d.nodes[0].address],
        enableTls: true,
        tls: { ca },
        healthConfig: { intervalMs: 0 },
      });
      try {
        assert.equal(replyText(await client.request(ops.echo("x"))), "x");
        assert.equal(client.stats().nodes[0].protocol, "tls");
        assert.equal(client.stats().nodes[0].nodeId, "tls-n1");
      } finally {
        await client.disconnect();
      }
      // TLS only: a client without TLS finds no protocol in common.
      await assert.rejects(
        Client.connect({
          hosts: [d.nodes[0].address],
          healthConfig: { intervalMs: 0 },
        }),
        { code: "NEGOTIATION_FAILED" },
      );
      stop.abort();
    },
    stop.signal,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(caFile), "the temporary certificate is removed");
});

test("node --host 0.0.0.0 --tls prints a URL that verifies with the certificate it prints", async () => {
  // The URL named the wildcard, 0.0.0.0:port, which the throwaway
  // certificate (loopback names only) is not valid for: a client that
  // took the URL and the CA file failed verification (and Windows cannot
  // connect to 0.0.0.0 at all).
  const stop = new AbortController();
  const r = await cli(
    ["node", "--host", "0.0.0.0", "--port", "0", "--tls", "--json"],
    async ({ stdout }) => {
      try {
        const d = JSON.parse(await firstLine(stdout));
        assert.match(
          d.nodes[0].address,
          /^0\.0\.0\.0:\d+$/,
          "where it listens",
        );
        const port = d.nodes[0].address.split(":")[1];
        assert.equal(d.url, `nodewire://127.0.0.1:${port}/?tls=require`);
        const client = await Client.connect(d.url, {
          tls: { ca: readFileSync(d.tls.caFile, "utf8") },
          healthConfig: { intervalMs: 0 },
        });
        try {
          assert.equal(replyText(await client.request(ops.echo("x"))), "x");
        } finally {
          await client.disconnect();
        }
      } finally {
        stop.abort();
      }
    },
    stop.signal,
  );
  assert.equal(r.code, 0, r.stderr);
});

test("node exits 1 when its port is taken", async () => {
  await withNode(async (node) => {
    const r = await cli(["node", "--port", String(node.port), "--json"]);
    assert.equal(r.code, 1);
    const d = doc(r) as { ok: boolean; error: { message: string } };
    assert.equal(d.ok, false);
    assert.ok(
      d.error.message.includes(`cannot listen on ${node.address}`),
      d.error.message,
    );
  });
});

test("node --id is checked at the door by the kit's rule, naming --id; control and format characters are refused", async () => {
  // Over 255 bytes was startTestNode's ConfigError naming its own
  // options.nodeId, and a bell or a bidi override went into HELLO_OK.
  const cases: [string, RegExp][] = [
    [
      "é".repeat(128),
      /^invalid --id: expected a non-empty string of at most 255 UTF-8 bytes, got "é{80}…"$/,
    ],
    [
      "\u0007",
      /^invalid --id: expected no control or format characters, got "\\u0007"$/,
    ],
    [
      "n\u202e1",
      /^invalid --id: expected no control or format characters, got "n\\u202e1"$/,
    ],
    ["n\u200b", /expected no control or format characters/],
  ];
  for (const [id, message] of cases) {
    const r = await cli(["node", "--port", "0", "--id", id, "--json"]);
    assert.equal(r.code, 2, r.stderr);
    const d = doc(r) as {
      ok: boolean;
      error: { code: string; message: string };
    };
    assert.equal(d.error.code, "USAGE");
    assert.match(d.error.message, message);
  }
  // 255 bytes, and letters beyond ASCII, are ids.
  for (const id of ["x".repeat(255), "nœud-1"]) {
    const r = await cli(
      ["node", "--port", "0", "--id", id, "--json"],
      undefined,
      AbortSignal.abort(),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      (doc(r) as { ok: boolean; nodes: { id: string }[] }).nodes[0].id,
      id,
    );
  }
});

test("node --tls-cert/--tls-key serves the given certificate; ping checks it with --ca and --servername", async () => {
  const certs = new URL("../testing/certs/", import.meta.url);
  const file = (name: string) => new URL(name, certs).pathname;
  const stop = new AbortController();
  const r = await cli(
    [
      "node",
      "--port",
      "0",
      "--tls-cert",
      file("server.pem"),
      "--tls-key",
      file("server-key.pem"),
      "--json",
    ],
    async ({ stdout }) => {
      const d = JSON.parse(await firstLine(stdout));
      assert.deepEqual(d.tls, {
        certificate: "file",
        caFile: null,
        names: null,
      });
      const address: string = d.nodes[0].address;
      const ca = ["--ca", file("ca.pem")];

      const good = await cli(["ping", address, ...ca, "--json"]);
      assert.equal(good.code, 0, good.stderr);
      assert.equal(doc(good).ok, true);
      const named = await cli([
        "ping",
        address,
        ...ca,
        "--servername",
        "localhost",
      ]);
      assert.equal(named.code, 0, named.stderr);
      assert.match(named.stdout, /\btls\s+ok/);

      // A certificate that does not vouch for the name, or that no CA
      // given vouches for, is refused: exit 3, a retry cannot help.
      const wrongName = await cli([
        "ping",
        address,
        ...ca,
        "--servername",
        "wrong.invalid",
        "--json",
      ]);
      assert.equal(wrongName.code, 3, wrongName.stderr);
      assert.equal(
        (doc(wrongName) as { ok: boolean; error: { code: string } }).error.code,
        "TLS_FAILED",
      );
      const untrusted = await cli([
        "ping",
        address,
        "--ca",
        file("untrusted.pem"),
      ]);
      assert.equal(untrusted.code, 3, untrusted.stderr);
      assert.match(untrusted.stderr, /TLS_FAILED/);
      stop.abort();
    },
    stop.signal,
  );
  assert.equal(r.code, 0, r.stderr);
});

test("node --tls-cert/--tls-key with a key that is not the certificate's is a usage error at start-up, not a node that resets every client", async () => {
  const file = (name: string) =>
    decodeURIComponent(
      new URL(`../testing/certs/${name}`, import.meta.url).pathname,
    );
  const r = await cli([
    "node",
    "--port",
    "0",
    "--tls-cert",
    file("server.pem"),
    "--tls-key",
    file("untrusted-key.pem"),
  ]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /--tls-cert ".*server\.pem" and --tls-key ".*untrusted-key\.pem" are not a certificate and its key: a (key that does not go with the certificate|pair node:tls refuses)/,
  );
  assert.ok(!r.stderr.includes("PRIVATE KEY-----"));
});
