import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:net";
import { describe, it } from "node:test";
import { type RawPacket, type RawZkClient, rawEncode } from "./raw-zk-client.ts";
import { ATTLOG_REQUEST, chunkRequest, eventually, fixedLog, setBytes, simKit, USERS_REQUEST } from "./sim-test-kit.ts";
import { ZkSimulator } from "./zk-simulator.ts";

/** Terminals that lie about sizes or drip their answers; none of them may cost the simulator the lie. */

const { sim, client } = simKit();
const FOUR_GIB = 0xffff_ffff;

/** Reads packets until `stop` says so; returns them all. */
async function readUntil(c: RawZkClient, stop: (p: RawPacket, seen: RawPacket[]) => boolean): Promise<RawPacket[]> {
  const seen: RawPacket[] = [];
  for (;;) {
    const p = await c.next(10_000);
    seen.push(p);
    if (stop(p, seen)) return seen;
  }
}

/** Waits until the simulator has stopped sending: bytesSent unchanged across a pause. */
async function sendingStops(s: ZkSimulator): Promise<number> {
  for (;;) {
    const before = s.stats().bytesSent;
    await new Promise((r) => setTimeout(r, 200));
    if (s.stats().bytesSent === before) return before;
  }
}

const LOG_2000 = fixedLog(2000);
const LOG_100 = fixedLog(100);

describe("hostile: announceBytes", () => {
  it("announces 4 GiB for the log while GET_FREE_SIZES stays truthful, and serves reads anywhere below it", async () => {
    const s = await sim({ rawRecords: LOG_2000, hostile: { announceBytes: FOUR_GIB } });
    const c = await client(s);
    await c.connect();
    const sizes = (await c.call(50)).data;
    assert.deepEqual([sizes.readInt32LE(32), sizes.readInt32LE(64)], [2000, 100_000]);
    const info = await c.call(1503, ATTLOG_REQUEST);
    assert.deepEqual([info.command, info.data.readUInt32LE(1), info.data.readUInt32LE(5)], [2000, FOUR_GIB, FOUR_GIB]);

    c.send(1504, chunkRequest(0, 16_384));
    const first = await c.collectBulk();
    assert.equal(first.packets[0]?.data.readUInt32LE(0), 16_384);
    assert.equal(first.data.readUInt32LE(0), FOUR_GIB - 4, "the set's own total agrees with the claim");
    assert.deepEqual(first.data.subarray(4), setBytes(LOG_2000, 4, 16_380), "real records first");

    c.send(1504, chunkRequest(4_000_000_000, 65_472));
    const far = await c.collectBulk();
    assert.deepEqual([far.packets[0]?.data.readUInt32LE(0), far.data.length], [65_472, 65_472]);
    assert.ok(
      far.data.every((b) => b === 0),
      "filler",
    );

    // A client asking for the whole claim in one chunk gets a bounded slice, never a 4 GiB buffer.
    c.send(1504, chunkRequest(0, FOUR_GIB));
    assert.equal((await c.collectBulk()).data.length, 1 << 20);
  });

  it("turns on and off mid-run with setHostile, over UDP too", async () => {
    const s = await sim({ records: 100, transports: ["udp"] });
    const c = await client(s, "udp");
    await c.connect();
    assert.equal((await c.call(1503, ATTLOG_REQUEST)).data.readUInt32LE(1), 4 + 100 * 40);
    s.setHostile({ announceBytes: 1_000_000_000 });
    assert.equal((await c.call(1503, ATTLOG_REQUEST)).data.readUInt32LE(1), 1_000_000_000);
    c.send(1504, chunkRequest(999_000_000, 16_384));
    const { packets, data } = await c.collectBulk();
    assert.equal(data.length, 16_384);
    assert.ok(packets.every((p) => p.data.length <= 1024));
    s.setHostile(undefined);
    assert.equal((await c.call(1503, ATTLOG_REQUEST)).data.readUInt32LE(1), 4 + 100 * 40);
  });
});

