/**
 * The side of a connection that runs on events rather than calls: the
 * stream's bytes decoded, replies matched to the requests in flight,
 * control messages handed on, deadlines expired, held frames written once
 * the socket drains, and everything in flight failed when it ends. The
 * Connection class (connection.ts) holds the API and the request path;
 * both work on this object's state. Apart, for what runs once per stream
 * or never for a reply: attaching a stream (attach.ts) and the checks on
 * a channel (channel_check.ts), failing what is in flight once the
 * connection ends (fail_in_flight.ts), the calls into a route that may
 * throw (route_calls.ts), the node's own messages (node_messages.ts), the
 * receiver of a route's replies (routed_replies.ts) and the connection
 * as the core sees it (core_owner.ts).
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import {
  type AbortedError,
  type ConfigError,
  ConnectionLostError,
  ProtocolError,
  RemoteError,
  RequestTimeoutError,
} from "../errors.ts";
import { foreignText } from "../errors/base.ts";
import { MessageCodec } from "../protocol/codec.ts";
import { type Message, MessageType } from "../protocol/frame.ts";
import { decodeError, type ErrorPayload } from "../protocol/messages.ts";
import type { ByteChannel } from "../runtime/types.ts";
import { DeadlineTracker } from "./deadlines.ts";
import type { FrameWriter } from "./frame_writer.ts";
import { ControlInbox } from "./inbox.ts";
import {
  FRAME_TYPE,
  type HeldFrame,
  isHeld,
  type Pending,
  SAFE_TO_REPEAT,
  tellError,
  writeHeld,
} from "./in_flight.ts";
import { PendingTable } from "./pending_table.ts";
import type { ConnectionStats, RequestRoute } from "./types.ts";
import { AbortGroups } from "./abort_groups.ts";
import { attachStream } from "./attach.ts";
import type { CoreOwner } from "./core_owner.ts";
import { failInFlight, failLeftBehind } from "./fail_in_flight.ts";
import { onControl } from "./node_messages.ts";
import { closeRoute, unroute } from "./route_calls.ts";
import { routedReceiver } from "./routed_replies.ts";
import { notSent } from "./refusals.ts";
import { reportThrow } from "./uncaught.ts";

export type { CoreOwner } from "./core_owner.ts";

/**
 * A connection's stream, requests in flight and reading side. Fields are
 * open to the Connection that owns it (nothing else holds a core); the
 * reply path reads them exactly as it read the Connection's own fields.
 */
export class ConnectionCore {
  /** The connection this core works for. */
  readonly owner: CoreOwner;
  /** The owner's counters (the same object, one hop shorter). */
  readonly stats: ConnectionStats;
  /** Decodes the stream; its limit is the largest payload accepted. */
  readonly codec: MessageCodec;
  /** Requests and pings in flight, by sequence number. */
  readonly table: PendingTable<Pending> = new PendingTable<Pending>();
  /** Their deadlines, on one timer. */
  readonly deadlines: DeadlineTracker<Pending>;
  /** Control messages nobody asked for yet, and who waits for them. */
  readonly inbox: ControlInbox = new ControlInbox();
  /** The stream; replaced once, by a TLS switch ({@linkcode attach}). */
  channel!: ByteChannel;
  /** Whether `channel` is TLS (connected with TLS, or switched to it). */
  encrypted = false;
  /** Encodes frames for `channel`. */
  writer!: FrameWriter;
  /** Requests held back while the socket is congested. */
  queued: HeldFrame[] = [];
  /** Where requests and pings go instead of the stream, once routed. */
  route: RequestRoute | undefined;
  /**
   * Messages decoded after a pauseReading receive, while a TLS switch may
   * follow: none are expected (see Connection.startTls).
   */
  held: Message[] | undefined;
  /** The node's own id, from HELLO_OK; named in its RemoteErrors. */
  nodeId = "";
  /** The largest payload the node accepts (HELLO_OK's; ours before it). */
  peerMaxFrameSize: number;
  /** Set once the connection has closed. */
  closed = false;
  #idleWaiters: Array<() => void> = [];
  /** The error maker the connection closed with (see shutDown). */
  #lost: ((sent: boolean, retryable: boolean) => Error) | undefined;
  /** Requests settled whose frames may still be in `queued`. */
  #heldDone = 0;
  readonly #onGoodbye: () => void;
  #onRouted: ((message: Message) => boolean) | undefined;

