// The environment: `Client.connect()` with no arguments reads NODEWIRE_URL;
// an explicit string or config wins and the environment is then not even
// read; overrides merge over NODEWIRE_URL as over any string. Each runtime
// reads it its own way (Deno only with the permission, asked for without
// prompting; Bun and Node from process.env): checked here with stand-in
// globals, and for real in a child process of the runtime running this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { resolveConfig } from "../src/config/resolve.ts";
import { configFromArguments } from "../src/config/sources.ts";
import { ConfigError } from "../src/errors.ts";
import { type EnvReading, readEnvVariable } from "../src/runtime/env.ts";
import { startTestNode } from "../testing/node.ts";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process: {
    execPath: string;
    execArgv: string[];
    env: Record<string, string | undefined>;
  };
};

/** A reader that answers `reading` and counts its calls. */
function reader(reading: EnvReading) {
  const calls: string[] = [];
  const read = (name: string) => {
    calls.push(name);
    return reading;
  };
  return { read, calls };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError: ${error}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

test("no arguments: the connection string in NODEWIRE_URL", () => {
  const env = reader({
    state: "set",
    value: "nodewire://u:p@e1:7100,e2/?poolMax=8",
  });
  const c = resolveConfig(configFromArguments(undefined, undefined, env.read));
  assert.deepEqual(env.calls, ["NODEWIRE_URL"]);
  assert.deepEqual(c.hosts.map((h) => h.address), ["e1:7100", "e2:7000"]);
  assert.equal(c.username, "u");
  assert.equal(c.poolConfig.maxConnections, 8);
});

test("overrides merge over NODEWIRE_URL as over any connection string", () => {
  const env = reader({ state: "set", value: "nodewire://e1/?poolMax=4" });
  const logger = () => {};
  const c = resolveConfig(
    configFromArguments(
      undefined,
      { logger, poolConfig: { minConnections: 1 } },
      env.read,
    ),
  );
  assert.equal(c.logger, logger);
  assert.equal(c.poolConfig.maxConnections, 4);
  assert.equal(c.poolConfig.minConnections, 1);
});

test("an explicit string or config wins, and the environment is not read at all", () => {
  const env = reader({ state: "set", value: "nodewire://from-env" });
  const fromString = resolveConfig(
    configFromArguments("nodewire://explicit", undefined, env.read),
  );
  assert.equal(fromString.hosts[0].hostname, "explicit");
  const fromObject = resolveConfig(
    configFromArguments({ hosts: ["object"] }, undefined, env.read),
  );
  assert.equal(fromObject.hosts[0].hostname, "object");
  // A config object is whole: NODEWIRE_URL does not fill in what it lacks.
  const e = configError(() =>
    configFromArguments({ timeoutMs: 5 }, undefined, env.read)
  );
  assert.equal(e.field, "hosts");
  assert.deepEqual(env.calls, []);
});

test("NODEWIRE_URL unset, or not readable, with nothing else given: a ConfigError saying what to do", () => {
  const unset = configError(() =>
    configFromArguments(undefined, undefined, reader({ state: "unset" }).read)
  );
  assert.equal(unset.field, "NODEWIRE_URL");
  assert.equal(
    unset.message,
    "invalid NODEWIRE_URL: no configuration given, and NODEWIRE_URL is not " +
      "set: pass Client.connect a connection string or a config object, or " +
      "set NODEWIRE_URL, got undefined",
  );
  const denied = configError(() =>
    configFromArguments(
      undefined,
      { logger: () => {} },
      reader({
        state: "denied",
        reason: "Deno has no permission to read NODEWIRE_URL (run with " +
          "--allow-env=NODEWIRE_URL)",
      }).read,
    )
  );
  assert.equal(denied.field, "NODEWIRE_URL");
  assert.match(
    denied.message,
    /^invalid NODEWIRE_URL: no configuration given, and Deno has no permission to read NODEWIRE_URL \(run with --allow-env=NODEWIRE_URL\): pass Client\.connect/,
  );
});

test("a bad NODEWIRE_URL is named as such, and its password not shown", () => {
  const env = reader({ state: "set", value: "postgres://u:hunter2@h" });
  const e = configError(() =>
    configFromArguments(undefined, undefined, env.read)
  );
  assert.equal(e.field, "NODEWIRE_URL");
  assert.match(
    e.message,
    /^invalid NODEWIRE_URL: expected a connection string starting with "nodewire:\/\/"/,
  );
  const slip = configError(() =>
    configFromArguments(
      undefined,
      undefined,
      reader({ state: "set", value: "nodewire://u:hun/ter2@h" }).read,
    )
  );
  assert.equal(slip.field, "NODEWIRE_URL");
  assert.ok(!slip.message.includes("ter2"));
});

test("Deno: the variable is read only when the permission is granted, and never prompted for", () => {
  const gets: string[] = [];
  const deno = (state: string) => ({
    Deno: {
      permissions: {
        querySync: (d: { name: string; variable: string }) => {
          assert.deepEqual(d, { name: "env", variable: "NODEWIRE_URL" });
          return { state };
        },
      },
      env: {
        get: (name: string) => {
          gets.push(name);
          return "nodewire://h";
        },
      },
    },
    // Deno 2 has a process global too: it must not be used instead.
    process: { env: { NODEWIRE_URL: "nodewire://from-process" } },
  });
  assert.deepEqual(readEnvVariable("NODEWIRE_URL", deno("granted")), {
    state: "set",
    value: "nodewire://h",
  });
  assert.deepEqual(gets, ["NODEWIRE_URL"]);
  for (const state of ["prompt", "denied"]) {
    const reading = readEnvVariable("NODEWIRE_URL", deno(state));
    assert.equal(reading.state, "denied");
    assert.match(
      (reading as { reason: string }).reason,
      /--allow-env=NODEWIRE_URL/,
    );
  }
  assert.deepEqual(
    gets,
    ["NODEWIRE_URL"],
    "Deno.env.get called without the permission",
  );
  // A Deno without querySync, or whose get throws, is not readable either.
  assert.equal(
    readEnvVariable("NODEWIRE_URL", { Deno: { env: { get: () => "x" } } })
      .state,
    "denied",
  );
  assert.equal(
    readEnvVariable("NODEWIRE_URL", {
      Deno: {
        permissions: { querySync: () => ({ state: "granted" }) },
        env: {
          get: () => {
            throw new Error("NotCapable");
          },
        },
      },
    }).state,
    "denied",
  );
});

test("Bun and Node: process.env; an empty value is unset; no environment at all is not readable", () => {
  const env = (value: string | undefined) => ({
    process: { env: { NODEWIRE_URL: value } },
  });
  assert.deepEqual(readEnvVariable("NODEWIRE_URL", env("nodewire://h")), {
    state: "set",
    value: "nodewire://h",
  });
  assert.deepEqual(readEnvVariable("NODEWIRE_URL", env("")), {
    state: "unset",
  });
  assert.deepEqual(readEnvVariable("NODEWIRE_URL", env(undefined)), {
    state: "unset",
  });
  assert.deepEqual(readEnvVariable("NODEWIRE_URL", {}), {
    state: "denied",
    reason: "this runtime has no environment variables",
  });
});

const fixture = fileURLToPath(
  new URL("./fixtures/connect_from_env.ts", import.meta.url),
);
const denoBin = fileURLToPath(
  new URL("../node_modules/.bin/deno", import.meta.url),
);

/** The parent's --import flags, so the child loads what the suite loads. */
function nodeImports(): string[] {
  const argv = g.process.execArgv;
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--import" && argv[i + 1]) out.push("--import", argv[++i]);
    else if (argv[i].startsWith("--import=")) out.push(argv[i]);
  }
  return out.length > 0 ? out : ["--import", "tsx"];
}

