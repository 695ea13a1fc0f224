import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { loopLag } from "../../test/helpers/loop-lag.ts";
import { RawZkClient } from "./raw-zk-client.ts";
import { zkTimeText } from "./sim-test-kit.ts";
import { type SimRecord, ZkSimulator, type ZkSimulatorOptions } from "./zk-simulator.ts";

const sims: ZkSimulator[] = [];
const clients: RawZkClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(sims.map((s) => s.close()));
});

async function sim(options: ZkSimulatorOptions = {}): Promise<ZkSimulator> {
  const s = await ZkSimulator.start(options);
  sims.push(s);
  return s;
}

async function client(s: ZkSimulator, transport: "tcp" | "udp" = "tcp"): Promise<RawZkClient> {
  const c = transport === "tcp" ? await RawZkClient.tcp(s.port) : await RawZkClient.udp(s.port);
  clients.push(c);
  return c;
}

type Seen = Pick<SimRecord, "userId" | "time" | "state" | "verify">;

/** Decodes a downloaded attendance set (u32 total + records) without the simulator's codec. */
function decodeSet(set: Buffer, size: 8 | 16 | 40, uidToUserId: (uid: number) => string): Seen[] {
  assert.equal(set.readUInt32LE(0), set.length - 4, "leading total");
  assert.equal((set.length - 4) % size, 0, "whole records");
  const out: Seen[] = [];
  for (let at = 4; at < set.length; at += size) {
    if (size === 40) {
      const id = set.subarray(at + 2, at + 26);
      out.push({
        userId: id.subarray(0, id.indexOf(0)).toString("latin1"),
        verify: set[at + 26] as number,
        time: zkTimeText(set.readUInt32LE(at + 27)),
        state: set[at + 31] as number,
      });
    } else if (size === 16) {
      out.push({
        userId: String(set.readUInt32LE(at)),
        time: zkTimeText(set.readUInt32LE(at + 4)),
        state: set[at + 8] as number,
        verify: set[at + 9] as number,
      });
    } else {
      out.push({
        userId: uidToUserId(set.readUInt16LE(at)),
        verify: set[at + 2] as number,
        time: zkTimeText(set.readUInt32LE(at + 3)),
        state: set[at + 7] as number,
      });
    }
  }
  return out;
}

const expected = (s: ZkSimulator): Seen[] =>
  s.records().map(({ userId, time, state, verify }) => ({ userId, time, state, verify }));

describe("generated log", () => {
  it("is deterministic per seed, 7 s apart, ends before now, with unique (user, time, state)", async () => {
    const a = await sim({ records: 2000, users: 30, transports: ["tcp"] });
    const b = await sim({ records: 2000, users: 30, transports: ["tcp"] });
    const ra = a.records();
    assert.equal(ra.length, 2000);
    assert.deepEqual(
      ra.map((r) => [r.userId, r.state]),
      b.records().map((r) => [r.userId, r.state]),
    );
    const keys = new Set(ra.map((r) => `${r.userId}|${r.time}|${r.state}`));
    assert.equal(keys.size, 2000);
    const t0 = Date.parse(`${ra[0]?.time.replace(" ", "T")}Z`);
    const t1 = Date.parse(`${ra[1]?.time.replace(" ", "T")}Z`);
    assert.equal(t1 - t0, 7000);
    assert.ok((ra.at(-1)?.time ?? "") < a.deviceTime());
    assert.ok(new Set(ra.map((r) => r.userId)).size === 30);
  });

  // How fast it builds is a benchmark matter (bench/zk-bench.ts); here: that a million records are served right.
  it("builds 1,000,000 records and serves the last chunk", async () => {
    const s = await sim({ records: 1_000_000, transports: ["tcp"] });
    const c = await client(s);
    await c.connect();
    const sizes = await c.call(50);
    assert.equal(sizes.data.readInt32LE(32), 1_000_000);
    const info = await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    const total = info.data.readUInt32LE(1);
    assert.equal(total, 4 + 40_000_000);
    const body = Buffer.alloc(8);
    body.writeUInt32LE(total - 400, 0);
    body.writeUInt32LE(400, 4);
    c.send(1504, body);
    const { data } = await c.collectBulk();
    const last = decodeSet(Buffer.concat([Buffer.from([0x90, 1, 0, 0]), data]), 40, String);
    assert.deepEqual(
      last,
      s.records(999_990).map(({ userId, time, state, verify }) => ({ userId, time, state, verify })),
    );
  });
});

