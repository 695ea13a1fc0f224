import assert from "node:assert/strict";
import { test } from "node:test";
import { runInNewContext } from "node:vm";
import { fakeStatus } from "../../test/helpers/fake-status.ts";
import { formatStatus } from "../cli/status-command.ts";
import { formatDuration } from "../core/duration.ts";
import { attention, EXPIRED_GAP_NOTICE_MS } from "./attention.ts";
import { statusPage } from "./status-page.ts";

function configFixFor(code: string, message: string, version: number | null = 3): string | undefined {
  const base = fakeStatus(0);
  const s = { ...base, config: { ...base.config, version, lastError: { code, message } } };
  return attention(s, new Map(), Date.now()).find((a) => a.subject === "config")?.fix;
}

test("config advice follows the cause: only a config that does not validate points at the config", () => {
  const unreachable: [string, string][] = [
    ["CLOUD_UNAVAILABLE", "The cloud failed to serve the config: 502 bad gateway."],
    ["CLOUD_UNAVAILABLE", "Cannot reach the cloud at https://cloud.example (ECONNREFUSED)."],
    ["TIMEOUT", "timed out"],
    ["CLOUD_REDIRECT", "…a redirect to https://portal.example; redirects are never followed."],
    ["CLOUD_UNAUTHENTICATED", "The answer … does not carry the cloud's response MAC."],
  ];
  for (const [code, message] of unreachable) {
    const fix = configFixFor(code, message) ?? "";
    assert.match(fix, /^Version 3 keeps running\. The cloud could not be reached.*retried by itself/, code);
    assert.doesNotMatch(fix, /Fix the config/, code);
    assert.match(configFixFor(code, message, null) ?? "", /retried by itself/, `${code}, no config`);
  }
  assert.match(configFixFor("CONFIG_INVALID", "Config version 4 is invalid: …") ?? "", /Fix the config in the cloud/);
  assert.match(configFixFor("CONFIG_DECRYPT", "version 4 failed authentication") ?? "", /sealed for another node/);
  assert.match(configFixFor("CONFIG_STALE", "offered config version 2") ?? "", /as a new version/);
  assert.match(configFixFor("CLOUD_AUTH", "refused this node's signature") ?? "", /clock/);
  assert.match(configFixFor("CONFIG_FETCH", "The cloud holds no config", null) ?? "", /^Publish a config/);
});

const HALF_PAST_FIVE = 5.5 * 3_600_000;

test("a terminal clock 5 h 30 min off is flagged as a likely wrong time zone, naming the source's timezone", () => {
  const base = fakeStatus(1);
  const [source] = base.sources;
  assert.ok(source?.device);
  const s = { ...base, sources: [{ ...source, device: { ...source.device, clockDriftMs: -HALF_PAST_FIVE } }] };
  const limits = new Map([[source.sourceId, { pollIntervalMs: 1000, maxClockDriftMs: 60_000, timezone: "UTC" }]]);
  const [item] = attention(s, limits, Date.now()).filter((a) => a.subject === source.sourceId);
  assert.equal(
    item?.message,
    "The terminal's clock is 5 h 30 min behind this machine; punches carry its time. A whole number of half-hours is most likely a wrong time zone, not a wrong clock.",
  );
  assert.match(item?.fix ?? "", /timezone \(now UTC\)/);
});

test("the page's drift column rounds as the banner does: one figure", () => {
  const page = statusPage();
  const script = /const formatDuration = (function[\s\S]*?\n});/.exec(page)?.[1];
  assert.ok(script, "the page embeds formatDuration");
  const inPage = runInNewContext(`(${script})`) as (ms: number) => string;
  for (const ms of [900, 59_400, 150_000, HALF_PAST_FIVE, HALF_PAST_FIVE - 2000, 6 * 3_600_000 - 20_000]) {
    assert.equal(inPage(ms), formatDuration(ms));
  }
  assert.equal(inPage(HALF_PAST_FIVE), "5 h 30 min");
  assert.match(page, /const drift = .*formatDuration\(Math\.abs\(ms\)\)/);
});

test("row ids given up are a warning for a day after the last one, and a line in bioapi status", () => {
  const base = fakeStatus(2);
  const [zk, db] = base.sources;
  assert.ok(zk && db);
  const givenUpAt = Date.parse("2026-12-01T08:00:00.000Z");
  const lateRows = { openIds: 3, expiredIds: 2, lastExpiredAt: new Date(givenUpAt).toISOString() };
  const s = { ...base, sources: [zk, { ...db, lateRows }] };
  const items = (now: number) => attention(s, new Map(), now).filter((a) => a.subject === db.sourceId);

  const [item] = items(givenUpAt + 60_000);
  assert.equal(item?.severity, "warning");
  assert.match(
    item?.message ?? "",
    /^2 row id\(s\) below rows already read never appeared, the last given up at 2026-12-01T08:00:00\.000Z/,
  );
  assert.match(item?.fix ?? "", /raise lateRowWindowMs/);
  assert.equal(items(givenUpAt + EXPIRED_GAP_NOTICE_MS - 1).length, 1, "still shown just under a day later");
  assert.deepEqual(items(givenUpAt + EXPIRED_GAP_NOTICE_MS), [], "gone a day later");
  const open = { ...s, sources: [zk, { ...db, lateRows: { ...lateRows, expiredIds: 0, lastExpiredAt: null } }] };
  assert.deepEqual(
    attention(open, new Map(), givenUpAt).filter((a) => a.subject === db.sourceId),
    [],
    "ids still looked for are not a problem",
  );

  const text = formatStatus({ ...s, attention: attention(s, new Map(), givenUpAt) });
  assert.match(text, /\n {4}late rows: 3 missing id\(s\) looked for; 2 given up, last at 2026-12-01T08:00:00\.000Z\n/);
  assert.doesNotMatch(formatStatus(base), /late rows/, "no line for a source without gaps");
});

test("a full data disk says so, with the punches waiting and where to free space; not as a delivery retry", () => {
  const base = fakeStatus(1);
  const full = {
    ...base,
    outbox: { ...base.outbox, depth: 1234 },
    shipper: {
      ...base.shipper,
      unsaved: 34,
      lastError: { code: "STORE_FULL", message: "The data disk is full: delivery is held until there is room." },
    },
    disk: { ...base.disk, state: "full" as const, since: "2026-12-03T12:00:00.000Z", freeBytes: 0 },
  };
  const items = attention(full, new Map(), Date.now());
  const disk = items.filter((a) => a.subject === "disk");
  assert.equal(disk.length, 1);
  assert.equal(disk[0]?.severity, "error");
  // The 34 the cloud already acknowledged are not waiting for delivery; they wait only to be committed.
  assert.equal(
    disk[0]?.message,
    "The data disk is full: 1,200 punches waiting; free space on /var/lib (it holds /var/lib/bioapi).",
  );
  assert.match(disk[0]?.fix ?? "", /resumes once there is room/);
  assert.equal(
    items.some((a) => a.subject === "outbox" && /retries by itself with backoff/.test(a.fix)),
    false,
    "no 'retries with backoff' advice for a full disk",
  );
  assert.equal(
    attention(base, new Map(), Date.now()).some((a) => a.subject === "disk"),
    false,
  );
});
