import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simKit, zkTimeText } from "./sim-test-kit.ts";
import { ZkSimulator } from "./zk-simulator.ts";

/** Replies captured from real terminals that the first simulator never produced (issue 10). */

const { sim, client } = simKit();

// Published in fananimi/pyzk issue 99 (ZEM500): three 8-byte records as the terminal sent them.
const ZEM500_CAPTURE = ["07002800a8eba71e", "7b0028004beca71e", "7b0028004eeca71e"].map((h) => Buffer.from(h, "hex"));

/** The ZEM500 order, decoded by hand: u16 uid, state << 4 | verify, a zero byte, u32 time. */
function decodeZem500(set: Buffer): { uid: number; state: number; verify: number; time: string }[] {
  assert.equal(set.readUInt32LE(0), set.length - 4, "leading total");
  const out = [];
  for (let at = 4; at < set.length; at += 8) {
    const packed = set[at + 2] as number;
    assert.equal(set[at + 3], 0);
    out.push({
      uid: set.readUInt16LE(at),
      state: packed >> 4,
      verify: packed & 15,
      time: zkTimeText(set.readUInt32LE(at + 4)),
    });
  }
  return out;
}

describe("record layouts and raw records", () => {
  it("replays captured ZEM500 records byte for byte and decodes them as uid 7 and 123 on 2016-01-01", async () => {
    const s = await sim({ recordSize: 8, recordLayout: "zem500", rawRecords: ZEM500_CAPTURE, users: 0 });
    const c = await client(s);
    await c.connect();
    assert.equal((await c.call(50)).data.readInt32LE(32), 3);
    const set = await c.readSet("attendance");
    assert.deepEqual(set, Buffer.concat([Buffer.from([24, 0, 0, 0]), ...ZEM500_CAPTURE]));
    assert.deepEqual(
      s.records().map((r) => [r.uid, r.userId, r.time, r.state, r.verify]),
      [
        [7, "7", "2016-01-01 19:02:00", 2, 8],
        [123, "123", "2016-01-01 19:04:43", 2, 8],
        [123, "123", "2016-01-01 19:04:46", 2, 8],
      ],
    );
    // Nothing says "ZEM500" on the wire; the option keeps what the 8-byte format always advertised.
    assert.equal((await c.call(11, Buffer.from("~ExtendFmt\0"))).data.toString("latin1"), "~ExtendFmt=0\0");
  });

  it("writes generated and live records in the ZEM500 order when asked, after the raw ones", async () => {
    const s = await sim({
      recordSize: 8,
      recordLayout: "zem500",
      rawRecords: Buffer.concat(ZEM500_CAPTURE),
      records: 50,
    });
    s.addPunch({ userId: "1003", time: "2024-02-03 04:05:06", state: 5, verify: 15 });
    const c = await client(s, "udp");
    await c.connect();
    const seen = decodeZem500(await c.readSet("attendance"));
    assert.equal(seen.length, 54);
    assert.deepEqual(
      seen,
      s.records().map(({ uid, state, verify, time }) => ({ uid, state, verify, time })),
    );
    assert.deepEqual(seen.at(-1), { uid: 3, state: 5, verify: 15, time: "2024-02-03 04:05:06" });
    assert.equal(s.records()[3]?.userId, "1001", "generated records still map to enrolled users");
  });

  it("keeps the manual's 8-byte order by default: the same capture then reads as 2087", async () => {
    const s = await sim({ recordSize: 8, rawRecords: ZEM500_CAPTURE, users: 0, transports: ["tcp"] });
    const [first] = s.records();
    assert.deepEqual(first, {
      uid: 7,
      userId: "7",
      time: zkTimeText(0xa7eba800),
      state: 0x1e,
      verify: 0x28,
      workCode: 0,
    });
    assert.match(first?.time ?? "", /^2087-/);
  });

  it("refuses raw records that are not whole records, and a layout for other sizes", async () => {
    await assert.rejects(ZkSimulator.start({ recordSize: 8, rawRecords: [Buffer.alloc(7)] }), RangeError);
    await assert.rejects(ZkSimulator.start({ recordSize: 16, rawRecords: Buffer.alloc(24) }), RangeError);
    await assert.rejects(ZkSimulator.start({ recordSize: 40, recordLayout: "zem500" }), RangeError);
    const ok = await sim({ recordSize: 16, rawRecords: Buffer.alloc(32), users: 0, transports: ["tcp"] });
    assert.equal(ok.recordCount, 2);
  });
});
