import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";
import { type ErpnextReceiver, startErpnextReceiver } from "../../../cloud/receivers/erpnext-receiver.ts";
import { type ErpnextSinkConfig, erpnextSinkSchema } from "../../config/sink-schema.ts";
import { systemClock } from "../../core/clock.ts";
import type { OutboxEntry } from "../../store/store.ts";
import type { Sink, SinkOutcome, SinkRejection } from "../sink.ts";
import { checkErpnext } from "./erpnext-check.ts";
import { ErpnextSink } from "./erpnext-sink.ts";
import { frappeError } from "./frappe-answer.ts";

const SECRET = "s3cret-9f8e7d";
const employees = [
  { name: "HR-EMP-00001", employee_name: "Ada", fields: { attendance_device_id: "1", badge: "B-1" } },
  { name: "HR-EMP-00002", employee_name: "Brian", fields: { attendance_device_id: "2", badge: "B-2" } },
  { name: "HR-EMP-00003", employee_name: "Chen", status: "Inactive" as const, fields: { attendance_device_id: "3" } },
];

let site: ErpnextReceiver;
let old: ErpnextReceiver;

before(async () => {
  site = await startErpnextReceiver({
    apiKey: "key1",
    apiSecret: SECRET,
    employees,
    employeeFields: ["name", "attendance_device_id", "badge"],
  });
  old = await startErpnextReceiver({ apiKey: "key1", apiSecret: SECRET, employees, app: "erpnext" });
});
after(async () => {
  await site.close();
  await old.close();
});

let seq = 0;
beforeEach(() => {
  seq = 0;
});

function config(over: Record<string, unknown> = {}, url = site.url): ErpnextSinkConfig {
  return erpnextSinkSchema.parse({ id: "erp", kind: "erpnext", url, apiKey: "key1", apiSecret: SECRET, ...over });
}

function sinkOf(c: ErpnextSinkConfig, timeoutMs = 2000): ErpnextSink {
  return new ErpnextSink(c, { clock: systemClock, timeoutMs: () => timeoutMs });
}

const STATE_CODES = { checkIn: 0, checkOut: 1, breakOut: 2, breakIn: 3, overtimeIn: 4, overtimeOut: 5, other: 255 };

function entry(userId: string, time: string, state: keyof typeof STATE_CODES = "checkIn", serial = "SN1"): OutboxEntry {
  seq += 1;
  const id = `${serial}-${userId}-${time}-${state}`;
  const punch = {
    id,
    deviceSerial: serial,
    userId,
    time,
    state,
    stateCode: STATE_CODES[state],
    verify: "fingerprint",
    verifyCode: 1,
    source: "zk",
    collectedAt: "2024-09-17T09:00:00Z",
  };
  return { seq, id, sourceId: "src", body: JSON.stringify(punch), enqueuedAt: 0, attempts: 0 };
}

/** What the shipper would do until every punch is settled: send what is left, again and again. */
async function settle(sink: Sink, batch: readonly OutboxEntry[], rounds = 20) {
  let pending = [...batch];
  const acked: string[] = [];
  const rejected: SinkRejection[] = [];
  const outcomes: SinkOutcome[] = [];
  for (let i = 0; i < rounds && pending.length > 0; i++) {
    const outcome = await sink.send(pending, new AbortController().signal);
    outcomes.push(outcome);
    if (outcome.kind === "delivered") {
      acked.push(...outcome.acked);
      rejected.push(...outcome.rejected);
      const done = new Set([...outcome.acked, ...outcome.rejected.map((r) => r.id)]);
      pending = pending.filter((e) => !done.has(e.id));
    } else await new Promise((r) => setTimeout(r, 20));
  }
  return { acked, rejected, outcomes, pending };
}

