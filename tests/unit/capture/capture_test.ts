/**
 * captureCore on a temporary store, fed bytes that are not a real core
 * (so no toolchain is needed): what lands in the store is checked with
 * node:zlib and the store's own listing.
 */
import assert from "node:assert/strict";
import { gunzipSync, inflateSync } from "node:zlib";
import {
  captureCore,
  type CaptureOptions,
  type CaptureResult,
} from "../../../lib/capture/mod.ts";
import {
  coreBaseName,
  listStore,
  type StoreOptions,
} from "../../../lib/store/mod.ts";
import { signalName } from "../../../lib/process/mod.ts";
import {
  chunked,
  randomBytes,
  sameBytes,
  tempDir,
  textBytes,
} from "../_temp.ts";

/** Limits that do not depend on the machine's disk. */
const ROOMY: StoreOptions = {
  maxUse: { bytes: 1 << 30 },
  keepFree: { bytes: 0 },
};

/** Text, then zeros, then random bytes: `length` of them. */
function core(length = 300_000): Uint8Array {
  const data = new Uint8Array(length);
  data.set(textBytes(Math.floor(length / 3), 7));
  data.set(randomBytes(Math.floor(length / 6)), Math.floor(length / 3 * 2));
  return data;
}

async function capture(
  directory: string,
  data: Uint8Array,
  options: Partial<CaptureOptions> = {},
): Promise<CaptureResult> {
  return await captureCore(chunked(data, 65_536), {
    directory,
    jobs: 1,
    ...options,
    store: { ...ROOMY, ...options.store },
  });
}

Deno.test("captureCore() stores a gzip archive of the input and its record, named after the crash", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = core();
  const time = 1_764_000_000;
  const result = await capture(store, data, {
    argument: "my prog",
    facts: { signal: 11, time },
  });
  const base = coreBaseName(new Date(time * 1000), "my prog");
  assert.equal(result.archive, `${store}/${base}.gz`);
  assert.equal(result.metadata, `${store}/${base}.json`);
  assert.equal(result.reason, undefined);
  assert.equal(result.lost, false);
  assert.equal(result.coreSize, data.length);
  const archive = await Deno.readFile(result.archive);
  assert.equal(result.compressedSize, archive.length);
  assert.equal(sameBytes(gunzipSync(archive), data), undefined);
  const record = JSON.parse(await Deno.readTextFile(result.metadata));
  assert.equal(record.archive, `${base}.gz`);
  assert.equal(record.format, "gzip");
  assert.equal(record.signal, 11);
  assert.equal(record.signal_name, signalName(11));
  assert.equal(record.time, new Date(time * 1000).toISOString());
  assert.equal(record.core_size, data.length);
  assert.equal(record.compressed_size, archive.length);
  assert.equal(record.argument, "my prog");
  assert.equal(record.truncated, false);
  // Not an ELF core: said in one line, and the core is kept all the same.
  assert.match(
    record.elf_error,
    /^Cannot parse ELF: found magic .* expected 7f 45 4c 46$/,
  );
  // The store lists it as one entry, its files private.
  const entries = await listStore(store);
  assert.deepEqual(entries.map((e) => [e.base, e.archive, e.metadata]), [
    [base, `${base}.gz`, `${base}.json`],
  ]);
  assert.deepEqual(entries[0]!.temporaries, []);
  for (const file of entries[0]!.files) {
    assert.equal((await Deno.stat(`${store}/${file}`)).mode! & 0o777, 0o600);
  }
  assert.equal((await Deno.stat(store)).mode! & 0o777, 0o700);
});

Deno.test("captureCore() writes zlib when asked, with workers, and numbers a second crash of the same second", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = core(2_500_000);
  const facts = { time: 1_764_000_000 };
  const first = await capture(store, data, { format: "zlib", jobs: 2, facts });
  assert.ok(first.archive?.endsWith(".zz"));
  const second = await capture(store, data, { format: "zlib", jobs: 2, facts });
  assert.notEqual(second.archive, first.archive);
  for (const result of [first, second]) {
    const archive = await Deno.readFile(result.archive!);
    assert.equal(sameBytes(inflateSync(archive), data), undefined);
  }
  const bases = (await listStore(store)).map((e) => e.base);
  assert.equal(bases.length, 2);
  assert.equal(new Set(bases).size, 2);
});

