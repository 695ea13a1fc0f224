import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AttendanceLog } from "./attendance-log.ts";
import { isCommKeyValid, makeCommKey } from "./comm-key.ts";
import {
  decodeRecord,
  decodeUser,
  encodeAttendanceEvent,
  encodeRecord,
  encodeUser,
  type RawRecord,
  type SimUser,
} from "./record-codec.ts";
import { TcpPacketReader } from "./tcp-packet-reader.ts";
import { isZkChecksumValid, zkChecksum } from "./zk-checksum.ts";
import { decodeZkPacket, encodeZkPacket, frameTcp, zkPacket } from "./zk-packet.ts";
import { decodeZkTime, encodeZkTime, formatWallClock, parseWallClock } from "./zk-time.ts";

const hex = (text: string): Buffer => Buffer.from(text.replaceAll(" ", ""), "hex");

describe("checksum", () => {
  it("reproduces the two captured vectors", () => {
    assert.equal(zkChecksum(hex("0B 00 00 00 F3 8D 03 00 5A 4B 46 61 63 65 56 65 72 73 69 6F 6E 00")), 0x175a);
    assert.equal(zkChecksum(hex("D0 07 00 00 F3 8D 0A 00 09")), 0x6a29);
  });

  it("accepts a packet carrying its checksum and rejects a flipped bit", () => {
    const packet = hex("D0 07 29 6A F3 8D 0A 00 09");
    assert.equal(isZkChecksumValid(packet), true);
    packet[8] = 0x08;
    assert.equal(isZkChecksumValid(packet), false);
  });

  it("encodes the options-query example from the reference byte for byte", () => {
    const framed = frameTcp(encodeZkPacket(zkPacket(11, 0xc0c5, 5, Buffer.from("~OS\0", "latin1"))));
    assert.deepEqual(framed, hex("50 50 82 7D 0C 00 00 00 0B 00 58 EF C5 C0 05 00 7E 4F 53 00"));
    const decoded = decodeZkPacket(framed.subarray(8));
    assert.deepEqual(
      { ...decoded, data: decoded?.data.toString("latin1") },
      { command: 11, session: 0xc0c5, replyId: 5, data: "~OS\0" },
    );
  });

  it("corrupts on request", () => {
    const bad = encodeZkPacket(zkPacket(2000, 1, 2), true);
    assert.equal(isZkChecksumValid(bad), false);
  });
});

describe("time encoding", () => {
  it("matches the reference examples", () => {
    assert.equal(encodeZkTime(parseWallClock("2018-06-25 17:41:05")), 0x2368b131);
    assert.equal(formatWallClock(decodeZkTime(0x2368b36b)), "2018-06-25 17:50:35");
    assert.equal(formatWallClock(decodeZkTime(0)), "2000-01-01 00:00:00");
  });

  it("round-trips month and year ends, including an impossible 31 February", () => {
    for (const t of ["2024-12-31 23:59:59", "2099-01-01 00:00:00", "2023-02-31 12:00:00"]) {
      assert.equal(formatWallClock(decodeZkTime(encodeZkTime(parseWallClock(t)))), t);
    }
  });

  it("refuses years it cannot encode", () => {
    assert.throws(() => encodeZkTime(parseWallClock("2100-01-01 00:00:00")), RangeError);
  });
});

describe("make_commkey", () => {
  const table: [number, number, string][] = [
    [0, 0x1234, "61 7D 32 6B"],
    [1, 0x0001, "61 FD 32 79"],
    [123456, 0x1234, "26 7F 32 EB"],
    [999999, 0xbeef, "22 81 32 D7"],
  ];
  for (const [key, session, bytes] of table) {
    it(`key ${key} session 0x${session.toString(16)}`, () => {
      assert.deepEqual(makeCommKey(key, session, 50), hex(bytes));
      assert.equal(isCommKeyValid(key, session, hex(bytes)), true);
      assert.equal(isCommKeyValid(key + 1, session, hex(bytes)), false);
    });
  }

  it("wraps modulo 2^32 where pyzk overflows, and checks any ticks value", () => {
    assert.equal(makeCommKey(983039, 0xffff, 50).length, 4);
    assert.equal(isCommKeyValid(4321, 77, makeCommKey(4321, 77, 0x99)), true);
  });
});

describe("record layouts", () => {
  const rec: RawRecord = {
    uid: 0x0102,
    userId: "1234",
    time: 0x2368b131,
    state: 4,
    verify: 2,
    workCode: 7,
  };

  it("40-byte: uid, ASCII user ID, verify at 26, time at 27, state at 31", () => {
    const buf = Buffer.alloc(40);
    encodeRecord(40, rec, buf, 0);
    assert.equal(buf.readUInt16LE(0), 0x0102);
    assert.equal(buf.subarray(2, 7).toString("latin1"), "1234\0");
    assert.equal(buf[26], 2);
    assert.equal(buf.readUInt32LE(27), 0x2368b131);
    assert.equal(buf[31], 4);
    assert.equal(buf[36], 0xff);
    assert.deepEqual(decodeRecord(40, buf, 0), rec);
  });

  it("16-byte: numeric user ID, time at 4, state at 8, verify at 9, work code at 12", () => {
    const buf = Buffer.alloc(16);
    encodeRecord(16, rec, buf, 0);
    assert.deepEqual(buf, hex("D2040000 31B16823 04 02 0000 07000000"));
    assert.deepEqual(decodeRecord(16, buf, 0), { ...rec, uid: undefined });
    assert.throws(() => encodeRecord(16, { ...rec, userId: "A7" }, buf, 0), RangeError);
  });

  it("8-byte: uid, verify at 2, time at 3, state at 7", () => {
    const buf = Buffer.alloc(8);
    encodeRecord(8, rec, buf, 0);
    assert.deepEqual(buf, hex("0201 02 31B16823 04"));
    assert.deepEqual(decodeRecord(8, buf, 0), { ...rec, userId: undefined, workCode: 0 });
  });

  it("8-byte ZEM500: uid, state and verify nibbles at 2, zero at 3, time at 4 (pyzk issue 99 capture)", () => {
    const captured = hex("07002800a8eba71e");
    const decoded = decodeRecord(8, captured, 0, "zem500");
    assert.deepEqual(
      { ...decoded, time: formatWallClock(decodeZkTime(decoded.time)) },
      {
        uid: 7,
        userId: undefined,
        state: 2,
        verify: 8,
        time: "2016-01-01 19:02:00",
        workCode: 0,
      },
    );
    const again = Buffer.alloc(8, 0xee);
    encodeRecord(8, { ...rec, uid: 7, state: 2, verify: 8, time: decoded.time }, again, 0, "zem500");
    assert.deepEqual(again, captured);
    assert.equal(
      formatWallClock(decodeZkTime(decodeRecord(8, hex("7b0028004beca71e"), 0, "zem500").time)),
      "2016-01-01 19:04:43",
    );
    assert.throws(() => encodeRecord(8, { ...rec, state: 16 }, again, 0, "zem500"), RangeError);
  });
});

