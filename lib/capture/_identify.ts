/**
 * Private: who crashed: the program read through /proc while the process is
 * there, its `.uuid` and build-id.
 *
 * @module
 */

import {
  exePath,
  type KernelFacts,
  type ProcessFacts,
  readProcessFacts,
} from "../process/mod.ts";
import {
  type CoreReport,
  type ProgramInfo,
  readProgramInfo,
} from "../elf/mod.ts";
import { errorText, printable } from "../util/mod.ts";

/** What {@linkcode identifyProgram} found. */
export interface Identity {
  program?: ProgramInfo;
  programSource?: string;
  process?: ProcessFacts;
  exeLink?: string;
}

/**
 * Finds the crashed program: through `/proc/<pid>/exe` when the process is
 * still there and is the one that crashed (its command name matches the
 * core's), which reaches the executed file even when it was replaced,
 * deleted or lives in another mount namespace; else through `--exe`.
 * Paths inside the crashed process's root are never opened.
 */
export async function identifyProgram(
  facts: KernelFacts,
  report: CoreReport,
  warnings: string[],
): Promise<Identity> {
  const identity: Identity = {};
  const comm = report.notes?.process?.comm;
  if (facts.pid !== undefined) {
    const process = await readProcessFacts(facts.pid);
    // Trust /proc/<pid> only for the process that crashed: same command
    // name as the core's, started before the crash.
    const crashed = facts.time === undefined
      ? undefined
      : new Date(facts.time * 1000);
    // The kernel keeps 15 bytes of a command name; a core may hold 16.
    if (
      process !== undefined && comm !== undefined &&
      process.comm !== comm.slice(0, 15)
    ) {
      warnings.push(
        `ignored /proc/${facts.pid}: it is '${process.comm}', the core is of '${comm}' (the pid was reused)`,
      );
    } else if (
      process?.startTime !== undefined && crashed !== undefined &&
      process.startTime.getTime() > crashed.getTime() + 2000
    ) {
      warnings.push(
        `ignored /proc/${facts.pid}: it started at ${process.startTime.toISOString()}, after the crash at ${crashed.toISOString()} (the pid was reused)`,
      );
    } else if (process !== undefined) {
      identity.process = process;
      const exe = `/proc/${facts.pid}/exe`;
      try {
        identity.exeLink = await Deno.readLink(exe);
      } catch {
        // A kernel thread or a process already gone has no exe link.
      }
      try {
        identity.program = await readProgramInfo(exe);
        identity.programSource = exe;
      } catch (error) {
        warnings.push(`${errorText(error)} (the program, through ${exe})`);
      }
      // The crashed process's own executable was there: a path named by
      // the arguments can only be worse.
      return identity;
    }
  }
  if (facts.exe !== undefined) {
    const path = exePath(facts)!;
    if (!path.startsWith("/") || path.split("/").includes("..")) {
      warnings.push(
        `ignored --exe '${
          printable(path)
        }': expected an absolute path without '..', as the kernel's %E is`,
      );
      return identity;
    }
    try {
      identity.program = await readProgramInfo(path, { noFollow: true });
      identity.programSource = path;
    } catch (error) {
      warnings.push(`${errorText(error)} (the program, from --exe)`);
    }
  }
  return identity;
}

export function hostnameSource(facts: KernelFacts): { hostname?: string } {
  if (facts.hostname !== undefined) return {};
  try {
    return { hostname: Deno.hostname() };
  } catch {
    return {};
  }
}
