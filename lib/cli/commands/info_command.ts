/**
 * `gzcoredump info FILE [--json]`: describes a program, a raw core, or a
 * stored `.gz`/`.zz` core. A stored core is streamed through the decoder
 * and the in-flight inspector, never unpacked to disk.
 *
 * @module
 */

import { openRegularFile, readFileAt } from "../../fs/mod.ts";
import { basename } from "node:path";
import { decompress, detectFormat, type Format } from "../../compress/mod.ts";
import { CoreInspectorStream } from "../../elf/mod.ts";
import {
  ET_CORE,
  machineName,
  parseElfHeader,
  typeName,
} from "../../elf/mod.ts";
import { buildMetadata, type CoreMetadata } from "../../store/mod.ts";
import { type ProgramInfo, readProgramInfo } from "../../elf/mod.ts";
import {
  type Backtrace,
  backtraceCore,
  backtraceSignature,
  type CrashSignature,
} from "../../unwind/mod.ts";
import { compact } from "../../util/mod.ts";
import {
  demangle,
  fetchDebuginfod,
  symbolizeFrames,
  type SymbolizeOptions,
} from "../../debuginfo/mod.ts";

/** What {@linkcode describeFile} found. */
export type FileDescription =
  | {
    kind: "program";
    path: string;
    size: number;
    type: number;
    machine: number;
    elfClass: 32 | 64;
    littleEndian: boolean;
    sections: number;
    segments: number;
    program: ProgramInfo;
  }
  | {
    kind: "core";
    path: string;
    /** How the core is stored: compressed, a raw ELF core, or not at all. */
    container: Format | "raw" | "metadata only";
    metadata: CoreMetadata;
  };

/** Options for {@linkcode describeFile}. */
export interface DescribeOptions {
  /**
   * The crashed program's file, for a core whose notes do not name it
   * (qemu's): its frames are unwound and named from it.
   *
   * @default {undefined}
   */
  exe?: string;
  /**
   * Name the trace's frames on this host, from their build-ids and
   * offsets: modules here and their debug files. A stored core whose
   * sidecar has a trace is not unpacked.
   *
   * @default {undefined}
   */
  symbolize?: SymbolizeOptions;
}

/**
 * Describes a file: a program (its identity), or a core (the sidecar's
 * fields, computed from the core; for a stored core, the fields only the
 * capture could know come from its `.json` when present).
 *
 * @param path The file.
 * @returns The description.
 * @throws {ElfFormatError} When the file is neither ELF nor gzip/zlib.
 * @throws {ArchiveFormatError} When a stored core is corrupt.
 *
 * @example Usage
 * ```ts ignore
 * import { describeFile, formatDescription } from "./info_command.ts";
 * const text = formatDescription(await describeFile("/var/crash/Core_x.gz"));
 * ```
 */
export async function describeFile(
  path: string,
  options: DescribeOptions = {},
): Promise<FileDescription> {
  const description = await describeWhole(path, options);
  const { symbolize } = options;
  if (description.kind !== "core" || symbolize === undefined) {
    return description;
  }
  const { metadata } = description;
  const threads = [];
  for (const thread of metadata.backtrace ?? []) {
    threads.push({
      ...thread,
      frames: await symbolizeFrames(thread.frames, symbolize),
    });
  }
  if (metadata.backtrace !== null) metadata.backtrace = threads;
  return description;
}

