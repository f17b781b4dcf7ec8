// The CLI's entry point (/cli) reads its args once, at the door: main
// promises never to reject, but a revoked proxy or an index whose getter
// threw made it reject with what was thrown, a hole reached the parser as
// undefined (exit 1 with a TypeError's words), and a sparse array four
// billion long was spread, which ended the process. A file option is read
// no further than a PEM file can go. What the user typed comes back
// escaped: an escape sequence or a bidi override in an argument reached
// the terminal as it was. And any command line at all ends in an exit code
// with a message (a property over generated ones).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { main, type MainOptions } from "../cli.ts";
import type { CommandSpec } from "../src/cli/args.ts";
import { COMMANDS } from "../src/cli/spec.ts";
import { fc } from "./support/fc.ts";
import { getAdapter } from "../src/runtime/detect.ts";
import { answerHello, scriptedNode } from "./support/scripted_node.ts";
import { readOnce } from "./support/fault_checks.ts";

/** Controls but the newline (C0, DEL, C1), bidi and zero-width characters. */
const UNSEEN = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** Clears the screen, turns text around, a C1 NEL, DEL, an isolate. */
const HOSTILE = "\x1b[2J\u202e\u0085\x7f\u2067\u200b";
/** {@linkcode HOSTILE} as a message shows it. */
const ESCAPED = "\\u001b[2J\\u202e\\u0085\\u007f\\u2067\\u200b";

function assertPrintable(r: { stdout: string; stderr: string }, what: string) {
  const shown = `${r.stdout}\n${r.stderr}`;
  assert.doesNotMatch(shown, UNSEEN, `${what}: ${JSON.stringify(shown)}`);
}

/** Runs main with console output captured; resolves with code and stderr. */
async function run(
  args: unknown,
  options?: MainOptions,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => stdout.push(a.join(" "));
  console.error = (...a: unknown[]) => stderr.push(a.join(" "));
  try {
    const code = await main(args as string[], options);
    return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("main resolves 2 for args it cannot read, or with a hole, or too long: it never rejects", async () => {
  const { proxy, revoke } = Proxy.revocable(["--help"], {});
  revoke();
  const throwing = ["--help"];
  Object.defineProperty(throwing, 0, {
    get() {
      throw new Error("boom");
    },
  });
  const huge = ["--help"];
  huge.length = 2 ** 32 - 1;
  // deno-lint-ignore no-sparse-arrays
  const holed = ["ping", , "127.0.0.1:1"];
  for (const args of [proxy, throwing, huge, holed]) {
    const r = await run(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /main: invalid args: expected an array of strings/);
  }
});

test("main reads each argument once", async () => {
  const args = Object.defineProperties([] as string[], {
    0: readOnce("--help"),
    1: readOnce("--json"),
  });
  const r = await run(args);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).ok, true);
});

test(
  "a file option that names a device or a huge file is bad usage, read no further than a PEM file can go",
  {
    skip: !existsSync("/dev/zero"),
  },
  async () => {
    // Read whole, /dev/zero hung Bun and took 2 GiB on Deno and Node.
    for (
      const [args, option] of [
        [["ping", "127.0.0.1:1", "--ca", "/dev/zero"], "ca"],
        [
          ["node", "--port", "0", "--tls-cert", "/dev/zero", "--tls-key", "k"],
          "tls-cert",
        ],
      ] as const
    ) {
      const r = await run(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `--${option}: cannot read "/dev/zero" \\(it holds more than 4194304 bytes\\)`,
        ),
      );
    }
  },
);

test("a message repeating what the user typed shows it quoted and escaped, never raw", async () => {
  const h = HOSTILE;
  const e = ESCAPED;
  const cases: [string[], string][] = [
    [[h], `unknown command "${e}"`],
    [[`-${h}`], `expected a command before options, got "-${e}"`],
    [["help", h], `no command "${e}" to explain`],
    [["ping", "127.0.0.1:1", `--${h}=v`], `unknown option "--${e}" for "ping"`],
    [["ping", "127.0.0.1:1", `-${h}`], `unknown option "-${e}" for "ping"`],
    [["ping", h], `got "${e}"`],
    [["ping", `nodewire://127.0.0.1:1/?poolMax=${h}`], `got "${e}"`],
    [["ping", "127.0.0.1:1", "--timeout", h], `got "${e}"`],
    [
      ["ping", "127.0.0.1:1", "--ca", `/nonexistent/${h}`],
      `"/nonexistent/${e}"`,
    ],
    [["ping", "127.0.0.1:1", "--user", h, "--password-stdin"], `"${e}"`],
    [["bench", "127.0.0.1:1", "--size", h], `got "${e}"`],
    [["node", h], `"node" takes no arguments, got "${e}"`],
    [["cluster", "--port", h], `got "${e}"`],
    [["node", "--tls-cert", `/no/${h}`, "--tls-key", "k"], `"/no/${e}"`],
  ];
  for (const [args, shown] of cases) {
    const what = JSON.stringify(args);
    const text = await run(args);
    assert.equal(text.code, 2, `${what}: ${text.stderr}`);
    assert.ok(text.stderr.includes(shown), `${what}: ${text.stderr}`);
    assertPrintable(text, what);
    const json = await run([...args, "--json"]);
    assert.equal(json.code, 2, what);
    assert.ok(JSON.parse(json.stdout).error.message.includes(shown), what);
    assertPrintable(json, `${what} --json`);
  }
});