describe("TCP", () => {
  it("connects, reports exact sizes and streams the log in chunks that decode to records()", async () => {
    const s = await sim({ records: 5000, users: 50 });
    const c = await client(s);
    const hello = await c.connect();
    assert.equal(hello.command, 2000);
    assert.equal(hello.data.length, 0);
    assert.notEqual(hello.session, 0);
    const sizes = await c.call(50);
    assert.equal(sizes.data.length, 92);
    assert.equal(sizes.data.readInt32LE(16), 50);
    assert.equal(sizes.data.readInt32LE(32), 5000);
    const set = await c.readSet("attendance", 16_384);
    assert.deepEqual(decodeSet(set, 40, String), expected(s));
    const st = s.stats();
    assert.equal(st.bulkPrepares, 1);
    assert.equal(st.bulkChunks, Math.ceil((4 + 5000 * 40) / 16_384));
    assert.equal(st.checksumMismatches, 0);
    assert.equal(st.setTime + st.clearAttlog + st.clearData, 0);
  });

  it("answers with one PREPARE_DATA, one CMD_DATA and one ACK_OK per chunk, all with the request's reply id", async () => {
    const s = await sim({ records: 3000 });
    const c = await client(s);
    await c.connect();
    await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    const body = Buffer.alloc(8);
    body.writeUInt32LE(0, 0);
    body.writeUInt32LE(65_472, 4);
    const id = c.send(1504, body);
    const { packets } = await c.collectBulk();
    assert.deepEqual(
      packets.map((p) => [p.command, p.replyId, p.data.length]),
      [
        [1500, id, 8],
        [1501, id, 65_472],
        [2000, id, 0],
      ],
    );
    assert.equal(packets[0]?.data.readUInt32LE(0), 65_472);
    assert.ok(packets.every((p) => p.isChecksumValid && p.session === c.session));
  });

  it("answers pipelined 1504 requests in order", async () => {
    const s = await sim({ records: 1000 });
    const c = await client(s);
    await c.connect();
    const info = await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    const size = info.data.readUInt32LE(1);
    const ids: number[] = [];
    for (let offset = 0; offset < size; offset += 10_000) {
      const body = Buffer.alloc(8);
      body.writeUInt32LE(offset, 0);
      body.writeUInt32LE(Math.min(10_000, size - offset), 4);
      ids.push(c.send(1504, body));
    }
    const parts: Buffer[] = [];
    for (const id of ids) {
      const { packets, data } = await c.collectBulk();
      assert.ok(packets.every((p) => p.replyId === id));
      parts.push(data);
    }
    assert.deepEqual(decodeSet(Buffer.concat(parts), 40, String), expected(s));
  });

  it("serves users, small sets inline, options, time and unknown commands", async () => {
    const s = await sim({
      users: 3,
      records: 2,
      inlineThreshold: 1024,
      timeZone: "Asia/Kolkata",
      clockOffsetMs: -3_600_000,
      serial: "ABC123",
    });
    const c = await client(s);
    await c.connect();
    const users = await c.readSet("users");
    assert.equal(users.readUInt32LE(0), 3 * 72);
    assert.equal(users.subarray(4 + 48, 4 + 52).toString("latin1"), "1001");
    const inline = await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    assert.equal(inline.command, 1501);
    assert.deepEqual(decodeSet(inline.data, 40, String), expected(s));

    assert.equal((await c.call(11, Buffer.from("~SerialNumber\0"))).data.toString("latin1"), "~SerialNumber=ABC123\0");
    assert.equal((await c.call(11, Buffer.from("~NoSuchOption\0"))).command, 2001);
    assert.equal((await c.call(1100)).data.toString("latin1"), "Ver 6.60 Apr 28 2015\0");

    const time = await c.call(201);
    const hostIst = new Date(Date.now() + 5.5 * 3_600_000 - 3_600_000).toISOString().slice(0, 16).replace("T", " ");
    assert.equal(zkTimeText(time.data.readUInt32LE(0)).slice(0, 16), hostIst);

    const unknown = await c.call(4242);
    assert.deepEqual([unknown.command, unknown.data.length, unknown.replyId], [65_535, 0, c.replyId]);
    const ritual = await c.call(2001);
    assert.equal(ritual.command, 65_535);
    const state = await c.call(64);
    assert.deepEqual([state.command, state.session], [2000, 0]);
  });

  it("applies SET_TIME and counts the writes a connector must never make", async () => {
    const s = await sim({ records: 5 });
    const c = await client(s);
    await c.connect();
    const body = Buffer.alloc(4);
    body.writeUInt32LE(((30 * 12 * 31 + 0 * 31 + 0) * 86_400) >>> 0, 0); // 2030-01-01 00:00:00
    assert.equal((await c.call(202, body)).command, 2000);
    assert.equal(s.deviceTime().slice(0, 10), "2030-01-01");
    await c.call(1003, Buffer.alloc(4));
    assert.equal(s.isDisabled, true);
    await c.call(1002);
    assert.equal(s.isDisabled, false);
    await c.call(15);
    assert.equal(s.recordCount, 0);
    const st = s.stats();
    assert.deepEqual([st.setTime, st.disableDevice, st.clearAttlog, st.clearData], [1, 1, 1, 0]);
    assert.equal(st.commands[1003], 1);
  });

  it("ACKs EXIT and closes the socket", async () => {
    const s = await sim();
    const c = await client(s);
    await c.connect();
    assert.equal((await c.call(1001)).command, 2000);
    await c.next(1000).catch(() => undefined);
    assert.equal(c.isClosed, true);
  });

  it("single-connection mode turns a second client away with ACK_ERROR and a closed socket", async () => {
    const s = await sim({ singleConnection: true, transports: ["tcp"] });
    const probe = await client(s);
    await probe.close(); // pyzk's throw-away probe must not count as a connection
    const first = await client(s);
    assert.equal((await first.connect()).command, 2000);
    const second = await client(s);
    assert.equal((await second.connect()).command, 2001);
    await second.next(1000).catch(() => undefined);
    assert.equal(second.isClosed, true);
    assert.equal((await first.call(50)).command, 2000);
    await first.call(1001);
    const third = await client(s);
    assert.equal((await third.connect()).command, 2000);
    assert.equal(s.stats().busyRejections, 1);
  });
});

