#!/usr/bin/env node
// Builds the npm tarball a Node user installs: `deno pack` does the work
// (TypeScript to JavaScript, .d.ts, the package.json exports), then this
// script adds what `deno pack` cannot express (it writes package.json itself
// and reads no field for these from deno.json):
//
// - "bin": { "nodewire": "./cli.js" }, with a `#!/usr/bin/env node` line on
//   cli.js and its executable bit, so `npx nodewire` and `npm link` work
//   (npm's Windows shims read that line too);
// - "engines": { "node": ">=20.3" } (AbortSignal.any, src/runtime/tls.ts);
// - "sideEffects": false: importing a module only defines things, so a
//   bundler may drop what an application does not use.
//
// Source maps are left out with `--no-source-maps` (inline maps tripled the
// tarball); the script checks none slipped in.
//
//   node scripts/pack.mjs [-o out.tgz] [deno pack options, e.g. --allow-dirty]
//
// The test command builds the Node leg's package with this script, so the
// suite runs against exactly this tarball.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, posix, relative, resolve } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gunzipSync, gzipSync } from "node:zlib";

// A dev dependency: the suite and .ci/run install it with npm ci.
const ts = createRequire(import.meta.url)("typescript");

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** What the generated package.json gains. */
const PACKAGE_FIELDS = {
  bin: { nodewire: "./cli.js" },
  engines: { node: ">=20.3" },
  sideEffects: false,
};
const BIN_FILE = "package/cli.js";
const README = "package/README.md";
const DOCS_DIR = "package/docs/";
const SHEBANG = "#!/usr/bin/env node\n";

/**
 * Runs `deno pack` and rewrites its tarball in place at `output`. `args` go
 * to `deno pack` as they are. Returns the tarball's size in bytes; throws
 * when `deno pack` fails or the tarball is not what this script expects.
 */
