/**
 * Helpers for the store's tests: captures as the kernel runs them, the
 * sidecars they leave, small tmpfs mounts, random bytes.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  check,
  listDir,
  mainCommand,
  runMain,
  type RunResult,
  tempDir,
} from "./_helpers.ts";

/** Now, in epoch seconds. */
export const NOW = Math.floor(Date.now() / 1000);

/** Captures `bytes` as the kernel would, at time `t` (epoch seconds). */
export async function capture(
  store: string,
  bytes: Uint8Array,
  args: string[] = [],
  t = NOW,
): Promise<RunResult> {
  return await runMain(["-c", "-p", store, "-t", String(t), ...args], {
    stdin: bytes,
  });
}

/** A core stored by `-c`: its files' names and its sidecar, parsed. */
export interface StoredCore {
  /** The archive's file name (`Core_..._NAME.gz`). */
  archive: string;
  /** The sidecar's file name. */
  sidecar: string;
  /** The sidecar. */
  // deno-lint-ignore no-explicit-any
  metadata: any;
}

/**
 * Stores the core file `core` in `store` (created 0700 when missing) as
 * the kernel's pipe would, with `-a name` and `args`; asserts it worked.
 */
export async function storeCore(
  store: string,
  core: string,
  name: string,
  args: string[] = [],
  env?: Record<string, string>,
): Promise<StoredCore> {
  await Deno.mkdir(store, { mode: 0o700, recursive: true });
  const result = await runMain(["-c", "-p", store, "-a", name, ...args], {
    stdin: { path: core },
    ...(env === undefined ? {} : { env }),
  });
  assert.equal(result.code, 0, result.stderr);
  const archive = (await listDir(store)).filter((n) =>
    n.startsWith("Core_") && n.endsWith(`_${name}.gz`)
  ).at(-1);
  const sidecar = (await listDir(store)).filter((n) =>
    n.startsWith("Core_") && n.endsWith(`_${name}.json`)
  ).at(-1);
  assert.ok(archive !== undefined && sidecar !== undefined, result.stderr);
  return {
    archive,
    sidecar,
    metadata: JSON.parse(await Deno.readTextFile(`${store}/${sidecar}`)),
  };
}

/** The archives in the store, sorted. */
export async function archives(store: string): Promise<string[]> {
  return (await listDir(store)).filter((n) => /\.(gz|zz)$/.test(n));
}

/** Every sidecar in the store, parsed, with its file name as `_file`. */
export async function sidecars(
  store: string,
): Promise<Record<string, unknown>[]> {
  const names = (await listDir(store)).filter((n) => n.endsWith(".json"));
  return await Promise.all(
    names.map(async (n) => ({
      _file: n,
      ...JSON.parse(await Deno.readTextFile(`${store}/${n}`)),
    })),
  );
}

/** A small tmpfs mount, unmounted on dispose. */
export async function tmpfs(
  size: string,
): Promise<{ path: string } & AsyncDisposable> {
  const dir = await tempDir();
  const path = `${dir.path}/fs`;
  await Deno.mkdir(path);
  await check("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=${size},mode=0700`,
    "tmpfs",
    path,
  ]);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await check("umount", [path]);
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** Bytes that do not compress. */
export function random(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, i + 65536));
  }
  return bytes;
}

/** A capture started as the kernel starts it, fed by the test at its pace. */
export interface SlowCapture {
  /** The gzcoredump process's pid. */
  pid: number;
  /** Writes bytes into its stdin. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes its stdin (the core is complete). */
  end(): Promise<void>;
  /** Waits for it to exit. */
  result(): Promise<RunResult>;
}

/** Starts `main.ts -c ...` with a stdin the test writes at its own pace. */
export function slowCapture(args: string[]): SlowCapture {
  const [exe, ...pre] = mainCommand();
  const child = new Deno.Command(exe!, {
    args: [...pre, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  const output = child.output();
  return {
    pid: child.pid,
    write: (bytes) => writer.write(bytes).catch(() => {}),
    end: () => writer.close().catch(() => {}),
    async result() {
      const out = await output;
      return {
        code: out.code,
        stdout: out.stdout,
        stderr: new TextDecoder().decode(out.stderr),
      };
    },
  };
}

/** Waits until `path` lists a file whose name matches. */
export async function waitForFile(
  path: string,
  pattern: RegExp,
  seconds = 30,
): Promise<string> {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const names = await Array.fromAsync(Deno.readDir(path)).catch(() => []);
    const found = names.find((e) => pattern.test(e.name));
    if (found !== undefined) return found.name;
    if (Date.now() > until) {
      throw new Error(`no file like ${pattern} in ${path} after ${seconds} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
