// The resolve hook registered by dist-hooks.mjs.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

let root = "";
let dist = "";

export function initialize(data) {
  root = data.root;
  dist = data.dist;
}

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const url = resolved.url;
  if (url.startsWith(root) && url.endsWith(".ts")) {
    const rel = url.slice(root.length);
    if (
      rel.startsWith("src/") || rel.startsWith("testing/") ||
      rel === "mod.ts" || rel === "cli.ts"
    ) {
      const target = dist + rel.replace(/\.ts$/, ".js");
      if (!existsSync(fileURLToPath(target))) {
        // Test-only helpers under testing/ that the package does not ship
        // load from source; the library itself must come from the package.
        if (rel.startsWith("testing/")) return resolved;
        throw new Error(`${rel} is not in the packed package (${target})`);
      }
      return { url: target, format: "module", shortCircuit: true };
    }
  }
  return resolved;
}
