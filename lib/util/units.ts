/**
 * Sizes (`512K`, `1.5G`, `10%`), durations (`30m`, `1h`, `14d`) and rates
 * (`5/1h`) as the store options take them.
 *
 * @module
 */

/** A size given as bytes or as a share of the file system. */
export type SizeSpec = { bytes: number } | { percent: number };

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

const DURATION_UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** A value that is not a size, duration or rate. */
export class UnitError extends Error {
  /** Creates the error; the message says what was expected. */
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

/**
 * Parses a size: bytes with an optional binary suffix (`K`, `M`, `G`, `T`,
 * with or without `iB`), or a percentage of the file system.
 *
 * @param text The size.
 * @returns Bytes, or a percentage.
 * @throws {UnitError} When the text is not a size.
 *
 * @example Usage
 * ```ts
 * import { parseSize, UnitError } from "./units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSize("1.5G"), { bytes: 1610612736 });
 * assert.deepEqual(parseSize("512KiB"), { bytes: 524288 });
 * assert.deepEqual(parseSize("10%"), { percent: 10 });
 * assert.throws(() => parseSize("lots"), UnitError);
 * ```
 */
export function parseSize(text: string): SizeSpec {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    if (value <= 100) return { percent: value };
  }
  // One space at most before the unit; iB only after a prefix (5KiB, not
  // 5iB); nothing after it, not even a newline.
  const match = /^(\d+(?:\.\d+)?) ?(?:([KMGT])(?:i?B)?|B)?$/i.exec(text);
  if (match) {
    const bytes = Math.floor(
      Number(match[1]) * SIZE_UNITS[(match[2] ?? "").toUpperCase()]!,
    );
    if (Number.isSafeInteger(bytes)) return { bytes };
  }
  throw new UnitError(
    `Cannot read size '${text}': expected bytes with an optional K, M, G or T suffix (like 512K or 1.5G), or a percentage up to 100%`,
  );
}

/**
 * Parses a duration: a number with a unit `s`, `m`, `h`, `d` or `w`; a bare
 * number counts as days (as `--max-age 14`).
 *
 * @param text The duration.
 * @returns Milliseconds.
 * @throws {UnitError} When the text is not a duration.
 *
 * @example Usage
 * ```ts
 * import { parseDuration, UnitError } from "./units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("1h"), 3_600_000);
 * assert.equal(parseDuration("30m"), 1_800_000);
 * // A bare number counts as days.
 * assert.equal(parseDuration("14"), 14 * 86_400_000);
 * assert.throws(() => parseDuration("1y"), UnitError);
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(text);
  if (match) {
    return Math.round(Number(match[1]) * DURATION_UNITS[match[2] || "d"]!);
  }
  throw new UnitError(
    `Cannot read duration '${text}': expected a number with s, m, h, d or w (like 30m or 14d)`,
  );
}

/** A rate limit: at most `count` events per `periodMs`. */
export interface Rate {
  /** Most events in one period. */
  count: number;
  /** The period, in milliseconds. */
  periodMs: number;
}

/**
 * Parses a rate `N/PERIOD`, like `5/1h` or `10/30m`.
 *
 * @param text The rate.
 * @returns The count and the period.
 * @throws {UnitError} When the text is not a rate.
 *
 * @example Usage
 * ```ts
 * import { parseRate, UnitError } from "./units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseRate("5/1h"), { count: 5, periodMs: 3_600_000 });
 * // A period without a number is one of its unit.
 * assert.deepEqual(parseRate("10/m"), { count: 10, periodMs: 60_000 });
 * assert.throws(() => parseRate("5 per hour"), UnitError);
 * ```
 */
export function parseRate(text: string): Rate {
  const match = /^(\d+)\/(.+)$/.exec(text);
  if (match) {
    try {
      const periodMs = parseDuration(
        /^\d/.test(match[2]!) ? match[2]! : `1${match[2]}`,
      );
      if (periodMs > 0) return { count: Number(match[1]), periodMs };
    } catch {
      // Reported below.
    }
  }
  throw new UnitError(
    `Cannot read rate '${text}': expected COUNT/PERIOD (like 5/1h)`,
  );
}

/**
 * Resolves a size against a file system's size.
 *
 * @example Usage
 * ```ts
 * import { resolveSize } from "./units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(resolveSize({ bytes: 4096 }, 1e9), 4096);
 * assert.equal(resolveSize({ percent: 10 }, 1e9), 1e8);
 * ```
 *
 * @param spec The size.
 * @param total The file system's size in bytes.
 * @returns Bytes.
 */
export function resolveSize(spec: SizeSpec, total: number): number {
  return "bytes" in spec ? spec.bytes : Math.floor(total * spec.percent / 100);
}

/**
 * Bytes for a person: `1.5 GiB`, `12 KiB`, `512 B`.
 *
 * @example Usage
 * ```ts
 * import { formatBytes } from "./units.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatBytes(512), "512 B");
 * assert.equal(formatBytes(12 * 1024), "12 KiB");
 * assert.equal(formatBytes(1.5 * 1024 ** 3), "1.5 GiB");
 * ```
 *
 * @param bytes A count of bytes.
 * @returns It in the largest binary unit it reaches.
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${bytes} B`
    : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