  /**
   * A core for `owner`, timing deadlines on `clock`, accepting payloads up
   * to `maxFrameSize`; a node's GOODBYE goes to `onGoodbye`.
   */
  constructor(
    owner: CoreOwner,
    clock: Clock,
    maxFrameSize: number,
    onGoodbye: () => void,
  ) {
    this.owner = owner;
    this.stats = owner.stats;
    this.codec = new MessageCodec(maxFrameSize);
    this.peerMaxFrameSize = this.codec.maxFrameSize;
    this.deadlines = new DeadlineTracker(
      clock,
      (visit) => this.table.forEach(visit),
      this.#expire,
      this.#untimed,
    );
    this.#onGoodbye = onGoodbye;
  }

  /**
   * Writes through `channel` and reads from it from now on; its close goes
   * to `onClose`. A channel refused (what is no ByteChannel, a bad
   * `copyBelow`, receivers it will not take) leaves the stream as it was.
   */
  attach(channel: ByteChannel, onClose: (error?: Error) => void): void {
    attachStream(
      this,
      channel,
      onClose,
      this.#onData,
      this.#onDrained,
      this.#inFlight,
    );
  }

  /** Removes a pending entry; false when it had already settled. */
  settle(pending: Pending): boolean {
    if (!this.table.delete(pending)) return false;
    this.#forget(pending);
    return true;
  }

  /**
   * Fails `pending` with an AbortedError when `signal` aborts; a frame not
   * flushed yet is taken back, never written.
   */
  listenForAbort(pending: Pending, signal: AbortSignal): void {
    (this.#aborts ??= new AbortGroups(this.#abort)).add(pending, signal);
  }

  #aborts: AbortGroups | undefined;

  #abort = (pending: Pending, error: AbortedError): void => {
    if (this.settle(pending)) {
      this.takeBack(pending);
      tellError(pending.sink, error, pending.sequence);
    }
  };

  /**
   * `pending` settled before its frame left (an abort): the frame is taken
   * back from the writer, the route or the frames held by congestion, so
   * the node never runs it.
   */
  takeBack(pending: Pending): void {
    const sequence = pending.sequence;
    if (
      !this.writer.withdraw(sequence) && !unroute(this.route, sequence) &&
      isHeld(this.queued, pending)
    ) this.#heldSettled();
  }

