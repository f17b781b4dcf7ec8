import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { MessageCodec } from "../src/protocol/codec.ts";
import type { Message } from "../src/protocol/frame.ts";

interface Vector {
  name: string;
  message: Message;
  frame: Uint8Array;
}

function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\(empty\)/, "").replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

function readVectors(): Vector[] {
  const doc = readFileSync(
    new URL("../docs/PROTOCOL.md", import.meta.url),
    "utf8",
  );
  const blocks = [...doc.matchAll(/```text vector\n([\s\S]*?)```/g)];
  return blocks.map(([, body]) => {
    const field = (name: string) => {
      const m = body.match(new RegExp(`^${name}: (.*)$`, "m"));
      assert.ok(m, `vector is missing ${name}:\n${body}`);
      return m[1];
    };
    const frameText = body.slice(body.indexOf("frame:") + 6);
    return {
      name: field("name"),
      message: {
        type: parseInt(field("type"), 16),
        flags: parseInt(field("flags"), 16),
        sequence: Number(field("sequence")),
        payload: fromHex(field("payload")),
      },
      frame: fromHex(frameText),
    };
  });
}

test("docs/PROTOCOL.md carries test vectors", () => {
  assert.ok(readVectors().length >= 6);
});

test("every vector decodes to its message", () => {
  for (const v of readVectors()) {
    const decoded: Message[] = [];
    new MessageCodec().decode(v.frame, (m) => decoded.push(m));
    assert.equal(decoded.length, 1, v.name);
    assert.equal(decoded[0].type, v.message.type, v.name);
    assert.equal(decoded[0].flags, v.message.flags, v.name);
    assert.equal(decoded[0].sequence, v.message.sequence, v.name);
    assert.deepEqual([...decoded[0].payload], [...v.message.payload], v.name);
  }
});

test("every vector's message encodes to its exact bytes", () => {
  for (const v of readVectors()) {
    assert.deepEqual(
      [...new MessageCodec().encode(v.message)],
      [...v.frame],
      v.name,
    );
  }
});