interface ChildResult {
  ok: boolean;
  address?: string;
  poolMax?: number;
  field?: string;
  message?: string;
}

/** Runs `command`, which must exit on its own, and parses its JSON line. */
function runChild(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<{ result: ChildResult | undefined; out: string }> {
  const childEnv = { ...g.process.env, ...env };
  for (const [key, value] of Object.entries(childEnv)) {
    if (value === undefined) delete childEnv[key];
  }
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const line = out.split("\n").find((l) => l.startsWith("{"));
      resolve({
        result: code === 0 && line ? JSON.parse(line) : undefined,
        out: `exit ${code}: ${out}`,
      });
    });
  });
}

/** This runtime, running the fixture. */
function sameRuntime(): [string, string[]] {
  return [
    g.process.execPath,
    g.Deno
      ? ["run", "--allow-net", "--allow-env", fixture]
      : g.Bun
      ? [fixture]
      : [...nodeImports(), fixture],
  ];
}

test("for real, on this runtime: Client.connect() connects to the node NODEWIRE_URL names", async () => {
  const node = await startTestNode();
  try {
    const [command, args] = sameRuntime();
    const { result, out } = await runChild(command, args, {
      NODEWIRE_URL: `nodewire://${node.address}/?poolMax=3&poolMin=1` +
        "&healthConfig.intervalMs=0",
    });
    assert.deepEqual(
      result,
      { ok: true, address: node.address, poolMax: 3 },
      out,
    );
  } finally {
    await node.close();
  }
});

