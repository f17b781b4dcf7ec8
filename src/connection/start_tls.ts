/**
 * Switching a connection's stream to TLS, client side
 * (`Connection.startTls`): its options, read once; the checks before the
 * switch (the caller's state, and plaintext the node sent after agreeing
 * to switch); the upgrade by the runtime adapter, held to its contract
 * and to the connection's connect timeout; and the secure stream attached
 * in the plaintext one's place. Apart from the control channel's other
 * checks (control.ts) because it is a procedure of its own, run at most
 * once per connection and never on the request path.
 *
 * @module
 */

import {
  bool,
  is,
  readOptions,
  type Rule,
  serverName,
  signal,
} from "../config/options.ts";
import {
  ConnectionError,
  type Endpoint,
  NodewireError,
  ProtocolError,
  TlsError,
  type TlsFailureReason,
} from "../errors.ts";
import { type Clock, holdTimer } from "../clock.ts";
import { type OnceTimer, onceTimer } from "../config/clock_failure.ts";
import { fieldOf, foreignText, isInstance, textOf } from "../errors/base.ts";
import { toTlsError } from "../runtime/tls.ts";
import type { ByteChannel, TlsOptions } from "../runtime/types.ts";
import type { ConnectionCore } from "./core.ts";
import type { ConnectionLifecycle } from "./lifecycle.ts";
import { destroyQuietly } from "./closing.ts";
import { switching } from "./tls_switching.ts";

/** `startTls`'s options (`TlsOptions`), by name. */
const TLS_SWITCH: Record<string, Rule> = {
  // Checked here, once: a custom adapter's TLS got any non-empty string.
  serverName,
  ca: is(
    (v) => Array.isArray(v) && v.every((pem) => typeof pem === "string"),
    "expected an array of PEM strings",
  ),
  dangerouslySkipVerify: bool,
  signal,
};

/** `startTls`'s options, read once and checked: `serverName` required. */
function readTlsSwitchOptions(options: unknown): TlsOptions {
  return readOptions("startTls()", options, TLS_SWITCH, ["serverName"]);
}

/** What `startTls` reads of the connection, and ends when it gives up. */
export interface TlsSwitchCaller extends Endpoint {
  /** `host:port` of the node. */
  readonly address: string;
  /** Whether the connection still takes work. */
  readonly isOpen: boolean;
  /** Ends the connection at once (`Connection.destroy`). */
  destroy(error?: Error): void;
}

/**
 * What a TLS switch reads of the connection whose stream it switches: it
 * ends the connection only through its limit's `giveUp`.
 */
type TlsSwitchOwner = Omit<TlsSwitchCaller, "destroy">;

/**
 * `Connection.startTls` for `connection`: `options` read once (a bad one
 * rejects before anything starts), then {@linkcode switchToTls} on
 * `core`'s stream, given up after `ms` (the connection's connect timeout)
 * on `clock` by destroying `connection`; `end` makes the error of a
 * connection no longer open and takes the secure stream's close. Apart
 * from the class so that every step of a switch is read in one file.
 *
 * @throws the errors of `Connection.startTls`, as a rejection.
 */
