// A loopback port that never accepts: a listener whose process is stopped
// and whose backlog is full. The kernel drops further SYNs, so a connect
// to it neither succeeds nor fails until the SYN retries run out (about
// two minutes on Linux): what a dead host or a dropping firewall looks
// like, without leaving loopback.
import { connect, type Socket } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { spawnScript } from "./spawn.ts";

/** A running black hole; `close()` kills the stopped listener. */
export interface BlackHole {
  readonly port: number;
  /**
   * Whether the stopped listener still exists. Once it is gone the port
   * refuses, and a scenario meant for a black hole tests a refusal.
   */
  alive(): boolean;
  close(): void;
}

/** Connects; true once connected, false when nothing happens in `ms`. */
function tryConnect(
  port: number,
  ms: number,
  into: Socket[],
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    into.push(socket);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Starts a black hole. Its listener runs in a child process of this
 * runtime, so stopping it cannot stop this one; the backlog is filled from
 * here until a connect goes unanswered. Bun's node:net ignores the backlog
 * asked for (512 connections then), Deno and Node honour it (2).
 */
export async function startBlackHole(): Promise<BlackHole> {
  const holder = spawnScript(
    fileURLToPath(new URL("./holder.ts", import.meta.url)),
    [],
  );
  const sockets: Socket[] = [];
  const close = () => {
    holder.kill("SIGKILL");
    for (const socket of sockets) socket.destroy();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      holder.stdout!.on("data", (chunk) => {
        out += chunk;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      holder.stderr!.on("data", (chunk) => (out += chunk));
      holder.once(
        "exit",
        (code) =>
          reject(
            new Error(`the black hole's listener exited (${code}): ${out}`),
          ),
      );
    });
    process.kill(holder.pid!, "SIGSTOP");
    for (let i = 0; i < 2000; i++) {
      if (!(await tryConnect(port, 250, sockets))) {
        const alive = () =>
          holder.exitCode === null && holder.signalCode === null;
        return { port, alive, close };
      }
    }
    throw new Error("the black hole's backlog never filled");
  } catch (error) {
    close();
    throw error;
  }
}
