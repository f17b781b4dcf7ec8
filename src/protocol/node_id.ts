/**
 * What a node id is, one rule for the client reading HELLO_OK and for the
 * test kit (and the CLI) choosing one, so that a node the kit can start is
 * a node the client accepts, and no more.
 *
 * @module
 */

import { printable } from "../errors/base.ts";

/**
 * The most UTF-8 bytes a node id has: the reference node carries the id's
 * length in one byte at the head of every reply.
 */
export const MAX_NODE_ID_BYTES = 255;

const encoder = new TextEncoder();

/**
 * What is wrong with `id` as a node id, as the end of a sentence about it
 * (`"has 300 UTF-8 bytes, more than 255"`), or `undefined` when it is one:
 * 1 to {@linkcode MAX_NODE_ID_BYTES} UTF-8 bytes, every character one
 * that shows as it is ({@linkcode printable} leaves it alone). A control,
 * format or separator character would be escaped in every message and log
 * line that names the node, so the id shown would not be the id held in
 * `nodeId` fields, and two nodes could look the same.
 */
export function nodeIdProblem(id: string): string | undefined {
  if (id === "") return "is empty";
  // Every UTF-16 unit is at least one UTF-8 byte: a longer string is too
  // long without encoding all of it.
  if (id.length > MAX_NODE_ID_BYTES) {
    return `has more than ${MAX_NODE_ID_BYTES} UTF-8 bytes`;
  }
  const bytes = encoder.encode(id).length;
  if (bytes > MAX_NODE_ID_BYTES) {
    return `has ${bytes} UTF-8 bytes, more than ${MAX_NODE_ID_BYTES}`;
  }
  if (printable(id) !== id) return "has a control or format character";
  return undefined;
}
