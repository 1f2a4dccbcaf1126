/**
 * Errors of the ELF reader.
 *
 * @module
 */

/**
 * The bytes are not a well-formed ELF file. The capture path catches it and
 * still stores the raw core; only the facts are lost.
 */
export class ElfFormatError extends Error {
  /** File offset where the problem was found. */
  readonly offset: number;
  /** Creates the error; the message says what was expected and found. */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "ElfFormatError";
    this.offset = offset;
  }
}

/**
 * The file ends before a structure it declares: more bytes would be needed,
 * the bytes seen are not wrong.
 */
export class TruncatedElfError extends ElfFormatError {
  /** Creates the error. */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(message, offset, options);
    this.name = "TruncatedElfError";
  }
}
