import assert from "node:assert/strict";
import { test } from "node:test";
import { isValidTimeZone, offsetMinutesAt, resolveTime } from "./local-time.ts";

test("a naive local time gets the zone's offset; the local part is kept for the id", () => {
  const t = resolveTime("2026-11-26 08:59:03", "Asia/Kolkata");
  assert.equal(t.local, "2026-11-26T08:59:03");
  assert.equal(t.iso, "2026-11-26T08:59:03+05:30");
  assert.equal(new Date(t.epochMs).toISOString(), "2026-11-26T03:29:03.000Z");
});

test("daylight saving: summer and winter offsets differ in Europe/Berlin", () => {
  assert.equal(offsetMinutesAt("2026-07-01T12:00:00", "Europe/Berlin"), 120);
  assert.equal(offsetMinutesAt("2026-01-15T12:00:00", "Europe/Berlin"), 60);
  assert.equal(resolveTime("2026-07-01 12:00:00", "Europe/Berlin").iso, "2026-07-01T12:00:00+02:00");
});

test("zone-aware strings, Dates and epoch numbers resolve to the device's local wall clock", () => {
  assert.equal(resolveTime("2026-11-26T03:29:03Z", "Asia/Kolkata").iso, "2026-11-26T08:59:03+05:30");
  assert.equal(resolveTime(new Date("2026-11-26T03:29:03Z"), "UTC").iso, "2026-11-26T03:29:03+00:00");
  assert.equal(resolveTime(1_764_127_743, "UTC").local, new Date(1_764_127_743_000).toISOString().slice(0, 19));
  assert.equal(resolveTime(1_764_127_743_000, "UTC").local, new Date(1_764_127_743_000).toISOString().slice(0, 19));
  assert.equal(resolveTime("2026-11-26T08:00:00-05:00", "America/New_York").iso, "2026-11-26T08:00:00-05:00");
});

test("garbage times are refused with the value named", () => {
  assert.throws(() => resolveTime("yesterday", "UTC"), /Unparseable time "yesterday"/);
  assert.throws(() => resolveTime(null, "UTC"), /Unparseable time/);
  assert.throws(() => resolveTime(Number.NaN, "UTC"), /Unparseable time/);
});

test("time zone names are validated", () => {
  assert.equal(isValidTimeZone("Asia/Kolkata"), true);
  assert.equal(isValidTimeZone("Mars/Olympus"), false);
});
