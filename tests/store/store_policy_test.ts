/**
 * The store's policy as pure decisions: no processes, no file systems.
 * The same rules are tested through real captures in
 * store_invariants_test.ts; these pin the corner cases.
 */
import assert from "node:assert/strict";
import {
  type AdmissionRequest,
  admit,
  CLAIM_STEP,
  entryAge,
  extendClaim,
  type PolicyEntry,
  type PolicyLimits,
} from "../../lib/store/mod.ts";
import { parseCaptureArgs, parseCommand } from "../../lib/cli/mod.ts";

const NOW = {
  wallMs: Date.UTC(2026, 11, 1),
  uptimeMs: 10_000_000,
  bootId: "b",
};
const LIMITS: PolicyLimits = {
  maxUse: 1e9,
  keepFree: 0,
  maxCount: 100,
  maxRecords: 1000,
  maxAgeMs: 14 * 86_400_000,
  rate: { count: 5, periodMs: 3_600_000 },
};

function request(extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    rateKey: "/usr/bin/app",
    sidecarBytes: 40_000,
    free: 1e12,
    clocks: NOW,
    history: [],
    ...extra,
  };
}

let seq = 0;
function entry(extra: Partial<PolicyEntry> = {}): PolicyEntry {
  seq++;
  return {
    base: `Core_${seq}`,
    archive: true,
    bytes: 1000,
    live: false,
    seq,
    stored: {
      wallMs: NOW.wallMs - 1000,
      uptimeMs: NOW.uptimeMs - 1000,
      bootId: "b",
    },
    nameTime: 0,
    claim: 0,
    ...extra,
  };
}

Deno.test("policy: ages by the time since boot within a boot, the wall clock across boots, re-anchoring what cannot be right", () => {
  // Same boot: the wall clock may have jumped a year; the uptime has not.
  assert.equal(
    entryAge({
      wallMs: NOW.wallMs + 3e10,
      uptimeMs: NOW.uptimeMs - 5000,
      bootId: "b",
    }, NOW),
    5000,
  );
  assert.equal(entryAge({ wallMs: NOW.wallMs - 7000, bootId: "a" }, NOW), 7000);
  assert.equal(entryAge({ wallMs: 0, bootId: "a" }, NOW), undefined);
  assert.equal(
    entryAge({ wallMs: Date.UTC(2100, 0), bootId: "a" }, NOW),
    undefined,
  );
  // A board whose clock is at 0 now: nothing across boots can be aged.
  assert.equal(
    entryAge({ wallMs: NOW.wallMs - 7000, bootId: "a" }, {
      ...NOW,
      wallMs: 5000,
    }),
    undefined,
  );
  const old = entry({
    stored: { wallMs: NOW.wallMs - 20 * 86_400_000, bootId: "a" },
  });
  const odd = entry({ stored: { wallMs: 0, bootId: "a" } });
  const verdict = admit([old, odd], request(), LIMITS);
  assert.deepEqual(verdict.remove.map((r) => r.base), [old.base]);
  assert.deepEqual(verdict.reanchor, [odd.base]);
});

Deno.test("policy: live captures count in every limit and are never removed", () => {
  const live = entry({ live: true, claim: 5e8, bytes: 10 });
  const done = entry({ bytes: 4e8 });
  // --max-count 1: the live one holds the place; the new core is refused.
  const counted = admit([live], request(), { ...LIMITS, maxCount: 1 });
  assert.match(
    String(counted.reason),
    /--max-count 1 cores, 1 of them being captured now/,
  );
  assert.deepEqual(counted.remove, []);
  // --max-use: the live claim counts; the finished core goes first.
  const spaced = admit([done, live], request(), {
    ...LIMITS,
    maxUse: 5e8 + 50_000,
  });
  assert.deepEqual(spaced.remove.map((r) => r.base), [done.base]);
  assert.equal(spaced.reason, undefined);
  assert.deepEqual(spaced.protects, [live.seq]);
});

