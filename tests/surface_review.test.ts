// An adversarial review of the entry points the earlier reviews left out:
// ./protocol (encoders and decoders fed any bytes), ./testing (the node,
// the fault proxy and the virtual clock users run in their own tests),
// ./cli, ./otel and the typed event target. What a careless caller or a
// broken peer sends gets a typed error naming what was wrong, never a
// TypeError from inside, a hang, a silent default or a huge allocation.
// Tests named "held: ..." pin behaviours that were already right.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { main } from "../cli.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process, capturing what it printed. */
async function cli(args: unknown, options?: unknown): Promise<Run> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => stdout.push(a.join(" "));
  console.error = (...a: unknown[]) => stderr.push(a.join(" "));
  try {
    const code = await main(args as string[], options as never);
    return { code, stdout: stdout.join("\n"), stderr: stderr.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * `run`, given a signal that stops it after `ms` if it still runs then: a
 * command that should have been refused at once but serves instead ends
 * the test as a failure, not as a hang.
 */
async function stoppedAfter<T>(
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  try {
    return await run(stop.signal);
  } finally {
    clearTimeout(timer);
  }
}

test("the CLI runs no command named after an Object.prototype member: toString and constructor are unknown commands (exit 2), not a node served on port 7000", async () => {
  for (
    const args of [
      ["toString"],
      ["constructor", "--json"],
      ["hasOwnProperty"],
      ["help", "toString"],
      ["valueOf", "--port", "0"],
    ]
  ) {
    const r = await stoppedAfter(2000, (signal) => cli(args, { signal }));
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /(unknown command|no command) "[a-zA-Z]+"/);
    assert.doesNotMatch(r.stdout, /listening|cluster of|"url"/);
  }
});

test("the CLI's options are its own names: --toString or --constructor is an unknown option, exit 2", async () => {
  for (const option of ["--toString", "--constructor", "--valueOf=1"]) {
    const r = await cli(["ping", "127.0.0.1:1", option]);
    assert.equal(r.code, 2, `${option}: ${r.stderr}`);
    assert.match(r.stderr, /unknown option --[a-zA-Z]+ for "ping"/);
  }
});

test("main refuses args that are not an array of strings, and options it does not know, with exit code 2 naming them: it never rejects", async () => {
  for (const args of [null, "ping", [5], ["ping", {}], undefined]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${String(args)}: ${r.stderr}`);
    assert.match(r.stderr, /main: invalid args: expected an array of strings/);
  }
  const json = await cli(["--help", "--json"], { sigal: 1 });
  assert.equal(json.code, 2);
  assert.deepEqual(JSON.parse(json.stdout).error.code, "INVALID_ARGUMENT");
  assert.match(json.stderr, /invalid options\.sigal: unknown option/);
  const none = await cli(["--help"], null);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /invalid options: expected an object/);
});

test("a long-running command given a signal that is not an AbortSignal is refused before it installs anything: exit 2, not a process kept alive by its SIGTERM handler", async () => {
  for (const signal of ["x", { aborted: false }]) {
    const r = await stoppedAfter(
      2000,
      () => cli(["node", "--port", "0", "--json"], { signal }),
    );
    assert.equal(r.code, 2, `${JSON.stringify(signal)}: ${r.stderr}`);
    assert.match(r.stderr, /invalid options\.signal: expected an AbortSignal/);
    assert.equal(JSON.parse(r.stdout).ok, false);
  }
});
