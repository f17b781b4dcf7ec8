// The serving commands stop everything they opened on every path: a node
// whose stop or close fails does not keep the others open, and the
// temporary folder of a throwaway certificate goes even when writing the
// certificate fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs } from "../src/cli/args.ts";
import { Output } from "../src/cli/output.ts";
import { type NodeKit, serve, type ServedNode } from "../src/cli/serve.ts";
import { COMMANDS } from "../src/cli/spec.ts";
import { writeTempFile } from "../src/runtime/process_io.ts";

/** A kit whose nodes record what was done to them; `failing` fail `step`. */
function fakeKit(failing: Record<string, "stop" | "close">) {
  const done: string[] = [];
  const kit: NodeKit = {
    nodeId: () => undefined,
    start: (options) => {
      const id = options.nodeId ?? "n";
      const node: ServedNode = {
        nodeId: id,
        address: `127.0.0.1:${options.port}`,
        stats: { open: 0 },
        stop: () => {
          done.push(`stop ${id}`);
          return failing[id] === "stop"
            ? Promise.reject(new Error(`${id} would not stop`))
            : Promise.resolve();
        },
        close: () => {
          done.push(`close ${id}`);
          return failing[id] === "close"
            ? Promise.reject(new Error(`${id} would not close`))
            : Promise.resolve();
        },
      };
      return Promise.resolve(node);
    },
  };
  return { kit, done };
}

/** Runs `cluster` with `kit`, stopped at once, its output silenced. */
async function cluster(kit: NodeKit): Promise<unknown> {
  const parsed = parseArgs(["--nodes", "3", "--port", "0"], COMMANDS.cluster);
  const log = console.log;
  const error = console.error;
  console.log = console.error = () => {};
  try {
    return await serve(
      "cluster",
      parsed,
      new Output(true),
      kit,
      AbortSignal.abort(),
    ).then(() => undefined, (e: unknown) => e);
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("a node whose stop fails during the drain leaves no other node open, and the failure is reported", async () => {
  for (const step of ["stop", "close"] as const) {
    const { kit, done } = fakeKit({ n1: step });
    const failure = await cluster(kit);
    assert.ok(failure instanceof Error, `${step}: ${failure}`);
    assert.equal(failure.message, `n1 would not ${step}`);
    for (const id of ["n1", "n2", "n3"]) {
      assert.ok(done.includes(`close ${id}`), `${step}: ${id} not closed`);
    }
  }
});

test("a temporary file that cannot be written leaves no folder behind", async () => {
  const prefix = `nodewire-wtf-${Math.random().toString(36).slice(2)}-`;
  const mine = () =>
    readdirSync(tmpdir()).filter((name) => name.startsWith(prefix));
  // A name in a folder that does not exist: the write fails after the
  // temporary folder was made.
  await assert.rejects(writeTempFile(prefix, "missing/ca.pem", "x"));
  assert.deepEqual(mine(), []);
  const made = await writeTempFile(prefix, "ca.pem", "x");
  assert.ok(existsSync(made.path));
  await made.remove();
  assert.deepEqual(mine(), []);
});
