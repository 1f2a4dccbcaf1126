/**
 * Objects without their undefined properties, for options that are absent
 * rather than undefined (`exactOptionalPropertyTypes`).
 *
 * @module
 */

/** `T` with each property that may be undefined made optional instead. */
export type Compact<T> =
  & {
    [K in keyof T as undefined extends T[K] ? never : K]: T[K];
  }
  & {
    [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<
      T[K],
      undefined
    >;
  };

/**
 * A copy of `object` without its undefined properties.
 *
 * @example Usage
 * ```ts
 * import { compact } from "./compact.ts";
 * import assert from "node:assert/strict";
 *
 * const level: number | undefined = undefined;
 * assert.deepEqual(compact({ format: "gzip", level }), { format: "gzip" });
 * ```
 *
 * @param object The properties, some perhaps undefined.
 * @returns The defined ones.
 */
export function compact<T extends object>(object: T): Compact<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (value !== undefined) out[key] = value;
  }
  return out as Compact<T>;
}
