// The README's tour, from its own text: the command that starts the
// cluster (password on stdin, TLS with a throwaway certificate written to
// the folder), the command that runs the tour with the password in its
// environment, and the tour's code, run on this runtime. Two changes
// only, so that runs on one machine cannot collide: the nodes listen on
// free ports instead of 7000-7002 (the tour's hosts follow), and the
// tour imports the package by path (a clone has no installed package).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { root } from "./support/repo.ts";
import { type Child, runCli, startCli } from "./support/cli_process.ts";

const readme = readFileSync(join(root, "README.md"), "utf8");
const tour = readme.slice(
  readme.indexOf("## A tour of the API"),
  readme.indexOf("\n## ", readme.indexOf("## A tour of the API") + 1),
);

/** The README's steps, read from its text. */
function steps() {
  const start = /^printf '([^']*)' \| npm run -s cli -- (cluster [^\n#]*)$/m
    .exec(tour);
  assert.ok(start, "the tour starts its cluster with the CLI");
  const run = /^NODEWIRE_PASSWORD=(\S+) npx deno run -A tour\.ts$/m.exec(tour);
  assert.ok(run, "the tour says how to run tour.ts");
  assert.equal(run[1], start[1], "the same password both times");
  const code = /```ts\n([\s\S]*?)```/.exec(tour);
  assert.ok(code, "the tour has its code");
  return {
    password: start[1],
    args: start[2].trim().split(/\s+/),
    code: code[1],
  };
}

/** The tour's code, importing the package by path and on `ports`. */
function tourSource(code: string, ports: number[]): string {
  const hosts = [7000, 7001, 7002].map((p) => `"127.0.0.1:${p}"`);
  for (const host of hosts) assert.ok(code.includes(host), `tour uses ${host}`);
  let source = code;
  hosts.forEach((host, i) => {
    source = source.replace(host, `"127.0.0.1:${ports[i]}"`);
  });
  const url = (file: string) => pathToFileURL(join(root, file)).href;
  return source
    .replace(/"@nodewire\/client\/testing"/g, `"${url("testing/mod.ts")}"`)
    .replace(/"@nodewire\/client"/g, `"${url("mod.ts")}"`);
}

/** Starts the cluster as the README does, on the first free run of ports. */
async function startCluster(
  args: string[],
  password: string,
  cwd: string,
): Promise<{ cluster: Child; ports: number[] }> {
  assert.ok(!args.includes("--port"), "the README uses the default ports");
  for (let attempt = 0;; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    // Bounds that add up to less than a test runner's 60 s, so a stall
    // fails here, with the children's output, instead of as a hang.
    const cluster = startCli([...args, "--port", String(base)], {
      stdin: password,
      cwd,
      timeoutMs: 50_000,
    });
    try {
      await cluster.until(/^url: .*$/m, 15_000);
      return { cluster, ports: [base, base + 1, base + 2] };
    } catch (error) {
      if (attempt >= 4 || !/cannot listen/.test(cluster.stderr)) throw error;
    }
  }
}

test("the README's tour runs end to end against the cluster its CLI command starts", async () => {
  const { password, args, code } = steps();
  assert.ok(args.includes("--password-stdin") && args.includes("--tls"));
  mkdirSync(join(root, ".tmp"), { recursive: true });
  // Under the repository, so that Node finds tsx from the child's folder.
  const dir = mkdtempSync(join(root, ".tmp", "readme-tour-"));
  let cluster: Child | undefined;
  try {
    const started = await startCluster(args, password, dir);
    cluster = started.cluster;
    assert.match(
      cluster.stdout,
      new RegExp(
        `^url: nodewire://app@${
          started.ports.map((p) => `127\\.0\\.0\\.1:${p}`).join(",")
        }/\\?tls=require$`,
        "m",
      ),
    );
    assert.ok(existsSync(join(dir, "nodewire-ca.pem")), "--ca-out wrote it");

    const script = join(dir, "tour.ts");
    writeFileSync(script, tourSource(code, started.ports));
    const r = await runCli([], {
      script,
      cwd: dir,
      env: { NODEWIRE_PASSWORD: password },
      timeoutMs: 25_000,
    });
    assert.equal(
      r.code,
      0,
      `${r.stdout}\n${r.stderr}\ncluster stderr: ${cluster.stderr}`,
    );
    const lines = r.stdout.split("\n");
    assert.ok(lines.includes("hello"), r.stdout);
    assert.ok(lines.includes("hi"), r.stdout);
    assert.match(r.stdout, /protocol: ['"]tls['"]/);
    assert.doesNotMatch(r.stdout, new RegExp(password));

    // Ctrl-C, as the README says.
    assert.equal(await cluster.stop("SIGINT"), 0, cluster.stderr);
  } finally {
    cluster?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
