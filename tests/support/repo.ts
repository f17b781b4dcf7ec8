// The repository as files, for the tests that read it as text: the layer
// map, the public surface and the doc examples.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root folder. */
export const root: string = fileURLToPath(new URL("../..", import.meta.url));

/** Every file under `dir` whose name ends with `ext`, as `dir/...` paths. */
export function walk(dir: string, ext = ".ts"): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) out.push(...walk(path, ext));
    else if (name.endsWith(ext)) out.push(path);
  }
  return out;
}

/** deno.json's `exports`: sub-path (`.`, `./core`, ...) to its file. */
export function packageExports(): Record<string, string> {
  return JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports;
}

/** The entry files, as `mod.ts`, `testing/mod.ts`, ... */
export function entryFiles(): string[] {
  return Object.values(packageExports()).map((f) => f.replace(/^\.\//, ""));
}
