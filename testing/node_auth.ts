/**
 * The node's side of one session's SCRAM-SHA-256 exchange: AUTH_START
 * answered with AUTH_CHALLENGE, AUTH_FINAL with AUTH_OK, and a failure
 * refusing the whole connection. A message out of turn breaks the
 * protocol: it throws, and the session drops the client for it.
 *
 * @module
 */

import type { FrameWriter } from "../src/connection/frame_writer.ts";
import { AuthenticationError } from "../src/errors.ts";
import { type Message, MessageType } from "../src/protocol/frame.ts";
import {
  decodeJson,
  encodeError,
  encodeJson,
  RemoteErrorCode,
} from "../src/protocol/messages.ts";
import type { ByteChannel } from "../src/runtime/types.ts";
import { SCRAM_SHA_256 } from "../src/auth/scram.ts";
import { type CredentialStore, ScramServer } from "./auth.ts";
import type { TestNodeStats } from "./node_stats.ts";

/** What an exchange uses of its node. */
export interface AuthHost {
  /** The users the node knows; none when it does not authenticate. */
  users(): CredentialStore | undefined;
  /** Where the exchanges are counted. */
  readonly stats: Pick<
    TestNodeStats,
    "authAttempts" | "authSuccesses" | "authFailures"
  >;
}

/** What an exchange uses of its session. */
export interface AuthSession {
  /** Whether the node still holds the session: no answer goes to one gone. */
  readonly live: boolean;
  readonly writer: FrameWriter;
  readonly channel: ByteChannel;
}

/** One session's authentication, from none to done. */
export class SessionAuth {
  // "challenging" and "finishing" wait on crypto.
  #state: "none" | "challenging" | "challenged" | "finishing" | "done" = "none";
  #scram: ScramServer | undefined;
  readonly #session: AuthSession;
  readonly #host: AuthHost;

  /** The exchange of `session`, against `host`'s users. */
  constructor(session: AuthSession, host: AuthHost) {
    this.#session = session;
    this.#host = host;
  }

  /** Whether an exchange began (and has not failed). */
  get started(): boolean {
    return this.#state !== "none";
  }

  /** Whether the session authenticated. */
  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * Takes an AUTH_START or AUTH_FINAL.
   *
   * @throws {Error} for one out of turn.
   */
  handle(message: Message): void {
    const store = this.#host.users();
    if (store === undefined) {
      return this.#closeWithError(
        RemoteErrorCode.Unsupported,
        "this node does not authenticate",
      );
    }
    const body = decodeJson(message.payload, "AUTH");
    const text = typeof body.message === "string" ? body.message : undefined;
    let step: Promise<void>;
    if (message.type === MessageType.AuthStart) {
      if (this.#state !== "none") {
        throw new Error("AUTH_START comes once per connection");
      }
      this.#host.stats.authAttempts++;
      if (body.mechanism !== SCRAM_SHA_256) {
        return this.#failed(
          `unsupported mechanism ${String(body.mechanism)}`,
        );
      }
      const scram = new ScramServer(store);
      this.#scram = scram;
      this.#state = "challenging";
      step = scram.serverFirstMessage(text ?? "").then((serverFirst) => {
        this.#state = "challenged";
        this.#pushJson(MessageType.AuthChallenge, message.sequence, {
          message: serverFirst,
        });
      });
    } else {
      if (this.#state !== "challenged") {
        throw new Error("AUTH_FINAL before AUTH_CHALLENGE");
      }
      this.#state = "finishing";
      step = this.#scram!.serverFinalMessage(text ?? "").then(
        (serverFinal) => {
          this.#state = "done";
          this.#scram = undefined;
          this.#host.stats.authSuccesses++;
          this.#pushJson(MessageType.AuthOk, message.sequence, {
            message: serverFinal,
          });
        },
      );
    }
    step.catch((error) =>
      this.#failed(
        error instanceof AuthenticationError
          ? "authentication failed"
          : String(error),
      )
    );
  }

  #failed(reason: string): void {
    this.#host.stats.authFailures++;
    this.#state = "none";
    this.#scram = undefined;
    // The whole connection is refused: sequence 0, then close.
    this.#closeWithError(RemoteErrorCode.AuthFailed, reason);
  }

  #pushJson(
    type: number,
    sequence: number,
    value: object,
  ): void {
    if (!this.#session.live) return;
    this.#session.writer.push(type, 0, sequence, encodeJson(value));
  }

  #closeWithError(code: number, message: string): void {
    const session = this.#session;
    if (!session.live) return;
    session.writer.push(
      MessageType.Error,
      0,
      0,
      encodeError({ code, retryable: false, message }),
    );
    session.writer.flush();
    session.channel.close();
  }
}
