// The layer map of docs/ARCHITECTURE.md, enforced: every import in src/ and
// in the entry points is read, and the test fails on any import cycle and on
// any import from one layer into a layer it may not use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { entryFiles, root, walk } from "./support/repo.ts";

/**
 * Each layer and the layers it may import (its own files are always
 * allowed). Kept in the same order as the table in docs/ARCHITECTURE.md:
 * lower layers first.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  "src/protocol_type.ts": [],
  "src/events.ts": [],
  "src/errors": ["src/protocol_type.ts"],
  // Refuses a value that is not a string with an InvalidArgumentError.
  "src/secret.ts": ["src/errors"],
  "src/runtime": ["src/errors"],
  "src/clock": ["src/runtime"],
  "src/protocol": ["src/errors", "src/protocol_type.ts"],
  "src/auth": ["src/errors", "src/secret.ts"],
  "src/diagnostics": ["src/runtime", "src/protocol_type.ts"],
  "src/config": [
    "src/errors",
    "src/protocol_type.ts",
    "src/secret.ts",
    "src/clock",
    "src/runtime",
    "src/protocol",
  ],
  "src/connection": [
    "src/errors",
    "src/protocol_type.ts",
    "src/events.ts",
    "src/clock",
    "src/runtime",
    "src/protocol",
    "src/config",
  ],
  "src/pool": ["src/errors", "src/events.ts", "src/clock", "src/config"],
  "src/handshake": [
    "src/errors",
    "src/protocol_type.ts",
    "src/secret.ts",
    "src/clock",
    "src/runtime",
    "src/protocol",
    "src/auth",
    "src/config",
    "src/connection",
  ],
  "src/cluster": [
    "src/errors",
    "src/protocol_type.ts",
    "src/secret.ts",
    "src/events.ts",
    "src/clock",
    "src/runtime",
    "src/protocol",
    "src/config",
    "src/connection",
    "src/pool",
    "src/handshake",
    "src/diagnostics",
  ],
  "src/client": [
    "src/errors",
    "src/protocol_type.ts",
    "src/secret.ts",
    "src/events.ts",
    "src/clock",
    "src/runtime",
    "src/protocol",
    "src/config",
    "src/connection",
    "src/pool",
    "src/handshake",
    "src/cluster",
    "src/diagnostics",
  ],
  "src/otel": [
    "src/errors",
    "src/clock",
    "src/config",
    "src/pool",
    "src/diagnostics",
    "src/client",
  ],
  "src/cli": [
    "src/errors",
    "src/clock",
    "src/runtime",
    "src/auth",
    "src/config",
    "src/client",
  ],
};

/**
 * Files at src/'s root that belong to a layer named for a folder: the
 * errors index, and the two clock files, which form one layer.
 */
const ALIASES: Record<string, string> = {
  "src/errors.ts": "src/errors",
  "src/clock.ts": "src/clock",
  "src/tick_clock.ts": "src/clock",
};

function layerOf(file: string): string | undefined {
  if (ALIASES[file]) return ALIASES[file];
  let best: string | undefined;
  for (const layer of Object.keys(MAY_IMPORT)) {
    if (file === layer || file.startsWith(layer + "/")) {
      if (!best || layer.length > best.length) best = layer;
    }
  }
  return best;
}

/** Relative imports of a file, from code only (JSDoc examples are text). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const specs = [
    ...code.matchAll(/\bfrom\s+["'](\.{1,2}\/[^"']+)["']/g),
    ...code.matchAll(/\bimport\s*\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g),
    ...code.matchAll(/^\s*import\s+["'](\.{1,2}\/[^"']+)["']/gm),
  ].map((m) => m[1]);
  return [...new Set(specs)].map((spec) =>
    relative(root, normalize(join(root, dirname(file), spec)))
  );
}

const sources = walk("src");
const graph = new Map<string, string[]>();
for (const file of new Set([...sources, ...entryFiles(), ...walk("testing")])) {
  graph.set(file, importsOf(file));
}

/** Every cycle, each as the list of files around it (Tarjan's SCCs). */
function cycles(): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
      }
    }
    if (low.get(v) === indexOf.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) {
        found.push(scc.sort());
      }
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return found;
}

test("src/ and the entry points import each other without a cycle", () => {
  assert.deepEqual(cycles(), []);
});

test("every file in src/ belongs to a layer of the map", () => {
  const homeless = sources.filter((f) => layerOf(f) === undefined);
  assert.deepEqual(homeless, []);
});

test("every import in src/ points to a layer the map allows", () => {
  const wrong: string[] = [];
  for (const file of sources) {
    const from = layerOf(file)!;
    for (const target of graph.get(file) ?? []) {
      if (!target.startsWith("src/")) {
        wrong.push(`${file} -> ${target} (outside src/)`);
        continue;
      }
      const to = layerOf(target);
      if (to === from) continue;
      if (!to || !MAY_IMPORT[from].includes(to)) {
        wrong.push(`${file} -> ${target} (${from} may not import ${to})`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test("the layer map is acyclic, so lower layers never reach up", () => {
  const seen = new Set<string>();
  const active = new Set<string>();
  const up: string[] = [];
  const visit = (layer: string, path: string[]) => {
    if (active.has(layer)) up.push([...path, layer].join(" -> "));
    if (seen.has(layer)) return;
    seen.add(layer);
    active.add(layer);
    for (const next of MAY_IMPORT[layer]) visit(next, [...path, layer]);
    active.delete(layer);
  };
  for (const layer of Object.keys(MAY_IMPORT)) visit(layer, []);
  assert.deepEqual(up, []);
});

test("the import reader sees static, dynamic and re-export imports", () => {
  // A check on the checker: it must find imports, or the tests above could
  // pass on an empty graph.
  assert.ok(graph.get("src/runtime/detect.ts")!.length >= 3);
  assert.ok(sources.length > 40);
});
