import assert from "node:assert/strict";
import { openByteSource } from "../../../lib/util/mod.ts";

/** A byte stream (BYOB reads) of the given chunks. */
function byteStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const next = chunks.shift();
      if (next === undefined) {
        controller.close();
        controller.byobRequest?.respond(0);
      } else controller.enqueue(next);
    },
  });
}

Deno.test("ByteSource.readInto() reads a byte stream into the given memory, once a call", async () => {
  const source = openByteSource(
    byteStream([new Uint8Array([1, 2, 3]), new Uint8Array([4])]),
  );
  const buffer = new Uint8Array(8);
  const first = await source.readInto(buffer);
  assert.deepEqual(first, new Uint8Array([1, 2, 3]));
  assert.equal(first.buffer.byteLength, 8, "the given memory, moved");
  assert.equal(buffer.byteLength, 0, "moved away from the caller's view");
  assert.deepEqual(
    await source.readInto(new Uint8Array(first.buffer)),
    new Uint8Array([4]),
  );
  assert.equal((await source.readInto(new Uint8Array(8))).length, 0);
});

Deno.test("ByteSource.readInto() gives bytes put back first, and a plain stream's chunks as they come", async () => {
  const source = openByteSource(
    ReadableStream.from([new Uint8Array([5, 6]), new Uint8Array([7])]),
  );
  source.unread(new Uint8Array([9]));
  assert.deepEqual(
    await source.readInto(new Uint8Array(4)),
    new Uint8Array([9]),
  );
  assert.deepEqual(
    await source.readInto(new Uint8Array(4)),
    new Uint8Array([5, 6]),
  );
  assert.deepEqual(
    await source.readInto(new Uint8Array(4)),
    new Uint8Array([7]),
  );
  assert.equal((await source.readInto(new Uint8Array(4))).length, 0);
});
