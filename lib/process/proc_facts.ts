/**
 * Facts about the crashed process from `/proc/<pid>`, read while it exists
 * (`core_pipe_limit` keeps it until the helper exits). Every read is bounded,
 * and the environment is never read: it holds secrets.
 *
 * @module
 */

/** Most bytes read from one `/proc` file. */
const MAX_PROC_BYTES = 64 << 10;

/** `/proc/<pid>/status` fields worth keeping with a core. */
const STATUS_FIELDS = [
  "Name",
  "State",
  "Tgid",
  "PPid",
  "TracerPid",
  "Uid",
  "Gid",
  "Groups",
  "NStgid",
  "NSpid",
  "VmPeak",
  "VmSize",
  "VmHWM",
  "VmRSS",
  "Threads",
  "Seccomp",
  "NoNewPrivs",
  "CapEff",
];

/** What `/proc/<pid>` told. */
export interface ProcessFacts {
  /** `cmdline`, one element per argument. */
  cmdline?: string[];
  /** `cgroup`, as the kernel wrote it. */
  cgroup?: string;
  /** Selected `status` fields, by name. */
  status: Record<string, string>;
  /** The command name in `stat`, to tell a reused pid. */
  comm?: string;
  /** When the process started, to tell a reused pid. */
  startTime?: Date;
}

/**
 * Reads `/proc/<pid>` facts. Missing files are skipped: the process may
 * have gone.
 *
 * @param pid The pid in the initial pid namespace (`%P`).
 * @param options Where `/proc` is mounted.
 * @returns The facts found, or undefined when `/proc/<pid>` does not exist.
 *
 * @example Usage
 * ```ts
 * import { readProcessFacts } from "./proc_facts.ts";
 * import assert from "node:assert/strict";
 *
 * // This process stands in for the crashed one.
 * const facts = await readProcessFacts(Deno.pid);
 * assert.equal(facts?.status.Tgid, String(Deno.pid));
 * assert.ok(facts?.cmdline !== undefined && facts.cmdline.length > 0);
 * assert.ok(facts?.startTime instanceof Date);
 * // A process that is gone leaves nothing to read.
 * assert.equal(await readProcessFacts(0), undefined);
 * ```
 */
export async function readProcessFacts(
  pid: number,
  options: { proc?: string } = {},
): Promise<ProcessFacts | undefined> {
  const base = `${options.proc ?? "/proc"}/${pid}`;
  const stat = await readSmall(`${base}/stat`);
  if (stat === undefined) return undefined;
  const facts: ProcessFacts = { status: {} };
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open !== -1 && close > open) facts.comm = stat.slice(open + 1, close);
  // Field 22, starttime, in clock ticks since boot; fields after the
  // command name (which may hold spaces and parentheses) start at 3.
  const ticks = Number(stat.slice(close + 2).split(" ")[19]);
  const btime = /^btime (\d+)$/m.exec(
    await readSmall(`${options.proc ?? "/proc"}/stat`) ?? "",
  );
  if (Number.isFinite(ticks) && btime !== null) {
    // USER_HZ is 100 on every Linux architecture gzcoredump runs on.
    facts.startTime = new Date((Number(btime[1]) + ticks / 100) * 1000);
  }
  const cmdline = await readSmall(`${base}/cmdline`);
  if (cmdline !== undefined) {
    facts.cmdline = cmdline.replace(/\0$/, "").split("\0");
  }
  const cgroup = await readSmall(`${base}/cgroup`);
  if (cgroup !== undefined) facts.cgroup = cgroup.trimEnd();
  const status = await readSmall(`${base}/status`);
  for (const line of status?.split("\n") ?? []) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon);
    if (colon > 0 && STATUS_FIELDS.includes(name)) {
      facts.status[name] = line.slice(colon + 1).trim().replace(/\s+/g, " ");
    }
  }
  return facts;
}

/** Reads at most {@linkcode MAX_PROC_BYTES} of a small file, or undefined. */
async function readSmall(path: string): Promise<string | undefined> {
  try {
    using file = await Deno.open(path, { read: true });
    const chunks: Uint8Array[] = [];
    let total = 0;
    const buffer = new Uint8Array(4096);
    while (total < MAX_PROC_BYTES) {
      const n = await file.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, Math.min(n, MAX_PROC_BYTES - total)));
      total += n;
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return new TextDecoder().decode(bytes);
  } catch {
    return undefined;
  }
}
