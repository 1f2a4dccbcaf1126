/**
 * The crash store's options: where it is, its limits, policies and hooks.
 *
 * @module
 */

import type { Rate, SizeSpec } from "../util/mod.ts";

/** The store directory used when `-p` is absent, as in the original tool. */
export const DEFAULT_DIRECTORY = "/var/crash";

/** Limits, policies and hooks of the crash store (capture mode). */
export interface StoreOptions {
  /** Most bytes all stored cores may use. */
  maxUse?: SizeSpec;
  /** Free space to leave on the file system. */
  keepFree?: SizeSpec;
  /** Most cores kept. */
  maxCount?: number;
  /** Most records of metadata only kept (they never evict a core). */
  maxRecords?: number;
  /** Most bytes of one core read; the rest is cut. */
  maxSize?: number;
  /** Cores older than this go at the next capture. */
  maxAgeMs?: number;
  /** Most cores per program per period. */
  rate?: Rate;
  /**
   * Most bytes of core that wait on disk, in the store's file system, for
   * a compression worker while the kernel writes faster than they
   * compress; 0 reads at the compressor's pace.
   */
  spillMax?: number;
  /** Store whatever RLIMIT_CORE says. */
  ignoreRlimit?: boolean;
  /** Permission bits of stored files. */
  mode?: number;
  /** Program and arguments run before the capture (no shell). */
  before?: string[];
  /** Program and arguments run after the capture, with the archive path. */
  after?: string[];
  /** Functions a crash signature skips, besides the defaults. */
  signatureSkip?: string[];
  /**
   * debuginfod servers that name the trace's frames once the crashed
   * process is let go (never asked otherwise during a capture).
   */
  symbolizeOnline?: string[];
}
