/**
 * The flags gzcoredump runs with: `deno task build` compiles them into the
 * binary, and the tests run `main.ts` with exactly these, so what is tested
 * is what ships. `install.sh --launcher` writes the same list (a test checks
 * it).
 *
 * Why `--allow-all`: the tool's job is on files Deno classes as "special"
 * and opens only under `--allow-all`, whatever `--allow-read`/`--allow-write`
 * list: `/dev/kmsg` (the only log a `core_pattern` helper has) and
 * `/proc/<pid>/*` of the crashed process. Deno's permissions guard against
 * untrusted code; gzcoredump has no third-party code at all, and the kernel
 * runs it as root. So it gets all permissions, and none is prompted for.
 *
 * Why `--max-semi-space-size=1` (MiB): V8 then collects the short-lived
 * buffers of a core's blocks sooner; peak RSS compressing a 1.4 GB node core
 * fell from 185 MB to 149 MB, at no cost in speed (`deno task bench`).
 * Why `--expose-gc`: the loops that make a buffer per block ask for a
 * collection every 32 MiB (`lib/util/memory.ts`); the dead buffers of a 957 MB
 * python core no longer wait in each worker (peak RSS 156 MB, now 121 MB).
 *
 * @module
 */

/** Flags for `deno compile` and `deno run`. */
export const PERMISSION_FLAGS: readonly string[] = [
  "--allow-all",
  "--no-prompt",
  "--v8-flags=--max-semi-space-size=1,--expose-gc",
];
