/**
 * Private: a string of a DWARF string table (`.debug_str`,
 * `.debug_line_str`) by its offset.
 *
 * @module
 */

/** Longest string taken from a table. */
const MAX_STRING = 4096;

/**
 * The NUL-terminated string at `offset` of `table`, at most 4096 bytes;
 * undefined without a table or past its end.
 */
export function stringAt(
  table: Uint8Array | undefined,
  offset: number,
): string | undefined {
  if (table === undefined || offset < 0 || offset >= table.length) {
    return undefined;
  }
  let end = table.indexOf(0, offset);
  if (end === -1) end = table.length;
  return new TextDecoder().decode(
    table.subarray(offset, Math.min(end, offset + MAX_STRING)),
  );
}
