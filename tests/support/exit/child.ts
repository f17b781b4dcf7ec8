// One exit scenario in a process of its own, run by tests/exit.test.ts:
//
//   child.ts <scenario> <black hole host:port> <slow node host:port>
//
// It prints `mark <epoch ms>` right after the scenario's last call and
// `fail <why>` for a broken expectation, then lets the process end by
// itself: no process.exit, so whatever is left running keeps it alive and
// the parent sees the late exit.
import process from "node:process";
import { type ExitContext, scenarios } from "./scenarios.ts";

const [name, blackHole, slowNode] = process.argv.slice(2);
const scenario = scenarios[name];
if (scenario === undefined) throw new Error(`no scenario named ${name}`);

let marked = false;
const ctx: ExitContext = {
  blackHole,
  slowNode,
  mark() {
    marked = true;
    console.log(`mark ${Date.now()}`);
  },
  fail(message) {
    console.log(`fail ${message.replaceAll("\n", " ")}`);
  },
  note(message) {
    console.log(`note ${message.replaceAll("\n", " ")}`);
  },
};
await scenario(ctx);
if (!marked) ctx.fail("the scenario never marked its last call");
