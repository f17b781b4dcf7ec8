/**
 * Fails, naming each one, when an export of a package entry point has no
 * `@example` in its JSDoc. `deno doc --lint` only asks for some JSDoc; the
 * house style asks every export to show how a user meets it.
 *
 * Usage: deno run --allow-read --allow-run scripts/check-examples.ts
 *
 * The entry points are read from deno.json's `exports`, so a new sub-path is
 * checked without anyone adding it here. Exits 1 when any export lacks one.
 *
 * @module
 */

/** The parts of `deno doc --json` (format version 2) this check reads. */
interface DocJson {
  version: number;
  nodes: Record<string, {
    symbols?: {
      name: string;
      declarations: {
        location: { filename: string; line: number };
        jsDoc?: { tags?: { kind: string }[] };
      }[];
    }[];
  }>;
}

const root = new URL("../", import.meta.url);
const manifest = JSON.parse(
  await Deno.readTextFile(new URL("deno.json", root)),
) as { exports: Record<string, string> };
const entries = Object.values(manifest.exports);

const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--json", ...entries],
  cwd: root,
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
}).output();
if (code !== 0) {
  console.error(new TextDecoder().decode(stderr));
  console.error(`deno doc --json exited with ${code}`);
  Deno.exit(1);
}
const doc = JSON.parse(new TextDecoder().decode(stdout)) as DocJson;
// A format change would otherwise read as "no symbols, all fine".
if (doc.version !== 2) {
  console.error(
    `deno doc --json: expected format version 2, got ${doc.version}`,
  );
  Deno.exit(1);
}

const missing: string[] = [];
let checked = 0;
for (const entry of entries) {
  const url = new URL(entry, root).href;
  const node = doc.nodes[url];
  if (!node) {
    console.error(`deno doc --json gave nothing for ${entry}`);
    Deno.exit(1);
  }
  for (const symbol of node.symbols ?? []) {
    checked++;
    // A merged symbol (a const and a type of one name, overloads) is one
    // entry on the docs page: one example among its declarations is enough.
    const hasExample = symbol.declarations.some((d) =>
      d.jsDoc?.tags?.some((tag) => tag.kind === "example")
    );
    if (hasExample) continue;
    const where = symbol.declarations[0]?.location;
    const file = where
      ? ` (${where.filename.replace(root.href, "")}:${where.line})`
      : "";
    missing.push(`${entry}: ${symbol.name}${file}`);
  }
}

if (missing.length > 0) {
  console.error(`${missing.length} exports have no @example in their JSDoc:`);
  for (const line of missing) console.error(`  ${line}`);
  Deno.exit(1);
}
console.log(
  `${checked} exports of ${entries.length} entry points: all have an @example`,
);