describe("hostile: prepareBytes", () => {
  it("announces 4 GiB for a chunk and streams 60 KB CMD_DATA packets until the client sends FREE_DATA", async () => {
    const s = await sim({ rawRecords: LOG_2000, hostile: { prepareBytes: FOUR_GIB }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    const id = c.send(1504, chunkRequest(0, 16_384));
    const streamed = await readUntil(c, (_p, seen) => seen.length === 21);
    assert.deepEqual([streamed[0]?.command, streamed[0]?.data.readUInt32LE(0)], [1500, FOUR_GIB]);
    const data = streamed.slice(1);
    assert.ok(data.every((p) => p.command === 1501 && p.replyId === id && p.data.length === 60 * 1024));
    assert.deepEqual(data[0]?.data.subarray(0, 16_384), setBytes(LOG_2000, 0, 16_384), "the real chunk leads");

    const freeId = c.send(1502);
    const rest = await readUntil(c, (p) => p.command !== 1501);
    const answer = rest.at(-1);
    assert.deepEqual([answer?.command, answer?.replyId], [2000, freeId], "the stream ends without its own ACK_OK");
    const sent = await sendingStops(s);
    assert.ok(sent < 1 << 30, `${sent} bytes sent, far short of the claim`);
    assert.equal((await c.call(50)).command, 2000, "the session goes on");
  });

  it("honours TCP backpressure: a client that stops reading stops the flood", async () => {
    const s = await sim({ records: 100, hostile: { prepareBytes: FOUR_GIB }, transports: ["tcp"] });
    const socket = connect(s.port, "127.0.0.1");
    await once(socket, "connect");
    const frame = (p: Buffer) => Buffer.concat([Buffer.from([0x50, 0x50, 0x82, 0x7d, p.length, 0, 0, 0]), p]);
    // The device keeps each session's id itself, so these need not wait for the CONNECT reply.
    socket.write(frame(rawEncode(1000, 0, 0)));
    socket.write(frame(rawEncode(1503, 0, 1, ATTLOG_REQUEST)));
    socket.write(frame(rawEncode(1504, 0, 2, chunkRequest(0, 4004))));
    // Never read: the kernel buffers fill and the device must wait for them.
    await eventually("the flood to start", () => s.stats().bytesSent > 1_000_000);
    const plateau = await sendingStops(s);
    assert.ok(plateau < 64 * 1024 * 1024, `${plateau} bytes pushed at a client that reads nothing`);
    socket.destroy();
    await eventually("the connection closed", () => s.stats().currentConnections === 0);
  });

  it("stops at once when the client closes the socket, and when the simulator closes", async () => {
    const s = await ZkSimulator.start({ records: 100, hostile: { prepareBytes: FOUR_GIB }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    c.send(1504, chunkRequest(0, 4004));
    await readUntil(c, (_p, seen) => seen.length === 5);
    await c.close();
    await eventually("the connection closed", () => s.stats().currentConnections === 0);
    const after = await sendingStops(s);
    assert.ok(after < 1 << 30);

    const d = await client(s);
    await d.connect();
    await d.call(1503, ATTLOG_REQUEST);
    d.send(1504, chunkRequest(0, 4004));
    await readUntil(d, (_p, seen) => seen.length === 5);
    await s.close();
    await assert.rejects(
      readUntil(d, () => false),
      /closed/,
    );
  });

  it("over UDP streams 1,024-byte datagrams and stops when the client says EXIT", async () => {
    const s = await sim({ records: 100, hostile: { prepareBytes: FOUR_GIB }, transports: ["udp"] });
    const c = await client(s, "udp");
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    c.send(1504, chunkRequest(0, 4004));
    const streamed = await readUntil(c, (_p, seen) => seen.length === 50);
    assert.equal(streamed[0]?.data.readUInt32LE(0), FOUR_GIB);
    assert.ok(streamed.slice(1).every((p) => p.command === 1501 && p.data.length === 1024));
    const exitId = c.send(1001);
    const rest = await readUntil(c, (p) => p.command !== 1501);
    assert.deepEqual([rest.at(-1)?.command, rest.at(-1)?.replyId], [2000, exitId]);
    await eventually("the peer forgotten", () => s.stats().currentConnections === 0);
    await sendingStops(s);
  });
});

describe("hostile: userTableRecords", () => {
  it("holds a 1,000,000-user table made per read, while GET_FREE_SIZES reports 100 users of 10,000", async () => {
    const s = await sim({ hostile: { userTableRecords: 1_000_000 }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    const sizes = (await c.call(50)).data;
    assert.deepEqual([sizes.readInt32LE(16), sizes.readInt32LE(60)], [100, 10_000]);
    const info = await c.call(1503, USERS_REQUEST);
    assert.equal(info.data.readUInt32LE(1), 72_000_004);

    c.send(1504, chunkRequest(0, 4 + 72 * 2));
    const head = (await c.collectBulk()).data;
    assert.equal(head.readUInt32LE(0), 72_000_000);
    assert.equal(head.subarray(4 + 48, 4 + 52).toString("latin1"), "1001", "enrolled users come first");

    const at = 4 + 654_321 * 72;
    c.send(1504, chunkRequest(at - 10, 72 + 20));
    const slice = (await c.collectBulk()).data;
    const user = slice.subarray(10, 10 + 72);
    assert.equal(user.readUInt16LE(0), (654_321 % 0xfffe) + 1);
    assert.equal(user.subarray(48, 48 + 7).toString("latin1"), `${1001 + 654_321}\0`);

    c.send(1504, chunkRequest(4, 10_000_000));
    assert.equal((await c.collectBulk()).data.length, 1 << 20, "never the whole 72 MB at once");
  });

  it("refuses impossible settings", async () => {
    await assert.rejects(ZkSimulator.start({ hostile: { announceBytes: 2 ** 32 } }), RangeError);
    await assert.rejects(ZkSimulator.start({ hostile: { userTableRecords: 60_000_000 } }), RangeError);
    await assert.rejects(ZkSimulator.start({ trickle: { bytesPerPacket: 0, intervalMs: 1 } }), RangeError);
    const s = await sim({ transports: ["tcp"] });
    assert.throws(() => s.setTrickle({ bytesPerPacket: 1, intervalMs: -1 }), RangeError);
  });
});

describe("trickle", () => {
  const pattern = (packets: RawPacket[]) => packets.map((p) => [p.command, p.data.length]);

  it("drips a chunk: PREPARE_DATA with the true length, CMD_DATA of bytesPerPacket each, ACK_OK", async () => {
    const s = await sim({ rawRecords: LOG_100, trickle: { bytesPerPacket: 300, intervalMs: 2 }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    const id = c.send(1504, chunkRequest(0, 1000));
    const { packets, data } = await c.collectBulk();
    assert.deepEqual(pattern(packets), [
      [1500, 8],
      [1501, 300],
      [1501, 300],
      [1501, 300],
      [1501, 100],
      [2000, 0],
    ]);
    assert.equal(packets[0]?.data.readUInt32LE(0), 1000);
    assert.ok(packets.every((p) => p.replyId === id));
    assert.deepEqual(data, setBytes(LOG_100, 0, 1000));
  });

  it("drips inline sets and legacy ATTLOG_RRQ too, and caps UDP packets at 1,024 bytes", async () => {
    const s = await sim({ records: 10, inlineThreshold: 10_000, trickle: { bytesPerPacket: 2000, intervalMs: 1 } });
    const tcp = await client(s);
    await tcp.connect();
    tcp.send(1503, ATTLOG_REQUEST);
    assert.deepEqual(pattern((await tcp.collectBulk()).packets), [
      [1500, 8],
      [1501, 404],
      [2000, 0],
    ]);
    tcp.send(13);
    assert.equal((await tcp.collectBulk()).data.length, 404);
    const udp = await client(s, "udp");
    await udp.connect();
    udp.send(1503, USERS_REQUEST);
    const users = await udp.collectBulk();
    assert.deepEqual(pattern(users.packets).slice(0, 3), [
      [1500, 8],
      [1501, 1024],
      [1501, 1024],
    ]);
    assert.equal(users.data.length, 4 + 100 * 72);
  });

  it("keeps dripping through pipelined chunk requests, and answers them in turn", async () => {
    const s = await sim({ records: 100, trickle: { bytesPerPacket: 100, intervalMs: 1 }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    const a = c.send(1504, chunkRequest(0, 500));
    const b = c.send(1504, chunkRequest(500, 500));
    const first = await c.collectBulk();
    const second = await c.collectBulk();
    assert.deepEqual(
      [first.packets.length, first.data.length, second.packets.length, second.data.length],
      [7, 500, 7, 500],
    );
    assert.ok(first.packets.every((p) => p.replyId === a) && second.packets.every((p) => p.replyId === b));
  });

  it("turns on mid-run with setTrickle and off again", async () => {
    const s = await sim({ records: 100, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    c.send(1504, chunkRequest(0, 1000));
    assert.equal((await c.collectBulk()).packets.length, 3);
    s.setTrickle({ bytesPerPacket: 250, intervalMs: 1 });
    c.send(1504, chunkRequest(0, 1000));
    assert.equal((await c.collectBulk()).packets.length, 6);
    s.setTrickle(undefined);
    c.send(1504, chunkRequest(0, 1000));
    assert.equal((await c.collectBulk()).packets.length, 3);
  });

  it("a byte at a time stops when the client closes the socket, or sends EXIT", async () => {
    const s = await sim({ records: 2000, trickle: { bytesPerPacket: 1, intervalMs: 20 }, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    await c.call(1503, ATTLOG_REQUEST);
    c.send(1504, chunkRequest(0, 65_472));
    const drops = await readUntil(c, (_p, seen) => seen.length === 4);
    assert.deepEqual(pattern(drops), [
      [1500, 8],
      [1501, 1],
      [1501, 1],
      [1501, 1],
    ]);
    await c.close();
    await eventually("the connection closed", () => s.stats().currentConnections === 0);
    await sendingStops(s);

    const d = await client(s);
    await d.connect();
    await d.call(1503, ATTLOG_REQUEST);
    d.send(1504, chunkRequest(0, 65_472));
    await readUntil(d, (_p, seen) => seen.length === 3);
    const exitId = d.send(1001);
    const rest = await readUntil(d, (p) => p.command !== 1501);
    assert.deepEqual([rest.at(-1)?.command, rest.at(-1)?.replyId], [2000, exitId]);
    await assert.rejects(d.next(5000), /closed/);
  });
});
