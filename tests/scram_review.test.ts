// ScramClient, the public SCRAM client of ./auth, as a careless caller
// drives it (the review of src/auth/): a message that is no string, a
// step out of turn.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ScramClient, ScramKeyCache } from "../src/auth/scram.ts";
import { AuthenticationError, InvalidArgumentError } from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { invalid } from "./support/doors.ts";

const RFC = {
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function rfcClient(): ScramClient {
  return new ScramClient({
    username: "user",
    password: new Secret("pencil"),
    nonce: RFC.clientNonce,
  });
}

const NOT_TEXT: unknown[] = [undefined, null, 5, ["r=x"], { length: 3 }];

test("clientFinalMessage refuses a server-first message that is no string with an InvalidArgumentError naming serverFirst, and the exchange goes on: it was a raw TypeError, and the step was spent", async () => {
  for (const value of NOT_TEXT) {
    const scram = rfcClient();
    scram.clientFirstMessage();
    await assert.rejects(
      scram.clientFinalMessage(value as never),
      invalid("ScramClient.clientFinalMessage", "serverFirst"),
    );
    // Refused before anything changed: the real message is still taken.
    assert.match(await scram.clientFinalMessage(RFC.serverFirst), /,p=/);
    await scram.verifyServerFinal(RFC.serverFinal);
  }
});

test("verifyServerFinal refuses a server-final message that is no string with an InvalidArgumentError naming serverFinal, as a rejection: it threw a raw TypeError", async () => {
  for (const value of NOT_TEXT) {
    const scram = rfcClient();
    scram.clientFirstMessage();
    await scram.clientFinalMessage(RFC.serverFirst);
    let result: Promise<void> | undefined;
    assert.doesNotThrow(() => {
      result = scram.verifyServerFinal(value as never);
    });
    await assert.rejects(
      result!,
      invalid("ScramClient.verifyServerFinal", "serverFinal"),
    );
    await scram.verifyServerFinal(RFC.serverFinal);
  }
});

/** An InvalidArgumentError about the step of the exchange `method` was called in. */
const outOfTurn = (method: string) => (error: unknown) => {
  invalid(`ScramClient.${method}`, "step")(error);
  assert.ok(error instanceof InvalidArgumentError);
  assert.equal(error.code, "INVALID_ARGUMENT");
  return true;
};

test("ScramClient's steps out of turn are an InvalidArgumentError naming the method and the step, never a plain Error without a code; verifyServerFinal after a failed or unfinished clientFinalMessage was a raw TypeError", async () => {
  // A second first step, a second step before the first.
  const twice = rfcClient();
  twice.clientFirstMessage();
  assert.throws(
    () => twice.clientFirstMessage(),
    outOfTurn("clientFirstMessage"),
  );
  await assert.rejects(
    rfcClient().clientFinalMessage(RFC.serverFirst),
    outOfTurn("clientFinalMessage"),
  );
  // The last step before the second: a rejection, not a throw.
  const early = rfcClient();
  early.clientFirstMessage();
  let result: Promise<void> | undefined;
  assert.doesNotThrow(() => {
    result = early.verifyServerFinal(RFC.serverFinal);
  });
  await assert.rejects(result!, outOfTurn("verifyServerFinal"));
  // After a second step the node's challenge failed.
  const failed = rfcClient();
  failed.clientFirstMessage();
  await assert.rejects(
    failed.clientFinalMessage("r=elsewhere,s=AAAA,i=4096"),
    (error) => error instanceof AuthenticationError,
  );
  await assert.rejects(
    failed.verifyServerFinal(RFC.serverFinal),
    outOfTurn("verifyServerFinal"),
  );
  // While the second step still derives its keys.
  const busy = rfcClient();
  busy.clientFirstMessage();
  const proving = busy.clientFinalMessage(RFC.serverFirst);
  await assert.rejects(
    busy.verifyServerFinal(RFC.serverFinal),
    outOfTurn("verifyServerFinal"),
  );
  assert.match(await proving, /,p=/);
  // The exchange in order still completes, and a step after it is refused.
  await busy.verifyServerFinal(RFC.serverFinal);
  await assert.rejects(
    busy.verifyServerFinal(RFC.serverFinal),
    outOfTurn("verifyServerFinal"),
  );
});

test("a ScramKeyCache of limit 0 holds nothing, as its limit says: it kept one salt's keys", async () => {
  const cache = new ScramKeyCache(0);
  const keys = await cache.keys("pencil", new Uint8Array([1, 2, 3]), 4096);
  assert.equal(keys.clientKey.byteLength, 32);
  assert.equal(cache.size, 0);
  await cache.keys("pencil", new Uint8Array([4]), 4096);
  assert.equal(cache.size, 0);
  // A limit of 1 holds one, the latest.
  const one = new ScramKeyCache(1);
  await one.keys("pencil", new Uint8Array([1]), 4096);
  await one.keys("pencil", new Uint8Array([2]), 4096);
  assert.equal(one.size, 1);
});

test("new ScramClient refuses a maxIterations below the minimum it accepts (minIterations, and never less than 4096), naming options.maxIterations: it was taken, and every challenge then refused", async () => {
  const base = { username: "user", password: new Secret("pencil") };
  for (
    const bounds of [
      { maxIterations: 0 },
      { maxIterations: 4095 },
      { minIterations: 10_000, maxIterations: 9_999 },
    ]
  ) {
    assert.throws(
      () => new ScramClient({ ...base, ...bounds }),
      (error) => {
        invalid("new ScramClient()", "options.maxIterations")(error);
        assert.match((error as Error).message, /at least/);
        return true;
      },
      JSON.stringify(bounds),
    );
  }
  // Equal bounds accept exactly that count.
  const exact = new ScramClient({
    ...base,
    nonce: RFC.clientNonce,
    minIterations: 4096,
    maxIterations: 4096,
  });
  exact.clientFirstMessage();
  assert.match(await exact.clientFinalMessage(RFC.serverFirst), /,p=/);
});
