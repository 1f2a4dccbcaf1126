/**
 * Errors of the unwinder. The unwinder never throws them out of a stack
 * walk: a frame it cannot unwind ends the walk (or falls back), and the
 * message is kept as the trace's reason.
 *
 * @module
 */

/**
 * Call frame information or a DWARF expression that is not well formed:
 * the message says what was expected, what was found, and where.
 */
export class CfiFormatError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CfiFormatError";
  }
}
