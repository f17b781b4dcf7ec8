// A runtime whose diagnostics_channel fails (its channel() throws) leaves
// diagnostics off: loading the channels resolves, every channel stays
// quiet, subscribing hears nothing, and nothing is an unhandled rejection.
// Runs alone in its file: the channels are loaded once per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire, syncBuiltinESMExports } from "node:module";

const dcModule = createRequire(import.meta.url)("node:diagnostics_channel");

/**
 * Makes the runtime's `channel()` throw, as the library's import sees it;
 * false where the runtime's module cannot be patched (Deno).
 */
async function breakChannels(): Promise<boolean> {
  dcModule.channel = () => {
    throw new Error("diagnostics_channel is broken here");
  };
  syncBuiltinESMExports();
  const seen = await import("node:diagnostics_channel");
  try {
    seen.channel("nodewire:probe");
    return false;
  } catch {
    return true;
  }
}

test("a diagnostics_channel whose channel() throws leaves diagnostics off, never an unhandled rejection", async () => {
  const original = dcModule.channel;
  if (!(await breakChannels())) {
    // Deno's built-in cannot be broken on purpose: the rule that leaves
    // diagnostics off is checked on a module whose channel() throws.
    dcModule.channel = original;
    const { channelsOf } = await import("../src/diagnostics/channels.ts");
    const broken = {
      channel: () => {
        throw new Error("diagnostics_channel is broken here");
      },
    };
    assert.equal(channelsOf(broken as never), undefined, "all or none");
    assert.notEqual(channelsOf(dcModule), undefined, "a working one loads");
    return;
  }
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const proc = (globalThis as unknown as {
    process: {
      on(e: string, f: (r: unknown) => void): void;
      off(e: string, f: (r: unknown) => void): void;
    };
  }).process;
  proc.on("unhandledRejection", onUnhandled);
  try {
    const { channels, loadChannels, subscribeChannel } = await import(
      "../src/diagnostics/channels.ts"
    );
    const { attachSink } = await import("../src/otel/instrument.ts");
    // The otel bridge asks for the channels before they are loaded.
    const detach = attachSink(1, {} as never);
    await loadChannels();
    assert.equal(loadChannels(), undefined, "loaded once, for good");
    assert.equal(channels.requestStart.hasSubscribers, false);
    channels.requestStart.publish({} as never);
    let heard = 0;
    const off = subscribeChannel("nodewire:request:start", () => heard++);
    channels.requestStart.publish({} as never);
    off();
    detach();
    assert.equal(heard, 0);
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(unhandled, []);
  } finally {
    proc.off("unhandledRejection", onUnhandled);
    dcModule.channel = original;
    syncBuiltinESMExports();
  }
});