describe("UDP", () => {
  it("streams 16-byte records and 28-byte users in datagrams of at most 1,024 data bytes", async () => {
    const s = await sim({ records: 3000, users: 40, recordSize: 16, userSize: 28, transports: ["udp"] });
    const c = await client(s, "udp");
    await c.connect();
    const set = await c.readSet("attendance", 16_384);
    assert.deepEqual(decodeSet(set, 16, String), expected(s));
    assert.ok(c.reads.every((d) => d.length <= 1032));
    const users = await c.readSet("users");
    assert.equal(users.length, 4 + 40 * 28);
    assert.equal(users.readUInt32LE(4 + 24), 1001);
  });

  it("keeps sessions per peer and maps 8-byte uids back to user IDs", async () => {
    const s = await sim({ records: 500, users: 20, recordSize: 8 });
    const a = await client(s, "udp");
    const b = await client(s, "udp");
    await a.connect();
    await b.connect();
    assert.notEqual(a.session, b.session);
    const set = await a.readSet("attendance");
    assert.deepEqual(
      decodeSet(set, 8, (uid) => String(1000 + uid)),
      expected(s),
    );
    assert.equal(s.stats().currentConnections, 2);
  });
});

describe("comm key", () => {
  for (const transport of ["tcp", "udp"] as const) {
    it(`${transport}: demands CMD_AUTH, rejects a wrong key and commands before auth`, async () => {
      const s = await sim({ commKey: 123456, records: 10 });
      const good = await client(s, transport);
      const hello = await good.call(1000);
      assert.equal(hello.command, 2005);
      good.session = hello.session;
      assert.equal((await good.call(50)).command, 2005);
      const wrong = await client(s, transport);
      assert.equal((await wrong.connect(654321)).command, 2005);
      assert.equal((await wrong.call(50)).command, 2005);
      const right = await client(s, transport);
      assert.equal((await right.connect(123456)).command, 2000);
      assert.equal((await right.call(50)).data.readInt32LE(32), 10);
      assert.equal(s.stats().authFailures, 1);
    });
  }
});

