/**
 * gzip and zlib: streams in and out, the parallel compressor and
 * decompressor, the chunk index, and checksums.
 *
 * @module
 */

export * from "./checksum.ts";
export * from "./codec.ts";
export * from "./gzip.ts";
export * from "./gzip_index.ts";
export * from "./parallel_deflate.ts";
export * from "./parallel_inflate.ts";
export * from "./zlib.ts";