async function describeWhole(
  path: string,
  options: DescribeOptions,
): Promise<FileDescription> {
  const debuginfod = options.symbolize?.debuginfod;
  let head: Uint8Array;
  let info: Deno.FileInfo;
  {
    using file = await openRegularFile(path);
    info = await file.stat();
    head = await readFileAt(file, 0, Math.min(info.size, 64));
  }
  const format = detectFormat(head);
  const recordOnly = format === undefined &&
    path.endsWith(".json") && head[0] === 0x7b;
  if (recordOnly || (format !== undefined && options.symbolize !== undefined)) {
    // A crash whose core was not stored: its record is all there is. To
    // name a stored core's frames its record's trace is enough: the core
    // stays packed.
    const record = await readRecord(path);
    if (
      record?.tool === "gzcoredump" && (recordOnly || record.backtrace)
    ) {
      return {
        kind: "core",
        path,
        container: format ?? "metadata only",
        metadata: record as CoreMetadata,
      };
    }
  }
  if (format === undefined) {
    const header = parseElfHeader(head, { fileSize: info.size });
    if (header.type !== ET_CORE) {
      const program = await readProgramInfo(path);
      return {
        kind: "program",
        path,
        size: info.size,
        type: header.type,
        machine: header.machine,
        elfClass: header.class,
        littleEndian: header.littleEndian,
        sections: program.elf.sections.length,
        segments: program.elf.programs.length,
        program,
      };
    }
  }
  const inspector = new CoreInspectorStream();
  const file = await openRegularFile(path);
  const bytes = format === undefined
    ? file.readable
    : decompress(file.readable, {
      label: `'${path}'`,
      size: (await file.stat()).size,
    });
  await bytes.pipeThrough(inspector).pipeTo(new WritableStream());
  if (format === undefined) {
    using again = await openRegularFile(path);
    await inspector.completeFrom(again);
  }
  const computed = buildMetadata({
    time: info.mtime ?? new Date(0),
    report: inspector.report,
    ...traced(
      await backtraceCore(inspector.report, {
        ...compact({ exe: options.exe }),
        // Modules not here, from debuginfod, only when naming is asked for.
        ...(debuginfod === undefined ? {} : {
          fetchModule: (id: string) =>
            fetchDebuginfod(id, "executable", debuginfod),
        }),
      }),
    ),
    ...compact({
      stored: format === undefined ? undefined : {
        archive: basename(path),
        format,
        level: undefined,
        compressedSize: info.size,
        durationMs: 0,
        uuidFile: undefined,
      },
    }),
  });
  if (format !== undefined) {
    computed.duration_ms = null;
    Object.assign(computed, await captureFields(path));
  }
  return {
    kind: "core",
    path,
    container: format ?? "raw",
    metadata: computed,
  };
}

/** A trace and the signature of its crashing thread. */
function traced(
  backtrace: Backtrace,
): { backtrace: Backtrace; signature?: CrashSignature } {
  const signature = backtraceSignature(backtrace);
  return signature === undefined ? { backtrace } : { backtrace, signature };
}

/** The capture's record of a stored core (its `.json`), when it is there. */
async function readRecord(
  path: string,
): Promise<Partial<CoreMetadata> | undefined> {
  try {
    using file = await openRegularFile(path.replace(/\.(gz|zz)$/, ".json"));
    const { size } = await file.stat();
    if (size > 1 << 20) return undefined;
    return JSON.parse(
      new TextDecoder().decode(await readFileAt(file, 0, size)),
    );
  } catch {
    return undefined;
  }
}

/**
 * What the capture knew beyond the core (the kernel's facts, the program,
 * /proc): the record's fields that are set. They win over what is computed
 * from the core, which fills the rest.
 */
async function captureFields(path: string): Promise<Partial<CoreMetadata>> {
  const fields: Partial<Record<keyof CoreMetadata, unknown>> = {};
  for (const [name, value] of Object.entries(await readRecord(path) ?? {})) {
    if (value !== null && value !== undefined) {
      fields[name as keyof CoreMetadata] = value;
    }
  }
  return fields as Partial<CoreMetadata>;
}

/**
 * Formats a description for a person.
 *
 * @param description What {@linkcode describeFile} returned.
 * @returns Lines of text, without a final newline.
 */
