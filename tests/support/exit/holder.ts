// Run as a child by black_hole.ts: listens on 127.0.0.1 with a backlog of
// one, prints the port and waits. The parent then stops this process
// (SIGSTOP), so nothing is ever accepted.
import { createServer } from "node:net";

const server = createServer();
server.listen({ host: "127.0.0.1", port: 0, backlog: 1 }, () => {
  const address = server.address();
  if (address === null || typeof address === "string") {
    throw new Error("no port");
  }
  console.log(`port ${address.port}`);
});