describe("events", () => {
  it("pushes EF_ATTLOG after addPunch with session field 1 and reply id 0, and counts acks", async () => {
    const s = await sim({ records: 3, eventFormat: 36 });
    const c = await client(s);
    const quiet = await client(s);
    await c.connect();
    await quiet.connect();
    await c.call(500, Buffer.from([1, 0, 0, 0]));
    const punch = s.addPunch({ userId: "1007", time: "2024-03-05 08:09:10", state: 1, verify: 15, workCode: 3 });
    assert.deepEqual(punch, { uid: 7, userId: "1007", time: "2024-03-05 08:09:10", state: 1, verify: 15, workCode: 3 });
    const [event] = await c.waitForEvents(1);
    assert.ok(event);
    assert.deepEqual([event.command, event.session, event.replyId, event.data.length], [500, 1, 0, 36]);
    assert.equal(event.data.subarray(0, 5).toString("latin1"), "1007\0");
    assert.deepEqual([...event.data.subarray(24, 32)], [15, 1, 24, 3, 5, 8, 9, 10]);
    assert.equal(event.data.readUInt32LE(32), 3);
    c.sendRaw(Buffer.from(rawAck(c.session)));
    await c.call(50); // the ack has no answer; this round trip proves it was processed
    assert.equal(s.stats().eventAcks, 1);
    assert.equal(quiet.events.length, 0);
    assert.equal(s.recordCount, 4);
    assert.deepEqual(s.records().at(-1), punch);
  });

  it("generates live punches at the configured rate and pushes them over UDP too", async () => {
    const s = await sim({ liveRate: 40, users: 10 });
    const c = await client(s, "udp");
    await c.connect();
    await c.call(500, Buffer.from([0xff, 0xff, 0, 0]));
    await c.waitForEvents(5, 3000);
    assert.ok(s.recordCount >= 5);
    const keys = s.records().map((r) => `${r.userId}|${r.time}|${r.state}`);
    assert.equal(new Set(keys).size, keys.length);
  });
});

function rawAck(session: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt16LE(2000, 0);
  p.writeUInt16LE(session, 4);
  let sum = 2000 + session;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16LE(~sum & 0xffff, 2);
  return p;
}