function pack(output, args) {
  mkdirSync(dirname(output), { recursive: true });
  const local = join(root, "node_modules", ".bin", "deno");
  const deno = existsSync(local) ? local : "deno";
  const r = spawnSync(
    deno,
    ["pack", "--no-source-maps", ...args, "-o", output],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" },
  );
  const untyped = [];
  for (const line of `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")) {
    const notice = UNTYPED.exec(line.replace(ANSI, ""));
    if (notice) untyped.push(notice[1]);
    else if (line) console.log(line);
  }
  if (r.status !== 0) {
    throw new Error(`deno pack failed (${r.error?.message ?? r.status})`);
  }
  const entries = readTar(gunzipSync(readFileSync(output)))
    // The long documents stay on JSR, where the README's links lead.
    .filter((entry) => !entry.name.startsWith(DOCS_DIR));
  checkUntyped(entries, untyped);
  let sawBin = false;
  let sawManifest = false;
  for (const entry of entries) {
    if (entry.name === README) {
      entry.data = Buffer.from(linksToJsr(entry.data.toString("utf8")));
    }
    if (entry.name.endsWith(".js")) {
      entry.data = Buffer.from(tabIndented(withoutComments(entry), "x.js"));
    } else if (entry.name.endsWith(".d.ts")) {
      let types = entry.data.toString("utf8");
      types = withoutModuleDoc(types);
      entry.data = Buffer.from(tabIndented(unwrappedDocs(types), "x.d.ts"));
    }
    if (entry.name === "package/package.json") {
      const manifest = JSON.parse(entry.data.toString("utf8"));
      entry.data = Buffer.from(
        JSON.stringify({ ...manifest, ...PACKAGE_FIELDS }, null, 2) + "\n",
      );
      sawManifest = true;
    } else if (entry.name === BIN_FILE) {
      const text = entry.data.toString("utf8");
      if (!text.startsWith("#!")) entry.data = Buffer.from(SHEBANG + text);
      entry.mode = 0o755;
      sawBin = true;
    }
    if (
      entry.name.endsWith(".js") &&
      entry.data.includes("sourceMappingURL=data:")
    ) {
      throw new Error(`${entry.name} still has an inline source map`);
    }
  }
  if (!sawManifest || !sawBin) {
    throw new Error(`the tarball lacks package.json or ${BIN_FILE}`);
  }
  const packed = gzipSync(writeTar(grouped(entries)), { level: 9 });
  writeFileSync(output, packed);
  return packed.length;
}

/**
 * The entries with the JavaScript together and the .d.ts files together,
 * each in path order, after the rest (package.json first): gzip finds more
 * of what repeats within a kind than across kinds, 3 KB less. A long-name
 * header stays with the entry it names.
 */
function grouped(entries) {
  const units = [];
  let unit = [];
  for (const entry of entries) {
    unit.push(entry);
    if (!"xgL".includes(entry.type)) {
      units.push(unit);
      unit = [];
    }
  }
  if (unit.length > 0) units.push(unit);
  const name = (u) => u[u.length - 1].name;
  const kind = (u) =>
    name(u).endsWith(".d.ts") ? 2 : name(u).endsWith(".js") ? 1 : 0;
  return units
    .map((u, i) => ({ u, i }))
    .sort((a, b) =>
      kind(a.u) - kind(b.u) ||
      (kind(a.u) === 0 ? a.i - b.i : name(a.u) < name(b.u) ? -1 : 1)
    )
    .flatMap(({ u }) => u);
}

// `deno pack` writes .d.ts files from the public API's types (fast check),
// so a module no public type mentions (an implementation file such as the
// pool's roster) gets none, and it says so once per module. That is only
// harmless while no shipped .d.ts imports such a module; checkUntyped
// proves it, failing the build otherwise, and replaces the notices with one
// line.

/**
 * The JavaScript of `entry` without its comments. The JSDoc (examples and
 * all) is for readers of the source and of the .d.ts files, which keep it;
 * in the .js files it was a fifth of the packed size. TypeScript's own
 * printer removes them, so strings, templates and regular expressions that
 * look like comments are left alone; the shebang line stays.
 */
function withoutComments(entry) {
  return ts.transpileModule(entry.data.toString("utf8"), {
    fileName: entry.name,
    compilerOptions: {
      removeComments: true,
      target: ts.ScriptTarget.ESNext,
      module: ts.ModuleKind.ESNext,
    },
  }).outputText;
}

/**
 * The types of a module without its module comment (the one with
 * `@module`). An internal one's says how the source is organised, for
 * whoever works on it; an entry point's introduces it on JSR, whose pages
 * are built from the source. No editor shows either: TypeScript shows a
 * file's leading comment on no hover (microsoft/TypeScript#63695, open).
 * The declarations keep their own comments. 6.2 KB less in the tarball.
 */
function withoutModuleDoc(types) {
  const doc = /^\/\*\*(?:(?!\*\/)[\s\S])*@module(?:(?!\*\/)[\s\S])*\*\/ ?/.exec(
    types,
  );
  return doc ? types.slice(doc[0].length) : types;
}

/**
 * The doc comments of `types` with each paragraph on one line: the source
 * wraps them at 80 columns for its readers, and an editor renders them as
 * Markdown, where a line break inside a paragraph is a space. 2 KB less in
 * the tarball. A line stays on its own when it or the one before is blank,
 * a fence, inside a fence, or starts a list item, quote, table row, heading
 * or tag (`@example`, `@throws`...). Throws if anything but line breaks
 * changed.
 */
function unwrappedDocs(types) {
  const text = (line) => /^\s*\* ?(.*)$/.exec(line)?.[1];
  const starts = /^\s*([-*+>|#@]|\d+\.|```)/;
  const unwrapped = types.replace(/\/\*\*[\s\S]*?\*\//g, (doc) => {
    const lines = doc.split("\n");
    const out = [lines[0]];
    let fenced = false;
    for (let i = 1; i < lines.length; i++) {
      const line = text(lines[i]);
      const before = out.length > 1 ? text(out[out.length - 1]) : undefined;
      if (line !== undefined && /^\s*```/.test(line)) fenced = !fenced;
      const joins = !fenced && i < lines.length - 1 && line?.trim() &&
        !starts.test(line) && before?.trim() && !/^\s*```/.test(before);
      if (joins) out[out.length - 1] += ` ${line.trim()}`;
      else out.push(lines[i]);
    }
    return out.join("\n");
  });
  const words = (t) => t.replace(/\n[ \t]*\*(?!\/)[ \t]?/g, " ").split(/\s+/);
  if (words(unwrapped).join(" ") !== words(types).join(" ")) {
    throw new Error("unwrapping doc comments changed more than line breaks");
  }
  return unwrapped;
}

/**
 * `code` indented by tabs instead of TypeScript's four spaces a level:
 * 5 KB less in the tarball, as readable. Lines that begin inside a string
 * or template literal keep their spaces, which are part of the value;
 * anywhere else JavaScript ignores indentation, and the .d.ts files'
 * comments are read from the `*` on.
 */
