/**
 * The negotiation step of the handshake: NEGOTIATE / NEGOTIATE_OK, both
 * sides choosing by the same rule, and a node that predates negotiation.
 *
 * @module
 */

import type { Connection } from "../connection/connection.ts";
import { NegotiationError } from "../errors.ts";
import { MessageType } from "../protocol/frame.ts";
import { encodeJson, type HelloOkPayload } from "../protocol/messages.ts";
import {
  decodeNegotiateOk,
  selectProtocol,
  sortProtocols,
  type TlsPolicy,
} from "../protocol/negotiation.ts";
import type { ProtocolType } from "../protocol_type.ts";
import type { NegotiationResult } from "./shapes.ts";
import { receive } from "./step_reply.ts";

/**
 * Runs NEGOTIATE / NEGOTIATE_OK on a connection that has completed HELLO.
 * Both sides apply {@linkcode selectProtocol} to the offer and the node's
 * set; a node whose choice differs from the client's is refused.
 *
 * A node that lists no `protocols` in HELLO_OK predates negotiation: it is
 * not sent NEGOTIATE, and the stream already open counts as TCP, or as TLS
 * when the client connected with TLS directly.
 *
 * @throws {NegotiationError} when the client can offer nothing its policy
 *   allows, when the sets share nothing, or when the choices differ.
 * @throws {ProtocolError} when the node answers with something else.
 */
export async function negotiateProtocol(
  connection: Connection,
  hello: HelloOkPayload,
  options: {
    offer: readonly ProtocolType[];
    allowed: readonly ProtocolType[];
    tlsPolicy?: TlsPolicy;
    signal: AbortSignal;
  },
): Promise<NegotiationResult> {
  const offer = sortProtocols(options.offer);
  const advertised = sortProtocols(hello.protocols ?? []);
  const fail = (detail: string, nodeProtocols = advertised) =>
    new NegotiationError({
      address: connection.address,
      clientProtocols: offer,
      allowedProtocols: options.allowed,
      nodeProtocols,
      detail,
    });
  if (offer.length === 0) {
    const missing = options.allowed.join(", ");
    throw fail(
      options.tlsPolicy === "require"
        ? "TLS is required, but this client has no TLS transport, and it " +
          "never falls back to a weaker protocol"
        : `the client's policy allows only ${missing || "nothing"}, and ` +
          "this client has no transport for it",
    );
  }
  if (hello.protocols === undefined) {
    // The stream it opened is kept: TLS when it connected with TLS
    // directly (docs/PROTOCOL.md), which "tcp" refused under "require".
    const kept = connection.encrypted ? "tls" : "tcp";
    if (!offer.includes(kept)) {
      throw fail(`the node predates negotiation and serves only ${kept}`, [
        kept,
      ]);
    }
    return { protocol: kept, clientProtocols: offer, nodeProtocols: [kept] };
  }
  const sent = connection.sendMessage(
    MessageType.Negotiate,
    encodeJson({ protocols: offer }),
  );
  // Should the node choose TLS, nothing may be read past NEGOTIATE_OK
  // before the TLS handshake takes the socket (see Connection.startTls).
  const mayUpgrade = offer.includes("tls") && !connection.encrypted;
  const reply = await receive(connection, sent, MessageType.NegotiateOk, {
    signal: options.signal,
    pauseReading: mayUpgrade,
  });
  const answer = decodeNegotiateOk(reply.payload);
  const expected = selectProtocol(offer, answer.protocols);
  if (expected === undefined && answer.selected === null) {
    throw fail("no protocol in common", answer.protocols);
  }
  if (answer.selected !== (expected ?? null)) {
    throw fail(
      `the node chose ${answer.selected ?? "nothing"}, but the client's ` +
        `rule gives ${expected ?? "nothing"}`,
      answer.protocols,
    );
  }
  const result: NegotiationResult = {
    protocol: expected!,
    clientProtocols: offer,
    nodeProtocols: answer.protocols,
  };
  if (answer.udpPort !== undefined) result.udpPort = answer.udpPort;
  if (answer.udpToken !== undefined) result.udpToken = answer.udpToken;
  if (mayUpgrade && result.protocol !== "tls") connection.resumeReading();
  return result;
}