Deno.test("policy: the rate limit counts stored cores, from the state and the store, once each", () => {
  const stored = entry({ rateKey: "/usr/bin/app" });
  const record = entry({ rateKey: "/usr/bin/app", archive: false });
  const history = [
    { key: "/usr/bin/app", base: stored.base, at: NOW.wallMs - 1000 },
    { key: "/usr/bin/app", base: "Core_gone", at: NOW.wallMs - 2000 },
    { key: "/usr/bin/app", base: "Core_older", at: NOW.wallMs - 4_000_000 },
  ];
  const limits = { ...LIMITS, rate: { count: 3, periodMs: 3_600_000 } };
  // Counted: stored (once), Core_gone (removed since, still counted).
  assert.equal(
    admit([stored, record], request({ history }), limits).reason,
    undefined,
  );
  // A killed capture's record (no archive) does not count, though the
  // state remembers it.
  const killed = entry({ rateKey: "/usr/bin/app", archive: false });
  const withKilled = [
    ...history,
    { key: "/usr/bin/app", base: killed.base, at: NOW.wallMs - 500 },
  ];
  assert.equal(
    admit([stored, record, killed], request({ history: withKilled }), limits)
      .reason,
    undefined,
  );
  const live = entry({ rateKey: "/usr/bin/app", live: true });
  assert.match(
    String(admit([stored, record, live], request({ history }), limits).reason),
    /more than 3 cores of '\/usr\/bin\/app' within 60 minutes/,
  );
});

Deno.test("policy: records of metadata only have their own bound and never cost a core", () => {
  const cores = [entry(), entry()];
  const records = [
    entry({ archive: false }),
    entry({ archive: false }),
    entry({ archive: false }),
  ];
  const verdict = admit(
    [...cores, ...records],
    request({ refused: "empty core" }),
    {
      ...LIMITS,
      maxCount: 2,
      maxRecords: 2,
    },
  );
  assert.equal(verdict.reason, "empty core");
  assert.deepEqual(verdict.remove.map((r) => r.base), [
    records[0]!.base,
    records[1]!.base,
  ]);
});

Deno.test("policy: the first claim makes room for a little; more is removed only as the core needs it", () => {
  const a = entry({ bytes: 100_000 });
  const b = entry({ bytes: 100_000 });
  const limits = { ...LIMITS, maxUse: 250_000 };
  const verdict = admit([a, b], request(), limits);
  assert.deepEqual(verdict.remove, []);
  assert.equal(verdict.claim, 250_000 - 200_000 - 40_000);
  const me = entry({
    live: true,
    claim: 40_000 + verdict.claim,
    bytes: 40_000,
    protects: [],
  });
  const grown = extendClaim([a, b, me], me.base, 50_000, {
    want: CLAIM_STEP,
    maxUse: 250_000,
  });
  assert.deepEqual(grown.remove.map((r) => r.base), [a.base]);
  assert.equal(grown.grant, 100_000);
  // Never a newer core, nor one stored while it ran.
  const newer = entry({ bytes: 100_000 });
  const during = entry({ bytes: 100_000 });
  const mine = { ...me, seq: newer.seq - 1, protects: [during.seq] };
  const denied = extendClaim([newer, during, mine], mine.base, 50_000, {
    want: CLAIM_STEP,
    maxUse: 250_000,
  });
  assert.deepEqual(denied.remove, []);
  assert.equal(denied.grant, 0);
});

Deno.test("args: '--' ends capture options; --max-records is a store option", () => {
  const command = parseCaptureArgs([
    "-c",
    "--max-records",
    "7",
    "--",
    "x",
    "--max-age=0",
  ]);
  assert.equal(command.argument, "x --max-age=0");
  assert.equal(command.store.maxRecords, 7);
  assert.equal(command.store.maxAgeMs, undefined);
  assert.deepEqual(command.warnings, []);
  // A name like an option after '--' cannot turn capture into another mode.
  assert.equal(
    parseCommand(["-c", "-p", "/s", "--", "-d", "-f", "x"]).kind,
    "capture",
  );
});