  /** Resolves once nothing is in flight. */
  whenIdle(): Promise<void> {
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Reads no further until {@linkcode resume}; keeps what follows. */
  pause(): void {
    this.held ??= [];
    this.channel.pause?.();
  }

  /** Reads again, first acting on what was kept since the pause. */
  resume(): void {
    const held = this.held;
    this.held = undefined;
    // Before the channel is resumed: a custom channel may hand over what
    // it buffered from inside its resume(), and those newer frames (a
    // PING, a GOODBYE, a control message) were acted on before the older
    // ones kept here.
    if (held !== undefined && held.length > 0) this.#actOnHeld(held);
    // A kept frame ended the connection (the node's ERROR, a protocol
    // violation), or a receive with pauseReading took one and paused
    // again (the rest stay kept): the channel stays as it is.
    if (this.closed || this.held !== undefined) return;
    this.channel.resume?.();
  }

  /**
   * What came behind the pause point, in order, acted on as on arrival: a
   * frame that breaks the protocol ends the connection (the messages after
   * it cannot be trusted either), it is not thrown at the caller.
   */
  #actOnHeld(held: Message[]): void {
    // Read as a chunk is (see #reading): a chunk the channel hands over
    // meanwhile (resumed again from inside a kept reply's sink) waits
    // behind the kept frames.
    const reading = this.#reading;
    this.#reading = true;
    try {
      for (const message of held) this.#onMessage(message);
      if (!reading && this.#waiting !== undefined) this.#readWaiting();
    } catch (error) {
      if (!reading) this.#waiting = undefined;
      this.#unreadable(error);
    } finally {
      this.#reading = reading;
    }
  }

  /**
   * The function that takes the replies a {@linkcode RequestRoute}
   * receives, matched like replies on the stream (see routed_replies.ts).
   * Made on first use: only routed connections need one.
   */
  routedReceiver(): (message: Message) => boolean {
    return this.#onRouted ??= routedReceiver(this, this.#onMessage);
  }

  /**
   * The connection has closed: stops the deadline timer and the route,
   * drops the frames not yet handed to the socket, then fails every
   * request in flight with `lost(sent, retryable)`, every receiveMessage
   * waiter with `lost(false)`, and releases whoever waits for idle. A
   * request is `sent` once its frame went to the socket: one held back by
   * congestion or dropped here never left, so it is safe to retry.
   */
  shutDown(lost: (sent: boolean, retryable: boolean) => Error): void {
    this.closed = true;
    this.#lost = lost;
    this.deadlines.stop();
    const unrouted = closeRoute(this.route);
    // Dropped, not flushed later: a request failed as never sent must not
    // reach the node after all (a retry may be running it elsewhere).
    const unflushed = this.writer.discard();
    const held = this.queued;
    this.queued = [];
    this.#heldDone = 0;
    failInFlight(this, lost, held, unflushed, unrouted);
    this.inbox.fail(() => lost(false, true));
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /**
   * Fails the requests a batch run put in the table after the connection
   * had closed under it: a route or channel that ended the connection
   * from inside a send (a socket of its own that failed), midway through
   * the run. They never went out on an open connection, and no timer
   * would ever end them. Called once per run, only when it finds the
   * connection closed.
   */
  failLate(): void {
    const lost = this.#lost;
    if (lost === undefined) return;
    failLeftBehind(this, lost);
  }

  /**
   * A route's `send` threw (its author's bug, or a socket of its own that
   * failed): what it was handed may or may not have gone out, and nothing
   * handed to it next can be trusted to, so the connection ends with a
   * ConnectionLostError saying so. The request it was sending is in the
   * table already, and fails with it like every other in flight: once.
   */
  routeThrew(thrown: unknown): void {
    this.owner.destroy(
      new ConnectionLostError(
        this.owner,
        `its request route failed to send: ${foreignText(thrown)}`,
        { cause: thrown },
      ),
    );
  }

  /** Forgets a pending entry known to be in the table (just looked up). */
  #release(pending: Pending): void {
    this.table.delete(pending);
    this.#forget(pending);
  }

  /** What follows an entry's removal from the table. */
  #forget(pending: Pending): void {
    if (pending.abort !== undefined) this.#aborts!.remove(pending);
    if (this.table.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * `pending` can no longer be timed (its connection's clock's setTimeout()
   * threw as the deadline timer re-armed): it fails with `error`, the
   * ConfigError naming the clock, and a frame not flushed yet is taken
   * back. Never retried (a config error), so one that left is not run
   * twice; its late reply is dropped, as a timed-out one's is.
   */
  #untimed = (pending: Pending, error: ConfigError): void => {
    if (this.table.get(pending.sequence) !== pending) return;
    this.settle(pending);
    this.takeBack(pending);
    tellError(pending.sink, error, pending.sequence);
  };

  #expire = (pending: Pending, timeoutMs: number): void => {
    // An earlier expiry's callback may have settled it since the scan.
    if (this.table.get(pending.sequence) !== pending) return;
    this.settle(pending);
    this.stats.timedOut++;
    // A frame still held behind a congested socket never left, nor one
    // still waiting for the flush (taken back here, so it never will);
    // one that left may have been executed, so only a request safe to
    // repeat may be retried (the rule of isRetryable, read from the error
    // alone).
    const held = isHeld(this.queued, pending);
    const sent = !held && !this.writer.withdraw(pending.sequence) &&
      !unroute(this.route, pending.sequence);
    if (held) this.#heldSettled();
    tellError(
      pending.sink,
      new RequestTimeoutError(this.owner.address, timeoutMs, {
        sent,
        retryable: !sent || (pending.type & SAFE_TO_REPEAT) !== 0,
      }),
      pending.sequence,
    );
  };

  /**
   * A request whose frame is held back by congestion settled. Such frames
   * are dropped once they are half of those held: a peer that never reads
   * must not keep every failed request's payload alive.
   */
  #heldSettled(): void {
    if (++this.#heldDone * 2 <= this.queued.length) return;
    this.queued = this.queued.filter((h) =>
      this.table.get(h.pending.sequence) === h.pending
    );
    this.#heldDone = 0;
  }

  // Set while a chunk is read. A channel that hands a chunk over from
  // inside a write made meanwhile (a reply's sink sent, and a part went
  // out) would have it read in the middle of the one before it, whose
  // last frame may be split over the two: that frame's end was taken for
  // a header, and its reply lost or the connection torn down. Such a
  // chunk waits, copied, and is read next.
  #reading = false;
  #waiting: Uint8Array[] | undefined;