export function formatDescription(description: FileDescription): string {
  const lines: string[] = [];
  const row = (label: string, value: unknown) => {
    if (value !== null && value !== undefined && value !== "") {
      lines.push(`${(label + ":").padEnd(14)}${value}`);
    }
  };
  if (description.kind === "program") {
    const { program } = description;
    row("File", `${description.path} (${description.size} bytes)`);
    row(
      "ELF",
      `ELF${description.elfClass} ${
        description.littleEndian ? "little" : "big"
      }-endian ${machineName(description.machine)} ${
        typeName(description.type)
      }, ${description.segments} segments, ${description.sections} sections`,
    );
    row(
      "UUID",
      program.uuid === undefined
        ? "none (no .uuid section)"
        : JSON.stringify(new TextDecoder().decode(program.uuid)) +
          (program.uuidTruncated ? " (cut)" : ""),
    );
    row("Build-id", program.buildId ?? "none");
    row("Package", program.packageMetadata);
    return lines.join("\n");
  }
  const m = description.metadata;
  row(
    "File",
    `${description.path} (${
      description.container === "raw" ? "raw core" : description.container
    }${m.compressed_size === null ? "" : `, ${m.compressed_size} bytes`})`,
  );
  row(
    "Core",
    `${m.core_size} bytes${
      m.expected_size === null
        ? ""
        : m.truncated
        ? `, TRUNCATED: ${m.expected_size} expected`
        : ", complete"
    }${
      m.machine === null ? "" : `, ELF${m.elf_class} ${machineName(m.machine)}`
    }`,
  );
  row(
    "Time",
    description.container === "raw"
      ? `${m.time} (the file's modification time: a raw core holds no crash time)`
      : m.time,
  );
  row(
    "Process",
    m.pid === null
      ? null
      : `pid ${m.pid}${
        m.comm === null ? "" : ` (${m.comm})`
      }, uid ${m.uid}, gid ${m.gid}${
        m.threads === null
          ? ""
          : `, ${m.threads} thread${m.threads === 1 ? "" : "s"}`
      }`,
  );
  row("Command", m.cmdline?.join(" "));
  row("Executable", m.exe);
  row(
    "Signal",
    m.signal === null
      ? null
      : `${m.signal} (${m.signal_name})${
        m.signal_code === null ? "" : `, code ${m.signal_code}`
      }${m.fault_address === null ? "" : `, address ${m.fault_address}`}`,
  );
  row("UUID", m.uuid === null ? null : JSON.stringify(m.uuid));
  row("Build-id", m.build_id);
  row(
    "Signature",
    m.signature
      ? `${m.signature.id} (${m.signature.frames.join(" < ")})`
      : null,
  );
  row("Hostname", m.hostname);
  row("ELF problem", m.elf_error);
  row(
    "Not stored",
    description.container === "metadata only" ? m.reason : null,
  );
  row("Note", description.container !== "metadata only" ? m.reason : null);
  lines.push(...formatTrace(m));
  if (m.modules.length > 0) {
    lines.push(`Modules:      ${m.modules.length}`);
    for (const module of m.modules) {
      lines.push(
        `  ${module.start}-${module.end} ${
          module.build_id ?? "-"
        } ${module.path}`,
      );
    }
  }
  return lines.join("\n");
}

/** The stack traces, as coredumpctl prints them: crashing thread first. */
function formatTrace(m: CoreMetadata): string[] {
  const lines: string[] = [];
  if (m.backtrace_error !== null && m.backtrace_error !== undefined) {
    lines.push(`Backtrace:    ${m.backtrace_error}`);
  }
  for (const thread of m.backtrace ?? []) {
    lines.push(
      `Stack trace of thread ${thread.tid}${
        thread.name ? ` (${thread.name})` : ""
      }${thread.crashed ? ", which crashed" : ""}:`,
    );
    for (const [i, frame] of thread.frames.entries()) {
      const name = frame.function === null
        ? "n/a"
        : `${
          demangle(frame.function) ?? frame.function
        }+${frame.function_offset}`;
      const where = frame.module === null
        ? ""
        : ` (${basename(frame.module)} + ${frame.offset})`;
      const source = frame.file === undefined
        ? ""
        : ` at ${frame.file}:${frame.line}`;
      lines.push(
        `  #${String(i).padEnd(2)} 0x${
          frame.pc.slice(2).padStart(16, "0")
        } ${name}${where}${source}${
          frame.trust === "cfi" ? "" : ` [${frame.trust}]`
        }`,
      );
      // Inlined where the PC is, innermost first.
      for (const inline of frame.inlined ?? []) {
        lines.push(
          `        inlined: ${inline.function}${
            inline.file === undefined ? "" : ` at ${inline.file}:${inline.line}`
          }`,
        );
      }
    }
    if (thread.error !== undefined) lines.push(`  (${thread.error})`);
  }
  return lines;
}