test("text from elsewhere is escaped too: a node's id in ping's table and document, a runtime's message", async () => {
  // A node whose HELLO_OK carries an id no terminal may show as it is: the
  // client refuses it (b5ddbf6), and ping's error names it, escaped.
  const nodeId = `n${HOSTILE}`;
  const node = await scriptedNode(
    await getAdapter(),
    answerHello({ nodeId, maxFrameSize: 1 << 20, auth: "none" }),
  );
  try {
    const table = await run(["ping", node.address]);
    assert.equal(table.code, 1, table.stderr);
    assert.ok(
      `${table.stdout}${table.stderr}`.includes(`n${ESCAPED}`),
      table.stdout,
    );
    assertPrintable(table, "ping");
    const json = await run(["ping", node.address, "--json"]);
    assert.equal(json.code, 1, json.stderr);
    assertPrintable(json, "ping --json");
    assert.ok(
      JSON.parse(json.stdout).error.message.includes(`n${ESCAPED}`),
      json.stdout,
    );
  } finally {
    await node.close();
  }
  // Node's getaddrinfo error repeats the host as it was given.
  const listen = await run(["node", "--port", "0", "--host", HOSTILE]);
  assert.equal(listen.code, 1, listen.stderr);
  assertPrintable(listen, "node --host");
});

/** What the CLI must survive anywhere in an argument. */
const nasty = fc.oneof(
  fc.constantFrom(HOSTILE, "\0", "\r", "\n", "\t", "\ud800", "\u{e0001}"),
  fc.string({ unit: "binary", maxLength: 12 }),
  // Huge, and shrinking to short.
  fc.nat(1 << 20).map((n) => "x".repeat(n)),
  fc.nat(50_000).map((n) => HOSTILE.repeat(n)),
);
/** Values the options take, and some they do not. */
const value = fc.oneof(
  fc.constantFrom("0", "1", "2", "0.1", "100", "70000", "1e3", "app"),
  fc.constantFrom("127.0.0.1", "127.0.0.1:1", "nodewire://127.0.0.1:1"),
  nasty,
);

/**
 * A word of `spec`'s command line: one of its options (--password-stdin
 * left out, as it would read the test's standard input, and --ca-out, as
 * it would write a file of any name), alone or with a value, or a value.
 */
function word(spec: CommandSpec) {
  const names = Object.keys(spec.options)
    .filter((name) => name !== "password-stdin" && name !== "ca-out")
    .map((name) => `--${name}`);
  return fc.oneof(
    fc.constantFrom(...names, "--", "-", "-h", "=", "--password"),
    fc.tuple(fc.constantFrom(...names), value).map(([n, v]) => `${n}=${v}`),
    value,
  );
}

/** A command line: mostly a command and its words, else anything. */
const commandLine = fc.oneof(
  fc.constantFrom(...Object.values(COMMANDS)).chain((spec) =>
    fc.array(word(spec), { maxLength: 6 }).map((w) => [spec.name, ...w])
  ),
  fc.array(fc.oneof(value, fc.constantFrom("help", "--help", "--json")), {
    maxLength: 4,
  }),
);

test("any command line ends in exit 0 to 3 with something printed, never a throw, a hang or a raw control character", async () => {
  // A node or cluster that gets that far stops at once, on a free port.
  const stopped = AbortSignal.abort();
  await fc.assert(
    fc.asyncProperty(commandLine, async (args) => {
      const argv = args[0] === "node" || args[0] === "cluster"
        ? [...args, "--port", "0"]
        : args;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no exit in 10 s")), 10_000);
      });
      const what = JSON.stringify(argv).slice(0, 200);
      try {
        const r = await Promise.race([run(argv, { signal: stopped }), hang]);
        assert.ok([0, 1, 2, 3].includes(r.code), `${what}: exit ${r.code}`);
        if (r.code === 0) assert.notEqual(r.stdout, "", what);
        else assert.match(r.stderr, /^error/, what);
        if (argv.includes("--json")) {
          assert.equal(typeof JSON.parse(r.stdout).ok, "boolean", what);
        }
        assertPrintable(r, what);
      } finally {
        clearTimeout(timer);
      }
    }),
    { numRuns: 300, interruptAfterTimeLimit: 30_000 },
  );
});