test("for real, on this runtime: without NODEWIRE_URL, Client.connect() says what to do", async () => {
  const [command, args] = sameRuntime();
  const { result, out } = await runChild(command, args, {
    NODEWIRE_URL: undefined,
  });
  assert.equal(result?.ok, false, out);
  assert.equal(result?.field, "NODEWIRE_URL");
  assert.match(result?.message ?? "", /NODEWIRE_URL is not set/);
});

// Permissions are Deno's alone, so these run where Deno runs the suite.
if (g.Deno) {
  test("for real, on Deno: without --allow-env the variable is not read, and the error names the flag", async () => {
    const { result, out } = await runChild(
      denoBin,
      ["run", "--allow-net", fixture],
      { NODEWIRE_URL: "nodewire://127.0.0.1:1" },
    );
    assert.equal(result?.ok, false, out);
    assert.equal(result?.field, "NODEWIRE_URL");
    assert.match(
      result?.message ?? "",
      /Deno has no permission to read NODEWIRE_URL \(run with --allow-env=NODEWIRE_URL\)/,
    );
  });

  test("for real, on Deno: --allow-env=NODEWIRE_URL is enough", async () => {
    const node = await startTestNode();
    try {
      const { result, out } = await runChild(
        denoBin,
        ["run", "--allow-net", "--allow-env=NODEWIRE_URL", fixture],
        {
          NODEWIRE_URL: `nodewire://${node.address}/?healthConfig.intervalMs=0`,
        },
      );
      assert.equal(result?.ok, true, out);
    } finally {
      await node.close();
    }
  });

  // On a terminal, Deno.env.get without the permission stops the program
  // at a "Deno requests env access" prompt. `script` gives the child one.
  const script = ["/usr/bin/script", "/bin/script"].find(existsSync);
  if (script !== undefined) {
    test("for real, on Deno: on a terminal, no permission prompt stops the program", async () => {
      const command = [denoBin, "run", "--allow-net", fixture]
        .map((a) => `'${a}'`).join(" ");
      const { out } = await runChild(
        script,
        ["-qec", command, "/dev/null"],
        { NODEWIRE_URL: "nodewire://127.0.0.1:1", NO_COLOR: "1" },
      );
      assert.doesNotMatch(out, /Deno requests/);
      assert.match(out, /"field":"NODEWIRE_URL"/, out);
      assert.match(out, /^exit 0:/, out);
    });
  }
}
