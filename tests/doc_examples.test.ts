// Every code example a user can read (the `@example` blocks of the
// sources, the README and docs/) imports by package specifier, so it can be
// copied into a project as it is. That they also type-check is the static
// step `deno check --doc` / `--doc-only` of scripts/test-all.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { entryFiles, packageExports, root, walk } from "./support/repo.ts";

const specifiers = Object.keys(packageExports()).map((key) =>
  key === "." ? "@nodewire/client" : `@nodewire/client/${key.slice(2)}`
);

interface Block {
  where: string;
  code: string;
}

/** The fenced TypeScript blocks of JSDoc comments in a source file. */
function sourceBlocks(file: string): Block[] {
  const text = readFileSync(join(root, file), "utf8");
  const blocks: Block[] = [];
  for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const lines = comment[0].split("\n").map((l) => l.replace(/^\s*\* ?/, ""));
    fenced(lines.join("\n"), file, comment.index!, text, blocks);
  }
  return blocks;
}

/** The fenced TypeScript blocks of a Markdown file. */
function markdownBlocks(file: string): Block[] {
  const text = readFileSync(join(root, file), "utf8");
  const blocks: Block[] = [];
  fenced(text, file, 0, text, blocks);
  return blocks;
}

function fenced(
  text: string,
  file: string,
  offset: number,
  whole: string,
  into: Block[],
): void {
  for (const m of text.matchAll(/```(ts|typescript)([^\n]*)\n([\s\S]*?)```/g)) {
    const line = whole.slice(0, offset).split("\n").length;
    into.push({ where: `${file}:${line}`, code: m[3] });
  }
}

const sources = [
  ...new Set([...walk("src"), ...walk("testing"), ...entryFiles()]),
];
const markdown = ["README.md", ...walk("docs", ".md")];
const blocks = [
  ...sources.flatMap(sourceBlocks),
  ...markdown.flatMap(markdownBlocks),
];

test("the examples are found (a reader that finds none would pass anything)", () => {
  assert.ok(blocks.length > 150, `only ${blocks.length} examples found`);
});

test("no example imports by relative path", () => {
  const relative = blocks
    .filter((b) => /\bfrom\s+["']\.\.?\//.test(b.code))
    .map((b) => b.where);
  assert.deepEqual(relative, []);
});

test("examples import only the package's own entry points (or node: built-ins, or the application's OpenTelemetry)", () => {
  const wrong: string[] = [];
  for (const b of blocks) {
    for (const m of b.code.matchAll(/\bfrom\s+["']([^"']+)["']/g)) {
      const spec = m[1];
      if (spec.startsWith("node:") || specifiers.includes(spec)) continue;
      // The ./otel set-up example shows the application's own SDK.
      if (spec.startsWith("@opentelemetry/")) continue;
      wrong.push(`${b.where}: ${spec}`);
    }
  }
  assert.deepEqual(wrong, []);
});
