// A client disconnected while its pool still fills to minConnections: the
// connects in progress are aborted, some in the very turn their socket
// came. Each must end up closed, whichever turn the disconnect lands on:
// a socket the opening gave up but nobody closed kept a Deno process
// alive after `disconnect()` (tests/connection_env.test.ts's child).
// In-memory network and virtual clock, so every turn is tried.
import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryScene } from "./support/memory_scene.ts";

/** Disconnects are tried this many microtask turns after connect, from 0. */
const TURNS = 60;

test("disconnect on any turn of the pool's fill leaves no channel open", async () => {
  const left: string[] = [];
  for (let turns = 0; turns <= TURNS; turns++) {
    await memoryScene(1, {}, async ({ client, clock, network }) => {
      // The pool opens its other four meanwhile, a few turns apiece.
      for (let i = 0; i < turns; i++) await null;
      const done = client.disconnect();
      await clock.advance(1000);
      await done;
      // Both ends of every connection, the node's included: those close
      // once they see the client's end close.
      await clock.advance(0);
      if (network.openChannels > 0) {
        left.push(`after ${turns} turns: ${network.openChannels} open`);
      }
    });
  }
  assert.deepEqual(left, []);
});
