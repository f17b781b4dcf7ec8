// Node module hooks for the Node leg of the test suite: every import of the
// library's sources (src/**.ts, testing/**.ts) resolves to the JavaScript that
// `deno pack` built (NODEWIRE_DIST, the extracted package folder), so the
// tests run against what a Node user installs, not against the TypeScript.
// Test files themselves still load through tsx.
import { register } from "node:module";
import { pathToFileURL } from "node:url";

const dist = process.env.NODEWIRE_DIST;
if (!dist) {
  throw new Error("NODEWIRE_DIST is not set: build with deno pack first");
}
register("./dist-resolve.mjs", import.meta.url, {
  data: {
    root: pathToFileURL(new URL("..", import.meta.url).pathname).href,
    dist: pathToFileURL(dist + "/").href,
  },
});