  #onData = (chunk: Uint8Array): void => {
    if (this.#reading) return this.#wait(chunk);
    this.#reading = true;
    try {
      this.codec.decodeFrames(chunk, this.#onFrame);
      if (this.#waiting !== undefined) this.#readWaiting();
    } catch (error) {
      this.#waiting = undefined;
      this.#unreadable(error);
    } finally {
      this.#reading = false;
    }
  };

  /** Keeps a chunk handed over while another is read (see #reading). */
  #wait(chunk: Uint8Array): void {
    // Copied: the channel may fill its buffer again once onData returns.
    let copy = chunk;
    try {
      if (chunk instanceof Uint8Array) copy = chunk.slice();
    } catch {
      // No chunk (a custom adapter's): decodeFrames refuses it in turn.
    }
    (this.#waiting ??= []).push(copy);
  }

  /** Reads the chunks that waited, in order, and those that come meanwhile. */
  #readWaiting(): void {
    for (let waiting = this.#waiting; waiting !== undefined;) {
      this.#waiting = undefined;
      for (const chunk of waiting) {
        this.codec.decodeFrames(chunk, this.#onFrame);
      }
      waiting = this.#waiting;
    }
  }

  /**
   * Handling what the node sent threw: the connection ends. What threw
   * that is no ProtocolError of ours is foreign (a custom channel's chunk,
   * its getters): quoted and cut, kept whole as the cause.
   */
  #unreadable(error: unknown): void {
    const reason = error instanceof ProtocolError
      ? `protocol violation: ${error.message}`
      : `failed to handle a message: ${foreignText(error)}`;
    this.owner.destroy(
      new ConnectionLostError(this.owner, reason, { cause: error }),
    );
  }

  #onMessage = (message: Message): void => {
    this.#onFrame(
      message.type,
      message.flags,
      message.sequence,
      message.payload,
    );
  };

  // The fields, not a message object: no allocation per reply.
  #onFrame = (
    type: number,
    flags: number,
    sequence: number,
    payload: Uint8Array,
  ): void => {
    if (this.held !== undefined) {
      // Behind the pause point: kept, not acted on (not even a PING's
      // PONG), until resumeReading() or a refused startTls().
      this.held.push({ type, flags, sequence, payload });
      return;
    }
    if (
      type === MessageType.Response || type === MessageType.Pong ||
      (type === MessageType.Error && sequence !== 0)
    ) {
      const pending = this.table.get(sequence);
      if (pending === undefined) {
        // An ERROR answering a control message (HELLO, NEGOTIATE, AUTH_*)
        // goes to whoever waits in receiveMessage(), so a handshake fails
        // at once instead of at its timeout.
        if (
          type === MessageType.Error &&
          this.inbox.answer({ type, flags, sequence, payload })
        ) return;
        // Late (after a timeout or abort), duplicate or unknown: drop it.
        this.stats.dropped++;
        return;
      }
      if (type === MessageType.Error) {
        const e = decodeError(payload);
        this.#release(pending);
        this.stats.received++;
        tellError(
          pending.sink,
          this.#remoteError(e),
          pending.sequence,
        );
        return;
      }
      if (type !== replyTypeOf(pending.type & FRAME_TYPE)) {
        throw new ProtocolError(
          `sequence ${sequence} answered with type 0x${type.toString(16)}`,
        );
      }
      this.#release(pending);
      this.stats.received++;
      // A sink that throws is the caller's bug, not a broken stream.
      try {
        pending.sink.onReply(payload, pending.sequence);
      } catch (thrown) {
        reportThrow(thrown);
      }
      return;
    }
    this.#onControl({ type, flags, sequence, payload });
  };

  /** A message that answers no request: the node speaks to the client. */
  #onControl(message: Message): void {
    onControl(this, message, this.#onGoodbye);
  }

  /** The node's ERROR for the whole connection (node_messages.ts). */
  nodeError(e: ErrorPayload): RemoteError {
    return this.#remoteError(e);
  }

  /** The node's ERROR, naming the node. */
  #remoteError(e: ErrorPayload): RemoteError {
    const { nodeId, owner } = this;
    return new RemoteError(
      e.code,
      e.message,
      e.retryable,
      nodeId,
      owner.address,
    );
  }

  // What the writer sizes a tick's parts by: requests awaiting replies.
  #inFlight = (): number => this.table.size;

  /**
   * A held frame whose caller has its outcome already (a hedged request
   * another attempt answered): never sent, so it fails as not sent.
   */
  #unwanted = (pending: Pending): void => {
    this.settle(pending);
    tellError(pending.sink, notSent(), pending.sequence);
  };

  #onDrained = (): void => {
    const queued = this.queued;
    this.queued = [];
    this.#heldDone = 0;
    const rest = writeHeld(queued, this.writer, this.table, this.#unwanted);
    // Congested again: keep the rest, in order, for the next drain.
    if (rest !== undefined) this.queued = rest.concat(this.queued);
  };
}

/** The reply type for a request type: RESPONSE for REQUEST, PONG for PING. */
function replyTypeOf(type: number): number {
  return type === MessageType.Ping ? MessageType.Pong : MessageType.Response;
}
