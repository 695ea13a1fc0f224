import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ATTLOG_REQUEST, chunkRequest, fixedLog, setBytes, simKit, zkTimeText } from "./sim-test-kit.ts";
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

describe("replies seen from real terminals", () => {
  it("CONNECT's ACK_OK and ACK_UNAUTH carry connectReplyData, over TCP and UDP", async () => {
    const s = await sim({ connectReplyData: Buffer.from([0x01]) });
    for (const transport of ["tcp", "udp"] as const) {
      const c = await client(s, transport);
      const hello = await c.connect();
      assert.deepEqual([hello.command, [...hello.data]], [2000, [1]]);
      assert.equal((await c.call(50)).data.length, 92, "the session works after it");
    }
    const keyed = await sim({ connectReplyData: Buffer.from([0x01]), commKey: 7, transports: ["tcp"] });
    const c = await client(keyed);
    const hello = await c.connect();
    assert.deepEqual([hello.command, [...hello.data]], [2005, [1]]);
    const plain = await client(await sim({ transports: ["tcp"] }));
    assert.equal((await plain.connect()).data.length, 0, "no data unless asked");
  });

  it("splits a TCP chunk into 1,008-byte CMD_DATA packets whose session field counts 1, 2, 3, ...", async () => {
    const log = fixedLog(200);
    const s = await sim({ rawRecords: log, tcpDataPacketSize: 1008, dataPacketSessionCounter: true });
    const c = await client(s);
    await c.connect();
    const info = await c.call(1503, ATTLOG_REQUEST);
    assert.equal(info.data.readUInt32LE(1), 4 + 200 * 40);
    const id = c.send(1504, chunkRequest(0, 5000));
    const { packets, data } = await c.collectBulk();
    assert.deepEqual(
      packets.map((p) => [p.command, p.session, p.replyId, p.data.length]),
      [
        [1500, c.session, id, 8],
        [1501, 1, id, 1008],
        [1501, 2, id, 1008],
        [1501, 3, id, 1008],
        [1501, 4, id, 1008],
        [1501, 5, id, 968],
        [2000, c.session, id, 0],
      ],
    );
    assert.equal(packets[0]?.data.readUInt32LE(0), 5000);
    // The split changes packets, not bytes: the same chunk as an unsplit terminal with the same log sends.
    assert.deepEqual(data, setBytes(log, 0, 5000));
    const twin = await client(await sim({ rawRecords: log, transports: ["tcp"] }));
    await twin.connect();
    await twin.call(1503, ATTLOG_REQUEST);
    twin.send(1504, chunkRequest(0, 5000));
    const whole = await twin.collectBulk();
    assert.equal(whole.packets.length, 3);
    assert.deepEqual(data, whole.data);
  });

  it("without the counter the split packets carry the session id; UDP keeps its 1,024-byte datagrams", async () => {
    const s = await sim({ records: 100, tcpDataPacketSize: 1008 });
    for (const transport of ["tcp", "udp"] as const) {
      const c = await client(s, transport);
      await c.connect();
      await c.call(1503, ATTLOG_REQUEST);
      c.send(1504, chunkRequest(0, 3000));
      const { packets, data } = await c.collectBulk();
      const sizes = packets.filter((p) => p.command === 1501).map((p) => p.data.length);
      assert.deepEqual(sizes, transport === "tcp" ? [1008, 1008, 984] : [1024, 1024, 952]);
      assert.ok(packets.every((p) => p.session === c.session));
      assert.equal(data.length, 3000);
    }
  });

  it("PREPARE_DATA's second word is prepareDataSecondWord (0 by default)", async () => {
    for (const word of [0, 1008, 65_536, 65_528]) {
      const s = await sim({ records: 20, ...(word === 0 ? {} : { prepareDataSecondWord: word }) });
      for (const transport of ["tcp", "udp"] as const) {
        const c = await client(s, transport);
        await c.connect();
        await c.call(1503, ATTLOG_REQUEST);
        c.send(1504, chunkRequest(0, 804));
        const [prepare] = (await c.collectBulk()).packets;
        assert.deepEqual(
          [prepare?.command, prepare?.data.readUInt32LE(0), prepare?.data.readUInt32LE(4)],
          [1500, 804, word],
        );
      }
    }
  });

  it("answers CMD_GET_PINWIDTH (69) with ACK_OK and the width in one binary byte", async () => {
    const s = await sim({ pin2Width: 14, commKey: 5 });
    for (const transport of ["tcp", "udp"] as const) {
      const c = await client(s, transport);
      await c.call(1000).then((hello) => {
        c.session = hello.session;
      });
      assert.equal((await c.call(69, Buffer.from(" P"))).command, 2005, "not before CMD_AUTH");
      await c.connect(5);
      const reply = await c.call(69, Buffer.from(" P"));
      assert.deepEqual([reply.command, reply.replyId, [...reply.data]], [2000, c.replyId, [14]]);
    }
    const plain = await client(await sim({ transports: ["tcp"] }));
    await plain.connect();
    assert.deepEqual([...(await plain.call(69)).data], [9]);
    await assert.rejects(ZkSimulator.start({ pin2Width: 256 }), RangeError);
  });
});