test("fields: device-local naive time, device id per serial, log type by state, none and skip", async () => {
  const from = site.calls.length;
  const c = config({
    employeeField: "badge",
    deviceIds: { SN1: "Gate A" },
    logTypes: { breakIn: "skip", other: "none" },
  });
  const batch = [
    entry("B-1", "2024-09-17T08:00:00+03:00", "checkIn"),
    entry("B-1", "2024-09-17T12:00:00.250+03:00", "breakOut"),
    entry("B-1", "2024-09-17T12:30:00+03:00", "breakIn"),
    entry("B-1", "2024-09-17T17:00:00+03:00", "checkOut"),
    entry("B-2", "2024-09-17T08:05:00-05:00", "other", "SN2"),
  ];
  const sink = sinkOf(c);
  const outcome = await sink.send(batch, new AbortController().signal);
  assert.equal(outcome.kind, "delivered");
  assert.ok(outcome.kind === "delivered");
  assert.deepEqual(new Set(outcome.acked), new Set(batch.map((e) => e.id)), "the skipped one counts as delivered");
  assert.deepEqual(
    site.calls
      .slice(from)
      .map((c) => c.args)
      .sort((a, b) => String(a.employee_field_value).localeCompare(String(b.employee_field_value))),
    [
      {
        employee_field_value: "B-1",
        timestamp: "2024-09-17 08:00:00",
        device_id: "Gate A",
        employee_fieldname: "badge",
        log_type: "IN",
      },
      {
        employee_field_value: "B-1",
        timestamp: "2024-09-17 12:00:00",
        device_id: "Gate A",
        employee_fieldname: "badge",
        log_type: "OUT",
      },
      {
        employee_field_value: "B-1",
        timestamp: "2024-09-17 17:00:00",
        device_id: "Gate A",
        employee_fieldname: "badge",
        log_type: "OUT",
      },
      { employee_field_value: "B-2", timestamp: "2024-09-17 08:05:00", device_id: "SN2", employee_fieldname: "badge" },
    ].sort((a, b) => a.employee_field_value.localeCompare(b.employee_field_value)),
  );
  assert.deepEqual(
    site.checkins
      .filter((k) => k.time.startsWith("2024-09-17"))
      .map((k) => [k.employee, k.time, k.log_type])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ["HR-EMP-00001", "2024-09-17 08:00:00", "IN"],
      ["HR-EMP-00001", "2024-09-17 12:00:00", "OUT"],
      ["HR-EMP-00001", "2024-09-17 17:00:00", "OUT"],
      ["HR-EMP-00002", "2024-09-17 08:05:00", null],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
  assert.deepEqual(sink.details(), {
    method: "hrms",
    created: 4,
    duplicates: 0,
    skipped: 1,
    rejected: 0,
    lastError: null,
  });
});

test("a punch ERPNext already has is delivered, not doubled", async () => {
  const batch = [entry("1", "2024-10-01T08:00:00+03:00"), entry("2", "2024-10-01T08:01:00+03:00")];
  assert.equal((await sinkOf(config()).send(batch, new AbortController().signal)).kind, "delivered");
  const again = sinkOf(config());
  const outcome = await again.send(batch, new AbortController().signal);
  assert.ok(outcome.kind === "delivered");
  assert.deepEqual(new Set(outcome.acked), new Set(batch.map((e) => e.id)));
  assert.equal(again.details()?.duplicates, 2);
  assert.equal(site.checkins.filter((k) => k.time.startsWith("2024-10-01")).length, 2);
});

test("an unknown or inactive employee goes to quarantine with ERPNext's words; the others are delivered", async () => {
  const batch = [
    entry("99", "2024-10-02T08:00:00+03:00"),
    entry("3", "2024-10-02T08:00:00+03:00"),
    entry("1", "2024-10-02T08:00:00+03:00"),
  ];
  const [unknown, inactive, fine] = batch as [OutboxEntry, OutboxEntry, OutboxEntry];
  const outcome = await sinkOf(config()).send(batch, new AbortController().signal);
  assert.ok(outcome.kind === "delivered");
  assert.deepEqual(outcome.acked, [fine.id]);
  assert.deepEqual(outcome.rejected, [
    {
      id: unknown.id,
      reason:
        "ERPNext refused the check-in of user 99: No Employee found for the given employee field value. 'attendance_device_id': 99",
      permanent: true,
    },
    {
      id: inactive.id,
      reason:
        "ERPNext refused the check-in of user 3: Transactions cannot be created for an Inactive Employee HR-EMP-00003.",
      permanent: true,
    },
  ]);
});

test("Frappe's words are read from _server_messages, else `exception`, else API v2 `errors`", () => {
  const answer = (body: unknown) => ({ status: 417, headers: new Headers(), text: JSON.stringify(body) });
  const message = JSON.stringify({
    message: "This employee already has a log with the same timestamp.<Br><a href='/x'>EMP-CKIN-1</a>",
  });
  assert.deepEqual(frappeError(answer({ exc_type: "ValidationError", _server_messages: JSON.stringify([message]) })), {
    excType: "ValidationError",
    message: "This employee already has a log with the same timestamp. EMP-CKIN-1",
  });
  assert.deepEqual(
    frappeError(
      answer({ exc_type: "ValidationError", exception: "frappe.exceptions.ValidationError: No Employee found" }),
    ),
    { excType: "ValidationError", message: "No Employee found" },
  );
  assert.deepEqual(frappeError(answer({ errors: [{ type: "ValidationError", message: "Nope" }] })), {
    excType: "ValidationError",
    message: "Nope",
  });
  assert.deepEqual(frappeError({ status: 502, headers: new Headers(), text: "<html>Bad gateway</html>" }), {
    excType: undefined,
    message: "",
  });
});

test("a refused key or secret fails with SINK_AUTH naming the fix, and never shows the secret", async () => {
  for (const c of [config({ apiSecret: "wrong-secret-123" }), config({ apiKey: "nobody" })]) {
    const outcome = await sinkOf(c).send([entry("1", "2024-10-04T08:00:00+03:00")], new AbortController().signal);
    assert.ok(outcome.kind === "failed", outcome.kind);
    assert.equal(outcome.error.code, "SINK_AUTH");
    assert.equal(outcome.lostConnectivity, false);
    assert.match(outcome.error.message, /refused the API key \(401 AuthenticationError\)/);
    assert.match(outcome.error.message, /apiKey and apiSecret/);
    assert.ok(!outcome.error.message.includes("wrong-secret-123") && !outcome.error.message.includes(SECRET));
  }
});

test("500s, a slow site and a site that is down are retried, and every punch lands exactly once", async () => {
  const batch = [
    entry("1", "2024-10-05T08:00:00+03:00"),
    entry("2", "2024-10-05T08:00:00+03:00"),
    entry("1", "2024-10-05T17:00:00+03:00", "checkOut"),
    entry("2", "2024-10-05T17:00:00+03:00", "checkOut"),
  ];
  // One request at a time, so the injected 500 is the first answer and nothing else is settled in that round.
  const sink = sinkOf(config({ concurrency: 1 }), 300);

  site.failNext(1, 500);
  const failed = await sink.send(batch, new AbortController().signal);
  assert.ok(failed.kind === "failed" && !failed.lostConnectivity, failed.kind);
  assert.equal(failed.error.code, "SINK_UNAVAILABLE");

  site.slowNext(1, 1000);
  site.failAfterCommit(1);
  await site.stop();
  const down = await sink.send(batch, new AbortController().signal);
  assert.ok(down.kind === "failed" && down.lostConnectivity, "no answer at all is lost connectivity");
  await site.listen();

  const result = await settle(sink, batch);
  assert.deepEqual(result.pending, []);
  assert.deepEqual(new Set(result.acked), new Set(batch.map((e) => e.id)));
  assert.ok(
    result.outcomes.some((o) => o.kind === "failed" && o.lostConnectivity),
    "the slow answer timed out",
  );
  const stored = site.checkins.filter((k) => k.time.startsWith("2024-10-05"));
  assert.equal(stored.length, 4, "a timed-out and a lost acknowledgement were sent again, and deduplicated");
  assert.equal(new Set(stored.map((k) => `${k.employee} ${k.time} ${k.log_type}`)).size, 4);
});

test("429 asks to slow down for its Retry-After", async () => {
  site.rateLimitNext(1, 7);
  const outcome = await sinkOf(config()).send([entry("1", "2024-10-06T08:00:00+03:00")], new AbortController().signal);
  assert.deepEqual(outcome, { kind: "retry-after", ms: 7000 });
});

test("the older erpnext.hr method: its path, and duplicates by employee and time alone", async () => {
  const sink = sinkOf(config({ method: "erpnext" }, old.url));
  const batch = [entry("1", "2024-10-07T08:00:00+03:00"), entry("1", "2024-10-07T08:00:00+03:00", "checkOut")];
  const outcome = await sink.send(batch, new AbortController().signal);
  assert.ok(outcome.kind === "delivered");
  assert.equal(outcome.acked.length, 2);
  assert.deepEqual(
    old.calls.map((c) => c.method),
    [
      "erpnext.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
      "erpnext.hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field",
    ],
  );
  assert.equal(old.checkins.length, 1);
  assert.equal(sink.details()?.duplicates, 1);

  const wrong = await sinkOf(config({ method: "hrms" }, old.url)).send(batch, new AbortController().signal);
  assert.ok(wrong.kind === "failed", "a missing method is the config's fault: nothing is quarantined");
  assert.equal(wrong.error.code, "SINK_REJECTED");
  assert.match(wrong.error.message, /Failed to get method for command hrms\..* "erpnext" is for ERPNext 13 and older/);
});

test("a body that is no punch is quarantined without a request", async () => {
  const from = site.calls.length;
  const bad: OutboxEntry = { seq: 1, id: "bad", sourceId: "s", body: '{"userId":"1"}', enqueuedAt: 0, attempts: 0 };
  const outcome = await sinkOf(config()).send([bad], new AbortController().signal);
  assert.ok(outcome.kind === "delivered");
  assert.equal(outcome.rejected[0]?.id, "bad");
  assert.equal(site.calls.length, from);
});

test("doctor: reachable, authenticated, the method exists; each failure names its fix", async () => {
  const signal = new AbortController().signal;
  const target = (c: ErpnextSinkConfig) => ({ config: c, nodeId: "n", client: undefined });
  const good = await checkErpnext(target(config()), signal);
  assert.deepEqual(
    good.map((f) => [f.check, f.status]),
    [
      ["reachable", "ok"],
      ["authenticated", "ok"],
      ["method", "ok"],
    ],
  );
  assert.equal(site.checkins.filter((k) => k.time === "").length, 0);

  const badKey = await checkErpnext(target(config({ apiSecret: "nope-nope" })), signal);
  const auth = badKey.find((f) => f.check === "authenticated");
  assert.equal(auth?.status, "fail");
  assert.match(auth?.fix ?? "", /apiKey and apiSecret/);

  const wrongApp = await checkErpnext(target(config({ method: "hrms" }, old.url)), signal);
  const method = wrongApp.find((f) => f.check === "method");
  assert.equal(method?.status, "fail");
  assert.match(method?.fix ?? "", /method to "erpnext"/);

  await site.stop();
  try {
    const down = await checkErpnext(target(config({ requestTimeoutMs: 500 })), signal);
    assert.deepEqual(
      down.map((f) => [f.check, f.status]),
      [["reachable", "fail"]],
    );
  } finally {
    await site.listen();
  }
});