export function startTlsFor(
  connection: TlsSwitchCaller,
  core: ConnectionCore,
  end: ConnectionLifecycle,
  options: TlsOptions,
  clock: Clock,
  ms: number,
): Promise<void> {
  try {
    options = readTlsSwitchOptions(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return switchToTls(
    connection,
    core,
    core.route !== undefined,
    options,
    // A closing connection's refusal is the one its requests get, not
    // that it was lost: it is still finishing its work.
    () => end.refusal(),
    end.onChannelClose,
    {
      clock,
      ms,
      giveUp: (error) => connection.destroy(error),
      ended: end.closed.then(() => end.lostError(false)),
    },
  );
}

/**
 * Throws when an open connection's stream may not switch to TLS now:
 * already encrypted, an adapter without TLS, `inFlight` requests whose
 * replies are under way in plaintext, or a request route (`routed`) that
 * the switch would not cover. Each is the caller's state, not the node's
 * doing: the connection goes on as it was. (Plaintext from the node after
 * it agreed to switch is {@linkcode plaintextArrived}, and ends it.)
 *
 * @throws {ProtocolError} when already encrypted, requests are in flight
 *   or a request route is installed, each saying which.
 * @throws {ConnectionError} when the adapter cannot speak TLS.
 */
function checkTlsSwitch(
  endpoint: Endpoint,
  address: string,
  encrypted: boolean,
  canStartTls: boolean,
  inFlight: number,
  routed: boolean,
): void {
  if (encrypted) {
    throw new ProtocolError("the connection is already encrypted");
  }
  if (!canStartTls) {
    throw new ConnectionError(
      "TLS_UNSUPPORTED",
      `the runtime adapter of ${address} cannot speak TLS`,
      endpoint,
      { retryable: false },
    );
  }
  if (inFlight > 0) {
    // Their replies would come in plaintext, or be lost in the switch.
    throw new ProtocolError(
      `the stream cannot switch to TLS with ${inFlight} ${
        inFlight === 1 ? "request" : "requests"
      } in flight: switch before sending any, or once they have settled`,
    );
  }
  if (routed) {
    throw new ProtocolError(
      "the stream cannot switch to TLS on a connection with a request " +
        "route: requests go over the route, which the switch would not " +
        "encrypt",
    );
  }
}

/**
 * The error for plaintext from the node that `core` holds unread after
 * the node agreed to switch to TLS (a message taken by nobody, one kept
 * behind the pause point or while the handshake ran, part of a frame),
 * else undefined. The node had no business sending it, and a man in the
 * middle would inject it there: a protocol violation that ends the
 * connection.
 */
function plaintextArrived(
  core: ConnectionCore,
): ProtocolError | undefined {
  if (
    core.inbox.size > 0 || (core.held?.length ?? 0) > 0 ||
    core.codec.bufferedBytes > 0
  ) {
    return new ProtocolError(
      "plaintext data arrived after the node agreed to switch to TLS: " +
        "the connection is closed",
    );
  }
}

/**
 * How long a TLS switch may take, and what ends the connection when it is
 * given up on (the adapter's handshake may still hold the socket).
 */
interface TlsSwitchLimit {
  /** The connection's clock. */
  readonly clock: Clock;
  /** The connection's connect timeout, in ms. */
  readonly ms: number;
  /** Ends the connection, with the error the switch failed with, if an Error. */
  readonly giveUp: (error: Error | undefined) => void;
  /** Settles, once the connection has ended, with the error that says so. */
  readonly ended: Promise<Error>;
}

/**
 * Switches `core`'s stream to TLS for `owner` once the checks pass
 * (`routed`: the connection has a request route): flushes what is queued,
 * upgrades the stream, and from then on reads and writes only the secure
 * one, whose close goes to `onClose`; plaintext that arrived meanwhile is
 * kept unread and fails the switch. `lost` makes the error for a
 * connection that is no longer open, before the switch or once it ends.
 * The upgrade is given up after `limit.ms`, when the caller's signal
 * aborts, whether the adapter heeds it or not (see `upgrade`), or when the
 * connection ends under it. Once the writer is held, a failure ends the
 * connection (`limit.giveUp`).
 *
 * @throws the errors of `Connection.startTls`.
 */
async function switchToTls(
  owner: TlsSwitchOwner,
  core: ConnectionCore,
  routed: boolean,
  options: TlsOptions,
  lost: () => Error,
  onClose: (error?: Error) => void,
  limit: TlsSwitchLimit,
): Promise<void> {
  if (!owner.isOpen) throw lost();
  const channel = core.channel;
  if (switching.has(channel)) {
    // A second upgrade of the same plaintext stream would leave one of
    // the two secure channels open with nobody to close it.
    throw new ProtocolError("a TLS switch is under way on this connection");
  }
  if (!core.encrypted) {
    // The node's violation, whatever else is under way: refused and left
    // open, the connection could be used on in plaintext with whatever
    // was injected, or switched again once it was read.
    const injected = plaintextArrived(core);
    if (injected !== undefined) {
      limit.giveUp(injected);
      throw injected;
    }
  }
  checkTlsSwitch(
    owner,
    owner.address,
    core.encrypted,
    channel.startTls !== undefined,
    core.table.size,
    routed,
  );
  core.writer.flush();
  // Its write failed (a custom channel's), and the connection ended with
  // it: no upgrade of the channel just destroyed.
  if (core.closed) throw lost();
  // A request sent from now on waits for the secure channel (see attach):
  // none of its bytes may go out in plaintext, nor into the handshake.
  core.writer.hold();
  // From now on the plaintext channel carries the handshake: what a
  // custom adapter's channel still delivers is kept, not acted on, and
  // refused below once the upgrade is done. Acted on, an injected reply
  // answered a request that waits for the secure channel.
  core.held ??= [];
  switching.add(channel);
  let secure: ByteChannel;
  try {
    secure = await upgrade(channel, options, owner, limit);
  } catch (error) {
    // Ended here, whatever the adapter did with the socket: one that
    // failed without destroying it left the connection open with its
    // writer held for good, and the plaintext stream free to be resumed.
    limit.giveUp(isInstance(error, Error) ? error as Error : undefined);
    throw error;
  } finally {
    switching.delete(channel);
  }
  // Ended meanwhile. Closing is not ended: close() lets the requests in
  // flight finish, and those sent during the switch go out only on the
  // secure channel (taken for ended, they waited out their timeouts, and
  // close() with them).
  if (core.closed) {
    // Quietly: the caller needs to know the connection ended, not what a
    // custom channel's destroy threw.
    destroyQuietly(secure, undefined);
    throw lost();
  }
  // Plaintext that came during the handshake: a protocol violation, as
  // before it (checked only there, a frame was dropped unread, and part of
  // one read as the start of the secure stream).
  const injected = plaintextArrived(core);
  if (injected !== undefined) {
    destroyQuietly(secure, injected);
    limit.giveUp(injected);
    throw injected;
  }
  core.held = undefined;
  try {
    core.attach(secure, onClose);
  } catch (error) {
    // Refused (a custom adapter's bad copyBelow, or receivers it would
    // not take): the error says why, whatever the channel's own destroy
    // does. The stream is still the plaintext one (attach left it so),
    // and ending the connection destroys that: each channel once.
    destroyQuietly(secure, error);
    limit.giveUp(isInstance(error, Error) ? error as Error : undefined);
    throw error;
  }
  // Only now: marked before the attach, a refused channel left a
  // connection that never carried TLS saying it was encrypted (to its
  // stats, diagnostics and log lines).
  core.encrypted = true;
  // Ended as it was attached (it reported its close as its receiver was
  // set): resolved, the caller was told the switch succeeded on a closed
  // connection.
  if (core.closed) throw lost();
}

/**
 * `channel.startTls(options)`, held to its contract: a custom adapter
 * that fails with what is no SDK error has it mapped as a runtime's TLS
 * error (or quoted, if no Error), and one that hands back the plaintext
 * channel itself is refused: nothing says that channel encrypts. One that
 * has not settled after `limit.ms`, or when the caller's signal aborts
 * (an adapter deaf to it would hold the caller for ever), is given up:
 * the connection ends (`limit.giveUp`), and a channel it delivers later
 * is destroyed.
 */
async function upgrade(
  channel: ByteChannel,
  options: TlsOptions,
  endpoint: TlsSwitchOwner,
  limit: TlsSwitchLimit,
): Promise<ByteChannel> {
  const serverName = textOf(fieldOf(options, "serverName"));
  const failed = (
    why: string,
    cause?: unknown,
    reason: TlsFailureReason = "handshake",
  ) =>
    new TlsError(`TLS with ${endpoint.address} failed: ${why}`, {
      reason,
      address: endpoint.address,
      serverName,
      cause,
    });
  let secure: ByteChannel;
  try {
    secure = await within(
      channel,
      options,
      limit,
      () =>
        failed(
          `the runtime adapter's startTls did not settle within ` +
            `${limit.ms} ms (the connection's connect timeout)`,
          undefined,
          "handshake-timeout",
        ),
    );
  } catch (error) {
    let mapped: unknown = error;
    if (isInstance(error, Error)) {
      try {
        mapped = toTlsError(error as Error, endpoint, serverName);
      } catch {
        // An Error whose fields cannot be read: quoted below.
      }
    }
    if (isInstance(mapped, NodewireError)) throw mapped;
    throw failed(
      `the runtime adapter's startTls failed with ${
        foreignText(error)
      }, not an Error`,
      error,
    );
  }
  if (secure === channel) {
    throw failed(
      "the runtime adapter's startTls returned the plaintext channel",
    );
  }
  return secure;
}

/**
 * `channel.startTls(options)` until it settles, `limit.ms` pass (then it
 * fails with `timedOut()`), the signal in `options` aborts (then with
 * its reason, as the adapter should have) or the connection ends (then
 * with `limit.ended`'s error). Given up any way, the connection ends
 * (`limit.giveUp`), the adapter is told through the signal it was handed,
 * and a channel delivered later is destroyed.
 */
function within(
  channel: ByteChannel,
  options: TlsOptions,
  limit: TlsSwitchLimit,
  timedOut: () => Error,
): Promise<ByteChannel> {
  const given = fieldOf(options, "signal");
  const signal = isInstance(given, AbortSignal)
    ? given as AbortSignal
    : undefined;
  // The adapter's own signal, aborted whichever limit gives up: told
  // only of the caller's, an adapter went on with a handshake this limit
  // had given up on, which nothing would end against a node that never
  // answers (the socket is the TLS layer's, not the connection's). On
  // every runtime the process then never exited.
  const told = new AbortController();
  if (signal?.aborted) told.abort(signal.reason);
  const adapterOptions = { ...options, signal: told.signal };
  return new Promise<ByteChannel>((resolve, reject) => {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      // A custom clock whose clearTimeout() throws: the switch settles
      // as it would have, and the timer, when it fires, finds it done.
      // Let out, the throw went out of the adapter's settling as an
      // unhandled rejection (or of the abort's dispatch, or the timer),
      // and the switch never settled.
      timer?.cancel();
      signal?.removeEventListener("abort", onAbort);
      return true;
    };
    const giveUp = (error: unknown) => {
      if (!finish()) return;
      // The connection ends with this error first, whatever the adapter's
      // own give-up then closes under it.
      limit.giveUp(isInstance(error, Error) ? error as Error : undefined);
      told.abort(error);
      reject(error);
    };
    const onAbort = () => giveUp(signal!.reason);
    let timer: OnceTimer | undefined;
    try {
      timer = onceTimer(limit.clock, limit.ms, () => giveUp(timedOut()));
    } catch (error) {
      // A custom clock whose setTimeout() throws: the switch fails before
      // the adapter is asked, with the ConfigError naming it, and the
      // connection ends. Let out, it rejected with the clock's raw Error.
      return giveUp(error);
    }
    // Held: the caller awaits the switch, and a channel whose startTls
    // holds no socket left Node nothing else, so it ended the program
    // inside the await. It ends with the switch.
    holdTimer(limit.clock, timer.handle, true);
    // The connection ended under the switch (destroyed, closed, its
    // stream gone): the caller hears so now, and the adapter through its
    // signal. Waited for, the switch failed only at the limit, with a
    // TlsError blaming the adapter, its timer holding the process.
    limit.ended.then(giveUp);
    let pending: Promise<ByteChannel>;
    try {
      pending = Promise.resolve(channel.startTls!(adapterOptions));
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (secure) => {
        if (finish()) resolve(secure);
        else if (secure !== channel && secure != null) {
          // Delivered after it was given up on: nobody will use it.
          destroyQuietly(secure, undefined);
        }
      },
      (error) => {
        if (finish()) reject(error);
      },
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
