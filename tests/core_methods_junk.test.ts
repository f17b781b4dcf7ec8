// Every public method of the objects a /core caller holds (a Client, its
// ConnectionManager, a node's pool and health, a Connection, a healthy
// set, a balancer, a PeakEwma, a NodeHealth), called with what a careless
// caller passes (anything fast-check makes, undefined, null, NaN, -1,
// 1.5, a string; none to three of them): each returns, or throws or
// rejects with an SDK error (NodewireError), never a TypeError from
// inside; and nothing escapes. Methods that end the object (close,
// destroy, disconnect, clear, drain) are left out: the scene must outlive
// the calls. This found the manager's booking methods reading a node
// that was undefined (manager_booking.test.ts). Virtual clock over the
// memory network.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Connection,
  HealthyNodeSet,
  NodeHealth,
  PeakEwma,
  RoundRobinBalancer,
} from "../core.ts";
import { NodewireError } from "../src/errors.ts";
import { memoryScene as scene } from "./support/memory_scene.ts";
import { watchEscapes } from "./support/fault_harness.ts";

const ENDING = new Set([
  "constructor",
  "close",
  "destroy",
  "disconnect",
  "shutdown",
  "clear",
  "drain",
]);

/** The functions on `object`'s prototypes, up to Object and EventTarget. */
function methodsOf(object: object): string[] {
  const names = new Set<string>();
  for (
    let proto = Object.getPrototypeOf(object);
    proto && proto !== Object.prototype && proto !== EventTarget.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, name)!;
      if (typeof d.value === "function" && !ENDING.has(name)) names.add(name);
    }
  }
  return [...names];
}

const show = (value: unknown) => {
  try {
    return String(JSON.stringify(value)).slice(0, 40);
  } catch {
    return typeof value;
  }
};

test("every public method of /core's objects meets junk arguments with an SDK error or none; nothing escapes", async () => {
  const watch = watchEscapes();
  const problems: string[] = [];
  let calls = 0;
  await scene(
    2,
    { loadBalancing: "peak-ewma" },
    async ({ client, clock, network }) => {
      const manager = client.manager;
      const node = manager.nodes[0];
      const connection = await Connection.connect({
        adapter: network,
        hostname: node.host.hostname,
        port: node.host.port,
        clock,
      });
      const set = new HealthyNodeSet<{ address: string }>();
      const objects: Record<string, object> = {
        client,
        manager,
        pool: node.pool,
        health: node.health,
        connection,
        set,
        roundRobin: new RoundRobinBalancer(set),
        peakEwma: new PeakEwma(4),
        nodeHealth: new NodeHealth("127.0.0.1:1", {
          unhealthyThreshold: 2,
          healthyThreshold: 2,
        }),
      };
      const junk = fc.sample(
        fc.oneof(
          fc.anything(),
          fc.constantFrom(undefined, null, NaN, -1, 1.5, "x"),
        ),
        { numRuns: 40, seed: 15 },
      );
      const pending: Promise<void>[] = [];
      const open = new Set<string>();
      const check = (at: string, args: unknown[], error: unknown) => {
        if (!(error instanceof NodewireError)) {
          problems.push(`${at}(${args.map(show).join(", ")}): ${error}`);
        }
      };
      for (const [name, object] of Object.entries(objects)) {
        for (const method of methodsOf(object)) {
          const at = `${name}.${method}`;
          for (let i = 0; i < junk.length; i++) {
            const all = [
              junk[i],
              junk[(i * 7 + 3) % junk.length],
              junk[
                (i * 13 + 5) % junk.length
              ],
            ];
            for (let n = 0; n <= 3; n++) {
              const args = all.slice(0, n);
              calls++;
              try {
                const out =
                  (object as Record<string, (...a: unknown[]) => unknown>)
                    [method](...args);
                if (out instanceof Promise) {
                  const tag = `${at}(${args.map(show).join(", ")})`;
                  open.add(tag);
                  pending.push(
                    out.then(() => {}, (e) => check(at, args, e)).finally(() =>
                      open.delete(tag)
                    ),
                  );
                }
              } catch (error) {
                check(at, args, error);
              }
            }
          }
        }
      }
      // What waits (a request, a sleep, a wait for a connection) ends.
      for (let i = 0; i < 40; i++) await clock.advance(1_000);
      assert.deepEqual([...open], [], "calls still waiting");
      await Promise.all(pending);
      connection.destroy();
      // A connection a junk call borrowed is never given back: the
      // disconnect's grace, on this clock, must be moved past.
      const disconnected = client.disconnect({ timeoutMs: 1 });
      for (let i = 0; i < 5; i++) await clock.advance(1);
      await disconnected;
    },
  );
  assert.deepEqual(problems, []);
  assert.ok(calls > 1000, `only ${calls} calls`);
  assert.deepEqual(await watch.stop(), []);
});
