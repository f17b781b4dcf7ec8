// The Node leg of the test command must run against the JavaScript that
// `deno pack` builds (scripts/dist-hooks.mjs), not against the TypeScript.
import { test } from "node:test";
import assert from "node:assert/strict";

const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  process?: { env: Record<string, string | undefined> };
};

test("each runtime loads the library from where its users get it", () => {
  const resolved = import.meta.resolve("../src/clock.ts");
  if (g.Deno || g.Bun) {
    // Deno and Bun users import the TypeScript sources from JSR.
    assert.match(resolved, /\/src\/clock\.ts$/);
  } else {
    assert.ok(
      g.process?.env.NODEWIRE_DIST,
      "run Node through `npm test` (or set NODEWIRE_DIST and --import ./scripts/dist-hooks.mjs)",
    );
    assert.match(resolved, /\/package\/src\/clock\.js$/);
  }
});
