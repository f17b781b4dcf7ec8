/**
 * A Bun TLS channel closed gracefully ends its socket as soon as its bytes
 * are handed over, also when the peer keeps its side open after reading
 * them all (a legitimate half-close): Bun keeps an ended TLS socket open
 * until the peer closes too, and the adapter terminated it (a reset to a
 * peer that had everything) only after its 500 ms bound, holding the
 * process that long. Runs on Bun only.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as tls from "node:tls";
import { spawnScript } from "./support/exit/spawn.ts";

const onBun = typeof (globalThis as { Bun?: unknown }).Bun === "object";
const pem = (name: string) =>
  readFileSync(new URL(`../testing/certs/${name}`, import.meta.url), "utf8");

// Registered on Bun only (not skipped elsewhere), as runtime_bun.test.ts.
if (onBun) {
  test("Bun: a TLS channel closed after its writes ends when the peer keeps its side open, without a reset: the process was held, and the peer reset, 500 ms later", async () => {
    let received = 0;
    const ended: boolean[] = [];
    const errors: string[] = [];
    const sockets: tls.TLSSocket[] = [];
    const server = tls.createServer({
      cert: pem("server.pem"),
      key: pem("server-key.pem"),
      // Reads everything and keeps its own side open: it never closes.
      allowHalfOpen: true,
    }, (socket) => {
      sockets.push(socket);
      socket.on("data", (chunk: Uint8Array) => received += chunk.length);
      socket.on("end", () => ended.push(true));
      socket.on("error", (e: Error & { code?: string }) => {
        errors.push(e.code ?? e.message);
      });
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    try {
      const { port } = server.address() as { port: number };
      const child = spawnScript(
        fileURLToPath(
          new URL("./support/bun_tls_close_child.ts", import.meta.url),
        ),
        [String(port)],
      );
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (chunk) => stdout += chunk);
      child.stderr!.on("data", (chunk) => stderr += chunk);
      // A bound on a hang, not the timing checked.
      const watchdog = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await new Promise((resolve) => child.on("close", resolve));
      clearTimeout(watchdog);
      assert.equal(code, 0, `exit ${code}: ${stderr}`);
      const lines = stdout.trim().split("\n");
      const { exitMs } = JSON.parse(lines[lines.length - 1]);
      assert.equal(received, 64 * 1024, "every byte was delivered");
      assert.deepEqual(ended, [true], "and the close announced");
      // The reset tells the bug apart (the adapter's 500 ms bound ran out
      // and terminated the socket); the time is a guard against a hang
      // only, generous so that a loaded machine cannot fail it (the close
      // itself takes a few ms).
      assert.deepEqual(errors, [], "no reset");
      assert.ok(exitMs < 5000, `the process ended ${exitMs} ms after close()`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}
