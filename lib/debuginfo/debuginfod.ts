/**
 * A debuginfod client: `GET <server>/buildid/<id>/debuginfo` (or
 * `/executable`), as elfutils defines the protocol, for each server of
 * `DEBUGINFOD_URLS` in turn, into a private cache. A downloaded file is
 * kept only when its GNU build-id is the one asked for.
 *
 * @module
 */

import { join } from "node:path";
import { readBuildId, readElf } from "../elf/mod.ts";
import { openRegularFile, writeAll } from "../fs/mod.ts";
import { errorText } from "../util/mod.ts";

/** Where and how to ask debuginfod servers. */
export interface DebuginfodOptions {
  /** The servers, in the order they are asked. */
  urls: string[];
  /** The cache directory (created 0700). */
  cacheDir: string;
  /**
   * Milliseconds a server has to answer and send the file.
   *
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * Largest file taken.
   *
   * @default {1073741824}
   */
  maxBytes?: number;
}

/** What a debuginfod server serves for a build-id. */
export type DebuginfodKind = "debuginfo" | "executable";

/**
 * The debuginfod settings of an environment: `DEBUGINFOD_URLS` (servers
 * separated by spaces; empty or unset means no network) and the cache in
 * `$XDG_CACHE_HOME/gzcoredump/debuginfod` (else `~/.cache/...`).
 *
 * @example Usage
 * ```ts
 * import { debuginfodFromEnv } from "./debuginfod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(debuginfodFromEnv({}), undefined);
 * assert.equal(debuginfodFromEnv({ DEBUGINFOD_URLS: " " }), undefined);
 * assert.deepEqual(
 *   debuginfodFromEnv({ DEBUGINFOD_URLS: "https://a.example https://b.example/", HOME: "/root" }),
 *   {
 *     urls: ["https://a.example", "https://b.example"],
 *     cacheDir: "/root/.cache/gzcoredump/debuginfod",
 *   },
 * );
 * ```
 *
 * @param env The environment's variables.
 * @returns The settings, or undefined when no server is named.
 */
export function debuginfodFromEnv(
  env: Record<string, string | undefined>,
): DebuginfodOptions | undefined {
  const urls = (env.DEBUGINFOD_URLS ?? "").split(/\s+/).filter((u) => u)
    .map((u) => u.replace(/\/+$/, ""));
  if (urls.length === 0) return undefined;
  const cache = env.XDG_CACHE_HOME ??
    (env.HOME === undefined ? "/var/cache" : join(env.HOME, ".cache"));
  return { urls, cacheDir: join(cache, "gzcoredump", "debuginfod") };
}

/**
 * The file a debuginfod server has for a build-id: from the cache when it
 * is there (and still has that build-id), else downloaded from the first
 * server that has it, checked and cached.
 *
 * @param buildId The GNU build-id, lower-case hex.
 * @param kind `debuginfo` (the debug file) or `executable`.
 * @param options The servers and the cache.
 * @returns The cached file's path, or undefined when no server has it; the
 *   reasons each server gave are pushed to `problems`.
 */
export async function fetchDebuginfod(
  buildId: string,
  kind: DebuginfodKind,
  options: DebuginfodOptions & { problems?: string[] },
): Promise<string | undefined> {
  if (!/^[0-9a-f]{2,128}$/.test(buildId)) {
    throw new RangeError(
      `Cannot ask debuginfod for build-id '${buildId}': expected lower-case hex`,
    );
  }
  const { timeoutMs = 30_000, maxBytes = 1 << 30 } = options;
  const problems = options.problems ?? [];
  const dir = join(options.cacheDir, buildId);
  const cached = join(dir, kind);
  if (await hasBuildId(cached, buildId)) return cached;
  await privateDirectory(dir);
  for (const url of options.urls) {
    const source = `${url}/buildid/${buildId}/${kind}`;
    const temp = join(dir, `.${kind}.${crypto.randomUUID().slice(0, 8)}`);
    try {
      const response = await fetch(source, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok || response.body === null) {
        await response.body?.cancel();
        problems.push(`${source}: HTTP ${response.status}`);
        continue;
      }
      const declared = Number(response.headers.get("content-length") ?? "0");
      if (declared > maxBytes) {
        await response.body.cancel();
        problems.push(
          `${source}: ${declared} bytes, more than the ${maxBytes} taken`,
        );
        continue;
      }
      using file = await Deno.open(temp, {
        write: true,
        createNew: true,
        mode: 0o600,
      });
      let size = 0;
      for await (const chunk of response.body) {
        size += chunk.length;
        if (size > maxBytes) {
          throw new RangeError(`more than the ${maxBytes} bytes taken`);
        }
        await writeAll(file, chunk);
      }
      if (!(await hasBuildId(temp, buildId))) {
        problems.push(
          `${source}: the file served does not have build-id ${buildId}`,
        );
        await Deno.remove(temp).catch(() => {});
        continue;
      }
      await Deno.rename(temp, cached);
      return cached;
    } catch (error) {
      problems.push(`${source}: ${errorText(error)}`);
      await Deno.remove(temp).catch(() => {});
    }
  }
  return undefined;
}

/** True when `path` is a regular ELF file with this build-id. */
export async function hasBuildId(
  path: string,
  buildId: string,
): Promise<boolean> {
  try {
    using file = await openRegularFile(path, { noFollow: true });
    return (await readBuildId(file, await readElf(file))) === buildId;
  } catch {
    return false;
  }
}

/** Creates `dir` and its parents 0700 where missing; refuses a symlink. */
async function privateDirectory(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(dir);
  if (!info.isDirectory) {
    throw new Deno.errors.AlreadyExists(
      `Cannot use cache directory '${dir}': expected a directory, found ${
        info.isSymlink ? "a symbolic link" : "a file"
      }`,
    );
  }
  if ((info.mode! & 0o077) !== 0) await Deno.chmod(dir, 0o700);
}
