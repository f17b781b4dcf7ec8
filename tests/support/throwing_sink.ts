// A child process of connection_review.test.ts: a Connection over a
// scripted channel, with one request whose ReplySink throws (on its reply,
// on its timeout, and when the connection ends) beside plain requests, in
// a process that handles uncaught errors the way its runtime offers; and
// a request route whose withdraw or close throws. Its own process because `bun
// test` fails the running test on any uncaught error, whatever handler is
// installed. Prints one JSON line: how the
// other requests ended, whether the connection stayed open, its timer,
// and what was reported to the process; then exits on its own.
import { Connection } from "../../src/connection/connection.ts";
import type { ReplySink } from "../../src/connection/types.ts";
import { MessageCodec } from "../../src/protocol/codec.ts";
import { MessageType } from "../../src/protocol/frame.ts";
import { VirtualClock } from "../../testing/virtual_clock.ts";
import { recordUncaught } from "./uncaught.ts";
import { stubChannel } from "./stub_channel.ts";

const reported = recordUncaught(true);

const codec = new MessageCodec();

/** A connection over a channel the scene feeds by hand. */
function scene() {
  const clock = new VirtualClock();
  let deliver!: (chunk: Uint8Array) => void;
  const channel = stubChannel({
    onData: (fn) => (deliver = fn),
  });
  const connection = new Connection(channel, { hostname: "fake", port: 1 }, {
    clock,
    requestTimeoutMs: 100,
  });
  const reply = (sequence: number) =>
    deliver(codec.encode({
      type: MessageType.Response,
      flags: 0,
      sequence,
      payload: new Uint8Array([1]),
    }));
  return { clock, connection, reply };
}

const throwing = (what: string): ReplySink => ({
  onReply() {
    throw new Error(`${what}: onReply bug`);
  },
  onError() {
    throw new Error(`${what}: onError bug`);
  },
});

const outcome = (promise: Promise<unknown>) =>
  promise.then(
    () => "reply",
    (error: Error) => error.constructor.name,
  );

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

const result: Record<string, unknown> = {};

{
  // Its reply: the next request on the connection still gets its own.
  const { connection, reply } = scene();
  connection.submitRequest(new Uint8Array([1]), undefined, throwing("reply"));
  const other = outcome(connection.sendRequest(new Uint8Array([2])));
  await Promise.resolve();
  reply(1);
  reply(2);
  result.reply = { other: await other, open: connection.isOpen };
  connection.destroy();
}
{
  // Its timeout: the others time out too, and the timer ends with them.
  const { clock, connection } = scene();
  const first = outcome(connection.sendRequest(new Uint8Array([1])));
  connection.submitRequest(new Uint8Array([2]), undefined, throwing("timeout"));
  const last = outcome(connection.sendRequest(new Uint8Array([3])));
  let advanced = "ok";
  await clock.advance(100).catch((error) => (advanced = String(error)));
  const settled = await Promise.race([
    Promise.all([first, last]),
    tick().then(() => "unsettled"),
  ]);
  result.timeout = {
    advanced,
    others: settled,
    inFlight: connection.inFlight,
    timerArmed: connection.timerArmed,
  };
  connection.destroy();
}
{
  // The connection's end: destroy() returns, and every request settles.
  const { connection } = scene();
  connection.submitRequest(new Uint8Array([1]), undefined, throwing("end"));
  const other = outcome(connection.sendRequest(new Uint8Array([2])));
  let destroyed = "ok";
  try {
    connection.destroy(new Error("test: gone"));
  } catch (error) {
    destroyed = String(error);
  }
  result.end = {
    destroyed,
    other: await Promise.race([other, tick().then(() => "unsettled")]),
  };
}
{
  // A route whose withdraw throws: the request fails as it would have,
  // counted as sent (the route may have sent it), and the throw is
  // reported.
  const { clock, connection } = scene();
  connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send() {},
    withdraw() {
      throw new Error("route: withdraw bug");
    },
    close() {},
  });
  const abort = new AbortController();
  const aborted = outcome(
    connection.sendRequest(new Uint8Array([1]), { signal: abort.signal }),
  );
  abort.abort();
  const late = connection.sendRequest(new Uint8Array([2])).catch((e) => e);
  await clock.advance(100);
  const timedOut = await late;
  result.route = {
    aborted: await aborted,
    timedOut: timedOut.constructor.name,
    sent: timedOut.sent,
    open: connection.isOpen,
  };
  connection.destroy();
}
{
  // A route whose close throws: destroy() still ends the connection and
  // fails its requests, and the throw is reported.
  const { clock, connection } = scene();
  connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send() {},
    close() {
      throw new Error("routeClose: close bug");
    },
  });
  const request = outcome(connection.sendRequest(new Uint8Array([1])));
  let destroyed = "ok";
  try {
    connection.destroy();
  } catch (error) {
    destroyed = String(error);
  }
  await clock.advance(100);
  const unsettled = tick().then(() => "unsettled");
  result.routeClose = {
    destroyed,
    request: await Promise.race([request, unsettled]),
    closed: await Promise.race([
      connection.closed.then((e) => e?.constructor.name),
      unsettled,
    ]),
    open: connection.isOpen,
  };
}
{
  // A route whose close returns what is no Set of sequence numbers: its
  // requests count as sent.
  const { connection } = scene();
  connection.routeRequests({
    maxPayload: 1024,
    tooLarge: (length) => new RangeError(`${length} bytes`),
    send() {},
    close: () => null as unknown as void,
  });
  const request = connection.sendRequest(new Uint8Array([1])).catch((e) => e);
  let destroyed = "ok";
  try {
    connection.destroy();
  } catch (error) {
    destroyed = String(error);
  }
  const lost = await Promise.race([request, tick().then(() => undefined)]);
  result.routeCloseNull = {
    destroyed,
    request: lost?.constructor.name,
    sent: lost?.sent,
  };
}
{
  // A batch's sink that throws: each refused item is still reported, the
  // run is counted as sent, and a cancel fails every item still in
  // flight, taking back their frames.
  const { connection } = scene();
  const errors: number[] = [];
  const sink = {
    first: 0,
    onReply() {},
    onError(_error: Error, sequence?: number) {
      errors.push(sequence!);
      throw new Error(`batch: onError bug ${sequence}`);
    },
  };
  const payloads = [
    "no payload" as unknown as Uint8Array,
    new Uint8Array([1]),
    "no payload" as unknown as Uint8Array,
    new Uint8Array([2]),
    new Uint8Array([3]),
  ];
  let submitted = "ok";
  try {
    connection.submitBatch(payloads, 0, payloads.length, {}, sink);
  } catch (error) {
    submitted = String(error);
  }
  const refused = errors.splice(0);
  let cancelled = "ok";
  try {
    connection.cancelBatch(sink, payloads.length, new Error("test: cancel"));
  } catch (error) {
    cancelled = String(error);
  }
  result.batch = {
    submitted,
    refused,
    sent: connection.stats.sent,
    cancelled,
    cancelledItems: errors.slice(),
    inFlight: connection.inFlight,
  };
  connection.destroy();
}
await tick();
result.reported = reported.sort();
console.log(JSON.stringify(result));