Deno.test("captureCore() with --max-size stores the first bytes and says it cut the core", async () => {
  await using dir = await tempDir();
  const data = core();
  const result = await capture(`${dir.path}/store`, data, {
    store: { maxSize: 100_000 },
  });
  assert.ok(result.archive !== undefined);
  assert.match(result.reason ?? "", /max-size/);
  const archive = await Deno.readFile(result.archive);
  assert.equal(
    sameBytes(gunzipSync(archive), data.subarray(0, 100_000)),
    undefined,
  );
  const record = JSON.parse(await Deno.readTextFile(result.metadata!));
  assert.equal(record.truncated, true);
});

Deno.test("captureCore() keeps metadata only beyond --rate, per program, and --max-count removes the oldest", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const data = core(50_000);
  const rate = { count: 2, periodMs: 3_600_000 };
  const results: CaptureResult[] = [];
  for (const [i, argument] of ["app", "app", "app", "other"].entries()) {
    results.push(
      await capture(store, data, {
        argument,
        facts: { time: 1_764_000_000 + i },
        store: { rate },
      }),
    );
  }
  assert.deepEqual(results.map((r) => r.archive !== undefined), [
    true,
    true,
    false,
    true,
  ]);
  assert.match(results[2]!.reason ?? "", /--rate/);
  assert.ok(results[2]!.metadata !== undefined, "the crash is recorded");
  // Now at most two cores: the oldest goes, its record stays.
  const next = await capture(store, data, {
    argument: "third",
    facts: { time: 1_764_000_100 },
    store: { maxCount: 2 },
  });
  assert.ok(next.archive !== undefined);
  const entries = await listStore(store);
  const archives = entries.filter((e) => e.archive !== undefined);
  assert.equal(archives.length, 2);
  assert.ok(
    !archives.some((e) => `${store}/${e.archive}` === results[0]!.archive),
    "the oldest core went",
  );
});

Deno.test("captureCore() of an empty input or RLIMIT_CORE 0 keeps the record only", async () => {
  await using dir = await tempDir();
  const store = `${dir.path}/store`;
  const empty = await capture(store, new Uint8Array(0), {
    facts: { time: 1_764_000_000 },
  });
  assert.equal(empty.archive, undefined);
  assert.equal(empty.coreSize, 0);
  assert.ok(empty.reason !== undefined && !empty.reason.includes("\n"));
  assert.ok(empty.metadata !== undefined);
  const limited = await capture(store, core(50_000), {
    facts: { time: 1_764_000_001, rlimit: 0 },
  });
  assert.equal(limited.archive, undefined);
  assert.match(limited.reason ?? "", /RLIMIT_CORE/);
  // --ignore-rlimit stores it anyway.
  const ignored = await capture(store, core(50_000), {
    facts: { time: 1_764_000_002, rlimit: 0 },
    store: { ignoreRlimit: true },
  });
  assert.ok(ignored.archive !== undefined);
});

Deno.test("captureCore() starts its workers only once the input holds less than a block ready: before, blocks wait in the spill file", async () => {
  await using dir = await tempDir();
  const data = textBytes(12 << 20, 3);
  const spilled = async (backlog: (delivered: number) => number) => {
    // A writer that is ahead of the reads, as the kernel is: what it has
    // not delivered yet is what the pipe holds ready.
    let delivered = 0;
    const input = chunked(data, 1 << 16).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          delivered += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
    const result = await captureCore(input, {
      directory: dir.path,
      jobs: 2,
      pressure: () => false,
      backlog: () => backlog(delivered),
      store: ROOMY,
    });
    const stored = gunzipSync(await Deno.readFile(result.archive!));
    assert.equal(sameBytes(stored, data), undefined);
    const record = JSON.parse(await Deno.readTextFile(result.metadata!));
    await Deno.remove(result.archive!);
    await Deno.remove(result.metadata!);
    return record.spilled_blocks as number;
  };
  // The rest of the core is ready until its last block: every block but
  // the first (deflated in this thread) waits for the workers' start.
  assert.equal(await spilled((delivered) => data.length - delivered), 11);
  // Nothing ready: the workers start at the second block and take the
  // next four; only blocks read while all four are out wait.
  const started = await spilled(() => 0);
  assert.ok(started <= 7, `${started} blocks waited`);
});
