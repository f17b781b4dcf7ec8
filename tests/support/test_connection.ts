import { Connection } from "../../src/connection/connection.ts";
import type { RuntimeAdapter } from "../../src/runtime/types.ts";
import { startTestNode, type TestNode } from "../../testing/node.ts";

/**
 * A reference node on `adapter` and one Connection to it; `close()` ends
 * the connection, then the node.
 */
export async function openTestConnection(adapter: RuntimeAdapter): Promise<{
  node: TestNode;
  connection: Connection;
  close(): Promise<void>;
}> {
  const node = await startTestNode({ nodeId: "n", runtime: adapter });
  const connection = await Connection.connect({
    adapter,
    hostname: "127.0.0.1",
    port: node.port,
  });
  return {
    node,
    connection,
    async close() {
      await connection.close();
      await node.close();
    },
  };
}
