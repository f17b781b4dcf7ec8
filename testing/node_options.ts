/**
 * What {@linkcode startTestNode} takes: the options type, the rule each
 * option's value must pass, and the checks made once, at the door, before
 * the node is built from what was read.
 *
 * @module
 */

import type { Clock } from "../src/clock.ts";
import { bool, integer, text } from "../src/config/options.ts";
import {
  MAX_DATAGRAM_SIZE,
  MIN_DATAGRAM_SIZE,
} from "../src/protocol/datagram.ts";
import { MAX_FRAME_SIZE_LIMIT, MIN_FRAME_SIZE } from "../src/protocol/frame.ts";
import type { ProtocolType } from "../src/protocol_type.ts";
import type { RuntimeAdapter, RuntimeName } from "../src/runtime/types.ts";
import { type CredentialStore, isStore, readUsers } from "./auth.ts";
import {
  checkOptions,
  clock,
  count,
  nodeId,
  type OptionNames,
  port,
  protocols,
  runtime,
} from "./options.ts";

/**
 * Options for {@linkcode startTestNode}.
 *
 * @example
 * ```ts
 * import { startTestNode } from "@nodewire/client/testing";
 * const node = await startTestNode({
 *   nodeId: "auth-node",
 *   credentials: { app: "s3cret" }, // SCRAM required
 *   maxFrameSize: 64 * 1024,
 * });
 * console.log(node.address);
 * await node.close();
 * ```
 */
export interface TestNodeOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Address to bind. Default `127.0.0.1`. */
  hostname?: string;
  /** The node's id, echoed in every reply. Default `node-<port>`. */
  nodeId?: string;
  /** Adapter to listen with. Default: the runtime's native one. */
  runtime?: RuntimeName | RuntimeAdapter;
  /** Largest payload accepted: 1024 bytes to 1 GiB. Default 16 MiB. */
  maxFrameSize?: number;
  /** Clock for SLEEP. Default the system clock. */
  clock?: Clock;
  /**
   * Require SCRAM-SHA-256 authentication against these users (name to
   * password, or a prepared store). Until a connection authenticated, its
   * requests get ERROR 6 (AuthRequired). Default: no authentication.
   */
  credentials?: Record<string, string> | CredentialStore;
  /**
   * The transport protocols the node advertises in HELLO_OK and
   * NEGOTIATE_OK: at least one. Default `["tcp"]`. Advertising one the
   * node does not serve is for negotiation tests only.
   */
  protocols?: ProtocolType[];
  /**
   * The UDP port, when `protocols` lists udp: the node serves UDP there
   * (0 picks a free one) if its adapter can open datagram sockets, and
   * advertises it in NEGOTIATE_OK. Default: the TCP port's number, or a
   * free port when that one is taken.
   */
  udpPort?: number;
  /** Throw away every Nth valid UDP datagram received, to simulate loss. */
  udpDropEvery?: number;
  /** Largest UDP reply datagram, in bytes. Default 65507. */
  udpMaxDatagramSize?: number;
  /**
   * Whether the node supports `"udp-batch"` (several frames per datagram)
   * and agrees to it when a client offers it in HELLO. Default true; false
   * plays a node from before the feature: HELLO_OK carries no `features`.
   */
  udpBatch?: boolean;
  /**
   * Serve TLS with this certificate and key (PEM). When `protocols` lists
   * tls and negotiation selects it, the node answers NEGOTIATE_OK and
   * then runs the server side of the TLS handshake on the same stream;
   * with `direct`, every connection is TLS from the first byte. The key
   * is never logged; a key that does not go with the certificate is
   * refused at start, as `listen()` refuses it. Default: no TLS
   * (advertising tls anyway is for negotiation tests only).
   */
  tls?: { cert: string; key: string; direct?: boolean };
}

const TEST_NODE_OPTIONS: OptionNames<TestNodeOptions> = {
  port,
  hostname: text,
  nodeId,
  runtime,
  maxFrameSize: integer(MIN_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
  clock,
  // Read by readUsers, once, into the copy the node keeps.
  credentials: true,
  protocols,
  udpPort: port,
  udpDropEvery: count,
  udpMaxDatagramSize: integer(MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE),
  udpBatch: bool,
  tls: true,
};
const TLS_OPTIONS: OptionNames<NonNullable<TestNodeOptions["tls"]>> = {
  cert: text,
  key: text,
  direct: bool,
};

/**
 * `options` checked and read once, as {@linkcode startTestNode} builds a
 * node from them: credentials given as a record copied, so that the node
 * keeps what was checked.
 *
 * @throws {ConfigError} for an unknown option or a bad value.
 */
export function readTestNodeOptions(
  options: TestNodeOptions,
): TestNodeOptions {
  const read = checkOptions<TestNodeOptions>(
    "startTestNode options",
    options,
    TEST_NODE_OPTIONS,
  );
  // A revoked proxy is no store: readUsers says it could not be read.
  if (read.credentials !== undefined && !isStore(read.credentials)) {
    read.credentials = Object.fromEntries(readUsers(
      read.credentials,
      "startTestNode options.credentials",
      "expected user names to passwords or a CredentialStore",
    ));
  }
  if (read.tls !== undefined) {
    // Without both, every TLS handshake failed, far from the option.
    read.tls = checkOptions(
      "startTestNode options.tls",
      read.tls,
      TLS_OPTIONS,
      {
        needs: ["cert", "key"],
      },
    );
  }
  return read;
}
