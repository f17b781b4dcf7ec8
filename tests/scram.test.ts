import assert from "node:assert/strict";
import { test } from "node:test";
import { inspect } from "node:util";
import { decodeBase64, encodeBase64 } from "../src/auth/base64.ts";
import { saslprep } from "../src/auth/saslprep.ts";
import { SaslprepError } from "../src/errors.ts";
import {
  SCRAM_MAX_ITERATIONS,
  ScramClient,
  ScramKeyCache,
} from "../src/auth/scram.ts";
import {
  escapeScramName,
  unescapeScramName,
} from "../src/auth/scram_messages.ts";
import { AuthenticationError, InvalidArgumentError } from "../src/errors.ts";
import { Secret } from "../src/secret.ts";
import { CredentialStore, ScramServer } from "../testing/auth.ts";

// RFC 7677 section 3: user "user", password "pencil".
const RFC = {
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

const SECRET_PASSWORD = "s3cret-Pa55word!";

function rfcClient(password = "pencil"): ScramClient {
  return new ScramClient({
    username: "user",
    password: new Secret(password),
    nonce: RFC.clientNonce,
  });
}

async function rfcStore(): Promise<CredentialStore> {
  const store = new CredentialStore();
  await store.add("user", "pencil", {
    salt: decodeBase64(RFC.salt)!,
    iterations: 4096,
  });
  return store;
}

/** Runs a whole exchange; returns the client's error, if any. */
async function exchange(
  client: ScramClient,
  server: ScramServer,
): Promise<unknown> {
  try {
    const serverFirst = await server.serverFirstMessage(
      client.clientFirstMessage(),
    );
    const clientFinal = await client.clientFinalMessage(serverFirst);
    const serverFinal = await server.serverFinalMessage(clientFinal);
    await client.verifyServerFinal(serverFinal);
    return undefined;
  } catch (error) {
    return error;
  }
}

function assertNoPassword(password: string, ...values: unknown[]): void {
  for (const value of values) {
    const renderings = [
      String(value),
      JSON.stringify(value) ?? "",
      inspect(value, { depth: 10, showHidden: true }),
      value instanceof Error ? `${value.message} ${value.stack}` : "",
    ];
    for (const text of renderings) {
      assert.ok(!text.includes(password), `password leaked in: ${text}`);
    }
  }
}

test("RFC 7677 example: the client sends exactly the RFC's messages and verifies the node", async () => {
  const client = rfcClient();
  assert.equal(client.clientFirstMessage(), RFC.clientFirst);
  assert.equal(
    await client.clientFinalMessage(RFC.serverFirst),
    RFC.clientFinal,
  );
  await client.verifyServerFinal(RFC.serverFinal);
});

test("RFC 7677 example: the node, holding only the salted verifier, answers exactly as the RFC", async () => {
  const server = new ScramServer(await rfcStore(), { nonce: RFC.serverNonce });
  assert.equal(
    await server.serverFirstMessage(RFC.clientFirst),
    RFC.serverFirst,
  );
  assert.equal(server.username, "user");
  assert.equal(
    await server.serverFinalMessage(RFC.clientFinal),
    RFC.serverFinal,
  );
  assert.equal(server.authenticated, true);
});

test("the store keeps salt, iterations, StoredKey and ServerKey, never the password", async () => {
  const store = await CredentialStore.create({ alice: SECRET_PASSWORD });
  const stored = store.get("alice")!;
  assert.equal(stored.iterations, 4096);
  assert.equal(stored.salt.byteLength, 16);
  assert.equal(stored.storedKey.byteLength, 32);
  assert.equal(stored.serverKey.byteLength, 32);
  assert.deepEqual(Object.keys(stored).sort(), [
    "iterations",
    "salt",
    "serverKey",
    "storedKey",
  ]);
  const bytes = new TextEncoder().encode(SECRET_PASSWORD);
  for (const key of [stored.storedKey, stored.serverKey]) {
    assert.ok(!encodeBase64(key).includes(encodeBase64(bytes)));
  }
  assertNoPassword(SECRET_PASSWORD, store, stored);
});

test("a wrong password is rejected by the node with AuthenticationError", async () => {
  const server = new ScramServer(await rfcStore());
  const error = await exchange(rfcClient("pencil2"), server);
  assert.ok(error instanceof AuthenticationError);
  assert.equal(error.code, "AUTH_FAILED");
  assert.equal(error.reason, "rejected");
  assert.equal(error.retryable, false);
  assert.equal(server.authenticated, false);
});

test("an unknown user gets a plausible challenge and the same rejection as a wrong password", async () => {
  const store = await rfcStore();
  const first = await new ScramServer(store).serverFirstMessage(
    "n,,n=mallory,r=abcdefgh",
  );
  assert.match(first, /^r=abcdefgh[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
  const again = await new ScramServer(store).serverFirstMessage(
    "n,,n=mallory,r=abcdefgh",
  );
  // The same fake salt every time, as a real user's would be.
  assert.equal(first.split(",")[1], again.split(",")[1]);
  const unknown = await exchange(
    new ScramClient({ username: "mallory", password: new Secret("x") }),
    new ScramServer(store),
  );
  const wrong = await exchange(rfcClient("nope"), new ScramServer(store));
  assert.ok(unknown instanceof AuthenticationError);
  assert.ok(wrong instanceof AuthenticationError);
  assert.equal(unknown.message, wrong.message);
});

test("a forged server signature fails with AuthenticationError (server-signature)", async () => {
  const client = rfcClient();
  client.clientFirstMessage();
  await client.clientFinalMessage(RFC.serverFirst);
  const forged = "v=" + encodeBase64(new Uint8Array(32).fill(7));
  await assert.rejects(client.verifyServerFinal(forged), (error) => {
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.reason, "server-signature");
    assert.equal(error.retryable, false);
    return true;
  });
});

test("a server signature off by one bit, or missing, does not verify", async () => {
  const signature = decodeBase64(RFC.serverFinal.slice(2))!;
  signature[31] ^= 1;
  for (const final of [`v=${encodeBase64(signature)}`, "x=1", "v=", "v=abc"]) {
    const client = rfcClient();
    client.clientFirstMessage();
    await client.clientFinalMessage(RFC.serverFirst);
    await assert.rejects(
      client.verifyServerFinal(final),
      (e) =>
        e instanceof AuthenticationError && e.reason === "server-signature",
      final,
    );
  }
});

test("a server-final e= error is a rejection naming the node's reason", async () => {
  const client = rfcClient();
  client.clientFirstMessage();
  await client.clientFinalMessage(RFC.serverFirst);
  await assert.rejects(client.verifyServerFinal("e=invalid-proof"), (e) => {
    assert.ok(e instanceof AuthenticationError);
    assert.equal(e.reason, "rejected");
    assert.match(e.message, /invalid-proof/);
    return true;
  });
});

test("iteration counts below 4096 are rejected, and so are absurdly high ones", async () => {
  const base = `r=${RFC.clientNonce}xyz,s=${RFC.salt},i=`;
  for (
    const i of [
      "4095",
      "1",
      "0",
      "-4096",
      "04096",
      "4096.5",
      "abc",
      "",
      String(SCRAM_MAX_ITERATIONS + 1),
      "99999999999",
    ]
  ) {
    const client = rfcClient();
    client.clientFirstMessage();
    await assert.rejects(
      client.clientFinalMessage(base + i),
      (e) => e instanceof AuthenticationError && e.reason === "bad-challenge",
      `i=${i}`,
    );
  }
  const client = rfcClient();
  client.clientFirstMessage();
  assert.match(await client.clientFinalMessage(base + "4096"), /,p=/);
});

test("a node's nonce that does not extend the client nonce is rejected", async () => {
  for (
    const nonce of [
      RFC.clientNonce, // not extended
      "X" + RFC.clientNonce + "abc", // not a prefix
      RFC.clientNonce.slice(1) + "abc",
      RFC.clientNonce + "a\u00e9", // not printable ASCII
    ]
  ) {
    const client = rfcClient();
    client.clientFirstMessage();
    await assert.rejects(
      client.clientFinalMessage(`r=${nonce},s=${RFC.salt},i=4096`),
      (e) => e instanceof AuthenticationError && e.reason === "bad-challenge",
      nonce,
    );
  }
});

test("malformed server-first messages, extensions and bad salts are rejected", async () => {
  const n = `${RFC.clientNonce}abc`;
  for (
    const message of [
      "",
      "garbage",
      `m=ext,r=${n},s=${RFC.salt},i=4096`,
      `s=${RFC.salt},r=${n},i=4096`,
      `r=${n},s=,i=4096`,
      `r=${n},s=not base64!,i=4096`,
      `r=${n},s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096`, // missing padding
      `r=${n},i=4096`,
    ]
  ) {
    const client = rfcClient();
    client.clientFirstMessage();
    await assert.rejects(
      client.clientFinalMessage(message),
      (e) => e instanceof AuthenticationError && e.reason === "bad-challenge",
      message,
    );
  }
});

test("client nonces come from getRandomValues: 24 base64 characters, never repeated", () => {
  const nonces = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const first = new ScramClient({
      username: "u",
      password: new Secret("p"),
    }).clientFirstMessage();
    const nonce = /^n,,n=u,r=(.+)$/.exec(first)![1];
    assert.match(nonce, /^[A-Za-z0-9+/]{24}$/);
    nonces.add(nonce);
  }
  assert.equal(nonces.size, 200);
});

test("user names with , and = are escaped on the wire and authenticate", async () => {
  assert.equal(escapeScramName("a,b=c"), "a=2Cb=3Dc");
  assert.equal(unescapeScramName("a=2Cb=3Dc"), "a,b=c");
  assert.equal(unescapeScramName("a=3"), undefined);
  assert.equal(unescapeScramName("a=2D"), undefined);
  const store = await CredentialStore.create({ "a,b=c": "pw" });
  const client = new ScramClient({
    username: "a,b=c",
    password: new Secret("pw"),
  });
  const server = new ScramServer(store);
  assert.match(client.clientFirstMessage(), /^n,,n=a=2Cb=3Dc,r=/);
  assert.equal(
    await exchange(
      new ScramClient({
        username: "a,b=c",
        password: new Secret("pw"),
      }),
      server,
    ),
    undefined,
  );
  assert.equal(server.username, "a,b=c");
});

test("SASLprep: the RFC 4013 examples", () => {
  assert.equal(saslprep("I\u00ADX"), "IX");
  assert.equal(saslprep("user"), "user");
  assert.equal(saslprep("USER"), "USER");
  assert.equal(saslprep("\u00AA"), "a");
  assert.equal(saslprep("\u2168"), "IX");
  assert.throws(
    () => saslprep("\u0007"),
    (e: unknown) =>
      e instanceof SaslprepError && e.code === "SASLPREP_FAILED" &&
      /prohibited character U\+0007 at position 0/.test(e.message),
  );
  assert.throws(
    () => saslprep("\u0627\u0031"),
    (e: unknown) =>
      e instanceof SaslprepError && e.code === "SASLPREP_FAILED" &&
      /right-to-left text must start and end with a right-to-left character/
        .test(e.message),
  );
});

test("SASLprep: spaces map, invisible characters vanish, compatibility forms fold, the rest is refused", () => {
  assert.equal(saslprep("pass\u00A0word"), "pass word");
  assert.equal(saslprep("pass\u3000word"), "pass word");
  assert.equal(saslprep("pa\u200Dss\uFEFF"), "pass");
  assert.equal(saslprep("\uFF50\uFF41\uFF53\uFF53"), "pass");
  assert.equal(saslprep("caf\u0065\u0301"), "caf\u00e9");
  assert.equal(saslprep("\u05D0\u05D1\u05D2"), "\u05D0\u05D1\u05D2");
  assert.equal(saslprep("\u0627\u0031\u0628"), "\u0627\u0031\u0628");
  for (
    const [bad, named] of [
      ["a\u0000b", /prohibited character U\+0000 at position 1/],
      ["a\u007Fb", /prohibited character U\+007F at position 1/],
      ["a\u0085b", /prohibited character U\+0085 at position 1/],
      ["a\uE000b", /prohibited character U\+E000 at position 1/],
      ["a\uFDD0b", /prohibited character U\+FDD0 at position 1/],
      ["a\uFFFEb", /prohibited character U\+FFFE at position 1/],
      ["a\u{1FFFF}b", /prohibited character U\+1FFFF at position 1/],
      ["a\u200Eb", /prohibited character U\+200E at position 1/],
      ["a\u202Eb", /prohibited character U\+202E at position 1/],
      ["a\u{E0041}b", /prohibited character U\+E0041 at position 1/],
      // right-to-left mixed with left-to-right
      ["\u05D0a\u05D1", /mixes right-to-left and left-to-right characters/],
      // right-to-left text must start right-to-left
      ["a\u05D0", /mixes right-to-left and left-to-right characters/],
    ] as const
  ) {
    assert.throws(
      () => saslprep(bad),
      (e: unknown) =>
        e instanceof SaslprepError && e.code === "SASLPREP_FAILED" &&
        named.test(e.message),
      JSON.stringify(bad),
    );
  }
  // The error never repeats the input. (A try/catch here once caught its
  // own assert.fail, so a saslprep that accepted the input passed.)
  assert.throws(() => saslprep("hunter2\u0007"), (error: unknown) => {
    assert.ok(error instanceof SaslprepError, String(error));
    assert.match(error.message, /U\+0007/);
    assert.ok(!error.message.includes("hunter2"), error.message);
    return true;
  });
});

test("SASLprep: every character of RFC 3454 B.1 is removed, U+200B too, though C.1.2 also lists it as a space; the other spaces become U+0020", () => {
  const b1 = [
    0x00ad,
    0x034f,
    0x1806,
    0x180b,
    0x180c,
    0x180d,
    0x200b,
    0x200c,
    0x200d,
    0x2060,
    0xfe00,
    0xfe0f,
    0xfeff,
  ];
  for (const cp of b1) {
    const input = `pass${String.fromCodePoint(cp)}word`;
    assert.equal(saslprep(input), "password", `U+${cp.toString(16)}`);
  }
  const spaces = [0x00a0, 0x1680, 0x202f, 0x205f, 0x3000];
  for (let cp = 0x2000; cp <= 0x200a; cp++) spaces.push(cp);
  for (const cp of spaces) {
    const input = `pass${String.fromCodePoint(cp)}word`;
    assert.equal(saslprep(input), "pass word", `U+${cp.toString(16)}`);
  }
});

test("a password typed with a no-break space authenticates against the plain-space one", async () => {
  const store = await CredentialStore.create({ bob: "two words" });
  const error = await exchange(
    new ScramClient({
      username: "bob",
      password: new Secret("two\u00A0words"),
    }),
    new ScramServer(store),
  );
  assert.equal(error, undefined);
});

test("a password SASLprep refuses fails before anything is sent, and the error does not show it", () => {
  const password = `${SECRET_PASSWORD}\u0007`;
  let caught: unknown;
  try {
    new ScramClient({ username: "u", password: new Secret(password) });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AuthenticationError);
  assert.equal(caught.reason, "invalid-credentials");
  assert.ok(!caught.message.includes("U+0007"));
  assertNoPassword(SECRET_PASSWORD, caught);
  assert.throws(
    () => new ScramClient({ username: "u", password: new Secret("\u00AD") }),
    (e) => e instanceof AuthenticationError && /empty/.test(e.message),
  );
});

test("the password never appears in errors, JSON or inspect output of either side", async () => {
  const store = await CredentialStore.create({ user: "the-right-one" });
  const client = new ScramClient({
    username: "user",
    password: new Secret(SECRET_PASSWORD),
  });
  const error = await exchange(client, new ScramServer(store));
  assert.ok(error instanceof AuthenticationError);
  const forgedClient = new ScramClient({
    username: "user",
    password: new Secret(SECRET_PASSWORD),
    nonce: RFC.clientNonce,
  });
  forgedClient.clientFirstMessage();
  const final = await forgedClient.clientFinalMessage(RFC.serverFirst);
  const forged = await forgedClient.verifyServerFinal("v=AAAA").catch((e) => e);
  assert.ok(forged instanceof AuthenticationError);
  assert.ok(!final.includes(SECRET_PASSWORD));
  assertNoPassword(SECRET_PASSWORD, error, forged, client, forgedClient, store);
});

test("the key cache derives keys once per salt and iteration count", async () => {
  const cache = new ScramKeyCache(2);
  const store = await rfcStore();
  for (let i = 0; i < 3; i++) {
    const client = new ScramClient({
      username: "user",
      password: new Secret("pencil"),
      cache,
    });
    assert.equal(await exchange(client, new ScramServer(store)), undefined);
  }
  assert.equal(cache.size, 1);
  // Bounded: the oldest entry goes.
  for (const salt of ["c2FsdDE=", "c2FsdDI=", "c2FsdDM="]) {
    const client = new ScramClient({
      username: "u",
      password: new Secret("p"),
      cache,
      nonce: "abc",
    });
    client.clientFirstMessage();
    await client.clientFinalMessage(`r=abcdef,s=${salt},i=4096`);
  }
  assert.equal(cache.size, 2);
  assertNoPassword("pencil", cache);
});

test("steps out of order are refused", async () => {
  // Refused for being out of order, not for some other fault in the input.
  const client = rfcClient();
  await assert.rejects(
    client.clientFinalMessage(RFC.serverFirst),
    (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.equal(error.argument, "step");
      assert.match(error.message, /right after clientFirstMessage\(\)/);
      return true;
    },
  );
  const server = new ScramServer(await rfcStore());
  await assert.rejects(
    server.serverFinalMessage(RFC.clientFinal),
    (error: unknown) => {
      assert.ok(error instanceof AuthenticationError, String(error));
      assert.match(error.message, /the exchange is not at step 2/);
      return true;
    },
  );
});

test("the node refuses channel binding, authorization ids and a replayed nonce", async () => {
  const store = await rfcStore();
  for (
    const [first, named] of [
      ["p=tls-unique,,n=user,r=abc", /channel binding is unsupported/],
      ["n,a=admin,n=user,r=abc", /authorization ids are unsupported/],
      ["x,,n=user,r=abc", /the GS2 header is malformed/],
      ["n,,r=abc,n=user", /the client-first message is not n=,r=/],
      ["n,,n=us=er,r=abc", /the user name has an "=" not escaped as =3D/],
      ["n,,n=,r=abc", /the user name is empty/],
    ] as const
  ) {
    await assert.rejects(
      new ScramServer(store).serverFirstMessage(first),
      (e: unknown) =>
        e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
        named.test(e.message),
      first,
    );
  }
  const server = new ScramServer(store, { nonce: RFC.serverNonce });
  await server.serverFirstMessage(RFC.clientFirst);
  const spliced = RFC.clientFinal.replace(RFC.serverNonce, "other");
  await assert.rejects(
    server.serverFinalMessage(spliced),
    (e: unknown) =>
      e instanceof AuthenticationError && e.code === "AUTH_FAILED" &&
      /the nonce does not match/.test(e.message),
  );
});

test("ScramClient and ScramKeyCache refuse bad options with InvalidArgumentError, read once: a NaN iteration bound no longer turns its check off", async () => {
  const base = { username: "user", password: new Secret("pencil") };
  const refused = (
    options: unknown,
    argument: string,
  ) =>
    assert.throws(
      () => new ScramClient(options as never),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === argument &&
        /new ScramClient\(\)/.test(e.message) &&
        !e.message.includes(SECRET_PASSWORD),
      argument,
    );
  for (const bound of ["minIterations", "maxIterations"]) {
    for (const value of [NaN, -1, 2.5, "4096", Infinity]) {
      refused({ ...base, [bound]: value }, `options.${bound}`);
    }
  }
  refused({ ...base, password: SECRET_PASSWORD }, "options.password");
  refused({ ...base, username: 5 }, "options.username");
  refused({ ...base, nonce: "a,b" }, "options.nonce");
  refused({ ...base, nonce: 5 }, "options.nonce");
  refused({ ...base, cache: 5 }, "options.cache");
  refused(null, "options");
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  refused(proxy, "options");
  for (const limit of [NaN, -1, 1.5, "8"]) {
    assert.throws(
      () => new ScramKeyCache(limit as number),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "limit",
      String(limit),
    );
  }
  // Read once: a getter that answered 4096 first and NaN later would have
  // turned the bound off after the check.
  let reads = 0;
  const client = new ScramClient({
    ...base,
    nonce: RFC.clientNonce,
    get minIterations() {
      return ++reads === 1 ? 10_000 : NaN;
    },
  });
  assert.equal(reads, 1);
  client.clientFirstMessage();
  await assert.rejects(
    client.clientFinalMessage(RFC.serverFirst),
    (e) =>
      e instanceof AuthenticationError &&
      /below the minimum of 10000/.test(e.message),
  );
});

test("saslprep refuses what is no string, without showing it: a number came back as it was", () => {
  for (const input of [5, 12345678, null, undefined, {}]) {
    assert.throws(
      () => saslprep(input as unknown as string),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.argument === "input" &&
        !e.message.includes("12345678"),
      String(input),
    );
  }
  assert.equal(saslprep("pencil"), "pencil");
});
