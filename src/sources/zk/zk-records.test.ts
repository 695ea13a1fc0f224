import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeDeviceTime } from "./zk-codec.ts";
import {
  chooseRecordLayout,
  decodeAttendance,
  decodeAttendanceEvent,
  decodeFreeSizes,
  decodeUser,
  detectUserSize,
  recordProblem,
} from "./zk-records.ts";

const T = encodeDeviceTime("2026-11-26T08:59:07");

function record40(uid: number, user: string, verify: number, time: number, state: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt16LE(uid, 0);
  b.write(user, 2, "latin1");
  b.writeUInt8(verify, 26);
  b.writeUInt32LE(time, 27);
  b.writeUInt8(state, 31);
  b.writeUInt8(0xff, 36);
  return b;
}

describe("zk records", () => {
  it("decodes 40-, 16- and 8-byte attendance records by offset", () => {
    assert.deepEqual(decodeAttendance(record40(7, "999111333", 1, T, 1), 0, "tft40"), {
      uid: 7,
      userId: "999111333",
      verify: 1,
      time: "2026-11-26T08:59:07",
      state: 1,
      workCode: 0,
    });
    const r16 = Buffer.alloc(16);
    r16.writeUInt32LE(1001, 0);
    r16.writeUInt32LE(T, 4);
    r16.writeUInt8(4, 8);
    r16.writeUInt8(15, 9);
    r16.writeUInt32LE(42, 12);
    assert.deepEqual(decodeAttendance(r16, 0, "extended16"), {
      uid: 0,
      userId: "1001",
      time: "2026-11-26T08:59:07",
      state: 4,
      verify: 15,
      workCode: 42,
    });
    const r8 = Buffer.alloc(8);
    r8.writeUInt16LE(3, 0);
    r8.writeUInt8(2, 2);
    r8.writeUInt32LE(T, 3);
    r8.writeUInt8(5, 7);
    assert.deepEqual(decodeAttendance(r8, 0, "compact8"), {
      uid: 3,
      userId: undefined,
      verify: 2,
      time: "2026-11-26T08:59:07",
      state: 5,
      workCode: 0,
    });
  });

  it("cuts user ids at the first NUL, ignoring garbage after it", () => {
    const b = record40(1, "42", 1, T, 0);
    b.write("\0JUNK", 4, "latin1");
    assert.equal(decodeAttendance(b, 0, "tft40").userId, "42");
  });

  it("decodes 72- and 28-byte users", () => {
    const u72 = Buffer.alloc(72);
    u72.writeUInt16LE(5, 0);
    u72.writeUInt8(14, 2);
    u72.write("Asha Rao", 11, "latin1");
    u72.writeUInt32LE(123456, 35);
    u72.write("A-1005", 48, "latin1");
    assert.deepEqual(decodeUser(u72, 0, 72), {
      uid: 5,
      privilege: 14,
      name: "Asha Rao",
      card: 123456,
      userId: "A-1005",
    });
    const u28 = Buffer.alloc(28);
    u28.writeUInt16LE(6, 0);
    u28.write("Ravi", 8, "latin1");
    u28.writeUInt32LE(77, 16);
    u28.writeUInt32LE(1006, 24);
    assert.deepEqual(decodeUser(u28, 0, 28), { uid: 6, privilege: 0, name: "Ravi", card: 77, userId: "1006" });
  });

  it("flags records that cannot become punches instead of failing the read", () => {
    const latest = "2026-11-27T08:59:07";
    const decode = (b: Buffer) => decodeAttendance(b, 0, "tft40");
    const bad = decode(record40(1, "1", 1, encodeDeviceTime("2026-02-31T10:00:00"), 0));
    assert.match(recordProblem(bad, latest) ?? "", /impossible device time 2026-02-31/);
    assert.match(recordProblem(decode(record40(1, "", 1, T, 0)), latest) ?? "", /empty user id/);
    assert.equal(recordProblem(decode(record40(1, "1", 1, T, 0)), latest), undefined);
    const ahead = decode(record40(1, "1", 1, encodeDeviceTime("2026-11-27T09:00:00"), 0));
    assert.match(recordProblem(ahead, latest) ?? "", /more than a day after the terminal's clock/);
    assert.equal(
      recordProblem(decode(record40(1, "1", 1, encodeDeviceTime("2026-11-27T08:59:07"), 0)), latest),
      undefined,
    );
  });

  // Published in fananimi/pyzk issue 99 (platform ZEM500): three 8-byte records as the terminal sent them. Their
  // author read uid 7/123/123 and times on 2016-01-01 with the time at offset 4; at offset 3 they read as 2087.
  const ZEM500_CAPTURE = Buffer.from("07002800a8eba71e7b0028004beca71e7b0028004eeca71e", "hex");

  it("reads the captured ZEM500 records with the time at offset 4", () => {
    const records = [0, 8, 16].map((at) => decodeAttendance(ZEM500_CAPTURE, at, "zem500"));
    assert.deepEqual(
      records.map((r) => [r.uid, r.time, r.state, r.verify]),
      [
        [7, "2016-01-01T19:02:00", 2, 8],
        [123, "2016-01-01T19:04:43", 2, 8],
        [123, "2016-01-01T19:04:46", 2, 8],
      ],
    );
    assert.match(decodeAttendance(ZEM500_CAPTURE, 0, "compact8").time, /^2087-/);
  });

  it("chooses the layout by plausible times: the ZEM500 capture is not read as 2087", () => {
    const latest = "2026-12-04T10:00:00";
    const choice = chooseRecordLayout(ZEM500_CAPTURE.length, 3, ZEM500_CAPTURE, latest);
    assert.equal(choice.layout, "zem500");
    const compact = choice.evidence.find((e) => e.layout === "compact8");
    assert.deepEqual([compact?.sampled, compact?.plausible], [3, 0]);
    // A terminal whose clock says 2015 could not have written 2016: nothing is plausible, so no layout is chosen.
    assert.equal(chooseRecordLayout(ZEM500_CAPTURE.length, 3, ZEM500_CAPTURE, "2015-06-01T00:00:00").layout, undefined);
  });

  /** compact8 records: uid, verify, time at offset 3, state 0–5 at offset 7. */
  function compact8Log(count: number, first: string): Buffer {
    const log = Buffer.alloc(count * 8);
    const start = encodeDeviceTime(first);
    for (let i = 0; i < count; i++) {
      log.writeUInt16LE(1 + (i % 50), i * 8);
      log.writeUInt8(1, i * 8 + 2);
      log.writeUInt32LE(start + i * 61, i * 8 + 3);
      log.writeUInt8(i % 6, i * 8 + 7);
    }
    return log;
  }

  it("keeps a compact8 log compact8 though zem500 reads its state byte as a year 2000-2003 time", () => {
    const latest = "2026-12-04T10:00:00";
    const log = compact8Log(200, "2026-11-01T08:00:00");
    // One impossible record among 200 must not hand the log to the other 8-byte layout.
    log.writeUInt32LE(encodeDeviceTime("2026-02-31T10:00:00"), 50 * 8 + 3);
    const choice = chooseRecordLayout(log.length, 200, log, latest);
    assert.equal(choice.layout, "compact8");
    // Only a record whose time happens to have a zero low byte still looks like zem500 (1 in 256).
    assert.ok((choice.evidence.find((e) => e.layout === "zem500")?.plausible ?? 0) < 10);
    // Its clock set back a year: nothing is plausible under either 8-byte layout, so nothing is delivered.
    assert.equal(chooseRecordLayout(log.length, 200, log, "2025-11-01T00:00:00").layout, undefined);
    // A cursor from before layouts were told apart keeps compact8 while compact8 still reads the log.
    assert.equal(
      chooseRecordLayout(log.length, 200, log, latest, ["compact8", "zem500"], "compact8").layout,
      "compact8",
    );
    assert.equal(
      chooseRecordLayout(ZEM500_CAPTURE.length, 3, ZEM500_CAPTURE, latest, ["compact8", "zem500"], "compact8").layout,
      "zem500",
    );
  });

  it("chooses the record size from the set length and the count, tolerating a punch in between", () => {
    const latest = "2030-01-01T00:00:00";
    const empty = Buffer.alloc(0);
    assert.equal(chooseRecordLayout(400, 10, empty, latest).layout, "tft40");
    assert.equal(chooseRecordLayout(400, 25, empty, latest).layout, "extended16");
    // Two layouts share the 8-byte size; with no records to look at the length cannot choose between them.
    assert.deepEqual(
      [chooseRecordLayout(400, 50, empty, latest).layout, chooseRecordLayout(400, 50, empty, latest).ambiguous],
      [undefined, true],
    );
    assert.equal(chooseRecordLayout(400, 50, empty, latest, ["compact8"]).layout, "compact8");
    // Counted 9, sent 10 (a punch landed between the two requests).
    assert.equal(chooseRecordLayout(400, 9, empty, latest).layout, "tft40");
    assert.equal(chooseRecordLayout(401, 10, empty, latest).layout, undefined);
    // 80 bytes divides by 40, 16 and 8: decoded times decide when the count is ambiguous.
    const sample = Buffer.concat([record40(1, "1", 1, T, 0), record40(2, "2", 1, T + 7, 0)]);
    assert.equal(chooseRecordLayout(80, 3, sample, latest).layout, "tft40");
    assert.equal(detectUserSize(720, 10), 72);
    assert.equal(detectUserSize(280, 10), 28);
    assert.equal(detectUserSize(0, 0), undefined);
  });

  it("decodes real-time attendance events of each length", () => {
    const e32 = Buffer.alloc(32);
    e32.write("999111333", 0, "latin1");
    e32.writeUInt8(1, 24);
    e32.writeUInt8(0, 25);
    Buffer.from([18, 6, 25, 17, 41, 5]).copy(e32, 26);
    assert.deepEqual(decodeAttendanceEvent(e32), {
      userId: "999111333",
      verify: 1,
      state: 0,
      time: "2018-06-25T17:41:05",
    });
    assert.equal(decodeAttendanceEvent(Buffer.concat([e32, Buffer.alloc(4)]))?.userId, "999111333");
    const e10 = Buffer.from([9, 0, 1, 0x11, 26, 11, 26, 8, 0, 1]);
    assert.deepEqual(decodeAttendanceEvent(e10), {
      userId: "#uid:9",
      verify: 1,
      state: 1,
      time: "2026-11-26T08:00:01",
    });
    assert.equal(decodeAttendanceEvent(Buffer.alloc(5)), undefined);
  });

  it("reads the free-sizes report at its documented offsets", () => {
    const b = Buffer.alloc(92);
    b.writeInt32LE(100, 16);
    b.writeInt32LE(5000, 32);
    b.writeInt32LE(3000, 60);
    b.writeInt32LE(100000, 64);
    b.writeInt32LE(95000, 76);
    b.writeInt32LE(7, 80);
    const sizes = decodeFreeSizes(b);
    assert.equal(sizes?.users, 100);
    assert.equal(sizes?.records, 5000);
    assert.equal(sizes?.recordCapacity, 100000);
    assert.equal(sizes?.recordsFree, 95000);
    assert.equal(sizes?.faces, 7);
    assert.equal(decodeFreeSizes(Buffer.alloc(40)), undefined);
  });
});
