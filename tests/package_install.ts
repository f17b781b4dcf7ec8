// The npm package as a Node user installs it, for the tests that use it.
// Not a test file itself: the suite finds tests by the `.test.ts` suffix.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root folder. */
export const root: string = fileURLToPath(new URL("..", import.meta.url));

const env =
  (globalThis as { process: { env: Record<string, string | undefined> } })
    .process.env;

/**
 * Runs a command to completion and returns its exit code (null when it was
 * killed at `timeoutMs`) and all it printed. Blocks the event loop: never
 * while a node in this process must answer.
 */
export function sh(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs = 120_000,
): { code: number | null; out: string } {
  const r = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: timeoutMs,
  });
  return {
    code: r.status,
    out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ?? ""}`,
  };
}

/**
 * The npm tarball: the one the test command built (NODEWIRE_TGZ), or a fresh
 * one from scripts/pack.mjs in `work`, the same way.
 */
export function packedTarball(work: string): string {
  if (env.NODEWIRE_TGZ && existsSync(env.NODEWIRE_TGZ)) return env.NODEWIRE_TGZ;
  const tgz = join(work, "nodewire.tgz");
  const r = sh("node", [
    join(root, "scripts/pack.mjs"),
    "--allow-dirty",
    "-o",
    tgz,
  ], root);
  assert.equal(r.code, 0, r.out);
  return tgz;
}

/**
 * Makes a fresh consumer project under .tmp/ and installs the tarball into it
 * with npm, offline. Returns the project's folder and the tarball's path;
 * the caller removes the folder.
 */
export function installPackage(prefix: string): { work: string; tgz: string } {
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const work = mkdtempSync(join(root, ".tmp", prefix));
  const tgz = packedTarball(work);
  writeFileSync(
    join(work, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  const install = sh("npm", [
    "install",
    "--offline",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    tgz,
  ], work);
  assert.equal(install.code, 0, install.out);
  return { work, tgz };
}
