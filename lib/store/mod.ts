/**
 * The crash store: its entries, names, records (sidecars), options,
 * policy, ledger, reservations, rate limit and catalog.
 *
 * @module
 */

export * from "./catalog.ts";
export * from "./ledger.ts";
export * from "./metadata.ts";
export * from "./names.ts";
export * from "./options.ts";
export * from "./policy.ts";
export * from "./rate_limit.ts";
export * from "./reservation.ts";
export * from "./store.ts";