describe("user layouts", () => {
  const user: SimUser = { uid: 5, userId: "1005", name: "Ann Lee", privilege: 14, password: "123", card: 99 };

  it("72-byte: name at 11, card at 35, user ID at 48", () => {
    const buf = Buffer.alloc(72);
    encodeUser(72, user, buf, 0);
    assert.equal(buf.subarray(11, 18).toString("latin1"), "Ann Lee");
    assert.equal(buf.readUInt32LE(35), 99);
    assert.equal(buf.subarray(48, 52).toString("latin1"), "1005");
    assert.deepEqual(decodeUser(72, buf, 0), user);
  });

  it("28-byte: name at 8, card at 16, numeric user ID at 24", () => {
    const buf = Buffer.alloc(28);
    encodeUser(28, user, buf, 0);
    assert.equal(buf.readUInt16LE(0), 5);
    assert.equal(buf[2], 14);
    assert.equal(buf.subarray(8, 15).toString("latin1"), "Ann Lee");
    assert.equal(buf.readUInt32LE(16), 99);
    assert.equal(buf.readUInt32LE(24), 1005);
    assert.deepEqual(decodeUser(28, buf, 0), user);
  });
});

describe("attendance event data", () => {
  it("lays out the reference example and its longer variants", () => {
    const e = { userId: "999111333", verify: 1, state: 0, workCode: 5 };
    const data = encodeAttendanceEvent(32, e, parseWallClock("2018-06-25 17:41:05"));
    assert.equal(data.length, 32);
    assert.equal(data.subarray(0, 10).toString("latin1"), "999111333\0");
    assert.deepEqual(data.subarray(24), hex("01 00 12 06 19 11 29 05"));
    assert.equal(encodeAttendanceEvent(36, e, parseWallClock("2018-06-25 17:41:05")).readUInt32LE(32), 5);
    assert.equal(encodeAttendanceEvent(52, e, parseWallClock("2018-06-25 17:41:05")).length, 52);
  });
});

describe("TcpPacketReader", () => {
  const a = frameTcp(encodeZkPacket(zkPacket(2000, 7, 1)));
  const b = frameTcp(encodeZkPacket(zkPacket(1501, 7, 2, Buffer.alloc(300, 0xab))));

  it("cuts merged packets and joins split ones", () => {
    const reader = new TcpPacketReader();
    const both = Buffer.concat([a, b]);
    const got = [
      ...reader.push(both.subarray(0, 3)),
      ...reader.push(both.subarray(3, 30)),
      ...reader.push(both.subarray(30)),
    ];
    assert.deepEqual(got, [a.subarray(8), b.subarray(8)]);
  });

  it("skips garbage, including a magic split across reads", () => {
    const reader = new TcpPacketReader();
    assert.deepEqual(reader.push(Buffer.from([1, 2, 3, 0x50, 0x50])), []);
    assert.deepEqual(reader.push(Buffer.concat([a.subarray(2), Buffer.from([9, 9]), b])), [
      a.subarray(8),
      b.subarray(8),
    ]);
    assert.equal(reader.skippedBytes, 5);
  });
});

describe("AttendanceLog", () => {
  it("stores raw records verbatim and decodes them with its layout", () => {
    const log = new AttendanceLog(8, 1, "zem500");
    log.appendRaw(hex("07002800a8eba71e 7b0028004eeca71e"));
    assert.equal(log.count, 2);
    assert.deepEqual(log.snapshot().read(4, 16), hex("07002800a8eba71e 7b0028004eeca71e"));
    assert.deepEqual([log.at(1).uid, log.at(1).state, log.at(1).verify], [123, 2, 8]);
    assert.throws(() => log.appendRaw(Buffer.alloc(12)), RangeError);
  });

  it("keeps a snapshot unchanged while the log grows and is cleared", () => {
    const log = new AttendanceLog(16, 1);
    const rec: RawRecord = { uid: 1, userId: "1", time: 100, state: 0, verify: 1, workCode: 0 };
    log.append(rec);
    const snap = log.snapshot();
    const before = snap.read(0, snap.size);
    for (let i = 0; i < 10; i++) log.append({ ...rec, time: 200 + i });
    log.clear();
    assert.deepEqual(snap.read(0, snap.size), before);
    assert.equal(before.readUInt32LE(0), 16);
    assert.deepEqual(snap.read(2, 4), before.subarray(2, 6));
    assert.equal(snap.read(10, 1000).length, 10);
  });
});