describe("faults", () => {
  const chunkRequest = (offset: number, length: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(offset, 0);
    b.writeUInt32LE(length, 4);
    return b;
  };

  it("drop-mid-transfer over TCP closes the socket partway through the chunk", async () => {
    const s = await sim({ records: 2000 });
    const c = await client(s);
    await c.connect();
    await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    s.injectFault({ kind: "drop-mid-transfer" });
    const before = c.bytesReceived;
    c.send(1504, chunkRequest(0, 40_000));
    const prepare = await c.next();
    assert.equal(prepare.command, 1500);
    await assert.rejects(c.next(2000), /closed/);
    const got = c.bytesReceived - before;
    assert.ok(got > 24 && got < 24 + 16 + 40_000, `received ${got} bytes`);
  });

  it("drop-mid-transfer over UDP stops sending and never ends the chunk", async () => {
    const s = await sim({ records: 2000, transports: ["udp"] });
    const c = await client(s, "udp");
    await c.connect();
    await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    s.injectFault({ kind: "drop-mid-transfer" });
    c.send(1504, chunkRequest(0, 16_384));
    const seen: number[] = [];
    await assert.rejects(async () => {
      for (;;) seen.push((await c.next(500)).command);
    });
    assert.equal(seen[0], 1500);
    assert.equal(seen.filter((x) => x === 1501).length, 8);
    assert.ok(!seen.includes(2000));
  });

  it("stall holds every answer until it ends, with the socket still open", async () => {
    const s = await sim();
    const c = await client(s);
    await c.connect();
    s.injectFault({ kind: "stall" });
    c.send(50);
    await assert.rejects(c.next(300), /No packet/);
    assert.equal(c.isClosed, false);
    s.clearFaults();
    assert.equal((await c.next()).command, 2000);
    s.injectFault({ kind: "stall", ms: 200 });
    const started = performance.now();
    await c.call(50);
    assert.ok(performance.now() - started >= 190);
  });

  it("garbage arrives before the reply and does not start with the magic", async () => {
    const s = await sim();
    const c = await client(s);
    await c.connect();
    s.injectFault({ kind: "garbage" });
    const mark = c.reads.length;
    assert.equal((await c.call(50)).command, 2000);
    const first = c.reads[mark];
    assert.ok(first && first[0] !== 0x50, "first byte after the fault is junk");
    assert.equal(Buffer.concat(c.reads.slice(mark)).indexOf(Buffer.from("5050827d", "hex")) > 0, true);
  });

  it("garbage over UDP is a junk datagram before the reply", async () => {
    const s = await sim({ transports: ["udp"] });
    const c = await client(s, "udp");
    await c.connect();
    s.injectFault({ kind: "garbage" });
    const mark = c.reads.length;
    c.send(50);
    const junk = await c.next();
    const reply = await c.next();
    assert.equal(junk.isChecksumValid && junk.command === 2000, false);
    assert.equal(reply.command, 2000);
    assert.equal(c.reads.length - mark, 2);
  });

  it("split delivers a reply in many small reads; merge in one", async () => {
    const s = await sim({ records: 500 });
    const c = await client(s);
    await c.connect();
    await c.call(1503, Buffer.from("010d000000000000000000", "hex"));
    s.injectFault({ kind: "split" });
    let mark = c.reads.length;
    c.send(1504, chunkRequest(0, 8000));
    assert.equal((await c.collectBulk()).data.length, 8000);
    const splitReads = c.reads.slice(mark);
    assert.ok(splitReads.length >= 10, `${splitReads.length} reads`);
    assert.ok(splitReads.every((r) => r.length <= 300 * 4));

    s.injectFault({ kind: "merge" });
    mark = c.reads.length;
    c.send(1504, chunkRequest(0, 8000));
    assert.equal((await c.collectBulk()).data.length, 8000);
    assert.equal(c.reads.length - mark, 1);
    assert.equal(c.reads[mark]?.length, 24 + 8016 + 16);
  });

  it("bad-checksum corrupts the next reply only; reply-error answers ACK_ERROR once", async () => {
    const s = await sim();
    const c = await client(s);
    await c.connect();
    s.injectFault({ kind: "bad-checksum" });
    assert.equal((await c.call(50)).isChecksumValid, false);
    assert.equal((await c.call(50)).isChecksumValid, true);
    s.injectFault({ kind: "reply-error", count: 2 });
    assert.equal((await c.call(50)).command, 2001);
    assert.equal((await c.call(50)).command, 2001);
    assert.equal((await c.call(50)).command, 2000);
  });

  it("clock-jump moves the device clock", async () => {
    const s = await sim();
    const before = s.clockOffsetMs;
    s.injectFault({ kind: "clock-jump", ms: 86_400_000 });
    assert.equal(s.clockOffsetMs - before, 86_400_000);
    const c = await client(s);
    await c.connect();
    const t = zkTimeText((await c.call(201)).data.readUInt32LE(0));
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    assert.equal(t.slice(0, 10), tomorrow);
  });

  it("counts incoming checksum mismatches without rejecting the packet", async () => {
    const s = await sim();
    const c = await client(s);
    await c.connect();
    const bad = Buffer.from([50, 0, 0x12, 0x34, c.session & 0xff, c.session >> 8, 9, 0]);
    c.sendRaw(bad);
    assert.equal((await c.next()).command, 2000);
    assert.equal(s.stats().checksumMismatches, 1);
  });
});

describe("link model", () => {
  it("a 1 MB read at 10 Mbit/s takes about 0.84 s", async () => {
    const s = await sim({ records: 26_214, link: { bandwidthBitsPerSec: 10_000_000, latencyMs: 2 } });
    const c = await client(s);
    await c.connect();
    const started = performance.now();
    const set = await c.readSet("attendance", 65_472);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(set.length, 4 + 26_214 * 40);
    // The floor is the model at work (1 MB cannot cross 10 Mbit/s faster); the ceiling only says it is not stuck.
    assert.ok(seconds > 0.7 && seconds < 10, `took ${seconds.toFixed(3)} s`);
    const st = s.stats();
    assert.ok(st.bytesSent > 1_048_000 && st.estimatedEthernetBytesSent > st.bytesSent);
  });

  it("adds the one-way latency twice per round trip", async () => {
    const s = await sim({ link: { bandwidthBitsPerSec: 1e9, latencyMs: 40 } });
    const c = await client(s);
    await c.connect();
    using lag = loopLag();
    const started = performance.now();
    for (let i = 0; i < 3; i++) await c.call(50);
    const ms = performance.now() - started;
    // The ceiling (not four latencies per trip) allows for timers that a busy machine ran late, as measured.
    const ceiling = 3 * 80 + 150 + lag.totalMs;
    assert.ok(ms >= 3 * 80 - 5 && ms < ceiling, `${ms} ms (ceiling ${Math.round(ceiling)} ms)`);
  });
});
