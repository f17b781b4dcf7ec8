// ScramClient, the public SCRAM client of ./auth, as a careless caller
// drives it (the review of src/auth/): a message that is no string.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ScramClient } from "../src/auth/scram.ts";
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