function tabIndented(code, name) {
  const file = ts.createSourceFile(name, code, ts.ScriptTarget.ESNext);
  const literals = [];
  const visit = (node) => {
    if (
      ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateExpression(node) || ts.isTemplateLiteralTypeNode(node)
    ) {
      literals.push([node.getStart(file), node.end]);
    } else ts.forEachChild(node, visit);
  };
  visit(file);
  const inLiteral = (at) => literals.some(([s, e]) => s < at && at < e);
  let at = 0;
  return code.split("\n").map((line) => {
    const start = at;
    at += line.length + 1;
    if (inLiteral(start)) return line;
    const spaces = line.length - line.trimStart().length;
    if (line.slice(0, spaces).trim() !== "" || spaces < 4) return line;
    return "\t".repeat(spaces >> 2) + " ".repeat(spaces & 3) +
      line.slice(spaces);
  }).join("\n");
}

/**
 * The README with its links to docs/ pointing at the same files on JSR,
 * which publishes them (deno.json's publish.include): the npm tarball
 * leaves them out to stay lean, so a relative link would lead nowhere.
 */
function linksToJsr(text) {
  const { name, version } = JSON.parse(
    readFileSync(join(root, "deno.json"), "utf8"),
  );
  return text.replaceAll(
    "](docs/",
    `](https://jsr.io/${name}/${version}/docs/`,
  );
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const UNTYPED =
  /^Could not generate types for 'file:\/\/(.+?)'\. Types will not be included for this module\.$/;

function checkUntyped(entries, untyped) {
  if (untyped.length === 0) return;
  const shipped = (file) =>
    "package/" + relative(root, file).replace(/\.ts$/, ".js");
  const missing = new Set(untyped.map(shipped));
  const dangling = [];
  for (const entry of entries) {
    if (!entry.name.endsWith(".d.ts")) continue;
    const code = entry.data.toString("utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    for (const m of code.matchAll(/(?:from|import\()\s*["'](\.[^"']+)["']/g)) {
      const target = posix.join(posix.dirname(entry.name), m[1]);
      if (missing.has(target)) dangling.push(`${entry.name} -> ${target}`);
    }
  }
  if (dangling.length > 0) {
    throw new Error(
      "published types import modules deno pack could not type:\n  " +
        dangling.join("\n  "),
    );
  }
  console.log(
    `pack: ${missing.size} internal modules ship without .d.ts ` +
      "(deno pack types the public API only; no published type imports them)",
  );
}

// A minimal tar reader and writer: enough to change two short-named regular
// files of the (GNU-format) archive `deno pack` writes. Every other entry
// keeps its header bytes as they are.

function octal(header, offset, length) {
  const text = header.subarray(offset, offset + length).toString("latin1");
  return parseInt(text.replace(/\0.*$/s, "").trim() || "0", 8);
}

function readTar(buffer) {
  const entries = [];
  let offset = 0;
  let extended = false; // a pax or GNU long-name header precedes this entry
  while (offset + 512 <= buffer.length) {
    const header = Buffer.from(buffer.subarray(offset, offset + 512));
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] || 0x30);
    const name = header.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const data = Buffer.from(
      buffer.subarray(offset + 512, offset + 512 + size),
    );
    entries.push({ header, name, type, data, extended, mode: undefined });
    extended = "xgL".includes(type);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

function writeTar(entries) {
  const blocks = [];
  for (const entry of entries) {
    const { header, data } = entry;
    if (entry.mode !== undefined || data.length !== octal(header, 124, 12)) {
      if (entry.extended || entry.type !== "0") {
        throw new Error(`cannot rewrite ${entry.name}: not a plain ustar file`);
      }
      if (entry.mode !== undefined) field(header, 100, 8, entry.mode);
      field(header, 124, 12, data.length);
      header.fill(0x20, 148, 156); // checksum is summed with its field blank
      const sum = header.reduce((a, b) => a + b, 0);
      header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
    }
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024)); // two zero blocks end the archive
  return Buffer.concat(blocks);
}

function field(header, offset, length, value) {
  const text = value.toString(8).padStart(length - 1, "0") + "\0";
  header.write(text, offset, length, "latin1");
}

const args = process.argv.slice(2);
const { name, version } = JSON.parse(
  readFileSync(join(root, "deno.json"), "utf8"),
);
// deno pack's own default: @scope/name 1.0.0 -> ./scope-name-1.0.0.tgz
let output = resolve(
  `${name.replace("@", "").replace("/", "-")}-${version}.tgz`,
);
for (let i = 0; i < args.length; i++) {
  if (args[i] === "-o" || args[i] === "--output") {
    output = resolve(args[i + 1] ?? "");
    args.splice(i--, 2);
  } else if (args[i].startsWith("--output=")) {
    output = resolve(args[i].slice("--output=".length));
    args.splice(i--, 1);
  }
}
try {
  const size = pack(output, args);
  console.log(
    `${output}: ${
      (size / 1024).toFixed(1)
    } KiB, with bin, engines and sideEffects`,
  );
} catch (error) {
  console.error(`pack: ${error.message}`);
  process.exitCode = 1;
}
